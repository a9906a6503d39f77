#include <cstdlib>
#include <string>

#include "cli/commands.h"

namespace meshwire::cli {

std::string MeshwireHome() {
  if (const char* home = std::getenv("MESHWIRE_HOME"); home && *home) return home;
  const char* user_home = std::getenv("HOME");
  return std::string(user_home && *user_home ? user_home : ".") + "/.meshwire";
}

}  // namespace meshwire::cli
