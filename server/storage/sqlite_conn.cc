#include "server/storage/sqlite_conn.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <atomic>

#include "schemas/error.h"
#include "server/storage/sqlite_wal_vfs.h"

namespace meshwire {

namespace {

/// A damaged file: no retry helps, and its operator must hear of it (once a
/// process: every request that reads the damaged pages fails the same way).
Error Damaged(const std::string& detail) {
  static std::atomic<bool> logged{false};
  const std::string sentence = "The relay's database is damaged (" + detail +
                               "); the request had no effect. Its operator must restore it from a backup "
                               "(or recover what is readable with `sqlite3 FILE .recover`).";
  if (!logged.exchange(true)) spdlog::error("{}", sentence);
  return Error(500, "storage_damaged", sentence);
}

bool IsDamage(int rc) {
  return (rc & 0xff) == SQLITE_CORRUPT || (rc & 0xff) == SQLITE_NOTADB;
}

[[noreturn]] void Fail(sqlite3* db, const char* what) {
  std::string detail = db ? sqlite3_errmsg(db) : "out of memory";
  if (db && IsDamage(sqlite3_extended_errcode(db))) throw Damaged(std::string(what) + ": " + detail);
  throw Error::Unavailable(std::string("Storage error (") + what + ": " + detail +
                           "); the request had no effect, retry shortly.");
}

void Check(sqlite3* db, int rc, const char* what) {
  if (rc != SQLITE_OK) Fail(db, what);
}

}  // namespace

SqliteStatement::~SqliteStatement() {
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
}

SqliteStatement& SqliteStatement::Bind(int index, std::int64_t value) {
  Check(db_, sqlite3_bind_int64(stmt_, index, value), "bind");
  return *this;
}

SqliteStatement& SqliteStatement::Bind(int index, std::string_view value) {
  Check(db_, sqlite3_bind_text(stmt_, index, value.data(), static_cast<int>(value.size()),
                               SQLITE_TRANSIENT),
        "bind");
  return *this;
}

SqliteStatement& SqliteStatement::BindStatic(int index, std::string_view value) {
  Check(db_, sqlite3_bind_text(stmt_, index, value.data(), static_cast<int>(value.size()), SQLITE_STATIC),
        "bind");
  return *this;
}

SqliteStatement& SqliteStatement::BindStatic(int index, const std::optional<std::string>& value) {
  return value ? BindStatic(index, std::string_view(*value)) : BindNull(index);
}

SqliteStatement& SqliteStatement::Bind(int index, const std::optional<std::string>& value) {
  return value ? Bind(index, std::string_view(*value)) : BindNull(index);
}

SqliteStatement& SqliteStatement::Bind(int index, const std::optional<std::int64_t>& value) {
  return value ? Bind(index, *value) : BindNull(index);
}

SqliteStatement& SqliteStatement::BindNull(int index) {
  Check(db_, sqlite3_bind_null(stmt_, index), "bind");
  return *this;
}

bool SqliteStatement::Step() {
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  Fail(db_, "step");
}

int SqliteStatement::Run() {
  while (Step()) {
  }
  return sqlite3_changes(db_);
}

std::int64_t SqliteStatement::Int(int column) const { return sqlite3_column_int64(stmt_, column); }

std::string SqliteStatement::Text(int column) const {
  const auto* p = sqlite3_column_text(stmt_, column);
  int n = sqlite3_column_bytes(stmt_, column);
  return p ? std::string(reinterpret_cast<const char*>(p), static_cast<size_t>(n)) : std::string();
}

std::optional<std::string> SqliteStatement::OptText(int column) const {
  if (sqlite3_column_type(stmt_, column) == SQLITE_NULL) return std::nullopt;
  return Text(column);
}

std::optional<std::int64_t> SqliteStatement::OptInt(int column) const {
  if (sqlite3_column_type(stmt_, column) == SQLITE_NULL) return std::nullopt;
  return Int(column);
}

namespace {
}  // namespace

void ConfigureSqliteOnce() {
  static const bool configured = [] {
    // sqlite3_config fails (SQLITE_MISUSE) once SQLite has started: said,
    // as a caller that opened a database first would lose these silently.
    const bool set = sqlite3_config(SQLITE_CONFIG_MULTITHREAD) == SQLITE_OK &&
                     sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0) == SQLITE_OK;
    if (!set) spdlog::warn("SQLite had started before its configuration: it runs serialized, more slowly");
    return sqlite3_initialize() == SQLITE_OK;
  }();
  (void)configured;
}

SqliteConnection::SqliteConnection(const std::string& path) {
  ConfigureSqliteOnce();
  int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
  // The WAL's writes gathered into one per commit (sqlite_wal_vfs.h): safe
  // because every connection syncs each commit (synchronous=FULL, below).
  // A new database is private to its user (SQLite would make it 0644, and
  // its -wal and -shm files take the database's mode): messages and token
  // hashes are not for every local user to read.
  if (path != ":memory:" && !path.empty()) {
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd >= 0) ::close(fd);  // else it exists already (or the open below says why not)
  }
  int rc = sqlite3_open_v2(path.c_str(), &db_, flags, GatheringWalVfs());
  if (rc != SQLITE_OK) {
    std::string detail = db_ ? sqlite3_errmsg(db_) : "out of memory";
    sqlite3_close(db_);
    db_ = nullptr;
    throw Error::Unavailable("Cannot open the database " + path + " (" + detail +
                             "); check that its folder exists and is writable.");
  }
  if (sqlite3_db_readonly(db_, "main") == 1) {  // SQLite falls back to read-only without a word
    sqlite3_close(db_);
    db_ = nullptr;
    throw Error::Unavailable("The database " + path + " is read-only for this user; give it (and its folder) "
                             "write permission, or choose another --storage.");
  }
  sqlite3_busy_timeout(db_, 5000);
  // The first read of the file: one that is not a database says so here
  // (not "retry shortly", which cannot help).
  if (sqlite3_exec(db_, "PRAGMA journal_mode=WAL", nullptr, nullptr, nullptr) == SQLITE_NOTADB) {
    sqlite3_close(db_);
    db_ = nullptr;
    throw Error::Unavailable("The file " + path + " is not a SQLite database (nor one meshwire made); move it "
                             "away, or choose another file (--storage, or admin migrate's --from).");
  }
  Exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;");
  auto sync = Prepare("PRAGMA synchronous");
  if (!sync.Step() || sync.Int(0) != 2) Fail(db_, "PRAGMA synchronous=FULL did not take");
}

// Dropped before anything can read the WAL (and so write them): BEGIN's
// read transaction, ROLLBACK's reload of the pages it undoes. Neither writes
// to the WAL itself.
void SqliteConnection::Begin() {
  DropUnwrittenWal(db_);
  Prepare("BEGIN IMMEDIATE").Run();
}

void SqliteConnection::Rollback() {
  DropUnwrittenWal(db_);
  Exec("ROLLBACK");
}

SqliteConnection::~SqliteConnection() {
  for (auto& [sql, stmt] : cache_) sqlite3_finalize(stmt);
  sqlite3_close(db_);
}

SqliteStatement SqliteConnection::Prepare(const char* sql) {
  auto it = cache_.find(sql);
  sqlite3_stmt* stmt = nullptr;
  if (it == cache_.end()) {
    Check(db_, sqlite3_prepare_v3(db_, sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt, nullptr),
          "prepare");
    cache_.emplace(sql, stmt);
  } else {
    stmt = it->second;
  }
  return SqliteStatement(db_, stmt);
}

void SqliteConnection::Exec(const char* sql) {
  char* err = nullptr;
  if (const int rc = sqlite3_exec(db_, sql, nullptr, nullptr, &err); rc != SQLITE_OK) {
    std::string detail = err ? err : "unknown error";
    sqlite3_free(err);
    if (IsDamage(rc)) throw Damaged(detail);
    throw Error::Unavailable("Storage error (" + detail + "); retry shortly.");
  }
}

}  // namespace meshwire
