// Configuration precedence: flag > environment > .mesh.json (found upwards)
// > ~/.meshwire (credentials.json, config.json) > default.
#include <doctest/doctest.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>

#include "relay-client/config.h"
#include "tests/support/temp_dir.h"

namespace meshwire::testing {

namespace {

namespace fs = std::filesystem;

void Write(const fs::path& p, const std::string& text) {
  fs::create_directories(p.parent_path());
  std::ofstream(p) << text;
}

struct Files {
  TempDir dir;
  fs::path home = dir.path() / "mwhome";
  fs::path workspace = dir.path() / "repo";
  fs::path deep = dir.path() / "repo/src/lib";
  std::map<std::string, std::string> env_vars = {{"MESHWIRE_HOME", home.string()}};

  Files() {
    fs::create_directories(deep);
    Write(home / "credentials.json", R"({"token":"mw_creds","url":"http://creds:1","user":"alice"})");
    Write(home / "config.json", R"({"active_mesh":"meshFromConf","url":"http://conf:2"})");
    Write(workspace / ".mesh.json",
          R"({"mesh_id":"meshFromFile","agent_name":"file-agent","workspace_name":"repo","harness":"claude"})");
  }
  EnvLookup Env() const {
    return [this](const char* name) -> std::optional<std::string> {
      auto it = env_vars.find(name);
      if (it == env_vars.end()) return std::nullopt;
      return it->second;
    };
  }
};

}  // namespace

TEST_CASE("files only: .mesh.json found from a subfolder, then ~/.meshwire") {
  Files f;
  ClientConfig c = ResolveConfig({}, f.Env(), f.deep);
  CHECK(c.mesh_json == f.workspace / ".mesh.json");
  CHECK(c.mesh_id.value == "meshFromFile");
  CHECK(c.mesh_id.source == ".mesh.json");
  CHECK(c.agent_name.value == "file-agent");
  CHECK(c.token.value == "mw_creds");
  CHECK(c.token.source == "credentials.json");
  CHECK(c.url.value == "http://creds:1");
  CHECK(c.user == "alice");
  CHECK(c.workspace_name == "repo");
  CHECK(c.harness == "claude");
}

TEST_CASE("environment beats files") {
  Files f;
  f.env_vars["MESHWIRE_TOKEN"] = "mw_env";
  f.env_vars["MESHWIRE_URL"] = "http://env:3/";
  f.env_vars["MESHWIRE_MESH_ID"] = "meshFromEnv0";
  f.env_vars["MESHWIRE_AGENT_NAME"] = "env-agent";
  ClientConfig c = ResolveConfig({}, f.Env(), f.deep);
  CHECK(c.token.value == "mw_env");
  CHECK(c.token.source == "env");
  CHECK(c.url.value == "http://env:3");  // trailing slash dropped
  CHECK(c.mesh_id.value == "meshFromEnv0");
  CHECK(c.agent_name.value == "env-agent");
}

TEST_CASE("flags beat everything") {
  Files f;
  f.env_vars["MESHWIRE_TOKEN"] = "mw_env";
  f.env_vars["MESHWIRE_MESH_ID"] = "meshFromEnv0";
  ConfigFlags flags{"http://flag:4", "mw_flag", "meshFromFlag", "flag-agent", {}, {}};
  ClientConfig c = ResolveConfig(flags, f.Env(), f.deep);
  CHECK(c.url.value == "http://flag:4");
  CHECK(c.token.value == "mw_flag");
  CHECK(c.mesh_id.value == "meshFromFlag");
  CHECK(c.agent_name.value == "flag-agent");
  CHECK(c.agent_name.source == "flag");
}

TEST_CASE("without .mesh.json the active mesh of config.json is used") {
  Files f;
  TempDir elsewhere;
  ClientConfig c = ResolveConfig({}, f.Env(), elsewhere.path());
  CHECK_FALSE(c.mesh_json);
  CHECK(c.mesh_id.value == "meshFromConf");
  CHECK(c.mesh_id.source == "config.json");
  CHECK(c.agent_name.empty());
}

TEST_CASE("--default-mesh and --default-name rank below .mesh.json and above config.json") {
  Files f;
  ConfigFlags flags;
  flags.default_mesh_id = "meshDefault1";
  flags.default_agent_name = "default-agent";
  // In a workspace: its .mesh.json wins (a user-wide entry follows the workspace).
  ClientConfig in_workspace = ResolveConfig(flags, f.Env(), f.deep);
  CHECK(in_workspace.mesh_id.value == "meshFromFile");
  CHECK(in_workspace.agent_name.value == "file-agent");
  // Elsewhere: the defaults, not config.json's active mesh.
  TempDir elsewhere;
  ClientConfig outside = ResolveConfig(flags, f.Env(), elsewhere.path());
  CHECK(outside.mesh_id.value == "meshDefault1");
  CHECK(outside.mesh_id.source == "default flag");
  CHECK(outside.agent_name.value == "default-agent");
  // The environment still beats the workspace.
  f.env_vars["MESHWIRE_MESH_ID"] = "meshFromEnv0";
  CHECK(ResolveConfig(flags, f.Env(), f.deep).mesh_id.value == "meshFromEnv0");
}

TEST_CASE("config.json's agent_names: this user's own name where the workspace names a teammate's agent") {
  Files f;
  Write(f.home / "config.json",
        R"({"active_mesh":"meshFromConf","agent_names":{"meshFromFile":{"file-agent":"file-agent-bob",)"
        R"("env-agent":"env-agent-bob","bad":7},"otherMesh123":{"file-agent":"not-this-mesh"}}})");
  // From .mesh.json: mapped, and the workspace's name is kept for status.
  ClientConfig c = ResolveConfig({}, f.Env(), f.deep);
  CHECK(c.agent_name.value == "file-agent-bob");
  CHECK(c.agent_name.source == "config.json");
  CHECK(c.workspace_agent_name == "file-agent");
  // From the environment (a workspace's MCP entry sets it): mapped too.
  f.env_vars["MESHWIRE_AGENT_NAME"] = "env-agent";
  CHECK(ResolveConfig({}, f.Env(), f.deep).agent_name.value == "env-agent-bob");
  // A name without an entry, or an entry that is not a string: as it is.
  f.env_vars["MESHWIRE_AGENT_NAME"] = "bad";
  ClientConfig bad = ResolveConfig({}, f.Env(), f.deep);
  CHECK(bad.agent_name.value == "bad");
  CHECK(bad.workspace_agent_name.empty());
  // Only the mesh's own entries apply.
  f.env_vars["MESHWIRE_AGENT_NAME"] = "file-agent";
  f.env_vars["MESHWIRE_MESH_ID"] = "otherMesh123";
  CHECK(ResolveConfig({}, f.Env(), f.deep).agent_name.value == "not-this-mesh");
  f.env_vars.erase("MESHWIRE_MESH_ID");
  // A flag is what the user typed: never mapped.
  ConfigFlags flags;
  flags.agent_name = "file-agent";
  CHECK(ResolveConfig(flags, f.Env(), f.deep).agent_name.value == "file-agent");
  // A default name (--default-name, or a command's own) is mapped.
  f.env_vars.erase("MESHWIRE_AGENT_NAME");
  TempDir elsewhere;
  ConfigFlags defaults;
  defaults.default_mesh_id = "meshFromFile";
  defaults.default_agent_name = "file-agent";
  ClientConfig outside = ResolveConfig(defaults, f.Env(), elsewhere.path());
  CHECK(outside.agent_name.value == "file-agent-bob");
  CHECK(OwnAgentName(outside, "env-agent") == "env-agent-bob");
  CHECK(OwnAgentName(outside, "someone") == "someone");
}

TEST_CASE("SaveOwnAgentName and SaveActiveMesh keep each other's keys") {
  Files f;
  SaveOwnAgentName(f.home, "meshFromFile", "file-agent", "file-agent-bob");
  SaveOwnAgentName(f.home, "meshFromFile", "other", "other-bob");
  SaveActiveMesh(f.home, "meshNew12345", "http://new:5");
  ClientConfig c = ResolveConfig({}, f.Env(), f.deep);
  CHECK(c.agent_name.value == "file-agent-bob");
  CHECK(OwnAgentName(c, "other") == "other-bob");
  TempDir elsewhere;
  CHECK(ResolveConfig({}, f.Env(), elsewhere.path()).mesh_id.value == "meshNew12345");
  CHECK(ForgetActiveMesh(f.home, "meshNew12345"));
  CHECK(ResolveConfig({}, f.Env(), f.deep).agent_name.value == "file-agent-bob");
  struct stat st {};
  REQUIRE(::stat((f.home / "config.json").c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
}

TEST_CASE("nothing configured: the default URL, no token, no mesh") {
  TempDir empty;
  std::map<std::string, std::string> env = {{"HOME", empty.path().string()}};
  ClientConfig c = ResolveConfig(
      {}, [&](const char* n) -> std::optional<std::string> {
        auto it = env.find(n);
        return it == env.end() ? std::nullopt : std::optional(it->second);
      },
      empty.path());
  CHECK(c.home == empty.path() / ".meshwire");
  // Without HOME: the account's home (getpwuid), never the working directory.
  // (A uid the password database does not know, as in some containers: ./.meshwire.)
  const passwd* me = ::getpwuid(::geteuid());
  CHECK(MeshwireHomeDir([](const char*) -> std::optional<std::string> { return std::nullopt; }) ==
        (me ? fs::path(me->pw_dir) : fs::path(".")) / ".meshwire");
  CHECK(c.url.value == kDefaultUrl);
  CHECK(c.url.source == "default");
  CHECK(c.token.empty());
  CHECK(c.mesh_id.empty());
}

TEST_CASE("an invalid file is skipped, not fatal") {
  Files f;
  Write(f.home / "credentials.json", "{not json");
  ClientConfig c = ResolveConfig({}, f.Env(), f.deep);
  CHECK(c.token.empty());
  CHECK(c.url.value == "http://conf:2");  // config.json still read
}

TEST_CASE("WriteFileAtomic creates the folder and sets the mode") {
  TempDir dir;
  fs::path p = dir.path() / "new/credentials.json";
  WriteFileAtomic(p, "{}\n", 0600);
  struct stat st {};
  REQUIRE(stat(p.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  WriteFileAtomic(p, "{\"a\":1}\n", 0600);
  std::ifstream in(p);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  CHECK(text == "{\"a\":1}\n");
  CHECK_THROWS(WriteFileAtomic("/proc/nope/x.json", "x", 0600));
}

}  // namespace meshwire::testing
