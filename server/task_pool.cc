#include "server/task_pool.h"

#include <pthread.h>
#include <spdlog/spdlog.h>

namespace meshwire {

TaskPool::TaskPool(std::size_t max_threads, std::size_t stack_bytes)
    : max_threads_(max_threads < 1 ? 1 : max_threads), stack_bytes_(stack_bytes) {}

TaskPool::~TaskPool() { shutdown(); }

void TaskPool::enqueue(std::function<void()> fn) {
  std::unique_lock lock(mu_);
  jobs_.push_back(std::move(fn));
  if (idle_ >= jobs_.size() || threads_.size() >= max_threads_) {
    lock.unlock();
    cv_.notify_one();
    return;
  }
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, stack_bytes_);
  pthread_t tid;
  int rc = pthread_create(
      &tid, &attr,
      [](void* self) -> void* {
        static_cast<TaskPool*>(self)->Work();
        return nullptr;
      },
      this);
  pthread_attr_destroy(&attr);
  if (rc == 0) {
    threads_.push_back(tid);
  } else if (threads_.empty()) {
    spdlog::critical("cannot start any worker thread (error {})", rc);
  } else {
    spdlog::warn("cannot start worker thread {} (error {}); the request waits for a free one",
                 threads_.size() + 1, rc);
  }
  lock.unlock();
  cv_.notify_one();
}

void TaskPool::Work() {
  std::unique_lock lock(mu_);
  for (;;) {
    ++idle_;
    cv_.wait(lock, [&] { return !jobs_.empty() || shutdown_; });
    --idle_;
    if (jobs_.empty()) return;  // shutdown and nothing left
    auto fn = std::move(jobs_.front());
    jobs_.pop_front();
    lock.unlock();
    fn();
    lock.lock();
  }
}

void TaskPool::shutdown() {
  std::vector<pthread_t> threads;
  {
    std::lock_guard lock(mu_);
    if (shutdown_) return;
    shutdown_ = true;
    threads.swap(threads_);
  }
  cv_.notify_all();
  for (pthread_t t : threads) pthread_join(t, nullptr);
}

std::size_t TaskPool::threads() const {
  std::lock_guard lock(mu_);
  return threads_.size();
}

}  // namespace meshwire
