// BatchWriter: group commit on a stand-in connection that records what ran.
#include "server/storage/batch_writer.h"

#include <doctest/doctest.h>

#include <chrono>
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
struct FakeConn {
  Log* log;
  void Begin() { Note("BEGIN"); }
  void Commit() { Note("COMMIT"); }
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

TEST_CASE("BatchWriter with a durability stage: nothing is answered before the stage says durable; the writer goes on meanwhile") {
  Log log;
  std::mutex mu;
  std::vector<BatchWriter<FakeConn>::Answer> held;  // the stage's answers, not given yet
  BatchWriter<FakeConn> writer(std::make_unique<FakeConn>(FakeConn{&log}));
  writer.SetDurability([&](BatchWriter<FakeConn>::Answer answer) {
    std::lock_guard lock(mu);
    held.push_back(std::move(answer));
  });
  auto held_count = [&] {
    std::lock_guard lock(mu);
    return held.size();
  };
  auto wait_for_held = [&](std::size_t n) {
    for (int i = 0; i < 500 && held_count() < n; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(2));
    REQUIRE(held_count() == n);
  };

  std::promise<std::exception_ptr> first_done;
  bool first_after_commit = false;
  writer.Submit([](FakeConn& k) { k.Note("first"); }, [&] { first_after_commit = true; },
                [&](std::exception_ptr e) { first_done.set_value(e); });
  auto first = first_done.get_future();
  wait_for_held(1);
  // Committed, not yet durable: not answered, its after_commit not run.
  CHECK(first.wait_for(std::chrono::milliseconds(50)) == std::future_status::timeout);
  CHECK(!first_after_commit);

  // The writer commits the next batch meanwhile; the stage fails it.
  std::promise<std::exception_ptr> second_done;
  bool second_after_commit = false;
  writer.Submit([](FakeConn& k) { k.Note("second"); }, [&] { second_after_commit = true; },
                [&](std::exception_ptr e) { second_done.set_value(e); });
  wait_for_held(2);
  {
    std::lock_guard lock(log.mu);
    CHECK(log.lines == std::vector<std::string>{"BEGIN", "first", "COMMIT", "BEGIN", "second", "COMMIT"});
  }

  std::vector<BatchWriter<FakeConn>::Answer> answers;
  {
    std::lock_guard lock(mu);
    answers.swap(held);
  }
  answers[0](nullptr);
  CHECK(first.get() == nullptr);
  CHECK(first_after_commit);
  answers[1](std::make_exception_ptr(std::runtime_error("flush failed")));
  auto second = second_done.get_future().get();
  CHECK(second != nullptr);
  CHECK(!second_after_commit);  // a failed flush: nobody is told it committed

  // Run waits for the stage too, and rethrows its failure.
  auto run = std::async(std::launch::async, [&] { writer.Run([](FakeConn& k) { k.Note("third"); }); });
  wait_for_held(1);
  CHECK(run.wait_for(std::chrono::milliseconds(50)) == std::future_status::timeout);
  {
    std::lock_guard lock(mu);
    held[0](std::make_exception_ptr(std::runtime_error("flush failed")));
  }
  CHECK_THROWS(run.get());
}

}  // namespace meshwire
