#include "server/auth_routes.h"

#include <httplib.h>
#include <spdlog/spdlog.h>

#include <mutex>
#include <nlohmann/json.hpp>
#include <regex>
#include <unordered_map>

#include "schemas/error.h"
#include "schemas/ids.h"
#include "schemas/json_io.h"
#include "server/clock.h"
#include "server/http_api.h"
#include "server/mesh_service.h"

namespace meshwire {

namespace {

using httplib::Request;
using httplib::Response;
using nlohmann::json;

constexpr Millis kCodeLifetimeMs = 5 * 60 * 1000;

/// One-time codes and GitHub round trips in flight (memory only: a relay
/// restart during a sign-in just means signing in again).
class PendingLogins {
 public:
  struct Grant {
    std::string token, token_id, user;
    Millis expires = 0;
  };
  struct Redirect {
    int port = 0;
    std::string state;
    Millis expires = 0;
  };

  std::string AddGrant(Grant g, Millis now) { return Add(grants_, std::move(g), now); }
  std::optional<Grant> TakeGrant(const std::string& code, Millis now) {
    return Take(grants_, code, now);
  }
  std::string AddRedirect(Redirect r, Millis now) { return Add(redirects_, std::move(r), now); }
  std::optional<Redirect> TakeRedirect(const std::string& key, Millis now) {
    return Take(redirects_, key, now);
  }

 private:
  /// Stores `entry` under a new random key for kCodeLifetimeMs, dropping
  /// whatever has expired by `now` (so unused entries never pile up).
  template <typename T>
  std::string Add(std::unordered_map<std::string, T>& map, T entry, Millis now) {
    std::string key = RandomBase62(32);
    entry.expires = now + kCodeLifetimeMs;
    std::lock_guard lock(mu_);
    std::erase_if(grants_, [&](const auto& kv) { return kv.second.expires < now; });
    std::erase_if(redirects_, [&](const auto& kv) { return kv.second.expires < now; });
    map[key] = std::move(entry);
    return key;
  }
  /// Removes the entry under `key`; returns it unless it has expired.
  template <typename T>
  std::optional<T> Take(std::unordered_map<std::string, T>& map, const std::string& key,
                        Millis now) {
    std::lock_guard lock(mu_);
    auto it = map.find(key);
    if (it == map.end()) return std::nullopt;
    T entry = std::move(it->second);
    map.erase(it);
    if (entry.expires < now) return std::nullopt;
    return entry;
  }

  std::mutex mu_;
  std::unordered_map<std::string, Grant> grants_;        // guarded by mu_
  std::unordered_map<std::string, Redirect> redirects_;  // guarded by mu_
};

std::string HtmlEscape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string Page(const std::string& title, const std::string& body) {
  return R"(<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>)" + HtmlEscape(title) + R"( · meshwire</title>
<style>
  body { font: 16px/1.5 system-ui, sans-serif; background: #0f1117; color: #e6e6e6;
         display: grid; place-items: center; min-height: 100vh; margin: 0; }
  main { background: #181b24; padding: 2rem 2.5rem; border-radius: 12px; max-width: 26rem;
         box-shadow: 0 8px 30px rgba(0,0,0,.4); }
  h1 { font-size: 1.3rem; margin: 0 0 .5rem; }
  label { display: block; margin: 1rem 0 .3rem; }
  input { width: 100%; box-sizing: border-box; padding: .55rem .7rem; border-radius: 6px;
          border: 1px solid #3a3f4b; background: #0f1117; color: inherit; font-size: 1rem; }
  button { margin-top: 1.2rem; width: 100%; padding: .6rem; border: 0; border-radius: 6px;
           background: #4f7cff; color: white; font-size: 1rem; cursor: pointer; }
  p.note { color: #9aa0aa; font-size: .9rem; }
  .error { color: #ff7b72; }
</style></head>
<body><main>)" + body + "</main></body></html>\n";
}

void SendPage(Response& res, int status, const std::string& title, const std::string& body) {
  res.status = status;
  res.set_header("Cache-Control", "no-store");
  res.set_header("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'");
  res.set_content(Page(title, body), "text/html; charset=utf-8");
}

void SendErrorPage(Response& res, int status, const std::string& message) {
  SendPage(res, status, "Sign-in failed",
           "<h1>🕸 Sign-in failed</h1><p class=\"error\">" + HtmlEscape(message) +
               "</p><p class=\"note\">Run <code>meshwire login</code> again.</p>");
}

/// The CLI's loopback port and state, checked so the redirect can only go
/// back to this machine with a well-formed state.
bool ReadCliParams(const Request& req, int& port, std::string& state) {
  std::string p = req.get_param_value("port");
  state = req.get_param_value("state");
  static const std::regex kState("[A-Za-z0-9_-]{8,128}");
  if (p.empty() || p.size() > 5 || p.find_first_not_of("0123456789") != std::string::npos) return false;
  port = std::stoi(p);
  return port > 0 && port < 65536 && std::regex_match(state, kState);
}

void RedirectToCli(Response& res, int port, const std::string& state, const std::string& code) {
  res.status = 302;
  res.set_header("Cache-Control", "no-store");
  res.set_header("Location", "http://127.0.0.1:" + std::to_string(port) + "/callback?code=" + code +
                                 "&state=" + state);
}

std::string BaseUrl(const Request& req) {
  std::string proto = req.get_header_value("X-Forwarded-Proto");
  return (proto == "https" ? "https://" : "http://") + req.get_header_value("Host");
}

/// GitHub's code -> access token -> login. Throws Error with a sentence.
std::string GithubLogin(const AuthOptions& o, const std::string& code, const std::string& redirect_uri) {
  httplib::Client web(o.github_url);
  web.set_connection_timeout(10, 0);
  web.set_read_timeout(20, 0);
  httplib::Params form = {{"client_id", o.github_client_id},
                          {"client_secret", o.github_client_secret},
                          {"code", code},
                          {"redirect_uri", redirect_uri}};
  auto r = web.Post("/login/oauth/access_token", httplib::Headers{{"Accept", "application/json"}}, form);
  if (!r || r->status != 200) {
    throw Error(502, "github_unavailable", "GitHub did not answer the token exchange; try again.");
  }
  json t = json::parse(r->body, nullptr, false);
  if (!t.is_object() || !t.contains("access_token") || !t["access_token"].is_string()) {
    throw Error(502, "github_refused", "GitHub refused the sign-in (" +
                                           (t.is_object() ? t.value("error", "no token") : "bad answer") +
                                           ").");
  }
  httplib::Client api(o.github_api_url);
  api.set_connection_timeout(10, 0);
  api.set_read_timeout(20, 0);
  auto u = api.Get("/user", httplib::Headers{{"Authorization", "Bearer " + t["access_token"].get<std::string>()},
                                            {"Accept", "application/vnd.github+json"},
                                            {"User-Agent", "meshwire"}});
  json user = u && u->status == 200 ? json::parse(u->body, nullptr, false) : json();
  if (!user.is_object() || !user.contains("login") || !user["login"].is_string()) {
    throw Error(502, "github_unavailable", "GitHub did not say who you are; try again.");
  }
  return user["login"].get<std::string>();
}

}  // namespace

void MountAuthRoutes(httplib::Server& server, Store& store, const Clock& clock,
                     const AuthOptions& options) {
  auto pending = std::make_shared<PendingLogins>();

  // Signs `user` in: a new token and a one-time code for the CLI.
  auto grant = [&store, &clock, pending](const std::string& user) {
    CreatedToken t = MeshService::IssueToken(store, clock, user, "meshwire login", std::nullopt);
    return pending->AddGrant({t.secret, t.token.id, user}, clock.Now());
  };

  server.Get("/auth/cli", [=, &clock](const Request& req, Response& res) {
    int port = 0;
    std::string state;
    if (options.mode == "token") {
      SendErrorPage(res, 404,
                    "This relay signs nobody in from the browser: ask its administrator for a token "
                    "(meshwire admin token create) and run `meshwire init --token <token>`.");
      return;
    }
    if (!ReadCliParams(req, port, state)) {
      SendErrorPage(res, 400, "This sign-in link is incomplete (port and state are needed).");
      return;
    }
    if (options.mode == "github") {
      std::string key = pending->AddRedirect({port, state}, clock.Now());
      httplib::Params q = {{"client_id", options.github_client_id},
                           {"redirect_uri", BaseUrl(req) + "/auth/github/callback"},
                           {"state", key},
                           {"scope", "read:user"}};
      res.status = 302;
      res.set_header("Location", options.github_url + "/login/oauth/authorize?" +
                                     httplib::detail::params_to_query_str(q));
      return;
    }
    SendPage(res, 200, "Sign in",
             "<h1>🕸 Sign in to meshwire</h1>"
             "<p class=\"note\">This relay runs with local sign-in: it approves the name you give. "
             "Your terminal receives a token for it.</p>"
             "<form method=\"post\" action=\"/auth/cli\">"
             "<input type=\"hidden\" name=\"port\" value=\"" + std::to_string(port) + "\">"
             "<input type=\"hidden\" name=\"state\" value=\"" + HtmlEscape(state) + "\">"
             "<label for=\"user\">User name</label>"
             "<input id=\"user\" name=\"user\" required autofocus maxlength=\"64\" "
             "pattern=\"[A-Za-z0-9._\\-]{1,64}\" autocomplete=\"username\">"
             "<button type=\"submit\">Sign in</button></form>");
  });

  server.Post("/auth/cli", [=](const Request& req, Response& res) {
    int port = 0;
    std::string state;
    if (options.mode != "local") {
      SendErrorPage(res, 404, "This relay does not sign in by name.");
      return;
    }
    if (!ReadCliParams(req, port, state)) {
      SendErrorPage(res, 400, "This sign-in form is incomplete (port and state are needed).");
      return;
    }
    std::string user = req.get_param_value("user");
    if (!IsValidName(user)) {
      SendErrorPage(res, 400, "A user name is 1-64 of A-Z a-z 0-9 . _ -.");
      return;
    }
    try {
      RedirectToCli(res, port, state, grant(user));
    } catch (const std::exception& e) {
      spdlog::error("sign-in of {} failed: {}", user, e.what());
      SendErrorPage(res, 503, "The relay could not save your sign-in; try again.");
    }
  });

  server.Get("/auth/github/callback", [=, &clock](const Request& req, Response& res) {
    auto redirect = pending->TakeRedirect(req.get_param_value("state"), clock.Now());
    if (options.mode != "github" || !redirect) {
      SendErrorPage(res, 400, "This GitHub sign-in is unknown or expired.");
      return;
    }
    try {
      std::string user = GithubLogin(options, req.get_param_value("code"),
                                     BaseUrl(req) + "/auth/github/callback");
      RedirectToCli(res, redirect->port, redirect->state, grant(user));
    } catch (const Error& e) {
      SendErrorPage(res, e.status(), e.what());
    }
  });

  server.Post("/auth/cli/token", [=, &clock](const Request& req, Response& res) {
    try {
      json body = ParseObject(req.body);
      auto g = pending->TakeGrant(RequireString(body, "code"), clock.Now());
      if (!g) {
        throw Error::BadRequest("invalid_code",
                                "This sign-in code is unknown, used or expired; run `meshwire login` again.");
      }
      res.set_content(json({{"token", g->token}, {"user", g->user}, {"token_id", g->token_id}}).dump(),
                      "application/json");
    } catch (const Error& e) {
      SendError(res, e);
    }
  });
}

}  // namespace meshwire
