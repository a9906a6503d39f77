// Store: everything meshwire keeps (users, tokens, meshes, members, agents,
// messages, cursors). The relay's only persistence seam: SqliteStore is the
// embedded default, a PostgreSQL store serves several relay nodes. Both must
// pass the one conformance suite in tests/server/store_conformance.h.
//
// Contract for every method:
// - Writes are durable when they return (committed; they survive kill -9).
// - Reads see every write that returned before the read began.
// - A missing row is an empty optional / false, never an exception. Errors of
//   the backend itself throw meshwire::Error 503 "unavailable", and then the
//   call had no effect.
// - Methods are safe to call from many threads at once.
// Validation (names, sizes, permissions) is the caller's job (MeshService);
// the store trusts its arguments.
#pragma once

#include <cstdint>
#include <exception>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "schemas/model.h"

namespace meshwire {

struct NewToken {
  std::string id;
  std::string user;
  std::string name;
  std::string secret_sha256;  // hex SHA-256 of the plaintext; the plaintext is never stored
  std::optional<std::string> mesh_id;
  Millis created_at = 0;
};

struct NewAgent {
  std::string agent_id;  // used only when the name is new in the mesh
  std::string mesh_id;
  std::string name;
  std::string harness;
  std::string owner;
  Millis now = 0;
  std::int64_t max_owned = 0;  // a new name is refused when `owner` has this many agents in the mesh; 0: no limit
};

struct RegisterResult {
  Agent agent;
  bool created = false;  // false: the name existed; `agent` is the existing row
  bool full = false;     // the name is new and `owner` has max_owned agents: nothing written
};

struct NewMessage {
  std::string mesh_id;
  std::string from;  // agent id (validated by the caller)
  std::string from_name;
  std::string to;  // agent id or "all"
  std::optional<std::string> to_name;
  std::string content;
  std::string priority = "normal";
  std::string metadata_json = "{}";
  std::optional<std::string> idempotency_key;
  Millis now = 0;
};

struct AppendResult {
  Message message;
  bool created = false;  // false: the idempotency key was seen; `message` is the first one
};

struct SweepResult {
  int agents_removed = 0;
  int messages_purged = 0;
};

class Store {
 public:
  virtual ~Store() = default;

  /// "sqlite" or "postgres" (reported by /health).
  virtual std::string Kind() const = 0;
  /// Throws Error 503 `unavailable` when the storage cannot answer now (a
  /// database server down); GET /health asks, so a load balancer can tell.
  virtual void CheckAvailable() {}
  /// This process among the relay nodes sharing the storage (in /health);
  /// empty for a store only one node uses.
  virtual std::string NodeId() const { return {}; }

  /// Called with each message a commit appended, in seq order, on the
  /// committing thread, after the commit and before the Append that made it
  /// returns; so calls for one mesh come in seq order. It must be quick and
  /// must not call the store. Set once, before the store is used.
  using CommitListener = std::function<void(const Message&)>;
  virtual void SetCommitListener(CommitListener listener) = 0;
  /// Commits what is queued and stops writing (later writes fail with 503);
  /// the last commit listener call has returned. The relay calls it before
  /// the objects its listener reaches go. Idempotent; destructors call it.
  virtual void Close() {}
  /// A count that moves when another process (`meshwire admin`) committed a
  /// change to this storage since the relay opened it, which the relay's
  /// identity cache cannot have seen. 0 where other processes' changes are
  /// announced instead (PostgreSQL's wake-up bus). May write (an empty
  /// transaction); call from a thread that may wait for the writer.
  virtual std::uint64_t OutsideChanges() { return 0; }

  // --- users and tokens ---------------------------------------------------
  /// Creates the user if new; returns nothing either way.
  virtual void EnsureUser(const std::string& user, Millis now) = 0;
  virtual bool UserExists(const std::string& user) = 0;
  /// The stored spelling of user `name`, matched without regard to case (an
  /// exact match first, else the oldest); nullopt when no user matches.
  virtual std::optional<std::string> FindUserName(const std::string& name) = 0;
  /// Stores the token; its user is the stored spelling of `token.user` (case
  /// ignored, as FindUserName) or, if none, that user added now, looked up
  /// in the same transaction, so that two first sign-ins make one user.
  virtual Token CreateToken(const NewToken& token) = 0;
  /// The live token whose secret hashes to `secret_sha256`; nullopt if unknown or revoked.
  virtual std::optional<Token> FindTokenByHash(const std::string& secret_sha256) = 0;
  virtual std::vector<Token> ListTokens(const std::string& user) = 0;
  /// Every user's tokens, by user then age (`meshwire admin token list`).
  virtual std::vector<Token> AllTokens() = 0;
  /// The token `id` of whichever user; nullopt if unknown or revoked.
  virtual std::optional<Token> FindToken(const std::string& id) = 0;
  /// Deletes the user's token `id`; false if the user has no such token.
  virtual bool RevokeToken(const std::string& user, const std::string& id) = 0;
  /// Records use of a token; may be applied lazily (not durable on return).
  virtual void TouchToken(const std::string& id, Millis now) = 0;

  // --- sign-ins in flight -------------------------------------------------------
  // A browser sign-in's one-time codes (and GitHub round trips), kept in the
  // storage so that any relay node on it can finish what another began
  // (behind a load balancer, the browser and the CLI reach different nodes).
  /// Stores `payload` under `key_sha256` until `expires`, dropping those
  /// expired by `now`.
  virtual void PutSignIn(const std::string& key_sha256, const std::string& payload, Millis expires, Millis now) = 0;
  /// Removes the sign-in under `key_sha256` and returns its payload, or
  /// nullopt when there is none or it expired before `now`. Once only: of two
  /// concurrent calls (on any nodes) at most one gets it.
  virtual std::optional<std::string> TakeSignIn(const std::string& key_sha256, Millis now) = 0;

  // --- meshes and members ---------------------------------------------------
  /// Creates the mesh and makes its owner a member with role "owner".
  virtual void CreateMesh(const Mesh& mesh) = 0;
  virtual std::optional<Mesh> FindMesh(const std::string& mesh_id) = 0;
  /// Meshes `user` is a member of, oldest first.
  virtual std::vector<Mesh> MeshesOf(const std::string& user) = 0;
  /// Deletes the mesh with its members, agents, messages and the tokens
  /// scoped to it, and the members left with no token nor mesh (as
  /// RemoveMember); false if unknown.
  virtual bool DeleteMesh(const std::string& mesh_id) = 0;
  /// "owner", "member", or nullopt when `user` is not a member.
  virtual std::optional<std::string> RoleOf(const std::string& mesh_id, const std::string& user) = 0;
  /// Adds `user` as a member (no-op if already one; the user's stored
  /// spelling, as CreateToken); false if the mesh is unknown.
  virtual bool AddMember(const std::string& mesh_id, const std::string& user) = 0;
  virtual std::vector<Member> Members(const std::string& mesh_id) = 0;
  /// Removes a member (and the agents that user owns in the mesh, their
  /// tokens scoped to it, and the user too if no token nor mesh is left to
  /// them: a name added that never signed in); false if not a member.
  virtual bool RemoveMember(const std::string& mesh_id, const std::string& user) = 0;

  // --- agents -----------------------------------------------------------------
  /// Registers `name` in the mesh, or returns the existing agent of that name
  /// (whoever owns it: the caller decides what a foreign owner means). A new
  /// agent's cursor starts at the mesh's latest seq.
  virtual RegisterResult RegisterAgent(const NewAgent& agent) = 0;
  /// By agent id, or by name when no id matches.
  virtual std::optional<Agent> FindAgent(const std::string& mesh_id, const std::string& id_or_name) = 0;
  /// All agents of the mesh, by name.
  virtual std::vector<Agent> Agents(const std::string& mesh_id) = 0;
  virtual bool DeleteAgent(const std::string& mesh_id, const std::string& agent_id) = 0;
  /// Raises last_seen of each agent to the given time (never lowers it). May be
  /// applied lazily; presence is advisory.
  virtual void RecordPresence(const std::vector<std::pair<std::string, Millis>>& seen) = 0;

  // --- listening across nodes (a store that several nodes share) ---------------
  /// Tells the other nodes which agents listen on this one: `started` are
  /// listening now and were not in the last call, `stopped` were and are not.
  /// Also says this node is alive; a node that stops saying so for a few
  /// seconds no longer counts. Called about once a second; may be lazy.
  virtual void ShareListening(const std::vector<std::string>& /*started*/, const std::vector<std::string>& /*stopped*/) {}
  /// The agents of `mesh_id` listening on another live node.
  virtual std::vector<std::string> ListeningElsewhere(const std::string& /*mesh_id*/) { return {}; }

  // --- messages ---------------------------------------------------------------
  /// Commits a message with the mesh's next seq and a new id unique in the
  /// mesh. With an idempotency key already used by the same sender, stores
  /// nothing and returns the first message.
  virtual AppendResult Append(const NewMessage& message) = 0;
  /// As Append, answering through `done` instead of blocking the caller:
  /// once, with an error (then nothing was stored) or the result, on the
  /// committing thread (so it must be quick). This default runs Append.
  using AppendDone = std::function<void(std::exception_ptr error, AppendResult result)>;
  virtual void AppendAsync(const NewMessage& message, AppendDone done) {
    AppendResult result;
    try {
      result = Append(message);
    } catch (...) {
      done(std::current_exception(), {});
      return;
    }
    done(nullptr, std::move(result));
  }
  /// Messages for `agent_id` (to it, or broadcasts not from it) with seq > after,
  /// oldest first, at most `limit`.
  virtual std::vector<Message> MessagesFor(const std::string& mesh_id, const std::string& agent_id,
                                           std::int64_t after, int limit) = 0;
  /// Every retained message of the mesh with seq > after, oldest first, at most `limit`.
  virtual std::vector<Message> History(const std::string& mesh_id, std::int64_t after, int limit) = 0;
  /// The seq of the mesh's newest message, retained or not (0: none yet, or
  /// no such mesh), as durable as a message that a read returns.
  virtual std::int64_t NewestSeq(const std::string& mesh_id) = 0;
  virtual std::optional<Message> FindMessage(const std::string& mesh_id, const std::string& id) = 0;
  /// Raises the agent's acknowledged cursor to `acked` and its fetched mark to
  /// `fetched` (each only upwards, never past the mesh's newest seq),
  /// recording when each moved. The acked part is durable on return; the
  /// fetched part may be written after return, but Receipts() called after
  /// this returns always reflects it. With `acked` 0 it must not block: it is
  /// called on the committing thread for every poll a commit wakes.
  /// Returns `acked` as far as it could go: the mesh's newest seq when
  /// `acked` is past it (`acked` itself when 0 or the agent is unknown).
  virtual std::int64_t AdvanceCursor(const std::string& agent_id, std::int64_t acked, std::int64_t fetched,
                                     Millis now) = 0;
  /// One receipt per recipient of the message (direct: the one agent; broadcast:
  /// every agent of the mesh but the sender that existed when it was sent),
  /// reflecting every AdvanceCursor that returned before this call.
  virtual std::vector<Receipt> Receipts(const Message& message) = 0;

  // --- retention ----------------------------------------------------------------
  /// Removes agents not seen since `now - agent_ttl`, then purges messages that
  /// every remaining recipient has acknowledged and that are older than
  /// `now - acked_grace`.
  virtual SweepResult Sweep(Millis now, Millis agent_ttl, Millis acked_grace) = 0;
};

}  // namespace meshwire
