// A `meshwire server` process for end-to-end tests: a free loopback port,
// storage in the given folder, killed when the object dies.
#pragma once

#include <algorithm>
#include <doctest/doctest.h>

#include <regex>
#include <string>
#include <vector>

#include "tests/support/process.h"
#include "tests/support/temp_dir.h"

namespace meshwire::testing {

inline const std::string kBinary = MESHWIRE_BINARY;

struct RelayProcess {
  ChildProcess process;
  int port = 0;

  /// `env`: more NAME=VALUE for the relay's environment.
  explicit RelayProcess(const TempDir& home, const std::vector<std::string>& extra = {},
                        const std::vector<std::string>& env = {})
      : process(Args(home, extra), Env(home, env)) {
    auto line = process.WaitForStderr("listening on http");
    REQUIRE_MESSAGE(line, "relay did not start: " << process.stderr_seen());
    std::smatch m;
    std::regex re(R"(https?://127\.0\.0\.1:(\d+))");
    REQUIRE(std::regex_search(*line, m, re));
    port = std::stoi(m[1]);
  }

  std::string url() const { return "http://127.0.0.1:" + std::to_string(port); }

  static std::vector<std::string> Env(const TempDir& home, std::vector<std::string> env) {
    env.insert(env.begin(), "MESHWIRE_HOME=" + home.path().string());
    return env;
  }

  static std::vector<std::string> Args(const TempDir& home, const std::vector<std::string>& extra) {
    // A --storage in `extra` (PostgreSQL) replaces the SQLite file in `home`.
    const bool own_storage = std::find(extra.begin(), extra.end(), "--storage") != extra.end();
    std::vector<std::string> a = {kBinary, "server", "--listen", "127.0.0.1:0", "--threads", "64"};
    if (!own_storage) a.insert(a.end(), {"--storage", "sqlite:" + home / "relay.db"});
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  }
};

/// `meshwire admin token create --user USER` on the relay's storage; checks
/// that stdout is the token alone.
inline std::string AdminToken(const TempDir& home, const std::string& user) {
  auto [code, out] = RunCommand({kBinary, "admin", "token", "create", "--user", user, "--storage",
                                 "sqlite:" + home / "relay.db"});
  REQUIRE(code == 0);
  // The token alone on stdout (logs and hints go to stderr), so that
  // `export MESHWIRE_TOKEN=$(meshwire admin token create ...)` works.
  REQUIRE(std::regex_match(out, std::regex("mw_[0-9A-Za-z]{40}\\n")));
  return out.substr(0, out.size() - 1);
}

}  // namespace meshwire::testing
