#include "server/http/event_routes.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>
#include <nlohmann/json.hpp>

#include "schemas/json_io.h"
#include "server/core/thread_name.h"
#include "server/http/api_routes.h"
#include "server/http/router.h"

namespace meshwire {

struct EventHub::Subscriber {
  Caller caller;
  std::string mesh_id;
  std::shared_ptr<EventStream> stream;
  std::mutex mu;
  bool live = false;               // guarded by mu: replay done, send as events come
  std::int64_t last_seq = 0;       // guarded by mu: the newest message sent
  std::vector<std::pair<std::int64_t, std::string>> held;  // guarded by mu: events during replay
  std::size_t held_bytes = 0;      // guarded by mu: their size

  /// Sends a message event unless it was sent already; mu held.
  void SendMessage(std::int64_t seq, const std::string& text) {
    if (seq <= last_seq) return;
    last_seq = seq;
    stream->Send(text);
  }
};

namespace {

// A replay sends a page, then the next once the client has taken all but
// kReplayQueued bytes: never faster than it reads, and no thread waits.
constexpr std::size_t kReplayPage = 200;
constexpr std::size_t kReplayQueued = 1 << 20;
// What a stream still replaying holds of what commits meanwhile: past it the
// stream ends (the client reconnects with its Last-Event-ID, missing nothing).
constexpr std::size_t kMaxHeldBytes = 4 << 20;

std::string MessageEvent(const Message& m, const std::string& json) {
  return "event: message\nid: " + std::to_string(m.seq) + "\ndata: " + json + "\n\n";
}

std::string PresenceEvent(const WakeEvent& e) {
  return "event: presence\ndata: " + ToJson(*e.agent, e.agent_status, e.listening).dump() + "\n\n";
}

/// Where a stream starts: Last-Event-ID, else ?after, else live only (-1).
std::int64_t ReplayFrom(const HttpRequest& req) {
  const std::string* text = req.Header("Last-Event-ID");
  if (!text) text = req.Query("after");
  if (!text) return -1;
  std::int64_t seq = 0;
  auto [end, ec] = std::from_chars(text->data(), text->data() + text->size(), seq);
  if (ec != std::errc() || end != text->data() + text->size() || seq < 0 || text->front() == '-') {  // "-0" too
    throw Error::InvalidField("Last-Event-ID (or \"after\") must be a message seq, an integer >= 0.");
  }
  return seq;
}

}  // namespace

EventHub::EventHub(MeshService& service, Executor& executor, Millis keepalive_ms, std::size_t max_streams_per_user)
    : service_(service), executor_(executor), keepalive_ms_(keepalive_ms), max_streams_per_user_(max_streams_per_user) {
  keepalive_ = std::thread([this] {
    NameThisThread("mw-events-ping");
    KeepAliveLoop();
  });
}

EventHub::~EventHub() {
  CloseAll();
  keepalive_.join();
}

void EventHub::AddRoutes(Router& router) {
  router.Add("GET", "/mesh/{mesh}/events", [this](const ExchangePtr& ex) { Serve(ex); }, Router::Run::kOnWorker,
             Router::Head::kNoHead);
}

void EventHub::Serve(const ExchangePtr& ex) {
  Guarded(ex, [&] {
    const HttpRequest& req = ex->request();
    auto sub = std::make_shared<Subscriber>();
    sub->caller = service_.Authenticate(req.HeaderOr("Authorization"));
    sub->mesh_id = req.params[0];
    service_.CheckAccess(sub->caller, sub->mesh_id);
    const std::int64_t from = ReplayFrom(req);
    // Other nodes announce the mesh's messages here before this stream is
    // registered and replays (WakeBus::Watch).
    service_.Watch(sub->mesh_id);
    const std::string& user = sub->caller.token.user;
    {
      std::lock_guard lock(mu_);
      if (stopping_) throw Error::Unavailable("The relay is shutting down; reconnect in a moment.");
      std::size_t& open = open_by_user_[user];
      if (open >= max_streams_per_user_) {
        throw Error(429, "rate_limited",
                    user + " has " + std::to_string(max_streams_per_user_) +
                        " event streams open, the most one user may have: close one, then reconnect.")
            .with_retry_after(5);
      }
      ++open;  // reserved before the answer begins
    }
    sub->stream = ex->OpenStream(HttpResponse::Empty(200)
                                     .Header("Content-Type", "text/event-stream")
                                     .Header("Cache-Control", "no-cache")
                                     .Header("X-Accel-Buffering", "no"));
    if (!sub->stream) {
      std::lock_guard lock(mu_);
      Unreserve(user);
      return;
    }
    sub->stream->Send("retry: 2000\n: connected to mesh " + sub->mesh_id + "\n\n");
    // Registered before the replay: what commits meanwhile is held, then
    // sent after the replay unless the replay had it, or the client had it
    // before (Last-Event-ID).
    sub->last_seq = std::max<std::int64_t>(from, 0);
    {
      std::lock_guard lock(mu_);
      by_mesh_[sub->mesh_id].push_back(sub);
    }
    ex->OnHangUp([this, weak = std::weak_ptr<Subscriber>(sub)] {
      if (auto s = weak.lock()) Remove(s);
    });
    ReplayPage(sub, from);
  });
}

void EventHub::ReplayPage(const std::shared_ptr<Subscriber>& sub, std::int64_t after) {
  if (!sub->stream->Open()) return Remove(sub);
  std::size_t sent = 0;
  std::int64_t next = after;
  if (after >= 0) {
    try {
      std::vector<Message> page = service_.History(sub->caller, sub->mesh_id, after, static_cast<int>(kReplayPage));
      std::lock_guard lock(sub->mu);
      for (const Message& m : page) sub->SendMessage(m.seq, MessageEvent(m, MessageJsonText(m)));
      sent = page.size();
      if (!page.empty()) next = page.back().seq;
    } catch (const std::exception& e) {
      // The answer has begun: say why in the stream, and end it.
      std::string body = ErrorBody(Error(503, "unavailable", "The replay failed; reconnect."));
      if (auto* error = dynamic_cast<const Error*>(&e)) body = ErrorBody(*error);
      sub->stream->Send("event: error\ndata: " + body + "\n\n");
      sub->stream->Close();
      return Remove(sub);
    }
  }
  if (sent == kReplayPage) {
    // The next page once the client has read this one (or at once, or when
    // the stream ends: the runtime drops a client that stops reading).
    sub->stream->WhenDrained(kReplayQueued, [this, weak = std::weak_ptr<Subscriber>(sub), next] {
      executor_.Post([this, weak, next] {
        if (auto s = weak.lock()) ReplayPage(s, next);
      });
    });
    return;
  }
  std::lock_guard lock(sub->mu);
  for (const auto& [seq, text] : sub->held) sub->SendMessage(seq, text);
  sub->held.clear();
  sub->held_bytes = 0;
  sub->live = true;
}

void EventHub::Unreserve(const std::string& user) {
  auto it = open_by_user_.find(user);
  if (it != open_by_user_.end() && --it->second == 0) open_by_user_.erase(it);
}

bool EventHub::Watches(const std::string& mesh_id) const {
  std::lock_guard lock(mu_);
  auto it = by_mesh_.find(mesh_id);
  return it != by_mesh_.end() && !it->second.empty();
}

void EventHub::OnEvent(const WakeEvent& e) {
  if (e.kind == WakeEvent::Kind::kAccessChanged) {
    bool any = false;
    {
      std::lock_guard lock(mu_);
      any = !by_mesh_.empty();
    }
    if (any) executor_.Post([this] { RecheckAccess(); });
    return;
  }
  const std::string& mesh_id = e.kind == WakeEvent::Kind::kMessage ? e.message->message().mesh_id : e.mesh_id;
  std::vector<std::shared_ptr<Subscriber>> subs;
  {
    std::lock_guard lock(mu_);
    auto it = by_mesh_.find(mesh_id);
    if (it == by_mesh_.end()) return;
    subs = it->second;
  }
  if (e.kind == WakeEvent::Kind::kPresence) {
    const std::string text = PresenceEvent(e);
    for (const auto& s : subs) s->stream->Send(text);
    return;
  }
  // A stream still replaying holds what commits meanwhile, up to kMaxHeldBytes.
  const Message& m = e.message->message();
  const std::string text = MessageEvent(m, e.message->Json());
  for (const auto& s : subs) {
    std::lock_guard lock(s->mu);
    if (s->live) {
      s->SendMessage(m.seq, text);
    } else if (s->held_bytes + text.size() <= kMaxHeldBytes) {
      s->held.emplace_back(m.seq, text);
      s->held_bytes += text.size();
    } else {
      s->stream->Close();
    }
  }
}

void EventHub::Remove(const std::shared_ptr<Subscriber>& sub) {
  std::lock_guard lock(mu_);
  auto it = by_mesh_.find(sub->mesh_id);
  if (it == by_mesh_.end()) return;
  if (std::erase(it->second, sub) > 0) Unreserve(sub->caller.token.user);
  if (it->second.empty()) by_mesh_.erase(it);
}

void EventHub::RecheckAccess() {
  std::vector<std::shared_ptr<Subscriber>> all;
  {
    std::lock_guard lock(mu_);
    for (const auto& [mesh, subs] : by_mesh_) all.insert(all.end(), subs.begin(), subs.end());
  }
  for (const auto& s : all) {
    try {
      service_.Reauthorize(s->caller, s->mesh_id);
    } catch (const Error& e) {
      // The database out of reach (503) says nothing of the caller's access:
      // the stream stays, and is checked again with the next keep-alive
      // (and at the next access change) until the answer is yes or no.
      if (e.status() == 503) {
        recheck_pending_ = true;
        return;  // the rest too, at the next keep-alive: not each waiting for a connection now
      }
      if (!MeshService::AccessLost(e)) {
        spdlog::warn("checking an event stream's access: {}", e.what());
        continue;
      }
      s->stream->Send("event: error\ndata: " + ErrorBody(e) + "\n\n");
      s->stream->Close();
      Remove(s);
    } catch (const std::exception& e) {
      spdlog::warn("checking an event stream's access: {}", e.what());
    }
  }
}

void EventHub::CloseAll() {
  std::unordered_map<std::string, std::vector<std::shared_ptr<Subscriber>>> all;
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    all.swap(by_mesh_);
    open_by_user_.clear();
  }
  cv_.notify_all();
  for (auto& [mesh, subs] : all) {
    for (auto& s : subs) s->stream->Close();
  }
}

void EventHub::KeepAliveLoop() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    cv_.wait_for(lock, std::chrono::milliseconds(keepalive_ms_));
    if (stopping_) break;
    for (auto it = by_mesh_.begin(); it != by_mesh_.end();) {
      // A stream whose client is gone refuses the comment: drop it.
      std::erase_if(it->second, [this](const auto& s) {
        if (s->stream->Send(": keep-alive\n\n")) return false;
        Unreserve(s->caller.token.user);
        return true;
      });
      it = it->second.empty() ? by_mesh_.erase(it) : std::next(it);
    }
    if (recheck_pending_.exchange(false)) executor_.Post([this] { RecheckAccess(); });
  }
}

}  // namespace meshwire
