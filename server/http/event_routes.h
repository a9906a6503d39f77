// GET /mesh/{mesh}/events: Server-Sent Events of a mesh for dashboards and
// bridges (docs/API.md, "Event stream"). Every committed message is an
// `event: message` with `id: <seq>`; presence changes are `event: presence`.
// `Last-Event-ID` (or ?after=SEQ) first replays the retained messages after
// that seq, then the stream goes live with nothing missed and nothing twice.
// A comment line every keep-alive period keeps proxies from closing it. It
// moves no cursor. When access changes (a token revoked, a member removed),
// each stream's caller is checked again and streams no longer allowed end.
// A stream holds no thread: its replay goes a page at a time, each once the
// client has read the last (EventStream::WhenDrained). One user may have
// max_streams_per_user open (429 past it).
#pragma once

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "server/core/executor.h"
#include "server/core/mesh_service.h"
#include "server/core/wake_bus.h"
#include "server/http/http_types.h"

namespace meshwire {

class Router;

class EventHub {
 public:
  static constexpr std::size_t kMaxStreamsPerUser = 64;
  /// Starts the keep-alive thread; subscribe OnEvent to the bus.
  EventHub(MeshService& service, Executor& executor, Millis keepalive_ms,
           std::size_t max_streams_per_user = kMaxStreamsPerUser);
  ~EventHub();

  /// The WakeBus subscriber: fans an event out to the mesh's streams.
  void OnEvent(const WakeEvent& event);
  /// Whether a stream of `mesh_id` is open (from before its replay on).
  bool Watches(const std::string& mesh_id) const;
  /// Adds GET /mesh/{mesh}/events.
  void AddRoutes(Router& router);
  /// Ends every stream (relay shutdown).
  void CloseAll();

 private:
  struct Subscriber;
  void Serve(const ExchangePtr& exchange);
  /// Sends a page of the retained messages after `after` (none when < 0),
  /// then the next once the client has read it, on the executor; after the
  /// last, what was held meanwhile, and the stream is live.
  void ReplayPage(const std::shared_ptr<Subscriber>& subscriber, std::int64_t after);
  /// Gives back one of `user`'s stream slots; mu_ held.
  void Unreserve(const std::string& user);
  void Remove(const std::shared_ptr<Subscriber>& subscriber);
  void RecheckAccess();
  void KeepAliveLoop();

  MeshService& service_;
  Executor& executor_;
  const Millis keepalive_ms_;
  const std::size_t max_streams_per_user_;
  mutable std::mutex mu_;
  // mesh id -> its open streams; guarded by mu_
  std::unordered_map<std::string, std::vector<std::shared_ptr<Subscriber>>> by_mesh_;
  // user -> streams open or opening (at most max_streams_per_user_); guarded by mu_
  std::unordered_map<std::string, std::size_t> open_by_user_;
  bool stopping_ = false;  // guarded by mu_
  std::atomic<bool> recheck_pending_{false};  // an access check that met a 503: again at the next keep-alive
  std::condition_variable cv_;
  std::thread keepalive_;
};

}  // namespace meshwire
