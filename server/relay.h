// Relay: one running `meshwire server`. Owns the store, the service, the
// wake-up table, the HTTP server and its worker pool, the background thread
// that flushes presence and sweeps retention, and the one that ends the
// long-polls of clients that hung up (see tcp_probe.h).
//
// Lifecycle: construct (opens storage) -> Bind() -> Serve() (blocks) or
// Start() (background) -> Stop() from any thread -> destroy (closes storage).
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "server/auth_routes.h"
#include "server/clock.h"
#include "server/mesh_service.h"

namespace meshwire {

class Store;
class Waiters;
class RelayHttpServer;

struct RelayOptions {
  std::string host = "127.0.0.1";
  int port = 7420;                // 0: any free port (tests)
  std::string storage;            // "sqlite:PATH" (or a bare path)
  AuthOptions auth;               // sign-in mode (local | github | token) and GitHub settings
  std::size_t threads = 4096;     // worker threads, most of them parked long-polls
  std::size_t max_parked = 0;     // 0: threads - 64
  int retention_days = 7;
  int rate_limit_per_min = 0;     // per token; 0 = unlimited
  std::size_t max_body_bytes = 1 << 20;
  int listen_backlog = 4096;
  Millis flush_every_ms = 5000;   // presence to storage
  Millis sweep_every_ms = 60000;  // retention sweep
  Millis hangup_check_ms = 1000;  // parked polls' connections; 0: never (tests call CheckHangups())
  bool housekeeping = true;       // false: tests call service().Sweep() themselves
  const Clock* clock = nullptr;   // null: the system clock
};

/// Opens the store an option string names: "sqlite:PATH" or a bare path.
/// Throws Error 503 (naming the path) when it cannot, 400 for an unknown scheme.
std::unique_ptr<Store> OpenStore(const std::string& spec);

class Relay {
 public:
  /// Opens the storage; throws meshwire::Error on a bad option or storage.
  explicit Relay(RelayOptions options);
  ~Relay();

  /// Binds the listening socket; returns the port. Throws Error when it cannot.
  int Bind();
  /// Serves until Stop(). Returns once every in-flight request has answered.
  void Serve();
  /// Serve() on a background thread (tests).
  void Start();
  /// Wakes parked long-polls (they answer what they have), stops accepting,
  /// and waits for the workers. Safe to call from any thread, more than once.
  void Stop();

  /// Asks the kernel which parked polls' clients are still connected and ends
  /// the waits of those that hung up (they fetch nothing). Returns how many.
  std::size_t CheckHangups();

  int port() const { return port_; }
  MeshService& service() { return *service_; }
  Waiters& waiters() { return *waiters_; }
  Store& store() { return *store_; }

 private:
  /// Runs `work` every `period` on the calling thread until Stop(); logs what it throws.
  void Every(Millis period, const char* what, const std::function<void()>& work);
  void Housekeeping();

  RelayOptions options_;
  SystemClock system_clock_;
  const Clock* clock_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<Waiters> waiters_;
  std::unique_ptr<MeshService> service_;
  std::unique_ptr<RelayHttpServer> http_;
  int port_ = 0;
  std::thread serve_thread_;
  std::thread housekeeping_thread_;
  std::thread hangup_thread_;
  int listen_family_ = 0;                  // AF_INET or AF_INET6, set by Bind()
  std::atomic<bool> probe_failed_{false};  // the kernel refused the last hang-up check
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;  // guarded by mu_
};

}  // namespace meshwire
