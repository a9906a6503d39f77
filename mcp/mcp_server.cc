#include "mcp/mcp_server.h"

#include <algorithm>
#include <nlohmann/json.hpp>

namespace meshwire::mcp {

const std::vector<std::string>& SupportedProtocolVersions() {
  static const std::vector<std::string> kVersions = {"2024-11-05", "2025-03-26", "2025-06-18",
                                                     "2025-11-25"};
  return kVersions;
}

namespace {

/// A tools/call result: the text, and the structured value also as text for
/// clients that ignore structuredContent.
Json ToolResultJson(const ToolResult& r) {
  Json result = {{"content", Json::array({{{"type", "text"}, {"text", r.text}}})}, {"isError", r.is_error}};
  if (!r.is_error && !r.structured.is_null()) {
    result["content"].push_back({{"type", "text"}, {"text", r.structured.dump()}});
    result["structuredContent"] = r.structured;
  }
  return result;
}

}  // namespace

Json ToolSet::ReadResource(const std::string& uri) {
  throw RpcError(-32002, "Resource not found: " + uri);
}

void ToolSet::Subscribe(const std::string& uri, bool) { ReadResource(uri); }

Json McpServer::Capabilities() const {
  Json capabilities = {{"tools", {{"listChanged", false}}}, {"logging", Json::object()}};
  if (tools_.HasResources()) capabilities["resources"] = {{"subscribe", true}, {"listChanged", false}};
  capabilities.update(tools_.ExtraCapabilities());
  return capabilities;
}

Json McpServer::ServerInfo() const { return {{"name", name_}, {"title", "MeshWire"}, {"version", version_}}; }

McpServer::McpServer(ToolSet& tools, std::string name, std::string version, bool tools_on_threads)
    : tools_(tools), name_(name), version_(version) {
  rpc_.On("initialize", [this](RequestContext& ctx) {
    const auto& versions = SupportedProtocolVersions();
    const Json& p = ctx.params();
    const bool given = p.is_object() && p.contains("protocolVersion");
    if (given && !p["protocolVersion"].is_string()) {
      throw RpcError(RpcError::kInvalidParams,
                     "Invalid params: protocolVersion must be a string such as \"2025-06-18\".");
    }
    const std::string asked = given ? p["protocolVersion"].get<std::string>() : std::string();
    // The client's revision when we speak it, else the newest we do.
    std::string chosen =
        std::find(versions.begin(), versions.end(), asked) != versions.end() ? asked : versions.back();
    initialize_params_ = ctx.params();
    return Json{{"protocolVersion", chosen},
                {"capabilities", Capabilities()},
                {"serverInfo", ServerInfo()},
                {"instructions", tools_.Instructions()}};
  });
  rpc_.On("ping", [](RequestContext&) { return Json::object(); });
  // Clients may choose how much they hear; this server logs to stderr (stdio)
  // or its own log (HTTP) and sends no notifications/message, so any valid
  // level is accepted and changes nothing.
  rpc_.On("logging/setLevel", [](RequestContext& ctx) {
    static const std::vector<std::string> kLevels = {"debug", "info",     "notice", "warning",
                                                     "error", "critical", "alert",  "emergency"};
    const Json& p = ctx.params();
    if (!p.is_object() || !p.contains("level") || !p["level"].is_string() ||
        std::find(kLevels.begin(), kLevels.end(), p["level"].get<std::string>()) == kLevels.end()) {
      throw RpcError(RpcError::kInvalidParams,
                     "Invalid params: level must be one of debug, info, notice, warning, error, critical, "
                     "alert, emergency.");
    }
    return Json::object();
  });
  rpc_.On("tools/list", [this](RequestContext&) { return Json{{"tools", tools_.Definitions()}}; });
  rpc_.OnAsync(
      "tools/call",
      [this](const std::shared_ptr<RequestContext>& ctx, JsonRpcPeer::Respond respond) {
        const Json& p = ctx->params();
        if (!p.is_object() || !p.contains("name") || !p["name"].is_string()) {
          throw RpcError(RpcError::kInvalidParams, "Invalid params: tools/call needs a tool name.");
        }
        const std::string tool = p["name"];
        bool known = std::any_of(tools_.Definitions().begin(), tools_.Definitions().end(),
                                 [&](const Json& t) { return t.value("name", "") == tool; });
        if (!known) throw RpcError(RpcError::kInvalidParams, "Unknown tool: " + tool);
        Json arguments = p.contains("arguments") && !p["arguments"].is_null() ? p["arguments"] : Json::object();
        ToolDone done = [respond = std::move(respond)](ToolResult r) { respond(ToolResultJson(r)); };
        if (!arguments.is_object()) {
          done(ToolResult::Error("The arguments must be an object."));
        } else {
          tools_.Call(tool, arguments, ctx, std::move(done));
        }
      },
      /*concurrent=*/tools_on_threads);
  rpc_.OnNotification("notifications/initialized", [this](const Json&) { tools_.ClientReady(initialize_params_); });
  if (tools_.HasResources()) {
    auto uri_of = [](const RequestContext& ctx) {
      const Json& p = ctx.params();
      if (!p.is_object() || !p.contains("uri") || !p["uri"].is_string()) {
        throw RpcError(RpcError::kInvalidParams, "Invalid params: a resource uri (string) is required.");
      }
      return p["uri"].get<std::string>();
    };
    rpc_.On("resources/list", [this](RequestContext&) { return Json{{"resources", tools_.ListResources()}}; });
    rpc_.On("resources/templates/list", [](RequestContext&) { return Json{{"resourceTemplates", Json::array()}}; });
    rpc_.On("resources/read", [this, uri_of](RequestContext& ctx) {
      return Json{{"contents", tools_.ReadResource(uri_of(ctx))}};
    });
    rpc_.On("resources/subscribe", [this, uri_of](RequestContext& ctx) {
      tools_.Subscribe(uri_of(ctx), true);
      return Json::object();
    });
    rpc_.On("resources/unsubscribe", [this, uri_of](RequestContext& ctx) {
      tools_.Subscribe(uri_of(ctx), false);
      return Json::object();
    });
  }
}

}  // namespace meshwire::mcp
