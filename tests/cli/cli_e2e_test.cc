// End-to-end tests of the command line: the built `meshwire` binary against a
// real relay process, with a temporary HOME and MESHWIRE_HOME, as a person
// follows the product page (headless: the token comes from `meshwire admin
// token create`, or from the browser sign-in played by an HTTP client).
#include <arpa/inet.h>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <doctest/doctest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>
#include <thread>

#include "tests/support/fake_http.h"
#include "tests/support/relay_process.h"
#include "tests/support/silent_host.h"

namespace meshwire::testing {

namespace {

namespace fs = std::filesystem;
using nlohmann::json;

std::string Slurp(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

/// A user's machine: HOME and MESHWIRE_HOME in a temp folder, a workspace.
struct UserMachine {
  TempDir dir;
  std::string home = dir / "home";
  std::string workspace = dir / "home/project";
  std::vector<std::string> extra_env;

  UserMachine() { fs::create_directories(workspace); }

  std::vector<std::string> Env(const std::vector<std::string>& more = {}) const {
    std::vector<std::string> env = {"HOME=" + home, "MESHWIRE_HOME=" + home + "/.meshwire",
                                    "NO_COLOR=1", "MESHWIRE_TOKEN=", "MESHWIRE_URL=",
                                    "MESHWIRE_MESH_ID=", "MESHWIRE_AGENT_NAME="};
    env.insert(env.end(), extra_env.begin(), extra_env.end());
    env.insert(env.end(), more.begin(), more.end());
    return env;
  }
  CommandResult Mw(std::vector<std::string> args, const std::vector<std::string>& env = {}) const {
    args.insert(args.begin(), kBinary);
    return Run(args, Env(env), workspace);
  }
  /// Until `meshwire agents` (run with `env`) lists agent `name` as listening
  /// (its long-poll is parked), at most 10 s: whether it did.
  bool UntilListening(const std::string& name, const std::vector<std::string>& env) const {
    for (int i = 0; i < 200; ++i) {
      const json listed = json::parse(Mw({"agents", "--json"}, env).out);
      for (const json& a : listed["agents"]) {
        if (a["name"] == name && a["listening"] == true) return true;
      }
      usleep(50000);
    }
    return false;
  }
};

/// A relay, a token for alice, and a machine whose environment points at both.
struct World {
  TempDir relay_dir;
  RelayProcess relay{relay_dir};
  std::string token = AdminToken(relay_dir, "alice");
  UserMachine machine;
  World() { machine.extra_env = {"MESHWIRE_URL=" + relay.url()}; }

  /// `mesh create` + `mesh use`; returns the id.
  std::string CreateAndUseMesh(const std::string& name = "my-fleet") {
    CommandResult created = machine.Mw({"mesh", "create", name}, {"MESHWIRE_TOKEN=" + token});
    REQUIRE(created.code == 0);
    std::smatch m;
    REQUIRE(std::regex_search(created.out, m, std::regex("Created mesh: ([0-9A-Za-z]{12}) \"" + name + "\"")));
    std::string id = m[1];
    CHECK(created.out.find("Run `meshwire mesh use " + id + "` to activate it.") != std::string::npos);
    CommandResult used = machine.Mw({"mesh", "use", id}, {"MESHWIRE_TOKEN=" + token});
    REQUIRE(used.code == 0);
    CHECK(used.out == "OK Active mesh set to: " + id + "\n");
    return id;
  }
};

/// `meshwire login --no-browser` against a relay on `m`, with the browser
/// played by an HTTP client.
struct BrowserLogin {
  const RelayProcess& relay;
  ChildProcess login;
  std::string page_path, port, state;  // from the URL login prints
  httplib::Client browser;

  BrowserLogin(const RelayProcess& r, const UserMachine& m)
      : relay(r), login({kBinary, "login", "--no-browser", "--url", r.url()}, m.Env(), m.workspace), browser(r.url()) {
    auto line = login.WaitForStdout(relay.url() + "/auth/cli?port=");
    REQUIRE(line);
    std::smatch u;
    REQUIRE(std::regex_search(*line, u, std::regex("port=(\\d+)&state=([0-9A-Za-z]+)")));
    page_path = line->substr(relay.url().size());
    port = u[1];
    state = u[2];
  }
  /// Submits the sign-in form as `user`: the Location the relay redirects to.
  std::string Approve(const std::string& user) {
    auto approved = browser.Post("/auth/cli", httplib::Params{{"user", user}, {"port", port}, {"state", state}});
    REQUIRE(approved);
    REQUIRE(approved->status == 302);
    return approved->get_header_value("Location");
  }
  /// POST /auth/cli/token with the code of `location`.
  httplib::Result Redeem(const std::string& location) {
    return browser.Post("/auth/cli/token", json({{"code", location.substr(location.find("code=") + 5, 32)}}).dump(),
                        "application/json");
  }
  /// The browser follows `location` to the CLI's loopback callback.
  httplib::Result Follow(const std::string& location) {
    httplib::Client loopback("127.0.0.1", std::stoi(port));
    return loopback.Get(location.substr(location.find("/callback")));
  }
};

bool OneSentence(const std::string& err) {
  // One line, starting with "meshwire: ", no stack trace.
  return err.rfind("meshwire: ", 0) == 0 && std::count(err.begin(), err.end(), '\n') == 1;
}

}  // namespace

TEST_CASE("the product page's walkthrough, in order") {
  World w;
  // init --token saves the credentials, as the troubleshooting section says.
  std::string mesh = w.CreateAndUseMesh();
  CommandResult init = w.machine.Mw({"init", "--harness", "copilot", "--token", w.token});
  REQUIRE_MESSAGE(init.code == 0, init.err);
  CHECK(init.out.find("OK .mesh.json written") != std::string::npos);
  CHECK(init.out.find("mesh_id: " + mesh) != std::string::npos);
  CHECK(init.out.find("agent_name: copilot-agent") != std::string::npos);
  CHECK(init.out.find("harness: copilot") != std::string::npos);
  CHECK(std::regex_search(init.out, std::regex("OK Registered as copilot-agent \\([0-9A-Za-z]{9,}\\)")));
  CHECK(init.out.find("OK Copilot harness ready!") != std::string::npos);
  json mesh_json = json::parse(Slurp(w.machine.workspace + "/.mesh.json"));
  CHECK(mesh_json == json({{"mesh_id", mesh}, {"workspace_name", "project"}, {"agent_name", "copilot-agent"},
                           {"harness", "copilot"}}));
  CHECK(init.out.find("OK Token saved to ~/.meshwire/credentials.json") != std::string::npos);
  auto creds = fs::path(w.machine.home) / ".meshwire/credentials.json";
  const auto owner_rw = fs::perms::owner_read | fs::perms::owner_write;
  CHECK((fs::status(creds).permissions() & fs::perms::all) == owner_rw);
  // A wrong --token is named as the one given (not "run meshwire login"), and saves nothing.
  const std::string saved = Slurp(creds);
  CommandResult bogus = w.machine.Mw({"init", "--token", "mw_" + std::string(40, 'x')});
  CHECK(bogus.code == 1);
  CHECK(OneSentence(bogus.err));
  CHECK(bogus.err.find("does not know the token given with --token") != std::string::npos);
  CHECK(Slurp(creds) == saved);

  // From here on nothing in the environment but the URL: files carry the rest.
  CommandResult status = w.machine.Mw({"status"});
  CHECK_MESSAGE(status.code == 0, status.out << status.err);
  CHECK(status.out.find("MeshWire Status") != std::string::npos);
  CHECK(std::regex_search(status.out, std::regex("Token : mw_\\*{12}[0-9A-Za-z]{6}\n")));
  CHECK(status.out.find("URL : " + w.relay.url()) != std::string::npos);
  CHECK(status.out.find("Mesh : " + mesh) != std::string::npos);
  CHECK(std::regex_search(status.out, std::regex("Agent : copilot-agent \\([0-9A-Za-z]+\\)")));
  CHECK(status.out.find("Service : OK online") != std::string::npos);
  CHECK(status.out.find("Mesh : OK exists \"my-fleet\"") != std::string::npos);
  CHECK(status.out.find("Agents : 1 registered, 1 active") != std::string::npos);

  // Terminal 1 listens as copilot-agent; terminal 2 sends as another agent.
  ChildProcess listen({kBinary, "listen"}, w.machine.Env(), w.machine.workspace);
  REQUIRE(listen.WaitForStdout("Press Ctrl+C to stop"));
  CHECK(listen.stdout_seen().find("MeshWire listening on mesh " + mesh) != std::string::npos);
  CommandResult sent = w.machine.Mw({"send", "Hello from MeshWire!"}, {"MESHWIRE_AGENT_NAME=hermes-cloud"});
  REQUIRE(sent.code == 0);
  CHECK(std::regex_match(sent.out, std::regex("OK Sent -> all agents \\[id: [0-9]+\\]\n")));
  auto got = listen.WaitForStdout("Hello from MeshWire!", 5000);  // at once (the figure: bench/, wake latency)
  CHECK(got);
  CHECK(listen.stdout_seen().find("hermes-cloud") != std::string::npos);
  auto stopped = listen.Signal(SIGINT);
  REQUIRE(stopped);
  CHECK(WEXITSTATUS(*stopped) == 0);

  CommandResult agents = w.machine.Mw({"agents"});
  CHECK(agents.code == 0);
  CHECK(agents.out.find("Agents in mesh " + mesh + " (2)") != std::string::npos);
  CHECK(std::regex_search(agents.out, std::regex("\\* active  copilot-agent \\(you\\)\\s+[0-9A-Za-z]+ \\d+s ago")));
  CHECK(agents.out.find("hermes-cloud") != std::string::npos);

  // "See it work" sends to agent-b before anything runs under that name: the error says how to start it.
  CommandResult to_b = w.machine.Mw({"send", "hello", "--to", "agent-b"});
  CHECK(to_b.code == 1);
  CHECK(OneSentence(to_b.err));
  CHECK_MESSAGE(to_b.err.find("No agent \"agent-b\" in mesh " + mesh) != std::string::npos, to_b.err);
  CHECK(to_b.err.find("run `meshwire listen --name agent-b` (or `MESHWIRE_AGENT_NAME=agent-b meshwire listen`) in "
                      "another terminal of this mesh, then send again.") != std::string::npos);

  CommandResult guide = w.machine.Mw({"integrate"});
  CHECK(guide.code == 0);
  CHECK(guide.out.find(mesh) != std::string::npos);
  CHECK(guide.out.find("meshwire_send_message") != std::string::npos);
  CommandResult guide_json = w.machine.Mw({"integrate", "--json"});
  REQUIRE(guide_json.code == 0);
  const json g = json::parse(guide_json.out);
  CHECK(g["mesh_id"] == mesh);
  CHECK(g["markdown"] == guide.out);
}

TEST_CASE(
    "init follows the harnesses' own home variables (HERMES_HOME, CODEX_HOME, COPILOT_HOME)") {
  World w;
  w.CreateAndUseMesh();
  const std::string elsewhere = w.machine.home + "/elsewhere";
  // CODEX_HOME is relative: from the working directory (the workspace), as Codex reads it.
  const std::vector<std::string> env = {
      "MESHWIRE_TOKEN=" + w.token, "HERMES_HOME=" + elsewhere + "/hermes", "CODEX_HOME=codex-home",
      "COPILOT_HOME=" + elsewhere + "/copilot"};
  for (const char* harness : {"hermes", "codex", "copilot"}) {
    CommandResult init = w.machine.Mw({"init", "--harness", harness}, env);
    REQUIRE_MESSAGE(init.code == 0, init.err);
  }
  CHECK(fs::exists(elsewhere + "/hermes/config.yaml"));
  CHECK(fs::exists(elsewhere + "/hermes/skills/meshwire/SKILL.md"));
  CHECK(fs::exists(w.machine.workspace + "/codex-home/config.toml"));
  CHECK(fs::exists(elsewhere + "/copilot/extensions/meshwire/extension.mjs"));
  for (const char* dir : {".hermes", ".codex", ".copilot"})
    CHECK(!fs::exists(w.machine.home + "/" + dir));
}

TEST_CASE("mesh create of a name the user already has makes another mesh, and says so on stderr") {
  World w;
  const std::string first = w.CreateAndUseMesh("twice");
  CommandResult again = w.machine.Mw({"mesh", "create", "twice"}, {"MESHWIRE_TOKEN=" + w.token});
  REQUIRE(again.code == 0);
  std::smatch m;
  REQUIRE(std::regex_search(again.out, m, std::regex("Created mesh: ([0-9A-Za-z]{12}) \"twice\"")));
  const std::string second = m[1];
  CHECK(second != first);
  CHECK(again.err.find("Note: you already had a mesh named \"twice\" (" + first + "); this is another one.") !=
        std::string::npos);
  CHECK(again.err.find("`meshwire mesh delete " + second + "` removes the new one.") != std::string::npos);
  // A name used once is no note.
  CommandResult other = w.machine.Mw({"mesh", "create", "once"}, {"MESHWIRE_TOKEN=" + w.token});
  REQUIRE(other.code == 0);
  CHECK(other.err.empty());
}

TEST_CASE("agents --delete removes an agent by name or id; an unknown one is named; an empty one is a usage error") {
  World w;
  const std::string mesh = w.CreateAndUseMesh();
  const std::vector<std::string> tok = {"MESHWIRE_TOKEN=" + w.token};
  for (const char* name : {"old-ci-run", "keeper", "by-id"}) {
    REQUIRE(w.machine.Mw({"send", "hi", "--to", "all"}, {tok[0], std::string("MESHWIRE_AGENT_NAME=") + name}).code == 0);
  }
  auto names = [&] {
    std::vector<std::string> out;
    const json listed = json::parse(w.machine.Mw({"agents", "--json"}, tok).out);
    for (const json& a : listed["agents"]) out.push_back(a["name"]);
    return out;
  };
  REQUIRE(names().size() == 3);

  CommandResult removed = w.machine.Mw({"agents", "--delete", "old-ci-run"}, tok);
  CHECK_MESSAGE(removed.code == 0, removed.err);
  CHECK(removed.out == "OK Removed agent old-ci-run from mesh " + mesh + ".\n");
  CHECK(names() == std::vector<std::string>{"by-id", "keeper"});

  std::string by_id;
  const json listed = json::parse(w.machine.Mw({"agents", "--json"}, tok).out);
  for (const json& a : listed["agents"]) {
    if (a["name"] == "by-id") by_id = a["agent_id"];
  }
  CommandResult as_json = w.machine.Mw({"agents", "--delete", by_id, "--json"}, tok);
  CHECK(as_json.code == 0);
  CHECK(json::parse(as_json.out) == json({{"deleted", by_id}, {"mesh_id", mesh}}));
  CHECK(names() == std::vector<std::string>{"keeper"});

  CommandResult unknown = w.machine.Mw({"agents", "--delete", "nobody"}, tok);
  CHECK(unknown.code == 1);
  CHECK(OneSentence(unknown.err));
  CHECK(unknown.err.find("nobody") != std::string::npos);
  CommandResult empty = w.machine.Mw({"agents", "--delete", ""}, tok);
  CHECK(empty.code == 2);
  CHECK(names() == std::vector<std::string>{"keeper"});
}

TEST_CASE("init writes the path the user ran, symbolic links kept (a versioned install survives upgrades)") {
  World w;
  w.CreateAndUseMesh();
  // /opt/bin/meshwire -> the build's binary, as a versioned install links it.
  const std::string bin = w.machine.home + "/opt/bin";
  fs::create_directories(bin);
  fs::create_symlink(kBinary, bin + "/meshwire");
  const std::vector<std::string> env = {"MESHWIRE_TOKEN=" + w.token};
  // By its path.
  CommandResult direct =
      Run({bin + "/meshwire", "init", "--harness", "claude-code"}, w.machine.Env(env), w.machine.workspace);
  REQUIRE_MESSAGE(direct.code == 0, direct.err);
  CHECK(json::parse(Slurp(w.machine.workspace + "/.mcp.json"))["mcpServers"]["meshwire"]["command"] ==
        bin + "/meshwire");
  // By its name, found on PATH by the shell (argv[0] is then "meshwire"):
  // the user-wide file names its path, the committed workspace file only
  // its name, which each teammate's PATH resolves (no path of this machine).
  std::vector<std::string> path_env = w.machine.Env(env);
  path_env.push_back("PATH=" + bin + ":/usr/bin:/bin");
  CommandResult by_name =
      Run({"/bin/sh", "-c", "exec meshwire init --harness cursor"}, path_env, w.machine.workspace);
  REQUIRE_MESSAGE(by_name.code == 0, by_name.err);
  CHECK(json::parse(Slurp(w.machine.home + "/.cursor/mcp.json"))["mcpServers"]["meshwire"]["command"] ==
        bin + "/meshwire");
  CommandResult committed =
      Run({"/bin/sh", "-c", "exec meshwire init --harness vscode"}, path_env, w.machine.workspace);
  REQUIRE_MESSAGE(committed.code == 0, committed.err);
  CHECK(json::parse(Slurp(w.machine.workspace + "/.vscode/mcp.json"))["servers"]["meshwire"]["command"] ==
        "meshwire");
  // A teammate whose meshwire is elsewhere on PATH changes nothing in it.
  const std::string other_bin = w.machine.home + "/other/bin";
  fs::create_directories(other_bin);
  fs::copy_file(kBinary, other_bin + "/meshwire");
  fs::permissions(other_bin + "/meshwire", fs::perms::owner_all);
  std::vector<std::string> teammate_env = w.machine.Env(env);
  teammate_env.push_back("PATH=" + other_bin + ":/usr/bin:/bin");
  CommandResult teammate =
      Run({"/bin/sh", "-c", "exec meshwire init --harness vscode"}, teammate_env, w.machine.workspace);
  REQUIRE_MESSAGE(teammate.code == 0, teammate.err);
  CHECK(teammate.out.find(".vscode/mcp.json unchanged") != std::string::npos);
  // The path ran while PATH finds another meshwire first: the path it ran.
  CommandResult shadowed =
      Run({bin + "/meshwire", "init", "--harness", "vscode"}, teammate_env, w.machine.workspace);
  REQUIRE_MESSAGE(shadowed.code == 0, shadowed.err);
  CHECK(json::parse(Slurp(w.machine.workspace + "/.vscode/mcp.json"))["servers"]["meshwire"]["command"] ==
        bin + "/meshwire");
}

TEST_CASE("listen acknowledges what it printed: a restart does not print it again") {
  World w;
  std::string mesh = w.CreateAndUseMesh();
  std::vector<std::string> b = {"MESHWIRE_TOKEN=" + w.token, "MESHWIRE_AGENT_NAME=agent-b"};
  std::vector<std::string> a = {"MESHWIRE_TOKEN=" + w.token, "MESHWIRE_AGENT_NAME=agent-a"};
  {
    ChildProcess listen({kBinary, "listen", "--json"}, w.machine.Env(b), w.machine.workspace);
    REQUIRE(w.machine.Mw({"agents"}, b).code == 0);
    // `listen` registers agent-b and parks its poll: until then a send to it is a 404.
    REQUIRE(w.machine.UntilListening("agent-b", b));
    REQUIRE(w.machine.Mw({"send", "first", "--to", "agent-b"}, a).code == 0);
    auto line = listen.WaitForStdout("\"content\":\"first\"", 2000);
    REQUIRE(line);
    CHECK(json::parse(*line)["from_name"] == "agent-a");  // one JSON object a line
    listen.Signal(SIGTERM);
  }
  REQUIRE(w.machine.Mw({"send", "second", "--to", "agent-b"}, a).code == 0);
  ChildProcess again({kBinary, "listen", "--json"}, w.machine.Env(b), w.machine.workspace);
  REQUIRE(again.WaitForStdout("\"content\":\"second\""));
  CHECK(again.stdout_seen().find("\"content\":\"first\"") == std::string::npos);
}

/// A relay on its own storage that a test can kill (SIGKILL) and start again
/// on the same port, with one mesh and a user machine pointed at it.
struct RestartableRelay {
  TempDir relay_dir;
  std::unique_ptr<RelayProcess> relay = std::make_unique<RelayProcess>(relay_dir);
  int port = relay->port;
  std::string token = AdminToken(relay_dir, "alice");
  UserMachine m;
  std::string mesh;
  std::unique_ptr<ChildProcess> again;

  RestartableRelay() {
    m.extra_env = {"MESHWIRE_URL=" + relay->url(), "MESHWIRE_TOKEN=" + token};
    CommandResult created = m.Mw({"mesh", "create", "r", "--json"});
    REQUIRE(created.code == 0);
    mesh = json::parse(created.out)["mesh_id"];
  }
  std::vector<std::string> As(const std::string& agent) const {
    return {"MESHWIRE_MESH_ID=" + mesh, "MESHWIRE_AGENT_NAME=" + agent};
  }
  void Kill() { relay.reset(); }
  /// Back on the same port and storage.
  void Restart() {
    again = std::make_unique<ChildProcess>(std::vector<std::string>{
        kBinary, "server", "--listen", "127.0.0.1:" + std::to_string(port), "--storage",
        "sqlite:" + relay_dir / "relay.db"});
    REQUIRE(again->WaitForStderr("listening on http://"));
  }
  int Send(const std::string& text) { return m.Mw({"send", text, "--to", "agent-b"}, As("agent-a")).code; }
};

TEST_CASE("listen says when the relay is gone, reconnects with backoff, and goes on receiving") {
  RestartableRelay r;
  ChildProcess listen({kBinary, "listen"}, r.m.Env(r.As("agent-b")), r.m.workspace);
  REQUIRE(listen.WaitForStdout("Press Ctrl+C to stop"));
  r.Kill();
  CHECK(listen.WaitForStderr("Reconnecting in 2 s", 10000));
  r.Restart();
  CHECK(listen.WaitForStderr("reconnected", 20000));
  REQUIRE(r.Send("after the outage") == 0);
  CHECK(listen.WaitForStdout("after the outage", 5000));
}

TEST_CASE("admin token list and revoke: on the storage directly, and a running relay refuses the token within a second") {
  World w;
  const std::vector<std::string> env = {"MESHWIRE_HOME=" + w.relay_dir.path().string()};
  const std::string storage = "sqlite:" + w.relay_dir / "relay.db";
  const std::string bob = AdminToken(w.relay_dir, "bob");
  // The token works, and the relay has cached who it is.
  REQUIRE(w.machine.Mw({"token", "list"}, {"MESHWIRE_TOKEN=" + w.token}).code == 0);

  CommandResult all = Run({kBinary, "admin", "token", "list", "--storage", storage}, env);
  REQUIRE(all.code == 0);
  CHECK(all.out.rfind("Tokens (2)\n", 0) == 0);
  CHECK(all.out.find("alice") != std::string::npos);
  CHECK(all.out.find("bob") != std::string::npos);
  CHECK(all.out.find("mw_") == std::string::npos);  // never a secret
  CommandResult alices = Run({kBinary, "admin", "token", "list", "--user", "ALICE", "--json", "--storage", storage}, env);
  REQUIRE(alices.code == 0);
  json listed = json::parse(alices.out);
  REQUIRE(listed["tokens"].size() == 1);
  CHECK(listed["tokens"][0]["user"] == "alice");
  const std::string id = listed["tokens"][0]["id"];

  CommandResult revoked = Run({kBinary, "admin", "token", "revoke", id, "--storage", storage}, env);
  REQUIRE(revoked.code == 0);
  CHECK(revoked.out == "Revoked token " + id + " of user alice. A relay running on this database refuses it within "
                       "about a second.\n");
  // The running relay notices the other process's commit (at most a second,
  // waited for here up to 10 s) and refuses the token; bob's still works.
  CommandResult after;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  do {
    after = w.machine.Mw({"token", "list"}, {"MESHWIRE_TOKEN=" + w.token});
    if (after.code != 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  } while (std::chrono::steady_clock::now() < deadline);
  CHECK(after.code != 0);
  INFO(after.err);
  CHECK(after.err.find("revoked") != std::string::npos);
  CHECK(w.machine.Mw({"token", "list"}, {"MESHWIRE_TOKEN=" + bob}).code == 0);

  CommandResult again = Run({kBinary, "admin", "token", "revoke", id, "--storage", storage}, env);
  CHECK(again.code == 1);
  CHECK(again.err.find("no token " + id) != std::string::npos);
  CommandResult missing = Run({kBinary, "admin", "token", "list", "--storage", "sqlite:" + w.relay_dir / "typo.db"}, env);
  CHECK(missing.code == 1);
  CHECK(missing.err.find("no relay database at") != std::string::npos);
  CHECK_FALSE(fs::exists(w.relay_dir / "typo.db"));
  CHECK(Run({kBinary, "admin", "token", "revoke", "--storage", storage}, env).code == 2);
  // A bare path is a SQLite file too: not created either.
  CHECK(Run({kBinary, "admin", "token", "list", "--storage", w.relay_dir / "typo2.db"}, env).code == 1);
  CHECK_FALSE(fs::exists(w.relay_dir / "typo2.db"));
  CHECK(Run({kBinary, "admin", "token", "list", "--storage", "sqlite:"}, env).code == 2);
}

TEST_CASE("wait waits through a relay restart and still gets the message") {
  RestartableRelay r;
  REQUIRE(r.m.Mw({"agents"}, r.As("agent-b")).code == 0);
  ChildProcess wait({kBinary, "wait", "--timeout", "40"}, r.m.Env(r.As("agent-b")), r.m.workspace);
  REQUIRE(r.m.UntilListening("agent-b", r.As("agent-a")));  // its long-poll is open
  r.Kill();  // while the poll is parked
  CHECK(wait.WaitForStderr("Trying again in 2 s", 10000));
  r.Restart();
  REQUIRE(r.Send("after the restart") == 0);
  auto status = wait.Wait(20000);
  REQUIRE(status);
  CHECK(WEXITSTATUS(*status) == 0);
  CHECK(wait.ReadStdout().find("after the restart") != std::string::npos);
}

/// A mesh in use, with agent-b registered (so a message to it waits for
/// it) and the environments that make a command agent-a's or agent-b's.
struct SenderAndReader {
  World w;
  std::vector<std::string> a = {"MESHWIRE_TOKEN=" + w.token, "MESHWIRE_AGENT_NAME=agent-a"};
  std::vector<std::string> b = {"MESHWIRE_TOKEN=" + w.token, "MESHWIRE_AGENT_NAME=agent-b"};
  SenderAndReader() {
    w.CreateAndUseMesh();
    REQUIRE(w.machine.Mw({"wait", "--timeout", "1"}, b).code == 4);
  }
};

TEST_CASE("another agent's text cannot drive the reader's terminal: control characters are shown escaped") {
  SenderAndReader t;
  World& w = t.w;
  const std::vector<std::string>& a = t.a;
  const std::vector<std::string>& b = t.b;
  const std::string evil = "evil \x1b[2J\x1b]0;pwned\x07 \r fake\nline two\twith a tab \xc2\x9b end";
  REQUIRE(w.machine.Mw({"send", evil, "--to", "agent-b"}, a).code == 0);
  CommandResult got = w.machine.Mw({"wait", "--timeout", "5"}, b);
  REQUIRE(got.code == 0);
  // Newlines and tabs of the content stay; ESC, BEL, CR and C1 are shown, not sent.
  CHECK(got.out.find("evil \\x1b[2J\\x1b]0;pwned\\x07 \\x0d fake\nline two\twith a tab \\u009b end") !=
        std::string::npos);
  CHECK(got.out.find('\x1b') == std::string::npos);  // NO_COLOR: no escape of our own either
  CHECK(got.out.find('\r') == std::string::npos);
  // A CRLF line end is a line end; a bidirectional override is shown, not obeyed.
  REQUIRE(w.machine.Mw({"send", "from windows\r\nsecond \xe2\x80\xaereversed", "--to", "agent-b"}, a).code == 0);
  CommandResult crlf = w.machine.Mw({"wait", "--timeout", "5"}, b);
  REQUIRE(crlf.code == 0);
  CHECK(crlf.out.find("from windows\nsecond \\u202ereversed") != std::string::npos);
  // --json carries the text as sent (JSON escapes it).
  REQUIRE(w.machine.Mw({"send", evil, "--to", "agent-b"}, a).code == 0);
  CommandResult as_json = w.machine.Mw({"wait", "--timeout", "5", "--json"}, b);
  REQUIRE(as_json.code == 0);
  CHECK(json::parse(as_json.out)["messages"][0]["content"] == evil);

  // Nor can a committed .mesh.json drive it, through status or mesh use.
  const std::string mesh = json::parse(w.machine.Mw({"mesh", "list", "--json"}, a).out)["meshes"][0]["mesh_id"];
  {
    std::ofstream f(fs::path(w.machine.workspace) / ".mesh.json");
    f << R"({"mesh_id":"abc\u001b]0;PWNED\u0007\u001b[2J","agent_name":"x\u001b[31mRED"})";
  }
  CommandResult status = w.machine.Mw({"status"}, {a[0]});
  CHECK(status.out.find('\x1b') == std::string::npos);
  CHECK(status.out.find("abc\\x1b]0;PWNED\\x07") != std::string::npos);
  CommandResult use = w.machine.Mw({"mesh", "use", mesh}, {a[0]});
  CHECK(use.out.find('\x1b') == std::string::npos);
  CHECK(use.out.find("still chooses mesh abc\\x1b") != std::string::npos);
  fs::remove(fs::path(w.machine.workspace) / ".mesh.json");
}

TEST_CASE("send - reads the message from stdin, one final newline dropped; over the limit it is refused") {
  SenderAndReader t;
  World& w = t.w;
  const std::vector<std::string>& a = t.a;
  const std::vector<std::string>& b = t.b;
  auto piped = [&](const std::string& producer) {
    return Run({"/bin/sh", "-c", "{ " + producer + "; } | \"$0\" send - --to agent-b", kBinary}, w.machine.Env(a),
               w.machine.workspace);
  };
  CommandResult sent = piped("printf 'from a pipe\\nsecond line\\n'");
  REQUIRE(sent.code == 0);
  CommandResult got = w.machine.Mw({"wait", "--timeout", "5", "--json"}, b);
  REQUIRE(got.code == 0);
  CHECK(json::parse(got.out)["messages"][0]["content"] == "from a pipe\nsecond line");
  // Before, "-" was sent as the message itself.
  CommandResult big = piped("head -c 20000 /dev/zero | tr '\\000' x");
  CHECK(big.code == 2);
  CHECK(OneSentence(big.err));
  CHECK(big.err.find("10240") != std::string::npos);
  CHECK(piped("printf ''").code == 2);  // empty
  // 10240 bytes and a CRLF fit; 10241 are refused here, not by the relay.
  CHECK(piped("head -c 10240 /dev/zero | tr '\\000' y; printf '\\r\\n'").code == 0);
  CommandResult just_over = piped("head -c 10241 /dev/zero | tr '\\000' x");
  CHECK(just_over.code == 2);
  CHECK(just_over.err.find("10240") != std::string::npos);
  CommandResult last = w.machine.Mw({"wait", "--timeout", "5", "--json"}, b);
  REQUIRE(last.code == 0);
  CHECK(json::parse(last.out)["messages"][0]["content"] == std::string(10240, 'y'));
  CHECK(w.machine.Mw({"wait", "--timeout", "1"}, b).code == 4);  // nothing else was sent
}

TEST_CASE("meshwire mcp exits soon after stdin ends, even when the relay never answers") {
  // A relay that takes connections and never answers: the kernel completes
  // the handshake for a listening socket nobody accepts on.
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  REQUIRE(::listen(fd, 64) == 0);
  socklen_t len = sizeof addr;
  REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
  std::shared_ptr<void> close_it(nullptr, [fd](void*) { ::close(fd); });
  UserMachine m;
  const std::string init = R"({"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}})";
  const std::string status = R"({"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"meshwire_status","arguments":{}}})";
  const auto start = std::chrono::steady_clock::now();
  CommandResult r = Run({"/bin/sh", "-c", "printf '%s\\n%s\\n' \"$1\" \"$2\" | \"$0\" mcp --mesh AAAAAAAAAAAA", kBinary,
                         init, status},
                        m.Env({"MESHWIRE_URL=http://127.0.0.1:" + std::to_string(ntohs(addr.sin_port)),
                               "MESHWIRE_TOKEN=mw_test", "MESHWIRE_AGENT_NAME=x"}),
                        m.workspace);
  const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  CHECK(r.code == 0);
  CHECK(took < 10.0);  // before: the registration's 30 s read timeout, and the call's after it
  CHECK(r.out.find(R"("id":1)") != std::string::npos);  // initialize was answered
  CHECK(r.err.find("stdin closed") != std::string::npos);
}

TEST_CASE("meshwire mcp without credentials says so once on stderr (its heartbeats do not say it again)") {
  UserMachine m;
  // stdin open for a second: the heartbeat thread has run by then.
  CommandResult r = Run({"/bin/sh", "-c", "sleep 1 | \"$0\" mcp --mesh AAAAAAAAAAAA", kBinary}, m.Env(), m.workspace);
  CHECK(r.code == 0);
  const std::string sentence = "No meshwire credentials reached this MCP server";
  const std::size_t first = r.err.find(sentence);
  CHECK_MESSAGE(first != std::string::npos, r.err);
  CHECK_MESSAGE(r.err.find(sentence, first + 1) == std::string::npos, r.err);
}

TEST_CASE("wait wakes on a message and exits 0; exits 4 on timeout") {
  World w;
  w.CreateAndUseMesh();
  std::vector<std::string> b = {"MESHWIRE_TOKEN=" + w.token, "MESHWIRE_AGENT_NAME=agent-b"};
  // It waits the whole timeout, never a second less (the relay's waits are
  // whole seconds); the upper bound is loose for a loaded machine.
  for (int timeout_s : {1, 2}) {
    CAPTURE(timeout_s);
    const auto start = std::chrono::steady_clock::now();
    CommandResult timed_out = w.machine.Mw({"wait", "--timeout", std::to_string(timeout_s)}, b);
    const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    CHECK(timed_out.code == 4);
    CHECK(OneSentence(timed_out.err));
    CHECK(took >= timeout_s);
    CHECK(took < timeout_s + 3.0);
  }
  ChildProcess wait({kBinary, "wait", "--timeout", "30"}, w.machine.Env(b), w.machine.workspace);
  usleep(300000);
  REQUIRE(w.machine.Mw({"send", "wake up", "--to", "agent-b"}, {"MESHWIRE_TOKEN=" + w.token, "MESHWIRE_AGENT_NAME=a"}).code == 0);
  auto status = wait.Wait(5000);
  REQUIRE(status);
  CHECK(WEXITSTATUS(*status) == 0);
  CHECK(wait.ReadStdout().find("wake up") != std::string::npos);

  // --json: one JSON value, however many messages were waiting.
  for (const char* text : {"one", "two"}) {
    REQUIRE(w.machine.Mw({"send", text, "--to", "agent-b"}, {"MESHWIRE_TOKEN=" + w.token, "MESHWIRE_AGENT_NAME=a"}).code == 0);
  }
  CommandResult both = w.machine.Mw({"wait", "--timeout", "5", "--json"}, b);
  REQUIRE(both.code == 0);
  const json answer = json::parse(both.out);  // throws on two values
  CHECK(answer["messages"].size() == 2);
  CHECK(answer["cursor"] == answer["messages"][1]["seq"]);
  // Nothing within the timeout: exit 4, and still one value on stdout.
  CommandResult none = w.machine.Mw({"wait", "--timeout", "1", "--json"}, b);
  CHECK(none.code == 4);
  const json empty = json::parse(none.out);
  CHECK(empty["messages"].empty());
  CHECK(empty["cursor"] == answer["cursor"]);

  // Stopped while waiting: the shell's codes for SIGINT and SIGTERM, no message.
  for (int sig : {SIGINT, SIGTERM}) {
    CAPTURE(sig);
    ChildProcess stopped({kBinary, "wait", "--json"}, w.machine.Env(b), w.machine.workspace);
    REQUIRE(w.machine.UntilListening("agent-b", {"MESHWIRE_TOKEN=" + w.token}));  // its long-poll is open
    auto code = stopped.Signal(sig);
    REQUIRE(code);
    REQUIRE(WIFEXITED(*code));
    CHECK(WEXITSTATUS(*code) == 128 + sig);
    // --json: still one value; the cursor is unknown (no answer yet), never a made-up 0.
    const json printed = json::parse(stopped.ReadStdout());
    CHECK(printed["messages"].empty());
    CHECK(printed["cursor"].is_null());
  }
}

TEST_CASE("what listen or wait could not print is not acknowledged; a token that could not be shown is revoked") {
  World w;
  w.CreateAndUseMesh();
  const std::vector<std::string> b = {"MESHWIRE_TOKEN=" + w.token, "MESHWIRE_AGENT_NAME=agent-b"};
  const std::vector<std::string> a = {"MESHWIRE_TOKEN=" + w.token, "MESHWIRE_AGENT_NAME=agent-a"};
  // `meshwire ARGS` with stdout sent to `redirect` (a full disk, or closed).
  auto with_stdout = [&](const std::string& redirect, std::vector<std::string> args, const std::vector<std::string>& env) {
    args.insert(args.begin(), {"/bin/sh", "-c", "exec \"$@\" " + redirect, "sh", kBinary});
    return Run(args, w.machine.Env(env), w.machine.workspace);
  };
  REQUIRE(w.machine.Mw({"wait", "--timeout", "1"}, b).code == 4);  // agent-b exists
  auto send = [&](const std::string& text) { REQUIRE(w.machine.Mw({"send", text, "--to", "agent-b"}, a).code == 0); };
  auto next = [&] {
    CommandResult got = w.machine.Mw({"wait", "--timeout", "3", "--json"}, b);
    REQUIRE(got.code == 0);
    return json::parse(got.out)["messages"][0]["content"].get<std::string>();
  };

  // wait: onto a full disk, then onto a closed stdout (whose fd the relay's
  // socket took: the text went into the HTTP request). Exit 1, and the next
  // wait gets the message.
  send("first");
  CommandResult full = with_stdout("> /dev/full", {"wait", "--timeout", "3"}, b);
  CHECK(full.code == 1);
  CHECK(full.err.find("could not write to standard output (No space left on device); they are not acknowledged") !=
        std::string::npos);
  CommandResult closed = with_stdout(">&-", {"wait", "--timeout", "3"}, b);
  CHECK(closed.code == 1);
  CHECK(closed.err.find("could not write to standard output") != std::string::npos);
  CHECK(closed.err.find("could not read this HTTP request") == std::string::npos);
  CHECK(next() == "first");

  // listen onto a full disk: it stops at the first message, acknowledging nothing.
  ChildProcess listen({"/bin/sh", "-c", "exec \"$@\" > /dev/full", "sh", kBinary, "listen", "--json"}, w.machine.Env(b),
                      w.machine.workspace);
  usleep(500000);
  send("second");
  auto status = listen.Wait(10000);
  REQUIRE(status);
  CHECK(WEXITSTATUS(*status) == 1);
  CHECK(next() == "second");

  // A send whose confirmation cannot be printed was still sent; it says so,
  // with the id, so that a script does not send it twice.
  CommandResult sent = with_stdout(">&-", {"send", "third", "--to", "agent-b"}, a);
  CHECK(sent.code == 1);
  CHECK(OneSentence(sent.err));
  CHECK(sent.err.find("could not write to standard output (Bad file descriptor): what send printed was lost, but "
                      "the message was sent (id ") != std::string::npos);
  CHECK(sent.err.find("do not send it again") != std::string::npos);
  CHECK(next() == "third");

  // token create onto a full disk: nobody has the token, so it is revoked.
  CommandResult token = with_stdout("> /dev/full", {"token", "create", "--name", "unseen", "--json"}, a);
  CHECK(token.code == 1);
  CHECK(token.err.find("It was revoked.") != std::string::npos);
  // And into a pipe whose reader has left: the write fails (no death by
  // SIGPIPE holding a live token), and the token is revoked.
  CommandResult piped = Run({"/bin/bash", "-c", "set -o pipefail; \"$@\" | (exec 0<&-; sleep 1)", "bash", kBinary,
                             "token", "create", "--name", "unread", "--json"},
                            w.machine.Env(a), w.machine.workspace);
  CHECK(piped.code == 1);
  CHECK(piped.err.find("could not write to standard output (Broken pipe). It was revoked.") != std::string::npos);
  const json tokens = json::parse(w.machine.Mw({"token", "list", "--json"}, a).out);
  for (const json& t : tokens["tokens"]) {
    CHECK(t["name"] != "unseen");
    CHECK(t["name"] != "unread");
  }
}

TEST_CASE("wait: --timeout bounds a relay that never answers; stopped while registering, the shell's code; "
          "its acknowledgement marks nothing more fetched") {
  World w;
  const std::string mesh = w.CreateAndUseMesh();
  const std::vector<std::string> b = {"MESHWIRE_TOKEN=" + w.token, "MESHWIRE_AGENT_NAME=agent-b"};
  SilentHost silent;
  const std::string nowhere = "MESHWIRE_URL=http://127.0.0.1:" + std::to_string(silent.port);
  const auto start = std::chrono::steady_clock::now();
  CommandResult bounded = w.machine.Mw({"wait", "--timeout", "2", "--json"}, {b[0], b[1], nowhere});
  const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  CHECK(bounded.code == 3);  // the relay did not answer (it was 30 s, then exit 3)
  CHECK(took < 3.7);  // the timeout, and 1 s for an answer due at its end (it was 2 s after rounding up)
  CHECK(bounded.err.find("did not answer in ") != std::string::npos);
  SilentHost silent2;  // the first one still holds that wait's connection
  ChildProcess registering({kBinary, "wait", "--json"},
                           w.machine.Env({b[0], b[1], "MESHWIRE_URL=http://127.0.0.1:" + std::to_string(silent2.port)}),
                           w.machine.workspace);
  REQUIRE(silent2.WaitForConnection(10000));  // registering: its signal handling is in place
  auto code = registering.Signal(SIGINT);
  REQUIRE(code);
  REQUIRE(WIFEXITED(*code));
  CHECK(WEXITSTATUS(*code) == 130);  // it was 1, "The request was cancelled."
  CHECK(json::parse(registering.ReadStdout())["messages"].empty());

  // 101 messages waiting: wait prints 100 and acknowledges them, and the
  // 101st is still queued: the acknowledgement read nothing.
  REQUIRE(w.machine.Mw({"wait", "--timeout", "1"}, b).code == 4);
  httplib::Client http(w.relay.url());
  const httplib::Headers auth = {{"Authorization", "Bearer " + w.token}};
  std::string from;
  {
    auto agent = http.Post("/mesh/" + mesh + "/agents", auth, R"({"name":"bulk"})", "application/json");
    REQUIRE(agent);
    from = json::parse(agent->body)["agent_id"];
  }
  std::string last;
  for (int i = 1; i <= 101; ++i) {
    auto r = http.Post("/mesh/" + mesh + "/messages", auth,
                       json({{"from", from}, {"to", "agent-b"}, {"content", "m" + std::to_string(i)}}).dump(),
                       "application/json");
    REQUIRE(r);
    REQUIRE(r->status == 201);
    last = json::parse(r->body)["id"];
  }
  CommandResult hundred = w.machine.Mw({"wait", "--json"}, b);
  REQUIRE(hundred.code == 0);
  CHECK(json::parse(hundred.out)["messages"].size() == 100);
  auto detail = http.Get("/mesh/" + mesh + "/messages/" + last, auth);
  REQUIRE(detail);
  CHECK(json::parse(detail->body)["delivery"][0]["state"] == "queued");  // it was "fetched", never shown
  // limit=0 acknowledges only; without `after`, or with a wait, it is refused.
  auto no_after = http.Get("/mesh/" + mesh + "/messages?agent_id=agent-b&limit=0", auth);
  REQUIRE(no_after);
  CHECK(no_after->status == 400);
}

TEST_CASE("send --wait-ack: 0 once every recipient acknowledged, 4 when one does not in time") {
  World w;
  w.CreateAndUseMesh();
  std::vector<std::string> a = {"MESHWIRE_TOKEN=" + w.token, "MESHWIRE_AGENT_NAME=agent-a"};
  std::vector<std::string> b = {"MESHWIRE_TOKEN=" + w.token, "MESHWIRE_AGENT_NAME=agent-b"};
  // Alone in the mesh: a broadcast has nobody to acknowledge it, which is not a success.
  CommandResult alone = w.machine.Mw({"send", "anyone?", "--wait-ack", "5"}, a);
  CHECK(alone.code == 4);
  CHECK(alone.out.find("nobody will receive it") != std::string::npos);
  CHECK(alone.err.find("Nobody can acknowledge it") != std::string::npos);
  REQUIRE(w.machine.Mw({"agents"}, b).code == 0);
  w.machine.Mw({"send", "register b", "--to", "agent-a"}, b);  // b exists now
  CommandResult unacked = w.machine.Mw({"send", "nobody reads", "--to", "agent-b", "--wait-ack", "1"}, a);
  CHECK(unacked.code == 4);
  CHECK(unacked.err.find("agent-b") != std::string::npos);
  ChildProcess listen({kBinary, "listen"}, w.machine.Env(b), w.machine.workspace);
  REQUIRE(listen.WaitForStdout("Press Ctrl+C"));
  CommandResult acked = w.machine.Mw({"send", "please ack", "--to", "agent-b", "--wait-ack", "20"}, a);
  CHECK_MESSAGE(acked.code == 0, acked.err);
  CHECK(acked.out.find("OK Acknowledged by 1 of 1 recipient") != std::string::npos);
}

TEST_CASE("login: the relay's sign-in page, driven by an HTTP client playing the browser") {
  TempDir relay_dir;
  RelayProcess relay(relay_dir);
  UserMachine m;
  BrowserLogin b(relay, m);
  auto page = b.browser.Get(b.page_path);
  REQUIRE(page);
  CHECK(page->status == 200);
  CHECK(page->get_header_value("Content-Type").find("text/html") == 0);
  CHECK(page->body.find("<form") != std::string::npos);
  // Chrome and Safari check the form's redirect to the CLI's callback
  // against form-action too: it must name that origin, or login never ends.
  CHECK(page->get_header_value("Content-Security-Policy").find("form-action 'self' http://127.0.0.1:" + b.port + ";") !=
        std::string::npos);
  CHECK(page->get_header_value("Content-Security-Policy").find("frame-ancestors 'none'") != std::string::npos);
  CHECK(page->get_header_value("X-Content-Type-Options") == "nosniff");
  // A form sent twice (a double click): the code never redeemed leaves no token behind.
  b.Approve("alice");
  const std::string location = b.Approve("alice");
  CHECK(location.rfind("http://127.0.0.1:" + b.port + "/callback?code=", 0) == 0);
  CHECK(location.find("mw_") == std::string::npos);  // a code, never the token
  auto done = b.Follow(location);
  REQUIRE(done);
  CHECK(done->status == 200);
  ChildProcess& login = b.login;
  auto status = login.Wait(10000);
  REQUIRE(status);
  CHECK(WEXITSTATUS(*status) == 0);
  std::string out = login.ReadStdout();
  CHECK(login.stdout_seen().find("Open this URL in your browser") != std::string::npos);
  CHECK(out.find("OK Signed in as alice!") != std::string::npos);
  CHECK(out.find("Credentials saved to ~/.meshwire/credentials.json") != std::string::npos);
  CHECK(out.find("OK Connected to MeshWire") != std::string::npos);
  auto creds = fs::path(m.home) / ".meshwire/credentials.json";
  const auto owner_rw = fs::perms::owner_read | fs::perms::owner_write;
  CHECK((fs::status(creds).permissions() & fs::perms::all) == owner_rw);
  json saved = json::parse(Slurp(creds));
  CHECK(saved["user"] == "alice");
  CHECK(saved["url"] == relay.url());
  CHECK(saved["token"].get<std::string>().rfind("mw_", 0) == 0);
  CommandResult who = m.Mw({"whoami"});
  CHECK(who.code == 0);
  CHECK(who.out.find("User  : alice") != std::string::npos);
  CommandResult tokens = m.Mw({"token", "list", "--json"});
  REQUIRE(tokens.code == 0);
  CHECK(json::parse(tokens.out)["tokens"].size() == 1);  // the one redeemed, not the abandoned one
  // A code works once.
  auto reused = b.Redeem(location);
  REQUIRE(reused);
  CHECK(reused->status == 400);
}

TEST_CASE("login: when the code cannot be redeemed, the browser page says so too, and nothing is saved") {
  TempDir relay_dir;
  RelayProcess relay(relay_dir);
  UserMachine m;
  BrowserLogin b(relay, m);
  const std::string location = b.Approve("alice");
  // Someone else redeems the code first (or it expires): the CLI's exchange fails.
  auto stolen = b.Redeem(location);
  REQUIRE(stolen);
  REQUIRE(stolen->status == 200);
  auto page = b.Follow(location);
  REQUIRE(page);
  CHECK(page->status == 400);
  CHECK(page->body.find("Sign-in failed") != std::string::npos);
  CHECK(page->body.find("Signed in") == std::string::npos);
  CHECK(page->body.find("unknown, used or expired") != std::string::npos);
  auto status = b.login.Wait(10000);
  REQUIRE(status);
  CHECK(WEXITSTATUS(*status) == 1);
  auto err = b.login.WaitForStderr("unknown, used or expired");
  REQUIRE(err);
  CHECK(err->rfind("meshwire: The relay refused the sign-in", 0) == 0);
  CHECK_FALSE(fs::exists(fs::path(m.home) / ".meshwire/credentials.json"));
}

TEST_CASE("login prints the sign-in URL first and never waits on the browser opener") {
  TempDir relay_dir;
  RelayProcess relay(relay_dir);
  UserMachine m;
  // xdg-open on a headless machine: a text browser that holds on.
  const fs::path bin = fs::path(m.home) / "bin";
  fs::create_directories(bin);
  std::ofstream(bin / "xdg-open") << "#!/bin/sh\nsleep 8\n";
  fs::permissions(bin / "xdg-open", fs::perms::owner_all);
  const auto started = std::chrono::steady_clock::now();
  ChildProcess login({kBinary, "login", "--url", relay.url(), "--timeout", "5"},
                     m.Env({"PATH=" + bin.string() + ":" + std::getenv("PATH")}), m.workspace);
  REQUIRE(login.WaitForStdout(relay.url() + "/auth/cli?port=", 3000));
  CHECK(login.stdout_seen().find("Opening browser to sign in; if it does not open, visit:") != std::string::npos);
  auto status = login.Wait(15000);
  REQUIRE(status);
  CHECK(WEXITSTATUS(*status) == 4);  // --timeout's 5 s, counted from the start, not after the opener
  CHECK(std::chrono::steady_clock::now() - started < std::chrono::seconds(8));
}

TEST_CASE("login: credentials that cannot be saved fail in the page and the terminal, and the new token is revoked") {
  TempDir relay_dir;
  RelayProcess relay(relay_dir);
  UserMachine m;
  fs::create_directories(m.home);
  std::ofstream(fs::path(m.home) / ".meshwire") << "a file where the folder goes";
  BrowserLogin b(relay, m);
  auto page = b.Follow(b.Approve("dave"));
  REQUIRE(page);
  CHECK(page->status == 400);
  CHECK(page->body.find("Sign-in failed") != std::string::npos);
  CHECK(page->body.find("Signed in") == std::string::npos);
  auto status = b.login.Wait(10000);
  REQUIRE(status);
  CHECK(WEXITSTATUS(*status) == 2);  // a local setting to fix
  CHECK(b.login.WaitForStderr("credentials.json"));
  // The token the relay made for this sign-in is gone: dave holds only the one made now.
  const std::string dave = AdminToken(relay_dir, "dave");
  httplib::Client api(relay.url());
  auto tokens = api.Get("/tokens", {{"Authorization", "Bearer " + dave}});
  REQUIRE(tokens);
  CHECK(json::parse(tokens->body)["tokens"].size() == 1);
}

TEST_CASE("login: says when this shell's MESHWIRE_TOKEN or MESHWIRE_URL still choose over what it saved") {
  TempDir relay_dir;
  RelayProcess relay(relay_dir);
  UserMachine m;
  m.extra_env = {"MESHWIRE_TOKEN=mw_from_the_environment", "MESHWIRE_URL=http://127.0.0.1:9"};
  BrowserLogin b(relay, m);
  auto page = b.Follow(b.Approve("erin"));
  REQUIRE(page);
  CHECK(page->status == 200);
  auto status = b.login.Wait(10000);
  REQUIRE(status);
  CHECK(WEXITSTATUS(*status) == 0);
  const std::string out = b.login.ReadStdout();
  CHECK(out.find("OK Signed in as erin!") != std::string::npos);
  CHECK(out.find("Here MESHWIRE_TOKEN still chooses the token: unset it to use the one just saved.") !=
        std::string::npos);
  CHECK(out.find("Here MESHWIRE_URL still chooses the relay (http://127.0.0.1:9): unset it to use " + relay.url()) !=
        std::string::npos);
}

TEST_CASE("login to another relay forgets the active mesh chosen on the first, and says so") {
  TempDir relay_dir;
  RelayProcess relay(relay_dir);
  UserMachine m;
  // An active mesh chosen on another relay (as `mesh use` saves it).
  fs::create_directories(fs::path(m.home) / ".meshwire");
  std::ofstream(fs::path(m.home) / ".meshwire/config.json")
      << R"({"active_mesh": "fromElsewhere", "url": "http://127.0.0.1:9", "agent_names": {}})";
  BrowserLogin b(relay, m);
  auto page = b.Follow(b.Approve("fred"));
  REQUIRE(page);
  auto status = b.login.Wait(10000);
  REQUIRE(status);
  CHECK(WEXITSTATUS(*status) == 0);
  const std::string out = b.login.ReadStdout();
  CHECK(out.find("Your active mesh fromElsewhere was on another relay: `meshwire mesh list` and `meshwire mesh use "
                 "ID` choose one on this one.") != std::string::npos);
  const json config = json::parse(Slurp(fs::path(m.home) / ".meshwire/config.json"));
  CHECK_FALSE(config.contains("active_mesh"));
  CHECK(config.contains("agent_names"));  // the other keys kept
  // So a command says that no mesh is chosen, not that this relay has no mesh fromElsewhere.
  CommandResult agents = m.Mw({"agents"});
  CHECK(agents.code == 2);
  CHECK(agents.err.find("No mesh chosen") != std::string::npos);
  // Signing in again to the same relay keeps a mesh chosen on it.
  std::ofstream(fs::path(m.home) / ".meshwire/config.json", std::ios::trunc)
      << json{{"active_mesh", "chosenHere"}, {"url", relay.url()}}.dump();
  BrowserLogin again(relay, m);
  REQUIRE(again.Follow(again.Approve("fred")));
  REQUIRE(again.login.Wait(10000));
  CHECK(again.login.ReadStdout().find("Your active mesh") == std::string::npos);
  CHECK(json::parse(Slurp(fs::path(m.home) / ".meshwire/config.json"))["active_mesh"] == "chosenHere");
}

TEST_CASE("login again to the same relay revokes the token of the sign-in it replaces; a token made otherwise stays") {
  TempDir relay_dir;
  RelayProcess relay(relay_dir);
  UserMachine m;
  auto sign_in = [&](const std::string& user) {
    BrowserLogin b(relay, m);
    REQUIRE(b.Follow(b.Approve(user)));
    auto status = b.login.Wait(10000);
    REQUIRE(status);
    CHECK(WEXITSTATUS(*status) == 0);
    return b.login.ReadStdout();
  };
  const fs::path credentials = fs::path(m.home) / ".meshwire/credentials.json";
  auto saved_token = [&] { return json::parse(Slurp(credentials))["token"].get<std::string>(); };
  auto me_status = [&](const std::string& token) {
    httplib::Client c(relay.url());
    auto r = c.Get("/me", {{"Authorization", "Bearer " + token}});
    REQUIRE(r);
    return r->status;
  };
  CHECK(sign_in("alice").find("previous sign-in") == std::string::npos);
  const std::string first = saved_token();
  const std::string again = sign_in("alice");
  CHECK(again.find("The token of your previous sign-in to this relay (tok_") != std::string::npos);
  CHECK(me_status(first) == 401);
  CHECK(me_status(saved_token()) == 200);
  CommandResult tokens = m.Mw({"token", "list", "--json"});
  REQUIRE(tokens.code == 0);
  CHECK(json::parse(tokens.out)["tokens"].size() == 1);
  CHECK(json::parse(Slurp(credentials))["from"] == "login");
  // A token given to `init --token` may be used elsewhere: a login here leaves it valid, whether
  // `token create` made it or a login on another machine did.
  const std::string made = AdminToken(relay_dir, "alice");
  const std::string other_machines = saved_token();
  for (const std::string& given : {made, other_machines}) {
    CommandResult init = m.Mw({"init", "--harness", "claude-code", "--token", given, "--url", relay.url()});
    REQUIRE(init.code == 0);
    CHECK_FALSE(json::parse(Slurp(credentials)).contains("from"));
    CHECK(sign_in("alice").find("previous sign-in") == std::string::npos);
    CHECK(me_status(given) == 200);
  }
}

TEST_CASE("a relay of --auth token: login names the init command with its URL, and the guide starts from a token") {
  TempDir relay_dir;
  RelayProcess relay(relay_dir, {"--auth", "token"});
  UserMachine m;
  CommandResult login = m.Mw({"login", "--url", relay.url()});
  CHECK(login.code == 2);
  CHECK(login.err.find("run `meshwire init --token <token> --url " + relay.url() + "`") != std::string::npos);
  const std::string token = AdminToken(relay_dir, "alice");
  const std::vector<std::string> env = {"MESHWIRE_TOKEN=" + token, "MESHWIRE_URL=" + relay.url()};
  CommandResult created = m.Mw({"mesh", "create", "tokens-only", "--json"}, env);
  REQUIRE(created.code == 0);
  const std::string mesh = json::parse(created.out)["mesh_id"];
  CommandResult guide = m.Mw({"integrate", "--mesh", mesh}, env);
  REQUIRE(guide.code == 0);
  CHECK(guide.out.find("meshwire login --url") == std::string::npos);  // no sign-in to run
  CHECK(guide.out.find("meshwire init --token \"$MESHWIRE_TOKEN\" --url " + relay.url() +
                       "   # this relay signs in with tokens only") != std::string::npos);
}

TEST_CASE("integrate against a server that is not a relay: said so, not its page printed as the guide") {
  UserMachine m;
  FakeHttpServer fake("HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 15\r\nConnection: close\r\n\r\n",
                      "<html>hi</html>", 1);
  CommandResult r = m.Mw({"integrate", "--mesh", "abc"}, {"MESHWIRE_URL=" + fake.url(), "MESHWIRE_TOKEN=mw_x"});
  CHECK(r.code == 1);
  CHECK(r.out.find("<html>") == std::string::npos);
  CHECK(r.err.find("answered text/html, not the integration guide (text/markdown); is that URL a meshwire relay?") !=
        std::string::npos);
}

TEST_CASE("login with --auth github, against a stand-in GitHub") {
  httplib::Server github;
  github.Get("/login/oauth/authorize", [](const httplib::Request& req, httplib::Response& res) {
    res.status = 302;
    res.set_header("Location", req.get_param_value("redirect_uri") + "?code=gh-code&state=" +
                                   req.get_param_value("state"));
  });
  github.Post("/login/oauth/access_token", [](const httplib::Request& req, httplib::Response& res) {
    bool ok = req.get_param_value("code") == "gh-code" && req.get_param_value("client_id") == "cid" &&
              req.get_param_value("client_secret") == "secret";
    res.set_content(ok ? R"({"access_token":"gho_test","token_type":"bearer"})" : R"({"error":"bad_verification_code"})",
                    "application/json");
  });
  github.Get("/user", [](const httplib::Request& req, httplib::Response& res) {
    if (req.get_header_value("Authorization") != "Bearer gho_test") {
      res.status = 401;
      return;
    }
    res.set_content(R"({"login":"octocat","id":1})", "application/json");
  });
  int gh_port = github.bind_to_any_port("127.0.0.1");
  std::thread gh_thread([&] { github.listen_after_bind(); });
  std::string gh = "http://127.0.0.1:" + std::to_string(gh_port);
  {
    TempDir relay_dir;
    RelayProcess relay(relay_dir, {"--auth", "github", "--github-client-id", "cid", "--github-client-secret",
                                   "secret", "--github-url", gh, "--github-api-url", gh});
    UserMachine m;
    ChildProcess login({kBinary, "login", "--no-browser", "--url", relay.url()}, m.Env(), m.workspace);
    auto line = login.WaitForStdout("/auth/cli?port=");
    REQUIRE(line);
    httplib::Client browser(relay.url());
    browser.set_follow_location(true);  // relay -> GitHub -> relay -> the CLI's loopback
    auto done = browser.Get(line->substr(relay.url().size()));
    REQUIRE(done);
    CHECK(done->status == 200);
    auto status = login.Wait(10000);
    REQUIRE(status);
    CHECK(WEXITSTATUS(*status) == 0);
    CHECK(login.stdout_seen().find("Opening browser for GitHub OAuth") == std::string::npos);  // --no-browser
    CHECK(login.ReadStdout().find("OK Signed in as octocat!") != std::string::npos);
  }
  github.stop();
  gh_thread.join();
}

TEST_CASE("init, send and mesh: the product page's fixes work as shown, and a refused init writes nothing") {
  World w;
  std::string mesh = w.CreateAndUseMesh();
  UserMachine& m = w.machine;
  const fs::path ws = m.workspace;
  const fs::path config = fs::path(m.home) / ".meshwire/config.json";
  auto agent_names = [&](const std::string& in_mesh) {
    CommandResult r = m.Mw({"agents", "--mesh", in_mesh, "--json"}, {"MESHWIRE_TOKEN=" + w.token});
    REQUIRE(r.code == 0);
    std::vector<std::string> names;
    const json listed = json::parse(r.out);  // alive through the loop
    for (const json& a : listed["agents"]) names.push_back(a["name"]);
    return names;
  };

  // "401 Unauthorized ... run: meshwire init --token <new-token>", with no
  // harness named or recorded: the token is checked and saved.
  CommandResult init_token = m.Mw({"init", "--token", w.token});
  REQUIRE_MESSAGE(init_token.code == 0, init_token.err);
  CHECK(init_token.out.find("OK Token saved to ~/.meshwire/credentials.json") != std::string::npos);
  CHECK(json::parse(Slurp(fs::path(m.home) / ".meshwire/credentials.json"))["token"] == w.token);
  CHECK_FALSE(fs::exists(ws / ".mesh.json"));
  CommandResult bare = m.Mw({"init"});
  CHECK(bare.code == 2);
  CHECK(OneSentence(bare.err));
  CHECK(bare.err.find("--harness is required here") != std::string::npos);

  // "Mesh not found ... meshwire init --mesh <mesh-id>": checked, then active.
  CommandResult other = m.Mw({"mesh", "create", "second", "--json"});
  REQUIRE(other.code == 0);
  const std::string mesh2 = json::parse(other.out)["mesh_id"];
  CommandResult wrong = m.Mw({"init", "--mesh", "nosuchmesh00"});
  CHECK(wrong.code == 1);
  CHECK(OneSentence(wrong.err));
  CHECK(json::parse(Slurp(config))["active_mesh"] == mesh);
  CommandResult init_mesh = m.Mw({"init", "--mesh", mesh2});
  REQUIRE_MESSAGE(init_mesh.code == 0, init_mesh.err);
  CHECK(init_mesh.out.find("OK Active mesh set to: " + mesh2) != std::string::npos);
  CHECK(json::parse(Slurp(config))["active_mesh"] == mesh2);

  // Refused before anything is written: a bad name, --project where it means
  // nothing, a broken client config.
  CommandResult project = m.Mw({"init", "--harness", "claude-code", "--mesh", mesh, "--project"});
  CHECK(project.code == 2);
  CHECK(OneSentence(project.err));
  CHECK(project.err.find("--harness cursor only") != std::string::npos);
  CommandResult bad_name = m.Mw({"init", "--harness", "claude-code", "--mesh", mesh, "--name", "bad name"});
  CHECK(bad_name.code == 2);
  CHECK(OneSentence(bad_name.err));
  CHECK(bad_name.err.find("--name claude-code-agent") != std::string::npos);
  // A name the relay reserves is a setting to change too (exit 2, not the relay's error, 1).
  CommandResult reserved = m.Mw({"init", "--harness", "claude-code", "--mesh", mesh, "--name", "all"});
  CHECK(reserved.code == 2);
  CHECK(OneSentence(reserved.err));
  CHECK_MESSAGE(reserved.err.find("reserved") != std::string::npos, reserved.err);
  CHECK(reserved.err.find("\"all\" (from --name) is reserved") != std::string::npos);  // said before asking the relay
  CHECK(reserved.err.find("e.g. --name claude-code-agent") != std::string::npos);
  fs::create_directories(fs::path(m.home) / ".cursor");
  std::ofstream(fs::path(m.home) / ".cursor/mcp.json") << "{bad";
  CommandResult bad_file = m.Mw({"init", "--harness", "cursor", "--mesh", mesh});
  CHECK(bad_file.code == 2);
  CHECK(OneSentence(bad_file.err));
  CHECK(bad_file.err.find(".cursor/mcp.json") != std::string::npos);
  CHECK_FALSE(fs::exists(ws / ".mesh.json"));
  CHECK_FALSE(fs::exists(ws / ".mcp.json"));
  CHECK(agent_names(mesh).empty());

  // With .mesh.json recording the harness, `init --mesh` / `--token` re-run it.
  REQUIRE(m.Mw({"init", "--harness", "claude-code", "--mesh", mesh}).code == 0);
  CommandResult again = m.Mw({"init", "--mesh", mesh});
  REQUIRE_MESSAGE(again.code == 0, again.err);
  CHECK(again.out.find("OK .mesh.json unchanged") != std::string::npos);
  CHECK(again.out.find("OK Claude Code harness ready!") != std::string::npos);

  // `mesh use` elsewhere says this workspace still uses its own mesh.
  CommandResult use = m.Mw({"mesh", "use", mesh2});
  REQUIRE(use.code == 0);
  CHECK(use.out.find("still chooses mesh " + mesh + ": run `meshwire init --mesh " + mesh2 + "`") !=
        std::string::npos);
  // Deleting the active mesh leaves no active mesh behind.
  CommandResult deleted = m.Mw({"mesh", "delete", mesh2});
  REQUIRE(deleted.code == 0);
  CHECK(deleted.out.find("It was the active mesh") != std::string::npos);
  CHECK_FALSE(json::parse(Slurp(config)).contains("active_mesh"));

  // A broadcast nobody can receive says so; once another agent is there, not.
  CommandResult lonely = m.Mw({"send", "Hello from MeshWire!"});
  REQUIRE(lonely.code == 0);
  CHECK(lonely.out.find("nobody will receive it") != std::string::npos);
  CommandResult question =
      m.Mw({"send", "a question", "--to", "claude-code-agent", "--json"}, {"MESHWIRE_AGENT_NAME=agent-b"});
  REQUIRE(question.code == 0);
  const json q = json::parse(question.out);
  CommandResult heard = m.Mw({"send", "hello all"});
  REQUIRE(heard.code == 0);
  CHECK(heard.out.find("nobody will receive it") == std::string::npos);

  // send --reply-to without --to goes back to the original's sender.
  CommandResult reply = m.Mw({"send", "an answer", "--reply-to", q["id"], "--json"});
  REQUIRE_MESSAGE(reply.code == 0, reply.err);
  const json r = json::parse(reply.out);
  CHECK(r["to"] == q["from"]);
  CHECK(r["metadata"]["reply_to"] == q["id"]);
  CommandResult no_such = m.Mw({"send", "an answer", "--reply-to", "999999"});
  CHECK(no_such.code == 1);
  CHECK(OneSentence(no_such.err));

  // Text that is not UTF-8 (a Latin-1 file's "café") is a usage error with a
  // sentence, wherever it is given; it aborted the CLI (exit 134).
  const std::string latin1 = "caf\xE9";
  for (const auto& [args, env] : std::vector<std::pair<std::vector<std::string>, std::vector<std::string>>>{
           {{"send", latin1, "--to", "claude-code-agent"}, {}},
           {{"send", "hi", "--to", latin1}, {}},
           {{"mesh", "create", latin1}, {}},
           {{"token", "create", "--name", latin1}, {}},
       }) {
    CAPTURE(args[0] + " " + args[1]);
    CommandResult refused = m.Mw(args, env);
    CHECK(refused.code == 2);
    CHECK(OneSentence(refused.err));
    CHECK_MESSAGE(refused.err.find("UTF-8") != std::string::npos, refused.err);
  }
  // A name is checked first: not a valid one (shown printable).
  CommandResult bad_name_env = m.Mw({"send", "hi"}, {"MESHWIRE_AGENT_NAME=" + latin1});
  CHECK(bad_name_env.code == 2);
  CHECK(OneSentence(bad_name_env.err));
  CHECK(bad_name_env.err.find("\"caf?\" (from MESHWIRE_AGENT_NAME) is not valid") != std::string::npos);
  // An id is looked up: no such message (the relay echoes it with U+FFFD).
  CommandResult bad_id = m.Mw({"send", "hi", "--reply-to", latin1});
  CHECK(bad_id.code == 1);
  CHECK(OneSentence(bad_id.err));
  CHECK(bad_id.err.find("No message caf\xEF\xBF\xBD") != std::string::npos);

  // An invalid agent name in .mesh.json: status and send say where it came from (exit 2).
  std::ofstream(ws / ".mesh.json") << json{{"mesh_id", mesh}, {"agent_name", "bad name!"}}.dump();
  CommandResult status = m.Mw({"status", "--json"});
  CHECK(status.code == 2);
  CHECK(json::parse(status.out)["agent_problem"].get<std::string>().find("(from .mesh.json) is not valid") !=
        std::string::npos);
  CommandResult bad_send = m.Mw({"send", "hi"});
  CHECK(bad_send.code == 2);
  CHECK(OneSentence(bad_send.err));
  CHECK(bad_send.err.find("(from .mesh.json) is not valid") != std::string::npos);
  // A .mesh.json that cannot say its mesh (a merge conflict, a setting of the
  // wrong type) stops what needs it (exit 2): nothing falls back to the
  // active mesh and the default agent (the message went to another mesh, as
  // cli-agent, exit 0).
  std::ofstream(ws / ".mesh.json", std::ios::trunc)
      << "<<<<<<< HEAD\n" << json{{"mesh_id", mesh}}.dump() << "\n=======\n{}\n>>>>>>> theirs\n";
  const int sent_before = static_cast<int>(json::parse(m.Mw({"agents", "--mesh", mesh, "--json"}).out)["agents"].size());
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
           {"send", "hi"}, {"agents"}, {"listen"}, {"wait", "--timeout", "1"}, {"integrate"}}) {
    CAPTURE(args[0]);
    CommandResult broken = m.Mw(args);
    CHECK(broken.code == 2);
    CHECK(OneSentence(broken.err));
    CHECK(broken.err.find(".mesh.json is not a JSON object") != std::string::npos);
    CHECK(broken.err.find("fix it") != std::string::npos);
  }
  CommandResult broken_status = m.Mw({"status", "--json"});
  CHECK(broken_status.code == 2);
  CHECK(json::parse(broken_status.out)["error"].get<std::string>().find("is not a JSON object") != std::string::npos);
  // Its mesh and agent are unknown, not the active mesh's and cli-agent.
  CHECK(json::parse(broken_status.out)["mesh"].is_null());
  CHECK(json::parse(broken_status.out)["agent"].is_null());
  CommandResult broken_text = m.Mw({"status"});
  CHECK(broken_text.out.find("Mesh : (unknown: ") != std::string::npos);
  CHECK(broken_text.out.find("Agent : (unknown: the same .mesh.json)") != std::string::npos);
  CHECK(broken_text.out.find("cli-agent") == std::string::npos);
  CHECK(static_cast<int>(json::parse(m.Mw({"agents", "--mesh", mesh, "--json"}).out)["agents"].size()) == sent_before);
  // Flags and variables still choose, as they outrank the file.
  CHECK(m.Mw({"agents", "--mesh", mesh}).code == 0);
  std::ofstream(ws / ".mesh.json", std::ios::trunc) << R"({"mesh_id": 5, "agent_name": ["x"]})";
  CommandResult typed = m.Mw({"send", "hi"});
  CHECK(typed.code == 2);
  CHECK(typed.err.find(".mesh.json: \"mesh_id\" must be a string") != std::string::npos);
  // No mesh_id, or an empty one, or an empty agent_name: the same (they sent
  // to the active mesh, or as cli-agent, exit 0).
  for (const auto& [text, said] : std::vector<std::pair<std::string, std::string>>{
           {"{}", ".mesh.json names no mesh (\"mesh_id\" is missing)"},
           {R"({"agent_name": "x"})", ".mesh.json names no mesh (\"mesh_id\" is missing)"},
           {R"({"mesh_id": "", "agent_name": "x"})", ".mesh.json: \"mesh_id\" is empty"},
           {json{{"mesh_id", mesh}, {"agent_name", ""}}.dump(), ".mesh.json: \"agent_name\" is empty"}}) {
    CAPTURE(text);
    std::ofstream(ws / ".mesh.json", std::ios::trunc) << text;
    CommandResult empty = m.Mw({"send", "hi"});
    CHECK(empty.code == 2);
    CHECK(OneSentence(empty.err));
    CHECK(empty.err.find(said) != std::string::npos);
  }
  // A folder of that name is no .mesh.json to skip: the same, and init says
  // what to remove.
  fs::remove(ws / ".mesh.json");
  fs::create_directory(ws / ".mesh.json");
  CommandResult folder = m.Mw({"send", "hi"});
  CHECK(folder.code == 2);
  CHECK(folder.err.find(".mesh.json is not a file") != std::string::npos);
  CommandResult init_folder = m.Mw({"init", "--harness", "claude-code", "--mesh", mesh});
  CHECK(init_folder.code == 2);
  CHECK(init_folder.err.find(".mesh.json is not a file; remove it") != std::string::npos);
  fs::remove(ws / ".mesh.json");
  CHECK(static_cast<int>(json::parse(m.Mw({"agents", "--mesh", mesh, "--json"}).out)["agents"].size()) == sent_before);
  // One that only names no mesh: with the mesh given, its agent stands.
  std::ofstream(ws / ".mesh.json") << R"({"agent_name": "file-agent"})";
  CommandResult given = m.Mw({"send", "hi", "--mesh", mesh, "--json"});
  REQUIRE_MESSAGE(given.code == 0, given.err);
  CHECK(json::parse(given.out)["from_name"] == "file-agent");
  std::ofstream(ws / ".mesh.json", std::ios::trunc) << R"({"mesh_id": 5, "agent_name": ["x"]})";
  // init writes it again.
  CommandResult fixed = m.Mw({"init", "--harness", "claude-code", "--mesh", mesh});
  REQUIRE_MESSAGE(fixed.code == 0, fixed.err);
  CHECK(json::parse(Slurp(ws / ".mesh.json"))["mesh_id"] == mesh);
  CHECK(m.Mw({"send", "hi"}).code == 0);
}

TEST_CASE("the Quick Start: init with no mesh chosen takes the user's only mesh, or makes one; with several it asks") {
  World w;
  UserMachine& m = w.machine;
  const std::vector<std::string> env = {"MESHWIRE_TOKEN=" + w.token};
  const fs::path config = fs::path(m.home) / ".meshwire/config.json";
  // None yet: one named after the workspace, made the active mesh.
  CommandResult first = m.Mw({"init", "--harness", "claude-code"}, env);
  REQUIRE_MESSAGE(first.code == 0, first.err);
  std::smatch made;
  REQUIRE(std::regex_search(first.out, made, std::regex("OK Created mesh: ([0-9A-Za-z]{12}) \"([^\"]+)\"")));
  const std::string mesh = made[1];
  CHECK(made[2] == fs::path(m.workspace).filename().string());
  CHECK(first.out.find("OK Active mesh set to: " + mesh) != std::string::npos);
  CHECK(json::parse(Slurp(config))["active_mesh"] == mesh);
  CHECK(json::parse(Slurp(fs::path(m.workspace) / ".mesh.json"))["mesh_id"] == mesh);
  CHECK(first.out.find("OK Claude Code harness ready!") != std::string::npos);
  // Its only mesh, when nothing chooses it (no active mesh, no .mesh.json).
  fs::remove(fs::path(m.workspace) / ".mesh.json");
  fs::remove(config);
  CommandResult only = m.Mw({"init", "--harness", "claude-code"}, env);
  REQUIRE_MESSAGE(only.code == 0, only.err);
  CHECK(only.out.find("OK Using your mesh " + mesh) != std::string::npos);
  CHECK(json::parse(Slurp(fs::path(m.workspace) / ".mesh.json"))["mesh_id"] == mesh);
  // Several: it asks, naming them, and writes nothing.
  REQUIRE(m.Mw({"mesh", "create", "second"}, env).code == 0);
  fs::remove(fs::path(m.workspace) / ".mesh.json");
  fs::remove(config);
  CommandResult several = m.Mw({"init", "--harness", "claude-code"}, env);
  CHECK(several.code == 2);
  CHECK(OneSentence(several.err));
  CHECK(several.err.find("--mesh ID` with one of " ) != std::string::npos);
  CHECK(several.err.find(mesh) != std::string::npos);
  CHECK_FALSE(fs::exists(fs::path(m.workspace) / ".mesh.json"));
}

TEST_CASE("a revoked token in MESHWIRE_TOKEN: the 401 and init --token say that the variable chooses it") {
  World w;
  w.CreateAndUseMesh();
  UserMachine& m = w.machine;
  CommandResult made = m.Mw({"token", "create", "--name", "old", "--json"}, {"MESHWIRE_TOKEN=" + w.token});
  REQUIRE(made.code == 0);
  const json old = json::parse(made.out);
  REQUIRE(m.Mw({"token", "revoke", old["id"]}, {"MESHWIRE_TOKEN=" + w.token}).code == 0);
  const std::vector<std::string> stale = {"MESHWIRE_TOKEN=" + old["token"].get<std::string>()};
  CommandResult refused = m.Mw({"send", "hi"}, stale);
  CHECK(refused.code == 1);
  CHECK(OneSentence(refused.err));
  CHECK(refused.err.find("this shell's MESHWIRE_TOKEN") != std::string::npos);
  CommandResult saved = m.Mw({"init", "--token", w.token}, stale);
  REQUIRE_MESSAGE(saved.code == 0, saved.err);
  CHECK(saved.out.find("Here MESHWIRE_TOKEN still chooses the token") != std::string::npos);
  // Without the variable, the saved token works, and a 401 names no variable.
  CHECK(m.Mw({"send", "hi"}).code == 0);
  // An unknown mesh says where its id came from, and how to change it there.
  std::ofstream(fs::path(m.workspace) / ".mesh.json") << R"({"mesh_id": "zzzzzzzzzzzz"})";
  CommandResult from_file = m.Mw({"send", "hi"});
  CHECK(from_file.code == 1);
  CHECK(OneSentence(from_file.err));
  CHECK(from_file.err.find("comes from ") != std::string::npos);
  // (That .mesh.json records no platform: `init --mesh ID` alone would not rewrite it.)
  CHECK(from_file.err.find(".mesh.json: `meshwire init --harness H --mesh ID`") != std::string::npos);
  CommandResult from_env = m.Mw({"agents"}, {"MESHWIRE_MESH_ID=yyyyyyyyyyyy"});
  CHECK(from_env.err.find("comes from MESHWIRE_MESH_ID") != std::string::npos);
  CommandResult typed = m.Mw({"agents", "--mesh", "xxxxxxxxxxxx"});
  CHECK(typed.err.find("comes from") == std::string::npos);
  // An id typed as an argument is not blamed on the workspace's file either.
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
           {"mesh", "use", "xxxxxxxxxxxx"}, {"mesh", "delete", "xxxxxxxxxxxx"},
           {"token", "create", "--mesh", "xxxxxxxxxxxx"}}) {
    CAPTURE(args[1]);
    CommandResult typed_id = m.Mw(args);
    CHECK(typed_id.code == 1);
    CHECK(OneSentence(typed_id.err));
    CHECK(typed_id.err.find("comes from") == std::string::npos);
    CHECK(typed_id.err.find("active mesh") == std::string::npos);
  }
}

TEST_CASE("a second platform in one workspace gets its own agent, as each init of the product page does; a chosen name stays") {
  World w;
  const std::string mesh = w.CreateAndUseMesh();
  UserMachine& m = w.machine;
  const std::vector<std::string> env = {"MESHWIRE_TOKEN=" + w.token};
  const fs::path mesh_json = fs::path(m.workspace) / ".mesh.json";
  REQUIRE(m.Mw({"init", "--harness", "copilot"}, env).code == 0);
  CommandResult claude = m.Mw({"init", "--harness", "claude-code"}, env);
  REQUIRE_MESSAGE(claude.code == 0, claude.err);
  CHECK(claude.out.find("agent_name: claude-code-agent") != std::string::npos);
  CHECK(claude.out.find("Registered as claude-code-agent (") != std::string::npos);
  // The workspace's files are shown as .mesh.json is, from the workspace; the user's own with "~".
  CHECK_MESSAGE(claude.out.find("\nOK .mcp.json created\n") != std::string::npos, claude.out);
  CHECK(claude.out.find(m.workspace) == std::string::npos);
  CHECK(json::parse(Slurp(mesh_json))["agent_name"] == "claude-code-agent");
  CHECK(json::parse(Slurp(mesh_json))["harness"] == "claude-code");
  // Twice the same: nothing changes.
  CommandResult again = m.Mw({"init", "--harness", "claude-code"}, env);
  CHECK(again.out.find("OK .mesh.json unchanged") != std::string::npos);
  // A name the user chose is the workspace's, whatever the platform.
  REQUIRE(m.Mw({"init", "--harness", "vscode", "--name", "reviewer"}, env).code == 0);
  CommandResult cursor = m.Mw({"init", "--harness", "cursor"}, env);
  REQUIRE_MESSAGE(cursor.code == 0, cursor.err);
  CHECK(cursor.out.find("Registered as reviewer (") != std::string::npos);
  CHECK(json::parse(Slurp(mesh_json))["agent_name"] == "reviewer");
}

TEST_CASE("init that cannot write one of its files leaves every file as it was, .mesh.json included") {
  World w;
  std::string mesh = w.CreateAndUseMesh();
  UserMachine& m = w.machine;
  const fs::path copilot = fs::path(m.home) / ".copilot";
  fs::create_directories(copilot);
  std::ofstream(copilot / "mcp-config.json") << R"({"mcpServers": {"other": {"command": "x"}}})";
  // The extension's folder cannot be made (a file is in its way, which stops
  // root as well): mcp-config.json comes first in the plan and was written
  // before, leaving a half-wired workspace.
  std::ofstream(copilot / "extensions") << "in the way\n";
  CommandResult r = m.Mw({"init", "--harness", "copilot", "--mesh", mesh}, {"MESHWIRE_TOKEN=" + w.token});
  CHECK(r.code == 2);
  CHECK(OneSentence(r.err));
  CHECK_MESSAGE(r.err.find("Cannot create the folder " + (copilot / "extensions").string()) != std::string::npos,
                r.err);
  CHECK_FALSE(fs::exists(fs::path(m.workspace) / ".mesh.json"));
  CHECK(Slurp(copilot / "mcp-config.json") == R"({"mcpServers": {"other": {"command": "x"}}})");
  // Found before the agent is registered: the relay has no agent either.
  auto agents_listed = [&] {
    CommandResult listed = m.Mw({"agents", "--mesh", mesh, "--json"}, {"MESHWIRE_TOKEN=" + w.token});
    REQUIRE_MESSAGE(listed.code == 0, listed.err);
    return json::parse(listed.out)["agents"].size();
  };
  CHECK(agents_listed() == 0);
  // So is a file in the way of a platform's only folder (~/.gemini).
  std::ofstream(fs::path(m.home) / ".gemini") << "in the way\n";
  CommandResult gemini = m.Mw({"init", "--harness", "gemini", "--mesh", mesh}, {"MESHWIRE_TOKEN=" + w.token});
  CHECK(gemini.code == 2);
  CHECK(OneSentence(gemini.err));
  CHECK_MESSAGE(gemini.err.find(fs::path(m.home).string() + "/.gemini is a file, not a folder") != std::string::npos,
                gemini.err);
  CHECK(agents_listed() == 0);
  for (const auto& entry : fs::directory_iterator(m.workspace)) {
    CHECK_MESSAGE(entry.path().filename() != ".mesh.json", "left behind: " << entry.path());
  }
  // A write that fails past that check (root may "write" in /proc, where no
  // file can be made): the agent registered for it is removed again. (Run
  // as another user, the check itself stops it: no agent either way.)
  CommandResult proc = Run({kBinary, "init", "--harness", "claude-code", "--mesh", mesh, "--name", "proc-agent"},
                           m.Env({"MESHWIRE_TOKEN=" + w.token}), "/proc");
  CHECK(proc.code == 2);
  CHECK(OneSentence(proc.err));
  CHECK(agents_listed() == 0);
  for (const auto& entry : fs::directory_iterator(copilot)) {
    CHECK_MESSAGE((entry.path().filename() == "mcp-config.json" || entry.path().filename() == "extensions"),
                  "left behind: " << entry.path());
  }
  // Once the way is clear, the same command wires everything.
  fs::remove(copilot / "extensions");
  CommandResult again = m.Mw({"init", "--harness", "copilot", "--mesh", mesh}, {"MESHWIRE_TOKEN=" + w.token});
  REQUIRE_MESSAGE(again.code == 0, again.err);
  CHECK(json::parse(Slurp(fs::path(m.workspace) / ".mesh.json"))["harness"] == "copilot");
  CHECK(json::parse(Slurp(copilot / "mcp-config.json"))["mcpServers"].contains("meshwire"));
  CHECK(fs::exists(copilot / "extensions/meshwire/extension.mjs"));
}

TEST_CASE("a teammate's clone of .mesh.json: init gives them an agent of their own and leaves the shared files") {
  World w;
  const std::string mesh = w.CreateAndUseMesh();
  UserMachine& alice = w.machine;
  const fs::path alice_ws = alice.workspace;
  CommandResult first = alice.Mw({"init", "--harness", "claude-code", "--json"}, {"MESHWIRE_TOKEN=" + w.token});
  REQUIRE_MESSAGE(first.code == 0, first.err);
  CHECK(json::parse(first.out)["files"][0] ==
        json({{"path", (alice_ws / ".mesh.json").string()}, {"action", "created"}, {"backup", ""}}));
  REQUIRE(alice.Mw({"mesh", "members", "add", "bob"}, {"MESHWIRE_TOKEN=" + w.token}).code == 0);

  // bob clones the repository: the committed .mesh.json and .mcp.json name
  // alice's claude-code-agent.
  UserMachine bob;
  bob.extra_env = {"MESHWIRE_URL=" + w.relay.url()};
  const fs::path bob_ws = bob.workspace;
  for (const char* file : {".mesh.json", ".mcp.json"}) fs::copy_file(alice_ws / file, bob_ws / file);
  const std::vector<std::string> as_bob = {"MESHWIRE_TOKEN=" + AdminToken(w.relay_dir, "bob")};
  CommandResult init = bob.Mw({"init", "--harness", "claude-code"}, as_bob);
  REQUIRE_MESSAGE(init.code == 0, init.err);
  CHECK(init.out.find("Registered as claude-code-agent-bob (") != std::string::npos);
  CHECK(init.out.find(".mesh.json names claude-code-agent, a teammate's agent, and stays as it is") !=
        std::string::npos);
  // What it prints under ".mesh.json" is what the file holds.
  CHECK(init.out.find("agent_name: claude-code-agent\nharness: claude-code\n") != std::string::npos);
  // The shared files stay byte for byte what alice committed.
  CHECK(Slurp(bob_ws / ".mesh.json") == Slurp(alice_ws / ".mesh.json"));
  CHECK(Slurp(bob_ws / ".mcp.json") == Slurp(alice_ws / ".mcp.json"));
  const json names = json::parse(Slurp(fs::path(bob.home) / ".meshwire/config.json"))["agent_names"];
  CHECK(names == json{{mesh, {{"claude-code-agent", "claude-code-agent-bob"}}}});
  // Again: nothing changes.
  CommandResult again = bob.Mw({"init", "--harness", "claude-code", "--json"}, as_bob);
  REQUIRE_MESSAGE(again.code == 0, again.err);
  CHECK(json::parse(again.out)["agent_name"] == "claude-code-agent-bob");
  CHECK(json::parse(again.out)["workspace_agent_name"] == "claude-code-agent");
  const json again_files = json::parse(again.out)["files"];
  REQUIRE(!again_files.empty());
  CHECK(again_files[0]["path"] == (bob_ws / ".mesh.json").string());  // --json lists .mesh.json too
  for (const json& f : again_files) CHECK(f["action"] == "unchanged");

  // The CLI in bob's workspace speaks as bob's agent, and says why.
  CommandResult status = bob.Mw({"status", "--json"}, as_bob);
  CHECK(json::parse(status.out)["agent"] == "claude-code-agent-bob");
  CHECK(json::parse(status.out)["workspace_agent_name"] == "claude-code-agent");
  REQUIRE(bob.Mw({"send", "hello from bob", "--to", "claude-code-agent"}, as_bob).code == 0);
  CommandResult heard = alice.Mw({"wait", "--timeout", "5"}, {"MESHWIRE_TOKEN=" + w.token});
  REQUIRE_MESSAGE(heard.code == 0, heard.err);
  CHECK(heard.out.find("claude-code-agent-bob (") != std::string::npos);
  CHECK(heard.out.find("hello from bob") != std::string::npos);

  // bob's MCP server as Claude Code starts it from the shared .mcp.json
  // (MESHWIRE_AGENT_NAME=claude-code-agent), even outside the workspace.
  const json entry = json::parse(Slurp(bob_ws / ".mcp.json"))["mcpServers"]["meshwire"];
  REQUIRE(entry["env"]["MESHWIRE_AGENT_NAME"] == "claude-code-agent");
  const std::string rpc =
      R"({"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}})"
      "\n"
      R"({"jsonrpc":"2.0","method":"notifications/initialized"})"
      "\n"
      R"({"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"meshwire_status","arguments":{}}})"
      "\n";
  std::vector<std::string> mcp_env = bob.Env(as_bob);
  mcp_env.push_back("MESHWIRE_AGENT_NAME=claude-code-agent");
  mcp_env.push_back("MCP_INPUT=" + rpc);
  // stdin stays open 2 s: a call still running at the end of input gets 1 s.
  CommandResult mcp =
      Run({"/bin/sh", "-c", "{ printf '%s' \"$MCP_INPUT\"; sleep 2; } | \"$0\" mcp --mesh \"$1\"", kBinary, mesh},
          mcp_env, "/");
  REQUIRE_MESSAGE(mcp.code == 0, mcp.err);
  const std::string last = mcp.out.substr(mcp.out.rfind("{\"id\":2"));
  CHECK(json::parse(last)["result"]["structuredContent"]["agent"]["name"] == "claude-code-agent-bob");

  // A name of bob's choosing: the shared file still keeps alice's.
  CommandResult named = bob.Mw({"init", "--harness", "claude-code", "--name", "bobs-claude", "--json"}, as_bob);
  REQUIRE_MESSAGE(named.code == 0, named.err);
  CHECK(Slurp(bob_ws / ".mesh.json") == Slurp(alice_ws / ".mesh.json"));
  CHECK(json::parse(Slurp(fs::path(bob.home) / ".meshwire/config.json"))["agent_names"][mesh]["claude-code-agent"] ==
        "bobs-claude");
  CHECK(json::parse(bob.Mw({"status", "--json"}, as_bob).out)["agent"] == "bobs-claude");
  // Another harness of bob's (the product page's `init --harness copilot`): an
  // agent of its own, as each platform of alice's has (not bob's Claude Code
  // agent: two clients as one agent take each other's messages), and the
  // committed file keeps its name and harness.
  CommandResult cursor = bob.Mw({"init", "--harness", "cursor"}, as_bob);
  REQUIRE_MESSAGE(cursor.code == 0, cursor.err);
  CHECK(cursor.out.find("Registered as cursor-agent (") != std::string::npos);
  CHECK(Slurp(bob_ws / ".mesh.json") == Slurp(alice_ws / ".mesh.json"));
  // A platform whose file is shared in the workspace: the file names that
  // platform's agent, and bob's name for Claude Code's stays his.
  CommandResult vscode = bob.Mw({"init", "--harness", "vscode", "--json"}, as_bob);
  REQUIRE_MESSAGE(vscode.code == 0, vscode.err);
  CHECK(json::parse(vscode.out)["agent_name"] == "vscode-agent");
  CHECK(json::parse(vscode.out)["workspace_agent_name"] == "vscode-agent");
  CHECK(json::parse(Slurp(bob_ws / ".vscode/mcp.json"))["servers"]["meshwire"]["env"]["MESHWIRE_AGENT_NAME"] ==
        "vscode-agent");
  CHECK(Slurp(bob_ws / ".mesh.json") == Slurp(alice_ws / ".mesh.json"));
  CHECK(json::parse(Slurp(fs::path(bob.home) / ".meshwire/config.json"))["agent_names"][mesh]["claude-code-agent"] ==
        "bobs-claude");
  CHECK(json::parse(bob.Mw({"status", "--json"}, as_bob).out)["agent"] == "bobs-claude");
  const json listed_agents = json::parse(bob.Mw({"agents", "--json"}, as_bob).out);
  std::vector<std::string> bob_agents;
  for (const json& a : listed_agents["agents"]) {
    if (a["owner"] == "bob") bob_agents.push_back(a["name"]);
  }
  std::sort(bob_agents.begin(), bob_agents.end());
  CHECK(bob_agents == std::vector<std::string>{"bobs-claude", "claude-code-agent-bob", "cursor-agent", "vscode-agent"});
  // alice herself is unaffected: her workspace, her agent.
  CHECK(json::parse(alice.Mw({"status", "--json"}, {"MESHWIRE_TOKEN=" + w.token}).out)["agent"] ==
        "claude-code-agent");
}

TEST_CASE("a relay with --auth token has no sign-in page; login says what to do") {
  TempDir relay_dir;
  RelayProcess relay(relay_dir, {"--auth", "token"});
  UserMachine m;
  CommandResult r = m.Mw({"login", "--no-browser", "--url", relay.url()});
  CHECK(r.code == 2);
  CHECK(OneSentence(r.err));
  CHECK(r.err.find("init --token") != std::string::npos);
}

TEST_CASE("login: a sign-in answer no relay gives (256 MiB), or a code it never gives, fails; nothing is saved") {
  // A stand-in relay whose page would sign in, and whose code exchange
  // answers without end: login reads what any answer of a relay may be.
  httplib::Server fake;
  std::atomic<std::size_t> sent{0};
  fake.Get("/health", [](const httplib::Request&, httplib::Response& res) {
    res.set_content(R"({"status":"ok","version":"0","uptime_s":1,"region":"local","storage":"sqlite","auth":"local"})",
                    "application/json");
  });
  fake.Post("/auth/cli/token", [&sent](const httplib::Request&, httplib::Response& res) {
    res.set_chunked_content_provider("application/json", [&sent](std::size_t, httplib::DataSink& sink) {
      const std::string chunk(1 << 20, 'x');
      if (sent >= (256u << 20)) {
        sink.done();
        return true;
      }
      if (!sink.write(chunk.data(), chunk.size())) return false;
      sent += chunk.size();
      return true;
    });
  });
  const int fake_port = fake.bind_to_any_port("127.0.0.1");
  std::thread serving([&] { fake.listen_after_bind(); });
  // Stopped and joined however the checks below end (a failed REQUIRE throws).
  std::shared_ptr<void> stop_serving(nullptr, [&](void*) {
    fake.stop();
    serving.join();
  });
  const std::string url = "http://127.0.0.1:" + std::to_string(fake_port);
  UserMachine m;
  ChildProcess login({kBinary, "login", "--no-browser", "--url", url}, m.Env(), m.workspace);
  auto line = login.WaitForStdout(url + "/auth/cli?port=");
  REQUIRE(line);
  std::smatch u;
  REQUIRE(std::regex_search(*line, u, std::regex("port=(\\d+)&state=([0-9A-Za-z]+)")));
  httplib::Client loopback("127.0.0.1", std::stoi(u[1]));
  loopback.set_read_timeout(30, 0);
  std::string expected;
  SUBCASE("the code's exchange answers 256 MiB") {
    auto page = loopback.Get("/callback?code=abc&state=" + std::string(u[2]));
    REQUIRE(page);
    CHECK(page->status == 400);
    CHECK(page->body.find("Sign-in failed") != std::string::npos);
    expected = "answered more than 32 MiB";
  }
  SUBCASE("the browser brings back a code that is not the relay's (not even UTF-8)") {
    auto page = loopback.Get("/callback?code=a%20b%FF&state=" + std::string(u[2]));
    REQUIRE(page);
    CHECK(page->status == 400);
    expected = "a sign-in code the relay never gives";
  }
  auto status = login.Wait(30000);
  REQUIRE(status);
  CHECK(WEXITSTATUS(*status) == 1);
  auto err = login.WaitForStderr(expected);
  REQUIRE(err);
  CHECK(OneSentence(login.stderr_seen()));
  CHECK_FALSE(fs::exists(fs::path(m.home) / ".meshwire/credentials.json"));
  stop_serving.reset();
  if (expected == "answered more than 32 MiB") CHECK(sent < (64u << 20));  // it stopped reading long before
  if (expected != "answered more than 32 MiB") CHECK(sent == 0);           // nothing was sent to redeem
}

TEST_CASE("errors: one sentence that says what to do, a non-zero exit, never a crash") {
  World w;
  std::string mesh = w.CreateAndUseMesh();
  UserMachine& m = w.machine;
  std::vector<std::string> tok = {"MESHWIRE_TOKEN=" + w.token};

  SUBCASE("no credentials") {
    CommandResult r = m.Mw({"send", "hi"});
    CHECK(r.code == 2);
    CHECK(OneSentence(r.err));
    CHECK(r.err.find("No credentials found: run `meshwire login`") != std::string::npos);
  }
  SUBCASE("a revoked token") {
    CommandResult created = m.Mw({"token", "create", "--name", "ci", "--json"}, tok);
    REQUIRE(created.code == 0);
    json t = json::parse(created.out);
    REQUIRE(m.Mw({"token", "revoke", t["id"]}, tok).code == 0);
    CommandResult r = m.Mw({"agents"}, {"MESHWIRE_TOKEN=" + t["token"].get<std::string>()});
    CHECK(r.code == 1);
    CHECK(OneSentence(r.err));
    CHECK(r.err.find("meshwire login") != std::string::npos);
  }
  SUBCASE("an unknown mesh") {
    CommandResult r = m.Mw({"send", "hi", "--mesh", "nosuchmesh00"}, tok);
    CHECK(r.code == 1);
    CHECK(OneSentence(r.err));
    CHECK(r.err.find("meshwire mesh list") != std::string::npos);
  }
  SUBCASE("an unreachable relay") {
    CommandResult r = m.Mw({"agents", "--url", "http://127.0.0.1:9"}, tok);
    CHECK(r.code == 3);
    CHECK(OneSentence(r.err));
    CHECK(r.err.find("http://127.0.0.1:9") != std::string::npos);
    CommandResult s = m.Mw({"status", "--url", "http://127.0.0.1:9"}, tok);
    CHECK(s.code == 3);
    CHECK(s.out.find("Service : FAILED offline") != std::string::npos);
  }
  SUBCASE("a relay host no resolver knows: a typo to check, not a relay to start") {
    CommandResult r = m.Mw({"agents", "--url", "http://no-such-host.invalid:7420"}, tok);
    CHECK(r.code == 3);
    CHECK(OneSentence(r.err));
    CHECK(r.err.find("Cannot find the relay's host no-such-host.invalid") != std::string::npos);
  }
  SUBCASE("a relay URL with a path the relay does not serve: said so, not the relay's 'No route'") {
    CommandResult r = m.Mw({"agents", "--url", w.relay.url() + "/api"}, tok);
    CHECK(r.code == 2);
    CHECK(OneSentence(r.err));
    CHECK(r.err.find("should not carry a path") != std::string::npos);
  }
  SUBCASE("content over the limit") {
    CommandResult r = m.Mw({"send", std::string(10241, 'x')}, tok);
    CHECK(r.code == 2);  // a usage error, as on stdin, before the relay is asked
    CHECK(OneSentence(r.err));
    CHECK(r.err.find("10240") != std::string::npos);
  }
  SUBCASE("no credentials and no mesh: the credentials come first") {
    UserMachine fresh;
    CommandResult r = fresh.Mw({"agents"});
    CHECK(r.code == 2);
    CHECK(OneSentence(r.err));
    CHECK(r.err.find("No credentials found: run `meshwire login`") != std::string::npos);
  }
  SUBCASE("usage errors") {
    CHECK(m.Mw({"mesh"}, tok).code == 2);
    // Each one sentence with the command's --help, the argument parser's included.
    const std::vector<std::vector<std::string>> wrong = {
        {"send"}, {"send", ""}, {"wait", "--timeout", "abc"}, {"agents", "--bogus"}, {"init", "--harness", "nope"},
        {"send", "hello", "world"}, {"listen", "--limit", "5"}, {"agents", "--url", "ftp://x"},
        {"send", "hi", "--url", "notaurl"}, {"send", "hi", "--to", ""}};
    for (const std::vector<std::string>& args : wrong) {
      CAPTURE(args);
      CommandResult r = m.Mw(args, tok);
      CHECK(r.code == 2);
      CHECK(OneSentence(r.err));
    }
    CHECK(m.Mw({"wait", "--timeout", "abc"}, tok).err.find("Run `meshwire wait --help` for the options.") !=
          std::string::npos);
    // Another scheme used to abort the process (httplib's std::invalid_argument).
    CHECK(m.Mw({"agents", "--url", "ws://x"}, tok).err.find("The relay URL must be http(s)://HOST[:PORT][/PATH]") !=
          std::string::npos);
    CommandResult status = m.Mw({"status", "--url", "http://127.0.0.1:99999"}, tok);
    CHECK(status.code == 2);  // not 3: nothing is offline, the URL is wrong
    CHECK(status.out.find("must be http(s)://HOST[:PORT][/PATH]") != std::string::npos);
    CommandResult port0 = m.Mw({"agents", "--url", "http://127.0.0.1:0"}, tok);  // no client reaches port 0
    CHECK(port0.code == 2);
    CHECK(port0.err.find("must be http(s)://HOST[:PORT][/PATH]") != std::string::npos);
    // In the command's words, not the argument parser's.
    CHECK(m.Mw({"wait", "--timeout", "abc"}, tok).err.find("--timeout: must be a whole number from 1 to 2592000 (got \"abc\")") !=
          std::string::npos);
    CHECK(m.Mw({"listen", "--limit", "5"}, tok).err.find("meshwire listen does not take \"--limit 5\".") !=
          std::string::npos);
    CHECK(m.Mw({"send", "hello", "world"}, tok).err.find("does not take \"world\". Quote a message of several words") !=
          std::string::npos);
    // A subcommand's stray word too (it was CLI11's "The following argument was not expected").
    CommandResult stray = m.Mw({"admin", "token", "create", "--user", "x", "extra"});
    CHECK(stray.code == 2);
    CHECK(stray.err.find("meshwire admin token create does not take \"extra\".") != std::string::npos);
    CHECK(m.Mw({"mesh", "create", "a", "b"}, tok).err.find("meshwire mesh create does not take \"b\".") !=
          std::string::npos);
    CommandResult twice = m.Mw({"send", "hi", "--to", "a", "--to", "b"}, tok);
    CHECK(twice.code == 2);
    CHECK(twice.err.find("--to was given more than once; give it once.") != std::string::npos);  // not "At Most 1"
    // A URL's scheme is case-insensitive: HTTP:// is http://.
    std::string upper = w.relay.url();
    upper.replace(0, 4, "HTTP");
    CommandResult upper_case = m.Mw({"mesh", "list", "--url", upper}, tok);
    CHECK_MESSAGE(upper_case.code == 0, upper_case.err);
    // logout cannot sign out a shell whose MESHWIRE_TOKEN signs it in: it says so.
    CHECK(m.Mw({"logout"}, tok).out.find("This shell's MESHWIRE_TOKEN still signs every command in") !=
          std::string::npos);
    CommandResult dash = m.Mw({"send", "-x", "--to", "b"}, tok);
    CHECK(dash.code == 2);
    CHECK(OneSentence(dash.err));
    CHECK(dash.err.find("goes after --: meshwire send --to b -- -x)") != std::string::npos);  // --to kept
    // "--words with spaces" is a message, not a mistyped option.
    CommandResult dashes = m.Mw({"send", "--name foo bar", "--to", "b"}, tok);
    CHECK(dashes.code == 2);
    CHECK(dashes.err.find("goes after --: meshwire send --to b -- '--name foo bar')") != std::string::npos);
    // Quoted for a shell, whole, and never repeating a token.
    CommandResult quoted = m.Mw({"send", "-it's a long message, longer than forty characters", "--to", "b", "--token", w.token});
    CHECK(quoted.err.find("meshwire send --to b -- '-it'\\''s a long message, longer than forty characters')") !=
          std::string::npos);
    CHECK(quoted.err.find(w.token) == std::string::npos);
    // A relay URL whose path no request line can carry: a setting to change.
    CommandResult spaced = m.Mw({"agents"}, {tok[0], "MESHWIRE_URL=" + w.relay.url() + "/ x"});
    CHECK(spaced.code == 2);
    CHECK(spaced.err.find("has a path with characters a URL path cannot hold") != std::string::npos);
    // A name the relay reserves is a setting to change, as a malformed one is.
    for (const char* reserved : {"all", "ALL", ".."}) {
      CAPTURE(reserved);
      CommandResult r = m.Mw({"send", "hi"}, {tok[0], std::string("MESHWIRE_AGENT_NAME=") + reserved});
      CHECK(r.code == 2);
      CHECK(r.err.find("is reserved") != std::string::npos);
    }
  }
  SUBCASE("subcommands: an unknown one is named, `help mesh create` is that subcommand's help") {
    CommandResult frob = m.Mw({"mesh", "frob"}, tok);
    CHECK(frob.code == 2);
    CHECK(OneSentence(frob.err));
    CHECK(frob.err.find("meshwire mesh has no subcommand \"frob\"; it has create, use, list") != std::string::npos);
    CHECK(m.Mw({"token"}, tok).err.find("meshwire token needs a subcommand: create, list, revoke.") !=
          std::string::npos);
    // A mistyped subcommand followed by its argument: the typo is named, not the argument.
    const std::vector<std::pair<std::vector<std::string>, std::string>> typos = {
        {{"mesh", "creat", "my-fleet2"}, "meshwire mesh has no subcommand \"creat\"; it has create, use, list"},
        {{"mesh", "usee", "HVy4EmOA3cP1"}, "meshwire mesh has no subcommand \"usee\""},
        {{"token", "craete", "--name", "x"}, "meshwire token has no subcommand \"craete\"; it has create, list, revoke."},
        {{"mesh", "--mesh", "abc", "frob", "x"}, "meshwire mesh has no subcommand \"frob\""},
        {{"admin", "tokn", "create", "--user", "x"}, "meshwire admin has no subcommand \"tokn\""},
        {{"mesh", "members", "ad", "bob"}, "meshwire mesh members has no subcommand \"ad\"; it has add, remove."},
    };
    CommandResult no_value = m.Mw({"send", "hi", "--to"}, tok);
    CHECK(no_value.code == 2);
    CHECK(OneSentence(no_value.err));
    CHECK_MESSAGE(no_value.err.find("--to needs a value: give it right after --to.") != std::string::npos,
                  no_value.err);
    for (const auto& [args, said] : typos) {
      CAPTURE(args[1]);
      CommandResult typo = m.Mw(args, tok);
      CHECK(typo.code == 2);
      CHECK(OneSentence(typo.err));
      CHECK_MESSAGE(typo.err.find(said) != std::string::npos, typo.err);
    }
    CommandResult help = m.Mw({"help", "mesh", "create"});
    CHECK(help.code == 0);
    CHECK(help.out.find("Usage: meshwire mesh create") != std::string::npos);
  }
  SUBCASE("help for every command") {
    for (const char* c : {"login", "logout", "whoami", "mesh", "init", "status", "send", "listen", "wait",
                          "agents", "integrate", "token", "server", "admin"}) {
      CAPTURE(c);
      CommandResult r = m.Mw({"help", c});
      CHECK(r.code == 0);
      CHECK(r.out.find("Usage") != std::string::npos);
    }
    // help's own help is the general one.
    for (const char* c : {"--help", "-h", "help"}) {
      CAPTURE(c);
      CommandResult r = m.Mw({"help", c});
      CHECK(r.code == 0);
      CHECK(r.out.find("Usage: meshwire <command> [options]") != std::string::npos);
      CHECK(r.err == "");
    }
  }
  SUBCASE("an empty value or id (an unset shell variable) is a usage error, never a default") {
    // The relay would get "DELETE /tokens/", a broadcast, or the saved URL:
    // each stops before anything is sent or saved.
    const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
        {{"send", "hi", "--reply-to", ""}, "--reply-to is empty"},
        {{"send", "hi", "--mesh", ""}, "--mesh is empty"},
        {{"send", "hi", "--name", ""}, "--name is empty"},
        {{"agents", "--url", ""}, "--url is empty"},
        {{"agents", "--token", ""}, "--token is empty"},
        {{"init", "--token", ""}, "--token is empty"},
        {{"init", "--harness", ""}, "--harness is empty"},
        {{"mcp", "--name", ""}, "--name is empty"},
        {{"mcp", "--default-mesh", ""}, "--default-mesh is empty"},
        {{"login", "--url", ""}, "--url is empty"},
        {{"token", "revoke", ""}, "ID is empty"},
        {{"token", "create", "--mesh", ""}, "--mesh is empty"},
        {{"mesh", "use", ""}, "ID is empty"},
        {{"mesh", "delete", ""}, "ID is empty"},
        {{"mesh", "create", ""}, "NAME is empty"},
        {{"mesh", "members", "add", ""}, "USER is empty"},
        {{"mesh", "members", "remove", ""}, "USER is empty"},
    };
    for (const auto& [args, says] : cases) {
      CAPTURE(args);
      CommandResult r = m.Mw(args, tok);
      CHECK(r.code == 2);
      CHECK(OneSentence(r.err));
      CHECK(r.err.find("meshwire: " + says + " (an unset shell variable?): give ") == 0);
      CHECK(r.out == "");
    }
  }
  (void)mesh;
}

TEST_CASE("token create prints the token alone on stdout, for $(...); a token with a line break is refused") {
  World w;
  w.CreateAndUseMesh();
  CommandResult created = w.machine.Mw({"token", "create", "--name", "ci"}, {"MESHWIRE_TOKEN=" + w.token});
  REQUIRE(created.code == 0);
  CHECK(std::regex_match(created.out, std::regex("mw_[0-9A-Za-z]{40}\n")));
  CHECK(created.err.find("Created token tok_") != std::string::npos);
  const std::string token = created.out.substr(0, created.out.size() - 1);
  CHECK(w.machine.Mw({"whoami"}, {"MESHWIRE_TOKEN=" + token}).code == 0);
  CommandResult broken = w.machine.Mw({"agents"}, {"MESHWIRE_TOKEN=OK Created\n" + token});
  CHECK(broken.code == 2);
  CHECK(OneSentence(broken.err));
  CHECK(broken.err.find("MESHWIRE_TOKEN holds spaces or line breaks") != std::string::npos);
}

TEST_CASE("status and agents never call another user's agent yours") {
  World w;
  const std::string mesh = w.CreateAndUseMesh();
  REQUIRE(w.machine.Mw({"mesh", "members", "add", "bob"}, {"MESHWIRE_TOKEN=" + w.token}).code == 0);
  const std::string bob = AdminToken(w.relay_dir, "bob");
  REQUIRE(w.machine.Mw({"send", "hi", "--name", "bobs-agent"}, {"MESHWIRE_TOKEN=" + bob}).code == 0);
  const std::vector<std::string> alice_as_bobs = {"MESHWIRE_TOKEN=" + w.token, "MESHWIRE_AGENT_NAME=bobs-agent"};
  CommandResult status = w.machine.Mw({"status"}, alice_as_bobs);
  CHECK(status.code == 2);
  CHECK(status.out.find("Agent : bobs-agent: bobs-agent is bob's agent, not yours") != std::string::npos);
  CHECK(json::parse(w.machine.Mw({"status", "--json"}, alice_as_bobs).out)["agent_problem"].get<std::string>().find(
            "bob's agent") != std::string::npos);
  CommandResult agents = w.machine.Mw({"agents"}, alice_as_bobs);
  CHECK(agents.out.find("bobs-agent (you)") == std::string::npos);
  CHECK(w.machine.Mw({"agents"}, {"MESHWIRE_TOKEN=" + bob, "MESHWIRE_AGENT_NAME=bobs-agent"}).out.find(
            "bobs-agent (you)") != std::string::npos);
  // Without a name: the one send and listen use, said to be unregistered.
  CommandResult fresh = w.machine.Mw({"status"}, {"MESHWIRE_TOKEN=" + w.token});
  CHECK(fresh.out.find("Agent : cli-agent: not registered yet") != std::string::npos);
  // A mesh that fails: --json says why.
  CommandResult gone = w.machine.Mw({"status", "--json", "--mesh", "nosuchmesh00"}, {"MESHWIRE_TOKEN=" + w.token});
  CHECK(gone.code == 1);
  CHECK(json::parse(gone.out)["error"].get<std::string>().find("No mesh") != std::string::npos);
  (void)mesh;
}

TEST_CASE("mesh and token commands, with --json for scripts") {
  World w;
  std::string mesh = w.CreateAndUseMesh("shared");
  std::vector<std::string> tok = {"MESHWIRE_TOKEN=" + w.token};
  CommandResult list = w.machine.Mw({"mesh", "list", "--json"}, tok);
  CHECK(json::parse(list.out)["meshes"][0]["mesh_id"] == mesh);
  // bob never signed in: added, and said so (a misspelling looks the same).
  CommandResult added = w.machine.Mw({"mesh", "members", "add", "bob"}, tok);
  CHECK(added.code == 0);
  CHECK(added.out.find("OK bob can now use mesh " + mesh) != std::string::npos);
  CHECK(added.out.find("The relay knew no user bob: they can use the mesh once they sign in. "
                       "Misspelled? `meshwire mesh members remove bob`.") != std::string::npos);
  (void)AdminToken(w.relay_dir, "dana");  // a user the relay knows
  CommandResult known = w.machine.Mw({"mesh", "members", "add", "DANA", "--json"}, tok);
  CHECK(json::parse(known.out) == json({{"user", "dana"}, {"role", "member"}, {"new_user", false}}));
  CommandResult plain = w.machine.Mw({"mesh", "members", "remove", "dana"}, tok);
  REQUIRE(plain.code == 0);
  CommandResult known_text = w.machine.Mw({"mesh", "members", "add", "dana"}, tok);
  CHECK(known_text.out == "OK dana can now use mesh " + mesh + "\n");
  CHECK(w.machine.Mw({"mesh", "members", "remove", "dana"}, tok).code == 0);
  CommandResult members = w.machine.Mw({"mesh", "members", "--json"}, tok);
  CHECK(json::parse(members.out)["members"].size() == 2);
  // --mesh names another mesh than the active one.
  CommandResult other = w.machine.Mw({"mesh", "create", "other", "--json"}, tok);
  const std::string other_id = json::parse(other.out)["mesh_id"];
  CHECK(w.machine.Mw({"mesh", "members", "--mesh", other_id, "add", "carol"}, tok).code == 0);
  CommandResult other_members = w.machine.Mw({"mesh", "members", "--mesh", other_id, "--json"}, tok);
  CHECK(other_members.code == 0);
  CHECK(json::parse(other_members.out)["members"] ==
        json::parse(R"([{"user":"alice","role":"owner"},{"user":"carol","role":"member"}])"));
  CHECK(json::parse(w.machine.Mw({"mesh", "members", "--json"}, tok).out)["members"].size() == 2);
  CommandResult tokens = w.machine.Mw({"token", "list", "--json"}, tok);
  CHECK(json::parse(tokens.out)["tokens"].size() == 1);
  // On a terminal (`script` gives it one) a person is asked first; "n" keeps the mesh.
  auto on_terminal = [&](const std::string& typed, const std::string& args,
                         const std::vector<std::string>& as = {}) {
    return Run({"/bin/sh", "-c", "printf '" + typed + "\\n' | script -qec \"$0 " + args + "\" /dev/null", kBinary},
               w.machine.Env(as.empty() ? tok : as), w.machine.workspace);
  };
  // A member who is not the owner is not asked what the relay refuses (403).
  CommandResult by_bob = on_terminal("y", "mesh delete " + mesh, {"MESHWIRE_TOKEN=" + AdminToken(w.relay_dir, "bob")});
  CHECK(by_bob.code == 1);
  CHECK(by_bob.out.find("[y/N]") == std::string::npos);
  CHECK(by_bob.out.find("Only the mesh's owner") != std::string::npos);
  CommandResult kept = on_terminal("n", "mesh delete " + mesh);
  CHECK(kept.code == 1);
  CHECK_MESSAGE(kept.out.find("Delete mesh " + mesh + " \"shared\" with its 0 agents and every message in it, for "
                              "every member? This cannot be undone. [y/N]") != std::string::npos, kept.out);
  CHECK(kept.out.find("not deleted (answer y to delete it, or pass --yes)") != std::string::npos);
  CHECK(json::parse(w.machine.Mw({"mesh", "list", "--json"}, tok).out)["meshes"].size() == 2);
  CommandResult yes = on_terminal("", "mesh delete --yes " + other_id);  // --yes: not asked
  CHECK(yes.code == 0);
  CHECK(yes.out.find("[y/N]") == std::string::npos);
  // Without a terminal (a script) it is never asked.
  CHECK(w.machine.Mw({"mesh", "delete", mesh}, tok).code == 0);
  // It was the active one: no longer chosen, so the error says to choose one.
  CommandResult gone = w.machine.Mw({"agents"}, tok);
  CHECK(gone.code == 2);
  CHECK(gone.err.find("No mesh chosen") != std::string::npos);
}

TEST_CASE("mesh list and token list keep their columns with accents, CJK and emoji in names") {
  // (User and agent names are ASCII: IsValidName.)
  World w;
  std::vector<std::string> tok = {"MESHWIRE_TOKEN=" + w.token};
  // Display columns: "café-crew" 9 (10 bytes), "日本チーム" 10 (15 bytes), "🚀 launch" 9 (11 bytes).
  const std::vector<std::pair<std::string, std::size_t>> names = {
      {"plain-name", 10}, {"café-crew", 9}, {"日本チーム", 10}, {"🚀 launch", 9}};
  std::map<std::string, std::string> ids;
  for (const auto& [name, columns] : names) {
    CommandResult made = w.machine.Mw({"mesh", "create", name, "--json"}, tok);
    REQUIRE(made.code == 0);
    ids[name] = json::parse(made.out)["mesh_id"];
  }
  REQUIRE(w.machine.Mw({"mesh", "use", ids["café-crew"]}, tok).code == 0);
  const std::string list = w.machine.Mw({"mesh", "list"}, tok).out;
  for (const auto& [name, columns] : names) {
    // The active row is marked "OK" (not a terminal), the others by as many spaces; the quoted
    // name is padded to 24 columns, so " owner" starts at the same column on every row.
    const std::string marker = ids[name] == ids["café-crew"] ? "OK" : "  ";
    const std::string row = marker + " " + ids[name] + "  \"" + name + "\"" + std::string(24 - columns - 2, ' ') +
                            " owner alice  created ";
    CHECK_MESSAGE(list.find(row) != std::string::npos, list);
  }
  REQUIRE(w.machine.Mw({"token", "create", "--name", "日本"}, tok).code == 0);
  const std::string tokens = w.machine.Mw({"token", "list"}, tok).out;
  CHECK_MESSAGE(tokens.find("  日本" + std::string(16, ' ') + " created ") != std::string::npos, tokens);
}

TEST_CASE("an answer no relay gives, huge or deeply nested, fails in one sentence without filling memory") {
  UserMachine m;
  auto agents = [&m](const FakeHttpServer& fake) {
    std::vector<std::string> env = m.Env({"MESHWIRE_URL=" + fake.url(), "MESHWIRE_TOKEN=mw_x", "MESHWIRE_MESH_ID=m1"});
    return RunMeasured({kBinary, "agents"}, env);
  };
  const std::string head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n";
  SUBCASE("256 MB of '[' without Content-Length") {
    FakeHttpServer fake(head, std::string(1 << 20, '['), 256);
    MeasuredRun r = agents(fake);
    CHECK(r.code == 1);
    CHECK(r.err.find("answered more than 32 MiB") != std::string::npos);
    CHECK(r.err.find("is that URL a meshwire relay?") != std::string::npos);
    CHECK(r.max_rss_kb < 120 * 1024);  // the 32 MiB read, not the 256 MB sent
    CHECK(r.seconds < 20);
  }
  SUBCASE("2,000,000 '[' with Content-Length") {
    const std::string body(2000000, '[');
    FakeHttpServer fake("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " +
                            std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n",
                        body, 1);
    MeasuredRun r = agents(fake);
    CHECK(r.code == 1);
    CHECK(r.err == "meshwire: The relay at " + fake.url() +
                       " answered something that is not JSON; is that URL a meshwire relay?\n");
    CHECK(r.max_rss_kb < 60 * 1024);  // never parsed: parsing it took 140 MB
  }
  SUBCASE("an error answer nested 100000 deep") {
    const std::string body = std::string(100000, '[') + std::string(100000, ']');
    FakeHttpServer fake("HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/json\r\nContent-Length: " +
                            std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n",
                        body, 1);
    MeasuredRun r = agents(fake);
    CHECK(r.code == 1);
    CHECK(r.err.find("answered HTTP 500 without a meshwire error") != std::string::npos);
  }
  SUBCASE("status, as agents: a server that answers but is not a relay is exit 1, not offline (3)") {
    FakeHttpServer fake("HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 5\r\nConnection: close\r\n\r\n",
                        "hello", 1);
    const std::vector<std::string> env = {"MESHWIRE_URL=" + fake.url(), "MESHWIRE_TOKEN=mw_x", "MESHWIRE_MESH_ID=m1"};
    CommandResult status = m.Mw({"status"}, env);
    CHECK(status.code == 1);
    CHECK(status.out.find("Service : FAILED error") != std::string::npos);
    CHECK(status.out.find("is that URL a meshwire relay?") != std::string::npos);
    CHECK(m.Mw({"agents"}, env).code == 1);
  }
  SUBCASE("a server that answers bytes that are not HTTP (an SSH banner) is exit 1, not offline (3)") {
    // The client library reports it as a closed connection; the probe looks at what came.
    FakeHttpServer fake("SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n", "", 0);
    const std::vector<std::string> env = {"MESHWIRE_URL=" + fake.url(), "MESHWIRE_TOKEN=mw_x", "MESHWIRE_MESH_ID=m1"};
    CommandResult status = m.Mw({"status"}, env);
    CHECK(status.code == 1);
    CHECK_MESSAGE(status.out.find("Service : FAILED error") != std::string::npos, status.out);
    CHECK(status.out.find("answered with something that is not HTTP (\"SSH-2.0-OpenSSH_9.2p1 Debian-2\"): is that "
                          "URL a meshwire relay?") != std::string::npos);
    CommandResult listed = m.Mw({"agents"}, env);
    CHECK(listed.code == 1);
    CHECK(listed.err.find("not HTTP") != std::string::npos);
  }
  SUBCASE("a TLS server's alert to plain HTTP says to use https://") {
    FakeHttpServer fake(std::string("\x15\x03\x03\x00\x02\x02\x46", 7), "", 0);
    CommandResult listed = m.Mw({"agents"}, {"MESHWIRE_URL=" + fake.url(), "MESHWIRE_TOKEN=mw_x", "MESHWIRE_MESH_ID=m1"});
    CHECK(listed.code == 1);
    CHECK_MESSAGE(listed.err.find("speaks TLS, not plain HTTP: use https://127.0.0.1:") != std::string::npos,
                  listed.err);
  }
}

TEST_CASE("a config.json that cannot be read or parsed is left as it is, not rewritten without its keys") {
  World w;
  const std::string mesh = w.CreateAndUseMesh();
  const std::vector<std::string> tok = {"MESHWIRE_TOKEN=" + w.token};
  const fs::path config = w.machine.home + "/.meshwire/config.json";
  for (const std::string& content : {std::string(R"({"agent_names": {"m1": {"a": "a-bob"}}, "active_m)"),
                                    std::string(""), std::string("[1,2]")}) {
    CAPTURE(content);
    std::ofstream(config, std::ios::trunc) << content;
    CommandResult used = w.machine.Mw({"mesh", "use", mesh}, tok);
    CHECK(used.code == 2);
    CHECK(used.out == "");
    // After the warning that every command reading it gives.
    CHECK(used.err.ends_with("\nmeshwire: " + config.string() +
                             " is not a JSON object, so it was left as it is (it may hold your agent_names): fix it, "
                             "or move it aside, then run the command again.\n"));
    CHECK(Slurp(config) == content);
    CommandResult init = w.machine.Mw({"init", "--mesh", mesh}, tok);  // also makes it the active mesh
    CHECK(init.code == 2);
    CHECK(Slurp(config) == content);
  }
  // Unreadable (as root, a folder is what cannot be read).
  fs::remove(config);
  fs::create_directory(config);
  CommandResult used = w.machine.Mw({"mesh", "use", mesh}, tok);
  CHECK(used.code == 2);
  CHECK(used.err.ends_with("\nmeshwire: Cannot read " + config.string() +
                           " (Is a directory), so it was left as it is: fix its permissions (it must be a file you "
                           "can read and write), then run the command again.\n"));
  CHECK(fs::is_directory(config));
}

TEST_CASE("a credentials.json that cannot be read is named with the reason, not taken for no credentials") {
  World w;
  const fs::path credentials = w.machine.home + "/.meshwire/credentials.json";
  fs::create_directories(credentials);  // as root, chmod 000 would not stop a read: a folder does
  CommandResult agents = w.machine.Mw({"agents", "--mesh", "m1"});
  CHECK(agents.code == 2);
  CHECK(agents.err == "meshwire: " + credentials.string() +
                          " exists but cannot be read (Is a directory): as its owner, make it a readable file (chmod "
                          "600 " + credentials.string() + "), or move it aside and run `meshwire login`.\n");
  CommandResult status = w.machine.Mw({"status"});
  CHECK(status.code == 2);
  CHECK(status.out.find("Token : (none: ~/.meshwire/credentials.json cannot be read (Is a directory): fix its "
                        "permissions or run `meshwire login`)") != std::string::npos);
  // Saving a token there says what to do.
  CommandResult init = w.machine.Mw({"init", "--token", w.token});
  CHECK(init.code == 2);
  CHECK(init.err == "meshwire: Cannot replace " + credentials.string() +
                        " (Is a directory): it must be a file (not a folder) in a folder you can write to; move it "
                        "aside, then run the command again.\n");
  // A broken one (a bad edit): one sentence, not a warning and then "No credentials found".
  fs::remove(credentials);
  std::ofstream(credentials) << "{";
  CommandResult broken = w.machine.Mw({"agents", "--mesh", "m1"});
  CHECK(broken.code == 2);
  CHECK(broken.err == "meshwire: " + credentials.string() +
                          " is not a JSON object (login writes it, with your token and relay URL): move it aside and "
                          "run `meshwire login`.\n");
  // Where a token comes from elsewhere, it is not needed, and nothing is said of it.
  CommandResult elsewhere = w.machine.Mw({"agents", "--mesh", "m1"}, {"MESHWIRE_TOKEN=" + w.token});
  CHECK(elsewhere.err.find("credentials.json") == std::string::npos);
  // init --token replaces it.
  REQUIRE(w.machine.Mw({"init", "--token", w.token}).code == 0);
  CHECK(json::parse(Slurp(credentials))["token"] == w.token);
}

TEST_CASE("admin token create (and server) check every flag before they open (and so create) the storage") {
  TempDir d;
  auto admin = [&d](const std::vector<std::string>& flags) {
    std::vector<std::string> args = {kBinary, "admin", "token", "create"};
    args.insert(args.end(), flags.begin(), flags.end());
    return Run(args, {"MESHWIRE_HOME=" + d / "home"}, d.path().string());
  };
  CommandResult bogus = admin({"--user", "x", "--storage", "bogus:x"});
  CHECK(bogus.code == 2);
  CHECK(bogus.out == "");
  CHECK(bogus.err == "meshwire: --storage bogus:x: meshwire stores in SQLite (sqlite:PATH) or PostgreSQL "
                     "(postgres://user:pass@host:port/db), nothing else; for a file whose name has a colon, write "
                     "sqlite:bogus:x.\n");
  CHECK_FALSE(fs::exists(d / "bogus:x"));
  CommandResult mysql = admin({"--user", "x", "--storage", "mysql://u:secret@h/db"});
  CHECK(mysql.code == 2);
  CHECK(mysql.err.find("secret") == std::string::npos);
  CommandResult bad_user = admin({"--user", "bad user!", "--storage", "sqlite:" + d / "new.db"});
  CHECK(bad_user.code == 2);
  CHECK(bad_user.err == "meshwire: --user must be 1-64 characters of A-Z a-z 0-9 . _ - (got \"bad user!\").\n");
  CHECK_FALSE(fs::exists(d / "new.db"));
  CHECK(admin({"--user", "x", "--mesh", "", "--storage", "sqlite:" + d / "new.db"}).code == 2);
  CHECK_FALSE(fs::exists(d / "new.db"));
  // `server` refuses it the same way, before it creates anything.
  CommandResult server = Run({kBinary, "server", "--listen", "127.0.0.1:0", "--storage", "bogus:x"},
                             {"MESHWIRE_HOME=" + d / "home"}, d.path().string());
  CHECK(server.code == 2);
  CHECK(server.err.find("--storage bogus:x: meshwire stores in SQLite") != std::string::npos);
  CHECK_FALSE(fs::exists(d / "bogus:x"));
  // A colon in a file's name is still a file with sqlite:.
  CommandResult colon = admin({"--user", "x", "--storage", "sqlite:" + d / "a:b.db"});
  CHECK(colon.code == 0);
  CHECK(fs::exists(d / "a:b.db"));
  // libpq's keyword=value form is not a file name: refused, its password not
  // shown (it became a SQLite file of that name, and the log showed it).
  const std::string keywords = "host=127.0.0.1 port=5432 user=postgres password=hunter2 dbname=mw";
  for (const std::vector<std::string>& cmd :
       {std::vector<std::string>{kBinary, "admin", "token", "create", "--user", "x", "--storage", keywords},
        std::vector<std::string>{kBinary, "server", "--listen", "127.0.0.1:0", "--storage", keywords}}) {
    CAPTURE(cmd[1]);
    CommandResult r = Run(cmd, {"MESHWIRE_HOME=" + d / "home"}, d.path().string());
    CHECK(r.code == 2);
    CHECK(r.err.find("keyword=value string; give it as a URL, postgres://") != std::string::npos);
    CHECK(r.err.find("hunter2") == std::string::npos);
    CHECK_FALSE(fs::exists(d / keywords));
  }
  // An empty --storage (an unset variable) is not the default file.
  CommandResult empty = Run({kBinary, "server", "--listen", "127.0.0.1:0", "--storage", ""},
                            {"MESHWIRE_HOME=" + d / "home"}, d.path().string());
  CHECK(empty.code == 2);
  CHECK(empty.err.find("leave --storage out for the default") != std::string::npos);
  // Token names follow POST /tokens' rules, checked before the storage is made.
  CommandResult control = admin({"--user", "x", "--name", "a\nb", "--storage", "sqlite:" + d / "fresh.db"});
  CHECK(control.code == 2);
  CHECK(control.err.find("must not contain control characters") != std::string::npos);
  CHECK(admin({"--user", "x", "--name", std::string(300, 'n'), "--storage", "sqlite:" + d / "fresh.db"}).code == 2);
  CHECK_FALSE(fs::exists(d / "fresh.db"));
}

TEST_CASE("admin token create --mesh: refused for a user who is not a member of that mesh") {
  World w;
  const std::string mesh = w.CreateAndUseMesh();
  const std::vector<std::string> env = {"MESHWIRE_HOME=" + w.relay_dir.path().string()};
  const std::string storage = "sqlite:" + w.relay_dir / "relay.db";
  CommandResult outsider = Run({kBinary, "admin", "token", "create", "--user", "mallory", "--mesh", mesh, "--storage",
                                storage}, env);
  CHECK(outsider.code == 1);
  CHECK(outsider.out == "");
  CHECK(outsider.err.find("mallory is not a member of mesh " + mesh) != std::string::npos);
  CommandResult member = Run({kBinary, "admin", "token", "create", "--user", "alice", "--mesh", mesh, "--storage",
                              storage}, env);
  CHECK(member.code == 0);
  CHECK(member.out.rfind("mw_", 0) == 0);
}

TEST_CASE("wait waits through a relay restart: the 503 of its shutdown, then a refused connection") {
  TempDir relay_dir;
  auto start = [&relay_dir](int port) {
    return std::make_unique<ChildProcess>(
        std::vector<std::string>{kBinary, "server", "--listen", "127.0.0.1:" + std::to_string(port), "--storage",
                                 "sqlite:" + relay_dir / "relay.db"},
        std::vector<std::string>{"MESHWIRE_HOME=" + relay_dir.path().string()});
  };
  RelayProcess first(relay_dir);
  const int port = first.port;
  const std::string token = AdminToken(relay_dir, "alice");
  UserMachine m;
  m.extra_env = {"MESHWIRE_URL=" + first.url(), "MESHWIRE_TOKEN=" + token};
  CommandResult created = m.Mw({"mesh", "create", "restarts", "--json"});
  REQUIRE(created.code == 0);
  const std::string mesh = json::parse(created.out)["mesh_id"];
  m.extra_env.push_back("MESHWIRE_MESH_ID=" + mesh);
  REQUIRE(m.Mw({"agents"}).code == 0);
  std::vector<std::string> wait_args = {kBinary, "wait", "--name", "waiter", "--timeout", "60"};
  ChildProcess waiter(wait_args, m.Env(), m.workspace);
  // Registered and parked in a poll.
  for (int i = 0; i < 100 && m.Mw({"agents"}).out.find("waiter") == std::string::npos; ++i) usleep(50000);
  usleep(300000);
  REQUIRE(first.process.Signal(SIGTERM, 15000));
  auto again = start(port);
  REQUIRE_MESSAGE(again->WaitForStderr("listening on http"), again->stderr_seen());
  CHECK(m.Mw({"send", "after the restart", "--to", "waiter", "--name", "sender"}).code == 0);
  auto status = waiter.Wait(20000);
  REQUIRE(status);
  CHECK(WIFEXITED(*status));
  CHECK(WEXITSTATUS(*status) == 0);
  CHECK(waiter.ReadStdout().find("after the restart") != std::string::npos);
}

}  // namespace meshwire::testing
