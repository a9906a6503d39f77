// Where a client's settings come from, highest first (docs/API.md "Files and
// environment"): command-line flag, environment (MESHWIRE_TOKEN, MESHWIRE_URL,
// MESHWIRE_MESH_ID, MESHWIRE_AGENT_NAME), the workspace's .mesh.json (found
// from the working directory upwards), then ~/.meshwire/ (credentials.json,
// config.json; MESHWIRE_HOME moves the folder).
//
// One exception to that order: config.json's "agent_names" holds this user's
// own agent name where a shared file (a committed .mesh.json, or a
// workspace's MCP entry that sets MESHWIRE_AGENT_NAME) names a teammate's
// agent: {"agent_names": {"<mesh id>": {"<name the workspace gives>": "<own
// name>"}}}. `meshwire init` writes it when the workspace's name is taken by
// another user; every name but a command-line flag goes through it.
#pragma once

#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>

namespace meshwire {

inline constexpr const char* kDefaultUrl = "http://127.0.0.1:7420";

/// Reads an environment variable; tests pass their own.
using EnvLookup = std::function<std::optional<std::string>(const char* name)>;
EnvLookup ProcessEnv();

/// What the command line said (each unset when the flag was not given).
struct ConfigFlags {
  std::optional<std::string> url, token, mesh_id, agent_name;
  // `meshwire mcp --default-mesh/--default-name`: below the workspace's
  // .mesh.json, for user-wide client entries shared by every workspace.
  std::optional<std::string> default_mesh_id, default_agent_name;
};

/// One resolved setting and where it came from ("flag", "env", ".mesh.json",
/// "credentials.json", "config.json", "default"), for `meshwire status`.
struct Setting {
  std::string value;
  std::string source;
  bool empty() const { return value.empty(); }
};

/// ClientConfig::credentials_unreadable for a file that is no JSON object.
inline constexpr const char* kNotJsonObject = "it is not a JSON object";

struct ClientConfig {
  Setting url, token, mesh_id, agent_name;
  // When agent_name came through config.json's agent_names: the name the
  // workspace (environment, .mesh.json) gave, which is a teammate's agent.
  std::string workspace_agent_name;
  std::map<std::string, std::string> own_agent_names;  // agent_names of mesh_id
  std::string user;                      // from credentials.json, if any
  // credentials.json's token and relay when a login on this machine saved
  // them ("from": "login"), whatever the environment chooses over them.
  struct SavedLogin {
    std::string token, url;
  };
  std::optional<SavedLogin> saved_login;
  // Why credentials.json could not be read when it exists ("Permission
  // denied", "Is a directory", or kNotJsonObject), else empty.
  std::string credentials_unreadable;
  std::filesystem::path home;            // the ~/.meshwire folder
  std::optional<std::filesystem::path> mesh_json;  // the .mesh.json used, if found
  std::string workspace_name;            // from .mesh.json
  std::string harness;                   // from .mesh.json
  // Why the .mesh.json found cannot say which mesh or agent (it is no file
  // or cannot be read, is not a JSON object, e.g. after a merge conflict,
  // it has no mesh_id, or its mesh_id or agent_name is not a string or is
  // empty), else empty. Its settings are skipped;
  // a command must not fall back to another mesh or agent in its place.
  std::string mesh_json_problem;
  // The problem is only that it names no mesh: where a flag or variable
  // gives the mesh, its agent_name (or the default agent) stands.
  bool mesh_json_names_no_mesh = false;
};

/// Resolves every setting. Unreadable or invalid files are skipped with a
/// warning on stderr, never fatal: a command that needs the missing value
/// says what to do. A broken .mesh.json gives no warning but
/// `mesh_json_problem`, for the commands that need its mesh or agent.
ClientConfig ResolveConfig(const ConfigFlags& flags, const EnvLookup& env,
                           const std::filesystem::path& cwd);

/// `name` as this user calls it in c.mesh_id: config.json's own name for it,
/// else `name` itself.
std::string OwnAgentName(const ClientConfig& c, const std::string& name);

/// The user's home: $HOME, else (no HOME) the account's home directory from
/// the password database; none when neither is known.
std::optional<std::filesystem::path> UserHomeDir(const EnvLookup& env);
/// The ~/.meshwire folder: $MESHWIRE_HOME, else UserHomeDir's .meshwire.
std::filesystem::path MeshwireHomeDir(const EnvLookup& env);

/// The nearest .mesh.json at `cwd` or above, if any (a file, or anything
/// else of that name: a folder there is a broken .mesh.json, not none).
std::optional<std::filesystem::path> FindMeshJson(const std::filesystem::path& cwd);

/// Saves {"token","url","user"} as `home`/credentials.json, mode 0600, with
/// "from": "login" when `meshwire login` made the token on this machine (a
/// later login may revoke it); returns its path. Throws std::runtime_error
/// naming the path on failure.
std::filesystem::path SaveCredentials(const std::filesystem::path& home, const std::string& token,
                                      const std::string& url, const std::string& user, bool from_login = false);

/// Makes `mesh_id` the active mesh: `home`/config.json gets
/// {"active_mesh","url"} (other keys kept), mode 0600. Throws as WriteFileAtomic,
/// and Error 2 (leaving it as it is) when config.json exists but cannot be
/// read or is not a JSON object: rewriting it would drop its other keys.
void SaveActiveMesh(const std::filesystem::path& home, const std::string& mesh_id, const std::string& url);
/// Takes `mesh_id` out of `home`/config.json when it is the active mesh
/// (other keys kept); true when it was.
bool ForgetActiveMesh(const std::filesystem::path& home, const std::string& mesh_id);
/// Takes the active mesh out of `home`/config.json when it was chosen on a
/// relay other than `url` (login to another relay: no such mesh there);
/// returns its id, or "" when there was none or it is `url`'s.
std::string ForgetActiveMeshOfOtherRelay(const std::filesystem::path& home, const std::string& url);
/// Records in `home`/config.json that in `mesh_id` this user's agent is
/// `own_name` where the workspace names `workspace_name` (a teammate's agent).
/// Throws as SaveActiveMesh.
void SaveOwnAgentName(const std::filesystem::path& home, const std::string& mesh_id,
                      const std::string& workspace_name, const std::string& own_name);
/// Writes `content` to `path` atomically (temp file + rename) with `mode`,
/// creating the folder (0700) if needed. Throws std::runtime_error naming the
/// path on failure: an Error 2 (a local file to fix, saying how) when the
/// folder cannot be made or the file cannot be written there or replaced.
void WriteFileAtomic(const std::filesystem::path& path, const std::string& content, int mode);

}  // namespace meshwire
