#include "mcp/json_rpc.h"

#include <spdlog/spdlog.h>

#include <chrono>
#include <nlohmann/json.hpp>

#include "schemas/json_io.h"

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

void RequestContext::Cancel(bool by_peer) {
  std::function<void()> f;
  Unanswered unanswered;
  {
    std::lock_guard lock(mu_);
    cancelled_ = true;
    f = on_cancel_;
    unanswered.swap(unanswered_);
  }
  if (f) f();
  if (unanswered) unanswered(by_peer);
}

void RequestContext::OnAnswer(std::function<void()> fn) {
  std::lock_guard lock(mu_);
  on_answer_ = std::move(fn);
}

bool RequestContext::Answered() {
  Unanswered drop;
  std::function<void()> commit;
  {
    std::lock_guard lock(mu_);
    drop.swap(unanswered_);  // destroyed after the lock: it may hold the last reference to a connection
    if (cancelled_) return false;
    commit.swap(on_answer_);
  }
  if (commit) commit();
  return true;
}

bool RequestContext::Cancellable() {
  std::lock_guard lock(mu_);
  return on_thread_ || on_cancel_ != nullptr;
}

JsonRpcPeer::JsonRpcPeer() = default;

JsonRpcPeer::~JsonRpcPeer() { Reap(true); }

void JsonRpcPeer::On(const std::string& method, Handler handler, bool concurrent) {
  OnAsync(
      method,
      [handler = std::move(handler)](const std::shared_ptr<RequestContext>& context, Respond respond) {
        respond(handler(*context));
      },
      concurrent);
}

void JsonRpcPeer::OnAsync(const std::string& method, AsyncHandler handler, bool concurrent) {
  methods_[method] = Method{std::move(handler), concurrent};
}

bool JsonRpcPeer::IsRequest(const Json& message) {
  return message.is_object() && message.contains("id") && message.contains("method");
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
    std::map<std::string, std::shared_ptr<RequestContext>> late;
    {
      std::lock_guard lock(flight_mu_);
      if (in_flight_.empty()) break;
      if (std::chrono::steady_clock::now() >= deadline) late.swap(in_flight_);
    }
    if (!late.empty()) {
      for (auto& [key, context] : late) context->Cancel(/*by_peer=*/false);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  Reap(true);
}

void JsonRpcPeer::HandleText(const std::string& text) {
  Reap(false);
  // Parsing is iterative, but destroying and printing a value recurse: a
  // line nested 200,000 deep crashed the server.
  if (JsonDepth(text) > kMaxBodyDepth) {
    Write(AnswerError(nullptr, RpcError::kParseError,
                      "Parse error: the line is nested more than " + std::to_string(kMaxBodyDepth) + " levels deep."));
    return;
  }
  // A lone surrogate escape (JSON.stringify writes them) or a byte that is
  // not UTF-8 in a string is read as U+FFFD, so the request gets its answer
  // (a parse error has no id to answer, and the client would wait for it).
  Json message = ParseRepaired(text);
  if (message.is_discarded()) {
    Write(AnswerError(nullptr, RpcError::kParseError, "Parse error: the line is not JSON."));
    return;
  }
  if (message.is_array()) {
    Write(AnswerError(nullptr, RpcError::kInvalidRequest,
                      "Invalid request: batches are not supported (removed in MCP 2025-06-18)."));
    return;
  }
  Dispatch(message, [this](const Json& answer) { Write(answer); });
}

bool JsonRpcPeer::Dispatch(const Json& m, AnswerSink answer, RequestContext::Unanswered unanswered) {
  Json id = nullptr;
  bool has_id = m.is_object() && m.contains("id");
  if (has_id) id = m["id"];
  auto refuse = [&](const Json& to, int code, const std::string& message) {
    answer(AnswerError(to, code, message));
    return true;
  };
  if (has_id && !(id.is_string() || id.is_number_integer())) {
    return refuse(nullptr, RpcError::kInvalidRequest, "Invalid request: id must be a string or an integer.");
  }
  if (!m.is_object() || !m.contains("jsonrpc") || m["jsonrpc"] != "2.0") {
    return refuse(id, RpcError::kInvalidRequest, "Invalid request: not a JSON-RPC 2.0 object.");
  }
  if (!m.contains("method")) {
    // A response from the client; this server sends no requests, so ignore it.
    if (m.contains("result") || m.contains("error")) return false;
    return refuse(id, RpcError::kInvalidRequest, "Invalid request: no method.");
  }
  if (!m["method"].is_string()) {
    return refuse(id, RpcError::kInvalidRequest, "Invalid request: method must be a string.");
  }
  const std::string method = m["method"];
  Json params = m.contains("params") ? m["params"] : Json::object();
  if (!params.is_object() && !params.is_array()) {
    if (has_id) return refuse(id, RpcError::kInvalidParams, "Invalid params: must be an object.");
    return false;
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
    return false;
  }

  auto it = methods_.find(method);
  if (it == methods_.end()) {
    return refuse(id, RpcError::kMethodNotFound, "Method not found: " + method);
  }
  auto context = std::make_shared<RequestContext>(params, it->second.concurrent, std::move(unanswered));
  const std::string key = id.dump();
  {
    std::lock_guard lock(flight_mu_);
    if (in_flight_.count(key)) {
      return refuse(id, RpcError::kInvalidRequest, "Invalid request: id " + key + " is already in use.");
    }
    in_flight_[key] = context;
  }
  // Ends the request once: the first of its answer and its cancellation.
  auto finish = [this, context, key, id, answer](const Json* result, const RpcError* error) {
    {
      std::lock_guard lock(flight_mu_);
      auto at = in_flight_.find(key);
      if (at == in_flight_.end() || at->second != context) return;  // cancelled, or answered
      in_flight_.erase(at);
    }
    if (!context->Answered()) return;  // cancelled: no answer
    answer(error ? AnswerError(id, error->code(), error->message()) : Answer(id, *result));
  };
  auto run = [handler = it->second.handler, context, finish] {
    try {
      handler(context, [finish](Json result) { finish(&result, nullptr); });
    } catch (const RpcError& e) {
      finish(nullptr, &e);
    } catch (const std::exception& e) {
      RpcError error(RpcError::kInternalError, std::string("Internal error: ") + e.what());
      finish(nullptr, &error);
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
  return !context->cancelled();
}

bool JsonRpcPeer::Cancellable(const Json& id) {
  std::shared_ptr<RequestContext> context;
  {
    std::lock_guard lock(flight_mu_);
    auto it = in_flight_.find(id.dump());
    if (it == in_flight_.end()) return false;
    context = it->second;
  }
  return context->Cancellable();
}

void JsonRpcPeer::CancelRequest(const Json& id) {
  std::shared_ptr<RequestContext> context;
  {
    std::lock_guard lock(flight_mu_);
    auto it = in_flight_.find(id.dump());
    if (it == in_flight_.end()) return;
    context = it->second;
    // Its answer is never sent, and its id may be used again at once.
    in_flight_.erase(it);
  }
  context->Cancel();
}

void JsonRpcPeer::Notify(const std::string& method, const Json& params) {
  Write({{"jsonrpc", "2.0"}, {"method", method}, {"params", params}});
}

Json JsonRpcPeer::Answer(const Json& id, const Json& result) {
  return {{"jsonrpc", "2.0"}, {"id", id}, {"result", result}};
}

Json JsonRpcPeer::AnswerError(const Json& id, int code, const std::string& message) {
  return {{"jsonrpc", "2.0"}, {"id", id}, {"error", {{"code", code}, {"message", message}}}};
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
