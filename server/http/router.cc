#include "server/http/router.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "schemas/error.h"
#include "schemas/ids.h"
#include "server/http/url.h"

namespace meshwire {

namespace {
std::vector<std::string_view> Split(std::string_view path) {
  std::vector<std::string_view> out;
  if (!path.empty() && path.front() == '/') path.remove_prefix(1);
  while (true) {
    std::size_t slash = path.find('/');
    out.push_back(path.substr(0, slash));
    if (slash == std::string_view::npos) break;
    path.remove_prefix(slash + 1);
  }
  return out;
}
/// The request path's segments, each percent-decoded after the split, so an
/// encoded slash (%2F) stays inside its segment (a mesh id "a/../b" is one
/// unknown id, not a path to another route). Without a '%' in it (every
/// request meshwire's clients make) the segments are views of the target and
/// nothing is copied; `decoded` holds them otherwise. The target was checked
/// for malformed escapes before the router saw it.
std::vector<std::string_view> Segments(const HttpRequest& req, std::vector<std::string>& decoded) {
  if (req.target.empty()) return Split(req.path);  // built in-process: the path is all there is
  const std::string_view raw = std::string_view(req.target).substr(0, req.target.find('?'));
  std::vector<std::string_view> out = Split(raw);
  if (raw.find('%') == std::string_view::npos) return out;
  decoded.reserve(out.size());
  for (std::string_view& segment : out) {
    std::optional<std::string> d = PercentDecode(segment, false);
    decoded.push_back(d ? std::move(*d) : std::string(segment));
    segment = decoded.back();
  }
  return out;
}

/// A capture over kMaxCapture bytes names nothing: the 404 of what it would
/// have named, by the segment before it ("/mesh/{mesh}", "/tokens/{id}").
Error TooLongCapture(std::string_view before, std::string_view capture) {
  const std::string shown = EchoedValue(capture);
  const std::string why = " (an id or name is at most " + std::to_string(Router::kMaxCapture) + " bytes)";
  if (before == "mesh") return Error::NotFound("mesh_not_found", "No mesh " + shown + why + ".");
  if (before == "agents") return Error::NotFound("agent_not_found", "No agent \"" + shown + "\"" + why + ".");
  if (before == "messages") return Error::NotFound("message_not_found", "No message " + shown + why + ".");
  if (before == "tokens") return Error::NotFound("token_not_found", "You have no token " + shown + why + ".");
  if (before == "members") return Error::NotFound("not_found", "User " + shown + " is not a member" + why + ".");
  return Error::NotFound("not_found", "Nothing is named " + shown + why + ".");
}

}  // namespace

void Router::Add(std::string method, const std::string& pattern, Handler handler, Run run, Head head) {
  Route r{std::move(method), {}, std::move(handler), run, head};
  for (std::string_view s : Split(pattern)) r.segments.emplace_back(s);
  routes_.push_back(std::move(r));
}

bool Router::Matches(const Route& route, const std::vector<std::string_view>& path,
                     std::vector<std::string>& captures) {
  if (route.segments.size() != path.size()) return false;
  captures.clear();
  for (std::size_t i = 0; i < path.size(); ++i) {
    const std::string& want = route.segments[i];
    if (!want.empty() && want.front() == '{') {
      if (path[i].empty() || path[i].size() > kMaxCapture) return false;
      captures.emplace_back(path[i]);
    } else if (want != path[i]) {
      return false;
    }
  }
  return true;
}

std::size_t Router::OverLongCapture(const Route& route, const std::vector<std::string_view>& path) {
  if (route.segments.size() != path.size()) return 0;
  std::size_t at = 0;
  for (std::size_t i = 0; i < path.size(); ++i) {
    const std::string& want = route.segments[i];
    const bool is_capture = !want.empty() && want.front() == '{';
    if (!is_capture && want != path[i]) return 0;
    if (is_capture && path[i].empty()) return 0;
    if (is_capture && path[i].size() > kMaxCapture && at == 0) at = i;
  }
  return at;
}

void Router::Dispatch(const ExchangePtr& exchange) const {
  HttpRequest& req = exchange->request();
  std::vector<std::string> decoded;
  const std::vector<std::string_view> path = Segments(req, decoded);
  std::vector<std::string> captures;
  std::string allowed;
  // A route of this method that only an over-long capture missed (looked for
  // only when a segment is that long: never on the usual request's path).
  const bool any_long = std::any_of(path.begin(), path.end(), [](std::string_view s) { return s.size() > kMaxCapture; });
  std::size_t too_long_at = 0;  // the over-long segment's index (never 0: routes start with a literal)
  for (const Route& r : routes_) {
    if (!Matches(r, path, captures)) {
      if (any_long && too_long_at == 0 && r.method == req.method) too_long_at = OverLongCapture(r, path);
      continue;
    }
    const bool head_as_get = r.method == "GET" && r.head == Head::kAsGet;
    if (r.method == req.method || (req.method == "HEAD" && head_as_get)) {
      req.params = std::move(captures);
      if (r.run == Run::kInline || !workers_) {
        r.handler(exchange);
      } else {
        workers_->Post([&handler = r.handler, exchange] {
          try {
            handler(exchange);
          } catch (const std::exception& e) {
            const HttpRequest& failed = exchange->request();
            spdlog::error("{} {}: {}", failed.method, ForLog(failed.path), ForLog(e.what(), 1000));
            exchange->Respond(
                HttpResponse::FromError(Error(500, "internal", "The relay failed on this request; it was logged.")));
          }
        });
      }
      return;
    }
    for (const std::string& m : {r.method, std::string(head_as_get ? "HEAD" : "")}) {
      if (m.empty() || (", " + allowed + ", ").find(", " + m + ", ") != std::string::npos) continue;
      allowed += (allowed.empty() ? "" : ", ") + m;
    }
  }
  if (!allowed.empty()) {
    exchange->Respond(HttpResponse::FromError(
                          Error(405, "method_not_allowed",
                                req.method + " is not allowed on " + req.path + "; use " + allowed + "."))
                          .Header("Allow", allowed));
    return;
  }
  if (too_long_at > 0) {
    exchange->Respond(HttpResponse::FromError(TooLongCapture(path[too_long_at - 1], path[too_long_at])));
    return;
  }
  std::string shown = req.path.size() > 200 ? req.path.substr(0, 200) + "..." : req.path;
  if (req.path == "/") {
    // Someone opened the relay's URL in a browser: the dashboard. Any other client is told
    // what this is and where its tasks are done. (The CLI reads "No route " as a URL with a
    // path the relay does not serve: the prefix stays.)
    const std::string* accept = req.Header("Accept");
    if ((req.method == "GET" || req.method == "HEAD") && accept && accept->find("text/html") != std::string::npos) {
      exchange->Respond(HttpResponse::Empty(302).Header("Location", "/dashboard"));
      return;
    }
    exchange->Respond(HttpResponse::FromError(Error::NotFound(
        "not_found", "No route " + req.method + " /: this is a meshwire relay's API; its dashboard is at "
                     "/dashboard. Sign in with `meshwire login --url URL` (URL: this address), manage tokens "
                     "with `meshwire token create`, `list` and `revoke`, and see GET /health, GET "
                     "/mesh/{mesh}/integrate and docs/API.md.")));
    return;
  }
  exchange->Respond(HttpResponse::FromError(Error::NotFound(
      "not_found", "No route " + req.method + " " + shown +
                       "; see GET /mesh/{mesh}/integrate or docs/API.md.")));
}

}  // namespace meshwire
