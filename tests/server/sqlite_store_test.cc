// The Store conformance suite on SqliteStore, and what only SQLite has
// (schema versions).
#include <sqlite3.h>

#include "schemas/error.h"
#include "server/storage/sqlite_store.h"
#include "tests/server/store_conformance.h"
#include "tests/support/temp_dir.h"

namespace meshwire::testing {

struct SqliteFixture {
  TempDir dir;
  std::string path = dir / "relay.db";
  std::unique_ptr<Store> Open() { return std::make_unique<SqliteStore>(path); }
  std::unique_ptr<Store> Reopen() { return Open(); }
};

TEST_CASE_TEMPLATE_INVOKE(store_conformance, SqliteFixture);

TEST_CASE("sqlite: a database from a newer meshwire is refused with a sentence") {
  TempDir dir;
  std::string path = dir / "relay.db";
  { SqliteStore store(path); }
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
  REQUIRE(sqlite3_exec(db, "PRAGMA user_version = 99", nullptr, nullptr, nullptr) == SQLITE_OK);
  sqlite3_close(db);
  try {
    SqliteStore store(path);
    FAIL("opened a newer schema");
  } catch (const Error& e) {
    CHECK(e.status() == 503);
    CHECK(std::string(e.what()).find("upgrade meshwire") != std::string::npos);
  }
}

TEST_CASE("sqlite: the schema version is recorded, and reopening migrates nothing") {
  TempDir dir;
  std::string path = dir / "relay.db";
  { SqliteStore store(path); }
  { SqliteStore store(path); }
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
  sqlite3_stmt* stmt = nullptr;
  sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &stmt, nullptr);
  REQUIRE(sqlite3_step(stmt) == SQLITE_ROW);
  CHECK(sqlite3_column_int(stmt, 0) == SqliteStore::kSchemaVersion);
  sqlite3_finalize(stmt);
  sqlite3_close(db);
}

TEST_CASE("sqlite: a folder that does not exist is a clear error") {
  try {
    SqliteStore store("/nonexistent-folder-meshwire/relay.db");
    FAIL("opened");
  } catch (const Error& e) {
    CHECK(e.status() == 503);
    CHECK(std::string(e.what()).find("/nonexistent-folder-meshwire/relay.db") != std::string::npos);
  }
}

}  // namespace meshwire::testing
