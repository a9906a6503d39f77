// `meshwire init --harness H`: one generator per harness writes the files the
// real client loads (docs/API.md, "What init --harness writes"). Generators
// only write files; registering the agent and writing .mesh.json is init's.
//
// Every generator:
// - merges into existing files: other entries and settings untouched, the
//   file still valid JSON/YAML/TOML, a copy of the old file kept as PATH.bak;
// - is idempotent: a second run with the same context changes nothing (and
//   makes no new backup);
// - never puts the token in a file meant to be committed (.mesh.json,
//   .mcp.json, .vscode/mcp.json); those rely on ~/.meshwire/credentials.json
//   or MESHWIRE_TOKEN;
// - reports every file it touched, in order.
// Failures (unreadable or invalid existing file, no permission) throw
// HarnessError with a sentence that names the file and what to do; nothing
// is half-written (no file is replaced until every one has been written).
#pragma once

#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "relay-client/config.h"

namespace meshwire::cli {

struct HarnessContext {
  std::string mesh_id;
  std::string agent_name;     // the name this user's agent is registered as
  // What files shared with teammates (a workspace's MCP entries) name: a
  // teammate's agent when .mesh.json names one (each user's meshwire maps it
  // to their own through ~/.meshwire/config.json); empty: agent_name.
  std::string workspace_agent_name;
  std::string url;            // the relay, e.g. http://127.0.0.1:7420
  std::string token;          // only for files that are never committed (.env.meshwire)
  std::string workspace_dir;  // absolute: where .mesh.json lives
  std::string home_dir;       // absolute: the user's home
  std::string platform;       // "linux", "macos" or "windows"
  std::string appdata;        // %APPDATA% on Windows (may be empty elsewhere)
  std::string copilot_home;   // $COPILOT_HOME, or empty for ~/.copilot
  std::string hermes_home;    // $HERMES_HOME, or empty for ~/.hermes
  std::string codex_home;     // $CODEX_HOME, or empty for ~/.codex
  std::string xdg_config_home;  // Linux: $XDG_CONFIG_HOME, or empty for ~/.config
  bool project = false;       // cursor: .cursor/mcp.json in the workspace
  bool remote = false;        // the URL form: the client connects to the relay's MCP endpoint
  // Plan only: read and check every file and report what would change, write
  // nothing (init runs this first, so a bad existing file stops it before it
  // writes .mesh.json or registers the agent).
  bool dry_run = false;
  // How an MCP client starts meshwire: {command, args...} before "mcp", e.g.
  // {"/usr/bin/meshwire"} or {"npx", "meshwire"}.
  std::vector<std::string> launcher;
  // The same for files meant to be committed (.mcp.json, .vscode/mcp.json):
  // {"meshwire"} when PATH finds this very executable by that name, so the
  // file holds no path of this machine; empty: `launcher`.
  std::vector<std::string> workspace_launcher;
  // Files init writes in the same step as the harness's own (.mesh.json):
  // exactly `content`, 0644 when new, no backup, not listed in
  // HarnessResult::files. Every file of the step is first written and flushed
  // beside its target; only then are they renamed into place, so a failure
  // (a full disk) leaves every one of them as it was.
  struct ExtraFile {
    std::string path;
    std::string content;
  };
  std::vector<ExtraFile> also_write;
};

struct FileChange {
  std::string path;    // absolute
  std::string action;  // "created", "updated" or "unchanged"
  std::string backup;  // the .bak path when an existing file was changed, else empty
};

struct HarnessResult {
  std::vector<FileChange> files;
  std::vector<std::string> next_steps;  // e.g. "Restart Claude Desktop to load the MeshWire MCP server."
};

class HarnessError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct Harness {
  const char* name;                // "copilot", "claude", ...
  const char* default_agent_name;  // "copilot-agent", "claude-agent", ...
  const char* title;               // "Copilot", "Claude", ... as in "✓ Copilot harness ready!"
  HarnessResult (*generate)(const HarnessContext& ctx);
  bool has_remote;                 // `init --remote` can write its URL form
};

/// Every harness, in the order `meshwire init --help` lists them.
std::span<const Harness> Harnesses();
/// The harness named `name`, or nullptr.
const Harness* FindHarness(std::string_view name);
/// The platform whose default agent the workspace names (the harness
/// .mesh.json records, when its agent name, or in a teammate's clone this
/// user's own name for it, is that platform's default): another platform
/// wired there then gets an agent of its own. nullptr when the workspace
/// names an agent the user chose, or none.
const Harness* PlatformNamingWorkspaceAgent(const ClientConfig& c);

/// Embedded sources (generated at build time from packaging/): the Copilot
/// extension module (packaging/npm/extension.mjs) and the Pi extension
/// (packaging/pi/meshwire.ts).
std::string_view CopilotExtensionSource();
std::string_view PiExtensionSource();

/// Throws the HarnessError a write of `path` would end in, found without
/// writing anything: `path` a folder, a file where a folder on its way
/// should be, a folder the user cannot write in. init runs it (with each
/// harness's dry run) before it registers the agent, so a file it cannot
/// write leaves nothing behind on the relay either.
void CheckCanWrite(const std::string& path);

}  // namespace meshwire::cli
