#include "mcp/json_rpc.h"

#include <spdlog/spdlog.h>

#include <chrono>
#include <nlohmann/json.hpp>

namespace meshwire::mcp {

void RequestContext::OnCancel(std::function<void()> fn) {
  std::unique_lock lock(mu_);
  on_cancel_ = std::move(fn);
  if (cancelled_ && on_cancel_) {
    auto f = on_cancel_;
    lock.unlock();
    f();
  }
}

void RequestContext::Cancel() {
  std::function<void()> f;
  {
    std::lock_guard lock(mu_);
    cancelled_ = true;
    f = on_cancel_;
  }
  if (f) f();
}

JsonRpcPeer::JsonRpcPeer() = default;

JsonRpcPeer::~JsonRpcPeer() { Reap(true); }

void JsonRpcPeer::On(const std::string& method, Handler handler, bool concurrent) {
  methods_[method] = Method{std::move(handler), concurrent};
}

void JsonRpcPeer::OnNotification(const std::string& method, NotificationHandler handler) {
  notifications_[method] = std::move(handler);
}

void JsonRpcPeer::SetSink(std::function<void(const std::string& text)> sink) {
  std::lock_guard lock(write_mu_);
  sink_ = std::move(sink);
}

void JsonRpcPeer::Drain(std::chrono::milliseconds grace) {
  // Requests already read get a moment to finish (a script piping requests
  // in still gets its answers); whatever still waits after that (a
  // long-poll) is cancelled, so the process exits promptly.
  auto deadline = std::chrono::steady_clock::now() + grace;
  for (;;) {
    {
      std::lock_guard lock(flight_mu_);
      if (in_flight_.empty()) break;
      if (std::chrono::steady_clock::now() >= deadline) {
        for (auto& [key, context] : in_flight_) context->Cancel();
        break;
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  Reap(true);
}

void JsonRpcPeer::HandleText(const std::string& text) {
  Reap(false);
  Json message = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (message.is_discarded()) {
    AnswerError(nullptr, RpcError::kParseError, "Parse error: the line is not JSON.");
    return;
  }
  if (message.is_array()) {
    AnswerError(nullptr, RpcError::kInvalidRequest,
                "Invalid request: batches are not supported (removed in MCP 2025-06-18).");
    return;
  }
  Dispatch(message);
}

void JsonRpcPeer::Dispatch(const Json& m) {
  Json id = nullptr;
  bool has_id = m.is_object() && m.contains("id");
  if (has_id) id = m["id"];
  if (has_id && !(id.is_string() || id.is_number_integer())) {
    AnswerError(nullptr, RpcError::kInvalidRequest, "Invalid request: id must be a string or an integer.");
    return;
  }
  if (!m.is_object() || m.value("jsonrpc", "") != "2.0") {
    AnswerError(id, RpcError::kInvalidRequest, "Invalid request: not a JSON-RPC 2.0 object.");
    return;
  }
  if (!m.contains("method")) {
    // A response from the client; this server sends no requests, so ignore it.
    if (m.contains("result") || m.contains("error")) return;
    AnswerError(id, RpcError::kInvalidRequest, "Invalid request: no method.");
    return;
  }
  if (!m["method"].is_string()) {
    AnswerError(id, RpcError::kInvalidRequest, "Invalid request: method must be a string.");
    return;
  }
  const std::string method = m["method"];
  Json params = m.contains("params") ? m["params"] : Json::object();
  if (!params.is_object() && !params.is_array()) {
    if (has_id) AnswerError(id, RpcError::kInvalidParams, "Invalid params: must be an object.");
    return;
  }

  if (!has_id) {  // a notification: never answered
    auto n = notifications_.find(method);
    if (n != notifications_.end()) {
      try {
        n->second(params);
      } catch (const std::exception& e) {
        spdlog::warn("notification {} failed: {}", method, e.what());
      }
    } else if (method == "notifications/cancelled" && params.is_object() && params.contains("requestId")) {
      CancelRequest(params["requestId"]);
    }
    return;
  }

  auto it = methods_.find(method);
  if (it == methods_.end()) {
    AnswerError(id, RpcError::kMethodNotFound, "Method not found: " + method);
    return;
  }
  auto context = std::make_shared<RequestContext>(params);
  const std::string key = id.dump();
  {
    std::lock_guard lock(flight_mu_);
    if (in_flight_.count(key)) {
      AnswerError(id, RpcError::kInvalidRequest, "Invalid request: id " + key + " is already in use.");
      return;
    }
    in_flight_[key] = context;
  }
  auto run = [this, handler = it->second.handler, context, id, key] {
    Json result;
    std::optional<RpcError> error;
    try {
      result = handler(*context);
    } catch (const RpcError& e) {
      error = e;
    } catch (const std::exception& e) {
      error = RpcError(RpcError::kInternalError, std::string("Internal error: ") + e.what());
    }
    {
      std::lock_guard lock(flight_mu_);
      in_flight_.erase(key);
    }
    if (context->cancelled()) return;  // cancelled: no answer
    if (error) {
      AnswerError(id, error->code(), error->what());
    } else {
      Answer(id, result);
    }
  };
  if (it->second.concurrent) {
    auto done = std::make_shared<std::atomic<bool>>(false);
    workers_.push_back(Worker{std::thread([run, done] {
                                run();
                                *done = true;
                              }),
                              done});
  } else {
    run();
  }
}

void JsonRpcPeer::CancelRequest(const Json& id) {
  std::shared_ptr<RequestContext> context;
  {
    std::lock_guard lock(flight_mu_);
    auto it = in_flight_.find(id.dump());
    if (it == in_flight_.end()) return;
    context = it->second;
  }
  context->Cancel();
}

void JsonRpcPeer::Answer(const Json& id, const Json& result) {
  Write({{"jsonrpc", "2.0"}, {"id", id}, {"result", result}});
}

void JsonRpcPeer::AnswerError(const Json& id, int code, const std::string& message) {
  Write({{"jsonrpc", "2.0"}, {"id", id}, {"error", {{"code", code}, {"message", message}}}});
}

void JsonRpcPeer::Write(const Json& message) {
  std::string line = message.dump(-1, ' ', false, Json::error_handler_t::replace);
  std::lock_guard lock(write_mu_);
  if (sink_) sink_(line);
}

void JsonRpcPeer::Reap(bool all) {
  for (auto it = workers_.begin(); it != workers_.end();) {
    if (all || *it->done) {
      it->thread.join();
      it = workers_.erase(it);
    } else {
      ++it;
    }
  }
}

}  // namespace meshwire::mcp
