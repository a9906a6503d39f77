// The MCP server: lifecycle (initialize with version negotiation, ping) and
// tools (tools/list, tools/call) over JsonRpcPeer. What the tools do is a
// ToolSet's business; this layer only speaks the protocol.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "mcp/json_rpc.h"

namespace meshwire::mcp {

/// The outcome of one tool call. `is_error`: a tool-level failure (bad
/// argument, relay error), reported to the model as a result with isError.
struct ToolResult {
  Json structured;        // structuredContent, matching the tool's outputSchema (not on errors)
  std::string text;       // a text block for the model
  bool is_error = false;

  static ToolResult Error(std::string sentence) { return ToolResult{nullptr, std::move(sentence), true}; }
};

/// Receives a tool's result: once, from any thread.
using ToolDone = std::function<void(ToolResult)>;

class ToolSet {
 public:
  virtual ~ToolSet() = default;
  /// The tools/list entries: name, title, description, inputSchema, outputSchema, annotations.
  virtual const Json& Definitions() const = 0;
  /// Runs a known tool (the server answers -32602 for an unknown one) and
  /// passes its result to `done`, now or later. Never throws for bad
  /// arguments or relay errors: passes ToolResult::Error. A cancelled call
  /// may never call `done`.
  virtual void Call(const std::string& name, const Json& arguments,
                    const std::shared_ptr<RequestContext>& context, ToolDone done) = 0;
  /// The `instructions` of the initialize result.
  virtual std::string Instructions() const = 0;

  // Resources: none unless a ToolSet offers them (then the server declares
  // the resources capability with subscribe).
  virtual bool HasResources() const { return false; }
  /// The resources/list entries.
  virtual Json ListResources() { return Json::array(); }
  /// The resources/read `contents` of `uri`; throws RpcError for an unknown one.
  virtual Json ReadResource(const std::string& uri);
  /// resources/subscribe (true) and unsubscribe (false); throws RpcError for an unknown uri.
  virtual void Subscribe(const std::string& uri, bool on);
  /// The session's client said `notifications/initialized` with these
  /// initialize params (its capabilities, clientInfo).
  virtual void ClientReady(const Json& initialize_params) { (void)initialize_params; }
  /// Extra capabilities to declare (merged into initialize's capabilities).
  virtual Json ExtraCapabilities() const { return Json::object(); }

  /// Sends a notification to the client (method, params). The server sets it
  /// before serving, for transports with a channel of their own (stdio).
  using Notifier = std::function<void(const std::string& method, const Json& params)>;
  virtual void SetNotifier(Notifier notifier) { (void)notifier; }
};

/// The protocol revisions this server speaks, oldest first.
const std::vector<std::string>& SupportedProtocolVersions();

class McpServer {
 public:
  /// `tools_on_threads`: each tools/call runs on its own thread (for tools
  /// that block, as `meshwire mcp`'s do); else on the caller's, and a tool
  /// that waits must answer later through its ToolDone.
  McpServer(ToolSet& tools, std::string name, std::string version, bool tools_on_threads = true);
  /// What initialize declares: capabilities, and serverInfo {name, title, version}.
  Json Capabilities() const;
  Json ServerInfo() const;
  ToolSet& tools() { return tools_; }
  /// The dispatcher with the MCP methods registered, for a transport
  /// (stdio_transport.h, or the relay's HTTP endpoint).
  JsonRpcPeer& rpc() { return rpc_; }

 private:
  ToolSet& tools_;
  const std::string name_, version_;
  JsonRpcPeer rpc_;
  Json initialize_params_;  // what the client's initialize said (capabilities, clientInfo)
};

}  // namespace meshwire::mcp
