// The Store conformance suite: every Store implementation must pass it
// unchanged. A backend's test file defines a fixture type with
//   std::unique_ptr<Store> Open();   // a fresh, empty store
//   std::unique_ptr<Store> Reopen(); // the same data, opened anew (restart)
// and instantiates the suite with
//   TEST_CASE_TEMPLATE_INVOKE(store_conformance, MyFixture);
#pragma once

#include <doctest/doctest.h>

#include <algorithm>
#include <future>
#include <memory>
#include <set>
#include <thread>

#include "schemas/ids.h"
#include "server/core/store.h"

namespace meshwire::testing {

inline Mesh MakeMesh(Store& store, const std::string& owner, Millis now = 1000) {
  Mesh m{RandomBase62(12), "fleet", owner, now};
  store.CreateMesh(m);
  return m;
}

inline Agent MakeAgent(Store& store, const Mesh& mesh, const std::string& name, Millis now = 1000,
                       const std::string& owner = "") {
  NewAgent a{RandomBase62(12), mesh.mesh_id, name, "test", owner.empty() ? mesh.owner : owner, now};
  return store.RegisterAgent(a).agent;
}

inline Message Put(Store& store, const Mesh& mesh, const Agent& from, const std::string& to,
                   const std::string& content, Millis now = 2000) {
  NewMessage m;
  m.mesh_id = mesh.mesh_id;
  m.from = from.agent_id;
  m.from_name = from.name;
  m.to = to;
  m.content = content;
  m.now = now;
  return store.Append(m).message;
}

/// Sends `m` with AppendAsync (as the relay's send route does): the future
/// holds its answer.
inline std::future<AppendResult> PutAsync(Store& store, const NewMessage& m) {
  auto answer = std::make_shared<std::promise<AppendResult>>();
  auto future = answer->get_future();
  store.AppendAsync(m, [answer](std::exception_ptr e, AppendResult r) {
    if (e) {
      answer->set_exception(e);
    } else {
      answer->set_value(std::move(r));
    }
  });
  return future;
}

TEST_CASE_TEMPLATE_DEFINE("store conformance", F, store_conformance) {
  F fixture;
  std::unique_ptr<Store> store = fixture.Open();

  SUBCASE("tokens are found by hash only, listed per user, and revoked for good") {
    NewToken t{"tok_1", "alice", "laptop", Sha256Hex("mw_secret"), std::nullopt, 10};
    store->CreateToken(t);
    CHECK(store->UserExists("alice"));
    auto found = store->FindTokenByHash(Sha256Hex("mw_secret"));
    REQUIRE(found);
    CHECK(found->user == "alice");
    CHECK(found->name == "laptop");
    CHECK_FALSE(store->FindTokenByHash(Sha256Hex("mw_other")));
    CHECK(store->ListTokens("alice").size() == 1);
    CHECK(store->ListTokens("bob").empty());
    CHECK_FALSE(store->RevokeToken("bob", "tok_1"));  // not bob's
    CHECK(store->RevokeToken("alice", "tok_1"));
    CHECK_FALSE(store->FindTokenByHash(Sha256Hex("mw_secret")));
    CHECK_FALSE(store->RevokeToken("alice", "tok_1"));
  }

  SUBCASE("sign-ins in flight: each taken once, none after it expires, the expired dropped as new ones come") {
    store->PutSignIn(Sha256Hex("code-1"), R"({"grant":"alice"})", 1000, 10);
    store->PutSignIn(Sha256Hex("code-2"), R"({"grant":"bob"})", 1000, 10);
    CHECK_FALSE(store->TakeSignIn(Sha256Hex("code-3"), 20));
    CHECK(store->TakeSignIn(Sha256Hex("code-1"), 20) == std::optional<std::string>(R"({"grant":"alice"})"));
    CHECK_FALSE(store->TakeSignIn(Sha256Hex("code-1"), 20));  // once
    CHECK(store->TakeSignIn(Sha256Hex("code-2"), 1000));      // until its expiry, inclusive
    store->PutSignIn(Sha256Hex("code-4"), "{}", 1000, 10);
    CHECK_FALSE(store->TakeSignIn(Sha256Hex("code-4"), 1001));  // expired: gone, not given
    store->PutSignIn(Sha256Hex("code-5"), "{}", 1000, 10);
    store->PutSignIn(Sha256Hex("code-6"), "{}", 3000, 2000);  // drops code-5, expired by then
    CHECK_FALSE(store->TakeSignIn(Sha256Hex("code-5"), 500));
    // Taken from several threads at once (on PostgreSQL, as from several nodes): one gets it.
    store->PutSignIn(Sha256Hex("code-7"), "{}", 5000, 2000);
    std::vector<std::future<bool>> takers;
    for (int i = 0; i < 8; ++i) {
      takers.push_back(std::async(std::launch::async, [&] { return store->TakeSignIn(Sha256Hex("code-7"), 2500).has_value(); }));
    }
    int got = 0;
    for (auto& t : takers) got += t.get() ? 1 : 0;
    CHECK(got == 1);
  }

  SUBCASE("an administrator finds any user's token by id and lists every token, by user then age") {
    store->CreateToken({"tok_b1", "bob", "ci", Sha256Hex("mw_b1"), std::nullopt, 30});
    store->CreateToken({"tok_a2", "alice", "desk", Sha256Hex("mw_a2"), std::nullopt, 20});
    store->CreateToken({"tok_a1", "alice", "laptop", Sha256Hex("mw_a1"), std::nullopt, 10});
    auto all = store->AllTokens();
    REQUIRE(all.size() == 3);
    CHECK(all[0].id == "tok_a1");
    CHECK(all[1].id == "tok_a2");
    CHECK(all[2].id == "tok_b1");
    CHECK(all[2].user == "bob");
    auto found = store->FindToken("tok_b1");
    REQUIRE(found);
    CHECK(found->user == "bob");
    CHECK(found->name == "ci");
    CHECK_FALSE(store->FindToken("tok_none"));
    CHECK(store->RevokeToken("bob", "tok_b1"));
    CHECK_FALSE(store->FindToken("tok_b1"));
    CHECK(store->AllTokens().size() == 2);
  }

  SUBCASE("user names: found without regard to case, the stored spelling returned") {
    CHECK_FALSE(store->FindUserName("octocat"));
    store->EnsureUser("Octocat", 10);
    CHECK(store->FindUserName("octocat") == std::optional<std::string>("Octocat"));
    CHECK(store->FindUserName("OCTOCAT") == std::optional<std::string>("Octocat"));
    CHECK(store->FindUserName("Octocat") == std::optional<std::string>("Octocat"));
    CHECK_FALSE(store->FindUserName("octo"));
    CHECK_FALSE(store->FindUserName("octocat_"));
    // Two spellings from before (a database of an older relay): the exact one first.
    store->EnsureUser("octocat", 20);
    CHECK(store->FindUserName("octocat") == std::optional<std::string>("octocat"));
    CHECK(store->FindUserName("OctoCat") == std::optional<std::string>("Octocat"));  // the oldest
  }

  SUBCASE("users: a new token or member takes the user's stored spelling, looked up in its own transaction") {
    CHECK(store->CreateToken({"tok_dana1", "Dana", "cli", Sha256Hex("mw_dana1"), std::nullopt, 10}).user == "Dana");
    CHECK(store->CreateToken({"tok_dana2", "dana", "cli", Sha256Hex("mw_dana2"), std::nullopt, 20}).user == "Dana");
    CHECK(store->FindTokenByHash(Sha256Hex("mw_dana2"))->user == "Dana");
    CHECK(store->ListTokens("Dana").size() == 2);
    CHECK_FALSE(store->UserExists("dana"));
    Mesh m = MakeMesh(*store, "alice");
    CHECK(store->AddMember(m.mesh_id, "DANA"));
    CHECK(store->RoleOf(m.mesh_id, "Dana") == std::optional<std::string>("member"));
    CHECK_FALSE(store->UserExists("DANA"));
    // First sign-ins of one new user in several spellings at once (each
    // looked up before any was stored): one user, whichever spelling came first.
    const std::vector<std::string> spellings{"erin", "Erin", "ERIN", "eRin", "erIN", "ErIn", "eriN", "ERin"};
    std::vector<std::future<Token>> made;
    for (std::size_t i = 0; i < spellings.size(); ++i) {
      made.push_back(std::async(std::launch::async, [&, i] {
        const std::string id = "tok_erin" + std::to_string(i);
        return store->CreateToken({id, spellings[i], "cli", Sha256Hex("mw_" + id), std::nullopt, 30});
      }));
    }
    std::set<std::string> users;
    for (auto& f : made) users.insert(f.get().user);
    CHECK(users.size() == 1);
    CHECK(store->ListTokens(*users.begin()).size() == spellings.size());
  }

  SUBCASE("meshes: the owner is a member; members are added, listed, removed") {
    Mesh m = MakeMesh(*store, "alice");
    CHECK(store->FindMesh(m.mesh_id)->name == "fleet");
    CHECK(store->RoleOf(m.mesh_id, "alice") == std::optional<std::string>("owner"));
    CHECK_FALSE(store->RoleOf(m.mesh_id, "bob"));
    // A token of bob's scoped to the mesh from before (a removal by an older relay kept it):
    // adding him does not bring it back.
    store->CreateToken({"tok_bob_legacy", "bob", "ci", Sha256Hex("mw_bob_legacy"), m.mesh_id, 10});
    CHECK(store->AddMember(m.mesh_id, "bob"));
    CHECK_FALSE(store->FindTokenByHash(Sha256Hex("mw_bob_legacy")));
    store->CreateToken({"tok_bob_member", "bob", "ci", Sha256Hex("mw_bob_member"), m.mesh_id, 10});
    CHECK(store->AddMember(m.mesh_id, "bob"));  // again: no-op, his token as a member stays
    CHECK(store->FindTokenByHash(Sha256Hex("mw_bob_member")));
    CHECK_FALSE(store->AddMember("nosuchmesh00", "bob"));
    CHECK(store->RoleOf(m.mesh_id, "bob") == std::optional<std::string>("member"));
    CHECK(store->Members(m.mesh_id).size() == 2);
    CHECK(store->MeshesOf("bob").size() == 1);
    // Removal revokes the member's tokens scoped to the mesh, not their others nor anyone else's.
    Mesh bobs = MakeMesh(*store, "bob");
    store->CreateToken({"tok_bob_here", "bob", "ci", Sha256Hex("mw_bob_here"), m.mesh_id, 10});
    store->CreateToken({"tok_bob_own", "bob", "ci2", Sha256Hex("mw_bob_own"), bobs.mesh_id, 10});
    store->CreateToken({"tok_bob_all", "bob", "laptop", Sha256Hex("mw_bob_all"), std::nullopt, 10});
    store->CreateToken({"tok_alice_here", "alice", "ci", Sha256Hex("mw_alice_here"), m.mesh_id, 10});
    CHECK(store->RemoveMember(m.mesh_id, "bob"));
    CHECK_FALSE(store->RemoveMember(m.mesh_id, "bob"));
    CHECK(store->MeshesOf("bob").size() == 1);  // his own
    CHECK_FALSE(store->FindTokenByHash(Sha256Hex("mw_bob_here")));
    CHECK(store->FindTokenByHash(Sha256Hex("mw_bob_own")));
    CHECK(store->FindTokenByHash(Sha256Hex("mw_bob_all")));
    CHECK(store->FindTokenByHash(Sha256Hex("mw_alice_here")));
    CHECK(store->FindUserName("bob") == std::optional<std::string>("bob"));  // his tokens and mesh remain
    // A name added that never signed in (a misspelling) is forgotten with its membership;
    // one that still has a token, or another mesh, is not.
    CHECK(store->AddMember(m.mesh_id, "Carlo"));
    CHECK(store->FindUserName("carlo") == std::optional<std::string>("Carlo"));
    CHECK(store->RemoveMember(m.mesh_id, "Carlo"));
    CHECK_FALSE(store->FindUserName("carlo"));
    CHECK(store->AddMember(m.mesh_id, "dora"));
    CHECK(store->AddMember(bobs.mesh_id, "dora"));
    CHECK(store->RemoveMember(m.mesh_id, "dora"));
    CHECK(store->FindUserName("dora") == std::optional<std::string>("dora"));  // still in bob's mesh
    CHECK(store->RemoveMember(bobs.mesh_id, "dora"));
    CHECK_FALSE(store->FindUserName("dora"));
    CHECK(store->AddMember(m.mesh_id, "erin"));
    store->CreateToken({"tok_erin", "erin", "laptop", Sha256Hex("mw_erin"), std::nullopt, 10});
    CHECK(store->RemoveMember(m.mesh_id, "erin"));
    CHECK(store->FindUserName("erin") == std::optional<std::string>("erin"));  // signed in: kept
  }

  SUBCASE("deleting a mesh deletes its agents, messages, the tokens scoped to it and the members left with nothing") {
    Mesh m = MakeMesh(*store, "alice");
    Mesh other = MakeMesh(*store, "bob");
    Agent a = MakeAgent(*store, m, "a");
    Put(*store, m, a, "all", "x");
    store->CreateToken({"tok_scoped", "alice", "ci", Sha256Hex("mw_scoped"), m.mesh_id, 10});
    store->CreateToken({"tok_other", "alice", "ci2", Sha256Hex("mw_other_mesh"), other.mesh_id, 10});
    store->CreateToken({"tok_all", "alice", "laptop", Sha256Hex("mw_all"), std::nullopt, 10});
    CHECK(store->AddMember(m.mesh_id, "Gus"));  // never signed in
    CHECK(store->AddMember(m.mesh_id, "bob"));  // owns `other`
    CHECK(store->DeleteMesh(m.mesh_id));
    // Its members the relay holds nothing more for are forgotten; the others stay.
    CHECK_FALSE(store->FindUserName("gus"));
    CHECK(store->FindUserName("bob") == std::optional<std::string>("bob"));
    CHECK(store->FindUserName("alice") == std::optional<std::string>("alice"));
    CHECK_FALSE(store->FindTokenByHash(Sha256Hex("mw_scoped")));
    CHECK(store->FindTokenByHash(Sha256Hex("mw_other_mesh")));
    CHECK(store->FindTokenByHash(Sha256Hex("mw_all")));
    CHECK(store->ListTokens("alice").size() == 2);
    CHECK_FALSE(store->FindMesh(m.mesh_id));
    CHECK_FALSE(store->FindAgent(m.mesh_id, "a"));
    CHECK(store->History(m.mesh_id, 0, 100).empty());
    CHECK_FALSE(store->DeleteMesh(m.mesh_id));
  }

  SUBCASE("an agent name is registered once per mesh; found by id or name") {
    Mesh m = MakeMesh(*store, "alice");
    NewAgent first{"agentid001", m.mesh_id, "worker", "copilot", "alice", 5};
    RegisterResult r1 = store->RegisterAgent(first);
    CHECK(r1.created);
    NewAgent again{"agentid002", m.mesh_id, "worker", "claude", "bob", 6};
    RegisterResult r2 = store->RegisterAgent(again);
    CHECK_FALSE(r2.created);
    CHECK(r2.agent.agent_id == "agentid001");
    CHECK(r2.agent.owner == "alice");
    CHECK(store->FindAgent(m.mesh_id, "worker")->agent_id == "agentid001");
    CHECK(store->FindAgent(m.mesh_id, "agentid001")->name == "worker");
    CHECK_FALSE(store->FindAgent(m.mesh_id, "nobody"));
    Mesh other = MakeMesh(*store, "bob");
    CHECK_FALSE(store->FindAgent(other.mesh_id, "worker"));  // per mesh
    CHECK(store->DeleteAgent(m.mesh_id, "agentid001"));
    CHECK_FALSE(store->FindAgent(m.mesh_id, "worker"));
  }

  SUBCASE("max_owned: a new name is refused once its owner has that many agents in the mesh; nothing is written") {
    Mesh m = MakeMesh(*store, "alice");
    auto reg = [&](const std::string& id, const std::string& name, const std::string& owner) {
      return store->RegisterAgent(NewAgent{id, m.mesh_id, name, "test", owner, 5, /*max_owned=*/2});
    };
    CHECK(reg("agentid101", "one", "alice").created);
    CHECK(reg("agentid102", "two", "alice").created);
    RegisterResult third = reg("agentid103", "three", "alice");
    CHECK(third.full);
    CHECK_FALSE(third.created);
    CHECK_FALSE(store->FindAgent(m.mesh_id, "three"));
    RegisterResult again = reg("agentid104", "two", "alice");  // an existing name: found, not counted
    CHECK_FALSE(again.full);
    CHECK_FALSE(again.created);
    CHECK(again.agent.agent_id == "agentid102");
    CHECK(reg("agentid105", "bobs", "bob").created);  // per owner
    Mesh other = MakeMesh(*store, "alice");
    CHECK(store->RegisterAgent(NewAgent{"agentid106", other.mesh_id, "three", "test", "alice", 5, 2}).created);  // per mesh
    CHECK(store->DeleteAgent(m.mesh_id, "agentid101"));
    CHECK(reg("agentid107", "three", "alice").created);  // room again
  }

  SUBCASE("seq is one strictly increasing order per mesh; ids are unique") {
    Mesh m = MakeMesh(*store, "alice");
    Mesh other = MakeMesh(*store, "bob");
    Agent a = MakeAgent(*store, m, "a");
    Agent o = MakeAgent(*store, other, "o");
    std::set<std::string> ids;
    for (int i = 1; i <= 5; ++i) {
      Message msg = Put(*store, m, a, "all", "m" + std::to_string(i), 2000);  // same ms: ids still unique
      CHECK(msg.seq == i);
      ids.insert(msg.id);
    }
    CHECK(ids.size() == 5);
    CHECK(Put(*store, other, o, "all", "first").seq == 1);
  }

  SUBCASE("concurrent appends: every seq once, no gaps") {
    Mesh m = MakeMesh(*store, "alice");
    Agent a = MakeAgent(*store, m, "a");
    std::vector<std::thread> threads;
    std::vector<std::vector<std::int64_t>> seqs(8);
    for (int t = 0; t < 8; ++t) {
      threads.emplace_back([&, t] {
        for (int i = 0; i < 50; ++i) seqs[t].push_back(Put(*store, m, a, "all", "x").seq);
      });
    }
    for (auto& t : threads) t.join();
    std::vector<std::int64_t> all;
    for (auto& s : seqs) {
      CHECK(std::is_sorted(s.begin(), s.end()));  // per sender thread: in order
      all.insert(all.end(), s.begin(), s.end());
    }
    std::sort(all.begin(), all.end());
    REQUIRE(all.size() == 400);
    for (std::size_t i = 0; i < all.size(); ++i) CHECK(all[i] == static_cast<std::int64_t>(i + 1));
  }

  SUBCASE("sends that arrive together keep every byte, their order and their own fields") {
    Mesh mesh = MakeMesh(*store, "alice");
    Agent a = MakeAgent(*store, mesh, "a");
    Agent b = MakeAgent(*store, mesh, "b");
    const std::vector<std::string> contents = {"plain", "quote \" and backslash \\ and \\\"", "{\"json\":[1,2]}",
                                               "NULL", "", "comma, brace } { and 'single'", "\u00fcn\u00efc\u00f6d\u00e9 \u2713",
                                               "line\nbreak\ttab"};
    std::vector<std::future<AppendResult>> answers;
    for (std::size_t i = 0; i < contents.size(); ++i) {
      NewMessage m;
      m.mesh_id = mesh.mesh_id;
      m.from = a.agent_id;
      m.from_name = a.name;
      m.to = i % 2 ? std::string("all") : b.agent_id;
      if (i % 2 == 0) m.to_name = b.name;
      m.content = contents[i];
      m.priority = i % 3 ? "normal" : "high";
      m.metadata_json = "{\"i\":" + std::to_string(i) + "}";
      m.now = 5000 + static_cast<Millis>(i);
      answers.push_back(PutAsync(*store, m));
    }
    std::vector<Message> sent;
    for (auto& f : answers) sent.push_back(f.get().message);
    const auto stored = store->History(mesh.mesh_id, 0, 100);
    REQUIRE(stored.size() == contents.size());
    for (std::size_t i = 0; i < contents.size(); ++i) {
      CHECK(stored[i].seq == static_cast<std::int64_t>(i + 1));  // 1, 2, 3, ... in the order they came
      CHECK(stored[i].content == contents[i]);
      CHECK(stored[i].id == sent[i].id);
      CHECK(sent[i].seq == stored[i].seq);
      CHECK(stored[i].to == (i % 2 ? std::string("all") : b.agent_id));
      CHECK(stored[i].to_name == (i % 2 ? std::nullopt : std::optional<std::string>(b.name)));
      CHECK(stored[i].priority == (i % 3 ? "normal" : "high"));
      CHECK(stored[i].metadata_json == "{\"i\":" + std::to_string(i) + "}");
      CHECK(stored[i].created_at == 5000 + static_cast<Millis>(i));
      if (i > 0) CHECK(std::stoll(stored[i].id) > std::stoll(stored[i - 1].id));
    }
  }

  SUBCASE("sends to a deleted mesh fail alone; the others that came with them are written") {
    Mesh kept = MakeMesh(*store, "alice");
    Mesh gone = MakeMesh(*store, "alice");
    Agent a = MakeAgent(*store, kept, "a");
    Agent g = MakeAgent(*store, gone, "g");
    REQUIRE(store->DeleteMesh(gone.mesh_id));
    std::vector<std::future<AppendResult>> to_kept, to_gone;
    for (int i = 0; i < 40; ++i) {
      NewMessage m;
      const bool bad = i % 3 == 1;
      m.mesh_id = bad ? gone.mesh_id : kept.mesh_id;
      m.from = bad ? g.agent_id : a.agent_id;
      m.from_name = bad ? g.name : a.name;
      m.to = "all";
      m.content = std::to_string(i);
      m.now = 3000 + i;
      (bad ? to_gone : to_kept).push_back(PutAsync(*store, m));
    }
    for (auto& f : to_gone) {
      try {
        f.get();
        FAIL_CHECK("a send to a deleted mesh was answered as written");
      } catch (const Error& e) {
        CHECK(e.status() == 404);
      }
    }
    std::vector<std::string> want;
    for (int i = 0; i < 40; ++i) {
      if (i % 3 != 1) want.push_back(std::to_string(i));
    }
    for (std::size_t i = 0; i < to_kept.size(); ++i) CHECK(to_kept[i].get().message.seq == static_cast<std::int64_t>(i + 1));
    const auto stored = store->History(kept.mesh_id, 0, 100);
    REQUIRE(stored.size() == want.size());
    for (std::size_t i = 0; i < want.size(); ++i) CHECK(stored[i].content == want[i]);
  }

  SUBCASE("an idempotency key from the same sender stores nothing new") {
    Mesh m = MakeMesh(*store, "alice");
    Agent a = MakeAgent(*store, m, "a");
    Agent b = MakeAgent(*store, m, "b");
    NewMessage nm;
    nm.mesh_id = m.mesh_id;
    nm.from = a.agent_id;
    nm.from_name = a.name;
    nm.to = "all";
    nm.content = "once";
    nm.idempotency_key = "k1";
    AppendResult first = store->Append(nm);
    nm.content = "twice";
    AppendResult second = store->Append(nm);
    CHECK(first.created);
    CHECK_FALSE(second.created);
    CHECK(second.message.id == first.message.id);
    CHECK(second.message.content == "once");
    nm.from = b.agent_id;  // another sender may use the same key
    CHECK(store->Append(nm).created);
    CHECK(store->History(m.mesh_id, 0, 100).size() == 2);
  }

  SUBCASE("a recipient gets its direct messages and others' broadcasts, in seq order") {
    Mesh m = MakeMesh(*store, "alice");
    Agent a = MakeAgent(*store, m, "a");
    Agent b = MakeAgent(*store, m, "b");
    Agent c = MakeAgent(*store, m, "c");
    Put(*store, m, a, "all", "1 broadcast from a");
    Put(*store, m, a, c.agent_id, "2 a to c");
    Put(*store, m, b, "all", "3 broadcast from b");
    Put(*store, m, c, b.agent_id, "4 c to b");
    auto for_b = store->MessagesFor(m.mesh_id, b.agent_id, 0, 100);
    REQUIRE(for_b.size() == 2);
    CHECK(for_b[0].content == "1 broadcast from a");
    CHECK(for_b[1].content == "4 c to b");
    auto for_c = store->MessagesFor(m.mesh_id, c.agent_id, 0, 100);
    REQUIRE(for_c.size() == 3);
    CHECK(for_c[1].to == c.agent_id);
    CHECK(store->MessagesFor(m.mesh_id, c.agent_id, 2, 100).size() == 1);  // after
    CHECK(store->MessagesFor(m.mesh_id, c.agent_id, 0, 1).size() == 1);    // limit
    CHECK(store->History(m.mesh_id, 1, 100).size() == 3);
    CHECK(store->NewestSeq(m.mesh_id) == 4);
    CHECK(store->NewestSeq("no-such-mesh") == 0);
    CHECK(store->NewestSeq(MakeMesh(*store, "alice").mesh_id) == 0);
  }

  SUBCASE("a new agent's cursor starts at the mesh's latest seq") {
    Mesh m = MakeMesh(*store, "alice");
    Agent a = MakeAgent(*store, m, "a");
    Put(*store, m, a, "all", "old");
    Put(*store, m, a, "all", "older");
    Agent late = MakeAgent(*store, m, "late");
    CHECK(late.acked_seq == 2);
    CHECK(late.fetched_seq == 2);
  }

  SUBCASE("cursors only move up, never past the newest message, and give receipts") {
    Mesh m = MakeMesh(*store, "alice");
    Agent a = MakeAgent(*store, m, "a");
    Agent b = MakeAgent(*store, m, "b");
    Agent c = MakeAgent(*store, m, "c");
    Message msg = Put(*store, m, a, "all", "hi");
    auto receipts = store->Receipts(msg);
    REQUIRE(receipts.size() == 2);  // b and c, not the sender
    CHECK(receipts[0].state == "queued");
    store->AdvanceCursor(b.agent_id, 0, msg.seq, 3000);  // b fetched
    store->AdvanceCursor(c.agent_id, msg.seq, msg.seq, 4000);  // c acked
    store->AdvanceCursor(c.agent_id, 0, 0, 5000);  // no-op
    receipts = store->Receipts(msg);
    REQUIRE(receipts.size() == 2);
    CHECK(receipts[0].name == "b");
    CHECK(receipts[0].state == "fetched");
    CHECK(receipts[0].fetched_at == std::optional<Millis>(3000));
    CHECK_FALSE(receipts[0].acked_at);
    CHECK(receipts[1].state == "acked");
    CHECK(receipts[1].acked_at == std::optional<Millis>(4000));
    store->AdvanceCursor(c.agent_id, 999, 0, 6000);  // past the newest: clamped
    CHECK(store->FindAgent(m.mesh_id, "c")->acked_seq == msg.seq);
    store->AdvanceCursor(c.agent_id, 0, 0, 7000);
    CHECK(store->FindAgent(m.mesh_id, "c")->acked_seq == msg.seq);
  }

  SUBCASE("presence only moves last_seen forward") {
    Mesh m = MakeMesh(*store, "alice");
    Agent a = MakeAgent(*store, m, "a", 1000);
    store->RecordPresence({{a.agent_id, 5000}});
    store->RecordPresence({{a.agent_id, 3000}});
    // Presence may be lazy: a later durable write is ordered after it.
    MakeAgent(*store, m, "sync");
    CHECK(store->FindAgent(m.mesh_id, "a")->last_seen == 5000);
  }

  SUBCASE("retention removes stale agents and purges what no one still needs") {
    const Millis day = 24LL * 3600 * 1000;
    Mesh m = MakeMesh(*store, "alice", 0);
    Agent a = MakeAgent(*store, m, "a", 0);
    Agent b = MakeAgent(*store, m, "b", 0);
    Agent gone = MakeAgent(*store, m, "gone", 0);
    Message direct_b = Put(*store, m, a, b.agent_id, "to b", 10);
    Message direct_gone = Put(*store, m, a, gone.agent_id, "to gone", 10);
    Message bcast = Put(*store, m, a, "all", "to all", 10);
    store->AdvanceCursor(b.agent_id, bcast.seq, bcast.seq, 20);  // b has everything
    // a and b are seen recently; gone was last seen at 0.
    store->RecordPresence({{a.agent_id, 8 * day}, {b.agent_id, 8 * day}});
    SweepResult r = store->Sweep(8 * day, 7 * day, 3600 * 1000);
    CHECK(r.agents_removed == 1);
    CHECK_FALSE(store->FindAgent(m.mesh_id, "gone"));
    // direct_b acked by b; direct_gone's recipient is gone; bcast: b acked,
    // gone removed, a is the sender. All three purged.
    CHECK(r.messages_purged == 3);
    CHECK_FALSE(store->FindMessage(m.mesh_id, direct_b.id));
    CHECK_FALSE(store->FindMessage(m.mesh_id, direct_gone.id));
    CHECK_FALSE(store->FindMessage(m.mesh_id, bcast.id));
  }

  SUBCASE("retention keeps what a live recipient has not acknowledged") {
    const Millis day = 24LL * 3600 * 1000;
    Mesh m = MakeMesh(*store, "alice", 0);
    Agent a = MakeAgent(*store, m, "a", 0);
    Agent b = MakeAgent(*store, m, "b", 0);
    Message bcast = Put(*store, m, a, "all", "to all", 10);
    store->RecordPresence({{a.agent_id, 6 * day}, {b.agent_id, 6 * day}});
    SweepResult r = store->Sweep(6 * day, 7 * day, 3600 * 1000);
    CHECK(r.agents_removed == 0);
    CHECK(r.messages_purged == 0);
    CHECK(store->FindMessage(m.mesh_id, bcast.id));
    // Acknowledged: purged once older than the grace period...
    store->AdvanceCursor(b.agent_id, bcast.seq, bcast.seq, 6 * day);
    Message fresh = Put(*store, m, a, "all", "fresh", 6 * day);
    store->AdvanceCursor(b.agent_id, fresh.seq, fresh.seq, 6 * day);
    CHECK(store->Sweep(6 * day, 7 * day, 3600 * 1000).messages_purged == 1);
    // ...and a message acknowledged within it is kept until it is older.
    CHECK(store->FindMessage(m.mesh_id, fresh.id));
  }

  SUBCASE("retention purges more than one writer operation's worth (deleted in parts), and only that") {
    const Millis day = 24LL * 3600 * 1000;
    Mesh m = MakeMesh(*store, "alice", 0);
    Agent a = MakeAgent(*store, m, "a", 0);
    Agent b = MakeAgent(*store, m, "b", 0);
    Message last;
    for (int i = 0; i < 1203; ++i) last = Put(*store, m, a, b.agent_id, "old " + std::to_string(i), 10);
    Message kept = Put(*store, m, a, b.agent_id, "not acknowledged", 10);
    store->AdvanceCursor(b.agent_id, last.seq, last.seq, 20);
    store->RecordPresence({{a.agent_id, 6 * day}, {b.agent_id, 6 * day}});
    CHECK(store->Sweep(6 * day, 7 * day, 3600 * 1000).messages_purged == 1203);
    CHECK_FALSE(store->FindMessage(m.mesh_id, last.id));
    CHECK(store->FindMessage(m.mesh_id, kept.id));
    CHECK(store->Sweep(6 * day, 7 * day, 3600 * 1000).messages_purged == 0);
  }

  SUBCASE("everything survives closing and reopening") {
    Mesh m = MakeMesh(*store, "alice");
    Agent a = MakeAgent(*store, m, "a");
    Agent b = MakeAgent(*store, m, "b");
    Message msg = Put(*store, m, a, b.agent_id, "durable");
    store->AdvanceCursor(b.agent_id, msg.seq, msg.seq, 3000);
    store.reset();
    store = fixture.Reopen();
    CHECK(store->FindMesh(m.mesh_id));
    CHECK(store->FindMessage(m.mesh_id, msg.id)->content == "durable");
    CHECK(store->FindAgent(m.mesh_id, "b")->acked_seq == msg.seq);
    CHECK(Put(*store, m, a, "all", "next").seq == msg.seq + 1);
  }
}

}  // namespace meshwire::testing
