// The one writer of a SQLite database, with group commit: operations submitted
// from many threads are run in a single transaction (an op that throws is
// taken out and the rest run again, so one failing op does not undo the
// others) and each submitter is answered only after the COMMIT that holds its
// operation. With WAL and
// synchronous=FULL that is one fsync per batch instead of one per request.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "server/storage/sqlite_conn.h"

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
  /// `op` may run more than once (a retry after another op failed), always
  /// in a fresh transaction: it must not keep state between runs.
  /// `after_commit`, when given, runs on the writer's thread once the commit
  /// holding `op` succeeded, in the order of the batch, before Run returns.
  void Run(Op op, std::function<void()> after_commit = nullptr);
  /// As Run, without waiting: `done` runs on the writer's thread after the
  /// commit (with null) or the failure (with what was thrown), once.
  using Done = std::function<void(std::exception_ptr)>;
  void Submit(Op op, std::function<void()> after_commit, Done done);
  /// Queues `op` without waiting (advisory writes: presence, token use).
  void RunLater(Op op);

  /// Transactions committed and operations run so far (ops / commits is the
  /// mean group-commit batch).

 private:
  struct Pending {
    Op op;
    std::shared_ptr<std::promise<void>> done;  // Run's waiter
    std::function<void()> after_commit;
    Done callback;  // Submit's; neither it nor `done`: RunLater
  };
  void Loop();
  void CommitBatch(std::deque<Pending>& batch);

  std::unique_ptr<SqliteConnection> conn_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Pending> queue_;  // guarded by mu_
  bool stopping_ = false;      // guarded by mu_
  std::atomic<std::uint64_t> commits_{0};
  std::atomic<std::uint64_t> ops_{0};
  std::thread thread_;
};

}  // namespace meshwire
