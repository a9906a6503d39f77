// What one MCP session has pushed to its client, so a message is never lost
// and never shown twice (docs/API.md, "Push into the session: choices"):
// shared by the relay's endpoint (server/mcp/service_tools.h) and `meshwire
// mcp` (mesh_tools.h). Thread-safe.
//
// MCP has no acknowledgement of a notification, so a pushed message counts
// as received only when the client said so: it declared
// `capabilities.experimental["claude/channel"]` at initialize, or the model
// answered the message (meshwire_reply_to_message with its id). What the
// client has is left out of meshwire_get_messages; a push it may not have
// shown is returned there, marked.
#pragma once

#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_set>
#include <vector>

#include "mcp/json_rpc.h"
#include "schemas/model.h"

namespace meshwire::mcp {

class PushLedger {
 public:
  /// True when `message` is for `agent_id`: to it, or a broadcast from another.
  static bool IsFor(const Message& message, const std::string& agent_id) {
    return message.to == agent_id || (message.to == kBroadcast && message.from != agent_id);
  }

  /// notifications/initialized arrived; `initialize_params` are what the
  /// client's initialize said (its capabilities, clientInfo).
  void ClientReady(const Json& initialize_params);
  bool ready() const;
  /// True when the client's initialize declared experimental claude/channel.
  bool client_shows_pushes() const;
  /// The client's name from its initialize (clientInfo.name), or "".
  std::string client_name() const;

  /// True when `message` (for this session's agent) may be pushed now: the
  /// client is ready, it was not pushed yet, and it is past `cursor` (what
  /// get_messages returned). It then counts as pushed.
  bool TakeForPush(const Message& message, std::optional<std::int64_t> cursor);
  /// The model answered `message_id`: the client has it.
  void Replied(const std::string& message_id);

  struct Inbox {
    std::vector<Message> messages;         // to show
    std::unordered_set<std::string> pushed;  // of those, the ones also pushed
  };
  /// What get_messages shows of `messages`: without what the client has.
  Inbox Filter(std::vector<Message> messages) const;
  /// How many batches that were all pushed one get_messages call looks
  /// past (acknowledging each) for what was not, within its wait.
  static constexpr int kMaxPushedPasses = 20;

 private:
  static constexpr std::size_t kRemembered = 4096;
  mutable std::mutex mu_;
  bool ready_ = false;
  bool shows_pushes_ = false;
  std::string client_name_;
  std::unordered_set<std::string> pushed_, replied_;
  std::deque<std::string> pushed_order_;
};

}  // namespace meshwire::mcp
