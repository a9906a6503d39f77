// `meshwire login`, `logout`, `whoami`.
#include <fcntl.h>
#include <httplib.h>
#include <spawn.h>
#include <sys/wait.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <optional>
#include <nlohmann/json.hpp>
#include <thread>
#include <tuple>

#include "cli/commands.h"
#include "cli/context.h"
#include "schemas/html.h"
#include "schemas/ids.h"

extern char** environ;

namespace meshwire::cli {

namespace {

/// Starts the first of xdg-open, open and start that exists, without waiting
/// for it: on a headless machine xdg-open may run a text browser that holds
/// on until it is closed, and the sign-in must not wait on that (the URL is
/// printed before). False when none could be started.
bool OpenBrowser(const std::string& url) {
  for (const char* opener : {"xdg-open", "open", "start"}) {
    pid_t pid = 0;
    const char* argv[] = {opener, url.c_str(), nullptr};
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
    int rc = posix_spawnp(&pid, opener, &actions, nullptr, const_cast<char**>(argv), environ);
    posix_spawn_file_actions_destroy(&actions);
    if (rc != 0) continue;
    std::thread([pid] { waitpid(pid, nullptr, 0); }).detach();  // reaped whenever it ends
    return true;
  }
  return false;
}

/// The callback's answer to the browser: a page titled `title` (text)
/// saying `html`, allowed nothing but its inline style and icon.
void AnswerPage(httplib::Response& res, int status, const std::string& title, const std::string& html) {
  res.status = status;
  res.set_header("Cache-Control", "no-store");
  res.set_header("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src data:");
  res.set_header("X-Content-Type-Options", "nosniff");
  res.set_content("<!doctype html><meta charset=utf-8><title>" + HtmlEscape(title) + " · meshwire</title>" +
                      std::string(kIconLink) +
                      "<body style=\"font:16px system-ui;background:#0f1117;color:#e6e6e6;display:grid;"
                      "place-items:center;height:100vh\"><div><h1>" + HtmlEscape(title) + "</h1><p>" + html +
                      "</p></div>",
                  "text/html; charset=utf-8");
}

/// Revokes the token of the sign-in this login replaced on the same relay,
/// when a login made it: once replaced, nobody holds it.
void RevokeReplacedSignIn(const std::optional<ClientConfig::SavedLogin>& previous, const std::string& relay,
                          const std::string& token) {
  if (!previous || previous->token == token || previous->url != relay) return;
  try {
    RelayClient old(relay, previous->token);
    const std::string id = old.Me().second;
    for (const Token& t : old.ListTokens()) {
      if (t.id != id || t.name != "meshwire login") continue;
      old.RevokeToken(id);
      std::printf("The token of your previous sign-in to this relay (%s) is revoked.\n", id.c_str());
    }
  } catch (const Error&) {
    // Revoked already, or the relay is away: `meshwire token list` shows what is left.
  }
}

}  // namespace

int RunLogin(int argc, char** argv) {
  CLI::App app{"Sign in through the relay's browser page and save credentials (0600) to "
               "~/.meshwire/credentials.json.",
               "meshwire login"};
  CommandContext ctx;
  std::string url;
  bool no_browser = false;
  int timeout_s = 300;
  app.add_option("--url", url, "the relay to sign in to (default: MESHWIRE_URL, saved, " +
                                   std::string(kDefaultUrl) + ")")
      ->check(NotEmpty("give the relay's URL, or leave --url out"));
  app.add_flag("--no-browser", no_browser, "only print the URL to open");
  app.add_option("--timeout", timeout_s, "seconds to wait for the browser")->check(CLI::Range(5, 3600))->capture_default_str();
  int rc = 0;
  if (!Parse(app, argc, argv, rc)) return rc;
  if (!url.empty()) ctx.flags().url = url;
  const Ui& ui = ctx.ui();
  try {
    const ClientConfig& config = ctx.config();
    std::string relay = config.url.value;
    RelayClient anonymous(relay, "");
    HealthAnswer health = anonymous.Health();
    // The relay's sign-in mode decides the flow; a token-only relay has no page.
    if (health.auth == "token") {
      throw ConfigError("The relay at " + relay + " signs in with tokens only: ask its administrator "
                        "for one (`meshwire admin token create --user NAME` on the relay's host), then "
                        "run `meshwire init --token <token> --url " + relay + "` or set MESHWIRE_TOKEN.");
    }
    // Exchanges the one-time code for the token: {token, user}, or Error.
    // Through the relay client: HTTPS and MESHWIRE_CA_FILE, a path prefix of
    // the relay's URL, and its bounds on an answer's size and depth.
    auto redeem = [&relay](const std::string& code) {
      try {
        return RelayClient(relay, "").RedeemSignInCode(code);
      } catch (const Error& e) {
        const std::string why = e.what();
        // The relay said no (a used or expired code): that is the sign-in failing.
        if (e.status() >= 400 && e.status() < 500 && e.code() != "https_required") {
          throw Error(e.status(), "login_failed", "The relay refused the sign-in" + (why.empty() ? "." : ": " + why));
        }
        throw Error(e.status(), e.code(), why + " (finishing the sign-in)");  // unreachable, not a relay, ...
      }
    };

    // The browser comes back here with the code; the code is redeemed and
    // the credentials saved before the page answers, so the page says what
    // the terminal will.
    httplib::Server callback;
    std::mutex mu;
    std::condition_variable cv;
    bool done = false;
    std::string token, user;
    std::filesystem::path saved;
    std::optional<Error> failure;
    const std::string state = RandomBase62(32);
    callback.Get("/callback", [&](const httplib::Request& req, httplib::Response& res) {
      std::lock_guard lock(mu);
      if (done) {
        AnswerPage(res, 400, "Already done", "This sign-in is finished; return to your terminal.");
        return;
      }
      if (req.get_param_value("state") != state) {
        AnswerPage(res, 400, "Sign-in refused",
                   "This answer does not belong to this login; run <code>meshwire login</code> again.");
        return;
      }
      try {
        const std::string code = req.get_param_value("code");
        if (code.empty()) {
          throw Error(400, "login_failed", "The browser came back without a sign-in code; run `meshwire login` again.");
        }
        // The relay's codes are short and plain; anything else never came from it.
        if (code.size() > 256 || code.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                                        "0123456789-_.~") != std::string::npos) {
          throw Error(400, "login_failed", "The browser came back with a sign-in code the relay never gives; run "
                                           "`meshwire login` again.");
        }
        std::tie(token, user) = redeem(code);
        try {
          saved = SaveCredentials(config.home, token, relay, user, /*from_login=*/true);
        } catch (const std::exception& e) {
          // Not saved: the new token would be valid and held by nobody.
          try {
            RelayClient signed_in(relay, token);
            signed_in.RevokeToken(signed_in.Me().second);
          } catch (const std::exception&) {
            // the relay keeps it; `meshwire token list` shows it
          }
          const Error* error = dynamic_cast<const Error*>(&e);
          throw Error(2, "config", std::string(error ? error->what() : e.what()) +
                                       (error ? "" : " (saving the credentials)"));
        }
        AnswerPage(res, 200, "✓ Signed in", "You can close this tab and return to your terminal.");
      } catch (const Error& e) {
        failure = e;
        const std::string what = e.what();
        AnswerPage(res, 400, "✗ Sign-in failed",
                   HtmlEscape(what) +
                       (what.find("meshwire login") == std::string::npos ? " Run <code>meshwire login</code> again."
                                                                         : ""));
      }
      done = true;
      cv.notify_all();
    });
    int port = callback.bind_to_any_port("127.0.0.1");
    if (port <= 0) throw Error(0, "unreachable", "Cannot open a loopback port for the sign-in callback.");
    std::thread serve([&] { callback.listen_after_bind(); });
    std::string page = relay + "/auth/cli?port=" + std::to_string(port) + "&state=" + state;
    // The URL first: whatever the browser does, it is on the screen.
    if (no_browser) {
      std::printf("Open this URL in your browser to sign in:\n%s\n\n", page.c_str());
    } else {
      std::printf("%s\n%s\n\n", health.auth == "github" ? "Opening browser for GitHub OAuth; if it does not open, visit:"
                                                        : "Opening browser to sign in; if it does not open, visit:",
                  page.c_str());
    }
    std::fflush(stdout);
    if (!no_browser) OpenBrowser(page);
    {
      std::unique_lock lock(mu);
      cv.wait_for(lock, std::chrono::seconds(timeout_s), [&] { return done; });
    }
    callback.stop();
    serve.join();
    if (!done) {
      throw Error(0, "wait_timeout", "No sign-in arrived within " + std::to_string(timeout_s) +
                                         " s; run `meshwire login` again and finish in the browser.");
    }
    if (failure) throw *failure;
    std::printf("%s Signed in as %s!\n", ui.Ok().c_str(), user.c_str());
    std::printf("Credentials saved to %s\n", Tilde(saved.string()).c_str());
    // What this shell's environment still overrides (`mesh use` warns alike).
    const EnvLookup env = ProcessEnv();
    if (env("MESHWIRE_TOKEN").value_or("") != "") {
      std::printf("Here MESHWIRE_TOKEN still chooses the token: unset it to use the one just saved.\n");
    }
    std::string set = env("MESHWIRE_URL").value_or("");
    while (!set.empty() && set.back() == '/') set.pop_back();  // as the configuration reads it
    if (!set.empty() && set != relay) {
      std::printf("Here MESHWIRE_URL still chooses the relay (%s): unset it to use %s.\n", Shown(set).c_str(),
                  relay.c_str());
    }
    // The active mesh of another relay names nothing here: it goes, and login says so.
    try {
      if (const std::string other = ForgetActiveMeshOfOtherRelay(config.home, relay); !other.empty()) {
        std::printf("Your active mesh %s was on another relay: `meshwire mesh list` and `meshwire mesh use ID` "
                    "choose one on this one.\n",
                    other.c_str());
      }
    } catch (const std::exception&) {
      // config.json cannot be written: its mesh stays, and a command naming it says what to do
    }
    RelayClient client(relay, token);
    client.Me();
    std::printf("%s Connected to MeshWire\n", ui.Ok().c_str());
    RevokeReplacedSignIn(config.saved_login, relay, token);
  } catch (const Error& e) {
    return Fail(e);
  } catch (const std::exception& e) {
    return FailUnexpected(e);
  }
  return kExitOk;
}

int RunLogout(int argc, char** argv) {
  CLI::App app{"Forget the saved credentials (~/.meshwire/credentials.json). The token stays "
               "valid until revoked: `meshwire token revoke ID`.",
               "meshwire logout"};
  int rc = 0;
  if (!Parse(app, argc, argv, rc)) return rc;
  CommandContext ctx;
  auto path = MeshwireHomeDir(ProcessEnv()) / "credentials.json";
  std::error_code ec;
  bool removed = std::filesystem::remove(path, ec);
  if (ec) return FailUsage("Cannot remove " + path.string() + ": " + ec.message() + ".");
  std::printf("%s %s\n", ctx.ui().Ok().c_str(),
              removed ? ("Signed out; removed " + Tilde(path.string())).c_str() : "Not signed in; nothing to remove.");
  if (const char* env = std::getenv("MESHWIRE_TOKEN"); env && *env) {
    std::printf("This shell's MESHWIRE_TOKEN still signs every command in: unset it too (`unset MESHWIRE_TOKEN`).\n");
  }
  return kExitOk;
}

int RunWhoami(int argc, char** argv) {
  CLI::App app{"Show who you are signed in as, on which relay, with which token.", "meshwire whoami"};
  CommandContext ctx;
  ctx.AddFlags(app, false, false, true);
  int rc = 0;
  if (!Parse(app, argc, argv, rc)) return rc;
  try {
    auto [user, token_id] = ctx.Client().Me();
    if (ctx.json()) {
      PrintJson({{"user", user}, {"url", ctx.config().url.value}, {"token_id", token_id}});
    } else {
      std::printf("User  : %s\nRelay : %s\nToken : %s (%s)\n", user.c_str(), ctx.config().url.value.c_str(),
                  token_id.c_str(), MaskToken(ctx.config().token.value, ctx.ui()).c_str());
    }
  } catch (const Error& e) {
    return Fail(e);
  }
  return kExitOk;
}

}  // namespace meshwire::cli
