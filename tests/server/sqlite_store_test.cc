// The Store conformance suite on SqliteStore, and what only SQLite has
// (schema versions).
#include <sqlite3.h>
#include <sys/stat.h>

#include <chrono>
#include <fstream>
#include <future>

#include "schemas/error.h"
#include "server/storage/sqlite_store.h"
#include "server/storage/sqlite_wake_bus.h"
#include "server/storage/sqlite_wal_vfs.h"
#include "server/storage/store_factory.h"
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

namespace {
/// Commits a change to `path` from a connection of its own, as `meshwire admin` does.
void CommitElsewhere(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
  REQUIRE(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr) == SQLITE_OK);
  sqlite3_close(db);
}
}  // namespace

TEST_CASE("sqlite: another process's commit moves OutsideChanges; the store's own writes and reads do not") {
  TempDir dir;
  std::string path = dir / "relay.db";
  SqliteStore store(path);
  const auto before = store.OutsideChanges();
  store.CreateToken({"tok_1", "alice", "laptop", Sha256Hex("mw_1"), std::nullopt, 10});
  CHECK(store.FindTokenByHash(Sha256Hex("mw_1")));
  CHECK(store.OutsideChanges() == before);
  CommitElsewhere(path, "DELETE FROM tokens WHERE id = 'tok_1'");
  const auto after = store.OutsideChanges();
  CHECK(after != before);
  CHECK(store.OutsideChanges() == after);
}

TEST_CASE("sqlite: the wake-up bus tells its subscribers of another process's commit (an access change)") {
  TempDir dir;
  std::string path = dir / "relay.db";
  SqliteStore store(path);
  SqliteWakeBus bus(store, std::chrono::milliseconds(10));
  auto told = std::make_shared<std::promise<void>>();
  auto once = std::make_shared<std::once_flag>();
  bus.Subscribe([told, once](const WakeEvent& e) {
    if (e.kind == WakeEvent::Kind::kAccessChanged) std::call_once(*once, [&] { told->set_value(); });
  });
  auto future = told->get_future();
  // The store's own writes are no news.
  store.EnsureUser("alice", 10);
  CHECK(future.wait_for(std::chrono::milliseconds(100)) == std::future_status::timeout);
  // Commits elsewhere until one is told (the watch's first look, its starting
  // count, may come late on a busy machine), at most for 10 s.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  for (int n = 0; future.wait_for(std::chrono::milliseconds(50)) != std::future_status::ready &&
                  std::chrono::steady_clock::now() < deadline;
       ++n) {
    CommitElsewhere(path, "INSERT INTO users(name, created_at) VALUES ('bob" + std::to_string(n) + "', 20)");
  }
  CHECK(future.wait_for(std::chrono::seconds(0)) == std::future_status::ready);
}

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

TEST_CASE("sqlite: a new database and its -wal and -shm are private to their user (0600)") {
  TempDir dir;
  const std::string path = dir / "relay.db";
  const mode_t old_umask = ::umask(022);
  {
    SqliteStore store(path);
    store.EnsureUser("alice", 1);  // a write: the -wal and -shm exist now
    for (const std::string& file : {path, path + "-wal", path + "-shm"}) {
      CAPTURE(file);
      struct stat st {};
      REQUIRE(::stat(file.c_str(), &st) == 0);
      CHECK((st.st_mode & 0777) == 0600);
    }
  }
  ::umask(old_umask);
}

TEST_CASE("sqlite: a file that is not a database is a clear error, not \"retry shortly\"") {
  TempDir dir;
  const std::string path = dir / "notes.txt";
  std::ofstream(path) << "these are not the rows you are looking for, and there are enough of them to fill a header\n";
  try {
    SqliteStore store(path);
    FAIL("opened");
  } catch (const Error& e) {
    const std::string what = e.what();
    CHECK(what.find("is not a SQLite database") != std::string::npos);
    CHECK(what.find(path) != std::string::npos);
    CHECK(what.find("retry") == std::string::npos);
  }
}

TEST_CASE("sqlite: a damaged database is a 500 storage_damaged that says to restore it, not \"retry shortly\"") {
  TempDir dir;
  const std::string path = dir / "relay.db";
  std::string mesh_id;
  {
    SqliteStore store(path);
    Mesh m = MakeMesh(store, "alice");
    mesh_id = m.mesh_id;
    Agent a = MakeAgent(store, m, "a");
    for (int i = 0; i < 1500; ++i) Put(store, m, a, "all", std::string(300, 'x') + std::to_string(i));
  }  // closed: the WAL checkpointed into the file
  {
    // Garbage over pages 20 to 59 (4 KiB each), as a failing disk would leave.
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(20 * 4096);
    for (int i = 0; i < 40 * 4096; ++i) f.put(static_cast<char>((i * 7919 + 13) & 0xff));
  }
  SqliteStore store(path);
  try {
    for (std::int64_t after = 0; after < 1500; after += 500) store.History(mesh_id, after, 500);
    FAIL("read the damaged pages");
  } catch (const Error& e) {
    CHECK(e.status() == 500);
    CHECK(e.code() == "storage_damaged");
    const std::string what = e.what();
    CHECK(what.find("The relay's database is damaged (") == 0);
    CHECK(what.find("restore it from a backup") != std::string::npos);
    CHECK(what.find("retry") == std::string::npos);
  }
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

TEST_CASE("sqlite: with the WAL's writes gathered, each commit is read at once elsewhere; a rollback or spill leaves none") {
  TempDir dir;
  const std::string path = dir / "wal.db";
  SqliteConnection writer(path);
  REQUIRE(GatheringWalVfs() != nullptr);
  writer.Exec("PRAGMA cache_size = 8");  // 8 pages: big transactions spill frames before their commit
  writer.Exec("CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT NOT NULL)");
  SqliteConnection other(path);  // a second writer (another process, a CLI command, in life)
  SqliteConnection reader(path);
  auto count = [](SqliteConnection& c) {
    auto s = c.Prepare("SELECT count(*), coalesce(sum(length(v)), 0) FROM t");
    REQUIRE(s.Step());
    return std::make_pair(s.Int(0), s.Int(1));
  };
  auto insert = [](SqliteConnection& c, std::int64_t k, std::size_t size) {
    c.Prepare("INSERT INTO t (k, v) VALUES (?1, ?2)").Bind(1, k).Bind(2, std::string(size, 'a' + k % 26)).Run();
  };
  std::int64_t rows = 0;
  std::int64_t bytes = 0;
  std::int64_t next = 1;
  for (int tx = 0; tx < 60; ++tx) {
    const int n = tx % 10 == 9 || tx % 7 == 3 ? 300 : 1 + tx % 4;  // spills, some of them rolled back
    writer.Begin();
    for (int i = 0; i < n; ++i, ++next) insert(writer, next, 100 + static_cast<std::size_t>(next % 3000));
    if (tx % 7 == 3) {
      writer.Rollback();  // never seen, its frames never published nor written over others'
      next -= n;
      // Another writer commits where the rolled-back frames were.
      other.Begin();
      insert(other, next, 500);
      other.Commit();
      rows += 1;
      bytes += 500;
      ++next;
    } else {
      writer.Commit();
      rows += n;
      for (std::int64_t k = next - n; k < next; ++k) bytes += 100 + k % 3000;
    }
    CAPTURE(tx);
    CHECK(count(reader) == std::make_pair(rows, bytes));  // another connection, right after the COMMIT
    if (tx == 30) writer.Exec("PRAGMA wal_checkpoint(TRUNCATE)");  // the WAL starts over
  }
  // Every frame's bytes are on disk: a new connection (and SQLite's own
  // integrity check) reads what was committed, after a checkpoint too.
  SqliteConnection reopened(path);
  CHECK(count(reopened) == std::make_pair(rows, bytes));
  {
    auto check = reopened.Prepare("PRAGMA integrity_check");
    REQUIRE(check.Step());
    CHECK(check.Text(0) == "ok");
  }
  reopened.Exec("PRAGMA wal_checkpoint(TRUNCATE)");
  CHECK(count(reopened) == std::make_pair(rows, bytes));
}

TEST_CASE("store factory: a storage of no kind meshwire has is refused before anything is created") {
  TempDir dir;
  // Back to where it was however the checks end, before dir goes.
  std::shared_ptr<void> back(nullptr, [cwd = std::filesystem::current_path()](void*) {
    std::filesystem::current_path(cwd);
  });
  std::filesystem::current_path(dir.path());
  // The sentence OpenStore refuses `spec` with (a 400), or "opened".
  auto refusal = [](const std::string& spec) -> std::string {
    try {
      OpenStore(spec);
    } catch (const Error& e) {
      CHECK(e.status() == 400);
      return e.what();
    }
    return "opened";
  };
  CHECK(refusal("bogus:x").find("write sqlite:bogus:x") != std::string::npos);
  CHECK_FALSE(std::filesystem::exists("bogus:x"));
  const std::string mysql = refusal("mysql://u:secret@h/db");
  CHECK(mysql.find("nothing else") != std::string::npos);
  CHECK(mysql.find("secret") == std::string::npos);
  back.reset();
  CHECK(StorageSpecProblem("bogus:x").find("nothing else") != std::string::npos);
  for (const char* upper : {"SQLITE:x.db", "Postgres://u:secret@h/db", "POSTGRESQL://h/db"}) {
    CAPTURE(std::string(upper));
    const std::string problem = StorageSpecProblem(upper);
    CHECK(problem.find("write its scheme in lower case") != std::string::npos);
    CHECK(problem.find("secret") == std::string::npos);
  }
  // A URL's "//" missing: said so, not that the scheme is in upper case.
  for (const char* half : {"postgres:", "postgres:relay", "postgres:/relay", "postgresql:", "POSTGRES:relay"}) {
    CAPTURE(std::string(half));
    const std::string problem = StorageSpecProblem(half);
    CHECK(problem.find("a PostgreSQL URL starts with") != std::string::npos);
    CHECK(problem.find("lower case") == std::string::npos);
  }
  for (const char* fine : {"relay.db", "/srv/a:b.db", "sqlite:a:b.db", "postgres://h/db", "postgresql://h/db"}) {
    CAPTURE(std::string(fine));
    CHECK(StorageSpecProblem(fine).empty());
  }
}
}  // namespace meshwire::testing
