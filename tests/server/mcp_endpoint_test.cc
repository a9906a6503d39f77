// The relay's MCP endpoint over real HTTP, on the injected clock: idle
// sessions end, a token's sessions are capped (the least recently used goes),
// and shutdown answers a waiting call. The protocol itself is tested with the
// official SDK client in tests/js/mcp_http.test.mjs.
#include <doctest/doctest.h>

#include <future>
#include <thread>

#include "server/http/mcp_endpoint.h"
#include "tests/support/raw_client.h"
#include "tests/support/test_relay.h"

namespace meshwire::testing {

namespace {

using nlohmann::json;
using namespace std::chrono_literals;

struct McpFixture {
  TestRelay relay;
  std::string alice = relay.TokenFor("alice");
  std::string mesh = relay.CreateMesh(alice);

  /// POSTs one JSON-RPC message to the endpoint; `session` empty: none sent.
  HttpAnswer Post(const json& message, const std::string& session = "", const std::string& agent = "a") {
    httplib::Client client("127.0.0.1", relay.port());
    client.set_read_timeout(60, 0);
    httplib::Headers headers = {{"Authorization", "Bearer " + alice},
                                {"Accept", "application/json, text/event-stream"}};
    if (!session.empty()) headers.emplace("Mcp-Session-Id", session);
    auto r = client.Post("/mesh/" + mesh + "/mcp?agent=" + agent, headers, message.dump(), "application/json");
    HttpAnswer a;
    if (!r) return a;
    a.status = r->status;
    a.body = r->body;
    a.headers = r->headers;
    a.json = json::parse(r->body, nullptr, false);
    return a;
  }
  /// A new session's id.
  std::string Initialize(const std::string& agent = "a") {
    HttpAnswer a = Post({{"jsonrpc", "2.0"},
                         {"id", 1},
                         {"method", "initialize"},
                         {"params", {{"protocolVersion", "2025-11-25"}, {"capabilities", json::object()},
                                     {"clientInfo", {{"name", "t"}, {"version", "1"}}}}}},
                        "", agent);
    REQUIRE(a.status == 200);
    auto it = a.headers.find("Mcp-Session-Id");
    REQUIRE(it != a.headers.end());
    return it->second;
  }
  /// POSTs one JSON-RPC message on a raw connection and half-closes it (the
  /// client's side is done sending), as some HTTP clients do.
  std::unique_ptr<RawClient> PostHalfClosed(const json& message, const std::string& session) {
    auto c = std::make_unique<RawClient>(relay.port());
    const std::string body = message.dump();
    REQUIRE(c->Send("POST /mesh/" + mesh + "/mcp?agent=a HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " +
                    alice + "\r\nAccept: application/json, text/event-stream\r\nMcp-Session-Id: " + session +
                    "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
                    "\r\n\r\n" + body));
    ::shutdown(c->fd(), SHUT_WR);
    return c;
  }
  bool Listening() {
    HttpAnswer list = relay.Get("/mesh/" + mesh + "/agents", alice);
    bool listening = false;
    for (const auto& a : list.json.at("agents")) listening = listening || a.at("listening") == true;
    return listening;
  }
  int Ping(const std::string& session) {
    return Post({{"jsonrpc", "2.0"}, {"id", 2}, {"method", "ping"}}, session).status;
  }
};

}  // namespace

TEST_CASE("an MCP session idle for 30 minutes ends (404 after); one in use stays") {
  McpFixture f;
  std::string idle = f.Initialize("idle-agent");
  std::string busy = f.Initialize("busy-agent");
  f.relay.clock().Advance(20 * 60 * 1000);
  CHECK(f.Ping(busy) == 200);
  f.relay.clock().Advance(11 * 60 * 1000);
  f.relay.relay().mcp().Housekeeping();
  CHECK(f.Ping(idle) == 404);
  CHECK(f.Ping(busy) == 200);
  CHECK(f.relay.relay().mcp().SessionCount() == 1);
}

TEST_CASE("a token keeps at most 32 MCP sessions: a 33rd ends the least recently used") {
  McpFixture f;
  std::vector<std::string> sessions;
  for (int i = 0; i < 32; ++i) {
    sessions.push_back(f.Initialize());
    f.relay.clock().Advance(1000);
  }
  CHECK(f.Ping(sessions[0]) == 200);  // now the most recently used
  f.relay.clock().Advance(1000);
  std::string newest = f.Initialize();
  CHECK(f.relay.relay().mcp().SessionCount() == 32);
  CHECK(f.Ping(sessions[1]) == 404);  // the least recently used went
  CHECK(f.Ping(sessions[0]) == 200);
  CHECK(f.Ping(newest) == 200);
}

TEST_CASE("shutdown answers a waiting meshwire_get_messages; the relay stops") {
  auto f = std::make_unique<McpFixture>();
  std::string session = f->Initialize();
  auto waiting = std::async(std::launch::async, [&] {
    return f->Post({{"jsonrpc", "2.0"},
                    {"id", 7},
                    {"method", "tools/call"},
                    {"params", {{"name", "meshwire_get_messages"}, {"arguments", {{"wait_seconds", 20}}}}}},
                   session);
  });
  // Parked: the agent shows as listening.
  bool parked = false;
  for (int i = 0; i < 500 && !parked; ++i) {
    HttpAnswer list = f->relay.Get("/mesh/" + f->mesh + "/agents", f->alice);
    for (const auto& a : list.json.at("agents")) parked = parked || a.at("listening") == true;
    if (!parked) std::this_thread::sleep_for(2ms);
  }
  REQUIRE(parked);
  f->relay.relay().Stop();
  REQUIRE(waiting.wait_for(5s) == std::future_status::ready);
  HttpAnswer a = waiting.get();
  CHECK(a.status == 200);
  CHECK(a.json["id"] == 7);
  CHECK(a.json["result"]["isError"] == false);
  CHECK(a.json["result"]["structuredContent"]["messages"].empty());
  CHECK(a.json["result"]["content"][0]["text"] == "No new messages.");  // not "(waited 20 s)": it did not
}

TEST_CASE("a waiting call's POST ends: 202 when the client cancels it, an error when its session is deleted") {
  McpFixture f;
  std::string session = f.Initialize();
  auto wait = [&](const std::string& id) {
    return std::async(std::launch::async, [&f, session, id] {
      return f.Post({{"jsonrpc", "2.0"},
                     {"id", id},
                     {"method", "tools/call"},
                     {"params", {{"name", "meshwire_get_messages"}, {"arguments", {{"wait_seconds", 20}}}}}},
                    session);
    });
  };
  auto parked = [&] {
    for (int i = 0; i < 1000; ++i) {
      if (f.Listening()) return true;
      std::this_thread::sleep_for(2ms);
    }
    return false;
  };
  auto waiting = wait("w1");
  REQUIRE(parked());
  CHECK(f.Post({{"jsonrpc", "2.0"}, {"method", "notifications/cancelled"}, {"params", {{"requestId", "w1"}}}}, session)
            .status == 202);
  // Before, the POST never got an answer: the connection stayed open.
  REQUIRE(waiting.wait_for(5s) == std::future_status::ready);
  HttpAnswer cancelled = waiting.get();
  CHECK(cancelled.status == 202);
  CHECK(cancelled.body.empty());

  auto waiting2 = wait("w2");
  REQUIRE(parked());
  httplib::Client client("127.0.0.1", f.relay.port());
  auto deleted = client.Delete("/mesh/" + f.mesh + "/mcp",
                               httplib::Headers{{"Authorization", "Bearer " + f.alice}, {"Mcp-Session-Id", session}});
  REQUIRE(deleted);
  CHECK(deleted->status == 204);
  // Ended by the session's end, not by the client: an error it reads as the answer.
  REQUIRE(waiting2.wait_for(5s) == std::future_status::ready);
  HttpAnswer ended = waiting2.get();
  CHECK(ended.status == 200);
  CHECK(ended.json["id"] == "w2");
  CHECK(ended.json["error"]["data"]["code"] == "session_ended");
}

TEST_CASE("a client that half-closes after its POST: a send is answered; a waiting call is cancelled") {
  McpFixture f;
  std::string session = f.Initialize();
  SUBCASE("meshwire_send_message: stored and answered, once") {
    auto c = f.PostHalfClosed({{"jsonrpc", "2.0"},
                               {"id", 3},
                               {"method", "tools/call"},
                               {"params", {{"name", "meshwire_send_message"},
                                           {"arguments", {{"to", "a"}, {"content", "half-closed"}}}}}},
                              session);
    const std::string answer = c->ReadAnswer();
    REQUIRE(answer.rfind("HTTP/1.1 200", 0) == 0);
    json rpc = json::parse(answer.substr(answer.find("\r\n\r\n") + 4));
    CHECK(rpc["id"] == 3);
    CHECK(rpc["result"]["isError"] == false);
    CHECK(c->ClosedByRelay(2000ms));  // nothing more can come from this client
    HttpAnswer history = f.relay.Get("/mesh/" + f.mesh + "/messages?after=0", f.alice);
    REQUIRE(history.status == 200);
    CHECK(history.json["messages"].size() == 1);
  }
  SUBCASE("meshwire_get_messages waiting: the half-close ends the wait at once, as a hang-up") {
    auto c = f.PostHalfClosed({{"jsonrpc", "2.0"},
                               {"id", 4},
                               {"method", "tools/call"},
                               {"params", {{"name", "meshwire_get_messages"}, {"arguments", {{"wait_seconds", 20}}}}}},
                              session);
    CHECK(c->ClosedByRelay(5000ms));
    bool listening = true;
    for (int i = 0; i < 500 && listening; ++i) {
      listening = f.Listening();
      if (listening) std::this_thread::sleep_for(2ms);
    }
    CHECK_FALSE(listening);
  }
}

}  // namespace meshwire::testing
