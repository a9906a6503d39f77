#include "server/core/mesh_service.h"

#include <strings.h>

#include <algorithm>
#include <iterator>
#include <unordered_set>

#include <nlohmann/json.hpp>

#include "schemas/error.h"
#include "schemas/ids.h"
#include "schemas/json_io.h"
#include "server/core/integrate_guide.h"

namespace meshwire {

namespace {

constexpr Millis kActiveMs = 60 * 1000;
constexpr Millis kIdleMs = 3600 * 1000;
constexpr Millis kTokenTouchEveryMs = 60 * 1000;
constexpr std::size_t kMaxLabel = 128;
constexpr std::size_t kMaxIdempotencyKey = 256;
constexpr std::size_t kMaxMetadataBytes = 16 * 1024;
constexpr int kMaxMetadataDepth = 32;

bool IsValidUtf8(std::string_view s);

void CheckName(const std::string& name, const char* what) {
  if (!IsValidName(name)) {
    throw Error::InvalidField(std::string("The ") + what + " must be 1-64 characters of A-Z a-z 0-9 . _ - (got \"" +
                              ShownName(name) + "\").");
  }
}

/// Text is stored as text: PostgreSQL's text holds no NUL character, so no
/// backend takes one (the same answer on every backend).
void CheckNoNul(std::string_view text, const char* what) {
  if (text.find('\0') != std::string_view::npos) {
    throw Error::InvalidField(std::string("The ") + what + " must not contain the NUL character (U+0000).");
  }
}

/// Text that lists, terminals and the MCP tools' results show on one line: no
/// control characters (a newline, ESC of an escape sequence, DEL, C1), which
/// could break a line out of what frames it there.
void CheckOneLine(const std::string& label, const char* what) {
  CheckNoNul(label, what);
  for (std::size_t i = 0; i < label.size(); ++i) {
    const auto c = static_cast<unsigned char>(label[i]);
    const bool c1 = c == 0xc2 && i + 1 < label.size() && static_cast<unsigned char>(label[i + 1]) <= 0x9f &&
                    static_cast<unsigned char>(label[i + 1]) >= 0x80;
    if (c < 0x20 || c == 0x7f || c1) {
      throw Error::InvalidField(std::string("The ") + what +
                                " must not contain control characters (a newline, a tab, an escape code); "
                                "use plain text on one line.");
    }
  }
}

/// A mesh's or token's name: one line of 1-kMaxLabel bytes.
void CheckLabel(const std::string& label, const char* what) {
  if (label.empty() || label.size() > kMaxLabel) {
    throw Error::InvalidField(std::string("The ") + what + " must be 1-" + std::to_string(kMaxLabel) +
                              " bytes; choose a shorter name.");
  }
  CheckOneLine(label, what);
}

/// A reply names its message once more in metadata.reply_to, if at all, as
/// the same id: which of two would win is no caller's guess. (`metadata_json`:
/// an object, as the route checked.)
void CheckReplyToAgrees(const std::string& metadata_json, const std::string& reply_to) {
  if (metadata_json.find("\"reply_to\"") == std::string::npos) return;
  const auto metadata = nlohmann::json::parse(metadata_json);
  if (auto link = metadata.find("reply_to"); link != metadata.end() && *link != reply_to) {
    throw Error::InvalidField("metadata.reply_to names another message than the one replied to; leave it out.");
  }
}

void CheckIdempotencyKey(const std::optional<std::string>& key) {
  if (!key) return;
  if (key->empty() || key->size() > kMaxIdempotencyKey) {
    throw Error::InvalidField("The field \"idempotency_key\" must be 1-256 bytes.");
  }
  CheckNoNul(*key, "field \"idempotency_key\"");
}

void CheckContent(const std::string& content) {
  if (content.empty()) throw Error::InvalidField("The field \"content\" must not be empty.");
  if (content.size() > kMaxContentBytes) {
    throw Error::BadRequest("message_too_large",
                            "The content is " + std::to_string(content.size()) +
                                " bytes; the limit is 10240 bytes of UTF-8. Send a reference "
                                "(a path, URL or id) instead of the data.");
  }
  CheckNoNul(content, "content");
}

std::string CheckPriority(const std::optional<std::string>& p) {
  if (!p) return "normal";
  if (*p == "urgent" || *p == "high" || *p == "normal" || *p == "low") return *p;
  throw Error::InvalidField("The field \"priority\" must be one of urgent, high, normal, low.");
}

void CheckMetadata(const std::string& metadata_json) {
  if (metadata_json.size() > kMaxMetadataBytes) {
    throw Error::InvalidField("The field \"metadata\" is " + std::to_string(metadata_json.size()) +
                              " bytes as JSON; the limit is 16384.");
  }
  if (JsonDepth(metadata_json) > kMaxMetadataDepth) {
    throw Error::InvalidField("The field \"metadata\" is nested more than 32 levels deep.");
  }
}

std::string WithReplyTo(const std::string& metadata_json, const std::string& reply_to) {
  auto j = nlohmann::json::parse(metadata_json);
  j["reply_to"] = reply_to;
  return j.dump();
}

}  // namespace

MeshService::MeshService(Store& store, const Clock& clock, Waiters& waiters, WakeBus& bus,
                         Executor& executor, ServiceOptions options)
    : store_(store),
      clock_(clock),
      waiters_(waiters),
      bus_(bus),
      executor_(executor),
      options_(std::move(options)),
      limiter_(clock, options_.rate_limit_per_min) {
  bus_.Subscribe(
      [this](const WakeEvent& e) {
        if (e.kind != WakeEvent::Kind::kAccessChanged) return;
        if (e.trust_cache) {
          cache_.SetTrusted(*e.trust_cache);
        } else {
          cache_.Clear();
        }
        EndPolls(e.ended);
      },
      [](const std::string&) { return false; });  // access changes only, no mesh's messages
  store_.SetCommitListener([this](const Message& m) {
    WakeEvent e;
    e.kind = WakeEvent::Kind::kMessage;
    e.mesh_id = m.mesh_id;
    e.message = std::make_shared<const CommittedMessage>(m);
    bus_.Publish(e);
  });
}

void MeshService::EndPolls(const WakeEvent::Ended& ended) {
  // On whichever node the change was made, the polls it ends answer now (as
  // they look again with the cache cleared) instead of at their deadline.
  if (!ended.token_id.empty()) waiters_.EndToken(ended.token_id);
  if (ended.mesh_id.empty()) return;
  if (ended.agent_ids.empty()) {
    waiters_.EndMesh(ended.mesh_id);
    return;
  }
  for (const std::string& agent_id : ended.agent_ids) waiters_.EndAgent(ended.mesh_id, agent_id);
}

void MeshService::AccessChanged(WakeEvent::Ended ended) {
  WakeEvent e;
  e.kind = WakeEvent::Kind::kAccessChanged;
  e.ended = std::move(ended);
  bus_.Publish(e);
}

void MeshService::PublishPresence(Agent agent, bool deleted) {
  WakeEvent e;
  e.kind = WakeEvent::Kind::kPresence;
  e.mesh_id = agent.mesh_id;
  agent.last_seen = LastSeen(agent);
  e.agent_status = deleted ? "offline" : StatusOf(agent.last_seen);
  e.listening = !deleted && waiters_.IsListening(agent.agent_id);
  e.agent = std::make_shared<const Agent>(std::move(agent));
  bus_.Publish(e);
}

// --- auth ----------------------------------------------------------------------

Caller MeshService::Authenticate(std::string_view header) {
  constexpr std::string_view kPrefix = "Bearer ";
  if (header.empty()) {
    throw Error::Unauthorized(
        "No token: send \"Authorization: Bearer mw_...\" (run `meshwire login`, or set "
        "MESHWIRE_TOKEN).");
  }
  // The scheme is case-insensitive (RFC 9110 11.1).
  if (header.size() <= kPrefix.size() ||
      strncasecmp(header.data(), kPrefix.data(), kPrefix.size()) != 0) {
    throw Error::Unauthorized("The Authorization header must be \"Bearer mw_...\".");
  }
  std::string hash = Sha256Hex(header.substr(kPrefix.size()));
  auto token = cache_.FindToken(hash);
  if (!token) {
    const std::uint64_t generation = cache_.Generation();
    token = store_.FindTokenByHash(hash);
    if (token) cache_.PutToken(hash, *token, generation);
  }
  if (!token) {
    throw Error::Unauthorized(
        "The token is unknown or revoked: sign in again with `meshwire login`, or use a valid token "
        "(`meshwire init --token TOKEN`; on the relay's machine `meshwire admin token create` makes one).");
  }
  if (int retry = limiter_.Take(token->id); retry > 0) throw Error::RateLimited(retry);
  Millis now = clock_.Now();
  bool touch = false;
  {
    std::lock_guard lock(presence_mu_);
    Millis& last = token_used_[token->id];
    if (now - last >= kTokenTouchEveryMs) {
      last = now;
      touch = true;
    }
  }
  if (touch) store_.TouchToken(token->id, now);
  return Caller{std::move(*token), std::move(hash)};
}

void MeshService::RequireUnscoped(const Caller& caller, const char* what) {
  if (caller.token.mesh_id) {
    throw Error::Forbidden(std::string("This token is scoped to mesh ") + *caller.token.mesh_id +
                           " and cannot " + what + "; use an unscoped token.");
  }
}

Mesh MeshService::RequireMember(const Caller& caller, const std::string& mesh_id) {
  if (caller.token.mesh_id && *caller.token.mesh_id != mesh_id) {
    throw Error::Forbidden("This token works on mesh " + *caller.token.mesh_id + " only, not " +
                           mesh_id + ".");
  }
  if (auto cached = cache_.FindMembership(mesh_id, caller.user())) return *cached;
  const std::uint64_t generation = cache_.Generation();
  auto mesh = store_.FindMesh(mesh_id);
  if (!mesh) {
    throw Error::NotFound("mesh_not_found", "No mesh " + EchoedValue(mesh_id) +
                                                "; run `meshwire mesh list` to see your meshes.");
  }
  if (!store_.RoleOf(mesh_id, caller.user())) {
    throw Error::Forbidden("You (" + caller.user() + ") are not a member of mesh " + mesh_id +
                           "; ask its owner to run `meshwire mesh members add " + caller.user() +
                           "`.");
  }
  cache_.PutMembership(caller.user(), *mesh, generation);
  return *mesh;
}

Agent MeshService::RequireAgent(const std::string& mesh_id, const std::string& id_or_name,
                                bool fresh) {
  if (!fresh) {
    if (auto cached = cache_.FindAgentIdentity(mesh_id, id_or_name)) return *cached;
  }
  const std::uint64_t generation = cache_.Generation();
  auto agent = store_.FindAgent(mesh_id, id_or_name);
  if (!agent) {
    throw Error::NotFound("agent_not_found", "No agent \"" + EchoedValue(id_or_name) + "\" in mesh " + mesh_id +
                                                 "; run `meshwire agents` to see who is there.");
  }
  // A fresh read (a poll, for its cursors) does not refill the cache: the
  // identity is cached already, and polls are a hot path.
  if (!fresh) cache_.PutAgentIdentity(*agent, generation);
  return *agent;
}

Agent MeshService::RequireOwnAgent(const Caller& caller, const std::string& mesh_id,
                                   const std::string& id_or_name, bool fresh) {
  Agent agent = RequireAgent(mesh_id, id_or_name, fresh);
  if (agent.owner != caller.user()) {
    throw Error::Forbidden("Agent " + agent.name + " (" + agent.agent_id + ") belongs to " +
                           agent.owner + "; you can only act as agents you registered.");
  }
  return agent;
}

// --- meshes and members ----------------------------------------------------------

Mesh MeshService::CreateMesh(const Caller& caller, const std::string& name) {
  RequireUnscoped(caller, "create meshes");
  CheckLabel(name, "mesh name");
  Mesh mesh{RandomBase62(12), name, caller.user(), clock_.Now()};
  store_.CreateMesh(mesh);
  return mesh;
}

std::vector<Mesh> MeshService::ListMeshes(const Caller& caller) {
  auto meshes = store_.MeshesOf(caller.user());
  if (caller.token.mesh_id) {
    std::erase_if(meshes, [&](const Mesh& m) { return m.mesh_id != *caller.token.mesh_id; });
  }
  return meshes;
}

MeshInfo MeshService::GetMesh(const Caller& caller, const std::string& mesh_id) {
  MeshInfo info{RequireMember(caller, mesh_id)};
  for (const Agent& a : store_.Agents(mesh_id)) {
    ++info.registered;
    if (StatusOf(LastSeen(a)) == "active") ++info.active;
  }
  info.newest_seq = store_.NewestSeq(mesh_id);
  return info;
}

void MeshService::DeleteMesh(const Caller& caller, const std::string& mesh_id) {
  Mesh mesh = RequireMember(caller, mesh_id);
  RequireUnscoped(caller, "delete its mesh");  // a token handed to a client is not the owner's key
  if (mesh.owner != caller.user()) {
    throw Error::Forbidden("Only the mesh's owner (" + mesh.owner + ") can delete it.");
  }
  store_.DeleteMesh(mesh_id);
  AccessChanged({.mesh_id = mesh_id});  // its parked polls answer now (404), on every node
}

AddedMember MeshService::AddMember(const Caller& caller, const std::string& mesh_id,
                                   const std::string& name) {
  Mesh mesh = RequireMember(caller, mesh_id);
  RequireUnscoped(caller, "manage its mesh's members");
  CheckName(name, "user name");
  if (mesh.owner != caller.user()) {
    throw Error::Forbidden("Only the mesh's owner (" + mesh.owner + ") can add members.");
  }
  const std::optional<std::string> known = store_.FindUserName(name);  // `add octocat` for GitHub's Octocat
  const std::string user = known.value_or(name);
  if (user == mesh.owner) {
    throw Error::Conflict(user + " owns mesh " + mesh_id + " already; add other users as members.");
  }
  store_.AddMember(mesh_id, user);
  // The spelling stored, a first one stored meanwhile by another node included.
  return {CanonicalUser(store_, user), !known.has_value()};
}

std::vector<Member> MeshService::ListMembers(const Caller& caller, const std::string& mesh_id) {
  RequireMember(caller, mesh_id);
  return store_.Members(mesh_id);
}

void MeshService::RemoveMember(const Caller& caller, const std::string& mesh_id,
                               const std::string& name) {
  Mesh mesh = RequireMember(caller, mesh_id);
  RequireUnscoped(caller, "manage its mesh's members");
  const std::string user = CanonicalUser(store_, name);
  if (mesh.owner != caller.user() && user != caller.user()) {
    throw Error::Forbidden("Only the mesh's owner can remove other members.");
  }
  if (user == mesh.owner) {
    throw Error::Forbidden("The owner cannot leave the mesh; delete it with `meshwire mesh delete`.");
  }
  // Their agents go with them; those agents' parked polls answer now (403).
  WakeEvent::Ended ended{.mesh_id = mesh_id};
  std::vector<Agent> theirs;
  for (Agent& a : store_.Agents(mesh_id)) {
    if (a.owner != user) continue;
    ended.agent_ids.push_back(a.agent_id);
    theirs.push_back(std::move(a));
  }
  bool removed = store_.RemoveMember(mesh_id, user);
  if (ended.agent_ids.empty()) ended.mesh_id.clear();  // none: no poll to end
  AccessChanged(std::move(ended));
  if (!removed) {
    throw Error::NotFound("not_found", "User " + EchoedValue(user) + " is not a member of mesh " + mesh_id + ".");
  }
  // Each of their agents is gone, as DeleteAgent says of one: offline.
  for (Agent& a : theirs) Gone(std::move(a));
}

// --- agents ---------------------------------------------------------------------------

RegisterResult MeshService::RegisterAgent(const Caller& caller, const std::string& mesh_id,
                                          const std::string& name, const std::string& harness) {
  RequireMember(caller, mesh_id);
  CheckName(name, "agent name");
  if (harness.size() > 64) throw Error::InvalidField("The field \"harness\" must be at most 64 bytes.");
  CheckOneLine(harness, "field \"harness\"");
  // "all" is the broadcast address: an agent of that name could never be
  // reached by name, and one called "ALL" would catch sends meant for
  // everyone. "." and ".." are path segments that URL libraries remove.
  // (An agent registered under such a name before keeps working.)
  const bool all = strcasecmp(name.c_str(), kBroadcast) == 0;
  if (name == kBroadcast || (IsReservedAgentName(name) && !store_.FindAgent(mesh_id, name))) {
    throw Error::InvalidField("The agent name \"" + name + "\" is reserved" +
                              (all ? ": \"all\" means every agent of the mesh" : ": it is a path segment") +
                              "; choose another name.");
  }
  // Agents are named by id or name: a name that is another agent's id would
  // make that agent's id ambiguous.
  if (auto existing = store_.FindAgent(mesh_id, name); existing && existing->agent_id == name) {
    throw Error::InvalidField("The agent name \"" + name +
                              "\" is the id of another agent in this mesh; choose another name.");
  }
  NewAgent agent{RandomBase62(12), mesh_id, name,
                 harness,          caller.user(), clock_.Now(),
                 static_cast<std::int64_t>(options_.max_agents_per_member)};
  RegisterResult result = store_.RegisterAgent(agent);
  if (result.full) {
    throw Error::BadRequest("too_many_agents",
                            "You have " + std::to_string(options_.max_agents_per_member) + " agents in mesh " +
                                mesh_id + ", the most one member may have; delete unused ones with `meshwire " +
                                "agents --mesh " + mesh_id + " --delete NAME` (agents unseen for the retention " +
                                "period go by themselves).");
  }
  if (!result.created && result.agent.owner != caller.user()) {
    throw Error::Conflict("The name \"" + name + "\" is taken in mesh " + mesh_id + " by " +
                          result.agent.owner + "'s agent; choose another name.");
  }
  // Presence as for a heartbeat: a new agent, or one unseen for a minute
  // (every `meshwire send` registers again: that is no news).
  const bool was_active = !result.created && StatusOf(LastSeen(result.agent)) == "active";
  Seen(result.agent.agent_id);
  if (!was_active) PublishPresence(result.agent);
  return result;
}

std::vector<AgentView> MeshService::ListAgents(const Caller& caller, const std::string& mesh_id) {
  RequireMember(caller, mesh_id);
  std::vector<AgentView> out;
  const std::vector<std::string> listed = store_.ListeningElsewhere(mesh_id);  // other nodes'
  const std::unordered_set<std::string> elsewhere(listed.begin(), listed.end());
  for (Agent& a : store_.Agents(mesh_id)) {
    a.last_seen = LastSeen(a);
    AgentView view{std::move(a), "", false};
    view.status = StatusOf(view.agent.last_seen);
    view.listening = waiters_.IsListening(view.agent.agent_id) || elsewhere.count(view.agent.agent_id) > 0;
    out.push_back(std::move(view));
  }
  return out;
}

void MeshService::ShareListening() {
  if (store_.NodeId().empty()) return;  // one node: nobody to tell
  std::vector<std::string> now = waiters_.TakeListening();
  std::sort(now.begin(), now.end());
  std::vector<std::string> started, stopped;
  std::set_difference(now.begin(), now.end(), shared_listening_.begin(), shared_listening_.end(),
                      std::back_inserter(started));
  std::set_difference(shared_listening_.begin(), shared_listening_.end(), now.begin(), now.end(),
                      std::back_inserter(stopped));
  store_.ShareListening(started, stopped);
  shared_listening_ = std::move(now);
}

void MeshService::Heartbeat(const Caller& caller, const std::string& mesh_id,
                            const std::string& agent) {
  RequireMember(caller, mesh_id);
  Agent a = RequireOwnAgent(caller, mesh_id, agent);
  const bool was_active = StatusOf(LastSeen(a)) == "active";
  Seen(a.agent_id);
  if (!was_active) PublishPresence(std::move(a));
}

void MeshService::DeleteAgent(const Caller& caller, const std::string& mesh_id,
                              const std::string& agent_ref) {
  Mesh mesh = RequireMember(caller, mesh_id);
  Agent agent = RequireAgent(mesh_id, agent_ref);
  if (agent.owner != caller.user() && mesh.owner != caller.user()) {
    throw Error::Forbidden("Only the agent's owner or the mesh's owner can remove agent " +
                           agent.name + ".");
  }
  // Another user's agent goes only by the owner's own key: a token handed to
  // a client or CI could otherwise remove a member's agent and take its name.
  if (agent.owner != caller.user()) RequireUnscoped(caller, "remove other users' agents");
  store_.DeleteAgent(mesh_id, agent.agent_id);
  AccessChanged({.mesh_id = mesh_id, .agent_ids = {agent.agent_id}});  // its parked polls answer now (404)
  Gone(std::move(agent));
}

void MeshService::Gone(Agent agent) {
  agent.last_seen = LastSeen(agent);  // when it was last seen, as it goes
  {
    std::lock_guard lock(presence_mu_);
    seen_.erase(agent.agent_id);
    dirty_.erase(agent.agent_id);
  }
  PublishPresence(std::move(agent), /*deleted=*/true);  // gone: offline
}

// --- messages ---------------------------------------------------------------------------

AppendResult MeshService::Commit(const NewMessage& message) {
  // The store publishes the commit on the bus (waking its readers) before
  // Append returns.
  AppendResult result = store_.Append(message);
  Seen(message.from);
  return result;
}

void MeshService::Send(const Caller& caller, const std::string& mesh_id, const SendRequest& r,
                       Store::AppendDone done) {
  RequireMember(caller, mesh_id);
  CheckContent(r.content);
  if (!IsValidUtf8(r.content)) throw Error::InvalidField("The content must be valid UTF-8.");
  std::string priority = CheckPriority(r.priority);
  CheckMetadata(r.metadata_json);
  CheckIdempotencyKey(r.idempotency_key);
  Agent from = RequireOwnAgent(caller, mesh_id, r.from);
  NewMessage m;
  m.mesh_id = mesh_id;
  m.from = from.agent_id;
  m.from_name = from.name;
  m.to = kBroadcast;
  if (r.to && *r.to != kBroadcast) {
    Agent to = RequireAgent(mesh_id, *r.to);
    m.to = to.agent_id;
    m.to_name = to.name;
  }
  m.content = r.content;
  m.priority = priority;
  m.metadata_json = r.metadata_json;
  if (!r.reply_to && m.metadata_json.find("\"reply_to\"") != std::string::npos) {
    // metadata.reply_to is how a reply is told from a message: a plain send
    // may set it only to a message of this mesh (as the field reply_to).
    const auto metadata = nlohmann::json::parse(m.metadata_json);  // an object (the route checked)
    if (auto link = metadata.find("reply_to"); link != metadata.end()) {
      if (!link->is_string() || link->get<std::string>().find('\0') != std::string::npos) {
        throw Error::InvalidField("metadata.reply_to, when given, must be the id of a message of this mesh.");
      }
      if (!store_.FindMessage(mesh_id, link->get<std::string>())) {
        throw Error::NotFound("message_not_found", "No message " + EchoedValue(link->get<std::string>()) + " in mesh " + mesh_id +
                                                       " for metadata.reply_to.");
      }
    }
  }
  if (r.reply_to) {
    CheckReplyToAgrees(m.metadata_json, *r.reply_to);
    if (!store_.FindMessage(mesh_id, *r.reply_to)) {
      throw Error::NotFound("message_not_found",
                            "No message " + EchoedValue(*r.reply_to) + " in mesh " + mesh_id + " to reply to.");
    }
    m.metadata_json = WithReplyTo(m.metadata_json, *r.reply_to);
  }
  m.idempotency_key = r.idempotency_key;
  m.now = clock_.Now();
  store_.AppendAsync(m, [this, from = m.from, done = std::move(done)](std::exception_ptr error,
                                                                       AppendResult result) {
    if (!error) Seen(from);
    done(error, std::move(result));
  });
}

AppendResult MeshService::Reply(const Caller& caller, const std::string& mesh_id,
                                const std::string& message_id, const std::string& from_ref,
                                const std::string& content, const std::string& metadata_json,
                                const std::optional<std::string>& priority,
                                const std::optional<std::string>& idempotency_key) {
  RequireMember(caller, mesh_id);
  CheckContent(content);
  if (!IsValidUtf8(content)) throw Error::InvalidField("The content must be valid UTF-8.");
  const std::string checked_priority = CheckPriority(priority);
  CheckMetadata(metadata_json);
  CheckIdempotencyKey(idempotency_key);
  auto original = store_.FindMessage(mesh_id, message_id);
  if (!original) {
    throw Error::NotFound("message_not_found",
                          "No message " + EchoedValue(message_id) + " in mesh " + mesh_id + " to reply to.");
  }
  Agent from = RequireOwnAgent(caller, mesh_id, from_ref);
  auto to = store_.FindAgent(mesh_id, original->from);
  if (!to || to->agent_id != original->from) {
    throw Error::NotFound("agent_not_found", "The sender of message " + message_id +
                                                 " has left the mesh; there is no one to reply to.");
  }
  NewMessage m;
  m.mesh_id = mesh_id;
  m.from = from.agent_id;
  m.from_name = from.name;
  m.to = to->agent_id;
  m.to_name = to->name;
  m.content = content;
  m.priority = checked_priority;
  CheckReplyToAgrees(metadata_json, message_id);
  m.metadata_json = WithReplyTo(metadata_json, message_id);
  m.idempotency_key = idempotency_key;
  m.now = clock_.Now();
  return Commit(m);
}

namespace {
std::vector<CommittedPtr> AsCommitted(std::vector<Message> messages) {
  std::vector<CommittedPtr> out;
  out.reserve(messages.size());
  for (Message& m : messages) out.push_back(std::make_shared<const CommittedMessage>(std::move(m)));
  return out;
}
}  // namespace

Waiters::Handle MeshService::Poll(const Caller& caller, const std::string& mesh_id,
                                  const PollRequest& r, PollDone done) {
  RequireMember(caller, mesh_id);
  if (r.wait_s < 0 || r.wait_s > options_.max_wait_s) {
    throw Error::InvalidField("The parameter \"wait\" must be 0-" +
                              std::to_string(options_.max_wait_s) + " seconds.");
  }
  // limit=0: acknowledge `after` and read nothing, so nothing is marked
  // fetched that nobody was shown (what a client that printed a batch sends).
  if (r.limit < 0 || r.limit > 1000 || (r.limit == 0 && (r.wait_s > 0 || !r.after))) {
    throw Error::InvalidField(
        "The parameter \"limit\" must be 1-1000, or 0 with `after` and no `wait` (to acknowledge only).");
  }
  if (r.after && *r.after < 0) throw Error::InvalidField("The parameter \"after\" must be >= 0.");
  const std::uint64_t generation = cache_.Generation();
  Agent agent = RequireOwnAgent(caller, mesh_id, r.agent_id, /*fresh=*/true);
  Seen(agent.agent_id);

  Millis now = clock_.Now();
  std::int64_t from = r.after.value_or(agent.acked_seq);
  if (r.after && *r.after > agent.acked_seq) {
    // The cursor stops at the mesh's newest seq: an `after` beyond it (a
    // client's cursor from a database since reset) would otherwise skip
    // every message up to it, and be echoed back as the cursor.
    from = store_.AdvanceCursor(agent.agent_id, *r.after, 0, now);
  }

  // Other nodes announce the mesh's messages here from now on (WakeBus::Watch);
  // then park before reading, so a message committed in between is collected.
  Waiters::Handle wait;
  if (r.wait_s > 0) {
    bus_.Watch(mesh_id);
    wait = waiters_.Park(mesh_id, agent.agent_id, caller.token.id, from,
                         now + Millis{r.wait_s} * 1000);
  }
  PollResult result;
  try {
    if (r.limit > 0) result.messages = AsCommitted(store_.MessagesFor(mesh_id, agent.agent_id, from, r.limit));
  } catch (...) {
    if (wait) waiters_.Cancel(wait);
    throw;
  }
  if (result.messages.empty() && wait) {
    const int limit = r.limit;
    // What the answer needs, and no more: thousands of these wait at once.
    waiters_.Arm(wait, [this, caller, mesh_id, agent_id = agent.agent_id, from, limit, generation,
                        done](Waiters::Outcome outcome, std::vector<CommittedPtr> messages) {
      if (outcome == Waiters::Outcome::kCancelled) return;  // nobody to answer
      if (outcome == Waiters::Outcome::kMessages && cache_.Generation() == generation) {
        // Nothing to read from storage (access unchanged, the messages are
        // here): answer on the waking thread instead of a hop per poll, as a
        // broadcast wakes thousands at once.
        AnswerWoken(caller, mesh_id, agent_id, from, limit, generation, outcome, std::move(messages),
                    done, /*on_waker=*/true);
        return;
      }
      executor_.Post([=, this, messages = std::move(messages)]() mutable {
        AnswerWoken(caller, mesh_id, agent_id, from, limit, generation, outcome, std::move(messages),
                    done, /*on_waker=*/false);
      });
    });
    return wait;
  }
  if (wait) waiters_.Cancel(wait);
  result.cursor = result.messages.empty() ? from : result.messages.back()->message().seq;
  if (result.cursor > agent.fetched_seq) {
    store_.AdvanceCursor(agent.agent_id, 0, result.cursor, clock_.Now());
  }
  done(nullptr, std::move(result));
  return nullptr;
}

void MeshService::AnswerWoken(const Caller& caller, const std::string& mesh_id, const std::string& agent_id,
                              std::int64_t from, int limit, std::uint64_t generation,
                              Waiters::Outcome outcome, std::vector<CommittedPtr> messages,
                              const PollDone& done, bool on_waker) {
  if (on_waker && cache_.Generation() != generation) {
    // Access changed since the caller looked: the check reads storage, which
    // the waking thread (the writer) must not wait for.
    executor_.Post([=, this, messages = std::move(messages)]() mutable {
      AnswerWoken(caller, mesh_id, agent_id, from, limit, generation, outcome, std::move(messages),
                  done, /*on_waker=*/false);
    });
    return;
  }
  PollResult result;
  result.cursor = from;
  try {
    // Access may have changed while it waited: check it again, from storage.
    if (outcome != Waiters::Outcome::kShutdown && cache_.Generation() != generation) {
      Reauthorize(caller, mesh_id);
      RequireOwnAgent(caller, mesh_id, agent_id, /*fresh=*/true);
    }
    if (outcome == Waiters::Outcome::kMessages) {
      if (messages.size() > static_cast<std::size_t>(limit)) messages.resize(limit);
      result.messages = std::move(messages);
      result.cursor = result.messages.back()->message().seq;
      store_.AdvanceCursor(agent_id, 0, result.cursor, clock_.Now());
    }
    Seen(agent_id);
  } catch (...) {
    done(std::current_exception(), PollResult{});
    return;
  }
  done(nullptr, std::move(result));
}

void MeshService::Reauthorize(const Caller& caller, const std::string& mesh_id) {
  if (!store_.FindTokenByHash(caller.secret_sha256)) {
    throw Error::Unauthorized(kTokenRevoked);
  }
  RequireMember(caller, mesh_id);
}

void MeshService::CancelPoll(const Waiters::Handle& wait) {
  if (wait) waiters_.Cancel(wait);
}

std::vector<Message> MeshService::History(const Caller& caller, const std::string& mesh_id,
                                          std::int64_t after, int limit) {
  RequireMember(caller, mesh_id);
  if (limit < 1 || limit > 1000) throw Error::InvalidField("The parameter \"limit\" must be 1-1000.");
  if (after < 0) throw Error::InvalidField("The parameter \"after\" must be >= 0.");
  return store_.History(mesh_id, after, limit);
}

std::int64_t MeshService::HistoryEnd(const std::string& mesh_id, std::int64_t after) {
  return after > 0 ? std::min(after, store_.NewestSeq(mesh_id)) : after;
}

std::vector<Message> MeshService::Pending(const Caller& caller, const std::string& mesh_id,
                                          const std::string& agent, std::optional<std::int64_t> after,
                                          int limit) {
  RequireMember(caller, mesh_id);
  if (limit < 1 || limit > 1000) throw Error::InvalidField("The parameter \"limit\" must be 1-1000.");
  Agent a = RequireOwnAgent(caller, mesh_id, agent, /*fresh=*/true);
  return store_.MessagesFor(mesh_id, a.agent_id, std::max(after.value_or(0), a.acked_seq), limit);
}

std::pair<Message, std::vector<Receipt>> MeshService::GetMessage(const Caller& caller,
                                                                 const std::string& mesh_id,
                                                                 const std::string& message_id) {
  RequireMember(caller, mesh_id);
  auto m = store_.FindMessage(mesh_id, message_id);
  if (!m) {
    throw Error::NotFound("message_not_found", "No message " + EchoedValue(message_id) + " in mesh " + mesh_id +
                                                   " (it may have been delivered and purged).");
  }
  auto receipts = store_.Receipts(*m);
  return {std::move(*m), std::move(receipts)};
}

std::string MeshService::Integrate(const Caller& caller, const std::string& mesh_id,
                                   const std::string& base_url, bool sign_in_page) {
  GuideContext ctx{base_url, RequireMember(caller, mesh_id), {}, sign_in_page};
  for (const Agent& a : store_.Agents(mesh_id)) ctx.agent_names.push_back(a.name);
  return IntegrateGuide(ctx);
}

// --- tokens -----------------------------------------------------------------------------

std::vector<Token> MeshService::ListTokens(const Caller& caller) {
  RequireUnscoped(caller, "manage tokens");
  return store_.ListTokens(caller.user());
}

CreatedToken MeshService::CreateToken(const Caller& caller, const std::string& name,
                                      const std::optional<std::string>& mesh_id) {
  RequireUnscoped(caller, "manage tokens");
  CheckTokenName(name);
  if (mesh_id && mesh_id->empty()) {
    throw Error::InvalidField("mesh_id is empty: give a mesh id to scope the token to that mesh, or leave "
                              "mesh_id out for a token that works on all your meshes.");
  }
  if (mesh_id) RequireMember(caller, *mesh_id);
  if (!HasTokenRoom(store_, caller.user(), options_.max_tokens_per_user)) {
    throw Error::BadRequest("too_many_tokens",
                            "You have " + std::to_string(options_.max_tokens_per_user) +
                                " tokens, the most one user may have; revoke unused ones with "
                                "`meshwire token revoke ID` (see `meshwire token list`).");
  }
  return IssueToken(store_, clock_, caller.user(), name, mesh_id);
}

void MeshService::CheckTokenName(const std::string& name) { CheckLabel(name, "token name"); }

bool MeshService::HasTokenRoom(Store& store, const std::string& user, std::size_t max) {
  return store.ListTokens(user).size() < max;
}

void MeshService::RevokeToken(const Caller& caller, const std::string& token_id) {
  RequireUnscoped(caller, "manage tokens");
  bool revoked = store_.RevokeToken(caller.user(), token_id);
  // The revoked token fails from the next request on, on every node, and
  // its parked polls answer now (401).
  AccessChanged({.token_id = revoked ? token_id : ""});
  if (!revoked) {
    throw Error::NotFound("token_not_found", "You have no token " + EchoedValue(token_id) +
                                                 "; run `meshwire token list` to see yours.");
  }
}

std::string MeshService::CanonicalUser(Store& store, const std::string& name) {
  return store.FindUserName(name).value_or(name);
}

CreatedToken MeshService::IssueToken(Store& store, const Clock& clock, const std::string& user,
                                     const std::string& name,
                                     const std::optional<std::string>& mesh_id) {
  CheckName(user, "user name");
  CheckTokenName(name);  // as POST /tokens: admin and sign-in tokens too
  std::string secret = NewTokenSecret();
  // The store gives the user's stored spelling (Store::CreateToken).
  NewToken t{"tok_" + RandomBase62(12), user, name, Sha256Hex(secret), mesh_id, clock.Now()};
  return CreatedToken{store.CreateToken(t), std::move(secret)};
}

// --- presence and retention ------------------------------------------------------------------

void MeshService::Seen(const std::string& agent_id) {
  Millis now = clock_.Now();
  std::lock_guard lock(presence_mu_);
  Millis& seen = seen_[agent_id];
  if (now > seen) {
    seen = now;
    dirty_[agent_id] = now;
  }
}

Millis MeshService::LastSeen(const Agent& agent) {
  std::lock_guard lock(presence_mu_);
  auto it = seen_.find(agent.agent_id);
  return it == seen_.end() ? agent.last_seen : std::max(agent.last_seen, it->second);
}

std::string MeshService::StatusOf(Millis last_seen) const {
  Millis age = clock_.Now() - last_seen;
  if (age < kActiveMs) return "active";
  if (age < kIdleMs) return "idle";
  return "offline";
}

void MeshService::FlushPresence() {
  std::vector<std::pair<std::string, Millis>> batch;
  {
    std::lock_guard lock(presence_mu_);
    batch.assign(dirty_.begin(), dirty_.end());
    dirty_.clear();
  }
  store_.RecordPresence(batch);
}

SweepResult MeshService::Sweep() {
  FlushPresence();
  Millis now = clock_.Now();
  // Anything seen in memory but not yet durable counts as seen.
  SweepResult result = store_.Sweep(now, options_.agent_ttl, options_.acked_grace);
  if (result.agents_removed > 0) AccessChanged();
  std::lock_guard lock(presence_mu_);
  std::erase_if(seen_, [&](const auto& kv) { return now - kv.second >= options_.agent_ttl; });
  return result;
}

namespace {
bool IsValidUtf8(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    auto c = static_cast<unsigned char>(s[i]);
    std::size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
    if (n == 0 || i + n > s.size()) return false;
    for (std::size_t k = 1; k < n; ++k) {
      if ((static_cast<unsigned char>(s[i + k]) >> 6) != 0x2) return false;
    }
    i += n;
  }
  return true;
}
}  // namespace

}  // namespace meshwire
