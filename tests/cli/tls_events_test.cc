// HTTPS and the event stream, end to end through the real binary:
// - a test CA made here with the openssl command; the relay serves HTTPS with
//   --tls-cert/--tls-key, the CLI talks to it with MESHWIRE_CA_FILE, refuses
//   it without, and SIGHUP swaps the certificate for new connections;
// - GET /mesh/{mesh}/events replays from Last-Event-ID, then streams live,
//   with presence events, nothing twice, and ends when access is lost.
#include <doctest/doctest.h>
#include <sched.h>
#include <httplib.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <thread>

#include "tests/support/raw_client.h"
#include "tests/support/relay_process.h"

namespace meshwire::testing {

namespace {

using nlohmann::json;
using namespace std::chrono_literals;

/// Runs a shell command line; true when it exits 0.
bool Shell(const std::string& line) { return std::system((line + " >/dev/null 2>&1").c_str()) == 0; }

/// A CA and a server certificate for 127.0.0.1 signed by it, in `dir`:
/// PREFIX-ca.pem, PREFIX-cert.pem, PREFIX-key.pem.
void MakeCertificates(const TempDir& dir, const std::string& prefix) {
  const std::string p = dir / prefix;
  REQUIRE(Shell("openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=meshwire-test-ca -keyout " + p +
                "-ca-key.pem -out " + p + "-ca.pem"));
  REQUIRE(Shell("openssl req -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 -keyout " + p + "-key.pem -out " + p +
                "-csr.pem"));
  // Written here: Shell's own ">/dev/null" after a printf's "> FILE" took
  // its output, and the certificates had no subjectAltName at all.
  std::ofstream(p + "-ext.cnf") << "subjectAltName=IP:127.0.0.1,DNS:localhost\n";
  REQUIRE(Shell("openssl x509 -req -in " + p + "-csr.pem -CA " + p + "-ca.pem -CAkey " + p +
                "-ca-key.pem -CAcreateserial -days 2 -extfile " + p + "-ext.cnf -out " + p + "-cert.pem"));
}

/// How many event-loop threads (named mw-io) process `pid` runs, once
/// `expected` are there or 3 s have passed (they start as the relay does).
int EventLoopThreads(pid_t pid, int expected) {
  int n = 0;
  for (auto until = std::chrono::steady_clock::now() + 3s; std::chrono::steady_clock::now() < until;) {
    n = 0;
    for (const auto& task : std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/task")) {
      std::ifstream comm(task.path() / "comm");
      std::string name;
      n += std::getline(comm, name) && name == "mw-io";
    }
    if (n == expected) break;
    std::this_thread::sleep_for(20ms);
  }
  return n;
}

}  // namespace

TEST_CASE("--io-threads' default: the cores less the writer's for plain HTTP, every core for TLS; a given number wins") {
  cpu_set_t cpus;
  CPU_ZERO(&cpus);
  REQUIRE(::sched_getaffinity(0, sizeof cpus, &cpus) == 0);
  const int cores = CPU_COUNT(&cpus);  // no CPU quota on the test machines: the affinity decides
  TempDir home;
  MakeCertificates(home, "one");
  {
    RelayProcess plain(home);
    CHECK(EventLoopThreads(plain.process.pid(), std::clamp(cores - 1, 1, 64)) == std::clamp(cores - 1, 1, 64));
  }
  {
    TempDir other;
    RelayProcess tls(other, {"--tls-cert", home / "one-cert.pem", "--tls-key", home / "one-key.pem"});
    CHECK(EventLoopThreads(tls.process.pid(), std::clamp(cores, 1, 64)) == std::clamp(cores, 1, 64));
  }
  TempDir third;
  RelayProcess given(third, {"--io-threads", "3"});
  CHECK(EventLoopThreads(given.process.pid(), 3) == 3);
}

TEST_CASE("HTTPS: the CLI trusts the relay through MESHWIRE_CA_FILE, not without it; SIGHUP reloads") {
  TempDir home;
  MakeCertificates(home, "one");
  MakeCertificates(home, "two");
  const std::string cert = home / "relay-cert.pem";
  const std::string key = home / "relay-key.pem";
  REQUIRE(Shell("cp " + (home / "one-cert.pem") + " " + cert + " && cp " + (home / "one-key.pem") + " " + key));
  const std::string token = AdminToken(home, "alice");
  RelayProcess relay(home, {"--tls-cert", cert, "--tls-key", key});
  REQUIRE(relay.process.stderr_seen().find("listening on https://") != std::string::npos);
  const std::string url = "https://127.0.0.1:" + std::to_string(relay.port);
  const std::vector<std::string> base = {"MESHWIRE_HOME=" + (home / "client"), "MESHWIRE_TOKEN=" + token,
                                         "MESHWIRE_URL=" + url, "NO_COLOR=1"};
  auto with = [&](std::vector<std::string> extra) {
    extra.insert(extra.begin(), base.begin(), base.end());
    return extra;
  };

  // Trusted through the CA file: a mesh is created over HTTPS.
  CommandResult created = Run({kBinary, "mesh", "create", "secure"}, with({"MESHWIRE_CA_FILE=" + (home / "one-ca.pem")}));
  CAPTURE(created.err);
  CHECK(created.code == 0);
  CHECK(created.out.find("Created mesh") != std::string::npos);

  // Without it the certificate is refused, with a sentence that says what to do.
  CommandResult refused = Run({kBinary, "mesh", "list"}, with({"MESHWIRE_CA_FILE="}));
  CHECK(refused.code == 3);
  CHECK(refused.err.find("MESHWIRE_CA_FILE") != std::string::npos);
  // No retries for it: send (which retries what a retry can fix) fails at once, and
  // the MCP server's tool result names the setting too, not "cannot be reached".
  auto started = std::chrono::steady_clock::now();
  CommandResult send = Run({kBinary, "send", "hi", "--mesh", "x"}, with({"MESHWIRE_CA_FILE="}));
  CHECK(send.code == 3);
  CHECK(send.err.find("MESHWIRE_CA_FILE") != std::string::npos);
  CHECK(send.err.find("Retrying") == std::string::npos);
  CHECK(std::chrono::steady_clock::now() - started < std::chrono::seconds(10));
  const std::string rpc =
      R"({"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}})"
      "\n"
      R"({"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"meshwire_status","arguments":{}}})"
      "\n";
  std::ofstream(home / "rpc.txt") << rpc;
  CommandResult mcp = Run({"/bin/sh", "-c", std::string(kBinary) + " mcp --mesh x < " + (home / "rpc.txt")},
                          with({"MESHWIRE_CA_FILE="}));
  CAPTURE(mcp.out);
  CHECK(mcp.out.find("\"isError\":true") != std::string::npos);
  CHECK(mcp.out.find("MESHWIRE_CA_FILE") != std::string::npos);
  // An unreadable CA file is a setting to fix: exit 2.
  CommandResult unreadable = Run({kBinary, "mesh", "list"}, with({"MESHWIRE_CA_FILE=" + (home / "none.pem")}));
  CHECK(unreadable.code == 2);
  CHECK(unreadable.err.find("is not a readable PEM certificate file") != std::string::npos);
  // Plain HTTP to the HTTPS relay: the sentence names the https:// URL, at once.
  const std::string port = std::to_string(relay.port);
  started = std::chrono::steady_clock::now();
  CommandResult http = Run({kBinary, "send", "hi", "--mesh", "x"}, with({"MESHWIRE_URL=http://127.0.0.1:" + port}));
  CHECK(http.code == 3);
  CHECK(http.err.find("serves HTTPS: use https://127.0.0.1:" + port) != std::string::npos);
  CHECK(http.err.find("Retrying") == std::string::npos);
  CHECK(std::chrono::steady_clock::now() - started < std::chrono::seconds(10));

  // What plain HTTP gets on the HTTPS port: a 400 in plain HTTP, in the
  // contract's error JSON, then the connection closes; a POST with a body too.
  httplib::Client plain("127.0.0.1", relay.port);
  plain.set_read_timeout(5, 0);
  auto r = plain.Get("/health");
  REQUIRE(r);
  CHECK(r->status == 400);
  CHECK(json::parse(r->body)["error"]["code"] == "https_required");
  auto posted = plain.Post("/mesh", std::string(100000, 'x'), "application/json");
  REQUIRE(posted);
  CHECK(posted->status == 400);
  // Bytes that are neither TLS nor HTTP are closed on, and HTTPS goes on serving.
  RawClient junk(relay.port);
  junk.Send(std::string("\x01\x02\x03\r\n\r\n", 7));
  CHECK(junk.ClosedByRelay(std::chrono::milliseconds(5000)));
  CHECK(junk.text().empty());
  CHECK(Run({kBinary, "mesh", "list"}, with({"MESHWIRE_CA_FILE=" + (home / "one-ca.pem")})).code == 0);

  // SIGHUP: the second CA's certificate serves new connections.
  REQUIRE(Shell("cp " + (home / "two-cert.pem") + " " + cert + " && cp " + (home / "two-key.pem") + " " + key));
  ::kill(relay.process.pid(), SIGHUP);
  REQUIRE(relay.process.WaitForStderr("reloaded the TLS certificate", 5000));
  CHECK(Run({kBinary, "mesh", "list"}, with({"MESHWIRE_CA_FILE=" + (home / "two-ca.pem")})).code == 0);
  // The CA file set, but not to the CA that signed it: said so.
  CommandResult other_ca = Run({kBinary, "mesh", "list"}, with({"MESHWIRE_CA_FILE=" + (home / "one-ca.pem")}));
  CHECK(other_ca.code == 3);
  CHECK(other_ca.err.find("although MESHWIRE_CA_FILE=" + (home / "one-ca.pem") + " is set") != std::string::npos);

  // A certificate for another name, then an expired one, from the trusted CA:
  // each said as it is (they were "not trusted: set MESHWIRE_CA_FILE", set).
  const std::string two = home / "two";
  REQUIRE(Shell("openssl req -newkey rsa:2048 -nodes -subj /CN=other.example -keyout " + key + " -out " + two +
                "-other-csr.pem 2>/dev/null && printf 'subjectAltName=DNS:other.example\\n' > " + two +
                "-other.cnf && openssl x509 -req -in " + two + "-other-csr.pem -CA " + two + "-ca.pem -CAkey " + two +
                "-ca-key.pem -CAcreateserial -days 2 -extfile " + two + "-other.cnf -out " + cert + " 2>/dev/null"));
  ::kill(relay.process.pid(), SIGHUP);
  REQUIRE(relay.process.WaitForStderr("reloaded the TLS certificate", 5000));
  CommandResult other_name = Run({kBinary, "mesh", "list"}, with({"MESHWIRE_CA_FILE=" + (home / "two-ca.pem")}));
  CHECK(other_name.code == 3);
  CHECK(other_name.err.find("a certificate issued for another name than 127.0.0.1") != std::string::npos);
  REQUIRE(Shell("cp " + two + "-key.pem " + key + " && openssl x509 -req -in " + two + "-csr.pem -CA " + two +
                "-ca.pem -CAkey " + two + "-ca-key.pem -CAcreateserial -days -1 -extfile " + two + "-ext.cnf -out " +
                cert + " 2>/dev/null"));
  // An expired one on reload: refused, the previous (valid, for another name) still served.
  ::kill(relay.process.pid(), SIGHUP);
  REQUIRE(relay.process.WaitForStderr("has expired: clients would refuse it (still serving the previous ones)", 5000));
  CommandResult kept = Run({kBinary, "mesh", "list"}, with({"MESHWIRE_CA_FILE=" + (home / "two-ca.pem")}));
  CHECK(kept.code == 3);
  CHECK(kept.err.find("a certificate issued for another name than 127.0.0.1") != std::string::npos);
  {
    // At start there is no previous one: served, with a warning, and the CLI says what is wrong.
    TempDir other;
    RelayProcess expired_relay(other, {"--tls-cert", cert, "--tls-key", key});
    CHECK(expired_relay.process.stderr_seen().find("has expired: clients refuse it") != std::string::npos);
    CommandResult expired = Run({kBinary, "mesh", "list", "--url", "https://127.0.0.1:" +
                                 std::to_string(expired_relay.port)}, with({"MESHWIRE_CA_FILE=" + (home / "two-ca.pem")}));
    CHECK(expired.code == 3);
    CHECK(expired.err.find("a certificate that has expired") != std::string::npos);
  }
  // A CN naming the URL's host does not count when the subjectAltName lists
  // only other names (RFC 6125): another name, for a host name and for an
  // address (the CLI took the CN, and sent the token).
  for (const std::string host : {"localhost", "127.0.0.1"}) {
    CAPTURE(host);
    REQUIRE(Shell("openssl req -new -key " + (home / "two-key.pem") + " -subj /CN=" + host + " -out " + two +
                  "-cn-csr.pem && printf 'subjectAltName=DNS:other.example\\n' > " + two +
                  "-cn.cnf && openssl x509 -req -in " + two + "-cn-csr.pem -CA " + two + "-ca.pem -CAkey " + two +
                  "-ca-key.pem -CAcreateserial -days 2 -extfile " + two + "-cn.cnf -out " + cert));
    REQUIRE(Shell("cp " + (home / "two-key.pem") + " " + key));
    ::kill(relay.process.pid(), SIGHUP);
    REQUIRE(relay.process.WaitForStderr("reloaded the TLS certificate", 5000));
    CommandResult cn_only = Run({kBinary, "mesh", "create", "leak", "--url", "https://" + host + ":" + port},
                                with({"MESHWIRE_CA_FILE=" + (home / "two-ca.pem")}));
    CHECK(cn_only.code == 3);
    CHECK(cn_only.err.find("a certificate issued for another name than " + host) != std::string::npos);
  }
  REQUIRE(Shell("cp " + (home / "two-cert.pem") + " " + cert + " && cp " + (home / "two-key.pem") + " " + key));
  ::kill(relay.process.pid(), SIGHUP);
  REQUIRE(relay.process.WaitForStderr("reloaded the TLS certificate", 5000));
  // ... and one whose subjectAltName lists the name is taken, by name as by address.
  CHECK(Run({kBinary, "mesh", "list", "--url", "https://localhost:" + port},
            with({"MESHWIRE_CA_FILE=" + (home / "two-ca.pem")})).code == 0);

  // A bad key on reload keeps the previous pair.
  REQUIRE(Shell("echo broken > " + key));
  ::kill(relay.process.pid(), SIGHUP);
  REQUIRE(relay.process.WaitForStderr("still serving the previous ones", 5000));
  CHECK(Run({kBinary, "mesh", "list"}, with({"MESHWIRE_CA_FILE=" + (home / "two-ca.pem")})).code == 0);
}

TEST_CASE("a relay with a certificate but no key refuses to start, saying why") {
  TempDir home;
  CommandResult r = Run({kBinary, "server", "--listen", "127.0.0.1:0", "--storage", "sqlite:" + home / "r.db",
                         "--tls-cert", home / "missing.pem"});
  CHECK(r.code == 2);
  CHECK(r.err.find("--tls-key") != std::string::npos);
  // A pair that does not match: refused before any storage is created.
  MakeCertificates(home, "one");
  MakeCertificates(home, "two");
  CommandResult mismatched = Run({kBinary, "server", "--listen", "127.0.0.1:0", "--storage", "sqlite:" + home / "r.db",
                                  "--tls-cert", home / "one-cert.pem", "--tls-key", home / "two-key.pem"});
  CHECK(mismatched.code == 2);  // files to fix: a usage error
  CHECK(!std::filesystem::exists(home / "r.db"));
  CHECK(!std::filesystem::exists(home / "r.db.lock"));
  // A key encrypted with a passphrase: said so (OpenSSL asked for it on the terminal, or failed with
  // "processing error (UI routines)").
  REQUIRE(std::system(("openssl pkey -in " + home / "one-key.pem" + " -aes256 -passout pass:secret -out " +
                       home / "encrypted-key.pem" + " 2>/dev/null").c_str()) == 0);
  CommandResult encrypted = Run({kBinary, "server", "--listen", "127.0.0.1:0", "--storage", "sqlite:" + home / "r.db",
                                 "--tls-cert", home / "one-cert.pem", "--tls-key", home / "encrypted-key.pem"});
  CHECK(encrypted.code == 2);
  CHECK_MESSAGE(encrypted.err.find("is encrypted with a passphrase, which the relay cannot type") != std::string::npos,
                encrypted.err);
  CHECK(encrypted.err.find("Enter PEM pass phrase") == std::string::npos);
}

TEST_CASE("events: Last-Event-ID replays, then live; presence; nothing twice; ends when access is lost") {
  TempDir home;
  const std::string alice = AdminToken(home, "alice");
  const std::string bob = AdminToken(home, "bob");
  RelayProcess relay(home);
  httplib::Client a("127.0.0.1", relay.port);
  a.set_bearer_token_auth(alice);
  const std::string mesh = json::parse(a.Post("/mesh", R"({"name":"events"})", "application/json")->body)["mesh_id"];
  const std::string m = "/mesh/" + mesh;
  REQUIRE(a.Post(m + "/agents", R"({"name":"agent-a"})", "application/json")->status == 201);
  auto send = [&](const std::string& content) {
    return a.Post(m + "/messages", json{{"from", "agent-a"}, {"content", content}}.dump(), "application/json")->status;
  };
  REQUIRE(send("first") == 201);
  REQUIRE(send("second") == 201);

  REQUIRE(a.Post(m + "/members", R"({"user":"bob"})", "application/json")->status == 201);
  RawClient reader(relay.port);
  reader.Send("GET " + m + "/events HTTP/1.1\r\nHost: relay\r\nAuthorization: Bearer " + bob +
                                     "\r\nLast-Event-ID: 1\r\n\r\n");
  REQUIRE(reader.WaitFor("\"content\":\"second\""));
  CHECK(reader.text().find("HTTP/1.1 200") == 0);
  CHECK(reader.text().find("Content-Type: text/event-stream") != std::string::npos);
  CHECK(reader.text().find("\"content\":\"first\"") == std::string::npos);  // before Last-Event-ID
  CHECK(reader.text().find("event: message\nid: 2\n") != std::string::npos);

  // Live: a new message, and a presence change.
  REQUIRE(send("third") == 201);
  REQUIRE(reader.WaitFor("\"content\":\"third\""));
  CHECK(reader.text().find("event: message\nid: 3\n") != std::string::npos);
  REQUIRE(a.Post(m + "/agents", R"({"name":"agent-c"})", "application/json")->status == 201);
  REQUIRE(reader.WaitFor("event: presence"));
  CHECK(reader.text().find("\"name\":\"agent-c\"") != std::string::npos);
  // Registering an active agent again (every `meshwire send` does) is no news.
  REQUIRE(a.Post(m + "/agents", R"({"name":"agent-c"})", "application/json")->status == 200);
  REQUIRE(send("after re-registering") == 201);
  REQUIRE(reader.WaitFor("after re-registering"));
  CHECK(reader.Count("event: presence") == 1);
  // Deleted: offline, with when it was last seen (it said 1970).
  REQUIRE(a.Delete(m + "/agents/agent-c")->status == 204);
  REQUIRE(reader.WaitFor("\"status\":\"offline\""));
  CHECK(reader.text().find("\"last_seen\":\"1970") == std::string::npos);
  CHECK(reader.Count("\"content\":\"second\"") == 1);
  CHECK(reader.Count("\"content\":\"third\"") == 1);

  // ?after= works as Last-Event-ID does, for clients that cannot set headers.
  RawClient from_zero(relay.port);
  from_zero.Send("GET " + m + "/events?after=0 HTTP/1.1\r\nHost: relay\r\nAuthorization: Bearer " +
                                        alice + "\r\n\r\n");
  REQUIRE(from_zero.WaitFor("\"content\":\"after re-registering\""));
  CHECK(from_zero.Count("event: message") == 4);

  // Bob is removed from the mesh: his stream ends with an error event, and
  // his agents, gone with him, are offline to everyone else's.
  httplib::Client b("127.0.0.1", relay.port);
  b.set_bearer_token_auth(bob);
  REQUIRE(b.Post(m + "/agents", R"({"name":"bob-agent"})", "application/json")->status == 201);
  REQUIRE(from_zero.WaitFor("\"name\":\"bob-agent\""));
  REQUIRE(a.Delete(m + "/members/bob")->status == 204);
  REQUIRE(reader.WaitFor("event: error"));
  CHECK(reader.ClosedByRelay(std::chrono::milliseconds(5000)));
  CHECK(from_zero.WaitFor("\"name\":\"bob-agent\",\"owner\":\"bob\",\"status\":\"offline\""));

  // Refusals are plain error answers: no token, another mesh, a bad Last-Event-ID.
  httplib::Client anon("127.0.0.1", relay.port);
  CHECK(anon.Get(m + "/events")->status == 401);
  CHECK(b.Get(m + "/events")->status == 403);
  CHECK(a.Get(m + "/events", {{"Last-Event-ID", "soon"}})->status == 400);

  // An HTTP/1.0 client knows no chunks: its stream is the events themselves, to the close.
  RawClient old(relay.port);
  old.Send("GET " + m + "/events?after=2 HTTP/1.0\r\nAuthorization: Bearer " + alice + "\r\n\r\n");
  REQUIRE(old.WaitFor("\"content\":\"third\""));
  const std::string& head_and_body = old.text();
  CHECK(head_and_body.find("Transfer-Encoding") == std::string::npos);
  CHECK(head_and_body.find("Connection: close\r\n\r\nretry: 2000\n") != std::string::npos);
  CHECK(head_and_body.find("\r\nevent: message\nid: 3\n") == std::string::npos);  // no chunk size before it
  CHECK(head_and_body.find("\n\nevent: message\nid: 3\n") != std::string::npos);
}

TEST_CASE("events: a replay longer than a page arrives whole and in order, then goes live") {
  TempDir home;
  const std::string alice = AdminToken(home, "alice");
  RelayProcess relay(home);
  httplib::Client a("127.0.0.1", relay.port);
  a.set_bearer_token_auth(alice);
  const std::string mesh = json::parse(a.Post("/mesh", R"({"name":"long"})", "application/json")->body)["mesh_id"];
  REQUIRE(a.Post("/mesh/" + mesh + "/agents", R"({"name":"agent-a"})", "application/json")->status == 201);
  for (int i = 1; i <= 450; ++i) {
    REQUIRE(a.Post("/mesh/" + mesh + "/messages", json{{"from", "agent-a"}, {"content", "m" + std::to_string(i)}}.dump(),
                   "application/json")->status == 201);
  }
  RawClient reader(relay.port);
  reader.Send("GET /mesh/" + mesh + "/events?after=0 HTTP/1.1\r\nHost: relay\r\nAuthorization: Bearer " + alice +
              "\r\n\r\n");
  REQUIRE(reader.WaitFor("id: 450\n", 10000ms));
  CHECK(reader.Count("event: message") == 450);
  CHECK(reader.text().find("id: 200\n") < reader.text().find("id: 201\n"));
  REQUIRE(a.Post("/mesh/" + mesh + "/messages", R"({"from":"agent-a","content":"live"})", "application/json")->status == 201);
  REQUIRE(reader.WaitFor("id: 451\n"));
  CHECK(reader.Count("event: message") == 451);
}

TEST_CASE("events: a comment keeps an idle stream open; SIGTERM ends streams and the relay exits 0") {
  TempDir home;
  const std::string alice = AdminToken(home, "alice");
  RelayProcess relay(home, {"--events-keepalive-ms", "200"});
  httplib::Client a("127.0.0.1", relay.port);
  a.set_bearer_token_auth(alice);
  const std::string mesh = json::parse(a.Post("/mesh", R"({"name":"idle"})", "application/json")->body)["mesh_id"];
  RawClient reader(relay.port);
  reader.Send("GET /mesh/" + mesh + "/events HTTP/1.1\r\nHost: relay\r\nAuthorization: Bearer " +
                                     alice + "\r\n\r\n");
  REQUIRE(reader.WaitFor(": keep-alive", 3000ms));
  ::kill(relay.process.pid(), SIGTERM);
  CHECK(reader.ClosedByRelay(5000ms));
  auto status = relay.process.Wait(10000);
  REQUIRE(status);
  CHECK(WIFEXITED(*status));
  CHECK(WEXITSTATUS(*status) == 0);
}

}  // namespace meshwire::testing
