#include "server/core/waiters.h"

#include <algorithm>
#include <chrono>

#include "schemas/error.h"
#include "server/core/thread_name.h"

namespace meshwire {

Waiters::Waiters(const Clock& clock, Limits limits) : clock_(clock), limits_(limits) {}

Waiters::~Waiters() {
  {
    std::lock_guard lock(mu_);
    timer_stop_ = true;
  }
  timer_cv_.notify_all();
  if (timer_.joinable()) timer_.join();
}

Waiters::Handle Waiters::Park(const std::string& mesh_id, const std::string& agent_id,
                              const std::string& token_id, std::int64_t after, Millis deadline) {
  auto waiter = std::make_shared<Waiter>(mesh_id, agent_id, token_id, after, deadline);
  std::lock_guard lock(mu_);
  if (shut_down_) throw Error::Unavailable("The relay is shutting down; retry in a moment.");
  if (parked_ >= limits_.total) {
    throw Error(503, "unavailable", "The relay holds as many waiting polls as it can; retry in a second.")
        .with_retry_after(1);
  }
  std::vector<Handle>& mine = table_[mesh_id][agent_id];
  if (mine.size() >= limits_.per_agent) {
    if (mine.empty()) table_[mesh_id].erase(agent_id);
    throw Error(429, "rate_limited",
                "Agent " + agent_id + " already has " + std::to_string(limits_.per_agent) +
                    " waiting polls; wait for one to answer (or stop the others) and retry.")
        .with_retry_after(1);
  }
  std::size_t& by_token = per_token_[token_id];
  if (by_token >= limits_.per_token) {
    if (mine.empty()) table_[mesh_id].erase(agent_id);
    throw Error(429, "rate_limited",
                "This token already has " + std::to_string(limits_.per_token) +
                    " waiting polls; use a token per machine, or wait for one to answer.")
        .with_retry_after(1);
  }
  ++by_token;
  mine.push_back(waiter);
  waiter->deadline_at_ = deadlines_.emplace(deadline, waiter.get());
  ++parked_;
  // The timer sleeps until the earliest deadline it knew: wake it for a sooner one.
  if (waiter->deadline_at_ == deadlines_.begin()) timer_cv_.notify_one();
  return waiter;
}

Waiters::Handle Waiters::Unpark(Waiter* w) {
  if (!w->parked_) return nullptr;
  w->parked_ = false;
  deadlines_.erase(w->deadline_at_);
  if (auto t = per_token_.find(w->token_id_); t != per_token_.end() && --t->second == 0) {
    per_token_.erase(t);
  }
  if (w->armed_) {
    if (auto a = armed_by_agent_.find(w->agent_id_); a != armed_by_agent_.end() && --a->second == 0) {
      armed_by_agent_.erase(a);
    }
  }
  --parked_;
  Handle kept;
  auto mesh = table_.find(w->mesh_id_);
  if (mesh == table_.end()) return kept;
  auto agent = mesh->second.find(w->agent_id_);
  if (agent == mesh->second.end()) return kept;
  auto& list = agent->second;
  auto it = std::find_if(list.begin(), list.end(), [w](const Handle& h) { return h.get() == w; });
  if (it != list.end()) {
    kept = std::move(*it);
    *it = std::move(list.back());  // order among one agent's waiters does not matter
    list.pop_back();
  }
  if (list.empty()) mesh->second.erase(agent);
  if (mesh->second.empty()) table_.erase(mesh);
  return kept;
}

Waiters::Fired Waiters::Finish(Waiter* w, Outcome outcome) {
  w->done_ = true;
  Fired f{nullptr, std::move(w->completion_), outcome, {}};
  if (outcome == Outcome::kMessages) f.messages = std::move(w->collected_);
  f.waiter = Unpark(w);  // last: may hold the only reference to w
  return f;
}

void Waiters::Run(std::vector<Fired>& fired) {
  for (Fired& f : fired) {
    if (f.done) f.done(f.outcome, std::move(f.messages));
  }
}

void Waiters::Arm(const Handle& w, Completion done) {
  Outcome outcome;
  std::vector<CommittedPtr> messages;
  {
    std::lock_guard lock(mu_);
    if (w->done_) {
      outcome = Outcome::kCancelled;
    } else if (!w->collected_.empty()) {
      outcome = Outcome::kMessages;
    } else if (shut_down_) {
      outcome = Outcome::kShutdown;
    } else if (w->ended_ || clock_.Now() >= w->deadline_) {
      outcome = Outcome::kTimeout;
    } else {
      w->armed_ = true;
      ++armed_by_agent_[w->agent_id_];
      if (track_listening_) armed_since_.insert(w->agent_id_);
      w->completion_ = std::move(done);
      return;
    }
    w->done_ = true;
    if (outcome == Outcome::kMessages) messages = std::move(w->collected_);
    Unpark(w.get());
  }
  done(outcome, std::move(messages));
}

void Waiters::Cancel(const Handle& w) {
  std::vector<Fired> fired;
  {
    std::lock_guard lock(mu_);
    if (w->done_) return;
    fired.push_back(Finish(w.get(), Outcome::kCancelled));
  }
  Run(fired);
}

void Waiters::Notify(const CommittedPtr& committed) {
  const Message& m = committed->message();
  std::vector<Fired> fired;
  {
    std::lock_guard lock(mu_);
    auto mesh = table_.find(m.mesh_id);
    if (mesh == table_.end()) return;
    std::vector<Waiter*> woken;
    auto wake = [&](const std::vector<Handle>& list) {
      for (const Handle& h : list) {
        if (m.seq <= h->after_) continue;
        h->collected_.push_back(committed);
        if (h->armed_) woken.push_back(h.get());
      }
    };
    if (m.to == kBroadcast) {
      for (auto& [agent_id, list] : mesh->second) {
        if (agent_id != m.from) wake(list);
      }
    } else if (auto agent = mesh->second.find(m.to); agent != mesh->second.end()) {
      wake(agent->second);
    }
    fired.reserve(woken.size());
    for (Waiter* w : woken) fired.push_back(Finish(w, Outcome::kMessages));
  }
  Run(fired);
}

void Waiters::ExpireDue() {
  std::vector<Fired> fired;
  {
    std::lock_guard lock(mu_);
    const Millis now = clock_.Now();
    for (auto it = deadlines_.begin(); it != deadlines_.end() && it->first <= now;) {
      Waiter* w = (it++)->second;  // Finish erases w's entry: step past it first
      if (w->armed_) fired.push_back(Finish(w, Outcome::kTimeout));
    }
  }
  Run(fired);
}

void Waiters::StartTimer() {
  timer_ = std::thread([this] {
    NameThisThread("mw-poll-timer");
    TimerLoop();
  });
}

void Waiters::TimerLoop() {
  std::unique_lock lock(mu_);
  while (!timer_stop_) {
    Millis wait = 1000;
    if (!deadlines_.empty()) wait = std::clamp<Millis>(deadlines_.begin()->first - clock_.Now(), 0, 1000);
    if (wait > 0) timer_cv_.wait_for(lock, std::chrono::milliseconds(wait));
    if (timer_stop_) break;
    if (!deadlines_.empty() && deadlines_.begin()->first <= clock_.Now()) {
      lock.unlock();
      ExpireDue();
      lock.lock();
      // A deadline that stays due belongs to a waiter not armed yet: let it arm.
      if (!deadlines_.empty() && deadlines_.begin()->first <= clock_.Now()) {
        timer_cv_.wait_for(lock, std::chrono::milliseconds(5));
      }
    }
  }
}

void Waiters::Tick() { timer_cv_.notify_all(); }

void Waiters::End(const std::vector<Handle>& list, const std::string* token_id, std::vector<Fired>& fired) {
  for (const Handle& h : list) {
    if (h->done_ || (token_id && h->token_id_ != *token_id)) continue;
    if (h->armed_) {
      fired.push_back(Finish(h.get(), Outcome::kTimeout));
    } else {
      h->ended_ = true;  // still reading its backlog: Arm answers it at once
    }
  }
}

void Waiters::EndAgent(const std::string& mesh_id, const std::string& agent_id) {
  std::vector<Fired> fired;
  {
    std::lock_guard lock(mu_);
    auto mesh = table_.find(mesh_id);
    if (mesh == table_.end()) return;
    auto agent = mesh->second.find(agent_id);
    if (agent == mesh->second.end()) return;
    End(std::vector<Handle>(agent->second), nullptr, fired);  // a copy: Finish unparks from the list
  }
  Run(fired);
}

void Waiters::EndMesh(const std::string& mesh_id) {
  std::vector<Fired> fired;
  {
    std::lock_guard lock(mu_);
    auto mesh = table_.find(mesh_id);
    if (mesh == table_.end()) return;
    std::vector<Handle> all;
    for (auto& [agent_id, list] : mesh->second) all.insert(all.end(), list.begin(), list.end());
    End(all, nullptr, fired);
  }
  Run(fired);
}

void Waiters::EndToken(const std::string& token_id) {
  std::vector<Fired> fired;
  {
    std::lock_guard lock(mu_);
    if (!per_token_.count(token_id)) return;  // nothing parked with it
    std::vector<Handle> all;
    for (auto& [mesh_id, agents] : table_) {
      for (auto& [agent_id, list] : agents) all.insert(all.end(), list.begin(), list.end());
    }
    End(all, &token_id, fired);
  }
  Run(fired);
}

void Waiters::Shutdown() {
  std::vector<Fired> fired;
  {
    std::lock_guard lock(mu_);
    shut_down_ = true;
    std::vector<Waiter*> armed;
    for (auto& [mesh_id, agents] : table_) {
      for (auto& [agent_id, list] : agents) {
        for (const Handle& h : list) {
          if (h->armed_) armed.push_back(h.get());
        }
      }
    }
    for (Waiter* w : armed) fired.push_back(Finish(w, Outcome::kShutdown));
  }
  Run(fired);
}

std::size_t Waiters::Parked() const {
  std::lock_guard lock(mu_);
  return parked_;
}

bool Waiters::Watches(const std::string& mesh_id) const {
  std::lock_guard lock(mu_);
  auto mesh = table_.find(mesh_id);
  return mesh != table_.end() && !mesh->second.empty();
}

bool Waiters::IsListening(const std::string& agent_id) const {
  std::lock_guard lock(mu_);
  return armed_by_agent_.count(agent_id) > 0;
}

std::vector<std::string> Waiters::TakeListening() {
  std::lock_guard lock(mu_);
  track_listening_ = true;
  for (const auto& [agent_id, n] : armed_by_agent_) armed_since_.insert(agent_id);
  std::vector<std::string> out(armed_since_.begin(), armed_since_.end());
  armed_since_.clear();
  return out;
}

}  // namespace meshwire
