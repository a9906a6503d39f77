// The wake-up table: who is woken by what, deadlines on a ManualClock, the
// bound on parked polls, and shutdown.
#include <doctest/doctest.h>

#include <chrono>
#include <future>

#include "server/waiters.h"

namespace meshwire {

namespace {
using namespace std::chrono_literals;

// Runs Wait on another thread; the future holds its result.
std::future<bool> WaitAsync(Waiters& w, Waiters::Ticket& t, Millis deadline) {
  return std::async(std::launch::async, [&w, &t, deadline] { return w.Wait(t, deadline); });
}
TcpPeerSet AsSet(const std::vector<TcpPeer>& peers) {
  return {peers.begin(), peers.end()};
}
}  // namespace

TEST_CASE("a direct message wakes its recipient only") {
  ManualClock clock(0);
  Waiters w(clock, 100);
  auto b = w.Park("m", "b");
  auto c = w.Park("m", "c");
  auto fb = WaitAsync(w, *b, 60000);
  auto fc = WaitAsync(w, *c, 60000);
  w.Notify("m", "a", "b");
  CHECK(fb.get());
  CHECK(fc.wait_for(50ms) == std::future_status::timeout);
  w.Shutdown();
  CHECK_FALSE(fc.get());
}

TEST_CASE("a broadcast wakes everyone in the mesh but the sender") {
  ManualClock clock(0);
  Waiters w(clock, 100);
  auto a = w.Park("m", "a");
  auto b = w.Park("m", "b");
  auto other = w.Park("other-mesh", "b");
  auto fa = WaitAsync(w, *a, 60000);
  auto fb = WaitAsync(w, *b, 60000);
  auto fo = WaitAsync(w, *other, 60000);
  w.Notify("m", "a", "all");
  CHECK(fb.get());
  CHECK(fa.wait_for(50ms) == std::future_status::timeout);
  CHECK(fo.wait_for(0ms) == std::future_status::timeout);
  w.Shutdown();
  CHECK_FALSE(fa.get());
  CHECK_FALSE(fo.get());
}

TEST_CASE("a notify before the wait is not lost (park, then read, then wait)") {
  ManualClock clock(0);
  Waiters w(clock, 100);
  auto b = w.Park("m", "b");
  w.Notify("m", "a", "b");  // between the backlog read and the wait
  CHECK(w.Wait(*b, 60000));
}

TEST_CASE("the deadline is on the injected clock") {
  ManualClock clock(1000);
  Waiters w(clock, 100);
  auto b = w.Park("m", "b");
  auto fb = WaitAsync(w, *b, 1000 + 25000);
  CHECK(fb.wait_for(50ms) == std::future_status::timeout);
  clock.Advance(25000);
  w.Tick();
  CHECK_FALSE(fb.get());  // timed out, not woken
}

TEST_CASE("parking is bounded, and listening follows parked tickets") {
  ManualClock clock(0);
  Waiters w(clock, 2);
  auto t1 = w.Park("m", "a");
  auto t2 = w.Park("m", "b");
  CHECK(w.Parked() == 2);
  CHECK_FALSE(w.Park("m", "c"));
  CHECK(w.IsListening("a"));
  CHECK_FALSE(w.IsListening("c"));
  t1.reset();
  CHECK_FALSE(w.IsListening("a"));
  CHECK(w.Park("m", "c"));
}

TEST_CASE("after shutdown nothing parks and waits return at once") {
  ManualClock clock(0);
  Waiters w(clock, 10);
  auto t = w.Park("m", "a");
  w.Shutdown();
  CHECK_FALSE(w.Wait(*t, 60000));
  CHECK_FALSE(w.Park("m", "b"));
}

TEST_CASE("a ticket whose client hung up ends for good; only tickets parked before the probe") {
  ManualClock clock(0);
  Waiters w(clock, 10);
  const TcpPeer gone = *MakeTcpPeer("127.0.0.1", 40000, 7420);
  const TcpPeer open = *MakeTcpPeer("127.0.0.1", 40001, 7420);
  auto a = w.Park("m", "a", gone);
  auto b = w.Park("m", "b", open);
  auto c = w.Park("m", "c");  // no connection known: never ended this way
  const std::uint64_t parked_by = w.ParkCount();
  auto late = w.Park("m", "d", gone);  // parked after the probe's snapshot: left alone
  CHECK(AsSet(w.ParkedPeers(parked_by)) == TcpPeerSet{gone, open});
  auto fa = WaitAsync(w, *a, 60000);

  CHECK(w.EndWaits({gone}, parked_by) == 1);
  CHECK_FALSE(fa.get());
  CHECK(w.HungUp(*a));
  CHECK_FALSE(w.IsListening("a"));
  CHECK(w.IsListening("b"));
  CHECK(w.IsListening("c"));
  CHECK(w.IsListening("d"));
  CHECK_FALSE(w.HungUp(*b));
  CHECK_FALSE(w.HungUp(*late));
  CHECK(AsSet(w.ParkedPeers(parked_by)) == TcpPeerSet{open});  // hung-up tickets drop out
  CHECK(w.EndWaits({gone}, parked_by) == 0);                   // each ticket ends once

  w.Notify("m", "x", "a");  // a message cannot revive a hung-up ticket
  CHECK_FALSE(w.Wait(*a, 60000));
  CHECK(w.EndWaits({gone}, w.ParkCount()) == 1);  // now `late` too
}

TEST_CASE("the parked connections stay right as tickets come and go in any order") {
  ManualClock clock(0);
  Waiters w(clock, 10);
  std::vector<TcpPeer> p;
  std::vector<std::unique_ptr<Waiters::Ticket>> t;
  for (int i = 0; i < 5; ++i) {
    p.push_back(*MakeTcpPeer("127.0.0.1", 41000 + i, 7420));
    t.push_back(w.Park("m", "agent-" + std::to_string(i), p[i]));
  }
  t[1].reset();
  t[3].reset();
  CHECK(AsSet(w.ParkedPeers(w.ParkCount())) == TcpPeerSet{p[0], p[2], p[4]});
  CHECK(w.EndWaits({p[4], p[0], p[1]}, w.ParkCount()) == 2);  // p[1] is no longer parked
  CHECK(w.HungUp(*t[0]));
  CHECK(w.HungUp(*t[4]));
  CHECK_FALSE(w.HungUp(*t[2]));
  CHECK(AsSet(w.ParkedPeers(w.ParkCount())) == TcpPeerSet{p[2]});
  t[0].reset();
  t[2].reset();
  CHECK(w.ParkedPeers(w.ParkCount()).empty());
  CHECK(w.Parked() == 1);  // t[4]: hung up, still parked until its poll returns
}

TEST_CASE("connection keys: IPv4 is IPv4-mapped; bad text or ports give none") {
  CHECK(MakeTcpPeer("127.0.0.1", 5000, 7420) == MakeTcpPeer("::ffff:127.0.0.1", 5000, 7420));
  CHECK(MakeTcpPeer("::1", 5000, 7420).has_value());
  CHECK(MakeTcpPeer("::1", 5000, 7420) != MakeTcpPeer("::1", 5001, 7420));
  CHECK(MakeTcpPeer("127.0.0.1", 5000, 7420) != MakeTcpPeer("127.0.0.1", 5000, 7421));
  CHECK_FALSE(MakeTcpPeer("localhost", 5000, 7420));
  CHECK_FALSE(MakeTcpPeer("", 5000, 7420));
  CHECK_FALSE(MakeTcpPeer("127.0.0.1", -1, 7420));
  CHECK_FALSE(MakeTcpPeer("127.0.0.1", 5000, 70000));
}

}  // namespace meshwire
