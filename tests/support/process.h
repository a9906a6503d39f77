// Runs the real `meshwire` binary as a child process for end-to-end tests:
// arguments and environment in, stderr readable line by line, killed (and
// reaped) when the object dies.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace meshwire::testing {

class ChildProcess {
 public:
  /// Starts `argv[0]` with `argv` and the current environment plus `env`
  /// ("KEY=VALUE"). Its stdout and stderr are captured.
  ChildProcess(const std::vector<std::string>& argv, const std::vector<std::string>& env = {},
               const std::string& cwd = "") {
    int out[2], err[2];
    if (pipe(out) != 0 || pipe(err) != 0) throw std::runtime_error("pipe failed");
    pid_ = fork();
    if (pid_ < 0) throw std::runtime_error("fork failed");
    if (pid_ == 0) {
      dup2(out[1], 1);
      dup2(err[1], 2);
      close(out[0]);
      close(err[0]);
      for (const auto& e : env) putenv(strdup(e.c_str()));
      if (!cwd.empty() && chdir(cwd.c_str()) != 0) _exit(126);
      std::vector<char*> args;
      for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
      args.push_back(nullptr);
      execv(args[0], args.data());
      _exit(127);
    }
    close(out[1]);
    close(err[1]);
    stdout_fd_ = out[0];
    stderr_fd_ = err[0];
  }
  ~ChildProcess() {
    if (pid_ > 0 && !exited_) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    close(stdout_fd_);
    close(stderr_fd_);
  }
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  pid_t pid() const { return pid_; }

  /// Reads stderr until a line contains `needle`; returns that line, or
  /// nullopt after `timeout_ms` or at end of output.
  std::optional<std::string> WaitForStderr(const std::string& needle, int timeout_ms = 10000) {
    return WaitForLine(stderr_fd_, err_buf_, stderr_seen_, needle, timeout_ms);
  }
  /// The same on stdout.
  std::optional<std::string> WaitForStdout(const std::string& needle, int timeout_ms = 10000) {
    return WaitForLine(stdout_fd_, out_buf_, stdout_seen_, needle, timeout_ms);
  }

  /// Sends `sig` and waits up to `timeout_ms` for the exit; returns the exit
  /// status as waitpid gives it, or nullopt if it did not exit in time.
  std::optional<int> Signal(int sig, int timeout_ms = 10000) {
    kill(pid_, sig);
    return Wait(timeout_ms);
  }

  std::optional<int> Wait(int timeout_ms = 10000) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    while (std::chrono::steady_clock::now() < deadline) {
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        exited_ = true;
        return status;
      }
      usleep(5000);
    }
    return std::nullopt;
  }

  /// All of stdout (blocks until the child closes it).
  std::string ReadStdout() {
    std::string out;
    char buf[4096];
    ssize_t n;
    while ((n = read(stdout_fd_, buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
    return out;
  }

  const std::string& stderr_seen() const { return stderr_seen_; }
  const std::string& stdout_seen() const { return stdout_seen_; }

 private:
  static std::optional<std::string> WaitForLine(int fd, std::string& buf, std::string& seen,
                                                const std::string& needle, int timeout_ms) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    for (;;) {
      auto nl = buf.find('\n');
      while (nl != std::string::npos) {
        std::string line = buf.substr(0, nl);
        buf.erase(0, nl + 1);
        seen += line + "\n";
        if (line.find(needle) != std::string::npos) return line;
        nl = buf.find('\n');
      }
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                      deadline - std::chrono::steady_clock::now())
                      .count();
      if (left <= 0) return std::nullopt;
      pollfd p{fd, POLLIN, 0};
      if (poll(&p, 1, static_cast<int>(left)) <= 0) continue;
      char chunk[4096];
      ssize_t n = read(fd, chunk, sizeof chunk);
      if (n <= 0) return std::nullopt;
      buf.append(chunk, static_cast<size_t>(n));
    }
  }

  pid_t pid_ = -1;
  int stdout_fd_ = -1;
  int stderr_fd_ = -1;
  bool exited_ = false;
  std::string err_buf_, out_buf_;
  std::string stderr_seen_, stdout_seen_;
};

/// What a finished command left.
struct CommandResult {
  int code = -1;  // exit code; -1 if it did not exit normally (a crash)
  std::string out, err;
};

/// Runs a command to completion (60 s at most) and returns what it printed.
inline CommandResult Run(const std::vector<std::string>& argv, const std::vector<std::string>& env = {},
                         const std::string& cwd = "") {
  ChildProcess p(argv, env, cwd);
  CommandResult r;
  r.out = p.ReadStdout();
  p.WaitForStderr("\x01never", 0);
  auto status = p.Wait(60000);
  for (;;) {  // the rest of stderr
    auto line = p.WaitForStderr("\x01never", 50);
    if (!line) break;
  }
  r.err = p.stderr_seen();
  r.code = status && WIFEXITED(*status) ? WEXITSTATUS(*status) : -1;
  return r;
}

/// Runs a command to completion; returns {exit code, stdout}.
inline std::pair<int, std::string> RunCommand(const std::vector<std::string>& argv,
                                              const std::vector<std::string>& env = {}) {
  CommandResult r = Run(argv, env);
  return {r.code, r.out};
}

}  // namespace meshwire::testing
