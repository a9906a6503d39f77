// The wake-up table for long-polls on one relay node. A poll parks a Ticket
// *before* it reads its backlog, so a message committed in between is never
// missed; a committed send then wakes exactly the tickets it concerns (the
// recipient's, or every agent's but the sender's for a broadcast).
// Deadlines are on the injected Clock: tests move a ManualClock and call
// Tick() instead of sleeping. A ticket may name its client's connection, so
// the relay can wake it for good when that client hangs up (EndWaits).
#pragma once

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "server/clock.h"
#include "server/tcp_probe.h"

namespace meshwire {

class Waiters {
 public:
  class Ticket;

  /// `max_parked`: how many tickets may be parked at once; past it Park fails.
  Waiters(const Clock& clock, std::size_t max_parked);
  ~Waiters();

  /// Parks a ticket for `agent_id` of `mesh_id`; `peer` names the client's
  /// connection when known. Returns null when the bound is reached or after
  /// Shutdown(). The ticket unparks when destroyed.
  std::unique_ptr<Ticket> Park(const std::string& mesh_id, const std::string& agent_id,
                               std::optional<TcpPeer> peer = std::nullopt);

  /// Blocks until the ticket is woken by a Notify (true), or the Clock reaches
  /// `deadline`, Shutdown() is called or its client hung up (false). Clears
  /// the woken flag, so the next Wait blocks again until the next Notify.
  bool Wait(Ticket& ticket, Millis deadline);

  /// True once EndWaits found the ticket's client gone.
  bool HungUp(const Ticket& ticket) const;

  /// How many tickets were ever parked: a ticket numbered at most this was
  /// parked before the call returned.
  std::uint64_t ParkCount() const;

  /// The connections of the tickets numbered at most `parked_by` (see
  /// ParkCount) that are still waiting.
  std::vector<TcpPeer> ParkedPeers(std::uint64_t parked_by) const;

  /// Wakes for good every ticket numbered at most `parked_by` whose
  /// connection is in `gone` (its client hung up). Returns how many.
  std::size_t EndWaits(const TcpPeerSet& gone, std::uint64_t parked_by);

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
  void DropPeer(Ticket* ticket);  // mu_ held

  const Clock& clock_;
  const std::size_t max_parked_;
  mutable std::mutex mu_;
  bool shut_down_ = false;        // guarded by mu_
  std::size_t parked_ = 0;        // guarded by mu_
  std::uint64_t park_count_ = 0;  // guarded by mu_
  // mesh id -> agent id -> parked tickets; guarded by mu_
  std::unordered_map<std::string, std::unordered_map<std::string, std::vector<Ticket*>>> table_;
  // The parked tickets that name a connection, in one flat array (swap-remove
  // on unpark) so the hang-up check copies it under mu_ in microseconds
  // instead of walking the table's scattered nodes; guarded by mu_.
  struct PeerEntry {
    TcpPeer peer;
    std::uint64_t number;
    Ticket* ticket;
  };
  std::vector<PeerEntry> peers_;

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
  const std::string mesh_id_;
  const std::string agent_id_;
  std::condition_variable cv_;
  bool woken_ = false;    // guarded by owner_.mu_
  bool hung_up_ = false;  // guarded by owner_.mu_
  std::size_t peer_index_ = SIZE_MAX;  // in owner_.peers_ while waiting; guarded by owner_.mu_
};

}  // namespace meshwire
