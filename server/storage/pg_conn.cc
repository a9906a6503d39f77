#include "server/storage/pg_conn.h"

#include <libpq-fe.h>
#include <spdlog/spdlog.h>

#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "schemas/error.h"
#include "server/storage/store_factory.h"

namespace meshwire {

namespace {

/// libpq's message on one line, without its trailing newline: its lines
/// ("... failed: Connection refused\n\tIs the server running ...?") joined
/// by one space.
std::string OneLine(const char* text) {
  std::string s;
  for (const char* p = text ? text : ""; *p; ++p) {
    const bool space = *p == '\n' || *p == '\t' || *p == '\r' || *p == ' ';
    if (!space) {
      s.push_back(*p);
    } else if (!s.empty() && s.back() != ' ') {
      s.push_back(' ');
    }
  }
  while (!s.empty() && s.back() == ' ') s.pop_back();
  return s;
}

// NOTICEs ("relation ... already exists, skipping") are the server talking to
// itself: not for the relay's log. One exception is noted: the FATAL error
// a server sends an idle session just before it closes it (a restart,
// pg_terminate_backend), which libpq hands here; `ended` is the connection's
// flag for it.
void NoteFatal(void* ended, const char* message) {
  if (std::strncmp(message, "FATAL", 5) == 0) *static_cast<bool*>(ended) = true;
}

constexpr const char* kAsyncCommit = "SET LOCAL synchronous_commit = off";
// READ COMMITTED whatever the database's default: each statement sees what
// committed before it (the notification after a write sees a node's watch
// written meanwhile: PostgresStore::WriteMessagesStatement).
constexpr const char* kBegin = "BEGIN ISOLATION LEVEL READ COMMITTED";

Error Unavailable(const std::string& detail) {
  return Error::Unavailable("PostgreSQL is unavailable (" + detail + "); retry shortly.");
}

std::atomic<PgConnection::Fault> g_fault{PgConnection::Fault::kNone};

/// Takes the injected fault if it is `fault` (it happens once).
bool TakeFault(PgConnection::Fault fault) {
  auto expected = fault;
  return g_fault.load(std::memory_order_relaxed) == fault &&
         g_fault.compare_exchange_strong(expected, PgConnection::Fault::kNone);
}

/// Opens a session with the relay's defaults for what libpq leaves unbounded,
/// each overridden by the same keyword in the URL (`?connect_timeout=30`):
/// - connect_timeout: libpq waits for ever on a host that takes the TCP
///   connection and never answers; PGCONNECT_TIMEOUT, when set, decides
///   instead. Bounds every reconnection a request makes while the database
///   is away, so that it answers 503 in seconds.
/// - TCP keep-alives and tcp_user_timeout: a database host that disappears
///   without closing its connections (a network cut, a machine that lost its
///   power) is found out in under half a minute instead of the kernel's
///   15 minutes of retransmissions; most of all by the listening connection,
///   which otherwise sits deaf to the other nodes' notifications while its
///   node goes on trusting its caches.
/// None of them applies to a Unix socket.
/// - fallback_application_name meshwire: pg_stat_activity names the relay's
///   sessions (PGAPPNAME or application_name in the URL name them instead).
/// - client_encoding UTF8: meshwire's text is UTF-8; a database in another
///   encoding converts it, and refuses what it cannot hold, instead of
///   storing the bytes as its own characters.
PGconn* Connect(const std::string& conninfo) {
  std::vector<const char*> keys, values;
  const char* timeout = std::getenv("PGCONNECT_TIMEOUT");
  if (!timeout || !*timeout) {
    keys.push_back("connect_timeout");
    values.push_back(PgConnection::kConnectTimeoutSeconds);
  }
  for (auto [key, value] : {std::pair{"keepalives", "1"}, std::pair{"keepalives_idle", "10"},
                            std::pair{"keepalives_interval", "5"}, std::pair{"keepalives_count", "3"},
                            std::pair{"tcp_user_timeout", "25000"}, std::pair{"client_encoding", "UTF8"},
                            std::pair{"fallback_application_name", "meshwire"}}) {
    keys.push_back(key);
    values.push_back(value);
  }
  // Last, and expanded: the URL's own keywords override the defaults above.
  keys.push_back("dbname");
  values.push_back(conninfo.c_str());
  keys.push_back(nullptr);
  values.push_back(nullptr);
  return PQconnectdbParams(keys.data(), values.data(), /*expand_dbname=*/1);
}

/// Microseconds since the epoch: the first transaction number of a
/// connection, so numbers keep increasing across restarts of a node.
std::int64_t EpochMicros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

// --- PgStatement -------------------------------------------------------------

PgStatement::~PgStatement() {
  if (result_) PQclear(result_);
}

PgStatement::PgStatement(PgStatement&& other) noexcept
    : conn_(other.conn_),
      name_(std::move(other.name_)),
      params_(std::move(other.params_)),
      result_(other.result_),
      row_(other.row_),
      executed_(other.executed_) {
  other.result_ = nullptr;
}

PgStatement& PgStatement::Bind(int index, std::int64_t value) {
  return Bind(index, std::optional<std::string>(std::to_string(value)));
}

PgStatement& PgStatement::Bind(int index, std::string_view value) {
  return Bind(index, std::optional<std::string>(std::string(value)));
}

PgStatement& PgStatement::Bind(int index, const std::optional<std::string>& value) {
  if (params_.size() < static_cast<std::size_t>(index)) params_.resize(static_cast<std::size_t>(index));
  params_[static_cast<std::size_t>(index) - 1] = value;
  return *this;
}

PgStatement& PgStatement::Bind(int index, const std::optional<std::int64_t>& value) {
  return value ? Bind(index, *value) : BindNull(index);
}

PgStatement& PgStatement::BindNull(int index) { return Bind(index, std::optional<std::string>()); }

void PgStatement::Execute() {
  executed_ = true;
  result_ = conn_.ExecPrepared(name_, params_);
}

bool PgStatement::Step() {
  if (!executed_) Execute();
  ++row_;
  return row_ < PQntuples(result_);
}

int PgStatement::Run() {
  if (!executed_) Execute();
  const char* n = PQcmdTuples(result_);
  return n && *n ? std::stoi(n) : 0;
}

std::int64_t PgStatement::Int(int column) const {
  return std::stoll(PQgetvalue(result_, row_, column));
}

std::string PgStatement::Text(int column) const {
  return std::string(PQgetvalue(result_, row_, column),
                     static_cast<std::size_t>(PQgetlength(result_, row_, column)));
}

std::optional<std::string> PgStatement::OptText(int column) const {
  if (PQgetisnull(result_, row_, column)) return std::nullopt;
  return Text(column);
}

std::optional<std::int64_t> PgStatement::OptInt(int column) const {
  if (PQgetisnull(result_, row_, column)) return std::nullopt;
  return Int(column);
}

// --- PgConnection --------------------------------------------------------------

PgConnection::PgConnection(std::string conninfo) : conninfo_(std::move(conninfo)) {
  conn_ = Connect(conninfo_);
  if (!conn_ || PQstatus(conn_) != CONNECTION_OK) {
    std::string why = conn_ ? WithoutPassword(OneLine(PQerrorMessage(conn_)), conninfo_) : "out of memory";
    if (conn_) PQfinish(conn_);
    conn_ = nullptr;
    throw Error::Unavailable("Cannot connect to PostgreSQL (" + why +
                             "): check that it is running and that the URL given (--storage, or "
                             "admin migrate's --to; or the PG* variables) names it.");
  }
  PQsetNoticeProcessor(conn_, NoteFatal, &fatal_notice_);
  NoteBackend();
  txn_ = EpochMicros();
}

void PgConnection::InjectFault(Fault fault) { g_fault.store(fault); }

PgConnection::Fault PgConnection::PendingFault() { return g_fault.load(); }

void PgConnection::NoteBackend() { backend_pid_ = PQbackendPID(conn_); }

PgConnection::~PgConnection() {
  if (conn_) PQfinish(conn_);
}

std::string PgConnection::ToDollarParams(std::string_view sql) {
  std::string out;
  out.reserve(sql.size());
  char quote = 0;
  for (std::size_t i = 0; i < sql.size(); ++i) {
    char c = sql[i];
    if (quote) {
      if (c == quote) quote = 0;
    } else if (c == '\'' || c == '"') {
      quote = c;
    } else if (c == '?' && i + 1 < sql.size() && sql[i + 1] >= '0' && sql[i + 1] <= '9') {
      c = '$';
    }
    out += c;
  }
  return out;
}

std::string PgConnection::ArrayLiteral(const std::vector<std::optional<std::string_view>>& values) {
  std::size_t size = 2;
  for (const auto& v : values) size += (v ? v->size() + 3 : 5);
  std::string out;
  out.reserve(size + size / 16);
  out += '{';
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (i > 0) out += ',';
    if (!values[i]) {
      out += "NULL";
      continue;
    }
    out += '"';
    for (char c : *values[i]) {
      if (c == '"' || c == '\\') out += '\\';
      out += c;
    }
    out += '"';
  }
  out += '}';
  return out;
}

void PgConnection::EnsureOpen() {
  // A session the server ended while this connection sat idle (a restart,
  // an administrator's pg_terminate_backend) still says CONNECTION_OK until
  // something is read: looked at before a transaction begins on the server,
  // so that the next request reconnects instead of failing with 503.
  const bool between_transactions = !in_transaction_ || begin_pending_;
  if (PQstatus(conn_) == CONNECTION_OK && !broken_ && !(between_transactions && EndedByServer())) return;
  // Never reconnect inside a transaction once it began on the server: what
  // follows would run outside it.
  if (in_transaction_ && !begin_pending_) throw Unavailable("the connection was lost during a transaction");
  if (never_reconnect_) throw Unavailable("the session was ended by the server");
  PQreset(conn_);
  prepared_.clear();
  fatal_notice_ = false;
  broken_ = false;
  if (PQstatus(conn_) != CONNECTION_OK) throw Unavailable(OneLine(PQerrorMessage(conn_)));
  NoteBackend();
}

void PgConnection::Flush() {
  if (flush_barrier_.empty()) return;
  // Not EnsureOpen: a connection lost since the read must fail the read.
  if (PQstatus(conn_) != CONNECTION_OK || broken_) throw Unavailable("the connection was lost before the flush");
  Check(PQexec(conn_, flush_barrier_.c_str()), "a flush barrier");
}

void PgConnection::Check(pg_result* result, std::string_view what) {
  ExecStatusType status = result ? PQresultStatus(result) : PGRES_FATAL_ERROR;
  if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK) return;
  std::string sqlstate;
  std::string message = OneLine(result ? PQresultErrorMessage(result) : PQerrorMessage(conn_));
  if (result) {
    if (const char* s = PQresultErrorField(result, PG_DIAG_SQLSTATE)) sqlstate = s;
    PQclear(result);
  }
  // The connection is gone, or the server is shutting down or starting.
  if (PQstatus(conn_) != CONNECTION_OK || sqlstate.starts_with("08") || sqlstate == "57P01" ||
      sqlstate == "57P02" || sqlstate == "57P03") {
    throw Unavailable(message.empty() ? std::string(what) : message);
  }
  // What failed, in brief: a schema's DDL is dozens of lines.
  const std::size_t start = std::min(what.find_first_not_of(" \n"), what.size());
  const std::string_view brief = what.substr(start, what.find('\n', start) - start);
  const bool cut = brief.size() > 80 || start + brief.size() < what.size();
  const std::string said = std::string(brief.substr(0, 80)) + (cut ? " ..." : "");
  if (sqlstate == "40P01" || sqlstate == "40001") throw PgConflict(sqlstate, said + ": " + message);
  throw PgError(sqlstate, said + ": " + message);
}

pg_result* PgConnection::ExecPrepared(const std::string& name,
                                      const std::vector<std::optional<std::string>>& params) {
  EnsureOpen();
  if (!prepared_.contains(name)) {
    Check(PQprepare(conn_, name.c_str(), sql_of_.at(name).c_str(), 0, nullptr), "prepare");
    prepared_.emplace(name, true);
  }
  std::vector<const char*> values;
  values.reserve(params.size());
  for (const auto& p : params) values.push_back(p ? p->c_str() : nullptr);
  if (begin_pending_) return BeginAndExecPrepared(name, values);
  pg_result* result = PQexecPrepared(conn_, name.c_str(), static_cast<int>(values.size()),
                                     values.data(), nullptr, nullptr, 0);
  Check(result, "a statement");
  return result;
}

pg_result* PgConnection::BeginAndExecPrepared(const std::string& name, const std::vector<const char*>& values) {
  // The transaction's BEGIN and its first statement in one round trip
  // (libpq's pipeline mode): BEGIN's result, the statement's, then the sync.
  begin_pending_ = false;
  const bool sent = PQenterPipelineMode(conn_) == 1 &&
                    PQsendQueryParams(conn_, kBegin, 0, nullptr, nullptr, nullptr, nullptr, 0) == 1 &&
                    (!commit_without_waiting_ ||
                     PQsendQueryParams(conn_, kAsyncCommit, 0, nullptr, nullptr, nullptr, nullptr, 0) == 1) &&
                    PQsendQueryPrepared(conn_, name.c_str(), static_cast<int>(values.size()), values.data(),
                                        nullptr, nullptr, 0) == 1 &&
                    PQpipelineSync(conn_) == 1;
  pg_result* begin = nullptr;
  pg_result* result = nullptr;
  if (sent) {
    // Each query's result is followed by a null; a lost connection gives
    // nulls (or an error result) early, and the sync never comes.
    begin = PQgetResult(conn_);
    if (begin) PQclear(PQgetResult(conn_));
    if (commit_without_waiting_ && begin) {
      pg_result* set = PQgetResult(conn_);
      if (set) {
        PQclear(PQgetResult(conn_));
        if (PQresultStatus(set) != PGRES_COMMAND_OK && PQresultStatus(begin) == PGRES_COMMAND_OK) {
          PQclear(begin);
          begin = set;  // its error is the one to report
        } else {
          PQclear(set);
        }
      }
    }
    result = PQgetResult(conn_);
    if (result) PQclear(PQgetResult(conn_));
    for (int i = 0; i < 4; ++i) {
      pg_result* sync = PQgetResult(conn_);
      if (!sync) continue;
      const bool done = PQresultStatus(sync) == PGRES_PIPELINE_SYNC;
      PQclear(sync);
      if (done) break;
    }
  }
  const bool left = PQexitPipelineMode(conn_) == 1;
  if (!sent || !left) {
    if (begin) PQclear(begin);
    if (result) PQclear(result);
    std::string why = OneLine(PQerrorMessage(conn_));
    // The session's state is unknown: nothing more on it until the
    // transaction is rolled back; then EnsureOpen starts a new one.
    broken_ = true;
    throw Unavailable(why.empty() ? "a pipelined BEGIN failed" : why);
  }
  try {
    Check(begin, "BEGIN");
  } catch (...) {
    if (result) PQclear(result);
    throw;
  }
  PQclear(begin);
  Check(result, "a statement");
  return result;
}

PgStatement PgConnection::Prepare(const char* sql) {
  auto [it, inserted] = names_.try_emplace(sql, "");
  if (inserted) {
    it->second = "mw" + std::to_string(names_.size());
    sql_of_.emplace(it->second, ToDollarParams(sql));
  }
  return PgStatement(*this, it->second);
}

void PgConnection::Exec(const char* sql) {
  EnsureOpen();
  if (begin_pending_) {
    begin_pending_ = false;
    const std::string with_begin =
        std::string(kBegin) + "; " + (commit_without_waiting_ ? std::string(kAsyncCommit) + "; " : "") + sql;  // one round trip
    Check(PQexec(conn_, with_begin.c_str()), sql);
    return;
  }
  Check(PQexec(conn_, sql), sql);
}

void PgConnection::Begin() {
  before_commit_.clear();
  at_commit_.clear();
  // Sent with the transaction's first statement (one round trip fewer).
  begin_pending_ = true;
  in_transaction_ = true;
}

void PgConnection::AtCommit(PgStatement statement, RowsReader rows, Recover recover, bool marks) {
  if (!commit_without_waiting_ || flush_barrier_.empty()) {
    rows(statement);  // runs it now
    return;
  }
  at_commit_.push_back(Deferred{std::move(statement), std::move(rows), std::move(recover), marks});
}

void PgConnection::Commit() {
  if (begin_pending_ && at_commit_.empty()) {
    in_transaction_ = false;
    begin_pending_ = false;  // nothing ran: nothing to commit
    before_commit_.clear();
    return;
  }
  // The locks go at the COMMIT; the barrier after it returns once the COMMIT
  // is durable too (CommitPipelined).
  if (commit_without_waiting_ && !flush_barrier_.empty()) return CommitPipelined();
  in_transaction_ = false;  // whatever happens, the transaction is over
  std::map<std::string, PgStatement> before = std::move(before_commit_);
  before_commit_.clear();
  // A connection known lost must not reconnect and "commit" outside the
  // transaction: the server dropped it.
  if (PQstatus(conn_) != CONNECTION_OK || broken_) {
    throw Unavailable("the connection was lost during a transaction");
  }
  for (auto& [key, statement] : before) statement.Run();
  Exec("COMMIT");
}

void PgConnection::CommitPipelined() {
  // What is sent, in order; each item's result is read back in the same order.
  enum class Item { kCommand, kPrepare, kDeferred, kCommit, kSync, kBarrier };
  std::vector<Item> items;
  std::vector<Deferred> deferred = std::move(at_commit_);
  std::map<std::string, PgStatement> before = std::move(before_commit_);
  at_commit_.clear();
  before_commit_.clear();
  in_transaction_ = false;  // whatever happens, the transaction is over
  // The marker first (unless a statement of the transaction records it): the
  // transaction's number in this connection's row, so that a new session
  // can tell whether it committed.
  const bool marked = !mark_sql_.empty();
  const std::int64_t txn = ++txn_;
  if (marked && std::none_of(deferred.begin(), deferred.end(), [](const Deferred& d) { return d.marks; })) {
    PgStatement mark = Prepare(mark_sql_.c_str());
    mark.Bind(1, txn);
    std::vector<Deferred> all;  // rebuilt, not inserted into: a PgStatement is not assignable
    all.reserve(deferred.size() + 1);
    all.push_back(Deferred{std::move(mark), [](PgStatement&) {}, [](const std::string&) {}});
    for (auto& d : deferred) all.push_back(std::move(d));
    deferred = std::move(all);
  }
  // Replaced before anything is sent, rather than making the COMMIT's
  // outcome a question.
  if (!broken_ && EndedByServer()) broken_ = true;
  // A connection known lost must not reconnect and "commit" outside the
  // transaction: the server dropped it. (A BEGIN still pending: nothing was
  // sent yet, a fresh session may take it.)
  if (begin_pending_) {
    EnsureOpen();
  } else if (PQstatus(conn_) != CONNECTION_OK || broken_) {
    throw Unavailable("the connection was lost during a transaction");
  }
  std::vector<std::string> newly_prepared;
  // A prepared statement, prepared first in the pipeline if this session has not yet.
  auto send_prepared = [&](const PgStatement& statement, Item item) {
    const std::string& name = statement.name_;
    if (!prepared_.contains(name) &&
        std::find(newly_prepared.begin(), newly_prepared.end(), name) == newly_prepared.end()) {
      items.push_back(Item::kPrepare);
      newly_prepared.push_back(name);
      if (PQsendPrepare(conn_, name.c_str(), sql_of_.at(name).c_str(), 0, nullptr) != 1) return false;
    }
    std::vector<const char*> values;
    values.reserve(statement.params_.size());
    for (const auto& p : statement.params_) values.push_back(p ? p->c_str() : nullptr);
    items.push_back(item);
    return PQsendQueryPrepared(conn_, name.c_str(), static_cast<int>(values.size()), values.data(), nullptr,
                               nullptr, 0) == 1;
  };
  // BEGIN, SET and COMMIT are parsed each time (no plan; and a COMMIT in
  // the bytes is what tests/support/pg_proxy.h recognizes).
  auto send = [&](const char* sql, Item item) {
    items.push_back(item);
    return PQsendQueryParams(conn_, sql, 0, nullptr, nullptr, nullptr, nullptr, 0) == 1;
  };
  if (TakeFault(Fault::kLoseBeforeSending)) ::shutdown(PQsocket(conn_), SHUT_RDWR);
  bool sent = PQenterPipelineMode(conn_) == 1;
  if (sent && begin_pending_) sent = send(kBegin, Item::kCommand) && send(kAsyncCommit, Item::kCommand);
  begin_pending_ = false;
  for (auto& d : deferred) {
    if (!sent) break;
    sent = send_prepared(d.statement, Item::kDeferred);
  }
  for (const auto& [key, statement] : before) {
    if (!sent) break;
    sent = send_prepared(statement, Item::kCommand);
  }
  // COMMIT ends the transaction's part of the pipeline; the barrier after
  // its sync is a transaction of its own, with the server's
  // synchronous_commit: it returns once the COMMIT is durable too.
  sent = sent && send("COMMIT", Item::kCommit) && PQpipelineSync(conn_) == 1;
  if (sent) items.push_back(Item::kSync);
  // The barrier is a query: named, so it is planned once per session.
  sent = sent && send_prepared(Prepare(flush_barrier_.c_str()), Item::kBarrier) && PQpipelineSync(conn_) == 1;
  if (sent) items.push_back(Item::kSync);

  // Read every result (each query's is followed by a null; a sync's is not).
  // A lost connection gives nulls early: bounded, and the session is broken.
  struct Results {
    std::vector<pg_result*> r;
    ~Results() {
      for (pg_result* each : r) PQclear(each);  // PQclear(nullptr) does nothing
    }
  } results{std::vector<pg_result*>(items.size(), nullptr)};
  bool lost = !sent;
  for (std::size_t i = 0; i < items.size() && !lost; ++i) {
    pg_result* r = PQgetResult(conn_);
    if (!r) {
      lost = true;
      break;
    }
    results.r[i] = r;
    if (items[i] == Item::kSync) {
      if (PQresultStatus(r) != PGRES_PIPELINE_SYNC) lost = true;
      continue;
    }
    if (pg_result* extra = PQgetResult(conn_)) {
      PQclear(extra);  // never expected: one result per query
      lost = true;
    }
  }
  if (!lost && TakeFault(Fault::kLoseAnswers)) {
    ::shutdown(PQsocket(conn_), SHUT_RDWR);
    lost = true;  // as if none of the answers had come
    for (pg_result*& r : results.r) {
      PQclear(r);
      r = nullptr;
    }
  }
  const bool left = PQexitPipelineMode(conn_) == 1;
  if (lost || !left) {
    const std::string why = OneLine(PQerrorMessage(conn_));
    broken_ = true;  // its state is unknown: a new session before the next use
    if (!marked) throw Unavailable(why.empty() ? "a pipelined COMMIT failed" : why);
    // The COMMIT may have been applied: learn whether it was.
    spdlog::warn("storage: the connection was lost during a COMMIT ({}); checking whether it took effect",
                 why.empty() ? "no answer" : why);
    std::optional<std::string> marker = ResolveLostCommit(txn);
    if (!marker) {
      spdlog::warn("storage: the lost COMMIT did not take effect; its writes are answered 503");
      throw Unavailable("the connection was lost before the COMMIT took effect; nothing was written");
    }
    if (std::any_of(deferred.begin(), deferred.end(), [](const Deferred& d) { return !d.recover; })) {
      throw Unavailable("the connection was lost after a COMMIT; its results are gone");
    }
    spdlog::warn("storage: the lost COMMIT took effect and is durable; its writes are answered");
    for (const Deferred& d : deferred) d.recover(*marker);
    return;
  }
  // The first failure is the error; the transaction committed only if the
  // COMMIT itself succeeded (after an error it is aborted, then skipped).
  std::optional<std::size_t> failed;
  bool committed = false;
  bool durable = false;
  for (std::size_t i = 0; i < items.size(); ++i) {
    const ExecStatusType status = PQresultStatus(results.r[i]);
    const bool ok = status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK || status == PGRES_PIPELINE_SYNC;
    if (items[i] == Item::kCommit) committed = ok;
    if (items[i] == Item::kBarrier) durable = ok;
    if (!ok && !failed && status != PGRES_PIPELINE_ABORTED) failed = i;
  }
  for (std::size_t i = 0, p = 0; i < items.size(); ++i) {
    if (items[i] != Item::kPrepare) continue;
    if (PQresultStatus(results.r[i]) == PGRES_COMMAND_OK) prepared_.emplace(newly_prepared[p], true);
    ++p;
  }
  if (!committed) {
    // The transaction is left aborted (or was never begun): Rollback ends it.
    in_transaction_ = true;
    pg_result* error = nullptr;
    if (failed) std::swap(error, results.r[*failed]);  // Check frees it
    Check(error, "COMMIT");  // throws: a null or failed result is never OK
  }
  // Committed, but the barrier failed on a session still open (a timeout, a
  // cancel: no crash, the same session): run it again, since the batch did
  // commit. A lost connection: a new session learns whether the commit
  // survived (a database crash before the flush takes it back), else 503.
  for (int attempt = 1; !durable; ++attempt) {
    try {
      Flush();
      durable = true;
    } catch (const PgError& e) {
      // Not rethrown as it is: the batch did commit, and a PgConflict would
      // have BatchWriter run it again.
      if (attempt > 3) throw Unavailable(std::string("a flush barrier after a commit failed: ") + e.what());
      spdlog::warn("storage: a flush barrier after a commit failed ({}); again", e.what());
    } catch (const Error&) {
      if (!marked) throw;
      broken_ = true;
      if (!ResolveLostCommit(txn)) {
        throw Unavailable("the database lost a commit before it was flushed; nothing was written");
      }
      durable = true;  // and the results below are this transaction's
    }
  }
  // Committed and durable: each AtCommit statement's rows to its reader.
  std::size_t k = 0;
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (items[i] != Item::kDeferred) continue;
    PgStatement& st = deferred[k].statement;
    st.result_ = std::exchange(results.r[i], nullptr);
    st.executed_ = true;
    st.row_ = -1;
    deferred[k].rows(st);
    ++k;
  }
}

bool PgConnection::EndedByServer() {
  if (PQstatus(conn_) != CONNECTION_OK) return true;
  pollfd p{PQsocket(conn_), POLLIN | POLLRDHUP, 0};
  if (::poll(&p, 1, 0) <= 0) return false;  // nothing pending: the usual case
  // The server's last words (FATAL) may come a moment before its close.
  return (p.revents & (POLLRDHUP | POLLHUP | POLLERR)) || PQconsumeInput(conn_) == 0 ||
         PQstatus(conn_) != CONNECTION_OK || fatal_notice_;
}

std::optional<std::string> PgConnection::ResolveLostCommit(std::int64_t txn) {
  using Clock = std::chrono::steady_clock;
  const auto deadline = Clock::now() + std::chrono::seconds(kResolveSeconds);
  const int old_pid = backend_pid_;
  std::string why;
  for (;;) {
    try {
      in_transaction_ = false;
      begin_pending_ = false;
      broken_ = true;
      EnsureOpen();  // a new session (and a new backend_pid_)
      // The old session's server process may still be running what it was
      // sent: end it and wait until it is gone, so its transaction has
      // committed by now or never will.
      const std::string old = std::to_string(old_pid);
      const std::string alive = " FROM pg_stat_activity WHERE pid = " + old +
                                " AND pid <> pg_backend_pid() AND usename = current_user";
      Exec(("SELECT pg_terminate_backend(pid)" + alive).c_str());
      for (;;) {
        auto s = Prepare(("SELECT count(*)" + alive).c_str());
        if (!s.Step() || s.Int(0) == 0) break;
        if (Clock::now() > deadline) throw Unavailable("the previous session did not end");
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
      }
      Flush();  // whatever committed is durable now (or was taken back by a crash)
      auto marker = Prepare(read_marker_sql_.c_str());
      if (marker.Step() && marker.Int(0) == txn) return marker.Text(1);
      return std::nullopt;
    } catch (const std::exception& e) {
      why = e.what();
    }
    if (Clock::now() > deadline) {
      spdlog::error("storage: whether a lost COMMIT took effect is unknown ({}); its writes are answered 503", why);
      throw Unavailable("the connection was lost during a COMMIT and the database did not answer for " +
                        std::to_string(kResolveSeconds) +
                        " s: whether it took effect is unknown; a send retried with the same "
                        "idempotency_key is never stored twice");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

void PgConnection::Rollback() {
  in_transaction_ = false;
  before_commit_.clear();
  at_commit_.clear();
  if (begin_pending_) {
    begin_pending_ = false;  // nothing was sent
    return;
  }
  if (broken_) return;  // the next use starts a new session; the server drops the transaction
  if (PQstatus(conn_) != CONNECTION_OK) return;  // the server dropped it already
  Exec("ROLLBACK");
}

}  // namespace meshwire
