// meshwire: one executable for the relay, the command line and the MCP server.
// This file only dispatches to a table of subcommands (see commands.h).
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "cli/commands.h"
#include "cli/ui.h"

#ifndef MESHWIRE_VERSION
#define MESHWIRE_VERSION "0.0.0"
#endif

namespace meshwire::cli {
namespace {

int RunHelp(int argc, char** argv);

const Command kCommands[] = {
    {"login", "sign in through the relay's browser page and save credentials", RunLogin},
    {"logout", "forget the saved credentials", RunLogout},
    {"whoami", "show user, relay and token", RunWhoami},
    {"mesh", "create, choose, list, delete and share meshes", RunMesh},
    {"init", "wire this workspace and your platform (--harness) to a mesh", RunInit},
    {"status", "check credentials, mesh, agent and the relay", RunStatus},
    {"send", "send a message to one agent or to all", RunSend},
    {"listen", "print messages as they arrive, until Ctrl+C", RunListen},
    {"wait", "block until a message arrives, print it, exit", RunWait},
    {"agents", "who is in the mesh", RunAgents},
    {"integrate", "print the mesh's integration guide (markdown)", RunIntegrate},
    {"token", "create, list and revoke API tokens", RunToken},
    {"mcp", "the MCP stdio server for desktop assistants (--mesh ID)", RunMcp},
    {"server", "run the relay (embedded SQLite storage by default)", RunServer},
    {"admin", "work on the relay's storage directly (admin token create)", RunAdmin},
    {"help", "show help for meshwire or one of its commands", RunHelp},
};

void PrintUsage(std::FILE* out) {
  std::fprintf(out,
               "meshwire %s: a relay through which AI agents message each other.\n\n"
               "Usage: meshwire <command> [options]\n\nCommands:\n",
               MESHWIRE_VERSION);
  for (const Command& c : kCommands) std::fprintf(out, "  %-10s %s\n", c.name, c.summary);
  std::fprintf(out,
               "\nRun `meshwire help <command>` or `meshwire <command> --help` for its options.\n"
               "Start: `meshwire login`, `meshwire mesh create NAME`, `meshwire init --harness H`.\n"
               "Exit codes: 0 done, 1 the relay answered an error, 2 usage or configuration,\n"
               "3 relay unreachable, 4 timed out (wait, send --wait-ack, login), 130 and 143 wait\n"
               "stopped by SIGINT or SIGTERM (listen stops with 0: stopping is how it ends).\n");
}

const Command* Find(const char* name) {
  for (const Command& c : kCommands) {
    if (std::strcmp(c.name, name) == 0) return &c;
  }
  return nullptr;
}

int RunHelp(int argc, char** argv) {
  // `help --help`, `help help`: help's own help is the general one.
  if (argc < 2 || std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "-h") == 0 ||
      std::strcmp(argv[1], "help") == 0) {
    PrintUsage(stdout);
    return kExitOk;
  }
  const Command* c = Find(argv[1]);
  if (!c || c->run == RunHelp) {
    std::fprintf(stderr, "meshwire: no command \"%s\"; run `meshwire help` for the list.\n", argv[1]);
    return kExitUsage;
  }
  // `help mesh create` is `mesh create --help`: the subcommand's own help.
  std::vector<char*> args(argv + 1, argv + argc);
  char help[] = "--help";
  args.push_back(help);
  args.push_back(nullptr);
  return c->run(static_cast<int>(args.size()) - 1, args.data());
}

std::string& ProgramNameStorage() {
  static std::string name;
  return name;
}

}  // namespace

void SetProgramName(const char* argv0) {
  ProgramNameStorage() = argv0 ? argv0 : "";
}

const std::string& ProgramName() {
  return ProgramNameStorage();
}

}  // namespace meshwire::cli

int main(int argc, char** argv) {
  using namespace meshwire::cli;
  // Logs go to stderr, always: stdout carries what a command prints for
  // scripts (a token, JSON) and, for `meshwire mcp`, the protocol itself.
  spdlog::set_default_logger(spdlog::stderr_color_mt("meshwire"));
  spdlog::set_level(spdlog::level::warn);
  SetProgramName(argv[0]);
  // A standard stream the caller closed (`meshwire wait >&-`) would be the
  // first file opened next, the relay's socket: what is printed would go
  // into the HTTP connection. Each gets /dev/null instead, stdout opened
  // read-only, so printing to it fails, as the caller asked, and says so.
  for (int fd : {STDIN_FILENO, STDOUT_FILENO, STDERR_FILENO}) {
    if (::fcntl(fd, F_GETFD) == -1 && errno == EBADF) {
      const int opened = ::open("/dev/null", fd == STDERR_FILENO ? O_WRONLY : O_RDONLY);
      if (opened != fd && opened >= 0) ::close(opened);
    }
  }
  if (argc < 2) {
    PrintUsage(stderr);
    return kExitUsage;
  }
  std::string first = argv[1];
  if (first == "--version" || first == "-V" || first == "version") {
    // `--json` as every command takes it; anything else after it is a mistake, not ignored.
    const bool json = argc >= 3 && std::string_view(argv[2]) == "--json";
    if (argc > (json ? 3 : 2)) {
      std::fprintf(stderr, "meshwire: %s takes only --json; got \"%s\".\n", argv[1], argv[json ? 3 : 2]);
      return kExitUsage;
    }
    if (json) {
      std::printf("{\"version\":\"%s\"}\n", MESHWIRE_VERSION);
    } else {
      std::printf("%s\n", MESHWIRE_VERSION);
    }
    if (const std::string problem = StdoutProblem(); !problem.empty()) {
      std::fprintf(stderr, "meshwire: %s: what the command printed was lost.\n", problem.c_str());
      return kExitError;
    }
    return kExitOk;
  }
  if (first == "--help" || first == "-h") {
    PrintUsage(stdout);
    return kExitOk;
  }
  const Command* c = Find(argv[1]);
  if (!c) {
    std::fprintf(stderr, "meshwire: unknown command \"%s\"; run `meshwire help` for the list.\n",
                 argv[1]);
    return kExitUsage;
  }
  try {
    const int rc = c->run(argc - 1, argv + 1);
    if (const std::string problem = StdoutProblem(); rc == kExitOk && !problem.empty()) {
      std::fprintf(stderr, "meshwire: %s: what the command printed was lost.\n", problem.c_str());
      return kExitError;
    }
    return rc;
  } catch (const std::exception& e) {  // what a command did not catch: a sentence, never an abort
    return FailUnexpected(e);
  }
}
