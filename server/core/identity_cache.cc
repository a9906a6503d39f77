#include "server/core/identity_cache.h"

namespace meshwire {

namespace {
std::string Key(const std::string& a, const std::string& b) { return a + '\n' + b; }

template <class Map>
std::optional<typename Map::mapped_type> Lookup(const Map& map, const std::string& key) {
  auto it = map.find(key);
  if (it == map.end()) return std::nullopt;
  return it->second;
}

template <class Map, class Value>
void Insert(Map& map, std::string key, const Value& value, std::size_t max) {
  if (map.size() >= max) map.clear();
  map.insert_or_assign(std::move(key), value);
}
}  // namespace

std::uint64_t IdentityCache::Generation() {
  std::lock_guard lock(mu_);
  return generation_;
}

std::optional<Token> IdentityCache::FindToken(const std::string& secret_sha256) {
  std::lock_guard lock(mu_);
  return Lookup(tokens_, secret_sha256);
}

void IdentityCache::PutToken(const std::string& secret_sha256, const meshwire::Token& token,
                             std::uint64_t generation) {
  std::lock_guard lock(mu_);
  if (generation != generation_ || !trusted_) return;
  Insert(tokens_, secret_sha256, token, kMaxEntries);
}

std::optional<Mesh> IdentityCache::FindMembership(const std::string& mesh_id, const std::string& user) {
  std::lock_guard lock(mu_);
  return Lookup(memberships_, Key(mesh_id, user));
}

void IdentityCache::PutMembership(const std::string& user, const Mesh& mesh,
                                  std::uint64_t generation) {
  std::lock_guard lock(mu_);
  if (generation != generation_ || !trusted_) return;
  Insert(memberships_, Key(mesh.mesh_id, user), mesh, kMaxEntries);
}

std::optional<Agent> IdentityCache::FindAgentIdentity(const std::string& mesh_id,
                                                  const std::string& id_or_name) {
  std::lock_guard lock(mu_);
  return Lookup(agents_, Key(mesh_id, id_or_name));
}

void IdentityCache::PutAgentIdentity(const Agent& agent, std::uint64_t generation) {
  std::lock_guard lock(mu_);
  if (generation != generation_ || !trusted_) return;
  if (agents_.size() >= kMaxEntries) agents_.clear();
  agents_.insert_or_assign(Key(agent.mesh_id, agent.agent_id), agent);
  agents_.insert_or_assign(Key(agent.mesh_id, agent.name), agent);
}

void IdentityCache::Clear() {
  std::lock_guard lock(mu_);
  ++generation_;
  tokens_.clear();
  memberships_.clear();
  agents_.clear();
}

void IdentityCache::SetTrusted(bool trusted) {
  Clear();
  std::lock_guard lock(mu_);
  trusted_ = trusted;
}

}  // namespace meshwire
