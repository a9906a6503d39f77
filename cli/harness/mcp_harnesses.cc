// Generators for the MCP clients: one server entry merged into the client's
// own configuration file (docs/API.md, "What init --harness writes").
#include <filesystem>

#include "cli/harness/generators.h"

namespace meshwire::cli::harness_internal {

namespace fs = std::filesystem;

namespace {

constexpr EntryPath kMcpServers = {"mcpServers", kServerName};

/// The whole of a JSON MCP harness: one entry in one file.
HarnessResult JsonHarness(const HarnessContext& ctx, const std::string& path, EntryPath at,
                          std::string type, std::string next_step) {
  CheckContext(ctx);
  FilePlan plan;
  plan.MergeJson(path, at, MeshwireServer(ctx, std::move(type)));
  return plan.Apply({std::move(next_step)});
}

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

}  // namespace

HarnessResult GenerateClaude(const HarnessContext& ctx) {
  return JsonHarness(ctx, ClaudeDesktopConfig(ctx), kMcpServers, "",
                     "Restart Claude Desktop to load the MeshWire MCP server.");
}

HarnessResult GenerateCursor(const HarnessContext& ctx) {
  const fs::path file = fs::path(".cursor") / "mcp.json";
  return JsonHarness(ctx, ctx.project ? InWorkspace(ctx, file) : InHome(ctx, file), kMcpServers, "",
                     "Restart Cursor (or turn meshwire on in Cursor Settings > MCP) to load the "
                     "MeshWire MCP server.");
}

HarnessResult GenerateClaudeCode(const HarnessContext& ctx) {
  return JsonHarness(ctx, InWorkspace(ctx, ".mcp.json"), kMcpServers, "stdio",
                     "Start Claude Code in this workspace and approve the project MCP server "
                     "\"meshwire\" when it asks (/mcp shows it).");
}

HarnessResult GenerateVsCode(const HarnessContext& ctx) {
  return JsonHarness(ctx, InWorkspace(ctx, fs::path(".vscode") / "mcp.json"),
                     {"servers", kServerName}, "stdio",
                     "Open this workspace in VS Code and start the \"meshwire\" server (MCP: List "
                     "Servers) to use it in agent mode.");
}

HarnessResult GenerateWindsurf(const HarnessContext& ctx) {
  return JsonHarness(ctx, InHome(ctx, fs::path(".codeium") / "windsurf" / "mcp_config.json"),
                     kMcpServers, "",
                     "Refresh the MCP servers in Windsurf (Cascade > MCP servers) to load "
                     "MeshWire.");
}

HarnessResult GenerateGemini(const HarnessContext& ctx) {
  return JsonHarness(ctx, InHome(ctx, fs::path(".gemini") / "settings.json"), kMcpServers, "",
                     "Restart Gemini CLI to load the MeshWire MCP server (/mcp lists it).");
}

HarnessResult GenerateCodex(const HarnessContext& ctx) {
  CheckContext(ctx);
  FilePlan plan;
  const fs::path codex = ToolHome(ctx, ctx.codex_home, ".codex");
  plan.MergeToml((codex / "config.toml").string(), {"mcp_servers", kServerName},
                 MeshwireServer(ctx));
  return plan.Apply({"Restart Codex to load the MeshWire MCP server (/mcp lists it)."});
}

}  // namespace meshwire::cli::harness_internal
