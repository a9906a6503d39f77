#include "server/relay.h"

#include <httplib.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>

#include "schemas/error.h"
#include "server/http_api.h"
#include "server/sqlite_store.h"
#include "server/task_pool.h"
#include "server/tcp_probe.h"
#include "server/waiters.h"

#ifndef MESHWIRE_VERSION
#define MESHWIRE_VERSION "0.0.0"
#endif

namespace meshwire {

/// cpp-httplib's server, with the listen backlog raised: the library listens
/// with a backlog of 5, too few for a burst of agents connecting at once.
class RelayHttpServer : public httplib::Server {
 public:
  void RaiseBacklog(int backlog) {
    if (::listen(svr_sock_, backlog) != 0) spdlog::warn("could not raise the listen backlog");
  }
  /// AF_INET or AF_INET6: the listening socket's family, which every accepted
  /// connection shares (IPv4 clients of an IPv6 socket are IPv4-mapped).
  int ListenFamily() const {
    sockaddr_storage addr{};
    socklen_t len = sizeof(addr);
    if (::getsockname(svr_sock_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) return AF_UNSPEC;
    return addr.ss_family;
  }
};

namespace {

bool IsLoopback(const std::string& host) {
  return host == "localhost" || host == "::1" || host.rfind("127.", 0) == 0;
}

}  // namespace

std::unique_ptr<Store> OpenStore(const std::string& spec) {
  std::string path = spec;
  if (spec.rfind("sqlite:", 0) == 0) {
    path = spec.substr(7);
  } else if (spec.rfind("postgres://", 0) == 0 || spec.rfind("postgresql://", 0) == 0) {
    throw Error::BadRequest("invalid_storage",
                            "PostgreSQL storage is not built into this meshwire yet; use "
                            "--storage sqlite:PATH.");
  }
  if (path.empty()) throw Error::BadRequest("invalid_storage", "--storage needs a path: sqlite:PATH.");
  return std::make_unique<SqliteStore>(path);
}

Relay::Relay(RelayOptions options)
    : options_(std::move(options)), clock_(options_.clock ? options_.clock : &system_clock_) {
  const std::string& mode = options_.auth.mode;
  if (mode != "local" && mode != "github" && mode != "token") {
    throw Error::BadRequest("invalid_auth", "--auth must be local, github or token.");
  }
  if (mode == "github" &&
      (options_.auth.github_client_id.empty() || options_.auth.github_client_secret.empty())) {
    throw Error::BadRequest("invalid_auth",
                            "--auth github needs a GitHub OAuth app: --github-client-id and "
                            "--github-client-secret (or MESHWIRE_GITHUB_CLIENT_ID and "
                            "MESHWIRE_GITHUB_CLIENT_SECRET).");
  }
  if (mode == "local" && !IsLoopback(options_.host)) {
    throw Error::BadRequest(
        "invalid_auth", "--auth local signs in anyone who asks, so it only listens on loopback; "
                        "use --auth token (or github) to listen on " + options_.host + ".");
  }
  store_ = OpenStore(options_.storage);
  std::size_t threads = std::max<std::size_t>(options_.threads, 8);
  std::size_t max_parked =
      options_.max_parked ? options_.max_parked : (threads > 128 ? threads - 64 : threads / 2);
  waiters_ = std::make_unique<Waiters>(*clock_, max_parked);
  ServiceOptions so;
  so.agent_ttl = Millis{options_.retention_days} * 24 * 3600 * 1000;
  so.rate_limit_per_min = options_.rate_limit_per_min;
  so.version = MESHWIRE_VERSION;
  so.auth_mode = mode;
  if (const char* region = std::getenv("MESHWIRE_REGION")) so.region = region;
  service_ = std::make_unique<MeshService>(*store_, *clock_, *waiters_, so);

  http_ = std::make_unique<RelayHttpServer>();
  http_->new_task_queue = [threads] { return new TaskPool(threads); };
  http_->set_tcp_nodelay(true);
  http_->set_keep_alive_max_count(100);
  http_->set_keep_alive_timeout(5);
  http_->set_read_timeout(10, 0);
  http_->set_write_timeout(10, 0);
  http_->set_payload_max_length(options_.max_body_bytes);
  MountAuthRoutes(*http_, *store_, *clock_, options_.auth);
  MountHttpApi(*http_, *service_, SystemClock().Now());
}

Relay::~Relay() {
  Stop();
  if (serve_thread_.joinable()) serve_thread_.join();
}

int Relay::Bind() {
  if (options_.port == 0) {
    port_ = http_->bind_to_any_port(options_.host);
    if (port_ <= 0) {
      throw Error::Unavailable("Cannot listen on " + options_.host + " (any port).");
    }
  } else {
    if (!http_->bind_to_port(options_.host, options_.port)) {
      throw Error::Unavailable("Cannot listen on " + options_.host + ":" +
                               std::to_string(options_.port) +
                               ": is another relay running there? Choose another with --listen.");
    }
    port_ = options_.port;
  }
  http_->RaiseBacklog(options_.listen_backlog);
  listen_family_ = http_->ListenFamily();
  return port_;
}

void Relay::Serve() {
  if (options_.housekeeping) housekeeping_thread_ = std::thread([this] { Housekeeping(); });
  if (options_.hangup_check_ms > 0) {
    hangup_thread_ = std::thread([this] {
      Every(options_.hangup_check_ms, "checking for clients that hung up",
            [this] { CheckHangups(); });
    });
  }
  http_->listen_after_bind();
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (housekeeping_thread_.joinable()) housekeeping_thread_.join();
  if (hangup_thread_.joinable()) hangup_thread_.join();
  service_->FlushPresence();
}

void Relay::Start() {
  serve_thread_ = std::thread([this] { Serve(); });
  while (!http_->is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
}

void Relay::Stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  waiters_->Shutdown();  // parked polls answer first: stop() joins the workers
  http_->stop();
}

void Relay::Every(Millis period, const char* what, const std::function<void()>& work) {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    cv_.wait_for(lock, std::chrono::milliseconds(period));
    if (stopping_) break;
    lock.unlock();
    try {
      work();
    } catch (const std::exception& e) {
      spdlog::error("{} failed: {}", what, e.what());
    }
    lock.lock();
  }
}

void Relay::Housekeeping() {
  auto last_sweep = std::chrono::steady_clock::now();
  Every(options_.flush_every_ms, "housekeeping", [&] {
    service_->FlushPresence();
    auto now = std::chrono::steady_clock::now();
    if (now - last_sweep < std::chrono::milliseconds(options_.sweep_every_ms)) return;
    last_sweep = now;
    SweepResult r = service_->Sweep();
    if (r.agents_removed || r.messages_purged) {
      spdlog::info("retention: removed {} agents, purged {} messages", r.agents_removed,
                   r.messages_purged);
    }
  });
}

std::size_t Relay::CheckHangups() {
  // Every ticket numbered <= parked_by was parked, so its connection was
  // established, before the snapshots below: missing from them means closed.
  const std::uint64_t parked_by = waiters_->ParkCount();
  std::vector<TcpPeer> parked = waiters_->ParkedPeers(parked_by);
  if (parked.empty()) return 0;
  const auto port = static_cast<std::uint16_t>(port_);
  TcpPeerSet gone(parked.begin(), parked.end());
  // A kernel dump is not one atomic picture (it resumes between reads), so a
  // connection counts as gone only when two snapshots in a row lack it.
  for (int snapshot = 0; snapshot < 2 && !gone.empty(); ++snapshot) {
    std::optional<TcpPeerSet> open = EstablishedTcpPeers(listen_family_, port);
    if (!open) {
      if (!probe_failed_.exchange(true)) {
        spdlog::warn(
            "cannot read TCP connection states (NETLINK_SOCK_DIAG): a long-poll whose "
            "client hangs up holds its worker until its wait ends");
      }
      return 0;
    }
    std::erase_if(gone, [&open](const TcpPeer& peer) { return open->count(peer) > 0; });
  }
  probe_failed_ = false;
  if (gone.empty()) return 0;
  std::size_t ended = waiters_->EndWaits(gone, parked_by);
  if (ended) spdlog::debug("ended {} long-polls whose clients hung up", ended);
  return ended;
}

}  // namespace meshwire
