// A thin layer over one libpq connection with the same shape as
// SqliteConnection, so SqlStore runs on both: Prepare(sql) with SQLite-style
// ?N parameters (turned into $N), typed binds and columns, Begin/Commit/
// Rollback. Statements are prepared on the server once per connection.
//
// Errors: the database unreachable, restarting or refusing connections is
// Error 503 "unavailable" (the connection is reset before its next use);
// anything else the server refuses (a constraint, a serialization failure)
// is PgError, which carries the SQLSTATE. A connection is used by one
// thread at a time.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "server/storage/conflict.h"

struct pg_conn;
struct pg_result;

namespace meshwire {

class PgError : public std::runtime_error {
 public:
  PgError(std::string sqlstate, const std::string& message)
      : std::runtime_error(message), sqlstate_(std::move(sqlstate)) {}
  const std::string& sqlstate() const { return sqlstate_; }

 private:
  std::string sqlstate_;
};

/// The server rolled the whole transaction back over a conflict with another
/// (deadlock_detected, serialization_failure): nothing of it was written, and
/// the same transaction run again may succeed.
class PgConflict : public PgError, public TransactionConflict {
 public:
  using PgError::PgError;
};

class PgConnection;

/// One statement's parameters, then its result rows.
class PgStatement {
 public:
  PgStatement(PgConnection& conn, const std::string& name) : conn_(conn), name_(name) {}
  ~PgStatement();
  PgStatement(const PgStatement&) = delete;
  PgStatement& operator=(const PgStatement&) = delete;
  PgStatement(PgStatement&& other) noexcept;

  PgStatement& Bind(int index, std::int64_t value);
  PgStatement& Bind(int index, std::string_view value);
  PgStatement& Bind(int index, const std::string& value) { return Bind(index, std::string_view(value)); }
  PgStatement& Bind(int index, const char* value) { return Bind(index, std::string_view(value)); }
  PgStatement& Bind(int index, const std::optional<std::string>& value);
  PgStatement& Bind(int index, const std::optional<std::int64_t>& value);
  PgStatement& BindNull(int index);

  /// Runs the statement on the first call; true while a row is ready.
  bool Step();
  /// Runs the statement; returns the number of rows changed.
  int Run();
  std::int64_t Int(int column) const;
  std::string Text(int column) const;
  std::optional<std::string> OptText(int column) const;
  std::optional<std::int64_t> OptInt(int column) const;

 private:
  friend class PgConnection;  // AtCommit's statements: run in the COMMIT's pipeline
  void Execute();
  PgConnection& conn_;
  std::string name_;
  std::vector<std::optional<std::string>> params_;
  pg_result* result_ = nullptr;
  int row_ = -1;
  bool executed_ = false;
};

class PgConnection {
 public:
  /// Connects with a libpq connection string or URI (postgres://...);
  /// libpq's PG* environment variables fill what it leaves out. Throws
  /// Error 503 with a sentence when it cannot.
  explicit PgConnection(std::string conninfo);
  ~PgConnection();
  PgConnection(const PgConnection&) = delete;
  PgConnection& operator=(const PgConnection&) = delete;

  /// A session whose state matters beyond one transaction (LISTEN): once
  /// the server ends it, every statement fails (Error 503) instead of
  /// running on a new session silently without that state.
  void NeverReconnect() { never_reconnect_ = true; }

  /// A statement for `sql` (?N parameters), prepared on first use.
  PgStatement Prepare(const char* sql);
  /// Runs one or more statements without parameters or results.
  void Exec(const char* sql);
  /// The BatchWriter's transaction. Rollback after a lost connection is a
  /// no-op (the server has dropped the transaction).
  void Begin();
  void Commit();
  void Rollback();
  /// A statement that, run alone with the session's synchronous_commit (the
  /// server's setting), commits a small write (a WAL record at least) and so
  /// returns only once the WAL is durable past everything committed before
  /// it (PostgresStore::kFlushBarrier).
  void SetFlushBarrier(std::string sql) { flush_barrier_ = std::move(sql); }
  /// Runs the flush barrier: what this connection has seen is durable when
  /// it returns. A lost connection throws, never a reconnect in between (a
  /// crash meanwhile may have taken back what was seen).
  void Flush();
  /// From the next Begin on (needs a flush barrier), transactions run with
  /// synchronous_commit off: the COMMIT releases their locks (the mesh row
  /// that hands out seqs) at once instead of after the WAL flush, and the
  /// flush barrier follows it in the same round trip, so Commit still
  /// returns only once the transaction is durable.
  void CommitWithoutWaiting() { commit_without_waiting_ = true; }
  /// Runs `statement` (prepared and bound, not yet run; its result unread)
  /// just before this transaction's COMMIT, in the same round trip; one
  /// statement per `key` (a later one replaces it). Dropped if the
  /// transaction rolls back.
  void BeforeCommit(const std::string& key, PgStatement statement) {
    before_commit_.erase(key);
    before_commit_.emplace(key, std::move(statement));
  }
  /// Runs `statement` (prepared and bound, not yet run) in the COMMIT's
  /// round trip, before the BeforeCommit statements, in the order given: the
  /// rows it locks (the mesh row) are then held only while the server runs
  /// the rest of the transaction, never across a round trip to the relay.
  /// `rows` reads its result once the transaction is committed and durable,
  /// before Commit returns; if anything in the pipeline fails, Commit throws
  /// and `rows` is not called. Dropped if the transaction rolls back.
  /// Without CommitWithoutWaiting (and a flush barrier) it runs at once.
  /// `recover`, when given, replaces `rows` if the results were lost with
  /// the connection but the transaction is found committed (see
  /// SetCommitMarker): it gets the marker row's text, from which it rebuilds
  /// what the rows would have said. Without it such a commit is a 503.
  /// `marks`: the statement records the commit marker itself (number
  /// marker_number(), as SetCommitMarker's `mark` would), saving the
  /// transaction that statement.
  using RowsReader = std::function<void(PgStatement&)>;
  using Recover = std::function<void(const std::string& marker)>;
  void AtCommit(PgStatement statement, RowsReader rows, Recover recover = nullptr, bool marks = false);
  /// How many AtCommit statements this transaction has so far: the index
  /// the next one gets (a statement that writes to the marker row tags its
  /// part of the text with it).
  std::size_t at_commit_count() const { return at_commit_.size(); }
  /// The number this transaction's commit marker records.
  std::int64_t marker_number() const { return txn_ + 1; }

  /// Makes a COMMIT whose answer was lost decidable (needs a flush barrier
  /// and CommitWithoutWaiting). `mark`, with one parameter (?1, the
  /// transaction's number, increasing across restarts), runs first in each
  /// pipelined COMMIT and records that number in a row of this connection's
  /// own; `read` returns the row's number and text (columns 0 and 1).
  /// If the connection is lost once the COMMIT may have left, Commit opens a
  /// new session, ends the old one (so its transaction has committed or
  /// never will), runs the flush barrier and reads the row: the transaction
  /// committed, and is durable, exactly when the row holds its number. Then
  /// Commit returns (each AtCommit statement's `recover` rebuilds its rows)
  /// or throws Error 503 knowing nothing was written; only when the database
  /// cannot be reached for kResolveSeconds does it throw 503 not knowing.
  void SetCommitMarker(std::string mark, std::string read) {
    mark_sql_ = std::move(mark);
    read_marker_sql_ = std::move(read);
  }
  static constexpr int kResolveSeconds = 5;
  /// How long opening a session may take unless the URL's connect_timeout
  /// or PGCONNECT_TIMEOUT says otherwise (libpq's own default: for ever).
  static constexpr const char* kConnectTimeoutSeconds = "5";

  /// Tests only: the next pipelined COMMIT (of any connection) loses its
  /// connection before anything is sent, or after the server answered
  /// everything but before the answers are read.
  enum class Fault { kNone, kLoseBeforeSending, kLoseAnswers };
  static void InjectFault(Fault fault);
  /// The fault injected and not yet taken.
  static Fault PendingFault();

  /// The libpq connection (LISTEN: its socket and notifications).
  pg_conn* raw() const { return conn_; }

  /// `sql` with ?N turned into $N (outside quotes).
  static std::string ToDollarParams(std::string_view sql);
  /// A text[] parameter's value: {"a","b\"c",NULL} (each element quoted,
  /// its quotes and backslashes escaped; nullopt is NULL).
  static std::string ArrayLiteral(const std::vector<std::optional<std::string_view>>& values);

 private:
  friend class PgStatement;
  /// Reconnects if the connection was lost (then prepared statements are gone).
  void EnsureOpen();
  /// Throws for a failed result (and frees it): Error 503 when the
  /// connection is the cause, else PgError.
  void Check(pg_result* result, std::string_view what);
  pg_result* ExecPrepared(const std::string& name, const std::vector<std::optional<std::string>>& params);
  pg_result* BeginAndExecPrepared(const std::string& name, const std::vector<const char*>& values);
  /// Commit without waiting, then the flush barrier: BEGIN (if still
  /// pending), AtCommit's statements, BeforeCommit's, COMMIT and the barrier
  /// in one pipeline; a barrier that failed on a session still open runs again.
  void CommitPipelined();
  /// After a lost COMMIT (SetCommitMarker): the marker's text if transaction
  /// `txn` committed (it is durable now), nullopt if it did not; Error 503
  /// if that cannot be learned within kResolveSeconds.
  std::optional<std::string> ResolveLostCommit(std::int64_t txn);
  /// The server process of this session (ended before a lost COMMIT is resolved).
  void NoteBackend();
  /// Whether the server ended this session while it was idle (a restart): a
  /// closed socket shows only once read, so this reads what is pending (one
  /// poll of the socket when nothing is).
  bool EndedByServer();

  std::string conninfo_;
  pg_conn* conn_ = nullptr;
  std::unordered_map<std::string, std::string> names_;   // sql -> prepared statement name
  std::unordered_map<std::string, std::string> sql_of_;  // name -> sql with $N
  std::unordered_map<std::string, bool> prepared_;      // names prepared on this session
  bool in_transaction_ = false;
  bool begin_pending_ = false;  // Begin was called; BEGIN goes with the first statement
  bool never_reconnect_ = false;  // NeverReconnect()
  bool fatal_notice_ = false;     // the server said FATAL while the session was idle: it is closing it
  bool broken_ = false;         // a pipeline left the session unusable: refused until Rollback, then reset
  bool commit_without_waiting_ = false;
  std::string flush_barrier_;
  std::map<std::string, PgStatement> before_commit_;  // BeforeCommit's, this transaction
  std::string mark_sql_;         // SetCommitMarker's
  std::string read_marker_sql_;
  std::int64_t txn_ = 0;         // the last transaction number marked
  int backend_pid_ = 0;          // this session's server process
  struct Deferred {
    PgStatement statement;
    RowsReader rows;
    Recover recover;
    bool marks = false;
  };
  std::vector<Deferred> at_commit_;  // AtCommit's, this transaction
};

}  // namespace meshwire
