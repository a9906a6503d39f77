// The REST routes of the wire contract (docs/API.md) on a cpp-httplib server.
// Each route authenticates, reads its parameters strictly, calls MeshService
// and writes JSON; a meshwire::Error becomes the contract's error JSON here
// and nowhere else. Unknown routes, wrong methods and oversized bodies answer
// with the same error shape.
#pragma once

#include "schemas/error.h"
#include "schemas/model.h"

namespace httplib {
class Server;
struct Response;
}

namespace meshwire {

class MeshService;

/// Registers every route on `server`. `started_at` is the relay's start time
/// on the service's clock (for /health's uptime).
void MountHttpApi(httplib::Server& server, MeshService& service, Millis started_at);

/// Answers with `e` as the contract's error JSON (and Retry-After when set).
void SendError(httplib::Response& res, const Error& e);

}  // namespace meshwire
