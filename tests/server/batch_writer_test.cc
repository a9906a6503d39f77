// BatchWriter: group commit on a stand-in connection that records what ran.
#include "server/storage/batch_writer.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <future>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

namespace meshwire {
namespace {

using Clock = std::chrono::steady_clock;

/// What the stand-in connection ran, in order; outlives the writer.
struct Log {
  std::mutex mu;
  std::vector<std::string> lines;
};

/// Records each transaction's ops in a Log.
// The database rolled a transaction back over a conflict with another.
struct Conflict : std::runtime_error, TransactionConflict {
  Conflict() : std::runtime_error("deadlock detected") {}
};

struct FakeConn {
  Log* log;
  int conflicts_at_commit = 0;  // the next commits that fail with a Conflict
  void Begin() { Note("BEGIN"); }
  void Commit() {
    if (conflicts_at_commit > 0) {
      --conflicts_at_commit;
      Note("COMMIT rolled back");
      throw Conflict();
    }
    Note("COMMIT");
  }
  void Rollback() { Note("ROLLBACK"); }
  void Note(std::string what) {
    std::lock_guard lock(log->mu);
    log->lines.push_back(std::move(what));
  }
};

}  // namespace

TEST_CASE("BatchWriter::SubmitAfter runs an op no sooner than its delay, and at once when the writer stops") {
  Log log;
  {
    BatchWriter<FakeConn> writer(std::make_unique<FakeConn>(FakeConn{&log}));
    std::promise<Clock::time_point> delayed_done;
    const auto submitted = Clock::now();
    writer.SubmitAfter(
        std::chrono::milliseconds(150), [](FakeConn& k) { k.Note("late"); }, nullptr,
        [&](std::exception_ptr e) {
          CHECK(!e);
          delayed_done.set_value(Clock::now());
        });
    // An op submitted after it, without delay, commits first.
    writer.Run([](FakeConn& k) { k.Note("now"); });
    {
      std::lock_guard lock(log.mu);
      CHECK(log.lines == std::vector<std::string>{"BEGIN", "now", "COMMIT"});
    }
    const auto ran = delayed_done.get_future().get();
    CHECK(ran - submitted >= std::chrono::milliseconds(150));

    // Stopping does not wait for the delay: the op runs before the writer is gone.
    writer.SubmitAfter(std::chrono::hours(1), [](FakeConn& k) { k.Note("at stop"); }, nullptr,
                       [](std::exception_ptr e) { CHECK(!e); });
  }
  std::lock_guard lock(log.mu);
  REQUIRE(log.lines.size() == 9);
  CHECK(log.lines[4] == "late");
  CHECK(log.lines[7] == "at stop");
}

TEST_CASE("BatchWriter: a batch the database rolled back over a conflict runs again, whole; past the retries it is a 503") {
  Log log;
  {
    BatchWriter<FakeConn> writer(std::make_unique<FakeConn>(FakeConn{&log, 2}));
    writer.Run([](FakeConn& k) { k.Note("op"); });  // succeeds on its third run
  }
  {
    std::lock_guard lock(log.mu);
    CHECK(log.lines == std::vector<std::string>{"BEGIN", "op", "COMMIT rolled back", "ROLLBACK", "BEGIN", "op",
                                                "COMMIT rolled back", "ROLLBACK", "BEGIN", "op", "COMMIT"});
    log.lines.clear();
  }
  {
    BatchWriter<FakeConn> writer(std::make_unique<FakeConn>(FakeConn{&log, 100}));
    try {
      writer.Run([](FakeConn& k) { k.Note("op"); });
      FAIL("a batch that never committed was answered as committed");
    } catch (const Error& e) {
      CHECK(e.status() == 503);
    }
  }
  std::lock_guard lock(log.mu);
  CHECK(std::count(log.lines.begin(), log.lines.end(), "op") == 4);  // the first run and 3 more
  CHECK(std::count(log.lines.begin(), log.lines.end(), "COMMIT") == 0);
}

}  // namespace meshwire
