// The WakeBus of relay nodes that share one PostgreSQL database.
//
// Messages: each transaction that appends sends pg_notify('meshwire_messages',
// "SEQ MESH NODE") for each mesh it wrote that another node watches, SEQ the
// newest (PostgresStore), so a notification exists exactly when its messages
// committed, and arrives in commit order. Every node LISTENs.
//
// Watches: a node watches a mesh while something on it waits on the mesh
// (Watch, called by each waiter before it reads what it waits on: one row in
// node_watches, written with the mesh row locked, so each concurrent append
// either sees the watch and notifies, or committed before the waiter's read).
// A node that only sends costs the others nothing. Each second the listener
// thread drops the watches nothing has wanted for kKeepWatch, and checks that
// the node's rows are all there: a node taken for dead (a minute without
// its heartbeat) loses them to the other nodes' heartbeats; it writes them
// again and catches every mesh up, as after a reconnect. One dispatcher thread per node publishes the messages of each mesh
// to the node's subscribers (its parked polls, its event streams) strictly in
// seq order, each once, whichever node committed them: a local commit is
// handed over with its message (no read); a seq that jumps ahead of the last
// one published (another node's message not yet announced here, or a
// notification lost while the connection was down) is first filled from
// storage. A seq can be taken only once every smaller one of its mesh has
// committed (the mesh row is locked until commit), so the read always finds
// them. A mesh that nothing on this node waits on (no parked poll, event
// stream or MCP session: the subscribers' Interest) is not read at all: its
// next seq just moves on, and the dispatcher thread is not even woken for it
// (on a node that only sends, no notification costs more than its receipt).
//
// Access changes (a token revoked, a member removed, ...) reach this node's
// subscribers, and every other live node through pg_notify('meshwire_access'),
// before Publish returns: each node forgets its cached identities and
// confirms on 'meshwire_access_ack', and Publish waits for them (at most 2 s;
// live: a heartbeat in the `nodes` table, see PostgresStore). The
// notification names whose parked polls the change ends (WakeEvent::Ended),
// and every node answers them at once. While its
// listening connection is down a node caches no identity. Presence events
// go to the nodes that watch their mesh (pg_notify('meshwire_presence'),
// for their event streams); which agents listen where is shared through
// tables (PostgresStore::ShareListening).
//
// The listening connection reconnects by itself (1, 2, 5 s), LISTENs again
// and then catches up every mesh it knows from storage, so parked polls get
// what committed meanwhile.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <iosfwd>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "server/core/store.h"
#include "server/core/wake_bus.h"

namespace meshwire {

class PgConnection;

class PgWakeBus final : public WakeBus {
 public:
  /// LISTENs on `conninfo` (throws Error 503 when it cannot); reads missed
  /// messages through `store`, which must outlive the bus. `node_id` names
  /// this node in its notifications (its own are not announced twice).
  PgWakeBus(const std::string& conninfo, Store& store, std::string node_id);
  ~PgWakeBus() override;

  void Publish(const WakeEvent& event) override;
  void Subscribe(Subscriber subscriber, Interest interest = nullptr) override;
  void Watch(const std::string& mesh_id) override;

  /// How long a watch stays once nothing here wants its mesh (a long-poll's
  /// client is between two polls).
  static constexpr std::chrono::seconds kKeepWatch{10};
  /// Tests shorten kKeepWatch (before the first Watch).
  void SetKeepWatch(std::chrono::milliseconds keep) { keep_watch_ = keep; }

  /// A message notification's payload, "SEQ MESH NODE" (PostgresStore
  /// sends it with each append), parsed.
  struct Parsed {
    std::int64_t seq = 0;
    std::string mesh_id, node;
  };
  static std::optional<Parsed> ParseMessagePayload(const std::string& payload);
  /// An access change's Ended as its notification's words, " m=MESH
  /// a=AGENT,AGENT t=TOKEN" (empty ones left out), and back.
  static std::string FormatEnded(const WakeEvent::Ended& ended);
  static WakeEvent::Ended ParseEnded(std::istream& in);
  /// Tells every node on `conninfo`'s database of an access change made by
  /// a process that is no node (`meshwire admin token revoke`): each forgets
  /// its cached identities and ends the polls `ended` names, as for a
  /// node's change; nobody waits for their confirmations. Throws Error 503
  /// when the database cannot be reached.
  static void AnnounceFromOutside(const std::string& conninfo, const WakeEvent::Ended& ended);

 private:
  struct Item {
    std::string mesh_id;
    std::int64_t seq = 0;
    CommittedPtr message;  // a local commit's, else null (read from storage)
    bool resync = false;   // after a reconnect: catch every known mesh up
    std::map<std::string, std::int64_t> latest;  // resync: each mesh's next seq, read before
    std::map<std::string, std::int64_t> skipped;  // resync: skipped_ when it was queued

    /// A message of `mesh_id` committed as `seq` (`message`: a local commit's).
    static Item Of(std::string mesh_id, std::int64_t seq, CommittedPtr message = nullptr) {
      Item item;
      item.mesh_id = std::move(mesh_id);
      item.seq = seq;
      item.message = std::move(message);
      return item;
    }
    /// After a reconnect: every mesh's next seq, read after LISTEN.
    static Item Resync(std::map<std::string, std::int64_t> latest) {
      Item item;
      item.resync = true;
      item.latest = std::move(latest);
      return item;
    }
  };
  void Enqueue(Item item);
  /// A message item: to the dispatcher when a subscriber here waits on its
  /// mesh, else only noted in skipped_ (the dispatcher is not woken).
  void Offer(Item item);
  bool Wanted(const std::string& mesh_id) const;  // a subscriber's Interest
  void Dispatch();                          // the dispatcher thread
  /// Moves each mesh's next seq past what `skipped` says (dispatcher thread).
  void SkipPast(const std::map<std::string, std::int64_t>& skipped);
  void Deliver(const Item& item);           // on the dispatcher thread
  void CatchUp(const std::string& mesh_id, std::int64_t upto);  // publishes next..upto from storage
  void Listen();                            // the listener thread
  bool ListenOnce(PgConnection& conn);      // false: connection lost
  void NotifyAccess(const WakeEvent& event);
  /// A presence event, to the other nodes that watch its mesh (their event
  /// streams show it); never waits for them.
  void NotifyPresence(const WakeEvent& event);
  /// Writes this node's watch of each of `mesh_ids`, each mesh row locked
  /// meanwhile; returns the newest seq of each that exists. write_mu_ held.
  std::map<std::string, std::int64_t> WriteWatches(const std::vector<std::string>& mesh_ids);
  /// watch_conn_, opened if it is not. write_mu_ held.
  PgConnection& WatchConnection();
  /// The listener thread's each second: drops what nothing wants, writes
  /// lost watches again and catches up.
  void MaintainWatches();

  std::string conninfo_;
  Store& store_;
  std::string node_id_;
  int access_delay_ms_ = 0;  // MESHWIRE_TEST_ACCESS_DELAY_MS: tests only
  LocalWakeBus local_;
  // The subscribers' Interests, read by the listener, writer and dispatcher
  // threads while the relay may still be subscribing: replaced, never changed.
  std::shared_ptr<const std::vector<Interest>> interests_ = std::make_shared<const std::vector<Interest>>();
  std::atomic<bool> want_all_{false};  // a subscriber gave no Interest

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Item> queue_;  // guarded by mu_
  // Per mesh, the newest seq announced while nothing here waited on it: the
  // dispatcher moves its next seq past it before its next item (so a mesh
  // that gets a watcher later is not read from where it was). A resync takes
  // what was noted before it was queued: those seqs may have been taken back
  // by a database crash, so they count only up to where the mesh stands
  // now. Guarded by mu_.
  std::map<std::string, std::int64_t> skipped_;
  bool stopping_ = false;   // guarded by mu_

  // Dispatcher thread only: per mesh, the next seq to publish. A mesh not
  // here was created after the node started listening: it starts at 1.
  std::map<std::string, std::int64_t> next_;

  std::mutex notify_mu_;
  std::unique_ptr<PgConnection> notify_conn_;  // guarded by notify_mu_: access notifications
  std::uint64_t access_seq_ = 0;               // guarded by notify_mu_: numbers this node's changes

  // Confirmations of this node's access changes: change number -> nodes that
  // confirmed (NotifyAccess waits on them).
  std::mutex ack_mu_;
  std::condition_variable ack_cv_;
  std::map<std::uint64_t, std::set<std::string>> acks_;  // guarded by ack_mu_

  // Watches (see the top). write_mu_ serializes their writes (held across
  // round trips); watch_mu_ guards the map only, so a Watch of a mesh
  // already watched never waits on the database. Neither is held while a
  // waiter's lock is: Watch is called with none, and the listener asks the
  // Interests under watch_mu_.
  std::mutex write_mu_;
  std::unique_ptr<PgConnection> watch_conn_;  // guarded by write_mu_
  bool resync_owed_ = false;                  // guarded by write_mu_: lost watches written again, resync not queued
  bool rows_unsure_ = false;                  // guarded by write_mu_: rows this node does not know may be left
  std::mutex watch_mu_;
  // mesh -> when it was last watched or wanted; guarded by watch_mu_
  std::map<std::string, std::chrono::steady_clock::time_point> watched_;
  std::chrono::steady_clock::time_point next_maintenance_{};  // listener thread only
  std::chrono::milliseconds keep_watch_{kKeepWatch};

  std::atomic<bool> listening_{false};
  std::thread dispatcher_;
  std::thread listener_;
};

}  // namespace meshwire
