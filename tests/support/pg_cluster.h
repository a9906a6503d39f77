// A throwaway PostgreSQL server for tests: initdb in a temp folder and a
// server listening only on a Unix socket in it (no TCP port), started once
// per test process and stopped (and removed) when it ends. The binaries come
// from Debian's postgresql package (/usr/lib/postgresql/<version>/bin); as
// root (CI) they run as the postgres user, which initdb requires.
//
//   PgCluster* pg = PgCluster::Shared();  // nullptr: see PgCluster::Missing()
//   std::string uri = pg->NewDatabase();   // postgresql://meshwire@/t3?host=...
#pragma once

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include "server/storage/pg_conn.h"
#include "tests/support/temp_dir.h"

namespace meshwire::testing {

class PgCluster {
 public:
  /// The server of this test process, started on first use; nullptr when
  /// PostgreSQL's binaries are not installed or it would not start
  /// (Missing() says why).
  static PgCluster* Shared() {
    static std::unique_ptr<PgCluster> cluster = Start();
    return cluster.get();
  }
  static const std::string& Missing() { return Why(); }

  /// A new empty database; returns its URI.
  std::string NewDatabase() {
    const std::string name = "t" + std::to_string(++databases_);
    PgConnection admin(Uri("postgres"));
    admin.Exec(("CREATE DATABASE " + name).c_str());
    return Uri(name);
  }

  /// Restarts the server (fast shutdown, as an operator's restart): clients
  /// lose their connections meanwhile. True once it is back.
  bool Restart() {
    const std::string options = "-k " + dir_.path().string() + " -c listen_addresses= -p 5432";
    return Shell(AsOwner(bin_ + "/pg_ctl -D " + Data() + " -l " + dir_.path().string() + "/server.log -o '" +
                         options + "' -m fast -w -t 60 restart") +
                 " >/dev/null 2>&1") == 0;
  }

  /// Stops the server (fast shutdown) until StartServer.
  bool StopServer() { return Shell(AsOwner(bin_ + "/pg_ctl -D " + Data() + " -m fast -w -t 60 stop") + " >/dev/null 2>&1") == 0; }
  bool StartServer() {
    const std::string options = "-k " + dir_.path().string() + " -c listen_addresses= -p 5432";
    return Shell(AsOwner(bin_ + "/pg_ctl -D " + Data() + " -l " + dir_.path().string() + "/server.log -o '" +
                         options + "' -w -t 60 start") +
                 " >/dev/null 2>&1") == 0;
  }

  std::string Uri(const std::string& database) const {
    return "postgresql://meshwire@/" + database + "?host=" + dir_.path().string() + "&port=5432";
  }

  ~PgCluster() { Shell(AsOwner(bin_ + "/pg_ctl -D " + Data() + " -m immediate -w stop") + " >/dev/null 2>&1"); }
  PgCluster(const PgCluster&) = delete;
  PgCluster& operator=(const PgCluster&) = delete;

 private:
  PgCluster() = default;

  static std::string& Why() {
    static std::string why;
    return why;
  }

  static int Shell(const std::string& command) { return std::system(command.c_str()); }
  /// The end of a log file, for a failure message (the folder goes with the cluster).
  static std::string Tail(const std::string& path) {
    std::ifstream in(path);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    return text.size() > 600 ? text.substr(text.size() - 600) : text;
  }

  std::string Data() const { return dir_.path().string() + "/data"; }
  std::string AsOwner(const std::string& command) const {
    return geteuid() == 0 ? "runuser -u postgres -- " + command : command;
  }

  static std::unique_ptr<PgCluster> Start() {
    std::string bin;
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator("/usr/lib/postgresql", ec)) {
      if (std::filesystem::exists(entry.path() / "bin/initdb")) bin = (entry.path() / "bin").string();
    }
    if (bin.empty()) {
      Why() = "PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb): apt-get install postgresql";
      return nullptr;
    }
    std::unique_ptr<PgCluster> c(new PgCluster());
    c->bin_ = bin;
    if (geteuid() == 0 && Shell("chown postgres " + c->dir_.path().string()) != 0) {
      Why() = "cannot give the test cluster's folder to the postgres user";
      return nullptr;
    }
    const std::string init_log = c->dir_.path().string() + "/initdb.log";
    if (Shell(c->AsOwner(bin + "/initdb -D " + c->Data() + " -U meshwire -A trust") + " >" + init_log +
              " 2>&1") != 0) {
      Why() = "initdb failed: " + Tail(init_log);
      return nullptr;
    }
    // The server writes its own log (as its own user).
    const std::string log = c->dir_.path().string() + "/server.log";
    // Only a Unix socket, in the test's own folder: nothing on TCP.
    const std::string options = "-k " + c->dir_.path().string() + " -c listen_addresses= -p 5432";
    if (Shell(c->AsOwner(bin + "/pg_ctl -D " + c->Data() + " -l " + log + " -o '" + options + "' -w -t 60 start") +
              " >/dev/null 2>&1") != 0) {
      Why() = "the test PostgreSQL server did not start: " + Tail(log);
      return nullptr;
    }
    return c;
  }

  TempDir dir_;
  std::string bin_;
  int databases_ = 0;
};

}  // namespace meshwire::testing
