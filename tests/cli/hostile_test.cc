// Hostile clients against the real `meshwire server` process, through real
// sockets: each case answers its error, the relay stays up (GET /health), and
// its memory stays bounded. Every case is bounded in time.
#include <doctest/doctest.h>
#include <httplib.h>
#include <poll.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <future>
#include <nlohmann/json.hpp>
#include <thread>
#include <tuple>

#include "tests/support/raw_client.h"
#include "tests/support/relay_process.h"

namespace meshwire::testing {

namespace {

using nlohmann::json;
using namespace std::chrono_literals;

int StatusOf(const std::string& answer) {
  return answer.rfind("HTTP/1.1 ", 0) == 0 ? std::atoi(answer.c_str() + 9) : 0;
}
std::string CodeOf(const std::string& answer) {
  auto body = answer.find("\r\n\r\n");
  if (body == std::string::npos) return "";
  json j = json::parse(answer.substr(body + 4), nullptr, false);
  return j.is_object() && j.contains("error") ? j["error"].value("code", "") : "";
}

long RssKib(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::atol(line.c_str() + 6);
  }
  return -1;
}

struct Hostile {
  TempDir home;
  std::string token = AdminToken(home, "alice");
  RelayProcess relay;
  httplib::Client http{"127.0.0.1", 0};
  std::string mesh;
  std::string agent;

  explicit Hostile(std::vector<std::string> extra = {}) : relay(home, std::move(extra)), http("127.0.0.1", relay.port) {
    http.set_bearer_token_auth(token);
    http.set_read_timeout(30, 0);
    mesh = Json(http.Post("/mesh", R"({"name":"hostile"})", "application/json"))["mesh_id"];
    agent = Json(http.Post("/mesh/" + mesh + "/agents", R"({"name":"agent-a"})", "application/json"))["agent_id"];
  }
  static json Json(const httplib::Result& r) {
    REQUIRE(r);
    return json::parse(r->body);
  }
  /// The relay is up and answers.
  bool Healthy() {
    httplib::Client c("127.0.0.1", relay.port);
    c.set_read_timeout(5, 0);
    auto r = c.Get("/health");
    return r && r->status == 200;
  }
  /// Sends one raw request and reads its one answer (or whatever came before
  /// the relay closed the connection).
  std::string Raw(const std::string& request) {
    RawClient c(relay.port);
    c.Send(request);
    return c.ReadAnswer();
  }
  std::string Request(const std::string& method, const std::string& path, const std::string& body = "",
                      const std::string& extra_headers = "") {
    return "" + method + " " + path + " HTTP/1.1\r\nHost: relay\r\nAuthorization: Bearer " + token +
           "\r\n" + extra_headers + "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
  }
};

}  // namespace

TEST_CASE("long path segments are 404, never a crash, with or without a token") {
  Hostile h;
  const std::string longest(100000, 'a');
  for (const std::string& path :
       {"/mesh/" + std::string(500, 'a'), "/tokens/" + std::string(500, 'a'),
        "/mesh/" + h.mesh + "/agents/" + std::string(5000, 'a'), "/mesh/" + std::string(8000, 'b')}) {
    CAPTURE(path.size());
    for (const char* method : {"GET", "DELETE"}) {
      std::string answer = h.Raw(h.Request(method, path));
      CHECK(StatusOf(answer) == 404);
    }
  }
  // Where a route of the method has the path but for an id or name over 256
  // bytes: the 404 of what it would name, its sentence short.
  const std::vector<std::tuple<std::string, std::string, std::string>> named = {
      {"DELETE", "/mesh/" + std::string(500, 'a'), "mesh_not_found"},
      {"GET", "/mesh/" + std::string(8000, 'b'), "mesh_not_found"},
      {"DELETE", "/tokens/" + std::string(5000, 'a'), "token_not_found"},
      {"DELETE", "/mesh/" + h.mesh + "/agents/" + std::string(5000, 'a'), "agent_not_found"},
      {"POST", "/mesh/" + h.mesh + "/messages/" + std::string(8000, '7') + "/reply", "message_not_found"},
      {"DELETE", "/mesh/" + h.mesh + "/members/" + std::string(300, 'u'), "not_found"},
  };
  for (const auto& [method, path, code] : named) {
    CAPTURE(method);
    CAPTURE(path.size());
    const std::string answer = h.Raw(h.Request(method, path, method == "POST" ? R"({"from":"agent-a","content":"x"})" : ""));
    CHECK(StatusOf(answer) == 404);
    CHECK(CodeOf(answer) == code);
    CHECK(answer.size() < 1000);
  }
  // A target longer than the header limit: 431, the connection closed.
  CHECK(StatusOf(h.Raw("GET /mesh/" + longest + " HTTP/1.1\r\nHost: relay\r\n\r\n")) == 431);
  CHECK(h.Healthy());
}

TEST_CASE("metadata nested 1,440 deep, or 33, is refused; 32 levels and 16 KiB are accepted") {
  Hostile h;
  auto nested = [](int depth) { return std::string(depth, '[') + std::string(depth, ']'); };
  auto send = [&](const std::string& metadata_value) {
    std::string body = R"({"from":"agent-a","content":"x","metadata":{"x":)" + metadata_value + "}}";
    return h.Raw(h.Request("POST", "/mesh/" + h.mesh + "/messages", body));
  };
  std::string deep = send(nested(1440));
  CHECK(StatusOf(deep) == 400);
  CHECK(CodeOf(deep) == "invalid_json");
  std::string too_deep = send(nested(32));  // the metadata object itself is one level more
  CHECK(StatusOf(too_deep) == 400);
  CHECK(CodeOf(too_deep) == "invalid_field");
  CHECK(StatusOf(send(nested(31))) == 201);
  std::string big = send("\"" + std::string(16 * 1024, 'm') + "\"");
  CHECK(StatusOf(big) == 400);
  CHECK(CodeOf(big) == "invalid_field");
  CHECK(StatusOf(send("\"" + std::string(16 * 1024 - 20, 'm') + "\"")) == 201);
  CHECK(h.Healthy());
}

TEST_CASE("bodies over 1 MiB, chunked or not, are 413 without a token; memory stays bounded") {
  Hostile h;
  const long rss_before = RssKib(h.relay.process.pid());
  // Four clients each offering 64 MiB in chunks, as fast as they can.
  std::vector<std::future<std::string>> clients;
  for (int i = 0; i < 4; ++i) {
    clients.push_back(std::async(std::launch::async, [&h] {
      RawClient c(h.relay.port);
      c.Send("POST /mesh/x/messages HTTP/1.1\r\nHost: relay\r\nTransfer-Encoding: chunked\r\n\r\n");
      const std::string chunk = "100000\r\n" + std::string(0x100000, 'z') + "\r\n";
      for (int k = 0; k < 64 && c.Send(chunk); ++k) {
      }
      return c.ReadAnswer(3000ms);
    }));
  }
  for (auto& f : clients) CHECK(StatusOf(f.get()) == 413);
  std::string plain = h.Raw("POST /mesh HTTP/1.1\r\nHost: relay\r\nContent-Length: 2000000\r\n\r\n");
  CHECK(StatusOf(plain) == 413);
  CHECK(CodeOf(plain) == "payload_too_large");
  const long rss_after = RssKib(h.relay.process.pid());
  CAPTURE(rss_before);
  CAPTURE(rss_after);
  CHECK(rss_after - rss_before < 64 * 1024);  // far below the 256 MiB offered
  CHECK(h.Healthy());
}

TEST_CASE("bodies still to come count against --max-body-memory: past it 503 before the body is read; memory stays bounded") {
  Hostile h({"--max-body-memory", "2"});
  // Two clients with no token each start a body of 1,000,000 bytes and stop
  // halfway: 2 MB of the 2 MiB are now promised.
  const std::string head = "POST /mesh/x/messages HTTP/1.1\r\nHost: relay\r\nContent-Length: 1000000\r\n\r\n";
  std::vector<std::unique_ptr<RawClient>> slow;
  for (int i = 0; i < 2; ++i) {
    slow.push_back(std::make_unique<RawClient>(h.relay.port));
    REQUIRE(slow.back()->Send(head + std::string(500000, 'a')));
  }
  // The relay has read both heads once /health, sent after them, answers.
  REQUIRE(h.Healthy());
  // A third is refused at its head, with Retry-After, its body never read.
  RawClient third(h.relay.port);
  REQUIRE(third.Send(head));
  const std::string refused = third.ReadAnswer(5000ms);
  CHECK(StatusOf(refused) == 503);
  CHECK(CodeOf(refused) == "unavailable");
  CHECK(refused.find("Retry-After: 1\r\n") != std::string::npos);
  // A chunked body counts at the 1 MiB limit: refused too.
  CHECK(StatusOf(h.Raw("POST /mesh HTTP/1.1\r\nHost: relay\r\nTransfer-Encoding: chunked\r\n\r\n")) == 503);
  // A request that comes whole with its head takes nothing from the budget.
  auto sent = h.http.Post("/mesh/" + h.mesh + "/messages", R"({"from":"agent-a","content":"small"})", "application/json");
  REQUIRE(sent);
  CHECK(sent->status == 201);

  // One slow body ends (401: no token): its share is given back, and a body
  // of the same size is read again.
  REQUIRE(slow[0]->Send(std::string(500000, 'a')));
  CHECK(StatusOf(slow[0]->ReadAnswer(5000ms)) == 401);
  RawClient again(h.relay.port);
  REQUIRE(again.Send(h.Request("POST", "/mesh", json{{"name", std::string(100, 'm')}, {"pad", std::string(999000, 'p')}}.dump())));
  CHECK(StatusOf(again.ReadAnswer(5000ms)) == 201);
  // The other gives up: its share goes with its connection (once the relay
  // has seen it close: until then a third body may still be 503).
  slow[1].reset();
  int status = 0;
  for (int i = 0; i < 100 && status != 201; ++i) {
    if (i > 0) std::this_thread::sleep_for(50ms);
    RawClient last(h.relay.port);
    REQUIRE(last.Send(h.Request("POST", "/mesh", json{{"name", "last"}, {"pad", std::string(999000, 'p')}}.dump())));
    status = StatusOf(last.ReadAnswer(5000ms));
    if (status != 201) CHECK(status == 503);
  }
  CHECK(status == 201);
  CHECK(h.Healthy());
}

TEST_CASE("header fields: more than 100 or over 16 KiB is 431; ambiguous framing or credentials is 400") {
  Hostile h;
  std::string many;
  for (int i = 0; i < 150; ++i) many += "X-Field-" + std::to_string(i) + ": y\r\n";
  std::string a = h.Raw("GET /health HTTP/1.1\r\nHost: relay\r\n" + many + "\r\n");
  CHECK(StatusOf(a) == 431);
  CHECK(CodeOf(a) == "header_too_large");
  CHECK(StatusOf(h.Raw("GET /health HTTP/1.1\r\nHost: relay\r\nX-Big: " + std::string(17000, 'b') +
                       "\r\n\r\n")) == 431);
  std::string two = h.Raw(
      "POST /mesh HTTP/1.1\r\nHost: relay\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}");
  CHECK(StatusOf(two) == 400);
  std::string cl_te = h.Raw(
      "POST /mesh HTTP/1.1\r\nHost: relay\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n");
  CHECK(StatusOf(cl_te) == 400);
  // Two lengths in one field are as ambiguous as two fields, equal or not
  // (the parser itself refuses unequal ones).
  for (std::string lengths : {"2, 2", "2,2", "2,3"}) {
    CAPTURE(lengths);
    std::string listed = h.Raw("POST /mesh HTTP/1.1\r\nHost: relay\r\nContent-Length: " + lengths + "\r\n\r\n{}");
    CHECK(StatusOf(listed) == 400);
    if (lengths != "2,3") CHECK(listed.find("framing is ambiguous") != std::string::npos);
  }
  // Two credentials: the caller would be whichever one a route reads first.
  std::string two_tokens = h.Raw("GET /mesh HTTP/1.1\r\nHost: relay\r\nAuthorization: Bearer " + h.token +
                                 "\r\nAuthorization: Bearer mw_other\r\n\r\n");
  CHECK(StatusOf(two_tokens) == 400);
  CHECK(two_tokens.find("two Authorization headers") != std::string::npos);
  // RFC 9112 3.2: an HTTP/1.1 request without Host, or with two, is 400;
  // HTTP/1.0 needs none.
  std::string no_host = h.Raw("GET /health HTTP/1.1\r\n\r\n");
  CHECK(StatusOf(no_host) == 400);
  CHECK(no_host.find("needs a Host header") != std::string::npos);
  std::string two_hosts = h.Raw("GET /health HTTP/1.1\r\nHost: relay\r\nHost: other\r\n\r\n");
  CHECK(StatusOf(two_hosts) == 400);
  CHECK(two_hosts.find("two Host headers") != std::string::npos);
  CHECK(StatusOf(h.Raw("GET /health HTTP/1.0\r\n\r\n")) == 200);
  CHECK(h.Healthy());
}

TEST_CASE("a request target is a path from /, or the absolute form of one; anything else is 400") {
  Hostile h;
  auto get = [&h](const std::string& target, const std::string& method = "GET") {
    return h.Raw(method + " " + target + " HTTP/1.1\r\nHost: relay\r\n\r\n");
  };
  std::string bare = get("health");
  CHECK(StatusOf(bare) == 400);
  CHECK(bare.find("must be a path starting with /") != std::string::npos);
  // Not a path, no host, or "*" with a method other than OPTIONS (RFC 9112 3.2.4).
  for (std::string target : {"relay:7420", "http://", "http:///health", "https://?x", "*"}) {
    CAPTURE(target);
    CHECK(StatusOf(get(target)) == 400);
  }
  CHECK(StatusOf(get("*", "OPTIONS")) == 404);  // a target OPTIONS may have, and no route has
  // RFC 9112 3.2.2: a server accepts the absolute form, and reads its path.
  std::string absolute = get("http://relay/health");
  CHECK(StatusOf(absolute) == 200);
  CHECK(absolute.find("\"status\":\"ok\"") != std::string::npos);
  for (std::string target : {"HTTPS://relay:7420/health?x=1", "http://user:pw@relay/health", "http://[::1]:7420/health"}) {
    CAPTURE(target);
    CHECK(StatusOf(get(target)) == 200);
  }
  CHECK(StatusOf(get("http://relay")) == 404);  // the path "/", which no route has
  CHECK(StatusOf(get("http://relay?x=1")) == 404);
  CHECK(StatusOf(get("/")) == 404);
  CHECK(h.Healthy());
}

TEST_CASE("a Transfer-Encoding other than chunked is 400 and closes: its body never runs as a request") {
  Hostile h;
  // The body of the first request is a whole second request: a relay that
  // took the first as bodiless would delete the mesh (request smuggling).
  const std::string inner = h.Request("DELETE", "/mesh/" + h.mesh);
  for (const char* coding : {"gzip", "chunked, gzip", "identity", "gzip, chunked\r\nTransfer-Encoding: chunked"}) {
    CAPTURE(coding);
    RawClient c(h.relay.port);
    c.Send(std::string("GET /health HTTP/1.1\r\nHost: relay\r\nTransfer-Encoding: ") + coding + "\r\n\r\n" + inner);
    CHECK(c.ClosedByRelay(5s));
    CHECK(c.Count("HTTP/1.1 ") == 1);
    CHECK(StatusOf(c.text()) == 400);
    CHECK(CodeOf(c.text()) == "bad_request");
  }
  auto still = h.http.Get("/mesh/" + h.mesh);
  REQUIRE(still);
  CHECK(still->status == 200);
  // After a HEAD on the same connection, the refusal still has its body; a
  // HEAD that is refused has none.
  {
    RawClient c(h.relay.port);
    c.Send("HEAD /health HTTP/1.1\r\nHost: relay\r\n\r\n");
    REQUIRE(c.WaitFor("\r\n\r\n", 5s));
    c.Send("GET /health HTTP/1.1\r\nHost: relay\r\nTransfer-Encoding: gzip\r\n\r\n");
    CHECK(c.ClosedByRelay(5s));
    CHECK(c.Count("HTTP/1.1 ") == 2);
    CHECK(c.text().find("\"code\":\"bad_request\"") != std::string::npos);
    RawClient head(h.relay.port);
    head.Send("HEAD /mesh/%zz HTTP/1.1\r\nHost: relay\r\n\r\n");
    CHECK(head.ClosedByRelay(5s));
    CHECK(StatusOf(head.text()) == 400);
    CHECK(head.text().find("{") == std::string::npos);
  }
  // Chunked alone (any case) is read as before.
  std::string chunked = h.Raw("POST /mesh/" + h.mesh + "/messages HTTP/1.1\r\nHost: relay\r\nAuthorization: Bearer " +
                              h.token + "\r\nContent-Type: application/json\r\nTransfer-Encoding: Chunked\r\n\r\n" +
                              "21\r\n{\"from\":\"agent-a\",\"content\":\"hi\"}\r\n0\r\n\r\n");
  CHECK(StatusOf(chunked) == 201);
}

TEST_CASE("slow clients: a request must arrive whole in time; others are served meanwhile") {
  Hostile h({"--request-timeout-ms", "1500"});
  std::vector<std::unique_ptr<RawClient>> slow;
  for (int i = 0; i < 300; ++i) {
    slow.push_back(std::make_unique<RawClient>(h.relay.port));
    slow.back()->Send("GET /health HTTP/1.1\r\nHost: ");
  }
  // While they trickle, a normal send is answered at once.
  for (int tick = 0; tick < 3; ++tick) {
    for (auto& c : slow) c->Send("x");
    auto start = std::chrono::steady_clock::now();
    auto r = h.http.Post("/mesh/" + h.mesh + "/messages", R"({"from":"agent-a","content":"hi"})",
                         "application/json");
    REQUIRE(r);
    CHECK(r->status == 201);
    CHECK(std::chrono::steady_clock::now() - start < 3s);  // not behind them (their deadline is far later)
    std::this_thread::sleep_for(300ms);
  }
  // Past the deadline every one is answered 408 and closed, however it trickles.
  int closed = 0, told = 0;
  for (auto& c : slow) {
    c->Send("x");
    closed += c->ClosedByRelay(3000ms) ? 1 : 0;
    told += StatusOf(c->text()) == 408 && CodeOf(c->text()) == "request_timeout";
  }
  CHECK(closed == 300);
  CHECK(told == 300);
  // A body that stops short of its Content-Length: 408 too.
  RawClient short_body(h.relay.port);
  short_body.Send("POST /mesh HTTP/1.1\r\nHost: relay\r\nContent-Length: 100\r\n\r\n{\"na");
  const std::string answer = short_body.ReadAnswer(4000ms);
  CHECK(StatusOf(answer) == 408);
  CHECK(CodeOf(answer) == "request_timeout");
  CHECK(h.Healthy());
}

TEST_CASE("a body with a NUL byte is not JSON (the parser took it for the end, and ignored what followed)") {
  Hostile h;
  const std::string body = std::string(R"({"name":"n"})") + '\0' + "garbage{{";
  std::string a = h.Raw("POST /mesh HTTP/1.1\r\nHost: relay\r\nAuthorization: Bearer " + h.token +
                        "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
                        "\r\n\r\n" + body);
  CHECK(StatusOf(a) == 400);
  CHECK(CodeOf(a) == "invalid_json");
  CHECK(Hostile::Json(h.http.Get("/mesh"))["meshes"].size() == 1);  // only the fixture's
}

TEST_CASE("a chunk's size line that never ends (64 MiB of extensions) is 400; memory stays bounded") {
  Hostile h;
  const long rss_before = RssKib(h.relay.process.pid());
  const std::string body = R"({"from":"agent-a","content":"after the extension"})";
  std::vector<std::future<std::string>> clients;
  for (int i = 0; i < 2; ++i) {
    clients.push_back(std::async(std::launch::async, [&] {
      RawClient c(h.relay.port);
      char size[16];
      std::snprintf(size, sizeof size, "%zx;", body.size());
      c.Send("POST /mesh/" + h.mesh + "/messages HTTP/1.1\r\nHost: relay\r\nAuthorization: Bearer " + h.token +
             "\r\nTransfer-Encoding: chunked\r\n\r\n" + size);
      const std::string extension(1 << 20, 'e');
      for (int k = 0; k < 64 && c.Send(extension); ++k) {
      }
      c.Send("\r\n" + body + "\r\n0\r\n\r\n");
      return c.ReadAnswer(3000ms);
    }));
  }
  for (auto& f : clients) {
    const std::string answer = f.get();
    CHECK(StatusOf(answer) == 400);
    CHECK(answer.find("chunk's size line") != std::string::npos);
  }
  const long rss_after = RssKib(h.relay.process.pid());
  CAPTURE(rss_before);
  CAPTURE(rss_after);
  CHECK(rss_after - rss_before < 16 * 1024);  // far below the 128 MiB offered
  auto history = Hostile::Json(h.http.Get("/mesh/" + h.mesh + "/messages"));
  CHECK(history["messages"].empty());  // nothing was sent
  CHECK(h.Healthy());
}

TEST_CASE("parked polls: 64 per agent, 1,000 per token, then 429 with Retry-After") {
  Hostile h;
  auto poll = [&](const std::string& agent_id) {
    auto c = std::make_unique<RawClient>(h.relay.port);
    c->Send("GET /mesh/" + h.mesh + "/messages?agent_id=" + agent_id +
            "&wait=60 HTTP/1.1\r\nHost: relay\r\nAuthorization: Bearer " + h.token + "\r\n\r\n");
    return c;
  };
  auto listening = [&](const std::string& agent_id) {
    for (int i = 0; i < 500; ++i) {
      json agents = Hostile::Json(h.http.Get("/mesh/" + h.mesh + "/agents"));
      for (const auto& a : agents["agents"]) {
        if (a["agent_id"] == agent_id && a["listening"] == true) return true;
      }
      std::this_thread::sleep_for(10ms);
    }
    return false;
  };
  std::vector<std::unique_ptr<RawClient>> parked;
  for (int i = 0; i < 64; ++i) parked.push_back(poll(h.agent));
  REQUIRE(listening(h.agent));
  // Let the relay take all 64 (else the 65th may be taken before one of them).
  std::this_thread::sleep_for(1s);
  auto answered = [](const std::vector<std::unique_ptr<RawClient>>& clients) {
    int n = 0;
    for (const auto& p : clients) {
      pollfd pf{p->fd(), POLLIN, 0};
      n += ::poll(&pf, 1, 0) > 0;
    }
    return n;
  };
  REQUIRE(answered(parked) == 0);
  // The 65th of the same agent is refused (once all 64 are parked: retry briefly).
  std::string refused;
  for (int i = 0; i < 30 && StatusOf(refused) != 429; ++i) {
    refused = poll(h.agent)->ReadAnswer(1000ms);
  }
  CHECK(StatusOf(refused) == 429);
  CHECK(refused.find("Retry-After: ") != std::string::npos);

  // 1,000 for one token, spread over agents of 63 polls each.
  std::vector<std::string> agents;
  for (int i = 0; i < 16; ++i) {
    agents.push_back(Hostile::Json(h.http.Post("/mesh/" + h.mesh + "/agents",
                                               json{{"name", "many-" + std::to_string(i)}}.dump(),
                                               "application/json"))["agent_id"]);
  }
  for (int i = 0; i < 1000 - 64; ++i) parked.push_back(poll(agents[i / 63]));
  REQUIRE(listening(agents[(1000 - 64 - 1) / 63]));
  std::this_thread::sleep_for(2s);
  REQUIRE(answered(parked) == 0);
  std::string over;
  for (int i = 0; i < 30 && StatusOf(over) != 429; ++i) over = poll(agents[15])->ReadAnswer(1000ms);
  CHECK(StatusOf(over) == 429);
  CHECK(over.find("This token already has 1000 waiting polls") != std::string::npos);
  // Another token of another user is not affected.
  std::string bob = AdminToken(h.home, "bob");
  httplib::Client c("127.0.0.1", h.relay.port);
  c.set_bearer_token_auth(bob);
  CHECK(c.Get("/mesh")->status == 200);
  CHECK(h.Healthy());
}

TEST_CASE("a client that hangs up ends its parked poll at once") {
  Hostile h;
  {
    RawClient c(h.relay.port);
    c.Send("GET /mesh/" + h.mesh + "/messages?agent_id=" + h.agent +
           "&wait=60 HTTP/1.1\r\nHost: relay\r\nAuthorization: Bearer " + h.token + "\r\n\r\n");
    bool parked = false;
    for (int i = 0; i < 300 && !parked; ++i) {
      parked = Hostile::Json(h.http.Get("/mesh/" + h.mesh + "/agents"))["agents"][0]["listening"] == true;
      if (!parked) std::this_thread::sleep_for(10ms);
    }
    REQUIRE(parked);
  }  // closed here
  bool ended = false;
  auto start = std::chrono::steady_clock::now();
  while (!ended && std::chrono::steady_clock::now() - start < 2s) {
    ended = Hostile::Json(h.http.Get("/mesh/" + h.mesh + "/agents"))["agents"][0]["listening"] == false;
    if (!ended) std::this_thread::sleep_for(10ms);
  }
  CHECK(ended);
  CHECK(std::chrono::steady_clock::now() - start < 1s);
}

TEST_CASE("tokens per user are capped at 100; an agent name may not be another agent's id") {
  Hostile h;
  int created = 0;
  int last_status = 0;
  std::string last_body;
  for (int i = 0; i < 120; ++i) {
    auto r = h.http.Post("/tokens", json{{"name", "t" + std::to_string(i)}}.dump(), "application/json");
    last_status = r ? r->status : 0;
    last_body = r ? r->body : "";
    if (last_status != 201) break;
    ++created;
  }
  CHECK(created == 99);  // plus the admin token: 100
  CHECK(last_status == 400);
  CHECK(json::parse(last_body)["error"]["code"] == "too_many_tokens");

  auto named = h.http.Post("/mesh/" + h.mesh + "/agents", json{{"name", h.agent}}.dump(), "application/json");
  REQUIRE(named);
  CHECK(named->status == 400);
  CHECK(json::parse(named->body)["error"]["code"] == "invalid_field");
}

TEST_CASE("agents per member and mesh are capped (--agents-per-member): then 400 too_many_agents; known names and others still register") {
  Hostile h({"--agents-per-member", "1000"});  // alice has agent-a
  int created = 1;
  int last_status = 0;
  std::string last_body;
  const auto started = std::chrono::steady_clock::now();
  for (int i = 0; i < 1005 && std::chrono::steady_clock::now() - started < 60s; ++i) {
    auto r = h.http.Post("/mesh/" + h.mesh + "/agents", json{{"name", "bulk-" + std::to_string(i)}}.dump(),
                         "application/json");
    last_status = r ? r->status : 0;
    last_body = r ? r->body : "";
    if (last_status != 201) break;
    ++created;
  }
  CHECK(created == 1000);
  REQUIRE(last_status == 400);
  json error = json::parse(last_body)["error"];
  CHECK(error["code"] == "too_many_agents");
  CHECK(error["message"].get<std::string>().find("meshwire agents --mesh " + h.mesh + " --delete") != std::string::npos);
  CHECK(Hostile::Json(h.http.Get("/mesh/" + h.mesh + "/agents"))["agents"].size() == 1000);  // nothing written

  // A name alice has already: found again (200), not counted.
  auto again = h.http.Post("/mesh/" + h.mesh + "/agents", json{{"name", "bulk-7"}}.dump(), "application/json");
  REQUIRE(again);
  CHECK(again->status == 200);
  // Another member has room of their own.
  h.http.Post("/mesh/" + h.mesh + "/members", json{{"user", "bob"}}.dump(), "application/json");
  httplib::Client bob("127.0.0.1", h.relay.port);
  bob.set_bearer_token_auth(AdminToken(h.home, "bob"));
  auto theirs = bob.Post("/mesh/" + h.mesh + "/agents", json{{"name", "bobs-agent"}}.dump(), "application/json");
  REQUIRE(theirs);
  CHECK(theirs->status == 201);
  // One removed: room for one more.
  auto removed = h.http.Delete("/mesh/" + h.mesh + "/agents/bulk-3");
  REQUIRE(removed);
  CHECK(removed->status == 204);
  auto next = h.http.Post("/mesh/" + h.mesh + "/agents", json{{"name", "one-more"}}.dump(), "application/json");
  REQUIRE(next);
  CHECK(next->status == 201);
  CHECK(h.Healthy());
}

TEST_CASE("registering one name from many clients at once: one 201, the rest 200, never 503") {
  Hostile h;
  std::vector<std::future<int>> racers;
  for (int i = 0; i < 12; ++i) {
    racers.push_back(std::async(std::launch::async, [&h] {
      httplib::Client c("127.0.0.1", h.relay.port);
      c.set_bearer_token_auth(h.token);
      auto r = c.Post("/mesh/" + h.mesh + "/agents", R"({"name":"same-name"})", "application/json");
      return r ? r->status : 0;
    }));
  }
  int created = 0, existing = 0;
  for (auto& f : racers) {
    int s = f.get();
    CHECK((s == 201 || s == 200));
    created += s == 201;
    existing += s == 200;
  }
  CHECK(created == 1);
  CHECK(existing == 11);
}

TEST_CASE("a parked poll re-checks access when it wakes: revoked token 401, removed member 403") {
  Hostile h;
  // bob joins alice's mesh and parks a poll with a token he then loses.
  std::string bob = AdminToken(h.home, "bob");
  REQUIRE(h.http.Post("/mesh/" + h.mesh + "/members", R"({"user":"bob"})", "application/json")->status == 201);
  httplib::Client bc("127.0.0.1", h.relay.port);
  bc.set_bearer_token_auth(bob);
  bc.set_read_timeout(30, 0);
  std::string bob_agent =
      Hostile::Json(bc.Post("/mesh/" + h.mesh + "/agents", R"({"name":"bob-agent"})", "application/json"))["agent_id"];
  std::string spare = Hostile::Json(bc.Post("/tokens", R"({"name":"spare"})", "application/json"))["token"];
  std::string spare_id;
  const json tokens = Hostile::Json(bc.Get("/tokens"));
  for (const auto& t : tokens["tokens"]) {
    if (t["name"] == "spare") spare_id = t["id"];
  }
  auto park = [&](const std::string& token) {
    return std::async(std::launch::async, [&h, &bob_agent, token] {
      httplib::Client c("127.0.0.1", h.relay.port);
      c.set_bearer_token_auth(token);
      c.set_read_timeout(30, 0);
      auto r = c.Get("/mesh/" + h.mesh + "/messages?agent_id=" + bob_agent + "&wait=20");
      return r ? std::make_pair(r->status, r->body) : std::make_pair(0, std::string());
    });
  };
  auto wait_listening = [&] {
    for (int i = 0; i < 500; ++i) {
      const json list = Hostile::Json(h.http.Get("/mesh/" + h.mesh + "/agents"));
      for (const auto& a : list["agents"]) {
        if (a["agent_id"] == bob_agent && a["listening"] == true) return true;
      }
      std::this_thread::sleep_for(10ms);
    }
    return false;
  };
  auto revoked = park(spare);
  REQUIRE(wait_listening());
  REQUIRE(bc.Delete("/tokens/" + spare_id)->status == 204);
  REQUIRE(h.http.Post("/mesh/" + h.mesh + "/messages",
                      json{{"from", "agent-a"}, {"to", "bob-agent"}, {"content", "secret 1"}}.dump(),
                      "application/json")->status == 201);
  auto [s1, b1] = revoked.get();
  CHECK(s1 == 401);
  CHECK(b1.find("secret 1") == std::string::npos);

  // bob still may read what was sent to his agent (the revoked poll read nothing).
  json backlog = Hostile::Json(bc.Get("/mesh/" + h.mesh + "/messages?agent_id=" + bob_agent));
  REQUIRE(backlog["messages"].size() == 1);
  REQUIRE(bc.Get("/mesh/" + h.mesh + "/messages?agent_id=" + bob_agent +
                 "&after=" + std::to_string(backlog["cursor"].get<long long>()))->status == 200);
  auto removed = park(bob);
  REQUIRE(wait_listening());
  REQUIRE(h.http.Delete("/mesh/" + h.mesh + "/members/bob")->status == 204);
  REQUIRE(h.http.Post("/mesh/" + h.mesh + "/messages",
                      json{{"from", "agent-a"}, {"content", "secret 2"}}.dump(),
                      "application/json")->status == 201);
  auto [s2, b2] = removed.get();
  CHECK(s2 == 403);
  CHECK(b2.find("secret 2") == std::string::npos);
  CHECK(h.Healthy());
}

TEST_CASE("local sign-ins are rate-limited per address; the guide's URLs come from --public-url") {
  // (--auth local, the default, serves this machine alone: a public URL naming it.)
  Hostile h({"--public-url", "https://localhost:8443"});
  CHECK(h.relay.process.stderr_seen().find("auth local, public URL https://localhost:8443)") != std::string::npos);
  int limited = 0;
  for (int i = 0; i < 15; ++i) {
    httplib::Client c("127.0.0.1", h.relay.port);
    auto r = c.Post("/auth/cli", "port=5555&state=abcdefgh12&user=u" + std::to_string(i),
                    "application/x-www-form-urlencoded");
    REQUIRE(r);
    if (r->status == 429) ++limited;
  }
  CHECK(limited == 5);  // 10 a minute

  httplib::Client c("127.0.0.1", h.relay.port);
  c.set_bearer_token_auth(h.token);
  auto r = c.Get("/mesh/" + h.mesh + "/integrate", {{"Host", "evil.example"}});
  REQUIRE(r);
  CHECK(r->status == 200);
  CHECK(r->body.find("https://localhost:8443") != std::string::npos);
  CHECK(r->body.find("evil.example") == std::string::npos);
}

TEST_CASE("event streams: replays to clients that do not read hold no thread; one user has at most 64 streams") {
  Hostile h;
  // 10 MB of history: more than the kernel's buffers take for a client that
  // does not read, so each replay waits on its client.
  const json msg{{"from", "agent-a"}, {"content", std::string(10000, 'x')}};
  for (int i = 0; i < 1000; ++i) {
    REQUIRE(h.http.Post("/mesh/" + h.mesh + "/messages", msg.dump(), "application/json")->status == 201);
  }
  // More replays than the relay has workers (64 here), none read: alice's and dave's.
  REQUIRE(h.http.Post("/mesh/" + h.mesh + "/members", R"({"user":"dave"})", "application/json")->status == 201);
  const std::string dave = AdminToken(h.home, "dave");
  std::vector<std::unique_ptr<RawClient>> stalled;
  for (int i = 0; i < 70; ++i) {
    stalled.push_back(std::make_unique<RawClient>(h.relay.port, 4096));
    stalled.back()->Send("GET /mesh/" + h.mesh + "/events?after=0 HTTP/1.1\r\nHost: relay\r\nAuthorization: Bearer " +
                         (i % 2 ? dave : h.token) + "\r\n\r\n");
  }
  std::this_thread::sleep_for(500ms);  // let them all start (what is measured below fails without it too)
  // Everyone else is served meanwhile, at once.
  for (const char* path : {"/health", "/me", "/mesh"}) {
    const auto start = std::chrono::steady_clock::now();
    auto r = h.http.Get(path);
    REQUIRE(r);
    CHECK(r->status == 200);
    CHECK(std::chrono::steady_clock::now() - start < 2s);
  }
  // A stream that reads gets the whole replay, in order, then goes live.
  RawClient reader(h.relay.port);
  reader.Send(h.Request("GET", "/mesh/" + h.mesh + "/events?after=0"));
  REQUIRE(reader.WaitFor("\nid: 1000\n", 20000ms));
  CHECK(reader.Count("event: message\n") == 1000);
  CHECK(reader.text().find("\nid: 1\n") < reader.text().find("\nid: 1000\n"));
  stalled.clear();

  // 64 streams for one user (carol's two tokens together), then 429 with Retry-After.
  REQUIRE(h.http.Post("/mesh/" + h.mesh + "/members", R"({"user":"carol"})", "application/json")->status == 201);
  const std::string carol[] = {AdminToken(h.home, "carol"), AdminToken(h.home, "carol")};
  auto stream = [&](const std::string& token) {
    auto c = std::make_unique<RawClient>(h.relay.port);
    c->Send("GET /mesh/" + h.mesh + "/events HTTP/1.1\r\nHost: relay\r\nAuthorization: Bearer " + token +
            "\r\n\r\n");
    return c;
  };
  std::vector<std::unique_ptr<RawClient>> open;
  for (int i = 0; i < 64; ++i) {
    CAPTURE(i);
    open.push_back(stream(carol[i % 2]));
    REQUIRE(open.back()->WaitFor("connected to mesh", 5000ms));
  }
  const std::string refused = stream(carol[0])->ReadAnswer();
  CHECK(StatusOf(refused) == 429);
  CHECK(CodeOf(refused) == "rate_limited");
  CHECK(refused.find("Retry-After: 5") != std::string::npos);
  // Another user is not affected; a closed stream gives its place back.
  CHECK(stream(h.token)->WaitFor("connected to mesh", 5000ms));
  open.pop_back();
  bool reopened = false;
  for (int i = 0; i < 100 && !reopened; ++i) {
    reopened = stream(carol[1])->WaitFor("connected to mesh", 500ms);
  }
  CHECK(reopened);
  CHECK(h.Healthy());
}

TEST_CASE("event streams together hold at most --max-stream-memory: streams not read are dropped, those read are not") {
  Hostile h({"--max-stream-memory", "1"});
  const json msg{{"from", "agent-a"}, {"content", std::string(10000, 'x')}};
  auto post = [&](const json& m) {
    auto r = h.http.Post("/mesh/" + h.mesh + "/messages", m.dump(), "application/json");
    return r && r->status == 201;
  };
  // 10 MB of history: a client replaying it as fast as it reads is never
  // dropped, though a replay's page of 200 alone is over the budget.
  for (int i = 0; i < 1000; ++i) REQUIRE(post(msg));
  {
    RawClient replay(h.relay.port);
    replay.Send(h.Request("GET", "/mesh/" + h.mesh + "/events?after=0"));
    CHECK(replay.WaitFor("\nid: 1000\n", 30000ms));
  }

  // Four streams that read nothing, one that reads (live).
  std::vector<std::unique_ptr<RawClient>> stalled;
  for (int i = 0; i < 4; ++i) {
    stalled.push_back(std::make_unique<RawClient>(h.relay.port, 4096));
    stalled.back()->Send(h.Request("GET", "/mesh/" + h.mesh + "/events"));
    REQUIRE(stalled.back()->WaitFor("connected to mesh", 5000ms));
  }
  RawClient reader(h.relay.port);
  reader.Send(h.Request("GET", "/mesh/" + h.mesh + "/events"));
  REQUIRE(reader.WaitFor("connected to mesh", 5000ms));
  // 6 MB of messages: the kernel takes up to 4 MiB for each stalled stream
  // (its socket's send buffer), so each is 2 MB behind in the relay: under
  // its own 4 MiB, well over 1 MiB for all four.
  int sent = 0;
  std::thread sender([&] {  // while the reader reads
    for (; sent < 600 && post(msg); ++sent) {
    }
  });
  const bool read_all = reader.WaitFor("\nid: 1600\n", 30000ms);
  sender.join();
  REQUIRE(sent == 600);
  REQUIRE(read_all);
  CHECK(reader.Count("event: message\n") == 600);
  // Once they have taken nothing for a second, the next events drop them.
  bool warned = false;
  for (int i = 0; i < 50 && !warned; ++i) {
    REQUIRE(post(json{{"from", "agent-a"}, {"content", "tick"}}));
    warned = h.relay.process.WaitForStderr("event streams hold", 100).has_value();
  }
  CHECK(warned);
  REQUIRE(post(json{{"from", "agent-a"}, {"content", "after the drop"}}));
  // Read now, each ends (long before the 30 s write timeout), short of it all.
  for (auto& c : stalled) {
    CHECK(c->ClosedByRelay(10000ms));
    CHECK(c->text().find("after the drop") == std::string::npos);
  }
  // The reader is still live; a new stream opens and gets what comes next.
  CHECK(reader.WaitFor("after the drop", 5000ms));
  RawClient late(h.relay.port);
  late.Send(h.Request("GET", "/mesh/" + h.mesh + "/events"));
  REQUIRE(late.WaitFor("connected to mesh", 5000ms));
  REQUIRE(post(json{{"from", "agent-a"}, {"content", "later still"}}));
  CHECK(reader.WaitFor("later still", 5000ms));
  CHECK(late.WaitFor("later still", 5000ms));
  CHECK(h.Healthy());
}

}  // namespace meshwire::testing
