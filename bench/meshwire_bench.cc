// meshwire-bench: load benchmarks for a meshwire relay on this machine (see bench/README.md).
//
//   sends   closed-loop throughput and latency of POST /mesh/{id}/messages from N clients,
//           each on its own keep-alive connection.
//   wake    how long a parked long-poll (GET .../messages?wait=30) takes to return after the
//           send of a message for it has been answered 201.
//   parked  the relay's resident memory with N long-polls parked at once, and the latency of
//           direct sends (and of their delivery) while they are parked.
//
// Each subcommand prints a human summary on stderr and ONE JSON object with flat keys on stdout.
// Only a relay on 127.0.0.1 is accepted. Every loop is bounded in count and in time.
// Exit codes: 0 done and every check held, 1 done but a check failed (non-201 answers, lost
// messages, listeners not parked), 2 usage error, 3 setup failed (relay unreachable or refused).

#include <httplib.h>
#include <pthread.h>

#include <boost/asio.hpp>
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cctype>
#include <charconv>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <iterator>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;
using json = nlohmann::json;
using ojson = nlohmann::ordered_json;
namespace asio = boost::asio;

constexpr int kExitOk = 0;
constexpr int kExitCheckFailed = 1;
constexpr int kExitUsage = 2;
constexpr int kExitSetup = 3;

// Hard caps that keep every loop bounded even with absurd flags.
constexpr long kMaxRequestsPerClient = 50'000'000;
constexpr int kMaxPollsPerListener = 100'000;
constexpr const char* kStopMarker = "bench-stop";

struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};
struct SetupError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

std::atomic<long> g_connections{0};  // TCP sockets the bench opened (reconnects included)

double Ms(Clock::duration d) {
  return std::chrono::duration<double, std::milli>(d).count();
}

double Round3(double x) {
  return std::round(x * 1000.0) / 1000.0;
}

long long UnixMillis() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// ---------------------------------------------------------------------------------------------
// Command line

const std::set<std::string> kBoolFlags = {"keep-mesh"};

class Args {
 public:
  Args(int argc, char** argv, int first) {
    for (int i = first; i < argc; ++i) {
      std::string arg = argv[i];
      if (arg == "--help" || arg == "-h") {
        help_ = true;
        continue;
      }
      if (arg.rfind("--", 0) != 0 || arg.size() < 3) {
        throw UsageError("unexpected argument '" + arg + "'");
      }
      std::string key;
      std::string value;
      auto eq = arg.find('=');
      if (eq != std::string::npos) {
        key = arg.substr(2, eq - 2);
        value = arg.substr(eq + 1);
      } else if (kBoolFlags.count(arg.substr(2)) > 0) {
        key = arg.substr(2);
        value = "true";
      } else {
        key = arg.substr(2);
        if (i + 1 >= argc) throw UsageError("--" + key + " needs a value");
        value = argv[++i];
      }
      values_[key] = value;
    }
  }

  bool help() const { return help_; }

  std::string Str(const std::string& key, const std::string& fallback) {
    used_.insert(key);
    auto it = values_.find(key);
    return it == values_.end() ? fallback : it->second;
  }

  std::optional<std::string> Opt(const std::string& key) {
    used_.insert(key);
    auto it = values_.find(key);
    if (it == values_.end()) return std::nullopt;
    return it->second;
  }

  bool Flag(const std::string& key) {
    used_.insert(key);
    auto it = values_.find(key);
    return it != values_.end() && it->second != "false" && it->second != "0";
  }

  long Int(const std::string& key, long fallback, long min, long max) {
    auto text = Opt(key);
    if (!text) return fallback;
    long value = 0;
    auto [ptr, ec] = std::from_chars(text->data(), text->data() + text->size(), value);
    if (ec != std::errc() || ptr != text->data() + text->size()) {
      throw UsageError("--" + key + " must be a whole number, not '" + *text + "'");
    }
    if (value < min || value > max) {
      throw UsageError("--" + key + " must be between " + std::to_string(min) + " and " +
                       std::to_string(max));
    }
    return value;
  }

  // Call after every flag was read: an unknown flag is a usage error, never silently ignored.
  void CheckAllUsed() const {
    for (const auto& [key, value] : values_) {
      if (used_.count(key) == 0) throw UsageError("unknown flag --" + key);
    }
  }

 private:
  std::map<std::string, std::string> values_;
  std::set<std::string> used_;
  bool help_ = false;
};

// ---------------------------------------------------------------------------------------------
// The relay

struct Target {
  std::string host;
  int port = 0;
  std::string token;
};

// Accepts http://127.0.0.1[:PORT][/] only: the bench loads the machine it runs on, nothing else.
Target ParseUrl(const std::string& url) {
  const std::string scheme = "http://";
  if (url.rfind(scheme, 0) != 0) {
    throw UsageError("--url must start with http:// (got '" + url + "')");
  }
  std::string rest = url.substr(scheme.size());
  if (!rest.empty() && rest.back() == '/') rest.pop_back();
  if (rest.find('/') != std::string::npos) throw UsageError("--url must not have a path");
  Target target;
  auto colon = rest.rfind(':');
  target.host = colon == std::string::npos ? rest : rest.substr(0, colon);
  if (target.host != "127.0.0.1") {
    throw UsageError("refusing to load '" + target.host +
                     "': meshwire-bench only targets a relay on 127.0.0.1");
  }
  target.port = 80;
  if (colon != std::string::npos) {
    std::string port = rest.substr(colon + 1);
    auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), target.port);
    if (ec != std::errc() || ptr != port.data() + port.size() || target.port < 1 ||
        target.port > 65535) {
      throw UsageError("bad port in --url '" + url + "'");
    }
  }
  return target;
}

Target ParseTarget(Args& args) {
  Target target = ParseUrl(args.Str("url", "http://127.0.0.1:7420"));
  auto token = args.Opt("token");
  if (!token) {
    const char* env = std::getenv("MESHWIRE_TOKEN");
    if (env != nullptr) token = env;
  }
  if (!token || token->empty()) throw UsageError("give a token with --token or MESHWIRE_TOKEN");
  target.token = *token;
  return target;
}

std::unique_ptr<httplib::Client> MakeClient(const Target& target, int read_timeout_s) {
  auto client = std::make_unique<httplib::Client>(target.host, target.port);
  client->set_keep_alive(true);
  client->set_tcp_nodelay(true);
  client->set_connection_timeout(10);
  client->set_read_timeout(read_timeout_s);
  client->set_write_timeout(10);
  client->set_bearer_token_auth(target.token);
  client->set_socket_options(
      [](socket_t) { g_connections.fetch_add(1, std::memory_order_relaxed); });
  return client;
}

struct Reply {
  int status = 0;  // 0: no HTTP answer (connection refused, timeout, reset)
  std::string body;
  std::string error;
  std::string retry_after;
};

Reply ToReply(const httplib::Result& result) {
  Reply reply;
  if (!result) {
    reply.error = httplib::to_string(result.error());
    return reply;
  }
  reply.status = result->status;
  reply.body = result->body;
  reply.retry_after = result->get_header_value("Retry-After");
  return reply;
}

std::string Describe(const Reply& reply) {
  if (reply.status == 0) return "no answer (" + reply.error + ")";
  std::string body = reply.body.substr(0, 300);
  return "HTTP " + std::to_string(reply.status) + " " + body;
}

// Ids from the relay go into URL paths; accept only what the contract allows.
std::string CheckId(const std::string& id, const char* what) {
  bool ok = !id.empty() && id.size() <= 128 && std::all_of(id.begin(), id.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
  });
  if (!ok) throw SetupError(std::string("the relay returned an unexpected ") + what);
  return id;
}

// POST with a bounded retry on 429 (setup requests only; measured requests never retry).
Reply SetupPost(httplib::Client& client, const std::string& path, const json& body) {
  Reply reply;
  for (int attempt = 0; attempt < 5; ++attempt) {
    reply = ToReply(client.Post(path, body.dump(), "application/json"));
    if (reply.status != 429) return reply;
    long wait_s = std::clamp(std::atol(reply.retry_after.c_str()), 1L, 5L);
    std::this_thread::sleep_for(std::chrono::seconds(wait_s));
  }
  return reply;
}

json ParseBody(const Reply& reply, const std::string& what) {
  try {
    return json::parse(reply.body);
  } catch (const json::exception&) {
    throw SetupError(what + ": the relay's answer is not JSON: " + reply.body.substr(0, 200));
  }
}

std::string CreateMesh(httplib::Client& client, const Target& target, const std::string& name) {
  Reply reply = SetupPost(client, "/mesh", {{"name", name}});
  if (reply.status == 0) {
    throw SetupError("cannot reach the relay at " + target.host + ":" +
                     std::to_string(target.port) + " (" + reply.error +
                     "); is `meshwire server` running there?");
  }
  if (reply.status != 201) throw SetupError("POST /mesh failed: " + Describe(reply));
  json body = ParseBody(reply, "POST /mesh");
  return CheckId(body.value("mesh_id", ""), "mesh_id");
}

std::string RegisterAgent(httplib::Client& client, const std::string& mesh,
                          const std::string& name) {
  Reply reply = SetupPost(client, "/mesh/" + mesh + "/agents", {{"name", name}});
  if (reply.status != 201 && reply.status != 200) {
    throw SetupError("registering agent " + name + " failed: " + Describe(reply));
  }
  json body = ParseBody(reply, "POST /mesh/{id}/agents");
  return CheckId(body.value("agent_id", ""), "agent_id");
}

// Registers prefix0..prefix{n-1} with `threads` concurrent connections; ids in name order.
std::vector<std::string> RegisterAgents(const Target& target, const std::string& mesh,
                                        const std::string& prefix, int n, int threads) {
  std::vector<std::string> ids(n);
  std::atomic<int> next{0};
  std::mutex mu;
  std::string first_error;
  std::vector<std::thread> workers;
  threads = std::max(1, std::min(threads, n));
  for (int w = 0; w < threads; ++w) {
    workers.emplace_back([&] {
      auto client = MakeClient(target, 30);
      for (int i = next++; i < n; i = next++) {
        try {
          ids[i] = RegisterAgent(*client, mesh, prefix + std::to_string(i));
        } catch (const std::exception& e) {
          std::lock_guard<std::mutex> lock(mu);
          if (first_error.empty()) first_error = e.what();
          next = n;  // stop the other workers
        }
      }
    });
  }
  for (auto& w : workers) w.join();
  if (!first_error.empty()) throw SetupError(first_error);
  return ids;
}

// Agents of the mesh whose long-poll the relay reports open; -1 when the list is unavailable.
int CountListening(httplib::Client& client, const std::string& mesh) {
  Reply reply = ToReply(client.Get("/mesh/" + mesh + "/agents"));
  if (reply.status != 200) return -1;
  try {
    json body = json::parse(reply.body);
    int count = 0;
    for (const auto& agent : body.at("agents")) {
      if (agent.value("listening", false)) ++count;
    }
    return count;
  } catch (const json::exception&) {
    return -1;
  }
}

void DeleteMesh(const Target& target, const std::string& mesh) {
  auto client = MakeClient(target, 60);
  Reply reply = ToReply(client->Delete("/mesh/" + mesh));
  if (reply.status != 204) {
    std::cerr << "note: could not delete bench mesh " << mesh << ": " << Describe(reply) << "\n";
  }
}

// A message body of exactly `size` bytes of printable ASCII that starts with `prefix`.
std::string MakeContent(const std::string& prefix, size_t size) {
  static constexpr char kFill[] = "abcdefghijklmnopqrstuvwxyz0123456789";
  std::string content = prefix.substr(0, size);
  while (content.size() < size) content.push_back(kFill[content.size() % 36]);
  return content;
}

std::string MessageBody(const std::string& from, const std::string& to,
                        const std::string& content) {
  return json{{"from", from}, {"to", to}, {"content", content}}.dump();
}

// ---------------------------------------------------------------------------------------------
// Figures

struct Summary {
  size_t n = 0;
  double min = 0, mean = 0, p50 = 0, p90 = 0, p99 = 0, max = 0;
};

// Nearest-rank percentiles.
Summary Summarize(std::vector<double> values) {
  Summary s;
  s.n = values.size();
  if (values.empty()) return s;
  std::sort(values.begin(), values.end());
  auto rank = [&](double p) {
    auto idx = static_cast<size_t>(std::ceil(p / 100.0 * static_cast<double>(values.size())));
    return values[std::clamp<size_t>(idx, 1, values.size()) - 1];
  };
  double sum = 0;
  for (double v : values) sum += v;
  s.min = values.front();
  s.max = values.back();
  s.mean = sum / static_cast<double>(values.size());
  s.p50 = rank(50);
  s.p90 = rank(90);
  s.p99 = rank(99);
  return s;
}

void AddSummary(ojson& out, const std::string& prefix, const Summary& s) {
  auto put = [&](const char* name, double v) {
    std::string key = prefix + name + "_ms";
    if (s.n == 0) {
      out[key] = nullptr;
    } else {
      out[key] = Round3(v);
    }
  };
  put("p50", s.p50);
  put("p90", s.p90);
  put("p99", s.p99);
  put("max", s.max);
  put("mean", s.mean);
  put("min", s.min);
}

std::string Line(const Summary& s) {
  if (s.n == 0) return "no samples";
  char buf[200];
  std::snprintf(buf, sizeof(buf), "p50 %.2f  p90 %.2f  p99 %.2f  max %.2f  (n=%zu)", s.p50, s.p90,
                s.p99, s.max, s.n);
  return buf;
}

// /proc/<pid>/status field in kB (VmRSS, VmHWM) or count (Threads).
std::optional<long> ProcStatus(long pid, const std::string& field) {
  if (pid <= 0) return std::nullopt;
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field + ":", 0) == 0) {
      std::istringstream fields(line.substr(field.size() + 1));
      long value = 0;
      if (fields >> value) return value;
    }
  }
  return std::nullopt;
}

// CPU seconds (user + system) used so far by a process.
std::optional<double> ProcCpuSeconds(long pid) {
  if (pid <= 0) return std::nullopt;
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto close = stat.rfind(')');
  if (close == std::string::npos) return std::nullopt;
  std::istringstream fields(stat.substr(close + 2));
  std::string field;
  unsigned long long utime = 0, stime = 0;
  for (int i = 3; i <= 15 && fields >> field; ++i) {  // field 3 is the state
    if (i == 14) utime = std::stoull(field);
    if (i == 15) stime = std::stoull(field);
  }
  return static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

double SelfCpuSeconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  auto tv = [](const timeval& t) { return static_cast<double>(t.tv_sec) + t.tv_usec / 1e6; };
  return tv(usage.ru_utime) + tv(usage.ru_stime);
}

json MibOrNull(std::optional<long> kib) {
  if (!kib) return nullptr;
  return Round3(static_cast<double>(*kib) / 1024.0);
}

json OrNull(std::optional<long> v) {
  return v ? json(*v) : json(nullptr);
}

long RelayPid(Args& args) {
  long pid = args.Int("relay-pid", 0, 0, 1L << 30);
  if (pid > 0 && !ProcStatus(pid, "VmRSS")) {
    std::cerr << "warning: no process " << pid << " readable in /proc; relay figures left out\n";
    return 0;
  }
  return pid;
}

void Emit(const ojson& out) {
  std::cout << out.dump() << std::endl;
}

// ---------------------------------------------------------------------------------------------
// sends

int RunSends(Args& args) {
  Target target = ParseTarget(args);
  const int clients = static_cast<int>(args.Int("clients", 16, 1, 1024));
  const int seconds = static_cast<int>(args.Int("seconds", 10, 1, 3600));
  const int size = static_cast<int>(args.Int("size", 200, 1, 10240));
  const int warmup_ms = static_cast<int>(args.Int("warmup-ms", 1000, 0, 60000));
  const std::string to_mode = args.Str("to", "direct");
  const long relay_pid = RelayPid(args);
  const bool keep_mesh = args.Flag("keep-mesh");
  args.CheckAllUsed();
  if (to_mode != "direct" && to_mode != "all") throw UsageError("--to must be direct or all");

  auto admin = MakeClient(target, 30);
  const std::string mesh =
      CreateMesh(*admin, target, "bench-sends-" + std::to_string(UnixMillis()));
  const int n_agents = std::max(clients, 2);  // a direct send needs another agent
  std::vector<std::string> agents =
      RegisterAgents(target, mesh, "bench-", n_agents, std::min(clients, 8));
  std::cerr << "sends: mesh " << mesh << ", " << n_agents << " agents registered\n";

  struct PerClient {
    std::vector<double> latency_ms;
    long requests = 0;      // completed inside the measured window
    long requests_all = 0;  // including warm-up
    long non_201 = 0;
    long transport_errors = 0;
    std::map<int, long> statuses;
    std::string first_error;
  };
  std::vector<PerClient> results(clients);
  const std::string path = "/mesh/" + mesh + "/messages";
  const auto t_start = Clock::now() + std::chrono::milliseconds(200);
  const auto t0 = t_start + std::chrono::milliseconds(warmup_ms);
  const auto t_end = t0 + std::chrono::seconds(seconds);

  std::vector<std::thread> threads;
  for (int c = 0; c < clients; ++c) {
    threads.emplace_back([&, c] {
      PerClient& r = results[c];
      r.latency_ms.reserve(std::min<size_t>(static_cast<size_t>(seconds) * 4000, 1 << 20));
      auto client = MakeClient(target, 30);
      const std::string to = to_mode == "all" ? "all" : agents[(c + 1) % n_agents];
      const std::string body =
          MessageBody(agents[c], to, MakeContent("bench " + std::to_string(c) + " ", size));
      std::this_thread::sleep_until(t_start);
      while (r.requests_all < kMaxRequestsPerClient) {
        const auto start = Clock::now();
        if (start >= t_end) break;
        auto result = client->Post(path, body, "application/json");
        const auto end = Clock::now();
        ++r.requests_all;
        const int status = result ? result->status : 0;
        ++r.statuses[status];
        if (status != 201) {
          if (status == 0) {
            ++r.transport_errors;
          } else {
            ++r.non_201;
          }
          if (r.first_error.empty()) r.first_error = Describe(ToReply(result));
          if (status == 0) std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
        if (end >= t0 && end <= t_end) {
          ++r.requests;
          r.latency_ms.push_back(Ms(end - start));
        }
      }
    });
  }
  std::this_thread::sleep_until(t0);
  const auto relay_cpu_0 = ProcCpuSeconds(relay_pid);
  const double self_cpu_0 = SelfCpuSeconds();
  std::this_thread::sleep_until(t_end);
  const auto relay_cpu_1 = ProcCpuSeconds(relay_pid);
  const double self_cpu_1 = SelfCpuSeconds();
  for (auto& t : threads) t.join();

  std::vector<double> all;
  long requests = 0, requests_all = 0, non_201 = 0, transport_errors = 0;
  std::map<int, long> statuses;
  std::string first_error;
  for (auto& r : results) {
    all.insert(all.end(), r.latency_ms.begin(), r.latency_ms.end());
    requests += r.requests;
    requests_all += r.requests_all;
    non_201 += r.non_201;
    transport_errors += r.transport_errors;
    for (auto [status, count] : r.statuses) statuses[status] += count;
    if (first_error.empty()) first_error = r.first_error;
  }
  const Summary lat = Summarize(std::move(all));
  const double rps = static_cast<double>(requests) / seconds;
  const bool ok = non_201 == 0 && transport_errors == 0 && requests > 0;

  ojson out;
  out["bench"] = "sends";
  out["ok"] = ok;
  out["clients"] = clients;
  out["seconds"] = seconds;
  out["warmup_ms"] = warmup_ms;
  out["size"] = size;
  out["to"] = to_mode;
  out["requests"] = requests;
  out["requests_all"] = requests_all;
  out["non_201"] = non_201;
  out["transport_errors"] = transport_errors;
  out["rps"] = Round3(rps);
  AddSummary(out, "", lat);
  out["connections_opened"] = g_connections.load();
  json status_counts = json::object();
  for (auto [status, count] : statuses) status_counts[std::to_string(status)] = count;
  out["status_counts"] = status_counts;
  out["relay_cpu_pct"] = relay_cpu_0 && relay_cpu_1
                             ? json(Round3((*relay_cpu_1 - *relay_cpu_0) / seconds * 100.0))
                             : json(nullptr);
  out["bench_cpu_pct"] = Round3((self_cpu_1 - self_cpu_0) / seconds * 100.0);
  out["first_error"] = first_error.empty() ? json(nullptr) : json(first_error);
  out["mesh_id"] = mesh;

  std::fprintf(stderr,
               "sends: %d clients, %d s measured after %d ms warm-up, %d-byte content, to %s\n"
               "  requests %ld (all %ld)  non-201 %ld  transport errors %ld  connections %ld\n"
               "  throughput %.1f sends/s\n  latency ms  %s\n",
               clients, seconds, warmup_ms, size, to_mode.c_str(), requests, requests_all, non_201,
               transport_errors, g_connections.load(), rps, Line(lat).c_str());
  if (!first_error.empty()) std::cerr << "  first error: " << first_error << "\n";
  if (!keep_mesh) DeleteMesh(target, mesh);
  Emit(out);
  return ok ? kExitOk : kExitCheckFailed;
}

// ---------------------------------------------------------------------------------------------
// wake

int RunWake(Args& args) {
  Target target = ParseTarget(args);
  const int messages = static_cast<int>(args.Int("messages", 1000, 1, 1'000'000));
  const int wait_s = static_cast<int>(args.Int("wait", 30, 1, 60));
  const int settle_ms = static_cast<int>(args.Int("settle-ms", 2, 0, 1000));
  const int size = static_cast<int>(args.Int("size", 200, 1, 10240));
  const int max_seconds = static_cast<int>(args.Int("max-seconds", 300, 1, 86400));
  const bool keep_mesh = args.Flag("keep-mesh");
  // Several nodes on one database: send through another node than the one
  // the receiver polls (the cross-node wake).
  Target send_target = target;
  if (auto send_url = args.Opt("send-url")) {
    send_target = ParseUrl(*send_url);
    send_target.token = target.token;
  }
  args.CheckAllUsed();

  auto admin = MakeClient(target, 30);
  const std::string mesh = CreateMesh(*admin, target, "bench-wake-" + std::to_string(UnixMillis()));
  const std::string agent_a = RegisterAgent(*admin, mesh, "wake-a");
  const std::string agent_b = RegisterAgent(*admin, mesh, "wake-b");
  std::cerr << "wake: mesh " << mesh << ", A " << agent_a << " sends to B " << agent_b << "\n";

  struct Receipt {
    Clock::time_point at;
    long poll = 0;  // number of the poll that returned it
  };
  struct Shared {
    std::mutex mu;
    std::condition_variable cv;
    std::unordered_map<std::string, Receipt> received;
    long polls_started = 0;
    long poll_errors = 0;
    std::string first_error;
    bool stop = false;
    bool done = false;
  } shared;

  const auto deadline = Clock::now() + std::chrono::seconds(max_seconds);
  auto receiver_client = MakeClient(target, wait_s + 15);
  std::thread receiver([&] {
    const std::string base =
        "/mesh/" + mesh + "/messages?agent_id=" + agent_b + "&wait=" + std::to_string(wait_s);
    std::optional<long long> after;  // first poll: from the stored cursor
    const long max_polls = 4L * messages + 100;
    for (long poll = 1; poll <= max_polls && Clock::now() < deadline; ++poll) {
      {
        std::lock_guard<std::mutex> lock(shared.mu);
        if (shared.stop) break;
        shared.polls_started = poll;
      }
      shared.cv.notify_all();
      std::string path = base + (after ? "&after=" + std::to_string(*after) : "");
      auto result = receiver_client->Get(path);
      const auto now = Clock::now();
      if (!result || result->status != 200) {
        std::lock_guard<std::mutex> lock(shared.mu);
        ++shared.poll_errors;
        if (shared.first_error.empty()) shared.first_error = Describe(ToReply(result));
        if (shared.stop) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        continue;
      }
      try {
        json body = json::parse(result->body);
        std::lock_guard<std::mutex> lock(shared.mu);
        for (const auto& m : body.at("messages")) {
          shared.received.emplace(m.at("id").get<std::string>(), Receipt{now, poll});
          long long seq = m.at("seq").get<long long>();
          if (!after || seq > *after) after = seq;
        }
        if (body.contains("cursor") && body["cursor"].is_number_integer()) {
          long long cursor = body["cursor"].get<long long>();
          if (!after || cursor > *after) after = cursor;
        }
      } catch (const json::exception& e) {
        std::lock_guard<std::mutex> lock(shared.mu);
        ++shared.poll_errors;
        if (shared.first_error.empty())
          shared.first_error = std::string("bad poll JSON: ") + e.what();
      }
      shared.cv.notify_all();
    }
    std::lock_guard<std::mutex> lock(shared.mu);
    shared.done = true;
    shared.cv.notify_all();
  });

  auto sender = MakeClient(send_target, 30);
  const std::string path = "/mesh/" + mesh + "/messages";
  std::vector<double> wake_ms, send_ms, send_to_receive_ms;
  long sent = 0, lost = 0, non_201 = 0, before_201 = 0;
  long wait_for_poll = 1;  // the poll number that must have been issued before the next send
  std::string first_send_error;
  for (int k = 0; k < messages && Clock::now() < deadline; ++k) {
    {
      // Receiver (re)parked: it has issued the poll after the one that returned message k-1.
      std::unique_lock<std::mutex> lock(shared.mu);
      shared.cv.wait_for(lock, std::chrono::seconds(5),
                         [&] { return shared.polls_started >= wait_for_poll || shared.done; });
      if (shared.done) break;
    }
    // The poll is issued; give it time to reach the relay and park there.
    std::this_thread::sleep_for(std::chrono::milliseconds(settle_ms));
    const std::string body =
        MessageBody(agent_a, agent_b, MakeContent("wake " + std::to_string(k) + " ", size));
    const auto start = Clock::now();
    auto result = sender->Post(path, body, "application/json");
    const auto acked = Clock::now();
    if (!result || result->status != 201) {
      ++non_201;
      if (first_send_error.empty()) first_send_error = Describe(ToReply(result));
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
      continue;
    }
    ++sent;
    send_ms.push_back(Ms(acked - start));
    std::string id;
    try {
      id = json::parse(result->body).at("id").get<std::string>();
    } catch (const json::exception&) {
      ++non_201;
      continue;
    }
    std::unique_lock<std::mutex> lock(shared.mu);
    bool got = shared.cv.wait_for(lock, std::chrono::seconds(wait_s + 5),
                                  [&] { return shared.received.count(id) > 0 || shared.done; });
    auto it = shared.received.find(id);
    if (!got || it == shared.received.end()) {
      ++lost;
      wait_for_poll = shared.polls_started + 1;
      continue;
    }
    const double wake = Ms(it->second.at - acked);
    if (wake < 0) ++before_201;
    wake_ms.push_back(wake);
    send_to_receive_ms.push_back(Ms(it->second.at - start));
    wait_for_poll = it->second.poll + 1;
  }

  // Release the receiver: a last message wakes its poll; stop() its socket if that fails.
  {
    std::lock_guard<std::mutex> lock(shared.mu);
    shared.stop = true;
  }
  sender->Post(path, MessageBody(agent_a, agent_b, kStopMarker), "application/json");
  {
    std::unique_lock<std::mutex> lock(shared.mu);
    if (!shared.cv.wait_for(lock, std::chrono::seconds(3), [&] { return shared.done; })) {
      lock.unlock();
      receiver_client->stop();
    }
  }
  receiver.join();

  const Summary wake = Summarize(wake_ms);
  const Summary send = Summarize(send_ms);
  const Summary s2r = Summarize(send_to_receive_ms);
  const long received = static_cast<long>(wake_ms.size());
  const bool ok = non_201 == 0 && lost == 0 && received == messages;

  ojson out;
  out["bench"] = "wake";
  out["ok"] = ok;
  out["messages"] = messages;
  out["sent"] = sent;
  out["received"] = received;
  out["lost"] = lost;
  out["non_201"] = non_201;
  out["settle_ms"] = settle_ms;
  out["wait_s"] = wait_s;
  out["size"] = size;
  AddSummary(out, "wake_", wake);
  out["received_before_201"] = before_201;
  AddSummary(out, "send_to_receive_", s2r);
  AddSummary(out, "send_", send);
  out["polls"] = shared.polls_started;
  out["poll_errors"] = shared.poll_errors;
  out["connections_opened"] = g_connections.load();
  out["first_error"] = !first_send_error.empty()     ? json(first_send_error)
                       : !shared.first_error.empty() ? json(shared.first_error)
                                                     : json(nullptr);
  out["mesh_id"] = mesh;

  std::fprintf(stderr,
               "wake: %d messages one at a time, %d ms settle after each re-park\n"
               "  sent %ld  received %ld  lost %ld  non-201 %ld  polls %ld  poll errors %ld\n"
               "  wake ms (201 -> poll answer)  %s\n  send ms  %s\n",
               messages, settle_ms, sent, received, lost, non_201, shared.polls_started,
               shared.poll_errors, Line(wake).c_str(), Line(send).c_str());
  if (before_201 > 0) {
    std::cerr << "  " << before_201 << " poll answers arrived before the send's 201\n";
  }
  if (!keep_mesh) DeleteMesh(target, mesh);
  Emit(out);
  return ok ? kExitOk : kExitCheckFailed;
}

// ---------------------------------------------------------------------------------------------
// parked

// The parked listeners are one event-driven client (Asio, one thread): thousands of
// waiting polls cost the bench a few KiB each, and a broadcast's answers are read as
// fast as they arrive, so the figures are the relay's, not the client's scheduler's.
struct ParkedShared {
  std::string mesh;
  int wait_s = 60;
  std::atomic<bool> stop{false};
  std::atomic<int> finished{0};
  std::atomic<long> poll_errors{0};
  std::mutex mu;
  std::condition_variable cv;
  struct Receipt {
    Clock::time_point at;
    int listener = 0;
  };
  std::unordered_map<std::string, Receipt> received;  // message id -> first receipt
  int stop_received = 0;                              // listeners that got the final broadcast
  Clock::time_point last_stop_receipt;
  std::string first_error;
};

/// One listener: a keep-alive connection that long-polls in a loop.
class PollConn : public std::enable_shared_from_this<PollConn> {
 public:
  PollConn(asio::io_context& ioc, ParkedShared& shared, int index, std::string agent_id,
           std::string token, asio::ip::tcp::endpoint relay)
      : shared_(shared), index_(index), agent_id_(std::move(agent_id)), token_(std::move(token)),
        relay_(relay), socket_(ioc), retry_(ioc) {}

  void Start() {
    socket_.async_connect(relay_, [self = shared_from_this()](const boost::system::error_code& ec) {
      if (ec) return self->Fail("connect: " + ec.message());
      g_connections.fetch_add(1, std::memory_order_relaxed);
      self->socket_.set_option(asio::ip::tcp::no_delay(true));
      self->Poll();
    });
  }
  void Close() {
    boost::system::error_code ignored;
    socket_.close(ignored);
    retry_.cancel();
  }

 private:
  void Poll() {
    if (shared_.stop && done_) return Finish();
    request_ = "GET /mesh/" + shared_.mesh + "/messages?agent_id=" + agent_id_ +
               "&wait=" + std::to_string(shared_.wait_s) +
               (after_ ? "&after=" + std::to_string(*after_) : std::string()) +
               " HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " + token_ + "\r\n\r\n";
    asio::async_write(socket_, asio::buffer(request_),
                      [self = shared_from_this()](const boost::system::error_code& ec, std::size_t) {
                        if (ec) return self->Fail("write: " + ec.message());
                        self->ReadHead();
                      });
  }

  void ReadHead() {
    asio::async_read_until(socket_, asio::dynamic_buffer(in_), "\r\n\r\n",
                           [self = shared_from_this()](const boost::system::error_code& ec, std::size_t n) {
                             if (ec) return self->Fail("read: " + ec.message());
                             self->OnHead(n);
                           });
  }

  void OnHead(std::size_t head_size) {
    const std::string head = in_.substr(0, head_size);
    in_.erase(0, head_size);
    status_ = head.size() > 12 ? std::atoi(head.c_str() + 9) : 0;
    std::size_t length = 0;
    for (const char* key : {"Content-Length: ", "content-length: "}) {
      if (auto at = head.find(key); at != std::string::npos) length = std::strtoul(head.c_str() + at + 16, nullptr, 10);
    }
    if (in_.size() >= length) {  // usually: the body came with the head
      std::string body = in_.substr(0, length);
      in_.erase(0, length);
      return OnAnswer(body);
    }
    const std::size_t missing = length - in_.size();
    asio::async_read(socket_, asio::dynamic_buffer(in_), asio::transfer_exactly(missing),
                     [self = shared_from_this(), length](const boost::system::error_code& ec, std::size_t) {
                       if (ec) return self->Fail("read body: " + ec.message());
                       std::string body = self->in_.substr(0, length);
                       self->in_.erase(0, length);
                       self->OnAnswer(body);
                     });
  }

  void OnAnswer(const std::string& body) {
    const auto now = Clock::now();
    if (status_ != 200) {
      ++shared_.poll_errors;
      NoteError("HTTP " + std::to_string(status_) + " " + body.substr(0, 200));
      retry_.expires_after(std::chrono::milliseconds(200));
      retry_.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
        if (!ec) self->Poll();
      });
      return;
    }
    if (body.find(kStopMarker) != std::string::npos) {
      // The final broadcast: counted the moment its answer is read; nothing else matters now.
      {
        std::lock_guard<std::mutex> lock(shared_.mu);
        ++shared_.stop_received;
        shared_.last_stop_receipt = now;
        shared_.cv.notify_all();
      }
      done_ = true;
      // The connection stays open until every listener has its answer: a woken agent
      // would poll again, not hang up, and 10,000 hang-ups are not part of the fan-out.
      return Finish(/*close=*/false);
    }
    try {
      json parsed = json::parse(body);
      std::lock_guard<std::mutex> lock(shared_.mu);
      for (const auto& m : parsed.at("messages")) {
        if (m.value("content", "") != kStopMarker) {
          shared_.received.emplace(m.at("id").get<std::string>(), ParkedShared::Receipt{now, index_});
          shared_.cv.notify_all();
        }
        long long seq = m.at("seq").get<long long>();
        if (!after_ || seq > *after_) after_ = seq;
      }
    } catch (const json::exception& e) {
      ++shared_.poll_errors;
      NoteError(std::string("bad poll JSON: ") + e.what());
    }
    if (done_) return Finish();
    Poll();
  }

  void Fail(const std::string& what) {
    if (!shared_.stop) {
      ++shared_.poll_errors;
      NoteError(what);
    }
    Finish();
  }
  void NoteError(const std::string& what) {
    std::lock_guard<std::mutex> lock(shared_.mu);
    if (shared_.first_error.empty() && !shared_.stop) shared_.first_error = what;
  }
  void Finish(bool close = true) {
    if (finished_) return;
    finished_ = true;
    if (close) Close();
    std::lock_guard<std::mutex> lock(shared_.mu);
    ++shared_.finished;
    shared_.cv.notify_all();
  }

  ParkedShared& shared_;
  const int index_;
  const std::string agent_id_;
  const std::string token_;
  const asio::ip::tcp::endpoint relay_;
  asio::ip::tcp::socket socket_;
  asio::steady_timer retry_;
  std::string request_;
  std::string in_;
  int status_ = 0;
  std::optional<long long> after_;
  bool done_ = false;
  bool finished_ = false;
};

// Lifts the soft RLIMIT_NOFILE towards `need`; returns the resulting soft limit.
rlim_t RaiseFileLimit(rlim_t need) {
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) != 0) return 0;
  if (lim.rlim_cur < need) {
    lim.rlim_cur = std::min(need, lim.rlim_max);
    setrlimit(RLIMIT_NOFILE, &lim);
    getrlimit(RLIMIT_NOFILE, &lim);
  }
  return lim.rlim_cur;
}

/// Tokens of the bench's user for `listeners` long-polls: the relay lets one token park at
/// most `per_token` polls. Returns {id, secret} pairs (revoke them at the end).
std::vector<std::pair<std::string, std::string>> MakeTokens(httplib::Client& admin, int listeners,
                                                            int per_token) {
  std::vector<std::pair<std::string, std::string>> tokens;
  const int n = (listeners + per_token - 1) / per_token;
  for (int i = 0; i < n; ++i) {
    Reply r = SetupPost(admin, "/tokens", {{"name", "bench-parked-" + std::to_string(i)}});
    if (r.status != 201) throw SetupError("cannot create a token for the listeners: " + Describe(r));
    json body = ParseBody(r, "POST /tokens");
    tokens.emplace_back(body.at("id").get<std::string>(), body.at("token").get<std::string>());
  }
  return tokens;
}

int RunParked(Args& args) {
  Target target = ParseTarget(args);
  const int listeners = static_cast<int>(args.Int("listeners", 10000, 1, 50000));
  const int seconds = static_cast<int>(args.Int("seconds", 10, 1, 3600));
  const int sends = static_cast<int>(args.Int("sends", 500, 0, 1'000'000));
  const int wait_s = static_cast<int>(args.Int("wait", 60, 1, 60));
  const int size = static_cast<int>(args.Int("size", 200, 1, 10240));
  const int park_timeout_s = static_cast<int>(args.Int("park-timeout", 60, 1, 600));
  const int ramp = static_cast<int>(args.Int("ramp", 1000, 1, 1'000'000));
  const int register_threads = static_cast<int>(args.Int("register-threads", 8, 1, 64));
  const int grace_s = static_cast<int>(args.Int("grace", 5, 1, 60));
  const int per_token = static_cast<int>(args.Int("per-token", 900, 1, 100000));
  const unsigned seed = static_cast<unsigned>(args.Int("seed", 1, 0, 1L << 30));
  const long relay_pid = RelayPid(args);
  const bool keep_mesh = args.Flag("keep-mesh");
  args.CheckAllUsed();

  const rlim_t need = static_cast<rlim_t>(listeners) + 64;
  if (RaiseFileLimit(need) < need) {
    throw SetupError("need " + std::to_string(need) +
                     " open files for the listeners; raise `ulimit -n` (the hard limit is lower)");
  }

  auto admin = MakeClient(target, 60);
  const std::string mesh =
      CreateMesh(*admin, target, "bench-parked-" + std::to_string(UnixMillis()));
  const std::string sender_id = RegisterAgent(*admin, mesh, "bench-sender");
  const auto t_register = Clock::now();
  std::vector<std::string> ids =
      RegisterAgents(target, mesh, "listener-", listeners, register_threads);
  const double register_s = Ms(Clock::now() - t_register) / 1000.0;
  std::cerr << "parked: mesh " << mesh << ", " << listeners << " listeners registered in "
            << register_s << " s\n";

  const auto rss_idle = ProcStatus(relay_pid, "VmRSS");
  const auto threads_idle = ProcStatus(relay_pid, "Threads");

  ParkedShared shared;
  shared.mesh = mesh;
  shared.wait_s = wait_s;
  const auto tokens = MakeTokens(*admin, listeners, per_token);

  asio::io_context ioc;
  auto work = asio::make_work_guard(ioc);
  const asio::ip::tcp::endpoint relay(asio::ip::make_address("127.0.0.1"),
                                      static_cast<unsigned short>(target.port));
  std::vector<std::shared_ptr<PollConn>> pool;
  pool.reserve(listeners);
  for (int i = 0; i < listeners; ++i) {
    pool.push_back(std::make_shared<PollConn>(ioc, shared, i, ids[i], tokens[i / per_token].second, relay));
  }
  std::thread client([&ioc] { ioc.run(); });
  const auto t_spawn = Clock::now();
  const int started = listeners;
  const std::string spawn_error;
  // Opened at `ramp` per second, so the relay's accept queue is not what is measured.
  for (int i = 0; i < listeners; ++i) {
    std::this_thread::sleep_until(t_spawn + std::chrono::microseconds(1'000'000LL * i / ramp));
    asio::post(ioc, [conn = pool[i]] { conn->Start(); });
  }

  // Wait until the relay reports every started listener as listening, or the timeout.
  const auto park_deadline = t_spawn + std::chrono::seconds(park_timeout_s);
  int parked = -1;
  double park_s = -1;
  while (Clock::now() < park_deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    parked = CountListening(*admin, mesh);
    if (parked >= started) {
      park_s = Ms(Clock::now() - t_spawn) / 1000.0;
      break;
    }
  }
  std::cerr << "  relay reports " << parked << " of " << started << " listening"
            << (park_s >= 0 ? " after " + std::to_string(park_s) + " s" : ", timed out") << "\n";
  std::this_thread::sleep_for(std::chrono::milliseconds(500));  // let the relay's memory settle
  const auto rss_parked = ProcStatus(relay_pid, "VmRSS");
  const auto threads_parked = ProcStatus(relay_pid, "Threads");
  // The relay's CPU while everyone waits and nothing is sent: what holding them costs.
  constexpr double kQuietSeconds = 3.0;
  const auto quiet_cpu_0 = ProcCpuSeconds(relay_pid);
  std::this_thread::sleep_for(std::chrono::duration<double>(kQuietSeconds));
  const auto quiet_cpu_1 = ProcCpuSeconds(relay_pid);

  // Send phase: `sends` direct sends paced evenly over `seconds`, to random listeners.
  struct Sent {
    std::string id;
    int listener = 0;
    Clock::time_point acked;
  };
  std::vector<Sent> sent;
  std::vector<double> send_ms;
  long send_non_201 = 0;
  std::string first_send_error;
  if (started > 0 && sends > 0) {
    auto sender = MakeClient(target, 30);
    std::mt19937 rng(seed);
    std::uniform_int_distribution<int> pick(0, started - 1);
    const std::string path = "/mesh/" + mesh + "/messages";
    const auto phase_start = Clock::now();
    const auto phase_limit = phase_start + std::chrono::seconds(2 * seconds + 10);
    const auto period = std::chrono::duration_cast<Clock::duration>(
        std::chrono::duration<double>(static_cast<double>(seconds) / sends));
    for (int i = 0; i < sends; ++i) {
      std::this_thread::sleep_until(phase_start + i * period);
      if (Clock::now() >= phase_limit) break;
      const int who = pick(rng);
      const std::string body = MessageBody(
          sender_id, ids[who], MakeContent("bench-parked " + std::to_string(i) + " ", size));
      const auto start = Clock::now();
      auto result = sender->Post(path, body, "application/json");
      const auto acked = Clock::now();
      if (!result || result->status != 201) {
        ++send_non_201;
        if (first_send_error.empty()) first_send_error = Describe(ToReply(result));
        continue;
      }
      send_ms.push_back(Ms(acked - start));
      try {
        sent.push_back({json::parse(result->body).at("id").get<std::string>(), who, acked});
      } catch (const json::exception&) {
        ++send_non_201;
      }
    }
  }
  const int sends_attempted = static_cast<int>(send_ms.size()) + static_cast<int>(send_non_201);

  // Wait (bounded) for every sent message to reach its listener.
  {
    std::unique_lock<std::mutex> lock(shared.mu);
    shared.cv.wait_for(lock, std::chrono::seconds(grace_s), [&] {
      return std::all_of(sent.begin(), sent.end(),
                         [&](const Sent& m) { return shared.received.count(m.id) > 0; });
    });
  }
  std::vector<double> delivery_ms;
  long delivered = 0, misdelivered = 0;
  std::map<int, bool> targeted;  // listener -> got everything sent to it
  {
    std::lock_guard<std::mutex> lock(shared.mu);
    for (const Sent& m : sent) {
      auto it = shared.received.find(m.id);
      bool ok = it != shared.received.end() && it->second.listener == m.listener;
      if (it != shared.received.end() && !ok) ++misdelivered;
      if (ok) {
        ++delivered;
        delivery_ms.push_back(Ms(it->second.at - m.acked));
      }
      auto [pos, inserted] = targeted.emplace(m.listener, ok);
      if (!inserted) pos->second = pos->second && ok;
    }
  }
  const long woken =
      std::count_if(targeted.begin(), targeted.end(), [](const auto& t) { return t.second; });
  const int listening_after = CountListening(*admin, mesh);
  const auto rss_after = ProcStatus(relay_pid, "VmRSS");
  const auto hwm = ProcStatus(relay_pid, "VmHWM");

  // Shutdown: one broadcast wakes every parked poll; stop() the sockets of any left after grace.
  shared.stop = true;
  auto stopper = MakeClient(target, 30);
  const auto t_broadcast = Clock::now();
  Reply broadcast =
      ToReply(stopper->Post("/mesh/" + mesh + "/messages",
                            MessageBody(sender_id, "all", kStopMarker), "application/json"));
  const auto broadcast_acked = Clock::now();
  int forced = 0;
  {
    std::unique_lock<std::mutex> lock(shared.mu);
    shared.cv.wait_for(lock, std::chrono::seconds(grace_s),
                       [&] { return shared.finished.load() >= started; });
  }
  if (shared.finished.load() < started) forced = started - shared.finished.load();
  asio::post(ioc, [&pool] {
    for (auto& conn : pool) conn->Close();
  });
  if (forced > 0) {
    std::unique_lock<std::mutex> lock(shared.mu);
    shared.cv.wait_for(lock, std::chrono::seconds(grace_s),
                       [&] { return shared.finished.load() >= started; });
  }
  work.reset();
  ioc.stop();
  client.join();
  for (const auto& [id, secret] : tokens) admin->Delete("/tokens/" + id);
  int stop_received = 0;
  double broadcast_all_ms = -1;
  {
    std::lock_guard<std::mutex> lock(shared.mu);
    stop_received = shared.stop_received;
    // From the broadcast leaving the sender to the last listener having it: its 201 may
    // arrive after the listeners' answers (all are written by the same event loop).
    if (broadcast.status == 201 && stop_received >= started && started > 0) {
      broadcast_all_ms = Ms(shared.last_stop_receipt - t_broadcast);
    }
  }

  const Summary send = Summarize(send_ms);
  const Summary delivery = Summarize(delivery_ms);
  const bool ok = parked == started && started == listeners && send_non_201 == 0 &&
                  sends_attempted == sends && delivered == static_cast<long>(sent.size()) &&
                  woken == static_cast<long>(targeted.size());

  ojson out;
  out["bench"] = "parked";
  out["ok"] = ok;
  out["listeners"] = listeners;
  out["listeners_started"] = started;
  out["listeners_parked"] = parked;
  out["park_s"] = park_s >= 0 ? json(Round3(park_s)) : json(nullptr);
  out["register_s"] = Round3(register_s);
  out["relay_pid"] = relay_pid > 0 ? json(relay_pid) : json(nullptr);
  out["rss_idle_mib"] = MibOrNull(rss_idle);
  out["rss_parked_mib"] = MibOrNull(rss_parked);
  out["rss_after_mib"] = MibOrNull(rss_after);
  out["rss_hwm_mib"] = MibOrNull(hwm);
  out["rss_per_listener_kib"] =
      rss_idle && rss_parked && started > 0
          ? json(Round3(static_cast<double>(*rss_parked - *rss_idle) / started))
          : json(nullptr);
  out["relay_cpu_parked_quiet_pct"] =
      quiet_cpu_0 && quiet_cpu_1
          ? json(Round3((*quiet_cpu_1 - *quiet_cpu_0) / kQuietSeconds * 100.0))
          : json(nullptr);
  out["relay_threads_idle"] = OrNull(threads_idle);
  out["relay_threads_parked"] = OrNull(threads_parked);
  out["sends"] = sends;
  out["sends_attempted"] = sends_attempted;
  out["send_non_201"] = send_non_201;
  AddSummary(out, "send_", send);
  out["delivered"] = delivered;
  out["misdelivered"] = misdelivered;
  AddSummary(out, "delivery_", delivery);
  out["targeted_listeners"] = targeted.size();
  out["woken_listeners"] = woken;
  out["listening_after_sends"] = listening_after;
  out["broadcast_status"] = broadcast.status;
  out["broadcast_received"] = stop_received;
  out["broadcast_all_ms"] = broadcast_all_ms >= 0 ? json(Round3(broadcast_all_ms)) : json(nullptr);
  out["broadcast_send_ms"] = Round3(Ms(broadcast_acked - t_broadcast));
  out["polls_forced_closed"] = forced;
  out["poll_errors"] = shared.poll_errors.load();
  out["connections_opened"] = g_connections.load();
  out["first_error"] = !first_send_error.empty()     ? json(first_send_error)
                       : !shared.first_error.empty() ? json(shared.first_error)
                       : !spawn_error.empty()        ? json(spawn_error)
                                                     : json(nullptr);
  out["mesh_id"] = mesh;

  auto mib = [](std::optional<long> kib) {
    return kib ? std::to_string(*kib / 1024) + " MiB" : std::string("n/a");
  };
  std::fprintf(stderr,
               "  relay RSS  idle %s  parked %s  after sends %s  (threads %s -> %s)\n"
               "  sends %d/%d  non-201 %ld  send ms  %s\n"
               "  delivered %ld  misdelivered %ld  woken listeners %ld of %zu targeted\n"
               "  delivery ms (201 -> poll answer)  %s\n"
               "  broadcast stop reached %d of %d listeners (the last %.1f ms after it was sent); %d "
               "polls closed by force\n",
               mib(rss_idle).c_str(), mib(rss_parked).c_str(), mib(rss_after).c_str(),
               threads_idle ? std::to_string(*threads_idle).c_str() : "n/a",
               threads_parked ? std::to_string(*threads_parked).c_str() : "n/a", sends_attempted,
               sends, send_non_201, Line(send).c_str(), delivered, misdelivered, woken,
               targeted.size(), Line(delivery).c_str(), stop_received, started, broadcast_all_ms,
               forced);
  if (quiet_cpu_0 && quiet_cpu_1) {
    std::fprintf(stderr, "  relay CPU while %d wait and nothing is sent: %.2f%% of a core\n",
                 parked, (*quiet_cpu_1 - *quiet_cpu_0) / kQuietSeconds * 100.0);
  }
  if (!shared.first_error.empty())
    std::cerr << "  first poll error: " << shared.first_error << "\n";
  if (!first_send_error.empty()) std::cerr << "  first send error: " << first_send_error << "\n";
  if (!keep_mesh) DeleteMesh(target, mesh);
  Emit(out);
  return ok ? kExitOk : kExitCheckFailed;
}

// ---------------------------------------------------------------------------------------------
// slow

/// A client that starts a request and then sends one byte a second, never finishing it
/// (slowloris): it holds a connection for as long as the relay lets it.
class Trickler : public std::enable_shared_from_this<Trickler> {
 public:
  Trickler(asio::io_context& ioc, asio::ip::tcp::endpoint relay, std::atomic<int>& open,
           std::atomic<int>& closed_by_relay)
      : socket_(ioc), timer_(ioc), relay_(relay), open_(open), closed_by_relay_(closed_by_relay) {}

  void Start() {
    socket_.async_connect(relay_, [self = shared_from_this()](const boost::system::error_code& ec) {
      if (ec) return;
      g_connections.fetch_add(1, std::memory_order_relaxed);
      ++self->open_;
      self->connected_ = true;
      self->Send("GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ");
      self->WatchClose();
    });
  }
  void Stop() {
    stopped_ = true;
    boost::system::error_code ignored;
    timer_.cancel();
    socket_.close(ignored);
  }

 private:
  void Send(std::string text) {
    out_ = std::move(text);
    asio::async_write(socket_, asio::buffer(out_),
                      [self = shared_from_this()](const boost::system::error_code& ec, std::size_t) {
                        if (ec) return;
                        self->timer_.expires_after(std::chrono::seconds(1));
                        self->timer_.async_wait([self](const boost::system::error_code& tec) {
                          if (!tec && !self->stopped_) self->Send("x");
                        });
                      });
  }
  /// Reads whatever the relay answers (its 408) until it closes the connection.
  void WatchClose() {
    socket_.async_read_some(asio::buffer(in_), [self = shared_from_this()](
                                                   const boost::system::error_code& ec, std::size_t) {
      if (!ec) return self->WatchClose();
      if (self->connected_ && !self->stopped_) {
        self->connected_ = false;
        --self->open_;
        ++self->closed_by_relay_;
        self->timer_.cancel();
      }
    });
  }

  asio::ip::tcp::socket socket_;
  asio::steady_timer timer_;
  asio::ip::tcp::endpoint relay_;
  std::atomic<int>& open_;
  std::atomic<int>& closed_by_relay_;
  std::string out_;
  std::array<char, 512> in_{};
  bool connected_ = false;
  bool stopped_ = false;
};

int RunSlow(Args& args) {
  Target target = ParseTarget(args);
  const int clients = static_cast<int>(args.Int("clients", 3000, 1, 15000));
  const int seconds = static_cast<int>(args.Int("seconds", 14, 1, 120));
  const int rate = static_cast<int>(args.Int("rate", 20, 1, 1000));
  const int size = static_cast<int>(args.Int("size", 200, 1, 10240));
  const bool keep_mesh = args.Flag("keep-mesh");
  args.CheckAllUsed();
  const rlim_t need = static_cast<rlim_t>(clients) + 64;
  if (RaiseFileLimit(need) < need) {
    throw SetupError("need " + std::to_string(need) + " open files; raise `ulimit -n`");
  }

  auto admin = MakeClient(target, 30);
  const std::string mesh = CreateMesh(*admin, target, "bench-slow-" + std::to_string(UnixMillis()));
  const std::string from = RegisterAgent(*admin, mesh, "bench-sender");
  const std::string to = RegisterAgent(*admin, mesh, "bench-receiver");

  asio::io_context ioc;
  auto work = asio::make_work_guard(ioc);
  const asio::ip::tcp::endpoint relay(asio::ip::make_address("127.0.0.1"),
                                      static_cast<unsigned short>(target.port));
  std::atomic<int> open{0}, closed_by_relay{0};
  std::vector<std::shared_ptr<Trickler>> pool;
  for (int i = 0; i < clients; ++i) pool.push_back(std::make_shared<Trickler>(ioc, relay, open, closed_by_relay));
  std::thread client([&ioc] { ioc.run(); });
  for (auto& t : pool) asio::post(ioc, [t] { t->Start(); });
  for (int i = 0; i < 100 && open.load() < clients; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  const int opened = open.load();
  std::cerr << "slow: " << opened << " of " << clients << " trickling connections open\n";

  // Normal sends on a fresh connection each second's share, while the tricklers hold theirs.
  auto sender = MakeClient(target, 30);
  std::vector<double> send_ms;
  long non_201 = 0;
  int max_open = opened;
  const std::string path = "/mesh/" + mesh + "/messages";
  const auto start = Clock::now();
  const auto period = std::chrono::microseconds(1'000'000 / rate);
  for (int i = 0; Clock::now() < start + std::chrono::seconds(seconds); ++i) {
    std::this_thread::sleep_until(start + i * period);
    const auto t0 = Clock::now();
    auto r = sender->Post(path, MessageBody(from, to, MakeContent("slow " + std::to_string(i) + " ", size)),
                          "application/json");
    if (!r || r->status != 201) {
      ++non_201;
      continue;
    }
    send_ms.push_back(Ms(Clock::now() - t0));
    max_open = std::max(max_open, open.load());
  }
  const int still_open = open.load();
  asio::post(ioc, [&pool] {
    for (auto& t : pool) t->Stop();
  });
  work.reset();
  client.join();

  const Summary s = Summarize(send_ms);
  const bool ok = non_201 == 0 && !send_ms.empty() && s.max < 1000.0;
  ojson out;
  out["bench"] = "slow";
  out["ok"] = ok;
  out["clients"] = clients;
  out["clients_opened"] = opened;
  out["seconds"] = seconds;
  out["sends"] = send_ms.size();
  out["send_non_201"] = non_201;
  AddSummary(out, "send_", s);
  out["closed_by_relay"] = closed_by_relay.load();
  out["open_at_end"] = still_open;
  out["mesh_id"] = mesh;
  std::fprintf(stderr,
               "  %zu sends while %d clients trickled  non-201 %ld  send ms  %s\n"
               "  the relay closed %d trickling connections (request deadline); %d open at the end\n",
               send_ms.size(), opened, non_201, Line(s).c_str(), closed_by_relay.load(), still_open);
  if (!keep_mesh) DeleteMesh(target, mesh);
  Emit(out);
  return ok ? kExitOk : kExitCheckFailed;
}

// ---------------------------------------------------------------------------------------------

constexpr const char* kUsage = R"(usage: meshwire-bench COMMAND [flags]

Benchmarks a meshwire relay on 127.0.0.1. Human summary on stderr, one JSON object on stdout.

commands:
  sends   --clients 16 --seconds 10 --size 200 [--to direct|all] [--warmup-ms 1000]
          [--relay-pid PID]
          N clients, each on its own keep-alive connection, send in a closed loop.
  wake    --messages 1000 [--settle-ms 2] [--wait 30] [--size 200] [--max-seconds 300]
          [--send-url URL]
          one message at a time from A to B while B long-polls; latency from the send's
          201 to B's poll answer. --send-url: A sends through that relay (another node
          on the same PostgreSQL database), B polls --url.
  parked  --listeners 10000 --seconds 10 --sends 500 [--relay-pid PID] [--wait 60]
          [--park-timeout 60] [--ramp 1000] [--grace 5] [--per-token 900] [--seed 1]
          N parked long-polls (one event-driven client); relay RSS, direct sends to random
          listeners, then one broadcast that must reach them all.
  slow    --clients 3000 --seconds 14 [--rate 20] [--size 200]
          N connections that trickle a request one byte a second; normal sends meanwhile.

common flags:
  --url http://127.0.0.1:7420   the relay (loopback only)
  --token mw_...                or the environment variable MESHWIRE_TOKEN
  --keep-mesh                   keep the bench mesh (deleted at the end by default)
)";

}  // namespace

int main(int argc, char** argv) {
  signal(SIGPIPE, SIG_IGN);
  if (argc < 2 || std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h" ||
      std::string(argv[1]) == "help") {
    std::cout << kUsage;
    return argc < 2 ? kExitUsage : kExitOk;
  }
  const std::string command = argv[1];
  try {
    Args args(argc, argv, 2);
    if (args.help()) {
      std::cout << kUsage;
      return kExitOk;
    }
    if (command == "sends") return RunSends(args);
    if (command == "wake") return RunWake(args);
    if (command == "parked") return RunParked(args);
    if (command == "slow") return RunSlow(args);
    throw UsageError("unknown command '" + command + "' (sends, wake, parked or slow)");
  } catch (const UsageError& e) {
    std::cerr << "meshwire-bench: " << e.what() << "; see meshwire-bench --help\n";
    return kExitUsage;
  } catch (const SetupError& e) {
    std::cerr << "meshwire-bench: " << e.what() << "\n";
    return kExitSetup;
  } catch (const std::exception& e) {
    std::cerr << "meshwire-bench: " << e.what() << "\n";
    return kExitSetup;
  }
}
