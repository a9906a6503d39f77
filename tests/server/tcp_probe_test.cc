// The kernel probe behind hang-up detection, on real loopback sockets: an
// open connection to the port is listed, one whose client closed is not, and
// connections of other ports never are.
#include "server/tcp_probe.h"

#include <arpa/inet.h>
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

namespace meshwire {

namespace {

/// A loopback listener, a client connected to it, and the accepted socket.
struct Connection {
  int listener = -1, client = -1, server = -1;
  std::uint16_t port = 0, client_port = 0;

  Connection() {
    listener = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(addr);
    REQUIRE(::bind(listener, reinterpret_cast<sockaddr*>(&addr), len) == 0);
    REQUIRE(::listen(listener, 4) == 0);
    REQUIRE(::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
    port = ntohs(addr.sin_port);
    client = ::socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(::connect(client, reinterpret_cast<sockaddr*>(&addr), len) == 0);
    server = ::accept(listener, nullptr, nullptr);
    REQUIRE(server >= 0);
    REQUIRE(::getsockname(client, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
    client_port = ntohs(addr.sin_port);
  }
  ~Connection() {
    for (int fd : {listener, client, server}) {
      if (fd >= 0) ::close(fd);
    }
  }
  TcpPeer Key() const { return *MakeTcpPeer("127.0.0.1", client_port, port); }
};

}  // namespace

TEST_CASE("an open connection is listed; after its client closes it is not") {
  Connection c;
  auto before = EstablishedTcpPeers(c.port);
  REQUIRE_MESSAGE(before, "NETLINK_SOCK_DIAG refused: hang-up detection cannot work here");
  CHECK(before->count(c.Key()) == 1);
  for (const TcpPeer& p : *before) CHECK(p.local_port == c.port);

  ::close(c.client);
  c.client = -1;
  auto after = EstablishedTcpPeers(c.port);
  REQUIRE(after);
  CHECK(after->count(c.Key()) == 0);
}

TEST_CASE("connections to other ports are not listed") {
  Connection mine, other;
  auto peers = EstablishedTcpPeers(mine.port);
  REQUIRE(peers);
  CHECK(peers->count(mine.Key()) == 1);
  CHECK(peers->count(other.Key()) == 0);
  CHECK(peers->size() == 1);
}

}  // namespace meshwire
