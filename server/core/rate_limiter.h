// Per-token request budget: a token bucket of `per_minute` requests that
// refills continuously. 0 means unlimited.
#pragma once

#include <mutex>
#include <string>
#include <unordered_map>

#include "server/core/clock.h"

namespace meshwire {

class RateLimiter {
 public:
  RateLimiter(const Clock& clock, int per_minute) : clock_(clock), per_minute_(per_minute) {}

  /// Takes one request from `key`'s bucket. Returns 0 when allowed, else the
  /// whole seconds to wait before the next request would be (Retry-After).
  int Take(const std::string& key);

 private:
  struct Bucket {
    double tokens;
    Millis at;
  };
  const Clock& clock_;
  const int per_minute_;
  std::mutex mu_;
  std::unordered_map<std::string, Bucket> buckets_;  // guarded by mu_
};

}  // namespace meshwire
