// A stand-in for a relay that answers every request with the same bytes,
// for tests of what the command line does with answers no relay gives
// (huge, deeply nested); and a way to run a command and learn how much
// memory it took.
#pragma once

#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstring>
#include <functional>
#include <string>
#include <thread>
#include <vector>

namespace meshwire::testing {

/// Listens on a loopback port; to each request (its head read, the body
/// ignored) it writes `head` ("HTTP/1.1 200 OK\r\n...\r\n\r\n"), then
/// `body_chunk` `repeat` times, then closes; a client that goes away ends it.
class FakeHttpServer {
 public:
  FakeHttpServer(std::string head, std::string body_chunk, std::size_t repeat)
      : head_(std::move(head)), chunk_(std::move(body_chunk)), repeat_(repeat) {
    ::signal(SIGPIPE, SIG_IGN);
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a);
    ::listen(fd_, 16);
    socklen_t len = sizeof a;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { Serve(); });
  }
  ~FakeHttpServer() {
    stop_ = true;
    ::shutdown(fd_, SHUT_RDWR);
    ::close(fd_);
    thread_.join();
  }
  FakeHttpServer(const FakeHttpServer&) = delete;
  FakeHttpServer& operator=(const FakeHttpServer&) = delete;

  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  int requests() const { return requests_; }

 private:
  void Serve() {
    while (!stop_) {
      int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) return;
      ++requests_;
      std::string in;
      char buf[4096];
      while (in.find("\r\n\r\n") == std::string::npos) {
        ssize_t n = ::read(c, buf, sizeof buf);
        if (n <= 0) break;
        in.append(buf, static_cast<std::size_t>(n));
      }
      bool ok = WriteAll(c, head_);
      for (std::size_t i = 0; ok && i < repeat_ && !stop_; ++i) ok = WriteAll(c, chunk_);
      ::close(c);
    }
  }
  static bool WriteAll(int fd, const std::string& s) {
    for (std::size_t at = 0; at < s.size();) {
      ssize_t n = ::send(fd, s.data() + at, s.size() - at, MSG_NOSIGNAL);
      if (n <= 0) return false;
      at += static_cast<std::size_t>(n);
    }
    return true;
  }

  std::string head_, chunk_;
  std::size_t repeat_;
  int fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> requests_{0};
  std::thread thread_;
};

/// What a command left, with its peak memory.
struct MeasuredRun {
  int code = -1;
  std::string err;
  long max_rss_kb = 0;
  double seconds = 0;
};

/// Runs `argv` (environment: the current one plus `env`) to completion,
/// stdout discarded, and reports its exit code, stderr and peak resident memory.
inline MeasuredRun RunMeasured(const std::vector<std::string>& argv, const std::vector<std::string>& env = {}) {
  int err[2];
  MeasuredRun r;
  if (::pipe(err) != 0) return r;
  const auto start = std::chrono::steady_clock::now();
  pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(err[1], 2);
    ::close(err[0]);
    std::FILE* null = std::fopen("/dev/null", "w");
    if (null) ::dup2(::fileno(null), 1);
    for (const auto& e : env) ::putenv(::strdup(e.c_str()));
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  ::close(err[1]);
  char buf[4096];
  for (ssize_t n; (n = ::read(err[0], buf, sizeof buf)) > 0;) r.err.append(buf, static_cast<std::size_t>(n));
  ::close(err[0]);
  int status = 0;
  rusage usage{};
  ::wait4(pid, &status, 0, &usage);
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.max_rss_kb = usage.ru_maxrss;
  return r;
}

}  // namespace meshwire::testing
