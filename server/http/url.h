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

/// "host" of "scheme://host:port/..." (or of "host:port"), lower-cased,
/// without brackets (nor the user information some URLs put before an '@').
std::string HostOf(std::string_view authority_or_url);
/// localhost, ::1, or an IPv4 address in 127.0.0.0/8 (a name that only
/// starts with "127." is anyone's: 127.0.0.1.example.com).
bool IsLoopbackHost(const std::string& host);

}  // namespace meshwire
