#include "mcp/mesh_tools.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <string_view>

#include "mcp/tool_format.h"
#include "schemas/ids.h"
#include "schemas/json_io.h"
#include "schemas/mcp_schemas.h"

namespace meshwire::mcp {


MeshTools::MeshTools(MeshToolsOptions options)
    : options_(std::move(options)),
      definitions_(std::make_unique<const Json>(McpToolDefinitions(options_.max_wait_s))) {}

MeshTools::~MeshTools() { Stop(); }

void MeshTools::Stop() {
  {
    std::lock_guard lock(stop_mu_);
    stopping_ = true;
    if (events_client_) events_client_->Cancel();
    if (lookup_client_) lookup_client_->Cancel();
  }
  stop_cv_.notify_all();
  if (heartbeat_.joinable()) heartbeat_.join();
  if (pusher_.joinable()) pusher_.join();
}

Json MeshTools::ExtraCapabilities() const { return {{"experimental", {{"claude/channel", Json::object()}}}}; }

void MeshTools::ClientReady(const Json& params) {
  ledger_.ClientReady(params);
  // Only to clients that take them: another client may treat an unknown
  // notification as an error. Pushing needs a complete configuration.
  const bool takes = ledger_.client_shows_pushes() || ledger_.client_name() == "claude-code";
  if (!takes || !notifier_ || !SetupProblem().empty() || pusher_.joinable()) return;
  pusher_ = std::thread([this] { PushLoop(); });
}

bool MeshTools::Sleep(std::chrono::milliseconds delay) {
  std::unique_lock lock(stop_mu_);
  stop_cv_.wait_for(lock, delay, [&] { return stopping_; });
  return !stopping_;
}

void MeshTools::PushLoop() {
  const std::chrono::milliseconds backoff[] = {std::chrono::milliseconds(500), std::chrono::seconds(1),
                                               std::chrono::seconds(2), std::chrono::seconds(5)};
  std::size_t failures = 0;
  for (;;) {
    std::unique_ptr<RelayClient> made;
    try {
      made = std::make_unique<RelayClient>(NewClient());
    } catch (const std::exception& e) {  // a URL no client can use: each tool call says so
      spdlog::debug("push stream: {}", e.what());
      if (!Sleep(backoff[std::size(backoff) - 1])) return;
      continue;
    }
    RelayClient& client = *made;
    {
      std::lock_guard lock(stop_mu_);
      if (stopping_) return;
      events_client_ = &client;
    }
    // For the senders' harnesses: the stream's own client is busy with it.
    std::optional<RelayClient> lookup;
    try {
      const std::string agent_id = AgentId(client);
      client.FollowEvents(options_.mesh_id, [&](const std::string& event, const std::string& data) {
        failures = 0;
        if (event != "message") return true;
        Json j = Json::parse(data, nullptr, false);
        if (!j.is_object()) return true;
        Message m;
        try {
          m = MessageFromJson(j);
        } catch (const std::exception&) {
          return true;
        }
        std::optional<std::int64_t> cursor;
        std::string current;  // registered again since the stream opened, if the agent was deleted
        {
          std::lock_guard lock(mu_);
          cursor = cursor_;
          current = agent_id_.empty() ? agent_id : agent_id_;
        }
        if (!PushLedger::IsFor(m, current)) return true;
        // The sender's harness first (get_messages names it too): a message
        // is marked pushed only when its push goes at once.
        std::string harness;
        try {
          if (!lookup) {
            std::lock_guard lock(stop_mu_);
            if (stopping_) return false;
            lookup_client_ = &lookup.emplace(NewClient());  // Stop() cancels it
          }
          harness = SenderHarnesses(*lookup, {m}).at(m.from);
        } catch (const std::exception& e) {  // pushed without it
          spdlog::debug("push: the sender's harness: {}", e.what());
        }
        if (!ledger_.TakeForPush(m, cursor)) return true;
        notifier_("notifications/claude/channel", ChannelParams(m, harness));
        return true;
      });
    } catch (const Error& e) {
      if (e.code() != "cancelled") spdlog::debug("push stream: {}", e.what());
    } catch (const std::exception& e) {
      spdlog::debug("push stream: {}", e.what());
    }
    {
      std::lock_guard lock(stop_mu_);
      events_client_ = nullptr;
      lookup_client_ = nullptr;
    }
    // The stream ended or failed: reconnect (what came meanwhile is not
    // lost: meshwire_get_messages returns it).
    if (!Sleep(backoff[std::min(failures++, std::size(backoff) - 1)])) return;
  }
}

void MeshTools::Start() {
  heartbeat_ = std::thread([this] { Heartbeats(); });
}

void MeshTools::Heartbeats() {
  std::unique_lock lock(stop_mu_);
  // A setup problem (no token, no mesh) fails every heartbeat the same way;
  // `meshwire mcp` said it once on stderr as it started.
  bool warned = !SetupProblem().empty();
  while (!stopping_) {
    lock.unlock();
    try {
      RelayClient client = NewClient();
      try {
        client.Heartbeat(options_.mesh_id, AgentId(client));
      } catch (const Error& e) {
        if (!ForgetIfGone(e)) throw;
        client.Heartbeat(options_.mesh_id, AgentId(client));  // registered again, by the same name
      }
      warned = false;
    } catch (const std::exception& e) {
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
  if (!options_.setup_problem.empty()) throw Error(400, "config", SetupProblem());
  if (options_.token.empty()) throw Error(401, "no_credentials", SetupProblem());
  if (options_.mesh_id.empty()) throw Error(400, "config", SetupProblem());
  std::string id;
  try {
    id = client.RegisterAgent(options_.mesh_id, options_.agent_name, options_.harness).first;
  } catch (const Error& e) {
    if (e.status() != 409) throw;
    // A teammate's workspace files name their agent: init gives this user one of their own.
    throw Error(409, e.code(),
                std::string(e.what()) + " Run `meshwire init` in this workspace to get an agent name of your "
                                        "own (or set MESHWIRE_AGENT_NAME in this server's entry), then restart "
                                        "this server.");
  }
  std::lock_guard lock(mu_);
  agent_id_ = id;
  return id;
}

std::string MeshTools::SetupProblem() const {
  if (!options_.setup_problem.empty()) return options_.setup_problem;
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

const Json& MeshTools::Definitions() const { return *definitions_; }

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

bool MeshTools::ForgetIfGone(const Error& e) {
  std::lock_guard lock(mu_);
  if (e.code() != "agent_not_found") return false;
  auto names = [&](const std::string& id) {
    return !id.empty() && std::string_view(e.what()).find("\"" + id + "\"") != std::string_view::npos;
  };
  // Another call (or the heartbeat) found it gone first: it is registered again.
  if (!names(agent_id_)) return names(gone_);
  spdlog::warn("agent {} ({}) is gone from mesh {} (deleted, or not seen for the retention period); "
               "registering it again",
               options_.agent_name, agent_id_, options_.mesh_id);
  gone_ = agent_id_;
  agent_id_.clear();
  cursor_.reset();  // the old agent's: the new one starts from its own
  return true;
}

ToolResult MeshTools::Run(const std::string& name, const Json& args, RequestContext& context) {
  if (auto wrong = UnknownArgument(name, args)) return *wrong;
  auto run = [&]() -> std::optional<ToolResult> {
    if (name == "meshwire_send_message") return Send(args);
    if (name == "meshwire_get_messages") return GetMessages(args, context);
    if (name == "meshwire_list_agents") return ListAgents();
    if (name == "meshwire_status") return Status();
    if (name == "meshwire_reply_to_message") return Reply(args);
    return std::nullopt;
  };
  const auto started = std::chrono::steady_clock::now();
  try {
    try {
      if (auto result = run()) return *result;
    } catch (const Error& e) {
      // This agent was deleted on the relay (by hand, or by retention after
      // a week unseen): the call fails before it does anything, so it is
      // made again by the agent registered again under the same name. (A
      // wait deleted while it waited waits only what was left of it.)
      if (!ForgetIfGone(e)) throw;
      if (name == "meshwire_get_messages") {
        Json again = args;
        const auto waited_ms =
            std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started).count();
        const std::int64_t asked = std::min<std::int64_t>(again.value("wait_seconds", 0), options_.max_wait_s);
        again["wait_seconds"] = std::max<std::int64_t>(0, asked - (waited_ms + 999) / 1000);
        return GetMessages(again, context);
      }
      if (auto result = run()) return *result;
    }
  } catch (const Error& e) {
    return Failure(e);
  } catch (const std::exception& e) {
    // Not the relay's answer (a library's own exception): still a result, never a crash.
    spdlog::error("{}: {}", name, e.what());
    return ToolResult::Error("The meshwire MCP server failed to run " + name + " (" + e.what() +
                             "); try again, and report it if it persists.");
  }
  return ToolResult::Error("Unknown tool " + name + ".");
}

ToolResult MeshTools::Failure(const Error& e) const {
  std::string sentence = e.what();
  if (e.code() == "unauthorized") {
    sentence = "The relay refused this agent's token (unknown or revoked): run `meshwire login` "
               "(or give this MCP server a new MESHWIRE_TOKEN), then restart it.";
  } else if (e.code() == "timeout") {
    // The request went: what it asked may have been done (Keyed makes a
    // send's or reply's retry safe).
    sentence =
        "The meshwire relay at " + options_.url +
        " did not answer in time, so this call may or may not have taken effect: calling the tool "
        "again with the same arguments is safe (a message is never stored twice); if it fails "
        "again, check that the relay is running (`meshwire status`).";
  } else if (e.code() == "unreachable" &&
             std::string_view(e.what()).find("https://") == std::string_view::npos) {
    // (A sentence that names https:// says what to change: it is kept.)
    sentence = "The meshwire relay at " + options_.url +
               " cannot be reached right now: check that it is running (`meshwire status`) and try "
               "the tool again in a moment.";
  }
  return ErrorResult(Error(e.status(), e.code(), sentence));
}

Message MeshTools::Keyed(const std::string& what,
                         const std::function<Message(const std::string& key)>& write) {
  constexpr auto kKept = std::chrono::hours(1);
  std::string key;
  {
    std::lock_guard lock(mu_);
    const auto now = std::chrono::steady_clock::now();
    std::erase_if(unanswered_,
                  [&](const auto& entry) { return now - entry.second.second > kKept; });
    auto it = unanswered_.find(what);
    key = it != unanswered_.end() ? it->second.first : "mcp-" + RandomBase62(24);
  }
  // Only this call's own key is forgotten: the same call made meanwhile may
  // have failed with it and still need it (mu_ held).
  auto forget = [&] {
    auto it = unanswered_.find(what);
    if (it != unanswered_.end() && it->second.first == key) unanswered_.erase(it);
  };
  try {
    Message written = write(key);
    std::lock_guard lock(mu_);
    forget();
    return written;
  } catch (const Error& e) {
    std::lock_guard lock(mu_);
    // No answer (a timeout, a connection lost), or the relay could not tell
    // (502, 503, 504: a lost COMMIT's outcome unknown): it may be stored.
    const bool unsure = e.status() == 502 || e.status() == 503 || e.status() == 504;
    if ((e.status() == 0 && (e.code() == "timeout" || e.code() == "unreachable")) || unsure) {
      if (unanswered_.size() >= kMaxUnanswered && !unanswered_.contains(what)) {
        unanswered_.erase(std::min_element(unanswered_.begin(), unanswered_.end(), [](const auto& a, const auto& b) {
          return a.second.second < b.second.second;
        }));  // the oldest
      }
      unanswered_[what] = {key, std::chrono::steady_clock::now()};
    } else {
      forget();  // answered: an error that stored nothing
    }
    throw;
  }
}

ToolResult MeshTools::Send(const Json& args) {
  SendArgs a;
  if (auto wrong = ReadArgs(args, a)) return *wrong;
  RelayClient client = NewClient();
  OutgoingMessage m;
  m.from = AgentId(client);
  m.content = a.content;
  if (a.to) m.to = *a.to;
  const std::string what = "send\n" + m.from + "\n" + m.to.value_or("") + "\n" + m.content;
  return SentResult(Keyed(what, [&](const std::string& key) {
    m.idempotency_key = key;
    return client.Send(options_.mesh_id, m);
  }));
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
  const auto started = std::chrono::steady_clock::now();
  PollAnswer answer;
  PushLedger::Inbox inbox;
  try {
    for (int pass = 0;; ++pass) {
      const auto waited = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - started);
      answer = client.Poll(options_.mesh_id, agent_id, after, std::max<int>(0, wait - static_cast<int>(waited.count())),
                           a.limit);
      const bool came = !answer.messages.empty();
      // What the client has shown it has is not shown again (PushLedger).
      inbox = ledger_.Filter(std::move(answer.messages));
      // All that came was pushed: the client has it. Look past it (the next
      // poll acknowledges it) for what was not, within the call's wait.
      if (!inbox.messages.empty() || !came || pass == PushLedger::kMaxPushedPasses) break;
      after = answer.cursor;
    }
  } catch (...) {
    context.OnCancel(nullptr);
    throw;
  }
  context.OnCancel(nullptr);
  const auto harnesses = inbox.messages.empty() ? std::unordered_map<std::string, std::string>{}
                                                : SenderHarnesses(client, inbox.messages);
  ToolResult result = InboxResult(
      inbox.messages, [&](const std::string& from) { return harnesses.at(from); }, SecondsWaited(started, wait),
      [&](const std::string& id) { return inbox.pushed.count(id) > 0; });
  // The next call acknowledges this batch, once the client has it: not if
  // this call is cancelled before its answer goes, nor if it fails above.
  context.OnAnswer([this, cursor = answer.cursor, agent_id] {
    std::lock_guard lock(mu_);
    if (agent_id_ == agent_id) cursor_ = cursor;  // not for an agent registered again meanwhile
  });
  return result;
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
  const std::string from = AgentId(client);
  const std::string what = "reply\n" + from + "\n" + a.message_id + "\n" + a.content;
  Message sent = Keyed(what, [&](const std::string& key) {
    return client.Reply(options_.mesh_id, a.message_id, from, a.content, key);
  });
  ledger_.Replied(a.message_id);  // answered: the client has it
  return RepliedResult(a.message_id, sent);
}

}  // namespace meshwire::mcp
