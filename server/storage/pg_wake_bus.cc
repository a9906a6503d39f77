#include "server/storage/pg_wake_bus.h"

#include <libpq-fe.h>
#include <poll.h>
#include <spdlog/spdlog.h>

#include <limits>
#include <sstream>

#include "schemas/error.h"
#include "server/storage/pg_conn.h"

namespace meshwire {

namespace {

constexpr const char* kListen = "LISTEN meshwire_messages; LISTEN meshwire_access";
constexpr int kPageSize = 1000;  // messages read at once when catching up
constexpr int kBackoffMs[] = {1000, 2000, 5000};

/// Every mesh's newest seq, read after LISTEN: what this node must publish
/// from (seq + 1) for each mesh that exists now.
std::map<std::string, std::int64_t> NextSeqs(PgConnection& conn) {
  std::map<std::string, std::int64_t> next;
  auto s = conn.Prepare("SELECT id, last_seq FROM meshes");
  while (s.Step()) next[s.Text(0)] = s.Int(1) + 1;
  return next;
}

}  // namespace

std::optional<PgWakeBus::Parsed> PgWakeBus::ParseMessagePayload(const std::string& payload) {
  std::istringstream in(payload);
  Parsed p;
  if (!(in >> p.seq >> p.mesh_id >> p.node) || p.seq < 1) return std::nullopt;
  return p;
}

PgWakeBus::PgWakeBus(const std::string& conninfo, Store& store, std::string node_id)
    : conninfo_(conninfo), store_(store), node_id_(std::move(node_id)) {
  // LISTEN before reading where each mesh stands: a message committed after
  // the read is announced, one committed before it is not needed.
  auto conn = std::make_unique<PgConnection>(conninfo_);
  conn->Exec(kListen);
  next_ = NextSeqs(*conn);
  listening_ = true;
  dispatcher_ = std::thread([this] { Dispatch(); });
  listener_ = std::thread([this, c = conn.release()] {
    std::unique_ptr<PgConnection> first(c);
    int failures = 0;
    while (true) {
      {
        std::lock_guard lock(mu_);
        if (stopping_) return;
      }
      if (!first) {
        try {
          first = std::make_unique<PgConnection>(conninfo_);
          first->Exec(kListen);
          spdlog::info("wake-ups: listening on PostgreSQL again; catching up");
          failures = 0;
          listening_ = true;
          // What committed meanwhile was not announced: read it. Identities
          // cached meanwhile may be stale: drop them.
          Enqueue(Item{"", 0, nullptr, true});
          WakeEvent access;
          access.kind = WakeEvent::Kind::kAccessChanged;
          local_.Publish(access);
        } catch (const std::exception& e) {
          first.reset();
          const int ms = kBackoffMs[std::min<int>(failures, std::size(kBackoffMs) - 1)];
          if (failures == 0) spdlog::warn("wake-ups: cannot listen on PostgreSQL ({}); retrying", e.what());
          ++failures;
          std::unique_lock lock(mu_);
          cv_.wait_for(lock, std::chrono::milliseconds(ms), [this] { return stopping_; });
          continue;
        }
      }
      if (!ListenOnce(*first)) {
        spdlog::warn("wake-ups: the PostgreSQL connection was lost; reconnecting");
        listening_ = false;
        first.reset();
      }
    }
  });
}

PgWakeBus::~PgWakeBus() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (listener_.joinable()) listener_.join();
  if (dispatcher_.joinable()) dispatcher_.join();
}

void PgWakeBus::Publish(const WakeEvent& event) {
  switch (event.kind) {
    case WakeEvent::Kind::kMessage:
      // A local commit (its notification went out in its transaction).
      Enqueue(Item{event.message->message().mesh_id, event.message->message().seq, event.message, false});
      return;
    case WakeEvent::Kind::kAccessChanged:
      local_.Publish(event);
      NotifyAccess();
      return;
    case WakeEvent::Kind::kPresence:
      local_.Publish(event);
      return;
  }
}

void PgWakeBus::Enqueue(Item item) {
  {
    std::lock_guard lock(mu_);
    queue_.push_back(std::move(item));
  }
  cv_.notify_all();
}

void PgWakeBus::Dispatch() {
  for (;;) {
    Item item;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (stopping_) return;
      item = std::move(queue_.front());
      queue_.pop_front();
    }
    try {
      Deliver(item);
    } catch (const std::exception& e) {
      // Storage unreachable while catching up: the next message of the mesh,
      // or the resync after reconnecting, tries again.
      spdlog::warn("wake-ups: cannot read missed messages ({}); will catch up later", e.what());
    }
  }
}

void PgWakeBus::Deliver(const Item& item) {
  if (item.resync) {
    for (const auto& entry : next_) CatchUp(entry.first, std::numeric_limits<std::int64_t>::max());
    return;
  }
  std::int64_t& next = next_.try_emplace(item.mesh_id, 1).first->second;
  if (item.seq < next) return;  // published already
  if (!item.message) {
    // Another node's: publish all that is committed now, so the
    // notifications behind this one (a busy node sends thousands) cost
    // nothing but this check.
    CatchUp(item.mesh_id, std::numeric_limits<std::int64_t>::max());
    return;
  }
  if (item.seq > next) CatchUp(item.mesh_id, item.seq - 1);
  if (item.seq == next) {
    WakeEvent e;
    e.kind = WakeEvent::Kind::kMessage;
    e.mesh_id = item.mesh_id;
    e.message = item.message;
    local_.Publish(e);
    next = item.seq + 1;
  }
}

void PgWakeBus::CatchUp(const std::string& mesh_id, std::int64_t upto) {
  std::int64_t& next = next_.try_emplace(mesh_id, 1).first->second;
  while (next <= upto) {
    std::vector<Message> page = store_.History(mesh_id, next - 1, kPageSize);
    for (Message& m : page) {
      if (m.seq > upto) return;
      const std::int64_t seq = m.seq;
      WakeEvent e;
      e.kind = WakeEvent::Kind::kMessage;
      e.mesh_id = mesh_id;
      e.message = std::make_shared<const CommittedMessage>(std::move(m));
      local_.Publish(e);
      next = seq + 1;
    }
    if (page.size() < static_cast<std::size_t>(kPageSize)) {
      // Nothing more committed (a gap purged by retention is skipped).
      if (upto != std::numeric_limits<std::int64_t>::max()) next = std::max(next, upto + 1);
      return;
    }
  }
}

bool PgWakeBus::ListenOnce(PgConnection& conn) {
  pg_conn* raw = conn.raw();
  pollfd fd{PQsocket(raw), POLLIN, 0};
  if (fd.fd < 0) return false;
  ::poll(&fd, 1, 250);  // wakes at least 4 times a second to see a stop
  if (!PQconsumeInput(raw)) return false;
  while (PGnotify* n = PQnotifies(raw)) {
    const std::string channel = n->relname;
    const std::string payload = n->extra ? n->extra : "";
    PQfreemem(n);
    if (channel == "meshwire_messages") {
      auto p = ParseMessagePayload(payload);
      if (p && p->node != node_id_) Enqueue(Item{p->mesh_id, p->seq, nullptr, false});
    } else if (channel == "meshwire_access" && payload != node_id_) {
      WakeEvent e;
      e.kind = WakeEvent::Kind::kAccessChanged;
      local_.Publish(e);
    }
  }
  return PQstatus(raw) == CONNECTION_OK;
}

void PgWakeBus::NotifyAccess() {
  std::lock_guard lock(notify_mu_);
  try {
    if (!notify_conn_) notify_conn_ = std::make_unique<PgConnection>(conninfo_);
    notify_conn_->Prepare("SELECT pg_notify('meshwire_access', ?1)").Bind(1, node_id_).Step();
  } catch (const std::exception& e) {
    notify_conn_.reset();
    spdlog::warn("wake-ups: could not tell the other nodes of an access change ({})", e.what());
  }
}

}  // namespace meshwire
