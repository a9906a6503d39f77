#include "mcp/mesh_tools.h"

#include <spdlog/spdlog.h>

#include <nlohmann/json.hpp>

#include "mcp/tool_format.h"
#include "schemas/mcp_schemas.h"

namespace meshwire::mcp {


MeshTools::MeshTools(MeshToolsOptions options) : options_(std::move(options)) {}

MeshTools::~MeshTools() {
  {
    std::lock_guard lock(stop_mu_);
    stopping_ = true;
  }
  stop_cv_.notify_all();
  if (heartbeat_.joinable()) heartbeat_.join();
}

void MeshTools::Start() {
  heartbeat_ = std::thread([this] { Heartbeats(); });
}

void MeshTools::Heartbeats() {
  std::unique_lock lock(stop_mu_);
  bool warned = false;
  while (!stopping_) {
    lock.unlock();
    try {
      RelayClient client = NewClient();
      client.Heartbeat(options_.mesh_id, AgentId(client));
      warned = false;
    } catch (const Error& e) {
      if (!warned) spdlog::warn("{}", e.what());
      warned = true;
    }
    lock.lock();
    stop_cv_.wait_for(lock, std::chrono::seconds(options_.heartbeat_s), [&] { return stopping_; });
  }
}

std::string MeshTools::AgentId(RelayClient& client) {
  {
    std::lock_guard lock(mu_);
    if (!agent_id_.empty()) return agent_id_;
  }
  if (options_.token.empty()) throw Error(401, "no_credentials", SetupProblem());
  if (options_.mesh_id.empty()) throw Error(400, "config", SetupProblem());
  std::string id = client.RegisterAgent(options_.mesh_id, options_.agent_name, options_.harness).first;
  std::lock_guard lock(mu_);
  agent_id_ = id;
  return id;
}

std::string MeshTools::SetupProblem() const {
  if (options_.token.empty()) {
    const std::string file =
        options_.home.empty() ? "~/.meshwire/credentials.json" : options_.home + "/credentials.json";
    return "No meshwire credentials reached this MCP server: MESHWIRE_TOKEN is not set for it and " +
           file + " holds no token. Run `meshwire login` on this machine (or give this server "
           "MESHWIRE_TOKEN in your MCP client's entry for it), then restart the server.";
  }
  if (options_.mesh_id.empty()) {
    return "No mesh for this MCP server: start it with --mesh ID (`meshwire mesh list` shows yours), "
           "or from a workspace with a .mesh.json (`meshwire init --harness H` writes one).";
  }
  return "";
}

const Json& MeshTools::Definitions() const { return McpToolDefinitions(); }

std::string MeshTools::Instructions() const {
  if (std::string problem = SetupProblem(); !problem.empty()) {
    return "meshwire is not set up yet, so its tools will fail: " + problem +
           " Tell the user this if they ask you to message other agents.";
  }
  return ToolInstructions(options_.mesh_id, options_.agent_name, options_.max_wait_s);
}

void MeshTools::Call(const std::string& name, const Json& args, const std::shared_ptr<RequestContext>& context,
                     ToolDone done) {
  // tools/call runs on its own thread here (McpServer's tools_on_threads).
  done(Run(name, args, *context));
}

ToolResult MeshTools::Run(const std::string& name, const Json& args, RequestContext& context) {
  if (auto wrong = UnknownArgument(name, args)) return *wrong;
  try {
    if (name == "meshwire_send_message") return Send(args);
    if (name == "meshwire_get_messages") return GetMessages(args, context);
    if (name == "meshwire_list_agents") return ListAgents();
    if (name == "meshwire_status") return Status();
    if (name == "meshwire_reply_to_message") return Reply(args);
  } catch (const Error& e) {
    return Failure(e);
  }
  return ToolResult::Error("Unknown tool " + name + ".");
}

ToolResult MeshTools::Failure(const Error& e) const {
  std::string sentence = e.what();
  if (e.code() == "unauthorized") {
    sentence = "The relay refused this agent's token (unknown or revoked): run `meshwire login` "
               "(or give this MCP server a new MESHWIRE_TOKEN), then restart it.";
  } else if (e.code() == "unreachable" || e.code() == "timeout") {
    sentence = "The meshwire relay at " + options_.url +
               " cannot be reached right now: check that it is running (`meshwire status`) and try "
               "the tool again in a moment.";
  }
  return ToolResult::Error(sentence);
}

ToolResult MeshTools::Send(const Json& args) {
  SendArgs a;
  if (auto wrong = ReadArgs(args, a)) return *wrong;
  RelayClient client = NewClient();
  OutgoingMessage m;
  m.from = AgentId(client);
  m.content = a.content;
  if (a.to) m.to = *a.to;
  return SentResult(client.Send(options_.mesh_id, m));
}

std::unordered_map<std::string, std::string> MeshTools::SenderHarnesses(
    RelayClient& client, const std::vector<Message>& messages) {
  // mu_ held: what is known of each sender ("" for a sender still unknown).
  auto known = [&](bool& all_known) {
    std::unordered_map<std::string, std::string> out;
    all_known = true;
    for (const Message& m : messages) {
      auto it = harness_of_.find(m.from);
      all_known = all_known && it != harness_of_.end();
      out[m.from] = it == harness_of_.end() ? "" : it->second;
    }
    return out;
  };
  bool all_known = false;
  {
    std::lock_guard lock(mu_);
    auto out = known(all_known);
    if (all_known) return out;
  }
  // A sender not seen yet: one look at the agent list for the whole batch.
  std::vector<AgentInfo> agents = client.Agents(options_.mesh_id);
  std::lock_guard lock(mu_);
  for (const AgentInfo& a : agents) harness_of_[a.agent.agent_id] = a.agent.harness;
  return known(all_known);
}

ToolResult MeshTools::GetMessages(const Json& args, RequestContext& context) {
  GetMessagesArgs a;
  if (auto wrong = ReadArgs(args, a)) return *wrong;
  const int wait = std::min(a.wait_s, options_.max_wait_s);  // hosts time tool calls out at about 60 s
  RelayClient client = NewClient();
  std::string agent_id = AgentId(client);
  std::optional<std::int64_t> after;
  {
    std::lock_guard lock(mu_);
    after = cursor_;
  }
  context.OnCancel([&client] { client.Cancel(); });
  PollAnswer answer;
  try {
    answer = client.Poll(options_.mesh_id, agent_id, after, wait, a.limit);
  } catch (...) {
    context.OnCancel(nullptr);
    throw;
  }
  context.OnCancel(nullptr);
  {
    std::lock_guard lock(mu_);
    cursor_ = answer.cursor;  // the next call acknowledges this batch
  }
  const auto harnesses = answer.messages.empty() ? std::unordered_map<std::string, std::string>{}
                                                 : SenderHarnesses(client, answer.messages);
  return InboxResult(answer.messages, [&](const std::string& from) { return harnesses.at(from); }, wait);
}

ToolResult MeshTools::ListAgents() {
  RelayClient client = NewClient();
  AgentId(client);  // so this agent shows up, and is seen
  return AgentsResult(options_.mesh_id, client.Agents(options_.mesh_id), options_.agent_name);
}

ToolResult MeshTools::Status() {
  RelayClient client = NewClient();
  if (std::string problem = SetupProblem(); !problem.empty()) {
    // Still say whether the relay itself answers: one less thing to check.
    std::string relay;
    try {
      client.Health();
      relay = "The relay at " + options_.url + " is online.";
    } catch (const Error&) {
      relay = "The relay at " + options_.url + " does not answer either (`meshwire status` checks it).";
    }
    return ToolResult::Error(problem + " " + relay);
  }
  HealthAnswer h = client.Health();
  std::string agent_id = AgentId(client);
  return StatusResult({options_.url, h.version, options_.agent_name, agent_id, client.GetMesh(options_.mesh_id)});
}

ToolResult MeshTools::Reply(const Json& args) {
  ReplyArgs a;
  if (auto wrong = ReadArgs(args, a)) return *wrong;
  RelayClient client = NewClient();
  return RepliedResult(a.message_id, client.Reply(options_.mesh_id, a.message_id, AgentId(client), a.content));
}

}  // namespace meshwire::mcp
