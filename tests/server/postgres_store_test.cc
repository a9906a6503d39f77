// The Store conformance suite on PostgresStore, against a throwaway server
// (tests/support/pg_cluster.h), and what only PostgreSQL has. Skipped, with
// the reason, only when PostgreSQL's binaries are not installed.
#include "schemas/error.h"
#include "server/storage/migrate.h"
#include "server/storage/sqlite_store.h"
#include "tests/support/process.h"
#include "tests/support/temp_dir.h"
#include "server/storage/postgres_store.h"
#include "server/storage/store_factory.h"
#include "tests/server/store_conformance.h"
#include "tests/support/pg_cluster.h"

namespace meshwire::testing {

struct PgFixture {
  std::string uri;
  std::unique_ptr<Store> Open() {
    PgCluster* pg = PgCluster::Shared();
    REQUIRE_MESSAGE(pg != nullptr, PgCluster::Missing());
    uri = pg->NewDatabase();
    return std::make_unique<PostgresStore>(uri);
  }
  std::unique_ptr<Store> Reopen() { return std::make_unique<PostgresStore>(uri); }
};

TEST_CASE_TEMPLATE_INVOKE(store_conformance, PgFixture);

TEST_CASE("postgres: the schema version is recorded; a newer one is refused with a sentence") {
  PgCluster* pg = PgCluster::Shared();
  REQUIRE_MESSAGE(pg != nullptr, PgCluster::Missing());
  const std::string uri = pg->NewDatabase();
  { PostgresStore store(uri); }
  { PostgresStore store(uri); }  // reopening migrates nothing
  PgConnection conn(uri);
  {
    auto s = conn.Prepare("SELECT version FROM meshwire_schema");
    REQUIRE(s.Step());
    CHECK(s.Int(0) == PostgresStore::kSchemaVersion);
  }
  conn.Exec("UPDATE meshwire_schema SET version = 99");
  try {
    PostgresStore store(uri);
    FAIL("opened a newer schema");
  } catch (const Error& e) {
    CHECK(e.status() == 503);
    CHECK(std::string(e.what()).find("upgrade meshwire") != std::string::npos);
  }
}

TEST_CASE("postgres: a server that is not there is a 503 with a sentence, no password in it") {
  try {
    PostgresStore store("postgresql://meshwire:secret-pass@/none?host=/nonexistent-meshwire&port=1");
    FAIL("connected");
  } catch (const Error& e) {
    CHECK(e.status() == 503);
    CHECK(std::string(e.what()).find("Cannot connect to PostgreSQL") != std::string::npos);
    CHECK(std::string(e.what()).find("secret-pass") == std::string::npos);
  }
}

TEST_CASE("postgres: the store factory opens postgres:// and postgresql://, and logs no password") {
  PgCluster* pg = PgCluster::Shared();
  REQUIRE_MESSAGE(pg != nullptr, PgCluster::Missing());
  const std::string uri = pg->NewDatabase();
  CHECK(OpenStore(uri)->Kind() == "postgres");
  CHECK(OpenStore("postgres" + uri.substr(uri.find(':')))->Kind() == "postgres");
  CHECK(StorageForDisplay("postgres://bob:s3cr3t@db.example:5432/mesh") == "postgres://bob:***@db.example:5432/mesh");
  CHECK(StorageForDisplay("postgresql://bob@db/mesh") == "postgresql://bob@db/mesh");
  CHECK(StorageForDisplay("sqlite:/var/lib/meshwire/relay.db") == "sqlite:/var/lib/meshwire/relay.db");
}

TEST_CASE("admin migrate: a SQLite relay's data lands in PostgreSQL, counts checked; a second run is refused") {
  PgCluster* pg = PgCluster::Shared();
  REQUIRE_MESSAGE(pg != nullptr, PgCluster::Missing());
  TempDir dir;
  const std::string db = dir / "relay.db";
  Mesh mesh;
  Agent a, b;
  Message direct, broadcast;
  {
    SqliteStore sqlite(db);
    sqlite.CreateToken(NewToken{"tok_1", "alice", "laptop", std::string(64, 'a'), std::nullopt, 500});
    mesh = MakeMesh(sqlite, "alice");
    sqlite.AddMember(mesh.mesh_id, "bob");
    a = MakeAgent(sqlite, mesh, "agent-a");
    b = MakeAgent(sqlite, mesh, "agent-b", 1000, "bob");
    direct = Put(sqlite, mesh, a, b.agent_id, "to b, with 'quotes' and \u00e9");
    broadcast = Put(sqlite, mesh, b, "all", "to everyone");
    sqlite.AdvanceCursor(b.agent_id, direct.seq, direct.seq, 3000);
  }
  const std::string uri = pg->NewDatabase();
  std::vector<std::string> told;
  TableCounts copied = CopySqliteToPostgres(db, uri, [&](const std::string& table, std::int64_t) { told.push_back(table); });
  CHECK(told == std::vector<std::string>{"users", "tokens", "meshes", "members", "agents", "messages", "watermarks"});
  CHECK(copied[5] == std::pair<std::string, std::int64_t>{"messages", 2});

  PostgresStore store(uri);
  auto token = store.FindTokenByHash(std::string(64, 'a'));
  REQUIRE(token);
  CHECK(token->user == "alice");
  CHECK(store.RoleOf(mesh.mesh_id, "bob") == "member");
  auto agent_b = store.FindAgent(mesh.mesh_id, "agent-b");
  REQUIRE(agent_b);
  CHECK(agent_b->acked_seq == direct.seq);
  auto history = store.History(mesh.mesh_id, 0, 10);
  REQUIRE(history.size() == 2);
  CHECK(history[0].content == direct.content);
  CHECK(history[1].to == "all");
  // The next message continues the mesh's seq, as on SQLite.
  CHECK(Put(store, mesh, a, "all", "after the move").seq == broadcast.seq + 1);
  auto receipts = store.Receipts(direct);
  REQUIRE(receipts.size() == 1);
  CHECK(receipts[0].state == "acked");
  CHECK(receipts[0].acked_at == 3000);

  // Through the binary: a non-empty target is refused, and nothing changes.
  CommandResult again = Run({MESHWIRE_BINARY, "admin", "migrate", "--from", "sqlite:" + db, "--to", uri});
  CHECK(again.code == 2);
  CHECK(again.err.find("already holds meshwire data") != std::string::npos);
  CHECK(store.History(mesh.mesh_id, 0, 10).size() == 3);
  // Into an empty database it succeeds and says how much it copied.
  CommandResult fresh = Run({MESHWIRE_BINARY, "admin", "migrate", "--from", "sqlite:" + db, "--to", pg->NewDatabase()});
  CHECK_MESSAGE(fresh.code == 0, fresh.err);
  std::int64_t rows = 0;
  for (const auto& [table, n] : copied) rows += n;
  CHECK(fresh.out.find("Migrated " + std::to_string(rows) + " rows in 7 tables; the counts match.") !=
        std::string::npos);
  CHECK(fresh.err.find("messages") != std::string::npos);
  // A source that is not there: a sentence, exit 2.
  CommandResult missing = Run({MESHWIRE_BINARY, "admin", "migrate", "--from", "sqlite:" + dir / "none.db", "--to", uri});
  CHECK(missing.code == 2);
  CHECK(missing.err.find("There is no SQLite database at") != std::string::npos);
}

TEST_CASE("postgres: ?N parameters become $N, never inside quotes") {
  CHECK(PgConnection::ToDollarParams("SELECT ?1, '?2', \"?3\" WHERE a = ?12") ==
        "SELECT $1, '?2', \"?3\" WHERE a = $12");
}

}  // namespace meshwire::testing
