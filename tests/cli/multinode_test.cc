// Several relay nodes on one PostgreSQL database, end to end: real
// `meshwire server` processes on a throwaway PostgreSQL server
// (tests/support/pg_cluster.h). A send through one node wakes a poll parked
// on the other; with senders split across both nodes, one node killed
// (SIGKILL) and the database restarted mid-run, every acknowledged message is
// delivered once, in order. Skipped, with the reason, only when PostgreSQL's
// binaries are not installed.
#include <doctest/doctest.h>
#include <httplib.h>
#include <signal.h>

#include <atomic>
#include <chrono>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <thread>
#include <tuple>

#include "server/storage/pg_conn.h"
#include "server/storage/postgres_store.h"
#include "tests/support/pg_cluster.h"
#include "tests/support/pg_notifications.h"
#include "tests/support/pg_proxy.h"
#include "tests/support/raw_client.h"
#include "tests/support/relay_process.h"

namespace meshwire::testing {

namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

/// A JSON call to a node; nullopt when the node cannot be reached.
std::optional<std::pair<int, json>> Call(const std::string& url, const std::string& token,
                                         const std::string& method, const std::string& path,
                                         const json& body = nullptr, int timeout_s = 5) {
  httplib::Client c(url);
  c.set_connection_timeout(2, 0);
  c.set_read_timeout(timeout_s, 0);
  httplib::Headers h = {{"Authorization", "Bearer " + token}};
  httplib::Result r = method == "POST" ? c.Post(path, h, body.dump(), "application/json") : c.Get(path, h);
  if (!r) return std::nullopt;
  return std::make_pair(r->status, json::parse(r->body, nullptr, false));
}

struct Mesh {
  std::string id, rx, tx;
};

Mesh Setup(const RelayProcess& a, const RelayProcess& b, const std::string& token) {
  auto mesh = Call(a.url(), token, "POST", "/mesh", {{"name", "two-nodes"}});
  REQUIRE(mesh);
  REQUIRE(mesh->first == 201);
  Mesh m{mesh->second["mesh_id"], "", ""};
  auto rx = Call(b.url(), token, "POST", "/mesh/" + m.id + "/agents", {{"name", "rx"}});
  auto tx = Call(a.url(), token, "POST", "/mesh/" + m.id + "/agents", {{"name", "tx"}});
  REQUIRE((rx && tx));
  m.rx = rx->second["agent_id"];
  m.tx = tx->second["agent_id"];
  return m;
}

/// Setup, then until nodes `a` and `b` (by the ids /health gives) count as
/// live on database `uri` (each one's first heartbeat, a second after it
/// starts, is in): an access change waits only for the live nodes it reads
/// there.
Mesh SetupKnown(const RelayProcess& a, const RelayProcess& b, const std::string& token, const std::string& uri) {
  Mesh m = Setup(a, b, token);
  auto health_a = Call(a.url(), token, "GET", "/health");
  auto health_b = Call(b.url(), token, "GET", "/health");
  REQUIRE((health_a && health_b));
  PgConnection db(uri);
  for (int i = 0;; ++i) {
    auto s = db.Prepare(
        "SELECT count(*) FROM nodes WHERE node_id IN (?1, ?2)"
        " AND seen_at > (extract(epoch from clock_timestamp()) * 1000)::bigint - ?3");
    s.Bind(1, health_a->second["node"].get<std::string>())
        .Bind(2, health_b->second["node"].get<std::string>())
        .Bind(3, std::int64_t{PostgresStore::kNodeAliveMs});
    REQUIRE(s.Step());
    if (s.Int(0) == 2) break;
    REQUIRE_MESSAGE(i < 300, "the two nodes' heartbeats did not reach the database within 15 s");
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return m;
}

/// A DELETE to a node; its status, or 0 when the node cannot be reached.
int Delete(const std::string& url, const std::string& token, const std::string& path) {
  httplib::Client c(url);
  c.set_connection_timeout(2, 0);
  c.set_read_timeout(10, 0);
  auto r = c.Delete(path, httplib::Headers{{"Authorization", "Bearer " + token}});
  return r ? r->status : 0;
}

/// A token made and revoked through A, used on B just before (so B has it
/// cached) and just after: B must refuse it at once.
void CheckRevokeReaches(const RelayProcess& a, const RelayProcess& b, const std::string& token, const Mesh& m,
                        const std::string& name) {
  auto created = Call(a.url(), token, "POST", "/tokens", {{"name", name}});
  REQUIRE(created);
  REQUIRE(created->first == 201);
  const std::string id = created->second["id"], secret = created->second["token"];
  auto before = Call(b.url(), secret, "GET", "/mesh/" + m.id + "/agents");
  REQUIRE(before);
  CHECK(before->first == 200);  // cached by B
  CHECK(Delete(a.url(), token, "/tokens/" + id) == 204);
  auto after = Call(b.url(), secret, "GET", "/mesh/" + m.id + "/agents");
  REQUIRE(after);
  CHECK(after->first == 401);
}

/// A token for `user` on the database at `uri`, made with the binary.
std::string TokenFor(const std::string& uri, const std::string& user = "alice") {
  auto [code, out] = RunCommand({kBinary, "admin", "token", "create", "--user", user, "--storage", uri});
  REQUIRE(code == 0);
  return out.substr(0, out.find('\n'));
}

/// A fresh database, a token for alice on it, and two relay nodes on it.
struct TwoNodes {
  PgCluster* pg = PgCluster::Shared();
  std::string uri;
  TempDir home;
  std::string token;
  std::unique_ptr<RelayProcess> a, b;

  TwoNodes() {
    REQUIRE_MESSAGE(pg != nullptr, PgCluster::Missing());
    uri = pg->NewDatabase();
    token = TokenFor(uri);
    a = std::make_unique<RelayProcess>(home, std::vector<std::string>{"--storage", uri});
    b = std::make_unique<RelayProcess>(home, std::vector<std::string>{"--storage", uri});
  }
};

}  // namespace

TEST_CASE("two nodes, one database: a send through one wakes a poll parked on the other") {
  TwoNodes nodes;
  const RelayProcess& a = *nodes.a;
  const RelayProcess& b = *nodes.b;
  const std::string& token = nodes.token;
  Mesh m = Setup(a, b, token);
  // /health names the storage and the node that answered.
  auto health_a = Call(a.url(), token, "GET", "/health");
  auto health_b = Call(b.url(), token, "GET", "/health");
  REQUIRE((health_a && health_b));
  CHECK(health_a->second["storage"] == "postgres");
  CHECK(health_a->second["node"].get<std::string>().size() == 10);
  CHECK(health_a->second["node"] != health_b->second["node"]);

  // Parked on B; the message goes through A.
  std::optional<std::pair<int, json>> answer;
  Clock::time_point answered;
  std::thread poll([&] {
    answer = Call(b.url(), token, "GET", "/mesh/" + m.id + "/messages?agent_id=" + m.rx + "&wait=20", nullptr, 30);
    answered = Clock::now();
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(500));  // let the poll park (it returns at once otherwise)
  const auto sent_at = Clock::now();
  auto sent = Call(a.url(), token, "POST", "/mesh/" + m.id + "/messages", {{"from", m.tx}, {"to", "rx"}, {"content", "across"}});
  poll.join();
  REQUIRE(sent);
  CHECK(sent->first == 201);
  REQUIRE(answer);
  REQUIRE(answer->first == 200);
  REQUIRE(answer->second["messages"].size() == 1);
  CHECK(answer->second["messages"][0]["content"] == "across");
  const double ms = std::chrono::duration<double, std::milli>(answered - sent_at).count();
  MESSAGE("cross-node wake: " << ms << " ms from the send to the answer");
  CHECK(ms < 2000);  // loose here; bench/ measures it
}

TEST_CASE("/events on one node streams what is sent through the other (the replay, then live) and its presence events; a node that only sends notifies nobody") {
  TwoNodes nodes;
  const std::string& token = nodes.token;
  Mesh m = Setup(*nodes.a, *nodes.b, token);
  auto send = [&](const std::string& content) {
    auto sent = Call(nodes.a->url(), token, "POST", "/mesh/" + m.id + "/messages", {{"from", m.tx}, {"to", "rx"}, {"content", content}});
    REQUIRE(sent);
    CHECK(sent->first == 201);
  };
  // Nobody waits on the mesh on B: A's transactions announce nothing.
  PgConnection listener(nodes.uri);
  listener.Exec("LISTEN meshwire_messages");
  send("before the stream");
  RawClient stream(nodes.b->port);
  stream.Send("GET /mesh/" + m.id + "/events?after=0 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + token + "\r\n\r\n");
  REQUIRE(stream.WaitFor("before the stream"));
  send("live, through the other node");
  CHECK(stream.WaitFor("live, through the other node"));
  CHECK(stream.Count("event: message\n") == 2);
  // Presence too: an agent registered through A appears on B's stream.
  auto joined = Call(nodes.a->url(), token, "POST", "/mesh/" + m.id + "/agents", {{"name", "newcomer"}});
  REQUIRE(joined);
  CHECK(joined->first == 201);
  CHECK(stream.WaitFor("\"name\":\"newcomer\""));
  CHECK(stream.text().find("event: presence\ndata: {\"agent_id\":\"" + joined->second["agent_id"].get<std::string>()) !=
        std::string::npos);
  // The first send was announced to nobody; the second was, to B.
  // (Notifications come in commit order: had the first been sent, it would be first.)
  CHECK(AnnouncedSeqs(listener, 2) == std::vector<std::int64_t>{2});
}

namespace {

/// Whether node `url` lists agent `agent_id` as listening; nullopt: no answer.
std::optional<bool> ListedListening(const std::string& url, const std::string& token, const Mesh& m,
                                    const std::string& agent_id) {
  auto r = Call(url, token, "GET", "/mesh/" + m.id + "/agents");
  if (!r || r->first != 200) return std::nullopt;
  for (const auto& a : r->second["agents"]) {
    if (a["agent_id"] == agent_id) return a["listening"].get<bool>();
  }
  return std::nullopt;
}

/// Asks until node `url` lists the agent as `want` (bounded); the time it took, or -1.
double UntilListed(const std::string& url, const std::string& token, const Mesh& m, const std::string& agent_id,
                   bool want, int within_ms) {
  const auto start = Clock::now();
  while (Clock::now() - start < std::chrono::milliseconds(within_ms)) {
    if (ListedListening(url, token, m, agent_id) == want) {
      return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return -1;
}

}  // namespace

TEST_CASE("a sign-in begun through one node finishes through the other (meshwire login behind a load balancer)") {
  TwoNodes nodes;
  const RelayProcess& a = *nodes.a;
  const RelayProcess& b = *nodes.b;
  // The one-time code in a sign-in's redirect, approved through `node` with `form` posted to `path`
  // (with `cookie`, the dashboard's sign-in cookie).
  auto approve = [](const RelayProcess& node, const std::string& path, const std::string& form,
                    const std::string& cookie = "") {
    httplib::Client browser(node.url());
    httplib::Headers h;
    if (!cookie.empty()) h.emplace("Cookie", cookie);
    auto approved = browser.Post(path, h, form, "application/x-www-form-urlencoded");
    REQUIRE(approved);
    REQUIRE(approved->status == 302);
    const std::string location = approved->get_header_value("Location");
    REQUIRE(location.find("code=") != std::string::npos);
    return location.substr(location.find("code=") + 5, 32);
  };
  auto redeem = [](const RelayProcess& node, const std::string& code, const std::string& cookie = "") {
    httplib::Client cli(node.url());
    httplib::Headers h;
    if (!cookie.empty()) h.emplace("Cookie", cookie);
    auto r = cli.Post("/auth/cli/token", h, json{{"code", code}}.dump(), "application/json");
    REQUIRE(r);
    return std::make_pair(r->status, json::parse(r->body, nullptr, false));
  };
  // meshwire login: the browser's form reaches A, the CLI's redemption B.
  const std::string code = approve(a, "/auth/cli", "user=alice&port=5000&state=state1234");
  auto [status, token] = redeem(b, code);
  REQUIRE(status == 200);
  CHECK(token["user"] == "alice");
  for (const RelayProcess* node : {&a, &b}) CHECK(Call(node->url(), token["token"], "GET", "/me")->first == 200);
  CHECK(redeem(a, code).first == 400);  // once, whichever node is asked
  // The dashboard's sign-in likewise (its cookie set by one node, checked by the other), its token named for it.
  auto page = httplib::Client(b.url()).Get("/auth/web");
  REQUIRE(page);
  const std::string set = page->get_header_value("Set-Cookie");
  const std::string cookie = set.substr(0, set.find(';'));
  REQUIRE(cookie.rfind("mw_signin=", 0) == 0);
  auto [web_status, web] = redeem(a, approve(b, "/auth/web", "user=bob", cookie), cookie);
  REQUIRE(web_status == 200);
  auto tokens = Call(a.url(), web["token"], "GET", "/tokens");
  REQUIRE(tokens);
  CHECK(tokens->second["tokens"][0]["name"] == "dashboard");
}

TEST_CASE("a node logs its node id (as /health names it) and warns when synchronous_commit is off") {
  PgCluster* pg = PgCluster::Shared();
  REQUIRE_MESSAGE(pg != nullptr, PgCluster::Missing());
  const std::string uri = pg->NewDatabase();
  const std::string name = uri.substr(uri.find("@/") + 2, uri.find('?') - uri.find("@/") - 2);
  {
    PgConnection admin(pg->Uri("postgres"));
    admin.Exec(("ALTER DATABASE " + name + " SET synchronous_commit = off").c_str());
  }
  TempDir home;
  RelayProcess relay(home, {"--storage", uri, "--log-level", "info"});
  auto health = Call(relay.url(), "", "GET", "/health");
  REQUIRE(health);
  const std::string node = health->second["node"];
  // (Both come before "listening", which the start waited for.)
  const std::string log = relay.process.stderr_seen();
  CHECK_MESSAGE(log.find("this relay is PostgreSQL node " + node + " (as /health names it)") != std::string::npos, log);
  CHECK(log.find("PostgreSQL's synchronous_commit is off for this relay's sessions") != std::string::npos);
}

TEST_CASE("listening counts every node: an agent parked on one node is listed as listening by the other") {
  TwoNodes nodes;
  RelayProcess& a = *nodes.a;
  RelayProcess& b = *nodes.b;
  const std::string& token = nodes.token;
  Mesh m = Setup(a, b, token);
  CHECK(ListedListening(a.url(), token, m, m.rx) == false);

  // rx parks on B: A lists it as listening within about a second (B shares
  // what listens on it once a second).
  std::optional<std::pair<int, json>> answer;
  std::thread poll([&] {
    answer = Call(b.url(), token, "GET", "/mesh/" + m.id + "/messages?agent_id=" + m.rx + "&wait=20", nullptr, 30);
  });
  const double seen_ms = UntilListed(a.url(), token, m, m.rx, true, 5000);
  MESSAGE("node A listed rx (parked on B) as listening after " << seen_ms << " ms");
  CHECK(seen_ms >= 0);
  CHECK(ListedListening(b.url(), token, m, m.rx) == true);

  // The database forgets the nodes (as when one is taken for dead after a
  // minute without it): B's next beat finds its row gone and shares every
  // listener again, not only the ones that started since.
  PgConnection(nodes.uri).Exec("DELETE FROM nodes");
  CHECK(ListedListening(a.url(), token, m, m.rx) == false);
  CHECK(UntilListed(a.url(), token, m, m.rx, true, 5000) >= 0);

  // The poll ends (a message through A wakes it): neither node lists it any more.
  auto sent = Call(a.url(), token, "POST", "/mesh/" + m.id + "/messages", {{"from", m.tx}, {"to", "rx"}, {"content", "wake"}});
  poll.join();
  REQUIRE(sent);
  CHECK(sent->first == 201);
  REQUIRE(answer);
  CHECK(answer->first == 200);
  CHECK(UntilListed(a.url(), token, m, m.rx, false, 5000) >= 0);
  CHECK(ListedListening(b.url(), token, m, m.rx) == false);

  // Parked on B again, then B is killed: A stops counting it once B has been
  // silent for PostgresStore::kNodeAliveMs (5 s).
  const std::string after = std::to_string(answer->second["cursor"].get<long long>());
  std::thread again([&] {
    Call(b.url(), token, "GET", "/mesh/" + m.id + "/messages?agent_id=" + m.rx + "&after=" + after + "&wait=20",
         nullptr, 30);
  });
  CHECK(UntilListed(a.url(), token, m, m.rx, true, 5000) >= 0);
  b.process.Signal(SIGKILL);
  again.join();
  const double gone_ms = UntilListed(a.url(), token, m, m.rx, false, 10000);
  MESSAGE("node A stopped listing rx as listening " << gone_ms << " ms after B was killed");
  CHECK(gone_ms >= 0);
}

TEST_CASE("a token revoked through one node fails on the other from its very next request") {
  TwoNodes nodes;
  const RelayProcess& a = *nodes.a;
  // Node B hears of access changes 300 ms late (fault injection): the revoke
  // through A must wait for B, or B would still accept the token.
  RelayProcess b(nodes.home, {"--storage", nodes.uri}, {"MESHWIRE_TEST_ACCESS_DELAY_MS=300"});
  const std::string& token = nodes.token;
  Mesh m = SetupKnown(a, b, token, nodes.uri);
  for (int i = 0; i < 5; ++i) {
    CAPTURE(i);
    CheckRevokeReaches(a, b, token, m, "short-" + std::to_string(i));
  }
}

TEST_CASE("a token revoked with `meshwire admin token revoke` fails on every node, and its parked poll answers at once") {
  TwoNodes nodes;
  const RelayProcess& a = *nodes.a;
  const RelayProcess& b = *nodes.b;
  Mesh m = Setup(a, b, nodes.token);
  auto [made, made_out] =
      RunCommand({kBinary, "admin", "token", "create", "--user", "alice", "--name", "second", "--storage", nodes.uri});
  REQUIRE(made == 0);
  const std::string second = made_out.substr(0, made_out.find('\n'));
  // Cached by both nodes.
  for (const RelayProcess* node : {&a, &b}) {
    auto r = Call(node->url(), second, "GET", "/tokens");
    REQUIRE(r);
    CHECK(r->first == 200);
  }
  auto parked = std::async(std::launch::async, [&] {
    auto r = Call(b.url(), second, "GET", "/mesh/" + m.id + "/messages?agent_id=" + m.tx + "&wait=30", nullptr, 40);
    return std::make_pair(r, Clock::now());
  });
  CHECK(UntilListed(b.url(), nodes.token, m, m.tx, true, 5000) >= 0);
  auto [listed_code, listed] = RunCommand({kBinary, "admin", "token", "list", "--user", "alice", "--json", "--storage",
                                           nodes.uri});
  REQUIRE(listed_code == 0);
  const json tokens = json::parse(listed);
  std::string id;
  for (const auto& t : tokens["tokens"]) {
    if (t["name"] == "second") id = t["id"];
  }
  REQUIRE(!id.empty());
  const auto revoked_at = Clock::now();
  auto [code, out] = RunCommand({kBinary, "admin", "token", "revoke", id, "--storage", nodes.uri});
  REQUIRE(code == 0);
  CHECK(out.find("The relays on this database refuse it from their next request.") != std::string::npos);
  auto [poll, answered] = parked.get();
  REQUIRE(poll);
  CHECK(poll->first == 401);
  CHECK(answered - revoked_at < std::chrono::seconds(5));  // not the poll's 30 s
  for (const RelayProcess* node : {&a, &b}) {
    auto r = Call(node->url(), second, "GET", "/tokens");
    REQUIRE(r);
    CHECK(r->first == 401);
  }
  auto first = Call(a.url(), nodes.token, "GET", "/tokens");
  REQUIRE(first);
  CHECK(first->first == 200);
}

TEST_CASE("after the database restarts, each node's next requests are served, and a revoke through one node fails on the other") {
  TwoNodes nodes;
  const RelayProcess& a = *nodes.a;
  const RelayProcess& b = *nodes.b;
  const std::string& token = nodes.token;
  Mesh m = SetupKnown(a, b, token, nodes.uri);
  // Eight requests at once on each node: eight pooled connections each.
  auto burst = [&](const std::string& url) {
    std::vector<std::future<int>> answers;
    for (int i = 0; i < 8; ++i) {
      answers.push_back(std::async(std::launch::async, [&, url] {
        auto r = Call(url, token, "GET", "/mesh/" + m.id + "/messages?agent_id=" + m.rx + "&wait=1");
        return r ? r->first : 0;
      }));
    }
    std::map<int, int> statuses;
    for (auto& f : answers) ++statuses[f.get()];
    return statuses;
  };
  CHECK(burst(a.url()) == std::map<int, int>{{200, 8}});
  CHECK(burst(b.url()) == std::map<int, int>{{200, 8}});
  // Node A's connection that tells other nodes of access changes, in use.
  auto warm = Call(a.url(), token, "POST", "/tokens", {{"name", "warm"}});
  REQUIRE((warm && warm->first == 201));
  CHECK(Delete(a.url(), token, "/tokens/" + warm->second["id"].get<std::string>()) == 204);
  // An event stream on B: a database restart is no reason to end it.
  RawClient events(b.port);
  events.Send("GET /mesh/" + m.id + "/events HTTP/1.1\r\nHost: relay\r\nAuthorization: Bearer " + token + "\r\n\r\n");
  REQUIRE(events.WaitFor("HTTP/1.1 200"));

  REQUIRE(nodes.pg->Restart());
  // The server ended every session: the next requests reconnect, none is
  // answered 503 for a connection that died while it sat in a pool.
  CHECK(burst(a.url()) == std::map<int, int>{{200, 8}});
  CHECK(burst(b.url()) == std::map<int, int>{{200, 8}});
  // Node B listens again; a token revoked through A then fails on B at once
  // (A's notifying connection had died with the restart: the change was lost).
  REQUIRE(nodes.b->process.WaitForStderr("listening on PostgreSQL again", 20000));
  auto after_restart = Call(a.url(), token, "POST", "/mesh/" + m.id + "/messages",
                            {{"from", m.tx}, {"content", "after the restart"}});
  REQUIRE((after_restart && after_restart->first == 201));
  CHECK(events.WaitFor("after the restart"));
  CHECK(events.text().find("event: error") == std::string::npos);
  CheckRevokeReaches(a, b, token, m, "after-restart");
}

TEST_CASE("a change of access through one node answers the polls it ends on the other at once: a revoked token, a removed member, a deleted agent or mesh") {
  TwoNodes nodes;
  const RelayProcess& a = *nodes.a;
  const RelayProcess& b = *nodes.b;
  const std::string& token = nodes.token;
  Mesh m = SetupKnown(a, b, token, nodes.uri);
  // Parked on B for 30 s; deleted through A.
  auto park = [&](const std::string& agent_id) {
    return std::async(std::launch::async, [&, agent_id] {
      auto r = Call(b.url(), token, "GET", "/mesh/" + m.id + "/messages?agent_id=" + agent_id + "&wait=30",
                    nullptr, 40);
      return std::make_pair(r, Clock::now());
    });
  };
  auto until_listening = [&](const std::string& agent_id) {
    CHECK(UntilListed(b.url(), token, m, agent_id, true, 5000) >= 0);
  };

  // A revoked token's poll: 401; a removed member's: 403.
  auto created = Call(a.url(), token, "POST", "/tokens", {{"name", "short"}});
  REQUIRE(created);
  REQUIRE(created->first == 201);
  const std::string short_id = created->second["id"], short_secret = created->second["token"];
  auto by_short = std::async(std::launch::async, [&] {
    return Call(b.url(), short_secret, "GET", "/mesh/" + m.id + "/messages?agent_id=" + m.tx + "&wait=30", nullptr, 40);
  });
  until_listening(m.tx);
  CHECK(Delete(a.url(), token, "/tokens/" + short_id) == 204);
  REQUIRE(by_short.wait_for(std::chrono::seconds(10)) == std::future_status::ready);
  auto short_answer = by_short.get();
  REQUIRE(short_answer);
  CHECK(short_answer->first == 401);

  const std::string bob = TokenFor(nodes.uri, "bob");
  auto added = Call(a.url(), token, "POST", "/mesh/" + m.id + "/members", {{"user", "bob"}});
  REQUIRE(added);
  REQUIRE(added->first == 201);
  auto bobs = Call(b.url(), bob, "POST", "/mesh/" + m.id + "/agents", {{"name", "bob-agent"}});
  REQUIRE(bobs);
  const std::string bob_agent = bobs->second["agent_id"];
  auto by_bob = std::async(std::launch::async, [&] {
    return Call(b.url(), bob, "GET", "/mesh/" + m.id + "/messages?agent_id=" + bob_agent + "&wait=30", nullptr, 40);
  });
  until_listening(bob_agent);
  CHECK(Delete(a.url(), token, "/mesh/" + m.id + "/members/bob") == 204);
  REQUIRE(by_bob.wait_for(std::chrono::seconds(10)) == std::future_status::ready);
  auto bob_answer = by_bob.get();
  REQUIRE(bob_answer);
  CHECK(bob_answer->first == 403);

  auto rx_poll = park(m.rx);
  until_listening(m.rx);
  auto deleted_at = Clock::now();
  CHECK(Delete(a.url(), token, "/mesh/" + m.id + "/agents/" + m.rx) == 204);
  REQUIRE(rx_poll.wait_for(std::chrono::seconds(10)) == std::future_status::ready);
  auto [rx_answer, rx_at] = rx_poll.get();
  REQUIRE(rx_answer);
  CHECK(rx_answer->first == 404);
  CHECK(rx_answer->second["error"]["code"] == "agent_not_found");
  MESSAGE("agent deleted through A: its poll on B answered after "
          << std::chrono::duration<double, std::milli>(rx_at - deleted_at).count() << " ms");
  CHECK(rx_at - deleted_at < std::chrono::seconds(5));

  auto tx_poll = park(m.tx);
  until_listening(m.tx);
  deleted_at = Clock::now();
  CHECK(Delete(a.url(), token, "/mesh/" + m.id) == 204);
  REQUIRE(tx_poll.wait_for(std::chrono::seconds(10)) == std::future_status::ready);
  auto [tx_answer, tx_at] = tx_poll.get();
  REQUIRE(tx_answer);
  CHECK(tx_answer->first == 404);
  CHECK(tx_answer->second["error"]["code"] == "mesh_not_found");
  CHECK(tx_at - deleted_at < std::chrono::seconds(5));
}

TEST_CASE("MCP sessions on one node end when an access change through the other names them: a revoked token, a deleted agent") {
  TwoNodes nodes;
  const RelayProcess& a = *nodes.a;
  const RelayProcess& b = *nodes.b;
  const std::string& token = nodes.token;
  Mesh m = SetupKnown(a, b, token, nodes.uri);
  // A session on B (initialize, then its GET stream); its id.
  auto open = [&](const std::string& secret, const std::string& agent, RawClient& stream) {
    httplib::Client c(b.url());
    c.set_read_timeout(5, 0);
    const json init = {{"jsonrpc", "2.0"},
                       {"id", 1},
                       {"method", "initialize"},
                       {"params",
                        {{"protocolVersion", "2025-06-18"},
                         {"capabilities", json::object()},
                         {"clientInfo", {{"name", "test"}, {"version", "1"}}}}}};
    auto r = c.Post("/mesh/" + m.id + "/mcp?agent=" + agent,
                    {{"Authorization", "Bearer " + secret}, {"Accept", "application/json, text/event-stream"}},
                    init.dump(), "application/json");
    REQUIRE(r);
    REQUIRE(r->status == 200);
    const std::string sid = r->get_header_value("Mcp-Session-Id");
    REQUIRE(!sid.empty());
    REQUIRE(stream.Send("GET /mesh/" + m.id + "/mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " +
                        secret + "\r\nMcp-Session-Id: " + sid + "\r\nAccept: text/event-stream\r\n\r\n"));
    REQUIRE(stream.WaitFor("200 OK"));
    return sid;
  };

  auto created = Call(a.url(), token, "POST", "/tokens", {{"name", "mcp-short"}});
  REQUIRE(created);
  REQUIRE(created->first == 201);
  RawClient revoked_stream(b.port);
  const std::string revoked_secret = created->second["token"];
  const std::string revoked_sid = open(revoked_secret, "mcp-revoked", revoked_stream);
  RawClient deleted_stream(b.port);
  open(token, "mcp-deleted", deleted_stream);
  RawClient alive_stream(b.port);
  open(token, "mcp-alive", alive_stream);
  // A call of the revoked token's session waiting on B: told why it ends.
  auto waiting = std::async(std::launch::async, [&] {
    httplib::Client c(b.url());
    c.set_read_timeout(30, 0);
    const json call = {{"jsonrpc", "2.0"},
                       {"id", "w"},
                       {"method", "tools/call"},
                       {"params", {{"name", "meshwire_get_messages"}, {"arguments", {{"wait_seconds", 20}}}}}};
    auto r = c.Post("/mesh/" + m.id + "/mcp",
                    {{"Authorization", "Bearer " + revoked_secret},
                     {"Accept", "application/json, text/event-stream"},
                     {"Mcp-Session-Id", revoked_sid},
                     {"MCP-Protocol-Version", "2025-06-18"}},
                    call.dump(), "application/json");
    return r ? r->body : std::string("(no answer)");
  });
  bool parked = false;
  for (int i = 0; i < 500 && !parked; ++i) {
    auto listed = Call(a.url(), token, "GET", "/mesh/" + m.id + "/agents");
    for (const json& agent : listed ? listed->second["agents"] : json::array()) {
      parked = parked || (agent["name"] == "mcp-revoked" && agent["listening"] == true);
    }
    if (!parked) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  REQUIRE(parked);

  CHECK(Delete(a.url(), token, "/tokens/" + created->second["id"].get<std::string>()) == 204);
  CHECK(revoked_stream.ClosedByRelay(std::chrono::milliseconds(5000)));
  REQUIRE(waiting.wait_for(std::chrono::seconds(10)) == std::future_status::ready);
  const std::string answer = waiting.get();
  CAPTURE(answer);
  CHECK(answer.find("The token was revoked; sign in again") != std::string::npos);
  CHECK(answer.find("start a new session") == std::string::npos);  // which would fail with 401
  auto agents = Call(a.url(), token, "GET", "/mesh/" + m.id + "/agents");
  REQUIRE(agents);
  std::string deleted_id;
  for (const json& agent : agents->second["agents"]) {
    if (agent["name"] == "mcp-deleted") deleted_id = agent["agent_id"];
  }
  REQUIRE(!deleted_id.empty());
  CHECK(Delete(a.url(), token, "/mesh/" + m.id + "/agents/" + deleted_id) == 204);
  CHECK(deleted_stream.ClosedByRelay(std::chrono::milliseconds(5000)));
  CHECK_FALSE(alive_stream.ClosedByRelay(std::chrono::milliseconds(300)));
}

TEST_CASE("8 senders across two nodes, one node killed and the database restarted: every acknowledged message once, in order") {
  TwoNodes nodes;
  PgCluster* pg = nodes.pg;
  std::unique_ptr<RelayProcess>& a = nodes.a;
  const RelayProcess& b = *nodes.b;
  const std::string& token = nodes.token;
  Mesh m = Setup(*a, b, token);
  const std::string url_a = a->url();

  std::mutex mu;
  std::set<std::string> acknowledged;  // ids of messages answered 201
  std::atomic<bool> stop{false};
  std::atomic<int> retries{0};       // sends refused or unanswered: the outages were seen
  std::atomic<int> sent_after_restart{0};
  std::atomic<bool> restarted{false};
  std::vector<std::thread> senders;
  for (int s = 0; s < 8; ++s) {
    senders.emplace_back([&, s] {
      // Senders 0-3 use node A and move to B when A is gone; 4-7 use B.
      for (int i = 0; i < 30 && !stop; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(40));  // about 3 s of sending
        const std::string key = "s" + std::to_string(s) + "-" + std::to_string(i);
        for (int attempt = 0; attempt < 40 && !stop; ++attempt) {
          const std::string& url = (s < 4 && attempt == 0) ? url_a : b.url();
          auto r = Call(url, token, "POST", "/mesh/" + m.id + "/messages",
                        {{"from", m.tx}, {"to", "rx"}, {"content", key}, {"idempotency_key", key}});
          if (r && (r->first == 201 || r->first == 200)) {
            std::lock_guard lock(mu);
            acknowledged.insert(r->second["id"].get<std::string>());
            if (restarted) ++sent_after_restart;
            break;
          }
          ++retries;
          std::this_thread::sleep_for(std::chrono::milliseconds(250));  // 503 or unreachable: retry
        }
      }
    });
  }
  // Mid-run: node A killed; then the database restarted under node B.
  std::this_thread::sleep_for(std::chrono::milliseconds(700));
  a->process.Signal(SIGKILL);
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  REQUIRE(pg->Restart());
  restarted = true;
  for (auto& t : senders) t.join();
  MESSAGE(retries.load() << " sends retried; " << sent_after_restart.load() << " acknowledged after the restart");
  CHECK(retries > 0);              // the kill and the restart happened while sending
  CHECK(sent_after_restart > 0);

  // Everything through B's long-poll, acknowledging as it goes.
  std::vector<json> got;
  std::int64_t cursor = 0;
  const auto deadline = Clock::now() + std::chrono::seconds(60);
  while (Clock::now() < deadline) {
    auto r = Call(b.url(), token, "GET",
                  "/mesh/" + m.id + "/messages?agent_id=" + m.rx + "&after=" + std::to_string(cursor) + "&wait=2&limit=100",
                  nullptr, 10);
    if (!r || r->first != 200) {
      std::this_thread::sleep_for(std::chrono::milliseconds(250));
      continue;
    }
    if (r->second["messages"].empty()) break;
    for (const json& msg : r->second["messages"]) got.push_back(msg);
    cursor = r->second["cursor"];
  }
  std::set<std::string> ids;
  std::int64_t last_seq = 0;
  for (const json& msg : got) {
    CHECK(msg["seq"].get<std::int64_t>() > last_seq);  // in order
    last_seq = msg["seq"];
    CHECK(ids.insert(msg["id"].get<std::string>()).second);  // once
  }
  MESSAGE(acknowledged.size() << " acknowledged, " << got.size() << " delivered");
  CHECK(acknowledged.size() >= 200);  // most sends get through despite the outages
  for (const std::string& id : acknowledged) CHECK_MESSAGE(ids.count(id) == 1, "acknowledged but not delivered: " << id);
  stop = true;
}

/// One relay whose database sessions go through a PgProxy, with a mesh in
/// which tx sends to rx: for the tests that cut or hold its COMMITs.
class ProxiedRelay {
 public:
  ProxiedRelay() : uri_(Cluster()->NewDatabase()), token_(TokenFor(uri_)), proxy_(uri_) {
    relay_ = std::make_unique<RelayProcess>(home_, std::vector<std::string>{"--storage", proxy_.uri()});
    mesh_ = Setup(*relay_, *relay_, token_);
  }
  /// The parts a test uses by name.
  std::tuple<PgProxy&, RelayProcess&, const std::string&, const Mesh&> parts() {
    return {proxy_, *relay_, token_, mesh_};
  }
  /// tx's send of `content` to rx, waiting up to 30 s for the answer.
  std::optional<std::pair<int, json>> Send(const std::string& content) {
    return Call(relay_->url(), token_, "POST", "/mesh/" + mesh_.id + "/messages",
                {{"from", mesh_.tx}, {"to", "rx"}, {"content", content}}, 30);
  }

 private:
  static PgCluster* Cluster() {
    PgCluster* pg = PgCluster::Shared();
    REQUIRE_MESSAGE(pg != nullptr, PgCluster::Missing());
    return pg;
  }
  std::string uri_;
  std::string token_;
  PgProxy proxy_;
  TempDir home_;
  std::unique_ptr<RelayProcess> relay_;
  Mesh mesh_;
};

TEST_CASE("a COMMIT the database does not answer does not stop the node: /health, reads, new connections and parked polls are answered meanwhile, the send once it commits") {
  // The sends an event loop reads are committed at its tail: here that
  // commit waits on a database that does not answer, and the runtime's
  // stand-in serves the node until it does (HttpRuntime::Run).
  ProxiedRelay fixture;
  auto [proxy, relay, token, m] = fixture.parts();  // references
  auto send = [&fixture](const std::string& content) { return fixture.Send(content); };
  auto before = send("before");
  REQUIRE(before);
  REQUIRE(before->first == 201);
  const std::string polls = "/mesh/" + m.id + "/messages?agent_id=" + m.rx;
  auto acked = Call(relay.url(), token, "GET", polls + "&limit=0&after=" + before->second["seq"].dump());
  REQUIRE(acked);
  REQUIRE(acked->first == 200);

  proxy.CutNext(PgProxy::Cut::kHold, "held");
  auto held = std::async(std::launch::async, [&] { return send("held"); });
  for (int i = 0; i < 500 && proxy.cuts() == 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  REQUIRE(proxy.cuts() == 1);

  const auto asked = Clock::now();
  auto health = Call(relay.url(), token, "GET", "/health", nullptr, 5);
  REQUIRE(health);
  CHECK(health->first == 200);
  CHECK(Clock::now() - asked < std::chrono::seconds(2));
  // Reads answer meanwhile (they take other connections).
  auto agents = Call(relay.url(), token, "GET", "/mesh/" + m.id + "/agents", nullptr, 5);
  REQUIRE(agents);
  CHECK(agents->first == 200);
  // A poll parks, and ends at its deadline with nothing (the held send is not committed).
  const auto parked = Clock::now();
  auto poll = Call(relay.url(), token, "GET", polls + "&wait=1", nullptr, 10);
  REQUIRE(poll);
  CHECK(poll->first == 200);
  CHECK(poll->second["messages"].empty());
  CHECK(Clock::now() - parked >= std::chrono::milliseconds(900));
  CHECK(Clock::now() - parked < std::chrono::seconds(3));
  CHECK(held.wait_for(std::chrono::seconds(0)) == std::future_status::timeout);

  proxy.Release();
  auto answer = held.get();
  REQUIRE(answer);
  CHECK_MESSAGE(answer->first == 201, answer->second.dump());
  auto after = send("after");
  REQUIRE(after);
  CHECK(after->first == 201);
  auto history = Call(relay.url(), token, "GET", "/mesh/" + m.id + "/messages?limit=100");
  REQUIRE(history);
  std::vector<std::string> contents;
  for (const json& msg : history->second["messages"]) contents.push_back(msg["content"]);
  CHECK(contents == std::vector<std::string>{"before", "held", "after"});
}

TEST_CASE("a COMMIT whose answer is lost with the database connection: the send is answered 201 and stored once; one that never reached the database is a 503 that stored nothing") {
  ProxiedRelay fixture;
  auto [proxy, relay, token, m] = fixture.parts();  // references
  auto send = [&fixture](const std::string& content) { return fixture.Send(content); };
  REQUIRE(send("before")->first == 201);

  proxy.CutNext(PgProxy::Cut::kAfterCommit, "answer lost");
  auto lost = send("answer lost");
  REQUIRE(lost);
  CHECK(proxy.cuts() == 1);
  CHECK_MESSAGE(lost->first == 201, lost->second.dump());

  proxy.CutNext(PgProxy::Cut::kBeforeCommit, "never arrived");
  auto refused = send("never arrived");
  REQUIRE(refused);
  CHECK(proxy.cuts() == 2);
  CHECK(refused->first == 503);
  CHECK(refused->second["error"]["message"].get<std::string>().find("nothing was written") != std::string::npos);

  REQUIRE(send("after")->first == 201);
  auto history = Call(relay.url(), token, "GET", "/mesh/" + m.id + "/messages?agent_id=" + m.rx + "&limit=100");
  REQUIRE(history);
  REQUIRE(history->first == 200);
  std::vector<std::string> contents;
  std::vector<std::int64_t> seqs;
  for (const json& msg : history->second["messages"]) {
    contents.push_back(msg["content"]);
    seqs.push_back(msg["seq"]);
  }
  CHECK(contents == std::vector<std::string>{"before", "answer lost", "after"});
  REQUIRE(seqs.size() == 3);
  CHECK(seqs[1] == lost->second["seq"].get<std::int64_t>());  // the 201 gave the stored seq and id
  CHECK(history->second["messages"][1]["id"] == lost->second["id"]);
  CHECK(seqs[2] == seqs[1] + 1);
}

TEST_CASE("sends without idempotency keys while the database restarts: each 201 stored once, each 503 not at all") {
  TwoNodes nodes;
  Mesh m = Setup(*nodes.a, *nodes.b, nodes.token);
  const std::string token = nodes.token;
  const std::string urls[2] = {nodes.a->url(), nodes.b->url()};

  // Per message: how many times it was answered 201, and whether some answer
  // left its fate open (no answer; or a 503 saying so, when the database
  // stayed away longer than a node waits to learn a lost COMMIT's outcome).
  std::mutex mu;
  std::map<std::string, int> created;
  std::set<std::string> open;
  std::atomic<int> refused{0};
  std::atomic<bool> restarted{false};
  std::atomic<int> created_after_restart{0};
  std::vector<std::thread> senders;
  for (int s = 0; s < 8; ++s) {
    senders.emplace_back([&, s] {
      for (int i = 0; i < 30; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(40));
        const std::string content = "s" + std::to_string(s) + "-" + std::to_string(i);
        for (int attempt = 0; attempt < 60; ++attempt) {
          auto r = Call(urls[s % 2], token, "POST", "/mesh/" + m.id + "/messages",
                        {{"from", m.tx}, {"to", "rx"}, {"content", content}}, 30);
          std::lock_guard lock(mu);
          if (r && r->first == 201) {
            ++created[content];
            if (restarted) ++created_after_restart;
            break;
          }
          if (!r || r->first != 503 || r->second.dump().find("unknown") != std::string::npos) {
            open.insert(content);  // its fate is not known: not retried
            break;
          }
          ++refused;  // a 503 that wrote nothing: safe to send again
          std::this_thread::sleep_for(std::chrono::milliseconds(100));
        }
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(600));
  REQUIRE(nodes.pg->Restart());
  restarted = true;
  for (auto& t : senders) t.join();
  MESSAGE(refused.load() << " sends refused with 503 and sent again; " << open.size() << " left open");
  CHECK(refused > 0);  // the restart happened while sending
  CHECK(created_after_restart > 0);

  std::map<std::string, int> stored;
  std::int64_t cursor = 0;
  const auto deadline = Clock::now() + std::chrono::seconds(60);
  while (Clock::now() < deadline) {
    auto r = Call(urls[1], token, "GET",
                  "/mesh/" + m.id + "/messages?agent_id=" + m.rx + "&after=" + std::to_string(cursor) + "&limit=100");
    if (!r || r->first != 200) {
      std::this_thread::sleep_for(std::chrono::milliseconds(250));
      continue;
    }
    if (r->second["messages"].empty()) break;
    for (const json& msg : r->second["messages"]) ++stored[msg["content"].get<std::string>()];
    cursor = r->second["cursor"];
  }
  CHECK(created.size() + open.size() >= 200);
  for (const auto& [content, n] : created) {
    CHECK_MESSAGE(n == 1, content << " answered 201 " << n << " times");
    CHECK_MESSAGE(stored[content] == 1, content << " answered 201, stored " << stored[content] << " times");
  }
  for (const auto& [content, n] : stored) {
    if (!open.count(content)) CHECK_MESSAGE(created.count(content) == 1, content << " stored but never answered 201");
  }
}

}  // namespace meshwire::testing
