// The Store on PostgreSQL, for several relay nodes on one database. The
// logic is SqlStore's (sql_store.h), shared with SQLite; this adds the
// PostgreSQL schema, its migrations (versioned in meshwire_schema, run under
// an advisory lock so nodes starting together migrate once), and the
// connections: one writer (group commit) and a pool of readers.
//
// Durability without holding the mesh row through the flush: the writer's
// transactions commit with synchronous_commit off, so the row that hands out
// a mesh's seqs is released at the COMMIT, and in the same round trip a flush
// barrier follows (a transaction writing one WAL record and no row,
// kFlushBarrier, committed with the server's synchronous_commit): the batch
// is answered only once that returns, and it returns only once the WAL is
// durable past the batch. A
// commit is visible before it is durable, so a read that found messages
// runs the same barrier on its own connection when the WAL's flush is behind
// its insert position: no node shows a message that a database crash could
// take back (and whose seq it would give to another). Both on the connection
// that wrote or read: a crash in between loses the connection, and the
// request fails instead of being confirmed by a new session.
//
// Gathered sends are written in the COMMIT's round trip (PgConnection::
// AtCommit): BEGIN, the statement that takes the mesh row and inserts the
// run, its NOTIFY, COMMIT and the barrier go in one pipeline, so the mesh
// row is locked only while the server runs them, never across a round trip
// to the node; two nodes writing one mesh no longer wait on each other's.
// Sends with an idempotency key are written at once (the key is looked up
// first), so their mesh row stays locked until the COMMIT; when a batch has
// such sends and more than one mesh, it locks all its meshes' rows first,
// in byte order, as every node's plain sends are (SqlStore::SetMeshLocker).
// Rows written by periodic writes (presence, fetched marks) go in agent id
// order. A transaction the server still rolls back over a deadlock runs
// again (BatchWriter).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "server/storage/pg_conn.h"
#include "server/storage/sql_store.h"

namespace meshwire {

class PostgresStore final : public SqlStore<PgConnection> {
 public:
  /// The schema version this build writes (older: migrated; newer: refused).
  static constexpr int kSchemaVersion = 8;

  /// Connects with a libpq URI or connection string (postgres://user:pass@
  /// host:port/db; libpq's PG* variables fill what it leaves out) and
  /// migrates the schema. Throws Error 503 with a sentence when it cannot.
  explicit PostgresStore(const std::string& conninfo);
  ~PostgresStore() override;
  /// Says the node stops (its row in `nodes` goes: its listeners stop
  /// counting at once), then closes the writer.
  void Close() override;

  /// This node's id (random per process): in /health and in the wake-up
  /// notifications each append sends inside its transaction (PgWakeBus).
  /// The server's synchronous_commit for this relay's sessions ("on", "off", ...).
  std::string SynchronousCommit();
  const std::string& node_id() const { return node_id_; }
  std::string NodeId() const override { return node_id_; }

  void ShareListening(const std::vector<std::string>& started, const std::vector<std::string>& stopped) override;
  std::vector<std::string> ListeningElsewhere(const std::string& mesh_id) override;
  /// How long a node that stopped sharing still counts.
  static constexpr std::int64_t kNodeAliveMs = 5000;
  /// SQL: the ids of the other nodes alive now (?1: this node's id, ?2:
  /// kNodeAliveMs), a beat that recent on the database's clock.
  static const char* const kOtherLiveNodes;
  /// The flush barrier of every connection (PgConnection::SetFlushBarrier).
  static const char* const kFlushBarrier;
  /// The (seq, id)s of the run of `n` messages that wrote "tag seq0 id0;"
  /// into `marker`: (seq0 + k, id0 + k) for k = 1..n; none if it wrote no
  /// entry (its mesh was gone). Public for its test.
  static std::vector<std::pair<std::int64_t, std::int64_t>> SeqIdsFromMarker(const std::string& marker,
                                                                             std::int64_t tag, std::size_t n);

 protected:
  void AwaitDurable(PgConnection& reader) override;

 private:
  PostgresStore(const std::string& conninfo, std::string node_id);
  /// The one statement that writes a run of one mesh's new messages (keys
  /// already looked up), bound, not yet run: its rows are their (seq, id) in
  /// order, none when the mesh is gone. Registers the transaction's
  /// notification for the mesh. With `tag` >= 0 (run at the commit) it also
  /// adds "tag seq0 id0;" to the writer's commit marker, from which the
  /// (seq, id)s are rebuilt if its answer is lost (SeqIdsFromMarker).
  PgStatement WriteMessagesStatement(PgConnection& c, const std::vector<const NewMessage*>& run, std::int64_t tag);

  std::string node_id_;
  bool closed_ = false;  // Close's caller's thread only
  // As last shared, and a copy for the writer (ShareListening's caller thread only).
  std::set<std::string> listening_here_;
  std::shared_ptr<const std::vector<std::string>> listening_snapshot_;
  // A beat failed (the database away, a conflict): what it carried is lost,
  // so the next one writes the node's listeners whole (set on the writer).
  std::atomic<bool> rewrite_listeners_{false};
  static constexpr std::size_t kMaxReaders = 16;
  static std::unique_ptr<PgConnection> OpenWriter(const std::string& conninfo, const std::string& node_id);
};

}  // namespace meshwire
