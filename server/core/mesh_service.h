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

#include <exception>
#include <functional>

#include "schemas/rest.h"
#include "server/core/clock.h"
#include "server/core/executor.h"
#include "server/core/identity_cache.h"
#include "server/core/rate_limiter.h"
#include "server/core/store.h"
#include "server/core/wake_bus.h"
#include "server/core/waiters.h"

namespace meshwire {

struct ServiceOptions {
  Millis agent_ttl = 7LL * 24 * 3600 * 1000;  // --retention-days
  Millis acked_grace = 3600LL * 1000;          // acknowledged messages stay this long
  int max_wait_s = 60;                         // longest long-poll
  int rate_limit_per_min = 0;                  // per token; 0 = unlimited
  std::string version;
  std::string region = "local";
  std::string auth_mode = "local";  // reported by /health so `meshwire login` knows the flow
  std::size_t max_tokens_per_user = 100;
  std::size_t max_agents_per_member = 20000;  // agents one user has in one mesh
};

/// Who is calling: the token that authenticated the request.
struct Caller {
  Token token;
  std::string secret_sha256;  // what the request presented, to check it again later
  const std::string& user() const { return token.user; }
};

/// The rules speak the REST API's own values (schemas/rest.h).
using MeshInfo = MeshDetails;
using AgentView = AgentInfo;
using SendRequest = OutgoingMessage;

struct PollRequest {
  std::string agent_id;
  std::optional<std::int64_t> after;  // acknowledges everything <= after
  int wait_s = 0;
  int limit = 100;
};

struct PollResult {
  std::vector<CommittedPtr> messages;  // oldest first; each serialized once however often sent
  std::int64_t cursor = 0;  // pass as `after` next time to acknowledge this batch
};

/// How a poll answers: exactly one call, with an error (then `result` is
/// empty) or the result. After Poll returned, it runs on the Executor.
using PollDone = std::function<void(std::exception_ptr error, PollResult result)>;

struct CreatedToken {
  Token token;
  std::string secret;  // plaintext, shown once
};

class MeshService {
 public:
  /// Subscribes to `bus` (access changes clear the identity cache) and makes
  /// `store` publish each commit on it. Woken polls are answered on `executor`.
  MeshService(Store& store, const Clock& clock, Waiters& waiters, WakeBus& bus,
               Executor& executor, ServiceOptions options);

  /// Checks a bearer token ("Bearer mw_..."); 401 when missing, unknown or
  /// revoked, 429 past the per-token rate limit.
  Caller Authenticate(std::string_view authorization_header);

  /// The mesh, after checking the caller may use it: 403 for a token scoped
  /// elsewhere or a non-member, 404 for an unknown mesh.
  Mesh CheckAccess(const Caller& caller, const std::string& mesh_id) { return RequireMember(caller, mesh_id); }
  /// As CheckAccess, but from storage, token included (401 once revoked):
  /// for requests that stay open while access may change.
  void Reauthorize(const Caller& caller, const std::string& mesh_id);
  /// Whether Reauthorize's error says the caller lost the mesh (401, 403,
  /// 404), so that what it holds open ends; a 503 or anything else says
  /// nothing of its access.
  static bool AccessLost(const Error& e) { return e.status() == 401 || e.status() == 403 || e.status() == 404; }
  /// What a revoked token's requests are told (401), and its open calls.
  static constexpr const char* kTokenRevoked = "The token was revoked; sign in again (`meshwire login`).";

  // Meshes and members.
  Mesh CreateMesh(const Caller& caller, const std::string& name);
  std::vector<Mesh> ListMeshes(const Caller& caller);
  MeshInfo GetMesh(const Caller& caller, const std::string& mesh_id);
  void DeleteMesh(const Caller& caller, const std::string& mesh_id);
  /// `name` as the stored spelling of an existing user (CanonicalUser).
  AddedMember AddMember(const Caller& caller, const std::string& mesh_id, const std::string& name);
  std::vector<Member> ListMembers(const Caller& caller, const std::string& mesh_id);
  void RemoveMember(const Caller& caller, const std::string& mesh_id, const std::string& name);

  // Agents.
  RegisterResult RegisterAgent(const Caller& caller, const std::string& mesh_id,
                               const std::string& name, const std::string& harness);
  std::vector<AgentView> ListAgents(const Caller& caller, const std::string& mesh_id);
  void Heartbeat(const Caller& caller, const std::string& mesh_id, const std::string& agent);
  void DeleteAgent(const Caller& caller, const std::string& mesh_id, const std::string& agent);

  // Messages.
  /// Checks the message (throwing Error at once when it is wrong: then
  /// nothing is stored), then commits it without blocking; `done` runs once,
  /// after the commit or its failure, on the committing thread: quick work only.
  void Send(const Caller& caller, const std::string& mesh_id, const SendRequest& request,
            Store::AppendDone done);
  /// Poll, long-poll when request.wait_s > 0. Throws Error for what is wrong
  /// with the request itself (then `done` never runs). Otherwise `done` runs
  /// once: at once when there are messages or nothing to wait for, else when
  /// a commit brings some, the wait ends or the relay stops. A woken poll
  /// checks its caller's access again (a token revoked or a member removed
  /// meanwhile gets 401/403, nothing new). Returns the parked wait, or null
  /// when already answered: pass it to CancelPoll when the client hangs up.
  Waiters::Handle Poll(const Caller& caller, const std::string& mesh_id,
                       const PollRequest& request, PollDone done);
  /// Ends a parked poll whose client is gone: it reads nothing more (nothing
  /// is marked fetched) and its `done` never runs.
  void CancelPoll(const Waiters::Handle& wait);
  /// Runs `work` on the executor that answers woken polls: for a poll's
  /// completion (which may run on the writer's thread) that must poll or
  /// read again. `work` must not throw.
  void Post(std::function<void()> work) { executor_.Post(std::move(work)); }
  std::vector<Message> History(const Caller& caller, const std::string& mesh_id,
                               std::int64_t after, int limit);
  /// The cursor of a history read that found nothing after `after`: `after`,
  /// or the mesh's newest seq when `after` is past it (a reader's cursor from
  /// a database since reset), so that its next read skips nothing.
  std::int64_t HistoryEnd(const std::string& mesh_id, std::int64_t after);
  /// What `agent` (the caller's) has not acknowledged, after `after` too when
  /// given: a look that moves no cursor and marks nothing fetched.
  std::vector<Message> Pending(const Caller& caller, const std::string& mesh_id, const std::string& agent,
                               std::optional<std::int64_t> after, int limit);
  std::pair<Message, std::vector<Receipt>> GetMessage(const Caller& caller,
                                                      const std::string& mesh_id,
                                                      const std::string& message_id);
  /// `priority` and `idempotency_key` as a send's: unset is "normal"; a key
  /// the sender used before returns that message and stores nothing new.
  AppendResult Reply(const Caller& caller, const std::string& mesh_id,
                     const std::string& message_id, const std::string& from,
                     const std::string& content, const std::string& metadata_json,
                     const std::optional<std::string>& priority = std::nullopt,
                     const std::optional<std::string>& idempotency_key = std::nullopt);
  /// The integration guide (markdown) for a mesh, with `base_url` filled in;
  /// `sign_in_page`: `meshwire login` works on this relay (else tokens only).
  std::string Integrate(const Caller& caller, const std::string& mesh_id,
                        const std::string& base_url, bool sign_in_page = true);

  // Tokens.
  std::vector<Token> ListTokens(const Caller& caller);
  CreatedToken CreateToken(const Caller& caller, const std::string& name,
                           const std::optional<std::string>& mesh_id);
  void RevokeToken(const Caller& caller, const std::string& token_id);

  /// Throws 400 invalid_field for a token name POST /tokens would refuse.
  static void CheckTokenName(const std::string& name);
  /// Whether `user` holds fewer than `max` tokens (POST /tokens and sign-ins
  /// each refuse past it, in their own words).
  static bool HasTokenRoom(Store& store, const std::string& user, std::size_t max);
  /// User names are matched without regard to case (GitHub's logins are):
  /// the spelling of an existing user that `name` matches, else `name`.
  static std::string CanonicalUser(Store& store, const std::string& name);
  /// Creates a token for `user` (creating the user; an existing user's
  /// spelling kept, Store::CreateToken): `meshwire admin token create`, sign-ins.
  static CreatedToken IssueToken(Store& store, const Clock& clock, const std::string& user,
                                 const std::string& name,
                                 const std::optional<std::string>& mesh_id);

  // Housekeeping, run by the relay's background thread.
  /// Writes the presence seen since the last flush to the store.
  void FlushPresence();
  /// Multi-node stores: tells the other nodes which agents listen here (the
  /// relay calls it about once a second). Nothing on a single node.
  void ShareListening();
  /// Flushes presence, then removes stale agents and purges delivered messages.
  SweepResult Sweep();
  /// An event stream or MCP session of the mesh is about to wait on it
  /// (WakeBus::Watch): other nodes announce its messages here from now on.
  /// Throws Error 503 when the database cannot be reached.
  void Watch(const std::string& mesh_id) { bus_.Watch(mesh_id); }

  /// The harness of agent `agent_id` of the mesh as cached (a sender's
  /// identity is, from its send), else "": no storage read, so it may run on
  /// the thread that commits.
  std::string CachedHarness(const std::string& mesh_id, const std::string& agent_id) {
    auto agent = cache_.FindAgentIdentity(mesh_id, agent_id);
    return agent ? agent->harness : std::string();
  }

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
  /// A woken poll's answer, on the executor.
  void AnswerWoken(const Caller& caller, const std::string& mesh_id, const std::string& agent_id,
                   std::int64_t from, int limit, std::uint64_t generation, Waiters::Outcome outcome,
                   std::vector<CommittedPtr> messages, const PollDone& done, bool on_waker);
  /// Tells every node that tokens, members, agents or meshes changed; the
  /// polls parked by whom `ended` names answer at once, on every node.
  void AccessChanged(WakeEvent::Ended ended = {});
  /// Answers the parked polls that access change `ended` names (a bus subscriber).
  void EndPolls(const WakeEvent::Ended& ended);
  /// An agent's presence event; `deleted`: it is gone (offline, not listening).
  void PublishPresence(Agent agent, bool deleted = false);
  /// A deleted agent (its own deletion, or its owner's leaving the mesh): its
  /// presence is forgotten and an offline presence event published.
  void Gone(Agent agent);
  AppendResult Commit(const NewMessage& message);
  void Seen(const std::string& agent_id);
  Millis LastSeen(const Agent& agent);
  std::string StatusOf(Millis last_seen) const;

  Store& store_;
  const Clock& clock_;
  Waiters& waiters_;
  WakeBus& bus_;
  Executor& executor_;
  const ServiceOptions options_;
  RateLimiter limiter_;
  IdentityCache cache_;

  std::vector<std::string> shared_listening_;  // sorted; what ShareListening last said (housekeeping thread)
  std::mutex presence_mu_;
  std::unordered_map<std::string, Millis> seen_;   // agent id -> last seen; guarded
  std::unordered_map<std::string, Millis> dirty_;  // not yet flushed; guarded
  std::unordered_map<std::string, Millis> token_used_;  // token id -> last TouchToken; guarded
};

}  // namespace meshwire
