// Integration tests of the message semantics (docs/API.md), over real HTTP
// against a relay on a free loopback port. Time is a ManualClock: presence,
// retention and long-poll deadlines move when the test moves it.
#include <doctest/doctest.h>

#include <chrono>
#include <future>
#include <thread>

#include "schemas/mcp_schemas.h"
#include "server/http/http_types.h"
#include "tests/support/raw_client.h"
#include "tests/support/test_relay.h"

namespace meshwire::testing {

namespace {

using nlohmann::json;
using namespace std::chrono_literals;

struct Mesh2 {
  TestRelay relay;
  std::string alice = relay.TokenFor("alice");
  std::string mesh = relay.CreateMesh(alice);
  std::string a = relay.Register(alice, mesh, "agent-a");
  std::string b = relay.Register(alice, mesh, "agent-b");

  std::string Path(const std::string& suffix) { return "/mesh/" + mesh + suffix; }
  HttpAnswer Send(const json& body) { return relay.Post(Path("/messages"), alice, body); }
  HttpAnswer Poll(const std::string& agent, const std::string& query = "") {
    return relay.Get(Path("/messages?agent_id=" + agent + query), alice);
  }
  std::vector<std::string> Contents(const HttpAnswer& answer) {
    std::vector<std::string> out;
    for (const auto& m : answer.json.at("messages")) out.push_back(m.at("content"));
    return out;
  }
  /// Waits (bounded) until the agent shows as listening: its poll is parked.
  bool WaitListening(const std::string& agent) {
    for (int i = 0; i < 500; ++i) {
      HttpAnswer list = relay.Get(Path("/agents"), alice);
      for (const auto& x : list.json.at("agents")) {
        if (x.at("agent_id") == agent && x.at("listening") == true) return true;
      }
      std::this_thread::sleep_for(2ms);
    }
    return false;
  }
};

}  // namespace

TEST_CASE("what a request said is logged on one line, printable, bounded") {
  CHECK(ForLog("/mesh/x\n[error] forged\r") == "/mesh/x\\x0a[error] forged\\x0d");
  CHECK(ForLog("caf\xE9 \\") == "caf\\xe9 \\x5c");
  CHECK(ForLog(std::string(300, 'a')) == std::string(200, 'a') + "...");
}

TEST_CASE("health answers without a token") {
  TestRelay relay;
  HttpAnswer h = relay.Get("/health", "");
  CHECK(h.status == 200);
  CHECK(h.json["status"] == "ok");
  CHECK(h.json["storage"] == "sqlite");
  CHECK(h.json.contains("version"));
  CHECK(h.json.contains("uptime_s"));
  CHECK(h.json.contains("region"));
}

TEST_CASE("send and poll: a direct message and a broadcast, in seq order, with names") {
  Mesh2 t;
  HttpAnswer sent = t.Send({{"from", "agent-a"}, {"to", "agent-b"}, {"content", "hi b"}});
  REQUIRE(sent.status == 201);
  CHECK(sent.json["seq"] == 1);
  CHECK(sent.json["from"] == t.a);
  CHECK(sent.json["from_name"] == "agent-a");
  CHECK(sent.json["to"] == t.b);
  CHECK(sent.json["to_name"] == "agent-b");
  CHECK(sent.json["priority"] == "normal");
  CHECK(t.Send({{"from", t.a}, {"content", "hi all"}, {"priority", "urgent"}}).json["to"] == "all");

  HttpAnswer got = t.Poll(t.b);
  CHECK(got.status == 200);
  CHECK(t.Contents(got) == std::vector<std::string>{"hi b", "hi all"});
  CHECK(got.json["cursor"] == 2);
  CHECK(got.json["messages"][1]["priority"] == "urgent");
  // The sender does not receive its own broadcast.
  CHECK(t.Poll(t.a).json["messages"].empty());
}

TEST_CASE("cursor: after acknowledges; a poll without after resumes from the stored cursor") {
  Mesh2 t;
  for (const char* c : {"1", "2", "3"}) t.Send({{"from", "agent-a"}, {"content", c}});
  // Not acknowledged yet: delivered again (at-least-once).
  CHECK(t.Contents(t.Poll(t.b)).size() == 3);
  CHECK(t.Contents(t.Poll(t.b)).size() == 3);
  // after=2 acknowledges 1 and 2; the stored cursor is now 2.
  CHECK(t.Contents(t.Poll(t.b, "&after=2")) == std::vector<std::string>{"3"});
  CHECK(t.Contents(t.Poll(t.b)) == std::vector<std::string>{"3"});
  // A smaller after replays without moving the stored cursor back.
  CHECK(t.Contents(t.Poll(t.b, "&after=0")).size() == 3);
  CHECK(t.Contents(t.Poll(t.b)) == std::vector<std::string>{"3"});
  // limit
  CHECK(t.Contents(t.Poll(t.b, "&after=0&limit=2")).size() == 2);
}

TEST_CASE("a new agent starts at the latest seq; after=0 replays what is retained") {
  Mesh2 t;
  t.Send({{"from", "agent-a"}, {"content", "before c existed"}});
  std::string c = t.relay.Register(t.alice, t.mesh, "agent-c");
  CHECK(t.Poll(c).json["messages"].empty());
  CHECK(t.Contents(t.Poll(c, "&after=0")) == std::vector<std::string>{"before c existed"});
}

TEST_CASE("an agent that restarts resumes where it acknowledged: nothing lost") {
  Mesh2 t;
  t.Send({{"from", "agent-a"}, {"content", "1"}});
  CHECK(t.Poll(t.b, "&after=0").json["cursor"] == 1);
  t.Poll(t.b, "&after=1");  // acknowledged 1, then the agent goes away
  t.Send({{"from", "agent-a"}, {"content", "2 while offline"}});
  // Re-registering the same name gives the same agent and its cursor.
  HttpAnswer again = t.relay.Post(t.Path("/agents"), t.alice, {{"name", "agent-b"}});
  CHECK(again.status == 200);
  CHECK(again.json["agent_id"] == t.b);
  CHECK(t.Contents(t.Poll(t.b)) == std::vector<std::string>{"2 while offline"});
}

TEST_CASE("two processes of one agent passing their own after each receive everything") {
  Mesh2 t;
  t.Send({{"from", "agent-a"}, {"content", "1"}});
  t.Send({{"from", "agent-a"}, {"content", "2"}});
  CHECK(t.Contents(t.Poll(t.b, "&after=0")).size() == 2);  // process 1
  CHECK(t.Contents(t.Poll(t.b, "&after=2")).empty());     // process 1 acknowledges
  CHECK(t.Contents(t.Poll(t.b, "&after=0")).size() == 2);  // process 2 still gets both
}

TEST_CASE("an after beyond the newest message stops there (polls and history): the cursor says so, nothing later is skipped") {
  Mesh2 t;
  for (const char* c : {"1", "2"}) t.Send({{"from", "agent-a"}, {"content", c}});
  HttpAnswer past = t.Poll(t.b, "&after=1000");
  CHECK(past.json["messages"].empty());
  CHECK(past.json["cursor"] == 2);
  // A client that goes on from that cursor gets what comes next.
  t.Send({{"from", "agent-a"}, {"content", "3"}});
  CHECK(t.Contents(t.Poll(t.b, "&after=" + past.json["cursor"].dump())) == std::vector<std::string>{"3"});
  // A parked poll from beyond the newest wakes on the next message too.
  auto poll = std::async(std::launch::async, [&] { return t.Poll(t.b, "&after=5000&wait=30"); });
  REQUIRE(t.WaitListening(t.b));
  t.Send({{"from", "agent-a"}, {"to", "agent-b"}, {"content", "4"}});
  HttpAnswer woken = poll.get();
  CHECK(t.Contents(woken) == std::vector<std::string>{"4"});
  CHECK(woken.json["cursor"] == 4);
  // A history read from beyond the newest, too: its cursor is the newest
  // seq, and the next page from it has what came since.
  HttpAnswer history = t.relay.Get(t.Path("/messages?after=1000"), t.alice);
  CHECK(history.json["messages"].empty());
  CHECK(history.json["cursor"] == 4);
  CHECK(t.relay.Get(t.Path("/messages?after=3"), t.alice).json["cursor"] == 4);  // a page that has some
  CHECK(t.relay.Get(t.Path("/messages?after=4"), t.alice).json["cursor"] == 4);  // nothing past the newest
  t.Send({{"from", "agent-a"}, {"content", "5"}});
  CHECK(t.Contents(t.relay.Get(t.Path("/messages?after=" + history.json["cursor"].dump()), t.alice)) ==
        std::vector<std::string>{"5"});
}

TEST_CASE("long-poll: a parked poll is woken by a send to it") {
  Mesh2 t;
  auto poll = std::async(std::launch::async, [&] { return t.Poll(t.b, "&wait=30"); });
  REQUIRE(t.WaitListening(t.b));
  auto started = std::chrono::steady_clock::now();
  t.Send({{"from", "agent-a"}, {"to", "agent-b"}, {"content", "wake up"}});
  HttpAnswer got = poll.get();
  CHECK(std::chrono::steady_clock::now() - started < 5s);
  CHECK(t.Contents(got) == std::vector<std::string>{"wake up"});
}

TEST_CASE("long-poll: deleting the agent answers its parked poll at once, 404") {
  Mesh2 t;
  auto poll = std::async(std::launch::async, [&] { return t.Poll(t.b, "&wait=30"); });
  REQUIRE(t.WaitListening(t.b));
  CHECK(t.relay.Call("DELETE", t.Path("/agents/" + t.b), t.alice).status == 204);
  REQUIRE(poll.wait_for(5s) == std::future_status::ready);  // the clock does not move: not its deadline
  HttpAnswer got = poll.get();
  CHECK(got.status == 404);
  CHECK(got.json["error"]["code"] == "agent_not_found");
}

TEST_CASE("long-poll: a message to someone else does not answer the poll") {
  Mesh2 t;
  std::string c = t.relay.Register(t.alice, t.mesh, "agent-c");
  auto poll = std::async(std::launch::async, [&] { return t.Poll(t.b, "&wait=30"); });
  REQUIRE(t.WaitListening(t.b));
  t.Send({{"from", "agent-a"}, {"to", "agent-c"}, {"content", "for c"}});
  CHECK(poll.wait_for(100ms) == std::future_status::timeout);
  t.Send({{"from", "agent-a"}, {"to", "agent-b"}, {"content", "for b"}});
  CHECK(t.Contents(poll.get()) == std::vector<std::string>{"for b"});
}

TEST_CASE("long-poll: on timeout the answer is an empty list, not an error") {
  Mesh2 t;
  auto poll = std::async(std::launch::async, [&] { return t.Poll(t.b, "&wait=30"); });
  REQUIRE(t.WaitListening(t.b));
  t.relay.Advance(30000);
  HttpAnswer got = poll.get();
  CHECK(got.status == 200);
  CHECK(got.json["messages"].empty());
  CHECK(got.json["cursor"] == 0);
}

TEST_CASE("long-poll: a client that hangs up ends its wait, and nothing is marked fetched") {
  Mesh2 t;
  RawClient client(t.relay.port());
  client.Send("GET " + t.Path("/messages?agent_id=" + t.b + "&wait=60") +
              " HTTP/1.1\r\nHost: relay\r\nAuthorization: Bearer " + t.alice + "\r\n\r\n");
  REQUIRE(t.WaitListening(t.b));
  client.Close();
  // The relay watches the socket of a waiting request: the FIN ends the wait at once.
  for (int i = 0; i < 2500 && t.relay.relay().waiters().Parked() > 0; ++i) {
    std::this_thread::sleep_for(2ms);
  }
  CHECK(t.relay.relay().waiters().Parked() == 0);
  CHECK_FALSE(t.relay.relay().waiters().IsListening(t.b));

  HttpAnswer sent = t.Send({{"from", "agent-a"}, {"to", "agent-b"}, {"content", "still there?"}});
  HttpAnswer receipt =
      t.relay.Get(t.Path("/messages/" + sent.json["id"].get<std::string>()), t.alice);
  CHECK(receipt.json["delivery"][0]["state"] == "queued");
  CHECK(t.Contents(t.Poll(t.b)) == std::vector<std::string>{"still there?"});  // nothing lost
}

TEST_CASE("long-poll: a connected client's wait goes on, even with a pipelined request behind it") {
  Mesh2 t;
  auto poll = std::async(std::launch::async, [&] { return t.Poll(t.b, "&wait=30"); });
  REQUIRE(t.WaitListening(t.b));
  CHECK(poll.wait_for(50ms) == std::future_status::timeout);
  // A raw client that sends a second request while its first one waits.
  const std::string health = "GET /health HTTP/1.1\r\nHost: relay\r\n\r\n";
  RawClient client(t.relay.port());
  client.Send("GET " + t.Path("/messages?agent_id=" + t.a + "&wait=30") +
              " HTTP/1.1\r\nHost: relay\r\nAuthorization: Bearer " + t.alice + "\r\n\r\n" + health);
  REQUIRE(t.WaitListening(t.a));
  std::this_thread::sleep_for(300ms);  // past the watch's look at unread data
  CHECK(t.relay.relay().waiters().IsListening(t.a));
  client.Close();
  t.Send({{"from", "agent-a"}, {"to", "agent-b"}, {"content", "for b"}});
  CHECK(t.Contents(poll.get()) == std::vector<std::string>{"for b"});
}

TEST_CASE("an answer larger than the socket takes at once arrives whole, and the connection serves the next request") {
  Mesh2 t;
  const std::string content(10000, 'x');
  // 5 MB: more than a socket's send buffer grows to (4 MiB here).
  for (int i = 0; i < 500; ++i) REQUIRE(t.Send({{"from", "agent-a"}, {"content", content}}).status == 201);
  RawClient client(t.relay.port());
  const std::string auth = "Authorization: Bearer " + t.alice + "\r\n";
  client.Send("GET " + t.Path("/messages?limit=1000") + " HTTP/1.1\r\nHost: relay\r\n" + auth + "\r\n");
  std::this_thread::sleep_for(200ms);  // a client that reads late: the rest waits in the relay for room
  const std::string history = client.ReadAnswer(10s);
  REQUIRE(history.find("\r\n\r\n") != std::string::npos);
  json body = json::parse(history.substr(history.find("\r\n\r\n") + 4), nullptr, false);
  REQUIRE(body.is_object());
  CHECK(body["messages"].size() == 500);
  CHECK(body["cursor"] == 500);
  client.Send("GET /health HTTP/1.1\r\nHost: relay\r\n\r\n");
  CHECK(client.ReadAnswer(5s).find("\"status\":\"ok\"") != std::string::npos);
}

TEST_CASE("requests pipelined in one segment, and a body that comes after its header, are answered in order") {
  Mesh2 t;
  RawClient client(t.relay.port());
  const std::string auth = "Authorization: Bearer " + t.alice + "\r\n";
  const std::string body = R"({"from":"agent-a","to":"agent-b","content":"one"})";
  const std::string send = "POST " + t.Path("/messages") + " HTTP/1.1\r\nHost: relay\r\n" + auth +
                           "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
                           "\r\n\r\n";
  // Three requests in one write: each is parsed from what the first read brought.
  client.Send(send + body + "GET /health HTTP/1.1\r\nHost: relay\r\n\r\n" + send + body);
  CHECK(client.WaitFor("\"status\":\"ok\""));
  CHECK(client.WaitFor("\"seq\":2"));
  const std::string answers = client.text();
  CHECK(answers.find("\"seq\":1") < answers.find("\"status\":\"ok\""));
  CHECK(answers.find("\"status\":\"ok\"") < answers.find("\"seq\":2"));
  CHECK(client.Count("HTTP/1.1 201") == 2);
  // A header now, its body later: the relay waits for the body, then answers.
  client.ReadAnswer(100ms);
  client.Send(send);
  std::this_thread::sleep_for(100ms);
  CHECK(client.text().empty());
  client.Send(body);
  CHECK(client.WaitFor("\"seq\":3"));
  CHECK(t.Contents(t.Poll(t.b, "&after=0")) == std::vector<std::string>{"one", "one", "one"});
}

TEST_CASE("keep-alive: a connection idle for the idle timeout is closed; one in use is not") {
  RelayOptions options;
  options.idle_timeout_ms = 1000;  // the busy one's 100 ms gaps stay far under it on a loaded machine
  TestRelay relay(options);
  const auto started = std::chrono::steady_clock::now();
  RawClient silent(relay.port());  // never sends a byte
  RawClient idle(relay.port());    // one request, then nothing
  RawClient busy(relay.port());    // a request every 100 ms
  idle.Send("GET /health HTTP/1.1\r\nHost: relay\r\n\r\n");
  REQUIRE(idle.WaitFor("\"status\":\"ok\""));
  for (int i = 0; i < 30; ++i) {  // 3 s: three idle timeouts
    busy.Send("GET /health HTTP/1.1\r\nHost: relay\r\n\r\n");
    REQUIRE(busy.WaitFor("\"status\":\"ok\""));
    busy.ReadAnswer(1ms);
    std::this_thread::sleep_for(100ms);
  }
  CHECK(silent.ClosedByRelay(3s));
  CHECK(idle.ClosedByRelay(3s));
  CHECK(std::chrono::steady_clock::now() - started >= 1000ms);
  busy.Send("GET /health HTTP/1.1\r\nHost: relay\r\n\r\n");
  CHECK(busy.WaitFor("\"status\":\"ok\""));
}

TEST_CASE("shutdown answers parked polls with what they have") {
  auto t = std::make_unique<Mesh2>();
  auto poll = std::async(std::launch::async, [&] { return t->Poll(t->b, "&wait=60"); });
  REQUIRE(t->WaitListening(t->b));
  t->relay.relay().Stop();
  HttpAnswer got = poll.get();
  CHECK(got.status == 200);
  CHECK(got.json["messages"].empty());
}

TEST_CASE("reply: goes to the original sender with metadata.reply_to") {
  Mesh2 t;
  std::string c = t.relay.Register(t.alice, t.mesh, "agent-c");
  HttpAnswer q = t.Send({{"from", "agent-a"}, {"content", "who is there?"}, {"metadata", {{"k", 1}}}});
  std::string qid = q.json["id"];
  HttpAnswer r = t.relay.Post(t.Path("/messages/" + qid + "/reply"), t.alice,
                              {{"from", "agent-b"}, {"content", "b here"}, {"priority", "high"}});
  REQUIRE(r.status == 201);
  CHECK(r.json["priority"] == "high");
  CHECK(r.json["to"] == t.a);
  CHECK(r.json["metadata"]["reply_to"] == qid);
  HttpAnswer got = t.Poll(t.a);
  REQUIRE(got.json["messages"].size() == 1);
  CHECK(got.json["messages"][0]["metadata"]["reply_to"] == qid);
  CHECK(t.Poll(c).json["messages"].size() == 1);  // c got only the broadcast
  // reply_to on a plain send, and the sender's metadata kept beside it.
  HttpAnswer s = t.Send({{"from", "agent-c"}, {"to", "agent-a"}, {"content", "me too"},
                         {"reply_to", qid}, {"metadata", {{"trace", "x"}}}});
  CHECK(s.json["metadata"] == json({{"reply_to", qid}, {"trace", "x"}}));
  // metadata.reply_to naming a real message of the mesh is kept as given.
  HttpAnswer linked = t.Send({{"from", "agent-c"}, {"content", "also"}, {"metadata", {{"reply_to", qid}}}});
  CHECK(linked.status == 201);
  CHECK(linked.json["metadata"]["reply_to"] == qid);
  // Both, naming the same message: as one.
  HttpAnswer both = t.Send({{"from", "agent-c"}, {"content", "and"}, {"reply_to", qid}, {"metadata", {{"reply_to", qid}}}});
  CHECK(both.status == 201);
  CHECK(both.json["metadata"] == json({{"reply_to", qid}}));
}

TEST_CASE("reply: an idempotency key makes a retried reply store nothing new") {
  Mesh2 t;
  std::string qid = t.Send({{"from", "agent-a"}, {"to", "agent-b"}, {"content", "question"}}).json["id"];
  json body = {{"from", "agent-b"}, {"content", "answer"}, {"idempotency_key", "r-1"}};
  HttpAnswer first = t.relay.Post(t.Path("/messages/" + qid + "/reply"), t.alice, body);
  HttpAnswer again = t.relay.Post(t.Path("/messages/" + qid + "/reply"), t.alice, body);
  REQUIRE(first.status == 201);
  CHECK(again.status == 201);
  CHECK(again.json["id"] == first.json["id"]);
  CHECK(t.Contents(t.Poll(t.a, "&after=0")) == std::vector<std::string>{"answer"});
  body["idempotency_key"] = "";
  CHECK(t.relay.Post(t.Path("/messages/" + qid + "/reply"), t.alice, body).status == 400);
}

TEST_CASE("HEAD changes nothing: refused (405) where a GET acknowledges or streams, a bodiless GET elsewhere") {
  Mesh2 t;
  std::string id = t.Send({{"from", "agent-a"}, {"to", "agent-b"}, {"content", "keep me"}}).json["id"];
  auto allow = [](const HttpAnswer& a) {
    auto it = a.headers.find("Allow");
    return it == a.headers.end() ? std::string("(none)") : it->second;
  };
  // A probe or link checker must not take agent-b's message nor fake its receipt.
  HttpAnswer poll = t.relay.Call("HEAD", t.Path("/messages?agent_id=" + t.b), t.alice);
  CHECK(poll.status == 405);
  CHECK(poll.body.empty());
  CHECK(allow(poll) == "POST, GET");
  HttpAnswer events = t.relay.Call("HEAD", t.Path("/events"), t.alice);
  CHECK(events.status == 405);
  CHECK(allow(events) == "GET");
  CHECK(t.relay.Call("HEAD", t.Path("/mcp"), t.alice).status == 405);
  CHECK(t.relay.Call("HEAD", "/auth/cli?port=5000&state=s", "").status == 405);
  CHECK(t.relay.Call("HEAD", "/auth/web", "").status == 405);
  CHECK(t.relay.Call("HEAD", "/auth/github/callback?code=c&state=s", "").status == 405);
  HttpAnswer receipt = t.relay.Get(t.Path("/messages/" + id), t.alice);
  REQUIRE(receipt.json["delivery"].size() == 1);
  CHECK(receipt.json["delivery"][0]["state"] == "queued");
  CHECK(t.Contents(t.Poll(t.b)) == std::vector<std::string>{"keep me"});
  // A GET that changes nothing answers HEAD, and a 405 names HEAD where it is served.
  HttpAnswer agents = t.relay.Call("HEAD", t.Path("/agents"), t.alice);
  CHECK(agents.status == 200);
  CHECK(agents.body.empty());
  HttpAnswer post_health = t.relay.Call("POST", "/health", "");
  CHECK(post_health.status == 405);
  CHECK(allow(post_health) == "GET, HEAD");
}

TEST_CASE("a 401 names the scheme it wants (RFC 6750): WWW-Authenticate: Bearer") {
  Mesh2 t;
  for (const std::string& token : {std::string(), std::string("mw_unknown")}) {
    HttpAnswer a = t.relay.Get(t.Path("/agents"), token);
    CHECK(a.status == 401);
    auto it = a.headers.find("WWW-Authenticate");
    REQUIRE(it != a.headers.end());
    CHECK(it->second == "Bearer realm=\"meshwire\"");
  }
}

TEST_CASE("idempotency key: a repeated send returns the first message and stores nothing") {
  Mesh2 t;
  json body = {{"from", "agent-a"}, {"content", "once"}, {"idempotency_key", "k-1"}};
  HttpAnswer first = t.Send(body);
  HttpAnswer second = t.Send(body);
  CHECK(first.status == 201);
  CHECK(second.status == 201);
  CHECK(second.json["id"] == first.json["id"]);
  CHECK(t.relay.Get(t.Path("/messages"), t.alice).json["messages"].size() == 1);
}

TEST_CASE("delivery receipts: queued, then fetched, then acked, with times") {
  Mesh2 t;
  std::string c = t.relay.Register(t.alice, t.mesh, "agent-c");
  std::string id = t.Send({{"from", "agent-a"}, {"content", "track me"}}).json["id"];
  auto receipts = [&] { return t.relay.Get(t.Path("/messages/" + id), t.alice).json; };
  json r = receipts();
  CHECK(r["content"] == "track me");
  REQUIRE(r["delivery"].size() == 2);
  CHECK(r["delivery"][0]["name"] == "agent-b");
  CHECK(r["delivery"][0]["state"] == "queued");
  CHECK(r["delivery"][0]["fetched_at"].is_null());

  t.relay.clock().Advance(1000);
  std::int64_t seq = t.Poll(t.b).json["cursor"];
  t.Poll(c, "&after=0");
  t.Poll(c, "&after=" + std::to_string(seq));
  r = receipts();  // at once: what a poll returned shows as fetched
  CHECK(r["delivery"][0]["state"] == "fetched");
  CHECK(r["delivery"][0]["fetched_at"].is_string());
  CHECK(r["delivery"][0]["acked_at"].is_null());
  CHECK(r["delivery"][1]["name"] == "agent-c");
  CHECK(r["delivery"][1]["state"] == "acked");
  CHECK(r["delivery"][1]["acked_at"].is_string());
}

TEST_CASE("presence: active, idle, offline on the injected clock; listening while parked") {
  Mesh2 t;
  auto status_of = [&](const std::string& name) {
    HttpAnswer list = t.relay.Get(t.Path("/agents"), t.alice);
    for (const auto& x : list.json["agents"]) {
      if (x["name"] == name) return x["status"].get<std::string>();
    }
    return std::string("missing");
  };
  CHECK(status_of("agent-a") == "active");
  t.relay.clock().Advance(61 * 1000);
  CHECK(status_of("agent-a") == "idle");
  CHECK(t.relay.Get(t.Path(""), t.alice).json["agents"] == json({{"registered", 2}, {"active", 0}}));
  t.relay.Call("POST", t.Path("/agents/agent-a/heartbeat"), t.alice);
  CHECK(status_of("agent-a") == "active");
  CHECK(status_of("agent-b") == "idle");
  t.relay.clock().Advance(3600 * 1000);
  CHECK(status_of("agent-b") == "offline");
}

TEST_CASE("retention: an agent unseen for the retention period is removed, and what only it needed") {
  Mesh2 t;
  t.Send({{"from", "agent-a"}, {"to", "agent-b"}, {"content", "b never reads this"}});
  const Millis day = 24LL * 3600 * 1000;
  t.relay.clock().Advance(6 * day);
  t.relay.Call("POST", t.Path("/agents/agent-a/heartbeat"), t.alice);
  SweepResult kept = t.relay.relay().service().Sweep();
  CHECK(kept.agents_removed == 0);
  CHECK(t.relay.Get(t.Path("/messages"), t.alice).json["messages"].size() == 1);
  t.relay.clock().Advance(day + 1);
  t.relay.Call("POST", t.Path("/agents/agent-a/heartbeat"), t.alice);
  SweepResult swept = t.relay.relay().service().Sweep();
  CHECK(swept.agents_removed == 1);
  CHECK(swept.messages_purged == 1);
  CHECK(t.relay.Get(t.Path("/agents"), t.alice).json["agents"].size() == 1);
  CHECK(t.relay.Get(t.Path("/messages"), t.alice).json["messages"].empty());
}

TEST_CASE("members may use a shared mesh; tokens scoped to a mesh work there") {
  Mesh2 t;
  std::string bob = t.relay.TokenFor("bob");
  CHECK(t.relay.Get(t.Path(""), bob).status == 403);
  CHECK(t.relay.Post(t.Path("/members"), t.alice, {{"user", "bob"}}).status == 201);
  CHECK(t.relay.Get(t.Path("/members"), bob).json["members"].size() == 2);
  std::string bobs = t.relay.Register(bob, t.mesh, "bob-agent");
  CHECK(t.relay.Post(t.Path("/messages"), bob, {{"from", "bob-agent"}, {"content", "hi"}}).status == 201);
  CHECK(t.Contents(t.Poll(t.a)) == std::vector<std::string>{"hi"});
  CHECK(t.relay.Get("/mesh", bob).json["meshes"].size() == 1);

  HttpAnswer scoped = t.relay.Post("/tokens", t.alice, {{"name", "ci"}, {"mesh_id", t.mesh}});
  REQUIRE(scoped.status == 201);
  std::string token = scoped.json["token"];
  CHECK(token.rfind("mw_", 0) == 0);
  CHECK(t.relay.Get(t.Path("/agents"), token).status == 200);
  HttpAnswer listed = t.relay.Get("/tokens", t.alice);
  CHECK(listed.json["tokens"].size() == 2);
  for (const auto& tok : listed.json["tokens"]) CHECK_FALSE(tok.contains("token"));  // never again

  // bob's own token scoped to the mesh, and one scoped to a mesh of his own.
  HttpAnswer bob_ci = t.relay.Post("/tokens", bob, {{"name", "bob-ci"}, {"mesh_id", t.mesh}});
  REQUIRE(bob_ci.status == 201);
  const std::string bob_ci_token = bob_ci.json["token"];
  const std::string bobs_mesh = t.relay.CreateMesh(bob, "bobs");
  HttpAnswer bob_own = t.relay.Post("/tokens", bob, {{"name", "bob-own"}, {"mesh_id", bobs_mesh}});
  REQUIRE(bob_own.status == 201);
  CHECK(t.relay.Get(t.Path("/agents"), bob_ci_token).status == 200);

  CHECK(t.relay.Call("DELETE", t.Path("/members/bob"), t.alice).status == 204);
  CHECK(t.relay.Get(t.Path(""), bob).status == 403);
  // Removal revoked bob's token scoped to the mesh (not his others): adding him again
  // does not bring it back, as a leaked CI token would come back.
  const HttpAnswer listed_after = t.relay.Get("/tokens", bob);
  std::vector<std::string> bobs_tokens;
  for (const auto& tok : listed_after.json["tokens"]) bobs_tokens.push_back(tok["name"].get<std::string>());
  std::sort(bobs_tokens.begin(), bobs_tokens.end());
  CHECK_MESSAGE(bobs_tokens == std::vector<std::string>({"bob-own", "test"}), listed_after.body);
  CHECK(t.relay.Post(t.Path("/members"), t.alice, {{"user", "bob"}}).status == 201);
  CHECK(t.relay.Get(t.Path("/agents"), bob_ci_token).status == 401);
  CHECK(t.relay.Get(t.Path("/agents"), bob).status == 200);
  CHECK(t.relay.Get("/mesh/" + bobs_mesh, std::string(bob_own.json["token"])).status == 200);
}

TEST_CASE("user names ignore case: adding OCTOCAT shares the mesh with octocat; removing Octocat removes them") {
  Mesh2 t;
  const std::string octocat = t.relay.TokenFor("octocat");
  HttpAnswer added = t.relay.Post(t.Path("/members"), t.alice, {{"user", "OCTOCAT"}});
  REQUIRE(added.status == 201);
  CHECK(added.json ==
        json::parse(R"({"user":"octocat","role":"member","new_user":false})"));  // as stored, as listed
  CHECK(t.relay.Get(t.Path(""), octocat).status == 200);
  HttpAnswer members = t.relay.Get(t.Path("/members"), t.alice);
  CHECK(members.json["members"] == json::parse(R"([{"user":"alice","role":"owner"},{"user":"octocat","role":"member"}])"));
  CHECK(t.relay.Post(t.Path("/members"), t.alice, {{"user", "Alice"}}).status == 409);  // the owner, spelled otherwise
  CHECK(t.relay.Call("DELETE", t.Path("/members/Octocat"), t.alice).status == 204);
  CHECK(t.relay.Get(t.Path(""), octocat).status == 403);
  // A user not known yet keeps the spelling given, is said to be new (a
  // typo looks the same), and later spellings find it.
  CHECK(t.relay.Post(t.Path("/members"), t.alice, {{"user", "NewPerson"}}).json ==
        json::parse(R"({"user":"NewPerson","role":"member","new_user":true})"));
  CHECK(t.relay.Get(t.Path(""), t.relay.TokenFor("newperson")).status == 200);
  CHECK(t.relay.Post(t.Path("/members"), t.alice, {{"user", "newperson"}}).json["new_user"] == false);  // again
  // A misspelling removed is forgotten: added again, it is said to be new again.
  CHECK(t.relay.Post(t.Path("/members"), t.alice, {{"user", "Octocta"}}).json["new_user"] == true);
  CHECK(t.relay.Call("DELETE", t.Path("/members/Octocta"), t.alice).status == 204);
  CHECK(t.relay.Post(t.Path("/members"), t.alice, {{"user", "Octocta"}}).json["new_user"] == true);
}

TEST_CASE("a revoked token's parked polls and a removed member's answer at once, not at their deadline") {
  Mesh2 t;
  std::string bob = t.relay.TokenFor("bob");
  REQUIRE(t.relay.Post(t.Path("/members"), t.alice, {{"user", "bob"}}).status == 201);
  std::string bobs = t.relay.Register(bob, t.mesh, "bob-agent");
  HttpAnswer scoped = t.relay.Post("/tokens", t.alice, {{"name", "ci"}, {"mesh_id", t.mesh}});
  REQUIRE(scoped.status == 201);
  const std::string ci = scoped.json["token"], ci_id = scoped.json["id"];

  // Parked for 30 s on a clock that does not move: only the change can end them.
  auto by_ci = std::async(std::launch::async, [&] {
    return t.relay.Get(t.Path("/messages?agent_id=" + t.a + "&wait=30"), ci);
  });
  auto by_alice = std::async(std::launch::async, [&] { return t.Poll(t.b, "&wait=30"); });
  auto by_bob = std::async(std::launch::async, [&] {
    return t.relay.Get(t.Path("/messages?agent_id=" + bobs + "&wait=30"), bob);
  });
  REQUIRE(t.WaitListening(t.a));
  REQUIRE(t.WaitListening(t.b));
  REQUIRE(t.WaitListening(bobs));

  CHECK(t.relay.Call("DELETE", "/tokens/" + ci_id, t.alice).status == 204);
  REQUIRE(by_ci.wait_for(5s) == std::future_status::ready);
  HttpAnswer revoked = by_ci.get();
  CHECK(revoked.status == 401);
  CHECK(revoked.json["error"]["code"] == "unauthorized");

  CHECK(t.relay.Call("DELETE", t.Path("/members/bob"), t.alice).status == 204);
  REQUIRE(by_bob.wait_for(5s) == std::future_status::ready);
  CHECK(by_bob.get().status == 403);

  // Alice's own poll, with her own token, waits on.
  CHECK(by_alice.wait_for(300ms) == std::future_status::timeout);
  REQUIRE(t.Send({{"from", "agent-a"}, {"to", "agent-b"}, {"content", "still here"}}).status == 201);
  REQUIRE(by_alice.wait_for(5s) == std::future_status::ready);
  HttpAnswer still = by_alice.get();
  CHECK(still.status == 200);
  CHECK(t.Contents(still) == std::vector<std::string>{"still here"});
}

TEST_CASE("GET / (the relay's URL opened in a browser) says what the relay is and where its tasks are done") {
  TestRelay relay;
  HttpAnswer root = relay.Get("/", "");
  CHECK(root.status == 404);
  CHECK(root.json["error"]["code"] == "not_found");
  const std::string message = root.json["error"]["message"];
  CHECK(message.rfind("No route GET /: this is a meshwire relay", 0) == 0);
  CHECK(message.find("/dashboard") != std::string::npos);
  // A browser is sent to the dashboard, whose files need no token and load nothing from elsewhere.
  httplib::Client browser("127.0.0.1", relay.port());
  auto page = browser.Get("/", {{"Accept", "text/html,application/xhtml+xml,*/*;q=0.8"}});
  REQUIRE(page);
  CHECK(page->status == 302);
  CHECK(page->get_header_value("Location") == "/dashboard");
  for (const char* file : {"/dashboard", "/dashboard/app.js", "/dashboard/app.css"}) {
    auto got = browser.Get(file);
    REQUIRE(got);
    CHECK(got->status == 200);
    CHECK(got->get_header_value("Content-Security-Policy").find("default-src 'none'; script-src 'self';") == 0);
    CHECK(got->get_header_value("X-Content-Type-Options") == "nosniff");
  }
  CHECK(browser.Get("/dashboard")->body.find("<script type=\"module\" src=\"/dashboard/app.js\">") !=
        std::string::npos);
  CHECK(message.find("meshwire login --url URL") != std::string::npos);
  CHECK(message.find("meshwire token create") != std::string::npos);
}

TEST_CASE("GET /mesh/{mesh} says its newest message's seq (where a dashboard's replay of the last N starts)") {
  Mesh2 t;
  CHECK(t.relay.Get(t.Path(""), t.alice).json["newest_seq"] == 0);  // no message yet
  REQUIRE(t.relay.Post(t.Path("/messages"), t.alice, {{"from", "agent-a"}, {"content", "one"}}).status == 201);
  REQUIRE(t.relay.Post(t.Path("/messages"), t.alice, {{"from", "agent-a"}, {"content", "two"}}).status == 201);
  CHECK(t.relay.Get(t.Path(""), t.alice).json["newest_seq"] == 2);
}

TEST_CASE("integrate: a markdown guide for the mesh with its id and URL") {
  Mesh2 t;
  HttpAnswer g = t.relay.Get(t.Path("/integrate"), t.alice);
  CHECK(g.status == 200);
  CHECK(g.headers.find("Content-Type")->second.find("text/markdown") == 0);
  CHECK(g.body.find(t.mesh) != std::string::npos);
  CHECK(g.body.find("127.0.0.1:" + std::to_string(t.relay.port())) != std::string::npos);
  CHECK(g.body.find("meshwire_send_message") != std::string::npos);
  CHECK(g.body.find(t.alice) == std::string::npos);  // never the caller's token
  // The hand-written entries are those init writes (harness_test checks init's):
  // user-wide files give defaults, Codex and Gemini are told to pass the token on.
  CHECK(g.body.find(R"("--default-mesh", ")" + t.mesh + R"(", "--default-name", "claude-agent"])") != std::string::npos);
  CHECK(g.body.find(R"(env_vars = ["MESHWIRE_TOKEN", "MESHWIRE_HOME", "MESHWIRE_CA_FILE"])") != std::string::npos);
  CHECK(g.body.find(R"("MESHWIRE_TOKEN": "$MESHWIRE_TOKEN")") != std::string::npos);
  CHECK(g.body.find("/mesh/" + t.mesh + "/mcp?agent=NAME") != std::string::npos);

  // The tools' schemas in the guide are the ones `meshwire mcp` serves.
  const auto at = g.body.find("Their input schemas:\n\n```json\n");
  REQUIRE(at != std::string::npos);
  const auto from = g.body.find('[', at);
  const auto to = g.body.find("\n```", from);
  json listed = json::parse(g.body.substr(from, to - from));
  const json& served = McpToolDefinitions();
  REQUIRE(listed.size() == served.size());
  for (std::size_t i = 0; i < served.size(); ++i) {
    CHECK(listed[i]["name"] == served[i]["name"]);
    CHECK(listed[i]["inputSchema"] == served[i]["inputSchema"]);
  }
}

TEST_CASE("deleting a mesh removes it for everyone, and the tokens scoped to it") {
  Mesh2 t;
  auto parked = std::async(std::launch::async, [&] { return t.Poll(t.b, "&wait=30"); });
  REQUIRE(t.WaitListening(t.b));
  HttpAnswer scoped = t.relay.Post("/tokens", t.alice, {{"name", "ci"}, {"mesh_id", t.mesh}});
  REQUIRE(scoped.status == 201);
  const std::string ci = scoped.json["token"];
  CHECK(t.relay.Get("/mesh", ci).status == 200);  // used once: cached by the relay
  CHECK(t.relay.Call("DELETE", t.Path(""), t.alice).status == 204);
  HttpAnswer gone = t.relay.Get(t.Path(""), t.alice);
  CHECK(gone.status == 404);
  CHECK(gone.json["error"]["code"] == "mesh_not_found");
  // The parked poll answers at once (the clock does not move: not its deadline).
  REQUIRE(parked.wait_for(5s) == std::future_status::ready);
  CHECK(parked.get().status == 404);
  CHECK(t.relay.Get("/mesh", ci).status == 401);
  HttpAnswer tokens = t.relay.Get("/tokens", t.alice);
  CHECK(tokens.json["tokens"].size() == 1);  // alice's own, not the scoped one
}

}  // namespace meshwire::testing
