// The five meshwire MCP tools over the relay's REST API (RelayClient).
//
// Identity: the agent named by the configuration (--name, MESHWIRE_AGENT_NAME,
// .mesh.json, else the harness's default) is registered in the background at
// start and kept alive by heartbeats; registering the same name again gives
// the same agent, so a restart resumes its stored cursor. When the relay is
// unreachable, tools answer isError with a sentence naming the URL, and the
// next call or heartbeat registers once it is back.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>

#include "mcp/mcp_server.h"
#include "mcp/push_ledger.h"
#include "relay-client/config.h"
#include "relay-client/relay_client.h"
#include "schemas/mcp_schemas.h"

namespace meshwire::mcp {

struct MeshToolsOptions {
  std::string url, token, mesh_id, agent_name, harness = "mcp";
  std::string home;  // the ~/.meshwire folder searched for credentials.json (for messages)
  int max_wait_s = kToolsMaxWaitS;    // get_messages waits at most this long
  int heartbeat_s = 30;
  std::string setup_problem;  // found by the caller (an invalid agent name): told like a missing token
};

class MeshTools final : public ToolSet {
 public:
  explicit MeshTools(MeshToolsOptions options);
  /// Stops the heartbeat thread.
  ~MeshTools() override;

  /// Starts registration and heartbeats in the background.
  void Start();
  /// Stops and joins the background threads (heartbeats, pushes); after
  /// it, nothing is sent through the notifier. Idempotent.
  void Stop();

  const Json& Definitions() const override;
  void Call(const std::string& name, const Json& arguments, const std::shared_ptr<RequestContext>& context,
            ToolDone done) override;
  std::string Instructions() const override;

  /// Why no tool can work as configured (no token, no mesh), as a sentence
  /// saying what to run; empty when the configuration is complete.
  std::string SetupProblem() const;

  // Push into the session: after notifications/initialized, for a client
  // that takes channel notifications (Claude Code, or one that declares
  // experimental claude/channel), each message for this agent is sent as
  // notifications/claude/channel as the relay's event stream brings it.
  Json ExtraCapabilities() const override;
  void ClientReady(const Json& initialize_params) override;
  void SetNotifier(Notifier notifier) override { notifier_ = std::move(notifier); }

 private:
  ToolResult Run(const std::string& name, const Json& arguments, RequestContext& context);
  ToolResult Send(const Json& args);
  ToolResult GetMessages(const Json& args, RequestContext& context);
  ToolResult ListAgents();
  ToolResult Status();
  ToolResult Reply(const Json& args);
  /// This agent's id, registering it (through `client`) the first time.
  std::string AgentId(RelayClient& client);
  /// True, and the agent forgotten (the next AgentId registers it again),
  /// when `e` says the relay has no agent of this id any more.
  bool ForgetIfGone(const Error& e);
  RelayClient NewClient() const { return RelayClient(options_.url, options_.token); }
  /// A relay error as a sentence a model can act on.
  ToolResult Failure(const Error& e) const;
  /// Runs `write` (a send or a reply) with an idempotency key: the key of
  /// the same write (`what`: its arguments) made before and left without an
  /// answer, else a new one. When this try too ends with no answer (a
  /// timeout, a relay that went away), its key is kept for the next, so the
  /// model's retry, which the error advises, never stores a message twice.
  Message Keyed(const std::string& what,
                const std::function<Message(const std::string& key)>& write);
  /// The harness of each sender of `messages` (empty when unknown), asking
  /// the relay for the agent list at most once.
  std::unordered_map<std::string, std::string> SenderHarnesses(
      RelayClient& client, const std::vector<Message>& messages);
  void Heartbeats();
  /// Follows the relay's event stream and pushes, until stopped (reconnects).
  void PushLoop();
  /// Waits up to `delay` unless stopping; false once stopping.
  bool Sleep(std::chrono::milliseconds delay);

  const MeshToolsOptions options_;
  const std::unique_ptr<const Json> definitions_;  // tools/list, with options_.max_wait_s
  std::mutex mu_;
  std::string agent_id_;                 // guarded by mu_; empty until registered
  std::string gone_;                     // guarded by mu_: the last agent id the relay no longer had
  std::optional<std::int64_t> cursor_;   // guarded by mu_: acknowledges the previous batch
  std::unordered_map<std::string, std::string> harness_of_;  // guarded by mu_
  /// Keyed's keys of writes left without an answer, by their arguments, with
  /// when they were tried; guarded by mu_, at most kMaxUnanswered.
  static constexpr std::size_t kMaxUnanswered = 64;
  std::map<std::string, std::pair<std::string, std::chrono::steady_clock::time_point>> unanswered_;
  std::mutex stop_mu_;
  std::condition_variable stop_cv_;
  bool stopping_ = false;  // guarded by stop_mu_
  std::thread heartbeat_;
  PushLedger ledger_;
  Notifier notifier_;
  std::thread pusher_;
  RelayClient* events_client_ = nullptr;  // guarded by stop_mu_: the stream to cancel on stop
  RelayClient* lookup_client_ = nullptr;  // guarded by stop_mu_: the push's harness look-up, cancelled too
};

}  // namespace meshwire::mcp
