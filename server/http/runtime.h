// HttpRuntime: the relay's HTTP(S) server on Boost.Beast and Asio, the only
// part of meshwire that sees them. A few event-loop threads serve every
// connection and call the handler for each request; the handler must not
// block (the Router runs routes that may block on the worker pool this runtime
// offers). A request that waits (a parked long-poll, an event stream) holds no
// thread at all, only its connection's small state.
//
// What every connection is held to (hostile clients included):
// - a whole request (headers and body) must arrive within request_timeout
//   from its first byte (408), and a keep-alive connection with no request
//   closes after idle_timeout;
// - request line and headers at most max_header_bytes and max_header_count
//   fields (431), a target at most max_target_bytes (414), a body at most
//   max_body_bytes, chunked or not (413), and bodies still being read at
//   most max_body_memory together (503); two Content-Lengths, or one with
//   Transfer-Encoding, are refused (400); errors are the contract's JSON and
//   close the connection;
// - while a request waits for its answer the socket is watched: a client that
//   hangs up (FIN or reset) fires the exchange's OnHangUp at once;
// - an event stream holds at most 4 MiB of events its client has not read,
//   and all streams together max_stream_memory (past it, a stream more than
//   64 KiB behind whose client took nothing for a second is dropped): a
//   client that does not read is let go.
// Stop() stops accepting, closes idle connections and event streams, and lets
// requests in flight answer (Run returns once every connection is closed,
// forcing those left after the grace period).
#pragma once

#include <memory>
#include <string>

#include "schemas/model.h"
#include "server/core/executor.h"
#include "server/http/http_types.h"

namespace meshwire {

struct RuntimeOptions {
  std::string host = "127.0.0.1";
  int port = 7420;  // 0: any free port
  int io_threads = 2;
  int workers = 32;  // threads for route handlers, which may block on storage
  std::size_t max_body_bytes = 1 << 20;
  std::size_t max_header_bytes = 16 * 1024;  // request line and headers
  std::size_t max_header_count = 100;
  std::size_t max_target_bytes = 8 * 1024;
  Millis request_timeout_ms = 10000;  // from a request's first byte to its last
  Millis idle_timeout_ms = 60000;     // keep-alive with no request
  Millis write_timeout_ms = 30000;
  // Every event stream's unwritten events together: past it, a stream well
  // behind is dropped at its next event (its client reconnects).
  std::size_t max_stream_memory = std::size_t{256} << 20;
  // Request bodies still being read, all connections together (each counted
  // at its Content-Length, a chunked one at max_body_bytes): past it, 503
  // with Retry-After before the body is read.
  std::size_t max_body_memory = std::size_t{256} << 20;
  Millis stop_grace_ms = 10000;       // Stop(): then what is still open is closed
  int backlog = 4096;
  std::string tls_cert_file;  // both set: HTTPS (TLS 1.2 or newer) only
  std::string tls_key_file;
};

class HttpRuntime {
 public:
  /// `handler` serves every request, on an event-loop thread. Throws Error 400
  /// when the TLS files cannot be loaded.
  HttpRuntime(RuntimeOptions options, Handler handler);
  ~HttpRuntime();

  /// Binds and listens; returns the port. Throws Error 503 when it cannot.
  int Bind();
  /// Serves until Stop(); returns once every connection is closed and every
  /// handler has returned.
  void Run();
  /// Stops accepting and closes connections as they finish (see above). Any
  /// thread, more than once.
  void Stop();
  /// Stop(), without the grace period: closes every connection now (a
  /// second Ctrl+C). Returns how many were open.
  std::size_t StopNow();
  /// Loads the TLS certificate and key again (SIGHUP); new connections use
  /// them. Throws Error 400 (and keeps the old ones) when they cannot be loaded.
  void ReloadTls();
  /// Loads `cert` and `key` as the runtime would, and drops them: throws
  /// Error 400 when they cannot be loaded (a check before anything else starts).
  static void CheckTls(const std::string& cert, const std::string& key);

  bool tls() const;
  /// Bytes that event streams hold for their clients, not yet written
  /// (held against RuntimeOptions::max_stream_memory).
  std::size_t stream_bytes() const;
  /// Where handlers run; other blocking work may be posted here too.
  Executor& workers();

  struct Impl;  // defined in runtime.cc, with the connections

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace meshwire
