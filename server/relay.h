// Relay: one running `meshwire server`, wiring the parts together:
//
//   HttpRuntime (Beast: connections, limits, TLS)  ->  Router  ->  routes (api, auth, events)
//        |                                                          |
//        `- worker pool (Executor) <---- woken polls ----  MeshService (rules) -> Store
//                                                             ^        |
//   Waiters (parked polls), EventHub (SSE)  <--- WakeBus <----'--------' (commits, access changes)
//
// plus the housekeeping thread (presence flush, retention sweep).
// Lifecycle: construct (listens, then opens storage) -> Bind() -> Serve() (blocks) or
// Start() (background) -> Stop() from any thread -> destroy (closes storage).
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "server/core/clock.h"
#include "server/core/mesh_service.h"
#include "server/http/auth_routes.h"
#include "server/http/router.h"
#include "server/storage/store_factory.h"

namespace meshwire {

class Store;
class Waiters;
class WakeBus;
class HttpRuntime;
class EventHub;
class McpEndpoint;

struct RelayOptions {
  std::string host = "127.0.0.1";
  int port = 7420;                // 0: any free port (tests)
  std::string storage;            // "sqlite:PATH" (or a bare path)
  AuthOptions auth;               // sign-in mode (local | github | token) and GitHub settings
  std::string public_url;         // the relay as clients reach it; "": from the listen address
  std::string tls_cert, tls_key;  // both set: HTTPS
  int threads = 32;               // workers for requests that touch storage
  int io_threads = 2;             // event-loop threads
  std::size_t max_parked = 0;     // parked long-polls on this node; 0: 200,000
  std::size_t max_parked_per_agent = 64;
  std::size_t max_parked_per_token = 1000;
  std::size_t max_tokens_per_user = 100;
  std::size_t max_agents_per_member = 20000;  // agents one user has in one mesh (--agents-per-member)
  int retention_days = 7;
  int rate_limit_per_min = 0;     // per token; 0 = unlimited
  std::size_t max_body_bytes = 1 << 20;
  Millis request_timeout_ms = 10000;
  Millis idle_timeout_ms = 60000;
  Millis events_keepalive_ms = 15000;
  std::size_t max_stream_memory = std::size_t{256} << 20;  // all event streams' unread events (--max-stream-memory)
  std::size_t max_body_memory = std::size_t{256} << 20;    // request bodies being read together (--max-body-memory)
  int listen_backlog = 4096;
  Millis flush_every_ms = 5000;   // presence to storage
  Millis share_every_ms = 1000;   // listening agents to the other nodes (multi-node storage)
  Millis sweep_every_ms = 60000;  // retention sweep
  bool housekeeping = true;       // false: tests call service().Sweep() themselves
  const Clock* clock = nullptr;   // null: the system clock
};

class Relay {
 public:
  /// Binds the listening socket (accepting nothing until Serve), then opens
  /// the storage; throws meshwire::Error on a bad option, an address it
  /// cannot listen on, or storage it cannot open.
  explicit Relay(RelayOptions options);
  ~Relay();

  /// Mounts the routes; returns the port.
  int Bind();
  /// Serves until Stop(). Returns once every connection has closed.
  void Serve();
  /// Serve() on a background thread (tests).
  void Start();
  /// Answers parked long-polls (with what they have) and event streams,
  /// stops accepting, and lets requests in flight finish. Any thread, more
  /// than once.
  void Stop();
  /// Stop(), and closes the connections still open now instead of after the
  /// grace period (a second Ctrl+C); returns how many there were.
  std::size_t StopNow();
  /// Loads the TLS certificate and key again (SIGHUP). Throws Error when it cannot.
  void ReloadTls();

  int port() const { return port_; }
  /// The relay as clients reach it, e.g. "http://127.0.0.1:7420" (set by Bind).
  const std::string& public_url() const { return public_url_; }
  MeshService& service() { return *service_; }
  Waiters& waiters() { return *waiters_; }
  Store& store() { return *store_; }
  EventHub& events() { return *events_; }
  /// The MCP endpoint; after Bind.
  McpEndpoint& mcp() { return *mcp_; }
  HttpRuntime& runtime() { return *runtime_; }

 private:
  void Housekeeping();

  RelayOptions options_;
  SystemClock system_clock_;
  const Clock* clock_;
  std::unique_ptr<StorageLock> storage_lock_;  // before store_: released after it closes
  std::unique_ptr<Store> store_;
  std::unique_ptr<WakeBus> bus_;
  Router router_;
  std::unique_ptr<HttpRuntime> runtime_;
  std::unique_ptr<Waiters> waiters_;
  std::unique_ptr<MeshService> service_;
  std::unique_ptr<EventHub> events_;
  std::unique_ptr<McpEndpoint> mcp_;  // made in Bind (it needs the public URL)
  std::atomic<McpEndpoint*> mcp_live_{nullptr};  // mcp_ for the bus's threads, once made
  int port_ = 0;
  std::string public_url_;
  std::thread serve_thread_;
  std::thread housekeeping_thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;  // guarded by mu_
};

}  // namespace meshwire
