#include "server/storage/sqlite_store.h"

#include <algorithm>

#include "schemas/error.h"

namespace meshwire {

namespace {

// Migrations, oldest first: kMigrations[i] takes user_version i to i + 1.
// Never edit a released entry; append a new one and raise kSchemaVersion.
const char* const kMigrations[] = {
    R"sql(
CREATE TABLE users (
  name TEXT PRIMARY KEY,
  created_at INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE tokens (
  id TEXT PRIMARY KEY,
  user_name TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
  name TEXT NOT NULL,
  secret_sha256 TEXT NOT NULL UNIQUE,
  mesh_id TEXT,
  created_at INTEGER NOT NULL,
  last_used_at INTEGER
);
CREATE INDEX tokens_by_user ON tokens(user_name);

CREATE TABLE meshes (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  owner TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  last_seq INTEGER NOT NULL DEFAULT 0,  -- the mesh's offset: seq of its newest message
  last_id INTEGER NOT NULL DEFAULT 0    -- newest message id (microsecond-based, increasing)
);

CREATE TABLE members (
  mesh_id TEXT NOT NULL REFERENCES meshes(id) ON DELETE CASCADE,
  user_name TEXT NOT NULL,
  role TEXT NOT NULL,
  PRIMARY KEY (mesh_id, user_name)
) WITHOUT ROWID;
CREATE INDEX members_by_user ON members(user_name);

CREATE TABLE agents (
  id TEXT PRIMARY KEY,
  mesh_id TEXT NOT NULL REFERENCES meshes(id) ON DELETE CASCADE,
  name TEXT NOT NULL,
  harness TEXT NOT NULL,
  owner TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  last_seen INTEGER NOT NULL,
  start_seq INTEGER NOT NULL,    -- the mesh's last_seq at registration
  acked_seq INTEGER NOT NULL,    -- stored cursor
  fetched_seq INTEGER NOT NULL,  -- highest seq returned by a poll
  UNIQUE (mesh_id, name)
);

CREATE TABLE messages (
  mesh_id TEXT NOT NULL REFERENCES meshes(id) ON DELETE CASCADE,
  seq INTEGER NOT NULL,
  id TEXT NOT NULL,
  from_agent TEXT NOT NULL,
  from_name TEXT NOT NULL,
  to_agent TEXT NOT NULL,  -- agent id or 'all'
  to_name TEXT,
  content TEXT NOT NULL,
  priority TEXT NOT NULL,
  metadata TEXT NOT NULL,
  idempotency_key TEXT,
  created_at INTEGER NOT NULL,
  PRIMARY KEY (mesh_id, seq)
) WITHOUT ROWID;
CREATE UNIQUE INDEX messages_by_id ON messages(mesh_id, id);
CREATE UNIQUE INDEX messages_by_idempotency_key
  ON messages(mesh_id, from_agent, idempotency_key) WHERE idempotency_key IS NOT NULL;

-- Each move of an agent's fetched ('f') or acked ('a') watermark, so delivery
-- receipts can give times without a row per recipient per message.
CREATE TABLE watermarks (
  agent_id TEXT NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
  kind TEXT NOT NULL,
  seq INTEGER NOT NULL,
  at INTEGER NOT NULL,
  PRIMARY KEY (agent_id, kind, seq)
) WITHOUT ROWID;
)sql",
    // 2: sign-ins in flight (Store::PutSignIn), under their code's SHA-256.
    // (IF NOT EXISTS: a .dump of a version-2 file, restored and set to
    // version 1 as RefuseForeignDatabase says, has it already.)
    R"sql(
CREATE TABLE IF NOT EXISTS sign_ins (
  key_sha256 TEXT PRIMARY KEY,
  payload TEXT NOT NULL,
  expires_at INTEGER NOT NULL
) WITHOUT ROWID;
)sql",
};
static_assert(std::size(kMigrations) == SqliteStore::kSchemaVersion);


void Migrate(SqliteConnection& conn, const std::string& path) {
  std::int64_t version = 0;
  {
    auto s = conn.Prepare("PRAGMA user_version");
    if (s.Step()) version = s.Int(0);
  }
  if (version > SqliteStore::kSchemaVersion) {
    throw Error::Unavailable("The database " + path + " has schema version " +
                             std::to_string(version) + ", newer than this meshwire (" +
                             std::to_string(SqliteStore::kSchemaVersion) +
                             "); upgrade meshwire to open it.");
  }
  if (version == SqliteStore::kSchemaVersion) return;
  conn.Exec("BEGIN IMMEDIATE");
  try {
    for (auto v = version; v < SqliteStore::kSchemaVersion; ++v) conn.Exec(kMigrations[v]);
    conn.Exec(("PRAGMA user_version = " + std::to_string(SqliteStore::kSchemaVersion)).c_str());
    conn.Exec("COMMIT");
  } catch (...) {
    conn.Exec("ROLLBACK");
    throw;
  }
}

}  // namespace

std::unique_ptr<SqliteConnection> SqliteStore::OpenWriter(const std::string& path) {
  auto conn = std::make_unique<SqliteConnection>(path);
  Migrate(*conn, path);
  return conn;
}

SqliteStore::SqliteStore(const std::string& path)
    : SqlStore<SqliteConnection>(
          "sqlite", OpenWriter(path),
          [path] {
            auto conn = std::make_unique<SqliteConnection>(path);
            conn->Exec("PRAGMA query_only = ON");
            return conn;
          },
          kMaxReaders) {
  SetMessageWriter([](SqliteConnection& c, const NewMessage& m) -> std::pair<std::int64_t, std::int64_t> {
    auto written = WriteMessages(c, {&m});
    if (written.empty()) throw Error::NotFound("mesh_not_found", "No mesh " + m.mesh_id + ".");
    return written.front();
  });
  SetMessagesWriter([](SqliteConnection& c, const std::vector<const NewMessage*>& run, OnWritten written) {
    written(WriteMessages(c, run));
  });
  // A commit here is one fsync, short enough for an event loop to wait for:
  // the sends an event loop reads are committed at its tail (LoopTail).
  SetInlineWrites(true);
}

std::vector<std::pair<std::int64_t, std::int64_t>> SqliteStore::WriteMessages(
    SqliteConnection& c, const std::vector<const NewMessage*>& run) {
  // The mesh row hands out n seqs and ids at once, as PostgresStore's does
  // (the writer is the only one, in its transaction: read, then update).
  // Ids: the newest is at least now in microseconds, as one message's would be.
  std::vector<std::pair<std::int64_t, std::int64_t>> written;
  const std::string& mesh_id = run.front()->mesh_id;
  std::int64_t last_seq = 0;
  std::int64_t last_id = 0;
  {
    auto s = c.Prepare("SELECT last_seq, last_id FROM meshes WHERE id = ?1");
    s.Bind(1, mesh_id);
    if (!s.Step()) return written;  // no such mesh
    last_seq = s.Int(0);
    last_id = s.Int(1);
  }
  const auto n = static_cast<std::int64_t>(run.size());
  Millis now = 0;
  for (const NewMessage* m : run) now = std::max(now, m->now);
  const std::int64_t id0 = std::max(last_id + n, now * 1000 + n - 1) - n;
  c.Prepare("UPDATE meshes SET last_seq = ?2, last_id = ?3 WHERE id = ?1")
      .Bind(1, mesh_id)
      .Bind(2, last_seq + n)
      .Bind(3, id0 + n)
      .Run();
  written.reserve(run.size());
  for (std::int64_t k = 1; k <= n; ++k) {
    const NewMessage& m = *run[static_cast<std::size_t>(k - 1)];
    c.Prepare(
         "INSERT INTO messages(mesh_id, seq, id, from_agent, from_name, to_agent, to_name,"
         " content, priority, metadata, idempotency_key, created_at)"
         " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)")
        // The message outlives the statement, which this expression runs.
        .BindStatic(1, mesh_id)
        .Bind(2, last_seq + k)
        .Bind(3, std::to_string(id0 + k))
        .BindStatic(4, m.from)
        .BindStatic(5, m.from_name)
        .BindStatic(6, m.to)
        .BindStatic(7, m.to_name)
        .BindStatic(8, m.content)
        .BindStatic(9, m.priority)
        .BindStatic(10, m.metadata_json)
        .BindStatic(11, m.idempotency_key)
        .Bind(12, m.now)
        .Run();
    written.emplace_back(last_seq + k, id0 + k);
  }
  return written;
}

std::uint64_t SqliteStore::OutsideChanges() {
  // In the writer's transaction (BEGIN IMMEDIATE sees every commit before
  // it); a transaction that changes nothing writes and flushes nothing.
  std::int64_t version = 0;
  WriteNow([&version](SqliteConnection& c) {
    auto s = c.Prepare("PRAGMA data_version");
    if (s.Step()) version = s.Int(0);
  });
  return static_cast<std::uint64_t>(version);
}

SqliteStore::~SqliteStore() { Close(); }

}  // namespace meshwire
