// Waiters: the long-polls parked on one relay node, as small records waiting
// for a completion; no thread is held by a parked poll.
//
// A poll parks *before* it reads its backlog (Park), so a message committed
// in between is never missed: from Park on, every committed message that
// concerns the agent (to it, or a broadcast not from it) with seq > `after`
// is collected for the waiter. When the backlog read finds nothing, the poll
// arms the waiter with its completion (Arm), which then runs exactly once:
// with the collected messages (at once, if some came already), at the
// deadline, at Shutdown, or on Cancel (the client hung up).
//
// Committed messages arrive through Notify in seq order per mesh (the
// WakeBus's contract), so the collected messages are exactly what the agent
// would read from storage: a woken poll answers them without a read.
//
// Completions run on the waking thread (a committing writer, the timer, a
// cancelling connection), outside the lock, and must only post work.
// Deadlines are on the injected Clock: tests move a ManualClock and call
// ExpireDue() (or Tick() with the timer running) instead of sleeping.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "server/core/clock.h"
#include "server/core/wake_bus.h"

namespace meshwire {

class Waiters {
 public:
  struct Limits {
    std::size_t total = 200000;    // memory bound for the whole node
    std::size_t per_agent = 64;    // one agent cannot park more
    std::size_t per_token = 1000;  // one token (one user's client) cannot take them all
  };
  enum class Outcome { kMessages, kTimeout, kShutdown, kCancelled };
  using Completion = std::function<void(Outcome, std::vector<CommittedPtr>)>;
  class Waiter;
  using Handle = std::shared_ptr<Waiter>;

  Waiters(const Clock& clock, Limits limits);
  /// Stops the timer thread; completes nothing (call Shutdown first).
  ~Waiters();

  /// Registers a wait of `agent_id` of `mesh_id` for messages with seq >
  /// `after`, ending at `deadline` (on the Clock). Throws Error 429 with
  /// Retry-After past the per-agent or per-token bound, 503 past the total
  /// bound or after Shutdown; then nothing is registered.
  Handle Park(const std::string& mesh_id, const std::string& agent_id,
              const std::string& token_id, std::int64_t after, Millis deadline);

  /// Arms a parked waiter: `done` runs exactly once (see the file comment).
  /// If messages were collected since Park, or the deadline has passed, or
  /// the waiter was cancelled, it runs at once on this thread.
  void Arm(const Handle& waiter, Completion done);

  /// Ends the wait: an armed waiter's completion runs with kCancelled (unless
  /// it already ran), and the waiter is unparked. Any thread, any time, more
  /// than once.
  void Cancel(const Handle& waiter);

  /// Wakes the waiters a committed message concerns (the WakeBus subscriber).
  void Notify(const CommittedPtr& message);

  /// Completes every armed waiter whose deadline has come (kTimeout).
  void ExpireDue();
  /// Starts a thread that calls ExpireDue() as deadlines come.
  void StartTimer();
  /// Makes the timer thread look at the Clock again (after moving a ManualClock).
  void Tick();

  /// Completes the waiters of one agent with kTimeout (the agent was
  /// deleted: their completions look again and answer that); one still
  /// reading its backlog (parked, not armed) completes as it is armed.
  void EndAgent(const std::string& mesh_id, const std::string& agent_id);
  /// The same for every waiter of a mesh (the mesh was deleted).
  void EndMesh(const std::string& mesh_id);
  /// The same for every waiter parked with a token (it was revoked).
  void EndToken(const std::string& token_id);

  /// Completes every armed waiter with kShutdown and refuses new ones.
  void Shutdown();

  std::size_t Parked() const;
  /// True while at least one armed poll of the agent waits.
  bool IsListening(const std::string& agent_id) const;
  /// Whether a poll is parked on `mesh_id` (from Park on).
  bool Watches(const std::string& mesh_id) const;
  /// The agents listening now or at any moment since the last call (a poll
  /// answered and parked again in between still counts): what a node shares
  /// with the others. The first call starts the tracking.
  std::vector<std::string> TakeListening();

 private:
  /// A finished waiter's completion, to run once the lock is released.
  struct Fired {
    Handle waiter;  // keeps it alive until then
    Completion done;
    Outcome outcome;
    std::vector<CommittedPtr> messages;
  };
  /// Takes the waiter out of every index; returns the table's reference. mu_ held.
  Handle Unpark(Waiter* waiter);
  /// Marks the waiter done and unparks it. mu_ held.
  Fired Finish(Waiter* waiter, Outcome outcome);
  static void Run(std::vector<Fired>& fired);
  /// EndAgent and the others: ends each waiter of `list` (made with
  /// `token_id`, when given). mu_ held.
  void End(const std::vector<Handle>& list, const std::string* token_id, std::vector<Fired>& fired);
  void TimerLoop();

  const Clock& clock_;
  const Limits limits_;
  mutable std::mutex mu_;
  bool shut_down_ = false;  // guarded by mu_
  std::size_t parked_ = 0;  // guarded by mu_
  // mesh id -> agent id -> its waiters; guarded by mu_
  std::unordered_map<std::string, std::unordered_map<std::string, std::vector<Handle>>> table_;
  std::unordered_map<std::string, std::size_t> per_token_;  // guarded by mu_
  std::multimap<Millis, Waiter*> deadlines_;                // guarded by mu_
  std::unordered_map<std::string, std::size_t> armed_by_agent_;  // listening; guarded by mu_
  bool track_listening_ = false;                   // TakeListening was called; guarded by mu_
  std::unordered_set<std::string> armed_since_;    // since its last call; guarded by mu_

  std::condition_variable timer_cv_;
  bool timer_stop_ = false;  // guarded by mu_
  std::thread timer_;
};

class Waiters::Waiter {
 public:
  Waiter(std::string mesh_id, std::string agent_id, std::string token_id, std::int64_t after,
         Millis deadline)
      : mesh_id_(std::move(mesh_id)),
        agent_id_(std::move(agent_id)),
        token_id_(std::move(token_id)),
        after_(after),
        deadline_(deadline) {}

 private:
  friend class Waiters;
  const std::string mesh_id_;
  const std::string agent_id_;
  const std::string token_id_;
  const std::int64_t after_;
  const Millis deadline_;
  // All below guarded by the owner's mu_.
  bool parked_ = true;
  bool armed_ = false;
  bool done_ = false;
  bool ended_ = false;  // ended (EndAgent, ...) before it was armed
  std::vector<CommittedPtr> collected_;
  Completion completion_;
  std::multimap<Millis, Waiter*>::iterator deadline_at_;
};

}  // namespace meshwire
