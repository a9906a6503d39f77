// MeshService: the relay's rules, between the HTTP routes and the Store.
// Every method checks who may do what, validates its input, and throws
// meshwire::Error with the contract's status and code when something is
// wrong (then nothing was changed). It knows nothing of HTTP or JSON bodies.
#pragma once

#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "server/clock.h"
#include "server/identity_cache.h"
#include "server/rate_limiter.h"
#include "server/store.h"
#include "server/tcp_probe.h"
#include "server/waiters.h"

namespace meshwire {

struct ServiceOptions {
  Millis agent_ttl = 7LL * 24 * 3600 * 1000;  // --retention-days
  Millis acked_grace = 3600LL * 1000;          // acknowledged messages stay this long
  int max_wait_s = 60;                         // longest long-poll
  int rate_limit_per_min = 0;                  // per token; 0 = unlimited
  std::string version;
  std::string region = "local";
  std::string auth_mode = "local";  // reported by /health so `meshwire login` knows the flow
};

/// Who is calling: the token that authenticated the request.
struct Caller {
  Token token;
  const std::string& user() const { return token.user; }
};

struct MeshInfo {
  Mesh mesh;
  int registered = 0;
  int active = 0;
};

struct AgentView {
  Agent agent;
  std::string status;  // "active", "idle", "offline"
  bool listening = false;
};

struct SendRequest {
  std::string from;                   // agent id or name of the caller's
  std::optional<std::string> to;      // agent id or name; absent or "all": broadcast
  std::string content;
  std::optional<std::string> priority;
  std::optional<std::string> reply_to;
  std::string metadata_json = "{}";   // an object
  std::optional<std::string> idempotency_key;
};

struct PollRequest {
  std::string agent_id;
  std::optional<std::int64_t> after;  // acknowledges everything <= after
  int wait_s = 0;
  int limit = 100;
  std::optional<TcpPeer> peer;  // the client's connection, so a wait ends when it hangs up
};

struct PollResult {
  std::vector<Message> messages;
  std::int64_t cursor = 0;  // pass as `after` next time to acknowledge this batch
};

struct CreatedToken {
  Token token;
  std::string secret;  // plaintext, shown once
};

class MeshService {
 public:
  MeshService(Store& store, const Clock& clock, Waiters& waiters, ServiceOptions options);

  /// Checks a bearer token ("Bearer mw_..."); 401 when missing, unknown or
  /// revoked, 429 past the per-token rate limit.
  Caller Authenticate(const std::string& authorization_header);

  // Meshes and members.
  Mesh CreateMesh(const Caller& caller, const std::string& name);
  std::vector<Mesh> ListMeshes(const Caller& caller);
  MeshInfo GetMesh(const Caller& caller, const std::string& mesh_id);
  void DeleteMesh(const Caller& caller, const std::string& mesh_id);
  void AddMember(const Caller& caller, const std::string& mesh_id, const std::string& user);
  std::vector<Member> ListMembers(const Caller& caller, const std::string& mesh_id);
  void RemoveMember(const Caller& caller, const std::string& mesh_id, const std::string& user);

  // Agents.
  RegisterResult RegisterAgent(const Caller& caller, const std::string& mesh_id,
                               const std::string& name, const std::string& harness);
  std::vector<AgentView> ListAgents(const Caller& caller, const std::string& mesh_id);
  void Heartbeat(const Caller& caller, const std::string& mesh_id, const std::string& agent);
  void DeleteAgent(const Caller& caller, const std::string& mesh_id, const std::string& agent);

  // Messages.
  AppendResult Send(const Caller& caller, const std::string& mesh_id, const SendRequest& request);
  /// Long-poll: blocks up to request.wait_s for a message when none is there.
  PollResult Poll(const Caller& caller, const std::string& mesh_id, const PollRequest& request);
  std::vector<Message> History(const Caller& caller, const std::string& mesh_id,
                               std::int64_t after, int limit);
  std::pair<Message, std::vector<Receipt>> GetMessage(const Caller& caller,
                                                      const std::string& mesh_id,
                                                      const std::string& message_id);
  AppendResult Reply(const Caller& caller, const std::string& mesh_id,
                     const std::string& message_id, const std::string& from,
                     const std::string& content, const std::string& metadata_json);
  /// The integration guide (markdown) for a mesh, with `base_url` filled in.
  std::string Integrate(const Caller& caller, const std::string& mesh_id,
                        const std::string& base_url);

  // Tokens.
  std::vector<Token> ListTokens(const Caller& caller);
  CreatedToken CreateToken(const Caller& caller, const std::string& name,
                           const std::optional<std::string>& mesh_id);
  void RevokeToken(const Caller& caller, const std::string& token_id);

  /// Creates a token for `user` (creating the user): `meshwire admin token create`.
  static CreatedToken IssueToken(Store& store, const Clock& clock, const std::string& user,
                                 const std::string& name,
                                 const std::optional<std::string>& mesh_id);

  // Housekeeping, run by the relay's background thread.
  /// Writes the presence seen since the last flush to the store.
  void FlushPresence();
  /// Flushes presence, then removes stale agents and purges delivered messages.
  SweepResult Sweep();

  const ServiceOptions& options() const { return options_; }
  Store& store() { return store_; }

 private:
  /// The mesh, after checking the caller may use it (token scope, membership).
  Mesh RequireMember(const Caller& caller, const std::string& mesh_id);
  /// The agent `id_or_name` of the mesh; 404 agent_not_found when unknown.
  /// `fresh`: read from storage (cursors current); else its identity may come
  /// from the cache (cursor fields stale).
  Agent RequireAgent(const std::string& mesh_id, const std::string& id_or_name, bool fresh = false);
  /// As RequireAgent, and 403 unless the caller's user registered it.
  Agent RequireOwnAgent(const Caller& caller, const std::string& mesh_id,
                        const std::string& id_or_name, bool fresh = false);
  void RequireUnscoped(const Caller& caller, const char* what);
  AppendResult Commit(const NewMessage& message);
  void Seen(const std::string& agent_id);
  Millis LastSeen(const Agent& agent);
  std::string StatusOf(Millis last_seen) const;

  Store& store_;
  const Clock& clock_;
  Waiters& waiters_;
  const ServiceOptions options_;
  RateLimiter limiter_;
  IdentityCache cache_;

  std::mutex presence_mu_;
  std::unordered_map<std::string, Millis> seen_;   // agent id -> last seen; guarded
  std::unordered_map<std::string, Millis> dirty_;  // not yet flushed; guarded
  std::unordered_map<std::string, Millis> token_used_;  // token id -> last TouchToken; guarded
};

}  // namespace meshwire
