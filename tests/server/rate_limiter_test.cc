#include <doctest/doctest.h>

#include "server/core/rate_limiter.h"

namespace meshwire {

TEST_CASE("the rate limit is a per-token bucket that refills over a minute") {
  ManualClock clock(0);
  RateLimiter limiter(clock, 60);  // one a second, bursts of 60
  for (int i = 0; i < 60; ++i) CHECK(limiter.Take("t1") == 0);
  CHECK(limiter.Take("t1") == 1);  // empty: retry after a second
  CHECK(limiter.Take("t2") == 0);  // other tokens are not affected
  clock.Advance(1000);
  CHECK(limiter.Take("t1") == 0);
  CHECK(limiter.Take("t1") == 1);
}

TEST_CASE("zero means unlimited") {
  ManualClock clock(0);
  RateLimiter limiter(clock, 0);
  for (int i = 0; i < 10000; ++i) REQUIRE(limiter.Take("t") == 0);
}

TEST_CASE("Retry-After covers the wait for a slow bucket") {
  ManualClock clock(0);
  RateLimiter limiter(clock, 2);  // one every 30 s
  CHECK(limiter.Take("t") == 0);
  CHECK(limiter.Take("t") == 0);
  CHECK(limiter.Take("t") == 30);
}

}  // namespace meshwire
