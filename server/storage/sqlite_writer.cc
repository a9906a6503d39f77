#include "server/storage/sqlite_writer.h"

#include <spdlog/spdlog.h>

#include "schemas/error.h"

namespace meshwire {

namespace {
constexpr std::size_t kMaxBatch = 1024;
}

SqliteWriter::SqliteWriter(std::unique_ptr<SqliteConnection> conn)
    : conn_(std::move(conn)), thread_([this] { Loop(); }) {}

SqliteWriter::~SqliteWriter() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_one();
  thread_.join();
  if (commits_ > 0) {
    spdlog::info("storage: {} writes in {} commits (mean batch {:.1f})", ops_.load(), commits_.load(),
                 static_cast<double>(ops_) / static_cast<double>(commits_));
  }
}

void SqliteWriter::Run(Op op, std::function<void()> after_commit) {
  auto done = std::make_shared<std::promise<void>>();
  auto future = done->get_future();
  {
    std::lock_guard lock(mu_);
    if (stopping_) throw Error::Unavailable("The relay is shutting down; retry shortly.");
    queue_.push_back({std::move(op), std::move(done), std::move(after_commit), nullptr});
  }
  cv_.notify_one();
  future.get();
}

void SqliteWriter::Submit(Op op, std::function<void()> after_commit, Done done) {
  {
    std::lock_guard lock(mu_);
    if (!stopping_) {
      queue_.push_back({std::move(op), nullptr, std::move(after_commit), std::move(done)});
      cv_.notify_one();
      return;
    }
  }
  done(std::make_exception_ptr(Error::Unavailable("The relay is shutting down; retry shortly.")));
}

void SqliteWriter::RunLater(Op op) {
  {
    std::lock_guard lock(mu_);
    if (stopping_) return;
    queue_.push_back({std::move(op), nullptr, nullptr, nullptr});
  }
  cv_.notify_one();
}

void SqliteWriter::Loop() {
  std::deque<Pending> batch;
  for (;;) {
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return !queue_.empty() || stopping_; });
      if (queue_.empty()) return;  // stopping, nothing left
      while (!queue_.empty() && batch.size() < kMaxBatch) {
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
    }
    CommitBatch(batch);
    batch.clear();
  }
}

void SqliteWriter::CommitBatch(std::deque<Pending>& batch) {
  // Ops run back to back in one transaction. An op that throws is rare (a
  // constraint, a vanished mesh): then the transaction is rolled back and the
  // batch is run again without it, so no op ever sees another's partial
  // effects and a failure costs only a retry.
  std::vector<std::exception_ptr> errors(batch.size());
  std::exception_ptr batch_error;
  for (bool again = true; again;) {
    again = false;
    try {
      conn_->Prepare("BEGIN IMMEDIATE").Run();
      for (std::size_t i = 0; i < batch.size() && !again; ++i) {
        if (errors[i]) continue;
        try {
          batch[i].op(*conn_);
        } catch (...) {
          errors[i] = std::current_exception();
          again = true;
        }
      }
      if (again) {
        conn_->Exec("ROLLBACK");
        continue;
      }
      conn_->Prepare("COMMIT").Run();
      commits_.fetch_add(1, std::memory_order_relaxed);
      ops_.fetch_add(batch.size(), std::memory_order_relaxed);
      for (std::size_t i = 0; i < batch.size(); ++i) {
        if (errors[i] || !batch[i].after_commit) continue;
        try {
          batch[i].after_commit();
        } catch (...) {
          spdlog::error("after a commit: an exception (ignored: the op is committed)");
        }
      }
    } catch (...) {
      // The whole batch failed (BEGIN, a ROLLBACK or the COMMIT): report it
      // to every op and do not run it again, so no op is both committed and
      // reported failed.
      batch_error = std::current_exception();
      again = false;
      try {
        conn_->Exec("ROLLBACK");
      } catch (...) {
        // Nothing more to undo: the transaction is already gone.
      }
      try {
        std::rethrow_exception(batch_error);
      } catch (const std::exception& e) {
        spdlog::error("storage commit failed: {}", e.what());
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
