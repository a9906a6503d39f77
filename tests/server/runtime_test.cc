// HttpRuntime's answers made off the event loop: a group commit answers its
// batch inside a HandOffBatch, and a small batch's plain answers are written
// to the sockets by the thread that made them (runtime.cc, AnswerInPlace).
// Here a test thread plays the writer, through a real socket.
#include <doctest/doctest.h>
#include <sys/socket.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "server/core/handoff.h"
#include "server/http/runtime.h"
#include "tests/support/raw_client.h"

namespace meshwire {

namespace {

using namespace std::chrono_literals;
using testing::RawClient;

/// A runtime whose handler answers nothing itself: every exchange waits in
/// `Next()` for the test to answer it, as a send waits for its commit.
struct Held {
  std::mutex mu;
  std::condition_variable cv;
  std::deque<ExchangePtr> exchanges;  // guarded by mu
  HttpRuntime runtime;
  int port = 0;
  std::thread loop;

  Held()
      : runtime(Options(), [this](const ExchangePtr& ex) {
          std::lock_guard lock(mu);
          exchanges.push_back(ex);
          cv.notify_all();
        }) {
    port = runtime.Bind();
    loop = std::thread([this] { runtime.Run(); });
  }
  ~Held() {
    runtime.StopNow();
    loop.join();
  }
  static RuntimeOptions Options() {
    RuntimeOptions o;
    o.port = 0;
    o.workers = 1;
    o.stop_grace_ms = 100;
    return o;
  }
  ExchangePtr Next() {
    std::unique_lock lock(mu);
    REQUIRE(cv.wait_for(lock, 5s, [this] { return !exchanges.empty(); }));
    ExchangePtr ex = exchanges.front();
    exchanges.pop_front();
    return ex;
  }
};

std::string Get(const std::string& path) { return "GET " + path + " HTTP/1.1\r\nHost: relay\r\n\r\n"; }

std::string BodyOf(const std::string& answer) {
  auto at = answer.find("\r\n\r\n");
  return at == std::string::npos ? std::string() : answer.substr(at + 4);
}

}  // namespace

TEST_CASE("an answer made in place that the socket takes only in part is written whole; the connection goes on") {
  Held held;
  RawClient client(held.port);
  client.Send(Get("/big"));
  ExchangePtr ex = held.Next();
  CHECK(ex->request().path == "/big");
  // 4 MiB to a client that reads nothing yet: one sendmsg takes a part, the
  // connection's strand writes the rest as the client reads.
  std::string big(4 << 20, 'x');
  for (std::size_t i = 0; i < big.size(); i += 4096) big[i] = static_cast<char>('a' + (i / 4096) % 26);
  {
    HandOffBatch batch;
    ex->Respond(HttpResponse::Text(200, "text/plain", big));
  }
  std::this_thread::sleep_for(100ms);
  std::string answer = client.ReadAnswer(10s);
  CHECK(answer.rfind("HTTP/1.1 200", 0) == 0);
  CHECK(BodyOf(answer) == big);

  // The same connection's next request is read and answered.
  client.Send(Get("/next"));
  ExchangePtr next = held.Next();
  CHECK(next->request().path == "/next");
  {
    HandOffBatch batch;
    next->Respond(HttpResponse::Json(200, R"({"ok":true})"));
  }
  answer = client.ReadAnswer(5s);
  CHECK(answer.rfind("HTTP/1.1 200", 0) == 0);
  CHECK(BodyOf(answer) == R"({"ok":true})");
}

TEST_CASE("answers made in place for clients that hung up are dropped; the others are written") {
  Held held;
  constexpr int kClients = 16;  // a group commit's worth
  std::vector<std::unique_ptr<RawClient>> clients;
  std::vector<ExchangePtr> exchanges;
  for (int i = 0; i < kClients; ++i) {
    clients.push_back(std::make_unique<RawClient>(held.port));
    clients.back()->Send(Get("/send/" + std::to_string(i)));
    exchanges.push_back(held.Next());  // in order: each is read before the next client sends
    CHECK(exchanges.back()->request().path == "/send/" + std::to_string(i));
  }
  for (int i = 0; i < kClients; i += 2) clients[i]->Reset();  // half hang up before the commit
  std::this_thread::sleep_for(50ms);
  {
    HandOffBatch batch;
    for (int i = 0; i < kClients; ++i) {
      exchanges[i]->Respond(HttpResponse::Json(201, "{\"n\":" + std::to_string(i) + "}"));
    }
  }
  for (int i = 1; i < kClients; i += 2) {
    std::string answer = clients[i]->ReadAnswer(5s);
    CHECK(answer.rfind("HTTP/1.1 201", 0) == 0);
    CHECK(BodyOf(answer) == "{\"n\":" + std::to_string(i) + "}");
  }
  // The runtime still serves new connections.
  RawClient late(held.port);
  late.Send(Get("/late"));
  ExchangePtr ex = held.Next();
  CHECK(ex->request().path == "/late");
  ex->Respond(HttpResponse::Json(200, "{}"));
  CHECK(late.ReadAnswer(5s).rfind("HTTP/1.1 200", 0) == 0);
}

TEST_CASE("a batch of more than 64 answers (a broadcast) is shared with the event loop; every client gets its own") {
  Held held;
  constexpr int kClients = 150;
  std::vector<std::unique_ptr<RawClient>> clients;
  std::vector<ExchangePtr> exchanges;
  for (int i = 0; i < kClients; ++i) {
    clients.push_back(std::make_unique<RawClient>(held.port));
    clients.back()->Send(Get("/poll/" + std::to_string(i)));
    exchanges.push_back(held.Next());
  }
  {
    HandOffBatch batch;
    for (int i = 0; i < kClients; ++i) {
      exchanges[i]->Respond(HttpResponse::Json(200, "{\"n\":" + std::to_string(i) + "}"));
    }
  }
  int answered = 0;
  for (int i = 0; i < kClients; ++i) {
    std::string answer = clients[i]->ReadAnswer(5s);
    answered += answer.rfind("HTTP/1.1 200", 0) == 0 && BodyOf(answer) == "{\"n\":" + std::to_string(i) + "}";
  }
  CHECK(answered == kClients);
  // Each connection reads its next request again, whichever thread wrote.
  for (int i = 0; i < kClients; i += 37) {
    clients[i]->Send(Get("/again"));
    ExchangePtr ex = held.Next();
    ex->Respond(HttpResponse::Json(200, "{}"));
    CHECK(clients[i]->ReadAnswer(5s).rfind("HTTP/1.1 200", 0) == 0);
  }
}

TEST_CASE("an event loop held in its tail (a commit waiting on the database) does not stop the relay: the stand-in serves") {
  // One event loop, whose tail is held until the test lets it go, as a
  // COMMIT to a database that stopped answering holds it.
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  std::atomic<bool> deferred{false};
  RuntimeOptions options = Held::Options();
  options.io_threads = 1;
  HttpRuntime runtime(options, [&](const ExchangePtr& ex) {
    if (ex->request().path == "/commit" && LoopTail::Enabled()) {
      LoopTail::Defer(&deferred, [](void* flag) { static_cast<std::atomic<bool>*>(flag)->store(true); });
      LoopTail::Defer(&released, [](void* wait) { static_cast<std::shared_future<void>*>(wait)->wait(); });
    }
    ex->Respond(HttpResponse::Json(200, "{\"path\":\"" + ex->request().path + "\"}"));
  });
  const int port = runtime.Bind();
  std::thread loop([&] { runtime.Run(); });

  RawClient committing(port);
  committing.Send(Get("/commit"));
  CHECK(committing.ReadAnswer(5s).rfind("HTTP/1.1 200", 0) == 0);
  // Only the one loop's tail could have run this: it is now held.
  for (int i = 0; i < 500 && !deferred.load(); ++i) std::this_thread::sleep_for(2ms);
  REQUIRE(deferred.load());

  // A new connection and a request on the first one are both served meanwhile.
  RawClient other(port);
  const auto asked = std::chrono::steady_clock::now();
  other.Send(Get("/health"));
  CHECK(BodyOf(other.ReadAnswer(5s)) == R"({"path":"/health"})");
  CHECK(std::chrono::steady_clock::now() - asked < 1s);
  committing.Send(Get("/again"));
  CHECK(BodyOf(committing.ReadAnswer(5s)) == R"({"path":"/again"})");

  release.set_value();
  other.Send(Get("/after"));
  CHECK(BodyOf(other.ReadAnswer(5s)) == R"({"path":"/after"})");
  runtime.StopNow();
  loop.join();
}

TEST_CASE("what event streams hold is counted against max_stream_memory, and given back when they end") {
  Held held;  // max_stream_memory: 256 MiB
  // True once `done()` holds, within 10 s (the event loop counts as it writes).
  auto settles = [](auto done) {
    const auto until = std::chrono::steady_clock::now() + 10s;
    while (!done() && std::chrono::steady_clock::now() < until) std::this_thread::sleep_for(2ms);
    return done();
  };
  // Events of 10,000 bytes (each ends with '|') for a client that reads
  // nothing, until the runtime holds 1 MB of them beyond what the kernel
  // took: how many were sent (well under the stream's own 4 MiB). Each is
  // taken by the event loop before the next goes (WhenDrained runs after
  // what was queued before it), so none pile up unseen on a busy machine.
  auto fill = [&](EventStream& stream) {
    int sent = 0;
    while (held.runtime.stream_bytes() < 1000000 && sent < 2000) {
      REQUIRE(stream.Send(std::string(9999, 'x') + "|"));
      ++sent;
      auto taken = std::make_shared<std::promise<void>>();
      stream.WhenDrained(SIZE_MAX, [taken] { taken->set_value(); });
      REQUIRE(taken->get_future().wait_for(10s) == std::future_status::ready);
    }
    return sent;
  };
  RawClient stalled(held.port, 4096);
  stalled.Send(Get("/events"));
  auto ex = held.Next();
  auto stream = ex->OpenStream(HttpResponse::Empty(200));
  const int sent = fill(*stream);
  CHECK(held.runtime.stream_bytes() >= 1000000);
  CHECK(settles([&] { return held.runtime.stream_bytes() == stream->Pending(); }));
  // The client reads it all: nothing is held any more.
  CHECK(settles([&] {
    stalled.WaitFor("\x01never", 20ms);
    return stalled.Count("|") == static_cast<std::size_t>(sent);
  }));
  CHECK(settles([&] { return held.runtime.stream_bytes() == 0; }));
  // Another that hangs up with events waiting: given back when it goes, at
  // once, while its sender still holds the stream.
  RawClient gone(held.port, 4096);
  gone.Send(Get("/events"));
  auto ex2 = held.Next();
  auto s2 = ex2->OpenStream(HttpResponse::Empty(200));
  fill(*s2);
  CHECK(held.runtime.stream_bytes() >= 1000000);
  gone.Reset();
  CHECK(settles([&] { return !s2->Open(); }));
  CHECK(settles([&] { return held.runtime.stream_bytes() == 0; }));
  CHECK(s2->Pending() == 0);
  stream->Close();
}

}  // namespace meshwire
