// The Store on PostgreSQL, for several relay nodes on one database. The
// logic is SqlStore's (sql_store.h), shared with SQLite; this adds the
// PostgreSQL schema, its migrations (versioned in meshwire_schema, run under
// an advisory lock so nodes starting together migrate once), and the
// connections: one writer (group commit, committing without waiting for the
// WAL flush), a flusher that makes its commits durable before anyone is
// answered (PgFlusher: synchronous_commit as the server sets it, on by
// default), and a pool of readers, which return messages only once durable.
#pragma once

#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "server/storage/pg_conn.h"
#include "server/storage/pg_flusher.h"
#include "server/storage/sql_store.h"

namespace meshwire {

class PostgresStore final : public SqlStore<PgConnection> {
 public:
  /// The schema version this build writes (older: migrated; newer: refused).
  static constexpr int kSchemaVersion = 3;

  /// Connects with a libpq URI or connection string (postgres://user:pass@
  /// host:port/db; libpq's PG* variables fill what it leaves out) and
  /// migrates the schema. Throws Error 503 with a sentence when it cannot.
  explicit PostgresStore(const std::string& conninfo);
  ~PostgresStore() override;

  /// This node's id (random per process): in /health and in the wake-up
  /// notifications each append sends inside its transaction (PgWakeBus).
  const std::string& node_id() const { return node_id_; }
  std::string NodeId() const override { return node_id_; }

  void ShareListening(const std::vector<std::string>& started, const std::vector<std::string>& stopped) override;
  std::vector<std::string> ListeningElsewhere(const std::string& mesh_id) override;
  /// How long a node that stopped sharing still counts.
  static constexpr std::int64_t kNodeAliveMs = 5000;
  /// SQL: the ids of the other nodes alive now (?1: this node's id, ?2:
  /// kNodeAliveMs), a beat that recent on the database's clock.
  static const char* const kOtherLiveNodes;

 protected:
  void AwaitDurable() override;

 private:
  /// Writes a run of one mesh's new messages (keys already looked up) in one
  /// statement: their (seq, id) in order; empty when the mesh is gone.
  std::vector<std::pair<std::int64_t, std::int64_t>> WriteMessages(PgConnection& c,
                                                                   const std::vector<const NewMessage*>& run);

 private:
  std::string node_id_;
  // As last shared, and a copy for the writer (ShareListening's caller thread only).
  std::set<std::string> listening_here_;
  std::shared_ptr<const std::vector<std::string>> listening_snapshot_;
  std::unique_ptr<PgFlusher> flusher_;
  static constexpr std::size_t kMaxReaders = 16;
  static std::unique_ptr<PgConnection> OpenWriter(const std::string& conninfo);
};

}  // namespace meshwire
