#include "relay-client/relay_client.h"

#include <httplib.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "relay-client/http_client.h"
#include "schemas/ids.h"
#include "schemas/json_io.h"

namespace meshwire {

using nlohmann::json;

namespace {

constexpr int kConnectTimeoutS = 5;
// Under a command's deadline, how long after a poll's wait its answer may
// take to arrive before the request is given up.
constexpr long long kAnswerSlackMs = 1000;

/// "3", or "1.3" for a time that is not whole seconds.
std::string SecondsText(long long ms) {
  if (ms % 1000 == 0) return std::to_string(ms / 1000);
  char text[32];
  std::snprintf(text, sizeof text, "%.1f", static_cast<double>(ms) / 1000.0);
  return text;
}
// The most an answer may hold. The largest the relay gives meshwire's
// requests is a page of 100 messages at the limits (10 KiB of content, each
// byte escaped as \u00XX, and 16 KiB of metadata: under 8 MiB); a
// 1000-message page of 10 KiB texts is about 12 MiB. More is not a relay's
// answer, and is not read into memory.
constexpr std::size_t kMaxAnswerBytes = 32u << 20;

std::string NotJson(const std::string& url) {
  return "The relay at " + url + " answered something that is not JSON; is that URL a meshwire relay?";
}

/// The answer's JSON, or a discarded value when it is not JSON or nests
/// deeper than any answer of the relay (which keeps metadata to 32 levels):
/// parsing and freeing such a value costs memory in proportion.
json ParseAnswer(const std::string& body) {
  if (JsonDepth(body) > kMaxBodyDepth) return json(json::value_t::discarded);
  return json::parse(body, nullptr, /*allow_exceptions=*/false);
}

/// Sends one request, reading at most kMaxAnswerBytes of its answer into
/// `body` (the Result's own body stays empty); past that it stops reading
/// and sets `too_large`.
httplib::Result Exchange(httplib::Client& http, const std::string& method, const std::string& path,
                         const std::string& payload, std::string& body, bool& too_large) {
  httplib::Request req;
  req.method = method;
  req.path = path;
  if (method == "POST") {
    req.body = payload;
    req.set_header("Content-Type", "application/json");
  }
  req.content_receiver = [&body, &too_large](const char* data, std::size_t size, std::uint64_t, std::uint64_t) {
    if (body.size() + size > kMaxAnswerBytes) {
      too_large = true;
      return false;
    }
    body.append(data, size);
    return true;
  };
  return http.send(req);
}

std::string Encode(const std::string& s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

}  // namespace

bool Retryable(const Error& e) {
  if (e.code() == "tls_untrusted") return false;  // a setting must change first
  return e.status() == 0 || e.status() == 503 || e.status() == 429 || e.status() == 502;
}

RetryPolicy RetryPolicy::Standard() {
  using std::chrono::seconds;
  RetryPolicy p;
  p.delays = {seconds(2), seconds(5), seconds(15)};
  return p;
}

struct RelayClient::Impl {
  std::string base_path;  // a path prefix of the URL, e.g. "/meshwire", or ""
  std::string token;
  RetryPolicy retry;
  std::unique_ptr<httplib::Client> http;
  std::mutex mu;
  bool cancelled = false;  // guarded by mu
  std::optional<std::chrono::steady_clock::time_point> deadline;  // SetDeadline; the caller's thread
};

RelayClient::RelayClient(std::string url, std::string token, RetryPolicy retry)
    : url_(std::move(url)), impl_(std::make_unique<Impl>()) {
  while (!url_.empty() && url_.back() == '/') url_.pop_back();
  std::string scheme_host_port = url_;
  auto scheme_end = url_.find("://");
  auto path_start = url_.find('/', scheme_end == std::string::npos ? 0 : scheme_end + 3);
  if (path_start != std::string::npos) {
    scheme_host_port = url_.substr(0, path_start);
    impl_->base_path = url_.substr(path_start);
    // A path goes into every request line as it is: a space, a control
    // character, '?' or '#' would make each request something else.
    const bool bad = impl_->base_path.find_first_not_of(
                         "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~%!$&'()*+,;=:@/") !=
                     std::string::npos;
    if (bad) {
      throw Error(2, "config",
                  "The relay URL " + url_ + " has a path with characters a URL path cannot hold (a space, a "
                  "control character, '?' or '#'): give the relay's address, e.g. https://relay.example.com or "
                  "https://example.com/meshwire (MESHWIRE_URL, --url, or the saved credentials).");
    }
  }
  impl_->token = std::move(token);
  impl_->retry = std::move(retry);
  impl_->http = NewHttpClient(scheme_host_port);
  impl_->http->set_connection_timeout(kConnectTimeoutS, 0);
  impl_->http->set_read_timeout(impl_->retry.read_timeout_s, 0);
  impl_->http->set_write_timeout(impl_->retry.read_timeout_s, 0);
  impl_->http->set_keep_alive(true);
  impl_->http->set_tcp_nodelay(true);
  if (!impl_->token.empty()) impl_->http->set_bearer_token_auth(impl_->token);
}

RelayClient::~RelayClient() = default;
RelayClient::RelayClient(RelayClient&&) noexcept = default;

void RelayClient::SetDeadline(std::chrono::steady_clock::time_point deadline) { impl_->deadline = deadline; }

void RelayClient::Cancel() {
  {
    std::lock_guard lock(impl_->mu);
    impl_->cancelled = true;
  }
  impl_->http->stop();
}

// One request and its error mapping; `retryable`: may be sent again.
static json Call(RelayClient::Impl& impl, const std::string& url, const std::string& method,
                 const std::string& path, const json* body, bool retryable, int read_timeout_s,
                 std::string* raw_body = nullptr, int* status_out = nullptr, int answer_after_s = 0) {
  std::string full = impl.base_path + path;
  std::size_t attempt = 0;
  for (;;) {
    {
      std::lock_guard lock(impl.mu);
      if (impl.cancelled) throw Error(0, "cancelled", "The request was cancelled.");
    }
    long long timeout_ms = read_timeout_s * 1000LL;
    if (impl.deadline) {
      // A command's --timeout bounds its requests: the time left, or a
      // poll's wait where that is longer (wait's loop rounds it up to whole
      // seconds), and a moment for the answer to arrive.
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(*impl.deadline -
                                                                              std::chrono::steady_clock::now());
      timeout_ms = std::clamp<long long>(std::max<long long>(left.count(), answer_after_s * 1000LL) + kAnswerSlackMs,
                                         kAnswerSlackMs, timeout_ms);
      const long long connect_ms = std::min<long long>(kConnectTimeoutS * 1000LL, timeout_ms);
      impl.http->set_connection_timeout(static_cast<time_t>(connect_ms / 1000),
                                        static_cast<time_t>(connect_ms % 1000 * 1000));
    }
    impl.http->set_read_timeout(static_cast<time_t>(timeout_ms / 1000), static_cast<time_t>(timeout_ms % 1000 * 1000));
    std::string payload;
    try {
      payload = body ? body->dump() : "";
    } catch (const json::type_error&) {  // a string that is not UTF-8 (error 316)
      throw Error(2, "invalid_text",
                  "A message, name or id given to meshwire is not UTF-8 text; convert it first (for example "
                  "with `iconv -f LATIN1 -t UTF-8`).");
    }
    const auto sent_at = std::chrono::steady_clock::now();
    std::string answer;
    bool too_large = false;
    httplib::Result r = Exchange(*impl.http, method, full, payload, answer, too_large);
    if (too_large) {
      throw Error(502, "bad_response",
                  "The relay at " + url + " answered more than " + std::to_string(kMaxAnswerBytes >> 20) +
                      " MiB, more than any meshwire answer; is that URL a meshwire relay?");
    }
    std::optional<Error> error;
    if (!r) {
      bool cancelled;
      {
        std::lock_guard lock(impl.mu);
        cancelled = impl.cancelled;
      }
      if (cancelled) throw Error(0, "cancelled", "The request was cancelled.");
      const bool quick = std::chrono::steady_clock::now() - sent_at < std::chrono::milliseconds(timeout_ms) / 2;
      std::optional<std::string> not_http;
      if (r.error() == httplib::Error::Read && quick && url.rfind("http://", 0) == 0 &&
          (not_http = NotHttpAnswer(url))) {
        // Bytes that are not HTTP (another service on that port): the URL is wrong, the relay not down.
        error = Error(502, "bad_response", *not_http);
      } else if (r.error() == httplib::Error::Read && quick && url.rfind("http://", 0) == 0) {
        // Closed without an answer, at once: what an HTTPS relay does to plain HTTP.
        error = Error(0, "unreachable",
                      "The relay at " + url + " closed the connection without an answer: it may be restarting; "
                      "if it serves HTTPS, use https://" + url.substr(7) + ".");
      } else if (r.error() == httplib::Error::Read) {
        error = Error(0, "timeout",
                      "The relay at " + url + " did not answer in " + SecondsText(timeout_ms) +
                          " s; check it with `meshwire status`.");
      } else {
        error = Error(0, TransportCode(r.error()), TransportFailure(url, r.error(), *impl.http));
      }
    } else if (r->status >= 400) {
      json j = ParseAnswer(answer);
      if (j.is_object() && j.contains("error") && j["error"].is_object() &&
          j["error"].value("code", "") == "https_required" && url.rfind("http://", 0) == 0) {
        // Plain HTTP reached an HTTPS relay, which said so: name the URL to use.
        error = Error(r->status, "https_required",
                      "The relay at " + url + " serves HTTPS: use https://" + url.substr(7) +
                          " (set MESHWIRE_URL, or run `meshwire login --url https://" + url.substr(7) + "`).");
      } else if (j.is_object() && j.contains("error") && j["error"].is_object() && r->status == 404 &&
                 j["error"].value("message", "").rfind("No route ", 0) == 0 && url.find('/', url.find("//") + 2) !=
                                                                                     std::string::npos) {
        // A relay URL with a path the relay does not serve (…/api): every route is "unknown".
        error = Error(2, "config",
                      "The relay at " + url + " has no route for this request: its URL should not carry a path "
                      "(give http(s)://HOST[:PORT], unless the relay is served under one) in MESHWIRE_URL or --url.");
      } else if (j.is_object() && j.contains("error") && j["error"].is_object()) {
        Error e(r->status, j["error"].value("code", "error"), j["error"].value("message", ""));
        if (r->has_header("Retry-After")) e.with_retry_after(std::atoi(r->get_header_value("Retry-After").c_str()));
        error = e;
      } else {
        error = Error(r->status, "bad_response",
                      "The relay at " + url + " answered HTTP " + std::to_string(r->status) +
                          " without a meshwire error; is that URL a meshwire relay?");
      }
    } else {
      if (status_out) *status_out = r->status;
      if (raw_body) {  // the integration guide: markdown, as the relay serves it
        const std::string type = r->get_header_value("Content-Type");
        if (type.rfind("text/markdown", 0) != 0) {
          throw Error(502, "bad_response",
                      "The relay at " + url + " answered " + (type.empty() ? std::string("without a Content-Type") : type) +
                          ", not the integration guide (text/markdown); is that URL a meshwire relay?");
        }
        *raw_body = std::move(answer);
        return json();
      }
      if (answer.empty()) return json::object();
      json j = ParseAnswer(answer);
      if (j.is_discarded()) throw Error(502, "bad_response", NotJson(url));
      return j;
    }
    // Not after a timeout: a relay that took the request and said nothing
    // for read_timeout_s is hung; three more tries would be two more
    // minutes of silence before saying so.
    if (!retryable || !Retryable(*error) || error->code() == "timeout" || attempt >= impl.retry.delays.size()) {
      throw *error;
    }
    auto delay = impl.retry.delays[attempt++];
    if (error->retry_after() > 0) {
      delay = std::max<std::chrono::milliseconds>(delay, std::chrono::seconds(error->retry_after()));
    }
    if (impl.deadline && std::chrono::steady_clock::now() + delay >= *impl.deadline) throw *error;
    if (impl.retry.on_retry) impl.retry.on_retry(static_cast<int>(attempt), delay, *error);
    std::this_thread::sleep_for(delay);
  }
}

#define CALL(method, path, body, retryable) \
  Call(*impl_, url_, method, path, body, retryable, impl_->retry.read_timeout_s)

HealthAnswer RelayClient::Health() {
  return HealthAnswerFromJson(CALL("GET", "/health", nullptr, true));
}

std::pair<std::string, std::string> RelayClient::RedeemSignInCode(const std::string& code) {
  json body = {{"code", code}};
  json answer = CALL("POST", "/auth/cli/token", &body, false);  // a code is good once
  if (!answer.is_object() || !answer.contains("token") || !answer["token"].is_string()) {
    throw Error(502, "bad_response", "The relay at " + url_ + " answered the sign-in without a token.");
  }
  const auto user = answer.find("user");
  return {answer["token"].get<std::string>(), user != answer.end() && user->is_string() ? user->get<std::string>() : ""};
}

std::pair<std::string, std::string> RelayClient::Me() {
  MeAnswer me = MeAnswerFromJson(CALL("GET", "/me", nullptr, true));
  return {me.user, me.token_id};
}

Mesh RelayClient::CreateMesh(const std::string& name) {
  json body = {{"name", name}};
  return MeshFromJson(CALL("POST", "/mesh", &body, false));
}

std::vector<Mesh> RelayClient::ListMeshes() {
  std::vector<Mesh> out;
  json answer = CALL("GET", "/mesh", nullptr, true);
  for (const json& m : AnswerList(answer, "meshes")) out.push_back(MeshFromJson(m));
  return out;
}

MeshDetails RelayClient::GetMesh(const std::string& mesh_id) {
  return MeshDetailsFromJson(CALL("GET", "/mesh/" + Encode(mesh_id), nullptr, true));
}

void RelayClient::DeleteMesh(const std::string& mesh_id) {
  CALL("DELETE", "/mesh/" + Encode(mesh_id), nullptr, false);
}

AddedMember RelayClient::AddMember(const std::string& mesh_id, const std::string& user) {
  json body = {{"user", user}};
  const json answer = CALL("POST", "/mesh/" + Encode(mesh_id) + "/members", &body, true);
  const auto stored = answer.find("user");
  const auto created = answer.find("new_user");
  return {stored != answer.end() && stored->is_string() ? stored->get<std::string>() : user,
          created != answer.end() && created->is_boolean() && created->get<bool>()};
}

std::vector<Member> RelayClient::Members(const std::string& mesh_id) {
  std::vector<Member> out;
  json answer = CALL("GET", "/mesh/" + Encode(mesh_id) + "/members", nullptr, true);
  for (const json& m : AnswerList(answer, "members")) {
    out.push_back(Member{m.value("user", ""), m.value("role", "")});
  }
  return out;
}

void RelayClient::RemoveMember(const std::string& mesh_id, const std::string& user) {
  CALL("DELETE", "/mesh/" + Encode(mesh_id) + "/members/" + Encode(user), nullptr, false);
}

std::pair<std::string, bool> RelayClient::RegisterAgent(const std::string& mesh_id,
                                                        const std::string& name,
                                                        const std::string& harness) {
  json body = {{"name", name}, {"harness", harness}};
  // Registering is idempotent for the caller (the same name answers the same
  // id, 200 instead of 201), so it is safe to retry.
  int status = 0;
  json j = Call(*impl_, url_, "POST", "/mesh/" + Encode(mesh_id) + "/agents", &body, true,
                impl_->retry.read_timeout_s, nullptr, &status);
  return {RegisterAnswerFromJson(j).agent_id, status == 201};
}

std::vector<AgentInfo> RelayClient::Agents(const std::string& mesh_id) {
  std::vector<AgentInfo> out;
  json answer = CALL("GET", "/mesh/" + Encode(mesh_id) + "/agents", nullptr, true);
  for (const json& a : AnswerList(answer, "agents")) {
    AgentInfo info;
    info.agent = AgentFromJson(a, &info.status, &info.listening);
    info.agent.mesh_id = mesh_id;
    out.push_back(std::move(info));
  }
  return out;
}

void RelayClient::Heartbeat(const std::string& mesh_id, const std::string& agent) {
  CALL("POST", "/mesh/" + Encode(mesh_id) + "/agents/" + Encode(agent) + "/heartbeat", nullptr, true);
}

void RelayClient::DeleteAgent(const std::string& mesh_id, const std::string& agent) {
  CALL("DELETE", "/mesh/" + Encode(mesh_id) + "/agents/" + Encode(agent), nullptr, false);
}

namespace {
/// A key of the client's own for a write it may retry (a send, a reply).
std::string NewIdempotencyKey() { return "cli-" + RandomBase62(24); }
}  // namespace

Message RelayClient::Send(const std::string& mesh_id, const OutgoingMessage& m) {
  OutgoingMessage keyed = m;
  // With a key, sending again after a lost answer stores nothing new: safe to retry.
  if (!keyed.idempotency_key) keyed.idempotency_key = NewIdempotencyKey();
  json body = ToJson(keyed);
  return MessageFromJson(CALL("POST", "/mesh/" + Encode(mesh_id) + "/messages", &body, true));
}

PollAnswer RelayClient::Poll(const std::string& mesh_id, const std::string& agent,
                             std::optional<std::int64_t> after, int wait_s, int limit) {
  std::string path = "/mesh/" + Encode(mesh_id) + "/messages?agent_id=" + Encode(agent) +
                     "&wait=" + std::to_string(wait_s) + "&limit=" + std::to_string(limit);
  if (after) path += "&after=" + std::to_string(*after);
  return PollAnswerFromJson(
      Call(*impl_, url_, "GET", path, nullptr, false, impl_->retry.read_timeout_s + wait_s, nullptr, nullptr, wait_s));
}

void RelayClient::Acknowledge(const std::string& mesh_id, const std::string& agent, std::int64_t after) {
  const std::string path = "/mesh/" + Encode(mesh_id) + "/messages?agent_id=" + Encode(agent) +
                           "&wait=0&after=" + std::to_string(after) + "&limit=";
  try {
    Call(*impl_, url_, "GET", path + "0", nullptr, false, impl_->retry.read_timeout_s);
  } catch (const Error& e) {
    if (e.status() != 400 || e.code() != "invalid_field") throw;
    Call(*impl_, url_, "GET", path + "1", nullptr, false, impl_->retry.read_timeout_s);  // a relay before limit=0
  }
}

PollAnswer RelayClient::History(const std::string& mesh_id, std::int64_t after, int limit) {
  return PollAnswerFromJson(CALL("GET",
                                 "/mesh/" + Encode(mesh_id) + "/messages?after=" +
                                     std::to_string(after) + "&limit=" + std::to_string(limit),
                                 nullptr, true));
}

std::pair<Message, std::vector<Receipt>> RelayClient::GetMessage(const std::string& mesh_id,
                                                                 const std::string& message_id) {
  json j = CALL("GET", "/mesh/" + Encode(mesh_id) + "/messages/" + Encode(message_id), nullptr, true);
  std::vector<Receipt> receipts;
  for (const json& r : j.value("delivery", json::array())) receipts.push_back(ReceiptFromJson(r));
  return {MessageFromJson(j), std::move(receipts)};
}

Message RelayClient::Reply(const std::string& mesh_id, const std::string& message_id,
                           const std::string& from, const std::string& content,
                           const std::string& idempotency_key) {
  // Keyed as a send is, so a retry after a lost answer stores nothing new.
  json body = {
      {"from", from},
      {"content", content},
      {"idempotency_key", idempotency_key.empty() ? NewIdempotencyKey() : idempotency_key}};
  return MessageFromJson(CALL("POST", "/mesh/" + Encode(mesh_id) + "/messages/" +
                                          Encode(message_id) + "/reply",
                              &body, true));
}

std::string RelayClient::Integrate(const std::string& mesh_id) {
  std::string raw;
  Call(*impl_, url_, "GET", "/mesh/" + Encode(mesh_id) + "/integrate", nullptr, true, impl_->retry.read_timeout_s,
       &raw);
  return raw;
}

void RelayClient::FollowEvents(
    const std::string& mesh_id,
    const std::function<bool(const std::string& event, const std::string& data)>& on_event) {
  {
    std::lock_guard lock(impl_->mu);
    if (impl_->cancelled) throw Error(0, "cancelled", "The request was cancelled.");
  }
  const std::string path = impl_->base_path + "/mesh/" + Encode(mesh_id) + "/events";
  // The relay sends a comment at least every 15 s: a minute of silence is a dead stream.
  impl_->http->set_read_timeout(60, 0);
  int status = 0;
  std::string error_body, buffer;
  bool stopped = false;
  bool not_relays = false;  // an event over 1 MiB, or nested deeper than any of the relay's
  httplib::Result r = impl_->http->Get(
      path, httplib::Headers{{"Accept", "text/event-stream"}},
      [&](const httplib::Response& response) {
        status = response.status;
        return true;
      },
      [&](const char* data, std::size_t size) {
        if (status >= 400) {
          if (error_body.size() < 65536) error_body.append(data, size);
          return true;
        }
        buffer.append(data, size);
        if (buffer.size() > (1u << 20)) {
          not_relays = true;
          return false;
        }
        for (std::size_t end; (end = buffer.find("\n\n")) != std::string::npos;) {
          std::string event = "message", payload;
          std::size_t at = 0;
          while (at < end) {
            std::size_t eol = std::min(buffer.find('\n', at), end);
            std::string_view line(buffer.data() + at, eol - at);
            if (line.starts_with("event: ")) event = std::string(line.substr(7));
            if (line.starts_with("data: ")) payload += std::string(line.substr(6));
            at = eol + 1;
          }
          buffer.erase(0, end + 2);
          if (JsonDepth(payload) > kMaxBodyDepth) {
            not_relays = true;
            return false;
          }
          if (!payload.empty() && !on_event(event, payload)) {
            stopped = true;
            return false;
          }
        }
        return true;
      });
  if (stopped) return;
  {
    std::lock_guard lock(impl_->mu);
    if (impl_->cancelled) throw Error(0, "cancelled", "The request was cancelled.");
  }
  if (not_relays) {
    throw Error(502, "bad_response",
                "The relay at " + url_ + " sent an event stream that is not meshwire's; is that URL a meshwire relay?");
  }
  if (status >= 400) {
    json j = ParseAnswer(error_body);
    if (j.is_object() && j.contains("error") && j["error"].is_object()) {
      throw Error(status, j["error"].value("code", "error"), j["error"].value("message", ""));
    }
    throw Error(status, "bad_response", "The relay at " + url_ + " answered HTTP " + std::to_string(status) + ".");
  }
  if (!r && r.error() != httplib::Error::Canceled) {
    throw Error(0, TransportCode(r.error()), TransportFailure(url_, r.error(), *impl_->http));
  }
}

std::vector<Token> RelayClient::ListTokens() {
  std::vector<Token> out;
  json answer = CALL("GET", "/tokens", nullptr, true);
  for (const json& t : AnswerList(answer, "tokens")) out.push_back(TokenFromJson(t));
  return out;
}

NewTokenAnswer RelayClient::CreateToken(const std::string& name,
                                        const std::optional<std::string>& mesh_id) {
  json body = {{"name", name}};
  if (mesh_id) body["mesh_id"] = *mesh_id;
  return NewTokenAnswerFromJson(CALL("POST", "/tokens", &body, false));
}

void RelayClient::RevokeToken(const std::string& token_id) {
  CALL("DELETE", "/tokens/" + Encode(token_id), nullptr, false);
}

}  // namespace meshwire
