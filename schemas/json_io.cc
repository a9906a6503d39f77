#include "schemas/json_io.h"

#include <algorithm>
#include <charconv>
#include <optional>
#include <unordered_set>
#include <vector>

#include <nlohmann/json.hpp>

#include "schemas/time_format.h"

namespace meshwire {

namespace {
Json OptTime(const std::optional<Millis>& t) { return t ? Json(FormatRfc3339(*t)) : Json(nullptr); }
}  // namespace

Json ToJson(const Mesh& mesh) {
  return {{"mesh_id", mesh.mesh_id},
          {"name", mesh.name},
          {"owner", mesh.owner},
          {"created_at", FormatRfc3339(mesh.created_at)}};
}

Json ToJson(const Message& m) {
  Json metadata = Json::parse(m.metadata_json, nullptr, /*allow_exceptions=*/false);
  if (!metadata.is_object()) metadata = Json::object();
  return {{"id", m.id},
          {"seq", m.seq},
          {"mesh_id", m.mesh_id},
          {"from", m.from},
          {"from_name", m.from_name},
          {"to", m.to},
          {"to_name", m.to_name ? Json(*m.to_name) : Json(nullptr)},
          {"content", m.content},
          {"priority", m.priority},
          {"metadata", std::move(metadata)},
          {"created_at", FormatRfc3339(m.created_at)}};
}

namespace {
/// Appends `s` as a JSON string, escaped exactly as nlohmann's dump() does.
void AppendQuoted(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  out.push_back('"');
  std::size_t run = 0;  // where the bytes not yet copied, which need no escape, begin
  for (std::size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    out.append(s.data() + run, i - run);
    run = i + 1;
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        out += "\\u00";
        out.push_back(kHex[(c >> 4) & 0xF]);
        out.push_back(kHex[c & 0xF]);
    }
  }
  out.append(s.data() + run, s.size() - run);
  out.push_back('"');
}
}  // namespace

std::string MessageJsonText(const Message& m) {
  // Keys in nlohmann's (sorted) order, so the text equals ToJson(m).dump().
  std::string out;
  out.reserve(m.content.size() + m.metadata_json.size() + 256);
  out += "{\"content\":";
  AppendQuoted(out, m.content);
  out += ",\"created_at\":";
  AppendQuoted(out, FormatRfc3339(m.created_at));
  out += ",\"from\":";
  AppendQuoted(out, m.from);
  out += ",\"from_name\":";
  AppendQuoted(out, m.from_name);
  out += ",\"id\":";
  AppendQuoted(out, m.id);
  out += ",\"mesh_id\":";
  AppendQuoted(out, m.mesh_id);
  out += ",\"metadata\":";
  // Stored metadata is the compact dump of an object; anything else shows as {}.
  if (m.metadata_json.size() >= 2 && m.metadata_json.front() == '{' && m.metadata_json.back() == '}') {
    out += m.metadata_json;
  } else {
    out += "{}";
  }
  out += ",\"priority\":";
  AppendQuoted(out, m.priority);
  out += ",\"seq\":";
  char digits[24];
  out.append(digits, std::to_chars(digits, digits + sizeof digits, m.seq).ptr);
  out += ",\"to\":";
  AppendQuoted(out, m.to);
  out += ",\"to_name\":";
  if (m.to_name) {
    AppendQuoted(out, *m.to_name);
  } else {
    out += "null";
  }
  out += "}";
  return out;
}

Json ToJson(const Token& t) {
  Json j = {{"id", t.id},
            {"name", t.name},
            {"created_at", FormatRfc3339(t.created_at)},
            {"last_used_at", OptTime(t.last_used_at)}};
  if (t.mesh_id) j["mesh_id"] = *t.mesh_id;
  return j;
}

Json ToJson(const Receipt& r) {
  return {{"agent_id", r.agent_id},
          {"name", r.name},
          {"state", r.state},
          {"fetched_at", OptTime(r.fetched_at)},
          {"acked_at", OptTime(r.acked_at)}};
}

Json ToJson(const Agent& a, std::string_view status, bool listening) {
  return {{"agent_id", a.agent_id},
          {"name", a.name},
          {"harness", a.harness},
          {"owner", a.owner},
          {"status", status},
          {"listening", listening},
          {"last_seen", FormatRfc3339(a.last_seen)}};
}

namespace {

std::string Str(const Json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_string()) {
    throw Error(502, "bad_response", std::string("The relay's answer lacks \"") + key +
                                         "\"; is the URL a meshwire relay of this version?");
  }
  return it->get<std::string>();
}

std::optional<std::string> OptStr(const Json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_string()) return std::nullopt;
  return it->get<std::string>();
}

Millis Time(const Json& j, const char* key) { return ParseRfc3339(Str(j, key)).value_or(0); }

std::optional<Millis> OptTime(const Json& j, const char* key) {
  auto s = OptStr(j, key);
  return s ? ParseRfc3339(*s) : std::nullopt;
}

}  // namespace

Mesh MeshFromJson(const Json& j) {
  return Mesh{Str(j, "mesh_id"), Str(j, "name"), Str(j, "owner"), Time(j, "created_at")};
}

Message MessageFromJson(const Json& j) {
  Message m;
  m.id = Str(j, "id");
  m.seq = j.value("seq", std::int64_t{0});
  m.mesh_id = Str(j, "mesh_id");
  m.from = Str(j, "from");
  m.from_name = OptStr(j, "from_name").value_or("");
  m.to = Str(j, "to");
  m.to_name = OptStr(j, "to_name");
  m.content = Str(j, "content");
  m.priority = OptStr(j, "priority").value_or("normal");
  auto meta = j.find("metadata");
  m.metadata_json = meta != j.end() && meta->is_object() ? meta->dump() : "{}";
  m.created_at = Time(j, "created_at");
  return m;
}

Token TokenFromJson(const Json& j) {
  Token t;
  t.id = Str(j, "id");
  t.name = OptStr(j, "name").value_or("");
  t.mesh_id = OptStr(j, "mesh_id");
  t.created_at = OptTime(j, "created_at").value_or(0);
  t.last_used_at = OptTime(j, "last_used_at");
  return t;
}

Receipt ReceiptFromJson(const Json& j) {
  return Receipt{Str(j, "agent_id"), OptStr(j, "name").value_or(""), Str(j, "state"),
                 OptTime(j, "fetched_at"), OptTime(j, "acked_at")};
}

Agent AgentFromJson(const Json& j, std::string* status, bool* listening) {
  Agent a;
  a.agent_id = Str(j, "agent_id");
  a.name = Str(j, "name");
  a.harness = OptStr(j, "harness").value_or("");
  a.owner = OptStr(j, "owner").value_or("");
  a.last_seen = OptTime(j, "last_seen").value_or(0);
  if (status) *status = OptStr(j, "status").value_or("offline");
  if (listening) *listening = j.value("listening", false);
  return a;
}

Json ErrorJson(const Error& e) { return {{"error", {{"code", e.code()}, {"message", e.what()}}}}; }

std::string JsonText(const Json& j) { return j.dump(-1, ' ', false, Json::error_handler_t::replace); }

std::string ErrorBody(const Error& e) {
  // A sentence may echo what the request said (an id from the path): bytes
  // that are not UTF-8 are shown as U+FFFD, never a failure to answer.
  return ErrorJson(e).dump(-1, ' ', false, Json::error_handler_t::replace);
}

namespace {

/// The length of the valid UTF-8 sequence at text[i] (RFC 3629: no overlong
/// forms, no surrogates, nothing past U+10FFFF), or 0.
std::size_t Utf8SequenceAt(std::string_view text, std::size_t i) {
  const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(text[k]); };
  const unsigned char c = byte(i);
  if (c < 0x80) return 1;
  std::size_t n = 0;
  unsigned char lo = 0x80, hi = 0xBF;  // the second byte's range
  if (c >= 0xC2 && c <= 0xDF) {
    n = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    n = 3;
    if (c == 0xE0) lo = 0xA0;
    if (c == 0xED) hi = 0x9F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;
  } else {
    return 0;
  }
  if (i + n > text.size() || byte(i + 1) < lo || byte(i + 1) > hi) return 0;
  for (std::size_t k = 2; k < n; ++k) {
    if (byte(i + k) < 0x80 || byte(i + k) > 0xBF) return 0;
  }
  return n;
}

/// The UTF-16 unit of a `\uXXXX` escape starting at text[i], or -1.
int EscapedUnitAt(std::string_view text, std::size_t i) {
  if (i + 6 > text.size() || text[i] != '\\' || text[i + 1] != 'u') return -1;
  int unit = 0;
  for (std::size_t k = i + 2; k < i + 6; ++k) {
    const char h = text[k];
    const int v = h >= '0' && h <= '9' ? h - '0' : h >= 'a' && h <= 'f' ? h - 'a' + 10
                                                   : h >= 'A' && h <= 'F' ? h - 'A' + 10 : -1;
    if (v < 0) return -1;
    unit = unit * 16 + v;
  }
  return unit;
}

}  // namespace

std::optional<std::string> WithUnicodeRepaired(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  bool changed = false;
  bool in_string = false;
  for (std::size_t i = 0; i < text.size();) {
    const char c = text[i];
    if (in_string && c == '\\') {
      const int unit = EscapedUnitAt(text, i);
      if (unit >= 0xD800 && unit <= 0xDBFF) {
        const int next = EscapedUnitAt(text, i + 6);
        if (next >= 0xDC00 && next <= 0xDFFF) {  // a pair: one character
          out.append(text.substr(i, 12));
          i += 12;
          continue;
        }
      }
      if (unit >= 0xD800 && unit <= 0xDFFF) {  // alone
        out += "\\ufffd";
        changed = true;
        i += 6;
        continue;
      }
      out.append(text.substr(i, std::min<std::size_t>(2, text.size() - i)));  // any other escape, whole
      i += 2;
      continue;
    }
    if (c == '"') in_string = !in_string;
    const std::size_t n = Utf8SequenceAt(text, i);
    if (n == 0) {
      out += "\xEF\xBF\xBD";  // U+FFFD
      changed = true;
      ++i;
      continue;
    }
    out.append(text.substr(i, n));
    i += n;
  }
  if (!changed) return std::nullopt;
  return out;
}

int JsonDepth(std::string_view text) {
  int depth = 0;
  int deepest = 0;
  bool in_string = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') ++i;
      else if (c == '"') in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      deepest = std::max(deepest, ++depth);
    } else if (c == '}' || c == ']') {
      --depth;
    }
  }
  return deepest;
}

Json ParseRepaired(std::string_view text) {
  if (text.find('\0') != std::string_view::npos) return Json(Json::value_t::discarded);
  Json j = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) {
    if (auto repaired = WithUnicodeRepaired(text)) j = Json::parse(*repaired, nullptr, false);
  }
  return j;
}

namespace {

bool IsJsonSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

}  // namespace

std::optional<FlatMembers> ParseFlatStringObject(std::string_view body) {
  std::size_t i = 0;
  const auto skip_space = [&] {
    while (i < body.size() && IsJsonSpace(body[i])) ++i;
  };
  const auto at = [&](char c) { return i < body.size() && body[i] == c; };
  // A string at body[i] (its opening quote), decoded into `out`; false for
  // anything the fast path leaves to the full parser.
  const auto read_string = [&](std::string& out, bool allow_escapes) {
    if (!at('"')) return false;
    ++i;
    std::size_t run = i;  // the start of the bytes not yet copied
    while (i < body.size()) {
      const auto c = static_cast<unsigned char>(body[i]);
      if (c == '"') {
        out.append(body.substr(run, i - run));
        ++i;
        return true;
      }
      if (c < 0x20) return false;  // a control character: invalid JSON
      if (c == '\\') {
        if (!allow_escapes || i + 1 >= body.size()) return false;
        static constexpr std::string_view kFrom = "\"\\/bfnrt";
        static constexpr std::string_view kTo = "\"\\/\b\f\n\r\t";
        const std::size_t k = kFrom.find(body[i + 1]);
        if (k == std::string_view::npos) return false;  // \uXXXX, or not JSON
        out.append(body.substr(run, i - run));
        out += kTo[k];
        i += 2;
        run = i;
        continue;
      }
      const std::size_t n = c < 0x80 ? 1 : Utf8SequenceAt(body, i);
      if (n == 0) return false;
      i += n;
    }
    return false;  // no closing quote
  };

  FlatMembers members;
  skip_space();
  if (!at('{')) return std::nullopt;
  ++i;
  skip_space();
  if (at('}')) {
    ++i;
  } else {
    while (true) {
      skip_space();
      const std::size_t key_start = i + 1;
      std::string key;
      if (!read_string(key, /*allow_escapes=*/false)) return std::nullopt;
      std::string_view key_view = body.substr(key_start, key.size());
      skip_space();
      if (!at(':')) return std::nullopt;
      ++i;
      skip_space();
      std::string value;
      if (!read_string(value, /*allow_escapes=*/true)) return std::nullopt;
      members.emplace_back(key_view, std::move(value));
      skip_space();
      if (at(',')) {
        ++i;
        continue;
      }
      if (!at('}')) return std::nullopt;
      ++i;
      break;
    }
  }
  skip_space();
  if (i != body.size()) return std::nullopt;
  return members;
}

Json ParseObject(std::string_view body) {
  if (body.find_first_not_of(" \t\r\n") == std::string_view::npos) return Json::object();
  // Parsing is iterative, but destroying and printing a value recurse: refuse
  // what is nested deeper than any request of the contract needs.
  if (JsonDepth(body) > kMaxBodyDepth) {
    throw Error::BadRequest("invalid_json", "The request body is nested more than " +
                                                std::to_string(kMaxBodyDepth) + " levels deep.");
  }
  // A key given twice in one object is refused rather than read as its last
  // value (what another reader of the same body, a proxy's filter, may not
  // do): one open object's keys per level.
  std::vector<std::unordered_set<std::string>> keys;
  std::optional<std::string> twice;
  const Json::parser_callback_t note_keys = [&](int, Json::parse_event_t event, Json& parsed) {
    if (event == Json::parse_event_t::object_start) {
      keys.emplace_back();
    } else if (event == Json::parse_event_t::object_end) {
      if (!keys.empty()) keys.pop_back();
    } else if (event == Json::parse_event_t::key && !keys.empty() && parsed.is_string()) {
      const std::string& key = parsed.get_ref<const std::string&>();
      if (!keys.back().insert(key).second && !twice) twice = key;
    }
    return true;
  };
  // A NUL is never part of JSON text, and the parser takes one for the end:
  // what followed it would go unread.
  Json j = body.find('\0') == std::string_view::npos ? Json::parse(body, note_keys, /*allow_exceptions=*/false)
                                                     : Json(Json::value_t::discarded);
  if (j.is_discarded()) {
    throw Error::BadRequest("invalid_json", "The request body is not valid JSON (UTF-8); send a JSON object.");
  }
  if (twice) {
    const std::string named = twice->size() <= 64 ? " \"" + *twice + "\"" : "";  // whole: valid UTF-8
    throw Error::BadRequest("invalid_json", "The request body gives the key" + named +
                                                " twice in one object; send each key once.");
  }
  if (!j.is_object()) {
    throw Error::BadRequest("invalid_json", "The request body must be a JSON object.");
  }
  return j;
}

std::string RequireString(const Json& body, const char* key) {
  auto v = OptionalString(body, key);
  if (!v) throw Error::InvalidField(std::string("The field \"") + key + "\" is required (a string).");
  return *v;
}

std::optional<std::string> OptionalString(const Json& body, const char* key) {
  auto it = body.find(key);
  if (it == body.end() || it->is_null()) return std::nullopt;
  if (!it->is_string()) {
    throw Error::InvalidField(std::string("The field \"") + key + "\" must be a string.");
  }
  return it->get<std::string>();
}

std::string OptionalObjectText(const Json& body, const char* key) {
  auto it = body.find(key);
  if (it == body.end() || it->is_null()) return "{}";
  if (!it->is_object()) {
    throw Error::InvalidField(std::string("The field \"") + key + "\" must be a JSON object.");
  }
  return it->dump();
}

}  // namespace meshwire
