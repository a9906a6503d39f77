// A TCP port on 127.0.0.1 whose connections the kernel takes and nobody ever
// answers: a database host that hangs, or a firewall that swallows packets.
//
//   SilentHost host;   // "postgresql://u@127.0.0.1:" + std::to_string(host.port) + "/db"
// ListenOnLoopback is the listening socket itself, for a server of a test's own.
#pragma once

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <stdexcept>

namespace meshwire::testing {

/// A TCP socket listening on 127.0.0.1, on a port of the kernel's choice
/// (stored in `port`); throws when it cannot.
inline int ListenOnLoopback(int& port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(a);
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 || ::listen(fd, 64) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    if (fd >= 0) ::close(fd);
    throw std::runtime_error("cannot listen on 127.0.0.1");
  }
  port = ntohs(a.sin_port);
  return fd;
}

class SilentHost {
 public:
  SilentHost() : fd_(ListenOnLoopback(port)) {}
  ~SilentHost() { ::close(fd_); }
  SilentHost(const SilentHost&) = delete;
  SilentHost& operator=(const SilentHost&) = delete;

  /// Whether a connection came (and waits, never to be answered) within `ms`.
  bool WaitForConnection(int ms) const {
    pollfd p{fd_, POLLIN, 0};
    return ::poll(&p, 1, ms) == 1;
  }

  int port = 0;

 private:
  int fd_ = -1;
};

}  // namespace meshwire::testing
