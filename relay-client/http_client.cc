#include "relay-client/http_client.h"

#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <regex>

#include "schemas/error.h"

namespace meshwire {

std::unique_ptr<httplib::Client> NewHttpClient(const std::string& scheme_host_port) {
  // httplib throws std::invalid_argument for another scheme, and takes a
  // malformed address for an unreachable one: say what is wrong instead.
  static const std::regex kOrigin(R"(https?://(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.\-]+)(:([0-9]{1,5}))?)");
  std::smatch m;
  const bool matched = std::regex_match(scheme_host_port, m, kOrigin);
  const int port = matched && m[3].matched ? std::stoi(m[3].str()) : 80;  // 1-5 digits; 0 reaches nothing
  if (!matched || port < 1 || port > 65535) {
    throw Error(2, "config", "The relay URL must be http(s)://HOST[:PORT][/PATH], e.g. http://127.0.0.1:7420 (got \"" +
                                 scheme_host_port + "\"): fix --url, MESHWIRE_URL or the saved one (`meshwire login --url URL`).");
  }
  auto client = std::make_unique<httplib::Client>(scheme_host_port);
  if (scheme_host_port.rfind("https://", 0) != 0) return client;
  const char* ca_file = std::getenv("MESHWIRE_CA_FILE");
  if (ca_file && *ca_file) {
    // The system's CAs and the given one: a store of both, owned by the client.
    X509_STORE* store = X509_STORE_new();
    X509_STORE_set_default_paths(store);
    if (X509_STORE_load_locations(store, ca_file, nullptr) != 1) {
      X509_STORE_free(store);
      // A local setting, not the relay's answer: a usage error (exit 2).
      throw Error(2, "config", std::string("MESHWIRE_CA_FILE=") + ca_file +
                                   " is not a readable PEM certificate file: point it at your CA's certificate, "
                                   "or unset it.");
    }
    client->set_ca_cert_store(store);
  }
  client->enable_server_certificate_verification(true);
  // The name check is OpenSSL's (RFC 6125: the subjectAltName decides when
  // it has one; a CN is looked at only without), on every connection made
  // from this context. httplib's own check alone took a CN naming the URL's
  // host even when the subjectAltName listed only other names.
  std::string host = m[1].str();
  X509_VERIFY_PARAM* param = SSL_CTX_get0_param(client->ssl_context());
  const bool ip = host.front() == '[' || std::regex_match(host, std::regex(R"([0-9.]+)"));
  if (host.front() == '[') host = host.substr(1, host.size() - 2);
  X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
  const int set = ip ? X509_VERIFY_PARAM_set1_ip_asc(param, host.c_str())
                     : X509_VERIFY_PARAM_set1_host(param, host.c_str(), host.size());
  if (set != 1) {
    throw Error(2, "config", "The relay URL's host " + host + " cannot be checked against a certificate: fix "
                                 "--url, MESHWIRE_URL or the saved one.");
  }
  return client;
}

std::string TransportCode(httplib::Error error) {
  return error == httplib::Error::SSLServerVerification ? "tls_untrusted" : "unreachable";
}

std::string TransportFailure(const std::string& url, httplib::Error error, const httplib::Client& client) {
  if (error == httplib::Error::SSLServerVerification) {
    // httplib checks the chain (OpenSSL's verdict kept), then the name.
    const long verdict = client.get_openssl_verify_result();
    const std::string host = std::regex_replace(url, std::regex(R"(^https?://(\[[^\]]*\]|[^/:]*).*$)"), "$1");
    if (verdict == X509_V_OK || verdict == X509_V_ERR_HOSTNAME_MISMATCH || verdict == X509_V_ERR_IP_ADDRESS_MISMATCH) {
      return "The relay at " + url + " presented a certificate issued for another name than " + host +
             ": use a URL with a name the certificate lists, or have the relay's certificate issued for " + host +
             " (its subjectAltName).";
    }
    if (verdict == X509_V_ERR_CERT_HAS_EXPIRED) {
      return "The relay at " + url + " presented a certificate that has expired: renew it on the relay (SIGHUP "
             "reloads it).";
    }
    if (verdict == X509_V_ERR_CERT_NOT_YET_VALID) {
      return "The relay at " + url + " presented a certificate that is not valid yet: check this machine's clock, "
             "and the certificate's start date.";
    }
    const char* ca_file = std::getenv("MESHWIRE_CA_FILE");
    const std::string why = X509_verify_cert_error_string(verdict);
    if (ca_file && *ca_file) {
      return "The relay at " + url + " presented a certificate this machine does not trust (" + why +
             "), although MESHWIRE_CA_FILE=" + ca_file +
             " is set: point it at the CA that signed the relay's certificate.";
    }
    return "The relay at " + url + " presented a certificate this machine does not trust (" + why +
           "): if it is signed by your own CA, set MESHWIRE_CA_FILE to that CA's PEM file.";
  }
  if (error == httplib::Error::SSLConnection) {
    return "Cannot open a TLS connection to " + url +
           ": is the relay serving HTTPS there (meshwire server --tls-cert ... --tls-key ...)?";
  }
  const std::string host = std::regex_replace(url, std::regex(R"(^https?://(?:\[([^\]]*)\]|([^/:]*)).*$)"), "$1$2");
  if (error == httplib::Error::Connection && !host.empty()) {
    // A name no resolver knows is a typo, not a relay that is down.
    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* found = nullptr;
    const int rc = ::getaddrinfo(host.c_str(), nullptr, &hints, &found);
    if (found) ::freeaddrinfo(found);
    if (rc == EAI_NONAME || rc == EAI_NODATA) {
      return "Cannot find the relay's host " + host + " (" + url + "): check MESHWIRE_URL (or --url) for a typo, "
             "or this machine's DNS.";
    }
  }
  const char* why = error == httplib::Error::Connection          ? "nothing accepts connections there"
                    : error == httplib::Error::ConnectionTimeout ? "connecting timed out"
                    : error == httplib::Error::Read              ? "the connection closed before an answer"
                    : error == httplib::Error::Write             ? "the connection closed while sending"
                                                                 : nullptr;
  return "Cannot reach the relay at " + url + " (" + (why ? why : httplib::to_string(error)) +
         "): is it running? Start one with `meshwire server`, or set MESHWIRE_URL (or --url) to "
         "yours.";
}

std::optional<std::string> NotHttpAnswer(const std::string& url) {
  static const std::regex kHostPort(R"(^http://(?:\[([^\]]*)\]|([^/:]*))(?::([0-9]{1,5}))?(/.*)?$)");
  std::smatch m;
  if (!std::regex_match(url, m, kHostPort)) return std::nullopt;
  const std::string host = m[1].matched ? m[1].str() : m[2].str();
  const std::string port = m[3].matched ? m[3].str() : "80";
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (::getaddrinfo(host.c_str(), port.c_str(), &hints, &found) != 0 || !found) return std::nullopt;
  const int fd = ::socket(found->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) {
    ::freeaddrinfo(found);
    return std::nullopt;
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(1);
  // Waits for `events` on the socket until the deadline; false on none.
  auto wait_for = [&](short events) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    pollfd p{fd, events, 0};
    return left.count() > 0 && ::poll(&p, 1, static_cast<int>(left.count())) == 1;
  };
  std::string got;
  const int connected = ::connect(fd, found->ai_addr, found->ai_addrlen);
  ::freeaddrinfo(found);
  if (connected == 0 || (errno == EINPROGRESS && wait_for(POLLOUT))) {
    const std::string request = "GET /health HTTP/1.1\r\nHost: " + host + "\r\nConnection: close\r\n\r\n";
    if (::send(fd, request.data(), request.size(), MSG_NOSIGNAL) >= 0) {
      char buf[64];
      while (got.size() < sizeof buf && wait_for(POLLIN)) {
        const ssize_t n = ::recv(fd, buf, sizeof buf - got.size(), 0);
        if (n <= 0) break;
        got.append(buf, static_cast<std::size_t>(n));
      }
    }
  }
  ::close(fd);
  if (got.empty() || got.rfind("HTTP/", 0) == 0 || std::string("HTTP/").rfind(got, 0) == 0) return std::nullopt;
  const auto byte = [&](std::size_t i) { return static_cast<unsigned char>(got[i]); };
  if (got.size() >= 2 && (byte(0) == 0x15 || byte(0) == 0x16) && byte(1) == 0x03) {
    return "The server at " + url + " speaks TLS, not plain HTTP: use https://" + url.substr(7) +
           " (set MESHWIRE_URL, or --url).";
  }
  std::string shown;  // its first line, printable ASCII only
  for (char c : got) {
    if (c == '\r' || c == '\n') break;
    shown += c >= 0x20 && c < 0x7f ? c : '?';
  }
  return "The server at " + url + " answered with something that is not HTTP (\"" + shown.substr(0, 40) +
         "\"): is that URL a meshwire relay? Check MESHWIRE_URL (or --url) and its port.";
}

}  // namespace meshwire
