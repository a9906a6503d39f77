// Shared machinery of the `init --harness` generators: read the files a
// generator wants to change, merge one MCP server entry into a JSON, YAML or
// TOML file (everything else in the file untouched), merge KEY=value lines
// into an env file, and write every file atomically with a PATH.bak copy of
// its previous content.
//
// A generator first plans all its files (reading and validating each one, so
// an invalid file stops it before anything is written), then applies the plan.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cli/harness/harness.h"

namespace meshwire::cli::harness_internal {

using EnvVars = std::vector<std::pair<std::string, std::string>>;

/// The MCP server entry an MCP harness writes, whatever the file format.
struct McpServer {
  std::string type;  // "stdio" for clients whose entry carries a type, else empty
  std::string command;
  std::vector<std::string> args;
  EnvVars env;  // set in the entry's env; other variables already there are kept
  // Variables removed from an existing entry's env: ones an older meshwire
  // wrote that would now pin what the workspace should decide.
  std::vector<std::string> unset_env;
  // TOML (Codex) only: names of variables the client passes on from its own
  // environment (`env_vars = [...]`), merged with those already listed.
  std::vector<std::string> pass_env;

  // The remote form (`init --remote`): when `url` is set the client connects
  // to the relay's MCP endpoint itself, and the entry has no command, args or
  // env. `url_key`: the client's key for it ("url", "httpUrl", "serverUrl").
  std::string url;
  std::string url_key = "url";
  EnvVars headers;          // merged into the entry's headers (JSON clients)
  std::string bearer_env;   // TOML (Codex): bearer_token_env_var
  bool remote() const { return !url.empty(); }
};

/// The mesh an entry's args name (after --mesh or --default-mesh), or "".
std::string MeshInArgs(const std::vector<std::string>& args);

/// Appends a warning to `notes` when the entry in `path` used to name
/// another mesh (its args `old_args`) than `server` does.
void NoteMeshChange(const std::string& path, const std::vector<std::string>& old_args,
                    const McpServer& server, std::vector<std::string>& notes);

/// Where the entry goes: `container.name`, e.g. mcpServers.meshwire.
struct EntryPath {
  std::string_view container;
  std::string_view name;
};

/// Where the backup of `target`, about to be changed from `content`, goes:
/// target.bak, or when that exists the first free target.bak.1, .bak.2, ...
/// (no backup is overwritten), unless one of them holds `content` already
/// (`exists`: nothing to write). `single`: always target.bak, overwritten.
struct BackupPlace {
  std::filesystem::path path;
  bool exists = false;
};
BackupPlace PlaceBackup(const std::filesystem::path& target, const std::string& content, bool single);

/// JSONC's trailing commas (before a `}` or `]`, outside strings and
/// comments) turned into spaces, so the text keeps its length.
std::string WithoutTrailingCommas(std::string_view text);

/// Merges `server` into JSON text `old_text` (empty or whitespace: an empty
/// object) at `at` and returns the new text, 2-space indented with a trailing
/// newline; returns `old_text` itself when the entry is already there. Keys
/// keep their order. Fields of an existing entry other than type, command,
/// args and env are kept (except another transport's: url, headers, ...).
/// JSONC (comments, trailing commas) is accepted; if it must change, it is
/// written as plain JSON and a sentence saying so is appended to `notes`.
/// Throws HarnessError naming `path` when the text is not a JSON object or
/// the container is not an object.
std::string MergeJsonServer(const std::string& path, const std::string& old_text, EntryPath at,
                            const McpServer& server, std::vector<std::string>& notes);

/// The same for YAML: the file keeps its comments and layout; only the lines
/// of the entry are replaced or added (if that cannot be done safely the file
/// is re-emitted, comments lost, and a note appended). The result is checked
/// by parsing it again: every other value is unchanged. Throws HarnessError
/// for invalid YAML, several documents, a root that is not a mapping, or a
/// container that is not a mapping.
std::string MergeYamlServer(const std::string& path, const std::string& old_text, EntryPath at,
                            const McpServer& server, std::vector<std::string>& notes);

/// The same for TOML: the table [container.name] (and its sub-tables) is
/// replaced, or added after the other [container.*] tables or at the end;
/// the rest of the file is kept byte for byte (if that cannot be done, the
/// file is re-serialized by toml++, comments lost, and a note appended).
std::string MergeTomlServer(const std::string& path, const std::string& old_text, EntryPath at,
                            const McpServer& server, std::vector<std::string>& notes);

/// Sets `vars` in env-file text (KEY=value lines): an existing line for a
/// key gets the new value (an `export ` prefix is kept), missing keys are
/// appended, other lines are kept. Values with characters a shell would
/// split on are single-quoted. Empty values are skipped.
std::string MergeEnvText(const std::string& old_text, const EnvVars& vars);

/// Appends the lines of `lines` that `old_text` lacks (a line matches itself
/// or itself with a leading "/", ignoring trailing blanks), after a comment
/// line `comment`. Returns `old_text` when nothing is missing.
std::string EnsureLinesText(const std::string& old_text, const std::vector<std::string>& lines,
                            std::string_view comment);

/// The files one generator writes, planned before anything is written.
class FilePlan {
 public:
  /// Plans `path` to hold exactly `content`: a file meshwire owns. `mode`,
  /// when given, is also enforced on an existing file (0600 for secrets);
  /// otherwise an existing file keeps its mode and a new one gets 0644
  /// (less the umask).
  void Put(const std::string& path, std::string content, std::optional<unsigned> mode = {});
  /// Plans the MCP entry `at` in the JSON, YAML or TOML file `path`, read now.
  void MergeJson(const std::string& path, EntryPath at, const McpServer& server);
  void MergeYaml(const std::string& path, EntryPath at, const McpServer& server);
  void MergeToml(const std::string& path, EntryPath at, const McpServer& server);
  /// Plans `vars` in the env file `path` (mode 0600: it may hold the token).
  void MergeEnv(const std::string& path, const EnvVars& vars);
  /// Plans the missing `lines` at the end of `path`, which is created when
  /// it does not exist. Only appended to, it keeps no PATH.bak: the file as
  /// it was is its first lines (a .gitignore.bak would itself show in git).
  void EnsureLines(const std::string& path, const std::vector<std::string>& lines,
                   std::string_view comment);

  /// Writes the planned files, then `ctx.also_write`, in two steps: each
  /// new content (and the PATH.bak copy of a changed existing file, same
  /// mode, unless it was only appended to) goes to a temporary file beside
  /// its target and is flushed; only when every one is written are they
  /// renamed into place, in order. So a
  /// failure leaves every file as it was. Unchanged files are left alone;
  /// parent folders are created; a symbolic link stays a link (its target is
  /// written). Returns every planned file with its action, then the notes
  /// gathered while planning followed by `next_steps`. Throws HarnessError
  /// when a file cannot be written. With `ctx.dry_run` nothing is written and
  /// the actions are those a real run would take.
  HarnessResult Apply(const HarnessContext& ctx, std::vector<std::string> next_steps) const;

 private:
  using ServerMerger = std::string (*)(const std::string&, const std::string&, EntryPath,
                                       const McpServer&, std::vector<std::string>&);
  void MergeServer(const std::string& path, EntryPath at, const McpServer& server,
                   ServerMerger merge);

  struct Planned {
    std::string path;
    std::optional<std::string> old_content;  // nullopt: the file does not exist
    std::string new_content;
    std::optional<unsigned> mode;
    bool backup = true;  // a changed existing file keeps PATH.bak
  };

  std::vector<Planned> files_;
  std::vector<std::string> notes_;
};

/// The content of `path`, or nullopt when there is no such file. Throws
/// HarnessError when it exists but is a folder or cannot be read.
std::optional<std::string> ReadFileIfExists(const std::string& path);

/// The sentence for a file that cannot be parsed or has the wrong shape:
/// "PATH <problem>; fix it or move it away, then run `meshwire init` again."
HarnessError InvalidFileError(const std::string& path, const std::string& problem);

/// Line-ending helpers for text edits: whether every "\n" in `text` is part
/// of "\r\n"; `text` with "\r\n" turned into "\n"; and back.
bool UsesCrlf(std::string_view text);
std::string ToLf(std::string_view text);
std::string ToCrlf(std::string_view text);

/// Text helpers for the line edits: the lines of `text` without their "\n"
/// (a last line without one included); `s` without leading blanks (spaces,
/// tabs); whether `s` holds only blanks and line ends.
std::vector<std::string> SplitLines(const std::string& text);
std::string_view TrimLeft(std::string_view s);
bool IsBlank(std::string_view s);

/// Keys of an existing entry that belong to a transport other than stdio;
/// merging a stdio entry drops them.
bool IsOtherTransportKey(std::string_view key);
/// Keys of a stdio entry (command, args, env, cwd, env_vars); merging a
/// remote entry drops them.
bool IsStdioKey(std::string_view key);

}  // namespace meshwire::cli::harness_internal
