#include "server/http/runtime.h"

#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <deque>
#include <iterator>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_set>

#include "schemas/error.h"
#include "server/core/handoff.h"
#include "server/core/thread_name.h"
#include "server/http/url.h"

namespace meshwire {

namespace beast = boost::beast;
namespace http = boost::beast::http;
namespace net = boost::asio;
namespace ssl = boost::asio::ssl;
using tcp = boost::asio::ip::tcp;
using ErrorCode = boost::system::error_code;

namespace {

constexpr std::size_t kFirstRead = 512;
// Answers handed over together (HandOffBatch) go to the event loop in posts
// of at most this many: a batch of sends is one post, a broadcast to
// thousands of parked polls is spread over every event-loop thread.
constexpr std::size_t kGatheredPerPost = 32;
// A handed-over batch of at most this many answers (a group commit's sends,
// a few woken polls) is written by the thread that made it, at once; the
// event loop then only reads the connections' next requests. A larger one (a
// broadcast) is shared: that thread writes one share, the event-loop threads
// the others.
constexpr std::size_t kAnsweredInPlace = 64;
// Bytes read but not yet parsed that a connection may hold: the headers (at
// most max_header_bytes, 16 KiB by default) and a read's worth; a body goes
// into the request as it is parsed. A chunk line that never ends (64 MiB of
// chunk extensions) stops here instead of growing the relay.
constexpr std::size_t kMaxUnparsed = 256 * 1024;
constexpr auto kLinger = std::chrono::seconds(2);         // reading what a refused client still sends
constexpr std::size_t kLingerBytes = 8 * 1024 * 1024;
constexpr auto kPendingDataRecheck = std::chrono::milliseconds(250);
constexpr std::size_t kMaxStreamQueue = 4 << 20;  // an event stream's unwritten bytes
// Once every stream's unwritten bytes together pass the runtime's
// max_stream_memory, a stream more than kStreamSlack behind whose client has
// taken nothing for kStreamStalledMs is dropped at its next event (one nearly
// up to date, or reading, such as a replay in full flow, still gets it).
constexpr std::size_t kStreamSlack = 64 * 1024;
constexpr std::int64_t kStreamStalledMs = 1000;
constexpr std::int64_t kStreamMemoryWarnEveryMs = 10000;

std::string Str(beast::string_view s) { return std::string(s.data(), s.size()); }

/// An answer's status line and its own header fields (the framing ones are
/// the caller's to add, then the blank line).
std::string StatusAndFields(const HttpResponse& res) {
  std::string out;
  out.reserve(160);
  out += "HTTP/1.1 " + std::to_string(res.status) + " ";
  out += Str(http::obsolete_reason(static_cast<http::status>(res.status)));
  out += "\r\n";
  for (const auto& [name, value] : res.headers) {
    out += name;
    out += ": ";
    // A value never ends its line early: a control byte a route let through
    // from a request (CR, LF, NUL) goes out as '?', never as a new header.
    for (const char c : value) out += (static_cast<unsigned char>(c) < 0x20 && c != '\t') || c == 0x7f ? '?' : c;
    out += "\r\n";
  }
  return out;
}
/// `s` without its leading and trailing spaces and tabs.
beast::string_view Trimmed(beast::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

class WorkerPool final : public Executor {
 public:
  explicit WorkerPool(int threads) : pool_(static_cast<std::size_t>(threads)) {}
  void Post(std::function<void()> work) override { net::post(pool_, std::move(work)); }
  void Join() { pool_.join(); }

 private:
  net::thread_pool pool_;
};

/// What is wrong with the dates of `ctx`'s certificate now: "has expired",
/// "is not valid yet", or "" when it is valid.
std::string CertificateDates(ssl::context& ctx) {
  X509* x = SSL_CTX_get0_certificate(ctx.native_handle());
  if (x == nullptr) return "";
  if (X509_cmp_current_time(X509_get0_notAfter(x)) < 0) return "has expired";
  if (X509_cmp_current_time(X509_get0_notBefore(x)) > 0) return "is not valid yet";
  return "";
}

/// The TLS context of `cert` and `key`; `warn`: say when the certificate has
/// expired or is not valid yet (once per load that serves, not per check).
std::shared_ptr<ssl::context> LoadTls(const std::string& cert, const std::string& key, bool warn = true) {
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_server);
  // A key encrypted with a passphrase: OpenSSL would ask for it on the
  // terminal (and the relay wait there); none is given, and it says so.
  auto encrypted = std::make_shared<bool>(false);
  ctx->set_password_callback([encrypted](std::size_t, ssl::context::password_purpose) {
    *encrypted = true;
    return std::string();
  });
  try {
    ctx->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                     ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1 |
                     ssl::context::single_dh_use);
    SSL_CTX_set_min_proto_version(ctx->native_handle(), TLS1_2_VERSION);
    // An idle TLS connection (a parked poll) gives its 2 x 16 KiB record
    // buffers back until it reads or writes again.
    SSL_CTX_set_mode(ctx->native_handle(), SSL_MODE_RELEASE_BUFFERS);
    ctx->use_certificate_chain_file(cert);
    ctx->use_private_key_file(key, ssl::context::pem);
  } catch (const boost::system::system_error& e) {
    if (*encrypted) {
      throw Error::BadRequest("invalid_tls", "The TLS key " + key + " is encrypted with a passphrase, which the "
                                             "relay cannot type: give it an unencrypted copy (openssl pkey -in " +
                                             key + " -out PLAIN.key), readable by the relay alone.");
    }
    throw Error::BadRequest("invalid_tls", "Cannot load the TLS certificate " + cert + " and key " +
                                               key + " (" + e.what() + "): check both are PEM files "
                                               "that match and that the relay may read them.");
  }
  // Served all the same at start (it may be renewed by the next SIGHUP), but
  // said: every client will refuse it.
  if (const std::string dates = warn ? CertificateDates(*ctx) : ""; dates == "has expired") {
    spdlog::warn("the TLS certificate {} has expired: clients refuse it; renew it, then send SIGHUP", cert);
  } else if (dates == "is not valid yet") {
    spdlog::warn("the TLS certificate {} is not valid yet: clients refuse it until then (check this host's "
                 "clock)", cert);
  }
  return ctx;
}

/// The steady clock in milliseconds (idle connections; never 0).
std::int64_t SteadyMs() {
  const auto now = std::chrono::steady_clock::now().time_since_epoch();
  return std::max<std::int64_t>(1, std::chrono::duration_cast<std::chrono::milliseconds>(now).count());
}

/// The origin form ("/path?query") of a request target, or nullopt when it
/// has none. A server must accept the absolute form ("http://host/path",
/// RFC 9112 3.2.2), which names the same path; "*" passes as it is with
/// OPTIONS, the one method that may use it (no route has it); anything else
/// ("health", "host:443", "http:///x" without a host) is no target of this
/// relay.
std::optional<std::string> OriginForm(std::string_view target, http::verb method) {
  if (target.empty()) return std::nullopt;
  if (target.front() == '/') return std::string(target);
  if (target == "*") return method == http::verb::options ? std::optional<std::string>("*") : std::nullopt;
  for (std::string_view scheme : {"http://", "https://"}) {
    if (target.size() >= scheme.size() && beast::iequals(target.substr(0, scheme.size()), scheme)) {
      const std::size_t end = std::min(target.find_first_of("/?", scheme.size()), target.size());
      if (end == scheme.size()) return std::nullopt;  // no host
      std::string path(target.substr(end));
      if (path.empty() || path.front() == '?') path.insert(path.begin(), '/');
      return path;
    }
  }
  return std::nullopt;
}

/// Splits a request target into its decoded path and query; false when an
/// escape is malformed.
bool SplitTarget(const std::string& target, HttpRequest& req) {
  std::size_t q = target.find('?');
  auto path = PercentDecode(std::string_view(target).substr(0, q), false);
  if (!path) return false;
  req.path = std::move(*path);
  if (q == std::string::npos) return true;
  auto query = ParseQuery(std::string_view(target).substr(q + 1));
  if (!query) return false;
  req.query = std::move(*query);
  return true;
}

}  // namespace

class SessionBase;

struct HttpRuntime::Impl {
  Impl(RuntimeOptions o, Handler h)
      : options(std::move(o)),
        handler(std::move(h)),
        // Never 1, which tells Asio that one thread alone runs it (it then
        // skips waking the others): the stand-in runs it beside the loops.
        ioc(std::max(2, options.io_threads)),
        control(net::make_strand(ioc)),
        acceptor(ioc),
        grace(control),
        accept_retry(ioc),
        idle_sweep(control),
        workers(options.workers) {}
  ~Impl() {
    // Handlers still queued hold connections: they unregister as they go.
    destroying = true;
    workers.Join();
  }

  void Accept();
  void Register(SessionBase* s);
  void Unregister(SessionBase* s);
  /// Closes every connection, whatever it is doing; returns how many.
  std::size_t ForceCloseAll();
  /// Every idle_timeout_ms / 8 (10 ms to 5 s): closes the connections idle
  /// for idle_timeout_ms, so that no read arms a timer of its own.
  void SweepIdle();
  /// HandOffBatch's flush: `work` in posts of at most kGatheredPerPost, so
  /// that a broadcast's thousands of answers are written by every thread.
  static void RunGathered(void* self, std::vector<HandOffBatch::Work> work);
  /// Writes `work` (answers) on this thread, in place, handing what they
  /// leave to the event loop over every kGatheredPerPost answers.
  static void WriteInPlace(Impl& rt, std::vector<HandOffBatch::Work>& work);
  /// Posts work[begin..] to the event loops, kGatheredPerPost to a post.
  void PostGathered(std::vector<HandOffBatch::Work>& work, std::size_t begin);
  /// Whether RunGathered is answering a small batch in place on this thread.
  static bool InPlace();
  /// In place: `work` for the event loop, posted with the rest of the batch's
  /// once every answer of it is written.
  static void AfterInPlace(HandOffBatch::Work work);
  std::shared_ptr<ssl::context> Tls() {
    std::lock_guard lock(tls_mu);
    return tls;
  }

  // Declared before the io_context: connections destroyed with it unregister here.
  RuntimeOptions options;
  Handler handler;
  mutable std::mutex sessions_mu;
  std::unordered_set<SessionBase*> sessions;  // guarded by sessions_mu
  std::atomic<bool> stopping{false};
  std::atomic<bool> destroying{false};
  std::atomic<std::size_t> stream_bytes{0};      // every event stream's unwritten bytes
  std::atomic<std::size_t> body_bytes{0};        // request bodies being read (Session::ReserveBody)
  std::atomic<std::int64_t> stream_warned_ms{INT64_MIN / 2};  // when the log last said streams were dropped for it
  std::mutex tls_mu;
  std::shared_ptr<ssl::context> tls;  // guarded by tls_mu; null: plain HTTP
  net::io_context ioc;
  net::strand<net::io_context::executor_type> control;  // Stop and the grace timer
  tcp::acceptor acceptor;
  net::steady_timer grace;         // Stop(): the end of the grace period; on `control`
  net::steady_timer accept_retry;  // after accept fails (out of descriptors)
  net::steady_timer idle_sweep;    // SweepIdle; on `control`
  WorkerPool workers;
};

/// What the runtime needs of a connection, whatever its stream.
class SessionBase {
 public:
  explicit SessionBase(HttpRuntime::Impl& rt) : rt_(rt) { rt_.Register(this); }
  // ~Session unregisters first thing, so that Stop() never reaches a session
  // that is half destroyed; this covers a Session whose constructor threw.
  virtual ~SessionBase() { rt_.Unregister(this); }
  /// Answers request `number` with what `make` builds, on the connection's
  /// thread (ignored when it is no longer the current request).
  virtual void Deliver(std::uint64_t number, std::function<HttpResponse()> make) = 0;
  /// Starts a streamed answer to request `number`.
  virtual std::shared_ptr<EventStream> StartStream(std::uint64_t number, HttpResponse head) = 0;
  /// Stop(): close now if idle, else once the answer in progress is written.
  virtual void StopSoon() = 0;
  /// The grace period is over: close whatever state the connection is in.
  virtual void ForceClose() = 0;
  /// Starts watching for the client hanging up while request `number` waits.
  virtual void WatchHangUp(std::uint64_t number) = 0;
  /// The sweep found the connection idle since `cutoff_ms` or before: close
  /// it if it still is. Called with the runtime's session lock held.
  virtual void CloseIfIdle(std::int64_t cutoff_ms) = 0;

  /// When the connection began to wait for its next request (SteadyMs), or 0
  /// while a request is read, handled or answered. Written on the
  /// connection's strand, read by the sweep.
  std::atomic<std::int64_t> idle_since_ms{0};

 protected:
  HttpRuntime::Impl& rt_;
};

namespace {

class ExchangeImpl final : public Exchange {
 public:
  ExchangeImpl(std::shared_ptr<SessionBase> session, std::uint64_t number, HttpRequest request)
      : session_(std::move(session)), number_(number), request_(std::move(request)) {}

  HttpRequest& request() override { return request_; }

  void Respond(HttpResponse response) override {
    if (answered_.exchange(true)) return;
    session_->Deliver(number_, [r = std::move(response)]() mutable { return std::move(r); });
  }

  void RespondWith(std::function<HttpResponse()> make) override {
    if (answered_.exchange(true)) return;
    session_->Deliver(number_, std::move(make));
  }

  void OnHangUp(std::function<void()> fn) override {
    bool start_watch = false;
    {
      std::lock_guard lock(mu_);
      if (!hung_up_) {
        start_watch = !watching_;
        watching_ = true;
        on_hang_up_.push_back(std::move(fn));
        fn = nullptr;
      }
    }
    if (fn) return fn();  // already gone
    // Requests answered at once never pay for the watch: it starts with the
    // first interest in it.
    if (start_watch) session_->WatchHangUp(number_);
  }

  std::shared_ptr<EventStream> OpenStream(HttpResponse head) override {
    if (answered_.exchange(true)) return nullptr;
    return session_->StartStream(number_, std::move(head));
  }

  /// The client hung up: runs what OnHangUp registered.
  void HangUp() {
    std::vector<std::function<void()>> fns;
    {
      std::lock_guard lock(mu_);
      if (hung_up_) return;
      hung_up_ = true;
      fns.swap(on_hang_up_);
    }
    for (auto& fn : fns) fn();
  }

 private:
  std::shared_ptr<SessionBase> session_;
  const std::uint64_t number_;
  HttpRequest request_;
  std::atomic<bool> answered_{false};
  std::mutex mu_;
  bool hung_up_ = false;                          // guarded by mu_
  bool watching_ = false;                         // guarded by mu_
  std::vector<std::function<void()>> on_hang_up_;  // guarded by mu_
};

/// One connection, plain (beast::tcp_stream) or TLS (ssl_stream over it).
/// Everything but the constructor runs on the connection's strand.
template <class Stream>
class Session final : public SessionBase, public std::enable_shared_from_this<Session<Stream>> {
 public:
  static constexpr bool kTls = !std::is_same_v<Stream, beast::tcp_stream>;

  Session(HttpRuntime::Impl& rt, tcp::socket socket, std::shared_ptr<ssl::context> tls)
      : SessionBase(rt), tls_(std::move(tls)), stream_(MakeStream(std::move(socket), tls_.get())) {
    buffer_.max_size(std::max(kMaxUnparsed, 2 * rt.options.max_header_bytes + 64 * 1024));
    ErrorCode ec;
    auto peer = Lowest().socket().remote_endpoint(ec);
    if (!ec) remote_ = peer.address().to_string();
  }
  ~Session() override {
    ReleaseBody();
    Release(queued_bytes_.load());
    rt_.Unregister(this);
  }

  void Start() {
    net::dispatch(Lowest().get_executor(), [self = this->shared_from_this()] {
      if constexpr (kTls) {
        // The first bytes say whether the client speaks TLS at all: plain
        // HTTP gets an answer it can read, not a failed handshake.
        self->Lowest().expires_after(std::chrono::milliseconds(self->rt_.options.request_timeout_ms));
        beast::async_detect_ssl(self->Lowest(), self->buffer_, [self](ErrorCode ec, bool tls) {
          if (ec) return self->Close();
          if (!tls) return self->RefusePlainHttp();
          self->stream_.async_handshake(ssl::stream_base::server, self->buffer_.data(),
                                        [self](ErrorCode hec, std::size_t used) {
                                          if (hec) return self->Close();
                                          self->buffer_.consume(used);
                                          self->DoIdle();
                                        });
        });
      } else {
        self->DoIdle();
      }
    });
  }

  void Deliver(std::uint64_t number, std::function<HttpResponse()> make) override {
    auto self = this->shared_from_this();
    if (!HandOffBatch::Open()) return net::post(Lowest().get_executor(), OnStrand(std::move(self), number, std::move(make)));
    // Answers of a batch of commits go to the event loop together, each then
    // run at once on its connection's strand when that is free; a small
    // batch's plain answers are written first by the thread that made them
    // (Impl::RunGathered).
    HandOffBatch::Add(&rt_, &HttpRuntime::Impl::RunGathered,
                      [self = std::move(self), number, make = std::move(make)]() mutable {
                        if (!HttpRuntime::Impl::InPlace()) {
                          net::dispatch(self->Lowest().get_executor(), OnStrand(self, number, std::move(make)));
                        } else if constexpr (kTls) {
                          self->LaterOnStrand(OnStrand(self, number, std::move(make)));
                        } else {
                          self->AnswerInPlace(number, MakeAnswer(make));
                        }
                      });
  }

  std::shared_ptr<EventStream> StartStream(std::uint64_t number, HttpResponse head) override;

  // Called with the runtime's session lock held: the handler must own the
  // only new reference, or the last one could be dropped here, under the lock.
  void StopSoon() override {
    auto self = this->weak_from_this().lock();  // null: being destroyed
    if (!self) return;
    auto executor = Lowest().get_executor();
    net::post(executor, [self = std::move(self)] {
      if (self->state_ == State::kIdle) self->Close();
      if (self->state_ == State::kStreaming) self->EndStream();
    });
  }

  void ForceClose() override {
    auto self = this->weak_from_this().lock();
    if (!self) return;
    auto executor = Lowest().get_executor();
    net::post(executor, [self = std::move(self)] {
      if (self->state_ == State::kClosed) return self->ForceCloseSocket();  // lingering after its answer
      self->HangUp();
    });
  }

  void CloseIfIdle(std::int64_t cutoff_ms) override {
    auto self = this->weak_from_this().lock();
    if (!self) return;
    auto executor = Lowest().get_executor();
    net::post(executor, [self = std::move(self), cutoff_ms] {
      const std::int64_t since = self->idle_since_ms.load(std::memory_order_relaxed);
      if (self->state_ == State::kIdle && since != 0 && since <= cutoff_ms) self->Close();
    });
  }

  void WatchHangUp(std::uint64_t number) override {
    net::post(Lowest().get_executor(), [self = this->shared_from_this(), number] {
      if (number == self->number_ && self->state_ == State::kHandling) self->ArmWatch(number);
    });
  }

  // Event streams (see StreamHandle).
  void Enqueue(std::string chunk);
  void EndStream();
  void WhenDrained(std::size_t bytes, std::function<void()> fn);
  bool streaming() const { return stream_open_.load(); }

 private:
  enum class State { kIdle, kReading, kHandling, kWriting, kStreaming, kClosed };

  static Stream MakeStream(tcp::socket socket, ssl::context* tls) {
    if constexpr (kTls) {
      return Stream(beast::tcp_stream(std::move(socket)), *tls);
    } else {
      return Stream(std::move(socket));
    }
  }
  beast::tcp_stream& Lowest() { return beast::get_lowest_layer(stream_); }

  // --- reading ------------------------------------------------------------------------

  void DoIdle() {
    state_ = State::kIdle;
    if (rt_.stopping) return Close();
    if (buffer_.size() > 0) return DoReadHeader();  // a pipelined request is here already
    // No timer per read: the runtime's sweep closes a connection idle for
    // idle_timeout_ms (Impl::SweepIdle).
    Lowest().expires_never();
    idle_since_ms.store(SteadyMs(), std::memory_order_relaxed);
    stream_.async_read_some(buffer_.prepare(kFirstRead),
                            [self = this->shared_from_this()](ErrorCode ec, std::size_t n) {
                              self->idle_since_ms.store(0, std::memory_order_relaxed);
                              if (ec || self->state_ != State::kIdle) return self->Close();
                              self->buffer_.commit(n);
                              self->DoReadHeader();
                            });
  }

  void DoReadHeader() {
    state_ = State::kReading;
    head_ = false;  // until this request says HEAD (an error before then has its body)
    parser_.emplace();
    parser_->header_limit(static_cast<std::uint32_t>(rt_.options.max_header_bytes));
    parser_->body_limit(rt_.options.max_body_bytes);
    // A request that came whole with the first read (most do) is parsed
    // here, without a timer or a trip through the event loop.
    ErrorCode buffered_ec;
    ParseBuffered(buffered_ec);
    if (buffered_ec) return Refuse(buffered_ec);
    if (parser_->is_header_done()) return OnHeader({});
    ArmRequestDeadline();
    http::async_read_header(stream_, buffer_, *parser_,
                            [self = this->shared_from_this()](ErrorCode ec, std::size_t) {
                              self->OnHeader(ec);
                            });
  }

  /// Feeds the parser what the buffer holds, up to the end of the header
  /// (which OnHeader checks before any of the body is read) or of the
  /// request; `ec` is the parser's error, not its wish for more.
  void ParseBuffered(ErrorCode& ec) {
    const bool header_was_done = parser_->is_header_done();
    while (buffer_.size() > 0 && !parser_->is_done()) {
      const std::size_t n = parser_->put(buffer_.data(), ec);
      buffer_.consume(n);
      if (ec == http::error::need_more) {
        ec = {};
        return;
      }
      if (ec || n == 0 || (!header_was_done && parser_->is_header_done())) return;
    }
  }

  /// One deadline for the whole request, headers and body: a client that
  /// trickles bytes cannot hold the connection past it. Not the stream's own
  /// timeout, which closes the socket: this one cancels the read, so the
  /// client is told 408 (Refuse).
  void ArmRequestDeadline() {
    if (deadline_armed_) return;
    deadline_armed_ = true;
    Lowest().expires_never();
    if (!deadline_) deadline_.emplace(Lowest().get_executor());
    deadline_->expires_after(std::chrono::milliseconds(rt_.options.request_timeout_ms));
    deadline_->async_wait([self = this->shared_from_this(), armed = ++deadline_number_](ErrorCode ec) {
      if (ec || armed != self->deadline_number_ || self->state_ != State::kReading) return;
      self->timed_out_ = true;
      ErrorCode ignored;
      self->Lowest().socket().cancel(ignored);
    });
  }
  void DisarmRequestDeadline() {
    if (!std::exchange(deadline_armed_, false)) return;
    ++deadline_number_;
    if (deadline_) deadline_->cancel();
  }

  void OnHeader(ErrorCode ec) {
    if (ec) return Refuse(ec);
    const auto& msg = parser_->get();
    std::size_t fields = 0;
    int content_lengths = 0;
    int transfer_encodings = 0;
    int authorizations = 0;
    int hosts = 0;
    bool only_chunked = true;  // every Transfer-Encoding is exactly "chunked"
    for (const auto& f : msg) {
      ++fields;
      // "Content-Length: 5, 5" is two lengths in one field (RFC 9110 8.6):
      // as ambiguous as two fields, and refused the same way.
      if (f.name() == http::field::content_length) {
        content_lengths += f.value().find(',') == beast::string_view::npos ? 1 : 2;
      }
      authorizations += f.name() == http::field::authorization;
      hosts += f.name() == http::field::host;
      if (f.name() == http::field::transfer_encoding) {
        ++transfer_encodings;
        only_chunked = only_chunked && beast::iequals(Trimmed(f.value()), "chunked");
      }
    }
    if (fields > rt_.options.max_header_count) {
      return Reject(Error(431, "header_too_large",
                          "The request has " + std::to_string(fields) + " header fields; the relay reads at most " +
                              std::to_string(rt_.options.max_header_count) + "."));
    }
    if (msg.target().size() > rt_.options.max_target_bytes) {
      return Reject(Error(414, "uri_too_long",
                          "The request target is " + std::to_string(msg.target().size()) +
                              " bytes; the relay reads at most " +
                              std::to_string(rt_.options.max_target_bytes) + "."));
    }
    if (msg.target().empty() || (msg.target().front() != '/' && !OriginForm(msg.target(), msg.method()))) {
      return Reject(Error(400, "bad_request",
                          "The request target must be a path starting with / (for example GET /health)."));
    }
    if (content_lengths > 1 || (content_lengths == 1 && msg.count(http::field::transfer_encoding))) {
      return Reject(Error(400, "bad_request",
                          "The request's framing is ambiguous (two Content-Lengths, or Content-Length "
                          "with Transfer-Encoding); send one of them."));
    }
    // Two credentials: which one a route reads would decide who the caller is.
    if (authorizations > 1) {
      return Reject(Error(400, "bad_request", "The request has two Authorization headers; send one."));
    }
    // RFC 9112 3.2: an HTTP/1.1 request names its host once (a proxy in front
    // and the relay could otherwise each read a different one).
    if (hosts > 1 || (hosts == 0 && msg.version() >= 11)) {
      return Reject(Error(400, "bad_request",
                          hosts > 1 ? "The request has two Host headers; send one."
                                    : "An HTTP/1.1 request needs a Host header (RFC 9112 3.2)."));
    }
    // Any other coding (gzip, "chunked, gzip", identity, two fields) leaves
    // the body's length unknown: the parser would read the body as the next
    // request (a smuggled one, behind a proxy). RFC 9112 6.3: 400 and close.
    if (transfer_encodings > 1 || !only_chunked) {
      return Reject(Error(400, "bad_request",
                          "The relay reads request bodies as they are or with Transfer-Encoding: chunked, "
                          "nothing else; send the body uncompressed with Content-Length."));
    }
    ErrorCode body_ec;
    ParseBuffered(body_ec);  // what of the body came with the header
    if (body_ec) return Refuse(body_ec);
    if (parser_->is_done()) return OnRequest();
    // The body must be waited for: it is counted against max_body_memory
    // until it is read, so that many slow bodies cannot take the memory.
    if (!ReserveBody()) {
      return Reject(Error::Unavailable("The relay is reading too many request bodies at once (" +
                                       std::to_string(rt_.options.max_body_memory >> 20) +
                                       " MiB together); retry in a second."));
    }
    ArmRequestDeadline();
    auto expect = msg[http::field::expect];
    if (beast::iequals(expect, "100-continue")) {
      static const std::string kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
      net::async_write(stream_, net::buffer(kContinue),
                       [self = this->shared_from_this()](ErrorCode wec, std::size_t) {
                         if (wec) return self->Close();
                         self->DoReadBody();
                       });
      return;
    }
    DoReadBody();
  }

  /// Counts the body being read (its Content-Length; a chunked one at
  /// max_body_bytes) against max_body_memory; false when it would go past.
  bool ReserveBody() {
    const auto length = parser_->content_length();
    const std::size_t n = length ? static_cast<std::size_t>(*length) : rt_.options.max_body_bytes;
    if (rt_.body_bytes.fetch_add(n) + n > rt_.options.max_body_memory) {
      rt_.body_bytes.fetch_sub(n);
      return false;
    }
    body_reserved_ = n;
    return true;
  }
  /// Its body read (or the request given up): no longer counted.
  void ReleaseBody() { rt_.body_bytes.fetch_sub(std::exchange(body_reserved_, 0)); }

  void DoReadBody() {
    http::async_read(stream_, buffer_, *parser_,
                     [self = this->shared_from_this()](ErrorCode ec, std::size_t) {
                       if (ec) return self->Refuse(ec);
                       self->OnRequest();
                     });
  }

  /// A request that could not be read: the right error, then close.
  void Refuse(ErrorCode ec) {
    DisarmRequestDeadline();
    ReleaseBody();
    if (std::exchange(timed_out_, false)) {
      return Reject(Error(408, "request_timeout",
                          "The request did not arrive in " +
                              std::to_string(rt_.options.request_timeout_ms / 1000) +
                              " s; send it whole, without pauses."));
    }
    if (ec == http::error::end_of_stream || ec == net::error::eof || ec == net::error::operation_aborted ||
        ec == net::error::connection_reset || ec == ssl::error::stream_truncated) {
      return Close();  // the client went away between or during requests
    }
    if (ec == http::error::header_limit) {
      return Reject(Error(431, "header_too_large",
                          "The request line and headers exceed " +
                              std::to_string(rt_.options.max_header_bytes / 1024) + " KiB."));
    }
    if (ec == http::error::buffer_overflow) {  // a chunk's size line that never ends (kMaxUnparsed)
      return Reject(Error(400, "bad_request",
                          "A chunk's size line (with its extensions) is longer than " +
                              std::to_string(kMaxUnparsed / 1024) + " KiB; send the body with Content-Length."));
    }
    if (ec == http::error::body_limit) {
      return Reject(Error(413, "payload_too_large",
                          "The request body is larger than " +
                              std::to_string(rt_.options.max_body_bytes / 1024) +
                              " KiB; a message's content is at most 10240 bytes."));
    }
    Reject(Error(400, "bad_request", "The relay could not read this HTTP request (" + ec.message() + ")."));
  }

  void OnRequest() {
    DisarmRequestDeadline();
    ReleaseBody();
    auto msg = parser_->release();
    parser_.reset();
    HttpRequest req;
    req.method = Str(msg.method_string());
    // OnHeader refused what has no origin form.
    req.target =
        msg.target().front() == '/' ? Str(msg.target()) : OriginForm(msg.target(), msg.method()).value_or("/");
    head_ = msg.method() == http::verb::head;
    if (!SplitTarget(req.target, req)) {
      return Reject(Error(400, "bad_request", "The request target has a malformed %-escape."));
    }
    req.headers.reserve(8);
    for (const auto& f : msg) req.headers.emplace_back(Str(f.name_string()), Str(f.value()));
    req.body = std::move(msg.body());
    req.remote_address = remote_;
    keep_alive_ = msg.keep_alive();
    http10_ = msg.version() < 11;
    // Parked requests hold their connection for long: keep it small.
    if (buffer_.size() == 0 && buffer_.capacity() > 4 * kFirstRead) buffer_.shrink_to_fit();

    if (spdlog::should_log(spdlog::level::debug)) {  // one line per request, with its answer (Write)
      debug_request_ = req.method + " " + ForLog(req.path, 200);
      debug_started_ = std::chrono::steady_clock::now();
    }
    ++number_;
    state_ = State::kHandling;
    if constexpr (!kTls) {
      std::lock_guard lock(wire_mu_);
      open_number_ = number_;  // AnswerInPlace may write this request's answer
    }
    exchange_ = std::make_shared<ExchangeImpl>(this->shared_from_this(), number_, std::move(req));
    // The handler runs here: it answers at once or hands its work to the
    // workers (the router decides per route), so it never blocks this loop.
    auto ex = exchange_;
    try {
      rt_.handler(ex);
    } catch (const std::exception& e) {
      spdlog::error("handler of {} {}: {}", ex->request().method, ForLog(ex->request().path), ForLog(e.what(), 1000));
      ex->Respond(HttpResponse::FromError(Error(500, "internal", "The relay failed on this request.")));
    }
  }

  // --- a client that hangs up -------------------------------------------------------

  /// Watches the socket while request `number` waits for its answer: it
  /// becomes readable when the client sends more (a pipelined request) or
  /// hangs up; only the latter ends the exchange.
  void ArmWatch(std::uint64_t number) {
    Lowest().socket().async_wait(tcp::socket::wait_read,
                                 [self = this->shared_from_this(), number](ErrorCode ec) {
                                   self->OnReadable(number, ec);
                                 });
  }

  void OnReadable(std::uint64_t number, ErrorCode ec) {
    if (ec || number != number_ || (state_ != State::kHandling && state_ != State::kStreaming)) return;
    const int fd = Lowest().socket().native_handle();
    char byte = 0;
    const ssize_t n = ::recv(fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    bool gone = n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
    if (!gone && n > 0) {
      pollfd p{fd, POLLRDHUP, 0};
      gone = ::poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR));
    }
    if (gone) return HangUp();
    if (n <= 0) return ArmWatch(number);  // woken for nothing
    // Data waits unread (a pipelined request, or TLS records): it stays
    // readable, so look again a little later instead of spinning.
    if (!recheck_) recheck_.emplace(Lowest().get_executor());
    recheck_->expires_after(kPendingDataRecheck);
    recheck_->async_wait([self = this->shared_from_this(), number](ErrorCode tec) {
      if (!tec) self->ArmWatch(number);
    });
  }

  /// --log-level debug: the request being answered, its status, how long it took.
  void LogAnswer(const std::string& outcome) {
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - debug_started_).count();
    spdlog::debug("{} {} -> {} after {:.1f} ms", remote_, debug_request_, outcome, ms);
    debug_request_.clear();
  }

  /// --log-level debug: the answer `status` written whole, or not (`failure`).
  void LogWritten(int status, const std::string& failure = {}) {
    if (debug_request_.empty()) return;
    LogAnswer(failure.empty() ? std::to_string(status) : std::to_string(status) + ", not delivered: " + failure);
  }

  void HangUp() {
    if (!debug_request_.empty() && state_ != State::kClosed) LogAnswer("no answer: the client hung up");
    auto ex = std::move(exchange_);
    Close();
    if (ex) static_cast<ExchangeImpl&>(*ex).HangUp();
  }

  // --- writing ------------------------------------------------------------------------

  /// `make()`'s answer, or a 500 if it throws.
  static HttpResponse MakeAnswer(std::function<HttpResponse()>& make) {
    try {
      return make();
    } catch (const std::exception& e) {
      spdlog::error("building an answer: {}", ForLog(e.what(), 1000));
      return HttpResponse::FromError(Error(500, "internal", "The relay failed on this request."));
    }
  }

  /// On the strand: answers request `number` unless the connection moved on.
  void AnswerOnStrand(std::uint64_t number, HttpResponse r) {
    if (state_ != State::kHandling || number != number_) return;
    Write(std::move(r), keep_alive_);
  }
  /// The work that builds request `number`'s answer on the strand and writes it.
  static auto OnStrand(std::shared_ptr<Session> self, std::uint64_t number, std::function<HttpResponse()> make) {
    return [self = std::move(self), number, make = std::move(make)]() mutable {
      self->AnswerOnStrand(number, MakeAnswer(make));
    };
  }

  /// Off the strand (a small batch of commits' answers, Impl::RunGathered):
  /// writes request `number`'s answer to the socket now if the connection
  /// still waits for it, and leaves the rest (reading the next request, or
  /// the part of the answer the socket did not take) to the strand. Saves
  /// the answer a wait for an event-loop thread to be woken and scheduled.
  void AnswerInPlace(std::uint64_t number, HttpResponse r) {
    auto self = this->shared_from_this();
    const bool keep = keep_alive_ && !rt_.stopping;  // keep_alive_, head_: set before the handler ran
    auto out = std::make_shared<Answer>(Answer{Head(r, BodyOf(r), keep), std::move(r)});
    ssize_t sent = -1;
    int error = 0;
    {
      std::lock_guard lock(wire_mu_);
      if (open_number_ != number) {
        // The strand closed the connection or is about to: it decides.
        return LaterOnStrand([self = std::move(self), number, out] {
          self->AnswerOnStrand(number, std::move(out->response));
        });
      }
      open_number_ = 0;
      sent = SendNow(*out);
      error = errno;
    }
    LaterOnStrand([self = std::move(self), number, out, keep, sent, error]() mutable {
      if (self->state_ != State::kHandling || number != self->number_) return;  // closed meanwhile
      self->state_ = State::kWriting;
      self->exchange_.reset();
      self->Finish(std::move(out), keep, sent, error);
    });
  }

  /// In place: `work` for this connection's strand, once the batch is written.
  template <class Work>
  void LaterOnStrand(Work work) {
    HttpRuntime::Impl::AfterInPlace([ex = Lowest().get_executor(), work = std::move(work)]() mutable {
      net::dispatch(ex, std::move(work));
    });
  }

  /// An answer being written: its status line and headers, and itself.
  struct Answer {
    std::string head;
    HttpResponse response;
  };

  /// One `sendmsg` of `a` (no body after a HEAD) that never blocks: the
  /// bytes it took (0 when the socket's buffer is full), or -1 with errno.
  ssize_t SendNow(const Answer& a) {
    const std::string& body = BodyOf(a.response);
    iovec parts[2] = {{const_cast<char*>(a.head.data()), a.head.size()},
                      {const_cast<char*>(body.data()), head_ ? 0 : body.size()}};
    msghdr msg{};
    msg.msg_iov = parts;
    msg.msg_iovlen = 2;
    const ssize_t n = ::sendmsg(Lowest().socket().native_handle(), &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return 0;
    return n;
  }

  /// Forbids AnswerInPlace from here on: the strand writes or closes.
  void CloseWire() {
    std::lock_guard lock(wire_mu_);
    open_number_ = 0;
  }

  /// What `res` sends as its body.
  static const std::string& BodyOf(const HttpResponse& res) { return res.shared_body ? *res.shared_body : res.body; }

  /// The status line and headers of `res`, whose body is `body`.
  static std::string Head(const HttpResponse& res, const std::string& body, bool keep) {
    std::string head = StatusAndFields(res);
    if (res.status >= 200 && res.status != 204 && res.status != 304) {
      head += "Content-Length: " + std::to_string(body.size()) + "\r\n";
    }
    if (!keep) head += "Connection: close\r\n";
    head += "\r\n";
    return head;
  }

  /// Writes an answer: the status line and headers are formatted here, and
  /// the body is written from where it lies (a body shared by thousands of
  /// answers, such as one broadcast's, is never copied).
  void Write(HttpResponse r, bool keep_alive) {
    CloseWire();
    state_ = State::kWriting;
    exchange_.reset();
    const bool keep = keep_alive && !rt_.stopping;
    auto out = std::make_shared<Answer>(Answer{Head(r, BodyOf(r), keep), std::move(r)});
    ssize_t sent = 0;
    int error = 0;
    if constexpr (!kTls) {
      // An answer nearly always fits in the socket's buffer: written here at
      // once, with no write operation, timer or completion to schedule (each
      // send has one; a broadcast, thousands). What does not fit goes below.
      sent = SendNow(*out);
      error = errno;
    }
    Finish(std::move(out), keep, sent, error);
  }

  /// After `sent` bytes of `out` went (-1: the write failed with `error`):
  /// writes the rest, then reads the next request or closes.
  void Finish(std::shared_ptr<Answer> out, bool keep, ssize_t sent, int error) {
    const int status = out->response.status;
    if (sent < 0) {
      LogWritten(status, std::strerror(error));
      return Close();
    }
    std::size_t written = static_cast<std::size_t>(sent);
    std::array<net::const_buffer, 2> buffers{net::buffer(out->head),
                                             head_ ? net::const_buffer() : net::buffer(BodyOf(out->response))};
    if (written == buffers[0].size() + buffers[1].size()) {
      LogWritten(status);
      return keep ? DoIdle() : Linger();
    }
    for (auto& b : buffers) {  // past what went already
      const std::size_t done = std::min(written, b.size());
      b += done;
      written -= done;
    }
    Lowest().expires_after(std::chrono::milliseconds(rt_.options.write_timeout_ms));
    net::async_write(stream_, buffers, [self = this->shared_from_this(), out, keep, status](ErrorCode ec, std::size_t) {
      self->LogWritten(status, ec ? ec.message() : std::string());
      if (ec) return self->Close();
      if (!keep) return self->Linger();
      self->DoIdle();
    });
  }

  /// Closes after an answer that ends the connection. What the client is
  /// still sending (the rest of a refused body) is read and dropped for a
  /// moment first, so it reads the answer instead of a reset; `plain`: the
  /// answer went unencrypted (a TLS connection is closed at once otherwise).
  void Linger(bool plain = !kTls) {
    state_ = State::kClosed;
    ErrorCode ec;
    Lowest().socket().shutdown(tcp::socket::shutdown_send, ec);
    if (ec || !plain) return ForceCloseSocket();
    Lowest().expires_after(kLinger);
    Drain(0);
  }

  /// Reads and drops what the client still sends, below any TLS.
  void Drain(std::size_t drained) {
    buffer_.clear();
    Lowest().async_read_some(buffer_.prepare(16 * 1024),
                             [self = this->shared_from_this(), drained](ErrorCode ec, std::size_t n) {
                               if (ec || drained + n > kLingerBytes) return self->ForceCloseSocket();
                               self->Drain(drained + n);
                             });
  }

  /// A client that does not start with a TLS handshake on an HTTPS port: a
  /// plain HTTP request (its first byte a method's capital) is answered 400
  /// in plain HTTP, saying to use https://; anything else is closed.
  void RefusePlainHttp() {
    const auto first = buffer_.size() ? *static_cast<const unsigned char*>(buffer_.data().data()) : 0;
    if (first < 'A' || first > 'Z') return Close();
    HttpResponse r = HttpResponse::FromError(
        Error(400, "https_required",
              "This relay serves HTTPS on this port and the request came as plain HTTP: use its "
              "https:// URL (e.g. meshwire login --url https://HOST:PORT)."));
    auto out = std::make_shared<std::string>(Head(r, r.body, false) + r.body);
    state_ = State::kWriting;
    Lowest().expires_after(std::chrono::milliseconds(rt_.options.write_timeout_ms));
    net::async_write(Lowest(), net::buffer(*out), [self = this->shared_from_this(), out](ErrorCode ec, std::size_t) {
      if (ec) return self->ForceCloseSocket();
      self->Linger(/*plain=*/true);
    });
  }

  void ForceCloseSocket() {
    Lowest().close();
    buffer_.clear();
    buffer_.shrink_to_fit();
  }

  /// Answers `e` and closes the connection (the request was not read whole).
  void Reject(const Error& e) {
    spdlog::debug("{} refused before its request was read: {} {}", remote_, e.status(), e.code());
    buffer_.clear();
    parser_.reset();
    Write(HttpResponse::FromError(e), /*keep_alive=*/false);
  }

  void Close() {
    if (state_ == State::kClosed) return;
    state_ = State::kClosed;
    stream_open_ = false;
    RunDrained();  // the stream is over: its sender stops
    // What it held for its client goes now (but a chunk being written).
    Release(queued_bytes_.load());
    if (out_ && !out_->empty()) out_->erase(out_->begin() + (writing_ ? 1 : 0), out_->end());
    exchange_.reset();
    std::lock_guard lock(wire_mu_);  // not while AnswerInPlace writes to the socket
    open_number_ = 0;
    ErrorCode ec;
    Lowest().socket().shutdown(tcp::socket::shutdown_send, ec);
    Lowest().close();
    if (recheck_) recheck_->cancel();
  }

  void WriteNextChunk();
  /// Stream bytes queued for the client (`n` more), counted by the session and the runtime alike.
  void Hold(std::size_t n) {
    queued_bytes_ += n;
    rt_.stream_bytes += n;
  }
  /// `n` of them written or dropped.
  void Release(std::size_t n) {
    queued_bytes_ -= n;
    rt_.stream_bytes -= n;
  }
  /// When all streams together hold too much (`more` to come): this one is
  /// well behind and its client has taken nothing for a while.
  bool StalledOverBudget(std::size_t more) const {
    return queued_bytes_ > kStreamSlack && writing_ && SteadyMs() - wrote_at_ms_ > kStreamStalledMs &&
           rt_.stream_bytes.load() + more > rt_.options.max_stream_memory;
  }
  /// Says (at most every 10 s) that streams are dropped for the runtime's max_stream_memory.
  void WarnStreamMemory() {
    const std::int64_t now = SteadyMs();
    std::int64_t last = rt_.stream_warned_ms.load();
    if (now - last < kStreamMemoryWarnEveryMs || !rt_.stream_warned_ms.compare_exchange_strong(last, now)) return;
    spdlog::warn("event streams hold {:.1f} MiB of unwritten events together (--max-stream-memory {} MiB): "
                 "dropping those more than {} KiB behind whose clients took nothing for {} s (they reconnect "
                 "with Last-Event-ID)",
                 static_cast<double>(rt_.stream_bytes.load()) / (1 << 20), rt_.options.max_stream_memory >> 20,
                 kStreamSlack >> 10, kStreamStalledMs / 1000);
  }

  std::shared_ptr<ssl::context> tls_;  // outlives stream_
  Stream stream_;
  std::string remote_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  State state_ = State::kIdle;
  std::uint64_t number_ = 0;  // the current request
  // The socket's write side while a request is handled: AnswerInPlace (off
  // the strand) may write request open_number_'s answer; the strand zeroes
  // it before it writes or closes.
  std::mutex wire_mu_;
  std::uint64_t open_number_ = 0;  // guarded by wire_mu_; 0: none
  std::string debug_request_;  // --log-level debug: "METHOD /path" until answered
  std::chrono::steady_clock::time_point debug_started_;
  bool keep_alive_ = true;
  bool head_ = false;
  bool http10_ = false;  // the request is HTTP/1.0: a stream is sent unchunked, to the close
  std::shared_ptr<ExchangeImpl> exchange_;   // the request waiting for its answer
  std::optional<net::steady_timer> recheck_;  // hang-up watch with unread data
  std::optional<net::steady_timer> deadline_;  // the request's (ArmRequestDeadline)
  std::uint64_t deadline_number_ = 0;          // which arming a firing belongs to
  bool timed_out_ = false;                     // the deadline cancelled the read
  std::size_t body_reserved_ = 0;              // of rt_.body_bytes, for the body being read (ReserveBody)
  bool deadline_armed_ = false;                // ArmRequestDeadline ran, DisarmRequestDeadline not since
  // Event stream: chunks waiting to be written, in order (allocated by the
  // first stream: an empty std::deque already costs half a KiB).
  std::unique_ptr<std::deque<std::string>> out_;
  std::deque<std::string>& Out() {
    if (!out_) out_ = std::make_unique<std::deque<std::string>>();
    return *out_;
  }
  bool writing_ = false;
  std::int64_t wrote_at_ms_ = 0;  // the client last took a chunk (or the stream was caught up)
  bool ending_ = false;
  std::atomic<bool> stream_open_{false};
  std::atomic<std::size_t> queued_bytes_{0};  // event stream bytes not yet written
  std::function<void()> on_drained_;  // WhenDrained's, run at drained_at_ queued bytes or the end
  std::size_t drained_at_ = 0;
  /// Runs WhenDrained's function, once.
  void RunDrained() {
    if (!on_drained_) return;
    auto fn = std::move(on_drained_);
    on_drained_ = nullptr;
    fn();
  }

 public:
  std::size_t queued_bytes() const { return queued_bytes_.load(); }
};

/// The EventStream of a session (Server-Sent Events over a chunked answer).
template <class Stream>
class StreamHandle final : public EventStream {
 public:
  explicit StreamHandle(std::shared_ptr<Session<Stream>> session) : session_(std::move(session)) {}
  ~StreamHandle() override { Close(); }
  bool Send(std::string text) override {
    if (!session_->streaming()) return false;
    session_->Enqueue(std::move(text));
    return true;
  }
  void Close() override {
    if (!closed_.exchange(true)) session_->EndStream();
  }
  std::size_t Pending() const override { return session_->queued_bytes(); }
  bool Open() const override { return session_->streaming(); }
  void WhenDrained(std::size_t bytes, std::function<void()> fn) override {
    session_->WhenDrained(bytes, std::move(fn));
  }

 private:
  std::shared_ptr<Session<Stream>> session_;
  std::atomic<bool> closed_{false};
};

template <class Stream>
std::shared_ptr<EventStream> Session<Stream>::StartStream(std::uint64_t number, HttpResponse head) {
  std::string text = StatusAndFields(head);
  // The connection closes when the stream ends: said up front, so that a
  // client never puts it back in its pool and sends its next request there.
  // An HTTP/1.0 client knows no chunks (RFC 9112, 6.1): the close ends it.
  text += http10_ ? "Connection: close\r\n\r\n" : "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
  stream_open_ = true;
  net::post(Lowest().get_executor(), [self = this->shared_from_this(), number, text = std::move(text)]() mutable {
    if (self->state_ != State::kHandling || number != self->number_) {
      self->stream_open_ = false;
      return;
    }
    self->CloseWire();
    self->state_ = State::kStreaming;
    if (!self->debug_request_.empty()) self->LogAnswer("200 (a stream, open)");
    self->ArmWatch(number);
    self->Out().push_front(std::move(text));  // before any chunk queued meanwhile
    if (!self->writing_) self->WriteNextChunk();
  });
  return std::make_shared<StreamHandle<Stream>>(this->shared_from_this());
}

template <class Stream>
void Session<Stream>::Enqueue(std::string chunk) {
  if (chunk.empty()) return;
  std::string framed;
  if (http10_) {
    framed = std::move(chunk);
  } else {
    char size[32];
    std::snprintf(size, sizeof size, "%zx\r\n", chunk.size());
    framed = size + std::move(chunk) + "\r\n";
  }
  net::post(Lowest().get_executor(), [self = this->shared_from_this(), framed = std::move(framed)]() mutable {
    if (self->state_ == State::kClosed || self->ending_) return;
    // A client that reads nothing while events pile up is dropped; so is one
    // well behind when all streams together hold too much.
    if (self->queued_bytes_ > kMaxStreamQueue) return self->HangUp();
    if (self->StalledOverBudget(framed.size())) {
      self->WarnStreamMemory();
      return self->HangUp();
    }
    self->Hold(framed.size());
    self->Out().push_back(std::move(framed));
    if (self->state_ == State::kStreaming && !self->writing_) self->WriteNextChunk();
  });
}

template <class Stream>
void Session<Stream>::WhenDrained(std::size_t bytes, std::function<void()> fn) {
  net::post(Lowest().get_executor(), [self = this->shared_from_this(), bytes, fn = std::move(fn)]() mutable {
    self->on_drained_ = std::move(fn);
    self->drained_at_ = bytes;
    if (self->state_ == State::kClosed || self->queued_bytes_ <= bytes) self->RunDrained();
  });
}

template <class Stream>
void Session<Stream>::EndStream() {
  net::post(Lowest().get_executor(), [self = this->shared_from_this()] {
    if (self->state_ == State::kClosed || self->ending_) return;
    self->ending_ = true;
    self->stream_open_ = false;
    if (!self->http10_) self->Out().push_back("0\r\n\r\n");
    if (self->state_ == State::kStreaming && !self->writing_) self->WriteNextChunk();
  });
}

template <class Stream>
void Session<Stream>::WriteNextChunk() {
  if (Out().empty()) {
    writing_ = false;
    if (ending_) {
      exchange_.reset();
      Close();
    }
    return;
  }
  if (!writing_) wrote_at_ms_ = SteadyMs();  // caught up until now
  writing_ = true;
  Lowest().expires_after(std::chrono::milliseconds(rt_.options.write_timeout_ms));
  net::async_write(stream_, net::buffer(Out().front()),
                   [self = this->shared_from_this()](ErrorCode ec, std::size_t) {
                     if (ec) return self->HangUp();
                     self->Lowest().expires_never();
                     self->wrote_at_ms_ = SteadyMs();
                     self->Release(std::min(self->queued_bytes_.load(), self->Out().front().size()));
                     self->Out().pop_front();
                     if (self->queued_bytes_ <= self->drained_at_) self->RunDrained();
                     self->WriteNextChunk();
                   });
}

}  // namespace

// --- the runtime -----------------------------------------------------------------------

void HttpRuntime::Impl::Register(SessionBase* s) {
  std::lock_guard lock(sessions_mu);
  sessions.insert(s);
}

void HttpRuntime::Impl::Unregister(SessionBase* s) {
  bool last = false;
  {
    std::lock_guard lock(sessions_mu);
    sessions.erase(s);
    last = sessions.empty() && stopping;
  }
  if (last && !destroying) net::post(control, [this] { grace.cancel(); });
}

std::size_t HttpRuntime::Impl::ForceCloseAll() {
  std::lock_guard lock(sessions_mu);  // no connection is destroyed meanwhile
  for (SessionBase* s : sessions) s->ForceClose();
  return sessions.size();
}

void HttpRuntime::Impl::SweepIdle() {
  if (stopping) return;
  const auto period = std::clamp<Millis>(options.idle_timeout_ms / 8, 10, 5000);
  idle_sweep.expires_after(std::chrono::milliseconds(period));
  idle_sweep.async_wait([this](ErrorCode ec) {
    if (ec || stopping) return;
    const std::int64_t cutoff = SteadyMs() - options.idle_timeout_ms;
    {
      std::lock_guard lock(sessions_mu);
      for (SessionBase* s : sessions) {
        const std::int64_t since = s->idle_since_ms.load(std::memory_order_relaxed);
        if (since != 0 && since <= cutoff) s->CloseIfIdle(cutoff);
      }
    }
    SweepIdle();
  });
}

namespace {
/// Handlers an event-loop thread runs between two runs of its tail (Run).
constexpr int kHandlersPerTail = 128;
thread_local bool t_in_place = false;                  // RunGathered is answering in place
thread_local std::vector<HandOffBatch::Work> t_after;  // what it leaves to the event loop
}  // namespace

bool HttpRuntime::Impl::InPlace() { return t_in_place; }

void HttpRuntime::Impl::AfterInPlace(HandOffBatch::Work work) { t_after.push_back(std::move(work)); }

void HttpRuntime::Impl::RunGathered(void* self, std::vector<HandOffBatch::Work> work) {
  auto& rt = *static_cast<HttpRuntime::Impl*>(self);
  if (t_in_place) return rt.PostGathered(work, 0);  // not nested
  // A small batch is written here whole; a large one (a broadcast) is shared
  // with the event-loop threads, this thread taking one share.
  const std::size_t threads = static_cast<std::size_t>(std::max(1, rt.options.io_threads));
  const std::size_t here = work.size() <= kAnsweredInPlace ? work.size() : work.size() / (threads + 1);
  rt.PostGathered(work, here);
  const bool shared = here < work.size();
  work.resize(here);
  if (shared && LoopTail::Enabled()) {
    // An event loop committed this batch at its tail: its share goes to a
    // worker thread, written there while the event loops write the rest.
    auto share = std::make_shared<std::vector<HandOffBatch::Work>>(std::move(work));
    rt.workers.Post([&rt, share] { WriteInPlace(rt, *share); });
    return;
  }
  WriteInPlace(rt, work);
}

void HttpRuntime::Impl::PostGathered(std::vector<HandOffBatch::Work>& work, std::size_t begin) {
  for (std::size_t i = begin; i < work.size(); i += kGatheredPerPost) {
    const std::size_t stop = std::min(work.size(), i + kGatheredPerPost);
    std::vector<HandOffBatch::Work> part(std::make_move_iterator(work.begin() + i),
                                         std::make_move_iterator(work.begin() + stop));
    net::post(ioc, [part = std::move(part)]() mutable {
      for (auto& w : part) w();
    });
  }
}

void HttpRuntime::Impl::WriteInPlace(Impl& rt, std::vector<HandOffBatch::Work>& work) {
  // What the answers written here leave to the event loop (reading the next
  // requests) goes every kGatheredPerPost answers, so that a broadcast's
  // first clients are read again before its last are written; and whatever
  // one answer throws, the others are written and handed over.
  auto hand_over = [&rt] {
    std::vector<HandOffBatch::Work> after;
    after.swap(t_after);
    rt.PostGathered(after, 0);
  };
  struct InPlace {
    InPlace() { t_in_place = true; }
    ~InPlace() { t_in_place = false; }
  } in_place;
  for (std::size_t i = 0; i < work.size(); ++i) {
    try {
      work[i]();
    } catch (const std::exception& e) {
      spdlog::error("writing an answer: {}", ForLog(e.what(), 1000));
    } catch (...) {
      spdlog::error("writing an answer: an exception");
    }
    if ((i + 1) % kGatheredPerPost == 0) hand_over();
  }
  hand_over();
}

void HttpRuntime::Impl::Accept() {
  acceptor.async_accept(net::make_strand(ioc), [this](ErrorCode ec, tcp::socket socket) {
    if (ec == net::error::operation_aborted || !acceptor.is_open()) return;
    if (ec) {
      // Out of descriptors, most likely: try again shortly instead of spinning.
      spdlog::warn("accepting a connection failed: {}", ec.message());
      accept_retry.expires_after(std::chrono::milliseconds(50));
      accept_retry.async_wait([this](ErrorCode tec) {
        if (!tec) Accept();
      });
      return;
    }
    ErrorCode ignored;
    socket.set_option(tcp::no_delay(true), ignored);
    if (auto ctx = Tls()) {
      std::make_shared<Session<ssl::stream<beast::tcp_stream>>>(*this, std::move(socket), std::move(ctx))->Start();
    } else {
      std::make_shared<Session<beast::tcp_stream>>(*this, std::move(socket), nullptr)->Start();
    }
    Accept();
  });
}

HttpRuntime::HttpRuntime(RuntimeOptions options, Handler handler)
    : impl_(std::make_unique<Impl>(std::move(options), std::move(handler))) {
  if (impl_->options.tls_cert_file.empty() != impl_->options.tls_key_file.empty()) {
    throw Error::BadRequest("invalid_tls", "HTTPS needs both --tls-cert FILE and --tls-key FILE.");
  }
  if (!impl_->options.tls_cert_file.empty()) ReloadTls();
}

HttpRuntime::~HttpRuntime() {
  Stop();
  impl_->ioc.stop();
}

int HttpRuntime::Bind() {
  auto& o = impl_->options;
  ErrorCode ec;
  auto address = net::ip::make_address(o.host == "localhost" ? "127.0.0.1" : o.host, ec);
  if (ec) throw Error::BadRequest("invalid_listen", "--listen needs an IP address, not \"" + o.host + "\".");
  tcp::endpoint endpoint(address, static_cast<unsigned short>(o.port));
  auto& acc = impl_->acceptor;
  acc.open(endpoint.protocol(), ec);
  if (!ec) acc.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec && address.is_v6()) acc.set_option(net::ip::v6_only(false), ec);
  if (!ec) acc.bind(endpoint, ec);
  if (!ec) acc.listen(o.backlog, ec);
  if (ec) {
    const std::string why =
        ec == net::error::access_denied
            ? ": ports below 1024 need root or CAP_NET_BIND_SERVICE; choose a port from 1024 with --listen, "
              "or serve port 443 through a proxy in front."
        : ec == net::error::address_in_use ? ": is another relay running there? Choose another with --listen."
                                           : ": choose another address with --listen.";
    throw Error::Unavailable("Cannot listen on " + o.host + ":" + std::to_string(o.port) + " (" + ec.message() +
                             ")" + why);
  }
  return acc.local_endpoint().port();
}

namespace {

/// How long every event loop may be inside its tail (a commit waiting on
/// the database) before the stand-in serves their connections; also how
/// often the stand-in looks.
constexpr std::int64_t kStandInAfterMs = 20;

/// The stand-in: a commit at a loop's tail waits on its database, and
/// nothing bounds that wait (a disk that stalls; a PostgreSQL COMMIT waiting
/// for a standby that is down, or a network cut). Once every loop has been
/// in its tail for kStandInAfterMs, this thread runs the event loops'
/// handlers until one tail ends: connections are accepted and read, parked
/// polls end at their deadline, and the writes they queue go to the writer
/// thread (no tail here), which commits them after the held batch.
class StandIn {
 public:
  StandIn(net::io_context& ioc, int loops)
      : ioc_(ioc), loops_(loops), since_(std::make_unique<std::atomic<std::int64_t>[]>(static_cast<std::size_t>(loops))) {
    thread_ = std::thread([this] { Watch(); });
  }
  /// Stops the thread; after the loops ended.
  ~StandIn() {
    {
      std::lock_guard lock(mu_);
      ended_ = true;
    }
    cv_.notify_one();
    thread_.join();
  }
  StandIn(const StandIn&) = delete;
  StandIn& operator=(const StandIn&) = delete;

  /// Loop `index` begins, or ends, its tail.
  void TailBegins(int index) { since_[static_cast<std::size_t>(index)].store(SteadyMs(), std::memory_order_relaxed); }
  void TailEnds(int index) { since_[static_cast<std::size_t>(index)].store(0, std::memory_order_relaxed); }

 private:
  /// How long every loop has been in its tail (0 when one is not): while
  /// one loop is free it serves every connection, as they share one queue.
  std::int64_t StuckForMs() const {
    std::int64_t shortest = INT64_MAX;
    const std::int64_t now = SteadyMs();
    for (int i = 0; i < loops_; ++i) {
      const std::int64_t since = since_[static_cast<std::size_t>(i)].load(std::memory_order_relaxed);
      shortest = std::min(shortest, since == 0 ? 0 : now - since);
    }
    return shortest;
  }

  void Watch() {
    NameThisThread("mw-io-standin");
    std::unique_lock lock(mu_);
    while (!cv_.wait_for(lock, std::chrono::milliseconds(kStandInAfterMs), [this] { return ended_; })) {
      if (StuckForMs() < kStandInAfterMs) continue;
      lock.unlock();
      spdlog::debug("the event loops are waiting on storage; the stand-in serves their connections");
      while (StuckForMs() >= kStandInAfterMs && !ioc_.stopped()) {
        ioc_.run_one_for(std::chrono::milliseconds(kStandInAfterMs));
      }
      lock.lock();
    }
  }

  net::io_context& ioc_;
  const int loops_;
  std::unique_ptr<std::atomic<std::int64_t>[]> since_;  // when each loop's tail began (SteadyMs), 0 outside one
  std::mutex mu_;
  std::condition_variable cv_;
  bool ended_ = false;  // guarded by mu_
  std::thread thread_;
};

}  // namespace

void HttpRuntime::Run() {
  impl_->Accept();
  net::post(impl_->control, [impl = impl_.get()] { impl->SweepIdle(); });
  // Each event-loop thread runs the handlers that are ready, then its tail
  // (LoopTail: the commits it deferred), then waits for more. At most
  // kHandlersPerTail handlers go before a tail, so that a stream of ready
  // handlers (thousands of busy connections) never holds back a commit.
  {
    const int loops = std::max(1, impl_->options.io_threads);
    StandIn stand_in(impl_->ioc, loops);
    auto loop = [this, &stand_in](int index) {
      NameThisThread("mw-io");
      LoopTail::Enable();
      auto& ioc = impl_->ioc;
      while (ioc.run_one() > 0) {
        for (int i = 1; i < kHandlersPerTail && ioc.poll_one() > 0; ++i) {
        }
        stand_in.TailBegins(index);
        LoopTail::Run();
        stand_in.TailEnds(index);
      }
      LoopTail::Disable();
    };
    std::vector<std::thread> threads;
    for (int i = 1; i < loops; ++i) threads.emplace_back(loop, i);
    loop(0);
    for (auto& t : threads) t.join();
  }
  impl_->workers.Join();  // handlers still running finish (their answers are moot)
}

void HttpRuntime::Stop() {
  if (impl_->stopping.exchange(true)) return;
  net::post(impl_->control, [impl = impl_.get()] {
    ErrorCode ec;
    impl->acceptor.close(ec);
    impl->accept_retry.cancel();
    impl->idle_sweep.cancel();
    // Armed first: the last connection's cancel (posted to the same strand)
    // then always finds it armed.
    impl->grace.expires_after(std::chrono::milliseconds(impl->options.stop_grace_ms));
    {
      // Under the lock, so no connection is destroyed meanwhile.
      std::lock_guard lock(impl->sessions_mu);
      if (impl->sessions.empty()) {
        impl->grace.cancel();
        return;
      }
      for (SessionBase* s : impl->sessions) s->StopSoon();
    }
    impl->grace.async_wait([impl](ErrorCode tec) {
      if (tec) return;  // every connection closed in time
      const std::size_t open = impl->ForceCloseAll();
      spdlog::warn("closed {} connections still open after the grace period", open);
    });
  });
}

std::size_t HttpRuntime::StopNow() {
  Stop();
  return impl_->ForceCloseAll();
}

void HttpRuntime::CheckTls(const std::string& cert, const std::string& key) { LoadTls(cert, key, /*warn=*/false); }

void HttpRuntime::ReloadTls() {
  const auto current = impl_->Tls();
  const bool serving_valid = current != nullptr && CertificateDates(*current).empty();
  auto ctx = LoadTls(impl_->options.tls_cert_file, impl_->options.tls_key_file, /*warn=*/!serving_valid);
  // A reload never swaps a certificate clients accept for one they refuse.
  if (const std::string dates = CertificateDates(*ctx); serving_valid && !dates.empty()) {
    throw Error::BadRequest("invalid_tls", "The TLS certificate " + impl_->options.tls_cert_file + " " + dates +
                                               ": clients would refuse it");
  }
  std::lock_guard lock(impl_->tls_mu);
  impl_->tls = std::move(ctx);
}

std::size_t HttpRuntime::stream_bytes() const { return impl_->stream_bytes.load(); }

bool HttpRuntime::tls() const { return impl_->Tls() != nullptr; }

Executor& HttpRuntime::workers() { return impl_->workers; }


}  // namespace meshwire
