// What the five meshwire tools take and say, written once for both servers
// that offer them: `meshwire mcp` (the tools over the relay's REST API,
// mesh_tools.h) and the relay's own MCP endpoint (over MeshService,
// server/http/mcp_endpoint.h). A model sees the same arguments, sentences and
// structured values from either.
#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "mcp/mcp_server.h"
#include "schemas/error.h"
#include "schemas/rest.h"

namespace meshwire::mcp {

/// An isError result naming an argument that `tool`'s inputSchema does not
/// have (the schemas say additionalProperties: false); nullopt when none.
std::optional<ToolResult> UnknownArgument(const std::string& tool, const Json& arguments);

struct SendArgs {
  std::string content;
  std::optional<std::string> to;  // an agent name or id; unset: everyone
};
struct GetMessagesArgs {
  int wait_s = 0;
  int limit = 20;
};
struct ReplyArgs {
  std::string message_id;
  std::string content;
};
/// Read a tool's arguments; an isError result saying what is wrong, or nullopt.
std::optional<ToolResult> ReadArgs(const Json& arguments, SendArgs& out);
std::optional<ToolResult> ReadArgs(const Json& arguments, GetMessagesArgs& out);
std::optional<ToolResult> ReadArgs(const Json& arguments, ReplyArgs& out);

/// A relay error as the sentence a model reads: the relay's own sentence,
/// except that a hint naming a command line (`meshwire agents`) names the
/// tool that does the same (meshwire_list_agents) instead.
ToolResult ErrorResult(const Error& error);

ToolResult SentResult(const Message& sent);
ToolResult RepliedResult(const std::string& message_id, const Message& sent);
/// One message framed as written by another agent, not by the user (the
/// text a model reads, in meshwire_get_messages and in a push). `harness`:
/// the sender's, "" when unknown.
std::string FramedMessage(const Message& message, const std::string& harness);
/// The messages framed as written by other agents. `harness_of(agent_id)`:
/// a sender's harness, "" when unknown. `waited_s`: how long an empty answer
/// waited. `pushed(id)`: true for a message already pushed to this session
/// (the text says so, in case the client did not show the push).
/// Whole seconds since `since` (rounded), at most `wait_s`: what an empty
/// answer says it waited (a relay's shutdown ends a wait early).
int SecondsWaited(std::chrono::steady_clock::time_point since, int wait_s);
ToolResult InboxResult(const std::vector<Message>& messages,
                       const std::function<std::string(const std::string&)>& harness_of, int waited_s,
                       const std::function<bool(const std::string&)>& pushed = nullptr);
/// The params of `notifications/claude/channel` for an incoming message:
/// {"content": framed text, "meta": {message_id, from, from_name, seq}}
/// (meta values are strings, as Claude Code requires); the text names the
/// sender's `harness` as meshwire_get_messages does ("": unknown, left out).
Json ChannelParams(const Message& message, const std::string& harness);
ToolResult AgentsResult(const std::string& mesh_id, const std::vector<AgentInfo>& agents,
                        const std::string& self_name);

struct StatusFacts {
  std::string url, version, agent_name, agent_id;
  MeshDetails mesh;
};
ToolResult StatusResult(const StatusFacts& facts);

/// The initialize result's instructions for an agent that is set up.
std::string ToolInstructions(const std::string& mesh_id, const std::string& agent_name, int max_wait_s);

}  // namespace meshwire::mcp
