// Merging one MCP server entry into a YAML file (Hermes' config.yaml) while
// keeping its comments and layout: only the lines of the entry change.
#include <yaml-cpp/yaml.h>

#include <cstdio>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "cli/harness/config_files.h"

namespace meshwire::cli::harness_internal {

namespace {

/// `s` as a YAML double-quoted scalar (escaping what YAML readers reject raw).
std::string YamlQuote(std::string_view s) {
  std::string out = "\"";
  auto byte = [&](size_t i) { return i < s.size() ? static_cast<unsigned char>(s[i]) : 0u; };
  for (size_t i = 0; i < s.size(); ++i) {
    const unsigned c = byte(i);
    char hex[8];
    if (c == '"') {
      out += "\\\"";
    } else if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c < 0x20 || c == 0x7f) {
      std::snprintf(hex, sizeof hex, "\\x%02X", c);
      out += hex;
    } else if (c == 0xC2 && byte(i + 1) >= 0x80 && byte(i + 1) <= 0x9F) {
      std::snprintf(hex, sizeof hex, "\\x%02X", byte(i + 1));  // C1 controls, NEL
      out += hex;
      i += 1;
    } else if (c == 0xE2 && byte(i + 1) == 0x80 && (byte(i + 2) == 0xA8 || byte(i + 2) == 0xA9)) {
      out += byte(i + 2) == 0xA8 ? "\\L" : "\\P";  // line and paragraph separators
      i += 2;
    } else if (c == 0xEF && byte(i + 1) == 0xBB && byte(i + 2) == 0xBF) {
      out += "\\uFEFF";
      i += 2;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

std::string NormalTag(const std::string& tag) {
  return tag.empty() ? "?" : tag;
}

/// Whether two parsed nodes mean the same: same kinds, same scalars with the
/// same tags ("!" quoted, "?" plain), mappings equal whatever their order.
bool YamlEqual(const YAML::Node& a, const YAML::Node& b) {
  if (a.Type() != b.Type()) return false;
  switch (a.Type()) {
    case YAML::NodeType::Undefined:
    case YAML::NodeType::Null:
      return true;
    case YAML::NodeType::Scalar:
      return a.Scalar() == b.Scalar() && NormalTag(a.Tag()) == NormalTag(b.Tag());
    case YAML::NodeType::Sequence:
      if (a.size() != b.size()) return false;
      for (size_t i = 0; i < a.size(); ++i) {
        if (!YamlEqual(a[i], b[i])) return false;
      }
      return true;
    case YAML::NodeType::Map:
      if (a.size() != b.size()) return false;
      for (const auto& kv : a) {
        bool found = false;
        for (const auto& other : b) {
          if (YamlEqual(kv.first, other.first) && YamlEqual(kv.second, other.second)) {
            found = true;
            break;
          }
        }
        if (!found) return false;
      }
      return true;
  }
  return false;
}

/// Emits `node` keeping what its tags say: quoted scalars stay quoted, plain
/// ones plain (the emitter quotes them only if it must), flow collections flow.
void EmitNode(YAML::Emitter& out, const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Undefined:
    case YAML::NodeType::Null:
      out << YAML::Null;
      return;
    case YAML::NodeType::Scalar: {
      const std::string tag = NormalTag(node.Tag());
      if (tag == "!") {
        out << YAML::DoubleQuoted << node.Scalar();
      } else if (tag == "?") {
        out << node.Scalar();
      } else {
        out << YAML::VerbatimTag(tag) << node.Scalar();
      }
      return;
    }
    case YAML::NodeType::Sequence:
      if (node.Style() == YAML::EmitterStyle::Flow) out << YAML::Flow;
      out << YAML::BeginSeq;
      for (const auto& item : node) EmitNode(out, item);
      out << YAML::EndSeq;
      return;
    case YAML::NodeType::Map:
      if (node.Style() == YAML::EmitterStyle::Flow) out << YAML::Flow;
      out << YAML::BeginMap;
      for (const auto& kv : node) {
        out << YAML::Key;
        EmitNode(out, kv.first);
        out << YAML::Value;
        EmitNode(out, kv.second);
      }
      out << YAML::EndMap;
      return;
  }
}

/// `node` as YAML text on one line.
std::string FlowText(const YAML::Node& node) {
  YAML::Emitter out;
  out << YAML::Flow;
  EmitNode(out, node);
  return out.c_str();
}

bool IsScalarKey(const YAML::Node& key, std::string_view name) {
  return key.IsScalar() && key.Scalar() == name;
}

/// The lines of the entry `name:` at `indent` spaces: our keys first, then
/// the keys of the existing entry that are not ours or another transport's.
std::string EntryBlock(int indent, EntryPath at, const YAML::Node& existing,
                       const McpServer& server) {
  const std::string pad(static_cast<size_t>(indent), ' ');
  const std::string pad2 = pad + "  ";
  const std::string pad4 = pad2 + "  ";
  std::string out = pad + std::string(at.name) + ":\n";
  if (!server.type.empty()) out += pad2 + "type: " + YamlQuote(server.type) + "\n";
  out += pad2 + "command: " + YamlQuote(server.command) + "\n";
  out += pad2 + "args: [";
  for (size_t i = 0; i < server.args.size(); ++i) {
    out += (i > 0 ? ", " : "") + YamlQuote(server.args[i]);
  }
  out += "]\n";
  out += pad2 + "env:\n";
  for (const auto& [key, value] : server.env) out += pad4 + key + ": " + YamlQuote(value) + "\n";
  if (!existing.IsMap()) return out;
  if (const YAML::Node env = existing["env"]; env.IsDefined() && env.IsMap()) {
    for (const auto& kv : env) {
      bool ours = false;
      for (const auto& var : server.env) ours = ours || IsScalarKey(kv.first, var.first);
      for (const auto& var : server.unset_env) ours = ours || IsScalarKey(kv.first, var);
      if (!ours) out += pad4 + FlowText(kv.first) + ": " + FlowText(kv.second) + "\n";
    }
  }
  for (const auto& kv : existing) {
    const std::string key = kv.first.IsScalar() ? kv.first.Scalar() : std::string();
    if (key == "command" || key == "args" || key == "env" || IsOtherTransportKey(key)) continue;
    if (key == "type" &&
        (!server.type.empty() || !kv.second.IsScalar() || kv.second.Scalar() != "stdio")) {
      continue;
    }
    out += pad2 + FlowText(kv.first) + ": " + FlowText(kv.second) + "\n";
  }
  return out;
}

bool IsContent(std::string_view line) {
  std::string_view rest = TrimLeft(line);
  return !rest.empty() && rest.front() != '#';
}

size_t IndentOf(std::string_view line) {
  size_t n = line.find_first_not_of(' ');
  return n == std::string_view::npos ? line.size() : n;
}

/// Whether `rest` starts with the mapping key `key` (plain or quoted) and
/// its colon; `value_after` receives what follows the colon.
bool StartsWithKey(std::string_view rest, std::string_view key, std::string_view* value_after) {
  for (const char* quote : {"", "\"", "'"}) {
    const std::string spelled = quote + std::string(key) + quote;
    if (!rest.starts_with(spelled)) continue;
    std::string_view after = TrimLeft(rest.substr(spelled.size()));
    if (!after.starts_with(":")) continue;
    if (after.size() > 1 && after[1] != ' ' && after[1] != '\t') continue;
    if (value_after) *value_after = TrimLeft(after.substr(1));
    return true;
  }
  return false;
}

/// `text` (LF line ends) with the entry `at` replaced by, or added as,
/// `block(indent)`; nullopt when the layout is not one a line edit handles
/// (flow style, duplicate keys). The caller checks the result by parsing it.
std::optional<std::string> EditYamlText(const std::string& text, EntryPath at,
                                        const std::function<std::string(int)>& block) {
  std::vector<std::string> lines = SplitLines(text);
  std::vector<size_t> heads;
  for (size_t n = 0; n < lines.size(); ++n) {
    if (IndentOf(lines[n]) == 0 && StartsWithKey(lines[n], at.container, nullptr)) {
      heads.push_back(n);
    }
  }
  if (heads.size() > 1) return std::nullopt;
  if (heads.empty()) {
    std::string result = text;
    if (!result.empty() && !result.ends_with("\n")) result += "\n";
    return result + std::string(at.container) + ":\n" + block(2);
  }
  const size_t head = heads.front();
  std::string_view value;
  StartsWithKey(lines[head], at.container, &value);
  if (!value.empty() && !value.starts_with("#")) return std::nullopt;  // a value on the same line

  size_t end = head + 1;  // the container's lines: up to the next root-level content line
  while (end < lines.size() && !(IsContent(lines[end]) && IndentOf(lines[end]) == 0)) ++end;
  std::optional<size_t> first_child;
  size_t last_content = head;
  for (size_t n = head + 1; n < end; ++n) {
    if (!IsContent(lines[n])) continue;
    if (!first_child) first_child = n;
    last_content = n;
  }
  auto splice = [&](size_t from, size_t to, int indent) {
    std::vector<std::string> replacement = SplitLines(block(indent));
    lines.erase(lines.begin() + static_cast<std::ptrdiff_t>(from),
                lines.begin() + static_cast<std::ptrdiff_t>(to));
    lines.insert(lines.begin() + static_cast<std::ptrdiff_t>(from), replacement.begin(),
                 replacement.end());
  };
  if (!first_child) {
    splice(head + 1, head + 1, 2);
  } else {
    const size_t child_indent = IndentOf(lines[*first_child]);
    std::vector<size_t> entries;
    for (size_t n = head + 1; n < end; ++n) {
      if (IsContent(lines[n]) && IndentOf(lines[n]) == child_indent &&
          StartsWithKey(std::string_view(lines[n]).substr(child_indent), at.name, nullptr)) {
        entries.push_back(n);
      }
    }
    if (entries.size() > 1) return std::nullopt;
    if (entries.empty()) {
      splice(last_content + 1, last_content + 1, static_cast<int>(child_indent));
    } else {
      const size_t start = entries.front();
      size_t stop = start + 1;
      while (stop < end && !(IsContent(lines[stop]) && IndentOf(lines[stop]) <= child_indent)) {
        ++stop;
      }
      while (stop > start + 1 && !IsContent(lines[stop - 1])) --stop;
      splice(start, stop, static_cast<int>(child_indent));
    }
  }
  std::string result;
  for (const std::string& line : lines) result += line + "\n";
  return result;
}

bool ParsesTo(const std::string& text, const YAML::Node& expected) {
  try {
    std::vector<YAML::Node> docs = YAML::LoadAll(text);
    return docs.size() == 1 && YamlEqual(docs.front(), expected);
  } catch (const YAML::Exception&) {
    return false;
  }
}

}  // namespace

std::string MergeYamlServer(const std::string& path, const std::string& old_text, EntryPath at,
                            const McpServer& server, std::vector<std::string>& notes) {
  std::vector<YAML::Node> docs;
  try {
    docs = YAML::LoadAll(old_text);
  } catch (const YAML::Exception& e) {
    throw InvalidFileError(
        path, "is not valid YAML (line " + std::to_string(e.mark.line + 1) + ": " + e.msg + ")");
  }
  if (docs.size() > 1) throw InvalidFileError(path, "holds several YAML documents");
  YAML::Node root =
      docs.empty() || docs.front().IsNull() ? YAML::Node(YAML::NodeType::Map) : docs.front();
  if (!root.IsMap()) throw InvalidFileError(path, "does not hold a YAML mapping");
  const std::string container_key(at.container);
  const std::string name(at.name);
  const YAML::Node& const_root = root;
  const YAML::Node container = const_root[container_key];
  if (container.IsDefined() && !container.IsNull() && !container.IsMap()) {
    throw InvalidFileError(path, "has a \"" + container_key + "\" that is not a mapping");
  }
  // Lookups of missing keys give undefined nodes, which throw on most calls.
  const YAML::Node existing = [&] {
    if (!container.IsDefined() || !container.IsMap()) return YAML::Node();
    YAML::Node found = container[name];
    return found.IsDefined() ? found : YAML::Node();
  }();
  const bool has_existing =
      container.IsDefined() && container.IsMap() && container[name].IsDefined();
  auto block = [&](int indent) { return EntryBlock(indent, at, existing, server); };
  const YAML::Node entry = YAML::Load(block(0))[name];
  if (has_existing && YamlEqual(existing, entry)) return old_text;
  if (has_existing && existing.IsMap()) {
    std::vector<std::string> old_args;
    if (const YAML::Node args = existing["args"]; args.IsDefined() && args.IsSequence()) {
      for (const auto& a : args) old_args.push_back(a.IsScalar() ? a.Scalar() : "");
    }
    NoteMeshChange(path, old_args, server, notes);
  }

  YAML::Node expected = YAML::Clone(root);
  expected[container_key][name] = entry;

  std::optional<std::string> edited = EditYamlText(ToLf(old_text), at, block);
  if (edited && ParsesTo(*edited, expected)) {
    return UsesCrlf(old_text) ? ToCrlf(*edited) : *edited;
  }
  // A layout a line edit cannot handle (flow style, ...): emit the document.
  YAML::Emitter out;
  out.SetIndent(2);
  EmitNode(out, expected);
  std::string text = std::string(out.c_str()) + "\n";
  if (!ParsesTo(text, expected)) {
    throw HarnessError("Cannot add the meshwire entry to " + path +
                       " without changing its other settings; add this under " + container_key +
                       ": by hand:\n" + block(2));
  }
  notes.push_back("The comments and layout of " + path + " were not kept; its backup, named above, keeps "
                  "the previous file.");
  return text;
}

}  // namespace meshwire::cli::harness_internal
