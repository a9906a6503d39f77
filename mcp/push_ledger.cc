#include "mcp/push_ledger.h"

#include <nlohmann/json.hpp>

namespace meshwire::mcp {

void PushLedger::ClientReady(const Json& params) {
  bool shows = false;
  std::string name;
  if (params.is_object()) {
    const Json caps = params.value("capabilities", Json::object());
    shows = caps.is_object() && caps.contains("experimental") && caps["experimental"].is_object() &&
            caps["experimental"].contains("claude/channel");
    const Json info = params.value("clientInfo", Json::object());
    if (info.is_object() && info.contains("name") && info["name"].is_string()) name = info["name"];
  }
  std::lock_guard lock(mu_);
  ready_ = true;
  shows_pushes_ = shows;
  client_name_ = name;
}

bool PushLedger::ready() const {
  std::lock_guard lock(mu_);
  return ready_;
}

bool PushLedger::client_shows_pushes() const {
  std::lock_guard lock(mu_);
  return shows_pushes_;
}

std::string PushLedger::client_name() const {
  std::lock_guard lock(mu_);
  return client_name_;
}

bool PushLedger::TakeForPush(const Message& m, std::optional<std::int64_t> cursor) {
  std::lock_guard lock(mu_);
  if (!ready_ || pushed_.count(m.id) || (cursor && m.seq <= *cursor)) return false;
  pushed_.insert(m.id);
  pushed_order_.push_back(m.id);
  if (pushed_order_.size() > kRemembered) {
    pushed_.erase(pushed_order_.front());
    pushed_order_.pop_front();
  }
  return true;
}

void PushLedger::Replied(const std::string& message_id) {
  std::lock_guard lock(mu_);
  if (replied_.size() >= kRemembered) replied_.clear();
  replied_.insert(message_id);
}

PushLedger::Inbox PushLedger::Filter(std::vector<Message> messages) const {
  Inbox inbox;
  std::lock_guard lock(mu_);
  for (Message& m : messages) {
    const bool was_pushed = pushed_.count(m.id) > 0;
    if (replied_.count(m.id) || (was_pushed && shows_pushes_)) continue;
    if (was_pushed) inbox.pushed.insert(m.id);
    inbox.messages.push_back(std::move(m));
  }
  return inbox;
}

}  // namespace meshwire::mcp
