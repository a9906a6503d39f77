// The generators behind Harnesses() (harness.cc), one per harness, and what
// they share: the context checks, the paths and the MCP entry.
#pragma once

#include <filesystem>
#include <string>

#include "cli/harness/config_files.h"
#include "cli/harness/harness.h"

namespace meshwire::cli::harness_internal {

/// The server name every harness registers MeshWire under.
inline constexpr std::string_view kServerName = "meshwire";

/// Throws HarnessError unless `ctx` has what every generator needs: a mesh
/// id, a launcher, and absolute home and workspace folders.
void CheckContext(const HarnessContext& ctx);

/// `ctx.home_dir` / `relative`, and `ctx.workspace_dir` / `relative`.
std::string InHome(const HarnessContext& ctx, const std::filesystem::path& relative);
std::string InWorkspace(const HarnessContext& ctx, const std::filesystem::path& relative);
/// A tool's own folder: `set` (its environment variable) when not empty, else
/// `default_folder` in the home folder (e.g. CODEX_HOME, else ~/.codex).
std::filesystem::path ToolHome(const HarnessContext& ctx, const std::string& set,
                               const char* default_folder);

/// Whom an MCP entry serves: one workspace (.mcp.json, .vscode/mcp.json) or
/// every workspace of the user (~/.gemini/settings.json, ~/.codex/...).
enum class Scope { kWorkspace, kUserWide };

/// The stdio MCP server entry: command = launcher[0], args = launcher[1..] +
/// "mcp" and the mesh, env = MESHWIRE_URL (never the token). A workspace's
/// entry pins its mesh and name (--mesh, MESHWIRE_AGENT_NAME); a user-wide
/// entry only gives defaults (--default-mesh, --default-name), so each
/// workspace's .mesh.json keeps its own mesh and name. `type` is "stdio" or
/// empty for clients without it.
McpServer MeshwireServer(const HarnessContext& ctx, Scope scope, std::string type = "");

/// The remote entry (`init --remote`): the relay's MCP endpoint for this
/// mesh and agent (`<url>/mesh/<mesh>/mcp?agent=<name>`), with
/// `Authorization: Bearer <token_ref>`, where `token_ref` is how the client
/// reads MESHWIRE_TOKEN from its environment ("${MESHWIRE_TOKEN}",
/// "${env:MESHWIRE_TOKEN}", ...): the token itself is never written.
McpServer RemoteServer(const HarnessContext& ctx, std::string type, std::string url_key,
                       const std::string& token_ref);
/// The next step of every remote entry: which token to export.
std::string RemoteTokenStep(const HarnessContext& ctx, const std::string& client);
/// Throws HarnessError for --remote with a harness that has no URL form.
void RefuseRemote(const HarnessContext& ctx, const std::string& client);

// MCP clients (mcp_harnesses.cc).
HarnessResult GenerateClaude(const HarnessContext& ctx);
HarnessResult GenerateCursor(const HarnessContext& ctx);
HarnessResult GenerateClaudeCode(const HarnessContext& ctx);
HarnessResult GenerateVsCode(const HarnessContext& ctx);
HarnessResult GenerateWindsurf(const HarnessContext& ctx);
HarnessResult GenerateGemini(const HarnessContext& ctx);
HarnessResult GenerateCodex(const HarnessContext& ctx);

// Extensions and skills (agent_harnesses.cc).
HarnessResult GenerateCopilot(const HarnessContext& ctx);
HarnessResult GenerateHermes(const HarnessContext& ctx);
HarnessResult GeneratePi(const HarnessContext& ctx);

/// The skill text for Hermes and Pi (MESHWIRE_SKILL.md), without front matter.
std::string SkillText();

}  // namespace meshwire::cli::harness_internal
