// A proxy in front of the test PostgreSQL server (PgCluster's Unix socket)
// that can lose one COMMIT's connection on purpose, as a network or a
// crashed pooler would: the next client message holding "COMMIT" (and a
// text of the test's, such as a message's content) either never reaches the
// server, or reaches it and the connection is cut once the server has
// answered it (the client never reads the answer).
//
//   PgProxy proxy(uri);                          // listens in a folder of its own
//   RelayProcess relay(home, {"--storage", proxy.uri()});
//   proxy.CutNext(PgProxy::Cut::kAfterCommit, "the message's content");
//   proxy.CutNext(PgProxy::Cut::kHold, "...");  // held until proxy.Release()
//   PgProxy tcp(uri, PgProxy::Over::kTcp);       // or on 127.0.0.1, a port of its own
#pragma once

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <mutex>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "tests/support/silent_host.h"
#include "tests/support/temp_dir.h"

namespace meshwire::testing {

class PgProxy {
 public:
  enum class Cut { kNone, kBeforeCommit, kAfterCommit, kHold };
  enum class Over { kUnixSocket, kTcp };

  /// `target_uri`: a PgCluster URI (postgresql://user@/db?host=DIR&port=P).
  explicit PgProxy(const std::string& target_uri, Over over = Over::kUnixSocket)
      : target_uri_(target_uri), over_(over) {
    const auto host = target_uri.find("host=");
    const auto amp = target_uri.find('&', host);
    const auto port = target_uri.find("port=");
    if (host == std::string::npos || amp == std::string::npos || port == std::string::npos) {
      throw std::runtime_error("PgProxy needs a URI with host= and port=");
    }
    target_dir_ = target_uri.substr(host + 5, amp - host - 5);
    port_ = target_uri.substr(port + 5);
    listener_ = over == Over::kTcp ? ListenOnLoopback(tcp_port_) : Listen(SocketPath(dir_.path().string()));
    accepter_ = std::thread([this] { AcceptLoop(); });
  }
  ~PgProxy() {
    stopping_ = true;
    ::shutdown(listener_, SHUT_RDWR);
    ::close(listener_);
    accepter_.join();
    std::vector<std::thread> pumps;
    {
      std::lock_guard lock(mu_);
      pumps.swap(pumps_);
    }
    for (auto& t : pumps) t.join();
  }
  PgProxy(const PgProxy&) = delete;
  PgProxy& operator=(const PgProxy&) = delete;

  /// The target URI with the proxy's folder as its host, or (kTcp)
  /// postgresql://user@127.0.0.1:PORT/db.
  std::string uri() const {
    if (over_ == Over::kTcp) {
      const auto at = target_uri_.find("@/");
      const auto query = target_uri_.find('?', at);
      return target_uri_.substr(0, at + 1) + "127.0.0.1:" + std::to_string(tcp_port_) +
             target_uri_.substr(at + 1, query - at - 1);
    }
    std::string u = target_uri_;
    u.replace(u.find(target_dir_), target_dir_.size(), dir_.path().string());
    return u;
  }
  /// Arms the cut of the next COMMIT sent with `needle` in the same write
  /// (of any connection through the proxy).
  void CutNext(Cut cut, std::string needle) {
    std::lock_guard lock(mu_);
    needle_ = std::move(needle);
    cut_ = cut;
  }
  /// How many cuts happened (a held COMMIT counts once held).
  int cuts() const { return cuts_; }
  /// kHold: forwards the held COMMIT, and from then on everything.
  void Release() { released_ = true; }

 private:
  std::string SocketPath(const std::string& dir) const { return dir + "/.s.PGSQL." + port_; }

  static sockaddr_un Address(const std::string& path) {
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    if (path.size() >= sizeof(a.sun_path)) throw std::runtime_error("socket path too long: " + path);
    std::memcpy(a.sun_path, path.c_str(), path.size() + 1);
    return a;
  }
  static int Listen(const std::string& path) {
    const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un a = Address(path);
    if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 || ::listen(fd, 64) != 0) {
      throw std::runtime_error("PgProxy cannot listen on " + path);
    }
    return fd;
  }

  void AcceptLoop() {
    for (;;) {
      const int client = ::accept(listener_, nullptr, nullptr);
      if (client < 0) {
        if (stopping_) return;
        continue;
      }
      const int server = ::socket(AF_UNIX, SOCK_STREAM, 0);
      sockaddr_un a = Address(SocketPath(target_dir_));
      if (server < 0 || ::connect(server, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
        if (server >= 0) ::close(server);
        ::close(client);
        continue;
      }
      std::lock_guard lock(mu_);
      pumps_.emplace_back([this, client, server] { Pump(client, server); });
    }
  }

  static bool WriteAll(int fd, const char* data, std::size_t n) {
    while (n > 0) {
      const ssize_t w = ::send(fd, data, n, MSG_NOSIGNAL);
      if (w <= 0) return false;
      data += w;
      n -= static_cast<std::size_t>(w);
    }
    return true;
  }

  /// Copies both ways until either side closes, the proxy stops, or a cut.
  void Pump(int client, int server) {
    std::vector<char> buf(64 * 1024);
    while (!stopping_) {
      pollfd fds[2] = {{client, POLLIN, 0}, {server, POLLIN, 0}};
      if (::poll(fds, 2, 100) < 0) break;
      if (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) {
        const ssize_t n = ::recv(client, buf.data(), buf.size(), 0);
        if (n <= 0) break;
        const std::string_view chunk(buf.data(), static_cast<std::size_t>(n));
        Cut cut = cut_.load();
        const bool cutting = cut != Cut::kNone && chunk.find(std::string_view("COMMIT\0", 7)) != std::string_view::npos &&  // not BEGIN's READ COMMITTED
                             chunk.find(Needle()) != std::string_view::npos &&
                             cut_.compare_exchange_strong(cut, Cut::kNone);
        if (cutting) ++cuts_;
        if (cutting && cut == Cut::kBeforeCommit) break;  // the server never sees it
        while (cutting && cut == Cut::kHold && !stopping_ && !released_) {  // a database that does not answer
          std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
        if (!WriteAll(server, chunk.data(), chunk.size())) break;
        if (cutting && cut == Cut::kAfterCommit) {
          ::shutdown(client, SHUT_RDWR);  // the client gets no answer...
          AwaitCommitAnswer(server, buf);  // ...once the server has committed
          break;
        }
      }
      if (fds[1].revents & (POLLIN | POLLHUP | POLLERR)) {
        const ssize_t n = ::recv(server, buf.data(), buf.size(), 0);
        if (n <= 0 || !WriteAll(client, buf.data(), static_cast<std::size_t>(n))) break;
      }
    }
    ::close(client);
    ::close(server);
  }

  std::string Needle() {
    std::lock_guard lock(mu_);
    return needle_;
  }

  /// Reads (and drops) the server's answers until the COMMIT's is among them.
  void AwaitCommitAnswer(int server, std::vector<char>& buf) {
    std::string seen;
    pollfd s{server, POLLIN, 0};
    while (!stopping_ && ::poll(&s, 1, 100) >= 0) {
      if (!(s.revents & (POLLIN | POLLHUP | POLLERR))) continue;
      const ssize_t n = ::recv(server, buf.data(), buf.size(), 0);
      if (n <= 0) return;
      seen.append(buf.data(), static_cast<std::size_t>(n));
      if (seen.find("COMMIT") != std::string::npos) return;
      if (seen.size() > 4096) seen.erase(0, seen.size() - 16);
    }
  }

  TempDir dir_;
  std::string target_uri_;
  std::string target_dir_;
  std::string port_;
  Over over_;
  int tcp_port_ = 0;
  int listener_ = -1;
  std::atomic<bool> stopping_{false};
  std::atomic<Cut> cut_{Cut::kNone};
  std::atomic<int> cuts_{0};
  std::atomic<bool> released_{false};  // kHold: let the held COMMIT go
  std::mutex mu_;
  std::string needle_;              // guarded by mu_
  std::vector<std::thread> pumps_;  // guarded by mu_
  std::thread accepter_;
};

}  // namespace meshwire::testing
