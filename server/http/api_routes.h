// The REST routes of the wire contract (docs/API.md), one small function
// each. Each route authenticates, reads its parameters strictly, calls
// MeshService and answers JSON; a meshwire::Error becomes the contract's error
// JSON here and nowhere else.
#pragma once

#include <functional>
#include <string>

#include "schemas/model.h"
#include "server/http/http_types.h"

namespace meshwire {

class MeshService;
class Router;
class Error;

struct ApiOptions {
  Millis started_at = 0;   // for /health's uptime (wall clock)
  std::string public_url;  // the relay as clients reach it (the integration guide's URLs)
  bool sign_in_page = true;  // `meshwire login` works here (not --auth token): the guide says which
};

/// Adds every REST route of the contract (not the sign-in or event routes).
void AddApiRoutes(Router& router, MeshService& service, const ApiOptions& options);

/// Runs `body`, answering a thrown meshwire::Error as its error JSON and
/// anything else as a logged 500.
void Guarded(const ExchangePtr& exchange, const std::function<void()>& body);

}  // namespace meshwire
