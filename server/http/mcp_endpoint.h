// POST/GET/DELETE /mesh/{mesh}/mcp: the five meshwire tools served by the
// relay over MCP's Streamable HTTP transport (protocol 2024-11-05 to
// 2025-11-25), so a client connects with a URL and a token, installing
// nothing (docs/API.md, "MCP over HTTP on the relay").
//
// - POST carries one JSON-RPC message. `initialize` opens a session (an
//   Mcp-Session-Id) for one agent: ?agent=NAME, else the token's name,
//   registered like any agent (same name, same agent). Requests are answered
//   as application/json; notifications and responses get 202.
// - GET opens the session's stream of server messages (Server-Sent Events,
//   with keep-alive comments); DELETE ends the session.
// - Every request authenticates (Authorization: Bearer mw_...) and must be
//   the session's token; a 401 carries WWW-Authenticate with the Protected
//   Resource Metadata document's URL (RFC 9728), served here too.
// - DNS-rebinding defence: a browser Origin other than the relay's own, or a
//   non-loopback Host on a relay served on loopback, is refused (403).
// - Sessions live in this node's memory; an idle one ends after
//   `idle_timeout_ms`, and a token keeps at most `max_sessions_per_token`
//   (the least recently used goes first).
#pragma once

#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <unordered_map>

#include <nlohmann/json_fwd.hpp>

#include "server/core/mesh_service.h"
#include "server/http/http_types.h"

namespace meshwire {

class Router;

struct McpEndpointOptions {
  std::string public_url;                  // the relay as clients reach it
  Millis idle_timeout_ms = 30LL * 60 * 1000;
  std::size_t max_sessions_per_token = 32;
  Millis keepalive_ms = 15000;             // GET streams' comment lines
};

class McpEndpoint {
 public:
  /// `clock` times idle sessions (tests inject one).
  McpEndpoint(MeshService& service, const Clock& clock, McpEndpointOptions options);
  ~McpEndpoint();

  void AddRoutes(Router& router);
  /// The WakeBus subscriber: pushes a committed message to the sessions of
  /// its recipients (notifications/claude/channel on their GET streams, and
  /// notifications/resources/updated where meshwire://inbox is subscribed).
  void OnEvent(const WakeEvent& event);
  /// Whether a session of `mesh_id` is open.
  bool Watches(const std::string& mesh_id) const;

  /// The loop guard: past kLoopLimit pushes from one agent to another within
  /// kLoopWindowMs, pushes between them pause for kLoopPauseMs (both are
  /// told why); their messages still arrive through meshwire_get_messages.
  static constexpr int kLoopLimit = 10;
  static constexpr Millis kLoopWindowMs = 60 * 1000;
  static constexpr Millis kLoopPauseMs = 5 * 60 * 1000;
  /// Ends every session and stream (relay shutdown).
  void CloseAll();
  /// Ends the sessions idle past the timeout; sends streams a keep-alive.
  /// Runs every keepalive period on its own thread; tests call it.
  void Housekeeping();
  /// Asks storage whether each session's caller may still use its mesh and
  /// its agent still exists, and ends those that may not. For what an access
  /// change does not name (OnEvent: a deleted mesh, agents removed by
  /// retention, changes this node may have missed), and at the next
  /// Housekeeping when storage could not say. `meshes`: only their sessions
  /// (nullptr: every session).
  void RecheckAccess(const std::set<std::string>* meshes = nullptr);
  std::size_t SessionCount();

 private:
  struct Session;
  using SessionPtr = std::shared_ptr<Session>;
  /// Why the relay ended `weak`'s session ("" when it is gone, or ended for
  /// no reason of its own), for the calls it leaves unanswered.
  static std::string EndReason(const std::weak_ptr<Session>& weak);

  /// Runs `body`, answering a meshwire::Error as a refusal (a 401 with
  /// WWW-Authenticate) and anything else as a logged 500.
  void Guard(const ExchangePtr& exchange, const std::function<void()>& body);
  void Post(const ExchangePtr& exchange);
  void Get(const ExchangePtr& exchange);
  void Delete(const ExchangePtr& exchange);
  void ProtectedResourceMetadata(const ExchangePtr& exchange);

  /// Origin and Host checks, then the caller; throws meshwire::Error.
  Caller Admit(const HttpRequest& request);
  /// The request's session, checked against the caller and the mesh.
  SessionPtr Find(const HttpRequest& request, const Caller& caller);
  /// A new session (legacy: a random id); with `stateless_key`, the one
  /// that key names (2026-07-28: per token, mesh and agent).
  SessionPtr Open(const Caller& caller, const std::string& mesh_id, const HttpRequest& request,
                  const std::string& stateless_key = "");
  /// Open's two halves: a session built, and then (Register) counted among
  /// the token's, the least recently used ended past the cap.
  SessionPtr NewSession(const Caller& caller, const std::string& mesh_id, const HttpRequest& request,
                        const std::string& stateless_key);
  void Register(const SessionPtr& session);
  /// Protocol 2026-07-28: server/discover, or a request whose _meta or
  /// MCP-Protocol-Version names that revision.
  static bool IsModern(const HttpRequest& request, const nlohmann::json& message);
  /// A 2026-07-28 request: the standard headers checked (MCP-Protocol-Version,
  /// Mcp-Method, Mcp-Name), no session id, `_meta` carrying the client's
  /// capabilities; server/discover; subscriptions/listen streams the inbox's
  /// updates.
  void PostModern(const ExchangePtr& exchange, const Caller& caller, const nlohmann::json& message);
  /// A client that hangs up before request `id` is answered cancels it, as
  /// notifications/cancelled would (a waiting get_messages reads nothing);
  /// a call with nothing to cancel is not watched.
  static void CancelOnHangUp(const ExchangePtr& exchange, const SessionPtr& session, const nlohmann::json& id);
  /// Forgets the session and closes its stream; `cancel_calls`: its waiting
  /// calls end unanswered.
  void End(const SessionPtr& session, bool cancel_calls);
  /// Pushes `message` to `session` (its mu held, its stream open), unless
  /// the loop guard holds it back.
  void Push(Session& session, const Message& message, const std::string& channel_event);
  /// The sentence for a sender whose pushes to `to` are paused, else "".
  std::string PausedNotice(const std::string& from, const std::string& to);

  MeshService& service_;
  const Clock& clock_;
  const McpEndpointOptions options_;
  std::string origin_;  // scheme://host[:port] of public_url
  bool loopback_ = false;  // public_url's host is a loopback name

  mutable std::mutex mu_;
  std::unordered_map<std::string, SessionPtr> sessions_;  // by id; guarded by mu_
  std::unordered_map<std::string, std::size_t> sessions_per_mesh_;  // for Watches; guarded by mu_
  /// Erases `it` from sessions_ and counts its session out of its mesh; mu_ held.
  void EraseLocked(std::unordered_map<std::string, SessionPtr>::iterator it);
  // (from agent, to agent) -> paused until. A mutex of its own: Push holds
  // a session's mutex, and Open holds mu_ while it reads sessions' mutexes.
  std::mutex paused_mu_;
  std::map<std::pair<std::string, std::string>, Millis> paused_;  // guarded by paused_mu_
  bool stopping_ = false;                                 // guarded by mu_
  // Work of access changes for the housekeeping thread (OnEvent runs on a
  // commit's thread), guarded by mu_: sessions the change named (a revoked
  // token's, a deleted agent's), to end; meshes whose sessions storage must
  // judge; every session to judge.
  std::vector<SessionPtr> to_end_;
  std::set<std::string> recheck_meshes_;
  bool recheck_all_ = false;
  bool recheck_later_ = false;  // guarded by mu_: storage was out of reach at the last recheck
  std::condition_variable cv_;
  std::thread housekeeping_;
};

}  // namespace meshwire
