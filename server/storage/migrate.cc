#include "server/storage/migrate.h"

#include <filesystem>
#include <optional>

#include "schemas/error.h"
#include "server/storage/pg_conn.h"
#include "server/storage/postgres_store.h"
#include "server/storage/sqlite_conn.h"
#include "server/storage/sqlite_store.h"

namespace meshwire {

namespace {

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
                                 const std::function<void(const std::string&, std::int64_t)>& progress) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(sqlite_path, ec)) {
    throw Error::BadRequest("invalid_storage", "There is no SQLite database at " + sqlite_path +
                                                   "; give the relay's file with --from sqlite:PATH.");
  }
  // Opening it as a store checks (and, if old, migrates) its schema.
  { SqliteStore check(sqlite_path); }
  SqliteConnection source(sqlite_path);
  { PostgresStore schema(pg_uri); }  // creates or migrates the target's schema
  PgConnection target(pg_uri);

  std::string held;
  for (const Table& t : Tables()) {
    if (std::int64_t n = Count(target, t.name); n > 0) {
      held += (held.empty() ? "" : ", ") + std::to_string(n) + " " + t.name;
    }
  }
  if (!held.empty()) {
    throw Error::BadRequest("invalid_storage", "The PostgreSQL database already holds meshwire data (" +
                                                   held + "); migrate into an empty database.");
  }

  TableCounts copied;
  source.Exec("BEGIN");  // one snapshot of every table
  target.Begin();
  try {
    for (const Table& t : Tables()) {
      std::string placeholders;
      for (std::size_t i = 1; i <= t.columns.size(); ++i) {
        placeholders += (i > 1 ? ", ?" : "?") + std::to_string(i);
      }
      const std::string insert =
          "INSERT INTO " + std::string(t.name) + "(" + Join(t.columns) + ") VALUES (" + placeholders + ")";
      auto rows = source.Prepare(("SELECT " + Join(t.columns) + " FROM " + t.name).c_str());
      std::int64_t n = 0;
      while (rows.Step()) {
        auto row = target.Prepare(insert.c_str());
        for (std::size_t i = 0; i < t.columns.size(); ++i) {
          row.Bind(static_cast<int>(i) + 1, rows.OptText(static_cast<int>(i)));
        }
        row.Run();
        ++n;
      }
      copied.emplace_back(t.name, n);
      progress(t.name, n);
    }
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
  for (const auto& [table, n] : copied) {
    const std::int64_t there = Count(target, table.c_str());
    if (there != n) {
      throw Error::Unavailable("After copying, PostgreSQL holds " + std::to_string(there) + " " + table +
                               " where " + std::to_string(n) +
                               " were copied; check the target database before using it.");
    }
  }
  return copied;
}

}  // namespace meshwire
