#include "server/storage/postgres_store.h"

#include "schemas/error.h"
#include "schemas/ids.h"

namespace meshwire {

namespace {

// Migrations, oldest first: kMigrations[i] takes version i to i + 1. Never
// edit a released entry; append one and raise kSchemaVersion. The tables
// match SQLite's (sqlite_store.cc) column for column; times and sequence
// numbers are BIGINT.
const char* const kMigrations[] = {
    R"sql(
CREATE TABLE users (
  name TEXT PRIMARY KEY,
  created_at BIGINT NOT NULL
);

CREATE TABLE tokens (
  id TEXT PRIMARY KEY,
  user_name TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
  name TEXT NOT NULL,
  secret_sha256 TEXT NOT NULL UNIQUE,
  mesh_id TEXT,
  created_at BIGINT NOT NULL,
  last_used_at BIGINT
);
CREATE INDEX tokens_by_user ON tokens(user_name);

CREATE TABLE meshes (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  owner TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  last_seq BIGINT NOT NULL DEFAULT 0,
  last_id BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE members (
  mesh_id TEXT NOT NULL REFERENCES meshes(id) ON DELETE CASCADE,
  user_name TEXT NOT NULL,
  role TEXT NOT NULL,
  PRIMARY KEY (mesh_id, user_name)
);
CREATE INDEX members_by_user ON members(user_name);

CREATE TABLE agents (
  id TEXT PRIMARY KEY,
  mesh_id TEXT NOT NULL REFERENCES meshes(id) ON DELETE CASCADE,
  name TEXT NOT NULL,
  harness TEXT NOT NULL,
  owner TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  last_seen BIGINT NOT NULL,
  start_seq BIGINT NOT NULL,
  acked_seq BIGINT NOT NULL,
  fetched_seq BIGINT NOT NULL,
  UNIQUE (mesh_id, name)
);

CREATE TABLE messages (
  mesh_id TEXT NOT NULL REFERENCES meshes(id) ON DELETE CASCADE,
  seq BIGINT NOT NULL,
  id TEXT NOT NULL,
  from_agent TEXT NOT NULL,
  from_name TEXT NOT NULL,
  to_agent TEXT NOT NULL,
  to_name TEXT,
  content TEXT NOT NULL,
  priority TEXT NOT NULL,
  metadata TEXT NOT NULL,
  idempotency_key TEXT,
  created_at BIGINT NOT NULL,
  PRIMARY KEY (mesh_id, seq)
);
CREATE UNIQUE INDEX messages_by_id ON messages(mesh_id, id);
CREATE UNIQUE INDEX messages_by_idempotency_key
  ON messages(mesh_id, from_agent, idempotency_key) WHERE idempotency_key IS NOT NULL;

CREATE TABLE watermarks (
  agent_id TEXT NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
  kind TEXT NOT NULL,
  seq BIGINT NOT NULL,
  at BIGINT NOT NULL,
  PRIMARY KEY (agent_id, kind, seq)
);
)sql",
    // 2: which agents listen on which node, so every node lists them.
    R"sql(
CREATE TABLE nodes (
  node_id TEXT PRIMARY KEY,
  seen_at BIGINT NOT NULL  -- the database's clock, milliseconds since the epoch
);
CREATE TABLE node_listeners (
  node_id TEXT NOT NULL REFERENCES nodes(node_id) ON DELETE CASCADE,
  agent_id TEXT NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
  PRIMARY KEY (node_id, agent_id)
);
CREATE INDEX node_listeners_by_agent ON node_listeners(agent_id);
)sql",
};
static_assert(std::size(kMigrations) == PostgresStore::kSchemaVersion);

// Any 64-bit number of meshwire's own: the advisory lock nodes take to migrate.
constexpr const char* kMigrationLock = "SELECT pg_advisory_xact_lock(7420742074207420)";

void Migrate(PgConnection& conn) {
  conn.Begin();
  try {
    conn.Exec(kMigrationLock);
    conn.Exec("CREATE TABLE IF NOT EXISTS meshwire_schema (version INTEGER NOT NULL)");
    std::int64_t version = 0;
    {
      auto s = conn.Prepare("SELECT version FROM meshwire_schema");
      if (s.Step()) version = s.Int(0);
    }
    if (version > PostgresStore::kSchemaVersion) {
      throw Error::Unavailable("The PostgreSQL database has meshwire schema version " +
                               std::to_string(version) + ", newer than this meshwire (" +
                               std::to_string(PostgresStore::kSchemaVersion) +
                               "); upgrade meshwire to use it.");
    }
    for (auto v = version; v < PostgresStore::kSchemaVersion; ++v) conn.Exec(kMigrations[v]);
    if (version < PostgresStore::kSchemaVersion) {
      conn.Exec("DELETE FROM meshwire_schema");
      conn.Prepare("INSERT INTO meshwire_schema(version) VALUES (?1)")
          .Bind(1, std::int64_t{PostgresStore::kSchemaVersion})
          .Run();
    }
    conn.Commit();
  } catch (...) {
    try {
      conn.Rollback();
    } catch (...) {
      // The first error is the one to report.
    }
    throw;
  }
}

}  // namespace

std::unique_ptr<PgConnection> PostgresStore::OpenWriter(const std::string& conninfo) {
  auto conn = std::make_unique<PgConnection>(conninfo);
  Migrate(*conn);
  return conn;
}

PostgresStore::PostgresStore(const std::string& conninfo)
    : SqlStore<PgConnection>(
          "postgres", OpenWriter(conninfo),
          [conninfo] { return std::make_unique<PgConnection>(conninfo); }, kMaxReaders),
      node_id_(RandomBase62(10)) {
  // One round trip per message: the seq, the row and the notification in a
  // single statement. The notification is sent at the commit, in commit
  // order, and only if it commits: every node listening learns of the
  // message (PgWakeBus).
  SetMessageWriter([this](PgConnection& c, const NewMessage& m) -> std::pair<std::int64_t, std::int64_t> {
    auto s = c.Prepare(
        "WITH s AS (UPDATE meshes SET last_seq = last_seq + 1,"
        "   last_id = CASE WHEN last_id + 1 > ?2::bigint THEN last_id + 1 ELSE ?2::bigint END"
        "   WHERE id = ?1 RETURNING last_seq, last_id),"
        " i AS (INSERT INTO messages(mesh_id, seq, id, from_agent, from_name, to_agent, to_name,"
        "   content, priority, metadata, idempotency_key, created_at)"
        "   SELECT ?1, s.last_seq, s.last_id::text, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11 FROM s"
        "   RETURNING seq, id)"
        " SELECT i.seq, i.id::bigint,"
        "   pg_notify('meshwire_messages', i.seq::text || ' ' || ?1::text || ' ' || ?12::text) FROM i");
    s.Bind(1, m.mesh_id)
        .Bind(2, m.now * 1000)
        .Bind(3, m.from)
        .Bind(4, m.from_name)
        .Bind(5, m.to)
        .Bind(6, m.to_name)
        .Bind(7, m.content)
        .Bind(8, m.priority)
        .Bind(9, m.metadata_json)
        .Bind(10, m.idempotency_key)
        .Bind(11, m.now)
        .Bind(12, node_id_);
    if (!s.Step()) throw Error::NotFound("mesh_not_found", "No mesh " + m.mesh_id + ".");
    return {s.Int(0), s.Int(1)};
  });
}

// The database's clock in milliseconds: nodes on different machines compare
// against one clock.
#define MESHWIRE_PG_NOW_MS "(extract(epoch from clock_timestamp()) * 1000)::bigint"
#define MESHWIRE_PG_OTHER_LIVE_NODES \
  "SELECT node_id FROM nodes WHERE node_id <> ?1 AND seen_at > " MESHWIRE_PG_NOW_MS " - ?2"

const char* const PostgresStore::kOtherLiveNodes = MESHWIRE_PG_OTHER_LIVE_NODES;

void PostgresStore::ShareListening(const std::vector<std::string>& started,
                                   const std::vector<std::string>& stopped) {
  if (!started.empty() || !stopped.empty() || !listening_snapshot_) {
    for (const auto& agent_id : started) listening_here_.insert(agent_id);
    for (const auto& agent_id : stopped) listening_here_.erase(agent_id);
    listening_snapshot_ =
        std::make_shared<const std::vector<std::string>>(listening_here_.begin(), listening_here_.end());
  }
  WriteLater([this, started, stopped, all = listening_snapshot_](PgConnection& c) {
    bool new_row = false;
    {
      auto s = c.Prepare("INSERT INTO nodes(node_id, seen_at) VALUES (?1, " MESHWIRE_PG_NOW_MS
                         ") ON CONFLICT (node_id) DO UPDATE SET seen_at = EXCLUDED.seen_at"
                         " RETURNING (xmax = 0)::int");
      s.Bind(1, node_id_);
      new_row = s.Step() && s.Int(0) == 1;
    }
    // The node's row is new (its first beat, or it was taken for dead after a
    // minute without the database, and its listeners with it): all of them.
    for (const std::string& agent_id : new_row ? *all : started) {
      // An agent removed meanwhile is skipped, not an error.
      c.Prepare("INSERT INTO node_listeners(node_id, agent_id) SELECT ?1, id FROM agents WHERE id = ?2"
                " ON CONFLICT DO NOTHING")
          .Bind(1, node_id_)
          .Bind(2, agent_id)
          .Run();
    }
    for (const std::string& agent_id : stopped) {
      c.Prepare("DELETE FROM node_listeners WHERE node_id = ?1 AND agent_id = ?2")
          .Bind(1, node_id_)
          .Bind(2, agent_id)
          .Run();
    }
    // Nodes gone for a minute (killed, not stopped) take their rows with them.
    c.Prepare("DELETE FROM nodes WHERE seen_at < " MESHWIRE_PG_NOW_MS " - 60000").Run();
  });
}

std::vector<std::string> PostgresStore::ListeningElsewhere(const std::string& mesh_id) {
  return ReadRows(
      "SELECT DISTINCT l.agent_id FROM node_listeners l JOIN agents a ON a.id = l.agent_id"
      " WHERE a.mesh_id = ?3 AND l.node_id IN (" MESHWIRE_PG_OTHER_LIVE_NODES ")",
      [](const auto& s) { return s.Text(0); }, node_id_, kNodeAliveMs, mesh_id);
}

PostgresStore::~PostgresStore() {
  // A node that stops says so: its listeners stop counting at once.
  try {
    WriteNow([this](PgConnection& c) { c.Prepare("DELETE FROM nodes WHERE node_id = ?1").Bind(1, node_id_).Run(); });
  } catch (const std::exception& e) {
    // The database is gone: the row ages out (kNodeAliveMs) on its own.
  }
  Close();
}

}  // namespace meshwire
