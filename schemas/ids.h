// Random identifiers and token hashing.
#pragma once

#include <string>
#include <string_view>

namespace meshwire {

/// `n` characters of [0-9A-Za-z] from the OS's CSPRNG.
std::string RandomBase62(std::size_t n);

/// Lower-case hex SHA-256 of `data` (tokens are stored only as this).
std::string Sha256Hex(std::string_view data);

/// A new API token: "mw_" and 40 base62 characters.
std::string NewTokenSecret();

/// True when `name` is 1-64 of A-Z a-z 0-9 . _ - (agent and user names).
bool IsValidName(std::string_view name);
/// True when no new agent may take `name`: "all" in any case (the broadcast
/// address), "." and ".." (path segments URL libraries remove).
bool IsReservedAgentName(std::string_view name);
/// An invalid name as a sentence may echo it: its first 80 bytes, each
/// outside printable ASCII as '?' (a NUL would cut the sentence short).
std::string ShownName(std::string_view name);
/// A value the caller gave, as an error's sentence repeats it: at most 80
/// bytes (cut where a character starts) and "..." after, so that an id of a
/// megabyte is not sent back whole.
std::string EchoedValue(std::string_view value);

}  // namespace meshwire
