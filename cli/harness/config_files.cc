// File reading, atomic writing with backups, and the JSON, env-file and
// line-list merges of the harness generators (YAML and TOML: config_yaml.cc,
// config_toml.cc).
#include "cli/harness/config_files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <utility>

namespace meshwire::cli::harness_internal {

namespace fs = std::filesystem;

namespace {

using OrderedJson = nlohmann::ordered_json;

constexpr unsigned kDefaultMode = 0644;

/// The process umask, read once (umask() can only be read by setting it).
unsigned ProcessUmask() {
  static const unsigned kUmask = [] {
    mode_t old = ::umask(022);
    ::umask(old);
    return static_cast<unsigned>(old);
  }();
  return kUmask;
}

std::string Errno() {
  return std::strerror(errno);
}

/// A new content for `target`, written and flushed to a temporary file in
/// the same folder; Commit() renames it into place, so readers see the old
/// file or the new one, never a part. Removed if never committed.
class StagedFile {
 public:
  StagedFile(fs::path target, std::string_view content, unsigned mode) : target_(std::move(target)) {
    const fs::path dir = target_.parent_path();
    std::error_code ec;
    if (!dir.empty()) fs::create_directories(dir, ec);
    if (ec) {
      throw HarnessError("Cannot create the folder " + dir.string() + ": " + ec.message() +
                         "; check its permissions.");
    }
    tmp_ = (dir / ("." + target_.filename().string() + ".meshwire-XXXXXX")).string();
    int fd = ::mkstemp(tmp_.data());
    if (fd < 0) {
      tmp_.clear();
      throw HarnessError("Cannot write " + target_.string() + ": " + Errno() +
                         "; check that you can write to " + dir.string() + ".");
    }
    auto fail = [&](const std::string& what) {
      std::string reason = Errno();
      ::close(fd);
      throw HarnessError("Cannot " + what + " " + target_.string() + ": " + reason +
                         "; check the disk and the folder's permissions.");
    };
    const char* data = content.data();
    size_t left = content.size();
    while (left > 0) {
      ssize_t n = ::write(fd, data, left);
      if (n < 0) {
        if (errno == EINTR) continue;
        fail("write");
      }
      data += n;
      left -= static_cast<size_t>(n);
    }
    if (::fchmod(fd, static_cast<mode_t>(mode)) != 0) fail("set the mode of");
    if (::fsync(fd) != 0) fail("flush");
    if (::close(fd) != 0) {
      throw HarnessError("Cannot write " + target_.string() + ": " + Errno() + ".");
    }
  }
  StagedFile(StagedFile&& other) noexcept
      : target_(std::move(other.target_)), tmp_(std::exchange(other.tmp_, {})) {}
  StagedFile& operator=(StagedFile&&) = delete;
  ~StagedFile() {
    if (!tmp_.empty()) ::unlink(tmp_.c_str());
  }

  void Commit() {
    if (::rename(tmp_.c_str(), target_.c_str()) != 0) {
      throw HarnessError("Cannot replace " + target_.string() + ": " + Errno() +
                         "; check that you can write to " + target_.parent_path().string() + ".");
    }
    tmp_.clear();
  }

 private:
  fs::path target_;
  std::string tmp_;  // empty once renamed (or never made)
};

/// The file a write to `path` must replace: the target of a symbolic link
/// (so the link survives), else `path` itself.
fs::path WriteTarget(const std::string& path) {
  std::error_code ec;
  if (fs::is_symlink(path, ec)) {
    fs::path target = fs::weakly_canonical(path, ec);
    if (!ec) return target;
  }
  return path;
}

/// The permission bits of `path`, or `fallback` when it cannot be read.
unsigned ModeOr(const fs::path& path, unsigned fallback) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return fallback;
  return static_cast<unsigned>(st.st_mode & 07777);
}

/// nlohmann's message without its "[json.exception.parse_error.101] " prefix.
std::string JsonProblem(const std::exception& e) {
  std::string what = e.what();
  if (auto end = what.find("] "); what.starts_with("[json.exception") && end != std::string::npos) {
    what = what.substr(end + 2);
  }
  return what;
}

bool SameJson(const OrderedJson& a, const OrderedJson& b) {
  // ordered_json compares objects in key order; the entry's meaning does not
  // depend on it.
  return nlohmann::json::parse(a.dump()) == nlohmann::json::parse(b.dump());
}

/// The entry `existing` (any JSON, null when absent) with `server` merged in.
OrderedJson MergedJsonEntry(const OrderedJson& existing, const McpServer& server) {
  OrderedJson entry = existing.is_object() ? existing : OrderedJson::object();
  if (server.remote()) {
    for (auto it = entry.begin(); it != entry.end();) {
      const bool drop = IsStdioKey(it.key()) || (IsOtherTransportKey(it.key()) && it.key() != "headers");
      it = drop ? entry.erase(it) : std::next(it);
    }
    if (!server.type.empty()) {
      entry["type"] = server.type;
    } else {
      entry.erase("type");
    }
    entry[server.url_key] = server.url;
    OrderedJson headers =
        entry.contains("headers") && entry["headers"].is_object() ? entry["headers"] : OrderedJson::object();
    for (const auto& [key, value] : server.headers) headers[key] = value;
    entry["headers"] = headers;
    return entry;
  }
  for (auto it = entry.begin(); it != entry.end();) {
    it = IsOtherTransportKey(it.key()) ? entry.erase(it) : std::next(it);
  }
  if (!server.type.empty()) {
    entry["type"] = server.type;
  } else if (entry.contains("type") && entry["type"] != "stdio") {
    entry.erase("type");
  }
  entry["command"] = server.command;
  entry["args"] = server.args;
  OrderedJson env =
      entry.contains("env") && entry["env"].is_object() ? entry["env"] : OrderedJson::object();
  for (const auto& [key, value] : server.env) env[key] = value;
  for (const std::string& key : server.unset_env) env.erase(key);
  entry["env"] = env;
  return entry;
}

/// The string items of an entry's "args" (nothing when absent or odd).
std::vector<std::string> JsonArgs(const OrderedJson& entry) {
  std::vector<std::string> args;
  if (!entry.is_object() || !entry.contains("args") || !entry["args"].is_array()) return args;
  for (const OrderedJson& a : entry["args"]) args.push_back(a.is_string() ? a.get<std::string>() : "");
  return args;
}

/// A value as a shell and dotenv readers take it back.
std::string EnvValue(const std::string& value) {
  bool plain = !value.empty() && value.find_first_not_of(
                                     "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                     "0123456789_-.,:/@%+=") == std::string::npos;
  if (plain) return value;
  std::string quoted = "'";
  for (char c : value) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return quoted + "'";
}

std::string_view TrimRight(std::string_view s) {
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

}  // namespace

std::vector<std::string> SplitLines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

std::string_view TrimLeft(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  return s;
}

bool IsBlank(std::string_view s) {
  return s.find_first_not_of(" \t\r\n") == std::string_view::npos;
}

std::string MeshInArgs(const std::vector<std::string>& args) {
  for (size_t i = 0; i + 1 < args.size(); ++i) {
    if (args[i] == "--mesh" || args[i] == "--default-mesh") return args[i + 1];
  }
  return "";
}

void NoteMeshChange(const std::string& path, const std::vector<std::string>& old_args,
                    const McpServer& server, std::vector<std::string>& notes) {
  const std::string was = MeshInArgs(old_args);
  const std::string now = MeshInArgs(server.args);
  if (was.empty() || now.empty() || was == now) return;
  const bool follows_workspace =
      std::find(server.args.begin(), server.args.end(), "--default-mesh") != server.args.end();
  notes.push_back(
      "Warning: the meshwire entry in " + path + " named mesh " + was + "; it now names " + now +
      (follows_workspace ? ", for workspaces without a .mesh.json only: a workspace with one "
                           "(as `meshwire init` writes) keeps the mesh named there."
                         : "."));
}

HarnessError InvalidFileError(const std::string& path, const std::string& problem) {
  return HarnessError(path + " " + problem +
                      "; fix it or move it away, then run `meshwire init` again.");
}

bool IsStdioKey(std::string_view key) {
  return key == "command" || key == "args" || key == "env" || key == "cwd" || key == "env_vars";
}

bool IsOtherTransportKey(std::string_view key) {
  static constexpr std::array<std::string_view, 8> kKeys = {"url",
                                                            "httpUrl",
                                                            "serverUrl",
                                                            "headers",
                                                            "http_headers",
                                                            "env_http_headers",
                                                            "bearer_token_env_var",
                                                            "transport"};
  for (std::string_view k : kKeys) {
    if (k == key) return true;
  }
  return false;
}

bool UsesCrlf(std::string_view text) {
  size_t lf = 0;
  size_t crlf = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '\n') continue;
    ++lf;
    if (i > 0 && text[i - 1] == '\r') ++crlf;
  }
  return lf > 0 && lf == crlf;
}

std::string ToLf(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\r' && i + 1 < text.size() && text[i + 1] == '\n') continue;
    out += text[i];
  }
  return out;
}

std::string ToCrlf(std::string_view text) {
  std::string out;
  out.reserve(text.size() + text.size() / 16);
  for (char c : text) {
    if (c == '\n') out += '\r';
    out += c;
  }
  return out;
}

std::optional<std::string> ReadFileIfExists(const std::string& path) {
  std::error_code ec;
  fs::file_status status = fs::status(path, ec);
  if (status.type() == fs::file_type::not_found) return std::nullopt;
  if (ec) {
    throw HarnessError("Cannot read " + path + ": " + ec.message() + "; check its permissions.");
  }
  if (fs::is_directory(status)) {
    throw HarnessError(path +
                       " is a folder, not a file; move it away, then run `meshwire init` "
                       "again.");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    throw HarnessError("Cannot read " + path + ": " + Errno() + "; check its permissions.");
  }
  std::ostringstream content;
  content << in.rdbuf();
  if (in.bad()) throw HarnessError("Cannot read " + path + "; check the disk.");
  return content.str();
}

std::string WithoutTrailingCommas(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  std::size_t pending_comma = std::string::npos;  // where in `out` a comma after a value is
  char last = 0;  // the last character outside strings and comments that is not white space
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '"') {  // a string, copied whole (escapes included)
      std::size_t end = i + 1;
      while (end < text.size() && text[end] != '"') end += text[end] == '\\' ? 2 : 1;
      end = std::min(end, text.size() - 1);
      out.append(text.substr(i, end - i + 1));
      i = end;
      pending_comma = std::string::npos;
      last = c;
    } else if (c == '/' && i + 1 < text.size() && (text[i + 1] == '/' || text[i + 1] == '*')) {
      // A comment, copied whole: it neither ends nor starts a trailing comma.
      const bool line = text[i + 1] == '/';
      std::size_t end = text.find(line ? "\n" : "*/", i + 2);
      end = end == std::string_view::npos ? text.size() : end + (line ? 0 : 2);
      out.append(text.substr(i, end - i));
      i = end - 1;
    } else if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
      out += c;
    } else {
      if ((c == '}' || c == ']') && pending_comma != std::string::npos) out[pending_comma] = ' ';
      // Only a comma after a value can trail: `{,}` and `[1,,]` stay errors.
      const bool after_value = last != 0 && last != '{' && last != '[' && last != ',' && last != ':';
      pending_comma = c == ',' && after_value ? out.size() : std::string::npos;
      out += c;
      last = c;
    }
  }
  return out;
}

std::string MergeJsonServer(const std::string& path, const std::string& old_text, EntryPath at,
                            const McpServer& server, std::vector<std::string>& notes) {
  OrderedJson root = OrderedJson::object();
  bool jsonc = false;  // comments or trailing commas (VS Code's files allow both)
  if (!IsBlank(old_text)) {
    try {
      root = OrderedJson::parse(old_text);
    } catch (const nlohmann::json::parse_error&) {
      try {
        // The same length as the text (commas become spaces): the error's position is the file's.
        root = OrderedJson::parse(WithoutTrailingCommas(old_text), nullptr, true, /*ignore_comments=*/true);
        jsonc = true;
      } catch (const nlohmann::json::parse_error& e) {
        throw InvalidFileError(path, "is not valid JSON (" + JsonProblem(e) + ")");
      }
    }
    if (!root.is_object()) throw InvalidFileError(path, "does not hold a JSON object");
  }
  const std::string container(at.container);
  const std::string name(at.name);
  if (root.contains(container) && !root[container].is_object() && !root[container].is_null()) {
    throw InvalidFileError(path, "has a \"" + container + "\" that is not a JSON object");
  }
  OrderedJson& servers = root[container];
  if (servers.is_null()) servers = OrderedJson::object();
  const OrderedJson existing = servers.contains(name) ? servers[name] : OrderedJson();
  try {
    OrderedJson merged = MergedJsonEntry(existing, server);
    if (!existing.is_null() && SameJson(existing, merged)) return old_text;
    NoteMeshChange(path, JsonArgs(existing), server, notes);
    servers[name] = std::move(merged);
    std::string text = root.dump(2) + "\n";
    if (jsonc) {
      notes.push_back(path + " held comments or trailing commas (JSONC); it is now plain JSON, and its backup, "
                      "named above, keeps the previous file.");
    }
    return UsesCrlf(old_text) ? ToCrlf(text) : text;
  } catch (const nlohmann::json::type_error&) {  // dump() of text that is not UTF-8
    throw HarnessError("Cannot write " + path +
                       ": the mesh id, agent name, URL or launcher path is not valid UTF-8 text.");
  }
}

std::string MergeEnvText(const std::string& old_text, const EnvVars& vars) {
  const bool crlf = UsesCrlf(old_text);
  std::vector<std::string> lines = SplitLines(ToLf(old_text));
  for (const auto& [key, value] : vars) {
    if (value.empty()) continue;
    bool found = false;
    for (std::string& line : lines) {
      std::string_view rest = TrimLeft(line);
      std::string prefix;
      if (rest.starts_with("export ")) {
        prefix = "export ";
        rest = TrimLeft(rest.substr(7));
      }
      if (!rest.starts_with(key)) continue;
      std::string_view after = TrimLeft(rest.substr(key.size()));
      if (!after.starts_with("=")) continue;
      line = prefix + key + "=" + EnvValue(value);
      found = true;
    }
    if (!found) lines.push_back(key + "=" + EnvValue(value));
  }
  std::string text;
  for (const std::string& line : lines) text += line + "\n";
  if (text == ToLf(old_text)) return old_text;
  return crlf ? ToCrlf(text) : text;
}

std::string EnsureLinesText(const std::string& old_text, const std::vector<std::string>& lines,
                            std::string_view comment) {
  std::vector<std::string> existing = SplitLines(old_text);
  std::vector<std::string> missing;
  for (const std::string& wanted : lines) {
    bool present = false;
    for (const std::string& line : existing) {
      std::string_view l = TrimRight(line);
      if (l == wanted || (l.starts_with("/") && l.substr(1) == wanted)) present = true;
    }
    if (!present) missing.push_back(wanted);
  }
  if (missing.empty()) return old_text;
  const std::string eol = UsesCrlf(old_text) ? "\r\n" : "\n";
  std::string text = old_text;
  if (!text.empty() && text.back() != '\n') text += eol;
  if (!comment.empty()) text += std::string(comment) + eol;
  for (const std::string& line : missing) text += line + eol;
  return text;
}

void FilePlan::Put(const std::string& path, std::string content, std::optional<unsigned> mode) {
  files_.push_back({path, ReadFileIfExists(path), std::move(content), mode});
}

void FilePlan::MergeServer(const std::string& path, EntryPath at, const McpServer& server,
                           ServerMerger merge) {
  std::optional<std::string> old = ReadFileIfExists(path);
  std::string text = merge(path, old.value_or(""), at, server, notes_);
  files_.push_back({path, std::move(old), std::move(text), std::nullopt});
}

void FilePlan::MergeJson(const std::string& path, EntryPath at, const McpServer& server) {
  MergeServer(path, at, server, MergeJsonServer);
}

void FilePlan::MergeYaml(const std::string& path, EntryPath at, const McpServer& server) {
  MergeServer(path, at, server, MergeYamlServer);
}

void FilePlan::MergeToml(const std::string& path, EntryPath at, const McpServer& server) {
  MergeServer(path, at, server, MergeTomlServer);
}

void FilePlan::MergeEnv(const std::string& path, const EnvVars& vars) {
  std::optional<std::string> old = ReadFileIfExists(path);
  std::string text = MergeEnvText(old.value_or(""), vars);
  files_.push_back({path, std::move(old), std::move(text), 0600u});
}

void FilePlan::EnsureLines(const std::string& path, const std::vector<std::string>& lines,
                           std::string_view comment) {
  std::optional<std::string> old = ReadFileIfExists(path);
  std::string text = EnsureLinesText(old.value_or(""), lines, comment);
  files_.push_back({path, std::move(old), std::move(text), std::nullopt, /*backup=*/false});
}

BackupPlace PlaceBackup(const fs::path& target, const std::string& content, bool single) {
  fs::path backup = target.string() + ".bak";
  if (single) return {backup, false};
  // Never over another backup: the first one holds the file as it was
  // before meshwire changed it (with its comments, say), or a user's own.
  // A content kept already is not kept twice (mesh A, B, A, B: two).
  std::error_code ec;
  for (int n = 1; fs::exists(fs::symlink_status(backup, ec)); ++n) {
    if (std::optional<std::string> kept = ReadFileIfExists(backup.string()); kept && *kept == content) {
      return {backup, true};
    }
    backup = target.string() + ".bak." + std::to_string(n);
  }
  return {backup, false};
}

HarnessResult FilePlan::Apply(const HarnessContext& ctx, std::vector<std::string> next_steps) const {
  const bool write = !ctx.dry_run;
  HarnessResult result;
  std::vector<StagedFile> staged;  // renamed into place once every one is written
  std::vector<std::pair<fs::path, unsigned>> chmods;
  for (const Planned& file : files_) {
    const fs::path target = WriteTarget(file.path);
    const unsigned new_file_mode = kDefaultMode & ~ProcessUmask();
    const unsigned current_mode = file.old_content ? ModeOr(target, new_file_mode) : new_file_mode;
    FileChange change{file.path, "unchanged", ""};
    if (file.old_content && *file.old_content == file.new_content) {
      if (file.mode && current_mode != *file.mode) {
        chmods.emplace_back(target, *file.mode);
        change.action = "updated";
      }
      result.files.push_back(std::move(change));
      continue;
    }
    const unsigned mode = file.mode.value_or(current_mode);
    if (file.old_content && file.backup) {
      // A file of meshwire's own with a set mode (the token's) keeps one
      // backup, as private as the file: earlier tokens do not pile up.
      const BackupPlace backup = PlaceBackup(target, *file.old_content, /*single=*/file.mode.has_value());
      if (write && !backup.exists) staged.emplace_back(backup.path, *file.old_content, mode);
      change.backup = backup.path.string();
    }
    change.action = file.old_content ? "updated" : "created";
    if (write) {
      staged.emplace_back(target, file.new_content, mode);
    } else {
      CheckCanWrite(file.path);
    }
    result.files.push_back(std::move(change));
  }
  if (write) {
    for (const HarnessContext::ExtraFile& extra : ctx.also_write) {
      const fs::path target = WriteTarget(extra.path);
      staged.emplace_back(target, extra.content, ModeOr(target, kDefaultMode & ~ProcessUmask()));
    }
    for (const auto& [target, mode] : chmods) {
      if (::chmod(target.c_str(), static_cast<mode_t>(mode)) != 0) {
        char octal[8];
        std::snprintf(octal, sizeof octal, "%o", mode);
        throw HarnessError("Cannot set the mode of " + target.string() + ": " + Errno() + "; run chmod " +
                           octal + " " + target.string() + ".");
      }
    }
    for (StagedFile& file : staged) file.Commit();
  }
  result.next_steps = notes_;
  result.next_steps.insert(result.next_steps.end(), next_steps.begin(), next_steps.end());
  return result;
}

}  // namespace meshwire::cli::harness_internal

namespace meshwire::cli {

void CheckCanWrite(const std::string& path) {
  namespace fs = std::filesystem;
  const fs::path target = harness_internal::WriteTarget(path);
  std::error_code ec;
  if (fs::is_directory(target, ec)) {
    throw HarnessError("Cannot write " + target.string() + ": it is a folder; move it away, then run init again.");
  }
  // The nearest folder on the way that exists: the one the first new folder
  // (or the file itself) is made in.
  const fs::path dir = target.parent_path();
  fs::path existing = dir;
  while (!existing.empty() && !fs::exists(existing, ec) && existing != existing.parent_path()) {
    existing = existing.parent_path();
  }
  if (existing.empty()) return;  // a relative path in the current folder: as writable as anything here
  if (!fs::is_directory(existing, ec)) {
    throw HarnessError((existing == dir ? "Cannot write " + target.string() : "Cannot create the folder " + dir.string()) +
                       ": " + existing.string() + " is a file, not a folder; move it away, then run init again.");
  }
  if (::access(existing.c_str(), W_OK | X_OK) != 0) {
    throw HarnessError("Cannot write " + target.string() + ": " + existing.string() + " is not writable for you (" +
                       std::strerror(errno) + "); check its permissions.");
  }
}

}  // namespace meshwire::cli
