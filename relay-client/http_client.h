// The one way meshwire's client side opens an HTTP(S) connection to a relay
// (relay_client.cc, the login flow). Includes httplib.h: keep it out of
// widely included headers.
#pragma once

#include <httplib.h>

#include <memory>
#include <optional>
#include <string>

namespace meshwire {

/// A client for "http://host:port" or "https://host:port". HTTPS verifies the
/// relay's certificate against the system's CAs, plus the PEM file that
/// MESHWIRE_CA_FILE names (a private CA); throws Error 400 when that file
/// cannot be read.
std::unique_ptr<httplib::Client> NewHttpClient(const std::string& scheme_host_port);

/// A sentence for a request that got no answer, naming `url` and what to do;
/// `client` (the one that made it) tells a certificate's problem: expired,
/// not yet valid, issued for another name, or from a CA not trusted here.
std::string TransportFailure(const std::string& url, httplib::Error error, const httplib::Client& client);
/// The Error code of a transport failure: "tls_untrusted" for a certificate
/// this machine does not trust (no retry can help: a setting must change),
/// "unreachable" otherwise.
std::string TransportCode(httplib::Error error);

/// For a plain-HTTP request that the server closed without an HTTP answer:
/// asks `url` (http://host[:port]) again on a raw socket, within about a
/// second, and looks at the first bytes that come back. A sentence when they
/// show a server that is no relay (an SSH banner, a TLS alert: httplib
/// reports both as a closed connection, which would say "not running");
/// nullopt when nothing came, or what came starts as HTTP.
std::optional<std::string> NotHttpAnswer(const std::string& url);

}  // namespace meshwire
