// The harness registry and what every generator shares.
#include "cli/harness/harness.h"

#include <array>
#include <filesystem>
#include <string>
#include <utility>

#include "cli/harness/generators.h"

namespace meshwire::cli {

namespace hi = harness_internal;

namespace {

constexpr std::array<Harness, 10> kHarnesses = {{
    {"copilot", "copilot-agent", "Copilot", &hi::GenerateCopilot, false},
    {"claude", "claude-agent", "Claude", &hi::GenerateClaude, false},
    {"cursor", "cursor-agent", "Cursor", &hi::GenerateCursor, true},
    {"claude-code", "claude-code-agent", "Claude Code", &hi::GenerateClaudeCode, true},
    {"vscode", "vscode-agent", "VS Code", &hi::GenerateVsCode, true},
    {"windsurf", "windsurf-agent", "Windsurf", &hi::GenerateWindsurf, true},
    {"gemini", "gemini-agent", "Gemini", &hi::GenerateGemini, true},
    {"codex", "codex-agent", "Codex", &hi::GenerateCodex, true},
    {"hermes", "hermes-agent", "Hermes", &hi::GenerateHermes, false},
    {"pi", "pi-agent", "Pi", &hi::GeneratePi, false},
}};

}  // namespace

std::span<const Harness> Harnesses() {
  return kHarnesses;
}

const Harness* FindHarness(std::string_view name) {
  for (const Harness& harness : kHarnesses) {
    if (name == harness.name) return &harness;
  }
  return nullptr;
}

const Harness* PlatformNamingWorkspaceAgent(const ClientConfig& c) {
  // In a teammate's clone the workspace's name reaches the configuration as
  // this user's own name for it (config.json's agent_names).
  const std::string given = c.agent_name.source == ".mesh.json"    ? c.agent_name.value
                             : c.agent_name.source == "config.json" ? c.workspace_agent_name
                                                                    : std::string();
  const Harness* recorded = FindHarness(c.harness);
  return recorded && !given.empty() && given == recorded->default_agent_name ? recorded : nullptr;
}

namespace harness_internal {

void CheckContext(const HarnessContext& ctx) {
  if (ctx.mesh_id.empty()) {
    throw HarnessError(
        "No mesh to wire the harness to; pass --mesh ID or run `meshwire mesh use "
        "ID` first.");
  }
  if (ctx.launcher.empty() || ctx.launcher.front().empty()) {
    throw HarnessError(
        "Cannot tell how to start meshwire; run it by its full path or through "
        "npx.");
  }
  if (!std::filesystem::path(ctx.home_dir).is_absolute()) {
    throw HarnessError("Cannot find your home folder; set HOME (USERPROFILE on Windows).");
  }
  if (!std::filesystem::path(ctx.workspace_dir).is_absolute()) {
    throw HarnessError("Cannot tell the workspace folder; run meshwire init inside it.");
  }
}

std::string InHome(const HarnessContext& ctx, const std::filesystem::path& relative) {
  return (std::filesystem::path(ctx.home_dir) / relative).string();
}

std::filesystem::path ToolHome(const HarnessContext& ctx, const std::string& set,
                               const char* default_folder) {
  return set.empty() ? std::filesystem::path(ctx.home_dir) / default_folder
                     : std::filesystem::path(set);
}

std::string InWorkspace(const HarnessContext& ctx, const std::filesystem::path& relative) {
  return (std::filesystem::path(ctx.workspace_dir) / relative).string();
}

McpServer MeshwireServer(const HarnessContext& ctx, Scope scope, std::string type) {
  McpServer server;
  server.type = std::move(type);
  const std::vector<std::string>& launcher =
      scope == Scope::kWorkspace && !ctx.workspace_launcher.empty() ? ctx.workspace_launcher : ctx.launcher;
  server.command = launcher.front();
  server.args.assign(launcher.begin() + 1, launcher.end());
  server.args.push_back("mcp");
  // Empty values are left out: an empty variable would hide the value from
  // .mesh.json or ~/.meshwire. The token is never put here.
  if (!ctx.url.empty()) server.env.emplace_back("MESHWIRE_URL", ctx.url);
  if (scope == Scope::kWorkspace) {
    server.args.insert(server.args.end(), {"--mesh", ctx.mesh_id});
    const std::string& name = ctx.workspace_agent_name.empty() ? ctx.agent_name : ctx.workspace_agent_name;
    if (!name.empty()) server.env.emplace_back("MESHWIRE_AGENT_NAME", name);
  } else {
    server.args.insert(server.args.end(), {"--default-mesh", ctx.mesh_id});
    if (!ctx.agent_name.empty()) server.args.insert(server.args.end(), {"--default-name", ctx.agent_name});
    // What an older meshwire wrote there would still pin every workspace.
    server.unset_env = {"MESHWIRE_AGENT_NAME", "MESHWIRE_MESH_ID"};
  }
  return server;
}

McpServer RemoteServer(const HarnessContext& ctx, std::string type, std::string url_key,
                       const std::string& token_ref) {
  McpServer server;
  server.type = std::move(type);
  server.url = ctx.url + "/mesh/" + ctx.mesh_id + "/mcp" + (ctx.agent_name.empty() ? "" : "?agent=" + ctx.agent_name);
  server.url_key = std::move(url_key);
  server.headers.emplace_back("Authorization", "Bearer " + token_ref);
  return server;
}

std::string RemoteTokenStep(const HarnessContext& ctx, const std::string& client) {
  return "Give " + client + " a token in MESHWIRE_TOKEN (the entry reads it from the environment; the file "
         "holds none): a token for this mesh alone is the one to hand a client, e.g. `meshwire token create "
         "--mesh " + ctx.mesh_id + " --name " + (ctx.agent_name.empty() ? "remote" : ctx.agent_name) +
         "`, then `export MESHWIRE_TOKEN=<the token>` where you start " + client + ".";
}

void RefuseRemote(const HarnessContext& ctx, const std::string& client) {
  if (!ctx.remote) return;
  throw HarnessError("--remote: " + client + " has no URL form for MCP servers that meshwire can write; run "
                     "`meshwire init` for it without --remote (the local `meshwire mcp` server).");
}

}  // namespace harness_internal

}  // namespace meshwire::cli
