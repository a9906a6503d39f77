// The five meshwire MCP tools on the relay itself, over MeshService (no
// HTTP, no loopback): one ToolSet per MCP session of the relay's endpoint
// (server/http/mcp_endpoint.h), for one agent of one mesh. Arguments,
// sentences and structured values are mcp/tool_format's, as in `meshwire mcp`.
// Nothing here holds a thread: a waiting meshwire_get_messages is a parked
// poll that answers through its ToolDone.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "mcp/mcp_server.h"
#include "mcp/push_ledger.h"
#include "schemas/mcp_schemas.h"
#include "server/core/mesh_service.h"

namespace meshwire {

class ServiceTools final : public mcp::ToolSet {
 public:
  /// Longest wait of meshwire_get_messages (hosts time a tool call out near
  /// 60 s): the one tools.json states.
  static constexpr int kMaxWaitS = kToolsMaxWaitS;

  /// The tools of agent `agent_name` of `mesh_id` for `caller`, who must
  /// RegisterAgent() before the first call. `url`: the relay as clients
  /// reach it (meshwire_status says it).
  ServiceTools(MeshService& service, Caller caller, std::string mesh_id,
               std::string agent_name, std::string url);
  /// Registers (or finds) the agent, once the session's initialize has
  /// succeeded (a refused one registers nothing); throws meshwire::Error
  /// when the caller may not (a name another user's agent has: 409).
  void RegisterAgent();

  const Json& Definitions() const override;
  void Call(const std::string& name, const Json& arguments,
            const std::shared_ptr<mcp::RequestContext>& context, mcp::ToolDone done) override;
  std::string Instructions() const override;

  // The inbox resource, meshwire://inbox: what this agent has not acknowledged.
  static constexpr const char* kInboxUri = "meshwire://inbox";
  bool HasResources() const override { return true; }
  Json ListResources() override;
  Json ReadResource(const std::string& uri) override;
  void Subscribe(const std::string& uri, bool on) override;

  // Push into the session (docs/API.md, "Push into the session").
  Json ExtraCapabilities() const override;
  void ClientReady(const Json& initialize_params) override;
  /// True when `message` is for this agent (to it, or a broadcast from another).
  bool IsFor(const Message& message) const;
  /// True when `message` is for this agent and may be pushed now (see
  /// PushLedger); it then counts as pushed.
  bool TakeForPush(const Message& message);
  /// notifications/initialized was seen (pushes may start).
  bool ready() const;
  bool inbox_subscribed() const;
  /// A sentence added to a send's result for recipient `to` ("" for none):
  /// the endpoint says when that agent's pushes from this one are paused.
  void SetSendNotice(std::function<std::string(const std::string& from, const std::string& to)> notice) {
    send_notice_ = std::move(notice);
  }

  const std::string& agent_id() const { return agent_id_; }
  /// What a call of this session says once its agent was deleted.
  std::string AgentDeletedSentence() const;
  /// What a waiting call holds on to until it answers (its session).
  void SetKeepAlive(std::function<std::shared_ptr<void>()> keep_alive) { keep_alive_ = std::move(keep_alive); }

 private:
  void Send(const Json& args, mcp::ToolDone done);
  void GetMessages(const Json& args, const std::shared_ptr<mcp::RequestContext>& context, mcp::ToolDone done);
  /// The tool result of a failure; the deletion of this session's own agent says so.
  mcp::ToolResult Failed(std::exception_ptr error) const;
  struct GetCall;  // one get_messages call's polls (service_tools.cc)
  /// One poll of `call`; when all it brings was pushed, the next one.
  void PollPass(const std::shared_ptr<GetCall>& call, PollRequest request, int pass);
  mcp::ToolResult Reply(const Json& args);
  mcp::ToolResult Status();
  mcp::ToolResult ListAgents();

  MeshService& service_;
  const Caller caller_;
  const std::string mesh_id_, agent_name_, url_;
  std::string agent_id_;
  std::function<std::shared_ptr<void>()> keep_alive_;
  std::function<std::string(const std::string&, const std::string&)> send_notice_;
  mcp::PushLedger ledger_;
  mutable std::mutex mu_;
  std::optional<std::int64_t> cursor_;  // guarded by mu_: the next call acknowledges up to here
  bool inbox_subscribed_ = false;       // guarded by mu_
};

}  // namespace meshwire
