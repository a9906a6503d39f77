// A thin RAII layer over one sqlite3 connection: cached prepared statements,
// typed binds and columns, errors as meshwire::Error 503. Used only by
// SqliteStore; a connection is used by one thread at a time.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

struct sqlite3;
struct sqlite3_stmt;

namespace meshwire {

/// Once per process, before SQLite opens any database (every open of one,
/// ours or a raw sqlite3_open_v2, starts it): connections are never shared
/// between threads (so no per-connection mutex), and no global memory
/// statistics (their mutex would serialize every allocation of every thread).
void ConfigureSqliteOnce();


/// A cached statement in use. Resetting it when it goes out of scope ends its
/// read snapshot, so a statement left half-stepped never pins old data.
class SqliteStatement {
 public:
  SqliteStatement(sqlite3* db, sqlite3_stmt* stmt) : db_(db), stmt_(stmt) {}
  ~SqliteStatement();
  SqliteStatement(const SqliteStatement&) = delete;
  SqliteStatement& operator=(const SqliteStatement&) = delete;

  SqliteStatement& Bind(int index, std::int64_t value);
  SqliteStatement& Bind(int index, std::string_view value);
  SqliteStatement& Bind(int index, const std::string& value) { return Bind(index, std::string_view(value)); }
  SqliteStatement& Bind(int index, const char* value) { return Bind(index, std::string_view(value)); }
  SqliteStatement& Bind(int index, const std::optional<std::string>& value);
  SqliteStatement& Bind(int index, const std::optional<std::int64_t>& value);
  SqliteStatement& BindNull(int index);
  /// As Bind, without SQLite's copy: `value` must stay alive and unchanged
  /// until this statement is done (stepped, then reset when it goes out of
  /// scope). For the writer's hot inserts.
  SqliteStatement& BindStatic(int index, std::string_view value);
  SqliteStatement& BindStatic(int index, const std::string& value) {
    return BindStatic(index, std::string_view(value));
  }
  SqliteStatement& BindStatic(int index, const std::optional<std::string>& value);

  /// Steps once: true when a row is ready, false when done. Throws on error.
  bool Step();
  /// Steps to completion; returns the number of rows changed.
  int Run();

  std::int64_t Int(int column) const;
  std::string Text(int column) const;
  std::optional<std::string> OptText(int column) const;
  std::optional<std::int64_t> OptInt(int column) const;

 private:
  sqlite3* db_;
  sqlite3_stmt* stmt_;
};

class SqliteConnection {
 public:
  /// Opens (creating if needed) the database at `path` with WAL,
  /// synchronous=FULL, foreign keys and a busy timeout.
  explicit SqliteConnection(const std::string& path);
  ~SqliteConnection();
  SqliteConnection(const SqliteConnection&) = delete;
  SqliteConnection& operator=(const SqliteConnection&) = delete;

  /// A prepared statement for `sql`, cached for the connection's life and
  /// reset with its bindings cleared.
  SqliteStatement Prepare(const char* sql);
  /// Runs one or more statements without results.
  void Exec(const char* sql);
  /// The BatchWriter's transaction (BEGIN IMMEDIATE: the write lock at once).
  /// BEGIN IMMEDIATE; COMMIT; ROLLBACK. Begin and Rollback also drop WAL
  /// writes of a transaction that did not commit (sqlite_wal_vfs.h).
  void Begin();
  void Commit() { Prepare("COMMIT").Run(); }
  void Rollback();

  sqlite3* raw() const { return db_; }

 private:
  sqlite3* db_ = nullptr;
  std::unordered_map<std::string, sqlite3_stmt*> cache_;
};

}  // namespace meshwire
