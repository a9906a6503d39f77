// `meshwire init --harness H`: writes .mesh.json and the harness's files,
// registers the agent.
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string_view>
#include <tuple>

#include "cli/commands.h"
#include "cli/context.h"
#include "cli/harness/harness.h"
#include "schemas/ids.h"

namespace meshwire::cli {

namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using OrderedJson = nlohmann::ordered_json;  // .mesh.json keeps its keys' order

std::string Platform() {
#if defined(__APPLE__)
  return "macos";
#elif defined(_WIN32)
  return "windows";
#else
  return "linux";
#endif
}

/// The path of this executable as the user ran it, made absolute but with
/// symbolic links kept: a versioned install (/usr/local/bin/meshwire ->
/// /opt/meshwire-0.1.8/meshwire) must survive an upgrade that moves the
/// link. argv[0] with a slash is a path; without one, the shell found it
/// on PATH, so the first PATH entry holding it is. /proc/self/exe (links
/// resolved) is the last resort.
bool IsExecutable(const fs::path& p) {
  std::error_code ec;
  return fs::is_regular_file(p, ec) && ::access(p.c_str(), X_OK) == 0;
}

/// The executable `name` the shell finds on PATH (made absolute), or
/// nullopt. `absolute_only`: nullopt too when a relative or empty entry
/// ("." for one) comes before it.
std::optional<fs::path> FindOnPath(const std::string& name, const EnvLookup& env, bool absolute_only) {
  std::istringstream path(env("PATH").value_or(""));
  for (std::string dir; std::getline(path, dir, ':');) {
    if (dir.empty() || !fs::path(dir).is_absolute()) {
      if (absolute_only) return std::nullopt;
      if (dir.empty()) dir = ".";
    }
    std::error_code ec;
    fs::path p = fs::absolute(fs::path(dir) / name, ec).lexically_normal();
    if (!ec && IsExecutable(p)) return p;
  }
  return std::nullopt;
}

std::string InvokedPath(const std::string& argv0, const EnvLookup& env) {
  std::error_code ec;
  if (argv0.find('/') != std::string::npos) {
    fs::path p = fs::absolute(argv0, ec).lexically_normal();
    if (!ec && IsExecutable(p)) return p.string();
  } else if (!argv0.empty()) {
    if (auto p = FindOnPath(argv0, env, /*absolute_only=*/false)) return p->string();
  }
  fs::path self = fs::read_symlink("/proc/self/exe", ec);
  return ec ? std::string("meshwire") : self.string();
}

/// How MCP clients should start meshwire: through npx when we run from the
/// npm package (its launcher sets MESHWIRE_LAUNCHER), else this executable
/// as the user ran it.
std::vector<std::string> Launcher(const EnvLookup& env) {
  if (auto l = env("MESHWIRE_LAUNCHER")) {
    std::vector<std::string> words;
    std::istringstream in(*l);
    for (std::string w; in >> w;) words.push_back(w);
    if (!words.empty()) return words;
  }
  return {InvokedPath(ProgramName(), env)};
}

/// {"meshwire"} when PATH's first `meshwire` is the executable `launcher`
/// names (links followed), else empty: a committed file can then name it
/// without this machine's path, and each teammate's PATH finds their own.
std::vector<std::string> PortableLauncher(const std::vector<std::string>& launcher, const EnvLookup& env) {
  if (launcher.size() != 1 || !fs::path(launcher.front()).is_absolute()) return {};
  // "." (or an empty entry) finds what is in the folder a client starts in: not a name to rely on.
  const std::optional<fs::path> found = FindOnPath("meshwire", env, /*absolute_only=*/true);
  std::error_code ec;
  if (found && fs::equivalent(*found, launcher.front(), ec) && !ec) return {"meshwire"};
  return {};  // not on PATH, or PATH finds another meshwire first
}

std::string HarnessNames() {
  std::string names;
  for (const Harness& h : Harnesses()) names += (names.empty() ? "" : ", ") + std::string(h.name);
  return names;
}

/// The workspace's .mesh.json as it is (an empty object when there is none).
OrderedJson ReadMeshJson(const fs::path& path) {
  OrderedJson current = OrderedJson::object();
  std::error_code ec;
  if (fs::exists(fs::symlink_status(path, ec)) && !fs::is_regular_file(path, ec)) {  // a FIFO would block
    throw ConfigError(path.string() + " is not a file; remove it, then run init again.");
  }
  if (std::ifstream in{path}) {
    std::stringstream buf;
    buf << in.rdbuf();
    current = OrderedJson::parse(buf.str(), nullptr, false);
    if (!current.is_object()) {
      throw ConfigError(path.string() + " is not a JSON object; fix or remove it, then run init again.");
    }
  }
  return current;
}

/// What init does to .mesh.json: `action` as the harness files say it
/// ("created", "updated" or "unchanged") and, unless unchanged, the new
/// `text`: `current` (ReadMeshJson's, {} when there is none) with `fields`
/// merged in.
struct MeshJsonChange {
  std::string action;
  std::string text;
};
MeshJsonChange PlanMeshJson(const fs::path& path, const OrderedJson& current, const OrderedJson& fields) {
  OrderedJson merged = current;  // its keys in the file's order, new ones in the seed's
  for (auto& [k, v] : fields.items()) merged[k] = v;
  const bool existed = fs::exists(path);
  if (merged == current && existed) return {"unchanged", ""};
  return {existed ? "updated" : "created", merged.dump(2) + "\n"};
}

/// init for a user whose mesh nothing chooses (no --mesh, MESHWIRE_MESH_ID,
/// .mesh.json or active mesh), as after the product page's Quick Start
/// (`login`, then `init --harness H`): their only mesh, or a new one named
/// after the workspace when they have none, becomes the active mesh; with
/// several, they are told to pick one. Says what it did.
void ChooseMeshForNewUser(CommandContext& ctx, RelayClient& client, const fs::path& workspace,
                          const std::string& harness) {
  const ClientConfig& c = ctx.config();
  std::vector<Mesh> meshes = client.ListMeshes();
  const Ui& ui = ctx.ui();
  if (meshes.size() > 1) {
    std::string listed;
    for (std::size_t i = 0; i < meshes.size() && i < 5; ++i) {
      listed += (i ? ", " : "") + meshes[i].mesh_id + " \"" + Shown(meshes[i].name) + "\"";
    }
    if (meshes.size() > 5) listed += ", ... (`meshwire mesh list`)";
    throw ConfigError("No mesh chosen, and you are in " + std::to_string(meshes.size()) +
                      ": run `meshwire init --harness " + harness + " --mesh ID` with one of " + listed + ".");
  }
  Mesh mesh;
  if (meshes.empty()) {
    std::string name = workspace.filename().string();
    const bool printable =
        std::all_of(name.begin(), name.end(), [](unsigned char ch) { return ch >= 0x20 && ch != 0x7f; });
    if (name.empty() || name.size() > 64 || !printable) name = "my-mesh";
    mesh = client.CreateMesh(name);
    if (!ctx.json()) {
      std::printf("%s Created mesh: %s \"%s\" (you had none; `meshwire mesh create NAME` makes others)\n",
                  ui.Ok().c_str(), mesh.mesh_id.c_str(), Shown(mesh.name).c_str());
    }
  } else {
    mesh = meshes.front();
    if (!ctx.json()) {
      std::printf("%s Using your mesh %s \"%s\" (your only one)\n", ui.Ok().c_str(), mesh.mesh_id.c_str(),
                  Shown(mesh.name).c_str());
    }
  }
  SaveActiveMesh(c.home, mesh.mesh_id, c.url.value);
  if (!ctx.json()) std::printf("%s Active mesh set to: %s\n", ui.Ok().c_str(), mesh.mesh_id.c_str());
  ctx.ChooseMesh(mesh.mesh_id);
}

/// The agent name for a teammate whose workspace names another user's
/// agent `shared`: `shared-user`, then `shared-user-2`, ...; always a valid
/// name (other characters become '-', at most 64).
std::string OwnNameFor(const std::string& shared, const std::string& user, int attempt) {
  std::string suffix = "-";
  for (char ch : user.substr(0, 32)) {
    suffix += (std::isalnum(static_cast<unsigned char>(ch)) || ch == '.' || ch == '_' || ch == '-') ? ch : '-';
  }
  if (attempt > 1) suffix += "-" + std::to_string(attempt);
  return shared.substr(0, 64 - suffix.size()) + suffix;
}

/// `init --token T` / `init --mesh ID` where no harness is named or recorded
/// (the product page's fixes for a 401 and a wrong mesh): the token is
/// already checked and saved; the mesh is checked and made the active one.
int UpdateConfigOnly(CommandContext& ctx, bool token_given, bool mesh_given) {
  const Ui& ui = ctx.ui();
  const ClientConfig& c = ctx.config();
  RelayClient& client = ctx.Client();
  json out = json::object();
  if (token_given) {
    out["credentials"] = (c.home / "credentials.json").string();  // saved and said by RunInit
  }
  if (mesh_given) {
    MeshDetails d = client.GetMesh(c.mesh_id.value);  // must exist and be ours
    SaveActiveMesh(c.home, d.mesh.mesh_id, c.url.value);
    out["active_mesh"] = d.mesh.mesh_id;
    if (!ctx.json()) std::printf("%s Active mesh set to: %s\n", ui.Ok().c_str(), d.mesh.mesh_id.c_str());
  }
  if (ctx.json()) {
    std::printf("%s\n", out.dump().c_str());
  } else {
    std::printf("No .mesh.json here names a platform: to wire one to the mesh, run `meshwire init --harness H` "
                "in its workspace (H: %s).\n",
                HarnessNames().c_str());
  }
  return kExitOk;
}

}  // namespace

int RunInit(int argc, char** argv) {
  CLI::App app{"Wire this workspace to a mesh: writes .mesh.json (safe to commit), the files your "
               "platform loads, and registers the agent.",
               "meshwire init"};
  CommandContext ctx;
  ctx.TolerateBrokenMeshJson();  // init rewrites it (one that is no JSON object stops it: ReadMeshJson)
  ctx.AddFlags(app, true, true, true);
  std::string harness_name;
  bool project = false;
  app.add_option("--harness", harness_name,
                 "the platform: " + HarnessNames() +
                     " (default: the one this workspace's .mesh.json records; without either, --token "
                     "and --mesh only update ~/.meshwire)")
      ->check(NotEmpty("give the platform, or leave --harness out for the one .mesh.json records"));
  app.add_flag("--project", project, "cursor: write .cursor/mcp.json in the workspace instead of ~/.cursor");
  bool remote = false;
  app.add_flag("--remote", remote,
               "write the URL form: the client connects to the relay's MCP endpoint itself "
               "(<url>/mesh/ID/mcp), reading the token from MESHWIRE_TOKEN; for claude-code, cursor, "
               "vscode, windsurf, gemini and codex");
  app.footer(
      "Files go where each platform reads them (docs/API.md lists them all); COPILOT_HOME, "
      "HERMES_HOME and CODEX_HOME move ~/.copilot, ~/.hermes and ~/.codex as they do for those "
      "tools, and XDG_CONFIG_HOME moves ~/.config for Claude Desktop on Linux. Existing files "
      "are merged, never clobbered, with a .bak copy kept (a .gitignore, only appended to, "
      "keeps none).");
  int rc = 0;
  if (!Parse(app, argc, argv, rc)) return rc;
  const Ui& ui = ctx.ui();
  const bool token_given = app.count("--token") > 0;
  const bool mesh_given = app.count("--mesh") > 0;
  if (harness_name.empty()) harness_name = ctx.config().harness;  // .mesh.json's
  if (harness_name.empty() && !token_given && !mesh_given) {
    return FailUsage("--harness is required here (no .mesh.json in this folder or above records one): run "
                     "`meshwire init --harness H` with H one of: " + HarnessNames() + ".");
  }
  const Harness* harness = harness_name.empty() ? nullptr : FindHarness(harness_name);
  if (!harness && !harness_name.empty()) {
    return FailUsage("Unknown harness \"" + harness_name + "\"; choose one of: " + HarnessNames() + ".");
  }
  if (project && (!harness || std::string_view(harness->name) != "cursor")) {
    return FailUsage("--project is for --harness cursor only (its .cursor/mcp.json in the workspace instead of "
                     "~/.cursor); the other platforms' files go where docs/API.md lists them.");
  }
  if (harness && remote && !harness->has_remote) {
    const bool has_mcp = std::string_view(harness->name) != "pi";  // Pi: an extension of meshwire's own
    return FailUsage("--remote: " + std::string(harness->title) +
                     (has_mcp ? " has no URL form for MCP servers that meshwire can write"
                              : " has no MCP client; meshwire wires it with an extension") +
                     "; run `meshwire init --harness " + harness_name + "` without --remote" +
                     (has_mcp ? " (the local `meshwire mcp` server)" : "") +
                     ", or use --remote with claude-code, cursor, vscode, windsurf, gemini or codex.");
  }
  try {
    const ClientConfig& c = ctx.config();
    RelayClient& client = ctx.Client();
    // --token: check it, then keep it as this machine's credentials.
    if (c.token.source == "flag") {
      std::string user;
      try {
        user = client.Me().first;
      } catch (const Error& e) {
        if (e.status() != 401) throw;
        // The relay's sentence speaks of saved credentials; this is the one given.
        throw Error(401, e.code(),
                    "The relay at " + c.url.value + " does not know the token given with --token (unknown or "
                    "revoked): check it, or create one with `meshwire token create` (`meshwire admin token "
                    "create` on the relay's machine).");
      }
      SaveCredentials(c.home, c.token.value, c.url.value, user);
      if (!ctx.json()) {
        std::printf("%s Token saved to %s\n", ctx.ui().Ok().c_str(),
                    Tilde((c.home / "credentials.json").string()).c_str());
        // What this shell's environment still overrides (as login says).
        if (const char* env = std::getenv("MESHWIRE_TOKEN"); env && *env && env != c.token.value) {
          std::printf("Here MESHWIRE_TOKEN still chooses the token: unset it to use the one just saved.\n");
        }
      }
    }
    if (!harness) return UpdateConfigOnly(ctx, token_given, mesh_given);
    // Everything is checked before anything is written: the mesh, the
    // name, .mesh.json and the platform's existing files (a dry run), then
    // the agent is registered (a taken name stops it here), and only then
    // are the files written. (A user with no mesh at all gets one first: a
    // later refusal leaves it as their active mesh, which the next init uses.)
    const fs::path workspace = c.mesh_json ? c.mesh_json->parent_path() : fs::current_path();
    if (c.mesh_id.empty()) ChooseMeshForNewUser(ctx, client, workspace, harness->name);
    const std::string& mesh = ctx.RequireMesh();
    client.GetMesh(mesh);  // 404 or 403 here
    std::string agent_name = ctx.AgentName(harness->default_agent_name);
    // A workspace wired for another platform: its .mesh.json names that
    // platform's default agent, and this platform gets its own, as each
    // `init --harness` of the product page registers its own (two clients
    // as one agent would take each other's messages). A name the user chose
    // stays the workspace's.
    bool other_platforms = false;
    if (const Harness* recorded = PlatformNamingWorkspaceAgent(c); recorded && recorded != harness) {
      agent_name = OwnAgentName(c, harness->default_agent_name);  // this user's own name for it, if they have one
      other_platforms = true;
    }
    if (std::string problem = ctx.InvalidAgentName(agent_name, harness->default_agent_name); !problem.empty()) {
      throw ConfigError(problem);
    }
    std::string workspace_name = c.workspace_name.empty() ? workspace.filename().string() : c.workspace_name;
    const OrderedJson mesh_json = ReadMeshJson(workspace / ".mesh.json");
    // A teammate's clone: the committed .mesh.json names the first user's
    // agent. It stays as it is (every teammate shares it); this user's own
    // name for it goes to ~/.meshwire/config.json, which every client reads.
    auto listed_it = mesh_json.find("agent_name");
    const std::string listed =
        listed_it != mesh_json.end() && listed_it->is_string() ? listed_it->get<std::string>() : "";
    bool listed_is_teammates = !listed.empty() && listed == c.workspace_agent_name;  // config.json knows
    if (!listed_is_teammates && !listed.empty() && listed != agent_name && mesh_json.value("mesh_id", "") == mesh) {
      for (const AgentInfo& a : client.Agents(mesh)) {
        if (a.agent.name == listed) listed_is_teammates = a.agent.owner != ctx.User();
      }
    }

    HarnessContext hc;
    hc.mesh_id = mesh;
    hc.agent_name = agent_name;
    hc.url = c.url.value;
    hc.token = c.token.value;
    hc.workspace_dir = workspace.string();
    const EnvLookup env = ProcessEnv();
    // The tools' user-wide files (~/.cursor, ~/.hermes, ...) are under the
    // account's home even without HOME, never in the workspace.
    hc.home_dir = UserHomeDir(env).value_or(workspace).string();
    hc.platform = Platform();
    hc.appdata = env("APPDATA").value_or("");
    // A tool's home variable, made absolute as the tool itself would read it.
    auto tool_home = [&env](const char* name) {
      std::string v = env(name).value_or("");
      return v.empty() ? v : std::filesystem::absolute(v).lexically_normal().string();
    };
    hc.copilot_home = tool_home("COPILOT_HOME");
    hc.hermes_home = tool_home("HERMES_HOME");
    hc.codex_home = tool_home("CODEX_HOME");
    hc.xdg_config_home = tool_home("XDG_CONFIG_HOME");
    hc.project = project;
    hc.remote = remote;
    hc.launcher = Launcher(env);
    hc.workspace_launcher = PortableLauncher(hc.launcher, env);
    hc.dry_run = true;
    harness->generate(hc);  // a bad existing file, or one that cannot be written, throws here
    // A new .mesh.json must be made here: a workspace it cannot be made in
    // stops init now. (One that is there and must change, but cannot be
    // written, fails below, and the agent registered for it is removed.)
    if (!fs::exists(workspace / ".mesh.json")) CheckCanWrite((workspace / ".mesh.json").string());
    hc.dry_run = false;

    // Registers `name`: false when another user's agent has it (then `taken`
    // holds the relay's sentence), any other error thrown.
    std::string agent_id, taken;
    bool created = false;
    auto registered = [&](const std::string& name) {
      try {
        std::tie(agent_id, created) = client.RegisterAgent(mesh, name, harness->name);
        return true;
      } catch (const Error& e) {
        if (e.status() == 400 && e.code() == "invalid_field") {
          // A name the relay reserves ("all", another agent's id): a setting to change (exit 2).
          throw Error(2, "config", std::string(e.what()) + " Run init again with --name NAME.");
        }
        if (e.status() != 409) throw;
        taken = e.what();
        return false;
      }
    };
    if (!registered(agent_name)) {
      // A name the user chose is theirs to change; the shared file's name (a
      // teammate's agent) or the harness's default gets one of this user's own.
      const std::string source = other_platforms ? "" : c.agent_name.source;  // then: the harness's default
      if (source != ".mesh.json" && !source.empty()) {
        throw Error(409, "conflict", taken + " Run init again with --name NAME (or set MESHWIRE_AGENT_NAME).");
      }
      if (!other_platforms) listed_is_teammates = source == ".mesh.json";
      const std::string theirs = other_platforms ? harness->default_agent_name : agent_name;
      for (int attempt = 1; !registered(agent_name = OwnNameFor(theirs, ctx.User(), attempt)); ++attempt) {
        if (attempt == 5) {
          throw Error(409, "conflict",
                      taken + " \"" + theirs + "\" is another user's agent here: run `meshwire init --harness " +
                          harness->name + " --name NAME` with a name of your own.");
        }
      }
    }
    // What the shared files say: .mesh.json, and the workspace's MCP entries.
    const std::string& shared_name = listed_is_teammates ? listed : agent_name;
    // The name this platform's shared files carry: .mesh.json's, or in a
    // teammate's clone wired for another platform, this platform's default
    // (whose own name each teammate keeps in config.json, as for the other).
    const std::string platform_name = other_platforms && listed_is_teammates ? harness->default_agent_name : shared_name;
    hc.agent_name = agent_name;
    hc.workspace_agent_name = platform_name;
    // A teammate's init leaves the committed file as it is: its agent name,
    // and its harness (this user's may differ).
    const auto listed_harness = mesh_json.find("harness");
    const std::string shared_harness = listed_is_teammates && listed_harness != mesh_json.end() &&
                                               listed_harness->is_string()
                                           ? listed_harness->get<std::string>()
                                           : std::string(harness->name);
    OrderedJson fields = {{"mesh_id", mesh},
                   {"workspace_name", workspace_name},
                   {"agent_name", shared_name},
                   {"harness", shared_harness}};
    const fs::path mesh_json_path = workspace / ".mesh.json";
    const MeshJsonChange mesh_json_change = PlanMeshJson(mesh_json_path, mesh_json, fields);
    const std::string& mesh_json_action = mesh_json_change.action;
    // .mesh.json is written with the harness's files, all or none of them.
    if (!mesh_json_change.text.empty()) hc.also_write.push_back({mesh_json_path.string(), mesh_json_change.text});
    HarnessResult result;
    try {
      result = harness->generate(hc);
    } catch (...) {
      // A write the dry run could not foresee failed (a full disk, a folder
      // only root may write in): the agent this init made goes too, so the
      // failure leaves nothing behind (one it found already stays).
      if (created) {
        try {
          client.DeleteAgent(mesh, agent_id);
        } catch (const std::exception&) {
          // The file's error is the one to tell; the agent is unseen for a week and then removed.
        }
      }
      throw;
    }
    // This user's own name for the workspace's agent, once everything else is written.
    if (listed_is_teammates && OwnAgentName(c, platform_name) != agent_name) {
      SaveOwnAgentName(c.home, mesh, platform_name, agent_name);
    }

    if (ctx.json()) {
      json files = json::array({{{"path", mesh_json_path.string()}, {"action", mesh_json_action}, {"backup", ""}}});
      for (const FileChange& f : result.files) {
        files.push_back({{"path", f.path}, {"action", f.action}, {"backup", f.backup}});
      }
      std::printf("%s\n", json({{"mesh_id", mesh}, {"workspace_name", workspace_name}, {"agent_name", agent_name},
                                {"workspace_agent_name", platform_name}, {"agent_id", agent_id},
                                {"harness", harness->name}, {"files", files}, {"next_steps", result.next_steps}})
                              .dump()
                              .c_str());
      return kExitOk;
    }
    std::printf("%s .mesh.json %s\n", ui.Ok().c_str(), mesh_json_action == "unchanged" ? "unchanged" : "written");
    std::printf("mesh_id: %s\nagent_name: %s\nharness: %s\n\n", mesh.c_str(), shared_name.c_str(),
                shared_harness.c_str());
    // The workspace's files as .mesh.json is shown, from where the user is
    // (".mcp.json"; "../.mcp.json" from a subfolder); the user's own with "~".
    auto shown_path = [&workspace](const std::string& path) {
      const fs::path inside = fs::path(path).lexically_relative(workspace);
      if (inside.empty() || *inside.begin() == "..") return Tilde(path);
      std::error_code ec;
      const fs::path here = fs::current_path(ec);
      return ec ? Tilde(path) : fs::path(path).lexically_relative(here).string();
    };
    for (const FileChange& f : result.files) {
      std::printf("%s %s %s%s\n", ui.Ok().c_str(), shown_path(f.path).c_str(), f.action.c_str(),
                  f.backup.empty() ? "" : (" (previous kept as " + shown_path(f.backup) + ")").c_str());
    }
    std::printf("%s Registered as %s (%s)%s\n", ui.Ok().c_str(), agent_name.c_str(), agent_id.c_str(),
                created ? "" : ", already registered");
    const std::string kept = "(kept in " + Tilde((c.home / "config.json").string()) +
                             ", which meshwire and its extensions read)";
    if (listed_is_teammates && other_platforms) {
      const std::string you = agent_name == platform_name ? "" : ", which in this mesh is you as " + agent_name + " " + kept;
      std::printf("  .mesh.json names %s, a teammate's agent on another platform, and stays as it is; %s's "
                  "files name %s%s.\n",
                  listed.c_str(), harness->title, platform_name.c_str(), you.c_str());
    } else if (listed_is_teammates) {
      std::printf("  .mesh.json names %s, a teammate's agent, and stays as it is: in this mesh you are %s %s.\n",
                  listed.c_str(), agent_name.c_str(), kept.c_str());
    }
    std::printf("\n");
    std::printf("%s %s harness ready!\n", ui.Ok().c_str(), harness->title);
    for (const std::string& step : result.next_steps) std::printf("%s\n", step.c_str());
  } catch (const HarnessError& e) {
    return Fail(Error(2, "harness", e.what()));  // a local file to fix: as a config error
  } catch (const Error& e) {
    return Fail(e);
  } catch (const std::exception& e) {
    return FailUnexpected(e);
  }
  return kExitOk;
}

}  // namespace meshwire::cli
