// The embedded Store: one SQLite file in WAL mode with synchronous=FULL.
// The logic is SqlStore's (sql_store.h); this adds the schema, its
// migrations, and the connections: one writer (group commit) and read-only
// readers, which WAL lets run beside it.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "server/storage/sql_store.h"
#include "server/storage/sqlite_conn.h"

namespace meshwire {

class SqliteStore final : public SqlStore<SqliteConnection> {
 public:
  /// The schema version this build writes. Opening a database of an older
  /// version migrates it in one transaction; a newer one is refused.
  static constexpr int kSchemaVersion = 2;

  /// Opens or creates the database at `path` (its folder must exist).
  /// Throws Error 503 with a sentence naming the path when it cannot.
  explicit SqliteStore(const std::string& path);
  /// Commits what the writer has queued, then closes every connection.
  ~SqliteStore() override;
  /// SQLite's data_version on the writer's connection: it moves with each
  /// commit of another connection, and the relay's readers never commit.
  std::uint64_t OutsideChanges() override;

 private:
  // Thousands of woken long-polls share a few connections (and their page
  // caches) instead of opening one each. More than the relay's default
  // workers plus event loops, so an event loop (the send route reads on a
  // cache miss) rarely waits for one.
  static constexpr std::size_t kMaxReaders = 40;

  /// Writes `run`, new messages of one mesh, on the writer: their (seq, id),
  /// in order; none when the mesh is gone.
  static std::vector<std::pair<std::int64_t, std::int64_t>> WriteMessages(
      SqliteConnection& c, const std::vector<const NewMessage*>& run);
  /// The write connection, its schema migrated.
  static std::unique_ptr<SqliteConnection> OpenWriter(const std::string& path);
};

}  // namespace meshwire
