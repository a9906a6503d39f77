// MCP's stdio transport: one JSON-RPC message per line on a pair of streams,
// framed here and dispatched by a JsonRpcPeer.
#pragma once

#include <cstddef>
#include <iosfwd>

#include "mcp/json_rpc.h"

namespace meshwire::mcp {

/// The longest line read whole (a message is at most this long): a longer
/// one is answered with a parse error and never held in memory.
inline constexpr std::size_t kMaxStdioLine = 4 * 1024 * 1024;

/// Reads messages from `in` line by line until end of input, answering on
/// `out`; at the end, requests in flight get a second, then are cancelled.
void ServeStdio(JsonRpcPeer& peer, std::istream& in, std::ostream& out);

}  // namespace meshwire::mcp
