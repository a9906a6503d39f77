// Percent-encoding as URLs and HTML forms use it.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "server/http/http_types.h"

namespace meshwire {

/// Decodes %XX escapes (and '+' as a space when `plus_is_space`, as forms
/// send); nullopt on a malformed escape.
std::optional<std::string> PercentDecode(std::string_view text, bool plus_is_space);
/// Encodes everything but unreserved characters (RFC 3986).
std::string PercentEncode(std::string_view text);
/// "a=1&b=two" into pairs (a form body or a query string); nullopt on a
/// malformed escape.
std::optional<HeaderList> ParseQuery(std::string_view text);
/// Pairs into "a=1&b=two", encoded.
std::string QueryString(const HeaderList& pairs);

}  // namespace meshwire
