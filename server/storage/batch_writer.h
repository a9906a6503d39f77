// The one writer of a store's database, with group commit: operations
// submitted from many threads are run in a single transaction (an op that
// throws is taken out and the rest run again, so one failing op does not undo
// the others) and each submitter is answered only after the COMMIT that holds
// its operation: one fsync per batch instead of one per request.
//
// `Conn` is the backend's connection (SqliteConnection, PgConnection) with
// Begin(), Commit() and Rollback(); ops receive it to run their statements.
// A TransactionConflict thrown by either (conflict.h) runs the batch again.
#pragma once

#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "schemas/error.h"
#include "server/core/handoff.h"
#include "server/core/thread_name.h"
#include "server/storage/conflict.h"

namespace meshwire {

template <class Conn>
class BatchWriter {
 public:
  using Op = std::function<void(Conn&)>;

  /// Takes ownership of the connection; starts the writer thread.
  explicit BatchWriter(std::unique_ptr<Conn> conn);
  /// Runs what is queued, then stops the thread and closes the connection.
  ~BatchWriter();
  BatchWriter(const BatchWriter&) = delete;
  BatchWriter& operator=(const BatchWriter&) = delete;

  /// Runs `op` in the next batch and returns after its commit. Never from an
  /// op, an after_commit or a completion: they run inside a batch, which
  /// this would wait for (a deadlock, on the writer or an event loop). Rethrows what
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
  /// As Submit, run no sooner than `delay` from now (ops given the same
  /// delay run in the order they came); stopping the writer runs it at once.
  void SubmitAfter(std::chrono::milliseconds delay, Op op, std::function<void()> after_commit, Done done);

  /// Whether an event-loop thread that queues an op without waiting for it
  /// (Submit, RunLater) commits it itself at its loop's tail (LoopTail in
  /// handoff.h) instead of waking the writer thread. Only while commits are
  /// quick: after a commit that failed or took kInlineBudget or more (a
  /// disk or a database server in trouble), the writer thread commits until
  /// one of its commits is quick again, so an event loop waits on a slow
  /// database at most once.
  void SetInline(bool on) { inline_.store(on, std::memory_order_relaxed); }
  static constexpr std::chrono::milliseconds kInlineBudget{50};

  /// Transactions committed so far.
  std::uint64_t commits() const { return commits_.load(std::memory_order_relaxed); }
  /// The writer thread waits for work, and no batch runs or is queued: then
  /// an op an event loop queues is left to its tail (tests use this; a
  /// batch's answers run before its runner is done with it, and a writer
  /// thread not yet waiting takes what it finds queued).
  bool Idle() {
    std::lock_guard lock(mu_);
    return waiting_ && !running_ && queue_.empty();
  }

  /// Runs what is queued, then stops the thread (the destructor's first
  /// step; idempotent). Ops submitted meanwhile, from an answer too, fail
  /// with Error 503 "shutting down".
  void Stop();

 private:
  struct Pending {
    Op op;
    std::shared_ptr<std::promise<void>> done;  // Run's waiter
    std::function<void()> after_commit;
    Done callback;  // Submit's; neither it nor `done`: RunLater
  };
  static constexpr std::size_t kMaxBatch = 1024;
  /// Times a batch runs again after the database rolled it back over a
  /// conflict with another transaction (another node's, on PostgreSQL).
  static constexpr int kConflictRetries = 3;
  /// Queues `pending` (after `delay`, if any) and wakes the writer; false,
  /// and `pending` untouched, once the writer is stopping.
  /// An op nobody waits for, queued by an event loop that runs its tail,
  /// may be left to that tail (`may_defer`).
  bool Enqueue(Pending& pending, std::chrono::milliseconds delay = std::chrono::milliseconds(0),
               bool may_defer = false);
  /// Commits what is queued on this thread, unless a batch is running
  /// (its runner then leaves the rest to the writer thread).
  void RunInline();
  /// Moves the queue's first ops (at most kMaxBatch) into `batch` and marks
  /// a batch running; mu_ held, the queue not empty.
  void TakeBatch(std::deque<Pending>& batch);
  static std::exception_ptr ShuttingDown();
  /// Whether `e` is a TransactionConflict.
  static bool IsConflict(const std::exception_ptr& e);
  void Loop();
  void CommitBatch(std::deque<Pending>& batch);
  /// Runs the after_commit of the ops that committed (when `batch_error` is
  /// null), then answers every op: its own error, else `batch_error`.
  static void AnswerBatch(std::deque<Pending>& batch, const std::vector<std::exception_ptr>& errors,
                          std::exception_ptr batch_error);

  std::unique_ptr<Conn> conn_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Pending> queue_;  // guarded by mu_
  struct Delayed {
    std::chrono::steady_clock::time_point due;
    Pending pending;
  };
  std::deque<Delayed> delayed_;  // SubmitAfter's, by due time; guarded by mu_
  bool stopping_ = false;      // guarded by mu_
  bool running_ = false;       // a batch is being committed (by any thread); guarded by mu_
  bool waiting_ = false;       // the writer thread waits on cv_; guarded by mu_
  std::atomic<bool> inline_{false};
  std::atomic<bool> quick_{true};  // the last commit succeeded within kInlineBudget
  std::atomic<std::uint64_t> commits_{0};  // transactions committed (ops / commits: the mean batch)
  std::atomic<std::uint64_t> ops_{0};
  std::thread thread_;
};

template <class Conn>
BatchWriter<Conn>::BatchWriter(std::unique_ptr<Conn> conn)
    : conn_(std::move(conn)), thread_([this] {
        NameThisThread("mw-writer");
        Loop();
      }) {}

template <class Conn>
BatchWriter<Conn>::~BatchWriter() {
  Stop();
  if (commits_ > 0) {
    spdlog::debug("storage: {} write operations in {} commits ({:.1f} per commit; the sends gathered while a commit ran are one)",
                  ops_.load(), commits_.load(),
                  static_cast<double>(ops_) / static_cast<double>(commits_));
  }
}

template <class Conn>
void BatchWriter<Conn>::Stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_one();
  if (thread_.joinable()) thread_.join();
}

template <class Conn>
bool BatchWriter<Conn>::Enqueue(Pending& pending, std::chrono::milliseconds delay, bool may_defer) {
  const bool defer = may_defer && delay.count() == 0 && inline_.load(std::memory_order_relaxed) &&
                     quick_.load(std::memory_order_relaxed) && LoopTail::Enabled();
  {
    std::lock_guard lock(mu_);
    if (stopping_) return false;
    if (delay.count() > 0) {
      delayed_.push_back({std::chrono::steady_clock::now() + delay, std::move(pending)});
    } else {
      queue_.push_back(std::move(pending));
    }
  }
  if (defer) {
    LoopTail::Defer(this, [](void* self) { static_cast<BatchWriter*>(self)->RunInline(); });
  } else {
    cv_.notify_one();
  }
  return true;
}

template <class Conn>
void BatchWriter<Conn>::RunInline() {
  std::deque<Pending> batch;
  {
    std::lock_guard lock(mu_);
    if (running_ || stopping_) return;  // the runner, or Stop, leaves the queue to the writer thread
    if (!quick_.load(std::memory_order_relaxed)) {
      // A commit turned slow since this was deferred: the writer thread's.
      if (!queue_.empty()) cv_.notify_one();
      return;
    }
    if (queue_.empty()) return;
    TakeBatch(batch);
  }
  // Whatever CommitBatch throws (it answers every op first; bad_alloc at
  // worst), the writer thread is let run again.
  struct Release {
    BatchWriter& w;
    ~Release() {
      bool more = false;
      {
        std::lock_guard lock(w.mu_);
        w.running_ = false;
        more = !w.queue_.empty() || w.stopping_;  // the writer thread waits while a batch runs
      }
      if (more) w.cv_.notify_one();
    }
  } release{*this};
  CommitBatch(batch);
}

template <class Conn>
void BatchWriter<Conn>::TakeBatch(std::deque<Pending>& batch) {
  while (!queue_.empty() && batch.size() < kMaxBatch) {
    batch.push_back(std::move(queue_.front()));
    queue_.pop_front();
  }
  running_ = true;
}

template <class Conn>
std::exception_ptr BatchWriter<Conn>::ShuttingDown() {
  return std::make_exception_ptr(Error::Unavailable("The relay is shutting down; retry shortly."));
}

template <class Conn>
void BatchWriter<Conn>::Run(Op op, std::function<void()> after_commit) {
  auto done = std::make_shared<std::promise<void>>();
  auto future = done->get_future();
  Pending pending{std::move(op), std::move(done), std::move(after_commit), nullptr};
  if (!Enqueue(pending)) std::rethrow_exception(ShuttingDown());
  future.get();
}

template <class Conn>
void BatchWriter<Conn>::Submit(Op op, std::function<void()> after_commit, Done done) {
  SubmitAfter(std::chrono::milliseconds(0), std::move(op), std::move(after_commit), std::move(done));
}

template <class Conn>
void BatchWriter<Conn>::RunLater(Op op) {
  Pending pending{std::move(op), nullptr, nullptr, nullptr};
  Enqueue(pending, std::chrono::milliseconds(0), /*may_defer=*/true);  // dropped when stopping: advisory
}

template <class Conn>
void BatchWriter<Conn>::SubmitAfter(std::chrono::milliseconds delay, Op op, std::function<void()> after_commit,
                                    Done done) {
  Pending pending{std::move(op), nullptr, std::move(after_commit), std::move(done)};
  if (!Enqueue(pending, delay, /*may_defer=*/true)) pending.callback(ShuttingDown());
}

template <class Conn>
void BatchWriter<Conn>::Loop() {
  std::deque<Pending> batch;
  for (;;) {
    {
      std::unique_lock lock(mu_);
      for (;;) {
        // Delayed ops that are due (all of them when stopping) join the queue.
        const auto now = std::chrono::steady_clock::now();
        while (!delayed_.empty() && (stopping_ || delayed_.front().due <= now)) {
          queue_.push_back(std::move(delayed_.front().pending));
          delayed_.pop_front();
        }
        if (!running_ && (!queue_.empty() || stopping_)) break;
        // An op, the first delay, or the end of a batch an event loop runs.
        waiting_ = true;
        if (delayed_.empty()) {
          cv_.wait(lock);
        } else {
          cv_.wait_until(lock, delayed_.front().due);
        }
        waiting_ = false;
      }
      if (queue_.empty()) return;  // stopping, nothing left
      TakeBatch(batch);
    }
    CommitBatch(batch);
    batch.clear();
    std::lock_guard lock(mu_);
    running_ = false;
  }
}

template <class Conn>
bool BatchWriter<Conn>::IsConflict(const std::exception_ptr& e) {
  try {
    std::rethrow_exception(e);
  } catch (const TransactionConflict&) {
    return true;
  } catch (...) {
    return false;
  }
}

template <class Conn>
void BatchWriter<Conn>::CommitBatch(std::deque<Pending>& batch) {
  // Ops run back to back in one transaction. An op that throws is rare (a
  // constraint, a vanished mesh): then the transaction is rolled back and the
  // batch is run again without it, so no op ever sees another's partial
  // effects and a failure costs only a retry.
  //
  // A conflict with another transaction (a deadlock with another node's
  // writer, on PostgreSQL) is no op's fault: the database rolled the whole
  // transaction back, so the batch runs again as it was, a few times.
  std::vector<std::exception_ptr> errors(batch.size());
  std::exception_ptr batch_error;
  int conflicts = 0;
  const auto began = std::chrono::steady_clock::now();
  auto again_after_conflict = [&](const std::exception_ptr& e) {
    if (!IsConflict(e) || conflicts == kConflictRetries) return false;
    ++conflicts;
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& what) {
      spdlog::warn("storage: a transaction was rolled back over a conflict ({}); running it again", what.what());
    }
    return true;
  };
  // A conflict that lasted through the retries: a 503, as when the database
  // is away (nothing was written; a later retry may succeed).
  auto reported = [](std::exception_ptr e) {
    if (!IsConflict(e)) return e;
    return std::make_exception_ptr(
        Error::Unavailable("The database rolled the write back over a conflict with another; retry shortly."));
  };
  for (bool again = true; again;) {
    again = false;
    try {
      conn_->Begin();
      for (std::size_t i = 0; i < batch.size() && !again; ++i) {
        if (errors[i]) continue;
        try {
          batch[i].op(*conn_);
        } catch (...) {
          if (!again_after_conflict(std::current_exception())) errors[i] = reported(std::current_exception());
          again = true;
        }
      }
      if (again) {
        conn_->Rollback();
        continue;
      }
      conn_->Commit();
      commits_.fetch_add(1, std::memory_order_relaxed);
      ops_.fetch_add(batch.size(), std::memory_order_relaxed);
    } catch (...) {
      // The whole batch failed (BEGIN, a ROLLBACK or the COMMIT): report it
      // to every op and do not run it again, so no op is both committed and
      // reported failed; unless the database says it rolled it back.
      batch_error = std::current_exception();
      again = again_after_conflict(batch_error);
      try {
        conn_->Rollback();
      } catch (...) {
        // Nothing more to undo: the transaction is already gone.
      }
      if (again) {
        batch_error = nullptr;
        continue;
      }
      batch_error = reported(batch_error);
      try {
        std::rethrow_exception(batch_error);
      } catch (const std::exception& e) {
        spdlog::error("storage commit failed: {}", e.what());
      }
    }
  }
  quick_.store(!batch_error && std::chrono::steady_clock::now() - began < kInlineBudget,
               std::memory_order_relaxed);
  // The answers' hand-offs to the event loops go together (handoff.h).
  HandOffBatch gather;
  AnswerBatch(batch, errors, batch_error);
}

template <class Conn>
void BatchWriter<Conn>::AnswerBatch(std::deque<Pending>& batch, const std::vector<std::exception_ptr>& errors,
                               std::exception_ptr batch_error) {
  if (!batch_error) {
    for (std::size_t i = 0; i < batch.size(); ++i) {
      if (errors[i] || !batch[i].after_commit) continue;
      try {
        batch[i].after_commit();
      } catch (...) {
        spdlog::error("after a commit: an exception (ignored: the op is committed)");
      }
    }
  }
  for (std::size_t i = 0; i < batch.size(); ++i) {
    std::exception_ptr error = errors[i] ? errors[i] : batch_error;
    if (batch[i].callback) {
      try {
        batch[i].callback(error);
      } catch (...) {
        spdlog::error("after a write: an exception from its completion (ignored)");
      }
    }
    if (!batch[i].done) continue;
    if (error) {
      batch[i].done->set_exception(error);
    } else {
      batch[i].done->set_value();
    }
  }
}

}  // namespace meshwire
