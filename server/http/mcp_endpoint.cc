#include "server/http/mcp_endpoint.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <deque>
#include <map>
#include <nlohmann/json.hpp>
#include <unordered_set>

#include "mcp/mcp_server.h"
#include "mcp/tool_format.h"
#include "schemas/ids.h"
#include "schemas/json_io.h"
#include "server/http/router.h"
#include "server/http/url.h"
#include "server/mcp/service_tools.h"

namespace meshwire {

struct McpEndpoint::Session {
  std::string id;
  std::string token_id;
  std::string mesh_id;
  Caller caller;  // as admitted: checked again at every access change (RecheckAccess)
  std::shared_ptr<ServiceTools> tools;
  std::unique_ptr<mcp::McpServer> server;
  std::mutex mu;
  Millis last_used = 0;                  // guarded by mu
  std::shared_ptr<EventStream> stream;   // guarded by mu: the GET stream, if open
  // The loop guard's record: sender agent id -> its recent pushes here; guarded by mu.
  std::unordered_map<std::string, std::deque<Millis>> pushes_from;
  // Protocol 2026-07-28 (stateless): the id of the subscriptions/listen
  // request whose stream `stream` is (null: none, or a legacy session).
  bool modern = false;
  nlohmann::json listen_id;  // guarded by mu
  // Why the relay ended the session, for the calls it leaves unanswered ("":
  // the generic sentence); guarded by mu.
  std::string end_reason;
};

std::string McpEndpoint::EndReason(const std::weak_ptr<Session>& weak) {
  const auto session = weak.lock();
  if (!session) return "";
  std::lock_guard lock(session->mu);
  return session->end_reason;
}

namespace {

constexpr const char* kSessionHeader = "Mcp-Session-Id";
// The stateless revision and its _meta keys.
constexpr const char* kModernVersion = "2026-07-28";
constexpr const char* kVersionKey = "io.modelcontextprotocol/protocolVersion";
constexpr const char* kCapabilitiesKey = "io.modelcontextprotocol/clientCapabilities";
constexpr const char* kClientInfoKey = "io.modelcontextprotocol/clientInfo";
constexpr const char* kServerInfoKey = "io.modelcontextprotocol/serverInfo";
constexpr const char* kSubscriptionKey = "io.modelcontextprotocol/subscriptionId";

/// A transport-level refusal: the HTTP status, with a JSON-RPC error body
/// (what MCP clients read) carrying the contract's error code.
HttpResponse Refuse(int status, const std::string& message, const std::string& code = "",
                    const nlohmann::json& id = nullptr, int rpc_code = -32000) {
  nlohmann::json error = {{"code", rpc_code}, {"message", message}};
  if (!code.empty()) error["data"] = {{"code", code}};
  return HttpResponse::Json(status, JsonText({{"jsonrpc", "2.0"}, {"id", id}, {"error", error}}));
}

/// The end of a POST whose request ends without its answer. The HTTP
/// exchange must end, or the connection waits for an answer that never
/// comes. Cancelled by the client (notifications/cancelled): MCP answers no
/// cancelled request, so 202 and no body, as for a notification. Ended by
/// the relay (its session closed by DELETE, or replaced by a newer one of the
/// token): an error the client reads as the call's answer, or it would wait
/// on for its own timeout.
HttpResponse UnansweredAnswer(bool by_client, const nlohmann::json& id, const std::string& reason = "") {
  if (by_client) return HttpResponse::Empty(202);
  return Refuse(200,
                reason.empty() ? "The MCP session ended before this call's answer; start a new session and call again."
                               : reason,
                "session_ended", id);
}

/// o[key] when it is a string; `absent` when `o` has no `key`; "" (never a
/// valid value here) when it has another type. nlohmann's value() throws then.
std::string StringField(const nlohmann::json& o, const char* key, const std::string& absent = "") {
  const auto it = o.find(key);
  if (it == o.end()) return absent;
  return it->is_string() ? it->get<std::string>() : std::string();
}

HttpResponse RefuseError(const Error& e, const nlohmann::json& id = nullptr) {
  HttpResponse r = Refuse(e.status(), e.what(), e.code(), id);
  if (e.retry_after() > 0) r.Header("Retry-After", std::to_string(e.retry_after()));
  return r;
}

/// "scheme://authority" of a URL, lower-cased.
std::string OriginOf(std::string_view url) {
  auto scheme = url.find("://");
  if (scheme == std::string_view::npos) return "";
  auto end = url.find('/', scheme + 3);
  std::string origin(url.substr(0, end));
  std::transform(origin.begin(), origin.end(), origin.begin(), [](unsigned char c) { return std::tolower(c); });
  return origin;
}

/// `text` without spaces and tabs at either end, lower-cased (media types
/// and their parameter names are case-insensitive: RFC 9110 8.3.1).
std::string TrimLower(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return std::tolower(c); });
  return out;
}

/// Whether a Content-Type names `type` (its parameters, such as charset, aside).
bool IsMediaType(const std::string& content_type, std::string_view type) {
  return TrimLower(std::string_view(content_type).substr(0, content_type.find(';'))) == type;
}

/// Whether the Accept header allows `type` ("type/subtype"): the q of the
/// most specific range that covers it (itself, then "type/*", then "*/*")
/// is not 0 (RFC 9110 12.5.1). No header: yes.
bool Accepts(const HttpRequest& req, std::string_view type) {
  const std::string* accept = req.Header("Accept");
  if (!accept || accept->empty()) return true;
  const std::string major = std::string(type.substr(0, type.find('/'))) + "/*";
  int best = 0;          // specificity of the range that decides: 3 exact, 2 type/*, 1 */*
  bool refused = false;  // its q is 0 (or 0.0, 0.000)
  std::string_view rest = *accept;
  while (!rest.empty()) {
    const std::string_view item = rest.substr(0, rest.find(','));
    rest.remove_prefix(std::min(rest.size(), item.size() + 1));
    const std::string range = TrimLower(item.substr(0, item.find(';')));
    const int specificity = range == type ? 3 : range == major ? 2 : range == "*/*" ? 1 : 0;
    if (specificity == 0 || specificity < best) continue;
    bool zero = false;
    for (std::string_view params = item.substr(std::min(item.size(), item.find(';'))); !params.empty();) {
      params.remove_prefix(1);  // the ';'
      const std::string_view param = params.substr(0, params.find(';'));
      params.remove_prefix(param.size());
      const std::string p = TrimLower(param);
      if (p.rfind("q=", 0) == 0) zero = p.find_first_not_of("0.", 2) == std::string::npos;
    }
    // Of two ranges equally specific, one that accepts wins.
    refused = specificity > best ? zero : refused && zero;
    best = specificity;
  }
  return best > 0 && !refused;
}

}  // namespace

McpEndpoint::McpEndpoint(MeshService& service, const Clock& clock, McpEndpointOptions options)
    : service_(service), clock_(clock), options_(std::move(options)) {
  origin_ = OriginOf(options_.public_url);
  loopback_ = IsLoopbackHost(HostOf(options_.public_url));
  housekeeping_ = std::thread([this] {
    const auto period = std::chrono::milliseconds(options_.keepalive_ms);
    auto next = std::chrono::steady_clock::now() + period;
    std::unique_lock lock(mu_);
    while (!stopping_) {
      cv_.wait_until(lock, next,
                     [&] { return stopping_ || recheck_all_ || !recheck_meshes_.empty() || !to_end_.empty(); });
      if (stopping_) break;
      const std::vector<SessionPtr> to_end = std::exchange(to_end_, {});
      const std::set<std::string> meshes = std::exchange(recheck_meshes_, {});
      const bool recheck_all = std::exchange(recheck_all_, false);
      const bool due = std::chrono::steady_clock::now() >= next;
      if (due) next = std::chrono::steady_clock::now() + period;
      lock.unlock();
      for (const SessionPtr& s : to_end) {
        // Its next request is 404 (session ended), then 401 or 403 as it
        // initializes again; its stream closes, and nothing more is pushed.
        spdlog::info("MCP session of token {} on mesh {} ended: its token or agent is gone", s->token_id,
                     s->mesh_id);
        End(s, /*cancel_calls=*/true);
      }
      if (recheck_all) {
        RecheckAccess();
      } else if (!meshes.empty()) {
        RecheckAccess(&meshes);
      }
      if (due) Housekeeping();
      lock.lock();
    }
  });
}

McpEndpoint::~McpEndpoint() {
  CloseAll();
  housekeeping_.join();
}

void McpEndpoint::AddRoutes(Router& router) {
  router.Add("POST", "/mesh/{mesh}/mcp", [this](const ExchangePtr& ex) { Post(ex); });
  router.Add("GET", "/mesh/{mesh}/mcp", [this](const ExchangePtr& ex) { Get(ex); }, Router::Run::kOnWorker,
             Router::Head::kNoHead);
  router.Add("DELETE", "/mesh/{mesh}/mcp", [this](const ExchangePtr& ex) { Delete(ex); });
  router.Add("GET", "/.well-known/oauth-protected-resource/mesh/{mesh}/mcp",
             [this](const ExchangePtr& ex) { ProtectedResourceMetadata(ex); });
}

Caller McpEndpoint::Admit(const HttpRequest& req) {
  // A web page must not drive an agent: browsers send Origin, and a page
  // that rebinds its DNS name to this relay still sends its own Host.
  if (req.HeaderCount("Origin") > 1 || req.HeaderCount("Host") > 1) {
    throw Error::Forbidden("A request with two Origin or two Host headers may not use this relay's MCP endpoint.");
  }
  if (const std::string* origin = req.Header("Origin")) {
    std::string o = OriginOf(*origin);
    bool ok = o == origin_ || (loopback_ && IsLoopbackHost(HostOf(o)));
    if (!ok) throw Error::Forbidden("Origin " + *origin + " may not use this relay's MCP endpoint.");
  }
  if (loopback_) {
    const std::string* host = req.Header("Host");
    if (host && !IsLoopbackHost(HostOf(*host))) {
      throw Error::Forbidden("Host " + *host + " is not this relay (it serves loopback only).");
    }
  }
  return service_.Authenticate(req.HeaderOr("Authorization"));
}

/// A mesh id from the path that no mesh can have (ids are base62) is
/// refused before it is shown anywhere: in a header it could end the line.
static void CheckMeshId(const std::string& mesh) {
  if (!IsValidName(mesh)) {
    throw Error::NotFound("mesh_not_found", "No mesh " + ShownName(mesh) +
                                                "; run `meshwire mesh list` to see your meshes.");
  }
}

void McpEndpoint::ProtectedResourceMetadata(const ExchangePtr& ex) {
  const std::string mesh = ex->request().params[0];
  try {
    CheckMeshId(mesh);
  } catch (const Error& e) {
    return ex->Respond(HttpResponse::FromError(e));
  }
  nlohmann::json doc = {{"resource", options_.public_url + "/mesh/" + mesh + "/mcp"},
                        {"bearer_methods_supported", {"header"}},
                        {"resource_name", "meshwire mesh " + mesh},
                        {"resource_documentation", options_.public_url + "/mesh/" + mesh + "/integrate"}};
  ex->Respond(HttpResponse::Json(200, JsonText(doc)));
}

McpEndpoint::SessionPtr McpEndpoint::Find(const HttpRequest& req, const Caller& caller) {
  const std::string* id = req.Header(kSessionHeader);
  if (!id) throw Error::BadRequest("invalid_field", "Mcp-Session-Id is missing: send initialize first.");
  SessionPtr session;
  {
    std::lock_guard lock(mu_);
    auto it = sessions_.find(*id);
    if (it != sessions_.end()) session = it->second;
  }
  // Another token's session is as unknown as an ended one.
  if (!session || session->token_id != caller.token.id || session->mesh_id != req.params[0]) {
    throw Error::NotFound("session_not_found", "This MCP session ended or is unknown; initialize again.");
  }
  std::lock_guard lock(session->mu);
  session->last_used = clock_.Now();
  return session;
}

McpEndpoint::SessionPtr McpEndpoint::Open(const Caller& caller, const std::string& mesh_id,
                                          const HttpRequest& req, const std::string& stateless_key) {
  SessionPtr session = NewSession(caller, mesh_id, req, stateless_key);
  session->tools->RegisterAgent();
  Register(session);
  return session;
}

McpEndpoint::SessionPtr McpEndpoint::NewSession(const Caller& caller, const std::string& mesh_id,
                                                const HttpRequest& req, const std::string& stateless_key) {
  const std::string* agent = req.Query("agent");
  std::string name = agent ? *agent : caller.token.name;
  if (!IsValidName(name)) {
    throw Error::InvalidField("The agent name (?agent=NAME, else the token's name \"" + caller.token.name +
                              "\") must be 1-64 of A-Z a-z 0-9 . _ -.");
  }
  auto session = std::make_shared<Session>();
  session->id = stateless_key.empty() ? RandomBase62(32) : stateless_key;
  session->modern = !stateless_key.empty();
  session->token_id = caller.token.id;
  session->mesh_id = mesh_id;
  session->caller = caller;
  session->last_used = clock_.Now();
  session->tools = std::make_shared<ServiceTools>(service_, caller, mesh_id, name, options_.public_url);
  session->server = std::make_unique<mcp::McpServer>(*session->tools, "meshwire", service_.options().version,
                                                     /*tools_on_threads=*/false);
  session->tools->SetSendNotice(
      [this](const std::string& from, const std::string& to) { return PausedNotice(from, to); });
  // A waiting tool call keeps its session (tools, dispatcher) alive until it answers.
  session->tools->SetKeepAlive([weak = std::weak_ptr<Session>(session)] { return weak.lock(); });
  return session;
}

void McpEndpoint::Register(const SessionPtr& session) {
  // Other nodes announce the mesh's messages here before the session can
  // read any (its inbox notifications come from them).
  service_.Watch(session->mesh_id);
  std::vector<SessionPtr> evicted;
  {
    std::lock_guard lock(mu_);
    if (stopping_) throw Error::Unavailable("The relay is shutting down; reconnect in a moment.");
    std::vector<SessionPtr> mine;
    for (auto& [id, s] : sessions_) {
      if (s->token_id == session->token_id) mine.push_back(s);
    }
    if (mine.size() >= options_.max_sessions_per_token) {
      auto last_used = [](const SessionPtr& s) {
        std::lock_guard l(s->mu);
        return s->last_used;
      };
      std::sort(mine.begin(), mine.end(),
                [&](const SessionPtr& a, const SessionPtr& b) { return last_used(a) < last_used(b); });
      for (std::size_t i = 0; i + options_.max_sessions_per_token <= mine.size(); ++i) {
        EraseLocked(sessions_.find(mine[i]->id));
        evicted.push_back(mine[i]);
      }
    }
    // Two first requests of one stateless client may both open its session:
    // the later one replaces the earlier, counted once.
    if (auto same = sessions_.find(session->id); same != sessions_.end()) EraseLocked(same);
    sessions_[session->id] = session;
    ++sessions_per_mesh_[session->mesh_id];
  }
  for (const SessionPtr& s : evicted) End(s, true);
}

void McpEndpoint::End(const SessionPtr& session, bool cancel_calls) {
  {
    std::lock_guard lock(mu_);
    auto it = sessions_.find(session->id);
    if (it != sessions_.end() && it->second == session) EraseLocked(it);
  }
  std::shared_ptr<EventStream> stream;
  nlohmann::json listen_id;
  {
    std::lock_guard lock(session->mu);
    stream.swap(session->stream);
    listen_id = std::exchange(session->listen_id, nullptr);
  }
  if (stream && !listen_id.is_null()) {
    // A listen stream ends with its request's result (2026-07-28).
    stream->Send("event: message\ndata: " +
                 JsonText({{"jsonrpc", "2.0"},
                           {"id", listen_id},
                           {"result", {{"resultType", "complete"}, {"_meta", {{kSubscriptionKey, listen_id}}}}}}) +
                 "\n\n");
  }
  if (stream) stream->Close();
  // Calls still waiting end now; their answers are never sent.
  if (cancel_calls) session->server->rpc().Drain(std::chrono::milliseconds(0));
}

void McpEndpoint::Guard(const ExchangePtr& ex, const std::function<void()>& body) {
  try {
    CheckMeshId(ex->request().params[0]);
    body();
  } catch (const Error& e) {
    HttpResponse r = RefuseError(e);
    if (e.status() == 401) {
      r.Header("WWW-Authenticate", "Bearer resource_metadata=\"" + options_.public_url +
                                       "/.well-known/oauth-protected-resource/mesh/" +
                                       ex->request().params[0] + "/mcp\"");
    }
    ex->Respond(std::move(r));
  } catch (const std::exception& e) {
    spdlog::error("MCP endpoint: {}", ForLog(e.what(), 1000));
    ex->Respond(Refuse(500, "The relay failed to handle this request.", "internal"));
  }
}

void McpEndpoint::Post(const ExchangePtr& ex) {
  Guard(ex, [&] {
    const HttpRequest& req = ex->request();
    Caller caller = Admit(req);
    const std::string mesh_id = req.params[0];
    service_.CheckAccess(caller, mesh_id);
    if (!IsMediaType(req.HeaderOr("Content-Type"), "application/json")) {
      return ex->Respond(Refuse(415, "Content-Type must be application/json.", "unsupported_media_type"));
    }
    if (!Accepts(req, "application/json")) {
      return ex->Respond(Refuse(406, "Accept must include application/json (and text/event-stream for streamed answers).",
                                "not_acceptable"));
    }
    if (JsonDepth(req.body) > kMaxBodyDepth) {
      return ex->Respond(Refuse(400, "Parse error: the body is nested more than " + std::to_string(kMaxBodyDepth) +
                                         " levels deep.", "parse_error", nullptr, -32700));
    }
    nlohmann::json message = ParseRepaired(req.body);  // as `meshwire mcp` reads it
    if (message.is_discarded()) {
      return ex->Respond(Refuse(400, "Parse error: the body is not JSON.", "parse_error", nullptr, -32700));
    }
    if (!message.is_object()) {
      return ex->Respond(Refuse(400,
                                message.is_array() ? "One JSON-RPC message per request: batches are not supported."
                                                   : "The body must be one JSON-RPC message, a JSON object.",
                                "invalid_request", nullptr, -32600));
    }
    if (!message.contains("jsonrpc") || message["jsonrpc"] != "2.0") {
      return ex->Respond(Refuse(400, "Invalid request: jsonrpc must be \"2.0\".", "invalid_request",
                                message.value("id", nlohmann::json()), -32600));
    }
    if (message.contains("method") && !message["method"].is_string()) {
      return ex->Respond(Refuse(400, "Invalid request: method must be a string.", "invalid_request",
                                message.value("id", nlohmann::json()), -32600));
    }
    // JSON-RPC ids are strings or integers (here: of 64 bits); a request
    // without one is a notification. Refused alike, whatever the version.
    if (const auto id = message.find("id"); id != message.end()) {
      const bool integer = id->is_number_integer() &&
                           (!id->is_number_unsigned() || id->get<std::uint64_t>() <= INT64_MAX);
      if (!id->is_string() && !integer) {
        return ex->Respond(Refuse(400, "Invalid request: id must be a string or an integer.", "invalid_request",
                                  nullptr, -32600));
      }
    }
    if (IsModern(req, message)) return PostModern(ex, caller, message);
    if (const std::string* version = req.Header("MCP-Protocol-Version")) {
      const auto& known = mcp::SupportedProtocolVersions();
      if (std::find(known.begin(), known.end(), *version) == known.end()) {
        std::string spoken;
        for (const std::string& v : known) spoken += (spoken.empty() ? "" : ", ") + v;
        return ex->Respond(Refuse(400, "Unsupported MCP-Protocol-Version " + *version + "; this relay speaks " +
                                           spoken + ".",
                                  "unsupported_protocol_version"));
      }
    }
    SessionPtr session;
    // An initialize opens its session only once it succeeds: a refused one
    // (a malformed version, a null id) must not take a slot of the token's
    // and end its least recently used session.
    SessionPtr opening;
    if (StringField(message, "method") == "initialize" && message.contains("id")) {
      session = opening = NewSession(caller, mesh_id, req, "");
    } else {
      session = Find(req, caller);
    }
    if (!mcp::JsonRpcPeer::IsRequest(message)) {
      session->server->rpc().Dispatch(message, [](const nlohmann::json&) {});
      return ex->Respond(HttpResponse::Empty(202));
    }
    // The answer may come later (a waiting get_messages); a client that
    // hangs up first cancels the call, as notifications/cancelled would
    // (CancelOnHangUp: only a call with something to cancel).
    const nlohmann::json id = message["id"];
    bool pending = session->server->rpc().Dispatch(
        message,
        [this, ex, opening, id](const nlohmann::json& answer) {
          HttpResponse r =
              HttpResponse::Json(200, answer.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
          if (opening && answer.contains("result")) {
            try {
              opening->tools->RegisterAgent();
              Register(opening);
            } catch (const Error& e) {  // a taken name, the relay stopping: in JSON-RPC, as every refusal here
              return ex->Respond(RefuseError(e, id));
            }
            r.Header(kSessionHeader, opening->id);
          }
          ex->Respond(std::move(r));
        },
        [ex, id, weak = std::weak_ptr<Session>(session)](bool by_client) {
          ex->Respond(UnansweredAnswer(by_client, id, EndReason(weak)));
        });
    if (pending) CancelOnHangUp(ex, session, id);
  });
}

void McpEndpoint::Get(const ExchangePtr& ex) {
  Guard(ex, [&] {
    const HttpRequest& req = ex->request();
    Caller caller = Admit(req);
    service_.CheckAccess(caller, req.params[0]);
    if (!Accepts(req, "text/event-stream")) {
      return ex->Respond(Refuse(406, "Accept must include text/event-stream.", "not_acceptable"));
    }
    SessionPtr session = Find(req, caller);
    auto stream = ex->OpenStream(HttpResponse::Empty(200)
                                     .Header("Content-Type", "text/event-stream")
                                     .Header("Cache-Control", "no-cache")
                                     .Header("X-Accel-Buffering", "no")
                                     .Header(kSessionHeader, session->id));
    if (!stream) return;
    std::shared_ptr<EventStream> previous;
    {
      std::lock_guard lock(session->mu);
      previous = std::exchange(session->stream, stream);
      // Sent once the stream is the session's: a client that reads it knows
      // pushes will reach it.
      stream->Send(": meshwire session " + session->id + "\n\n");
    }
    if (previous) previous->Close();  // one stream per session: the newest wins
  });
}

void McpEndpoint::Delete(const ExchangePtr& ex) {
  Guard(ex, [&] {
    const HttpRequest& req = ex->request();
    Caller caller = Admit(req);
    service_.CheckAccess(caller, req.params[0]);
    End(Find(req, caller), true);
    ex->Respond(HttpResponse::Empty(204));
  });
}

namespace {

std::string Notification(const std::string& method, const nlohmann::json& params) {
  return "event: message\ndata: " +
         JsonText({{"jsonrpc", "2.0"}, {"method", method}, {"params", params}}) +
         "\n\n";
}

}  // namespace

void McpEndpoint::EraseLocked(std::unordered_map<std::string, SessionPtr>::iterator it) {
  auto count = sessions_per_mesh_.find(it->second->mesh_id);
  if (count != sessions_per_mesh_.end() && --count->second == 0) sessions_per_mesh_.erase(count);
  sessions_.erase(it);
}

bool McpEndpoint::Watches(const std::string& mesh_id) const {
  std::lock_guard lock(mu_);
  return sessions_per_mesh_.count(mesh_id) > 0;
}

void McpEndpoint::OnEvent(const WakeEvent& event) {
  if (event.kind == WakeEvent::Kind::kAccessChanged) {
    // The sessions of a revoked token, of a deleted agent or of a removed
    // member's agents, as the event names them (Waiters end parked polls
    // the same way), end on the housekeeping thread: this is a commit's.
    // Storage judges only what the event leaves unnamed.
    const WakeEvent::Ended& ended = event.ended;
    std::lock_guard lock(mu_);
    if (sessions_.empty()) return;
    for (const auto& [id, s] : sessions_) {
      const bool agent_gone = s->mesh_id == ended.mesh_id &&
                              std::find(ended.agent_ids.begin(), ended.agent_ids.end(), s->tools->agent_id()) !=
                                  ended.agent_ids.end();
      const bool token_gone = !ended.token_id.empty() && s->token_id == ended.token_id;
      if (!agent_gone && !token_gone) continue;
      {
        // Its waiting calls say why, as a call that wakes to the change does
        // (on the node that made it, too).
        std::lock_guard session_lock(s->mu);
        s->end_reason = agent_gone ? s->tools->AgentDeletedSentence() : MeshService::kTokenRevoked;
      }
      to_end_.push_back(s);
    }
    if (event.trust_cache == true) {
      recheck_all_ = true;  // back from a time this node may have missed other nodes' changes
    } else if (!ended.mesh_id.empty()) {
      // A deleted mesh; and where agents were deleted, their mesh too: a
      // removed member's agent registered while it was being removed is not
      // named, nor are agents past a list too long for the bus.
      recheck_meshes_.insert(ended.mesh_id);
    } else if (ended.token_id.empty() && !event.trust_cache) {
      recheck_all_ = true;  // agents removed by retention: the event names none
    }
    cv_.notify_all();
    return;
  }
  if (event.kind != WakeEvent::Kind::kMessage || !event.message) return;
  const Message& m = event.message->message();
  std::vector<SessionPtr> recipients;
  {
    std::lock_guard lock(mu_);
    for (auto& [id, s] : sessions_) {
      if (s->tools->IsFor(m)) recipients.push_back(s);
    }
  }
  if (recipients.empty()) return;
  // Runs on the committing thread: only queueing here, the text built once.
  const std::string channel =
      Notification("notifications/claude/channel",
                   mcp::ChannelParams(m, service_.CachedHarness(m.mesh_id, m.from)));
  for (const SessionPtr& s : recipients) {
    std::lock_guard lock(s->mu);
    if (!s->stream || !s->stream->Open()) continue;  // no GET stream: get_messages has it
    Push(*s, m, channel);
  }
}

void McpEndpoint::Push(Session& s, const Message& m, const std::string& channel) {
  if (s.modern) {
    // 2026-07-28: only what the listen request asked for (the inbox), no
    // unsolicited channel notifications.
    if (s.tools->inbox_subscribed() && !s.listen_id.is_null()) {
      s.stream->Send(Notification("notifications/resources/updated",
                                  {{"uri", ServiceTools::kInboxUri}, {"_meta", {{kSubscriptionKey, s.listen_id}}}}));
    }
    return;
  }
  const Millis now = clock_.Now();
  if (s.tools->inbox_subscribed()) {
    s.stream->Send(Notification("notifications/resources/updated", {{"uri", ServiceTools::kInboxUri}}));
  }
  // The loop guard, per sender: a broadcast counts too.
  auto& recent = s.pushes_from[m.from];
  while (!recent.empty() && now - recent.front() > kLoopWindowMs) recent.pop_front();
  {
    std::lock_guard lock(paused_mu_);
    auto paused = paused_.find({m.from, s.tools->agent_id()});
    if (paused != paused_.end()) {
      if (now < paused->second) return;
      paused_.erase(paused);
    }
  }
  if (static_cast<int>(recent.size()) >= kLoopLimit) {
    {
      std::lock_guard lock(paused_mu_);
      paused_[{m.from, s.tools->agent_id()}] = now + kLoopPauseMs;
    }
    recent.clear();
    s.stream->Send(Notification(
        "notifications/claude/channel",
        {{"content", "meshwire paused pushing messages from agent \"" + m.from_name + "\" (id " + m.from +
                         ") into this session for " + std::to_string(kLoopPauseMs / 60000) +
                         " minutes: it sent you more than " + std::to_string(kLoopLimit) + " messages within " +
                         std::to_string(kLoopWindowMs / 1000) +
                         " s, which looks like two agents answering each other automatically. Nothing is "
                         "lost: meshwire_get_messages returns its messages. Do not answer this notice."},
         {"meta", {{"from", m.from}, {"from_name", m.from_name}, {"paused_for_s", std::to_string(kLoopPauseMs / 1000)}}}}));
    return;
  }
  if (!s.tools->TakeForPush(m)) return;
  recent.push_back(now);
  s.stream->Send(channel);
}

std::string McpEndpoint::PausedNotice(const std::string& from, const std::string& to) {
  std::lock_guard lock(paused_mu_);
  auto it = paused_.find({from, to});
  if (it == paused_.end()) return "";
  const Millis left = it->second - clock_.Now();
  if (left <= 0) return "";
  return "Note: that agent's session no longer gets your messages pushed (for about " +
         std::to_string((left + 59999) / 60000) + " more minutes): you sent it more than " +
         std::to_string(kLoopLimit) + " within " + std::to_string(kLoopWindowMs / 1000) +
         " s, which looks like two agents answering each other automatically. It will read them with "
         "meshwire_get_messages; stop replying automatically.";
}

bool McpEndpoint::IsModern(const HttpRequest& req, const nlohmann::json& message) {
  if (StringField(message, "method") == "server/discover") return true;
  const std::string* header = req.Header("MCP-Protocol-Version");
  if (header && *header == kModernVersion) return true;
  const auto params = message.find("params");
  if (params == message.end() || !params->is_object()) return false;
  const auto meta = params->find("_meta");
  return meta != params->end() && meta->is_object() && StringField(*meta, kVersionKey) == kModernVersion;
}

void McpEndpoint::PostModern(const ExchangePtr& ex, const Caller& caller, const nlohmann::json& message) {
  const HttpRequest& req = ex->request();
  const bool request = mcp::JsonRpcPeer::IsRequest(message);
  const nlohmann::json id = message.value("id", nlohmann::json());
  const std::string method = StringField(message, "method");
  auto refuse = [&](int status, int code, const std::string& text) {
    ex->Respond(Refuse(status, text, code == -32602 ? "invalid_params" : "invalid_request", id, code));
  };
  const nlohmann::json params = message.contains("params") && message["params"].is_object() ? message["params"]
                                                                                             : nlohmann::json::object();
  const nlohmann::json meta = params.contains("_meta") && params["_meta"].is_object() ? params["_meta"]
                                                                                       : nlohmann::json::object();
  if (request) {
    // The standard headers: a router may act on them without reading the body.
    const std::string* version = req.Header("MCP-Protocol-Version");
    if (!version || *version != kModernVersion) {
      return refuse(400, -32600, std::string("MCP-Protocol-Version: ") + kModernVersion + " is required with this request.");
    }
    if (StringField(meta, kVersionKey, kModernVersion) != kModernVersion) {
      return refuse(400, -32600, "The _meta protocol version and the MCP-Protocol-Version header differ.");
    }
    const std::string* header_method = req.Header("Mcp-Method");
    if (!header_method || *header_method != method) {
      return refuse(400, -32600, "The Mcp-Method header must name the request's method (" + method + ").");
    }
    std::string name_key = method == "tools/call" ? "name" : method == "resources/read" ? "uri" : "";
    if (!name_key.empty()) {
      const std::string* header_name = req.Header("Mcp-Name");
      if (!header_name || !params.contains(name_key) || !params[name_key].is_string() ||
          *header_name != params[name_key].get<std::string>()) {
        return refuse(400, -32600, "The Mcp-Name header must repeat params." + name_key + ".");
      }
    }
    if (method != "server/discover" && !meta.contains(kCapabilitiesKey)) {
      return refuse(400, -32602, std::string("_meta must carry ") + kVersionKey + " and " + kCapabilitiesKey + ".");
    }
  }
  // No session: the token, mesh and agent name one, kept on this node so
  // that get_messages acknowledges what the previous call returned.
  const std::string* agent = req.Query("agent");
  const std::string key = "~" + caller.token.id + "/" + req.params[0] + "/" + (agent ? *agent : caller.token.name);
  SessionPtr session;
  {
    std::lock_guard lock(mu_);
    auto it = sessions_.find(key);
    if (it != sessions_.end()) session = it->second;
  }
  if (!session) session = Open(caller, req.params[0], req, key);
  {
    std::lock_guard lock(session->mu);
    session->last_used = clock_.Now();
  }
  nlohmann::json client = {{"capabilities", meta.value(kCapabilitiesKey, nlohmann::json::object())},
                           {"clientInfo", meta.value(kClientInfoKey, nlohmann::json::object())}};
  session->tools->ClientReady(client);
  if (!request) {
    session->server->rpc().Dispatch(message, [](const nlohmann::json&) {});
    return ex->Respond(HttpResponse::Empty(202));
  }
  if (method == "server/discover") {
    std::vector<std::string> versions = {kModernVersion};
    for (const auto& v : mcp::SupportedProtocolVersions()) versions.push_back(v);
    nlohmann::json capabilities = session->server->Capabilities();
    capabilities.erase("logging");  // logging/setLevel is gone in 2026-07-28
    capabilities["resources"] = {{"listChanged", false}};  // subscriptions/listen replaces subscribe
    nlohmann::json result = {{"supportedVersions", versions},
                             {"capabilities", capabilities},
                             {"instructions", session->tools->Instructions()},
                             {"resultType", "complete"},
                             {"ttlMs", 0},
                             {"cacheScope", "private"},  // the instructions name this agent
                             {"_meta", {{kServerInfoKey, session->server->ServerInfo()}}}};
    return ex->Respond(HttpResponse::Json(200, JsonText({{"jsonrpc", "2.0"}, {"id", id}, {"result", result}})));
  }
  if (method == "subscriptions/listen") {
    const nlohmann::json wanted = params.value("notifications", nlohmann::json::object());
    bool inbox = false;
    if (wanted.is_object() && wanted.contains("resourceSubscriptions") && wanted["resourceSubscriptions"].is_array()) {
      for (const auto& uri : wanted["resourceSubscriptions"]) inbox = inbox || uri == ServiceTools::kInboxUri;
    }
    auto stream = ex->OpenStream(HttpResponse::Empty(200)
                                     .Header("Content-Type", "text/event-stream")
                                     .Header("Cache-Control", "no-cache")
                                     .Header("X-Accel-Buffering", "no"));
    if (!stream) return;
    session->tools->Subscribe(ServiceTools::kInboxUri, inbox);
    nlohmann::json agreed = nlohmann::json::object();
    if (inbox) agreed["resourceSubscriptions"] = {ServiceTools::kInboxUri};
    std::shared_ptr<EventStream> previous;
    {
      std::lock_guard lock(session->mu);
      previous = std::exchange(session->stream, stream);
      session->listen_id = id;
      stream->Send(Notification("notifications/subscriptions/acknowledged",
                                {{"notifications", agreed}, {"_meta", {{kSubscriptionKey, id}}}}));
    }
    if (previous) previous->Close();  // one listen stream per agent: the newest wins
    return;
  }
  bool pending = session->server->rpc().Dispatch(
      message,
      [ex, method](const nlohmann::json& answer) {
        nlohmann::json a = answer;
        if (a.contains("result") && a["result"].is_object()) {
          nlohmann::json& result = a["result"];
          result["resultType"] = "complete";
          // What a client may cache (SEP-2549): the tool list is the binary's;
          // the inbox changes with every message.
          if (method == "tools/list" || method == "resources/templates/list") {
            result["ttlMs"] = 300000;
            result["cacheScope"] = "public";
          } else if (method == "resources/list") {
            result["ttlMs"] = 300000;
            result["cacheScope"] = "private";
          } else if (method == "resources/read") {
            result["ttlMs"] = 0;
            result["cacheScope"] = "private";
          }
        }
        ex->Respond(HttpResponse::Json(200, a.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)));
      },
      [ex, id, weak = std::weak_ptr<Session>(session)](bool by_client) {
        ex->Respond(UnansweredAnswer(by_client, id, EndReason(weak)));
      });
  if (pending) CancelOnHangUp(ex, session, id);
}

void McpEndpoint::CancelOnHangUp(const ExchangePtr& ex, const SessionPtr& session, const nlohmann::json& id) {
  // Nothing to cancel (a send being committed): no watch, so a client that
  // only half-closed still gets the answer.
  if (!session->server->rpc().Cancellable(id)) return;
  ex->OnHangUp([weak = std::weak_ptr<Session>(session), id] {
    if (auto s = weak.lock()) {
      s->server->rpc().Dispatch(
          {{"jsonrpc", "2.0"}, {"method", "notifications/cancelled"}, {"params", {{"requestId", id}}}},
          [](const nlohmann::json&) {});
    }
  });
}

void McpEndpoint::RecheckAccess(const std::set<std::string>* meshes) {
  std::vector<SessionPtr> all;
  {
    std::lock_guard lock(mu_);
    for (auto& [id, s] : sessions_) {
      if (!meshes || meshes->count(s->mesh_id)) all.push_back(s);
    }
  }
  // Asked once per (token, mesh): why its sessions must end ("" if they may
  // go on), and the agents of the mesh, to end a session whose agent was
  // deleted (its client initializes again, and so registers again).
  struct Verdict {
    std::string refused;
    std::unordered_set<std::string> agents;
  };
  std::map<std::pair<std::string, std::string>, Verdict> verdicts;
  for (const SessionPtr& s : all) {
    {
      std::lock_guard lock(mu_);
      if (stopping_) return;
    }
    const auto key = std::make_pair(s->token_id, s->mesh_id);
    auto it = verdicts.find(key);
    if (it == verdicts.end()) {
      Verdict v;
      try {
        service_.Reauthorize(s->caller, s->mesh_id);
        for (const AgentView& a : service_.ListAgents(s->caller, s->mesh_id)) v.agents.insert(a.agent.agent_id);
      } catch (const Error& e) {
        // The database out of reach says nothing of anyone's access: the
        // sessions stay, and the pass is made again at the next keep-alive
        // (not now, session by session, each waiting for a connection).
        if (e.status() == 503) {
          std::lock_guard lock(mu_);
          recheck_later_ = true;
          return;
        }
        if (!MeshService::AccessLost(e)) {
          spdlog::warn("checking an MCP session's access: {}", e.what());
          continue;
        }
        v.refused = e.what();
      } catch (const std::exception& e) {
        spdlog::warn("checking an MCP session's access: {}", e.what());
        continue;
      }
      it = verdicts.emplace(key, std::move(v)).first;
    }
    const Verdict& v = it->second;
    // For the log, and for its waiting calls (EndReason): what its next
    // request would be told.
    std::string why = v.refused;
    std::string reason = v.refused;
    if (why.empty() && !v.agents.count(s->tools->agent_id())) {
      why = "its agent was deleted";
      reason = s->tools->AgentDeletedSentence();
    }
    if (why.empty()) continue;
    {
      std::lock_guard session_lock(s->mu);
      s->end_reason = reason;
    }
    // Its next request is 404 (session ended), then 401 or 403 as it
    // initializes again; its stream closes, and nothing more is pushed.
    spdlog::info("MCP session of token {} on mesh {} ended: {}", s->token_id, s->mesh_id, why);
    End(s, /*cancel_calls=*/true);
  }
}

void McpEndpoint::Housekeeping() {
  bool recheck = false;
  {
    std::lock_guard lock(mu_);
    recheck = std::exchange(recheck_later_, false);
  }
  if (recheck) RecheckAccess();
  const Millis now = clock_.Now();
  std::vector<SessionPtr> idle, all;
  {
    std::lock_guard lock(mu_);
    for (auto& [id, s] : sessions_) all.push_back(s);
  }
  for (const SessionPtr& s : all) {
    std::lock_guard lock(s->mu);
    if (now - s->last_used > options_.idle_timeout_ms) {
      idle.push_back(s);
    } else if (s->stream) {
      if (!s->stream->Open()) {
        s->stream.reset();
      } else {
        s->stream->Send(": keep-alive\n\n");
      }
    }
  }
  for (const SessionPtr& s : idle) End(s, true);
}

std::size_t McpEndpoint::SessionCount() {
  std::lock_guard lock(mu_);
  return sessions_.size();
}

void McpEndpoint::CloseAll() {
  std::vector<SessionPtr> all;
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    for (auto& [id, s] : sessions_) all.push_back(s);
  }
  cv_.notify_all();
  // Waiting calls are not cancelled: the relay's shutdown answers them with
  // what they have (Waiters::Shutdown), and each keeps its session until then.
  for (const SessionPtr& s : all) End(s, /*cancel_calls=*/false);
}

}  // namespace meshwire
