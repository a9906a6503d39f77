// Router: which route a request is for. Patterns are literal segments and
// {captures}: "/mesh/{mesh}/agents/{agent}/heartbeat". Matching splits the
// path on '/' and compares segment by segment (no regular expressions, so no
// input can make it recurse or backtrack); a capture is 1-256 bytes (a
// longer one is the 404 of what it would name: mesh_not_found after /mesh/,
// and so on). A path no route has is 404; a known path with another method
// is 405 with Allow.
// Dispatch is called on an event-loop thread: a route runs there only when
// it is marked kInline (it never blocks: it answers from memory or hands its
// wait to a completion); every other route runs on the worker pool. HEAD is
// served by a GET route (the runtime drops the body) unless the route says
// kNoHead: a GET that changes something (a poll acknowledges and marks
// messages fetched, a sign-in callback spends its code) or that streams
// (events, MCP) answers HEAD with 405, as a safe method must change nothing.
#pragma once

#include <string>
#include <vector>

#include "server/core/executor.h"
#include "server/http/http_types.h"

namespace meshwire {

class Router {
 public:
  static constexpr std::size_t kMaxCapture = 256;
  enum class Run { kOnWorker, kInline };
  enum class Head { kAsGet, kNoHead };

  /// Where routes that may block run; set before the first Dispatch.
  void SetWorkers(Executor* workers) { workers_ = workers; }
  void Add(std::string method, const std::string& pattern, Handler handler, Run run = Run::kOnWorker,
           Head head = Head::kAsGet);
  /// Calls the route's handler with request().params filled, or answers 404/405.
  void Dispatch(const ExchangePtr& exchange) const;

 private:
  struct Route {
    std::string method;
    std::vector<std::string> segments;  // "{...}" marks a capture
    Handler handler;
    Run run;
    Head head;
  };
  /// True when `path`'s segments fit `route`; fills `captures`.
  static bool Matches(const Route& route, const std::vector<std::string_view>& path,
                      std::vector<std::string>& captures);
  /// The index of the first capture over kMaxCapture bytes when only such
  /// captures keep `path` from fitting `route`, else 0.
  static std::size_t OverLongCapture(const Route& route, const std::vector<std::string_view>& path);
  std::vector<Route> routes_;
  Executor* workers_ = nullptr;
};

}  // namespace meshwire
