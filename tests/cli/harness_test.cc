// Tests of the `meshwire init --harness` generators (cli/harness): every
// harness into an empty home and workspace and into existing files, merging
// that keeps other entries and settings, idempotence, backups, invalid files,
// platform paths, and the generated files read back by the real parsers
// (node for JSON and JavaScript, python3's tomllib and PyYAML).
#include "cli/harness/harness.h"
#include "cli/harness/config_files.h"

#include <doctest/doctest.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "tests/support/temp_dir.h"

namespace meshwire::testing {

namespace {

namespace fs = std::filesystem;
using cli::FileChange;
using cli::HarnessContext;
using cli::HarnessError;
using cli::HarnessResult;
using nlohmann::json;
using OrderedJson = nlohmann::ordered_json;

constexpr const char* kMesh = "kR9xQpLmW3aZ";
constexpr const char* kToken = "mw_SECRETtoken0123456789abcdef";
constexpr const char* kUrl = "http://127.0.0.1:7420";

std::string Read(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  REQUIRE_MESSAGE(in.good(), "cannot read " << path);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

void Write(const std::string& path, const std::string& content) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream out(path, std::ios::binary);
  out << content;
  REQUIRE(out.good());
}

unsigned Mode(const std::string& path) {
  struct stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  return st.st_mode & 07777;
}

std::string ShellQuote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

/// Runs `command` through the shell; its exit code.
int Shell(const std::string& command) {
  int status = std::system(command.c_str());
  return status == -1 ? -1 : WEXITSTATUS(status);
}

/// The real parsers must be there: a check that silently passed without
/// them would prove nothing.
void RequireParsers() {
  static const bool kAvailable =
      Shell("command -v node >/dev/null && python3 -c 'import tomllib, yaml' 2>/dev/null") == 0;
  REQUIRE_MESSAGE(kAvailable, "these tests need node and python3 (3.11+) with PyYAML");
}

/// `path` parsed by a real parser (`kind`: json = node's JSON.parse, toml =
/// python's tomllib, yaml = PyYAML's safe_load, front-matter = PyYAML on the
/// front matter of a markdown file), as JSON.
json ParseWith(const std::string& kind, const std::string& path) {
  RequireParsers();
  TempDir out_dir;
  const std::string out = out_dir / "parsed.json";
  std::string command;
  if (kind == "json") {
    // The exact check of the brief, then a copy for the test to read.
    REQUIRE(Shell("node -e 'JSON.parse(require(\"fs\").readFileSync(process.argv[1],\"utf8\"))' " +
                  ShellQuote(path)) == 0);
    command =
        "node -e 'const fs=require(\"fs\"); fs.writeFileSync(process.argv[2], "
        "JSON.stringify(JSON.parse(fs.readFileSync(process.argv[1],\"utf8\"))))' ";
  } else if (kind == "toml") {
    REQUIRE(Shell("python3 -c 'import tomllib,sys; tomllib.load(open(sys.argv[1],\"rb\"))' " +
                  ShellQuote(path)) == 0);
    command =
        "python3 -c 'import tomllib,json,sys; json.dump(tomllib.load(open(sys.argv[1],"
        "\"rb\")), open(sys.argv[2],\"w\"), default=str)' ";
  } else if (kind == "yaml") {
    REQUIRE(Shell("python3 -c 'import yaml,sys; yaml.safe_load(open(sys.argv[1]))' " +
                  ShellQuote(path)) == 0);
    command =
        "python3 -c 'import yaml,json,sys; json.dump(yaml.safe_load(open(sys.argv[1])), "
        "open(sys.argv[2],\"w\"), default=str)' ";
  } else {
    command =
        "python3 -c 'import yaml,json,sys; t=open(sys.argv[1]).read(); "
        "assert t.startswith(\"---\\n\"); "
        "json.dump(yaml.safe_load(t.split(\"---\\n\")[1]), open(sys.argv[2],\"w\"))' ";
  }
  const int rc = Shell(command + ShellQuote(path) + " " + ShellQuote(out));
  REQUIRE_MESSAGE(rc == 0, kind << " parser rejected " << path << ":\n" << Read(path));
  return json::parse(Read(out));
}

/// A home, a workspace (with a space in its path) and a context for them.
struct Fixture {
  TempDir tmp;
  HarnessContext ctx;

  Fixture() {
    ctx.mesh_id = kMesh;
    ctx.agent_name = "test-agent";
    ctx.url = kUrl;
    ctx.token = kToken;
    ctx.workspace_dir = tmp / "my project";
    ctx.home_dir = tmp / "home";
    ctx.platform = "linux";
    ctx.launcher = {"/usr/local/bin/meshwire"};
    fs::create_directories(ctx.workspace_dir);
    fs::create_directories(ctx.home_dir);
  }

  std::string Home(const std::string& relative) const {
    return (fs::path(ctx.home_dir) / relative).string();
  }
  std::string Work(const std::string& relative) const {
    return (fs::path(ctx.workspace_dir) / relative).string();
  }

  HarnessResult Run(const std::string& harness) const {
    const cli::Harness* h = cli::FindHarness(harness);
    REQUIRE(h != nullptr);
    return h->generate(ctx);
  }
};

/// The entry MCP harness `harness` must write for `ctx`: a workspace's file
/// pins the mesh and name; a user-wide one gives defaults below each
/// workspace's .mesh.json. Gemini names the token variable for expansion,
/// Codex lists the variables it must pass on.
OrderedJson ExpectedEntry(const HarnessContext& ctx, const std::string& harness) {
  const bool typed = harness == "claude-code" || harness == "vscode";
  const bool workspace = typed || (harness == "cursor" && ctx.project);
  OrderedJson entry = OrderedJson::object();
  if (typed) entry["type"] = "stdio";
  entry["command"] = ctx.launcher.front();
  OrderedJson args(std::vector<std::string>(ctx.launcher.begin() + 1, ctx.launcher.end()));
  args.push_back("mcp");
  if (workspace) {
    for (const std::string& arg : {std::string("--mesh"), ctx.mesh_id}) args.push_back(arg);
  } else {
    for (const std::string& arg : {std::string("--default-mesh"), ctx.mesh_id,
                                   std::string("--default-name"), ctx.agent_name}) {
      args.push_back(arg);
    }
  }
  entry["args"] = args;
  entry["env"] = {{"MESHWIRE_URL", ctx.url}};
  if (workspace) {
    entry["env"]["MESHWIRE_AGENT_NAME"] =
        ctx.workspace_agent_name.empty() ? ctx.agent_name : ctx.workspace_agent_name;
  }
  if (harness == "gemini") entry["env"]["MESHWIRE_TOKEN"] = "$MESHWIRE_TOKEN";
  if (harness == "codex") entry["env_vars"] = {"MESHWIRE_TOKEN", "MESHWIRE_HOME", "MESHWIRE_CA_FILE"};
  return entry;
}

void CheckAllUnchanged(const HarnessResult& result) {
  for (const FileChange& file : result.files) {
    CAPTURE(file.path);
    CHECK(file.action == "unchanged");
    CHECK(file.backup.empty());
  }
}

/// Every .bak file under `dir`.
std::vector<std::string> Backups(const std::string& dir) {
  std::vector<std::string> found;
  if (!fs::exists(dir)) return found;
  for (const auto& entry : fs::recursive_directory_iterator(dir)) {
    if (entry.path().string().ends_with(".bak")) found.push_back(entry.path().string());
  }
  return found;
}

/// Whether the lines of `inner` appear in `outer` in the same order.
bool KeepsLinesInOrder(const std::string& outer, const std::string& inner) {
  std::istringstream a(outer);
  std::istringstream b(inner);
  std::string want;
  std::string line;
  while (std::getline(b, want)) {
    bool found = false;
    while (std::getline(a, line)) {
      if (line == want) {
        found = true;
        break;
      }
    }
    if (!found) return false;
  }
  return true;
}

struct JsonCase {
  std::string harness;
  std::function<std::string(const Fixture&)> path;
  const char* container;
  bool typed;
};

const std::vector<JsonCase>& JsonCases() {
  static const std::vector<JsonCase> kCases = {
      {"claude",
       [](const Fixture& f) { return f.Home(".config/Claude/claude_desktop_config.json"); },
       "mcpServers", false},
      {"cursor", [](const Fixture& f) { return f.Home(".cursor/mcp.json"); }, "mcpServers", false},
      {"claude-code", [](const Fixture& f) { return f.Work(".mcp.json"); }, "mcpServers", true},
      {"vscode", [](const Fixture& f) { return f.Work(".vscode/mcp.json"); }, "servers", true},
      {"windsurf", [](const Fixture& f) { return f.Home(".codeium/windsurf/mcp_config.json"); },
       "mcpServers", false},
      {"gemini", [](const Fixture& f) { return f.Home(".gemini/settings.json"); }, "mcpServers",
       false},
  };
  return kCases;
}

}  // namespace

TEST_CASE("the registry lists every harness in order, with its default agent and title") {
  const std::vector<std::vector<std::string>> expected = {
      {"copilot", "copilot-agent", "Copilot"}, {"claude", "claude-agent", "Claude"},
      {"cursor", "cursor-agent", "Cursor"},    {"claude-code", "claude-code-agent", "Claude Code"},
      {"vscode", "vscode-agent", "VS Code"},   {"windsurf", "windsurf-agent", "Windsurf"},
      {"gemini", "gemini-agent", "Gemini"},    {"codex", "codex-agent", "Codex"},
      {"hermes", "hermes-agent", "Hermes"},    {"pi", "pi-agent", "Pi"},
  };
  auto harnesses = cli::Harnesses();
  REQUIRE(harnesses.size() == expected.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    CHECK(harnesses[i].name == expected[i][0]);
    CHECK(harnesses[i].default_agent_name == expected[i][1]);
    CHECK(harnesses[i].title == expected[i][2]);
    CHECK((harnesses[i].generate != nullptr));
    CHECK(cli::FindHarness(expected[i][0]) == &harnesses[i]);
  }
  CHECK(cli::FindHarness("nope") == nullptr);
  CHECK(cli::FindHarness("") == nullptr);
}

TEST_CASE("a context without a mesh or launcher is refused before anything is written") {
  Fixture f;
  f.ctx.mesh_id.clear();
  CHECK_THROWS_AS(f.Run("claude"), HarnessError);
  f.ctx.mesh_id = kMesh;
  f.ctx.launcher.clear();
  CHECK_THROWS_AS(f.Run("hermes"), HarnessError);
  CHECK(fs::is_empty(f.ctx.home_dir));
  CHECK(fs::is_empty(f.ctx.workspace_dir));
}

TEST_CASE("text that is not UTF-8 is refused with a HarnessError, nothing written") {
  Fixture f;
  f.ctx.agent_name = "bad\xff\xfe";
  CHECK_THROWS_AS(f.Run("gemini"), HarnessError);
  CHECK(!fs::exists(f.Home(".gemini/settings.json")));
}

TEST_CASE("JSON harnesses write exactly their entry into an empty home and workspace") {
  for (const JsonCase& c : JsonCases()) {
    CAPTURE(c.harness);
    Fixture f;
    const std::string path = c.path(f);
    HarnessResult first = f.Run(c.harness);
    REQUIRE(first.files.size() == 1);
    CHECK(first.files[0].path == path);
    CHECK(first.files[0].action == "created");
    CHECK(first.files[0].backup.empty());
    CHECK(first.next_steps.size() == (c.harness == "gemini" ? 2u : 1u));  // gemini: trust

    OrderedJson expected = {{c.container, {{"meshwire", ExpectedEntry(f.ctx, c.harness)}}}};
    const std::string text = Read(path);
    CHECK(text == expected.dump(2) + "\n");  // 2-space indentation, trailing newline
    CHECK(text.find(kToken) == std::string::npos);
    CHECK(ParseWith("json", path) == json::parse(expected.dump()));

    HarnessResult second = f.Run(c.harness);
    REQUIRE(second.files.size() == 1);
    CheckAllUnchanged(second);
    CHECK(Read(path) == text);
    CHECK(Backups(f.tmp.path().string()).empty());
  }
}

TEST_CASE("a teammate's clone: files shared in the workspace name its agent, the user's own files their own") {
  for (const JsonCase& c : JsonCases()) {
    CAPTURE(c.harness);
    Fixture f;
    f.ctx.agent_name = "test-agent-bob";      // bob's own agent
    f.ctx.workspace_agent_name = "test-agent";  // what .mesh.json names (alice's)
    f.Run(c.harness);
    const OrderedJson expected = {{c.container, {{"meshwire", ExpectedEntry(f.ctx, c.harness)}}}};
    CHECK(Read(c.path(f)) == expected.dump(2) + "\n");
  }
  Fixture f;
  f.ctx.agent_name = "test-agent-bob";
  f.ctx.workspace_agent_name = "test-agent";
  f.Run("claude-code");
  CHECK(json::parse(Read(f.Work(".mcp.json")))["mcpServers"]["meshwire"]["env"]["MESHWIRE_AGENT_NAME"] ==
        "test-agent");
  f.Run("cursor");  // user-wide: bob's own name, for folders without a .mesh.json
  CHECK(Read(f.Home(".cursor/mcp.json")).find("\"test-agent-bob\"") != std::string::npos);
  f.Run("pi");  // .env.meshwire holds bob's token: his own file, his own name
  CHECK(Read(f.Work(".env.meshwire")).find("MESHWIRE_AGENT_NAME=test-agent-bob\n") != std::string::npos);
}

TEST_CASE("JSON harnesses merge into existing files: other servers and settings survive") {
  for (const JsonCase& c : JsonCases()) {
    CAPTURE(c.harness);
    Fixture f;
    const std::string path = c.path(f);
    const std::string container = c.container;
    // 4-space indentation and an unusual key order: only our entry may change.
    const std::string original = "{\n    \"zeta\": \"dark\",\n    \"" + container +
                                 "\": {\n        \"other\": {\"command\": \"other-server\", "
                                 "\"args\": [\"--flag\"], \"env\": {\"KEY\": \"value\"}}\n    },\n"
                                 "    \"alpha\": {\"list\": [1, 2.5, \"x\", null, true], "
                                 "\"obj\": {\"a\": {}}, \"unicode\": \"h\u00e9llo \u2713\"}\n}\n";
    Write(path, original);
    ::chmod(path.c_str(), 0640);

    HarnessResult first = f.Run(c.harness);
    REQUIRE(first.files.size() == 1);
    CHECK(first.files[0].action == "updated");
    CHECK(first.files[0].backup == path + ".bak");
    CHECK(Read(path + ".bak") == original);
    CHECK(Mode(path) == 0640);
    CHECK(Mode(path + ".bak") == 0640);

    OrderedJson merged = OrderedJson::parse(Read(path));
    std::vector<std::string> keys;
    for (auto it = merged.begin(); it != merged.end(); ++it) keys.push_back(it.key());
    CHECK(keys == std::vector<std::string>{"zeta", container, "alpha"});
    CHECK(merged[container].begin().key() == "other");
    CHECK(merged[container]["meshwire"] == ExpectedEntry(f.ctx, c.harness));
    merged[container].erase("meshwire");
    CHECK(json::parse(merged.dump()) == json::parse(original));
    CHECK(Read(path).find(kToken) == std::string::npos);
    ParseWith("json", path);

    const std::string after_first = Read(path);
    CheckAllUnchanged(f.Run(c.harness));
    CHECK(Read(path) == after_first);
    CHECK(Read(path + ".bak") == original);  // no new backup
    CHECK(Backups(f.tmp.path().string()).size() == 1);

    // Another mesh: updated again; the first backup stays (the file before
    // meshwire changed it), and the previous run's goes beside it.
    f.ctx.mesh_id = "otherMesh123";
    HarnessResult third = f.Run(c.harness);
    CHECK(third.files[0].action == "updated");
    CHECK(third.files[0].backup == path + ".bak.1");
    CHECK(Read(path + ".bak") == original);
    CHECK(Read(path + ".bak.1") == after_first);
    // Back and forth: a content kept already is not kept again.
    const std::string after_third = Read(path);
    f.ctx.mesh_id = "secondMesh12";
    CHECK(f.Run(c.harness).files[0].backup == path + ".bak.2");
    CHECK(Read(path + ".bak.2") == after_third);
    f.ctx.mesh_id = "otherMesh123";
    CHECK(f.Run(c.harness).files[0].backup == path + ".bak.3");
    f.ctx.mesh_id = "secondMesh12";
    CHECK(f.Run(c.harness).files[0].backup == path + ".bak.2");  // that content is there
    CHECK(Backups(f.tmp.path().string()).size() == 1);  // ".bak" itself (the helper counts *.bak)
    CHECK(fs::exists(path + ".bak.3"));
    CHECK_FALSE(fs::exists(path + ".bak.4"));
    f.ctx.mesh_id = "otherMesh123";
    CHECK(f.Run(c.harness).files[0].backup == path + ".bak.3");
    CHECK_FALSE(fs::exists(path + ".bak.4"));
    CHECK(OrderedJson::parse(Read(path))[container]["meshwire"] == ExpectedEntry(f.ctx, c.harness));
    // Replacing an entry that named another mesh says so.
    REQUIRE(!third.next_steps.empty());
    CHECK(third.next_steps[0].starts_with("Warning: the meshwire entry in " + path + " named mesh " +
                                          kMesh + "; it now names otherMesh123"));
  }
}

TEST_CASE("an existing meshwire entry is updated in place, keeping the client's own settings") {
  Fixture f;
  const std::string path = f.Work(".mcp.json");
  Write(path, R"({"mcpServers": {
  "meshwire": {"type": "http", "url": "http://old", "command": "old", "args": ["x"],
               "env": {"MESHWIRE_URL": "http://old", "EXTRA": "1"}, "timeout": 30},
  "after": {"command": "after"}
}}
)");
  HarnessResult result = f.Run("claude-code");
  CHECK(result.files[0].action == "updated");
  OrderedJson servers = OrderedJson::parse(Read(path))["mcpServers"];
  CHECK(servers.begin().key() == "meshwire");  // keeps its place
  const OrderedJson& entry = servers["meshwire"];
  CHECK(entry["type"] == "stdio");
  CHECK(!entry.contains("url"));  // another transport's key
  CHECK(entry["command"] == "/usr/local/bin/meshwire");
  CHECK(entry["args"] == OrderedJson({"mcp", "--mesh", kMesh}));
  CHECK(
      entry["env"] ==
      OrderedJson({{"MESHWIRE_URL", kUrl}, {"EXTRA", "1"}, {"MESHWIRE_AGENT_NAME", "test-agent"}}));
  CHECK(entry["timeout"] == 30);
  CHECK(servers["after"] == OrderedJson({{"command", "after"}}));
  CheckAllUnchanged(f.Run("claude-code"));
}

TEST_CASE("an entry already there in another layout counts as unchanged, file untouched") {
  Fixture f;
  f.ctx.project = true;
  const std::string path = f.Work(".cursor/mcp.json");
  // Same meaning, other key order and layout.
  const std::string original =
      "{\"mcpServers\":{\"meshwire\":{\"env\":{\"MESHWIRE_AGENT_NAME\":\"test-agent\","
      "\"MESHWIRE_URL\":\"http://127.0.0.1:7420\"},\"args\":[\"mcp\",\"--mesh\","
      "\"kR9xQpLmW3aZ\"],\"command\":\"/usr/local/bin/meshwire\"}}}";
  Write(path, original);
  CheckAllUnchanged(f.Run("cursor"));
  CHECK(Read(path) == original);
  CHECK(Backups(f.ctx.home_dir).empty());
}

TEST_CASE("invalid or wrongly shaped JSON is left byte for byte, with an error naming it") {
  for (const std::string harness : {"claude", "vscode", "gemini"}) {
    CAPTURE(harness);
    const JsonCase* c = nullptr;
    for (const JsonCase& candidate : JsonCases()) {
      if (candidate.harness == harness) c = &candidate;
    }
    REQUIRE(c != nullptr);
    for (const std::string& content :
         {std::string("{\"mcpServers\": {"), std::string("[1, 2]"), std::string("\"text\""),
          std::string("{\"") + c->container + "\": 3}",
          std::string("{\"") + c->container + "\": [\"meshwire\"]}", std::string("{,}")}) {
      CAPTURE(content);
      Fixture f;
      const std::string path = c->path(f);
      Write(path, content);
      try {
        f.Run(harness);
        FAIL("no error");
      } catch (const HarnessError& e) {
        const std::string message = e.what();
        CHECK(message.find(path) != std::string::npos);
        CHECK(message.find("fix it or move it away") != std::string::npos);
      }
      CHECK(Read(path) == content);
      CHECK(Backups(f.tmp.path().string()).empty());
    }
  }
}

TEST_CASE("JSON with comments is read; the note says the comments were not kept") {
  Fixture f;
  const std::string path = f.Work(".vscode/mcp.json");
  const std::string original =
      "{\n  // my servers\n  \"servers\": {\n    \"other\": {\"command\": \"x\"} /* keep */\n  "
      "}\n}\n";
  Write(path, original);
  HarnessResult result = f.Run("vscode");
  CHECK(result.files[0].action == "updated");
  CHECK(Read(path + ".bak") == original);
  REQUIRE(result.next_steps.size() == 2);
  CHECK(result.next_steps[0].find("comments") != std::string::npos);
  json parsed = ParseWith("json", path);
  CHECK(parsed["servers"]["other"] == json({{"command", "x"}}));
  CheckAllUnchanged(f.Run("vscode"));
}

TEST_CASE("JSONC's trailing commas are read; strings and comments that hold commas are left alone") {
  using cli::harness_internal::WithoutTrailingCommas;
  CHECK(WithoutTrailingCommas("{\"a\": [1, 2,], \"b\": 1,\n}") == "{\"a\": [1, 2 ], \"b\": 1 \n}");
  CHECK(WithoutTrailingCommas("{\"a,]\": \",}\", \"q\\\",}\": 1}") == "{\"a,]\": \",}\", \"q\\\",}\": 1}");
  CHECK(WithoutTrailingCommas("[1, // x,]\n]") == "[1  // x,]\n]");
  CHECK(WithoutTrailingCommas("[1, /* ,] */ ]") == "[1  /* ,] */ ]");
  CHECK(WithoutTrailingCommas("[1, 2]") == "[1, 2]");
  CHECK(WithoutTrailingCommas("\"open") == "\"open");  // unterminated: copied, the parser says what is wrong

  Fixture f;
  const std::string path = f.Work(".vscode/mcp.json");
  const std::string original =
      "{\n  \"servers\": {\n    \"other\": {\"command\": \"x\", \"args\": [\"a,]\",],},\n  },\n}\n";
  Write(path, original);
  HarnessResult result = f.Run("vscode");
  CHECK(result.files[0].action == "updated");
  CHECK(Read(path + ".bak") == original);
  REQUIRE(result.next_steps.size() == 2);
  CHECK(result.next_steps[0].find("comments or trailing commas") != std::string::npos);
  json parsed = ParseWith("json", path);
  CHECK(parsed["servers"]["other"] == json({{"command", "x"}, {"args", {"a,]"}}}));
  CHECK(parsed["servers"].contains("meshwire"));
  CheckAllUnchanged(f.Run("vscode"));

  // A real error is still one, at its place in the file.
  Write(path, "{\n  \"servers\": {,\n}\n");
  CHECK_THROWS_WITH_AS(f.Run("vscode"), doctest::Contains("line 2"), HarnessError);
}

TEST_CASE("an empty existing file counts as an empty object") {
  Fixture f;
  const std::string path = f.Home(".gemini/settings.json");
  Write(path, "");
  HarnessResult result = f.Run("gemini");
  CHECK(result.files[0].action == "updated");
  CHECK(Read(path + ".bak").empty());
  ParseWith("json", path);
}

TEST_CASE("claude writes where Claude Desktop reads it on each platform") {
  Fixture f;
  f.ctx.appdata = f.tmp / "AppData/Roaming";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"linux", f.Home(".config/Claude/claude_desktop_config.json")},
      {"macos", f.Home("Library/Application Support/Claude/claude_desktop_config.json")},
      {"windows", f.tmp / "AppData/Roaming/Claude/claude_desktop_config.json"},
  };
  for (const auto& [platform, path] : cases) {
    CAPTURE(platform);
    f.ctx.platform = platform;
    HarnessResult result = f.Run("claude");
    REQUIRE(result.files.size() == 1);
    CHECK(result.files[0].path == path);
    CHECK(result.files[0].action == "created");
    CHECK(result.next_steps ==
          std::vector<std::string>{"Restart Claude Desktop to load the MeshWire MCP server."});
    CHECK(ParseWith("json", path)["mcpServers"]["meshwire"] ==
          json::parse(ExpectedEntry(f.ctx, "claude").dump()));
    CHECK(Read(path).find(kToken) == std::string::npos);
  }
}

TEST_CASE("claude on Linux follows XDG_CONFIG_HOME, as Electron apps do") {
  Fixture f;
  f.ctx.platform = "linux";
  f.ctx.xdg_config_home = f.tmp / "xdg config";
  HarnessResult result = f.Run("claude");
  REQUIRE(result.files.size() == 1);
  CHECK(result.files[0].path == f.tmp / "xdg config/Claude/claude_desktop_config.json");
  ParseWith("json", result.files[0].path);
  CHECK(!fs::exists(f.Home(".config")));
}

TEST_CASE("cursor writes ~/.cursor/mcp.json, or the workspace's with --project") {
  Fixture f;
  f.ctx.project = true;
  HarnessResult result = f.Run("cursor");
  CHECK(result.files[0].path == f.Work(".cursor/mcp.json"));
  CHECK(!fs::exists(f.Home(".cursor")));
  f.ctx.project = false;
  result = f.Run("cursor");
  CHECK(result.files[0].path == f.Home(".cursor/mcp.json"));
  // The workspace's file pins its mesh; the user-wide one only gives a default.
  CHECK(ParseWith("json", f.Home(".cursor/mcp.json"))["mcpServers"]["meshwire"] ==
        json::parse(ExpectedEntry(f.ctx, "cursor").dump()));
  f.ctx.project = true;
  CHECK(ParseWith("json", f.Work(".cursor/mcp.json"))["mcpServers"]["meshwire"] ==
        json::parse(ExpectedEntry(f.ctx, "cursor").dump()));
}

TEST_CASE("a launcher through npx puts the package before the mcp arguments") {
  Fixture f;
  f.ctx.launcher = {"npx", "meshwire"};
  f.Run("windsurf");
  json entry =
      ParseWith("json", f.Home(".codeium/windsurf/mcp_config.json"))["mcpServers"]["meshwire"];
  CHECK(entry["command"] == "npx");
  CHECK(entry["args"] ==
        json({"meshwire", "mcp", "--default-mesh", kMesh, "--default-name", "test-agent"}));
}

TEST_CASE("a config file reached through a symbolic link stays a link") {
  Fixture f;
  const std::string real = f.tmp / "dotfiles/settings.json";
  Write(real, "{\"theme\": \"dark\"}\n");
  const std::string link = f.Home(".gemini/settings.json");
  fs::create_directories(fs::path(link).parent_path());
  fs::create_symlink(real, link);
  HarnessResult result = f.Run("gemini");
  CHECK(result.files[0].action == "updated");
  CHECK(fs::is_symlink(link));
  CHECK(Read(real + ".bak") == "{\"theme\": \"dark\"}\n");
  json parsed = ParseWith("json", real);
  CHECK(parsed["theme"] == "dark");
  CHECK(parsed["mcpServers"].contains("meshwire"));
}

TEST_CASE("codex writes [mcp_servers.meshwire] into an empty ~/.codex/config.toml") {
  Fixture f;
  const std::string path = f.Home(".codex/config.toml");
  HarnessResult result = f.Run("codex");
  REQUIRE(result.files.size() == 1);
  CHECK(result.files[0].path == path);
  CHECK(result.files[0].action == "created");
  CHECK(
      Read(path) ==
      "[mcp_servers.meshwire]\n"
      "command = \"/usr/local/bin/meshwire\"\n"
      "args = [\"mcp\", \"--default-mesh\", \"kR9xQpLmW3aZ\", \"--default-name\", \"test-agent\"]\n"
      "env = { MESHWIRE_URL = \"http://127.0.0.1:7420\" }\n"
      "env_vars = [\"MESHWIRE_TOKEN\", \"MESHWIRE_HOME\", \"MESHWIRE_CA_FILE\"]\n");
  CHECK(ParseWith("toml", path) ==
        json({{"mcp_servers", {{"meshwire", json::parse(ExpectedEntry(f.ctx, "codex").dump())}}}}));
  CheckAllUnchanged(f.Run("codex"));
  CHECK(Backups(f.ctx.home_dir).empty());
}

TEST_CASE("codex keeps the rest of config.toml byte for byte, comments included") {
  Fixture f;
  const std::string path = f.Home(".codex/config.toml");
  const std::string original =
      "# Codex settings\n"
      "model = \"o3\"  # the model\n"
      "approval_policy = \"on-request\"\n"
      "notes = \"\"\"\n"
      "[mcp_servers.meshwire]\n"
      "not a header: inside a string\"\"\"\n"
      "matrix = [\n"
      "  [1, 2],\n"
      "]\n"
      "\n"
      "[mcp_servers.other]\n"
      "command = \"other\"\n"
      "args = [\"a\"]\n"
      "# about other\n"
      "\n"
      "# the fast profile\n"
      "[profiles.fast]\n"
      "model = \"o4-mini\"\n";
  Write(path, original);
  HarnessResult result = f.Run("codex");
  CHECK(result.files[0].action == "updated");
  CHECK(Read(path + ".bak") == original);
  CHECK(result.next_steps.size() == 1);  // no note: nothing was lost
  const std::string text = Read(path);
  CHECK(KeepsLinesInOrder(text, original));
  // After [mcp_servers.other]: the same line inside the multi-line string
  // above is not a header and must stay as it is.
  const size_t entry = text.find("\n[mcp_servers.meshwire]\n", text.find("[mcp_servers.other]"));
  REQUIRE(entry != std::string::npos);
  CHECK(entry > text.find("# about other"));
  CHECK(entry < text.find("# the fast profile"));

  json expected = ParseWith("toml", path + ".bak");
  expected["mcp_servers"]["meshwire"] = json::parse(ExpectedEntry(f.ctx, "codex").dump());
  CHECK(ParseWith("toml", path) == expected);
  CHECK(text.find(kToken) == std::string::npos);
  CheckAllUnchanged(f.Run("codex"));
  CHECK(Read(path + ".bak") == original);
}

TEST_CASE("codex replaces its own table and sub-tables in place, keeping extra keys") {
  Fixture f;
  const std::string path = f.Home(".codex/config.toml");
  const std::string before = "model = \"o3\"\n\n";
  const std::string old_entry =
      "[mcp_servers.meshwire]\n"
      "command = \"old\"\n"
      "args = [\"mcp\", \"--mesh\", \"oldMesh\"]\n"
      "tool_timeout_sec = 90\n"
      "\n"
      "[mcp_servers.meshwire.env]\n"
      "MESHWIRE_URL = \"http://old\"\n"
      "EXTRA = \"kept\"\n";
  const std::string after = "\n# other server\n[mcp_servers.other]\ncommand = \"x\"\n";
  Write(path, before + old_entry + after);
  HarnessResult result = f.Run("codex");
  CHECK(result.files[0].action == "updated");
  const std::string text = Read(path);
  CHECK(text.starts_with(before + "[mcp_servers.meshwire]\n"));
  CHECK(text.ends_with(after));
  CHECK(text.find("oldMesh") == std::string::npos);
  json entry = ParseWith("toml", path)["mcp_servers"]["meshwire"];
  CHECK(entry["command"] == "/usr/local/bin/meshwire");
  CHECK(entry["args"] == json({"mcp", "--default-mesh", kMesh, "--default-name", "test-agent"}));
  CHECK(entry["tool_timeout_sec"] == 90);
  CHECK(entry["env"] == json({{"MESHWIRE_URL", kUrl}, {"EXTRA", "kept"}}));
  REQUIRE(!result.next_steps.empty());
  CHECK(result.next_steps[0].find("named mesh oldMesh; it now names " + std::string(kMesh)) !=
        std::string::npos);
  CheckAllUnchanged(f.Run("codex"));
}

TEST_CASE("codex with an inline mcp_servers table falls back to re-serializing, with a note") {
  Fixture f;
  const std::string path = f.Home(".codex/config.toml");
  Write(path, "# comment\nmodel = \"o3\"\nmcp_servers = { other = { command = \"x\" } }\n");
  HarnessResult result = f.Run("codex");
  CHECK(result.files[0].action == "updated");
  REQUIRE(result.next_steps.size() == 2);
  CHECK(result.next_steps[0].find("comments") != std::string::npos);
  json parsed = ParseWith("toml", path);
  CHECK(parsed["model"] == "o3");
  CHECK(parsed["mcp_servers"]["other"] == json({{"command", "x"}}));
  CHECK(parsed["mcp_servers"]["meshwire"] == json::parse(ExpectedEntry(f.ctx, "codex").dump()));
  CheckAllUnchanged(f.Run("codex"));
}

TEST_CASE("codex refuses invalid TOML and a mcp_servers that is not a table") {
  for (const std::string& content :
       {std::string("model = \n"), std::string("[a]\nx = 1\n[a]\nx = 2\n"),
        std::string("mcp_servers = \"none\"\n"), std::string("[[mcp_servers]]\nname = \"x\"\n")}) {
    CAPTURE(content);
    Fixture f;
    const std::string path = f.Home(".codex/config.toml");
    Write(path, content);
    try {
      f.Run("codex");
      FAIL("no error");
    } catch (const HarnessError& e) {
      CHECK(std::string(e.what()).find(path) != std::string::npos);
      CHECK(std::string(e.what()).find("fix it or move it away") != std::string::npos);
    }
    CHECK(Read(path) == content);
    CHECK(Backups(f.ctx.home_dir).empty());
  }
}

TEST_CASE("strings that need escaping come back exactly through every parser") {
  Fixture f;
  f.ctx.launcher = {"C:\\Program Files\\MeshWire\\mesh \"wire\".exe"};
  f.ctx.agent_name = "o'brien \"x\" h\u00e9 #1: [a] {b}\ttab";
  f.ctx.url = "https://relay.example/#x?y=1&z='2'";
  f.Run("claude");
  f.Run("codex");
  f.Run("hermes");
  CHECK(ParseWith("json",
                  f.Home(".config/Claude/claude_desktop_config.json"))["mcpServers"]["meshwire"] ==
        json::parse(ExpectedEntry(f.ctx, "claude").dump()));
  CHECK(ParseWith("toml", f.Home(".codex/config.toml"))["mcp_servers"]["meshwire"] ==
        json::parse(ExpectedEntry(f.ctx, "codex").dump()));
  CHECK(ParseWith("yaml", f.Home(".hermes/config.yaml"))["mcp_servers"]["meshwire"] ==
        json::parse(ExpectedEntry(f.ctx, "hermes").dump()));
  const std::string env_check =
      "set -a && . " + ShellQuote(f.Work(".env.meshwire")) +
      " && test \"$MESHWIRE_AGENT_NAME\" = " + ShellQuote(f.ctx.agent_name) +
      " && test \"$MESHWIRE_URL\" = " + ShellQuote(f.ctx.url);
  CHECK(Shell("sh -c " + ShellQuote(env_check)) == 0);
  CheckAllUnchanged(f.Run("codex"));
  CheckAllUnchanged(f.Run("hermes"));
}

TEST_CASE("copilot writes the MCP entry, the extension module and its entry under ~/.copilot") {
  Fixture f;
  const std::string dir = f.Home(".copilot/extensions/meshwire");
  HarnessResult result = f.Run("copilot");
  REQUIRE(result.files.size() == 3);
  CHECK(result.files[0].path == f.Home(".copilot/mcp-config.json"));
  CHECK(result.files[1].path == dir + "/meshwire-extension.mjs");
  CHECK(result.files[2].path == dir + "/extension.mjs");
  for (const FileChange& file : result.files) CHECK(file.action == "created");
  // The MCP server every session loads, user-wide (defaults below .mesh.json).
  OrderedJson expected = ExpectedEntry(f.ctx, "copilot");
  expected = OrderedJson{{"type", "local"}, {"command", expected["command"]}, {"args", expected["args"]},
                         {"env", expected["env"]}};
  CHECK(OrderedJson::parse(Read(f.Home(".copilot/mcp-config.json"))) ==
        OrderedJson{{"mcpServers", {{"meshwire", expected}}}});
  // What the extension adds, and the one step that turns it on.
  REQUIRE(result.next_steps.size() == 2);
  CHECK(result.next_steps[1].find("copilot --experimental") != std::string::npos);
  CHECK(Read(dir + "/meshwire-extension.mjs") == cli::CopilotExtensionSource());
  const std::string entry = Read(dir + "/extension.mjs");
  CHECK(entry.starts_with("//"));
  CHECK(entry.substr(0, entry.find('\n')).find("meshwire init --harness copilot") !=
        std::string::npos);
  CHECK(entry.find("import { joinSession } from \"@github/copilot-sdk/extension\";\n") !=
        std::string::npos);
  CHECK(entry.find("import { createCopilotExtension } from \"./meshwire-extension.mjs\";\n") !=
        std::string::npos);
  CHECK(entry.find("await createCopilotExtension({ joinSession });\n") != std::string::npos);
  CHECK(entry.find(kToken) == std::string::npos);
  RequireParsers();
  CHECK(Shell("node --check " + ShellQuote(dir + "/extension.mjs")) == 0);
  CheckAllUnchanged(f.Run("copilot"));
  CHECK(Backups(f.ctx.home_dir).empty());
}

TEST_CASE("no file is replaced until every one is written: init's own files included") {
  Fixture f;
  const std::string config = f.Home(".copilot/mcp-config.json");
  Write(config, "{}\n");
  Write(f.Home(".copilot/extensions"), "in the way\n");  // the extension's folder cannot be made
  const std::string mesh_json = f.Work(".mesh.json");
  f.ctx.also_write.push_back({mesh_json, "{\"mesh_id\": \"m\"}\n"});
  CHECK_THROWS_WITH_AS(f.Run("copilot"), doctest::Contains("Cannot create the folder"), HarnessError);
  CHECK(Read(config) == "{}\n");
  CHECK(Backups(f.ctx.home_dir).empty());
  CHECK_FALSE(fs::exists(mesh_json));
  std::vector<std::string> left;
  for (const auto& entry : fs::recursive_directory_iterator(f.tmp.path())) {
    if (entry.path().filename().string().find(".meshwire-") != std::string::npos) left.push_back(entry.path());
  }
  CHECK_MESSAGE(left.empty(), "temporary files left: " << left.size());

  fs::remove(f.Home(".copilot/extensions"));
  HarnessResult result = f.Run("copilot");
  CHECK(result.files.size() == 3);  // init's own files are not listed
  CHECK(Read(mesh_json) == "{\"mesh_id\": \"m\"}\n");
  CHECK(Read(config + ".bak") == "{}\n");
}

TEST_CASE("copilot follows COPILOT_HOME") {
  Fixture f;
  f.ctx.copilot_home = f.tmp / "copilot home";
  HarnessResult result = f.Run("copilot");
  CHECK(result.files[0].path == f.tmp / "copilot home/mcp-config.json");
  CHECK(result.files[2].path == f.tmp / "copilot home/extensions/meshwire/extension.mjs");
  CHECK(fs::exists(result.files[2].path));
  CHECK(!fs::exists(f.Home(".copilot")));
}

TEST_CASE("hermes follows HERMES_HOME, and codex follows CODEX_HOME") {
  Fixture f;
  f.ctx.hermes_home = f.tmp / "hermes home";
  f.ctx.codex_home = f.tmp / "codex home";
  HarnessResult hermes = f.Run("hermes");
  REQUIRE(hermes.files.size() == 5);
  CHECK(hermes.files[2].path == f.tmp / "hermes home/config.yaml");
  CHECK(hermes.files[3].path == f.tmp / "hermes home/skills/meshwire/SKILL.md");
  HarnessResult codex = f.Run("codex");
  REQUIRE(codex.files.size() == 1);
  CHECK(codex.files[0].path == f.tmp / "codex home/config.toml");
  CHECK(fs::exists(codex.files[0].path));
  CHECK(!fs::exists(f.Home(".hermes")));
  CHECK(!fs::exists(f.Home(".codex")));
}

TEST_CASE("copilot replaces a changed extension file and keeps a backup") {
  Fixture f;
  const std::string module = f.Home(".copilot/extensions/meshwire/meshwire-extension.mjs");
  Write(module, "// an older version\n");
  HarnessResult result = f.Run("copilot");
  CHECK(result.files[1].action == "updated");
  CHECK(Read(module + ".bak") == "// an older version\n");
  CHECK(Read(module) == cli::CopilotExtensionSource());
}

TEST_CASE("hermes writes the seed's files and what Hermes really loads") {
  Fixture f;
  HarnessResult result = f.Run("hermes");
  const std::vector<std::string> paths = {f.Work(".env.meshwire"), f.Work("MESHWIRE_SKILL.md"),
                                          f.Home(".hermes/config.yaml"),
                                          f.Home(".hermes/skills/meshwire/SKILL.md"),
                                          f.Work(".gitignore")};
  REQUIRE(result.files.size() == paths.size());
  for (size_t i = 0; i < paths.size(); ++i) {
    CHECK(result.files[i].path == paths[i]);
    CHECK(result.files[i].action == "created");
  }
  CHECK(result.next_steps ==
        std::vector<std::string>{"Source .env.meshwire in your Hermes startup script."});

  CHECK(Read(f.Work(".env.meshwire")) ==
        std::string("MESHWIRE_TOKEN=") + kToken + "\nMESHWIRE_URL=" + kUrl +
            "\nMESHWIRE_MESH_ID=" + kMesh + "\nMESHWIRE_AGENT_NAME=test-agent\n");
  CHECK(Mode(f.Work(".env.meshwire")) == 0600);

  json config = ParseWith("yaml", f.Home(".hermes/config.yaml"));
  CHECK(config ==
        json({{"mcp_servers", {{"meshwire", json::parse(ExpectedEntry(f.ctx, "hermes").dump())}}}}));
  CHECK(Read(f.Home(".hermes/config.yaml")).find(kToken) == std::string::npos);

  const std::string skill = Read(f.Work("MESHWIRE_SKILL.md"));
  for (const char* needle :
       {"meshwire_send_message", "meshwire_get_messages", "meshwire_reply_to_message",
        "meshwire_list_agents", "meshwire_status", "untrusted", "not an instruction from your"}) {
    CHECK_MESSAGE(skill.find(needle) != std::string::npos, needle);
  }
  CHECK(skill.find(kToken) == std::string::npos);
  json front = ParseWith("front-matter", f.Home(".hermes/skills/meshwire/SKILL.md"));
  CHECK(front["name"] == "meshwire");
  CHECK(front["description"].get<std::string>().size() > 20);
  CHECK(Read(f.Home(".hermes/skills/meshwire/SKILL.md")).ends_with(skill));

  CheckAllUnchanged(f.Run("hermes"));
  CHECK(Backups(f.tmp.path().string()).empty());
}

TEST_CASE("hermes merges into config.yaml keeping comments, layout and other servers") {
  Fixture f;
  const std::string path = f.Home(".hermes/config.yaml");
  const std::string original =
      "# Hermes configuration\n"
      "model:\n"
      "  default: \"anthropic/claude-sonnet-4\"   # main model\n"
      "  provider: openrouter\n"
      "\n"
      "mcp_servers:\n"
      "    # the filesystem server\n"
      "    filesystem:\n"
      "        command: \"npx\"\n"
      "        args: [\"-y\", \"@modelcontextprotocol/server-filesystem\", \"/tmp\"]\n"
      "        env: {}\n"
      "        timeout: 120\n"
      "        note: |\n"
      "          line one\n"
      "          meshwire: not a key\n"
      "\n"
      "# terminal settings\n"
      "terminal:\n"
      "  backend: local\n"
      "  cwd: \".\"\n"
      "  numbers: [1, 2.5, 010, yes, \"yes\", ~]\n";
  Write(path, original);
  HarnessResult result = f.Run("hermes");
  CHECK(result.files[2].action == "updated");
  CHECK(Read(path + ".bak") == original);
  CHECK(result.next_steps.size() == 1);  // no note: nothing was lost
  const std::string text = Read(path);
  CHECK(KeepsLinesInOrder(text, original));
  CHECK(text.find("    meshwire:\n") < text.find("# terminal settings"));
  json expected = ParseWith("yaml", path + ".bak");
  expected["mcp_servers"]["meshwire"] = json::parse(ExpectedEntry(f.ctx, "hermes").dump());
  CHECK(ParseWith("yaml", path) == expected);
  CheckAllUnchanged(f.Run("hermes"));
  CHECK(Read(path + ".bak") == original);
}

TEST_CASE("hermes replaces its own entry in place and keeps its extra keys") {
  Fixture f;
  const std::string path = f.Home(".hermes/config.yaml");
  const std::string before = "mcp_servers:\n  first:\n    command: a\n";
  const std::string old_entry =
      "  meshwire:\n"
      "    command: old\n"
      "    args:\n"
      "      - mcp\n"
      "      - --mesh\n"
      "      - oldMesh\n"
      "    env:\n"
      "      MESHWIRE_URL: http://old\n"
      "      EXTRA: kept\n"
      "    timeout: 300\n";
  const std::string after = "  # the last one\n  last:\n    url: http://x\nother: 1\n";
  Write(path, before + old_entry + after);
  f.Run("hermes");
  const std::string text = Read(path);
  CHECK(text.starts_with(before + "  meshwire:\n"));
  CHECK(text.ends_with(after));
  CHECK(text.find("oldMesh") == std::string::npos);
  json entry = ParseWith("yaml", path)["mcp_servers"]["meshwire"];
  CHECK(entry["args"] == json({"mcp", "--default-mesh", kMesh, "--default-name", "test-agent"}));
  CHECK(entry["timeout"] == 300);
  CHECK(entry["env"] == json({{"MESHWIRE_URL", kUrl}, {"EXTRA", "kept"}}));
  CheckAllUnchanged(f.Run("hermes"));
}

TEST_CASE("hermes with a flow-style mcp_servers falls back to emitting the document") {
  Fixture f;
  const std::string path = f.Home(".hermes/config.yaml");
  Write(path, "mcp_servers: {other: {command: x, args: ['1', 2]}}\nname: \"007\"\nempty:\n");
  HarnessResult result = f.Run("hermes");
  REQUIRE(result.next_steps.size() == 2);
  CHECK(result.next_steps[0].find("comments") != std::string::npos);
  json parsed = ParseWith("yaml", path);
  CHECK(parsed["mcp_servers"]["other"] == json({{"command", "x"}, {"args", {"1", 2}}}));
  CHECK(parsed["name"] == "007");  // still a string
  CHECK(parsed["empty"].is_null());
  CHECK(parsed["mcp_servers"]["meshwire"] == json::parse(ExpectedEntry(f.ctx, "hermes").dump()));
  CheckAllUnchanged(f.Run("hermes"));
}

TEST_CASE("hermes appends to a config.yaml that holds only comments") {
  Fixture f;
  const std::string path = f.Home(".hermes/config.yaml");
  const std::string original = "# nothing configured yet\n# model: x";
  Write(path, original);
  f.Run("hermes");
  CHECK(Read(path).starts_with(original + "\nmcp_servers:\n  meshwire:\n"));
  CHECK(ParseWith("yaml", path) ==
        json({{"mcp_servers", {{"meshwire", json::parse(ExpectedEntry(f.ctx, "hermes").dump())}}}}));
  CheckAllUnchanged(f.Run("hermes"));
}

TEST_CASE("hermes refuses an invalid config.yaml and writes nothing at all") {
  for (const std::string& content :
       {std::string("model: [unclosed\n"), std::string("- a\n- b\n"), std::string("just text\n"),
        std::string("mcp_servers: none\n"), std::string("a: 1\n---\nb: 2\n")}) {
    CAPTURE(content);
    Fixture f;
    const std::string path = f.Home(".hermes/config.yaml");
    Write(path, content);
    try {
      f.Run("hermes");
      FAIL("no error");
    } catch (const HarnessError& e) {
      CHECK(std::string(e.what()).find(path) != std::string::npos);
    }
    CHECK(Read(path) == content);
    CHECK(!fs::exists(f.Work(".env.meshwire")));  // planned first, never written
    CHECK(fs::is_empty(f.ctx.workspace_dir));
    CHECK(Backups(f.tmp.path().string()).empty());
  }
}

TEST_CASE("CRLF files keep their line ends") {
  Fixture f;
  const std::string yaml_path = f.Home(".hermes/config.yaml");
  const std::string toml_path = f.Home(".codex/config.toml");
  Write(yaml_path, "# c\r\nmodel: x\r\nmcp_servers:\r\n  a:\r\n    command: y\r\n");
  Write(toml_path, "# c\r\nmodel = \"x\"\r\n");
  f.Run("hermes");
  f.Run("codex");
  for (const std::string& path : {yaml_path, toml_path}) {
    CAPTURE(path);
    const std::string text = Read(path);
    size_t lf = 0;
    size_t crlf = 0;
    for (size_t i = 0; i < text.size(); ++i) {
      if (text[i] == '\n') {
        ++lf;
        if (i > 0 && text[i - 1] == '\r') ++crlf;
      }
    }
    CHECK(lf == crlf);
  }
  CHECK(ParseWith("yaml", yaml_path)["mcp_servers"]["a"]["command"] == "y");
  CHECK(ParseWith("toml", toml_path)["mcp_servers"].contains("meshwire"));
  CheckAllUnchanged(f.Run("hermes"));
  CheckAllUnchanged(f.Run("codex"));
}

TEST_CASE(".env.meshwire keeps other variables and its private mode") {
  Fixture f;
  const std::string path = f.Work(".env.meshwire");
  const std::string original =
      "# mine\nOTHER=1\nMESHWIRE_TOKEN=mw_old\nexport MESHWIRE_URL=http://old\n";
  Write(path, original);
  ::chmod(path.c_str(), 0644);
  HarnessResult result = f.Run("pi");
  CHECK(result.files[2].path == path);
  CHECK(result.files[2].action == "updated");
  CHECK(Read(path) == std::string("# mine\nOTHER=1\nMESHWIRE_TOKEN=") + kToken +
                          "\nexport MESHWIRE_URL=" + kUrl + "\nMESHWIRE_MESH_ID=" + kMesh +
                          "\nMESHWIRE_AGENT_NAME=test-agent\n");
  CHECK(Mode(path) == 0600);
  CHECK(Read(path + ".bak") == original);
  CHECK(Mode(path + ".bak") == 0600);  // it holds the old token
  CheckAllUnchanged(f.Run("pi"));

  // Same content but a loose mode: only the mode is fixed, no backup.
  fs::remove(path + ".bak");
  ::chmod(path.c_str(), 0644);
  result = f.Run("pi");
  CHECK(result.files[2].action == "updated");
  CHECK(result.files[2].backup.empty());
  CHECK(Mode(path) == 0600);
  CHECK(!fs::exists(path + ".bak"));
}

TEST_CASE("pi writes the extension, the skill and .env.meshwire in the workspace") {
  Fixture f;
  HarnessResult result = f.Run("pi");
  const std::vector<std::string> paths = {f.Work(".pi/extensions/meshwire.ts"),
                                          f.Work(".pi/skills/meshwire/SKILL.md"),
                                          f.Work(".env.meshwire"), f.Work(".gitignore")};
  REQUIRE(result.files.size() == paths.size());
  for (size_t i = 0; i < paths.size(); ++i) {
    CHECK(result.files[i].path == paths[i]);
    CHECK(result.files[i].action == "created");
  }
  CHECK(result.next_steps.size() == 1);
  CHECK(Read(paths[0]) == cli::PiExtensionSource());
  json front = ParseWith("front-matter", paths[1]);
  CHECK(front["name"] == "meshwire");
  CHECK(front["description"].is_string());
  CHECK(Read(paths[1]).find("meshwire_reply_to_message") != std::string::npos);
  CHECK(Mode(paths[2]) == 0600);
  CHECK(Read(paths[2]).find(std::string("MESHWIRE_TOKEN=") + kToken + "\n") != std::string::npos);
  // A workspace without a .gitignore gets one, so `git add -A` leaves the token out.
  CHECK(Read(paths[3]) ==
        "# MeshWire: these files hold the relay token\n.env.meshwire\n.env.meshwire.bak\n");
  CheckAllUnchanged(f.Run("pi"));
  CHECK(Backups(f.tmp.path().string()).empty());
}

TEST_CASE("the token file keeps one backup, the previous token's: earlier tokens do not pile up") {
  Fixture f;
  f.Run("pi");
  const std::string env = f.Work(".env.meshwire");
  f.ctx.token = "mw_second";
  CHECK(f.Run("pi").files[2].backup == env + ".bak");
  f.ctx.token = "mw_third";
  CHECK(f.Run("pi").files[2].backup == env + ".bak");
  CHECK(Read(env + ".bak").find("MESHWIRE_TOKEN=mw_second\n") != std::string::npos);
  CHECK(Mode(env + ".bak") == 0600);
  CHECK_FALSE(fs::exists(env + ".bak.1"));
}

TEST_CASE("extension and skill harnesses leave the files next to theirs alone") {
  Fixture f;
  const std::vector<std::pair<std::string, std::string>> neighbours = {
      {f.Home(".copilot/extensions/other/extension.mjs"), "// another extension\n"},
      {f.Home(".copilot/config.json"), "{\"theme\": \"dark\"}\n"},
      {f.Home(".hermes/skills/other/SKILL.md"), "---\nname: other\n---\n"},
      {f.Home(".hermes/.env"), "OPENROUTER_API_KEY=secret\n"},
      {f.Work(".pi/extensions/other.ts"), "export default function () {}\n"},
      {f.Work(".pi/skills/other/SKILL.md"), "---\nname: other\n---\n"},
      {f.Work(".env"), "APP=1\n"},
  };
  for (const auto& [path, content] : neighbours) Write(path, content);
  for (const std::string harness : {"copilot", "hermes", "pi"}) f.Run(harness);
  for (const auto& [path, content] : neighbours) {
    CAPTURE(path);
    CHECK(Read(path) == content);
  }
  CHECK(Backups(f.tmp.path().string()).empty());
}

TEST_CASE("hermes and pi keep the token file out of git when there is a .gitignore") {
  for (const std::string harness : {"hermes", "pi"}) {
    CAPTURE(harness);
    Fixture f;
    const std::string path = f.Work(".gitignore");
    Write(path, "node_modules/\n/.env.meshwire");  // no final newline
    HarnessResult result = f.Run(harness);
    REQUIRE(result.files.back().path == path);
    CHECK(result.files.back().action == "updated");
    // Only appended to: no .gitignore.bak (it would show in git status).
    CHECK(result.files.back().backup.empty());
    CHECK_FALSE(fs::exists(path + ".bak"));
    const std::string text = Read(path);
    CHECK(text.starts_with("node_modules/\n/.env.meshwire\n"));
    CHECK(text.ends_with("\n.env.meshwire.bak\n"));
    CHECK(text.find("\n.env.meshwire\n") == std::string::npos);  // "/.env.meshwire" counts
    CheckAllUnchanged(f.Run(harness));
    RequireParsers();
    if (Shell("command -v git >/dev/null") == 0) {
      CHECK(
          Shell(
              "cd " + ShellQuote(f.ctx.workspace_dir) +
              " && git init -q . && git check-ignore .env.meshwire .env.meshwire.bak >/dev/null") ==
          0);
      // git status shows the new files, no backup among them.
      CHECK(Shell("cd " + ShellQuote(f.ctx.workspace_dir) +
                  " && git status --porcelain --untracked-files=all | grep -q '[.]bak'") != 0);
    }
  }
}

TEST_CASE("hermes and pi in a fresh git repository without a .gitignore: git add -A leaves the token out") {
  RequireParsers();
  if (Shell("command -v git >/dev/null") != 0) return;  // the check needs git itself
  for (const std::string harness : {"hermes", "pi"}) {
    CAPTURE(harness);
    Fixture f;
    const std::string cd = "cd " + ShellQuote(f.ctx.workspace_dir) + " && ";
    REQUIRE(Shell(cd + "git init -q .") == 0);
    f.Run(harness);
    CHECK(Read(f.Work(".env.meshwire")).find(kToken) != std::string::npos);
    REQUIRE(Shell(cd + "git add -A") == 0);
    CHECK(Shell(cd + "git ls-files --cached | grep -q '^.gitignore$'") == 0);
    CHECK(Shell(cd + "git ls-files --cached | grep -q 'env.meshwire'") != 0);
  }
}

TEST_CASE("--remote writes each client's URL form, the token as a variable it expands, never the token") {
  struct RemoteCase {
    const char* harness;
    const char* file;  // in the home folder, or the workspace for claude-code and vscode
    bool in_workspace;
    const char* container;
    json entry;
  };
  const std::string url = std::string(kUrl) + "/mesh/" + kMesh + "/mcp?agent=test-agent";
  const RemoteCase cases[] = {
      {"claude-code", ".mcp.json", true, "mcpServers",
       {{"type", "http"}, {"url", url}, {"headers", {{"Authorization", "Bearer ${MESHWIRE_TOKEN}"}}}}},
      {"vscode", ".vscode/mcp.json", true, "servers",
       {{"type", "http"}, {"url", url}, {"headers", {{"Authorization", "Bearer ${env:MESHWIRE_TOKEN}"}}}}},
      {"cursor", ".cursor/mcp.json", false, "mcpServers",
       {{"url", url}, {"headers", {{"Authorization", "Bearer ${env:MESHWIRE_TOKEN}"}}}}},
      {"windsurf", ".codeium/windsurf/mcp_config.json", false, "mcpServers",
       {{"serverUrl", url}, {"headers", {{"Authorization", "Bearer ${env:MESHWIRE_TOKEN}"}}}}},
      {"gemini", ".gemini/settings.json", false, "mcpServers",
       {{"httpUrl", url}, {"headers", {{"Authorization", "Bearer $MESHWIRE_TOKEN"}}}}},
  };
  for (const RemoteCase& c : cases) {
    CAPTURE(c.harness);
    Fixture f;
    const std::string path = c.in_workspace ? f.Work(c.file) : f.Home(c.file);
    // A stdio entry first: the remote one replaces its command, args and env.
    f.Run(c.harness);
    f.ctx.remote = true;
    HarnessResult result = f.Run(c.harness);
    CHECK(result.next_steps.back().find("MESHWIRE_TOKEN") != std::string::npos);
    CHECK(ParseWith("json", path)[c.container]["meshwire"] == c.entry);
    CHECK(Read(path).find(kToken) == std::string::npos);
    CheckAllUnchanged(f.Run(c.harness));
    // And back: a stdio init drops the URL form.
    f.ctx.remote = false;
    f.Run(c.harness);
    CHECK(!ParseWith("json", path)[c.container]["meshwire"].contains("headers"));
    CHECK(ParseWith("json", path)[c.container]["meshwire"].contains("command"));
  }
}

TEST_CASE("--remote for codex: url and bearer_token_env_var; harnesses without a URL form refuse it") {
  Fixture f;
  f.Run("codex");
  f.ctx.remote = true;
  f.Run("codex");
  CHECK(Read(f.Home(".codex/config.toml")) ==
        "[mcp_servers.meshwire]\n"
        "url = \"" + std::string(kUrl) + "/mesh/" + kMesh + "/mcp?agent=test-agent\"\n"
        "bearer_token_env_var = \"MESHWIRE_TOKEN\"\n");
  for (const char* harness : {"claude", "copilot", "hermes", "pi"}) {
    CAPTURE(harness);
    CHECK_THROWS_WITH_AS(f.Run(harness), doctest::Contains("--remote"), HarnessError);
  }
}

}  // namespace meshwire::testing
