// The subcommands of the `meshwire` executable. Each takes the arguments
// after its own name and returns the process exit code (docs/API.md):
// 0 done, 1 the relay answered an error, 2 usage error, 3 relay unreachable,
// 4 timed out.
#pragma once

#include <string>

namespace meshwire::cli {

inline constexpr int kExitOk = 0;
inline constexpr int kExitError = 1;
inline constexpr int kExitUsage = 2;
inline constexpr int kExitUnreachable = 3;
inline constexpr int kExitTimeout = 4;

struct Command {
  const char* name;
  const char* summary;
  int (*run)(int argc, char** argv);  // argv[0] is the command's name
};

/// argv[0] of the process, as the user (or their shell) ran it: main() sets
/// it before any command runs.
void SetProgramName(const char* argv0);
const std::string& ProgramName();

int RunServer(int argc, char** argv);
int RunAdmin(int argc, char** argv);
int RunLogin(int argc, char** argv);
int RunLogout(int argc, char** argv);
int RunWhoami(int argc, char** argv);
int RunMesh(int argc, char** argv);
int RunInit(int argc, char** argv);
int RunStatus(int argc, char** argv);
int RunSend(int argc, char** argv);
int RunListen(int argc, char** argv);
int RunWait(int argc, char** argv);
int RunAgents(int argc, char** argv);
int RunIntegrate(int argc, char** argv);
int RunToken(int argc, char** argv);
int RunMcp(int argc, char** argv);

}  // namespace meshwire::cli
