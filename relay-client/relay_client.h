// RelayClient: the typed C++ client of the relay's REST API (docs/API.md),
// used by the command line and the MCP server.
//
// Every method throws meshwire::Error on failure, with a sentence that says
// what to do:
// - the relay answered an error: its status, code and message (401 adds "run
//   `meshwire login`"; mesh_not_found adds "run `meshwire mesh list`");
// - the relay could not be reached: status 0, code "unreachable", naming the URL;
// - no answer in time: status 0, code "timeout".
// Requests that cannot duplicate anything (reads, and sends, which carry an
// idempotency key) are retried on 503/429 and transport errors after each
// delay of the retry schedule; others are tried once.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "schemas/error.h"
#include "schemas/model.h"
#include "schemas/rest.h"

namespace meshwire {

/// A failure that may pass by itself (the relay restarting, overloaded or
/// unreachable for a moment: status 0, 502, 503, 429), so the request can
/// be tried again; not an untrusted certificate, which needs a setting.
bool Retryable(const Error& e);

struct RetryPolicy {
  std::vector<std::chrono::milliseconds> delays;  // empty: no retries
  /// Called before each wait: (attempt number from 1, the delay, the error).
  std::function<void(int, std::chrono::milliseconds, const Error&)> on_retry;
  /// How long a request waits for the relay's answer (a poll: its wait
  /// more). A relay that took a request and did not answer in that time is
  /// hung, not restarting: that error ("timeout") is not retried.
  int read_timeout_s = 30;
  static RetryPolicy None() { return {}; }
  /// 2 s, 5 s, 15 s, as the product page recommends.
  static RetryPolicy Standard();
};

class RelayClient {
 public:
  /// `url` like "http://127.0.0.1:7420"; `token` may be empty (then only
  /// Health works).
  RelayClient(std::string url, std::string token, RetryPolicy retry = RetryPolicy::None());
  ~RelayClient();
  RelayClient(RelayClient&&) noexcept;

  const std::string& url() const { return url_; }

  HealthAnswer Health();
  /// `meshwire login`'s last step: exchanges the browser's one-time sign-in
  /// code for {token, user} (POST /auth/cli/token; needs no token).
  std::pair<std::string, std::string> RedeemSignInCode(const std::string& code);
  /// {user, token_id}
  std::pair<std::string, std::string> Me();

  Mesh CreateMesh(const std::string& name);
  std::vector<Mesh> ListMeshes();
  MeshDetails GetMesh(const std::string& mesh_id);
  void DeleteMesh(const std::string& mesh_id);
  /// The user as the relay stored them, and whether it knew no such user
  /// before (a relay older than the answer's `new_user` says false).
  AddedMember AddMember(const std::string& mesh_id, const std::string& user);
  std::vector<Member> Members(const std::string& mesh_id);
  void RemoveMember(const std::string& mesh_id, const std::string& user);

  /// {agent_id, created}: created is false when the caller already had the name.
  std::pair<std::string, bool> RegisterAgent(const std::string& mesh_id, const std::string& name,
                                             const std::string& harness);
  std::vector<AgentInfo> Agents(const std::string& mesh_id);
  void Heartbeat(const std::string& mesh_id, const std::string& agent);
  void DeleteAgent(const std::string& mesh_id, const std::string& agent);

  Message Send(const std::string& mesh_id, const OutgoingMessage& message);
  /// Long-poll when wait_s > 0; `after` acknowledges everything up to it.
  PollAnswer Poll(const std::string& mesh_id, const std::string& agent,
                  std::optional<std::int64_t> after, int wait_s, int limit = 100);
  /// Acknowledges everything up to `after` and reads nothing, so no later
  /// message is marked fetched (limit=0; a relay older than it takes
  /// limit=1). SetDeadline bounds both attempts.
  void Acknowledge(const std::string& mesh_id, const std::string& agent, std::int64_t after);
  PollAnswer History(const std::string& mesh_id, std::int64_t after, int limit = 100);
  std::pair<Message, std::vector<Receipt>> GetMessage(const std::string& mesh_id,
                                                      const std::string& message_id);
  /// `idempotency_key`: the key of an earlier try whose answer never came
  /// (then this one stores nothing twice); empty: a new one.
  Message Reply(const std::string& mesh_id, const std::string& message_id, const std::string& from,
                const std::string& content, const std::string& idempotency_key = "");
  std::string Integrate(const std::string& mesh_id);
  /// Follows GET /mesh/{mesh}/events live (no replay; it moves no cursor):
  /// `on_event(event, data)` for each event, until it returns false or the
  /// stream ends (then this returns), or Cancel (throws code "cancelled").
  /// Throws Error like any call when the stream cannot start or breaks.
  void FollowEvents(const std::string& mesh_id,
                    const std::function<bool(const std::string& event, const std::string& data)>& on_event);

  std::vector<Token> ListTokens();
  NewTokenAnswer CreateToken(const std::string& name, const std::optional<std::string>& mesh_id);
  void RevokeToken(const std::string& token_id);

  /// Stops a request in progress from another thread (it then throws Error
  /// code "cancelled"), and every later request of this client too: a cancel
  /// that arrives before the request starts is not lost.
  void Cancel();
  /// Every later request (its connection, its answer, its retries) ends by
  /// `deadline` and 1 s more for its answer (a poll, by the end of its
  /// wait and 1 s, where that is later): a command's --timeout.
  void SetDeadline(std::chrono::steady_clock::time_point deadline);

  struct Impl;  // opaque: the HTTP connection and retry state

 private:
  std::string url_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace meshwire
