// Generators for the MCP clients: one server entry merged into the client's
// own configuration file (docs/API.md, "What init --harness writes").
#include <filesystem>

#include "cli/harness/generators.h"

namespace meshwire::cli::harness_internal {

namespace fs = std::filesystem;

namespace {

constexpr EntryPath kMcpServers = {"mcpServers", kServerName};

/// How a JSON client writes its remote entry: its type, its key for the
/// URL, and how it reads MESHWIRE_TOKEN from its environment.
struct RemoteForm {
  const char* type;
  const char* url_key;
  const char* token_ref;
};

/// The whole of a JSON MCP harness: one entry in one file; with --remote,
/// the URL form `remote` (null: the client has none).
HarnessResult JsonHarness(const HarnessContext& ctx, const std::string& path, EntryPath at,
                          Scope scope, std::string type, std::string next_step,
                          const RemoteForm* remote = nullptr, const char* client = "") {
  CheckContext(ctx);
  FilePlan plan;
  if (ctx.remote) {
    if (!remote) RefuseRemote(ctx, client);
    plan.MergeJson(path, at, RemoteServer(ctx, remote->type, remote->url_key, remote->token_ref));
    return plan.Apply(ctx, {std::move(next_step), RemoteTokenStep(ctx, client)});
  }
  plan.MergeJson(path, at, MeshwireServer(ctx, scope, std::move(type)));
  return plan.Apply(ctx, {std::move(next_step)});
}

// Each client's own way to read an environment variable in its config file.
constexpr RemoteForm kClaudeCodeRemote = {"http", "url", "${MESHWIRE_TOKEN}"};
constexpr RemoteForm kCursorRemote = {"", "url", "${env:MESHWIRE_TOKEN}"};
constexpr RemoteForm kVsCodeRemote = {"http", "url", "${env:MESHWIRE_TOKEN}"};
constexpr RemoteForm kWindsurfRemote = {"", "serverUrl", "${env:MESHWIRE_TOKEN}"};
constexpr RemoteForm kGeminiRemote = {"", "httpUrl", "$MESHWIRE_TOKEN"};

std::string ClaudeDesktopConfig(const HarnessContext& ctx) {
  const fs::path file = fs::path("Claude") / "claude_desktop_config.json";
  if (ctx.platform == "macos") {
    return InHome(ctx, fs::path("Library") / "Application Support" / file);
  }
  if (ctx.platform == "windows") {
    const fs::path appdata = ctx.appdata.empty() ? fs::path(ctx.home_dir) / "AppData" / "Roaming"
                                                 : fs::path(ctx.appdata);
    return (appdata / file).string();
  }
  // Claude Desktop is an Electron app: on Linux its folder follows XDG_CONFIG_HOME.
  const fs::path config = ToolHome(ctx, ctx.xdg_config_home, ".config");
  return (config / file).string();
}

/// Gemini CLI starts MCP servers (stdio and HTTP) only in trusted folders.
std::string GeminiTrustStep(const HarnessContext& ctx) {
  return "Gemini CLI starts MCP servers only in folders you trust: answer \"Trust folder\" when it asks in " +
         ctx.workspace_dir + ", or add \"" + ctx.workspace_dir + "\": \"TRUST_FOLDER\" to ~/.gemini/trustedFolders.json.";
}

}  // namespace

HarnessResult GenerateClaude(const HarnessContext& ctx) {
  RefuseRemote(ctx, "Claude Desktop (it adds remote servers in Settings > Connectors)");
  return JsonHarness(ctx, ClaudeDesktopConfig(ctx), kMcpServers, Scope::kUserWide, "",
                     "Restart Claude Desktop to load the MeshWire MCP server.");
}

HarnessResult GenerateCursor(const HarnessContext& ctx) {
  const fs::path file = fs::path(".cursor") / "mcp.json";
  return JsonHarness(ctx, ctx.project ? InWorkspace(ctx, file) : InHome(ctx, file), kMcpServers,
                     ctx.project ? Scope::kWorkspace : Scope::kUserWide, "",
                     "Restart Cursor (or turn meshwire on in Cursor Settings > MCP) to load the "
                     "MeshWire MCP server.",
                     &kCursorRemote, "Cursor");
}

HarnessResult GenerateClaudeCode(const HarnessContext& ctx) {
  return JsonHarness(ctx, InWorkspace(ctx, ".mcp.json"), kMcpServers, Scope::kWorkspace, "stdio",
                     "Start Claude Code in this workspace and approve the project MCP server "
                     "\"meshwire\" when it asks (/mcp shows it). To have messages pushed into the "
                     "conversation as they arrive (Claude Code channels; they need a claude.ai sign-in), "
                     "start it as `claude --dangerously-load-development-channels server:meshwire`; "
                     "otherwise ask it to check meshwire_get_messages.",
                     &kClaudeCodeRemote, "Claude Code");
}

HarnessResult GenerateVsCode(const HarnessContext& ctx) {
  return JsonHarness(ctx, InWorkspace(ctx, fs::path(".vscode") / "mcp.json"),
                     {"servers", kServerName}, Scope::kWorkspace, "stdio",
                     "Open this workspace in VS Code and start the \"meshwire\" server (MCP: List "
                     "Servers) to use it in agent mode.",
                     &kVsCodeRemote, "VS Code");
}

HarnessResult GenerateWindsurf(const HarnessContext& ctx) {
  return JsonHarness(ctx, InHome(ctx, fs::path(".codeium") / "windsurf" / "mcp_config.json"),
                     kMcpServers, Scope::kUserWide, "",
                     "Refresh the MCP servers in Windsurf (Cascade > MCP servers) to load "
                     "MeshWire.",
                     &kWindsurfRemote, "Windsurf");
}

HarnessResult GenerateGemini(const HarnessContext& ctx) {
  CheckContext(ctx);
  if (ctx.remote) {
    FilePlan plan;
    // Gemini expands $NAME in settings.json from its own environment.
    plan.MergeJson(InHome(ctx, fs::path(".gemini") / "settings.json"), kMcpServers,
                   RemoteServer(ctx, kGeminiRemote.type, kGeminiRemote.url_key, kGeminiRemote.token_ref));
    return plan.Apply(ctx, {"Restart Gemini CLI to load the MeshWire MCP server (/mcp lists it).",
                       GeminiTrustStep(ctx), RemoteTokenStep(ctx, "Gemini CLI")});
  }
  McpServer server = MeshwireServer(ctx, Scope::kUserWide);
  // Gemini CLI drops every variable whose name holds TOKEN (KEY, SECRET, ...)
  // from a server's environment, but expands "$NAME" in the entry's env from
  // its own, unfiltered one: so a token exported in the shell still arrives.
  // Unset, it expands to "", which meshwire reads as absent (credentials.json
  // then). The entry names the variable; the token is never written here.
  server.env.emplace_back("MESHWIRE_TOKEN", "$MESHWIRE_TOKEN");
  FilePlan plan;
  plan.MergeJson(InHome(ctx, fs::path(".gemini") / "settings.json"), kMcpServers, server);
  return plan.Apply(ctx, {"Restart Gemini CLI to load the MeshWire MCP server (/mcp lists it).", GeminiTrustStep(ctx)});
}

HarnessResult GenerateCodex(const HarnessContext& ctx) {
  CheckContext(ctx);
  const fs::path codex_home = ToolHome(ctx, ctx.codex_home, ".codex");
  if (ctx.remote) {
    McpServer server = RemoteServer(ctx, "", "url", "");
    server.headers.clear();
    server.bearer_env = "MESHWIRE_TOKEN";  // Codex sends `Authorization: Bearer $MESHWIRE_TOKEN`
    FilePlan plan;
    plan.MergeToml((codex_home / "config.toml").string(), {"mcp_servers", kServerName}, server);
    return plan.Apply(ctx, {"Restart Codex to load the MeshWire MCP server (/mcp lists it).",
                       RemoteTokenStep(ctx, "Codex")});
  }
  McpServer server = MeshwireServer(ctx, Scope::kUserWide);
  // Codex gives MCP servers only HOME, PATH, USER and a few more of its own
  // environment; these are the ones meshwire reads (the token among them,
  // named, never written). An unset one is skipped.
  server.pass_env = {"MESHWIRE_TOKEN", "MESHWIRE_HOME", "MESHWIRE_CA_FILE"};
  FilePlan plan;
  const fs::path codex = ToolHome(ctx, ctx.codex_home, ".codex");
  plan.MergeToml((codex / "config.toml").string(), {"mcp_servers", kServerName}, server);
  return plan.Apply(ctx, {"Restart Codex to load the MeshWire MCP server (/mcp lists it)."});
}

}  // namespace meshwire::cli::harness_internal
