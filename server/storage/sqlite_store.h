// The embedded Store: one SQLite file in WAL mode with synchronous=FULL.
// Writes go through one SqliteWriter (group commit); reads use a pool of
// their own connections, which WAL lets run beside the writer. Fetched marks
// (advisory, many at once when a broadcast wakes thousands of polls) are
// gathered in memory and written in one operation.
#pragma once

#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "server/core/store.h"

namespace meshwire {

class SqliteConnection;
class SqliteWriter;

class SqliteStore final : public Store {
 public:
  /// The schema version this build writes. Opening a database of an older
  /// version migrates it in one transaction; a newer one is refused.
  static constexpr int kSchemaVersion = 1;

  /// Opens or creates the database at `path` (its folder must exist).
  /// Throws Error 503 with a sentence naming the path when it cannot.
  explicit SqliteStore(const std::string& path);
  /// Commits what the writer has queued, then closes every connection.
  ~SqliteStore() override;

  std::string Kind() const override { return "sqlite"; }
  void SetCommitListener(CommitListener listener) override { listener_ = std::move(listener); }

  void EnsureUser(const std::string& user, Millis now) override;
  bool UserExists(const std::string& user) override;
  Token CreateToken(const NewToken& token) override;
  std::optional<Token> FindTokenByHash(const std::string& secret_sha256) override;
  std::vector<Token> ListTokens(const std::string& user) override;
  bool RevokeToken(const std::string& user, const std::string& id) override;
  void TouchToken(const std::string& id, Millis now) override;

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
  std::optional<Message> FindMessage(const std::string& mesh_id, const std::string& id) override;
  void AdvanceCursor(const std::string& agent_id, std::int64_t acked, std::int64_t fetched,
                     Millis now) override;
  std::vector<Receipt> Receipts(const Message& message) override;

  SweepResult Sweep(Millis now, Millis agent_ttl, Millis acked_grace) override;

 private:
  class ReadLease;  // borrows a reader connection for one call
  ReadLease Reader();
  void ReturnReader(std::unique_ptr<SqliteConnection> conn);

  /// Writes the fetched marks gathered so far (a writer op); `wait`: return
  /// after its commit.
  void FlushFetched(bool wait);

  std::string path_;
  CommitListener listener_;
  std::unique_ptr<SqliteWriter> writer_;

  struct Mark {
    std::int64_t seq = 0;
    Millis at = 0;
  };
  std::mutex fetched_mu_;
  std::unordered_map<std::string, Mark> fetched_;  // agent id -> highest; guarded by fetched_mu_
  bool flush_queued_ = false;                      // guarded by fetched_mu_

  // At most kMaxReaders connections: thousands of woken long-polls share a
  // few connections (and their page caches) instead of opening one each.
  // More than the relay's default workers plus event loops, so an event loop
  // (the send route reads on a cache miss) rarely waits for one.
  static constexpr std::size_t kMaxReaders = 40;
  std::mutex readers_mu_;
  std::condition_variable reader_free_;
  std::vector<std::unique_ptr<SqliteConnection>> idle_readers_;  // guarded by readers_mu_
  std::size_t open_readers_ = 0;                                 // guarded by readers_mu_
};

}  // namespace meshwire
