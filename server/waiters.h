// The wake-up table for long-polls on one relay node. A poll parks a Ticket
// *before* it reads its backlog, so a message committed in between is never
// missed; a committed send then wakes exactly the tickets it concerns (the
// recipient's, or every agent's but the sender's for a broadcast).
// Deadlines are on the injected Clock: tests move a ManualClock and call
// Tick() instead of sleeping.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "server/clock.h"

namespace meshwire {

class Waiters {
 public:
  class Ticket;

  /// `max_parked`: how many tickets may be parked at once; past it Park fails.
  Waiters(const Clock& clock, std::size_t max_parked);
  ~Waiters();

  /// Parks a ticket for `agent_id` of `mesh_id`. Returns null when the bound
  /// is reached or after Shutdown(). The ticket unparks when destroyed.
  std::unique_ptr<Ticket> Park(const std::string& mesh_id, const std::string& agent_id);

  /// Blocks until the ticket is woken by a Notify (true), or the Clock reaches
  /// `deadline` or Shutdown() is called (false). Clears the woken flag, so the
  /// next Wait blocks again until the next Notify.
  bool Wait(Ticket& ticket, Millis deadline);

  /// Wakes the tickets that a committed message from `from` to `to` (an agent
  /// id or "all") concerns.
  void Notify(const std::string& mesh_id, const std::string& from, const std::string& to);

  /// Makes every waiting ticket re-check its deadline (after moving a ManualClock).
  void Tick();

  /// Wakes every ticket for good and refuses new ones (relay shutdown).
  void Shutdown();

  std::size_t Parked() const;
  /// True while at least one poll of the agent is parked.
  bool IsListening(const std::string& agent_id) const;

 private:
  void Unpark(Ticket* ticket);

  const Clock& clock_;
  const std::size_t max_parked_;
  mutable std::mutex mu_;
  bool shut_down_ = false;  // guarded by mu_
  std::size_t parked_ = 0;  // guarded by mu_
  // mesh id -> agent id -> parked tickets; guarded by mu_
  std::unordered_map<std::string, std::unordered_map<std::string, std::vector<Ticket*>>> table_;

  friend class Ticket;
};

class Waiters::Ticket {
 public:
  ~Ticket();
  Ticket(const Ticket&) = delete;
  Ticket& operator=(const Ticket&) = delete;

 private:
  friend class Waiters;
  Ticket(Waiters& owner, std::string mesh_id, std::string agent_id)
      : owner_(owner), mesh_id_(std::move(mesh_id)), agent_id_(std::move(agent_id)) {}

  Waiters& owner_;
  std::string mesh_id_;
  std::string agent_id_;
  std::condition_variable cv_;
  bool woken_ = false;  // guarded by owner_.mu_
};

}  // namespace meshwire
