#include "server/storage/pg_wake_bus.h"

#include <libpq-fe.h>
#include <poll.h>
#include <unistd.h>
#include <spdlog/spdlog.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <iterator>
#include <chrono>
#include <cstdlib>
#include <limits>
#include <set>
#include <sstream>
#include <thread>

#include "schemas/error.h"
#include "schemas/json_io.h"
#include "server/core/thread_name.h"
#include "server/storage/pg_conn.h"
#include "server/storage/postgres_store.h"

namespace meshwire {

namespace {

constexpr const char* kListen =
    "LISTEN meshwire_messages; LISTEN meshwire_access; LISTEN meshwire_access_ack; LISTEN meshwire_presence";
// A NOTIFY payload holds less than 8000 bytes.
constexpr std::size_t kMaxPayload = 7900;
// How long an access change waits for the other live nodes to confirm it.
constexpr auto kAckWait = std::chrono::seconds(2);
constexpr int kPageSize = 1000;  // messages read at once when catching up
constexpr int kBackoffMs[] = {1000, 2000, 5000};

/// Raises `seqs[mesh_id]` to `seq` (a mesh not there yet: to `seq`).
void RaiseTo(std::map<std::string, std::int64_t>& seqs, const std::string& mesh_id, std::int64_t seq) {
  std::int64_t& newest = seqs[mesh_id];
  newest = std::max(newest, seq);
}

/// Every mesh's newest seq, read after LISTEN: what this node must publish
/// from (seq + 1) for each mesh that exists now.
std::map<std::string, std::int64_t> NextSeqs(PgConnection& conn) {
  std::map<std::string, std::int64_t> next;
  auto s = conn.Prepare("SELECT id, last_seq FROM meshes");
  while (s.Step()) next[s.Text(0)] = s.Int(1) + 1;
  return next;
}

}  // namespace

std::string PgWakeBus::FormatEnded(const WakeEvent::Ended& ended) {
  // Ids hold no spaces or commas (base62; tokens "tok_" and base62).
  std::string out;
  if (!ended.mesh_id.empty()) {
    std::string agents;
    for (const std::string& id : ended.agent_ids) agents += (agents.empty() ? "" : ",") + id;
    // A NOTIFY payload holds at most 8000 bytes: past a few hundred agents,
    // the whole mesh's polls answer (the others with nothing, at once).
    out += " m=" + ended.mesh_id + (agents.empty() || agents.size() > 6000 ? "" : " a=" + agents);
  }
  if (!ended.token_id.empty()) out += " t=" + ended.token_id;
  return out;
}

WakeEvent::Ended PgWakeBus::ParseEnded(std::istream& in) {
  WakeEvent::Ended ended;
  std::string word;
  while (in >> word) {
    if (word.size() < 2 || word[1] != '=') continue;  // a later node's field: ignored
    std::string value = word.substr(2);
    switch (word[0]) {
      case 'm': ended.mesh_id = std::move(value); break;
      case 't': ended.token_id = std::move(value); break;
      case 'a': {
        std::istringstream ids(value);
        for (std::string id; std::getline(ids, id, ',');) {
          if (!id.empty()) ended.agent_ids.push_back(id);
        }
        break;
      }
      default: break;
    }
  }
  return ended;
}

std::optional<PgWakeBus::Parsed> PgWakeBus::ParseMessagePayload(const std::string& payload) {
  std::istringstream in(payload);
  Parsed p;
  if (!(in >> p.seq >> p.mesh_id >> p.node) || p.seq < 1) return std::nullopt;
  return p;
}

PgWakeBus::PgWakeBus(const std::string& conninfo, Store& store, std::string node_id)
    : conninfo_(conninfo), store_(store), node_id_(std::move(node_id)) {
  // Fault injection for tests only: hear other nodes' access changes late.
  if (const char* delay = std::getenv("MESHWIRE_TEST_ACCESS_DELAY_MS")) access_delay_ms_ = std::atoi(delay);
  // LISTEN before reading where each mesh stands: a message committed after
  // the read is announced, one committed before it is not needed.
  auto conn = std::make_unique<PgConnection>(conninfo_);
  conn->NeverReconnect();  // a new session would not be listening
  conn->Exec(kListen);
  next_ = NextSeqs(*conn);
  listening_ = true;
  dispatcher_ = std::thread([this] {
    NameThisThread("mw-pg-dispatch");
    Dispatch();
  });
  listener_ = std::thread([this, c = conn.release()] {
    NameThisThread("mw-pg-listen");
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
          first->NeverReconnect();
          first->Exec(kListen);
          // What committed meanwhile was not announced: read it. Access
          // changes are heard again: identities may be cached again.
          Item resync = Item::Resync(NextSeqs(*first));
          spdlog::info("wake-ups: listening on PostgreSQL again; catching up");
          failures = 0;
          listening_ = true;
          Enqueue(std::move(resync));
          WakeEvent access;
          access.kind = WakeEvent::Kind::kAccessChanged;
          access.trust_cache = true;
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
      if (const auto now = std::chrono::steady_clock::now(); now >= next_maintenance_) {
        next_maintenance_ = now + std::chrono::seconds(1);
        MaintainWatches();
      }
      if (!ListenOnce(*first)) {
        spdlog::warn("wake-ups: the PostgreSQL connection was lost; reconnecting");
        listening_ = false;
        first.reset();
        // Deaf to other nodes' access changes until it is back: every
        // request reads tokens and members from the database meanwhile.
        WakeEvent access;
        access.kind = WakeEvent::Kind::kAccessChanged;
        access.trust_cache = false;
        local_.Publish(access);
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
  // The other nodes stop announcing to this one (else the next heartbeat
  // after this node's row goes drops the rows).
  std::lock_guard write(write_mu_);
  if (watch_conn_) {
    try {
      watch_conn_->Prepare("DELETE FROM node_watches WHERE node_id = ?1").Bind(1, node_id_).Run();
    } catch (const std::exception&) {
    }
  }
}

PgConnection& PgWakeBus::WatchConnection() {
  if (!watch_conn_) watch_conn_ = std::make_unique<PgConnection>(conninfo_);
  return *watch_conn_;
}

std::map<std::string, std::int64_t> PgWakeBus::WriteWatches(const std::vector<std::string>& mesh_ids) {
  // FOR SHARE waits for an append in flight to the mesh (its UPDATE holds
  // the row until its COMMIT) and holds the next one until this commits: an
  // append either committed before this, so the waiter's read after it sees
  // it, or runs its notification after, and sees the watch.
  std::vector<std::optional<std::string_view>> ids(mesh_ids.begin(), mesh_ids.end());
  for (int attempt = 1;; ++attempt) {
    try {
      auto s = WatchConnection().Prepare(
          "WITH m AS (SELECT id, last_seq FROM meshes WHERE id = ANY(?1::text[]) ORDER BY id COLLATE \"C\" FOR SHARE),"
          " w AS (INSERT INTO node_watches(mesh_id, node_id) SELECT id, ?2 FROM m ON CONFLICT DO NOTHING)"
          " SELECT id, last_seq FROM m");
      s.Bind(1, PgConnection::ArrayLiteral(ids)).Bind(2, node_id_);
      std::map<std::string, std::int64_t> last;
      while (s.Step()) last[s.Text(0)] = s.Int(1);
      return last;
    } catch (const std::exception& e) {
      // A connection that broke since its last use is replaced once.
      watch_conn_.reset();
      if (attempt < 2) continue;
      throw Error::Unavailable(std::string("The database cannot be reached (") + e.what() + "); retry shortly.");
    }
  }
}

void PgWakeBus::Watch(const std::string& mesh_id) {
  auto watched_now = [&] {
    std::lock_guard lock(watch_mu_);
    auto it = watched_.find(mesh_id);
    if (it == watched_.end()) return false;
    it->second = std::chrono::steady_clock::now();
    return true;
  };
  if (watched_now()) return;  // no round trip, nor a wait behind one
  std::lock_guard write(write_mu_);
  if (watched_now()) return;  // written meanwhile
  std::map<std::string, std::int64_t> last;
  try {
    last = WriteWatches({mesh_id});
  } catch (...) {
    rows_unsure_ = true;  // its row may have been written: MaintainWatches looks
    throw;
  }
  const auto it = last.find(mesh_id);
  if (it == last.end()) return;  // no such mesh: the caller's own read says so
  {
    std::lock_guard lock(watch_mu_);
    watched_[mesh_id] = std::chrono::steady_clock::now();
  }
  // Nothing here waits on the mesh yet (each waiter watches before it waits;
  // a watch is dropped only when nothing wants its mesh), so its next seq
  // moves past what the waiter's own read will cover, as for a notification
  // while unwanted.
  std::lock_guard queue_lock(mu_);
  RaiseTo(skipped_, mesh_id, it->second);
}

void PgWakeBus::MaintainWatches() {
  // Never waits behind a Watch's round trip: the listener has notifications to read.
  std::unique_lock write(write_mu_, std::try_to_lock);
  if (!write.owns_lock()) return;
  std::vector<std::string> drop, all;
  {
    std::lock_guard lock(watch_mu_);
    if (watched_.empty() && !resync_owed_ && !rows_unsure_) return;
    const auto now = std::chrono::steady_clock::now();
    for (auto& [mesh_id, last] : watched_) {
      if (Wanted(mesh_id)) {
        last = now;  // kept kKeepWatch from when it was last wanted
      } else if (now - last >= keep_watch_) {
        drop.push_back(mesh_id);
      }
    }
    // Gone from watched_ first: a Watch from now on writes it again, after this.
    for (const std::string& mesh_id : drop) watched_.erase(mesh_id);
    for (const auto& entry : watched_) all.push_back(entry.first);
  }
  try {
    PgConnection& conn = WatchConnection();
    // The node's rows: those of dropped watches (and of a Watch whose answer
    // was lost) go; those missing were deleted by another node's heartbeat
    // (this one taken for dead), and the appends since were not announced here.
    std::set<std::string> rows;
    {
      auto s = conn.Prepare("SELECT mesh_id FROM node_watches WHERE node_id = ?1");
      s.Bind(1, node_id_);
      while (s.Step()) rows.insert(s.Text(0));
    }
    std::vector<std::optional<std::string_view>> extra;
    for (const std::string& mesh_id : rows) {
      if (!std::binary_search(all.begin(), all.end(), mesh_id)) extra.emplace_back(mesh_id);
    }
    if (!extra.empty()) {
      conn.Prepare("DELETE FROM node_watches WHERE node_id = ?1 AND mesh_id = ANY(?2::text[])")
          .Bind(1, node_id_)
          .Bind(2, PgConnection::ArrayLiteral(extra))
          .Run();
    }
    rows_unsure_ = false;
    const bool lost = std::any_of(all.begin(), all.end(), [&](const std::string& m) { return !rows.count(m); });
    if (lost) {
      spdlog::warn("wake-ups: this node's watches were dropped by the other nodes; watching again and catching up");
      WriteWatches(all);
      resync_owed_ = true;  // until the resync is queued, whatever fails next
    }
    if (resync_owed_) {
      // Every wanted mesh catches up from what was published here.
      Enqueue(Item::Resync(NextSeqs(WatchConnection())));  // WriteWatches may have replaced it
      resync_owed_ = false;
    }
  } catch (const std::exception& e) {
    watch_conn_.reset();
    rows_unsure_ = true;  // a dropped watch's row may be left
    spdlog::debug("wake-ups: cannot look at this node's watches now ({}); next second", e.what());
  }
}

void PgWakeBus::Publish(const WakeEvent& event) {
  switch (event.kind) {
    case WakeEvent::Kind::kMessage:
      // A local commit (its notification went out in its transaction).
      Offer(Item::Of(event.message->message().mesh_id, event.message->message().seq, event.message));
      return;
    case WakeEvent::Kind::kAccessChanged:
      local_.Publish(event);
      NotifyAccess(event);
      return;
    case WakeEvent::Kind::kPresence:
      local_.Publish(event);
      NotifyPresence(event);
      return;
  }
}

void PgWakeBus::Enqueue(Item item) {
  {
    std::lock_guard lock(mu_);
    if (item.resync) item.skipped.swap(skipped_);
    queue_.push_back(std::move(item));
  }
  cv_.notify_all();
}

void PgWakeBus::Offer(Item item) {
  // Nothing here waits on the mesh now: whatever starts waiting later parks
  // first and then reads this message from storage itself.
  if (!Wanted(item.mesh_id)) {
    std::lock_guard lock(mu_);
    RaiseTo(skipped_, item.mesh_id, item.seq);
    return;
  }
  Enqueue(std::move(item));
}

void PgWakeBus::Dispatch() {
  for (;;) {
    Item item;
    std::map<std::string, std::int64_t> skipped;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (stopping_) return;
      item = std::move(queue_.front());
      queue_.pop_front();
      skipped.swap(skipped_);
    }
    // Skipped before this item was taken: published already, in effect. A
    // resync first (what it says counts as of when it was queued, capped at
    // where each mesh stood), then them; what was noted since it was queued
    // (a Watch's start) counts within it too, so a mesh watched meanwhile is
    // not caught up from where it was before.
    if (item.resync) {
      for (const auto& [mesh_id, seq] : skipped) RaiseTo(item.skipped, mesh_id, seq);
    } else {
      SkipPast(skipped);
    }
    try {
      Deliver(item);
    } catch (const std::exception& e) {
      // Storage unreachable while catching up: the next message of the mesh,
      // or the resync after reconnecting, tries again.
      spdlog::warn("wake-ups: cannot read missed messages ({}); will catch up later", e.what());
    }
    if (item.resync) SkipPast(skipped);
  }
}

void PgWakeBus::SkipPast(const std::map<std::string, std::int64_t>& skipped) {
  for (const auto& [mesh_id, seq] : skipped) {
    std::int64_t& next = next_.try_emplace(mesh_id, 1).first->second;
    next = std::max(next, seq + 1);
  }
}

void PgWakeBus::Subscribe(Subscriber subscriber, Interest interest) {
  if (interest) {
    std::lock_guard lock(mu_);  // one Subscribe at a time; readers take the pointer
    auto more = std::make_shared<std::vector<Interest>>(*std::atomic_load(&interests_));
    more->push_back(std::move(interest));
    std::atomic_store(&interests_, std::shared_ptr<const std::vector<Interest>>(std::move(more)));
  } else {
    want_all_ = true;
  }
  local_.Subscribe(std::move(subscriber));
}

bool PgWakeBus::Wanted(const std::string& mesh_id) const {
  if (want_all_) return true;
  const auto interests = std::atomic_load(&interests_);
  for (const Interest& wants : *interests) {
    if (wants(mesh_id)) return true;
  }
  return false;
}

void PgWakeBus::Deliver(const Item& item) {
  if (item.resync) {
    // A mesh nothing here waits on moves to where it stood before this check
    // (whoever starts waiting reads that far itself), so a later watcher is
    // not handed what it has read already.
    for (const auto& [mesh_id, next] : item.latest) {
      std::int64_t& mine = next_.try_emplace(mesh_id, 1).first->second;
      if (!Wanted(mesh_id)) {
        mine = next;  // set, not raised: seqs a crash took back are handed out again
      } else if (auto skipped = item.skipped.find(mesh_id); skipped != item.skipped.end()) {
        // Skipped while nobody waited, but no further than where it stands.
        mine = std::max(mine, std::min(skipped->second + 1, next));
      }
    }
    for (const auto& entry : next_) {
      if (Wanted(entry.first)) CatchUp(entry.first, std::numeric_limits<std::int64_t>::max());
    }
    return;
  }
  std::int64_t& next = next_.try_emplace(item.mesh_id, 1).first->second;
  if (item.seq < next) return;  // published already
  if (!Wanted(item.mesh_id)) {
    // Nobody here waits on the mesh: nothing to read or hand over. This seq
    // and every smaller one are committed; whoever starts waiting reads them.
    next = item.seq + 1;
    return;
  }
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
  while (PGnotify* note = PQnotifies(raw)) {
    const std::string channel = note->relname;
    const std::string payload = note->extra ? note->extra : "";
    PQfreemem(note);
    if (channel == "meshwire_messages") {
      auto p = ParseMessagePayload(payload);
      if (p && p->node != node_id_) Offer(Item::Of(p->mesh_id, p->seq));
    } else if (channel == "meshwire_access") {
      // "ORIGIN N [m=MESH [a=AGENT,...]] [t=TOKEN]": forget cached
      // identities (and answer the parked polls the change ends), then tell
      // ORIGIN it is done.
      std::istringstream in(payload);
      std::string origin, n;
      if (!(in >> origin >> n) || origin == node_id_) continue;
      if (access_delay_ms_ > 0) std::this_thread::sleep_for(std::chrono::milliseconds(access_delay_ms_));
      WakeEvent e;
      e.kind = WakeEvent::Kind::kAccessChanged;
      e.ended = ParseEnded(in);
      local_.Publish(e);
      try {
        conn.Prepare("SELECT pg_notify('meshwire_access_ack', ?1)").Bind(1, origin + " " + n + " " + node_id_).Step();
      } catch (const std::exception&) {
        return false;  // the connection is gone: reconnect
      }
    } else if (channel == "meshwire_presence") {
      // "NODE MESH AGENT-JSON": another node's presence event, for this
      // node's event streams of the mesh.
      std::istringstream in(payload);
      std::string origin, mesh_id;
      if (!(in >> origin >> mesh_id) || origin == node_id_) continue;
      std::string json_text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      try {
        WakeEvent e;
        e.kind = WakeEvent::Kind::kPresence;
        e.mesh_id = mesh_id;
        Agent agent = AgentFromJson(nlohmann::json::parse(json_text), &e.agent_status, &e.listening);
        agent.mesh_id = mesh_id;
        e.agent = std::make_shared<const Agent>(std::move(agent));
        local_.Publish(e);
      } catch (const std::exception& err) {
        spdlog::debug("wake-ups: a presence notification that does not parse ({}); ignored", err.what());
      }
    } else if (channel == "meshwire_access_ack") {
      // "ORIGIN N NODE": NODE forgot its identities after change N of ORIGIN.
      std::istringstream in(payload);
      std::string origin, node;
      std::uint64_t n = 0;
      if (!(in >> origin >> n >> node) || origin != node_id_) continue;
      {
        std::lock_guard lock(ack_mu_);
        if (auto it = acks_.find(n); it != acks_.end()) it->second.insert(node);
      }
      ack_cv_.notify_all();
    }
  }
  return PQstatus(raw) == CONNECTION_OK;
}

void PgWakeBus::AnnounceFromOutside(const std::string& conninfo, const WakeEvent::Ended& ended) {
  // An origin no node has (node ids are 10 base62 characters), so every node
  // acts on it; the nodes' confirmations go to nobody.
  PgConnection conn(conninfo);
  conn.Prepare("SELECT pg_notify('meshwire_access', ?1)")
      .Bind(1, "outside-" + std::to_string(::getpid()) + " 1" + FormatEnded(ended))
      .Step();
}

void PgWakeBus::NotifyPresence(const WakeEvent& event) {
  // Advisory, as presence is: to the nodes that watch the mesh, at most
  // once (a lost connection is replaced at the next event).
  const std::string payload =
      node_id_ + " " + event.mesh_id + " " +
      ToJson(*event.agent, event.agent_status, event.listening)
          .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  if (payload.size() > kMaxPayload) return;  // names are bounded far below: never in practice
  std::lock_guard lock(notify_mu_);
  try {
    if (!notify_conn_) notify_conn_ = std::make_unique<PgConnection>(conninfo_);
    notify_conn_
        ->Prepare("SELECT pg_notify('meshwire_presence', ?1)"
                  " WHERE EXISTS (SELECT 1 FROM node_watches WHERE mesh_id = ?2 AND node_id <> ?3)")
        .Bind(1, payload)
        .Bind(2, event.mesh_id)
        .Bind(3, node_id_)
        .Step();
  } catch (const std::exception& e) {
    notify_conn_.reset();
    spdlog::debug("wake-ups: could not tell the other nodes of a presence change ({})", e.what());
  }
}

void PgWakeBus::NotifyAccess(const WakeEvent& event) {
  // Told, then confirmed: the change is answered only once every other live
  // node (a heartbeat in `nodes` within PostgresStore::kNodeAliveMs) has
  // forgotten its cached identities, so their next request reads the change.
  std::uint64_t n = 0;
  std::set<std::string> peers;
  {
    std::lock_guard lock(notify_mu_);
    // Twice at most: a connection that broke since its last use (it can,
    // between a check and a statement) is replaced and the change told again.
    for (int attempt = 1;; ++attempt) {
      try {
        if (!notify_conn_) notify_conn_ = std::make_unique<PgConnection>(conninfo_);
        peers.clear();
        auto s = notify_conn_->Prepare(PostgresStore::kOtherLiveNodes);
        s.Bind(1, node_id_).Bind(2, std::int64_t{PostgresStore::kNodeAliveMs});
        while (s.Step()) peers.insert(s.Text(0));
        n = ++access_seq_;
        {
          std::lock_guard ack_lock(ack_mu_);
          acks_[n];
        }
        notify_conn_->Prepare("SELECT pg_notify('meshwire_access', ?1)")
            .Bind(1, node_id_ + " " + std::to_string(n) + FormatEnded(event.ended))
            .Step();
        break;
      } catch (const std::exception& e) {
        notify_conn_.reset();
        if (n > 0) {
          std::lock_guard ack_lock(ack_mu_);
          acks_.erase(n);
          n = 0;
        }
        if (attempt < 2) continue;
        spdlog::warn("wake-ups: could not tell the other nodes of an access change ({}); they see it when "
                     "their cache is next cleared",
                     e.what());
        return;
      }
    }
  }
  std::unique_lock lock(ack_mu_);
  auto confirmed = [&] {
    const auto& got = acks_[n];
    return std::includes(got.begin(), got.end(), peers.begin(), peers.end());
  };
  if (!ack_cv_.wait_for(lock, kAckWait, confirmed)) {
    std::string missing;
    for (const auto& p : peers) {
      if (!acks_[n].count(p)) missing += (missing.empty() ? "" : ", ") + p;
    }
    spdlog::warn("access change: node(s) {} did not confirm within 2 s (a node that lost its database "
                 "connection reads every identity from the database until it is back)",
                 missing);
  }
  acks_.erase(n);
}

}  // namespace meshwire
