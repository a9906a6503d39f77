// The Store conformance suite on PostgresStore, against a throwaway server
// (tests/support/pg_cluster.h), and what only PostgreSQL has. Skipped, with
// the reason, only when PostgreSQL's binaries are not installed.
#include "schemas/error.h"
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

TEST_CASE("postgres: ?N parameters become $N, never inside quotes") {
  CHECK(PgConnection::ToDollarParams("SELECT ?1, '?2', \"?3\" WHERE a = ?12") ==
        "SELECT $1, '?2', \"?3\" WHERE a = $12");
}

}  // namespace meshwire::testing
