#include "server/storage/sqlite_wake_bus.h"

#include <spdlog/spdlog.h>

#include <optional>

#include "server/core/thread_name.h"

namespace meshwire {

SqliteWakeBus::SqliteWakeBus(Store& store, std::chrono::milliseconds every)
    : store_(store), every_(every), thread_([this] {
        NameThisThread("mw-sqlite-watch");
        Watch();
      }) {}

SqliteWakeBus::~SqliteWakeBus() { StopWatching(); }

void SqliteWakeBus::StopWatching() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void SqliteWakeBus::Watch() {
  std::optional<std::uint64_t> seen;  // the count at the last look
  for (;;) {
    try {
      const std::uint64_t now = store_.OutsideChanges();
      if (seen && *seen != now) {
        spdlog::info("storage: another process changed the database (meshwire admin?); cached identities "
                     "forgotten");
        WakeEvent e;
        e.kind = WakeEvent::Kind::kAccessChanged;
        local_.Publish(e);
      }
      seen = now;
    } catch (const std::exception&) {
      // The store is closing (or briefly unable to write): look again later;
      // a change is still seen then, the count having moved.
    }
    std::unique_lock lock(mu_);
    if (cv_.wait_for(lock, every_, [this] { return stopping_; })) return;
  }
}

}  // namespace meshwire
