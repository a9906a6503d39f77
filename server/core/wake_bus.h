// WakeBus: how one relay node learns what changed, wherever it was changed.
// Publishers say what committed (messages, in seq order per mesh) and what
// access changed (a token revoked, a member removed, an agent or mesh
// deleted); every subscriber of every node is told. On one node the
// LocalWakeBus below delivers at once, on the publisher's thread; a
// multi-node store brings its own implementation (e.g. PostgreSQL
// LISTEN/NOTIFY) behind the same interface.
//
// Contract for every implementation:
// - Message events of one mesh reach each subscriber in seq order, each once.
// - An access event has reached every subscriber of the publishing node
//   before Publish returns (so the publisher's next request sees it).
// - Subscribers must be quick and must not block: they post real work to an
//   Executor.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "schemas/model.h"

namespace meshwire {

/// A committed message and its JSON, serialized at most once however many
/// long-polls and event streams it is written to.
class CommittedMessage {
 public:
  explicit CommittedMessage(Message message) : message_(std::move(message)) {}
  const Message& message() const { return message_; }
  /// The message as the wire contract's JSON text (computed on first use).
  const std::string& Json() const;
  /// The whole answer of a poll that returns this message alone,
  /// {"messages":[...],"cursor":seq}: one text for every poll a broadcast wakes.
  std::shared_ptr<const std::string> PollAnswer() const;

 private:
  Message message_;
  mutable std::once_flag json_once_;
  mutable std::string json_;
  mutable std::once_flag answer_once_;
  mutable std::shared_ptr<const std::string> answer_;
};
using CommittedPtr = std::shared_ptr<const CommittedMessage>;

struct WakeEvent {
  enum class Kind {
    kMessage,        // `message` committed
    kAccessChanged,  // tokens, members, agents or meshes changed: drop cached identities
    kPresence,       // `agent` changed presence (registered, listening, active...)
  };
  Kind kind = Kind::kMessage;
  CommittedPtr message;          // kMessage
  std::string mesh_id;           // kPresence (and kMessage's mesh)
  std::shared_ptr<const Agent> agent;  // kPresence: the agent as listed, status fields filled
  std::string agent_status;      // kPresence: active, idle, offline
  bool listening = false;        // kPresence
  /// kAccessChanged from a multi-node bus only: false when this node may miss
  /// the other nodes' access changes (its listening connection is down), so
  /// it must cache no identity until the bus says true again.
  std::optional<bool> trust_cache;
  /// kAccessChanged: whose parked polls every node answers at once (they
  /// look again, and get the 401, 403 or 404): a mesh deleted (`mesh_id` alone),
  /// agents deleted (`mesh_id`, `agent_ids`: one, or a removed member's), a
  /// token revoked (`token_id`: the polls made with it). All empty: none.
  struct Ended {
    std::string mesh_id = {};
    std::vector<std::string> agent_ids = {};
    std::string token_id = {};
  };
  Ended ended;
};

class WakeBus {
 public:
  using Subscriber = std::function<void(const WakeEvent&)>;
  /// Whether a subscriber wants a mesh's messages now (none given: every
  /// mesh's). A bus may skip reading the messages of a mesh no subscriber
  /// wants (PgWakeBus: another node's). So a subscriber must make itself
  /// wanted *before* it reads what it then waits on (as a poll parks before
  /// it reads its backlog): a message skipped earlier committed before that
  /// read and is in it.
  using Interest = std::function<bool(const std::string& mesh_id)>;
  virtual ~WakeBus() = default;
  virtual void Publish(const WakeEvent& event) = 0;
  /// Adds a subscriber for the bus's lifetime; subscribe before publishing starts.
  virtual void Subscribe(Subscriber subscriber, Interest interest = nullptr) = 0;
  /// Called by a subscriber just before it makes itself wanted for
  /// `mesh_id` (a poll parks, an event stream or an MCP session opens), and
  /// so before it reads what it then waits on: a multi-node bus makes sure
  /// from then on that the other nodes announce the mesh's commits to this
  /// one (PgWakeBus: its row in node_watches, one round trip the first
  /// time). Throws Error 503 when it cannot. The single-node buses hear
  /// every commit: nothing to do.
  virtual void Watch(const std::string& mesh_id) { (void)mesh_id; }
  /// Stops the bus's own looks at the store (SqliteWakeBus's watch), before
  /// the store closes; Publish still works (the last commits publish).
  /// Idempotent.
  virtual void StopWatching() {}
};

/// The in-process bus of a single node: Publish calls every subscriber in turn.
class LocalWakeBus final : public WakeBus {
 public:
  void Publish(const WakeEvent& event) override;
  /// Delivers everything to everyone (nothing to read): `interest` is unused.
  void Subscribe(Subscriber subscriber, Interest interest = nullptr) override;

 private:
  std::mutex mu_;
  std::vector<std::shared_ptr<const Subscriber>> subscribers_;  // guarded by mu_ (copied to publish)
};

}  // namespace meshwire
