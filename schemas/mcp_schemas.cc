#include "schemas/mcp_schemas.h"

#include <nlohmann/json.hpp>

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

}  // namespace meshwire
