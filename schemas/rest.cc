#include "schemas/rest.h"

#include <algorithm>
#include <nlohmann/json.hpp>

namespace meshwire {

namespace {

/// The client's 502 for an answer without a valid `key`.
Error BadField(const char* key) {
  return Error(502, "bad_response",
               std::string("The relay's answer lacks a valid \"") + key + "\"; is that a meshwire relay?");
}

/// Reads an answer's field, or throws the client's 502.
template <class T>
T Field(const Json& j, const char* key) {
  try {
    return j.at(key).get<T>();
  } catch (const Json::exception&) {
    throw BadField(key);
  }
}

std::optional<std::string> OptionalField(const Json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return std::nullopt;
  if (!it->is_string()) return Field<std::string>(Json::object(), key);  // throws 502
  return it->get<std::string>();
}

}  // namespace

const Json& AnswerList(const Json& answer, const char* key) {
  if (answer.is_object()) {
    auto it = answer.find(key);
    if (it != answer.end() && it->is_array() &&
        std::all_of(it->begin(), it->end(), [](const Json& e) { return e.is_object(); })) {
      return *it;
    }
  }
  throw BadField(key);
}

Json ToJson(const HealthAnswer& h) {
  Json j = {{"status", h.status}, {"version", h.version}, {"uptime_s", h.uptime_s},
            {"region", h.region}, {"storage", h.storage}, {"auth", h.auth}};
  if (!h.node.empty()) j["node"] = h.node;
  return j;
}

HealthAnswer HealthAnswerFromJson(const Json& j) {
  HealthAnswer h;
  h.status = Field<std::string>(j, "status");
  h.version = Field<std::string>(j, "version");
  h.uptime_s = Field<std::int64_t>(j, "uptime_s");
  h.region = Field<std::string>(j, "region");
  h.storage = Field<std::string>(j, "storage");
  h.auth = j.value("auth", "");  // older relays did not say
  h.node = j.value("node", "");
  return h;
}

Json ToJson(const MeAnswer& me) {
  Json j = {{"user", me.user}, {"token_id", me.token_id}};
  if (me.mesh_id) j["mesh_id"] = *me.mesh_id;
  return j;
}

MeAnswer MeAnswerFromJson(const Json& j) {
  return MeAnswer{Field<std::string>(j, "user"), Field<std::string>(j, "token_id"), OptionalField(j, "mesh_id")};
}

Json ToJson(const MeshDetails& d) {
  Json j = ToJson(d.mesh);
  j["agents"] = {{"registered", d.registered}, {"active", d.active}};
  j["newest_seq"] = d.newest_seq;
  return j;
}

MeshDetails MeshDetailsFromJson(const Json& j) {
  MeshDetails d{MeshFromJson(j)};
  const Json agents = j.value("agents", Json::object());
  d.registered = Field<int>(agents, "registered");
  d.active = Field<int>(agents, "active");
  d.newest_seq = j.value("newest_seq", std::int64_t{0});  // absent from relays before it
  return d;
}

Json ToJson(const RegisterAnswer& r) { return {{"agent_id", r.agent_id}, {"name", r.name}}; }

RegisterAnswer RegisterAnswerFromJson(const Json& j) {
  return RegisterAnswer{Field<std::string>(j, "agent_id"), Field<std::string>(j, "name")};
}

Json ToJson(const NewTokenAnswer& t) {
  Json j = {{"id", t.id}, {"token", t.token}, {"name", t.name}};
  if (t.mesh_id) j["mesh_id"] = *t.mesh_id;
  return j;
}

NewTokenAnswer NewTokenAnswerFromJson(const Json& j) {
  return NewTokenAnswer{Field<std::string>(j, "id"), Field<std::string>(j, "token"),
                        j.value("name", ""), OptionalField(j, "mesh_id")};
}

PollAnswer PollAnswerFromJson(const Json& j) {
  PollAnswer a;
  for (const Json& m : Field<Json>(j, "messages")) a.messages.push_back(MessageFromJson(m));
  a.cursor = Field<std::int64_t>(j, "cursor");
  return a;
}

Json ToJson(const OutgoingMessage& m) {
  Json body = {{"from", m.from}, {"content", m.content}};
  if (m.to) body["to"] = *m.to;
  if (m.priority) body["priority"] = *m.priority;
  if (m.reply_to) body["reply_to"] = *m.reply_to;
  if (m.idempotency_key) body["idempotency_key"] = *m.idempotency_key;
  Json metadata = Json::parse(m.metadata_json, nullptr, false);
  if (metadata.is_object() && !metadata.empty()) body["metadata"] = std::move(metadata);
  return body;
}

OutgoingMessage OutgoingMessageFromJson(const Json& body) {
  OutgoingMessage m;
  m.from = RequireString(body, "from");
  if (auto it = body.find("to"); it != body.end() && it->is_null()) {
    // A script's unset variable rendered as null must not reach every agent.
    throw Error::InvalidField(
        "The field \"to\" is null: give an agent's name or id, \"all\" for every agent, or "
        "leave \"to\" out to send to every agent.");
  }
  m.to = OptionalString(body, "to");
  m.content = RequireString(body, "content");
  m.priority = OptionalString(body, "priority");
  m.reply_to = OptionalString(body, "reply_to");
  m.metadata_json = OptionalObjectText(body, "metadata");
  m.idempotency_key = OptionalString(body, "idempotency_key");
  return m;
}

namespace {

/// A send from a flat body's members, or nullopt when OutgoingMessageFromJson
/// must decide: a required field missing (its error), or a field given twice
/// (the full parser keeps the last).
std::optional<OutgoingMessage> OutgoingMessageFromMembers(FlatMembers& members) {
  OutgoingMessage m;
  bool from = false, content = false, to = false, priority = false, reply_to = false, key = false;
  const auto take = [](bool& seen, auto& field, std::string& value) {  // a string or an optional one
    if (seen) return false;
    seen = true;
    field = std::move(value);
    return true;
  };
  for (auto& [name, value] : members) {
    bool ok = true;
    if (name == "from") ok = take(from, m.from, value);
    else if (name == "content") ok = take(content, m.content, value);
    else if (name == "to") ok = take(to, m.to, value);
    else if (name == "priority") ok = take(priority, m.priority, value);
    else if (name == "reply_to") ok = take(reply_to, m.reply_to, value);
    else if (name == "idempotency_key") ok = take(key, m.idempotency_key, value);
    else if (name == "metadata") return std::nullopt;  // a string there is an error to name
    if (!ok) return std::nullopt;
  }
  if (!from || !content) return std::nullopt;
  return m;
}

}  // namespace

OutgoingMessage OutgoingMessageFromBody(std::string_view body) {
  if (auto members = ParseFlatStringObject(body)) {
    if (auto m = OutgoingMessageFromMembers(*members)) return std::move(*m);
  }
  return OutgoingMessageFromJson(ParseObject(body));
}

}  // namespace meshwire
