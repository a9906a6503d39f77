#include "server/http/api_routes.h"

#include <spdlog/spdlog.h>

#include <charconv>
#include <nlohmann/json.hpp>

#include "schemas/json_io.h"
#include "schemas/rest.h"
#include "server/core/clock.h"
#include "server/core/mesh_service.h"
#include "server/http/router.h"

namespace meshwire {

void Guarded(const ExchangePtr& ex, const std::function<void()>& body) {
  try {
    body();
  } catch (const Error& e) {
    ex->Respond(HttpResponse::FromError(e));
  } catch (const std::exception& e) {
    const HttpRequest& req = ex->request();
    spdlog::error("{} {}: {}", req.method, ForLog(req.path), ForLog(e.what(), 1000));
    ex->Respond(HttpResponse::FromError(
        Error(500, "internal", "The relay failed on this request; it was logged.")));
  }
}

namespace {

using Route = std::function<HttpResponse(const Caller&, const HttpRequest&)>;

HttpResponse JsonAnswer(int status, const Json& body) { return HttpResponse::Json(status, JsonText(body)); }

/// A route that answers at once, after authenticating its caller.
Handler Sync(MeshService& svc, Route route) {
  return [&svc, route = std::move(route)](const ExchangePtr& ex) {
    Guarded(ex, [&] {
      const HttpRequest& req = ex->request();
      Caller caller = svc.Authenticate(req.HeaderOr("Authorization"));
      ex->Respond(route(caller, req));
    });
  };
}

/// An integer query parameter in [lo, hi], or nullopt when absent.
std::optional<std::int64_t> IntParam(const HttpRequest& req, const char* key, std::int64_t lo,
                                     std::int64_t hi) {
  const std::string* text = req.Query(key);
  if (!text) return std::nullopt;
  std::int64_t value = 0;
  auto [end, ec] = std::from_chars(text->data(), text->data() + text->size(), value);
  const bool signed_count = lo >= 0 && !text->empty() && text->front() == '-';  // "-0"
  if (ec != std::errc() || end != text->data() + text->size() || value < lo || value > hi || signed_count) {
    throw Error::InvalidField(std::string("The parameter \"") + key + "\" must be an integer from " +
                              std::to_string(lo) + " to " + std::to_string(hi) + ".");
  }
  return value;
}

/// {"messages":[...],"cursor":N} from messages serialized once each.
std::string MessagesBody(const std::vector<CommittedPtr>& messages, std::int64_t cursor);

/// A poll's answer; one message alone (a woken poll's usual case) shares its
/// text with every other poll that message woke.
HttpResponse PollAnswer(const PollResult& result) {
  if (result.messages.size() == 1 && result.cursor == result.messages[0]->message().seq) {
    HttpResponse r = HttpResponse::Json(200, "");
    r.shared_body = result.messages[0]->PollAnswer();
    return r;
  }
  return HttpResponse::Json(200, MessagesBody(result.messages, result.cursor));
}

std::string MessagesBody(const std::vector<CommittedPtr>& messages, std::int64_t cursor) {
  std::size_t size = 32;
  for (const CommittedPtr& m : messages) size += m->Json().size() + 1;
  std::string body;
  body.reserve(size);
  body += "{\"messages\":[";
  for (std::size_t i = 0; i < messages.size(); ++i) {
    if (i) body += ',';
    body += messages[i]->Json();
  }
  body += "],\"cursor\":" + std::to_string(cursor) + "}";
  return body;
}

HttpResponse MeshJson(const Mesh& mesh, int status = 200) { return JsonAnswer(status, ToJson(mesh)); }

// --- meshes and members -------------------------------------------------------------------

HttpResponse Me(const Caller& c, const HttpRequest&) {
  return JsonAnswer(200, ToJson(MeAnswer{c.user(), c.token.id, c.token.mesh_id}));
}

void AddMeshRoutes(Router& router, MeshService& svc) {
  router.Add("GET", "/me", Sync(svc, Me));
  router.Add("POST", "/mesh", Sync(svc, [&svc](const Caller& c, const HttpRequest& req) {
    return MeshJson(svc.CreateMesh(c, RequireString(ParseObject(req.body), "name")), 201);
  }));
  router.Add("GET", "/mesh", Sync(svc, [&svc](const Caller& c, const HttpRequest&) {
    Json list = Json::array();
    for (const Mesh& m : svc.ListMeshes(c)) list.push_back(ToJson(m));
    return JsonAnswer(200, {{"meshes", list}});
  }));
  router.Add("GET", "/mesh/{mesh}", Sync(svc, [&svc](const Caller& c, const HttpRequest& req) {
    return JsonAnswer(200, ToJson(svc.GetMesh(c, req.params[0])));
  }));
  router.Add("DELETE", "/mesh/{mesh}", Sync(svc, [&svc](const Caller& c, const HttpRequest& req) {
    svc.DeleteMesh(c, req.params[0]);
    return HttpResponse::Empty(204);
  }));
  router.Add("POST", "/mesh/{mesh}/members", Sync(svc, [&svc](const Caller& c, const HttpRequest& req) {
    const auto added = svc.AddMember(c, req.params[0], RequireString(ParseObject(req.body), "user"));
    return JsonAnswer(201, {{"user", added.user}, {"role", "member"}, {"new_user", added.new_user}});
  }));
  router.Add("GET", "/mesh/{mesh}/members", Sync(svc, [&svc](const Caller& c, const HttpRequest& req) {
    Json list = Json::array();
    for (const Member& m : svc.ListMembers(c, req.params[0])) list.push_back({{"user", m.user}, {"role", m.role}});
    return JsonAnswer(200, {{"members", list}});
  }));
  router.Add("DELETE", "/mesh/{mesh}/members/{user}",
             Sync(svc, [&svc](const Caller& c, const HttpRequest& req) {
               svc.RemoveMember(c, req.params[0], req.params[1]);
               return HttpResponse::Empty(204);
             }));
}

// --- agents -------------------------------------------------------------------------------

void AddAgentRoutes(Router& router, MeshService& svc) {
  router.Add("POST", "/mesh/{mesh}/agents", Sync(svc, [&svc](const Caller& c, const HttpRequest& req) {
    Json body = ParseObject(req.body);
    std::string name = RequireString(body, "name");
    std::string harness = OptionalString(body, "harness").value_or("");
    RegisterResult r = svc.RegisterAgent(c, req.params[0], name, harness);
    return JsonAnswer(r.created ? 201 : 200, ToJson(RegisterAnswer{r.agent.agent_id, r.agent.name}));
  }));
  router.Add("GET", "/mesh/{mesh}/agents", Sync(svc, [&svc](const Caller& c, const HttpRequest& req) {
    Json list = Json::array();
    for (const AgentView& v : svc.ListAgents(c, req.params[0])) {
      list.push_back(ToJson(v.agent, v.status, v.listening));
    }
    return JsonAnswer(200, {{"agents", list}});
  }));
  router.Add("POST", "/mesh/{mesh}/agents/{agent}/heartbeat",
             Sync(svc, [&svc](const Caller& c, const HttpRequest& req) {
               svc.Heartbeat(c, req.params[0], req.params[1]);
               return HttpResponse::Empty(204);
             }));
  router.Add("DELETE", "/mesh/{mesh}/agents/{agent}",
             Sync(svc, [&svc](const Caller& c, const HttpRequest& req) {
               svc.DeleteAgent(c, req.params[0], req.params[1]);
               return HttpResponse::Empty(204);
             }));
}

// --- messages -----------------------------------------------------------------------------

/// An error as its answer (for errors that arrive as exception_ptr).
HttpResponse ErrorAnswer(const std::exception_ptr& error) {
  try {
    std::rethrow_exception(error);
  } catch (const Error& e) {
    return HttpResponse::FromError(e);
  } catch (const std::exception& e) {
    spdlog::error("a request failed: {}", ForLog(e.what(), 1000));
  }
  return HttpResponse::FromError(Error(500, "internal", "The relay failed on this request; it was logged."));
}

/// POST /mesh/{mesh}/messages, on the event loop: the checks use cached
/// identities, and the commit answers through a completion, so no thread
/// waits for the disk.
Handler SendMessage(MeshService& svc) {
  return [&svc](const ExchangePtr& ex) {
    Guarded(ex, [&] {
      const HttpRequest& req = ex->request();
      Caller caller = svc.Authenticate(req.HeaderOr("Authorization"));
      const OutgoingMessage r = OutgoingMessageFromBody(req.body);
      svc.Send(caller, req.params[0], r, [ex](std::exception_ptr error, AppendResult result) {
        if (error) {
          ex->RespondWith([error] { return ErrorAnswer(error); });
          return;
        }
        ex->RespondWith([m = std::move(result.message)] { return HttpResponse::Json(201, MessageJsonText(m)); });
      });
    });
  };
}

HttpResponse History(MeshService& svc, const Caller& c, const HttpRequest& req) {
  if (req.Query("wait")) throw Error::InvalidField("\"wait\" needs \"agent_id\": only an agent's poll can wait.");
  auto after = IntParam(req, "after", 0, INT64_MAX).value_or(0);
  auto limit = static_cast<int>(IntParam(req, "limit", 1, 1000).value_or(100));
  std::vector<CommittedPtr> messages;
  for (Message& m : svc.History(c, req.params[0], after, limit)) {
    messages.push_back(std::make_shared<const CommittedMessage>(std::move(m)));
  }
  const std::int64_t cursor =
      messages.empty() ? svc.HistoryEnd(req.params[0], after) : messages.back()->message().seq;
  return HttpResponse::Json(200, MessagesBody(messages, cursor));
}

/// GET /mesh/{mesh}/messages: an agent's poll (it may wait), or the history.
Handler Poll(MeshService& svc) {
  return [&svc](const ExchangePtr& ex) {
    Guarded(ex, [&] {
      const HttpRequest& req = ex->request();
      Caller caller = svc.Authenticate(req.HeaderOr("Authorization"));
      const std::string* agent_id = req.Query("agent_id");
      if (!agent_id) {
        ex->Respond(History(svc, caller, req));
        return;
      }
      PollRequest r;
      r.agent_id = *agent_id;
      r.after = IntParam(req, "after", 0, INT64_MAX);
      r.limit = static_cast<int>(IntParam(req, "limit", 0, 1000).value_or(100));
      r.wait_s = static_cast<int>(IntParam(req, "wait", 0, svc.options().max_wait_s).value_or(0));
      Waiters::Handle wait =
          svc.Poll(caller, req.params[0], r, [ex](std::exception_ptr error, PollResult result) {
            if (!error) {
              // Built on the connection's thread: this may run on the writer's.
              ex->RespondWith([result = std::move(result)] { return PollAnswer(result); });
              return;
            }
            ex->Respond(ErrorAnswer(error));
          });
      // A client that hangs up ends its wait at once, reading nothing.
      if (wait) ex->OnHangUp([&svc, wait] { svc.CancelPoll(wait); });
    });
  };
}

void AddMessageRoutes(Router& router, MeshService& svc, const ApiOptions& options) {
  router.Add("POST", "/mesh/{mesh}/messages", SendMessage(svc), Router::Run::kInline);
  router.Add("GET", "/mesh/{mesh}/messages", Poll(svc), Router::Run::kOnWorker, Router::Head::kNoHead);
  router.Add("GET", "/mesh/{mesh}/messages/{id}", Sync(svc, [&svc](const Caller& c, const HttpRequest& req) {
    auto [message, receipts] = svc.GetMessage(c, req.params[0], req.params[1]);
    Json j = ToJson(message);
    Json delivery = Json::array();
    for (const Receipt& r : receipts) delivery.push_back(ToJson(r));
    j["delivery"] = std::move(delivery);
    return JsonAnswer(200, j);
  }));
  router.Add("POST", "/mesh/{mesh}/messages/{id}/reply",
             Sync(svc, [&svc](const Caller& c, const HttpRequest& req) {
               Json body = ParseObject(req.body);
               if (body.contains("to")) {
                 throw Error::InvalidField("A reply goes to the original message's sender: leave out \"to\" (or "
                                           "send with reply_to to write to someone else).");
               }
               AppendResult r = svc.Reply(c, req.params[0], req.params[1], RequireString(body, "from"),
                                          RequireString(body, "content"), OptionalObjectText(body, "metadata"),
                                          OptionalString(body, "priority"), OptionalString(body, "idempotency_key"));
               return JsonAnswer(201, ToJson(r.message));
             }));
  router.Add("GET", "/mesh/{mesh}/integrate",
             Sync(svc, [&svc, url = options.public_url, sign_in = options.sign_in_page](const Caller& c,
                                                                                          const HttpRequest& req) {
               return HttpResponse::Text(200, "text/markdown; charset=utf-8",
                                         svc.Integrate(c, req.params[0], url, sign_in));
             }));
}

// --- tokens -------------------------------------------------------------------------------

void AddTokenRoutes(Router& router, MeshService& svc) {
  router.Add("GET", "/tokens", Sync(svc, [&svc](const Caller& c, const HttpRequest&) {
    Json list = Json::array();
    for (const Token& t : svc.ListTokens(c)) list.push_back(ToJson(t));
    return JsonAnswer(200, {{"tokens", list}});
  }));
  router.Add("POST", "/tokens", Sync(svc, [&svc](const Caller& c, const HttpRequest& req) {
    Json body = ParseObject(req.body);
    if (auto it = body.find("mesh_id"); it != body.end() && it->is_null()) {
      // A script's unset variable rendered as null must not get the user's unscoped key.
      throw Error::InvalidField("mesh_id is null: give a mesh id to scope the token to that mesh, or leave "
                                "mesh_id out for a token that works on all your meshes.");
    }
    CreatedToken t = svc.CreateToken(c, RequireString(body, "name"), OptionalString(body, "mesh_id"));
    return JsonAnswer(201, ToJson(NewTokenAnswer{t.token.id, t.secret, t.token.name, t.token.mesh_id}));
  }));
  router.Add("DELETE", "/tokens/{id}", Sync(svc, [&svc](const Caller& c, const HttpRequest& req) {
    svc.RevokeToken(c, req.params[0]);
    return HttpResponse::Empty(204);
  }));
}

}  // namespace

void AddApiRoutes(Router& router, MeshService& svc, const ApiOptions& options) {
  // On a worker: it asks the storage (a round trip to PostgreSQL).
  router.Add("GET", "/health", [&svc, started_at = options.started_at](const ExchangePtr& ex) {
    HealthAnswer h{"ok", svc.options().version, svc.options().region, svc.store().Kind(),
                   svc.options().auth_mode, (SystemClock().Now() - started_at) / 1000,
                   svc.store().NodeId()};
    try {
      svc.store().CheckAvailable();
    } catch (const Error& e) {
      if (e.status() != 503) throw;
      // Every other request gets 503 too: say so here, for load balancers.
      h.status = "unavailable";
      Json body = ToJson(h);
      body["error"] = ErrorJson(e)["error"];
      return ex->Respond(JsonAnswer(503, body).Header("Retry-After", "1"));
    }
    ex->Respond(JsonAnswer(200, ToJson(h)));
  });
  AddMeshRoutes(router, svc);
  AddAgentRoutes(router, svc);
  AddMessageRoutes(router, svc, options);
  AddTokenRoutes(router, svc);
}

}  // namespace meshwire
