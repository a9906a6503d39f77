// Makes one relay node's PostgreSQL writes durable after they commit.
//
// The node's writer commits with synchronous_commit off (PgConnection::
// CommitWithoutWaiting): its locks, the mesh row that hands out each `seq`
// among them, are released at the COMMIT instead of after the WAL flush, so
// nodes writing one mesh do not take turns through each other's flushes.
// Nobody is answered yet. This thread then runs a barrier: one small
// transaction of its own, committed synchronously (as the server's
// synchronous_commit says: on, or a standby's remote_apply), that bumps this
// node's row in `node_flushes`. Its commit record comes after every commit
// made before it started, and the WAL is flushed in order, so when it
// returns those are durable, and their answers are given, in commit order.
// One barrier serves every batch that committed meanwhile (group flush), and
// PostgreSQL flushes several nodes' barriers together.
//
// Readers: a commit is visible before it is durable. A read that found
// messages asks WaitDurable for the WAL position its snapshot could see, so
// no node returns a message that a database crash could take back (and whose
// `seq` it would then give to another message).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace meshwire {

class PgConnection;

class PgFlusher {
 public:
  /// Opens its own connection on first use; `node_id` names this node's row.
  PgFlusher(std::string conninfo, std::string node_id);
  /// Runs a last barrier for what is waiting, then stops (and removes the row).
  ~PgFlusher();
  PgFlusher(const PgFlusher&) = delete;
  PgFlusher& operator=(const PgFlusher&) = delete;

  /// Calls `answer` on the flusher's thread after the next barrier that starts
  /// after this call: null when it committed, else its failure (Error 503).
  /// Answers are called in the order given.
  using Answer = std::function<void(std::exception_ptr)>;
  void After(Answer answer);

  /// Returns once the WAL is durable up to `lsn` (a position, as bytes from
  /// 0/0), waiting for a barrier when it may not be; throws Error 503 when
  /// the barrier fails.
  void WaitDurable(std::uint64_t lsn);

  /// SQL on any connection: this moment's WAL insert position and flush
  /// position, as bytes from 0/0 (a read's rows are durable when, read after
  /// them, the second is at least the first).
  static const char* const kWalPositions;

 private:
  void Loop();
  /// One barrier: the WAL position it made durable. Tried twice (see .cc).
  std::uint64_t Barrier();
  std::uint64_t BarrierOnce();

  std::string conninfo_;
  std::string node_id_;
  std::unique_ptr<PgConnection> conn_;  // the flusher's thread only

  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Answer> waiting_;     // for the next barrier; guarded by mu_
  std::uint64_t durable_lsn_ = 0;   // guarded by mu_
  bool stopping_ = false;           // guarded by mu_
  bool stopped_ = false;            // guarded by mu_: the thread has ended
  std::uint64_t barriers_ = 0;      // the flusher's thread only
  std::thread thread_;
};

}  // namespace meshwire
