// JSON-RPC 2.0 over a pair of streams, one message per line (MCP's stdio
// transport). The rules real MCP clients rely on:
// - a line that is not JSON: -32700, and the loop goes on;
// - a batch (array) or a malformed request: -32600;
// - an unknown method with an id: -32601 (before or after initialize), so
//   clients probing with e.g. server/discover fall back;
// - notifications are never answered;
// - requests registered as concurrent run on their own thread, so a long
//   wait never delays a ping; `notifications/cancelled` cancels one and its
//   answer is never sent;
// - at end of input every request in flight is cancelled and Serve returns.
#pragma once

#include <atomic>
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
  RpcError(int code, const std::string& message) : std::runtime_error(message), code_(code) {}
  int code() const { return code_; }

  static constexpr int kParseError = -32700;
  static constexpr int kInvalidRequest = -32600;
  static constexpr int kMethodNotFound = -32601;
  static constexpr int kInvalidParams = -32602;
  static constexpr int kInternalError = -32603;

 private:
  int code_;
};

/// One request being served.
class RequestContext {
 public:
  explicit RequestContext(Json params) : params_(std::move(params)) {}
  const Json& params() const { return params_; }
  bool cancelled() const { return cancelled_; }
  /// Runs `fn` on cancellation (at once if already cancelled). Replaces the
  /// previous one; pass nullptr to clear it.
  void OnCancel(std::function<void()> fn);
  void Cancel();

 private:
  Json params_;
  std::atomic<bool> cancelled_{false};
  std::mutex mu_;
  std::function<void()> on_cancel_;  // guarded by mu_
};

class JsonRpcPeer {
 public:
  using Handler = std::function<Json(RequestContext&)>;
  using NotificationHandler = std::function<void(const Json& params)>;

  JsonRpcPeer();
  ~JsonRpcPeer();

  /// Registers a method. `concurrent`: served on its own thread.
  void On(const std::string& method, Handler handler, bool concurrent = false);
  void OnNotification(const std::string& method, NotificationHandler handler);

  /// Reads requests from `in` until end of input, answering on `out`.
  void Serve(std::istream& in, std::ostream& out);

 private:
  void HandleLine(const std::string& line);
  void Dispatch(const Json& message);
  void Answer(const Json& id, const Json& result);
  void AnswerError(const Json& id, int code, const std::string& message);
  void Write(const Json& message);
  void CancelRequest(const Json& id);
  void Reap(bool all);

  struct Method {
    Handler handler;
    bool concurrent;
  };
  std::map<std::string, Method> methods_;
  std::map<std::string, NotificationHandler> notifications_;
  std::ostream* out_ = nullptr;
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
