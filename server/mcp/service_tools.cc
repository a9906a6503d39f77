#include "server/mcp/service_tools.h"

#include <spdlog/spdlog.h>

#include <future>
#include <nlohmann/json.hpp>
#include <unordered_map>

#include "mcp/tool_format.h"
#include "schemas/mcp_schemas.h"

namespace meshwire {

namespace {

/// A relay error as the sentence a model reads.
mcp::ToolResult Failure(std::exception_ptr error) {
  try {
    std::rethrow_exception(error);
  } catch (const Error& e) {
    return mcp::ToolResult::Error(e.what());
  } catch (const std::exception& e) {
    spdlog::error("MCP tool failed: {}", e.what());
    return mcp::ToolResult::Error("The relay failed to do this; try again in a moment.");
  }
}

}  // namespace

ServiceTools::ServiceTools(MeshService& service, Caller caller, std::string mesh_id,
                           std::string agent_name, std::string url)
    : service_(service),
      caller_(std::move(caller)),
      mesh_id_(std::move(mesh_id)),
      agent_name_(std::move(agent_name)),
      url_(std::move(url)) {
  agent_id_ = service_.RegisterAgent(caller_, mesh_id_, agent_name_, "mcp").agent.agent_id;
}

const Json& ServiceTools::Definitions() const { return McpToolDefinitions(); }

std::string ServiceTools::Instructions() const {
  return mcp::ToolInstructions(mesh_id_, agent_name_, kMaxWaitS);
}

void ServiceTools::Call(const std::string& name, const Json& args,
                        const std::shared_ptr<mcp::RequestContext>& context, mcp::ToolDone done) {
  if (auto wrong = mcp::UnknownArgument(name, args)) return done(*wrong);
  try {
    service_.Heartbeat(caller_, mesh_id_, agent_id_);  // a tool call is a sign of life
    if (name == "meshwire_get_messages") return GetMessages(args, context, std::move(done));
    if (name == "meshwire_send_message") return done(Send(args));
    if (name == "meshwire_reply_to_message") return done(Reply(args));
    if (name == "meshwire_list_agents") return done(ListAgents());
    if (name == "meshwire_status") return done(Status());
  } catch (...) {
    return done(Failure(std::current_exception()));
  }
  done(mcp::ToolResult::Error("Unknown tool " + name + "."));
}

mcp::ToolResult ServiceTools::Send(const Json& args) {
  mcp::SendArgs a;
  if (auto wrong = mcp::ReadArgs(args, a)) return *wrong;
  SendRequest request;
  request.from = agent_id_;
  request.content = a.content;
  if (a.to) request.to = *a.to;
  // The commit completes on the storage writer's thread; this worker waits
  // for it (a send is quick), so the tool answers with the stored message.
  std::promise<AppendResult> committed;
  auto result = committed.get_future();
  service_.Send(caller_, mesh_id_, request, [&committed](std::exception_ptr error, AppendResult r) {
    if (error) {
      committed.set_exception(error);
    } else {
      committed.set_value(std::move(r));
    }
  });
  return mcp::SentResult(result.get().message);
}

void ServiceTools::GetMessages(const Json& args, const std::shared_ptr<mcp::RequestContext>& context,
                               mcp::ToolDone done) {
  mcp::GetMessagesArgs a;
  if (auto wrong = mcp::ReadArgs(args, a)) return done(*wrong);
  PollRequest request;
  request.agent_id = agent_id_;
  request.wait_s = std::min(a.wait_s, kMaxWaitS);
  request.limit = a.limit;
  {
    std::lock_guard lock(mu_);
    request.after = cursor_;  // acknowledges the previous batch
  }
  const int waited = request.wait_s;
  Waiters::Handle wait = service_.Poll(
      caller_, mesh_id_, request,
      [this, done, waited, keep = keep_alive_ ? keep_alive_() : nullptr](std::exception_ptr error,
                                                                         PollResult result) {
        if (error) return done(Failure(error));
        {
          std::lock_guard lock(mu_);
          cursor_ = result.cursor;
        }
        std::vector<Message> messages;
        messages.reserve(result.messages.size());
        for (const CommittedPtr& m : result.messages) messages.push_back(m->message());
        std::unordered_map<std::string, std::string> harness_of;
        if (!messages.empty()) {
          try {
            for (const AgentView& agent : service_.ListAgents(caller_, mesh_id_)) {
              harness_of[agent.agent.agent_id] = agent.agent.harness;
            }
          } catch (const std::exception& e) {
            spdlog::warn("MCP get_messages: no harness names ({})", e.what());
          }
        }
        done(mcp::InboxResult(
            messages,
            [&](const std::string& from) {
              auto it = harness_of.find(from);
              return it == harness_of.end() ? std::string() : it->second;
            },
            waited));
      });
  // A cancelled call (notifications/cancelled, the client hung up) ends the
  // wait: nothing more is read, nothing is marked fetched.
  if (wait) context->OnCancel([this, wait] { service_.CancelPoll(wait); });
}

mcp::ToolResult ServiceTools::Reply(const Json& args) {
  mcp::ReplyArgs a;
  if (auto wrong = mcp::ReadArgs(args, a)) return *wrong;
  AppendResult sent = service_.Reply(caller_, mesh_id_, a.message_id, agent_id_, a.content, "{}");
  return mcp::RepliedResult(a.message_id, sent.message);
}

mcp::ToolResult ServiceTools::ListAgents() {
  return mcp::AgentsResult(mesh_id_, service_.ListAgents(caller_, mesh_id_), agent_name_);
}

mcp::ToolResult ServiceTools::Status() {
  return mcp::StatusResult(
      {url_, service_.options().version, agent_name_, agent_id_, service_.GetMesh(caller_, mesh_id_)});
}

}  // namespace meshwire
