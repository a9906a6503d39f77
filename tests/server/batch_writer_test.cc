// BatchWriter: group commit on a stand-in connection that records what ran.
#include "server/storage/batch_writer.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <future>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
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
  int failures_at_commit = 0;   // the next commits that fail (a database away)
  void Begin() { Note("BEGIN"); }
  void Commit() {
    if (failures_at_commit > 0) {
      --failures_at_commit;
      Note("COMMIT failed");
      throw std::runtime_error("server closed the connection unexpectedly");
    }
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

/// A batch held open: its op notes `name`, says it started, and waits until released.
struct HeldBatch {
  std::promise<void> entered;
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  std::function<void(FakeConn&)> Op(std::string name) {
    return [this, name](FakeConn& k) {
      k.Note(name);
      entered.set_value();
      released.wait();
    };
  }
};

/// Returns once the writer thread waits for work with nothing queued or
/// running, so that what an event loop queues next is left to its tail.
void AwaitIdle(BatchWriter<FakeConn>& writer) {
  const auto deadline = Clock::now() + std::chrono::seconds(10);
  while (!writer.Idle() && Clock::now() < deadline) std::this_thread::yield();
  REQUIRE(writer.Idle());
}

/// A writer whose event loops commit what they queue at their tail
/// (SetInline), on a FakeConn that fails its next `failed_commits` commits.
struct InlineWriter {
  Log log;
  BatchWriter<FakeConn> writer;
  explicit InlineWriter(int failed_commits = 0)
      : writer(std::make_unique<FakeConn>(FakeConn{&log, 0, failed_commits})) {
    writer.SetInline(true);
    AwaitIdle(writer);  // a writer thread still starting would take the first op
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


TEST_CASE("HandOffBatch: work for a target is gathered while a batch is open and handed over at its end, in order") {
  static std::vector<std::pair<int, std::vector<int>>> flushed;  // (target, work's numbers)
  flushed.clear();
  HandOffBatch::Flush flush = [](void* target, std::vector<HandOffBatch::Work> work) {
    std::vector<int> ran;
    for (auto& w : work) {
      w();
      ran.push_back(static_cast<int>(ran.size()));
    }
    flushed.emplace_back(*static_cast<int*>(target), ran);
  };
  int one = 1, two = 2;
  std::vector<int> order;
  CHECK_FALSE(HandOffBatch::Open());
  {
    HandOffBatch batch;
    REQUIRE(HandOffBatch::Open());
    HandOffBatch::Add(&one, flush, [&] { order.push_back(10); });
    HandOffBatch::Add(&two, flush, [&] { order.push_back(20); });
    {
      HandOffBatch inner;  // joins the outer batch: nothing is handed over at its end
      HandOffBatch::Add(&one, flush, [&] { order.push_back(11); });
    }
    CHECK(flushed.empty());
    CHECK(order.empty());
  }
  CHECK_FALSE(HandOffBatch::Open());
  // One hand-over per target, in the order of first use; each target's work in order.
  REQUIRE(flushed.size() == 2);
  CHECK(flushed[0] == std::pair<int, std::vector<int>>{1, {0, 1}});
  CHECK(flushed[1] == std::pair<int, std::vector<int>>{2, {0}});
  CHECK(order == std::vector<int>{10, 11, 20});
}

TEST_CASE("BatchWriter answers a batch inside a HandOffBatch, so its answers' hand-offs go together") {
  Log log;
  BatchWriter<FakeConn> writer(std::make_unique<FakeConn>(FakeConn{&log}));
  std::promise<bool> open_in_answer;
  writer.Submit([](FakeConn& k) { k.Note("op"); }, nullptr,
                [&](std::exception_ptr e) { open_in_answer.set_value(!e && HandOffBatch::Open()); });
  CHECK(open_in_answer.get_future().get());
  CHECK_FALSE(HandOffBatch::Open());  // not on this thread
}

TEST_CASE("BatchWriter::SetInline: an event loop commits what it queued at its tail, on its own thread") {
  InlineWriter fixture;
  auto& [log, writer] = fixture;
  std::thread loop([&] {
    LoopTail::Enable();
    std::thread::id ran_on;
    bool answered = false;
    writer.Submit([&](FakeConn& k) {
      ran_on = std::this_thread::get_id();
      k.Note("a");
    }, nullptr, [&](std::exception_ptr e) {
      CHECK(!e);
      answered = true;
    });
    writer.RunLater([](FakeConn& k) { k.Note("b"); });
    // Nothing woke the writer thread: both wait for this thread's tail.
    CHECK_FALSE(answered);
    {
      std::lock_guard lock(log.mu);
      CHECK(log.lines.empty());
    }
    LoopTail::Run();
    CHECK(answered);
    CHECK(ran_on == std::this_thread::get_id());
    {
      std::lock_guard lock(log.mu);
      CHECK(log.lines == std::vector<std::string>{"BEGIN", "a", "b", "COMMIT"});
    }
    // A write its caller waits for is never left to the tail (it would wait forever).
    writer.Run([](FakeConn& k) { k.Note("c"); });
    std::lock_guard lock(log.mu);
    CHECK(log.lines.size() == 7);
  });
  loop.join();
  CHECK(writer.commits() == 2);
}

TEST_CASE("BatchWriter::SetInline: an event loop's tail leaves its ops to the writer thread while it commits a batch") {
  InlineWriter fixture;
  auto& [log, writer] = fixture;
  HeldBatch held;
  writer.Submit(held.Op("slow"), nullptr, [](std::exception_ptr e) { CHECK(!e); });
  held.entered.get_future().wait();  // the writer thread is in its batch
  std::promise<std::thread::id> answered_on;
  std::thread::id loop_id;
  std::thread loop([&] {
    loop_id = std::this_thread::get_id();
    LoopTail::Enable();
    writer.Submit([](FakeConn& k) { k.Note("queued"); }, nullptr,
                  [&](std::exception_ptr e) {
                    CHECK(!e);
                    answered_on.set_value(std::this_thread::get_id());
                  });
    LoopTail::Run();  // returns at once: a batch is running
  });
  loop.join();
  held.release.set_value();
  auto answered = answered_on.get_future();
  REQUIRE(answered.wait_for(std::chrono::seconds(10)) == std::future_status::ready);
  CHECK(answered.get() != loop_id);
  std::lock_guard lock(log.mu);
  CHECK(log.lines == std::vector<std::string>{"BEGIN", "slow", "COMMIT", "BEGIN", "queued", "COMMIT"});
}

TEST_CASE("BatchWriter::SetInline: an op another thread queues while an event loop commits runs after it") {
  InlineWriter fixture;
  auto& [log, writer] = fixture;
  HeldBatch held;
  std::thread loop([&] {
    LoopTail::Enable();
    writer.Submit(held.Op("inline"), nullptr, [](std::exception_ptr e) { CHECK(!e); });
    LoopTail::Run();
  });
  held.entered.get_future().wait();
  // It wakes the writer thread, which finds a batch running and waits; the
  // batch's end must wake it again. (The pause lets it reach that wait.)
  std::promise<void> queued_done;
  writer.Submit([](FakeConn& k) { k.Note("queued"); }, nullptr, [&](std::exception_ptr e) {
    CHECK(!e);
    queued_done.set_value();
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  held.release.set_value();
  loop.join();
  CHECK(queued_done.get_future().wait_for(std::chrono::seconds(10)) == std::future_status::ready);
  std::lock_guard lock(log.mu);
  CHECK(log.lines == std::vector<std::string>{"BEGIN", "inline", "COMMIT", "BEGIN", "queued", "COMMIT"});
}

TEST_CASE("BatchWriter::SetInline: after a failed commit the writer thread commits, until one of its commits succeeds") {
  InlineWriter fixture(1);
  auto& [log, writer] = fixture;
  std::thread loop([&] {
    LoopTail::Enable();
    const auto here = std::this_thread::get_id();
    // Each op notes whether it ran at this thread's tail; answered is set by its completion.
    std::promise<void> second_answered;
    auto submit = [&](const char* name, std::promise<bool>& ran_here) {
      writer.Submit([&, name, here](FakeConn& k) {
        k.Note(name);
        ran_here.set_value(std::this_thread::get_id() == here);
      }, nullptr, [&, name](std::exception_ptr) {
        if (std::string(name) == "second") second_answered.set_value();
      });
    };
    std::promise<bool> first, second, third;
    submit("first", first);  // its commit fails: the database is away
    LoopTail::Run();
    CHECK(first.get_future().get());
    submit("second", second);  // not left to the tail: the writer thread commits it
    LoopTail::Run();
    auto second_ran = second.get_future();
    REQUIRE(second_ran.wait_for(std::chrono::seconds(10)) == std::future_status::ready);
    CHECK_FALSE(second_ran.get());
    // That commit was quick and succeeded: the tail commits again, once the
    // writer thread is done with its batch (it answers before it is).
    second_answered.get_future().wait();
    AwaitIdle(writer);
    submit("third", third);
    LoopTail::Run();
    auto third_ran = third.get_future();
    REQUIRE(third_ran.wait_for(std::chrono::seconds(10)) == std::future_status::ready);
    CHECK(third_ran.get());
  });
  loop.join();
  std::lock_guard lock(log.mu);
  CHECK(log.lines == std::vector<std::string>{"BEGIN", "first", "COMMIT failed", "ROLLBACK", "BEGIN", "second",
                                              "COMMIT", "BEGIN", "third", "COMMIT"});
}

TEST_CASE("LoopTail::Disable runs what was deferred, and after it nothing waits for a tail") {
  InlineWriter fixture;
  auto& [log, writer] = fixture;
  std::thread loop([&] {
    LoopTail::Enable();
    bool first = false;
    writer.Submit([](FakeConn& k) { k.Note("first"); }, nullptr, [&](std::exception_ptr) { first = true; });
    CHECK_FALSE(first);
    LoopTail::Disable();  // the loop ended
    CHECK(first);
    CHECK_FALSE(LoopTail::Enabled());
    // Now the writer thread commits (a tail would never come).
    std::promise<bool> ran_here;
    writer.Submit([&, here = std::this_thread::get_id()](FakeConn& k) {
      k.Note("second");
      ran_here.set_value(std::this_thread::get_id() == here);
    }, nullptr, [](std::exception_ptr) {});
    auto ran = ran_here.get_future();
    REQUIRE(ran.wait_for(std::chrono::seconds(10)) == std::future_status::ready);
    CHECK_FALSE(ran.get());
  });
  loop.join();
}

}  // namespace meshwire
