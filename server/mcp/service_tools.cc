#include "server/mcp/service_tools.h"

#include <spdlog/spdlog.h>

#include <atomic>
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
    return mcp::ErrorResult(e);
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
      url_(std::move(url)) {}

void ServiceTools::RegisterAgent() {
  agent_id_ = service_.RegisterAgent(caller_, mesh_id_, agent_name_, "mcp").agent.agent_id;
}

const Json& ServiceTools::Definitions() const { return McpToolDefinitions(); }

std::string ServiceTools::AgentDeletedSentence() const {
  return "This session's agent " + agent_name_ + " (" + agent_id() + ") was deleted from mesh " + mesh_id_ +
         ", so this session has ended: start a new MCP session to register it again.";
}

mcp::ToolResult ServiceTools::Failed(std::exception_ptr error) const {
  try {
    std::rethrow_exception(error);
  } catch (const Error& e) {
    // This session's own agent, deleted (by its owner, or by retention): not
    // a recipient to look up, as the sentence for an unknown agent says.
    if (e.code() == "agent_not_found" && !agent_id_.empty() &&
        std::string_view(e.what()).find("\"" + agent_id_ + "\"") != std::string_view::npos) {
      return mcp::ToolResult::Error(AgentDeletedSentence());
    }
  } catch (...) {
  }
  return Failure(error);
}

std::string ServiceTools::Instructions() const {
  return mcp::ToolInstructions(mesh_id_, agent_name_, kMaxWaitS);
}

void ServiceTools::Call(const std::string& name, const Json& args,
                        const std::shared_ptr<mcp::RequestContext>& context, mcp::ToolDone done) {
  if (auto wrong = mcp::UnknownArgument(name, args)) return done(*wrong);
  try {
    service_.Heartbeat(caller_, mesh_id_, agent_id_);  // a tool call is a sign of life
    if (name == "meshwire_get_messages") return GetMessages(args, context, done);
    if (name == "meshwire_send_message") return Send(args, done);  // a copy: a throw answers below
    if (name == "meshwire_reply_to_message") return done(Reply(args));
    if (name == "meshwire_list_agents") return done(ListAgents());
    if (name == "meshwire_status") return done(Status());
  } catch (...) {
    return done(Failed(std::current_exception()));
  }
  done(mcp::ToolResult::Error("Unknown tool " + name + "."));
}

void ServiceTools::Send(const Json& args, mcp::ToolDone done) {
  mcp::SendArgs a;
  if (auto wrong = mcp::ReadArgs(args, a)) return done(*wrong);
  SendRequest request;
  request.from = agent_id_;
  request.content = a.content;
  if (a.to) request.to = *a.to;
  // Answered from the commit (on the storage writer's thread: a small JSON
  // text, and the loop guard's look-up); no thread waits for it.
  service_.Send(caller_, mesh_id_, request,
                [this, done, direct = a.to.has_value(), keep = keep_alive_ ? keep_alive_() : nullptr](
                    std::exception_ptr error, AppendResult r) {
                  if (error) return done(Failed(error));
                  mcp::ToolResult sent = mcp::SentResult(r.message);
                  if (send_notice_ && direct) {
                    std::string notice = send_notice_(agent_id_, r.message.to);
                    if (!notice.empty()) sent.text += " " + notice;
                  }
                  done(std::move(sent));
                });
}

/// One get_messages call: what its polls share.
struct ServiceTools::GetCall {
  int wait_s = 0;
  std::chrono::steady_clock::time_point started;
  std::weak_ptr<mcp::RequestContext> context;
  mcp::ToolDone done;
  std::shared_ptr<void> keep;  // the session, until the call answers
  std::mutex mu;
  int pass = 0;  // guarded by mu: the poll whose wait a cancellation must end
  std::atomic<bool> answered{false};
  /// Answers the call, once (a pass that fails after another answered does not).
  void Answer(mcp::ToolResult result) {
    if (!answered.exchange(true)) done(std::move(result));
  }
};

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
  auto call = std::make_shared<GetCall>();
  call->wait_s = request.wait_s;
  call->started = std::chrono::steady_clock::now();
  call->context = context;
  call->done = std::move(done);
  call->keep = keep_alive_ ? keep_alive_() : nullptr;
  PollPass(call, std::move(request), 0);
}

void ServiceTools::PollPass(const std::shared_ptr<GetCall>& call, PollRequest request, int pass) {
  Waiters::Handle wait = service_.Poll(
      caller_, mesh_id_, request, [this, call, request, pass](std::exception_ptr error, PollResult result) {
        if (error) return call->Answer(Failed(error));
        // What the client has shown it has is not shown again (PushLedger).
        std::vector<Message> all;
        for (const CommittedPtr& c : result.messages) all.push_back(c->message());
        const bool came = !all.empty();
        mcp::PushLedger::Inbox inbox = ledger_.Filter(std::move(all));
        auto live = call->context.lock();
        if (inbox.messages.empty() && came && pass < mcp::PushLedger::kMaxPushedPasses && live &&
            !live->cancelled()) {
          // All that came was pushed: the client has it. Look past it (the
          // next poll acknowledges it) for what was not, within the wait.
          {
            std::lock_guard lock(call->mu);
            call->pass = pass + 1;
          }
          PollRequest next = request;
          next.after = result.cursor;
          const auto waited = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() -
                                                                               call->started);
          next.wait_s = std::max<int>(0, call->wait_s - static_cast<int>(waited.count()));
          // Not here: this may be the writer's thread, and a poll that
          // acknowledges waits for a commit (Waiters: completions only post).
          service_.Post([this, call, next = std::move(next), pass]() mutable {
            try {
              PollPass(call, std::move(next), pass + 1);
            } catch (...) {
              call->Answer(Failed(std::current_exception()));
            }
          });
          return;
        }
        // The next call acknowledges this batch, once the client has it: not
        // if this call is cancelled before its answer goes.
        if (live) {
          live->OnAnswer([this, cursor = result.cursor] {
            std::lock_guard lock(mu_);
            cursor_ = cursor;
          });
        }
        const std::vector<Message>& messages = inbox.messages;
        const auto& pushed = inbox.pushed;
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
        call->Answer(mcp::InboxResult(
            messages,
            [&](const std::string& from) {
              auto it = harness_of.find(from);
              return it == harness_of.end() ? std::string() : it->second;
            },
            mcp::SecondsWaited(call->started, call->wait_s),
            [&](const std::string& id) { return pushed.count(id) > 0; }));
      });
  // A cancelled call (notifications/cancelled, the client hung up) ends the
  // wait: nothing more is read, nothing is marked fetched. Only the newest
  // poll's: one that answered at once may already have started the next.
  std::lock_guard lock(call->mu);
  if (auto context = call->context.lock(); wait && context && call->pass == pass) {
    context->OnCancel([this, wait] { service_.CancelPoll(wait); });
  }
}

mcp::ToolResult ServiceTools::Reply(const Json& args) {
  mcp::ReplyArgs a;
  if (auto wrong = mcp::ReadArgs(args, a)) return *wrong;
  AppendResult sent = service_.Reply(caller_, mesh_id_, a.message_id, agent_id_, a.content, "{}");
  ledger_.Replied(a.message_id);  // answered: the client has it
  return mcp::RepliedResult(a.message_id, sent.message);
}

mcp::ToolResult ServiceTools::ListAgents() {
  return mcp::AgentsResult(mesh_id_, service_.ListAgents(caller_, mesh_id_), agent_name_);
}

mcp::ToolResult ServiceTools::Status() {
  return mcp::StatusResult(
      {url_, service_.options().version, agent_name_, agent_id_, service_.GetMesh(caller_, mesh_id_)});
}

Json ServiceTools::ListResources() {
  return Json::array({{{"uri", kInboxUri},
                       {"name", "inbox"},
                       {"title", "meshwire inbox of " + agent_name_},
                       {"description",
                        "Messages other agents sent to " + agent_name_ +
                            " that it has not acknowledged. Reading it moves nothing; meshwire_get_messages "
                            "returns and acknowledges them."},
                       {"mimeType", "text/plain"}}});
}

Json ServiceTools::ReadResource(const std::string& uri) {
  if (uri != kInboxUri) throw mcp::RpcError(-32002, "Resource not found: " + uri + " (there is " + kInboxUri + ").");
  std::optional<std::int64_t> after;
  {
    std::lock_guard lock(mu_);
    after = cursor_;
  }
  std::string text;
  try {
    std::vector<Message> waiting = service_.Pending(caller_, mesh_id_, agent_id_, after, 100);
    for (const Message& m : waiting)
      text += mcp::FramedMessage(m, service_.CachedHarness(mesh_id_, m.from)) + "\n";
    if (waiting.empty()) text = "No messages waiting.";
  } catch (const Error& e) {
    throw mcp::RpcError(mcp::RpcError::kInternalError, e.what());
  }
  return Json::array({{{"uri", kInboxUri}, {"mimeType", "text/plain"}, {"text", text}}});
}

void ServiceTools::Subscribe(const std::string& uri, bool on) {
  if (uri != kInboxUri) throw mcp::RpcError(-32002, "Resource not found: " + uri + " (there is " + kInboxUri + ").");
  std::lock_guard lock(mu_);
  inbox_subscribed_ = on;
}

Json ServiceTools::ExtraCapabilities() const {
  return {{"experimental", {{"claude/channel", Json::object()}}}};
}

void ServiceTools::ClientReady(const Json& params) { ledger_.ClientReady(params); }

bool ServiceTools::IsFor(const Message& m) const {
  return m.mesh_id == mesh_id_ && mcp::PushLedger::IsFor(m, agent_id_);
}

bool ServiceTools::TakeForPush(const Message& m) {
  if (!IsFor(m)) return false;
  std::optional<std::int64_t> cursor;
  {
    std::lock_guard lock(mu_);
    cursor = cursor_;
  }
  return ledger_.TakeForPush(m, cursor);
}

bool ServiceTools::ready() const { return ledger_.ready(); }

bool ServiceTools::inbox_subscribed() const {
  std::lock_guard lock(mu_);
  return inbox_subscribed_;
}

}  // namespace meshwire
