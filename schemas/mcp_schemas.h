// The MCP tools' definitions (schemas/mcp/tools.json, compiled in): names,
// descriptions, input and output schemas, annotations. Every schema is a
// plain object with "type":"object" at the root: no $schema, $ref or $defs,
// since MCP clients' validators differ.
#pragma once

#include <string_view>

#include "schemas/json_io.h"

namespace meshwire {

std::string_view McpToolsJson();          // schemas/mcp/tools.json as written
std::string_view McpMessageSchemaJson();  // schemas/mcp/message.json

/// The tool definitions for tools/list, with every "$message" marker
/// replaced by the message schema itself.
const Json& McpToolDefinitions();

/// The longest wait of meshwire_get_messages that tools.json states (the
/// relay's endpoint and `meshwire mcp` by default).
inline constexpr int kToolsMaxWaitS = 25;
/// The same definitions for a server whose get_messages waits at most
/// `max_wait_s` (`meshwire mcp --max-wait`): wait_seconds says that cap.
Json McpToolDefinitions(int max_wait_s);

}  // namespace meshwire
