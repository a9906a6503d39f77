// The Store conformance suite on PostgresStore, against a throwaway server
// (tests/support/pg_cluster.h), and what only PostgreSQL has. Skipped, with
// the reason, only when PostgreSQL's binaries are not installed.
#include <libpq-fe.h>
#include <sqlite3.h>
#include <netinet/in.h>
#include <poll.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cerrno>
#include <csignal>
#include <functional>
#include <future>
#include <mutex>
#include <sstream>
#include <thread>
#include <vector>

#include "schemas/error.h"
#include "server/storage/migrate.h"
#include "server/storage/sqlite_store.h"
#include "tests/support/process.h"
#include "tests/support/temp_dir.h"
#include "server/storage/pg_conn.h"
#include "server/storage/pg_wake_bus.h"
#include "server/storage/postgres_store.h"
#include "server/storage/store_factory.h"
#include "tests/server/store_conformance.h"
#include "tests/support/pg_cluster.h"
#include "tests/support/pg_notifications.h"
#include "tests/support/pg_proxy.h"
#include "tests/support/silent_host.h"

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

TEST_CASE("wake-ups: an access change's notification names whose parked polls it ends, within NOTIFY's 8000 bytes") {
  auto round_trip = [](const WakeEvent::Ended& ended) {
    const std::string words = PgWakeBus::FormatEnded(ended);
    CHECK(words.size() < 8000 - 64);  // room for "ORIGIN N"
    std::istringstream in(words + " x=later-field");
    return PgWakeBus::ParseEnded(in);
  };
  WakeEvent::Ended none = round_trip({});
  CHECK((none.mesh_id.empty() && none.agent_ids.empty() && none.token_id.empty()));
  WakeEvent::Ended mesh = round_trip({.mesh_id = "M1"});
  CHECK(mesh.mesh_id == "M1");
  CHECK(mesh.agent_ids.empty());
  WakeEvent::Ended agents = round_trip({.mesh_id = "M1", .agent_ids = {"A1", "A2"}});
  CHECK(agents.agent_ids == std::vector<std::string>{"A1", "A2"});
  CHECK(round_trip({.token_id = "tok_T"}).token_id == "tok_T");
  // Too many agents for one notification: the whole mesh's polls answer instead.
  WakeEvent::Ended many{.mesh_id = "M1"};
  for (int i = 0; i < 1000; ++i) many.agent_ids.push_back("agent" + std::to_string(100000 + i));
  WakeEvent::Ended whole = round_trip(many);
  CHECK(whole.mesh_id == "M1");
  CHECK(whole.agent_ids.empty());
}

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

TEST_CASE("postgres: a session the server ended while idle is replaced before the next statement, unless it must not be") {
  PgCluster* pg = PgCluster::Shared();
  REQUIRE_MESSAGE(pg != nullptr, PgCluster::Missing());
  const std::string uri = pg->NewDatabase();
  PgConnection admin(uri);
  auto backend = [](PgConnection& c) {
    auto s = c.Prepare("SELECT pg_backend_pid()");
    REQUIRE(s.Step());
    return s.Int(0);
  };
  auto end_session = [&](std::int64_t pid) {
    auto s = admin.Prepare("SELECT pg_terminate_backend(?1::int)");
    s.Bind(1, pid);
    REQUIRE(s.Step());
    // Gone from pg_stat_activity, the server process still has to exit (its
    // last words and the socket's close come then): until the process is
    // gone (reaped by the postmaster; a local server, so its pid is ours to
    // probe), at most 10 s in all.
    for (int i = 0; i < 500; ++i) {
      auto alive = admin.Prepare("SELECT count(*) FROM pg_stat_activity WHERE pid = ?1::int");
      alive.Bind(1, pid);
      REQUIRE(alive.Step());
      if (alive.Int(0) == 0 && kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    FAIL("the session did not end");
  };
  // A pooled connection (a restart, pg_terminate_backend): the next statement
  // runs on a new session, where it was a 503.
  PgConnection pooled(uri);
  const std::int64_t before = backend(pooled);
  end_session(before);
  CHECK(backend(pooled) != before);
  // A listening one: a new session would not be listening; it says so.
  PgConnection listening(uri);
  listening.NeverReconnect();
  end_session(backend(listening));
  auto again = listening.Prepare("SELECT pg_backend_pid()");
  try {
    again.Step();
    FAIL("ran on a new session");
  } catch (const Error& e) {
    CHECK(e.status() == 503);
  }
}

TEST_CASE("postgres: a role that may not create meshwire's tables is told what to grant, and that grant works") {
  PgCluster* pg = PgCluster::Shared();
  REQUIRE_MESSAGE(pg != nullptr, PgCluster::Missing());
  const std::string uri = pg->NewDatabase();
  const std::string database = uri.substr(uri.find("@/") + 2, uri.find('?') - uri.find("@/") - 2);
  PgConnection admin(uri);
  // The URI as another role; and what opening it is refused with.
  const auto as = [&uri](const std::string& role) {
    std::string other = uri;
    return other.replace(other.find("meshwire@"), 9, role + "@");
  };
  const auto refusal = [](const std::string& to) -> Error {
    try {
      PostgresStore store(to);
    } catch (const Error& e) {
      return e;
    }
    FAIL("opened " << to << ", which must be refused");
    return Error(0, "", "");
  };
  admin.Exec("CREATE ROLE weak LOGIN");
  const std::string weak = as("weak");
  const Error cannot_create = refusal(weak);
  CHECK(cannot_create.code() == "storage_permission");
  CHECK(std::string(cannot_create.what()).find("The PostgreSQL role \"weak\" may not create") != std::string::npos);
  CHECK(std::string(cannot_create.what()).find("(permission denied for schema public)") != std::string::npos);
  CHECK(std::string(cannot_create.what()).find("ALTER DATABASE \"" + database + "\" OWNER TO \"weak\";") !=
        std::string::npos);
  admin.Exec(("ALTER DATABASE " + database + " OWNER TO weak").c_str());
  { CHECK(PostgresStore(weak).Kind() == "postgres"); }
  // A role that may use the tables, not create any, opens the database once it is up to date.
  admin.Exec("CREATE ROLE user_only LOGIN");
  PgConnection owner(weak);
  owner.Exec("GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO user_only");
  owner.Exec("GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO user_only");
  PostgresStore store(as("user_only"));
  CHECK(store.Kind() == "postgres");

  // A role that may only read the tables: what to grant (it was the server's
  // "a statement: ERROR: permission denied for table nodes").
  admin.Exec("CREATE ROLE read_only LOGIN");
  owner.Exec("GRANT SELECT ON ALL TABLES IN SCHEMA public TO read_only");
  const Error cannot_write = refusal(as("read_only"));
  CHECK(cannot_write.code() == "storage_permission");
  CHECK(std::string(cannot_write.what()).find("The PostgreSQL role \"read_only\" may not write meshwire's tables") !=
        std::string::npos);
  CHECK(std::string(cannot_write.what()).find("GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO "
                                              "\"read_only\";") != std::string::npos);
  // A database that takes no writes.
  admin.Exec(("ALTER DATABASE " + database + " SET default_transaction_read_only = on").c_str());
  const Error read_only = refusal(uri);
  CHECK(read_only.code() == "storage_read_only");
  CHECK(std::string(read_only.what()).find("takes no writes") != std::string::npos);
  admin.Exec(("ALTER DATABASE " + database + " RESET default_transaction_read_only").c_str());
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

namespace {
/// Seconds PostgresStore(uri) took to fail with a 503 naming the timeout.
double SecondsToGiveUp(const std::string& uri) {
  const auto start = std::chrono::steady_clock::now();
  try {
    PostgresStore store(uri);
    FAIL("connected to a host that never answers");
  } catch (const Error& e) {
    CHECK(e.status() == 503);
    CHECK(std::string(e.what()).find("timeout expired") != std::string::npos);
  }
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

int SocketOption(int fd, int level, int name) {
  int value = -1;
  socklen_t len = sizeof(value);
  REQUIRE(::getsockopt(fd, level, name, &value, &len) == 0);
  return value;
}
}  // namespace

TEST_CASE("postgres: a host that never answers is given up on; the URL or PGCONNECT_TIMEOUT set how soon") {
  // The relay's own default (5 s) is tested through the binary, in
  // server_process_test; here the two ways to change it.
  SilentHost host;
  const std::string uri = "postgresql://meshwire@127.0.0.1:" + std::to_string(host.port) + "/m";
  const double by_url = SecondsToGiveUp(uri + "?connect_timeout=2");
  CHECK(by_url >= 0.9);  // libpq counts whole seconds of time(): up to one less
  CHECK(by_url < 4.5);
  ::setenv("PGCONNECT_TIMEOUT", "2", 1);
  const double by_env = SecondsToGiveUp(uri);
  ::unsetenv("PGCONNECT_TIMEOUT");
  CHECK(by_env >= 0.9);
  CHECK(by_env < 4.5);
}

TEST_CASE("postgres: a TCP session probes a silent peer (keep-alives, tcp_user_timeout); the URL overrides them") {
  PgCluster* pg = PgCluster::Shared();
  REQUIRE_MESSAGE(pg != nullptr, PgCluster::Missing());
  PgProxy proxy(pg->NewDatabase(), PgProxy::Over::kTcp);
  {
    PgConnection conn(proxy.uri());
    const int fd = PQsocket(conn.raw());
    CHECK(SocketOption(fd, SOL_SOCKET, SO_KEEPALIVE) == 1);
    CHECK(SocketOption(fd, IPPROTO_TCP, TCP_KEEPIDLE) == 10);
    CHECK(SocketOption(fd, IPPROTO_TCP, TCP_KEEPINTVL) == 5);
    CHECK(SocketOption(fd, IPPROTO_TCP, TCP_KEEPCNT) == 3);
    CHECK(SocketOption(fd, IPPROTO_TCP, TCP_USER_TIMEOUT) == 25000);
  }
  PgConnection conn(proxy.uri() + "?keepalives_idle=60&tcp_user_timeout=0");
  const int fd = PQsocket(conn.raw());
  CHECK(SocketOption(fd, IPPROTO_TCP, TCP_KEEPIDLE) == 60);
  CHECK(SocketOption(fd, IPPROTO_TCP, TCP_USER_TIMEOUT) == 0);
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
  // libpq's query parameters too.
  CHECK(StorageForDisplay("postgres://db:5432/m?user=u&password=hunter2") == "postgres://db:5432/m?user=u&password=***");
  CHECK(StorageForDisplay("postgres:///m?password=a&sslmode=require&xpassword=b") ==
        "postgres:///m?password=***&sslmode=require&xpassword=b");
  CHECK(StorageForDisplay("postgres://u:p@db/m?password=q") == "postgres://u:***@db/m?password=***");
  // A password with an unencoded '/', '?' or '@' (base64's '/' and '+'):
  // hidden whole, though libpq cannot parse it.
  CHECK(StorageForDisplay("postgres://pwuser:Xy7/SECRETpart+Q=@127.0.0.1:5432/db") ==
        "postgres://pwuser:***@127.0.0.1:5432/db");
  CHECK(StorageForDisplay("postgres://u:s3cr:t@/p?w#d%@h:5432/db") == "postgres://u:***@h:5432/db");
  // libpq's message quotes a piece of it; the message is shown without it.
  const std::string spec = "postgres://pwuser:Xy7/SECRETpart+Q=@127.0.0.1:5432/db";
  CHECK(WithoutPassword("invalid integer value \"Xy7\" for connection option \"port\"", spec) ==
        "invalid integer value \"***\" for connection option \"port\"");
  CHECK(WithoutPassword("could not translate host name \"SECRETpart+Q=\"", spec).find("SECRET") == std::string::npos);
  CHECK(WithoutPassword("no password here", "postgres://db/m") == "no password here");
  CHECK(WithoutPassword("bad 'hunter2'", "host=db password='hunter2'") == "bad '***'");
  try {
    PgConnection c("postgres://pwuser:Xy7/SECRETpart+Q=@127.0.0.1:5432/db");
    FAIL("a URL libpq cannot parse connected");
  } catch (const Error& e) {
    CHECK(std::string(e.what()).find("Xy7") == std::string::npos);
    CHECK(std::string(e.what()).find("SECRET") == std::string::npos);
  }
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
  TableCounts copied = CopySqliteToPostgres(db, uri, [&](const std::string& table, std::int64_t, bool done) {
    if (done) told.push_back(table);
  });
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

  // Two migrations into one database: the second waits for the first's
  // commit and then finds its rows (the check was before the copy's
  // transaction: both copied, or the second failed on a duplicate key).
  {
    const std::string shared = pg->NewDatabase();
    { PostgresStore schema(shared); }
    PgConnection first(shared);
    first.Begin();
    first.Exec("SELECT pg_advisory_xact_lock(7420420)");
    first.Exec("INSERT INTO users(name, created_at) VALUES ('alice', 1)");
    auto second = std::async(std::launch::async, [&] {
      return CopySqliteToPostgres(db, shared, [](const std::string&, std::int64_t, bool) {});
    });
    CHECK(second.wait_for(std::chrono::milliseconds(500)) == std::future_status::timeout);
    first.Commit();
    try {
      second.get();
      FAIL("the second migration copied into a database the first had filled");
    } catch (const Error& e) {
      CHECK(e.status() == 400);
      CHECK(std::string(e.what()).find("already holds meshwire data (1 users)") != std::string::npos);
    }
  }
  // Rows go 200 to a statement: 450 messages, in three.
  {
    TempDir big_dir;
    const std::string big = big_dir / "relay.db";
    Mesh m;
    {
      SqliteStore sqlite(big);
      m = MakeMesh(sqlite, "alice");
      Agent sender = MakeAgent(sqlite, m, "sender");
      for (int i = 0; i < 450; ++i) Put(sqlite, m, sender, "all", "message " + std::to_string(i));
    }
    const std::string target = pg->NewDatabase();
    TableCounts moved = CopySqliteToPostgres(big, target, [](const std::string&, std::int64_t, bool) {});
    CHECK(moved[5] == std::pair<std::string, std::int64_t>{"messages", 450});
    PostgresStore moved_store(target);
    auto last = moved_store.History(m.mesh_id, 440, 100);
    REQUIRE(last.size() == 10);
    CHECK(last.back().content == "message 449");
  }
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
  CHECK(fresh.out.find("  meshwire server --storage 'postgres") != std::string::npos);  // a command to copy
  CHECK(fresh.err.find("messages") != std::string::npos);
  // A source that is not there: a sentence, exit 2.
  CommandResult missing = Run({MESHWIRE_BINARY, "admin", "migrate", "--from", "sqlite:" + dir / "none.db", "--to", uri});
  CHECK(missing.code == 2);
  CHECK(missing.err.find("There is no SQLite database at") != std::string::npos);
  // Another program's SQLite file, or an empty one: refused, and left as it was
  // (opening it as a store wrote meshwire's tables into it).
  const std::string foreign = dir / "notes.db";
  {
    sqlite3* notes = nullptr;
    REQUIRE(sqlite3_open(foreign.c_str(), &notes) == SQLITE_OK);
    CHECK(sqlite3_exec(notes, "CREATE TABLE notes(x)", nullptr, nullptr, nullptr) == SQLITE_OK);
    sqlite3_close(notes);
  }
  const auto size_before = std::filesystem::file_size(foreign);
  CommandResult other = Run({MESHWIRE_BINARY, "admin", "migrate", "--from", "sqlite:" + foreign, "--to", uri});
  CHECK(other.code == 2);
  CHECK(other.err.find("is not a meshwire relay's database") != std::string::npos);
  CHECK(std::filesystem::file_size(foreign) == size_before);
  CHECK_FALSE(std::filesystem::exists(foreign + "-wal"));
}

TEST_CASE("admin migrate: interrupted, the copy rolls back and says so; the target holds none of it") {
  PgCluster* pg = PgCluster::Shared();
  REQUIRE_MESSAGE(pg != nullptr, PgCluster::Missing());
  TempDir dir;
  const std::string db = dir / "relay.db";
  {
    SqliteStore sqlite(db);
    Mesh mesh = MakeMesh(sqlite, "alice");
    Agent a = MakeAgent(sqlite, mesh, "agent-a");
    // 100,000 messages in one statement (a send each would take minutes).
    sqlite3* raw = nullptr;
    REQUIRE(sqlite3_open(db.c_str(), &raw) == SQLITE_OK);
    const std::string fill =
        "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 100000) "
        "INSERT INTO messages(mesh_id, seq, id, from_agent, from_name, to_agent, to_name, content, priority, "
        "metadata, idempotency_key, created_at) SELECT '" + mesh.mesh_id + "', x, x, '" + a.agent_id +
        "', 'agent-a', 'all', NULL, 'message ' || x, 'normal', '{}', NULL, 1000 FROM n";
    CHECK(sqlite3_exec(raw, fill.c_str(), nullptr, nullptr, nullptr) == SQLITE_OK);
    sqlite3_close(raw);
  }
  // In the library: `interrupted` is asked after each statement of rows.
  {
    const std::string target = pg->NewDatabase();
    int asked = 0;
    CHECK_THROWS_AS(CopySqliteToPostgres(
                        db, target, [](const std::string&, std::int64_t, bool) {}, [&] { return ++asked == 3; }),
                    MigrationInterrupted);
    CHECK(asked == 3);
    PgConnection check(target);
    auto count = check.Prepare("SELECT (SELECT count(*) FROM users) + (SELECT count(*) FROM messages)");
    REQUIRE(count.Step());
    CHECK(count.Int(0) == 0);
  }
  // Through the binary: Ctrl+C once the progress shows 20,000 messages.
  const std::string target = pg->NewDatabase();
  ChildProcess migrate({MESHWIRE_BINARY, "admin", "migrate", "--from", "sqlite:" + db, "--to", target});
  REQUIRE(migrate.WaitForStderr("messages   20000 ...", 60000));
  auto status = migrate.Signal(SIGINT, 30000);
  REQUIRE(status);
  // Ended by the signal, as a shell expects (a script stops there).
  REQUIRE(WIFSIGNALED(*status));
  CHECK(WTERMSIG(*status) == SIGINT);
  migrate.WaitForStderr("\x01never", 1000);
  CHECK(migrate.stderr_seen().find("stopping after the current step") != std::string::npos);
  CHECK(migrate.stderr_seen().find("interrupted (Ctrl+C): the copy was rolled back") != std::string::npos);
  CHECK(migrate.stderr_seen().find("Migrated") == std::string::npos);
  PgConnection check(target);
  auto count = check.Prepare("SELECT count(*) FROM messages");
  REQUIRE(count.Step());
  CHECK(count.Int(0) == 0);
  // The same command again copies everything.
  CommandResult again = Run({MESHWIRE_BINARY, "admin", "migrate", "--from", "sqlite:" + db, "--to", target});
  CHECK_MESSAGE(again.code == 0, again.err);
  auto after = check.Prepare("SELECT count(*) FROM messages");
  REQUIRE(after.Step());
  CHECK(after.Int(0) == 100000);
}

/// A PgWakeBus of "this-node" whose one subscriber records the seqs it is
/// given and says it waits on a mesh only once `wanted` is set; `store` is
/// "another node" (its node id is not the bus's), with a mesh and agents a, b.
struct WatchedBus {
  std::string uri;
  PostgresStore store;
  PgWakeBus bus;
  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::int64_t> delivered;  // guarded by mu
  bool wanted = false;                  // guarded by mu
  Mesh mesh;
  Agent a, b;

  explicit WatchedBus(const std::string& database) : uri(database), store(uri), bus(uri, store, "this-node") {
    bus.Subscribe(
        [this](const WakeEvent& e) {
          if (e.kind != WakeEvent::Kind::kMessage) return;
          std::lock_guard lock(mu);
          delivered.push_back(e.message->message().seq);
          cv.notify_all();
        },
        [this](const std::string&) {
          std::lock_guard lock(mu);
          return wanted;
        });
    mesh = MakeMesh(store, "alice");
    a = MakeAgent(store, mesh, "a");
    b = MakeAgent(store, mesh, "b");
  }
  std::int64_t Send() { return Put(store, mesh, a, b.agent_id, "hello").seq; }
  /// Wants the mesh, then watches it (as a poll parks, then watches).
  void Want() {
    {
      std::lock_guard lock(mu);
      wanted = true;
    }
    bus.Watch(mesh.mesh_id);
  }
  void Unwant() {
    std::lock_guard lock(mu);
    wanted = false;
  }
  /// This node's rows in node_watches.
  std::int64_t Watches() {
    PgConnection check(uri);
    auto s = check.Prepare("SELECT count(*) FROM node_watches WHERE node_id = 'this-node'");
    REQUIRE(s.Step());
    return s.Int(0);
  }
  /// What was delivered once something was, and 300 ms more for any other.
  std::vector<std::int64_t> Delivered() {
    std::unique_lock lock(mu);
    REQUIRE(cv.wait_for(lock, std::chrono::seconds(10), [&] { return !delivered.empty(); }));
    cv.wait_for(lock, std::chrono::milliseconds(300), [&] { return delivered.size() > 1; });
    return delivered;
  }
};

std::unique_ptr<WatchedBus> OpenWatchedBus() {
  PgCluster* pg = PgCluster::Shared();
  REQUIRE_MESSAGE(pg != nullptr, PgCluster::Missing());
  return std::make_unique<WatchedBus>(pg->NewDatabase());
}

TEST_CASE("postgres wake-ups: a mesh no other node watches is not announced; once this node watches it, the next message comes alone") {
  auto w = OpenWatchedBus();
  PgConnection listener(w->uri);
  listener.Exec("LISTEN meshwire_messages");
  CHECK(w->Send() == 1);  // nobody watches: no notification
  CHECK(w->Watches() == 0);
  w->Want();
  CHECK(w->Watches() == 1);
  CHECK(w->Send() == 2);
  CHECK(AnnouncedSeqs(listener, 2) == std::vector<std::int64_t>{2});
  // In seq order, each once: seq 1, committed before the watch, is the
  // waiter's own read's (it would come first had the bus read it).
  CHECK(w->Delivered() == std::vector<std::int64_t>{2});
}

TEST_CASE("postgres wake-ups: after a reconnect, what committed before the watch is not published again") {
  auto w = OpenWatchedBus();
  for (int i = 1; i <= 3; ++i) CHECK(w->Send() == i);
  w->Want();  // seqs 1-3 were before the watch; the dispatcher has not run since
  // The listening connection dies; the bus reconnects and resyncs.
  PgConnection admin(w->uri);
  // The bus's listening session: its last statement reads where each mesh stands.
  const char* kListener =
      "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
      " AND query = 'SELECT id, last_seq FROM meshes'";
  std::int64_t old_pid = 0;
  {
    auto s = admin.Prepare(kListener);
    REQUIRE(s.Step());
    old_pid = s.Int(0);
  }
  admin.Prepare("SELECT pg_terminate_backend(?1::int)").Bind(1, old_pid).Step();
  bool again = false;
  for (int i = 0; i < 100 && !again; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    auto s = admin.Prepare(kListener);
    again = s.Step() && s.Int(0) != old_pid;
  }
  REQUIRE(again);
  CHECK(w->Send() == 4);
  CHECK(w->Delivered() == std::vector<std::int64_t>{4});
}

TEST_CASE("postgres wake-ups: watches the other nodes dropped are written again, and what they missed is published") {
  auto w = OpenWatchedBus();
  w->Want();
  // As another node's heartbeat does for a node taken for dead.
  PgConnection admin(w->uri);
  admin.Exec("DELETE FROM node_watches");
  CHECK(w->Send() == 1);  // not announced: nobody watches now
  // Within a second or two the bus sees its watch gone, writes it again and
  // catches up.
  CHECK(w->Delivered() == std::vector<std::int64_t>{1});
  CHECK(w->Watches() == 1);
  CHECK(w->Send() == 2);
  std::unique_lock lock(w->mu);
  CHECK(w->cv.wait_for(lock, std::chrono::seconds(10), [&] { return w->delivered.size() == 2; }));
  CHECK(w->delivered == std::vector<std::int64_t>{1, 2});
}

TEST_CASE("postgres wake-ups: a watch nothing wants any more is dropped; wanting the mesh again watches it again") {
  auto w = OpenWatchedBus();
  w->bus.SetKeepWatch(std::chrono::milliseconds(0));
  w->Want();
  CHECK(w->Watches() == 1);
  {
    // A row of this node's the bus does not know (a Watch whose answer was
    // lost): dropped, while the wanted one stays.
    PgConnection admin(w->uri);
    admin.Exec("INSERT INTO node_watches(mesh_id, node_id) VALUES ('no-such-mesh', 'this-node')");
    bool gone = false;
    for (int i = 0; i < 100 && !gone; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      gone = w->Watches() == 1;
    }
    CHECK(gone);
  }
  w->Unwant();
  bool dropped = false;
  for (int i = 0; i < 100 && !dropped; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    dropped = w->Watches() == 0;
  }
  CHECK(dropped);
  CHECK(w->Send() == 1);  // not announced, not read
  w->Want();
  CHECK(w->Send() == 2);
  CHECK(w->Delivered() == std::vector<std::int64_t>{2});
}

/// A fresh database's store, with a mesh of alice's and two agents, a and b.
struct PgMesh {
  std::string uri;
  std::unique_ptr<PostgresStore> store;
  Mesh mesh;
  Agent a, b;
};
PgMesh OpenPgMesh() {
  PgCluster* pg = PgCluster::Shared();
  REQUIRE_MESSAGE(pg != nullptr, PgCluster::Missing());
  PgMesh m;
  m.uri = pg->NewDatabase();
  m.store = std::make_unique<PostgresStore>(m.uri);
  m.mesh = MakeMesh(*m.store, "alice");
  m.a = MakeAgent(*m.store, m.mesh, "a");
  m.b = MakeAgent(*m.store, m.mesh, "b");
  return m;
}

// A send through AppendAsync, its answer (error or result) as a future.
struct SendAnswer {
  std::exception_ptr error;
  AppendResult result;
};
std::future<SendAnswer> SendAsync(PostgresStore& store, const PgMesh& f, const std::string& content) {
  auto answer = std::make_shared<std::promise<SendAnswer>>();
  NewMessage m;
  m.mesh_id = f.mesh.mesh_id;
  m.from = f.a.agent_id;
  m.from_name = f.a.name;
  m.to = f.b.agent_id;
  m.content = content;
  m.now = 3000;
  store.AppendAsync(m, [answer](std::exception_ptr e, AppendResult r) { answer->set_value({e, std::move(r)}); });
  return answer->get_future();
}

TEST_CASE("postgres: sends while the database is down are each answered 503; once it is back they are written") {
  PgMesh fixture = OpenPgMesh();
  PostgresStore& store = *fixture.store;
  const Mesh& mesh = fixture.mesh;
  PgCluster* pg = PgCluster::Shared();
  auto send = [&](const std::string& content) { return SendAsync(store, fixture, content); };
  CHECK(send("before").get().error == nullptr);

  store.CheckAvailable();  // GET /health asks this
  REQUIRE(pg->StopServer());
  try {
    store.CheckAvailable();
    FAIL_CHECK("the store said it was available with its server down");
  } catch (const Error& e) {
    CHECK(e.status() == 503);
  }
  std::vector<std::future<SendAnswer>> down;
  for (int i = 0; i < 5; ++i) down.push_back(send("down " + std::to_string(i)));
  for (auto& f : down) {
    REQUIRE(f.wait_for(std::chrono::seconds(30)) == std::future_status::ready);  // answered, not left waiting
    auto e = f.get().error;
    REQUIRE(e != nullptr);
    try {
      std::rethrow_exception(e);
    } catch (const Error& err) {
      CHECK(err.status() == 503);
    }
  }
  REQUIRE(pg->StartServer());
  std::vector<std::future<SendAnswer>> back;
  for (int i = 0; i < 5; ++i) back.push_back(send("back " + std::to_string(i)));
  for (auto& f : back) {
    REQUIRE(f.wait_for(std::chrono::seconds(30)) == std::future_status::ready);
    auto e = f.get().error;
    if (e) {
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& err) {
        FAIL_CHECK(std::string(err.what()));
      }
    }
  }
  const auto history = store.History(mesh.mesh_id, 0, 100);
  REQUIRE(history.size() == 6);  // none of the refused ones
  CHECK(history.front().content == "before");
  for (std::size_t i = 1; i < history.size(); ++i) {
    CHECK(history[i].content.rfind("back ", 0) == 0);
    CHECK(history[i].seq == history[i - 1].seq + 1);
  }
}

TEST_CASE("postgres: a COMMIT whose answers were lost with the connection is found committed: 201s with the stored seqs and ids, each message once") {
  PgMesh fixture = OpenPgMesh();
  PostgresStore& store = *fixture.store;
  REQUIRE(SendAsync(store, fixture, "before").get().error == nullptr);

  // The server runs the whole pipeline (writes, COMMIT, barrier); the node
  // then loses the connection before reading a single answer.
  PgConnection::InjectFault(PgConnection::Fault::kLoseAnswers);
  std::vector<std::future<SendAnswer>> lost;
  for (int i = 0; i < 4; ++i) lost.push_back(SendAsync(store, fixture, "lost " + std::to_string(i)));
  std::vector<Message> answered;
  for (auto& f : lost) {
    REQUIRE(f.wait_for(std::chrono::seconds(30)) == std::future_status::ready);
    SendAnswer a = f.get();
    REQUIRE(a.error == nullptr);
    CHECK(a.result.created);
    answered.push_back(a.result.message);
  }
  CHECK(PgConnection::PendingFault() == PgConnection::Fault::kNone);  // it did happen
  REQUIRE(SendAsync(store, fixture, "after").get().error == nullptr);  // a new session goes on

  const auto history = store.History(fixture.mesh.mesh_id, 0, 100);
  REQUIRE(history.size() == 6);  // each once
  for (const Message& m : answered) {
    auto stored = std::find_if(history.begin(), history.end(), [&](const Message& h) { return h.seq == m.seq; });
    REQUIRE(stored != history.end());
    CHECK(stored->id == m.id);  // the answer rebuilt from the marker is what was stored
    CHECK(stored->content == m.content);
  }
  for (std::size_t i = 1; i < history.size(); ++i) CHECK(history[i].seq == history[i - 1].seq + 1);
  CHECK(history.back().content == "after");
}

// The count that `sql` (one ?1 bound to `arg`) returns.
std::int64_t CountRows(PgConnection& conn, const char* sql, const std::string& arg) {
  auto s = conn.Prepare(sql);
  s.Bind(1, arg);
  REQUIRE(s.Step());
  return s.Int(0);
}

// Returns once `n` server sessions wait for a lock that another holds.
void WaitForLockWaiters(PgConnection& watch, int n) {
  for (int i = 0;; ++i) {
    auto s = watch.Prepare("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                           " AND cardinality(pg_blocking_pids(pid)) > 0");
    REQUIRE(s.Step());
    if (s.Int(0) == n) return;
    REQUIRE(i < 4000);
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

TEST_CASE("postgres: the flush barrier returns only once the WAL is flushed past every commit before it") {
  PgMesh fixture = OpenPgMesh();
  PgConnection conn(fixture.uri);
  conn.SetFlushBarrier(PostgresStore::kFlushBarrier);
  conn.Exec("CREATE TABLE IF NOT EXISTS flush_probe (n INTEGER)");
  conn.Exec("SET synchronous_commit = off");  // as the writer's transactions
  for (int i = 0; i < 50; ++i) {
    CAPTURE(i);
    conn.Prepare("INSERT INTO flush_probe VALUES (?1)").Bind(1, std::int64_t{i}).Run();
    auto at = conn.Prepare("SELECT pg_current_wal_insert_lsn()::text");
    REQUIRE(at.Step());
    const std::string inserted = at.Text(0);
    conn.Exec("SET synchronous_commit = on");  // the barrier's: the server's
    conn.Flush();
    conn.Exec("SET synchronous_commit = off");
    auto flushed = conn.Prepare("SELECT pg_current_wal_flush_lsn() >= ?1::pg_lsn");
    flushed.Bind(1, inserted);
    REQUIRE(flushed.Step());
    CHECK(flushed.Text(0) == "t");
  }
}

TEST_CASE("postgres: a node's heartbeat leaves a node that has not beaten yet its marker row (no deadlock, no lost marker)") {
  PgMesh fixture = OpenPgMesh();  // node A
  PostgresStore b(fixture.uri);   // node B, started; its first heartbeat is a second away
  REQUIRE(SendAsync(b, fixture, "through B").get().error == nullptr);
  PgConnection conn(fixture.uri);
  auto rows_of_b = [&] {
    return CountRows(conn, "SELECT count(*) FROM node_flushes WHERE node_id = ?1", b.node_id());
  };
  REQUIRE(rows_of_b() == 1);  // B's writer row: its barrier and commit marker
  {
    // Not live to the other nodes before its first beat: none waits for its
    // acknowledgement of an access change (nor for `meshwire admin`'s).
    auto live = conn.Prepare(PostgresStore::kOtherLiveNodes);
    live.Bind(1, fixture.store->node_id()).Bind(2, PostgresStore::kNodeAliveMs);
    CHECK_FALSE(live.Step());
  }

  // A's heartbeat, written with A's next send, deletes the rows of nodes it
  // takes for gone. B is alive: its row stays, and B's sends go on.
  fixture.store->ShareListening({}, {});
  REQUIRE(SendAsync(*fixture.store, fixture, "through A").get().error == nullptr);
  CHECK(rows_of_b() == 1);
  REQUIRE(SendAsync(b, fixture, "through B again").get().error == nullptr);

  // Once B stops, its row in `nodes` goes, and A's next beat takes its rows.
  b.Close();
  fixture.store->ShareListening({}, {});
  REQUIRE(SendAsync(*fixture.store, fixture, "through A again").get().error == nullptr);
  CHECK(rows_of_b() == 0);
  CHECK(fixture.store->History(fixture.mesh.mesh_id, 0, 100).size() == 4);
}

TEST_CASE("postgres: a send whose transaction the server rolled back in a deadlock is written by running it again: 201, once") {
  PgMesh fixture = OpenPgMesh();
  PostgresStore& store = *fixture.store;
  REQUIRE(SendAsync(store, fixture, "before").get().error == nullptr);
  // Another session takes the writer's marker row, which a send's statement
  // writes after the mesh row; once the writer waits for it, that session
  // asks for the mesh row: a deadlock, which the server breaks by rolling
  // back the writer's transaction (it waited first).
  PgConnection other(fixture.uri);
  PgConnection watch(fixture.uri);
  other.Exec("BEGIN");
  other.Prepare("UPDATE node_flushes SET n = n WHERE node_id = ?1 AND slot = 0").Bind(1, store.node_id()).Run();
  auto sent = SendAsync(store, fixture, "in the deadlock");
  WaitForLockWaiters(watch, 1);
  try {
    other.Prepare("UPDATE meshes SET name = name WHERE id = ?1").Bind(1, fixture.mesh.mesh_id).Run();
  } catch (const PgError& e) {
    FAIL("the test's session, not the writer's, was rolled back: " << e.what());
  }
  other.Exec("COMMIT");
  REQUIRE(sent.wait_for(std::chrono::seconds(30)) == std::future_status::ready);
  SendAnswer a = sent.get();
  REQUIRE(a.error == nullptr);
  CHECK(a.result.created);
  const auto history = store.History(fixture.mesh.mesh_id, 0, 100);
  REQUIRE(history.size() == 2);
  CHECK(history[1].content == "in the deadlock");
  CHECK(history[1].seq == history[0].seq + 1);
  CHECK(a.result.message.seq == history[1].seq);
}

TEST_CASE("postgres: a heartbeat that failed is not lost: the next one writes the node's listeners whole") {
  PgMesh fixture = OpenPgMesh();
  PostgresStore& store = *fixture.store;
  PgConnection conn(fixture.uri);
  const char* listeners = "SELECT count(*) FROM node_listeners WHERE node_id = ?1";
  store.ShareListening({}, {});
  REQUIRE(SendAsync(store, fixture, "after the first beat").get().error == nullptr);

  // b starts listening; the beat that says so loses its COMMIT.
  PgConnection::InjectFault(PgConnection::Fault::kLoseBeforeSending);
  store.ShareListening({fixture.b.agent_id}, {});
  for (int i = 0; PgConnection::PendingFault() != PgConnection::Fault::kNone; ++i) {
    REQUIRE(i < 2000);
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  REQUIRE(SendAsync(store, fixture, "after the lost beat").get().error == nullptr);
  REQUIRE(CountRows(conn, listeners, store.node_id()) == 0);

  // Nothing changed since, yet the next beat writes b.
  store.ShareListening({}, {});
  REQUIRE(SendAsync(store, fixture, "after the next beat").get().error == nullptr);
  CHECK(CountRows(conn, listeners, store.node_id()) == 1);
  // And the one after it only what changes again.
  store.ShareListening({}, {fixture.b.agent_id});
  REQUIRE(SendAsync(store, fixture, "after b stopped").get().error == nullptr);
  CHECK(CountRows(conn, listeners, store.node_id()) == 0);
}

TEST_CASE("postgres: a heartbeat skips the rows of a dead node that another node's beat is deleting, and deletes them later") {
  PgMesh fixture = OpenPgMesh();
  PostgresStore& store = *fixture.store;
  PgConnection conn(fixture.uri);
  conn.Exec("INSERT INTO nodes(node_id, seen_at) VALUES ('deadnode', 0)");
  conn.Exec("INSERT INTO node_flushes(node_id, slot, n) VALUES ('deadnode', 0, 1)");
  const char* rows = "SELECT (SELECT count(*) FROM nodes WHERE node_id = ?1)"
                     " + (SELECT count(*) FROM node_flushes WHERE node_id = ?1)";
  // Another node's beat, deleting them, holds their locks.
  PgConnection other(fixture.uri);
  other.Exec("BEGIN");
  other.Exec("SELECT 1 FROM nodes WHERE node_id = 'deadnode' FOR UPDATE");
  other.Exec("SELECT 1 FROM node_flushes WHERE node_id = 'deadnode' FOR UPDATE");

  store.ShareListening({}, {});
  auto sent = SendAsync(store, fixture, "not held up");
  const bool in_time = sent.wait_for(std::chrono::seconds(10)) == std::future_status::ready;
  other.Exec("ROLLBACK");
  REQUIRE(in_time);
  REQUIRE(sent.get().error == nullptr);
  CHECK(CountRows(conn, rows, "deadnode") == 2);  // skipped

  store.ShareListening({}, {});
  REQUIRE(SendAsync(store, fixture, "after the next beat").get().error == nullptr);
  CHECK(CountRows(conn, rows, "deadnode") == 0);
}

TEST_CASE("postgres: two nodes' gathered sends to the same two meshes lock them in one order: no deadlock") {
  PgCluster* pg = PgCluster::Shared();
  REQUIRE_MESSAGE(pg != nullptr, PgCluster::Missing());
  const std::string uri = pg->NewDatabase();
  PgConnection watch(uri);
  {
    // A deadlock would stall the test, not be broken after a second.
    auto s = watch.Prepare("SELECT current_database()");
    REQUIRE(s.Step());
    watch.Exec(("ALTER DATABASE \"" + s.Text(0) + "\" SET deadlock_timeout = '60s'").c_str());
  }
  PostgresStore a(uri), b(uri);
  Mesh lo = MakeMesh(a, "alice"), hi = MakeMesh(a, "alice");
  if (hi.mesh_id < lo.mesh_id) std::swap(lo, hi);
  const Agent lo_from = MakeAgent(a, lo, "from"), lo_to = MakeAgent(a, lo, "to");
  const Agent hi_from = MakeAgent(a, hi, "from"), hi_to = MakeAgent(a, hi, "to");
  std::vector<Agent> stalls;
  for (int i = 0; i < 4; ++i) stalls.push_back(MakeAgent(a, lo, "stall" + std::to_string(i)));

  auto send = [](PostgresStore& node, const Mesh& mesh, const Agent& from, const Agent& to, bool keyed) {
    auto answer = std::make_shared<std::promise<std::exception_ptr>>();
    NewMessage m;
    m.mesh_id = mesh.mesh_id;
    m.from = from.agent_id;
    m.from_name = from.name;
    m.to = to.agent_id;
    m.content = keyed ? "keyed" : "plain";
    if (keyed) m.idempotency_key = RandomBase62(8);
    m.now = 3000;
    node.AppendAsync(m, [answer](std::exception_ptr e, AppendResult) { answer->set_value(e); });
    return answer->get_future();
  };
  auto hold = [&](PgConnection& t, const Agent& agent) {
    t.Exec("BEGIN");
    t.Prepare("UPDATE agents SET last_seen = last_seen WHERE id = ?1").Bind(1, agent.agent_id).Run();
  };

  // Each node's writer is held by a presence write while a keyed send to one
  // mesh and a plain send to the other gather; node A's keyed one goes to
  // `hi`, node B's to `lo`. Then each node's next batch (the gathered sends,
  // and a presence write that waits again) holds what it locked at once.
  std::vector<std::future<std::exception_ptr>> sent;
  PgConnection ta1(uri), ta2(uri), tb1(uri), tb2(uri);
  int waiting = 0;
  auto stall = [&](PostgresStore& node, PgConnection& t1, PgConnection& t2, const Agent& s1, const Agent& s2,
                   bool keyed_to_hi) {
    hold(t1, s1);
    node.RecordPresence({{s1.agent_id, 9000}});
    WaitForLockWaiters(watch, ++waiting);
    sent.push_back(keyed_to_hi ? send(node, hi, hi_from, hi_to, true) : send(node, lo, lo_from, lo_to, true));
    sent.push_back(keyed_to_hi ? send(node, lo, lo_from, lo_to, false) : send(node, hi, hi_from, hi_to, false));
    hold(t2, s2);
    node.RecordPresence({{s2.agent_id, 9000}});
    t1.Exec("COMMIT");
    WaitForLockWaiters(watch, waiting);  // the node's writer waits again (for t2, or for the other node)
  };
  stall(a, ta1, ta2, stalls[0], stalls[1], true);
  stall(b, tb1, tb2, stalls[2], stalls[3], false);
  ta2.Exec("COMMIT");
  tb2.Exec("COMMIT");
  for (auto& f : sent) {
    REQUIRE_MESSAGE(f.wait_for(std::chrono::seconds(20)) == std::future_status::ready, "the two nodes deadlocked");
    CHECK(f.get() == nullptr);
  }
  CHECK(a.History(lo.mesh_id, 0, 10).size() == 2);
  CHECK(a.History(hi.mesh_id, 0, 10).size() == 2);
}

TEST_CASE("postgres: two nodes' first sign-ins of one user in two spellings at once make one user") {
  PgCluster* pg = PgCluster::Shared();
  REQUIRE_MESSAGE(pg != nullptr, PgCluster::Missing());
  const std::string uri = pg->NewDatabase();
  PostgresStore a(uri), b(uri);
  PgConnection watch(uri), gate(uri);
  // Each node's token insert waits at the table: the user each looked up and
  // added (or not) in its transaction is not yet committed when the other looks.
  gate.Exec("BEGIN");
  gate.Exec("LOCK TABLE tokens IN SHARE ROW EXCLUSIVE MODE");
  auto on_a = std::async(std::launch::async, [&] {
    return a.CreateToken({"tok_node_a", "Octocat", "login", Sha256Hex("mw_node_a"), std::nullopt, 10});
  });
  WaitForLockWaiters(watch, 1);
  auto on_b = std::async(std::launch::async, [&] {
    return b.CreateToken({"tok_node_b", "octocat", "login", Sha256Hex("mw_node_b"), std::nullopt, 20});
  });
  WaitForLockWaiters(watch, 2);  // B waits for A's lock on the name (before: at the table, its user added)
  gate.Exec("COMMIT");
  CHECK(on_a.get().user == "Octocat");
  CHECK(on_b.get().user == "Octocat");
  auto s = watch.Prepare("SELECT string_agg(name, ',' ORDER BY name) FROM users");
  REQUIRE(s.Step());
  CHECK(s.Text(0) == "Octocat");
}

TEST_CASE("postgres: two nodes registering one name at once: the second gets the first's agent, or 409's owner") {
  PgMesh f = OpenPgMesh();
  PostgresStore b(f.uri);
  PgConnection watch(f.uri), gate(f.uri);
  // Each node's insert waits at the table, after each looked the name up and
  // found nothing: the second insert then meets the first's row.
  auto race = [&](const std::string& name, const std::string& owner_a, const std::string& owner_b) {
    gate.Exec("BEGIN");
    gate.Exec("LOCK TABLE agents IN SHARE ROW EXCLUSIVE MODE");
    auto on_a = std::async(std::launch::async, [&] {
      return f.store->RegisterAgent({"agt_" + name + "_a", f.mesh.mesh_id, name, "pi", owner_a, 10});
    });
    WaitForLockWaiters(watch, 1);
    auto on_b = std::async(std::launch::async, [&] {
      return b.RegisterAgent({"agt_" + name + "_b", f.mesh.mesh_id, name, "pi", owner_b, 20});
    });
    WaitForLockWaiters(watch, 2);
    gate.Exec("COMMIT");
    return std::make_pair(on_a.get(), on_b.get());
  };
  auto [a1, b1] = race("racer", "alice", "alice");  // one user's two processes
  CHECK(a1.created != b1.created);
  CHECK(a1.agent.agent_id == b1.agent.agent_id);
  CHECK(a1.agent.owner == "alice");
  auto [a2, b2] = race("contested", "alice", "bob");  // two users: the service answers 409 to the second
  CHECK(a2.created != b2.created);
  CHECK(a2.agent.agent_id == b2.agent.agent_id);
  CHECK(b2.agent.owner == (b2.created ? "bob" : "alice"));
  auto s = watch.Prepare("SELECT COUNT(*) FROM agents WHERE name IN ('racer', 'contested')");
  REQUIRE(s.Step());
  CHECK(s.Int(0) == 2);
}

TEST_CASE("postgres: registering on a mesh another node deletes meanwhile is 404 mesh_not_found") {
  PgMesh f = OpenPgMesh();
  PostgresStore b(f.uri);
  PgConnection watch(f.uri), gate(f.uri);
  gate.Exec("BEGIN");
  gate.Exec("LOCK TABLE agents IN SHARE ROW EXCLUSIVE MODE");
  auto on_a = std::async(std::launch::async, [&] {
    return f.store->RegisterAgent({"agt_late", f.mesh.mesh_id, "late", "pi", "alice", 10});
  });
  WaitForLockWaiters(watch, 1);  // it found the mesh, and waits to insert
  gate.Exec(("DELETE FROM meshes WHERE id = '" + f.mesh.mesh_id + "'").c_str());  // the gate's transaction, as another node's
  gate.Exec("COMMIT");
  try {
    on_a.get();
    FAIL("registered on a deleted mesh");
  } catch (const Error& e) {
    CHECK(e.status() == 404);
    CHECK(e.code() == "mesh_not_found");
  }
}

TEST_CASE("postgres: messages have no foreign key; a send waiting on a mesh being deleted writes nothing, and DeleteMesh leaves none") {
  PgMesh f = OpenPgMesh();
  PgConnection raw(f.uri), watch(f.uri);
  auto count = [&](const std::string& mesh_id) {
    auto s = raw.Prepare("SELECT count(*) FROM messages WHERE mesh_id = ?1");
    s.Bind(1, mesh_id);
    REQUIRE(s.Step());
    return s.Int(0);
  };
  {
    auto s = raw.Prepare("SELECT count(*) FROM pg_constraint WHERE conname = 'messages_mesh_id_fkey'");
    REQUIRE(s.Step());
    CHECK(s.Int(0) == 0);
  }
  REQUIRE(SendAsync(*f.store, f, "before").get().error == nullptr);
  // Another node's DeleteMesh, held open after its first statement: the
  // send's write waits for the mesh row, then finds it gone.
  raw.Exec("BEGIN");
  raw.Exec(("DELETE FROM meshes WHERE id = '" + f.mesh.mesh_id + "'").c_str());
  auto late = SendAsync(*f.store, f, "late");
  WaitForLockWaiters(watch, 1);
  raw.Exec(("DELETE FROM messages WHERE mesh_id = '" + f.mesh.mesh_id + "'").c_str());
  raw.Exec("COMMIT");
  const SendAnswer answer = late.get();
  REQUIRE(answer.error != nullptr);
  try {
    std::rethrow_exception(answer.error);
  } catch (const Error& e) {
    CHECK(e.status() == 404);
    CHECK(e.code() == "mesh_not_found");
  }
  CHECK(count(f.mesh.mesh_id) == 0);
  // The store's own DeleteMesh deletes the messages itself.
  Mesh other = MakeMesh(*f.store, "alice");
  Agent o = MakeAgent(*f.store, other, "o");
  PgMesh g{f.uri, nullptr, other, o, o};
  REQUIRE(SendAsync(*f.store, g, "kept until the mesh goes").get().error == nullptr);
  CHECK(count(other.mesh_id) == 1);
  REQUIRE(f.store->DeleteMesh(other.mesh_id));
  CHECK(count(other.mesh_id) == 0);
}

TEST_CASE("postgres: a schema 7 database (messages tied to meshes by a foreign key) is migrated to 8 without it") {
  PgCluster* pg = PgCluster::Shared();
  REQUIRE_MESSAGE(pg != nullptr, PgCluster::Missing());
  const std::string uri = pg->NewDatabase();
  { PostgresStore store(uri); }
  PgConnection raw(uri);
  // Back to version 7 as it was released.
  raw.Exec("ALTER TABLE messages ADD CONSTRAINT messages_mesh_id_fkey FOREIGN KEY (mesh_id)"
           " REFERENCES meshes(id) ON DELETE CASCADE");
  raw.Exec("UPDATE meshwire_schema SET version = 7");
  { PostgresStore store(uri); }
  auto s = raw.Prepare("SELECT (SELECT version FROM meshwire_schema),"
                       " (SELECT count(*) FROM pg_constraint WHERE conname = 'messages_mesh_id_fkey')");
  REQUIRE(s.Step());
  CHECK(s.Int(0) == 8);
  CHECK(s.Int(1) == 0);
}

TEST_CASE("postgres: a COMMIT lost before it reached the server is a 503 that wrote nothing") {
  PgMesh fixture = OpenPgMesh();
  PostgresStore& store = *fixture.store;
  REQUIRE(SendAsync(store, fixture, "before").get().error == nullptr);
  PgConnection::InjectFault(PgConnection::Fault::kLoseBeforeSending);
  auto lost = SendAsync(store, fixture, "lost");
  REQUIRE(lost.wait_for(std::chrono::seconds(30)) == std::future_status::ready);
  SendAnswer a = lost.get();
  REQUIRE(a.error != nullptr);
  try {
    std::rethrow_exception(a.error);
  } catch (const Error& e) {
    CHECK(e.status() == 503);
    CHECK(std::string(e.what()).find("nothing was written") != std::string::npos);
  }
  CHECK(PgConnection::PendingFault() == PgConnection::Fault::kNone);
  REQUIRE(SendAsync(store, fixture, "after").get().error == nullptr);
  const auto history = store.History(fixture.mesh.mesh_id, 0, 100);
  REQUIRE(history.size() == 2);
  CHECK(history[0].content == "before");
  CHECK(history[1].content == "after");
  CHECK(history[1].seq == history[0].seq + 1);
}

TEST_CASE("postgres: a lost commit's (seq, id)s are rebuilt from its marker entry, by tag") {
  const std::string marker = "3 10 100;0 5 50;";
  using Pairs = std::vector<std::pair<std::int64_t, std::int64_t>>;
  CHECK(PostgresStore::SeqIdsFromMarker(marker, 0, 2) == Pairs{{6, 51}, {7, 52}});
  CHECK(PostgresStore::SeqIdsFromMarker(marker, 3, 1) == Pairs{{11, 101}});
  CHECK(PostgresStore::SeqIdsFromMarker(marker, 1, 3).empty());  // its mesh was gone: no entry
  CHECK(PostgresStore::SeqIdsFromMarker("", 0, 1).empty());
}

TEST_CASE("postgres: array literals quote every element (the rows of a gathered send)") {
  CHECK(PgConnection::ArrayLiteral({"a", std::nullopt, "q\"b\\c", "", "{,}"}) ==
        R"({"a",NULL,"q\"b\\c","","{,}"})");
}

TEST_CASE("postgres: statements run at the commit give their rows after it, or fail it and leave nothing") {
  PgCluster* pg = PgCluster::Shared();
  REQUIRE_MESSAGE(pg != nullptr, PgCluster::Missing());
  const std::string uri = pg->NewDatabase();
  PgConnection conn(uri);
  conn.Exec("CREATE TABLE t (id int PRIMARY KEY); CREATE TABLE flushes (n int PRIMARY KEY, c int)");
  conn.SetFlushBarrier("INSERT INTO flushes VALUES (1, 1) ON CONFLICT (n) DO UPDATE SET c = flushes.c + 1");
  conn.CommitWithoutWaiting();
  auto insert = [&](int id) { return std::move(conn.Prepare("INSERT INTO t VALUES (?1) RETURNING id").Bind(1, std::int64_t{id})); };
  auto ids = [&] {
    std::vector<std::int64_t> out;
    auto s = conn.Prepare("SELECT id FROM t ORDER BY id");
    while (s.Step()) out.push_back(s.Int(0));
    return out;
  };
  std::vector<std::int64_t> seen;
  auto reader = [&](PgStatement& s) {
    while (s.Step()) seen.push_back(s.Int(0));
  };

  // Alone in the transaction (BEGIN goes with them), then after a statement.
  conn.Begin();
  conn.AtCommit(insert(1), reader);
  conn.AtCommit(insert(2), reader);
  CHECK(seen.empty());  // not before the commit
  conn.Commit();
  CHECK(seen == std::vector<std::int64_t>{1, 2});
  conn.Begin();
  conn.Prepare("INSERT INTO t VALUES (3)").Run();
  conn.AtCommit(insert(4), reader);
  conn.Commit();
  CHECK(seen == std::vector<std::int64_t>{1, 2, 4});

  // One that fails (a duplicate) fails the commit: nothing of the transaction
  // stays, no reader is called, and the session goes on after the rollback.
  conn.Begin();
  conn.Prepare("INSERT INTO t VALUES (5)").Run();
  conn.AtCommit(insert(6), reader);
  conn.AtCommit(insert(1), reader);
  try {
    conn.Commit();
    FAIL("a commit with a failed statement succeeded");
  } catch (const PgError& e) {
    CHECK(e.sqlstate() == "23505");
  }
  conn.Rollback();
  CHECK(seen == std::vector<std::int64_t>{1, 2, 4});
  CHECK(ids() == std::vector<std::int64_t>{1, 2, 3, 4});

  // A rollback drops them; the next transaction does not run them.
  conn.Begin();
  conn.AtCommit(insert(7), reader);
  conn.Rollback();
  conn.Begin();
  conn.AtCommit(insert(8), reader);
  conn.Commit();
  CHECK(seen == std::vector<std::int64_t>{1, 2, 4, 8});
  CHECK(ids() == std::vector<std::int64_t>{1, 2, 3, 4, 8});
  // Each commit that succeeded ran the flush barrier after it (three).
  auto flushes = conn.Prepare("SELECT c FROM flushes");
  REQUIRE(flushes.Step());
  CHECK(flushes.Int(0) == 3);
}

TEST_CASE("postgres: messages and fetched or acked receipts are read only once durable; queued receipts need no flush") {
  PgCluster* pg = PgCluster::Shared();
  REQUIRE_MESSAGE(pg != nullptr, PgCluster::Missing());
  const std::string uri = pg->NewDatabase();
  PostgresStore store(uri);
  Mesh mesh = MakeMesh(store, "alice");
  Agent a = MakeAgent(store, mesh, "agent-a");
  Agent b = MakeAgent(store, mesh, "agent-b");
  Message acked = Put(store, mesh, a, b.agent_id, "acked by b");
  Message queued = Put(store, mesh, a, b.agent_id, "not yet fetched");
  store.AdvanceCursor(b.agent_id, acked.seq, acked.seq, 3000);

  // A synchronous standby that never answers: no commit, and so no flush
  // barrier, returns until it is configured away. Reads that must wait for
  // durability hang meanwhile; the others do not.
  PgConnection admin(uri);
  auto set_standby = [&](const char* names) {
    admin.Exec((std::string("ALTER SYSTEM SET synchronous_standby_names = '") + names + "'").c_str());
    admin.Exec("SELECT pg_reload_conf()");
    for (int i = 0;; ++i) {  // the reload reaches the sessions by itself
      PgConnection fresh(uri);
      auto s = fresh.Prepare("SELECT current_setting('synchronous_standby_names')");
      REQUIRE(s.Step());
      if (s.Text(0) == names) return;
      REQUIRE(i < 500);
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  };
  // Declared before the reset, so a failed check resets first and the reads
  // end before their futures go.
  std::future<std::vector<Receipt>> queued_receipts, acked_receipts;
  std::future<std::vector<Message>> history;
  std::future<Message> hung_send;
  struct Reset {
    std::function<void()> fn;
    ~Reset() { fn(); }
  } reset{[&] { set_standby(""); }};
  set_standby("meshwire_test_absent");

  queued_receipts = std::async(std::launch::async, [&] { return store.Receipts(queued); });
  REQUIRE(queued_receipts.wait_for(std::chrono::seconds(10)) == std::future_status::ready);
  auto q = queued_receipts.get();
  REQUIRE(q.size() == 1);
  CHECK(q[0].state == "queued");

  // A send now holds the writer in its barrier. With no fetched mark
  // gathered, a receipt read does not queue behind it.
  hung_send = std::async(std::launch::async, [&] { return Put(store, mesh, a, b.agent_id, "hung"); });
  CHECK(hung_send.wait_for(std::chrono::milliseconds(300)) == std::future_status::timeout);
  queued_receipts = std::async(std::launch::async, [&] { return store.Receipts(queued); });
  REQUIRE(queued_receipts.wait_for(std::chrono::seconds(10)) == std::future_status::ready);
  CHECK(queued_receipts.get()[0].state == "queued");

  acked_receipts = std::async(std::launch::async, [&] { return store.Receipts(acked); });
  history = std::async(std::launch::async, [&] { return store.History(mesh.mesh_id, 0, 10); });
  CHECK(acked_receipts.wait_for(std::chrono::milliseconds(500)) == std::future_status::timeout);
  CHECK(history.wait_for(std::chrono::milliseconds(10)) == std::future_status::timeout);

  set_standby("");
  REQUIRE(acked_receipts.wait_for(std::chrono::seconds(10)) == std::future_status::ready);
  REQUIRE(history.wait_for(std::chrono::seconds(10)) == std::future_status::ready);
  REQUIRE(hung_send.wait_for(std::chrono::seconds(10)) == std::future_status::ready);
  CHECK(hung_send.get().seq == queued.seq + 1);
  auto r = acked_receipts.get();
  REQUIRE(r.size() == 1);
  CHECK(r[0].state == "acked");
  CHECK(history.get().size() == 3);  // the hung send's too, once durable
}

TEST_CASE("postgres: ?N parameters become $N, never inside quotes") {
  CHECK(PgConnection::ToDollarParams("SELECT ?1, '?2', \"?3\" WHERE a = ?12") ==
        "SELECT $1, '?2', \"?3\" WHERE a = $12");
}

}  // namespace meshwire::testing
