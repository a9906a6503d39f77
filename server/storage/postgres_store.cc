#include "server/storage/postgres_store.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <optional>

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
    // 3: as first committed (one row per node), replaced by 4.
    R"sql(
CREATE TABLE node_flushes (
  node_id TEXT PRIMARY KEY,
  n BIGINT NOT NULL
);
)sql",
    // 4: the rows the flush barriers bump, one per connection of each node.
    R"sql(
DROP TABLE node_flushes;
CREATE TABLE node_flushes (
  node_id TEXT NOT NULL,
  slot INTEGER NOT NULL,
  n BIGINT NOT NULL,
  PRIMARY KEY (node_id, slot)
);
)sql",
    // 5: the writer's commit marker (PgConnection::SetCommitMarker) in its
    // row: the number of its last transaction, and what that transaction's
    // gathered sends were given ("tag seq0 id0;" per run).
    R"sql(
ALTER TABLE node_flushes ADD COLUMN batch BIGINT NOT NULL DEFAULT 0,
                         ADD COLUMN runs TEXT NOT NULL DEFAULT '';
)sql",
    // 6: sign-ins in flight (Store::PutSignIn), under their code's SHA-256,
    // so a sign-in begun through one node finishes through any.
    R"sql(
CREATE TABLE sign_ins (
  key_sha256 TEXT PRIMARY KEY,
  payload TEXT NOT NULL,
  expires_at BIGINT NOT NULL
);
)sql",
    // 7: which nodes wait on which meshes' messages (PgWakeBus::Watch): a
    // transaction that appends to a mesh notifies only while another node
    // watches it. No foreign keys: a watch outlives nothing that matters (a
    // deleted mesh's is dropped by its node; a dead node's by the others'
    // heartbeats), and a node writes its watch before its `nodes` row may be back.
    R"sql(
CREATE TABLE node_watches (
  mesh_id TEXT NOT NULL,
  node_id TEXT NOT NULL,
  PRIMARY KEY (mesh_id, node_id)
);
)sql",
    // 8: a message's mesh is no longer checked by a foreign key. The one
    // statement that inserts messages takes their seqs from the mesh's row in
    // the same statement (PostgresStore::WriteMessagesStatement: no row, no
    // insert), so the per-row check only repeated that, inside the time the
    // mesh row is locked; and SqlStore::DeleteMesh deletes the mesh's
    // messages itself, after the mesh row (so no send adds one in between).
    R"sql(
ALTER TABLE messages DROP CONSTRAINT IF EXISTS messages_mesh_id_fkey;
)sql",
};
static_assert(std::size(kMigrations) == PostgresStore::kSchemaVersion);

// Any 64-bit number of meshwire's own: the advisory lock nodes take to migrate.
constexpr const char* kMigrationLock = "SELECT pg_advisory_xact_lock(7420742074207420)";

/// Who was refused where, and the server's reason: for a sentence that says
/// what to grant.
struct Refused {
  std::string user = "the role", database = "the database", why;
};

Refused WhoWasRefused(PgConnection& conn, const PgError& e) {
  const auto quoted = [](const std::string& name) {  // an SQL identifier, as the server would read it
    std::string out = "\"";
    for (char c : name) out += c == '"' ? std::string("\"\"") : std::string(1, c);
    return out + "\"";
  };
  Refused r;
  try {
    auto who = conn.Prepare("SELECT current_user, current_database()");
    if (who.Step()) r.user = quoted(who.Text(0)), r.database = quoted(who.Text(1));
  } catch (const std::exception&) {
    // The sentence stands without the names.
  }
  r.why = e.what();
  if (auto at = r.why.find("ERROR:"); at != std::string::npos) r.why = r.why.substr(at + 6);
  if (auto end = r.why.find(" LINE "); end != std::string::npos) r.why = r.why.substr(0, end);  // the statement's text
  while (!r.why.empty() && r.why.front() == ' ') r.why.erase(0, 1);
  return r;
}

/// A role that may not create or change meshwire's tables: what to grant, in
/// a sentence (the server's words come after).
Error MissingPrivilege(PgConnection& conn, const PgError& e) {
  const Refused r = WhoWasRefused(conn, e);
  return Error(500, "storage_permission",
               "The PostgreSQL role " + r.user + " may not create or change meshwire's tables in " + r.database +
                   " (" + r.why + "). As a superuser, make it the database's owner (ALTER DATABASE " + r.database +
                   " OWNER TO " + r.user + ";) or grant it the schema (GRANT CREATE ON SCHEMA public TO " + r.user +
                   ";), or use the role that created meshwire's tables; then start again.");
}

/// A database that takes no writes (default_transaction_read_only, a hot
/// standby), or a role that may read meshwire's tables but not write them:
/// what to change, in a sentence; nullopt for any other error.
std::optional<Error> CannotWrite(PgConnection& conn, const PgError& e) {
  if (e.sqlstate() == "25006") {  // read_only_sql_transaction
    return Error(500, "storage_read_only",
                 "The PostgreSQL database takes no writes (a read-only transaction: a standby, or "
                 "default_transaction_read_only): give --storage a primary the relay may write to.");
  }
  if (e.sqlstate() != "42501") return std::nullopt;  // insufficient_privilege
  const Refused r = WhoWasRefused(conn, e);
  return Error(500, "storage_permission",
               "The PostgreSQL role " + r.user + " may not write meshwire's tables in " + r.database + " (" + r.why +
                   "). As a superuser, grant them to it (GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN "
                   "SCHEMA public TO " + r.user + "; GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO " + r.user +
                   ";), or use the role that created them; then start again.");
}

void Migrate(PgConnection& conn) {
  conn.Begin();
  try {
    conn.Exec(kMigrationLock);
    {
      // Created only when missing: a role with the rights to use meshwire's
      // tables, not to create them, opens a database that is up to date.
      auto exists = conn.Prepare("SELECT CASE WHEN to_regclass('meshwire_schema') IS NULL THEN 0 ELSE 1 END");
      if (exists.Step() && exists.Int(0) == 0) {
        conn.Exec("CREATE TABLE meshwire_schema (version INTEGER NOT NULL)");
      }
    }
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
    try {
      throw;
    } catch (const PgError& e) {
      if (e.sqlstate() == "42501") throw MissingPrivilege(conn, e);  // insufficient_privilege
      if (auto refused = CannotWrite(conn, e)) throw *refused;          // a read-only database
      throw;
    }
  }
}

}  // namespace

namespace {

/// A gathered write's rows: (seq, id) of each message, in order.
std::vector<std::pair<std::int64_t, std::int64_t>> ReadSeqIds(PgStatement& s) {
  std::vector<std::pair<std::int64_t, std::int64_t>> written;
  while (s.Step()) written.emplace_back(s.Int(0), s.Int(1));
  return written;
}


}  // namespace

// The database's clock in milliseconds: nodes on different machines compare
// against one clock.
#define MESHWIRE_PG_NOW_MS "(extract(epoch from clock_timestamp()) * 1000)::bigint"

// The commit marker's write (PgConnection::SetCommitMarker), followed by the
// row's values: `node_id, 0, 0, number, entry` (slot 0 is the writer's). The
// first write of a transaction replaces the row's entries, later ones (its
// further runs of sends) add theirs.
#define MESHWIRE_PG_MARK_INTO "INSERT INTO node_flushes(node_id, slot, n, batch, runs) "
#define MESHWIRE_PG_MARK_ON_CONFLICT                                                     \
  " ON CONFLICT (node_id, slot) DO UPDATE SET batch = EXCLUDED.batch,"                   \
  "   runs = CASE WHEN node_flushes.batch = EXCLUDED.batch THEN node_flushes.runs ELSE '' END" \
  "     || EXCLUDED.runs"

// A transaction that writes one WAL record and no row: its commit (with
// the session's synchronous_commit, so the server's) flushes the WAL past
// everything committed before it. A transaction that wrote no WAL (a bare
// txid_current()) would not wait for a flush; a row's upsert would, but
// costs a third more of the server's CPU per barrier (a heap update, its
// index probe and row lock). The message goes to logical decoding only,
// where a consumer that does not ask for messages never sees it.
const char* const PostgresStore::kFlushBarrier = "SELECT pg_logical_emit_message(true, 'meshwire', '')";

std::unique_ptr<PgConnection> PostgresStore::OpenWriter(const std::string& conninfo, const std::string& node_id) {
  auto conn = std::make_unique<PgConnection>(conninfo);
  Migrate(*conn);
  // The node's row before its first barrier or marker row: a node's heartbeat
  // deletes the node_flushes rows of every node without one (ShareListening).
  // Without it, another node took this one's rows in the second before its
  // first beat: its marker (a lost COMMIT then read as not committed), and a
  // deadlock between that beat's transaction and this node's writer, each
  // holding a row the other wanted (the mesh's and the marker's). Its time is
  // kNodeAliveMs ago: not live to the other nodes (no acks awaited from it,
  // as from `meshwire admin`, which never beats) until its first beat.
  try {
    conn->Prepare("INSERT INTO nodes(node_id, seen_at) VALUES (?1, " MESHWIRE_PG_NOW_MS " - ?2)"
                  " ON CONFLICT (node_id) DO NOTHING")
        .Bind(1, node_id)
        .Bind(2, kNodeAliveMs)
        .Run();
  } catch (const PgError& e) {  // the first write: a role or database that takes none says so here
    if (auto refused = CannotWrite(*conn, e)) throw *refused;
    throw;
  }
  conn->SetFlushBarrier(kFlushBarrier);
  conn->CommitWithoutWaiting();
  // The write statements are prepared once and run with other arrays each
  // batch; a generic plan spares planning them again each time (PostgreSQL
  // 12 and later have the setting).
  conn->Exec("SELECT set_config('plan_cache_mode', 'force_generic_plan', false)"
             " WHERE current_setting('server_version_num')::int >= 120000");
  // The commit marker lives in the writer's own row (slot 0): no other
  // connection touches it, so it never waits on a lock.
  conn->SetCommitMarker(MESHWIRE_PG_MARK_INTO "VALUES ('" + node_id + "', 0, 0, ?1::bigint, '')" MESHWIRE_PG_MARK_ON_CONFLICT,
                        "SELECT batch, runs FROM node_flushes WHERE node_id = '" + node_id + "' AND slot = 0");
  return conn;
}

std::string PostgresStore::SynchronousCommit() {
  const auto rows = ReadRows("SHOW synchronous_commit", [](const auto& s) { return s.Text(0); });
  return rows.empty() ? "" : rows.front();
}

PostgresStore::PostgresStore(const std::string& conninfo)
    : PostgresStore(conninfo, RandomBase62(10)) {}

PostgresStore::PostgresStore(const std::string& conninfo, std::string node_id)
    : SqlStore<PgConnection>(
          "postgres", OpenWriter(conninfo, node_id),
          [this, conninfo] {
            auto conn = std::make_unique<PgConnection>(conninfo);
            conn->SetFlushBarrier(kFlushBarrier);
            return conn;
          },
          kMaxReaders),
      node_id_(std::move(node_id)) {
  // One round trip per message: the seq and the row in a single statement.
  // The transaction notifies once per mesh, the newest seq, in the COMMIT's
  // round trip: sent at the commit, in commit order, and only if it commits,
  // so every node listening learns of the messages (PgWakeBus reads the ones
  // before it).
  SetMessageWriter([this](PgConnection& c, const NewMessage& m) -> std::pair<std::int64_t, std::int64_t> {
    PgStatement s = WriteMessagesStatement(c, {&m}, -1);
    auto written = ReadSeqIds(s);
    if (written.empty()) throw Error::NotFound("mesh_not_found", "No mesh " + m.mesh_id + ".");
    return written.front();
  });
  // The meshes of gathered sends, some of which lock their mesh at once: all
  // of them now, in byte order (SqlStore::SetMeshLocker).
  SetMeshLocker([](PgConnection& c, const std::vector<std::string>& mesh_ids) {
    std::vector<std::optional<std::string_view>> ids(mesh_ids.begin(), mesh_ids.end());
    auto s = c.Prepare("SELECT 1 FROM meshes WHERE id = ANY(?1::text[]) ORDER BY id COLLATE \"C\" FOR NO KEY UPDATE");
    s.Bind(1, PgConnection::ArrayLiteral(ids));
    while (s.Step()) {
    }
  });
  // A user's name, case ignored, locked until the commit before the writer
  // looks for its stored spelling (SqlStore::SetUserLocker): another node's
  // first sign-in of the same user in another spelling waits, then finds it.
  // (Two int4 keys: apart from kMigrationLock's one int8 key.)
  SetUserLocker([](PgConnection& c, const std::string& name) {
    c.Prepare("SELECT pg_advisory_xact_lock(7420, hashtext(lower(?1)))").Bind(1, name).Run();
  });
  // A run of gathered sends is written in the COMMIT's round trip: the mesh
  // row's lock, taken by its UPDATE, is then held only while the server runs
  // the rest of the transaction, never across a round trip to this node (two
  // nodes writing one mesh took turns through each other's round trips).
  SetMessagesWriter([this](PgConnection& c, const std::vector<const NewMessage*>& run, OnWritten written) {
    const auto tag = static_cast<std::int64_t>(c.at_commit_count());
    c.AtCommit(
        WriteMessagesStatement(c, run, tag), [written](PgStatement& s) { written(ReadSeqIds(s)); },
        [written, tag, n = run.size()](const std::string& marker) { written(SeqIdsFromMarker(marker, tag, n)); },
        /*marks=*/true);
  });
  // An event loop commits the sends it read at its tail, as on SQLite. A
  // round trip nothing bounds (a COMMIT waiting for a synchronous standby
  // that is down, a network cut held for tcp_user_timeout) then holds that
  // loop's thread: the runtime's stand-in serves its connections meanwhile
  // (HttpRuntime::Run), and after that slow commit the writer thread commits
  // until one is quick again (BatchWriter::SetInline).
  SetInlineWrites(true);
}

std::vector<std::pair<std::int64_t, std::int64_t>> PostgresStore::SeqIdsFromMarker(const std::string& marker,
                                                                                   std::int64_t tag, std::size_t n) {
  std::vector<std::pair<std::int64_t, std::int64_t>> written;
  std::size_t at = 0;
  while (at < marker.size()) {
    const std::size_t end = std::min(marker.find(';', at), marker.size());
    std::int64_t t = 0, seq0 = 0, id0 = 0;
    const std::string entry = marker.substr(at, end - at);
    if (std::sscanf(entry.c_str(), "%" SCNd64 " %" SCNd64 " %" SCNd64, &t, &seq0, &id0) == 3 && t == tag) {
      for (std::size_t k = 1; k <= n; ++k) {
        written.emplace_back(seq0 + static_cast<std::int64_t>(k), id0 + static_cast<std::int64_t>(k));
      }
      break;
    }
    at = end + 1;
  }
  return written;
}

PgStatement PostgresStore::WriteMessagesStatement(PgConnection& c, const std::vector<const NewMessage*>& run,
                                                  std::int64_t tag) {
  // One statement for the run: the mesh row hands out n seqs and ids at once
  // (its lock is held until the COMMIT, which does not wait for the flush;
  // see the header), and the rows come from arrays, one element per message.
  // Ids: the newest is at least now in microseconds, as one message's would
  // be. The notification goes in the COMMIT's round trip: sent at the commit,
  // in commit order, and only if it commits, so every node listening learns
  // of the messages (PgWakeBus reads the ones before it).
  const auto n = static_cast<std::int64_t>(run.size());
  Millis now = 0;
  std::vector<std::optional<std::string_view>> from, from_name, to, to_name, content, priority, metadata, key,
      created;
  std::vector<std::string> created_text;
  created_text.reserve(run.size());
  for (const NewMessage* m : run) {
    now = std::max(now, m->now);
    from.emplace_back(m->from);
    from_name.emplace_back(m->from_name);
    to.emplace_back(m->to);
    to_name.push_back(m->to_name ? std::optional<std::string_view>(*m->to_name) : std::nullopt);
    content.emplace_back(m->content);
    priority.emplace_back(m->priority);
    metadata.emplace_back(m->metadata_json);
    key.push_back(m->idempotency_key ? std::optional<std::string_view>(*m->idempotency_key) : std::nullopt);
    created_text.push_back(std::to_string(m->now));
  }
  for (const auto& t : created_text) created.emplace_back(t);
  const std::string& mesh_id = run.front()->mesh_id;
  auto s = c.Prepare(
      "WITH s AS (UPDATE meshes SET last_seq = last_seq + ?2,"
      "   last_id = CASE WHEN last_id + ?2 > ?3::bigint + ?2 - 1 THEN last_id + ?2 ELSE ?3::bigint + ?2 - 1 END"
      "   WHERE id = ?1 RETURNING last_seq - ?2 AS seq0, last_id - ?2 AS id0),"
      " i AS (INSERT INTO messages(mesh_id, seq, id, from_agent, from_name, to_agent, to_name,"
      "   content, priority, metadata, idempotency_key, created_at)"
      "   SELECT ?1, s.seq0 + u.n, (s.id0 + u.n)::text, u.f, u.fn, u.t, u.tn, u.c, u.p, u.md, u.k, u.at"
      "   FROM s, unnest(?4::text[], ?5::text[], ?6::text[], ?7::text[], ?8::text[], ?9::text[], ?10::text[],"
      "     ?11::text[], ?12::bigint[]) WITH ORDINALITY AS u(f, fn, t, tn, c, p, md, k, at, n)"
      "   RETURNING seq, id),"
      // At the commit (tag >= 0) the commit marker too: the transaction's
      // number, and this run's entry added to those of its earlier runs.
      " r AS (" MESHWIRE_PG_MARK_INTO
      "   SELECT ?13, 0, 0, ?15::bigint,"
      "     coalesce((SELECT ?14::bigint || ' ' || s.seq0 || ' ' || s.id0 || ';' FROM s), '')"
      "   WHERE ?14::bigint >= 0" MESHWIRE_PG_MARK_ON_CONFLICT ")"
      " SELECT seq, id::bigint FROM i ORDER BY seq");
  s.Bind(1, mesh_id)
      .Bind(2, n)
      .Bind(3, now * 1000)
      .Bind(4, PgConnection::ArrayLiteral(from))
      .Bind(5, PgConnection::ArrayLiteral(from_name))
      .Bind(6, PgConnection::ArrayLiteral(to))
      .Bind(7, PgConnection::ArrayLiteral(to_name))
      .Bind(8, PgConnection::ArrayLiteral(content))
      .Bind(9, PgConnection::ArrayLiteral(priority))
      .Bind(10, PgConnection::ArrayLiteral(metadata))
      .Bind(11, PgConnection::ArrayLiteral(key))
      .Bind(12, PgConnection::ArrayLiteral(created))
      .Bind(13, node_id_)
      .Bind(14, tag)
      .Bind(15, c.marker_number());
  // The transaction notifies once per mesh, its newest seq, read from the
  // mesh row just before the COMMIT (so the last of this transaction's
  // messages); no mesh, no notification.
  // Only while another node watches the mesh (PgWakeBus::Watch): each
  // notification wakes every node's listening session and its relay, which
  // cost a node that only takes sends more than its messages' rows. A node
  // that starts watching locks the mesh row to write its watch, so this
  // statement, which runs while the write holds that row, sees the watch or
  // the watcher's next read sees these messages.
  auto notify = c.Prepare(
      "SELECT pg_notify('meshwire_messages', last_seq::text || ' ' || ?1 || ' ' || ?2) FROM meshes WHERE id = ?1"
      " AND EXISTS (SELECT 1 FROM node_watches WHERE mesh_id = ?1 AND node_id <> ?2)");
  notify.Bind(1, mesh_id).Bind(2, node_id_);
  c.BeforeCommit("notify " + mesh_id, std::move(notify));
  return s;
}

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
  const bool whole = rewrite_listeners_.exchange(false);
  auto beat = [this, started, stopped, whole, all = listening_snapshot_](PgConnection& c) {
    bool new_row = false;
    {
      auto s = c.Prepare("INSERT INTO nodes(node_id, seen_at) VALUES (?1, " MESHWIRE_PG_NOW_MS
                         ") ON CONFLICT (node_id) DO UPDATE SET seen_at = EXCLUDED.seen_at"
                         " RETURNING (xmax = 0)::int");
      s.Bind(1, node_id_);
      new_row = s.Step() && s.Int(0) == 1;
    }
    // The node's row is new (it was taken for dead after a minute without the
    // database, and its listeners with it), or a beat failed: all of them,
    // written again. (The first beat finds the row OpenWriter wrote; its
    // `started` is every listener.)
    const bool rewrite = new_row || whole;
    if (rewrite) c.Prepare("DELETE FROM node_listeners WHERE node_id = ?1").Bind(1, node_id_).Run();
    for (const std::string& agent_id : rewrite ? *all : started) {
      // An agent removed meanwhile is skipped, not an error.
      c.Prepare("INSERT INTO node_listeners(node_id, agent_id) SELECT ?1, id FROM agents WHERE id = ?2"
                " ON CONFLICT DO NOTHING")
          .Bind(1, node_id_)
          .Bind(2, agent_id)
          .Run();
    }
    if (!rewrite) {  // else none is left to delete
      for (const std::string& agent_id : stopped) {
        c.Prepare("DELETE FROM node_listeners WHERE node_id = ?1 AND agent_id = ?2")
            .Bind(1, node_id_)
            .Bind(2, agent_id)
            .Run();
      }
    }
    // Nodes gone for a minute (killed, not stopped) take their rows with them.
    // Every other live node's beat tries the same: rows another is deleting
    // are skipped, not waited for (two beats, each also holding a mesh row
    // for its sends, would each wait for the other).
    c.Prepare("DELETE FROM nodes WHERE node_id IN (SELECT node_id FROM nodes WHERE seen_at < " MESHWIRE_PG_NOW_MS
              " - 60000 FOR UPDATE SKIP LOCKED)")
        .Run();
    // Every live node has its row from its start (OpenWriter); one taken for
    // dead that comes back writes its barrier row again at its next barrier.
    c.Prepare("DELETE FROM node_flushes WHERE (node_id, slot) IN (SELECT node_id, slot FROM node_flushes f"
              " WHERE NOT EXISTS (SELECT 1 FROM nodes n WHERE n.node_id = f.node_id) FOR UPDATE SKIP LOCKED)")
        .Run();
    c.Prepare("DELETE FROM node_watches WHERE (mesh_id, node_id) IN (SELECT mesh_id, node_id FROM node_watches w"
              " WHERE NOT EXISTS (SELECT 1 FROM nodes n WHERE n.node_id = w.node_id) FOR UPDATE SKIP LOCKED)")
        .Run();
  };
  // A failed beat's changes are lost: the next one rewrites them all.
  WriteLater(std::move(beat), [this](std::exception_ptr e) {
    if (e) rewrite_listeners_.store(true);
  });
}

std::vector<std::string> PostgresStore::ListeningElsewhere(const std::string& mesh_id) {
  return ReadRows(
      "SELECT DISTINCT l.agent_id FROM node_listeners l JOIN agents a ON a.id = l.agent_id"
      " WHERE a.mesh_id = ?3 AND l.node_id IN (" MESHWIRE_PG_OTHER_LIVE_NODES ")",
      [](const auto& s) { return s.Text(0); }, node_id_, kNodeAliveMs, mesh_id);
}

void PostgresStore::AwaitDurable(PgConnection& reader) {
  // Read after the rows, so past every commit they could show. With a
  // synchronous standby, the local flush is not enough: the barrier waits
  // for what the server's synchronous_commit says.
  auto s = reader.Prepare(
      "SELECT pg_current_wal_flush_lsn() >= pg_current_wal_insert_lsn()"
      " AND current_setting('synchronous_standby_names') = ''");
  if (!s.Step()) throw Error::Unavailable("PostgreSQL returned no WAL position; retry shortly.");
  if (s.Text(0) != "t") reader.Flush();
}

void PostgresStore::Close() {
  if (closed_) return;
  closed_ = true;
  try {
    WriteNow([this](PgConnection& c) { c.Prepare("DELETE FROM nodes WHERE node_id = ?1").Bind(1, node_id_).Run(); });
  } catch (const std::exception& e) {
    // The database is gone: the row ages out (kNodeAliveMs) on its own.
  }
  SqlStore<PgConnection>::Close();
}

PostgresStore::~PostgresStore() { Close(); }

}  // namespace meshwire
