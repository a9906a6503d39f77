#include "mcp/stdio_transport.h"

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <istream>
#include <ostream>
#include <string>

namespace meshwire::mcp {

namespace {

/// Reads a line (without its '\n') into `line`, keeping at most `limit`
/// bytes: `too_long` says the rest was dropped. False at the end of input.
bool ReadLine(std::istream& in, std::string& line, std::size_t limit, bool& too_long) {
  line.clear();
  too_long = false;
  std::streambuf* buf = in.rdbuf();
  for (;;) {
    const int c = buf->sbumpc();
    if (c == std::char_traits<char>::eof()) {
      in.setstate(std::ios::eofbit);
      return !line.empty() || too_long;
    }
    if (c == '\n') return true;
    if (line.size() < limit) {
      line.push_back(static_cast<char>(c));
    } else {
      too_long = true;
    }
  }
}
}  // namespace

void ServeStdio(JsonRpcPeer& peer, std::istream& in, std::ostream& out, const std::function<void()>& at_eof) {
  // std::cin is tied to std::cout: every read would flush `out` from this
  // thread, outside the sink's lock, while a worker writes an answer to it.
  // Unsynchronized iostreams then send the same answer twice (the SDK saw a
  // second response for one id). Only the sink touches `out`.
  in.tie(nullptr);
  peer.SetSink([&out](const std::string& text) {
    errno = 0;
    out << text << '\n';
    out.flush();
    if (!out) {
      // Nobody can hear this server: it stops. The client stopped reading
      // (it closed our stdout, or went away while its stdin stays open) as
      // a Unix tool whose reader left does, by SIGPIPE; another failure
      // (a full disk under a redirected stdout) says what it was.
      const int error = errno;
      if (error == EPIPE) {
        std::fprintf(stderr, "meshwire mcp: the client no longer reads standard output; stopping.\n");
        std::signal(SIGPIPE, SIG_DFL);
        std::raise(SIGPIPE);  // returns only where this thread blocks SIGPIPE
      } else {
        std::fprintf(stderr, "meshwire mcp: cannot write to standard output (%s); stopping.\n",
                     error ? std::strerror(error) : "a write failed");
      }
      std::_Exit(1);
    }
  });
  std::string line;
  bool too_long = false;
  while (ReadLine(in, line, kMaxStdioLine, too_long)) {
    if (too_long) {  // never held whole: a line of gigabytes is no reason to run out of memory
      peer.Refuse(RpcError::kParseError, "Parse error: the line is longer than " +
                                             std::to_string(kMaxStdioLine / (1024 * 1024)) + " MiB.");
      continue;
    }
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    peer.HandleText(line);
  }
  if (at_eof) at_eof();
  peer.Drain(kEofGrace);
}

}  // namespace meshwire::mcp
