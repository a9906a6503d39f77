#include "server/relay.h"

#include <spdlog/spdlog.h>

#include "schemas/error.h"
#include "server/core/thread_name.h"
#include "server/core/wake_bus.h"
#include "server/core/waiters.h"
#include "server/http/api_routes.h"
#include "server/http/dashboard_routes.h"
#include "server/http/event_routes.h"
#include "server/http/mcp_endpoint.h"
#include "server/http/runtime.h"
#include "server/http/url.h"
#include "server/storage/store_factory.h"

#ifndef MESHWIRE_VERSION
#define MESHWIRE_VERSION "0.0.0"
#endif

namespace meshwire {

namespace {

bool IsLoopback(const std::string& host) {
  return host == "localhost" || host == "::1" || host.rfind("127.", 0) == 0;
}

void CheckAuth(const RelayOptions& o) {
  const std::string& mode = o.auth.mode;
  if (mode != "local" && mode != "github" && mode != "token") {
    throw Error::BadRequest("invalid_auth", "--auth must be local, github or token.");
  }
  if (mode == "github" && (o.auth.github_client_id.empty() || o.auth.github_client_secret.empty())) {
    throw Error::BadRequest("invalid_auth",
                            "--auth github needs a GitHub OAuth app: --github-client-id and "
                            "--github-client-secret (or MESHWIRE_GITHUB_CLIENT_ID and "
                            "MESHWIRE_GITHUB_CLIENT_SECRET).");
  }
  if (mode == "local" && !IsLoopback(o.host)) {
    throw Error::BadRequest(
        "invalid_auth", "--auth local signs in anyone who asks, so it only listens on loopback; "
                        "use --auth token (or github) to listen on " + o.host + ".");
  }
  // Loopback behind a proxy that others reach: they would sign in as anyone.
  if (mode == "local" && !o.public_url.empty() && !IsLoopbackHost(HostOf(o.public_url))) {
    throw Error::BadRequest(
        "invalid_auth", "--auth local signs in anyone who asks, so it serves this machine alone, and --public-url " +
                            o.public_url + " says that others reach it (a proxy in front): use --auth token "
                            "(or github) there.");
  }
}

}  // namespace

Relay::Relay(RelayOptions options)
    : options_(std::move(options)), clock_(options_.clock ? options_.clock : &system_clock_) {
  CheckAuth(options_);
  // A certificate it cannot serve stops the relay before storage is created.
  if (!options_.tls_cert.empty()) HttpRuntime::CheckTls(options_.tls_cert, options_.tls_key);
  RuntimeOptions ro;
  ro.host = options_.host;
  ro.port = options_.port;
  ro.io_threads = std::max(1, options_.io_threads);
  ro.workers = std::max(2, options_.threads);
  ro.max_body_bytes = options_.max_body_bytes;
  ro.request_timeout_ms = options_.request_timeout_ms;
  ro.idle_timeout_ms = options_.idle_timeout_ms;
  ro.max_stream_memory = options_.max_stream_memory;
  ro.max_body_memory = options_.max_body_memory;
  ro.backlog = options_.listen_backlog;
  ro.tls_cert_file = options_.tls_cert;
  ro.tls_key_file = options_.tls_key;
  runtime_ = std::make_unique<HttpRuntime>(ro, [this](const ExchangePtr& ex) { router_.Dispatch(ex); });
  router_.SetWorkers(&runtime_->workers());
  // An address it cannot listen on stops it before storage is created too
  // (connections wait in the backlog until Serve).
  port_ = runtime_->Bind();

  storage_lock_ = LockForRelay(options_.storage);
  store_ = OpenStore(options_.storage);
  if (storage_lock_) storage_lock_->LockDatabase();  // a file the store has just created
  LogStorageNotes(*store_);
  bus_ = OpenWakeBus(options_.storage, *store_);

  Waiters::Limits limits;
  if (options_.max_parked) limits.total = options_.max_parked;
  limits.per_agent = options_.max_parked_per_agent;
  limits.per_token = options_.max_parked_per_token;
  waiters_ = std::make_unique<Waiters>(*clock_, limits);

  ServiceOptions so;
  so.agent_ttl = Millis{options_.retention_days} * 24 * 3600 * 1000;
  so.rate_limit_per_min = options_.rate_limit_per_min;
  so.version = MESHWIRE_VERSION;
  so.auth_mode = options_.auth.mode;
  so.max_tokens_per_user = options_.max_tokens_per_user;
  so.max_agents_per_member = options_.max_agents_per_member;
  if (const char* region = std::getenv("MESHWIRE_REGION")) so.region = region;
  service_ = std::make_unique<MeshService>(*store_, *clock_, *waiters_, *bus_, runtime_->workers(), so);
  events_ = std::make_unique<EventHub>(*service_, runtime_->workers(), options_.events_keepalive_ms);
  // Each says which meshes it waits on, so a node reads no other node's
  // messages that nothing here waits for (see WakeBus::Interest).
  bus_->Subscribe(
      [this](const WakeEvent& e) {
        if (e.kind == WakeEvent::Kind::kMessage) waiters_->Notify(e.message);
      },
      [this](const std::string& mesh_id) { return waiters_->Watches(mesh_id); });
  bus_->Subscribe([this](const WakeEvent& e) { events_->OnEvent(e); },
                  [this](const std::string& mesh_id) { return events_->Watches(mesh_id); });
  bus_->Subscribe(
      [this](const WakeEvent& e) {
        if (McpEndpoint* mcp = mcp_live_.load()) mcp->OnEvent(e);
      },
      [this](const std::string& mesh_id) {
        McpEndpoint* mcp = mcp_live_.load();
        return mcp != nullptr && mcp->Watches(mesh_id);
      });
}

Relay::~Relay() {
  Stop();
  if (serve_thread_.joinable()) serve_thread_.join();
  runtime_.reset();  // joins the workers before the service they call goes
  bus_->StopWatching();  // SQLite's watch reads through the store: not once it is closed
  // The last commits' listener calls reach the service and the bus: before they go.
  store_->Close();
  // A bus with threads of its own (PostgreSQL's listener, SQLite's watch)
  // stops calling its subscribers (the waiters, the event hub, the service's
  // cache) before they go.
  bus_.reset();
  events_.reset();
  mcp_.reset();
}

int Relay::Bind() {
  if (!options_.public_url.empty()) {
    public_url_ = options_.public_url;
    while (!public_url_.empty() && public_url_.back() == '/') public_url_.pop_back();
  } else {
    const bool v6 = options_.host.find(':') != std::string::npos;
    std::string host = options_.host == "0.0.0.0" || options_.host == "::" ? "127.0.0.1" : options_.host;
    public_url_ = std::string(runtime_->tls() ? "https://" : "http://") + (v6 && host != "127.0.0.1" ? "[" + host + "]" : host) +
                  ":" + std::to_string(port_);
  }
  ApiOptions api;
  api.started_at = SystemClock().Now();
  api.public_url = public_url_;
  api.sign_in_page = options_.auth.mode != "token";
  AddApiRoutes(router_, *service_, api);
  AuthOptions auth = options_.auth;
  auth.max_tokens_per_user = options_.max_tokens_per_user;
  AddAuthRoutes(router_, *store_, *clock_, auth, public_url_);
  AddDashboardRoutes(router_);
  events_->AddRoutes(router_);
  McpEndpointOptions mo;
  mo.public_url = public_url_;
  mo.keepalive_ms = options_.events_keepalive_ms;
  mcp_ = std::make_unique<McpEndpoint>(*service_, *clock_, mo);
  mcp_->AddRoutes(router_);
  mcp_live_.store(mcp_.get());
  return port_;
}

void Relay::Serve() {
  if (options_.housekeeping) housekeeping_thread_ = std::thread([this] {
    NameThisThread("mw-housekeep");
    Housekeeping();
  });
  waiters_->StartTimer();
  runtime_->Run();
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (housekeeping_thread_.joinable()) housekeeping_thread_.join();
  service_->FlushPresence();
}

void Relay::Start() {
  serve_thread_ = std::thread([this] { Serve(); });
}

void Relay::Stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  waiters_->Shutdown();  // parked polls answer what they have
  events_->CloseAll();
  if (mcp_) mcp_->CloseAll();
  runtime_->Stop();
}

std::size_t Relay::StopNow() {
  Stop();
  return runtime_->StopNow();
}

void Relay::ReloadTls() { runtime_->ReloadTls(); }

void Relay::Housekeeping() {
  auto last_sweep = std::chrono::steady_clock::now();
  auto last_flush = last_sweep;
  // Listening is shared once a second where other nodes read it; else the
  // loop wakes only to flush presence.
  const bool share = !store_->NodeId().empty();
  const auto tick = std::chrono::milliseconds(share ? std::min(options_.share_every_ms, options_.flush_every_ms)
                                                    : options_.flush_every_ms);
  std::unique_lock lock(mu_);
  while (!stopping_) {
    cv_.wait_for(lock, tick);
    if (stopping_) break;
    lock.unlock();
    try {
      if (share) service_->ShareListening();
      auto now = std::chrono::steady_clock::now();
      if (now - last_flush >= std::chrono::milliseconds(options_.flush_every_ms)) {
        last_flush = now;
        service_->FlushPresence();
      }
      if (now - last_sweep >= std::chrono::milliseconds(options_.sweep_every_ms)) {
        last_sweep = now;
        SweepResult r = service_->Sweep();
        if (r.agents_removed || r.messages_purged) {
          spdlog::info("retention: removed {} agents, purged {} messages", r.agents_removed,
                       r.messages_purged);
        }
      }
    } catch (const std::exception& e) {
      spdlog::error("housekeeping failed: {}", e.what());
    }
    lock.lock();
  }
}

}  // namespace meshwire
