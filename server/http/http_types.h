// meshwire's own HTTP values: what the runtime hands a route and what a route
// answers. Routes, the router and the rules never see the runtime's types
// (Boost.Beast stays in runtime.cc), so the runtime can change alone.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace meshwire {

class Error;

using HeaderList = std::vector<std::pair<std::string, std::string>>;

struct HttpRequest {
  std::string method;                // "GET"
  std::string target;                // as sent: path and query
  std::string path;                  // percent-decoded, without the query
  HeaderList query;                  // decoded key/value pairs, in order
  HeaderList headers;                // names as sent
  std::string body;
  std::string remote_address;        // the peer's IP address
  std::vector<std::string> params;   // the route's {captures}, filled by the Router

  /// The first header of that name (case-insensitive), or null.
  const std::string* Header(std::string_view name) const;
  std::string HeaderOr(std::string_view name, std::string fallback = "") const;
  /// How many headers of that name it has.
  std::size_t HeaderCount(std::string_view name) const;
  /// The first query parameter of that key, or null.
  const std::string* Query(std::string_view key) const;
};

struct HttpResponse {
  int status = 200;
  HeaderList headers;
  std::string body;
  /// When set, the body instead of `body`: one text written to many clients
  /// (a broadcast's answer) without a copy each.
  std::shared_ptr<const std::string> shared_body;

  HttpResponse& Header(std::string name, std::string value) {
    headers.emplace_back(std::move(name), std::move(value));
    return *this;
  }
  /// `body` as application/json.
  static HttpResponse Json(int status, std::string body);
  /// `body` with the given content type.
  static HttpResponse Text(int status, std::string content_type, std::string body);
  /// The contract's error JSON for `e`, with Retry-After when it has one.
  static HttpResponse FromError(const Error& e);
  /// No body (204, 302, ...).
  static HttpResponse Empty(int status) { return HttpResponse{status, {}, {}, nullptr}; }
};

/// A streamed answer that stays open (Server-Sent Events).
class EventStream {
 public:
  virtual ~EventStream() = default;
  /// Queues `text` to be written after what is queued; false when the client
  /// is gone or the stream closed (then `text` is dropped). Any thread.
  virtual bool Send(std::string text) = 0;
  /// Ends the stream (the connection closes once what is queued is written).
  virtual void Close() = 0;
  /// Bytes queued and not yet written (for a sender that must not outrun the client).
  virtual std::size_t Pending() const = 0;
  /// False once the client is gone or the stream closed.
  virtual bool Open() const = 0;
  /// Runs `fn` once, on a runtime thread (it must not block), when at most
  /// `bytes` are queued unwritten (at once if so already) or the stream has
  /// ended (then Open() is false): a sender that must not outrun the client
  /// goes on from there instead of holding a thread while it waits. A later
  /// call replaces an earlier one not yet run.
  virtual void WhenDrained(std::size_t bytes, std::function<void()> fn) = 0;
};

/// One request in flight, handed to a route; the route answers it exactly
/// once, from any thread, now or later.
class Exchange {
 public:
  virtual ~Exchange() = default;
  virtual HttpRequest& request() = 0;
  /// Sends the answer; calls after the first are ignored.
  virtual void Respond(HttpResponse response) = 0;
  /// As Respond, with the answer built by `make` on the connection's own
  /// thread: for answers finished on a thread that must stay quick (the
  /// storage writer's).
  virtual void RespondWith(std::function<HttpResponse()> make) = 0;
  /// Runs `fn` once if the client hangs up before the answer (at once if it
  /// already has). `fn` runs on a runtime thread and must not block.
  virtual void OnHangUp(std::function<void()> fn) = 0;
  /// Answers with `head`'s status and headers and keeps the connection open
  /// for what the returned stream sends (its body is chunked).
  virtual std::shared_ptr<EventStream> OpenStream(HttpResponse head) = 0;
};
using ExchangePtr = std::shared_ptr<Exchange>;
using Handler = std::function<void(const ExchangePtr&)>;

/// What a request said, fit for one log line: at most `max` bytes, control
/// characters and bytes outside ASCII as \xNN (a decoded path's "%0A" would
/// otherwise forge a line).
std::string ForLog(std::string_view text, std::size_t max = 200);

}  // namespace meshwire
