// The Store's logic on SQL, once for both backends: SqliteStore (embedded)
// and PostgresStore (several relay nodes). `Conn` is the backend's
// connection: Prepare(sql) with SQLite-style ?N parameters, a statement with
// Bind/Step/Run and typed columns, and Begin/Commit/Rollback for the
// BatchWriter. The SQL here is written to mean the same on both (ON CONFLICT
// DO NOTHING, CASE instead of min/max, RETURNING); each backend keeps its own
// schema and migrations.
//
// Writes go through one BatchWriter (group commit); reads use a pool of their
// own connections. Fetched marks (advisory, many at once when a broadcast
// wakes thousands of polls) are gathered in memory and written in one
// operation a moment later (Receipts() and Close() write them at once).
// Included only by the two backends' .cc files.
#pragma once

#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <tuple>
#include <unordered_map>
#include <vector>

#include "schemas/error.h"
#include "server/core/store.h"
#include "server/storage/batch_writer.h"

namespace meshwire {

template <class Conn>
class SqlStore : public Store {
 public:
  /// `writer` is the migrated database's write connection; `open_reader`
  /// opens one more read connection (at most `max_readers` are open).
  SqlStore(std::string kind, std::unique_ptr<Conn> writer,
           std::function<std::unique_ptr<Conn>()> open_reader, std::size_t max_readers)
      : kind_(std::move(kind)),
        open_reader_(std::move(open_reader)),
        writer_(std::make_unique<BatchWriter<Conn>>(std::move(writer))),
        max_readers_(max_readers) {}
  ~SqlStore() override { Close(); }

  std::string Kind() const override { return kind_; }
  void CheckAvailable() override {
    ReadRow("SELECT 1", [](const auto& s) { return s.Int(0); });
  }
  void SetCommitListener(CommitListener listener) override { listener_ = std::move(listener); }
  /// Commits what the writer has queued and stops it (a subclass's
  /// destructor calls this too, while its connections can still be used).
  void Close() override;

  void EnsureUser(const std::string& user, Millis now) override;
  bool UserExists(const std::string& user) override;
  std::optional<std::string> FindUserName(const std::string& name) override;
  Token CreateToken(const NewToken& token) override;
  std::optional<Token> FindTokenByHash(const std::string& secret_sha256) override;
  std::vector<Token> ListTokens(const std::string& user) override;
  std::vector<Token> AllTokens() override;
  std::optional<Token> FindToken(const std::string& id) override;
  bool RevokeToken(const std::string& user, const std::string& id) override;
  void TouchToken(const std::string& id, Millis now) override;
  void PutSignIn(const std::string& key_sha256, const std::string& payload, Millis expires, Millis now) override;
  std::optional<std::string> TakeSignIn(const std::string& key_sha256, Millis now) override;

  void CreateMesh(const Mesh& mesh) override;
  std::optional<Mesh> FindMesh(const std::string& mesh_id) override;
  std::vector<Mesh> MeshesOf(const std::string& user) override;
  bool DeleteMesh(const std::string& mesh_id) override;
  std::optional<std::string> RoleOf(const std::string& mesh_id, const std::string& user) override;
  bool AddMember(const std::string& mesh_id, const std::string& user) override;
  std::vector<Member> Members(const std::string& mesh_id) override;
  bool RemoveMember(const std::string& mesh_id, const std::string& user) override;

  RegisterResult RegisterAgent(const NewAgent& agent) override;
  std::optional<Agent> FindAgent(const std::string& mesh_id, const std::string& id_or_name) override;
  std::vector<Agent> Agents(const std::string& mesh_id) override;
  bool DeleteAgent(const std::string& mesh_id, const std::string& agent_id) override;
  void RecordPresence(const std::vector<std::pair<std::string, Millis>>& seen) override;

  AppendResult Append(const NewMessage& message) override;
  void AppendAsync(const NewMessage& message, AppendDone done) override;
  std::vector<Message> MessagesFor(const std::string& mesh_id, const std::string& agent_id,
                                   std::int64_t after, int limit) override;
  std::vector<Message> History(const std::string& mesh_id, std::int64_t after, int limit) override;
  std::int64_t NewestSeq(const std::string& mesh_id) override;
  std::optional<Message> FindMessage(const std::string& mesh_id, const std::string& id) override;
  std::int64_t AdvanceCursor(const std::string& agent_id, std::int64_t acked, std::int64_t fetched,
                             Millis now) override;
  std::vector<Receipt> Receipts(const Message& message) override;

  SweepResult Sweep(Millis now, Millis agent_ttl, Millis acked_grace) override;

 protected:
  /// The backend's way to write a new message: takes its mesh's next seq and
  /// id (ids are microseconds since the epoch, bumped to stay unique and
  /// increasing), inserts the row and returns {seq, id}; throws NotFound for
  /// an unknown mesh. Every backend sets one in its constructor.
  using MessageWriter = std::function<std::pair<std::int64_t, std::int64_t>(Conn&, const NewMessage&)>;
  void SetMessageWriter(MessageWriter write) { write_message_ = std::move(write); }
  /// A backend whose writers run side by side on one database (PostgreSQL's
  /// nodes) locks the rows of the meshes that a gathered op writes, given in
  /// byte order, before it writes any, when some of its sends lock their
  /// mesh's row at once (those with an idempotency key). The rest lock theirs
  /// at the COMMIT, also in byte order (the op's sends are sorted by mesh), so
  /// two nodes never take two meshes in opposite orders (a deadlock).
  using MeshLocker = std::function<void(Conn&, const std::vector<std::string>&)>;
  void SetMeshLocker(MeshLocker lock) { lock_meshes_ = std::move(lock); }
  /// A backend whose writers run side by side on one database (PostgreSQL's
  /// nodes) holds, until the commit, a lock on user `name` without regard to
  /// case before a write looks up the user's stored spelling and adds the
  /// user if none is found: two first sign-ins spelled differently then make
  /// one user. (SQLite's one writer at a time needs none: BEGIN IMMEDIATE.)
  using UserLocker = std::function<void(Conn&, const std::string& name)>;
  void SetUserLocker(UserLocker lock) { lock_user_ = std::move(lock); }
  /// A backend's way to write several new messages of one mesh, none with an
  /// idempotency key, at once: it calls `written` with their (seq, id), in
  /// order (none when the mesh is gone), before the transaction's Commit
  /// returns, either at once (SQLite) or from the COMMIT's round trip
  /// (PostgreSQL: PgConnection::AtCommit). AppendAsync gathers the sends that
  /// arrive while the writer is busy into one op of the next batch (see
  /// SubmitDrain). Set in the backend's constructor.
  using SeqIds = std::vector<std::pair<std::int64_t, std::int64_t>>;
  using OnWritten = std::function<void(const SeqIds&)>;
  using MessagesWriter = std::function<void(Conn&, const std::vector<const NewMessage*>&, OnWritten written)>;
  void SetMessagesWriter(MessagesWriter write) { write_messages_ = std::move(write); }
  /// Called after a read found messages, on the connection that read them,
  /// before they are returned. A backend whose commits are visible before
  /// they are durable (PostgreSQL: PostgresStore) waits here until what the
  /// read could see is. SQLite's commits are durable when seen.
  virtual void AwaitDurable(Conn& /*reader*/) {}
  /// Queues an advisory write (see BatchWriter::RunLater).
  void WriteLater(std::function<void(Conn&)> op) { writer_->RunLater(std::move(op)); }
  /// The same, with `done` told of its commit or failure (on the writer).
  void WriteLater(std::function<void(Conn&)> op, typename BatchWriter<Conn>::Done done) {
    writer_->Submit(std::move(op), nullptr, std::move(done));
  }
  /// See BatchWriter::SetInline.
  void SetInlineWrites(bool on) { writer_->SetInline(on); }
  /// Runs a write and waits for its commit.
  void WriteNow(std::function<void(Conn&)> op) { writer_->Run(std::move(op)); }

  /// Every row of `sql` on a reader, `args` bound to ?1, ?2, ..., each
  /// turned into a value by `read(statement)`.
  template <class Read, class... Args>
  auto ReadRows(const char* sql, Read read, const Args&... args);

 private:
  class ReadLease;  // borrows a reader connection for one call
  ReadLease Reader();
  void ReturnReader(std::unique_ptr<Conn> conn);

  /// On the writer: user `name`'s stored spelling (any case), or `name`,
  /// added now with `created_at`, if there is none (see SetUserLocker).
  std::string StoreUser(Conn& c, const std::string& name, Millis created_at);
  /// The messages `sql` selects, once AwaitDurable says they are durable.
  template <class... Args>
  std::vector<Message> ReadMessages(const char* sql, const Args&... args);
  /// The first row of `sql` read so, or nullopt.
  template <class Read, class... Args>
  auto ReadRow(const char* sql, Read read, const Args&... args);
  /// Runs `sql` on the writer, waiting for its commit: true when it changed a row.
  template <class... Args>
  bool WriteChanged(const char* sql, const Args&... args);

  /// Writes the fetched marks gathered so far (a writer op); `wait`: return
  /// after its commit.
  void FlushFetched(bool wait);
  /// Sweep's deletions: `del(conn, row)` for each row (it returns the rows
  /// it deleted), kSweepDeletesPerOp rows per writer operation, so sends
  /// wait for one part at most; returns how many were deleted.
  template <class Row, class Delete>
  int DeleteInParts(const std::vector<Row>& rows, Delete del);

  /// One AppendAsync, from its submission to its answer.
  struct PendingAppend {
    NewMessage message;
    AppendResult result;
    AppendDone done;
    std::exception_ptr refused;  // its mesh was gone when its run was written
  };
  using PendingAppends = std::vector<std::shared_ptr<PendingAppend>>;
  /// One writer op for one append.
  void SubmitOne(std::shared_ptr<PendingAppend> append);
  /// One writer op for every append gathered when it runs: runs of one
  /// mesh's messages without an idempotency key go through write_messages_.
  /// If it throws, the batch goes on without it and each of its appends is
  /// submitted again alone, so only the one at fault fails.
  void SubmitDrain();
  void WriteAppends(Conn& c, PendingAppends& appends);
  /// RegisterAgent's transaction: the name looked up, then inserted if new.
  RegisterResult RegisterAgentOnce(const NewAgent& a);

  std::string kind_;
  std::function<std::unique_ptr<Conn>()> open_reader_;
  MessageWriter write_message_;
  MeshLocker lock_meshes_;
  UserLocker lock_user_;
  MessagesWriter write_messages_;
  CommitListener listener_;

  std::atomic<std::uint64_t> messages_written_{0};  // by AppendAsync, for the closing log line
  std::mutex appends_mu_;
  PendingAppends appends_;     // waiting for the queued drain; guarded by appends_mu_
  bool drain_queued_ = false;  // guarded by appends_mu_
  std::unique_ptr<BatchWriter<Conn>> writer_;

  struct Mark {
    std::int64_t seq = 0;
    Millis at = 0;
  };
  static constexpr std::chrono::milliseconds kFetchedDelay{500};  // from the first mark to its write
  static constexpr std::size_t kSweepDeletesPerOp = 500;          // rows deleted by one writer op of Sweep
  static constexpr std::size_t kSweepRowsPerRun = 100000;         // messages (and marks) one Sweep removes at most
  std::mutex fetched_mu_;
  std::unordered_map<std::string, Mark> fetched_;  // agent id -> highest; guarded by fetched_mu_
  bool flush_queued_ = false;                      // guarded by fetched_mu_

  // At most max_readers_ connections: thousands of woken long-polls share a
  // few connections instead of opening one each.
  std::size_t max_readers_;
  std::mutex readers_mu_;
  std::condition_variable reader_free_;
  std::vector<std::unique_ptr<Conn>> idle_readers_;  // guarded by readers_mu_
  std::size_t open_readers_ = 0;                     // guarded by readers_mu_
};

namespace sql_store_internal {

inline constexpr const char* kAgentColumns =
    "id, mesh_id, name, harness, owner, created_at, last_seen, acked_seq, fetched_seq";
inline constexpr const char* kMessageColumns =
    "mesh_id, seq, id, from_agent, from_name, to_agent, to_name, content, priority, metadata, "
    "created_at";

template <class S>
Agent ReadAgent(const S& s) {
  Agent a;
  a.agent_id = s.Text(0);
  a.mesh_id = s.Text(1);
  a.name = s.Text(2);
  a.harness = s.Text(3);
  a.owner = s.Text(4);
  a.created_at = s.Int(5);
  a.last_seen = s.Int(6);
  a.acked_seq = s.Int(7);
  a.fetched_seq = s.Int(8);
  return a;
}

template <class S>
Message ReadMessage(const S& s) {
  Message m;
  m.mesh_id = s.Text(0);
  m.seq = s.Int(1);
  m.id = s.Text(2);
  m.from = s.Text(3);
  m.from_name = s.Text(4);
  m.to = s.Text(5);
  m.to_name = s.OptText(6);
  m.content = s.Text(7);
  m.priority = s.Text(8);
  m.metadata_json = s.Text(9);
  m.created_at = s.Int(10);
  return m;
}

template <class S>
Token ReadToken(const S& s) {
  Token t;
  t.id = s.Text(0);
  t.user = s.Text(1);
  t.name = s.Text(2);
  t.mesh_id = s.OptText(3);
  t.created_at = s.Int(4);
  t.last_used_at = s.OptInt(5);
  return t;
}

template <class S>
Mesh ReadMesh(const S& s) {
  return Mesh{s.Text(0), s.Text(1), s.Text(2), s.Int(3)};
}


inline const std::string kSelectAgentByIdOrName = std::string("SELECT ") + kAgentColumns +
                                           " FROM agents WHERE mesh_id = ?1 AND (id = ?2 OR name = ?2)"
                                           " ORDER BY id = ?2 DESC LIMIT 1";
inline const std::string kSelectAgentsOfMesh =
    std::string("SELECT ") + kAgentColumns + " FROM agents WHERE mesh_id = ?1 ORDER BY name";
inline const std::string kSelectMessagesFor =
    std::string("SELECT ") + kMessageColumns +
    " FROM messages WHERE mesh_id = ?1 AND seq > ?3 AND to_agent IN (?2, 'all')"
    " AND NOT (to_agent = 'all' AND from_agent = ?2) ORDER BY seq LIMIT ?4";
inline const std::string kSelectHistory = std::string("SELECT ") + kMessageColumns +
                                   " FROM messages WHERE mesh_id = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3";
inline const std::string kSelectMessageById =
    std::string("SELECT ") + kMessageColumns + " FROM messages WHERE mesh_id = ?1 AND id = ?2";
inline const std::string kSelectMessageByKey =
    std::string("SELECT ") + kMessageColumns +
    " FROM messages WHERE mesh_id = ?1 AND from_agent = ?2 AND idempotency_key = ?3";
inline const std::string kSelectRecipients =
    std::string("SELECT ") + kAgentColumns +
    " FROM agents WHERE mesh_id = ?1 AND ((?2 = 'all' AND id <> ?3 AND start_seq < ?4) OR id = ?2)"
    " ORDER BY name";


/// Every row of `sql` on `c`, `args` bound to ?1, ?2, ..., each turned into
/// a value by `read(statement)`.
template <class Conn, class Read, class... Args>
auto RowsOn(Conn& c, const char* sql, Read read, const Args&... args) {
  auto s = c.Prepare(sql);
  int index = 0;
  (s.Bind(++index, args), ...);
  std::vector<decltype(read(s))> out;
  while (s.Step()) out.push_back(read(s));
  return out;
}

/// The message `m` became, written as `seq` with id `id`.
inline Message Written(const NewMessage& m, std::int64_t seq, std::int64_t id) {
  return Message{std::to_string(id), seq,       m.mesh_id,  m.from,          m.from_name, m.to,
                 m.to_name,          m.content, m.priority, m.metadata_json, m.now};
}

}  // namespace sql_store_internal

using namespace sql_store_internal;  // NOLINT: the helpers above, in this header's templates only

template <class Conn>
void SqlStore<Conn>::Close() {
  if (!writer_) return;
  FlushFetched(/*wait=*/true);
  writer_->Stop();  // writer_ stays valid meanwhile: an answer may still submit (and be refused)
  // How well sends were gathered (the writer's own line, at debug level,
  // counts its operations).
  if (const auto messages = messages_written_.load(); messages > 0) {
    const auto commits = writer_->commits();
    spdlog::info("storage: {} messages written in {} commits ({:.1f} per commit)", messages,
                 commits, static_cast<double>(messages) / static_cast<double>(std::max<std::uint64_t>(commits, 1)));
  }
  writer_.reset();
}

// A reader connection borrowed for the length of one call.
template <class Conn>
class SqlStore<Conn>::ReadLease {
 public:
  ReadLease(SqlStore& store, std::unique_ptr<Conn> conn)
      : store_(store), conn_(std::move(conn)) {}
  ~ReadLease() {
    if (conn_) store_.ReturnReader(std::move(conn_));
  }
  ReadLease(ReadLease&&) = default;
  Conn* operator->() { return conn_.get(); }
  Conn& operator*() { return *conn_; }

 private:
  SqlStore& store_;
  std::unique_ptr<Conn> conn_;
};

template <class Conn>
typename SqlStore<Conn>::ReadLease SqlStore<Conn>::Reader() {
  {
    std::unique_lock lock(readers_mu_);
    reader_free_.wait(lock, [&] { return !idle_readers_.empty() || open_readers_ < max_readers_; });
    if (!idle_readers_.empty()) {
      auto conn = std::move(idle_readers_.back());
      idle_readers_.pop_back();
      return ReadLease(*this, std::move(conn));
    }
    ++open_readers_;
  }
  try {
    return ReadLease(*this, open_reader_());
  } catch (...) {
    std::lock_guard lock(readers_mu_);
    --open_readers_;
    reader_free_.notify_one();
    throw;
  }
}

template <class Conn>
template <class Read, class... Args>
auto SqlStore<Conn>::ReadRows(const char* sql, Read read, const Args&... args) {
  auto r = Reader();
  return RowsOn(*r, sql, read, args...);
}

template <class Conn>
template <class... Args>
std::vector<Message> SqlStore<Conn>::ReadMessages(const char* sql, const Args&... args) {
  auto r = Reader();
  auto out = RowsOn(*r, sql, [](const auto& s) { return ReadMessage(s); }, args...);
  if (!out.empty()) AwaitDurable(*r);  // on the connection that read them
  return out;
}

template <class Conn>
template <class Read, class... Args>
auto SqlStore<Conn>::ReadRow(const char* sql, Read read, const Args&... args) {
  auto r = Reader();
  auto s = r->Prepare(sql);
  int index = 0;
  (s.Bind(++index, args), ...);
  std::optional<decltype(read(s))> out;
  if (s.Step()) out = read(s);
  return out;
}

template <class Conn>
template <class... Args>
bool SqlStore<Conn>::WriteChanged(const char* sql, const Args&... args) {
  int changed = 0;
  writer_->Run([&](Conn& c) {
    auto s = c.Prepare(sql);
    int index = 0;
    (s.Bind(++index, args), ...);
    changed = s.Run();
  });
  return changed > 0;
}

template <class Conn>
void SqlStore<Conn>::ReturnReader(std::unique_ptr<Conn> conn) {
  {
    std::lock_guard lock(readers_mu_);
    idle_readers_.push_back(std::move(conn));
  }
  reader_free_.notify_one();
}

// --- users and tokens ---------------------------------------------------------

template <class Conn>
void SqlStore<Conn>::EnsureUser(const std::string& user, Millis now) {
  writer_->Run([&](Conn& c) {
    c.Prepare("INSERT INTO users(name, created_at) VALUES (?1, ?2) ON CONFLICT DO NOTHING")
        .Bind(1, user)
        .Bind(2, now)
        .Run();
  });
}

template <class Conn>
bool SqlStore<Conn>::UserExists(const std::string& user) {
  auto r = Reader();
  return r->Prepare("SELECT 1 FROM users WHERE name = ?1").Bind(1, user).Step();
}

// The stored spelling of a user: an exact match first, else the oldest.
#define MESHWIRE_SQL_USER_SPELLING \
  "SELECT name FROM users WHERE lower(name) = lower(?1) ORDER BY name = ?1 DESC, created_at, name LIMIT 1"

template <class Conn>
std::optional<std::string> SqlStore<Conn>::FindUserName(const std::string& name) {
  auto r = Reader();
  auto s = r->Prepare(MESHWIRE_SQL_USER_SPELLING);
  s.Bind(1, name);
  if (!s.Step()) return std::nullopt;
  return s.Text(0);
}

template <class Conn>
std::string SqlStore<Conn>::StoreUser(Conn& c, const std::string& name, Millis created_at) {
  if (lock_user_) lock_user_(c, name);
  {
    auto s = c.Prepare(MESHWIRE_SQL_USER_SPELLING);
    s.Bind(1, name);
    if (s.Step()) return s.Text(0);
  }
  c.Prepare("INSERT INTO users(name, created_at) VALUES (?1, ?2) ON CONFLICT DO NOTHING")
      .Bind(1, name)
      .Bind(2, created_at)
      .Run();
  return name;
}

template <class Conn>
Token SqlStore<Conn>::CreateToken(const NewToken& t) {
  std::string user;
  writer_->Run([&](Conn& c) {
    user = StoreUser(c, t.user, t.created_at);  // in this transaction: a sign-in racing it has one spelling
    c.Prepare(
         "INSERT INTO tokens(id, user_name, name, secret_sha256, mesh_id, created_at)"
         " VALUES (?1, ?2, ?3, ?4, ?5, ?6)")
        .Bind(1, t.id)
        .Bind(2, user)
        .Bind(3, t.name)
        .Bind(4, t.secret_sha256)
        .Bind(5, t.mesh_id)
        .Bind(6, t.created_at)
        .Run();
  });
  return Token{t.id, user, t.name, t.mesh_id, t.created_at, std::nullopt};
}

template <class Conn>
std::optional<Token> SqlStore<Conn>::FindTokenByHash(const std::string& secret_sha256) {
  return ReadRow(
      "SELECT id, user_name, name, mesh_id, created_at, last_used_at FROM tokens WHERE secret_sha256 = ?1",
      [](const auto& s) { return ReadToken(s); }, secret_sha256);
}

template <class Conn>
std::vector<Token> SqlStore<Conn>::ListTokens(const std::string& user) {
  return ReadRows(
      "SELECT id, user_name, name, mesh_id, created_at, last_used_at FROM tokens"
      " WHERE user_name = ?1 ORDER BY created_at, id",
      [](const auto& s) { return ReadToken(s); }, user);
}

template <class Conn>
std::vector<Token> SqlStore<Conn>::AllTokens() {
  return ReadRows(
      "SELECT id, user_name, name, mesh_id, created_at, last_used_at FROM tokens ORDER BY user_name, created_at, id",
      [](const auto& s) { return ReadToken(s); });
}

template <class Conn>
std::optional<Token> SqlStore<Conn>::FindToken(const std::string& id) {
  return ReadRow("SELECT id, user_name, name, mesh_id, created_at, last_used_at FROM tokens WHERE id = ?1",
                 [](const auto& s) { return ReadToken(s); }, id);
}

template <class Conn>
bool SqlStore<Conn>::RevokeToken(const std::string& user, const std::string& id) {
  return WriteChanged("DELETE FROM tokens WHERE id = ?1 AND user_name = ?2", id, user);
}

template <class Conn>
void SqlStore<Conn>::TouchToken(const std::string& id, Millis now) {
  writer_->RunLater([id, now](Conn& c) {
    c.Prepare("UPDATE tokens SET last_used_at = ?2 WHERE id = ?1")
        .Bind(1, id)
        .Bind(2, now)
        .Run();
  });
}

// --- sign-ins in flight --------------------------------------------------------------

template <class Conn>
void SqlStore<Conn>::PutSignIn(const std::string& key_sha256, const std::string& payload, Millis expires,
                               Millis now) {
  writer_->Run([&](Conn& c) {
    c.Prepare("DELETE FROM sign_ins WHERE expires_at < ?1").Bind(1, now).Run();
    c.Prepare("INSERT INTO sign_ins(key_sha256, payload, expires_at) VALUES (?1, ?2, ?3)")
        .Bind(1, key_sha256)
        .Bind(2, payload)
        .Bind(3, expires)
        .Run();
  });
}

template <class Conn>
std::optional<std::string> SqlStore<Conn>::TakeSignIn(const std::string& key_sha256, Millis now) {
  std::optional<std::string> payload;
  writer_->Run([&](Conn& c) {
    payload.reset();  // an op run again (a lost connection) starts over
    auto s = c.Prepare("DELETE FROM sign_ins WHERE key_sha256 = ?1 RETURNING payload, expires_at");
    s.Bind(1, key_sha256);
    if (s.Step() && s.Int(1) >= now) payload = s.Text(0);
  });
  return payload;
}

// --- meshes and members ---------------------------------------------------------

template <class Conn>
void SqlStore<Conn>::CreateMesh(const Mesh& m) {
  writer_->Run([&](Conn& c) {
    c.Prepare("INSERT INTO users(name, created_at) VALUES (?1, ?2) ON CONFLICT DO NOTHING")
        .Bind(1, m.owner)
        .Bind(2, m.created_at)
        .Run();
    c.Prepare("INSERT INTO meshes(id, name, owner, created_at) VALUES (?1, ?2, ?3, ?4)")
        .Bind(1, m.mesh_id)
        .Bind(2, m.name)
        .Bind(3, m.owner)
        .Bind(4, m.created_at)
        .Run();
    c.Prepare("INSERT INTO members(mesh_id, user_name, role) VALUES (?1, ?2, 'owner')")
        .Bind(1, m.mesh_id)
        .Bind(2, m.owner)
        .Run();
  });
}

template <class Conn>
std::optional<Mesh> SqlStore<Conn>::FindMesh(const std::string& mesh_id) {
  return ReadRow("SELECT id, name, owner, created_at FROM meshes WHERE id = ?1",
                 [](const auto& s) { return ReadMesh(s); }, mesh_id);
}

template <class Conn>
std::vector<Mesh> SqlStore<Conn>::MeshesOf(const std::string& user) {
  return ReadRows(
      "SELECT m.id, m.name, m.owner, m.created_at FROM meshes m"
      " JOIN members p ON p.mesh_id = m.id WHERE p.user_name = ?1 ORDER BY m.created_at, m.id",
      [](const auto& s) { return ReadMesh(s); }, user);
}

/// Deletes `user` if no token, membership or mesh is left to them (a name
/// added as a member that never signed in), in the writer's transaction `c`
/// that holds the user's lock.
template <class Conn>
void ForgetUserIfUnused(Conn& c, const std::string& user) {
  c.Prepare(
       "DELETE FROM users WHERE name = ?1 AND NOT EXISTS (SELECT 1 FROM tokens WHERE user_name = ?1)"
       " AND NOT EXISTS (SELECT 1 FROM members WHERE user_name = ?1)"
       " AND NOT EXISTS (SELECT 1 FROM meshes WHERE owner = ?1)")
      .Bind(1, user)
      .Run();
}

template <class Conn>
bool SqlStore<Conn>::DeleteMesh(const std::string& mesh_id) {
  // Children go by ON DELETE CASCADE (members, agents, watermarks; messages
  // on SQLite); the tokens scoped to the mesh, which could do nothing more,
  // go with it, and so do its messages, which PostgreSQL ties to the mesh by
  // no foreign key (its migration 8). The mesh row first: a send in another
  // transaction then waits for it and finds no mesh (it inserts nothing).
  //
  // Its members the relay then holds nothing for are forgotten, as
  // RemoveMember forgets one; their user locks are taken first, in name
  // order (as RemoveMember, AddMember and CreateToken take one, before any
  // row), so two deletions sharing members do not deadlock.
  int changed = 0;
  writer_->Run([&](Conn& c) {
    std::vector<std::string> members;
    {
      auto s = c.Prepare("SELECT user_name FROM members WHERE mesh_id = ?1 ORDER BY user_name");
      s.Bind(1, mesh_id);
      while (s.Step()) members.push_back(s.Text(0));
    }
    if (lock_user_) {
      for (const auto& user : members) lock_user_(c, user);
    }
    changed = c.Prepare("DELETE FROM meshes WHERE id = ?1").Bind(1, mesh_id).Run();
    if (changed > 0) {
      c.Prepare("DELETE FROM tokens WHERE mesh_id = ?1").Bind(1, mesh_id).Run();
      c.Prepare("DELETE FROM messages WHERE mesh_id = ?1").Bind(1, mesh_id).Run();
      for (const auto& user : members) ForgetUserIfUnused(c, user);
    }
  });
  return changed > 0;
}

template <class Conn>
std::optional<std::string> SqlStore<Conn>::RoleOf(const std::string& mesh_id, const std::string& user) {
  auto r = Reader();
  auto s = r->Prepare("SELECT role FROM members WHERE mesh_id = ?1 AND user_name = ?2");
  s.Bind(1, mesh_id).Bind(2, user);
  if (!s.Step()) return std::nullopt;
  return s.Text(0);
}

/// Revokes `user`'s tokens scoped to `mesh_id`, in the writer's transaction `c`.
template <class Conn>
void DropScopedTokens(Conn& c, const std::string& mesh_id, const std::string& user) {
  c.Prepare("DELETE FROM tokens WHERE mesh_id = ?1 AND user_name = ?2").Bind(1, mesh_id).Bind(2, user).Run();
}

template <class Conn>
bool SqlStore<Conn>::AddMember(const std::string& mesh_id, const std::string& name) {
  bool mesh_exists = false;
  writer_->Run([&](Conn& c) {
    Millis mesh_created = 0;
    {
      auto s = c.Prepare("SELECT created_at FROM meshes WHERE id = ?1");
      s.Bind(1, mesh_id);
      mesh_exists = s.Step();
      if (!mesh_exists) return;
      mesh_created = s.Int(0);
    }
    const std::string user = StoreUser(c, name, mesh_created);
    const int added = c.Prepare(
                           "INSERT INTO members(mesh_id, user_name, role) VALUES (?1, ?2, 'member')"
                           " ON CONFLICT DO NOTHING")
                          .Bind(1, mesh_id)
                          .Bind(2, user)
                          .Run();
    // A new member holds no token scoped to the mesh: one left from before
    // (removed by a relay that did not revoke them) does not come back.
    if (added > 0) DropScopedTokens(c, mesh_id, user);
  });
  return mesh_exists;
}

template <class Conn>
std::vector<Member> SqlStore<Conn>::Members(const std::string& mesh_id) {
  return ReadRows(
      "SELECT user_name, role FROM members WHERE mesh_id = ?1 ORDER BY role = 'owner' DESC, user_name",
      [](const auto& s) { return Member{s.Text(0), s.Text(1)}; }, mesh_id);
}

template <class Conn>
bool SqlStore<Conn>::RemoveMember(const std::string& mesh_id, const std::string& user) {
  int changed = 0;
  writer_->Run([&](Conn& c) {
    // First, as AddMember and CreateToken take it (StoreUser): a sign-in or
    // an addition of this user on another node waits for this transaction,
    // then finds the user row kept or gone.
    if (lock_user_) lock_user_(c, user);
    changed = c.Prepare("DELETE FROM members WHERE mesh_id = ?1 AND user_name = ?2")
                  .Bind(1, mesh_id)
                  .Bind(2, user)
                  .Run();
    if (changed > 0) {
      c.Prepare("DELETE FROM agents WHERE mesh_id = ?1 AND owner = ?2")
          .Bind(1, mesh_id)
          .Bind(2, user)
          .Run();
      // Their tokens scoped to the mesh go too: adding them again must not
      // bring back a token that was handed out (and maybe leaked) before.
      DropScopedTokens(c, mesh_id, user);
      // A user the relay now holds nothing for (no token, no mesh: added by
      // a name that never signed in, a misspelling say) is forgotten, so
      // that adding the name again says again that the relay knows no such
      // user.
      ForgetUserIfUnused(c, user);
    }
  });
  return changed > 0;
}

// --- agents -----------------------------------------------------------------------

template <class Conn>
RegisterResult SqlStore<Conn>::RegisterAgent(const NewAgent& a) {
  try {
    return RegisterAgentOnce(a);
  } catch (const Error&) {
    throw;  // the store's own answers (404, 503, ...)
  } catch (const std::exception&) {
    // A constraint refused the row (nothing was written): between this
    // transaction's look and its insert another node registered the name
    // (PostgreSQL, two nodes at once), or the mesh was deleted. What the
    // database holds now decides, as if this request had come second.
    if (auto found = FindAgent(a.mesh_id, a.name); found && found->name == a.name) {
      return RegisterResult{std::move(*found), false};
    }
    if (!FindMesh(a.mesh_id)) throw Error::NotFound("mesh_not_found", "No mesh " + a.mesh_id + ".");
    throw;
  }
}

template <class Conn>
RegisterResult SqlStore<Conn>::RegisterAgentOnce(const NewAgent& a) {
  RegisterResult result;
  writer_->Run([&](Conn& c) {
    {
      auto s = c.Prepare(kSelectAgentByIdOrName.c_str());
      s.Bind(1, a.mesh_id).Bind(2, a.name);
      while (s.Step()) {
        Agent found = ReadAgent(s);
        if (found.name == a.name) {
          result = RegisterResult{std::move(found), false};
          return;
        }
      }
    }
    if (a.max_owned > 0) {
      // Counted in the writer's transaction: one node's registrations cannot
      // pass the limit together.
      auto s = c.Prepare("SELECT COUNT(*) FROM agents WHERE mesh_id = ?1 AND owner = ?2");
      s.Bind(1, a.mesh_id).Bind(2, a.owner);
      if (s.Step() && s.Int(0) >= a.max_owned) {
        result.full = true;
        return;
      }
    }
    std::int64_t last_seq = 0;
    {
      auto s = c.Prepare("SELECT last_seq FROM meshes WHERE id = ?1");
      s.Bind(1, a.mesh_id);
      if (!s.Step()) throw Error::NotFound("mesh_not_found", "No mesh " + a.mesh_id + ".");
      last_seq = s.Int(0);
    }
    c.Prepare(
         "INSERT INTO agents(id, mesh_id, name, harness, owner, created_at, last_seen,"
         " start_seq, acked_seq, fetched_seq) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6, ?7, ?7, ?7)")
        .Bind(1, a.agent_id)
        .Bind(2, a.mesh_id)
        .Bind(3, a.name)
        .Bind(4, a.harness)
        .Bind(5, a.owner)
        .Bind(6, a.now)
        .Bind(7, last_seq)
        .Run();
    result.created = true;
    result.agent = Agent{a.agent_id, a.mesh_id, a.name, a.harness, a.owner,
                         a.now,      a.now,     last_seq, last_seq};
  });
  return result;
}

template <class Conn>
std::optional<Agent> SqlStore<Conn>::FindAgent(const std::string& mesh_id,
                                            const std::string& id_or_name) {
  return ReadRow(kSelectAgentByIdOrName.c_str(), [](const auto& s) { return ReadAgent(s); }, mesh_id,
                 id_or_name);
}

template <class Conn>
std::vector<Agent> SqlStore<Conn>::Agents(const std::string& mesh_id) {
  return ReadRows(kSelectAgentsOfMesh.c_str(), [](const auto& s) { return ReadAgent(s); }, mesh_id);
}

template <class Conn>
bool SqlStore<Conn>::DeleteAgent(const std::string& mesh_id, const std::string& agent_id) {
  return WriteChanged("DELETE FROM agents WHERE mesh_id = ?1 AND id = ?2", mesh_id, agent_id);
}

template <class Conn>
void SqlStore<Conn>::RecordPresence(const std::vector<std::pair<std::string, Millis>>& seen) {
  if (seen.empty()) return;
  // In agent id order, as every node writes its rows: two nodes flushing the
  // same agents never lock them in opposite orders (a deadlock).
  auto sorted = seen;
  std::sort(sorted.begin(), sorted.end());
  writer_->RunLater([seen = std::move(sorted)](Conn& c) {
    for (const auto& [agent_id, at] : seen) {
      c.Prepare("UPDATE agents SET last_seen = ?2 WHERE id = ?1 AND last_seen < ?2")
          .Bind(1, agent_id)
          .Bind(2, at)
          .Run();
    }
  });
}

// --- messages -----------------------------------------------------------------------

/// Appends `m` on the writer's connection (one try of a batch) with the
/// backend's `write`.
template <class Conn>
void AppendOn(Conn& c, const NewMessage& m, AppendResult& result,
              const std::function<std::pair<std::int64_t, std::int64_t>(Conn&, const NewMessage&)>& write) {
  result = AppendResult{};
  if (m.idempotency_key) {
    auto s = c.Prepare(kSelectMessageByKey.c_str());
    s.Bind(1, m.mesh_id).Bind(2, m.from).Bind(3, *m.idempotency_key);
    if (s.Step()) {
      result = AppendResult{ReadMessage(s), false};
      return;
    }
  }
  auto [seq, id] = write(c, m);
  result = AppendResult{Written(m, seq, id), true};
}

template <class Conn>
AppendResult SqlStore<Conn>::Append(const NewMessage& m) {
  AppendResult result;
  writer_->Run([&](Conn& c) { AppendOn(c, m, result, write_message_); },
               [&] {
                 if (result.created && listener_) listener_(result.message);
               });
  return result;
}

template <class Conn>
void SqlStore<Conn>::AppendAsync(const NewMessage& message, AppendDone done) {
  auto append = std::make_shared<PendingAppend>(PendingAppend{message, {}, std::move(done), nullptr});
  if (!write_messages_) return SubmitOne(std::move(append));
  bool queue_drain = false;
  {
    std::lock_guard lock(appends_mu_);
    appends_.push_back(std::move(append));
    queue_drain = !drain_queued_;
    drain_queued_ = true;
  }
  if (queue_drain) SubmitDrain();
}

template <class Conn>
void SqlStore<Conn>::SubmitOne(std::shared_ptr<PendingAppend> append) {
  writer_->Submit([this, append](Conn& c) { AppendOn(c, append->message, append->result, write_message_); },
                  [this, append] {
                    if (!append->result.created) return;
                    messages_written_.fetch_add(1, std::memory_order_relaxed);
                    if (listener_) listener_(append->result.message);
                  },
                  [append](std::exception_ptr error) {
                    if (error) return append->done(error, {});
                    append->done(nullptr, std::move(append->result));
                  });
}

template <class Conn>
void SqlStore<Conn>::SubmitDrain() {
  struct Drain {
    bool taken = false;      // the appends are in `appends` (an op may run again)
    bool op_failed = false;  // this op threw (not the batch's commit)
    PendingAppends appends;
  };
  auto drain = std::make_shared<Drain>();
  auto take = [this, drain] {
    if (drain->taken) return;
    std::lock_guard lock(appends_mu_);
    drain->appends.swap(appends_);
    drain_queued_ = false;
    drain->taken = true;
    // By mesh, each mesh's in the order they came: its rows are then locked
    // in one order on every node (SetMeshLocker).
    std::stable_sort(drain->appends.begin(), drain->appends.end(),
                     [](const auto& a, const auto& b) { return a->message.mesh_id < b->message.mesh_id; });
  };
  writer_->Submit(
      [this, drain, take](Conn& c) {
        take();
        drain->op_failed = false;
        try {
          WriteAppends(c, drain->appends);
        } catch (...) {
          drain->op_failed = true;
          throw;
        }
      },
      [this, drain] {
        for (const auto& append : drain->appends) {
          if (append->refused || !append->result.created) continue;
          messages_written_.fetch_add(1, std::memory_order_relaxed);
          if (listener_) listener_(append->result.message);
        }
      },
      [this, drain, take](std::exception_ptr error) {
        take();  // the batch failed before the op ran (or the writer is stopping): they fail with it
        for (auto& append : drain->appends) {
          if (!error && append->refused) {
            append->done(append->refused, {});
          } else if (!error) {
            append->done(nullptr, std::move(append->result));
          } else if (drain->op_failed) {
            SubmitOne(append);  // rolled back: alone, so only the one at fault fails
          } else {
            append->done(error, {});  // the commit failed: not written again
          }
        }
      });
}

template <class Conn>
void SqlStore<Conn>::WriteAppends(Conn& c, PendingAppends& appends) {
  for (auto& append : appends) append->refused = nullptr;  // an op may run again
  if (lock_meshes_ && std::any_of(appends.begin(), appends.end(),
                                  [](const auto& a) { return a->message.idempotency_key.has_value(); })) {
    std::vector<std::string> meshes;  // in byte order: the appends are sorted by mesh
    for (const auto& append : appends) {
      if (meshes.empty() || meshes.back() != append->message.mesh_id) meshes.push_back(append->message.mesh_id);
    }
    if (meshes.size() > 1) lock_meshes_(c, meshes);
  }
  for (std::size_t i = 0; i < appends.size();) {
    const NewMessage& first = appends[i]->message;
    if (first.idempotency_key) {
      AppendOn(c, first, appends[i]->result, write_message_);
      ++i;
      continue;
    }
    // The run of this mesh's messages without a key, in the order they came.
    std::vector<const NewMessage*> run;
    auto run_appends = std::make_shared<PendingAppends>();
    for (; i < appends.size() && !appends[i]->message.idempotency_key &&
           appends[i]->message.mesh_id == first.mesh_id;
         ++i) {
      appends[i]->result = AppendResult{};
      run.push_back(&appends[i]->message);
      run_appends->push_back(appends[i]);
    }
    write_messages_(c, run, [run_appends](const SeqIds& written) {
      for (std::size_t k = 0; k < run_appends->size(); ++k) {
        PendingAppend& append = *(*run_appends)[k];
        if (written.size() != run_appends->size()) {
          append.refused = std::make_exception_ptr(
              Error::NotFound("mesh_not_found", "No mesh " + append.message.mesh_id + "."));
          continue;
        }
        append.result = AppendResult{Written(append.message, written[k].first, written[k].second), true};
      }
    });
  }
}

template <class Conn>
std::vector<Message> SqlStore<Conn>::MessagesFor(const std::string& mesh_id,
                                              const std::string& agent_id, std::int64_t after,
                                              int limit) {
  return ReadMessages(kSelectMessagesFor.c_str(), mesh_id, agent_id, after, std::int64_t{limit});
}

template <class Conn>
std::vector<Message> SqlStore<Conn>::History(const std::string& mesh_id, std::int64_t after,
                                          int limit) {
  return ReadMessages(kSelectHistory.c_str(), mesh_id, after, std::int64_t{limit});
}

template <class Conn>
std::int64_t SqlStore<Conn>::NewestSeq(const std::string& mesh_id) {
  auto r = Reader();
  const auto rows = RowsOn(*r, "SELECT last_seq FROM meshes WHERE id = ?1", [](const auto& s) { return s.Int(0); }, mesh_id);
  const std::int64_t seq = rows.empty() ? 0 : rows.front();
  if (seq > 0) AwaitDurable(*r);  // a seq is shown only once its message is durable
  return seq;
}

template <class Conn>
std::optional<Message> SqlStore<Conn>::FindMessage(const std::string& mesh_id, const std::string& id) {
  auto messages = ReadMessages(kSelectMessageById.c_str(), mesh_id, id);
  if (messages.empty()) return std::nullopt;
  return std::move(messages.front());
}

// Raises one watermark of an agent and logs the move; a no-op when not higher.
// Returns `seq` as far as it could go (the mesh's newest seq at most).
template <class Conn>
std::int64_t RaiseWatermark(Conn& c, const std::string& agent_id, const char* kind,
                            std::int64_t seq, Millis now) {
  {
    // Never past the mesh's newest message: a cursor ahead of it would skip
    // messages not yet sent.
    auto s = c.Prepare(
        "SELECT CASE WHEN ?2 < m.last_seq THEN ?2 ELSE m.last_seq END"
        " FROM agents a JOIN meshes m ON m.id = a.mesh_id"
        " WHERE a.id = ?1");
    s.Bind(1, agent_id).Bind(2, seq);
    if (!s.Step()) return seq;
    seq = s.Int(0);
  }
  const char* sql = kind[0] == 'a'
                        ? "UPDATE agents SET acked_seq = ?2 WHERE id = ?1 AND acked_seq < ?2"
                        : "UPDATE agents SET fetched_seq = ?2 WHERE id = ?1 AND fetched_seq < ?2";
  if (c.Prepare(sql).Bind(1, agent_id).Bind(2, seq).Run() == 0) return seq;
  c.Prepare("INSERT INTO watermarks(agent_id, kind, seq, at) VALUES (?1, ?2, ?3, ?4)"
            " ON CONFLICT DO NOTHING")
      .Bind(1, agent_id)
      .Bind(2, std::string_view(kind))
      .Bind(3, seq)
      .Bind(4, now)
      .Run();
  return seq;
}

template <class Conn>
std::int64_t SqlStore<Conn>::AdvanceCursor(const std::string& agent_id, std::int64_t acked,
                                           std::int64_t fetched, Millis now) {
  std::int64_t stored = acked;
  if (acked > 0) {
    writer_->Run([&](Conn& c) {
      // What is acknowledged was necessarily fetched before.
      RaiseWatermark(c, agent_id, "f", acked, now);
      stored = RaiseWatermark(c, agent_id, "a", acked, now);
    });
  }
  if (fetched > acked) {
    // Off the poll's answer path, gathered: Receipts() flushes them first.
    bool queue = false;
    {
      std::lock_guard lock(fetched_mu_);
      Mark& m = fetched_[agent_id];
      if (fetched > m.seq) m = Mark{fetched, now};
      queue = !flush_queued_;
      flush_queued_ = true;
    }
    if (queue) FlushFetched(/*wait=*/false);
  }
  return stored;
}

template <class Conn>
void SqlStore<Conn>::FlushFetched(bool wait) {
  // The marks a run wrote; an op may run again (a retry), so it copies, and
  // only the commit removes what it wrote.
  auto written = std::make_shared<std::vector<std::pair<std::string, Mark>>>();
  auto op = [this, written](Conn& c) {
    {
      std::lock_guard lock(fetched_mu_);
      written->assign(fetched_.begin(), fetched_.end());
    }
    std::sort(written->begin(), written->end(),  // in agent id order, as RecordPresence
              [](const auto& a, const auto& b) { return a.first < b.first; });
    for (const auto& [agent_id, m] : *written) RaiseWatermark(c, agent_id, "f", m.seq, m.at);
  };
  auto committed = [this, written] {
    bool again = false;
    {
      std::lock_guard lock(fetched_mu_);
      for (const auto& [agent_id, m] : *written) {
        auto it = fetched_.find(agent_id);
        if (it != fetched_.end() && it->second.seq <= m.seq) fetched_.erase(it);
      }
      flush_queued_ = !fetched_.empty();
      again = flush_queued_;
    }
    if (again) FlushFetched(/*wait=*/false);  // marks that came during the commit
  };
  if (wait) {
    writer_->Run(op, committed);
  } else {
    // Not at once: a broadcast marks thousands of polls, and their answers
    // are being written meanwhile; a little later, one commit takes them all.
    writer_->SubmitAfter(kFetchedDelay, op, committed, [this](std::exception_ptr error) {
      if (!error) return;
      std::lock_guard lock(fetched_mu_);
      flush_queued_ = false;  // the next mark queues a flush again
    });
  }
}

template <class Conn>
std::vector<Receipt> SqlStore<Conn>::Receipts(const Message& m) {
  // Every fetched mark gathered before this call is committed first, so
  // receipts show what polls have already returned. With none gathered (a
  // mark stays gathered until the commit that wrote it), no writer round:
  // it would wait behind the batch being committed for nothing.
  bool gathered = false;
  {
    std::lock_guard lock(fetched_mu_);
    gathered = !fetched_.empty();
  }
  if (gathered) FlushFetched(/*wait=*/true);
  auto r = Reader();
  std::vector<Agent> recipients;
  {
    auto s = r->Prepare(kSelectRecipients.c_str());
    s.Bind(1, m.mesh_id).Bind(2, m.to).Bind(3, m.from).Bind(4, m.seq);
    while (s.Step()) recipients.push_back(ReadAgent(s));
  }
  auto first_at = [&](const std::string& agent_id, const char* kind) -> std::optional<Millis> {
    auto s = r->Prepare(
        "SELECT at FROM watermarks WHERE agent_id = ?1 AND kind = ?2 AND seq >= ?3"
        " ORDER BY seq LIMIT 1");
    s.Bind(1, agent_id).Bind(2, std::string_view(kind)).Bind(3, m.seq);
    if (!s.Step()) return std::nullopt;
    return s.Int(0);
  };
  std::vector<Receipt> out;
  bool progress = false;  // a recipient fetched or acked it
  for (const Agent& a : recipients) {
    Receipt rc{a.agent_id, a.name, "queued", std::nullopt, std::nullopt};
    if (a.fetched_seq >= m.seq) {
      progress = true;
      rc.state = "fetched";
      rc.fetched_at = first_at(a.agent_id, "f");
    }
    if (a.acked_seq >= m.seq) {
      progress = true;
      rc.state = "acked";
      rc.acked_at = first_at(a.agent_id, "a");
    }
    out.push_back(std::move(rc));
  }
  // A fetched or acked state may come from a commit not yet durable
  // (PostgreSQL): shown only once it is, as messages are.
  if (progress) AwaitDurable(*r);
  return out;
}

// --- retention ------------------------------------------------------------------------

template <class Conn>
template <class Row, class Delete>
int SqlStore<Conn>::DeleteInParts(const std::vector<Row>& rows, Delete del) {
  int deleted = 0;
  for (std::size_t i = 0; i < rows.size(); i += kSweepDeletesPerOp) {
    const std::size_t end = std::min(rows.size(), i + kSweepDeletesPerOp);
    int part = 0;
    writer_->Run([&](Conn& c) {  // may run again after a conflict: counts afresh
      part = 0;
      for (std::size_t k = i; k < end; ++k) part += del(c, rows[k]);
    });
    deleted += part;
  }
  return deleted;
}

template <class Conn>
SweepResult SqlStore<Conn>::Sweep(Millis now, Millis agent_ttl, Millis acked_grace) {
  // Which messages and watermarks may go is found on a reader, outside the
  // writer: no index dates them, so finding them reads the whole table (a
  // large history takes a fraction of a second), and the writer's sends
  // must not wait for that. The writer then deletes them by key, in short
  // operations, each checking again that its row may still go.
  SweepResult result;
  writer_->Run([&](Conn& c) {
    result.agents_removed =
        c.Prepare("DELETE FROM agents WHERE last_seen < ?1").Bind(1, now - agent_ttl).Run();
  });
  // Direct messages: purged once the recipient acknowledged them or is gone.
  // Broadcasts: purged once no recipient still lacks them.
  static constexpr const char* kDirectPurgeable =
      "to_agent <> 'all' AND created_at < ?1"
      " AND NOT EXISTS (SELECT 1 FROM agents a WHERE a.id = messages.to_agent"
      "   AND a.acked_seq < messages.seq)";
  static constexpr const char* kBroadcastPurgeable =
      "to_agent = 'all' AND created_at < ?1"
      " AND NOT EXISTS (SELECT 1 FROM agents a WHERE a.mesh_id = messages.mesh_id"
      "   AND a.id <> messages.from_agent AND a.start_seq < messages.seq"
      "   AND a.acked_seq < messages.seq)";
  const Millis message_cutoff = now - acked_grace;
  const std::string select_messages = std::string("SELECT mesh_id, seq FROM messages WHERE (") +
                                      kDirectPurgeable + ") OR (" + kBroadcastPurgeable + ") LIMIT " +
                                      std::to_string(kSweepRowsPerRun);
  const std::string delete_message = std::string("DELETE FROM messages WHERE mesh_id = ?2 AND seq = ?3 AND ((") +
                                     kDirectPurgeable + ") OR (" + kBroadcastPurgeable + "))";
  auto messages = ReadRows(
      select_messages.c_str(), [](const auto& st) { return std::make_pair(st.Text(0), st.Int(1)); },
      message_cutoff);
  result.messages_purged = DeleteInParts(messages, [&](Conn& c, const auto& m) {
    return c.Prepare(delete_message.c_str()).Bind(1, message_cutoff).Bind(2, m.first).Bind(3, m.second).Run();
  });
  // Watermark history older than the agent TTL no longer dates anything retained.
  const Millis mark_cutoff = now - agent_ttl;
  auto marks = ReadRows(
      ("SELECT agent_id, kind, seq FROM watermarks WHERE at < ?1 LIMIT " + std::to_string(kSweepRowsPerRun)).c_str(),
      [](const auto& st) { return std::make_tuple(st.Text(0), st.Text(1), st.Int(2)); }, mark_cutoff);
  DeleteInParts(marks, [&](Conn& c, const auto& m) {
    return c.Prepare("DELETE FROM watermarks WHERE agent_id = ?1 AND kind = ?2 AND seq = ?3 AND at < ?4")
        .Bind(1, std::get<0>(m))
        .Bind(2, std::get<1>(m))
        .Bind(3, std::get<2>(m))
        .Bind(4, mark_cutoff)
        .Run();
  });
  return result;
}

}  // namespace meshwire
