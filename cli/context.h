// What most commands share: the common flags (--url, --token, --mesh, --name,
// --json), the resolved configuration, a RelayClient, and the steps that turn
// "no token" or "no mesh" into a sentence saying what to run.
#pragma once

#include <CLI/CLI.hpp>
#include <memory>
#include <string>

#include "cli/ui.h"
#include "relay-client/config.h"
#include "relay-client/relay_client.h"

namespace meshwire::cli {

/// A usage/configuration problem: status 2 (exit code 2).
Error ConfigError(const std::string& message);

/// For an option or argument that must not be empty when given: `--to
/// "$PEER"` with PEER unset is a usage error, never a silent default.
/// `give` says what to give instead, e.g. "give the mesh id, or leave --mesh out".
CLI::Validator NotEmpty(const std::string& give);

class CommandContext {
 public:
  /// Adds the common flags to `app`; `with_agent` adds --name too.
  void AddFlags(CLI::App& app, bool with_mesh = true, bool with_agent = true, bool with_json = true);

  /// Resolves the configuration (call after parsing).
  const ClientConfig& config();
  /// The token, or throws ConfigError("No credentials found: run `meshwire login` ...").
  const std::string& RequireToken();
  /// Why the configured token can never work (spaces or line breaks in it,
  /// which no HTTP header carries), naming where it came from; else "".
  std::string TokenFormatProblem();
  /// The mesh id, or throws ConfigError naming how to choose one, or what
  /// to fix in a broken .mesh.json whose mesh no flag or variable replaces.
  const std::string& RequireMesh();
  /// The sentence for a broken .mesh.json when `setting` (the mesh or the
  /// agent name) came from below it, so it stands in for the file's; else "".
  std::string MeshJsonProblem(const Setting& setting);
  /// Makes `mesh_id` this command's mesh where nothing chose one (init's
  /// choice for a new user, saved as the active mesh).
  void ChooseMesh(const std::string& mesh_id) {
    config();
    config_.mesh_id = Setting{mesh_id, "config.json"};
  }
  /// For init, which rewrites .mesh.json: its problems are not fatal.
  void TolerateBrokenMeshJson() { tolerate_mesh_json_ = true; }
  /// The signed-in user: credentials.json's, else the relay's answer to /me.
  const std::string& User();
  /// The agent name for this process (config, else `fallback`).
  std::string AgentName(const std::string& fallback = "cli-agent");
  /// A client for the configured relay (token required unless `anonymous`).
  RelayClient& Client(RetryPolicy retry = RetryPolicy::None(), bool anonymous = false);
  /// Why agent name `name` (as AgentName gave it) cannot be used, naming
  /// where it came from (or what to fix in a broken .mesh.json whose agent
  /// no flag or variable replaces); empty when it is valid. `example` is the
  /// name to suggest.
  std::string InvalidAgentName(const std::string& name, const std::string& example = "cli-agent");
  /// Registers (or finds) this process's agent in the mesh; returns its id.
  /// An invalid name is a ConfigError (exit 2) saying where it came from.
  std::string EnsureAgent(const std::string& harness = "cli");

  bool json() const { return json_; }
  const Ui& ui() const { return ui_; }
  ConfigFlags& flags() { return flags_; }

 private:
  std::string user_;  // User()'s answer, once asked
  ConfigFlags flags_;
  std::string url_, token_, mesh_, name_;
  bool json_ = false;
  bool resolved_ = false;
  bool tolerate_mesh_json_ = false;
  ClientConfig config_;
  std::unique_ptr<RelayClient> client_;
  Ui ui_;
};

/// Parses `app`; on --help or a parse error prints and returns the exit code
/// (0 for help, 2 for errors) in `exit_code` and false.
bool Parse(CLI::App& app, int argc, char** argv, int& exit_code);

}  // namespace meshwire::cli
