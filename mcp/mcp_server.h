// The MCP server: lifecycle (initialize with version negotiation, ping) and
// tools (tools/list, tools/call) over JsonRpcPeer. What the tools do is a
// ToolSet's business; this layer only speaks the protocol.
#pragma once

#include <iosfwd>
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

class ToolSet {
 public:
  virtual ~ToolSet() = default;
  /// The tools/list entries: name, title, description, inputSchema, outputSchema, annotations.
  virtual const Json& Definitions() const = 0;
  /// Runs a known tool (the server answers -32602 for an unknown one).
  /// Never throws for bad arguments or relay errors: returns ToolResult::Error.
  virtual ToolResult Call(const std::string& name, const Json& arguments, RequestContext& context) = 0;
  /// The `instructions` of the initialize result.
  virtual std::string Instructions() const = 0;
};

/// The protocol revisions this server speaks, oldest first.
const std::vector<std::string>& SupportedProtocolVersions();

class McpServer {
 public:
  McpServer(ToolSet& tools, std::string name, std::string version);
  /// Serves MCP's stdio transport until end of input.
  void Serve(std::istream& in, std::ostream& out);
  /// The dispatcher with the MCP methods registered, for another transport.
  JsonRpcPeer& rpc() { return rpc_; }

 private:
  ToolSet& tools_;
  JsonRpcPeer rpc_;
};

}  // namespace meshwire::mcp
