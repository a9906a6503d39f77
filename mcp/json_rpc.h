// JSON-RPC 2.0 dispatch, apart from any transport: a transport hands each
// incoming message's text to HandleText and sends what the sink is given
// (stdio_transport.h frames them as lines; an HTTP transport can carry the
// same dispatcher). The rules real MCP clients rely on:
// - a line that is not JSON: -32700, and the loop goes on;
// - a batch (array) or a malformed request: -32600;
// - an unknown method with an id: -32601 (before or after initialize), so
//   clients probing with e.g. server/discover fall back;
// - notifications are never answered;
// - a handler answers now (returns) or later (an async handler calls its
//   Respond once, from any thread); requests registered as concurrent run on
//   their own thread, so a long wait never delays a ping;
//   `notifications/cancelled` cancels one and its answer is never sent;
// - at end of input (Drain) every request still in flight is cancelled.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <iosfwd>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>  // JSON values are this layer's currency (included by mcp/ only)

#include "schemas/json_io.h"

namespace meshwire::mcp {

/// Thrown by a handler to answer with a JSON-RPC error.
class RpcError : public std::runtime_error {
 public:
  RpcError(int code, const std::string& message) : std::runtime_error(message), code_(code), message_(message) {}
  int code() const { return code_; }
  /// The whole message: what() ends at a NUL that a client's text put in it.
  const std::string& message() const { return message_; }

  static constexpr int kParseError = -32700;
  static constexpr int kInvalidRequest = -32600;
  static constexpr int kMethodNotFound = -32601;
  static constexpr int kInvalidParams = -32602;
  static constexpr int kInternalError = -32603;

 private:
  int code_;
  std::string message_;
};

/// One request being served.
class RequestContext {
 public:
  /// Told that a request's answer will never come: `by_peer` when the peer
  /// cancelled it (notifications/cancelled), false when this side ended it
  /// (JsonRpcPeer::Drain: the input ended, the session was closed).
  using Unanswered = std::function<void(bool by_peer)>;
  /// `on_thread`: the handler runs on a thread of its own. `unanswered`
  /// runs once at the cancellation of a request still in flight, whose
  /// answer will then never come (JsonRpcPeer::Dispatch).
  explicit RequestContext(Json params, bool on_thread = false, Unanswered unanswered = nullptr)
      : on_thread_(on_thread), params_(std::move(params)), unanswered_(std::move(unanswered)) {}
  const Json& params() const { return params_; }
  bool cancelled() const { return cancelled_; }
  /// Runs `fn` on cancellation (at once if already cancelled). Replaces the
  /// previous one; pass nullptr to clear it.
  void OnCancel(std::function<void()> fn);
  /// Only for a request no longer in flight: no answer will be sent.
  void Cancel(bool by_peer = true);
  /// Runs `fn` once the answer is certain to be sent, just before it is;
  /// never if the request is cancelled first. For what only an answer the
  /// client gets may do (get_messages moving its cursor past what it shows).
  /// Replaces the previous one.
  void OnAnswer(std::function<void()> fn);
  /// The answer is about to be sent: `unanswered` (and what it holds) is let
  /// go and OnAnswer's function runs. False (and neither runs) when the
  /// request was cancelled: no answer goes.
  bool Answered();
  /// Whether cancelling can still change anything: the handler registered
  /// something to stop (a wait), or runs on a thread of its own and may yet.
  /// A call with nothing to stop (a send that is being committed) would only
  /// lose its answer.
  bool Cancellable();

 private:
  const bool on_thread_;
  Json params_;
  std::atomic<bool> cancelled_{false};
  std::mutex mu_;
  std::function<void()> on_cancel_;   // guarded by mu_
  std::function<void()> on_answer_;   // guarded by mu_
  Unanswered unanswered_;             // guarded by mu_; cleared when run or answered
};

class JsonRpcPeer {
 public:
  using Handler = std::function<Json(RequestContext&)>;
  /// Answers a request with its result; once, from any thread.
  using Respond = std::function<void(Json result)>;
  /// A handler that answers later. Throwing RpcError answers with that error.
  using AsyncHandler = std::function<void(const std::shared_ptr<RequestContext>&, Respond)>;
  using NotificationHandler = std::function<void(const Json& params)>;
  /// Where one incoming message's answer goes (a JSON-RPC response or error).
  using AnswerSink = std::function<void(const Json& answer)>;

  JsonRpcPeer();
  ~JsonRpcPeer();

  /// Registers a method. `concurrent`: served on its own thread.
  void On(const std::string& method, Handler handler, bool concurrent = false);
  void OnAsync(const std::string& method, AsyncHandler handler, bool concurrent = false);
  void OnNotification(const std::string& method, NotificationHandler handler);

  /// Where outgoing messages go (one JSON text each; any thread, serialized
  /// by the dispatcher). Set before the first HandleText.
  void SetSink(std::function<void(const std::string& text)> sink);
  /// Handles one incoming message's text (a request, notification or batch);
  /// answers go to the sink.
  void HandleText(const std::string& text);
  /// Handles one parsed message, for a transport that answers each message
  /// on its own channel (an HTTP response): `answer` runs at most once, with
  /// this message's answer. False when none will come (a notification, a
  /// response, or a request cancelled before its answer). `unanswered` runs
  /// instead of `answer` when the request is cancelled before its answer
  /// (notifications/cancelled, Drain): the transport ends its channel then,
  /// which would otherwise wait for an answer that never comes.
  bool Dispatch(const Json& message, AnswerSink answer, RequestContext::Unanswered unanswered = nullptr);
  /// Whether the request `id`, still in flight, can be cancelled to any
  /// effect (RequestContext::Cancellable); false once it is answered.
  bool Cancellable(const Json& id);
  /// Answers a message that could not be read at all (no id to answer):
  /// an error with a null id, through the sink.
  void Refuse(int code, const std::string& message) { Write(AnswerError(nullptr, code, message)); }
  /// Sends a notification (no id) through the sink; any thread.
  void Notify(const std::string& method, const Json& params);
  /// True when `message` is a request (it has a method and an id).
  static bool IsRequest(const Json& message);
  /// The input ended: requests in flight get `grace` to finish, the rest are
  /// cancelled (their answers are never sent), and every worker is joined.
  void Drain(std::chrono::milliseconds grace);

 private:
  static Json Answer(const Json& id, const Json& result);
  static Json AnswerError(const Json& id, int code, const std::string& message);
  void Write(const Json& message);
  void CancelRequest(const Json& id);
  void Reap(bool all);

  struct Method {
    AsyncHandler handler;
    bool concurrent;
  };
  std::map<std::string, Method> methods_;
  std::map<std::string, NotificationHandler> notifications_;
  std::function<void(const std::string&)> sink_;
  std::mutex write_mu_;
  std::mutex flight_mu_;
  // Requests being served, by their id's JSON text; guarded by flight_mu_.
  std::map<std::string, std::shared_ptr<RequestContext>> in_flight_;
  struct Worker {
    std::thread thread;
    std::shared_ptr<std::atomic<bool>> done;
  };
  std::vector<Worker> workers_;  // only touched by the reading thread
};

}  // namespace meshwire::mcp
