#include "server/storage/migrate.h"

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <sqlite3.h>

#include "schemas/error.h"
#include "server/storage/pg_conn.h"
#include "server/storage/postgres_store.h"
#include "server/storage/sqlite_conn.h"
#include "server/storage/sqlite_store.h"

namespace meshwire {

namespace {

constexpr std::size_t kRowsPerInsert = 200;  // at most 12 columns: 2,400 parameters of 65,535
constexpr std::int64_t kProgressEvery = 20000;

struct Table {
  const char* name;
  std::vector<const char*> columns;
};

// Parents before children (foreign keys); the columns both schemas share.
const std::vector<Table>& Tables() {
  static const std::vector<Table> kTables = {
      {"users", {"name", "created_at"}},
      {"tokens", {"id", "user_name", "name", "secret_sha256", "mesh_id", "created_at", "last_used_at"}},
      {"meshes", {"id", "name", "owner", "created_at", "last_seq", "last_id"}},
      {"members", {"mesh_id", "user_name", "role"}},
      {"agents",
       {"id", "mesh_id", "name", "harness", "owner", "created_at", "last_seen", "start_seq", "acked_seq",
        "fetched_seq"}},
      {"messages",
       {"mesh_id", "seq", "id", "from_agent", "from_name", "to_agent", "to_name", "content", "priority",
        "metadata", "idempotency_key", "created_at"}},
      {"watermarks", {"agent_id", "kind", "seq", "at"}},
  };
  return kTables;
}

std::string Join(const std::vector<const char*>& columns) {
  std::string out;
  for (const char* c : columns) out += (out.empty() ? "" : ", ") + std::string(c);
  return out;
}

template <class Conn>
std::int64_t Count(Conn& conn, const char* table) {
  auto s = conn.Prepare(("SELECT count(*) FROM " + std::string(table)).c_str());
  s.Step();
  return s.Int(0);
}

}  // namespace

TableCounts CopySqliteToPostgres(const std::string& sqlite_path, const std::string& pg_uri,
                                 const std::function<void(const std::string&, std::int64_t, bool)>& progress,
                                 const std::function<bool()>& interrupted) {
  auto stop_if_interrupted = [&] {
    if (interrupted && interrupted()) throw MigrationInterrupted("interrupted");
  };
  std::error_code ec;
  if (!std::filesystem::is_regular_file(sqlite_path, ec)) {
    throw Error::BadRequest("invalid_storage", "There is no SQLite database at " + sqlite_path +
                                                   "; give the relay's file with --from sqlite:PATH.");
  }
  // Only a relay's own database: opening any other SQLite file as a store
  // would write meshwire's tables into it (and switch it to WAL).
  {
    sqlite3* db = nullptr;
    std::int64_t version = 0;
    bool has_messages = false;
    ConfigureSqliteOnce();  // this open starts SQLite
    if (sqlite3_open_v2(sqlite_path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK) {
      sqlite3_stmt* s = nullptr;
      if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &s, nullptr) == SQLITE_OK &&
          sqlite3_step(s) == SQLITE_ROW) {
        version = sqlite3_column_int64(s, 0);
      }
      sqlite3_finalize(s);
      s = nullptr;
      if (sqlite3_prepare_v2(db, "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'messages'", -1, &s,
                             nullptr) == SQLITE_OK) {
        has_messages = sqlite3_step(s) == SQLITE_ROW;
      }
      sqlite3_finalize(s);
    }
    sqlite3_close(db);
    if (version < 1 || !has_messages) {
      throw Error::BadRequest("invalid_storage", sqlite_path + " is not a meshwire relay's database (it has no "
                                                 "meshwire schema); give the file the relay runs on (its --storage).");
    }
  }
  // Opening it as a store checks (and, if old, migrates) its schema.
  { SqliteStore check(sqlite_path); }
  SqliteConnection source(sqlite_path);
  { PostgresStore schema(pg_uri); }  // creates or migrates the target's schema
  PgConnection target(pg_uri);

  TableCounts copied;
  source.Exec("BEGIN");  // one snapshot of every table
  target.Begin();
  try {
    // Two migrations into one database take turns, and the second finds
    // the first's rows: the check and the copy are one transaction.
    target.Exec("SELECT pg_advisory_xact_lock(7420420)");
    std::string held;
    for (const Table& t : Tables()) {
      if (std::int64_t n = Count(target, t.name); n > 0) {
        held += (held.empty() ? "" : ", ") + std::to_string(n) + " " + t.name;
      }
    }
    if (!held.empty()) {
      throw Error::BadRequest("invalid_storage", "The PostgreSQL database already holds meshwire data (" + held +
                                                     "); migrate into an empty database.");
    }
    for (const Table& t : Tables()) {
      const std::size_t width = t.columns.size();
      auto rows = source.Prepare(("SELECT " + Join(t.columns) + " FROM " + t.name).c_str());
      // Rows go kRowsPerInsert to a statement: one round trip each, not one per row.
      std::vector<std::optional<std::string>> values;
      std::int64_t n = 0;
      auto flush = [&] {
        if (values.empty()) return;
        std::string insert = "INSERT INTO " + std::string(t.name) + "(" + Join(t.columns) + ") VALUES ";
        for (std::size_t i = 0; i < values.size(); ++i) {
          insert += (i % width == 0 ? (i ? "), ($" : "($") : ", $") + std::to_string(i + 1);
        }
        auto statement = target.Prepare((insert + ")").c_str());
        for (std::size_t i = 0; i < values.size(); ++i) statement.Bind(static_cast<int>(i) + 1, values[i]);
        statement.Run();
        values.clear();
        stop_if_interrupted();
      };
      while (rows.Step()) {
        for (std::size_t i = 0; i < width; ++i) values.push_back(rows.OptText(static_cast<int>(i)));
        if (++n % kRowsPerInsert != 0) continue;
        flush();
        if (n % kProgressEvery == 0) progress(t.name, n, false);
      }
      flush();
      copied.emplace_back(t.name, n);
      progress(t.name, n, true);
    }
    stop_if_interrupted();
    target.Commit();
    source.Exec("COMMIT");
  } catch (...) {
    try {
      target.Rollback();
    } catch (...) {
      // The first error is the one to report.
    }
    source.Exec("ROLLBACK");
    throw;
  }
  // Committed: from here on an error must not read "nothing was written".
  try {
    for (const auto& [table, n] : copied) {
      const std::int64_t there = Count(target, table.c_str());
      if (there != n) {
        throw Error::Unavailable("After copying, PostgreSQL holds " + std::to_string(there) + " " + table +
                                 " where " + std::to_string(n) +
                                 " were copied; check the target database before using it.");
      }
    }
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    throw Error::Unavailable(std::string("The copy was committed, but checking its counts failed (") + e.what() +
                             "); check the target database before using it.");
  }
  return copied;
}

}  // namespace meshwire
