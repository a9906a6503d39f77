// JSON conversions of the wire model and strict readers for request bodies.
// Only json_fwd.hpp here: the full json.hpp stays in the .cc files that need it.
#pragma once

#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "schemas/error.h"
#include "schemas/model.h"

namespace meshwire {

using Json = nlohmann::json;

Json ToJson(const Mesh& mesh);
Json ToJson(const Message& message);
/// The same as ToJson(message).dump(), written directly (the hot path of
/// sends and polls).
std::string MessageJsonText(const Message& message);
Json ToJson(const Token& token);
Json ToJson(const Receipt& receipt);
/// An agent as GET /mesh/{mesh}/agents shows it; `status` is active/idle/offline.
Json ToJson(const Agent& agent, std::string_view status, bool listening);
/// The inverse conversions, for clients of the relay. They read what the
/// relay writes; a missing or mistyped field throws Error 502 "bad_response".
Mesh MeshFromJson(const Json& j);
Message MessageFromJson(const Json& j);
Token TokenFromJson(const Json& j);
Receipt ReceiptFromJson(const Json& j);
/// An agent as the relay lists it; `status` and `listening` come back too.
Agent AgentFromJson(const Json& j, std::string* status = nullptr, bool* listening = nullptr);

/// Compact JSON text of `j`; bytes that are not UTF-8 in its strings (an id
/// echoed from a request's path, say) become U+FFFD instead of an exception.
std::string JsonText(const Json& j);

/// {"error":{"code","message"}}
Json ErrorJson(const Error& error);
std::string ErrorBody(const Error& error);

/// How deeply `text` nests objects and arrays (0 for a scalar), by a scan
/// that does not parse it (so it is safe on any input).
int JsonDepth(std::string_view text);
inline constexpr int kMaxBodyDepth = 64;

/// JSON text as JavaScript's clients mean it, when it is not valid as it is:
/// escapes of lone UTF-16 surrogates (`"\ud800"`, which JSON.stringify
/// writes and RFC 8259 leaves undefined) become `\ufffd`, and bytes that are
/// not UTF-8 become U+FFFD, as TextEncoder and TextDecoder do. nullopt when
/// there is nothing to repair. For the MCP servers, whose clients must get
/// an answer to their request's id rather than a parse error without one.
std::optional<std::string> WithUnicodeRepaired(std::string_view text);

/// Parses one MCP message's text: as it is, else WithUnicodeRepaired. A
/// discarded value when it is not JSON, including text with a NUL (never
/// part of JSON text; the parser would take it for the end).
Json ParseRepaired(std::string_view text);

/// Parses a request body that must be a JSON object. An empty body is `{}`.
/// Throws Error 400 invalid_json on anything else, or when it nests deeper
/// than kMaxBodyDepth.
Json ParseObject(std::string_view body);

/// The members of a body that is one flat JSON object of strings
/// (`{"from":"a","content":"hi"}`), read without building a tree: each key
/// and its decoded value, in order. nullopt for anything else (a value that
/// is not a string, a `\u` escape, a key with an escape, a control
/// character, bytes that are not UTF-8, text after the object): the caller
/// then uses ParseObject, which reads the same values or gives the error.
/// The send route's fast path; keys are views into `body`.
using FlatMembers = std::vector<std::pair<std::string_view, std::string>>;
std::optional<FlatMembers> ParseFlatStringObject(std::string_view body);

/// Field readers over a parsed body. Each throws Error 400 invalid_field with a
/// sentence naming the field and the expected type when the value is wrong.
std::string RequireString(const Json& body, const char* key);
std::optional<std::string> OptionalString(const Json& body, const char* key);
/// An optional object field, returned as compact JSON text ("{}" when absent).
std::string OptionalObjectText(const Json& body, const char* key);

}  // namespace meshwire
