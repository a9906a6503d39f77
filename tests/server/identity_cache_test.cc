// The identity cache: what a reader read before a Clear() (a revoke, a
// removal, a deletion) is never cached after it.
#include "server/core/identity_cache.h"

#include <doctest/doctest.h>

namespace meshwire {

namespace {
/// What a request reads: alice's token, her mesh m1, its agent a1 ("agent-a").
struct Identities {
  Token token;
  Mesh mesh;
  Agent agent;
  Identities() {
    token.id = "tok_1";
    token.user = "alice";
    mesh.mesh_id = "m1";
    agent.mesh_id = "m1";
    agent.agent_id = "a1";
    agent.name = "agent-a";
  }
};
}  // namespace

TEST_CASE("a read from before a Clear() is not cached after it") {
  IdentityCache cache;
  auto [token, mesh, agent] = Identities();

  const std::uint64_t before = cache.Generation();  // a request reads storage...
  cache.Clear();                                    // ...a revoke commits and clears...
  cache.PutToken("hash", token, before);            // ...then the request's read arrives
  cache.PutMembership("alice", mesh, before);
  cache.PutAgentIdentity(agent, before);
  CHECK_FALSE(cache.FindToken("hash"));
  CHECK_FALSE(cache.FindMembership("m1", "alice"));
  CHECK_FALSE(cache.FindAgentIdentity("m1", "a1"));

  const std::uint64_t now = cache.Generation();
  cache.PutToken("hash", token, now);
  cache.PutMembership("alice", mesh, now);
  cache.PutAgentIdentity(agent, now);
  CHECK(cache.FindToken("hash")->id == "tok_1");
  CHECK(cache.FindMembership("m1", "alice")->mesh_id == "m1");
  CHECK(cache.FindAgentIdentity("m1", "agent-a")->agent_id == "a1");
  cache.Clear();
  CHECK_FALSE(cache.FindToken("hash"));
}

TEST_CASE("an untrusted cache (a node deaf to other nodes' changes) keeps nothing until trusted again") {
  IdentityCache cache;
  auto [token, mesh, agent] = Identities();
  cache.PutToken("hash", token, cache.Generation());
  cache.SetTrusted(false);
  CHECK_FALSE(cache.FindToken("hash"));  // what it held is dropped
  cache.PutToken("hash", token, cache.Generation());
  cache.PutMembership("alice", mesh, cache.Generation());
  cache.PutAgentIdentity(agent, cache.Generation());
  CHECK_FALSE(cache.FindToken("hash"));  // and nothing new is kept
  CHECK_FALSE(cache.FindMembership("m1", "alice"));
  CHECK_FALSE(cache.FindAgentIdentity("m1", "a1"));
  cache.SetTrusted(true);
  cache.PutToken("hash", token, cache.Generation());
  CHECK(cache.FindToken("hash")->id == "tok_1");
}

}  // namespace meshwire
