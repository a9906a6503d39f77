#include "mcp/stdio_transport.h"

#include <istream>
#include <ostream>

namespace meshwire::mcp {

namespace {
constexpr auto kEofGrace = std::chrono::milliseconds(1000);
}  // namespace

void ServeStdio(JsonRpcPeer& peer, std::istream& in, std::ostream& out) {
  // std::cin is tied to std::cout: every read would flush `out` from this
  // thread, outside the sink's lock, while a worker writes an answer to it.
  // Unsynchronized iostreams then send the same answer twice (the SDK saw a
  // second response for one id). Only the sink touches `out`.
  in.tie(nullptr);
  peer.SetSink([&out](const std::string& text) {
    out << text << '\n';
    out.flush();
  });
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    peer.HandleText(line);
  }
  peer.Drain(kEofGrace);
}

}  // namespace meshwire::mcp
