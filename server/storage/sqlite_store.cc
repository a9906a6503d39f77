#include "server/storage/sqlite_store.h"

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
          kMaxReaders) {}

SqliteStore::~SqliteStore() { Close(); }

}  // namespace meshwire
