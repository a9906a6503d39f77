// HandOffBatch: completions that a thread hands to other threads, gathered
// while one batch of them is made, and handed over together.
//
// The group-commit writer answers a batch of sends at once; each answer is
// work for the event loop of its connection. Handed over one by one, each can
// wake an event-loop thread (a futex wake and a thread switch, dear on this
// kind of machine). While a HandOffBatch is open on a thread, a target that
// supports gathering (the HTTP runtime) adds its work here instead, and the
// batch's end gives each target its list in one call, which hands it over in
// a few posts instead of one per answer.
#pragma once

#include <functional>
#include <vector>

namespace meshwire {

class HandOffBatch {
 public:
  using Work = std::function<void()>;
  /// Hands `work` (in order) to `target`'s threads.
  using Flush = void (*)(void* target, std::vector<Work> work);

  /// Opens a batch on this thread; nested batches join the outer one.
  HandOffBatch();
  /// Gives every target its gathered work (also when unwinding).
  ~HandOffBatch();
  HandOffBatch(const HandOffBatch&) = delete;
  HandOffBatch& operator=(const HandOffBatch&) = delete;

  /// Whether a batch is open on this thread.
  static bool Open();
  /// Gathers `work` for `target` in the batch open on this thread (Open()
  /// must be true). All of one target's work uses one `flush`.
  static void Add(void* target, Flush flush, Work work);

 private:
  bool outer_;
};

}  // namespace meshwire
