#include "cli/context.h"

#include <cstdio>
#include <filesystem>
#include <regex>
#include <vector>

#include "cli/commands.h"
#include "schemas/ids.h"

namespace meshwire::cli {

Error ConfigError(const std::string& message) { return Error(2, "config", message); }

CLI::Validator NotEmpty(const std::string& give) {
  return CLI::Validator(
      [give](std::string& value) {
        return value.empty() ? "is empty (an unset shell variable?): " + give : std::string();
      },
      "", "NotEmpty");
}

void CommandContext::AddFlags(CLI::App& app, bool with_mesh, bool with_agent, bool with_json) {
  app.add_option("--url", url_, "the relay's URL (default: MESHWIRE_URL, credentials, " +
                                    std::string(kDefaultUrl) + ")")
      ->check(NotEmpty("give the relay's URL, or leave --url out"));
  app.add_option("--token", token_, "API token (default: MESHWIRE_TOKEN, ~/.meshwire/credentials.json)")
      ->check(NotEmpty("give the token (mw_...), or leave --token out"));
  if (with_mesh) {
    app.add_option("--mesh", mesh_, "mesh id (default: MESHWIRE_MESH_ID, .mesh.json, `mesh use`)")
        ->check(NotEmpty("give the mesh id, or leave --mesh out"));
  }
  if (with_agent) {
    app.add_option("--name", name_, "this agent's name (default: MESHWIRE_AGENT_NAME, .mesh.json)")
        ->check(NotEmpty("give the agent's name, or leave --name out"));
  }
  if (with_json) app.add_flag("--json", json_, "print JSON for scripts");
}

const ClientConfig& CommandContext::config() {
  if (!resolved_) {
    if (!url_.empty()) flags_.url = url_;
    if (!token_.empty()) flags_.token = token_;
    if (!mesh_.empty()) flags_.mesh_id = mesh_;
    if (!name_.empty()) flags_.agent_name = name_;
    config_ = ResolveConfig(flags_, ProcessEnv(), std::filesystem::current_path());
    resolved_ = true;
    const std::string& from = config_.mesh_id.source;
    // `init --mesh ID` rewrites .mesh.json only where it records a platform.
    SetMeshHint(from == ".mesh.json"
                    ? "That mesh id comes from " + Tilde(config_.mesh_json->string()) + ": `meshwire init " +
                          (config_.harness.empty() ? "--harness H " : "") + "--mesh ID` writes this workspace's again."
                : from == "env"
                    ? "That mesh id comes from MESHWIRE_MESH_ID: unset it or set it to one of yours."
                : from == "config.json" ? "That mesh id is your active mesh: `meshwire mesh use ID` chooses another."
                : from == "default flag"
                    ? "That mesh id is this server's --default-mesh: change it in your MCP client's entry."
                    : "");
  }
  return config_;
}

const std::string& CommandContext::RequireToken() {
  const ClientConfig& c = config();
  if (c.token.empty() && !c.credentials_unreadable.empty()) {
    const std::string path = (c.home / "credentials.json").string();
    if (c.credentials_unreadable == kNotJsonObject) {
      throw ConfigError(path + " is not a JSON object (login writes it, with your token and relay URL): move it "
                               "aside and run `meshwire login`.");
    }
    throw ConfigError(path + " exists but cannot be read (" + c.credentials_unreadable +
                      "): as its owner, make it a readable file (chmod 600 " + path +
                      "), or move it aside and run `meshwire login`.");
  }
  if (c.token.empty()) {
    throw ConfigError(
        "No credentials found: run `meshwire login` (or set MESHWIRE_TOKEN; on the relay's host "
        "`meshwire admin token create --user NAME` prints one).");
  }
  if (std::string problem = TokenFormatProblem(); !problem.empty()) throw ConfigError(problem);
  return c.token.value;
}

std::string CommandContext::TokenFormatProblem() {
  const ClientConfig& c = config();
  for (unsigned char ch : c.token.value) {
    if (ch <= ' ' || ch == 0x7f) {  // no HTTP header can carry it
      const std::string& from = c.token.source;
      return "The token from " +
             (from == "env"    ? std::string("MESHWIRE_TOKEN")
              : from == "flag" ? "--token"
                               : from) +
             " holds spaces or line breaks: set it to the token alone (mw_...).";
    }
  }
  return "";
}

std::string CommandContext::MeshJsonProblem(const Setting& setting) {
  const ClientConfig& c = config();
  if (tolerate_mesh_json_ || c.mesh_json_problem.empty() || setting.source == "flag" || setting.source == "env") {
    return "";
  }
  return c.mesh_json_problem + ", so this workspace's mesh and agent are unknown: fix it (or remove it and run " +
         "`meshwire init --harness H --mesh ID` here again), or pass --mesh ID and --name NAME.";
}

const std::string& CommandContext::RequireMesh() {
  const ClientConfig& c = config();
  if (std::string problem = MeshJsonProblem(c.mesh_id); !problem.empty()) throw ConfigError(problem);
  if (c.mesh_id.empty()) {
    RequireToken();  // without credentials, that is the first thing to fix
    throw ConfigError(
        "No mesh chosen: run `meshwire mesh list` and `meshwire mesh use ID` (or `meshwire mesh "
        "create NAME`), pass --mesh ID, or set MESHWIRE_MESH_ID.");
  }
  return c.mesh_id.value;
}

const std::string& CommandContext::User() {
  if (user_.empty()) user_ = config().user.empty() || config().token.source != "credentials.json"
                                 ? Client().Me().first
                                 : config().user;
  return user_;
}

std::string CommandContext::AgentName(const std::string& fallback) {
  const ClientConfig& c = config();
  return c.agent_name.empty() ? OwnAgentName(c, fallback) : c.agent_name.value;
}

RelayClient& CommandContext::Client(RetryPolicy retry, bool anonymous) {
  if (!client_) {
    std::string token = anonymous ? config().token.value : RequireToken();
    client_ = std::make_unique<RelayClient>(config().url.value, token, std::move(retry));
  }
  return *client_;
}

std::string CommandContext::InvalidAgentName(const std::string& name, const std::string& example) {
  if (std::string problem = MeshJsonProblem(config().agent_name);
      !problem.empty() && !config().mesh_json_names_no_mesh) {
    return problem;
  }
  const bool reserved = IsReservedAgentName(name);
  if (IsValidName(name) && !reserved) return "";
  const std::string& from = config().agent_name.source;
  return "The agent name \"" + ShownName(name) + "\" (from " +
         (from == "flag"  ? "--name"
          : from == "env" ? "MESHWIRE_AGENT_NAME"
          : from.empty()  ? "config.json's agent_names"  // AgentName's fallback, renamed there
                          : from) +
         (reserved ? ") is reserved (\"all\" means every agent; \".\" and \"..\" are path segments): use "
                     "another, e.g. --name "
                   : ") is not valid: use 1-64 letters, digits, '.', '_' or '-', e.g. --name ") +
         example + ".";
}

std::string CommandContext::EnsureAgent(const std::string& harness) {
  std::string name = AgentName();
  if (std::string problem = InvalidAgentName(name); !problem.empty()) throw ConfigError(problem);
  try {
    return Client().RegisterAgent(RequireMesh(), name, harness).first;
  } catch (const Error& e) {
    if (e.status() == 409) {
      const bool shared = config().agent_name.source == ".mesh.json";
      throw Error(409, "conflict",
                  std::string(e.what()) +
                      (shared ? " This workspace's .mesh.json names a teammate's agent: run `meshwire init` here "
                                "once to get a name of your own, or pass --name NAME."
                              : " Set your own with --name NAME or MESHWIRE_AGENT_NAME."));
    }
    // A name the relay reserves ("all", ".", "..", another agent's id): a
    // setting to change, as a name with a bad character is (exit 2).
    if (e.status() == 400 && e.code() == "invalid_field") {
      throw ConfigError(std::string(e.what()) + " Set another with --name NAME or MESHWIRE_AGENT_NAME.");
    }
    throw;
  }
}

namespace {

/// The deepest subcommand given (`meshwire admin token`: token), or `app`.
const CLI::App* DeepestParsed(const CLI::App& app) {
  const CLI::App* at = &app;
  for (bool deeper = true; deeper;) {
    deeper = false;
    for (const CLI::App* sub : at->get_subcommands({})) {
      if (sub->parsed()) {
        at = sub;
        deeper = true;
        break;
      }
    }
  }
  return at;
}

/// The names of the subcommands from `app` down to `at`, in order.
std::vector<std::string> SubcommandChain(const CLI::App& app, const CLI::App* at) {
  std::vector<std::string> chain;
  for (const CLI::App* a = at; a != &app; a = a->get_parent()) chain.insert(chain.begin(), a->get_name());
  return chain;
}

/// Option `name` where it is defined: `at`, a parent, or a subcommand below
/// (`mesh --mesh ID frob`: the --mesh of `mesh members`); nullptr if none.
const CLI::Option* FindOption(const CLI::App* at, const std::string& name) {
  for (const CLI::App* a = at; a != nullptr; a = a->get_parent()) {
    if (const CLI::Option* opt = a->get_option_no_throw(name)) return opt;
  }
  std::vector<const CLI::App*> below = at->get_subcommands({});
  while (!below.empty()) {
    const CLI::App* a = below.back();
    below.pop_back();
    if (const CLI::Option* opt = a->get_option_no_throw(name)) return opt;
    for (const CLI::App* sub : a->get_subcommands({})) below.push_back(sub);
  }
  return nullptr;
}

/// The first word after the subcommands given that is neither an option nor
/// an option's value: a mistyped subcommand (`mesh creat NAME`: creat).
std::string StrayWord(const CLI::App& app, const CLI::App* at, int argc, char** argv) {
  const std::vector<std::string> chain = SubcommandChain(app, at);
  std::size_t consumed = 0;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--") break;
    if (arg.size() > 1 && arg[0] == '-') {
      const CLI::Option* opt = FindOption(at, arg);
      if (opt != nullptr && opt->get_expected_min() > 0) ++i;  // its value
    } else if (consumed < chain.size() && arg == chain[consumed]) {
      ++consumed;
    } else {
      return arg;
    }
  }
  return "";
}

}  // namespace

bool Parse(CLI::App& app, int argc, char** argv, int& exit_code) {
  try {
    app.parse(argc, argv);
    return true;
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) {  // --help, --version: CLI11 prints them
      exit_code = app.exit(e) == 0 ? kExitOk : kExitUsage;
      return false;
    }
    // A wrong argument: one sentence, like every other error, in the
    // command's words rather than CLI11's.
    std::string what = e.what();
    const CLI::App* at = DeepestParsed(app);  // the subcommand the error is about (`admin token`)
    std::string at_name = app.get_name();
    for (const std::string& name : SubcommandChain(app, at)) at_name += " " + name;
    std::string subcommands;  // what `at` offers, "" when none
    for (const CLI::App* sub : at->get_subcommands({})) subcommands += (subcommands.empty() ? "" : ", ") + sub->get_name();
    const std::string stray = StrayWord(app, at, argc, argv);
    const std::string no_such = at_name + " has no subcommand \"" + stray + "\"; it has " + subcommands + ".";
    if (dynamic_cast<const CLI::ExtrasError*>(&e) != nullptr) {
      std::string extras;
      for (const std::string& arg : app.remaining(/*recurse=*/true)) extras += (extras.empty() ? "" : " ") + arg;
      if (!extras.empty()) what = at_name + " does not take \"" + extras + "\".";
      if (!subcommands.empty() && !stray.empty() && extras.rfind(stray, 0) == 0) {
        what = no_such;
      }
      if (!extras.empty() && app.get_name() == "meshwire send" && extras.front() != '-') {
        what += " Quote a message of several words: meshwire send \"hello there\".";
      }
    }
    if (dynamic_cast<const CLI::ArgumentMismatch*>(&e) != nullptr &&
        what.find(": At Most 1 required but received ") != std::string::npos) {
      what = what.substr(0, what.find(':')) + " was given more than once; give it once.";  // `--to a --to b`
    }
    if (dynamic_cast<const CLI::RequiredError*>(&e) != nullptr && app.get_name() == "meshwire send") {
      // `send "-x"`: CLI11 took the message for an option.
      for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        // Not "--word": that is a mistyped option more likely than a message
        // (but "--word and more" is a message: no option holds a space).
        const bool message_like = arg.size() > 1 && (arg[1] != '-' || arg.find(' ') != std::string::npos);
        if (arg[0] == '-' && message_like &&
            !app.get_option_no_throw(arg.substr(0, arg.find('=')))) {
          // The rest of the command kept (`--to bob`: without it the hint
          // would broadcast), but never a token, and each word quoted for a shell.
          auto quoted = [](const std::string& word) {
            const bool plain = !word.empty() && word.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                                                       "0123456789-_.,:/=@%+") == std::string::npos;
            return plain ? word : ShellQuoted(word);
          };
          std::string others;
          for (int j = 1; j < argc; ++j) {
            const std::string other = argv[j];
            if (j == i) continue;
            if (other == "--token") {
              ++j;  // and its value
              continue;
            }
            if (other.rfind("--token=", 0) == 0) continue;
            others += quoted(other) + " ";
          }
          what += " (a message that starts with '-' goes after --: meshwire send " + others + "-- " + quoted(arg) + ")";
          break;
        }
      }
    }
    if (dynamic_cast<const CLI::RequiredError*>(&e) != nullptr && !subcommands.empty() &&
        what.find("subcommand") != std::string::npos) {
      what = stray.empty() ? at_name + " needs a subcommand: " + subcommands + "." : no_such;
    }
    static const std::regex kEmpty(R"(^(\S+): is empty)");  // NotEmpty's: "--mesh is empty ..."
    what = std::regex_replace(what, kEmpty, "$1 is empty");
    static const std::regex kMissing(R"(^(-\S+): \d+ required \S+ missing)");  // `send hi --to`
    what = std::regex_replace(what, kMissing, "$1 needs a value: give it right after $1");
    static const std::regex kRange(R"(Value (.*) not in range (\S+) to (\S+))");
    what = std::regex_replace(what, kRange, "must be a whole number from $2 to $3 (got \"$1\")");
    while (!what.empty() && (what.back() == '\n' || what.back() == ' ')) what.pop_back();
    if (!what.empty() && what.back() != '.') what += '.';
    std::fprintf(stderr, "meshwire: %s Run `%s --help` for the options.\n", what.c_str(), at_name.c_str());
    exit_code = kExitUsage;
    return false;
  }
}

}  // namespace meshwire::cli
