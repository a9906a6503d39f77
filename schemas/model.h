// The wire model: plain values, no JSON here (see json_io.h for conversions).
// Times are milliseconds since the Unix epoch; RFC 3339 only at the edge.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace meshwire {

using Millis = std::int64_t;

struct Token {
  std::string id;    // public id, e.g. "tok_..."; never the secret
  std::string user;  // owner's user name
  std::string name;  // label
  std::optional<std::string> mesh_id;  // set: the token works on that mesh alone
  Millis created_at = 0;
  std::optional<Millis> last_used_at;
};

struct Mesh {
  std::string mesh_id;
  std::string name;
  std::string owner;
  Millis created_at = 0;
};

struct Member {
  std::string user;
  std::string role;  // "owner" or "member"
};

/// What adding a member did (POST /mesh/{mesh}/members).
struct AddedMember {
  std::string user;       // as stored (the spelling first stored: `BOB` adds `bob`)
  bool new_user = false;  // the relay knew no such user: created now (a typo, or before their first sign-in)
};

struct Agent {
  std::string agent_id;
  std::string mesh_id;
  std::string name;
  std::string harness;
  std::string owner;
  Millis created_at = 0;
  Millis last_seen = 0;
  std::int64_t acked_seq = 0;    // the stored cursor: everything <= it is acknowledged
  std::int64_t fetched_seq = 0;  // highest seq ever returned by a poll
};

struct Message {
  std::string id;
  std::int64_t seq = 0;
  std::string mesh_id;
  std::string from;       // agent id
  std::string from_name;
  std::string to;         // agent id, or "all"
  std::optional<std::string> to_name;
  std::string content;
  std::string priority = "normal";
  std::string metadata_json = "{}";  // a JSON object, kept as text
  Millis created_at = 0;
};

/// One recipient's view of a message (GET /mesh/{mesh}/messages/{id}).
struct Receipt {
  std::string agent_id;
  std::string name;
  std::string state;  // "queued", "fetched", "acked"
  std::optional<Millis> fetched_at;
  std::optional<Millis> acked_at;
};

inline constexpr const char* kBroadcast = "all";
inline constexpr std::size_t kMaxContentBytes = 10240;

}  // namespace meshwire
