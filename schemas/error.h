// The one error type of meshwire. It carries what the wire contract needs
// (HTTP status, snake_case code, a sentence a person can act on) and is mapped
// to an answer exactly once per boundary: the HTTP layer turns it into the
// error JSON, the MCP layer into a tool result with isError.
#pragma once

#include <stdexcept>
#include <string>

namespace meshwire {

class Error : public std::runtime_error {
 public:
  Error(int status, std::string code, const std::string& message)
      : std::runtime_error(Printable(message)), status_(status), code_(std::move(code)) {}

  int status() const { return status_; }
  const std::string& code() const { return code_; }
  /// Seconds after which a retry may succeed (429 and 503 only; 0 = unset).
  int retry_after() const { return retry_after_; }
  Error& with_retry_after(int seconds) {
    retry_after_ = seconds;
    return *this;
  }

  // The contract's error table, one factory per status.
  static Error BadRequest(std::string code, const std::string& message) {
    return Error(400, std::move(code), message);
  }
  static Error InvalidField(const std::string& message) { return BadRequest("invalid_field", message); }
  static Error Unauthorized(const std::string& message) { return Error(401, "unauthorized", message); }
  static Error Forbidden(const std::string& message) { return Error(403, "forbidden", message); }
  static Error NotFound(std::string code, const std::string& message) {
    return Error(404, std::move(code), message);
  }
  static Error Conflict(const std::string& message) { return Error(409, "conflict", message); }
  static Error RateLimited(int retry_after_s) {
    return Error(429, "rate_limited",
                 "Too many requests for this token; retry after " + std::to_string(retry_after_s) +
                     " s.")
        .with_retry_after(retry_after_s);
  }
  static Error Unavailable(const std::string& message) {
    return Error(503, "unavailable", message).with_retry_after(1);
  }

 private:
  /// `message` with each NUL byte written as \0: what() is a C string, and a
  /// NUL in an id the sentence echoes would end it there.
  static std::string Printable(const std::string& message) {
    if (message.find('\0') == std::string::npos) return message;
    std::string out;
    for (char c : message) {
      if (c == '\0') {
        out += "\\0";
      } else {
        out.push_back(c);
      }
    }
    return out;
  }

  int status_;
  std::string code_;
  int retry_after_ = 0;
};

}  // namespace meshwire
