// The wake-up bus of a relay on SQLite: in-process (one relay per file, see
// StorageLock), plus a watch for what other processes commit to the file.
// `meshwire admin token revoke` changes the database under a running relay,
// whose identity cache (IdentityCache) would go on trusting the token; so
// once a second the bus asks the store whether another process committed
// (Store::OutsideChanges: SQLite's data_version, read on the writer's
// connection in an empty transaction, no flush) and, when one did, publishes
// an access change: the relay forgets its cached identities, and a revoked
// token fails from its next request. Its parked polls answer nothing new
// (each looks again at its caller's access when it wakes) and end at their
// deadline.
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "server/core/store.h"
#include "server/core/wake_bus.h"

namespace meshwire {

class SqliteWakeBus final : public WakeBus {
 public:
  /// Starts watching `store` (which must outlive the bus) every `every`.
  explicit SqliteWakeBus(Store& store, std::chrono::milliseconds every = std::chrono::seconds(1));
  /// Stops the watch (StopWatching).
  ~SqliteWakeBus() override;
  SqliteWakeBus(const SqliteWakeBus&) = delete;
  SqliteWakeBus& operator=(const SqliteWakeBus&) = delete;

  void Publish(const WakeEvent& event) override { local_.Publish(event); }
  void Subscribe(Subscriber subscriber, Interest interest = nullptr) override {
    local_.Subscribe(std::move(subscriber), std::move(interest));
  }
  /// Ends the watch and waits for its thread: no look at the store after.
  void StopWatching() override;

 private:
  void Watch();

  Store& store_;
  LocalWakeBus local_;
  const std::chrono::milliseconds every_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;  // guarded by mu_
  std::thread thread_;
};

}  // namespace meshwire
