// The REST API's request bodies and answers (docs/API.md, "Routes") that are
// more than one model value: defined once here, written by the relay's routes
// and read by relay-client, so the two sides cannot drift. Single values
// (Mesh, Message, Token, Receipt, an Agent as listed) are in json_io.h.
//
// Readers of answers (used by clients) throw Error 502 "bad_response" on a
// missing or mistyped field; readers of request bodies (used by the relay)
// throw Error 400 "invalid_field".
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "schemas/json_io.h"
#include "schemas/model.h"

namespace meshwire {

/// The list `key` of an answer (GET /mesh's "meshes", "agents", "tokens",
/// "members"): an array of objects, else the 502 of a missing field.
const Json& AnswerList(const Json& answer, const char* key);

/// GET /health
struct HealthAnswer {
  std::string status, version, region, storage, auth;
  std::int64_t uptime_s = 0;
  std::string node;  // PostgreSQL: which relay node answered (absent on one node)
};
Json ToJson(const HealthAnswer& h);
HealthAnswer HealthAnswerFromJson(const Json& j);

/// GET /me
struct MeAnswer {
  std::string user;
  std::string token_id;
  std::optional<std::string> mesh_id;  // a token scoped to one mesh
};
Json ToJson(const MeAnswer& me);
MeAnswer MeAnswerFromJson(const Json& j);

/// GET /mesh/{mesh}: the mesh with its agent counts.
struct MeshDetails {
  Mesh mesh;
  int registered = 0;
  int active = 0;
  std::int64_t newest_seq = 0;  // the seq of its newest message, 0 before the first
};
Json ToJson(const MeshDetails& d);
MeshDetails MeshDetailsFromJson(const Json& j);

/// One entry of GET /mesh/{mesh}/agents.
struct AgentInfo {
  Agent agent;
  std::string status;  // active, idle, offline
  bool listening = false;
};

/// POST /mesh/{mesh}/agents: 201 new, 200 the caller's existing name.
struct RegisterAnswer {
  std::string agent_id;
  std::string name;
};
Json ToJson(const RegisterAnswer& r);
RegisterAnswer RegisterAnswerFromJson(const Json& j);

/// POST /tokens: the plaintext, shown once.
struct NewTokenAnswer {
  std::string id;
  std::string token;
  std::string name;
  std::optional<std::string> mesh_id;
};
Json ToJson(const NewTokenAnswer& t);
NewTokenAnswer NewTokenAnswerFromJson(const Json& j);

/// GET /mesh/{mesh}/messages: a page and the cursor that acknowledges it.
struct PollAnswer {
  std::vector<Message> messages;
  std::int64_t cursor = 0;
};
PollAnswer PollAnswerFromJson(const Json& j);

/// POST /mesh/{mesh}/messages, the request body.
struct OutgoingMessage {
  std::string from;  // agent id or name
  std::optional<std::string> to;
  std::string content;
  std::optional<std::string> priority;
  std::optional<std::string> reply_to;
  std::optional<std::string> idempotency_key;
  std::string metadata_json = "{}";  // an object
};
Json ToJson(const OutgoingMessage& m);
/// Reads a send's body strictly (400 invalid_field / invalid_json).
OutgoingMessage OutgoingMessageFromJson(const Json& body);
/// The same from the body's text: a flat body of strings (the usual send) is
/// read without a JSON tree (ParseFlatStringObject); any other goes through
/// ParseObject and OutgoingMessageFromJson, so the answer, or the error, is
/// the same either way.
OutgoingMessage OutgoingMessageFromBody(std::string_view body);

}  // namespace meshwire
