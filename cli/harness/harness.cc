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
    {"copilot", "copilot-agent", "Copilot", &hi::GenerateCopilot},
    {"claude", "claude-agent", "Claude", &hi::GenerateClaude},
    {"cursor", "cursor-agent", "Cursor", &hi::GenerateCursor},
    {"claude-code", "claude-code-agent", "Claude Code", &hi::GenerateClaudeCode},
    {"vscode", "vscode-agent", "VS Code", &hi::GenerateVsCode},
    {"windsurf", "windsurf-agent", "Windsurf", &hi::GenerateWindsurf},
    {"gemini", "gemini-agent", "Gemini", &hi::GenerateGemini},
    {"codex", "codex-agent", "Codex", &hi::GenerateCodex},
    {"hermes", "hermes-agent", "Hermes", &hi::GenerateHermes},
    {"pi", "pi-agent", "Pi", &hi::GeneratePi},
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
  server.command = ctx.launcher.front();
  server.args.assign(ctx.launcher.begin() + 1, ctx.launcher.end());
  server.args.push_back("mcp");
  // Empty values are left out: an empty variable would hide the value from
  // .mesh.json or ~/.meshwire. The token is never put here.
  if (!ctx.url.empty()) server.env.emplace_back("MESHWIRE_URL", ctx.url);
  if (scope == Scope::kWorkspace) {
    server.args.insert(server.args.end(), {"--mesh", ctx.mesh_id});
    if (!ctx.agent_name.empty()) server.env.emplace_back("MESHWIRE_AGENT_NAME", ctx.agent_name);
  } else {
    server.args.insert(server.args.end(), {"--default-mesh", ctx.mesh_id});
    if (!ctx.agent_name.empty()) server.args.insert(server.args.end(), {"--default-name", ctx.agent_name});
    // What an older meshwire wrote there would still pin every workspace.
    server.unset_env = {"MESHWIRE_AGENT_NAME", "MESHWIRE_MESH_ID"};
  }
  return server;
}

}  // namespace harness_internal

}  // namespace meshwire::cli
