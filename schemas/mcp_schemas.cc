#include "schemas/mcp_schemas.h"

#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>

namespace meshwire {

namespace {
// Replaces each "$message" string with the message schema (inlined: no $ref).
void Inline(Json& node, const Json& message) {
  if (node.is_string() && node.get<std::string>() == "$message") {
    node = message;
  } else if (node.is_object() || node.is_array()) {
    for (auto& child : node) Inline(child, message);
  }
}
}  // namespace

const Json& McpToolDefinitions() {
  static const Json tools = [] {
    Json t = Json::parse(McpToolsJson());
    Inline(t, Json::parse(McpMessageSchemaJson()));
    return t;
  }();
  return tools;
}

Json McpToolDefinitions(int max_wait_s) {
  Json tools = McpToolDefinitions();
  const std::string stated = "capped at " + std::to_string(kToolsMaxWaitS) + ")";
  for (Json& tool : tools) {
    if (tool.value("name", "") != "meshwire_get_messages") continue;
    Json& description = tool["inputSchema"]["properties"]["wait_seconds"]["description"];
    std::string text = description.get<std::string>();
    const auto at = text.rfind(stated);
    if (at == std::string::npos) throw std::logic_error("tools.json: wait_seconds does not state its cap");
    description = text.replace(at, stated.size(), "capped at " + std::to_string(max_wait_s) + ")");
  }
  return tools;
}

}  // namespace meshwire
