// MCP's stdio transport: one JSON-RPC message per line on a pair of streams,
// framed here and dispatched by a JsonRpcPeer.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <iosfwd>

#include "mcp/json_rpc.h"

namespace meshwire::mcp {

/// The longest line read whole (a message is at most this long): a longer
/// one is answered with a parse error and never held in memory.
inline constexpr std::size_t kMaxStdioLine = 4 * 1024 * 1024;

/// How long requests in flight at the end of input get to finish.
inline constexpr std::chrono::milliseconds kEofGrace{1000};

/// Reads messages from `in` line by line until end of input, answering on
/// `out`; at the end, requests in flight get kEofGrace, then are cancelled.
/// `at_eof`, when set, runs first thing at the end of input (the process
/// uses it to bound its exit).
void ServeStdio(JsonRpcPeer& peer, std::istream& in, std::ostream& out,
                const std::function<void()>& at_eof = nullptr);

}  // namespace meshwire::mcp
