// Executor: where work that may block (storage) runs when it is not the
// caller's to do, e.g. answering a long-poll that a commit woke on the
// writer's thread. The relay's runtime supplies a worker pool; tests may run
// work inline. The rules (MeshService, Waiters) know only this interface.
#pragma once

#include <functional>

namespace meshwire {

class Executor {
 public:
  virtual ~Executor() = default;
  /// Runs `work` soon, on some thread of the executor's; never on the caller's
  /// stack unless the executor is an inline one. `work` must not throw.
  virtual void Post(std::function<void()> work) = 0;
};

/// Runs work at once on the caller's thread (unit tests).
class InlineExecutor final : public Executor {
 public:
  void Post(std::function<void()> work) override { work(); }
};

}  // namespace meshwire
