#include "server/http_api.h"

#include <httplib.h>
#include <spdlog/spdlog.h>

#include <charconv>
#include <nlohmann/json.hpp>
#include <regex>

#include "schemas/json_io.h"
#include "server/clock.h"
#include "server/mesh_service.h"

namespace meshwire {

void SendError(httplib::Response& res, const Error& e) {
  res.status = e.status();
  if (e.retry_after() > 0) res.set_header("Retry-After", std::to_string(e.retry_after()));
  res.set_content(ErrorBody(e), "application/json");
}

namespace {

using httplib::Request;
using httplib::Response;

void SendJson(Response& res, int status, const Json& body) {
  res.status = status;
  res.set_content(body.dump(), "application/json");
}

/// Runs a route body, turning every failure into the error JSON.
template <class F>
void Guard(const Request& req, Response& res, F&& body) {
  try {
    body();
  } catch (const Error& e) {
    SendError(res, e);
  } catch (const std::exception& e) {
    spdlog::error("{} {}: {}", req.method, req.path, e.what());
    SendError(res, Error(500, "internal", "The relay failed on this request; it was logged."));
  }
}

/// An integer query parameter in [lo, hi], or `fallback` when absent.
std::optional<std::int64_t> IntParam(const Request& req, const char* key, std::int64_t lo,
                                     std::int64_t hi) {
  if (!req.has_param(key)) return std::nullopt;
  std::string text = req.get_param_value(key);
  std::int64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || value < lo || value > hi) {
    throw Error::InvalidField(std::string("The parameter \"") + key + "\" must be an integer from " +
                              std::to_string(lo) + " to " + std::to_string(hi) + ".");
  }
  return value;
}

Json MessagesJson(const std::vector<Message>& messages) {
  Json list = Json::array();
  for (const Message& m : messages) list.push_back(ToJson(m));
  return list;
}

class Routes {
 public:
  Routes(httplib::Server& server, MeshService& service) : server_(server), service_(service) {}

  using Body = std::function<void(const Caller&, const Request&, Response&)>;

  void Add(const char* method, const char* pattern, Body body) {
    auto handler = [this, body = std::move(body)](const Request& req, Response& res) {
      Guard(req, res, [&] { body(service_.Authenticate(req.get_header_value("Authorization")), req, res); });
    };
    std::string m = method;
    if (m == "GET") server_.Get(pattern, handler);
    else if (m == "POST") server_.Post(pattern, handler);
    else if (m == "DELETE") server_.Delete(pattern, handler);
    Remember(method, pattern);
  }

  void Remember(const std::string& method, const char* pattern) {
    for (auto& shape : shapes_) {
      if (shape.first == pattern) {
        shape.second += ", " + method;
        return;
      }
    }
    shapes_.emplace_back(pattern, method);
  }

  /// The methods allowed on `path`, or "" when no route has that shape.
  std::string AllowedOn(const std::string& path) const {
    for (const auto& [pattern, methods] : shapes_) {
      if (std::regex_match(path, std::regex(pattern))) return methods;
    }
    return "";
  }

 private:
  httplib::Server& server_;
  MeshService& service_;
  std::vector<std::pair<std::string, std::string>> shapes_;
};

constexpr const char* kMesh = R"(/mesh/([^/]+))";

std::string P(const char* suffix) { return std::string(kMesh) + suffix; }

}  // namespace

void MountHttpApi(httplib::Server& server, MeshService& svc, Millis started_at) {
  auto routes = std::make_shared<Routes>(server, svc);

  server.Get("/health", [&svc, started_at](const Request& req, Response& res) {
    Guard(req, res, [&] {
      SendJson(res, 200,
               {{"status", "ok"},
                {"version", svc.options().version},
                {"uptime_s", (SystemClock().Now() - started_at) / 1000},
                {"region", svc.options().region},
                {"storage", svc.store().Kind()},
                {"auth", svc.options().auth_mode}});
    });
  });
  routes->Remember("GET", "/health");

  routes->Add("GET", "/me", [](const Caller& c, const Request&, Response& res) {
    Json j = {{"user", c.user()}, {"token_id", c.token.id}};
    if (c.token.mesh_id) j["mesh_id"] = *c.token.mesh_id;
    SendJson(res, 200, j);
  });

  // --- meshes ---
  routes->Add("POST", "/mesh", [&svc](const Caller& c, const Request& req, Response& res) {
    Json body = ParseObject(req.body);
    SendJson(res, 201, ToJson(svc.CreateMesh(c, RequireString(body, "name"))));
  });
  routes->Add("GET", "/mesh", [&svc](const Caller& c, const Request&, Response& res) {
    Json list = Json::array();
    for (const Mesh& m : svc.ListMeshes(c)) list.push_back(ToJson(m));
    SendJson(res, 200, {{"meshes", list}});
  });
  routes->Add("GET", kMesh, [&svc](const Caller& c, const Request& req, Response& res) {
    MeshInfo info = svc.GetMesh(c, req.matches[1]);
    Json j = ToJson(info.mesh);
    j["agents"] = {{"registered", info.registered}, {"active", info.active}};
    SendJson(res, 200, j);
  });
  routes->Add("DELETE", kMesh, [&svc](const Caller& c, const Request& req, Response& res) {
    svc.DeleteMesh(c, req.matches[1]);
    res.status = 204;
  });

  // --- members ---
  routes->Add("POST", P("/members").c_str(), [&svc](const Caller& c, const Request& req, Response& res) {
    Json body = ParseObject(req.body);
    std::string user = RequireString(body, "user");
    svc.AddMember(c, req.matches[1], user);
    SendJson(res, 201, {{"user", user}, {"role", "member"}});
  });
  routes->Add("GET", P("/members").c_str(), [&svc](const Caller& c, const Request& req, Response& res) {
    Json list = Json::array();
    for (const Member& m : svc.ListMembers(c, req.matches[1])) {
      list.push_back({{"user", m.user}, {"role", m.role}});
    }
    SendJson(res, 200, {{"members", list}});
  });
  routes->Add("DELETE", P("/members/([^/]+)").c_str(),
              [&svc](const Caller& c, const Request& req, Response& res) {
                svc.RemoveMember(c, req.matches[1], req.matches[2]);
                res.status = 204;
              });

  // --- agents ---
  routes->Add("POST", P("/agents").c_str(), [&svc](const Caller& c, const Request& req, Response& res) {
    Json body = ParseObject(req.body);
    std::string name = RequireString(body, "name");
    std::string harness = OptionalString(body, "harness").value_or("");
    RegisterResult r = svc.RegisterAgent(c, req.matches[1], name, harness);
    SendJson(res, r.created ? 201 : 200, {{"agent_id", r.agent.agent_id}, {"name", r.agent.name}});
  });
  routes->Add("GET", P("/agents").c_str(), [&svc](const Caller& c, const Request& req, Response& res) {
    Json list = Json::array();
    for (const AgentView& v : svc.ListAgents(c, req.matches[1])) {
      list.push_back(ToJson(v.agent, v.status, v.listening));
    }
    SendJson(res, 200, {{"agents", list}});
  });
  routes->Add("POST", P("/agents/([^/]+)/heartbeat").c_str(),
              [&svc](const Caller& c, const Request& req, Response& res) {
                svc.Heartbeat(c, req.matches[1], req.matches[2]);
                res.status = 204;
              });
  routes->Add("DELETE", P("/agents/([^/]+)").c_str(),
              [&svc](const Caller& c, const Request& req, Response& res) {
                svc.DeleteAgent(c, req.matches[1], req.matches[2]);
                res.status = 204;
              });

  // --- messages ---
  routes->Add("POST", P("/messages").c_str(), [&svc](const Caller& c, const Request& req, Response& res) {
    Json body = ParseObject(req.body);
    SendRequest r;
    r.from = RequireString(body, "from");
    r.to = OptionalString(body, "to");
    r.content = RequireString(body, "content");
    r.priority = OptionalString(body, "priority");
    r.reply_to = OptionalString(body, "reply_to");
    r.metadata_json = OptionalObjectText(body, "metadata");
    r.idempotency_key = OptionalString(body, "idempotency_key");
    SendJson(res, 201, ToJson(svc.Send(c, req.matches[1], r).message));
  });
  routes->Add("GET", P("/messages").c_str(), [&svc](const Caller& c, const Request& req, Response& res) {
    auto after = IntParam(req, "after", 0, INT64_MAX);
    auto limit = static_cast<int>(IntParam(req, "limit", 1, 1000).value_or(100));
    if (!req.has_param("agent_id")) {
      if (req.has_param("wait")) {
        throw Error::InvalidField("\"wait\" needs \"agent_id\": only an agent's poll can wait.");
      }
      auto messages = svc.History(c, req.matches[1], after.value_or(0), limit);
      std::int64_t cursor = messages.empty() ? after.value_or(0) : messages.back().seq;
      SendJson(res, 200, {{"messages", MessagesJson(messages)}, {"cursor", cursor}});
      return;
    }
    PollRequest r;
    r.agent_id = req.get_param_value("agent_id");
    r.after = after;
    r.wait_s = static_cast<int>(IntParam(req, "wait", 0, svc.options().max_wait_s).value_or(0));
    r.limit = limit;
    if (r.wait_s > 0) r.peer = MakeTcpPeer(req.remote_addr, req.remote_port, req.local_port);
    PollResult result = svc.Poll(c, req.matches[1], r);
    SendJson(res, 200, {{"messages", MessagesJson(result.messages)}, {"cursor", result.cursor}});
  });
  routes->Add("GET", P("/messages/([^/]+)").c_str(),
              [&svc](const Caller& c, const Request& req, Response& res) {
                auto [message, receipts] = svc.GetMessage(c, req.matches[1], req.matches[2]);
                Json j = ToJson(message);
                Json delivery = Json::array();
                for (const Receipt& r : receipts) delivery.push_back(ToJson(r));
                j["delivery"] = std::move(delivery);
                SendJson(res, 200, j);
              });
  routes->Add("POST", P("/messages/([^/]+)/reply").c_str(),
              [&svc](const Caller& c, const Request& req, Response& res) {
                Json body = ParseObject(req.body);
                AppendResult r = svc.Reply(c, req.matches[1], req.matches[2],
                                           RequireString(body, "from"), RequireString(body, "content"),
                                           OptionalObjectText(body, "metadata"));
                SendJson(res, 201, ToJson(r.message));
              });
  routes->Add("GET", P("/integrate").c_str(), [&svc](const Caller& c, const Request& req, Response& res) {
    std::string host = req.get_header_value("Host");
    std::string base = "http://" + (host.empty() ? std::string("127.0.0.1:7420") : host);
    res.set_content(svc.Integrate(c, req.matches[1], base), "text/markdown; charset=utf-8");
  });

  // --- tokens ---
  routes->Add("GET", "/tokens", [&svc](const Caller& c, const Request&, Response& res) {
    Json list = Json::array();
    for (const Token& t : svc.ListTokens(c)) list.push_back(ToJson(t));
    SendJson(res, 200, {{"tokens", list}});
  });
  routes->Add("POST", "/tokens", [&svc](const Caller& c, const Request& req, Response& res) {
    Json body = ParseObject(req.body);
    CreatedToken t = svc.CreateToken(c, RequireString(body, "name"), OptionalString(body, "mesh_id"));
    Json j = {{"id", t.token.id}, {"token", t.secret}, {"name", t.token.name}};
    if (t.token.mesh_id) j["mesh_id"] = *t.token.mesh_id;
    SendJson(res, 201, j);
  });
  routes->Add("DELETE", "/tokens/([^/]+)", [&svc](const Caller& c, const Request& req, Response& res) {
    svc.RevokeToken(c, req.matches[1]);
    res.status = 204;
  });

  // Answers cpp-httplib produces itself (no route, bad request, body too
  // large) get the contract's error JSON too.
  server.set_error_handler(httplib::Server::HandlerWithResponse(
      [routes](const Request& req, Response& res) {
    if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
    if (res.status == 404 || res.status == 400) {
      std::string allowed = routes->AllowedOn(req.path);
      bool method_ok = allowed.empty() || (", " + allowed + ",").find(", " + req.method + ",") !=
                                              std::string::npos;
      if (res.status == 400 && method_ok) {
        SendError(res, Error(400, "bad_request",
                             "The relay could not read this HTTP request: a POST needs a "
                             "Content-Length header (curl: -d '{}'), and a header line is at most "
                             "8 KiB."));
      } else if (!allowed.empty()) {
        res.set_header("Allow", allowed);
        SendError(res, Error(405, "method_not_allowed",
                             req.method + " is not allowed on " + req.path + "; use " + allowed + "."));
      } else {
        SendError(res, Error::NotFound("not_found", "No route " + req.method + " " + req.path +
                                                        "; see GET /mesh/{mesh}/integrate or docs/API.md."));
      }
    } else if (res.status == 413) {
      SendError(res, Error(413, "payload_too_large",
                           "The request body is too large; a message's content is at most 10240 bytes."));
    } else {
      SendError(res, Error(res.status, "bad_request", "The relay could not read this HTTP request."));
    }
    return httplib::Server::HandlerResponse::Handled;
  }));
  server.set_exception_handler([](const Request& req, Response& res, std::exception_ptr ep) {
    Guard(req, res, [&] { std::rethrow_exception(ep); });
  });
  server.set_logger([](const Request& req, const Response& res) {
    spdlog::debug("{} {} -> {}", req.method, req.path, res.status);
  });
}

}  // namespace meshwire
