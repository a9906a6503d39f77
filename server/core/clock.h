// Time behind a seam, so presence, retention and timeouts are tested by moving
// a ManualClock instead of sleeping.
#pragma once

#include <atomic>
#include <chrono>

#include "schemas/model.h"

namespace meshwire {

class Clock {
 public:
  virtual ~Clock() = default;
  /// Wall-clock milliseconds since the Unix epoch.
  virtual Millis Now() const = 0;
};

class SystemClock final : public Clock {
 public:
  Millis Now() const override {
    using namespace std::chrono;
    return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
  }
};

/// A clock that moves only when told to (tests).
class ManualClock final : public Clock {
 public:
  explicit ManualClock(Millis start) : now_(start) {}
  Millis Now() const override { return now_.load(); }
  void Set(Millis t) { now_.store(t); }
  void Advance(Millis ms) { now_.fetch_add(ms); }

 private:
  std::atomic<Millis> now_;
};

}  // namespace meshwire
