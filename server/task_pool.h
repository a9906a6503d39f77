// The relay's worker pool, given to cpp-httplib through new_task_queue.
// cpp-httplib serves a connection on one worker for its whole keep-alive life
// and a long-poll holds its worker while it waits, so the pool must hold
// thousands of mostly-idle threads: it starts them on demand, up to
// `max_threads`, each with a small stack, and keeps them for reuse.
#pragma once

#include <httplib.h>

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <vector>

namespace meshwire {

class TaskPool final : public httplib::TaskQueue {
 public:
  /// `stack_bytes`: each worker's stack (the default 8 MiB would reserve
  /// gigabytes of address space for thousands of threads).
  TaskPool(std::size_t max_threads, std::size_t stack_bytes = 256 * 1024);
  ~TaskPool() override;

  /// Runs `fn` on an idle worker, starting one if none is idle and the limit
  /// allows; otherwise it waits in the queue for the next free worker.
  void enqueue(std::function<void()> fn) override;
  /// Runs what is queued, then joins every worker.
  void shutdown() override;

  std::size_t threads() const;

 private:
  void Work();

  const std::size_t max_threads_;
  const std::size_t stack_bytes_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> jobs_;  // guarded by mu_
  std::vector<pthread_t> threads_;          // guarded by mu_
  std::size_t idle_ = 0;                    // guarded by mu_
  bool shutdown_ = false;                   // guarded by mu_
};

}  // namespace meshwire
