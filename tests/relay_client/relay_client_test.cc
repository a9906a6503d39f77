// RelayClient against stand-in relays: what it does with answers a current
// relay never gives (an older relay's), which the end-to-end tests cannot
// produce.
#include "relay-client/relay_client.h"

#include <doctest/doctest.h>
#include <httplib.h>

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/silent_host.h"

namespace meshwire {
namespace {

/// A stand-in relay whose GET /mesh/m1/messages answers `limit=0` with
/// `zero_status` and `zero_body`, anything else with an empty poll; it
/// records every request's limit.
struct OlderRelay {
  httplib::Server server;
  std::thread serving;
  std::mutex mu;
  std::vector<std::string> limits;
  std::string url;

  OlderRelay(int zero_status, std::string zero_body) {
    server.Get("/mesh/m1/messages", [this, zero_status, zero_body](const httplib::Request& req,
                                                                   httplib::Response& res) {
      const std::string limit = req.get_param_value("limit");
      {
        std::lock_guard lock(mu);
        limits.push_back(limit);
      }
      if (limit == "0") {
        res.status = zero_status;
        res.set_content(zero_body, "application/json");
        return;
      }
      res.set_content(R"({"messages":[],"cursor":5})", "application/json");
    });
    url = "http://127.0.0.1:" + std::to_string(server.bind_to_any_port("127.0.0.1"));
    serving = std::thread([this] { server.listen_after_bind(); });
  }
  ~OlderRelay() {
    server.stop();
    serving.join();
  }
  std::vector<std::string> Limits() {
    std::lock_guard lock(mu);
    return limits;
  }
};

constexpr const char* kLimitRefused =
    R"({"error":{"code":"invalid_field","message":"limit must be a whole number from 1 to 1000."}})";

TEST_CASE("Acknowledge: limit=0 reads nothing; a relay from before it (400 invalid_field) is asked limit=1") {
  SUBCASE("a current relay: one request") {
    OlderRelay relay(200, R"({"messages":[],"cursor":5})");
    RelayClient(relay.url, "mw_test").Acknowledge("m1", "a1", 5);
    CHECK(relay.Limits() == std::vector<std::string>{"0"});
  }
  SUBCASE("an older relay: refused, then limit=1") {
    OlderRelay relay(400, kLimitRefused);
    RelayClient(relay.url, "mw_test").Acknowledge("m1", "a1", 5);
    CHECK(relay.Limits() == std::vector<std::string>{"0", "1"});
  }
  SUBCASE("any other refusal is the caller's, not retried") {
    OlderRelay relay(404, R"({"error":{"code":"agent_not_found","message":"No agent a1."}})");
    CHECK_THROWS_WITH(RelayClient(relay.url, "mw_test").Acknowledge("m1", "a1", 5), doctest::Contains("No agent a1"));
    CHECK(relay.Limits() == std::vector<std::string>{"0"});
  }
}

TEST_CASE("a list whose answer is not a meshwire relay's is a 502 with a sentence, never a JSON library's error") {
  for (const char* body : {"[1,2,3]", "{}", "", R"({"meshes":{},"agents":{},"tokens":{},"members":{}})",
                           R"({"meshes":[1],"agents":[1],"tokens":[1],"members":[1]})"}) {
    CAPTURE(body);
    httplib::Server server;
    server.Get(".*", [body](const httplib::Request&, httplib::Response& res) {
      res.set_content(body, "application/json");
    });
    const std::string url = "http://127.0.0.1:" + std::to_string(server.bind_to_any_port("127.0.0.1"));
    std::thread serving([&] { server.listen_after_bind(); });
    RelayClient client(url, "mw_test");
    auto check = [](const char* key, const std::function<void()>& call) {
      CAPTURE(key);
      try {
        call();
        FAIL("accepted");
      } catch (const Error& e) {
        CHECK(e.status() == 502);
        CHECK(std::string(e.what()) ==
              std::string("The relay's answer lacks a valid \"") + key + "\"; is that a meshwire relay?");
      }
    };
    check("meshes", [&] { client.ListMeshes(); });
    check("agents", [&] { client.Agents("m1"); });
    check("tokens", [&] { client.ListTokens(); });
    check("members", [&] { client.Members("m1"); });
    server.stop();
    serving.join();
  }
}

TEST_CASE("send: a relay that took the request and never answered is not tried again (a hung relay is said at once); "
          "a refused connection still is") {
  int retries = 0;
  RetryPolicy policy = RetryPolicy::Standard();
  policy.delays = {std::chrono::milliseconds(10), std::chrono::milliseconds(10), std::chrono::milliseconds(10)};
  policy.read_timeout_s = 1;
  policy.on_retry = [&](int, std::chrono::milliseconds, const Error&) { ++retries; };
  OutgoingMessage m;
  m.from = "a";
  m.content = "hello";

  testing::SilentHost silent;
  RelayClient hung("http://127.0.0.1:" + std::to_string(silent.port), "mw_token", policy);
  const auto start = std::chrono::steady_clock::now();
  try {
    hung.Send("m1", m);
    FAIL("a silent host answered");
  } catch (const Error& e) {
    CHECK(e.code() == "timeout");
    CHECK(std::string(e.what()).find("did not answer in 1 s") != std::string::npos);
  }
  CHECK(retries == 0);  // it was 3: four waits of read_timeout_s and the delays
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::milliseconds(2500));

  int closed_port = 0;
  {
    testing::SilentHost gone;  // a port that was listening, closed again: refused
    closed_port = gone.port;
  }
  RelayClient refused("http://127.0.0.1:" + std::to_string(closed_port), "mw_token", policy);
  CHECK_THROWS_AS(refused.Send("m1", m), Error);
  CHECK(retries == 3);
}

}  // namespace
}  // namespace meshwire
