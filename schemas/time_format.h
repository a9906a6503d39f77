#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "schemas/model.h"

namespace meshwire {

/// RFC 3339 UTC with milliseconds: "2026-11-24T09:41:23.123Z".
std::string FormatRfc3339(Millis ms);

/// Inverse of FormatRfc3339 (accepts only that exact form); nullopt if malformed.
std::optional<Millis> ParseRfc3339(std::string_view text);

}  // namespace meshwire
