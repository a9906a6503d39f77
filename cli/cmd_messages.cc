// `meshwire send`, `meshwire listen`, `meshwire wait`.
#include <signal.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <ctime>
#include <functional>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "cli/commands.h"
#include "cli/context.h"
#include "schemas/ids.h"
#include "schemas/json_io.h"

namespace meshwire::cli {

namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

/// SIGINT/SIGTERM for a command that waits: taken by one thread with
/// sigwait, which sets stopped() and runs `on_stop` (to cancel a long-poll).
class StopSignal {
 public:
  explicit StopSignal(std::function<void()> on_stop) : on_stop_(std::move(on_stop)) {
    sigemptyset(&set_);
    sigaddset(&set_, SIGINT);
    sigaddset(&set_, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set_, nullptr);
    thread_ = std::thread([this] {
      while (!done_) {
        timespec tick{0, 100 * 1000 * 1000};
        int sig = sigtimedwait(&set_, nullptr, &tick);
        if (sig == SIGINT || sig == SIGTERM) {
          signal_ = sig;
          Stop();
          return;
        }
      }
    });
  }
  ~StopSignal() {
    done_ = true;
    thread_.join();
  }
  bool stopped() const { return stopped_; }
  /// The signal that stopped it (SIGINT or SIGTERM), else 0.
  int signal() const { return signal_; }
  void Stop() {
    {
      std::lock_guard lock(mu_);
      stopped_ = true;
    }
    cv_.notify_all();
    on_stop_();
  }
  /// Sleeps up to `d`; returns false when stopped meanwhile.
  bool Sleep(std::chrono::milliseconds d) {
    std::unique_lock lock(mu_);
    return !cv_.wait_for(lock, d, [&] { return stopped_.load(); });
  }

 private:
  std::function<void()> on_stop_;
  sigset_t set_;
  std::atomic<bool> stopped_{false};
  std::atomic<int> signal_{0};
  std::atomic<bool> done_{false};
  std::mutex mu_;
  std::condition_variable cv_;
  std::thread thread_;
};

void PrintMessage(const Message& m, const Ui& ui, bool as_json) {
  if (as_json) {
    PrintJson(ToJson(m));
  } else {
    std::time_t t = static_cast<std::time_t>(m.created_at / 1000);
    std::tm tm{};
    localtime_r(&t, &tm);
    char hhmmss[16];
    std::strftime(hhmmss, sizeof hhmmss, "%H:%M:%S", &tm);
    std::string to = m.to == kBroadcast ? "all" : m.to_name.value_or(m.to);
    json meta = json::parse(m.metadata_json, nullptr, false);
    std::string extra;
    if (meta.is_object() && meta.contains("reply_to") && meta["reply_to"].is_string()) {
      extra += " (reply to " + meta["reply_to"].get<std::string>() + ")";
    }
    if (m.priority != "normal") extra += " [" + m.priority + "]";
    // Every part but the time came from the relay, written by another agent.
    std::printf("%s %s (%s) %s %s%s\n%s\n\n", ui.Dim(hhmmss).c_str(), ui.Bold(Shown(m.from_name)).c_str(),
                Shown(m.from).c_str(), ui.Arrow().c_str(), Shown(to).c_str(), Shown(extra).c_str(),
                Shown(m.content, /*multiline=*/true).c_str());
  }
  // Not flushed here: the caller's StdoutProblem flushes, and says why it failed.
}

/// When printed messages did not reach stdout: the error that ends the
/// command, with nothing acknowledged (they are delivered again).
Error NotPrinted(const std::string& problem) {
  return Error(1, "output_failed",
               "Messages arrived but " + problem +
                   "; they are not acknowledged, so the next listen or wait gets them again.");
}

/// Acknowledges up to `printed` on a client of its own (`client` may be
/// cancelled by now), within about 4 s: a relay that does not answer does
/// not hold a stopping command. On failure the messages are delivered again.
void AcknowledgeBestEffort(const RelayClient& client, CommandContext& ctx, const std::string& mesh,
                           const std::string& agent_id, std::int64_t printed) {
  try {
    RelayClient ack(client.url(), ctx.config().token.value);
    ack.SetDeadline(Clock::now() + std::chrono::seconds(3));  // and Call's 1 s for an answer due then
    ack.Acknowledge(mesh, agent_id, printed);
  } catch (const Error& e) {
    std::fprintf(stderr, "meshwire: could not acknowledge what was printed (%s); it will be delivered again.\n",
                 Shown(e.what()).c_str());
  }
}

/// Errors a retry cannot fix: stop and say so.
bool Permanent(const Error& e) {
  return e.status() == 400 || e.status() == 401 || e.status() == 403 || e.status() == 404 ||
         e.status() == 409 || e.status() == 2 || e.code() == "tls_untrusted";
}

}  // namespace

int RunSend(int argc, char** argv) {
  CLI::App app{"Send a message: to one agent (--to NAME or ID) or, without --to, to every other "
               "agent in the mesh.",
               "meshwire send"};
  CommandContext ctx;
  ctx.AddFlags(app);
  std::string text, to, reply_to, priority;
  int wait_ack = 0;
  app.add_option("TEXT", text, "the message (1-10240 bytes of UTF-8); - reads it from stdin "
                               "(one final newline dropped)")
      ->required();
  app.add_option("--to", to, "the recipient's agent name or id (default: all; with --reply-to, its sender)");
  app.add_option("--reply-to", reply_to, "the id of the message this answers; goes to that message's sender "
                                         "unless --to says otherwise")
      ->check(NotEmpty("give the id of the message this answers, or leave --reply-to out"));
  app.add_option("--priority", priority, "urgent, high, normal or low")
      ->check(CLI::IsMember({"urgent", "high", "normal", "low"}));
  app.add_option("--wait-ack", wait_ack, "wait up to S seconds until every recipient acknowledged it (exit 4 if not)")
      ->check(CLI::Range(1, 86400));
  int rc = 0;
  if (!Parse(app, argc, argv, rc)) return rc;
  if (text == "-") {
    // `git log -1 | meshwire send - --to reviewer`. Read at most a little
    // past the limit (whatever the pipe holds), then refuse here.
    text.clear();
    char chunk[4096];
    std::size_t n = 0;
    while (text.size() <= kMaxContentBytes + 2 && (n = std::fread(chunk, 1, sizeof chunk, stdin)) > 0) {
      text.append(chunk, n);
    }
    if (std::ferror(stdin)) return FailUsage("Reading the message from stdin failed.");
    if (!text.empty() && text.back() == '\n') {
      text.pop_back();
      if (!text.empty() && text.back() == '\r') text.pop_back();
    }
    if (text.size() > kMaxContentBytes) {
      return FailUsage("The message on stdin is over 10240 bytes: send a reference (a path, URL or id) instead.");
    }
  }
  if (text.empty()) return FailUsage("The message is empty: give its text, e.g. meshwire send \"hello\" --to NAME.");
  if (text.size() > kMaxContentBytes) {  // as on stdin: a usage error, before asking the relay
    return FailUsage("The message is " + std::to_string(text.size()) +
                     " bytes; the limit is 10240: send a reference (a path, URL or id) instead.");
  }
  // `--to "$PEER"` with PEER unset must not become a message to everyone.
  if (app.count("--to") > 0 && to.empty()) {
    return FailUsage("--to is empty: give the recipient's agent name or id, or leave --to out to send to everyone.");
  }
  const Ui& ui = ctx.ui();
  try {
    RetryPolicy retry = RetryPolicy::Standard();
    retry.on_retry = [](int, std::chrono::milliseconds d, const Error& e) {
      std::fprintf(stderr, "meshwire: %s Retrying in %lld s...\n", Shown(e.what()).c_str(),
                   static_cast<long long>(d.count() / 1000));
    };
    RelayClient& client = ctx.Client(retry);
    const std::string& mesh = ctx.RequireMesh();
    std::string from = ctx.EnsureAgent();
    OutgoingMessage m;
    m.from = from;
    m.content = text;
    if (!to.empty()) m.to = to;
    if (!reply_to.empty()) {
      m.reply_to = reply_to;
      // A reply goes back to whoever sent the original (as the relay's
      // /reply route and the MCP reply tool route it); a 404 here names it.
      if (to.empty()) m.to = client.GetMessage(mesh, reply_to).first.from;
    }
    if (!priority.empty()) m.priority = priority;
    Message sent;
    try {
      sent = client.Send(mesh, m);
    } catch (const Error& e) {
      // The product page's first exchange sends to `agent-b` before anything
      // runs under that name: say how one comes to be there.
      if (e.code() != "agent_not_found" || to.empty() || !IsValidName(to) || IsReservedAgentName(to)) throw;
      throw Error(e.status(), e.code(),
                  std::string(e.what()) + " An agent is there once it has run: to start \"" + to +
                      "\", run `meshwire listen --name " + to + "` (or `MESHWIRE_AGENT_NAME=" + to +
                      " meshwire listen`) in another terminal of this mesh, then send again.");
    }
    std::string target = sent.to == kBroadcast ? "all agents" : sent.to_name.value_or(sent.to);
    if (ctx.json()) {
      PrintJson(ToJson(sent));
    } else {
      std::printf("%s Sent %s %s [id: %s]\n", ui.Ok().c_str(), ui.Arrow().c_str(), target.c_str(), sent.id.c_str());
      // A broadcast reaches the agents registered before it: say so when
      // there were none, instead of leaving the user waiting for it.
      bool nobody = false;
      try {
        nobody = sent.to == kBroadcast && client.GetMessage(mesh, sent.id).second.empty();
      } catch (const Error&) {
        // Only a hint: the message is sent either way.
      }
      if (nobody) {
        std::printf("No other agent is registered in mesh %s yet, so nobody will receive it (a broadcast "
                    "does not come back to its sender): start another agent, e.g. `meshwire listen --name "
                    "agent-b` in another terminal, then send again.\n",
                    mesh.c_str());
      }
    }
    if (std::string problem = StdoutProblem(); !problem.empty()) {
      // Exit 1 as for any output lost, but a script that sends again on
      // failure must learn that this one was sent.
      std::fprintf(stderr, "meshwire: %s: what send printed was lost, but the message was sent (id %s); do not "
                   "send it again.\n", problem.c_str(), sent.id.c_str());
      return kExitError;
    }
    if (wait_ack > 0) {
      auto deadline = Clock::now() + std::chrono::seconds(wait_ack);
      for (;;) {
        auto [message, receipts] = client.GetMessage(mesh, sent.id);
        std::size_t acked = 0;
        for (const Receipt& r : receipts) acked += r.state == "acked";
        if (receipts.empty()) {
          // Nobody to acknowledge it is not "acknowledged by everyone".
          throw Error(0, "wait_timeout", "Nobody can acknowledge it: no other agent was registered in mesh " + mesh +
                                             " when it was sent. Start one, then send again.");
        }
        if (acked == receipts.size()) {
          if (!ctx.json()) {
            std::printf("%s Acknowledged by %zu of %zu %s\n", ui.Ok().c_str(), acked, receipts.size(),
                        receipts.size() == 1 ? "recipient" : "recipients");
          }
          break;
        }
        if (Clock::now() >= deadline) {
          std::string waiting;
          for (const Receipt& r : receipts) {
            if (r.state != "acked") waiting += (waiting.empty() ? "" : ", ") + r.name + " (" + r.state + ")";
          }
          throw Error(0, "wait_timeout", "Not acknowledged within " + std::to_string(wait_ack) +
                                             " s by: " + waiting + ". The message stays queued for them.");
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
      }
    }
  } catch (const Error& e) {
    return Fail(e);
  }
  return kExitOk;
}

int RunListen(int argc, char** argv) {
  CLI::App app{"Print each message for this agent as it arrives, until Ctrl+C. Each message is "
               "acknowledged after it is printed; on errors it reconnects (2 s, 5 s, 15 s).",
               "meshwire listen"};
  CommandContext ctx;
  ctx.AddFlags(app);
  bool from_start = false;
  app.add_flag("--from-start", from_start, "first replay every retained message (after=0)");
  int rc = 0;
  if (!Parse(app, argc, argv, rc)) return rc;
  const Ui& ui = ctx.ui();
  try {
    RelayClient& client = ctx.Client();
    StopSignal stop([&client] { client.Cancel(); });
    const std::string& mesh = ctx.RequireMesh();
    std::string agent_id;
    // The relay client's own retry schedule: 2, 5, 15 s.
    const std::vector<std::chrono::milliseconds> backoff = RetryPolicy::Standard().delays;
    std::size_t failures = 0;
    std::optional<std::int64_t> after;
    if (from_start) after = 0;
    std::int64_t printed = -1;  // highest seq printed and not yet acknowledged
    while (!stop.stopped()) {
      try {
        if (agent_id.empty()) {
          agent_id = ctx.EnsureAgent();
          if (!ctx.json()) {
            std::printf("\n%sMeshWire listening on mesh %s\nAgent: %s (%s)\nPress Ctrl+C to stop\n\n",
                        ui.Web().c_str(), mesh.c_str(), ctx.AgentName().c_str(), agent_id.c_str());
            std::fflush(stdout);
          }
        }
        if (failures > 0) {
          // Say so as soon as the relay answers, not when the next (parked) poll returns.
          client.Health();
          std::fprintf(stderr, "meshwire: reconnected to %s\n", client.url().c_str());
          failures = 0;
        }
        PollAnswer a = client.Poll(mesh, agent_id, after, 25);
        for (const Message& m : a.messages) PrintMessage(m, ui, ctx.json());
        // (This poll's `after` acknowledged the batch before, which was printed.)
        if (std::string problem = StdoutProblem(); !problem.empty()) return Fail(NotPrinted(problem));
        // Printed: the next poll's `after` acknowledges them.
        after = a.cursor;
        printed = a.messages.empty() ? -1 : a.cursor;
      } catch (const Error& e) {
        if (e.code() == "cancelled" || stop.stopped()) break;
        if (Permanent(e)) return Fail(e);
        auto delay = backoff[std::min(failures, backoff.size() - 1)];
        ++failures;
        std::fprintf(stderr, "meshwire: %s Reconnecting in %lld s...\n", Shown(e.what()).c_str(),
                     static_cast<long long>(
                         std::chrono::duration_cast<std::chrono::seconds>(delay).count()));
        if (!stop.Sleep(delay)) break;
      }
    }
    // Acknowledge what was printed before stopping, so a restart does not repeat it.
    if (printed >= 0 && !agent_id.empty()) AcknowledgeBestEffort(client, ctx, mesh, agent_id, printed);
  } catch (const Error& e) {
    return Fail(e);
  }
  return kExitOk;
}

int RunWait(int argc, char** argv) {
  CLI::App app{"Block until at least one message arrives for this agent, print it, acknowledge it "
               "and exit 0 (exit 4 on timeout): for agents that can run a background command and "
               "be woken when it exits.",
               "meshwire wait"};
  CommandContext ctx;
  ctx.AddFlags(app);
  int timeout_s = 0;
  app.add_option("--timeout", timeout_s, "give up after S seconds (default: wait forever)")->check(CLI::Range(1, 86400 * 30));
  int rc = 0;
  if (!Parse(app, argc, argv, rc)) return rc;
  try {
    // The timeout counts from the start of the command, registration included.
    const auto deadline = Clock::now() + std::chrono::seconds(timeout_s);
    RelayClient& client = ctx.Client();
    if (timeout_s > 0) client.SetDeadline(deadline);
    StopSignal stop([&client] { client.Cancel(); });
    const std::string& mesh = ctx.RequireMesh();
    std::string agent_id;
    try {
      agent_id = ctx.EnsureAgent();
    } catch (const Error&) {
      if (!stop.stopped()) throw;  // stopped while registering: as stopped while waiting
    }
    std::optional<std::int64_t> cursor;  // the last poll's; unknown until one answered
    while (!agent_id.empty() && !stop.stopped()) {
      int wait = 25;
      if (timeout_s > 0) {
        // The relay waits whole seconds: round what is left up, so the
        // command never gives up before its timeout (it overshoots by at
        // most the time spent before the first poll).
        auto left_ms = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
        if (left_ms <= 0) break;
        wait = static_cast<int>(std::min<long long>((left_ms + 999) / 1000, 25));
      }
      PollAnswer a;
      try {
        a = client.Poll(mesh, agent_id, std::nullopt, wait);
      } catch (const Error& e) {
        if (e.code() == "cancelled") break;
        // The relay answered (the agent is registered): a restart (503
        // shutting down, then a refused connection), an overloaded proxy or
        // a blip is waited through, as listen does, within the timeout.
        if (!Retryable(e)) throw;
        auto delay = std::chrono::milliseconds(2000);
        if (timeout_s > 0) delay = std::min(delay, std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()));
        if (delay.count() <= 0) break;
        std::fprintf(stderr, "meshwire: %s Trying again in %.0f s...\n", Shown(e.what()).c_str(), std::ceil(delay.count() / 1000.0));
        if (!stop.Sleep(delay)) break;
        continue;
      }
      cursor = a.cursor;
      if (!a.messages.empty()) {
        if (ctx.json()) {  // one JSON value, as every --json
          json list = json::array();
          for (const Message& m : a.messages) list.push_back(ToJson(m));
          PrintJson({{"messages", list}, {"cursor", a.cursor}});
        } else {
          for (const Message& m : a.messages) PrintMessage(m, ctx.ui(), false);
        }
        if (std::string problem = StdoutProblem(); !problem.empty()) return Fail(NotPrinted(problem));
        AcknowledgeBestEffort(client, ctx, mesh, agent_id, a.cursor);  // what was printed
        return kExitOk;
      }
    }
    // Nothing arrived: --json still prints its one value, for scripts that read stdout.
    if (ctx.json()) PrintJson({{"messages", json::array()}, {"cursor", cursor ? json(*cursor) : json(nullptr)}});
    // Stopped by Ctrl+C or SIGTERM: the shell's code for it.
    if (stop.stopped()) return 128 + stop.signal();
    throw Error(0, "wait_timeout", "No message arrived within " + std::to_string(timeout_s) + " s.");
  } catch (const Error& e) {
    return Fail(e);
  }
}

}  // namespace meshwire::cli
