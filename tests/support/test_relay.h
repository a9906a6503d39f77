// A real relay for integration tests: in this process, on a free loopback
// port, storage in a temporary folder, time on a ManualClock (presence,
// retention and long-poll deadlines move when the test says so), housekeeping
// off (tests call Sweep themselves). Requests go over real HTTP.
#pragma once

#include <httplib.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "server/core/clock.h"
#include "server/core/mesh_service.h"
#include "server/relay.h"
#include "server/core/waiters.h"
#include "tests/support/temp_dir.h"

namespace meshwire::testing {

inline constexpr Millis kTestEpoch = 1795000000000;  // 2026-11-18, a fixed start

struct HttpAnswer {
  int status = 0;  // 0: no answer (connection failed)
  nlohmann::json json;
  std::string body;
  httplib::Headers headers;
};

class TestRelay {
 public:
  explicit TestRelay(RelayOptions options = {}) : clock_(kTestEpoch) {
    options.host = "127.0.0.1";
    options.port = 0;
    options.storage = "sqlite:" + dir_ / "relay.db";
    options.clock = &clock_;
    options.housekeeping = false;
    relay_ = std::make_unique<Relay>(options);
    relay_->Bind();
    relay_->Start();
  }
  ~TestRelay() { relay_->Stop(); }

  /// A new token for `user` (created if new), as `meshwire admin token create` makes it.
  std::string TokenFor(const std::string& user) {
    return MeshService::IssueToken(relay_->store(), clock_, user, "test", std::nullopt).secret;
  }

  /// One request over HTTP; `body` is sent as is (it need not be valid JSON).
  HttpAnswer Call(const std::string& method, const std::string& path, const std::string& token,
                  const std::string& body = "") {
    httplib::Client client("127.0.0.1", relay_->port());
    client.set_read_timeout(90, 0);
    httplib::Headers headers;
    if (!token.empty()) headers.emplace("Authorization", "Bearer " + token);
    httplib::Result r = method == "GET"      ? client.Get(path, headers)
                        : method == "HEAD"   ? client.Head(path, headers)
                        : method == "DELETE" ? client.Delete(path, headers, body, "application/json")
                        : method == "POST"   ? client.Post(path, headers, body, "application/json")
                                             : client.Patch(path, headers, body, "application/json");
    HttpAnswer a;
    if (!r) return a;
    a.status = r->status;
    a.body = r->body;
    a.headers = r->headers;
    a.json = nlohmann::json::parse(r->body, nullptr, /*allow_exceptions=*/false);
    return a;
  }
  HttpAnswer Get(const std::string& path, const std::string& token) { return Call("GET", path, token); }
  HttpAnswer Post(const std::string& path, const std::string& token, const nlohmann::json& body) {
    return Call("POST", path, token, body.dump());
  }

  /// Moves the relay's clock by `ms` and lets it act on deadlines that came.
  void Advance(Millis ms) {
    clock_.Advance(ms);
    relay_->waiters().Tick();
  }

  /// Creates a mesh owned by the token's user; returns its id.
  std::string CreateMesh(const std::string& token, const std::string& name = "fleet") {
    return Post("/mesh", token, {{"name", name}}).json.at("mesh_id").get<std::string>();
  }
  /// Registers an agent; returns its id.
  std::string Register(const std::string& token, const std::string& mesh, const std::string& name) {
    return Post("/mesh/" + mesh + "/agents", token, {{"name", name}}).json.at("agent_id").get<std::string>();
  }

  ManualClock& clock() { return clock_; }
  Relay& relay() { return *relay_; }
  Store& store() { return relay_->store(); }
  int port() const { return relay_->port(); }
  const TempDir& dir() const { return dir_; }

 private:
  TempDir dir_;
  ManualClock clock_;
  std::unique_ptr<Relay> relay_;
};

}  // namespace meshwire::testing
