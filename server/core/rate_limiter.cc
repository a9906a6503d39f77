#include "server/core/rate_limiter.h"

#include <algorithm>
#include <cmath>

namespace meshwire {

int RateLimiter::Take(const std::string& key) {
  if (per_minute_ <= 0) return 0;
  const double capacity = per_minute_;
  const double per_ms = capacity / 60000.0;
  Millis now = clock_.Now();
  std::lock_guard lock(mu_);
  auto [it, fresh] = buckets_.try_emplace(key, Bucket{capacity, now});
  Bucket& b = it->second;
  if (!fresh) {
    b.tokens = std::min(capacity, b.tokens + static_cast<double>(std::max<Millis>(0, now - b.at)) * per_ms);
    b.at = now;
  }
  if (b.tokens >= 1.0) {
    b.tokens -= 1.0;
    return 0;
  }
  return std::max(1, static_cast<int>(std::ceil((1.0 - b.tokens) / per_ms / 1000.0)));
}

}  // namespace meshwire
