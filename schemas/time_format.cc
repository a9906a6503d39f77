#include "schemas/time_format.h"

#include <cstdint>
#include <cstdio>
#include <ctime>

namespace meshwire {

namespace {

/// The libc way, for years outside 0000-9999 (printed as they are).
std::string FormatWithLibc(std::time_t secs, int frac) {
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, frac);
  return buf;
}

void Digits(char* at, unsigned value, int width) {
  for (int i = width - 1; i >= 0; --i, value /= 10) at[i] = static_cast<char>('0' + value % 10);
}

}  // namespace

std::string FormatRfc3339(Millis ms) {
  // Every message's created_at goes through here on the writer's thread:
  // the civil date from the day count (H. Hinnant's days_from_civil,
  // inverted) instead of gmtime_r (a lock, a time-zone lookup) and snprintf.
  std::int64_t secs = ms / 1000;
  int frac = static_cast<int>(ms % 1000);
  if (frac < 0) {
    frac += 1000;
    secs -= 1;
  }
  std::int64_t days = secs / 86400;
  std::int64_t in_day = secs % 86400;
  if (in_day < 0) {
    in_day += 86400;
    days -= 1;
  }
  const std::int64_t z = days + 719468;  // days since 0000-03-01
  const std::int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const auto doe = static_cast<unsigned>(z - era * 146097);                    // [0, 146096]
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;  // [0, 399]
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);                // [0, 365]
  const unsigned mp = (5 * doy + 2) / 153;                                     // [0, 11], from March
  const unsigned day = doy - (153 * mp + 2) / 5 + 1;
  const unsigned month = mp < 10 ? mp + 3 : mp - 9;
  const std::int64_t year = static_cast<std::int64_t>(yoe) + era * 400 + (month <= 2 ? 1 : 0);
  if (year < 0 || year > 9999) return FormatWithLibc(static_cast<std::time_t>(secs), frac);
  std::string out = "0000-00-00T00:00:00.000Z";
  Digits(&out[0], static_cast<unsigned>(year), 4);
  Digits(&out[5], month, 2);
  Digits(&out[8], day, 2);
  const auto s = static_cast<unsigned>(in_day);
  Digits(&out[11], s / 3600, 2);
  Digits(&out[14], s / 60 % 60, 2);
  Digits(&out[17], s % 60, 2);
  Digits(&out[20], static_cast<unsigned>(frac), 3);
  return out;
}

std::optional<Millis> ParseRfc3339(std::string_view text) {
  if (text.size() != 24) return std::nullopt;
  std::tm tm{};
  int ms = 0;
  std::string s(text);
  char z = 0;
  if (std::sscanf(s.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d.%3d%c", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                  &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &ms, &z) != 8 ||
      z != 'Z') {
    return std::nullopt;
  }
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  return static_cast<Millis>(timegm(&tm)) * 1000 + ms;
}

}  // namespace meshwire
