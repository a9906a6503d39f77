#include "schemas/json_io.h"

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

Json ErrorJson(const Error& e) { return {{"error", {{"code", e.code()}, {"message", e.what()}}}}; }

std::string ErrorBody(const Error& e) { return ErrorJson(e).dump(); }

Json ParseObject(std::string_view body) {
  if (body.find_first_not_of(" \t\r\n") == std::string_view::npos) return Json::object();
  Json j = Json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) {
    throw Error::BadRequest("invalid_json", "The request body is not valid JSON (UTF-8); send a JSON object.");
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
