// The parked long-polls: who is woken by what and with which messages,
// deadlines on a ManualClock, the bounds per agent, per token and in all,
// cancellation (a client that hung up), and shutdown.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "schemas/error.h"
#include "server/core/waiters.h"

namespace meshwire {

namespace {

using Outcome = Waiters::Outcome;

/// What a completion was called with (and how often).
struct Record {
  std::atomic<int> calls{0};
  Outcome outcome = Outcome::kCancelled;
  std::vector<std::int64_t> seqs;

  Waiters::Completion Completion() {
    return [this](Outcome o, std::vector<CommittedPtr> messages) {
      outcome = o;
      for (const auto& m : messages) seqs.push_back(m->message().seq);
      ++calls;
    };
  }
};

CommittedPtr Msg(std::int64_t seq, const std::string& from, const std::string& to,
                 const std::string& mesh = "m") {
  Message m;
  m.id = std::to_string(seq);
  m.seq = seq;
  m.mesh_id = mesh;
  m.from = from;
  m.to = to;
  return std::make_shared<const CommittedMessage>(m);
}

Waiters::Limits Small(std::size_t total = 100) {
  Waiters::Limits l;
  l.total = total;
  l.per_agent = 3;
  l.per_token = 5;
  return l;
}

int Status(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.status();
  }
  return 0;
}

}  // namespace

TEST_CASE("a direct message wakes its recipient only, with the message") {
  ManualClock clock(0);
  Waiters w(clock, Small());
  Record b, c;
  auto tb = w.Park("m", "b", "tok", 0, 60000);
  auto tc = w.Park("m", "c", "tok", 0, 60000);
  w.Arm(tb, b.Completion());
  w.Arm(tc, c.Completion());
  w.Notify(Msg(1, "a", "b"));
  CHECK(b.calls == 1);
  CHECK(b.outcome == Outcome::kMessages);
  CHECK(b.seqs == std::vector<std::int64_t>{1});
  CHECK(c.calls == 0);
  CHECK(w.Parked() == 1);
  w.Shutdown();
  CHECK(c.calls == 1);
  CHECK(c.outcome == Outcome::kShutdown);
}

TEST_CASE("a broadcast wakes everyone in the mesh but the sender") {
  ManualClock clock(0);
  Waiters w(clock, Small());
  Record a, b, other;
  auto ta = w.Park("m", "a", "tok", 0, 60000);
  auto tb = w.Park("m", "b", "tok", 0, 60000);
  auto to = w.Park("other-mesh", "b", "tok", 0, 60000);
  w.Arm(ta, a.Completion());
  w.Arm(tb, b.Completion());
  w.Arm(to, other.Completion());
  w.Notify(Msg(7, "a", kBroadcast));
  CHECK(b.calls == 1);
  CHECK(b.seqs == std::vector<std::int64_t>{7});
  CHECK(a.calls == 0);
  CHECK(other.calls == 0);
  w.Shutdown();
}

TEST_CASE("a message committed between park and arm is answered at arm, in seq order") {
  ManualClock clock(0);
  Waiters w(clock, Small());
  auto t = w.Park("m", "b", "tok", 0, 60000);
  w.Notify(Msg(4, "a", "b"));  // while the poll reads its backlog
  w.Notify(Msg(5, "a", kBroadcast));
  Record r;
  w.Arm(t, r.Completion());
  CHECK(r.calls == 1);
  CHECK(r.outcome == Outcome::kMessages);
  CHECK(r.seqs == std::vector<std::int64_t>{4, 5});
  CHECK(w.Parked() == 0);
}

TEST_CASE("messages at or below the poll's cursor do not wake it") {
  ManualClock clock(0);
  Waiters w(clock, Small());
  auto t = w.Park("m", "b", "tok", 10, 60000);
  Record r;
  w.Arm(t, r.Completion());
  w.Notify(Msg(9, "a", "b"));
  w.Notify(Msg(10, "a", "b"));
  CHECK(r.calls == 0);
  w.Notify(Msg(11, "a", "b"));
  CHECK(r.seqs == std::vector<std::int64_t>{11});
}

TEST_CASE("the deadline is on the injected clock") {
  ManualClock clock(1000);
  Waiters w(clock, Small());
  auto t = w.Park("m", "b", "tok", 0, 1000 + 25000);
  Record r;
  w.Arm(t, r.Completion());
  w.ExpireDue();
  CHECK(r.calls == 0);
  clock.Advance(25000);
  w.ExpireDue();
  CHECK(r.calls == 1);
  CHECK(r.outcome == Outcome::kTimeout);
  CHECK(r.seqs.empty());
  w.Notify(Msg(1, "a", "b"));  // too late: nothing runs twice
  CHECK(r.calls == 1);
}

TEST_CASE("the timer thread ends waits when the clock says so") {
  ManualClock clock(0);
  Waiters w(clock, Small());
  w.StartTimer();
  auto t = w.Park("m", "b", "tok", 0, 5000);
  Record r;
  w.Arm(t, r.Completion());
  clock.Advance(5000);
  w.Tick();
  for (int i = 0; i < 2000 && r.calls == 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  CHECK(r.calls == 1);
  CHECK(r.outcome == Outcome::kTimeout);
}

TEST_CASE("bounds: per agent and per token 429, in all 503; nothing registered when refused") {
  ManualClock clock(0);
  Waiters w(clock, Small(/*total=*/7));
  std::vector<Waiters::Handle> held;
  for (int i = 0; i < 3; ++i) held.push_back(w.Park("m", "a", "tok1", 0, 60000));
  CHECK(Status([&] { w.Park("m", "a", "tok2", 0, 60000); }) == 429);  // agent a is full
  held.push_back(w.Park("m", "b", "tok1", 0, 60000));
  held.push_back(w.Park("m", "c", "tok1", 0, 60000));
  CHECK(Status([&] { w.Park("m", "d", "tok1", 0, 60000); }) == 429);  // tok1 is full
  held.push_back(w.Park("m", "d", "tok2", 0, 60000));
  held.push_back(w.Park("m", "e", "tok2", 0, 60000));
  CHECK(Status([&] { w.Park("m", "f", "tok3", 0, 60000); }) == 503);  // the node is full
  CHECK(w.Parked() == 7);
  w.Cancel(held[0]);
  CHECK(w.Parked() == 6);
  CHECK(Status([&] { held.push_back(w.Park("m", "a", "tok3", 0, 60000)); }) == 0);
}

TEST_CASE("listening follows armed polls") {
  ManualClock clock(0);
  Waiters w(clock, Small());
  auto t = w.Park("m", "a", "tok", 0, 60000);
  CHECK_FALSE(w.IsListening("a"));  // still reading its backlog
  Record r;
  w.Arm(t, r.Completion());
  CHECK(w.IsListening("a"));
  w.Notify(Msg(1, "x", "a"));
  CHECK_FALSE(w.IsListening("a"));
}

TEST_CASE("cancel (the client hung up): the completion runs once, a later message does nothing") {
  ManualClock clock(0);
  Waiters w(clock, Small());
  auto t = w.Park("m", "a", "tok", 0, 60000);
  Record r;
  w.Arm(t, r.Completion());
  w.Cancel(t);
  CHECK(r.calls == 1);
  CHECK(r.outcome == Outcome::kCancelled);
  CHECK_FALSE(w.IsListening("a"));
  w.Notify(Msg(1, "x", "a"));
  w.Cancel(t);
  CHECK(r.calls == 1);
  CHECK(w.Parked() == 0);

  // Cancelled before it was armed (the backlog answered): arming runs it at once.
  auto u = w.Park("m", "a", "tok", 0, 60000);
  w.Cancel(u);
  Record late;
  w.Arm(u, late.Completion());
  CHECK(late.calls == 1);
  CHECK(late.outcome == Outcome::kCancelled);
}

TEST_CASE("a completion runs exactly once when a message, a cancel and shutdown race") {
  ManualClock clock(0);
  for (int round = 0; round < 200; ++round) {
    Waiters w(clock, Small());
    auto t = w.Park("m", "a", "tok", 0, 60000);
    Record r;
    w.Arm(t, r.Completion());
    std::thread notify([&] { w.Notify(Msg(1, "x", "a")); });
    std::thread cancel([&] { w.Cancel(t); });
    w.Shutdown();
    notify.join();
    cancel.join();
    CHECK(r.calls == 1);
  }
}

TEST_CASE("after shutdown nothing parks, and a parked poll arms into an answer at once") {
  ManualClock clock(0);
  Waiters w(clock, Small());
  auto t = w.Park("m", "a", "tok", 0, 60000);
  w.Shutdown();
  Record r;
  w.Arm(t, r.Completion());
  CHECK(r.outcome == Outcome::kShutdown);
  CHECK(Status([&] { w.Park("m", "b", "tok", 0, 60000); }) == 503);
}

TEST_CASE("ending an agent, a mesh or a token answers its waiters at once, armed or still reading their backlog") {
  ManualClock clock(0);
  Waiters w(clock, Small());
  // Armed: answered by the End call itself.
  auto armed = w.Park("m", "a", "tok1", 0, 60000);
  Record r_armed;
  w.Arm(armed, r_armed.Completion());
  // Parked, not armed yet (reading its backlog): answered as it is armed.
  auto reading = w.Park("m", "a", "tok1", 0, 60000);
  auto other_agent = w.Park("m", "b", "tok1", 0, 60000);
  auto other_mesh = w.Park("n", "c", "tok2", 0, 60000);
  auto other_token = w.Park("n", "d", "tok3", 0, 60000);
  w.EndAgent("m", "a");
  CHECK(r_armed.calls == 1);
  CHECK(r_armed.outcome == Outcome::kTimeout);
  Record r_reading, r_other_agent;
  w.Arm(reading, r_reading.Completion());
  CHECK(r_reading.calls == 1);
  CHECK(r_reading.outcome == Outcome::kTimeout);
  w.Arm(other_agent, r_other_agent.Completion());
  CHECK(r_other_agent.calls == 0);  // another agent waits on

  w.EndMesh("m");
  CHECK(r_other_agent.calls == 1);

  Record r_other_mesh, r_other_token;
  w.Arm(other_token, r_other_token.Completion());
  w.EndToken("tok2");
  w.Arm(other_mesh, r_other_mesh.Completion());
  CHECK(r_other_mesh.calls == 1);  // tok2's: ended before it was armed
  CHECK(r_other_token.calls == 0);  // tok3's waits on
  w.EndToken("tok3");
  CHECK(r_other_token.calls == 1);
  CHECK(w.Parked() == 0);
}

}  // namespace meshwire
