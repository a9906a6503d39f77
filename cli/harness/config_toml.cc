// Merging one MCP server table into a TOML file (Codex's config.toml) while
// keeping the rest of the file byte for byte.
#include <toml++/toml.h>

#include <cstdio>
#include <optional>
#include <sstream>
#include <utility>

#include "cli/harness/config_files.h"

namespace meshwire::cli::harness_internal {

namespace {

std::string TomlString(std::string_view s) {
  std::string out = "\"";
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\f':
        out += "\\f";
        break;
      case '\r':
        out += "\\r";
        break;
      default:
        if (c < 0x20 || c == 0x7f) {
          char escaped[8];
          std::snprintf(escaped, sizeof escaped, "\\u%04X", c);
          out += escaped;
        } else {
          out += ch;
        }
    }
  }
  return out + "\"";
}

bool IsBareKeyChar(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-';
}

std::string TomlKey(std::string_view key) {
  bool bare = !key.empty();
  for (char c : key) bare = bare && IsBareKeyChar(c);
  return bare ? std::string(key) : TomlString(key);
}

/// A value as TOML text on one line (tables inline).
std::string TomlValue(const toml::node& node) {
  if (const auto* s = node.as_string()) return TomlString(s->get());
  if (const auto* table = node.as_table()) {
    if (table->empty()) return "{}";
    std::string out = "{ ";
    bool first = true;
    for (auto&& [key, value] : *table) {
      if (!first) out += ", ";
      first = false;
      out += TomlKey(key.str()) + " = " + TomlValue(value);
    }
    return out + " }";
  }
  if (const auto* array = node.as_array()) {
    std::string out = "[";
    for (size_t i = 0; i < array->size(); ++i) {
      if (i > 0) out += ", ";
      out += TomlValue(*array->get(i));
    }
    return out + "]";
  }
  std::ostringstream out;
  node.visit([&](const auto& value) { out << value; });
  return out.str();
}

/// The entry `existing` (null when absent) with `server` merged in.
toml::table MergedEntry(const toml::node* existing, const McpServer& server) {
  toml::table entry;
  if (existing && existing->is_table()) entry = *existing->as_table();
  if (server.remote()) {
    for (auto it = entry.begin(); it != entry.end();) {
      const bool drop = IsStdioKey(it->first.str()) || IsOtherTransportKey(it->first.str());
      it = drop ? entry.erase(it) : std::next(it);
    }
    entry.insert_or_assign("url", server.url);
    if (!server.bearer_env.empty()) entry.insert_or_assign("bearer_token_env_var", server.bearer_env);
    entry.is_inline(false);
    return entry;
  }
  for (auto it = entry.begin(); it != entry.end();) {
    it = IsOtherTransportKey(it->first.str()) ? entry.erase(it) : std::next(it);
  }
  if (!server.type.empty()) {
    entry.insert_or_assign("type", server.type);
  } else if (const auto* type = entry.get_as<std::string>("type"); type && type->get() != "stdio") {
    entry.erase("type");
  }
  entry.insert_or_assign("command", server.command);
  toml::array args;
  for (const std::string& arg : server.args) args.push_back(arg);
  entry.insert_or_assign("args", std::move(args));
  toml::table env;
  if (const auto* old_env = entry.get_as<toml::table>("env")) env = *old_env;
  for (const auto& [key, value] : server.env) env.insert_or_assign(key, value);
  for (const std::string& key : server.unset_env) env.erase(key);
  env.is_inline(true);
  entry.insert_or_assign("env", std::move(env));
  if (!server.pass_env.empty()) {
    toml::array pass;
    if (const auto* old_pass = entry.get_as<toml::array>("env_vars")) pass = *old_pass;
    for (const std::string& name : server.pass_env) {
      bool listed = false;
      for (const toml::node& n : pass) listed = listed || (n.is_string() && n.as_string()->get() == name);
      if (!listed) pass.push_back(name);
    }
    entry.insert_or_assign("env_vars", std::move(pass));
  }
  entry.is_inline(false);
  return entry;
}

bool IsOurKey(std::string_view key, const McpServer& server) {
  if (server.remote()) return key == "url" || (key == "bearer_token_env_var" && !server.bearer_env.empty());
  return key == "command" || key == "args" || key == "env" ||
         (key == "type" && !server.type.empty()) || (key == "env_vars" && !server.pass_env.empty());
}

/// The string items of an entry's args (nothing when absent or odd).
std::vector<std::string> TomlArgs(const toml::node* entry) {
  std::vector<std::string> args;
  const toml::table* table = entry ? entry->as_table() : nullptr;
  const toml::array* array = table ? table->get_as<toml::array>("args") : nullptr;
  if (!array) return args;
  for (const toml::node& a : *array) args.push_back(a.is_string() ? a.as_string()->get() : "");
  return args;
}

/// The TOML text of the table [container.name] holding `entry`: our keys
/// first, in the order the other formats use, then the entry's other keys.
std::string EntryBlock(EntryPath at, const toml::table& entry, const McpServer& server) {
  std::string out = "[" + TomlKey(at.container) + "." + TomlKey(at.name) + "]\n";
  if (server.remote()) {
    out += "url = " + TomlString(server.url) + "\n";
    if (!server.bearer_env.empty()) out += "bearer_token_env_var = " + TomlString(server.bearer_env) + "\n";
    for (auto&& [key, value] : entry) {
      if (!IsOurKey(key.str(), server)) out += TomlKey(key.str()) + " = " + TomlValue(value) + "\n";
    }
    return out;
  }
  if (!server.type.empty()) out += "type = " + TomlString(server.type) + "\n";
  out += "command = " + TomlValue(*entry.get("command")) + "\n";
  out += "args = " + TomlValue(*entry.get("args")) + "\n";
  const toml::table& env = *entry.get_as<toml::table>("env");
  std::string env_text;
  auto add = [&](std::string_view key, const toml::node& value) {
    env_text += (env_text.empty() ? "{ " : ", ") + TomlKey(key) + " = " + TomlValue(value);
  };
  for (const auto& [key, value] : server.env) add(key, *env.get(key));
  for (auto&& [key, value] : env) {
    bool ours = false;
    for (const auto& var : server.env) ours = ours || var.first == key.str();
    if (!ours) add(key.str(), value);
  }
  out += "env = " + (env_text.empty() ? std::string("{}") : env_text + " }") + "\n";
  if (!server.pass_env.empty()) out += "env_vars = " + TomlValue(*entry.get("env_vars")) + "\n";
  for (auto&& [key, value] : entry) {
    if (!IsOurKey(key.str(), server)) out += TomlKey(key.str()) + " = " + TomlValue(value) + "\n";
  }
  return out;
}

struct TomlHeader {
  size_t line = 0;
  std::vector<std::string> keys;  // empty when the header could not be read
};

/// The dotted key of a table header `[a."b".c]` or `[[a.b]]` at the start of
/// `s`, or nullopt when it is not one this reader understands.
std::optional<std::vector<std::string>> ParseHeader(std::string_view s) {
  const bool array = s.starts_with("[[");
  size_t i = array ? 2 : 1;
  auto skip_blanks = [&] {
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) ++i;
  };
  std::vector<std::string> keys;
  while (true) {
    skip_blanks();
    if (i >= s.size()) return std::nullopt;
    std::string key;
    if (s[i] == '"') {
      for (++i; i < s.size() && s[i] != '"'; ++i) {
        if (s[i] == '\\') {
          if (i + 1 >= s.size() || (s[i + 1] != '"' && s[i + 1] != '\\')) return std::nullopt;
          ++i;
        }
        key += s[i];
      }
      if (i >= s.size()) return std::nullopt;
      ++i;
    } else if (s[i] == '\'') {
      size_t end = s.find('\'', i + 1);
      if (end == std::string_view::npos) return std::nullopt;
      key = s.substr(i + 1, end - i - 1);
      i = end + 1;
    } else {
      size_t start = i;
      while (i < s.size() && IsBareKeyChar(s[i])) ++i;
      if (i == start) return std::nullopt;
      key = s.substr(start, i - start);
    }
    keys.push_back(std::move(key));
    skip_blanks();
    if (i < s.size() && s[i] == '.') {
      ++i;
      continue;
    }
    break;
  }
  if (s.substr(i, array ? 2 : 1) != (array ? "]]" : "]")) return std::nullopt;
  return keys;
}

/// The table headers of a TOML document, skipping lines inside multi-line
/// strings and multi-line arrays.
std::vector<TomlHeader> FindHeaders(const std::vector<std::string>& lines) {
  enum class State { kNormal, kMultiBasic, kMultiLiteral };
  State state = State::kNormal;
  int depth = 0;  // open brackets and braces of a value
  std::vector<TomlHeader> headers;
  for (size_t n = 0; n < lines.size(); ++n) {
    std::string_view line = lines[n];
    if (state == State::kNormal && depth == 0 && TrimLeft(line).starts_with("[")) {
      headers.push_back({n, ParseHeader(TrimLeft(line)).value_or(std::vector<std::string>{})});
      continue;
    }
    size_t i = 0;
    while (i < line.size()) {
      if (state != State::kNormal) {
        const char quote = state == State::kMultiBasic ? '"' : '\'';
        if (state == State::kMultiBasic && line[i] == '\\') {
          i += 2;
        } else if (line.compare(i, 3, std::string(3, quote)) == 0) {
          i += 3;
          while (i < line.size() && line[i] == quote) ++i;
          state = State::kNormal;
        } else {
          ++i;
        }
        continue;
      }
      const char c = line[i];
      if (c == '#') break;
      if (line.compare(i, 3, "\"\"\"") == 0) {
        state = State::kMultiBasic;
        i += 3;
      } else if (line.compare(i, 3, "'''") == 0) {
        state = State::kMultiLiteral;
        i += 3;
      } else if (c == '"') {
        for (++i; i < line.size() && line[i] != '"'; ++i) {
          if (line[i] == '\\') ++i;
        }
        ++i;
      } else if (c == '\'') {
        size_t end = line.find('\'', i + 1);
        i = end == std::string_view::npos ? line.size() : end + 1;
      } else {
        if (c == '[' || c == '{') ++depth;
        if ((c == ']' || c == '}') && depth > 0) --depth;
        ++i;
      }
    }
  }
  return headers;
}

bool IsComment(std::string_view line) {
  return TrimLeft(line).starts_with("#");
}

/// `text` (LF line ends) with the table [at] (and its sub-tables) replaced
/// by `block`, or `block` added after the last [container.*] table or at the
/// end. The caller checks the result by parsing it.
std::string EditTomlText(const std::string& text, EntryPath at, const std::string& block) {
  const std::vector<std::string> lines = SplitLines(text);
  const std::vector<TomlHeader> headers = FindHeaders(lines);
  // Where the table of headers[k] ends: before the next header, leaving out
  // the comment lines right above that header (they describe it) and the
  // blank lines before them.
  auto block_end = [&](size_t k) {
    const size_t start = headers[k].line + 1;
    size_t end = lines.size();
    if (k + 1 < headers.size()) {
      end = headers[k + 1].line;
      while (end > start && IsComment(lines[end - 1])) --end;
    }
    while (end > start && IsBlank(lines[end - 1])) --end;
    return end;
  };
  auto is_entry = [&](const TomlHeader& h) {
    return h.keys.size() >= 2 && h.keys[0] == at.container && h.keys[1] == at.name;
  };
  std::vector<std::pair<size_t, size_t>> entry_ranges;
  std::optional<size_t> after_container;
  for (size_t k = 0; k < headers.size(); ++k) {
    if (is_entry(headers[k])) entry_ranges.emplace_back(headers[k].line, block_end(k));
    if (!headers[k].keys.empty() && headers[k].keys[0] == at.container) {
      after_container = block_end(k);
    }
  }
  const std::vector<std::string> block_lines = SplitLines(block);
  std::vector<std::string> out;
  if (!entry_ranges.empty()) {
    for (size_t n = 0; n < lines.size(); ++n) {
      if (n == entry_ranges.front().first) {
        out.insert(out.end(), block_lines.begin(), block_lines.end());
      }
      bool skip = false;
      for (const auto& [start, end] : entry_ranges) skip = skip || (n >= start && n < end);
      if (!skip) out.push_back(lines[n]);
    }
  } else {
    const size_t at_line = after_container.value_or(lines.size());
    out.assign(lines.begin(), lines.begin() + static_cast<std::ptrdiff_t>(at_line));
    if (!out.empty() && !TrimLeft(out.back()).empty()) out.emplace_back();
    out.insert(out.end(), block_lines.begin(), block_lines.end());
    if (at_line < lines.size() && !TrimLeft(lines[at_line]).empty()) out.emplace_back();
    out.insert(out.end(), lines.begin() + static_cast<std::ptrdiff_t>(at_line), lines.end());
  }
  std::string result;
  for (const std::string& line : out) result += line + "\n";
  return result;
}

bool ParsesTo(const std::string& text, const toml::table& expected) {
  try {
    return toml::parse(text) == expected;
  } catch (const toml::parse_error&) {
    return false;
  }
}

}  // namespace

std::string MergeTomlServer(const std::string& path, const std::string& old_text, EntryPath at,
                            const McpServer& server, std::vector<std::string>& notes) {
  toml::table root;
  try {
    root = toml::parse(old_text, path);
  } catch (const toml::parse_error& e) {
    throw InvalidFileError(path, "is not valid TOML (line " +
                                     std::to_string(e.source().begin.line) + ": " +
                                     std::string(e.description()) + ")");
  }
  const toml::node* container = root.get(at.container);
  if (container && !container->is_table()) {
    throw InvalidFileError(path, "has a \"" + std::string(at.container) + "\" that is not a table");
  }
  const toml::node* existing = container ? container->as_table()->get(at.name) : nullptr;
  toml::table merged = MergedEntry(existing, server);
  if (existing && existing->is_table() && *existing->as_table() == merged) return old_text;
  NoteMeshChange(path, TomlArgs(existing), server, notes);

  toml::table expected = root;
  if (!expected.get(at.container)) expected.insert(at.container, toml::table{});
  expected.get_as<toml::table>(at.container)->insert_or_assign(at.name, merged);

  const std::string block = EntryBlock(at, merged, server);
  std::string edited = EditTomlText(ToLf(old_text), at, block);
  if (ParsesTo(edited, expected)) return UsesCrlf(old_text) ? ToCrlf(edited) : edited;

  // The table is defined in a way a line edit cannot replace (inline table,
  // dotted keys): write the whole document again.
  std::ostringstream out;
  out << toml::toml_formatter{expected};
  std::string text = out.str();
  if (!text.ends_with("\n")) text += "\n";
  if (!ParsesTo(text, expected)) {
    throw HarnessError("Cannot add the meshwire entry to " + path +
                       " without changing its other settings; add this table to it by hand:\n" +
                       block);
  }
  notes.push_back("The comments and layout of " + path + " were not kept; its backup, named above, keeps "
                  "the previous file.");
  return text;
}

}  // namespace meshwire::cli::harness_internal
