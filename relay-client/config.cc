#include "relay-client/config.h"

#include <fcntl.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string_view>
#include <vector>

#include "schemas/error.h"

namespace meshwire {

namespace fs = std::filesystem;
using nlohmann::json;

EnvLookup ProcessEnv() {
  return [](const char* name) -> std::optional<std::string> {
    const char* v = std::getenv(name);
    if (!v || !*v) return std::nullopt;
    return std::string(v);
  };
}

std::optional<fs::path> UserHomeDir(const EnvLookup& env) {
  if (auto home = env("HOME")) return fs::path(*home);
  // No HOME (a cron job, `env -i`, a service without one): the account's
  // home, as a shell would have set it; not the working directory, which
  // would give every folder the command runs in credentials of its own.
  std::vector<char> buf(16384);
  passwd entry{};
  passwd* found = nullptr;
  if (::getpwuid_r(::geteuid(), &entry, buf.data(), buf.size(), &found) == 0 && found && found->pw_dir &&
      *found->pw_dir) {
    return fs::path(found->pw_dir);
  }
  return std::nullopt;
}

fs::path MeshwireHomeDir(const EnvLookup& env) {
  if (auto home = env("MESHWIRE_HOME")) return *home;
  return UserHomeDir(env).value_or(fs::path(".")) / ".meshwire";
}

std::optional<fs::path> FindMeshJson(const fs::path& cwd) {
  std::error_code ec;
  fs::path dir = fs::absolute(cwd, ec);
  for (;;) {
    fs::path candidate = dir / ".mesh.json";
    if (fs::exists(fs::symlink_status(candidate, ec))) return candidate;
    if (!dir.has_parent_path() || dir.parent_path() == dir) return std::nullopt;
    dir = dir.parent_path();
  }
}

namespace {

/// The text of the file at `path` in `text`: false when there is none (and
/// `error` empty) or it cannot be read (`error`: the OS's reason).
bool ReadText(const fs::path& path, std::string& text, std::string& error) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno != ENOENT && errno != ENOTDIR) error = std::strerror(errno);
    return false;
  }
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n == 0) break;
    if (n < 0) {
      error = std::strerror(errno);  // a directory: "Is a directory"
      ::close(fd);
      return false;
    }
    text.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return true;
}

/// A JSON object from `path`, or an empty object when the file is absent,
/// unreadable or invalid (with a warning for the last two). `unreadable`,
/// when given, takes the reason the file could not be read or is no object
/// instead of the warning. `problem`, when given, takes the sentence of the first warning
/// that leaves the file without a mesh or agent (a file that cannot be read
/// or is no object, a mesh_id or agent_name that is no string) instead.
json ReadObject(const fs::path& path, std::string* unreadable = nullptr, std::string* problem = nullptr) {
  auto warn = [&](const std::string& sentence, bool decisive = true) {
    if (problem && decisive) {
      if (problem->empty()) *problem = sentence;
    } else {
      std::fprintf(stderr, "meshwire: warning: %s; ignoring it.\n", sentence.c_str());
    }
  };
  std::string text, error;
  if (!ReadText(path, text, error)) {
    if (!error.empty() && unreadable) *unreadable = error;
    if (!error.empty() && !unreadable) warn("cannot read " + path.string() + " (" + error + ")");
    return json::object();
  }
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) {
    if (unreadable) {  // said once, by what needs the file (credentials.json: the token)
      *unreadable = kNotJsonObject;
    } else {
      warn(path.string() + " is not a JSON object (in UTF-8)");
    }
    return json::object();
  }
  // The settings meshwire reads from these files are strings: say so rather
  // than fall back silently (a number for mesh_id chose the active mesh).
  for (const char* key : {"url", "token", "user", "mesh_id", "agent_name", "active_mesh", "workspace_name",
                          "harness"}) {
    auto it = j.find(key);
    if (it != j.end() && !it->is_string() && !it->is_null()) {
      const std::string_view name = key;
      warn(path.string() + ": \"" + key + "\" must be a string", name == "mesh_id" || name == "agent_name");
    }
  }
  return j;
}

/// `path` (config.json) as it is, to change some of its keys and write it
/// back: an empty object when there is none. A file that cannot be read or
/// is not a JSON object is an Error 2, and stays as it is: writing it back
/// would drop what it holds (agent_names).
json ReadObjectToUpdate(const fs::path& path) {
  std::string text, error;
  if (!ReadText(path, text, error)) {
    if (error.empty()) return json::object();
    throw Error(2, "config", "Cannot read " + path.string() + " (" + error + "), so it was left as it is: fix its "
                             "permissions (it must be a file you can read and write), then run the command again.");
  }
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) {
    throw Error(2, "config", path.string() + " is not a JSON object, so it was left as it is (it may hold your "
                             "agent_names): fix it, or move it aside, then run the command again.");
  }
  return j;
}

/// Why a .mesh.json (a JSON object, its types checked) cannot say its mesh
/// (no mesh_id, or an empty one) or its agent (an empty agent_name), in
/// `c`'s mesh_json_problem; nothing when it can.
void CheckMeshJsonFields(const json& j, const fs::path& path, ClientConfig& c) {
  std::string mesh_problem;
  auto mesh = j.find("mesh_id");
  if (mesh == j.end() || mesh->is_null()) {
    mesh_problem = path.string() + " names no mesh (\"mesh_id\" is missing)";
  } else if (mesh->get<std::string>().empty()) {
    mesh_problem = path.string() + ": \"mesh_id\" is empty";
  }
  std::string agent_problem;
  auto agent = j.find("agent_name");
  if (agent != j.end() && agent->is_string() && agent->get<std::string>().empty()) {
    agent_problem = path.string() + ": \"agent_name\" is empty";
  }
  c.mesh_json_problem = mesh_problem.empty() ? agent_problem : mesh_problem;
  c.mesh_json_names_no_mesh = !mesh_problem.empty() && agent_problem.empty();
}

std::optional<std::string> Field(const json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_string() || it->get<std::string>().empty()) return std::nullopt;
  return it->get<std::string>();
}

/// config.json's agent_names of one mesh; entries that are not strings are skipped.
std::map<std::string, std::string> OwnNames(const json& config, const std::string& mesh_id) {
  std::map<std::string, std::string> out;
  auto all = config.find("agent_names");
  if (mesh_id.empty() || all == config.end() || !all->is_object()) return out;
  auto mesh = all->find(mesh_id);
  if (mesh == all->end() || !mesh->is_object()) return out;
  for (const auto& [from, to] : mesh->items()) {
    if (to.is_string() && !to.get<std::string>().empty()) out.emplace(from, to.get<std::string>());
  }
  return out;
}

/// The first source that has a value.
Setting Pick(std::initializer_list<std::pair<std::optional<std::string>, const char*>> sources,
             std::string fallback = "") {
  for (const auto& [value, source] : sources) {
    if (value) return Setting{*value, source};
  }
  const char* source = fallback.empty() ? "" : "default";
  return Setting{std::move(fallback), source};
}

/// A relay URL as the configuration compares it: no trailing '/', and the
/// scheme in lower case (RFC 3986: HTTP://host is http://host).
void NormalizeUrl(std::string& url) {
  while (url.size() > 1 && url.back() == '/') url.pop_back();
  if (const auto colon = url.find("://"); colon != std::string::npos && colon <= 5) {
    std::string scheme = url.substr(0, colon);
    std::transform(scheme.begin(), scheme.end(), scheme.begin(), [](unsigned char ch) { return std::tolower(ch); });
    if (scheme == "http" || scheme == "https") url.replace(0, colon, scheme);
  }
}

}  // namespace

ClientConfig ResolveConfig(const ConfigFlags& flags, const EnvLookup& env, const fs::path& cwd) {
  ClientConfig c;
  c.home = MeshwireHomeDir(env);
  json credentials = ReadObject(c.home / "credentials.json", &c.credentials_unreadable);
  json config = ReadObject(c.home / "config.json");
  json workspace = json::object();
  if ((c.mesh_json = FindMeshJson(cwd))) {
    std::error_code ec;
    if (!fs::is_regular_file(*c.mesh_json, ec)) {  // never opened: a FIFO would block
      c.mesh_json_problem = c.mesh_json->string() + " is not a file";
    } else {
      workspace = ReadObject(*c.mesh_json, nullptr, &c.mesh_json_problem);
      if (c.mesh_json_problem.empty()) CheckMeshJsonFields(workspace, *c.mesh_json, c);
    }
  }

  c.url = Pick({{flags.url, "flag"},
                {env("MESHWIRE_URL"), "env"},
                {Field(credentials, "url"), "credentials.json"},
                {Field(config, "url"), "config.json"}},
               kDefaultUrl);
  NormalizeUrl(c.url.value);
  c.token = Pick({{flags.token, "flag"},
                  {env("MESHWIRE_TOKEN"), "env"},
                  {Field(credentials, "token"), "credentials.json"}});
  c.mesh_id = Pick({{flags.mesh_id, "flag"},
                    {env("MESHWIRE_MESH_ID"), "env"},
                    {Field(workspace, "mesh_id"), ".mesh.json"},
                    {flags.default_mesh_id, "default flag"},
                    {Field(config, "active_mesh"), "config.json"}});
  c.agent_name = Pick({{flags.agent_name, "flag"},
                       {env("MESHWIRE_AGENT_NAME"), "env"},
                       {Field(workspace, "agent_name"), ".mesh.json"},
                       {flags.default_agent_name, "default flag"}});
  c.own_agent_names = OwnNames(config, c.mesh_id.value);
  if (c.agent_name.source != "flag" && !c.agent_name.empty()) {
    std::string own = OwnAgentName(c, c.agent_name.value);
    if (own != c.agent_name.value) {
      c.workspace_agent_name = c.agent_name.value;
      c.agent_name = Setting{std::move(own), "config.json"};
    }
  }
  c.user = Field(credentials, "user").value_or("");
  if (auto token = Field(credentials, "token"), url = Field(credentials, "url");
      token && url && Field(credentials, "from") == "login") {
    c.saved_login = ClientConfig::SavedLogin{*token, *url};
    NormalizeUrl(c.saved_login->url);
  }
  c.workspace_name = Field(workspace, "workspace_name").value_or("");
  c.harness = Field(workspace, "harness").value_or("");
  return c;
}

fs::path SaveCredentials(const fs::path& home, const std::string& token, const std::string& url,
                         const std::string& user, bool from_login) {
  fs::path path = home / "credentials.json";
  json j = {{"token", token}, {"url", url}, {"user", user}};
  if (from_login) j["from"] = "login";
  WriteFileAtomic(path, j.dump(2) + "\n", 0600);
  return path;
}

std::string OwnAgentName(const ClientConfig& c, const std::string& name) {
  auto it = c.own_agent_names.find(name);
  return it == c.own_agent_names.end() ? name : it->second;
}

void SaveActiveMesh(const fs::path& home, const std::string& mesh_id, const std::string& url) {
  const fs::path path = home / "config.json";
  json j = ReadObjectToUpdate(path);
  j["active_mesh"] = mesh_id;
  j["url"] = url;
  WriteFileAtomic(path, j.dump(2) + "\n", 0600);
}

void SaveOwnAgentName(const fs::path& home, const std::string& mesh_id, const std::string& workspace_name,
                      const std::string& own_name) {
  const fs::path path = home / "config.json";
  json j = ReadObjectToUpdate(path);
  if (!j.contains("agent_names") || !j["agent_names"].is_object()) j["agent_names"] = json::object();
  json& mesh = j["agent_names"][mesh_id];
  if (!mesh.is_object()) mesh = json::object();
  mesh[workspace_name] = own_name;
  WriteFileAtomic(path, j.dump(2) + "\n", 0600);
}

bool ForgetActiveMesh(const fs::path& home, const std::string& mesh_id) {
  const fs::path path = home / "config.json";
  json j = ReadObject(path);
  if (Field(j, "active_mesh") != mesh_id) return false;
  j.erase("active_mesh");
  WriteFileAtomic(path, j.dump(2) + "\n", 0600);
  return true;
}

std::string ForgetActiveMeshOfOtherRelay(const fs::path& home, const std::string& url) {
  const fs::path path = home / "config.json";
  std::string unreadable;
  json j = ReadObject(path, &unreadable);
  const std::string mesh = Field(j, "active_mesh").value_or("");
  std::string chosen_on = Field(j, "url").value_or("");
  while (!chosen_on.empty() && chosen_on.back() == '/') chosen_on.pop_back();
  if (!unreadable.empty() || mesh.empty() || chosen_on.empty() || chosen_on == url) return "";
  j.erase("active_mesh");
  j["url"] = url;
  WriteFileAtomic(path, j.dump(2) + "\n", 0600);
  return mesh;
}

void WriteFileAtomic(const fs::path& path, const std::string& content, int mode) {
  std::error_code ec;
  if (path.has_parent_path() && !fs::exists(path.parent_path(), ec)) {
    fs::create_directories(path.parent_path(), ec);
    if (ec) {
      throw Error(2, "config", "Cannot create the folder " + path.parent_path().string() + ": " + ec.message() + ".");
    }
    ::chmod(path.parent_path().c_str(), 0700);
  }
  fs::path tmp = path;
  tmp += ".tmp" + std::to_string(::getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) {
    throw Error(2, "config", "Cannot write " + path.string() + " (" + std::strerror(errno) +
                                 "): check that you can write to its folder, " + path.parent_path().string() + ".");
  }
  ::fchmod(fd, static_cast<mode_t>(mode));
  const char* p = content.data();
  std::size_t left = content.size();
  // Nothing half-written: any failure leaves the old file as it was.
  auto fail = [&](int error) {
    ::close(fd);
    ::unlink(tmp.c_str());
    throw Error(2, "config", "Cannot write " + path.string() + " (" + std::strerror(error) + ")" +
                                 (error == ENOSPC || error == EDQUOT ? ": free some space on its disk" : "") +
                                 "; it was left as it was. Run the command again once that is fixed.");
  };
  while (left > 0) {
    ssize_t n = ::write(fd, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) fail(n < 0 ? errno : EIO);
    p += n;
    left -= static_cast<std::size_t>(n);
  }
  if (::fsync(fd) != 0) fail(errno);
  if (::close(fd) != 0) {
    const int error = errno;
    ::unlink(tmp.c_str());
    throw Error(2, "config", "Cannot write " + path.string() + " (" + std::strerror(error) +
                                 "); it was left as it was. Run the command again once that is fixed.");
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const std::string why = std::strerror(errno);
    ::unlink(tmp.c_str());
    throw Error(2, "config", "Cannot replace " + path.string() + " (" + why + "): it must be a file (not a folder) "
                                 "in a folder you can write to; move it aside, then run the command again.");
  }
}

}  // namespace meshwire
