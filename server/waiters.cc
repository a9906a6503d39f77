#include "server/waiters.h"

#include <algorithm>
#include <chrono>

namespace meshwire {

Waiters::Waiters(const Clock& clock, std::size_t max_parked)
    : clock_(clock), max_parked_(max_parked) {}

Waiters::~Waiters() = default;

std::unique_ptr<Waiters::Ticket> Waiters::Park(const std::string& mesh_id,
                                               const std::string& agent_id,
                                               std::optional<TcpPeer> peer) {
  std::lock_guard lock(mu_);
  if (shut_down_ || parked_ >= max_parked_) return nullptr;
  std::unique_ptr<Ticket> ticket(new Ticket(*this, mesh_id, agent_id));
  ++park_count_;
  table_[mesh_id][agent_id].push_back(ticket.get());
  if (peer) {
    ticket->peer_index_ = peers_.size();
    peers_.push_back({*peer, park_count_, ticket.get()});
  }
  ++parked_;
  return ticket;
}

Waiters::Ticket::~Ticket() { owner_.Unpark(this); }

void Waiters::Unpark(Ticket* ticket) {
  std::lock_guard lock(mu_);
  DropPeer(ticket);
  auto mesh = table_.find(ticket->mesh_id_);
  if (mesh == table_.end()) return;
  auto agent = mesh->second.find(ticket->agent_id_);
  if (agent == mesh->second.end()) return;
  auto& tickets = agent->second;
  tickets.erase(std::remove(tickets.begin(), tickets.end(), ticket), tickets.end());
  --parked_;
  if (tickets.empty()) mesh->second.erase(agent);
  if (mesh->second.empty()) table_.erase(mesh);
}

bool Waiters::Wait(Ticket& ticket, Millis deadline) {
  std::unique_lock lock(mu_);
  while (!ticket.woken_ && !shut_down_ && !ticket.hung_up_) {
    Millis left = deadline - clock_.Now();
    if (left <= 0) return false;
    ticket.cv_.wait_for(lock, std::chrono::milliseconds(left));
  }
  bool woken = ticket.woken_;
  ticket.woken_ = false;
  return woken && !shut_down_ && !ticket.hung_up_;
}

bool Waiters::HungUp(const Ticket& ticket) const {
  std::lock_guard lock(mu_);
  return ticket.hung_up_;
}

std::uint64_t Waiters::ParkCount() const {
  std::lock_guard lock(mu_);
  return park_count_;
}

void Waiters::DropPeer(Ticket* ticket) {
  std::size_t i = ticket->peer_index_;
  if (i == SIZE_MAX) return;
  ticket->peer_index_ = SIZE_MAX;
  if (i + 1 != peers_.size()) {
    peers_[i] = peers_.back();
    peers_[i].ticket->peer_index_ = i;
  }
  peers_.pop_back();
}

std::vector<TcpPeer> Waiters::ParkedPeers(std::uint64_t parked_by) const {
  std::lock_guard lock(mu_);
  std::vector<TcpPeer> peers;
  peers.reserve(peers_.size());
  for (const PeerEntry& e : peers_) {
    if (e.number <= parked_by) peers.push_back(e.peer);
  }
  return peers;
}

std::size_t Waiters::EndWaits(const TcpPeerSet& gone, std::uint64_t parked_by) {
  std::lock_guard lock(mu_);
  std::size_t ended = 0;
  for (std::size_t i = 0; i < peers_.size();) {
    PeerEntry e = peers_[i];
    if (e.number > parked_by || !gone.count(e.peer)) {
      ++i;
      continue;
    }
    e.ticket->hung_up_ = true;
    e.ticket->cv_.notify_one();
    DropPeer(e.ticket);  // moves the last entry to i: look at i again
    ++ended;
  }
  return ended;
}

void Waiters::Notify(const std::string& mesh_id, const std::string& from, const std::string& to) {
  std::lock_guard lock(mu_);
  auto mesh = table_.find(mesh_id);
  if (mesh == table_.end()) return;
  auto wake = [](std::vector<Ticket*>& tickets) {
    for (Ticket* t : tickets) {
      t->woken_ = true;
      t->cv_.notify_one();
    }
  };
  if (to == kBroadcast) {
    for (auto& [agent_id, tickets] : mesh->second) {
      if (agent_id != from) wake(tickets);
    }
  } else if (auto agent = mesh->second.find(to); agent != mesh->second.end()) {
    wake(agent->second);
  }
}

void Waiters::Tick() {
  std::lock_guard lock(mu_);
  for (auto& [mesh_id, agents] : table_) {
    for (auto& [agent_id, tickets] : agents) {
      for (Ticket* t : tickets) t->cv_.notify_one();
    }
  }
}

void Waiters::Shutdown() {
  std::lock_guard lock(mu_);
  shut_down_ = true;
  for (auto& [mesh_id, agents] : table_) {
    for (auto& [agent_id, tickets] : agents) {
      for (Ticket* t : tickets) t->cv_.notify_one();
    }
  }
}

std::size_t Waiters::Parked() const {
  std::lock_guard lock(mu_);
  return parked_;
}

bool Waiters::IsListening(const std::string& agent_id) const {
  std::lock_guard lock(mu_);
  for (const auto& [mesh_id, agents] : table_) {
    auto agent = agents.find(agent_id);
    if (agent == agents.end()) continue;
    for (const Ticket* t : agent->second) {
      if (!t->hung_up_) return true;
    }
  }
  return false;
}

}  // namespace meshwire
