// A raw loopback HTTP connection for end-to-end tests: the test writes
// exactly the bytes it wants (hostile requests, trickles, pipelining) and
// reads what the relay sends back, bounded in time.
#pragma once

#include <arpa/inet.h>
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <string>

namespace meshwire::testing {

class RawClient {
 public:
  /// `receive_buffer`: SO_RCVBUF in bytes, set before connecting (a client
  /// that reads slowly: what it does not read soon stops the relay's writes).
  explicit RawClient(int port, int receive_buffer = 0) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    if (receive_buffer > 0) ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &receive_buffer, sizeof receive_buffer);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<std::uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
  }
  ~RawClient() { Close(); }
  RawClient(const RawClient&) = delete;
  RawClient& operator=(const RawClient&) = delete;

  void Close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  /// Closes with a reset (SO_LINGER 0): what the relay still writes fails.
  void Reset() {
    if (fd_ < 0) return;
    linger l{1, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
    Close();
  }
  /// Sends all of `bytes`; false when the relay closed the connection meanwhile.
  bool Send(const std::string& bytes) {
    std::size_t sent = 0;
    while (sent < bytes.size()) {
      ssize_t n = ::send(fd_, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) return false;
      sent += static_cast<std::size_t>(n);
    }
    return true;
  }
  /// Reads one HTTP answer (headers and Content-Length bytes), or what came
  /// before the relay closed the connection or `timeout` passed; returns it
  /// and forgets it.
  std::string ReadAnswer(std::chrono::milliseconds timeout = std::chrono::milliseconds(5000)) {
    ReadWhile(timeout, [this] { return !HasWholeAnswer(); });
    std::string out;
    out.swap(in_);
    return out;
  }
  /// Reads until `needle` has arrived (true), the relay closed, or `timeout`.
  bool WaitFor(const std::string& needle, std::chrono::milliseconds timeout = std::chrono::milliseconds(5000)) {
    ReadWhile(timeout, [&] { return in_.find(needle) == std::string::npos; });
    return in_.find(needle) != std::string::npos;
  }
  /// True when the relay has closed its side (within `timeout`).
  bool ClosedByRelay(std::chrono::milliseconds timeout) {
    ReadWhile(timeout, [] { return true; });
    return closed_;
  }
  /// Everything received and not yet taken by ReadAnswer.
  const std::string& text() const { return in_; }
  std::size_t Count(const std::string& needle) const {
    std::size_t n = 0;
    for (auto at = in_.find(needle); at != std::string::npos; at = in_.find(needle, at + 1)) ++n;
    return n;
  }
  int fd() const { return fd_; }

 private:
  bool HasWholeAnswer() const {
    auto head_end = in_.find("\r\n\r\n");
    if (head_end == std::string::npos) return false;
    auto cl = in_.find("Content-Length: ");
    if (cl == std::string::npos || cl > head_end) return false;
    return in_.size() >= head_end + 4 + std::strtoul(in_.c_str() + cl + 16, nullptr, 10);
  }
  /// Reads while `more()` and the connection is open, until `timeout`.
  template <class More>
  void ReadWhile(std::chrono::milliseconds timeout, More more) {
    auto until = std::chrono::steady_clock::now() + timeout;
    while (!closed_ && more() && std::chrono::steady_clock::now() < until) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      char buf[8192];
      ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) {
        closed_ = true;
        break;
      }
      in_.append(buf, static_cast<std::size_t>(n));
    }
  }

  int fd_ = -1;
  std::string in_;
  bool closed_ = false;
};

}  // namespace meshwire::testing
