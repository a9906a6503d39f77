#include "server/http/http_types.h"

#include <strings.h>

#include "schemas/error.h"
#include "schemas/json_io.h"

namespace meshwire {

const std::string* HttpRequest::Header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (k.size() == name.size() && strncasecmp(k.data(), name.data(), name.size()) == 0) return &v;
  }
  return nullptr;
}

std::size_t HttpRequest::HeaderCount(std::string_view name) const {
  std::size_t n = 0;
  for (const auto& [k, v] : headers) {
    n += k.size() == name.size() && strncasecmp(k.data(), name.data(), name.size()) == 0;
  }
  return n;
}

std::string HttpRequest::HeaderOr(std::string_view name, std::string fallback) const {
  const std::string* v = Header(name);
  return v ? *v : std::move(fallback);
}

const std::string* HttpRequest::Query(std::string_view key) const {
  for (const auto& [k, v] : query) {
    if (k == key) return &v;
  }
  return nullptr;
}

HttpResponse HttpResponse::Json(int status, std::string body) {
  return Text(status, "application/json", std::move(body));
}

HttpResponse HttpResponse::Text(int status, std::string content_type, std::string body) {
  HttpResponse r{status, {}, std::move(body), nullptr};
  r.Header("Content-Type", std::move(content_type));
  return r;
}

HttpResponse HttpResponse::FromError(const Error& e) {
  HttpResponse r = Json(e.status(), ErrorBody(e));
  if (e.retry_after() > 0) r.Header("Retry-After", std::to_string(e.retry_after()));
  // RFC 6750 3: a 401 names the scheme it wants (the MCP endpoint's adds
  // where its metadata is, with its own answer).
  if (e.status() == 401) r.Header("WWW-Authenticate", "Bearer realm=\"meshwire\"");
  return r;
}

std::string ForLog(std::string_view text, std::size_t max) {
  std::string out;
  for (const char c : text.substr(0, max)) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte >= 0x20 && byte < 0x7f && c != '\\') {
      out += c;
    } else {
      static constexpr char kHex[] = "0123456789abcdef";
      out += {'\\', 'x', kHex[byte >> 4], kHex[byte & 15]};
    }
  }
  if (text.size() > max) out += "...";
  return out;
}

}  // namespace meshwire
