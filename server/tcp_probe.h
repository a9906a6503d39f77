// Which TCP connections to the relay's port are still open, asked of the
// Linux kernel through NETLINK_SOCK_DIAG (what `ss` uses).
//
// Why: cpp-httplib 0.11.4 never hands a request handler its socket, so a
// parked long-poll cannot see its client hang up. The relay instead names
// each parked poll's connection by its addresses (which httplib does give)
// and asks the kernel, once a second, which of them are still established:
// a client that closed leaves its server side in CLOSE_WAIT (or gone after a
// reset), so it is missing from the answer.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <unordered_set>

namespace meshwire {

/// One TCP connection as the relay sees it: the client's address and port,
/// and the relay's own port. IPv4 addresses are stored IPv4-mapped, so a
/// connection compares equal whatever family its socket has.
struct TcpPeer {
  std::array<std::uint8_t, 16> addr{};
  std::uint16_t port = 0;        // the client's port
  std::uint16_t local_port = 0;  // the relay's port

  bool operator==(const TcpPeer&) const = default;
};

struct TcpPeerHash {
  std::size_t operator()(const TcpPeer& p) const noexcept;
};

using TcpPeerSet = std::unordered_set<TcpPeer, TcpPeerHash>;

/// Builds the key of a connection from the numeric address text that
/// httplib puts in Request::remote_addr ("127.0.0.1", "::1",
/// "::ffff:127.0.0.1"). Null when the text is not a numeric address.
std::optional<TcpPeer> MakeTcpPeer(const std::string& remote_addr, int remote_port, int local_port);

/// Every ESTABLISHED TCP connection of address family `family` (AF_INET or
/// AF_INET6: the listener's, as accepted sockets share it) whose local port
/// is `local_port`; the kernel filters on the port. Null when the kernel
/// cannot be asked (no netlink, or a sandbox refusing it): callers then treat
/// every connection as open.
std::optional<TcpPeerSet> EstablishedTcpPeers(int family, std::uint16_t local_port);

}  // namespace meshwire
