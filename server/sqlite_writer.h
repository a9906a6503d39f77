// The one writer of a SQLite database, with group commit: operations submitted
// from many threads are run in a single transaction (each in its own
// savepoint, so one failing op does not undo the others) and each submitter is
// answered only after the COMMIT that holds its operation. With WAL and
// synchronous=FULL that is one fsync per batch instead of one per request.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "server/sqlite_conn.h"

namespace meshwire {

class SqliteWriter {
 public:
  using Op = std::function<void(SqliteConnection&)>;

  /// Takes ownership of the connection; starts the writer thread.
  explicit SqliteWriter(std::unique_ptr<SqliteConnection> conn);
  /// Runs what is queued, then stops the thread and closes the connection.
  ~SqliteWriter();

  /// Runs `op` in the next batch and returns after its commit. Rethrows what
  /// `op` threw (its changes rolled back), or Error 503 if the commit failed.
  void Run(Op op);
  /// Queues `op` without waiting (advisory writes: presence, token use).
  void RunLater(Op op);

 private:
  struct Pending {
    Op op;
    std::shared_ptr<std::promise<void>> done;  // null for RunLater
  };
  void Loop();
  void CommitBatch(std::deque<Pending>& batch);

  std::unique_ptr<SqliteConnection> conn_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Pending> queue_;  // guarded by mu_
  bool stopping_ = false;      // guarded by mu_
  std::thread thread_;
};

}  // namespace meshwire
