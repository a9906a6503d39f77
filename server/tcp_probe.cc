#include "server/tcp_probe.h"

#include <arpa/inet.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

namespace meshwire {

namespace {

constexpr unsigned kTcpEstablished = 1;  // the kernel's TCP_ESTABLISHED state

/// Closes a file descriptor when it leaves scope.
struct Fd {
  int fd;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

std::array<std::uint8_t, 16> Ipv4Mapped(const void* four_bytes) {
  std::array<std::uint8_t, 16> a{};
  a[10] = 0xff;
  a[11] = 0xff;
  std::memcpy(a.data() + 12, four_bytes, 4);
  return a;
}

/// Dumps one address family's established TCP sockets on `local_port` into
/// `out`. False when the kernel refuses or the answer is malformed.
bool Dump(int fd, std::uint8_t family, std::uint16_t local_port, TcpPeerSet& out) {
  constexpr std::uint32_t kSeq = 1;
  struct {
    nlmsghdr header;
    inet_diag_req_v2 body;
  } request{};
  request.header.nlmsg_len = sizeof(request);
  request.header.nlmsg_type = SOCK_DIAG_BY_FAMILY;
  request.header.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  request.header.nlmsg_seq = kSeq;
  request.body.sdiag_family = family;
  request.body.sdiag_protocol = IPPROTO_TCP;
  request.body.idiag_states = 1u << kTcpEstablished;
  request.body.id.idiag_sport = htons(local_port);  // the kernel skips other ports

  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  ssize_t sent;
  do {
    sent = ::sendto(fd, &request, sizeof(request), 0, reinterpret_cast<sockaddr*>(&kernel),
                    sizeof(kernel));
  } while (sent < 0 && errno == EINTR);
  if (sent != static_cast<ssize_t>(sizeof(request))) return false;

  // On the heap, not thread_local: the executable's TLS is copied into every
  // one of the relay's thousands of worker threads.
  std::vector<std::uint32_t> buffer(16 * 1024);  // 64 KiB, aligned for nlmsghdr
  for (;;) {
    ssize_t n = ::recv(fd, buffer.data(), buffer.size() * sizeof(buffer[0]), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    int len = static_cast<int>(n);
    for (auto* h = reinterpret_cast<nlmsghdr*>(buffer.data()); NLMSG_OK(h, len);
         h = NLMSG_NEXT(h, len)) {
      if (h->nlmsg_seq != kSeq) continue;
      if (h->nlmsg_type == NLMSG_DONE) return true;
      if (h->nlmsg_type == NLMSG_ERROR) return false;
      if (h->nlmsg_type != SOCK_DIAG_BY_FAMILY ||
          h->nlmsg_len < NLMSG_LENGTH(sizeof(inet_diag_msg))) {
        continue;
      }
      const auto* m = static_cast<const inet_diag_msg*>(NLMSG_DATA(h));
      if (ntohs(m->id.idiag_sport) != local_port) continue;  // older kernels may not filter
      TcpPeer peer;
      peer.port = ntohs(m->id.idiag_dport);
      peer.local_port = local_port;
      if (m->idiag_family == AF_INET) {
        peer.addr = Ipv4Mapped(m->id.idiag_dst);
      } else {
        std::memcpy(peer.addr.data(), m->id.idiag_dst, 16);
      }
      out.insert(peer);
    }
  }
}

}  // namespace

std::size_t TcpPeerHash::operator()(const TcpPeer& p) const noexcept {
  std::size_t h = (std::size_t{p.port} << 16) ^ p.local_port;
  for (std::uint8_t b : p.addr) h = h * 131 + b;
  return h;
}

std::optional<TcpPeer> MakeTcpPeer(const std::string& remote_addr, int remote_port,
                                   int local_port) {
  if (remote_port <= 0 || remote_port > 65535 || local_port <= 0 || local_port > 65535) {
    return std::nullopt;
  }
  TcpPeer peer;
  peer.port = static_cast<std::uint16_t>(remote_port);
  peer.local_port = static_cast<std::uint16_t>(local_port);
  in_addr v4{};
  if (::inet_pton(AF_INET, remote_addr.c_str(), &v4) == 1) {
    peer.addr = Ipv4Mapped(&v4);
    return peer;
  }
  if (::inet_pton(AF_INET6, remote_addr.c_str(), peer.addr.data()) == 1) return peer;
  return std::nullopt;
}

std::optional<TcpPeerSet> EstablishedTcpPeers(int family, std::uint16_t local_port) {
  if (family != AF_INET && family != AF_INET6) return std::nullopt;
  Fd fd{::socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG)};
  if (fd.fd < 0) return std::nullopt;
  timeval timeout{1, 0};  // the kernel answers at once; never hang the caller
  ::setsockopt(fd.fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  TcpPeerSet peers;
  if (!Dump(fd.fd, static_cast<std::uint8_t>(family), local_port, peers)) return std::nullopt;
  return peers;
}

}  // namespace meshwire
