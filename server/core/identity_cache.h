// IdentityCache: the facts every request checks and that almost never change
// (which user a token is, who may use a mesh, which agent a name is and who
// owns it), kept in memory so a send reads nothing from storage but its own
// append. Cursors and presence are never cached.
//
// Correctness rests on one rule: every change to these facts goes through
// this relay's MeshService, which calls Clear() after making it. (A second
// relay node sharing PostgreSQL must also Clear() when told of a change by
// another node, and a relay on SQLite when another process, `meshwire admin`,
// committed to its file: both through the WakeBus.) Clearing everything on
// the rare change keeps it simple.
// A reader takes Generation() before reading storage and passes it to Put*:
// if a Clear() came in between, what it read may be stale, and is dropped.
#pragma once

#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

#include "schemas/model.h"

namespace meshwire {

class IdentityCache {
 public:
  /// Counts Clear() calls; take it before reading what you will Put.
  std::uint64_t Generation();

  std::optional<meshwire::Token> FindToken(const std::string& secret_sha256);
  void PutToken(const std::string& secret_sha256, const meshwire::Token& token,
                std::uint64_t generation);

  /// The mesh, if `user` was found to be a member of it.
  std::optional<Mesh> FindMembership(const std::string& mesh_id, const std::string& user);
  void PutMembership(const std::string& user, const Mesh& mesh, std::uint64_t generation);

  /// An agent's identity (id, name, harness, owner) by id or name; its cursor
  /// fields are stale and must not be used.
  std::optional<Agent> FindAgentIdentity(const std::string& mesh_id, const std::string& id_or_name);
  void PutAgentIdentity(const Agent& agent, std::uint64_t generation);

  /// Forgets everything (after a revoke, removal or deletion).
  void Clear();
  /// Clears, and with false caches nothing more until called with true (a
  /// node that may not hear of other nodes' changes reads every time).
  void SetTrusted(bool trusted);

 private:
  static constexpr std::size_t kMaxEntries = 100000;  // per map, then cleared
  std::mutex mu_;
  std::uint64_t generation_ = 0;                             // guarded by mu_
  bool trusted_ = true;                                      // guarded by mu_
  std::unordered_map<std::string, meshwire::Token> tokens_;  // guarded by mu_
  std::unordered_map<std::string, Mesh> memberships_;        // mesh id + '\n' + user; guarded
  std::unordered_map<std::string, Agent> agents_;            // mesh id + '\n' + id or name; guarded
};

}  // namespace meshwire
