// The browser sign-in of `meshwire login` (docs/API.md, GET /auth/cli):
//
//   CLI -> browser: GET /auth/cli?port=P&state=S
//   local:  a page asks for a user name; POST /auth/cli approves it
//   github: 302 to GitHub's authorize page; GET /auth/github/callback
//           exchanges GitHub's code and reads the user's login
//   then:   302 to http://127.0.0.1:P/callback?code=C&state=S
//   CLI:    POST /auth/cli/token {"code": C} -> {"token","user","token_id"}
//
// The dashboard signs in the same way from GET /auth/web (local: POST
// /auth/web), and comes back to /dashboard#code=C; its page redeems C for a
// token named "dashboard".
//
// The one-time code (single use, 5 minutes) keeps the token itself out of the
// browser's history. With --auth token there is no sign-in page.
#pragma once

#include <cstddef>
#include <string>

#include "schemas/model.h"

namespace meshwire {

class Store;
class Clock;

struct AuthOptions {
  std::string mode = "local";  // local | github | token
  std::string github_client_id;
  std::string github_client_secret;
  std::string github_url = "https://github.com";          // authorize and token endpoints
  std::string github_api_url = "https://api.github.com";  // GET /user
  int sign_ins_per_minute = 10;  // per client address (POST /auth/cli and /auth/web together)
  std::size_t max_tokens_per_user = 100;  // a sign-in past it is refused, as POST /tokens (the relay sets it)
};

class Router;

/// Adds the sign-in routes. `public_url` is the relay as the browser reaches
/// it (GitHub's redirect comes back there); never taken from a request.
void AddAuthRoutes(Router& router, Store& store, const Clock& clock, const AuthOptions& options,
                   const std::string& public_url);

}  // namespace meshwire
