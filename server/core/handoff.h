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

// LoopTail: work an event-loop thread runs when it has run every handler that
// was ready, before it waits for more: the moment Redis writes its AOF.
//
// The SQLite writer's batches run there (BatchWriter::SetInline):
// the event-loop thread that read a batch's requests commits it itself and
// writes its answers, with no wake of a writer thread, and the requests that
// came meanwhile make the next batch. On a machine with two cores this keeps
// the relay to as many busy threads as there are event loops.
class LoopTail {
 public:
  using Fn = void (*)(void* target);
  /// Marks this thread as an event loop that runs its tail (the runtime's
  /// threads).
  static void Enable();
  /// Runs what is deferred, then marks this thread as no event loop (its
  /// loop ended; nothing deferred may wait for a tail that never comes).
  static void Disable();
  /// Whether this thread runs a tail (Defer may be used).
  static bool Enabled();
  /// Runs `fn(target)` at this thread's next tail, once however often it is
  /// deferred before then. Enabled() must be true.
  static void Defer(void* target, Fn fn);
  /// Runs what was deferred (and what that defers), in order.
  static void Run();
};

}  // namespace meshwire
