#include "server/http/auth_routes.h"

#include <httplib.h>

#include <optional>
#include <nlohmann/json.hpp>
#include <regex>

#include "schemas/error.h"
#include "schemas/html.h"
#include "schemas/ids.h"
#include "schemas/json_io.h"
#include "server/core/clock.h"
#include "server/core/mesh_service.h"
#include "server/core/rate_limiter.h"
#include "server/core/store.h"
#include "server/http/router.h"
#include "server/http/url.h"

namespace meshwire {

namespace {

using nlohmann::json;

constexpr Millis kCodeLifetimeMs = 5 * 60 * 1000;

/// One-time codes and GitHub round trips in flight, in the storage (so any
/// relay node on it can finish a sign-in another began), under the SHA-256
/// of their random key; each can be taken once, within kCodeLifetimeMs.
class PendingLogins {
 public:
  // A signed-in user whose CLI has not yet redeemed the code: the token is
  // made at redemption, so a code never redeemed leaves no token behind.
  struct Grant {
    std::string user;
    std::string token_name;  // "meshwire login", or "dashboard" for the browser's own
    std::string browser;     // the dashboard's: the sign-in cookie of the browser that began it
  };
  /// Where a GitHub sign-in goes back to: the CLI's loopback port and
  /// state, or the dashboard (port 0) of the browser with cookie `browser`.
  struct Redirect {
    int port = 0;
    std::string state;
    std::string browser;
  };

  PendingLogins(Store& store, const Clock& clock) : store_(store), clock_(clock) {}

  std::string AddGrant(const Grant& g) {
    return Add({{"grant", g.user}, {"token_name", g.token_name}, {"browser", g.browser}});
  }
  std::optional<Grant> TakeGrant(const std::string& code) {
    json j = Take(code, "grant");
    if (!j.is_object()) return std::nullopt;
    return Grant{j["grant"].get<std::string>(), j["token_name"].get<std::string>(), j.value("browser", "")};
  }
  std::string AddRedirect(const Redirect& r) {
    return Add({{"redirect", r.port}, {"state", r.state}, {"browser", r.browser}});
  }
  std::optional<Redirect> TakeRedirect(const std::string& key) {
    json j = Take(key, "redirect");
    if (!j.is_object()) return std::nullopt;
    return Redirect{j["redirect"].get<int>(), j["state"].get<std::string>(), j.value("browser", "")};
  }

 private:
  /// Stores `entry` under a new random key; returns the key.
  std::string Add(const json& entry) {
    std::string key = RandomBase62(32);
    const Millis now = clock_.Now();
    store_.PutSignIn(Sha256Hex(key), entry.dump(), now + kCodeLifetimeMs, now);
    return key;
  }
  /// The entry under `key` if it is a `kind` (a grant's code is no GitHub
  /// state, nor the other way round), removed; null otherwise.
  json Take(const std::string& key, const char* kind) {
    if (key.empty() || key.size() > 64) return nullptr;
    auto payload = store_.TakeSignIn(Sha256Hex(key), clock_.Now());
    json j = payload ? json::parse(*payload, nullptr, false) : json();
    return j.is_object() && j.contains(kind) ? j : json();
  }

  Store& store_;
  const Clock& clock_;
};

std::string Page(const std::string& title, const std::string& body) {
  return R"(<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>)" + HtmlEscape(title) + R"( · meshwire</title>
)" + std::string(kIconLink) + R"(
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

/// A page; `form_redirect`: the origin its form's answer redirects to (the
/// CLI's loopback callback), which Chrome and Safari check against
/// form-action too, so without it the sign-in never reaches the terminal.
HttpResponse PageAnswer(int status, const std::string& title, const std::string& body,
                        const std::string& form_redirect = "") {
  return HttpResponse::Text(status, "text/html; charset=utf-8", Page(title, body))
      .Header("Cache-Control", "no-store")
      .Header("Content-Security-Policy",
              "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'self'" +
                  (form_redirect.empty() ? "" : " " + form_redirect) + "; frame-ancestors 'none'")
      .Header("X-Frame-Options", "DENY")
      .Header("X-Content-Type-Options", "nosniff");
}

/// A failed sign-in's page: what went wrong, and how to start again (from
/// the terminal, or for the dashboard's sign-in, `web`, from its page).
HttpResponse ErrorPage(int status, const std::string& message, bool web = false) {
  return PageAnswer(status, "Sign-in failed",
                    "<h1>🕸 Sign-in failed</h1><p class=\"error\">" + HtmlEscape(message) + "</p><p class=\"note\">" +
                        (web ? "<a href=\"/auth/web\">Sign in again</a>." : "Run <code>meshwire login</code> again.") +
                        "</p>");
}

/// A sign-in page's route: an error on the way (the storage out of reach)
/// is a page saying so, as any other failed sign-in, not the JSON of an API
/// error; `web`: started from the dashboard.
Handler PageRoute(bool web, Handler handler) {
  return [web, handler = std::move(handler)](const ExchangePtr& ex) {
    try {
      handler(ex);
    } catch (const Error& e) {
      ex->Respond(ErrorPage(e.status(), e.what(), web));
    }
  };
}

constexpr const char* kSignInCookie = "mw_signin";

/// The value of cookie `name` in the request's Cookie header, or "".
std::string CookieValue(const HttpRequest& req, std::string_view name) {
  const std::string* header = req.Header("Cookie");
  if (!header) return "";
  std::string_view rest = *header;
  while (!rest.empty()) {
    const std::size_t end = std::min(rest.find(';'), rest.size());
    std::string_view pair = rest.substr(0, end);
    rest.remove_prefix(std::min(end + 1, rest.size()));
    while (!pair.empty() && pair.front() == ' ') pair.remove_prefix(1);
    if (pair.size() > name.size() && pair.substr(0, name.size()) == name && pair[name.size()] == '=') {
      return std::string(pair.substr(name.size() + 1));
    }
  }
  return "";
}

std::string Param(const HeaderList& params, std::string_view key) {
  for (const auto& [k, v] : params) {
    if (k == key) return v;
  }
  return "";
}

/// The CLI's loopback port and state, checked so the redirect can only go
/// back to this machine with a well-formed state.
bool ReadCliParams(const HeaderList& params, int& port, std::string& state) {
  std::string p = Param(params, "port");
  state = Param(params, "state");
  static const std::regex kState("[A-Za-z0-9_-]{8,128}");
  if (p.empty() || p.size() > 5 || p.find_first_not_of("0123456789") != std::string::npos) return false;
  port = std::stoi(p);
  return port > 0 && port < 65536 && std::regex_match(state, kState);
}

HttpResponse RedirectToCli(int port, const std::string& state, const std::string& code) {
  return HttpResponse::Empty(302)
      .Header("Cache-Control", "no-store")
      .Header("Location", "http://127.0.0.1:" + std::to_string(port) + "/callback?code=" + code +
                              "&state=" + state);
}

/// To the dashboard, the code in the fragment: a browser never sends it to
/// a server, and the page takes it out of the address bar once redeemed.
HttpResponse RedirectToDashboard(const std::string& code) {
  return HttpResponse::Empty(302).Header("Cache-Control", "no-store").Header("Location", "/dashboard#code=" + code);
}

/// The local sign-in's name form, posting to `action` with `hidden` fields.
std::string NameForm(const std::string& action, const HeaderList& hidden) {
  std::string form = "<form method=\"post\" action=\"" + action + "\">";
  for (const auto& [name, value] : hidden) {
    form += "<input type=\"hidden\" name=\"" + name + "\" value=\"" + HtmlEscape(value) + "\">";
  }
  return form +
         "<label for=\"user\">User name</label>"
         "<input id=\"user\" name=\"user\" required autofocus maxlength=\"64\" "
         "pattern=\"[A-Za-z0-9._\\-]{1,64}\" autocomplete=\"username\">"
         "<button type=\"submit\">Sign in</button></form>";
}

constexpr const char* kLocalNote =
    "<p class=\"note\">This relay runs with local sign-in: it approves the name you give. ";

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

void AddAuthRoutes(Router& router, Store& store, const Clock& clock, const AuthOptions& options,
                   const std::string& public_url) {
  auto pending = std::make_shared<PendingLogins>(store, clock);
  // Sign-ins create tokens: a few a minute from one address is plenty.
  auto limiter = std::make_shared<RateLimiter>(clock, options.sign_ins_per_minute);
  const std::string callback_url = public_url + "/auth/github/callback";

  // Signs `user` in: a one-time code, redeemed for a new token of that name
  // (the dashboard's by the browser whose sign-in cookie is `browser` only).
  auto grant = [pending](const std::string& user, const char* token_name = "meshwire login",
                         const std::string& browser = "") { return pending->AddGrant({user, token_name, browser}); };
  // The dashboard's sign-in cookie: set when a sign-in begins, it must come
  // back with the code's redemption, so a code made in another browser (an
  // attacker's, planted in a link) signs nobody in here.
  const bool https = public_url.rfind("https://", 0) == 0;
  auto with_cookie = [https](HttpResponse r, const std::string& value, int max_age) {
    return r.Header("Set-Cookie", std::string(kSignInCookie) + "=" + value + "; Path=/auth; Max-Age=" +
                                      std::to_string(max_age) + "; HttpOnly; SameSite=Lax" + (https ? "; Secure" : ""));
  };

  // Sign-ins create tokens, and each GitHub round trip begun is stored: held
  // to a rate per address. The refusal's page, or nullopt to go on.
  auto rate_refusal = [=](const ExchangePtr& ex, bool web) -> std::optional<HttpResponse> {
    const int retry = limiter->Take(ex->request().remote_address);
    if (retry <= 0) return std::nullopt;
    return ErrorPage(429, "Too many sign-ins from this address; wait " + std::to_string(retry) + " s and try again.",
                     web)
        .Header("Retry-After", std::to_string(retry));
  };

  // To GitHub's authorize page, to come back to `back` (the CLI or the dashboard).
  auto to_github = [=](const PendingLogins::Redirect& back) {
    HeaderList q = {{"client_id", options.github_client_id},
                    {"redirect_uri", callback_url},
                    {"state", pending->AddRedirect(back)},
                    {"scope", "read:user"}};
    return HttpResponse::Empty(302).Header("Location",
                                           options.github_url + "/login/oauth/authorize?" + QueryString(q));
  };

  router.Add("GET", "/auth/cli", PageRoute(false, [=](const ExchangePtr& ex) {
    const HttpRequest& req = ex->request();
    int port = 0;
    std::string state;
    if (options.mode == "token") {
      ex->Respond(PageAnswer(404, "Sign-in failed",
                             "<h1>🕸 No sign-in here</h1><p class=\"error\">This relay signs nobody in from the "
                             "browser: ask its administrator for a token (<code>meshwire admin token "
                             "create</code>) and run <code>meshwire init --token &lt;token&gt;</code>.</p>"));
      return;
    }
    if (!ReadCliParams(req.query, port, state)) {
      ex->Respond(ErrorPage(400, "This sign-in link is incomplete (port and state are needed)."));
      return;
    }
    if (options.mode == "github") {
      if (auto refused = rate_refusal(ex, false)) return ex->Respond(std::move(*refused));
      return ex->Respond(to_github({port, state, ""}));
    }
    ex->Respond(PageAnswer(200, "Sign in",
                           std::string("<h1>🕸 Sign in to meshwire</h1>") + kLocalNote +
                               "Your terminal receives a token for it.</p>" +
                               NameForm("/auth/cli", {{"port", std::to_string(port)}, {"state", state}}),
                           "http://127.0.0.1:" + std::to_string(port)));
  }), Router::Run::kOnWorker, Router::Head::kNoHead);  // github mode adds a pending sign-in

  // The name form's answer (local sign-in): the form, once the mode, the
  // address's rate and the name are checked; else nullopt, `ex` answered.
  auto name_form = [=](const ExchangePtr& ex, bool web) -> std::optional<HeaderList> {
    const HttpRequest& req = ex->request();
    if (options.mode != "local") {
      ex->Respond(ErrorPage(404, "This relay does not sign in by name.", web));
      return std::nullopt;
    }
    if (auto refused = rate_refusal(ex, web)) {
      ex->Respond(std::move(*refused));
      return std::nullopt;
    }
    auto form = ParseQuery(req.body);
    if (!form || !IsValidName(Param(*form, "user"))) {
      ex->Respond(ErrorPage(400, "A user name is 1-64 of A-Z a-z 0-9 . _ -.", web));
      return std::nullopt;
    }
    return form;
  };

  router.Add("POST", "/auth/cli", PageRoute(false, [=](const ExchangePtr& ex) {
    int port = 0;
    std::string state;
    auto form = name_form(ex, false);
    if (!form) return;
    if (!ReadCliParams(*form, port, state)) {
      ex->Respond(ErrorPage(400, "This sign-in form is incomplete (port and state are needed)."));
      return;
    }
    ex->Respond(RedirectToCli(port, state, grant(Param(*form, "user"))));
  }));

  // The dashboard's sign-in: as the CLI's, but back to /dashboard#code=C.
  router.Add("GET", "/auth/web", PageRoute(true, [=](const ExchangePtr& ex) {
    if (options.mode == "token") {
      ex->Respond(PageAnswer(404, "Sign-in failed",
                             "<h1>🕸 No sign-in here</h1><p class=\"error\">This relay signs nobody in from the "
                             "browser: on the <a href=\"/dashboard\">dashboard</a>, use a token its administrator "
                             "made (<code>meshwire admin token create</code>).</p>"));
      return;
    }
    const std::string browser = RandomBase62(32);
    if (options.mode == "github") {
      if (auto refused = rate_refusal(ex, true)) return ex->Respond(std::move(*refused));
      return ex->Respond(with_cookie(to_github({0, "", browser}), browser, kCodeLifetimeMs / 1000));
    }
    ex->Respond(with_cookie(PageAnswer(200, "Sign in",
                                       std::string("<h1>🕸 Sign in to meshwire</h1>") + kLocalNote +
                                           "The dashboard receives a token for it, kept in this tab until you sign "
                                           "out.</p>" +
                                           NameForm("/auth/web", {})),
                            browser, kCodeLifetimeMs / 1000));
  }), Router::Run::kOnWorker, Router::Head::kNoHead);  // github mode adds a pending sign-in

  router.Add("POST", "/auth/web", PageRoute(true, [=](const ExchangePtr& ex) {
    auto form = name_form(ex, true);
    if (!form) return;
    const std::string browser = CookieValue(ex->request(), kSignInCookie);
    if (browser.empty()) {
      return ex->Respond(ErrorPage(400, "This browser did not keep the sign-in's cookie: allow cookies for this "
                                        "relay, then sign in again.", true));
    }
    ex->Respond(RedirectToDashboard(grant(Param(*form, "user"), "dashboard", browser)));
  }));

  router.Add("GET", "/auth/github/callback", PageRoute(false, [=](const ExchangePtr& ex) {
    const HttpRequest& req = ex->request();
    const std::string* state = req.Query("state");
    auto redirect = state ? pending->TakeRedirect(*state) : std::nullopt;
    if (options.mode != "github" || !redirect) {
      ex->Respond(ErrorPage(400, "This GitHub sign-in is unknown or expired."));
      return;
    }
    try {
      const std::string* code = req.Query("code");
      std::string user = GithubLogin(options, code ? *code : std::string(), callback_url);
      ex->Respond(redirect->port == 0 ? RedirectToDashboard(grant(user, "dashboard", redirect->browser))
                                      : RedirectToCli(redirect->port, redirect->state, grant(user)));
    } catch (const Error& e) {
      ex->Respond(ErrorPage(e.status(), e.what(), redirect->port == 0));
    }
  }), Router::Run::kOnWorker, Router::Head::kNoHead);  // spends the one-time code

  router.Add("POST", "/auth/cli/token", [=, &store, &clock](const ExchangePtr& ex) {
    try {
      json body = ParseObject(ex->request().body);
      auto g = pending->TakeGrant(RequireString(body, "code"));
      if (!g) {
        throw Error::BadRequest("invalid_code",
                                "This sign-in code is unknown, used or expired; run `meshwire login` again.");
      }
      if (!g->browser.empty() && CookieValue(ex->request(), kSignInCookie) != g->browser) {
        throw Error::BadRequest("invalid_code", "This sign-in was begun in another browser; sign in again here.");
      }
      // User names ignore case (GitHub's logins do): an existing spelling stands.
      const std::string user = MeshService::CanonicalUser(store, g->user);
      // Each sign-in makes a token: held to the cap that POST /tokens keeps,
      // said for someone who may have no working token at hand.
      if (!MeshService::HasTokenRoom(store, user, options.max_tokens_per_user)) {
        throw Error::BadRequest("too_many_tokens",
                                user + " has " + std::to_string(options.max_tokens_per_user) +
                                    " tokens, the most one user may have: revoke unused ones where you are "
                                    "signed in (`meshwire token list`, then `meshwire token revoke ID`), or ask "
                                    "the relay's administrator, then run `meshwire login` again.");
      }
      CreatedToken t = MeshService::IssueToken(store, clock, user, g->token_name, std::nullopt);
      HttpResponse answer = HttpResponse::Json(
          200, json({{"token", t.secret}, {"user", t.token.user}, {"token_id", t.token.id}}).dump());
      ex->Respond(g->browser.empty() ? std::move(answer) : with_cookie(std::move(answer), "", 0));  // spent
    } catch (const Error& e) {
      ex->Respond(HttpResponse::FromError(e));
    }
  });
}

}  // namespace meshwire
