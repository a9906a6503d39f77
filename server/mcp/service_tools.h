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
#include "server/core/mesh_service.h"

namespace meshwire {

class ServiceTools final : public mcp::ToolSet {
 public:
  /// Longest wait of meshwire_get_messages (hosts time a tool call out near 60 s).
  static constexpr int kMaxWaitS = 25;

  /// Registers (or finds) the agent `agent_name` of `mesh_id` for `caller`;
  /// throws meshwire::Error when the caller may not. `url`: the relay as
  /// clients reach it (meshwire_status says it).
  ServiceTools(MeshService& service, Caller caller, std::string mesh_id,
               std::string agent_name, std::string url);

  const Json& Definitions() const override;
  void Call(const std::string& name, const Json& arguments,
            const std::shared_ptr<mcp::RequestContext>& context, mcp::ToolDone done) override;
  std::string Instructions() const override;

  const std::string& agent_id() const { return agent_id_; }
  /// What a waiting call holds on to until it answers (its session).
  void SetKeepAlive(std::function<std::shared_ptr<void>()> keep_alive) { keep_alive_ = std::move(keep_alive); }

 private:
  mcp::ToolResult Send(const Json& args);
  void GetMessages(const Json& args, const std::shared_ptr<mcp::RequestContext>& context, mcp::ToolDone done);
  mcp::ToolResult Reply(const Json& args);
  mcp::ToolResult Status();
  mcp::ToolResult ListAgents();

  MeshService& service_;
  const Caller caller_;
  const std::string mesh_id_, agent_name_, url_;
  std::string agent_id_;
  std::function<std::shared_ptr<void>()> keep_alive_;
  std::mutex mu_;
  std::optional<std::int64_t> cursor_;  // guarded by mu_: the next call acknowledges up to here
};

}  // namespace meshwire
