// The kernel probe behind hang-up detection, on real loopback sockets: an
// open connection to the port is listed, one whose client closed is not, and
// connections of other ports never are; IPv4 and IPv6 listeners alike.
#include "server/tcp_probe.h"

#include <arpa/inet.h>
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>

namespace meshwire {

namespace {

/// A loopback listener of `family`, a client connected to it from
/// `client_addr`, and the accepted socket.
struct Connection {
  int family;
  int listener = -1, client = -1, server = -1;
  std::uint16_t port = 0, client_port = 0;
  std::string client_addr;

  explicit Connection(int listen_family = AF_INET, const std::string& from = "127.0.0.1")
      : family(listen_family), client_addr(from) {
    listener = ::socket(family, SOCK_STREAM, 0);
    REQUIRE(listener >= 0);
    sockaddr_storage addr{};
    socklen_t len;
    if (family == AF_INET) {
      auto* a = reinterpret_cast<sockaddr_in*>(&addr);
      a->sin_family = AF_INET;
      a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      len = sizeof(*a);
    } else {
      int v6only = 0;  // dual stack: IPv4 clients arrive IPv4-mapped
      ::setsockopt(listener, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof(v6only));
      auto* a = reinterpret_cast<sockaddr_in6*>(&addr);
      a->sin6_family = AF_INET6;
      a->sin6_addr = in6addr_any;
      len = sizeof(*a);
    }
    REQUIRE(::bind(listener, reinterpret_cast<sockaddr*>(&addr), len) == 0);
    REQUIRE(::listen(listener, 4) == 0);
    REQUIRE(::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
    port = ntohs(family == AF_INET ? reinterpret_cast<sockaddr_in*>(&addr)->sin_port
                                   : reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port);

    sockaddr_storage to{};
    socklen_t to_len;
    if (from.find(':') == std::string::npos) {
      auto* a = reinterpret_cast<sockaddr_in*>(&to);
      a->sin_family = AF_INET;
      a->sin_port = htons(port);
      REQUIRE(::inet_pton(AF_INET, from.c_str(), &a->sin_addr) == 1);
      to_len = sizeof(*a);
    } else {
      auto* a = reinterpret_cast<sockaddr_in6*>(&to);
      a->sin6_family = AF_INET6;
      a->sin6_port = htons(port);
      REQUIRE(::inet_pton(AF_INET6, from.c_str(), &a->sin6_addr) == 1);
      to_len = sizeof(*a);
    }
    client = ::socket(to.ss_family, SOCK_STREAM, 0);
    REQUIRE(::connect(client, reinterpret_cast<sockaddr*>(&to), to_len) == 0);
    server = ::accept(listener, nullptr, nullptr);
    REQUIRE(server >= 0);
    REQUIRE(::getsockname(client, reinterpret_cast<sockaddr*>(&to), &to_len) == 0);
    client_port = ntohs(to.ss_family == AF_INET ? reinterpret_cast<sockaddr_in*>(&to)->sin_port
                                                : reinterpret_cast<sockaddr_in6*>(&to)->sin6_port);
  }
  ~Connection() {
    for (int fd : {listener, client, server}) {
      if (fd >= 0) ::close(fd);
    }
  }
  /// The key the relay builds from httplib's text for this client.
  TcpPeer Key() const { return *MakeTcpPeer(client_addr, client_port, port); }
  TcpPeerSet Probe() const {
    auto peers = EstablishedTcpPeers(family, port);
    REQUIRE_MESSAGE(peers, "NETLINK_SOCK_DIAG refused: hang-up detection cannot work here");
    return *peers;
  }
  /// Closes the client, then probes until its connection leaves the list
  /// (the kernel may take the FIN a moment later on a busy machine).
  bool CloseClientAndSeeItGo() {
    ::close(client);
    client = -1;
    for (int i = 0; i < 1000; ++i) {
      if (Probe().count(Key()) == 0) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return false;
  }
};

bool HasIpv6Loopback() {
  int fd = ::socket(AF_INET6, SOCK_STREAM, 0);
  if (fd < 0) return false;
  sockaddr_in6 a{};
  a.sin6_family = AF_INET6;
  a.sin6_addr = in6addr_loopback;
  bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0;
  ::close(fd);
  return ok;
}

}  // namespace

TEST_CASE("an open connection is listed; after its client closes it is not") {
  Connection c;
  CHECK(c.Probe() == TcpPeerSet{c.Key()});
  CHECK(c.CloseClientAndSeeItGo());
}

TEST_CASE("connections to other ports are not listed") {
  Connection mine, other;
  CHECK(mine.Probe() == TcpPeerSet{mine.Key()});
  CHECK(other.Probe() == TcpPeerSet{other.Key()});
}

TEST_CASE(
    "an IPv6 dual-stack listener: IPv4 clients arrive IPv4-mapped, IPv6 clients as they are") {
  if (!HasIpv6Loopback()) {
    MESSAGE("no IPv6 loopback on this machine: skipped");
    return;
  }
  Connection v4(AF_INET6, "127.0.0.1");
  CHECK(v4.Probe() == TcpPeerSet{v4.Key()});
  // httplib writes a mapped client as "::ffff:127.0.0.1": the same key.
  CHECK(*MakeTcpPeer("::ffff:127.0.0.1", v4.client_port, v4.port) == v4.Key());
  CHECK(v4.CloseClientAndSeeItGo());

  Connection v6(AF_INET6, "::1");
  CHECK(v6.Probe() == TcpPeerSet{v6.Key()});
  CHECK(v6.CloseClientAndSeeItGo());
}

TEST_CASE("an unknown address family is refused, not guessed") {
  CHECK_FALSE(EstablishedTcpPeers(AF_UNIX, 7420));
}

}  // namespace meshwire
