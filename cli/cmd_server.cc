// `meshwire server`: runs the relay until SIGINT or SIGTERM.
#include <arpa/inet.h>
#include <malloc.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <cstdio>
#include <chrono>
#include <mutex>
#include <regex>
#include <thread>

#include "cli/commands.h"
#include "cli/context.h"
#include "relay-client/config.h"
#include "schemas/error.h"
#include "server/core/usable_cores.h"
#include "server/relay.h"
#include "server/storage/store_factory.h"

namespace meshwire::cli {

namespace {

/// --io-threads' default: one event-loop thread per usable core, less the
/// one the storage writer keeps busy (it commits, and writes each commit's
/// plain-HTTP answers; TLS answers are the event loop's to write); 1-64.
int DefaultIoThreads(bool tls) {
  const int cores = UsableCores();
  return std::clamp(tls ? cores : cores - 1, 1, 64);
}

/// Splits "host:port" or "[v6]:port".
/// HOST:PORT with HOST an IPv4 or IPv6 address ([::1] or ::1) or
/// "localhost" (taken as 127.0.0.1); false for anything else.
bool ParseListen(const std::string& text, std::string& host, int& port) {
  auto colon = text.rfind(':');
  if (colon == std::string::npos) return false;
  host = text.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  if (host == "localhost") host = "127.0.0.1";
  in6_addr address{};
  if (::inet_pton(AF_INET, host.c_str(), &address) != 1 && ::inet_pton(AF_INET6, host.c_str(), &address) != 1) {
    return false;
  }
  const std::string digits = text.substr(colon + 1);  // stoi would take " 20001" and "+1"
  if (digits.empty() || digits.size() > 5 || digits.find_first_not_of("0123456789") != std::string::npos) return false;
  try {
    std::size_t used = 0;
    port = std::stoi(digits, &used);
    return used == text.size() - colon - 1 && port >= 0 && port <= 65535;
  } catch (...) {
    return false;
  }
}

/// http(s)://HOST[:PORT][/PATH], with PORT 1-65535 when given.
bool ValidPublicUrl(const std::string& url) {
  std::smatch m;
  // The guide prints it in shell lines: a path of characters no shell gives a meaning to.
  static const std::regex kUrl(R"(https?://([A-Za-z0-9.\-]+|\[[0-9A-Fa-f:.]+\])(:([0-9]{1,5}))?(/[A-Za-z0-9\-._~/%:@+,=]*)?)");
  if (!std::regex_match(url, m, kUrl)) {
    return false;
  }
  return !m[3].matched || (std::stoi(m[3].str()) >= 1 && std::stoi(m[3].str()) <= 65535);
}

/// The thread that takes SIGINT, SIGTERM and SIGHUP (blocked everywhere
/// else) for the whole run, from before the relay opens its storage to after
/// it has closed it:
/// - SIGHUP reloads the TLS certificate and key (or says there are none);
/// - the first SIGINT/SIGTERM stops the relay gracefully (Relay::Stop), the
///   second closes the connections left at once (Relay::StopNow), the third
///   exits at once, without waiting for anything (storage stays consistent:
///   SQLite's and PostgreSQL's commits survive a kill).
/// A stop asked for while the relay is starting is applied once it serves.
class SignalTaker {
 public:
  SignalTaker(const sigset_t& signals, bool tls) : signals_(signals), tls_(tls) {
    thread_ = std::thread([this] { Loop(); });
  }
  ~SignalTaker() { Finish(); }

  /// While it lives, signals reach `relay`.
  class Serving {
   public:
    Serving(SignalTaker& taker, Relay& relay) : taker_(taker) {
      std::lock_guard lock(taker_.mu_);
      taker_.relay_ = &relay;
      if (taker_.stops_ >= 1) relay.Stop();
      if (taker_.stops_ >= 2) relay.StopNow();
    }
    ~Serving() {
      std::lock_guard lock(taker_.mu_);
      taker_.relay_ = nullptr;
    }
    Serving(const Serving&) = delete;
    Serving& operator=(const Serving&) = delete;

   private:
    SignalTaker& taker_;
  };

  /// Stops taking signals (they stay blocked). Idempotent.
  void Finish() {
    finished_ = true;
    if (thread_.joinable()) thread_.join();
  }

 private:
  void Loop() {
    while (!finished_.load()) {
      timespec tick{0, 200 * 1000 * 1000};
      siginfo_t info{};
      const int sig = sigtimedwait(&signals_, &info, &tick);
      if (sig <= 0) continue;
      if (Echo(sig, info)) continue;
      std::lock_guard lock(mu_);
      if (sig == SIGHUP) {
        Reload();
        continue;
      }
      switch (++stops_) {
        case 1:
          spdlog::info("{} received: answering waiting polls and stopping (again to close the connections "
                       "at once)", strsignal(sig));
          if (relay_) relay_->Stop();
          break;
        case 2: {
          const std::size_t open = relay_ ? relay_->StopNow() : 0;
          spdlog::info("{} received again: closing {} connection{} now (a third time to exit without "
                       "waiting)", strsignal(sig), open, open == 1 ? "" : "s");
          break;
        }
        default:
          spdlog::warn("{} received a third time: exiting now", strsignal(sig));
          spdlog::default_logger()->flush();
          std::_Exit(128 + sig);
      }
    }
  }

  /// Whether `sig` is the echo of one the terminal sent a moment ago: Ctrl+C
  /// (or a hang-up) reaches the terminal's whole foreground group, so a
  /// parent that forwards signals (npx's launcher) sends it a second time,
  /// which would count as "again, close everything now".
  bool Echo(int sig, const siginfo_t& info) {
    const auto now = std::chrono::steady_clock::now();
    if (info.si_code == SI_KERNEL) {  // from the terminal
      terminal_sig_ = sig;
      terminal_at_ = now;
      return false;
    }
    const bool echo = info.si_code == SI_USER && info.si_pid == ::getppid() && sig == terminal_sig_ &&
                      now - terminal_at_ < std::chrono::seconds(3);
    if (echo) spdlog::debug("{} from the parent process, right after the terminal's: the same one", strsignal(sig));
    return echo;
  }

  void Reload() {  // with mu_ held
    if (!tls_) {
      spdlog::info("SIGHUP: nothing to reload (the relay serves plain HTTP, without --tls-cert)");
      return;
    }
    if (!relay_) return;
    try {
      relay_->ReloadTls();
      spdlog::info("SIGHUP: reloaded the TLS certificate and key");
    } catch (const Error& e) {
      spdlog::error("SIGHUP: {} (still serving the previous ones)", e.what());
    }
  }

  const sigset_t signals_;
  const bool tls_;
  int terminal_sig_ = 0;                               // the last signal from the terminal (Loop's thread)
  std::chrono::steady_clock::time_point terminal_at_;  // and when it came
  std::atomic<bool> finished_{false};
  std::mutex mu_;
  Relay* relay_ = nullptr;  // guarded by mu_
  int stops_ = 0;           // guarded by mu_
  std::thread thread_;      // last: starts once the rest is set
};

/// Lets the process hold as many connections as the kernel allows it.
void RaiseFileLimit() {
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < lim.rlim_max) {
    lim.rlim_cur = lim.rlim_max;
    setrlimit(RLIMIT_NOFILE, &lim);
  }
}

}  // namespace

int RunServer(int argc, char** argv) {
  CLI::App app{
      "Run the meshwire relay: the HTTP service agents send and poll messages through.\n"
      "State is kept durably in SQLite (default $MESHWIRE_HOME/relay.db, i.e. ~/.meshwire/relay.db).\n"
      "Get a token for clients with `meshwire admin token create --user NAME`.",
      "meshwire server"};
  std::string listen = "127.0.0.1:7420";
  std::string storage;
  std::string auth = "local";
  int threads = 32;
  int io_threads = DefaultIoThreads(/*tls=*/false);  // with --tls-cert: more, below
  int request_timeout_ms = 10000;
  int events_keepalive_ms = 15000;
  int max_stream_memory_mib = 256;
  int max_body_memory_mib = 256;
  int retention_days = 7;
  int rate_limit = 0;
  int agents_per_member = 20000;
  std::string log_level = "info";
  std::string tls_cert, tls_key, public_url;
  AuthOptions auth_options;
  if (const char* v = std::getenv("MESHWIRE_GITHUB_CLIENT_ID")) auth_options.github_client_id = v;
  if (const char* v = std::getenv("MESHWIRE_GITHUB_CLIENT_SECRET")) auth_options.github_client_secret = v;
  app.add_option("--listen", listen, "IP:PORT to listen on (localhost is 127.0.0.1; 0.0.0.0:PORT or [::]:PORT for every interface, not with --auth local)")->capture_default_str();
  app.add_option("--storage", storage,
                 "sqlite:PATH (default sqlite:$MESHWIRE_HOME/relay.db), or PostgreSQL: "
                 "postgres://user:pass@host:port/db (libpq's PG* variables fill the rest)")
      ->check(NotEmpty("give sqlite:PATH or postgres://..., or leave --storage out for the default"));
  app.add_option("--auth", auth, "sign-in mode: local (loopback only; anyone on this machine signs in as any name), github, token")
      ->check(CLI::IsMember({"local", "github", "token"}))
      ->capture_default_str();
  app.add_option("--github-client-id", auth_options.github_client_id,
                 "GitHub OAuth app client id (--auth github; or MESHWIRE_GITHUB_CLIENT_ID)");
  app.add_option("--github-client-secret", auth_options.github_client_secret,
                 "GitHub OAuth app secret (or MESHWIRE_GITHUB_CLIENT_SECRET)");
  app.add_option("--github-url", auth_options.github_url,
                 "GitHub's web endpoints (a GitHub Enterprise host, or a stand-in in tests)")
      ->capture_default_str();
  app.add_option("--github-api-url", auth_options.github_api_url, "GitHub's API endpoint")
      ->capture_default_str();
  app.add_option("--threads", threads,
                 "worker threads for requests that touch storage (waiting long-polls and open "
                 "connections hold none)")
      ->check(CLI::Range(2, 1024))
      ->capture_default_str();
  app.add_option("--io-threads", io_threads,
                 "event-loop threads that serve the connections (default: one less than the cores this "
                 "process may use, at least 1, as the storage writer writes its commits' answers itself; "
                 "with --tls-cert, as many as the cores)")
      ->check(CLI::Range(1, 64));  // no "=N": the default depends on --tls-cert
  app.add_option("--agents-per-member", agents_per_member,
                 "most agents one user may have in one mesh: past it a new name is refused (400 "
                 "too_many_agents), so a member cannot flood a shared mesh")
      ->check(CLI::Range(1, 10000000))
      ->capture_default_str();
  app.add_option("--request-timeout-ms", request_timeout_ms,
                 "how long a client may take to send a whole request, headers and body, from its "
                 "first byte (408 after it)")
      ->check(CLI::Range(100, 600000))
      ->capture_default_str();
  app.add_option("--events-keepalive-ms", events_keepalive_ms,
                 "how often an idle event stream (GET /mesh/ID/events) gets a comment line")
      ->check(CLI::Range(100, 3600000))
      ->capture_default_str();
  app.add_option("--max-stream-memory", max_stream_memory_mib,
                 "MiB of events that all event streams together may hold for clients that have not read "
                 "them; past it, a stream more than 64 KiB behind whose client took nothing for a second is "
                 "dropped (it reconnects with Last-Event-ID and misses nothing)")
      ->check(CLI::Range(1, 1048576))
      ->capture_default_str();
  app.add_option("--max-body-memory", max_body_memory_mib,
                 "MiB of request bodies that all connections together may be in the middle of sending "
                 "(each counted at its Content-Length); past it, a request whose body is still to come "
                 "gets 503 with Retry-After")
      ->check(CLI::Range(1, 1048576))
      ->capture_default_str();
  app.add_option("--public-url", public_url,
                 "the relay's address as clients reach it, e.g. https://relay.example.com (the "
                 "integration guide's links, GitHub's sign-in redirect); default: the listen address");
  app.add_option("--retention-days", retention_days,
                 "remove agents not seen for this many days, with what only they still needed")
      ->check(CLI::Range(1, 3650))
      ->capture_default_str();
  app.add_option("--rate-limit", rate_limit, "requests per minute per token (0: unlimited)")
      ->check(CLI::Range(0, 100000000))
      ->capture_default_str();
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error, or off")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "off"}))
      ->capture_default_str();
  app.add_option("--tls-cert", tls_cert,
                 "serve HTTPS with this PEM certificate chain (with --tls-key; SIGHUP reloads both)");
  app.add_option("--tls-key", tls_key, "the PEM private key of --tls-cert");
  int rc = 0;
  if (!Parse(app, argc, argv, rc)) return rc;

  spdlog::set_level(spdlog::level::from_str(log_level));
  // Why the relay does not start is said whatever --log-level hides.
  auto refuse = [](const std::string& why) {
    if (spdlog::should_log(spdlog::level::err)) {
      spdlog::error("{}", why);
    } else {
      std::fprintf(stderr, "meshwire: %s\n", why.c_str());
    }
  };
  // Set but empty (an unset shell variable): never a relay without TLS or
  // with a URL its clients cannot reach, as an empty --storage is refused.
  for (const auto& [flag, value] : {std::pair{"--tls-cert", &tls_cert}, std::pair{"--tls-key", &tls_key},
                                    std::pair{"--public-url", &public_url}}) {
    if (app.count(flag) > 0 && value->empty()) {
      refuse(std::string(flag) + " is empty (an unset shell variable?): give its value, or leave " + flag + " out.");
      return kExitUsage;
    }
  }
  if (tls_cert.empty() != tls_key.empty()) {
    refuse("HTTPS needs both --tls-cert FILE and --tls-key FILE.");
    return kExitUsage;
  }

  RelayOptions options;
  if (!ParseListen(listen, options.host, options.port)) {
    refuse("--listen must be IP:PORT with an IP address of this machine, e.g. 127.0.0.1:7420, "
           "0.0.0.0:7420 or [::]:7420 (got \"" + listen + "\").");
    return kExitUsage;
  }
  // "bogus:x" would become a SQLite file of that name, "mysql://" a refusal
  // at the first open: both are a usage error, said before anything starts.
  if (std::string problem = StorageSpecProblem(storage); !problem.empty()) {
    refuse(problem);
    return kExitUsage;
  }
  const std::string home = MeshwireHomeDir(ProcessEnv()).string();
  const std::string default_storage = "sqlite:" + home + "/relay.db";  // what admin opens without --storage
  if (storage.empty()) {
    ::mkdir(home.c_str(), 0700);
    storage = default_storage;
  }
  options.storage = storage;
  auth_options.mode = auth;
  options.auth = auth_options;
  options.threads = threads;
  if (app.count("--io-threads") == 0 && !tls_cert.empty()) io_threads = DefaultIoThreads(/*tls=*/true);
  options.io_threads = io_threads;
  options.max_agents_per_member = static_cast<std::size_t>(agents_per_member);
  options.request_timeout_ms = request_timeout_ms;
  options.events_keepalive_ms = events_keepalive_ms;
  options.max_stream_memory = static_cast<std::size_t>(max_stream_memory_mib) << 20;
  options.max_body_memory = static_cast<std::size_t>(max_body_memory_mib) << 20;
  options.retention_days = retention_days;
  options.rate_limit_per_min = rate_limit;
  if (!public_url.empty() && !ValidPublicUrl(public_url)) {
    refuse("--public-url must be the relay's address as clients reach it, http(s)://HOST[:PORT][/PATH] "
           "with a PORT from 1 to 65535 and a PATH of letters, digits and - . _ ~ / % : @ + , = "
           "(got \"" + public_url + "\").");
    return kExitUsage;
  }
  options.public_url = public_url;
  for (const auto& [flag, url] : {std::pair{"--github-url", auth_options.github_url},
                                  std::pair{"--github-api-url", auth_options.github_api_url}}) {
    if (!ValidPublicUrl(url)) {
      refuse(std::string(flag) + " must be http(s)://HOST[:PORT][/PATH] (got \"" + url + "\").");
      return kExitUsage;
    }
  }
  options.tls_cert = tls_cert;
  options.tls_key = tls_key;

  // Signals are taken by one thread with sigwait: block them before any
  // thread starts, so every thread inherits the mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  ::signal(SIGPIPE, SIG_IGN);
  RaiseFileLimit();
  // Keep freed memory for reuse instead of returning it to the kernel after
  // every request (one madvise per request otherwise).
  mallopt(M_TRIM_THRESHOLD, 64 << 20);

  SignalTaker taker(signals, !tls_cert.empty());
  int exit_code = kExitOk;
  try {
    Relay relay(options);
    int port = relay.Bind();
    SignalTaker::Serving serving(taker, relay);
    const bool ipv6 = options.host.find(':') != std::string::npos;
    spdlog::info("meshwire relay {} listening on {}://{}{}{}:{} (storage {}, auth {}{})",
                 MESHWIRE_VERSION_STRING, tls_cert.empty() ? "http" : "https", ipv6 ? "[" : "",
                 options.host, ipv6 ? "]" : "", port, StorageForDisplay(storage), auth,
                 public_url.empty() ? "" : ", public URL " + public_url);
    // The hint is runnable as shown, except for a password it must not show.
    const std::string shown = StorageForDisplay(storage);
    spdlog::info("get a token for clients: meshwire admin token create --user $USER{}",
                 storage == default_storage && !std::getenv("MESHWIRE_HOME") ? ""
                 : shown == storage ? " --storage " + ShellQuoted(shown)
                                    : " --storage \"<this relay's --storage URL, with its password>\"");
    relay.Serve();
  } catch (const Error& e) {
    refuse(e.what());
    // A flag to change (a storage path that is no file, --auth local on every
    // interface, GitHub sign-in without its app): a usage error, as --help says.
    exit_code = e.status() == 400 || e.status() == 2 ? kExitUsage : kExitError;
  }
  taker.Finish();
  if (exit_code == kExitOk) spdlog::info("stopped cleanly");
  return exit_code;
}

}  // namespace meshwire::cli
