// End-to-end tests of `meshwire server` as a process: crash safety under
// SIGKILL, clean shutdown on SIGTERM, admin token creation, --version/help.
#include <doctest/doctest.h>
#include <sqlite3.h>
#include <httplib.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <regex>
#include <thread>

#include "tests/support/raw_client.h"
#include "tests/support/relay_process.h"
#include "tests/support/silent_host.h"

namespace meshwire::testing {

namespace {

using nlohmann::json;

httplib::Headers Auth(const std::string& token) { return {{"Authorization", "Bearer " + token}}; }

}  // namespace

TEST_CASE("--version and help") {
  auto [code, out] = RunCommand({kBinary, "--version"});
  CHECK(code == 0);
  CHECK(out == std::string(MESHWIRE_VERSION) + "\n");
  auto [jcode, jout] = RunCommand({kBinary, "--version", "--json"});
  CHECK(jcode == 0);
  CHECK(json::parse(jout) == json{{"version", MESHWIRE_VERSION}});
  CHECK(RunCommand({kBinary, "--version", "--jsn"}).first == 2);
  auto [hcode, hout] = RunCommand({kBinary, "help"});
  CHECK(hcode == 0);
  CHECK(hout.find("server") != std::string::npos);
  auto [scode, sout] = RunCommand({kBinary, "help", "server"});
  CHECK(scode == 0);
  CHECK(sout.find("--retention-days") != std::string::npos);
  CHECK(RunCommand({kBinary, "no-such-command"}).first == 2);
  CHECK(RunCommand({kBinary, "server", "--threads", "abc"}).first == 2);
}

TEST_CASE("admin token create prints the token alone, and it works on the relay") {
  TempDir home;
  std::string token = AdminToken(home, "ci-user");
  CHECK(token.rfind("mw_", 0) == 0);
  RelayProcess relay(home);
  httplib::Client c("127.0.0.1", relay.port);
  auto me = c.Get("/me", Auth(token));
  REQUIRE(me);
  CHECK(json::parse(me->body)["user"] == "ci-user");
  // User names ignore case: CI-User is the ci-user that exists.
  auto again = c.Get("/me", Auth(AdminToken(home, "CI-User")));
  REQUIRE(again);
  CHECK(json::parse(again->body)["user"] == "ci-user");
}

TEST_CASE("admin token create works before any relay ran: it makes the default home") {
  TempDir dir;
  const std::string home = dir / "fresh-home";  // does not exist yet
  CommandResult r = Run({kBinary, "admin", "token", "create", "--user", "first"}, {"MESHWIRE_HOME=" + home});
  CAPTURE(r.err);
  CHECK(r.code == 0);
  CHECK(r.out.rfind("mw_", 0) == 0);
  CHECK(std::filesystem::exists(home + "/relay.db"));
}

TEST_CASE("--auth local refuses a non-loopback address") {
  TempDir home;
  ChildProcess p({kBinary, "server", "--listen", "0.0.0.0:0", "--storage", "sqlite:" + home / "r.db"});
  auto status = p.Wait(10000);
  REQUIRE(status);
  CHECK(WEXITSTATUS(*status) != 0);
  p.WaitForStderr("loopback", 1000);
  CHECK(p.stderr_seen().find("--auth token") != std::string::npos);
  // Loopback behind a proxy that others reach (--public-url names another host): refused too.
  ChildProcess proxied({kBinary, "server", "--listen", "127.0.0.1:0", "--storage", "sqlite:" + home / "p.db",
                        "--public-url", "https://relay.example.com"});
  auto proxied_status = proxied.Wait(10000);
  REQUIRE(proxied_status);
  CHECK(WEXITSTATUS(*proxied_status) == 2);
  proxied.WaitForStderr("--public-url", 1000);
  CHECK(proxied.stderr_seen().find("--public-url https://relay.example.com says that others reach it (a proxy in "
                                   "front): use --auth token (or github) there.") != std::string::npos);
  CHECK_FALSE(std::filesystem::exists(home / "p.db"));  // refused before storage was created
}

TEST_CASE("storage that is no relay's is refused (exit 2) and left as it is: :memory:, another program's database") {
  TempDir home;
  CommandResult memory = Run({kBinary, "server", "--listen", "127.0.0.1:0", "--storage", "sqlite::memory:"},
                             {"MESHWIRE_HOME=" + home.path().string()});
  CHECK(memory.code == 2);
  CHECK(memory.err.find("SQLite's :memory: and file: names are not files") != std::string::npos);
  // Another program's SQLite file, named by a typo: not given meshwire's tables, nor switched to WAL.
  const std::string foreign = home / "other.db";
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(foreign.c_str(), &db) == SQLITE_OK);
  REQUIRE(sqlite3_exec(db, "CREATE TABLE foo(x); INSERT INTO foo VALUES (1);", nullptr, nullptr, nullptr) == SQLITE_OK);
  sqlite3_close(db);
  for (const std::vector<std::string>& command :
       {std::vector<std::string>{kBinary, "server", "--listen", "127.0.0.1:0", "--storage", "sqlite:" + foreign},
        std::vector<std::string>{kBinary, "admin", "token", "create", "--user", "x", "--storage", "sqlite:" + foreign}}) {
    CAPTURE(command[1]);
    CommandResult r = Run(command, {"MESHWIRE_HOME=" + home.path().string()});
    CHECK(r.code == 2);
    CHECK_MESSAGE(r.err.find("is another program's SQLite database (it has tables but no meshwire schema), left as "
                             "it is") != std::string::npos, r.err);
  }
  REQUIRE(sqlite3_open(foreign.c_str(), &db) == SQLITE_OK);
  auto one = [db](const char* sql) {
    sqlite3_stmt* s = nullptr;
    std::string value;
    if (sqlite3_prepare_v2(db, sql, -1, &s, nullptr) == SQLITE_OK && sqlite3_step(s) == SQLITE_ROW) {
      value = reinterpret_cast<const char*>(sqlite3_column_text(s, 0));
    }
    sqlite3_finalize(s);
    return value;
  };
  CHECK(one("SELECT group_concat(name) FROM sqlite_master") == "foo");
  CHECK(one("PRAGMA journal_mode") == "delete");
  sqlite3_close(db);
  CHECK_FALSE(std::filesystem::exists(foreign + ".lock"));  // nothing left beside it either
  // Flags set but empty (unset shell variables): never plain HTTP instead of HTTPS.
  for (const char* flag : {"--tls-cert", "--tls-key", "--public-url"}) {
    CAPTURE(flag);
    CommandResult empty = Run({kBinary, "server", "--listen", "127.0.0.1:0", "--storage", "sqlite:" + home / "e.db",
                               flag, ""});
    CHECK(empty.code == 2);
    CHECK(empty.err.find(std::string(flag) + " is empty (an unset shell variable?)") != std::string::npos);
  }
  // A PostgreSQL URL libpq cannot read: a flag to change (2), not "check that it is running" (1).
  for (const char* url : {"postgres://u:secretpw@127.0.0.1:1/db?bogus=1", "postgres://u:secretpw@[bad/db"}) {
    CAPTURE(url);
    CommandResult bad = Run({kBinary, "server", "--listen", "127.0.0.1:0", "--storage", url});
    CHECK(bad.code == 2);
    CHECK_MESSAGE(bad.err.find("is no PostgreSQL URL libpq can read (") != std::string::npos, bad.err);
    CHECK(bad.err.find("secretpw") == std::string::npos);
  }
  // A port that is no port: libpq says so only when it connects, as if the server were down (it was 1).
  for (const auto& [url, port] : std::vector<std::pair<std::string, std::string>>{
           {"postgres://u:secretpw@127.0.0.1:abc/db", "abc"},
           {"postgresql://u:secretpw@127.0.0.1:99999/db", "99999"},
           {"postgres://u:secretpw@127.0.0.1:5432,127.0.0.2:x/db", "x"}}) {
    CAPTURE(url);
    CommandResult bad = Run({kBinary, "server", "--listen", "127.0.0.1:0", "--storage", url});
    CHECK(bad.code == 2);
    CHECK_MESSAGE(bad.err.find("the port \"" + port + "\" is not a port number") != std::string::npos, bad.err);
    CHECK(bad.err.find("secretpw") == std::string::npos);
    CommandResult migrate = Run({kBinary, "admin", "migrate", "--from", "sqlite:" + home / "m.db", "--to", url});
    CHECK(migrate.code == 2);
    CHECK_MESSAGE(migrate.err.find("--to postgres") != std::string::npos, migrate.err);
    CHECK(migrate.err.find("secretpw") == std::string::npos);
  }
  // Why it does not start is said whatever --log-level hides.
  CommandResult quiet = Run({kBinary, "server", "--listen", "127.0.0.1:99999", "--log-level", "off"});
  CHECK(quiet.code == 2);
  CHECK(quiet.err.find("--listen must be IP:PORT") != std::string::npos);
}

TEST_CASE("storage a relay cannot serve is refused at start: a file another relay runs on, read-only, unknown scheme") {
  TempDir home;
  RelayProcess first(home);
  // A second relay on the same SQLite file would wake only its own parked
  // polls: it is refused, naming the first one's pid; admin still works.
  CommandResult second = Run({kBinary, "server", "--listen", "127.0.0.1:0", "--storage", "sqlite:" + home / "relay.db"},
                             {"MESHWIRE_HOME=" + home.path().string()});
  CHECK(second.code == 1);
  CHECK(second.err.find("Another meshwire server (pid " + std::to_string(first.process.pid()) + ") already runs on") !=
        std::string::npos);
  CHECK(AdminToken(home, "still-works").rfind("mw_", 0) == 0);
  // Through a symbolic link or a hard link to the same file: refused as well (each
  // name had a lock file of its own, and the second relay ran beside the first).
  std::filesystem::create_symlink(home / "relay.db", home / "symlink.db");
  std::filesystem::create_hard_link(home / "relay.db", home / "hardlink.db");
  for (const char* other_name : {"symlink.db", "hardlink.db"}) {
    CAPTURE(other_name);
    CommandResult linked = Run({kBinary, "server", "--listen", "127.0.0.1:0", "--storage", "sqlite:" + home / other_name},
                               {"MESHWIRE_HOME=" + home.path().string()});
    CHECK(linked.code == 1);
    CHECK_MESSAGE(linked.err.find("already runs on") != std::string::npos, linked.err);
  }
  // Once the first one is gone, the file is free again (SIGKILL included).
  first.process.Signal(SIGKILL);
  RelayProcess again(home);
  CHECK(again.port > 0);

  // A database this user may only read: refused at start, not 503 on every write.
  TempDir ro;
  RunCommand({kBinary, "admin", "token", "create", "--user", "x", "--storage", "sqlite:" + ro / "ro.db"});
  namespace fs = std::filesystem;
  fs::permissions(ro.path(), fs::perms::all);  // the folder open to all, the file readable only
  fs::permissions(ro / "ro.db", fs::perms::owner_read | fs::perms::group_read | fs::perms::others_read);
  std::vector<std::string> serve = {kBinary, "server", "--listen", "127.0.0.1:0", "--storage", "sqlite:" + ro / "ro.db"};
  // Root may write any file: as root, the relay runs as nobody here.
  if (::geteuid() == 0) serve.insert(serve.begin(), {"/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"});
  CommandResult r = Run(serve, {"MESHWIRE_HOME=" + ro.path().string()});
  CHECK(r.code == 1);
  CHECK(r.err.find("is read-only for this user") != std::string::npos);
  for (const char* bad : {"not a url", "https://h:99999", "https://h:0", "ftp://h", "https://h:80x", "https://h:",
                          "http://h:1/x;touch${IFS}/tmp/x", "http://h/$(id)", "http://h/a'b"}) {
    CAPTURE(bad);
    CommandResult url = Run({kBinary, "server", "--listen", "127.0.0.1:0", "--storage", "sqlite:" + home / "u.db",
                             "--public-url", bad});
    CHECK(url.code == 2);
    CHECK(url.err.find("--public-url must be the relay's address as clients reach it") != std::string::npos);
  }
  CHECK(!fs::exists(home / "u.db"));
  CommandResult mysql = Run({kBinary, "server", "--listen", "127.0.0.1:0", "--storage", "mysql://x"});
  CHECK(mysql.code == 2);
  CHECK(mysql.err.find("meshwire stores in SQLite (sqlite:PATH) or PostgreSQL") != std::string::npos);
  // A device or a folder: refused at start (it used to be "disk I/O error" on
  // the first request), by admin too.
  for (const std::string& path : {std::string("/dev/null"), ro.path().string()}) {
    CAPTURE(path);
    CommandResult device = Run({kBinary, "server", "--listen", "127.0.0.1:0", "--storage", "sqlite:" + path});
    CHECK(device.code == 2);  // a flag to change
    CHECK(device.err.find(path + " is not a regular file") != std::string::npos);
    CommandResult admin = Run({kBinary, "admin", "token", "create", "--user", "x", "--storage", "sqlite:" + path});
    CHECK(admin.code != 0);
    CHECK(admin.err.find(path + " is not a regular file") != std::string::npos);
  }
}

TEST_CASE("a PostgreSQL host that takes the connection and never answers: the relay gives up within 5 s, saying so") {
  // libpq's own default is to wait for ever (PostgreSQL: connect_timeout).
  SilentHost host;
  const auto start = std::chrono::steady_clock::now();
  CommandResult r = Run({"/usr/bin/env", "-u", "PGCONNECT_TIMEOUT", kBinary, "server", "--listen", "127.0.0.1:0",
                         "--storage", "postgres://meshwire@127.0.0.1:" + std::to_string(host.port) + "/m"});
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  CHECK(r.code == 1);  // storage that may come back: not a flag to change
  CHECK(r.err.find("Cannot connect to PostgreSQL") != std::string::npos);
  CHECK(r.err.find("timeout expired") != std::string::npos);
  CHECK(seconds >= 3.5);  // libpq counts whole seconds of time(): up to one less
  CHECK(seconds < 9);
}

TEST_CASE("--listen takes an IP address or localhost, and says so otherwise, before touching storage") {
  TempDir home;
  for (const char* listen : {"999.1.1.1:1", "example.invalid:7420", "127.0.0.1:99999", "127.0.0.1", "127.0.0.1: 20001",
                             "127.0.0.1:+1", "127.0.0.1:"}) {
    CAPTURE(listen);
    CommandResult r = Run({kBinary, "server", "--listen", listen, "--storage", "sqlite:" + home / "r.db"});
    CHECK(r.code == 2);
    CHECK(r.err.find("--listen must be IP:PORT") != std::string::npos);
  }
  CHECK(!std::filesystem::exists(home / "r.db"));
  // Flags to change are usage errors (exit 2), said before anything starts.
  CommandResult github_url = Run({kBinary, "server", "--listen", "127.0.0.1:0", "--storage", "sqlite:" + home / "r.db",
                                  "--auth", "github", "--github-client-id", "x", "--github-client-secret", "y",
                                  "--github-url", "notaurl"});
  CHECK(github_url.code == 2);
  CHECK(github_url.err.find("--github-url must be http(s)://HOST[:PORT][/PATH] (got \"notaurl\")") != std::string::npos);
  CommandResult everywhere = Run({kBinary, "server", "--listen", "0.0.0.0:0", "--storage", "sqlite:" + home / "r.db"});
  CHECK(everywhere.code == 2);
  CHECK(everywhere.err.find("--auth local signs in anyone who asks") != std::string::npos);
  CommandResult no_app = Run({kBinary, "server", "--listen", "127.0.0.1:0", "--storage", "sqlite:" + home / "r.db",
                              "--auth", "github"}, {"MESHWIRE_GITHUB_CLIENT_ID=", "MESHWIRE_GITHUB_CLIENT_SECRET="});
  CHECK(no_app.code == 2);
  ChildProcess local({kBinary, "server", "--listen", "localhost:0", "--storage", "sqlite:" + home / "r.db"});
  auto line = local.WaitForStderr("listening on http://127.0.0.1:", 10000);
  REQUIRE(line);
  // The token hint runs as printed: its storage quoted for the shell.
  CHECK(local.WaitForStderr("meshwire admin token create --user $USER --storage 'sqlite:" + home / "r.db" + "'", 5000));
  // A port already taken: refused before the second relay's storage is made.
  std::smatch port;
  REQUIRE(std::regex_search(*line, port, std::regex(R"(127\.0\.0\.1:(\d+))")));
  CommandResult taken = Run({kBinary, "server", "--listen", "127.0.0.1:" + port[1].str(), "--storage",
                             "sqlite:" + home / "second.db"});
  CHECK(taken.code == 1);
  CHECK(taken.err.find("Cannot listen on 127.0.0.1:" + port[1].str()) != std::string::npos);
  CHECK(!std::filesystem::exists(home / "second.db"));
}

TEST_CASE("SIGTERM: a parked poll answers, storage closes, exit 0") {
  TempDir home;
  std::string token = AdminToken(home, "alice");
  RelayProcess relay(home);
  httplib::Client c("127.0.0.1", relay.port);
  std::string mesh = json::parse(c.Post("/mesh", Auth(token), R"({"name":"m"})", "application/json")->body)["mesh_id"];
  c.Post("/mesh/" + mesh + "/agents", Auth(token), R"({"name":"b"})", "application/json");
  std::atomic<int> poll_status{0};
  std::thread poller([&] {
    httplib::Client pc("127.0.0.1", relay.port);
    pc.set_read_timeout(70, 0);
    auto r = pc.Get("/mesh/" + mesh + "/messages?agent_id=b&wait=60", Auth(token));
    poll_status = r ? r->status : -1;
  });
  // Wait (bounded) until the poll is parked.
  for (int i = 0; i < 1000; ++i) {
    auto r = c.Get("/mesh/" + mesh + "/agents", Auth(token));
    if (r && json::parse(r->body)["agents"][0]["listening"] == true) break;
    usleep(2000);
  }
  auto started = std::chrono::steady_clock::now();
  auto status = relay.process.Signal(SIGTERM, 15000);
  poller.join();
  REQUIRE(status);
  CHECK(WIFEXITED(*status));
  CHECK(WEXITSTATUS(*status) == 0);
  CHECK(poll_status == 200);
  CHECK(std::chrono::steady_clock::now() - started < std::chrono::seconds(10));
}

TEST_CASE("a second SIGTERM closes what the first waits for; SIGHUP without TLS says so; debug logs requests") {
  TempDir home;
  RelayProcess relay(home, {"--log-level", "debug"});
  ::kill(relay.process.pid(), SIGHUP);
  CHECK(relay.process.WaitForStderr("SIGHUP: nothing to reload", 5000));
  // Half a request: the first SIGTERM gives it its request timeout (10 s).
  RawClient slow(relay.port);
  REQUIRE(slow.Send("GET /health HTTP/1.1\r\nHost: x\r\n"));
  REQUIRE(httplib::Client("127.0.0.1", relay.port).Get("/health"));  // the half request is read by now
  // --log-level debug: a line per request, with its answer.
  CHECK(relay.process.WaitForStderr("127.0.0.1 GET /health -> 200 after", 5000));
  ::kill(relay.process.pid(), SIGTERM);
  REQUIRE(relay.process.WaitForStderr("again to close the connections at once", 5000));
  CHECK(!relay.process.Wait(300));  // still serving it
  auto started = std::chrono::steady_clock::now();
  auto status = relay.process.Signal(SIGTERM, 5000);
  REQUIRE(status);
  CHECK(WIFEXITED(*status));
  CHECK(WEXITSTATUS(*status) == 0);
  CHECK(std::chrono::steady_clock::now() - started < std::chrono::seconds(3));
  CHECK(relay.process.WaitForStderr("received again: closing 1 connection now", 1000));
  CHECK(relay.process.WaitForStderr("stopped cleanly", 1000));
}

TEST_CASE("--log-level debug: an answer the client never took is logged as not delivered") {
  TempDir home;
  std::string token = AdminToken(home, "alice");
  RelayProcess relay(home, {"--log-level", "debug"});
  httplib::Client c("127.0.0.1", relay.port);
  c.set_keep_alive(true);
  std::string mesh = json::parse(c.Post("/mesh", Auth(token), R"({"name":"m"})", "application/json")->body)["mesh_id"];
  c.Post("/mesh/" + mesh + "/agents", Auth(token), R"({"name":"a"})", "application/json");
  // 5 MB of history: more than the sockets' buffers take, so the answer is
  // still being written when the client resets the connection.
  const std::string content(10000, 'x');
  for (int i = 0; i < 500; ++i) {
    auto r = c.Post("/mesh/" + mesh + "/messages", Auth(token), json({{"from", "a"}, {"content", content}}).dump(),
                    "application/json");
    REQUIRE(r);
    REQUIRE(r->status == 201);
  }
  {
    RawClient client(relay.port);
    REQUIRE(client.Send("GET /mesh/" + mesh + "/messages?limit=1000 HTTP/1.1\r\nHost: relay\r\nAuthorization: Bearer " +
                        token + "\r\n\r\n"));
    CHECK(relay.process.WaitForStderr("GET /mesh/" + mesh + "/messages -> 200 after", 300).has_value() == false);
    client.Reset();  // without reading: the rest of the answer cannot be written
  }
  CHECK(relay.process.WaitForStderr("GET /mesh/" + mesh + "/messages -> 200, not delivered:", 5000));
  CHECK(httplib::Client("127.0.0.1", relay.port).Get("/health"));  // and it goes on serving
}

/// 8 clients send until the relay is killed (SIGKILL); after a restart every
/// acknowledged message is there, once, in order. `keyed`: each send has an
/// idempotency key (written one by one); else the sends are gathered into
/// one write per batch.
static void SendThroughKill(bool keyed) {
  TempDir home;
  std::string token = AdminToken(home, "alice");
  std::string mesh;
  std::vector<std::string> senders;
  std::map<std::string, std::vector<int>> acked;  // sender id -> acknowledged numbers, in order
  std::mutex acked_mu;
  {
    RelayProcess relay(home);
    httplib::Client c("127.0.0.1", relay.port);
    mesh = json::parse(c.Post("/mesh", Auth(token), R"({"name":"crash"})", "application/json")->body)["mesh_id"];
    for (int i = 0; i < 8; ++i) {
      auto r = c.Post("/mesh/" + mesh + "/agents", Auth(token),
                      json({{"name", "sender-" + std::to_string(i)}}).dump(), "application/json");
      senders.push_back(json::parse(r->body)["agent_id"]);
    }
    std::atomic<int> total{0};
    std::atomic<bool> stop{false};
    std::vector<std::thread> clients;
    for (int i = 0; i < 8; ++i) {
      clients.emplace_back([&, i] {
        httplib::Client sc("127.0.0.1", relay.port);
        sc.set_keep_alive(true);
        for (int n = 1; !stop && n <= 100000; ++n) {
          json body = {{"from", senders[i]}, {"content", std::to_string(n)}};
          if (keyed) body["idempotency_key"] = senders[i] + "-" + std::to_string(n);
          auto r = sc.Post("/mesh/" + mesh + "/messages", Auth(token), body.dump(), "application/json");
          if (!r) break;  // the relay is gone
          if (r->status != 201) {
            FAIL_CHECK("send answered " << r->status);
            break;
          }
          std::lock_guard lock(acked_mu);
          acked[senders[i]].push_back(n);
          ++total;
        }
      });
    }
    // Kill it mid-stream, once a fair amount has been acknowledged.
    for (int i = 0; i < 2000 && total < 400; ++i) usleep(5000);
    CHECK(total >= 400);
    kill(relay.process.pid(), SIGKILL);
    relay.process.Wait();
    stop = true;
    for (auto& t : clients) t.join();
  }
  RelayProcess restarted(home);
  httplib::Client c("127.0.0.1", restarted.port);
  std::map<std::string, std::vector<int>> stored;
  std::int64_t after = 0, last_seq = 0;
  for (;;) {
    auto r = c.Get("/mesh/" + mesh + "/messages?after=" + std::to_string(after) + "&limit=1000",
                   Auth(token));
    REQUIRE(r);
    REQUIRE(r->status == 200);
    json page = json::parse(r->body);
    if (page["messages"].empty()) break;
    for (const auto& m : page["messages"]) {
      CHECK(m["seq"].get<std::int64_t>() == last_seq + 1);  // no gaps
      last_seq = m["seq"];
      stored[m["from"]].push_back(std::stoi(m["content"].get<std::string>()));
    }
    after = page["cursor"];
  }
  for (const auto& [sender, numbers] : acked) {
    CAPTURE(sender);
    const auto& got = stored[sender];
    // Stored in send order, each once: 1, 2, 3, ... (a message in flight at
    // the kill may be stored without its 201 having arrived).
    for (std::size_t k = 0; k < got.size(); ++k) REQUIRE(got[k] == static_cast<int>(k + 1));
    CHECK(got.size() >= numbers.size());
    CHECK(got.size() <= numbers.size() + 1);
  }
}

TEST_CASE("SIGKILL while 8 clients send with idempotency keys: every acknowledged message survives, once, in order") {
  SendThroughKill(true);
}

TEST_CASE("SIGKILL while 8 clients send (gathered writes): every acknowledged message survives, once, in order") {
  SendThroughKill(false);
}

}  // namespace meshwire::testing
