#include "server/storage/store_factory.h"

#include <fcntl.h>
#include <libpq-fe.h>
#include <spdlog/spdlog.h>
#include <sqlite3.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <optional>
#include <regex>
#include <string_view>
#include <vector>

#include "schemas/error.h"
#include "server/storage/pg_wake_bus.h"
#include "server/storage/postgres_store.h"
#include "server/storage/sqlite_conn.h"
#include "server/storage/sqlite_store.h"
#include "server/storage/sqlite_wake_bus.h"

namespace meshwire {

namespace {

constexpr const char* kStoresIn =
    ": meshwire stores in SQLite (sqlite:PATH) or PostgreSQL (postgres://user:pass@host:port/db), nothing else";

bool IsPostgres(const std::string& spec) {
  return spec.rfind("postgres://", 0) == 0 || spec.rfind("postgresql://", 0) == 0;
}

/// The database file of a SQLite spec ("sqlite:PATH" or a bare path).
std::string SqlitePath(const std::string& spec) {
  std::string path = spec.rfind("sqlite:", 0) == 0 ? spec.substr(7) : spec;
  if (path.empty()) throw Error::BadRequest("invalid_storage", "--storage needs a path: sqlite:PATH.");
  if (std::string problem = StorageSpecProblem(spec); !problem.empty()) {
    throw Error::BadRequest("invalid_storage", problem);
  }
  // SQLite's own names for no file: each connection would get an empty
  // database of its own, and nothing would last.
  if (path == ":memory:" || path.rfind("file:", 0) == 0) {
    throw Error::BadRequest("invalid_storage", "--storage " + StorageForDisplay(spec) +
                                                   ": give sqlite:PATH the path of a database file (it is created "
                                                   "if missing); SQLite's :memory: and file: names are not files.");
  }
  if (path.find("://") != std::string::npos) {  // sqlite:mysql://...
    throw Error::BadRequest("invalid_storage", "--storage " + StorageForDisplay(spec) + kStoresIn + ".");
  }
  // A directory, a device (/dev/null) or a pipe would fail later, in the
  // middle of a request, with "disk I/O error".
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0 && !S_ISREG(st.st_mode)) {
    throw Error::BadRequest("invalid_storage", "--storage " + StorageForDisplay(spec) + ": " + path +
                                                   " is not a regular file; give sqlite:PATH the path of a "
                                                   "database file (it is created if missing).");
  }
  return path;
}

}  // namespace

std::string StorageSpecProblem(const std::string& spec) {
  // libpq's "host=... dbname=..." form would otherwise be a SQLite file of
  // that name in the working directory: a node meant to share a database
  // running alone (and the password in its log).
  static const std::regex kKeywordValue(
      R"((^|\s)(host|hostaddr|port|dbname|user|password|sslmode|service|connect_timeout)\s*=)");
  if (spec.rfind("sqlite:", 0) != 0 && std::regex_search(spec, kKeywordValue)) {
    return "--storage is a PostgreSQL keyword=value string; give it as a URL, postgres://user:pass@host:port/db "
           "(or a SQLite file as sqlite:PATH).";
  }
  static const std::regex kScheme(R"(^[A-Za-z][A-Za-z0-9+.\-]*:)");
  std::smatch scheme;
  if (spec.rfind("sqlite:", 0) == 0 || IsPostgres(spec) || !std::regex_search(spec, scheme, kScheme)) return "";
  std::string lower = scheme.str();
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if ((lower == "postgres:" || lower == "postgresql:") && spec.compare(lower.size(), 2, "//") != 0) {
    // postgres:relay, postgres:/relay: the "//" of a URL is missing.
    return "--storage " + StorageForDisplay(spec) + ": a PostgreSQL URL starts with " + lower +
           "// (postgres://user:pass@host:port/db, or postgres:///db for the local socket).";
  }
  if (lower == "sqlite:" || lower == "postgres:" || lower == "postgresql:") {  // SQLITE:x, POSTGRES://...
    return "--storage " + StorageForDisplay(spec) + ": write its scheme in lower case (sqlite:, postgres:// or "
           "postgresql://).";
  }
  const bool uri = spec.find("://") != std::string::npos;  // may hold a password: never echoed
  return "--storage " + StorageForDisplay(spec) + kStoresIn +
         (uri ? "." : "; for a file whose name has a colon, write sqlite:" + spec + ".");
}

namespace {

/// A SQLite file that holds tables but no meshwire schema (user_version 0):
/// another program's database, given by a typo. Opening it as the relay's
/// would add meshwire's tables to it and switch it to WAL. Read-only look.
void RefuseForeignDatabase(const std::string& path) {
  ConfigureSqliteOnce();  // this open starts SQLite
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
    sqlite3_close(db);
    return;  // missing (created later) or unreadable: the store's open says what is wrong
  }
  std::int64_t version = -1, tables = 0;
  sqlite3_stmt* s = nullptr;
  if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &s, nullptr) == SQLITE_OK && sqlite3_step(s) == SQLITE_ROW) {
    version = sqlite3_column_int64(s, 0);
  }
  sqlite3_finalize(s);
  s = nullptr;
  if (sqlite3_prepare_v2(db, "SELECT count(*) FROM sqlite_master", -1, &s, nullptr) == SQLITE_OK &&
      sqlite3_step(s) == SQLITE_ROW) {
    tables = sqlite3_column_int64(s, 0);
  }
  sqlite3_finalize(s);
  sqlite3_close(db);
  if (version == 0 && tables > 0) {
    throw Error::BadRequest("invalid_storage", path + " is another program's SQLite database (it has tables but "
                                               "no meshwire schema), left as it is: give --storage sqlite:PATH "
                                               "the relay's own file, or a new one. (A relay's database "
                                               "restored with sqlite3's .dump lost its version: run PRAGMA "
                                               "user_version = 1 on it.)");
  }
}

/// The first of `ports` (one, or one per host: "5432,5433"; an empty one is
/// the default) that is no number from 1 to 65535, cut to 32 bytes.
std::optional<std::string> BadPort(std::string_view ports) {
  for (;;) {
    const std::string_view port = ports.substr(0, ports.find(','));
    int number = 0;
    const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), number);
    if (!port.empty() && (ec != std::errc() || end != port.data() + port.size() || number < 1 || number > 65535)) {
      return std::string(port.substr(0, 32));
    }
    if (port.size() == ports.size()) return std::nullopt;
    ports.remove_prefix(port.size() + 1);
  }
}

}  // namespace

void CheckPostgresUrl(const std::string& spec, const std::string& flag) {
  char* error = nullptr;
  PQconninfoOption* options = PQconninfoParse(spec.c_str(), &error);
  if (!options) {
    std::string why = error ? error : "out of memory";
    PQfreemem(error);
    while (!why.empty() && (why.back() == '\n' || why.back() == ' ')) why.pop_back();
    throw Error::BadRequest("invalid_storage", flag + " " + StorageForDisplay(spec) +
                                                   " is no PostgreSQL URL libpq can read (" + WithoutPassword(why, spec) +
                                                   "): give postgres://user:pass@host:port/db.");
  }
  std::optional<std::string> bad_port;
  for (const PQconninfoOption* o = options; o->keyword && !bad_port; ++o) {
    if (o->val && std::string_view(o->keyword) == "port") bad_port = BadPort(o->val);
  }
  PQconninfoFree(options);
  if (bad_port) {
    throw Error::BadRequest("invalid_storage", flag + " " + StorageForDisplay(spec) + ": the port \"" + *bad_port +
                                                   "\" is not a port number (1 to 65535); give "
                                                   "postgres://user:pass@host:port/db.");
  }
}

std::unique_ptr<Store> OpenStore(const std::string& spec) {
  if (IsPostgres(spec)) {
    CheckPostgresUrl(spec, "--storage");  // a flag to change, not a server to start
    return std::make_unique<PostgresStore>(spec);
  }
  const std::string path = SqlitePath(spec);
  RefuseForeignDatabase(path);
  return std::make_unique<SqliteStore>(path);
}

std::unique_ptr<Store> OpenExistingStore(const std::string& spec) {
  if (!IsPostgres(spec)) {
    const std::string path = SqlitePath(spec);
    std::error_code ec;
    if (!std::filesystem::exists(path, ec)) {
      throw Error::NotFound("no_storage", "no relay database at " + path +
                                              "; pass the --storage the relay runs with (`meshwire server "
                                              "--storage ...`).");
    }
  }
  return OpenStore(spec);
}

namespace {

Error InUse(const std::string& database, const std::string& holder) {
  return Error(409, "storage_in_use",
               "Another meshwire server" + (holder.empty() ? std::string() : " (pid " + holder + ")") +
                   " already runs on " + database +
                   ": stop it first, or give this one its own --storage sqlite:PATH. (Several relay "
                   "nodes share meshes through PostgreSQL: --storage postgres://...)");
}

}  // namespace

StorageLock::~StorageLock() {
  if (database_fd_ >= 0) ::close(database_fd_);
  if (fd_ >= 0) ::close(fd_);  // the lock goes with the descriptor
}

void StorageLock::LockDatabase() {
  if (database_fd_ >= 0) return;
  const int fd = ::open(database_.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;  // not created yet: the store locks it once it has
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int error = errno;
    ::close(fd);
    if (error == EWOULDBLOCK) throw InUse(database_, "");
    // A file system without flock (NFS maps it to POSIX locks, which would
    // meet SQLite's): the lock file beside it still guards the path.
    spdlog::warn("cannot lock the database file {} itself ({}): only its lock file guards it", database_,
                 std::strerror(error));
    return;
  }
  database_fd_ = fd;
}

std::unique_ptr<StorageLock> LockForRelay(const std::string& spec) {
  if (IsPostgres(spec)) return nullptr;
  const std::string database = SqlitePath(spec);
  RefuseForeignDatabase(database);  // before a lock file is left beside another program's file
  // Named after the file itself: a symbolic link to a database another relay
  // runs on names the same lock.
  std::string resolved = database;
  if (char* real = ::realpath(database.c_str(), nullptr)) {
    resolved = real;
    std::free(real);
  }
  const std::string path = resolved + ".lock";
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) {
    throw Error::Unavailable("Cannot open " + path + " (" + std::strerror(errno) +
                             "); check that the database's folder exists and is writable.");
  }
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    char pid[32] = {};
    const ssize_t n = ::pread(fd, pid, sizeof pid - 1, 0);
    ::close(fd);
    std::string holder = n > 0 ? std::string(pid, static_cast<std::size_t>(n)) : std::string();
    while (!holder.empty() && (holder.back() == '\n' || holder.back() == ' ')) holder.pop_back();
    throw InUse(database, holder);
  }
  const std::string pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd, 0) != 0 || ::pwrite(fd, pid.data(), pid.size(), 0) < 0) {
    // The pid is only for the message above; the lock is what counts.
  }
  auto lock = std::make_unique<StorageLock>(fd, database);
  lock->LockDatabase();
  return lock;
}

void LogStorageNotes(Store& store) {
  auto* pg = dynamic_cast<PostgresStore*>(&store);
  if (pg == nullptr) return;
  spdlog::info("this relay is PostgreSQL node {} (as /health names it)", pg->node_id());
  // The flush barrier commits as the server's synchronous_commit says: off,
  // a send answered 201 could be lost in a crash of PostgreSQL.
  if (pg->SynchronousCommit() == "off") {
    spdlog::warn("PostgreSQL's synchronous_commit is off for this relay's sessions: a send it answers 201 may be "
                 "lost if PostgreSQL crashes. Turn it on (ALTER DATABASE <db> SET synchronous_commit = on, or in "
                 "postgresql.conf) for durable sends.");
  }
}

std::unique_ptr<WakeBus> OpenWakeBus(const std::string& spec, Store& store) {
  if (auto* pg = dynamic_cast<PostgresStore*>(&store)) {
    return std::make_unique<PgWakeBus>(spec, store, pg->node_id());
  }
  return std::make_unique<SqliteWakeBus>(store);
}

void AnnounceAccessChange(const std::string& spec, Store& store, const WakeEvent::Ended& ended) {
  if (dynamic_cast<PostgresStore*>(&store) != nullptr) PgWakeBus::AnnounceFromOutside(spec, ended);
}

namespace {

/// Where `spec`'s passwords are, as [begin, end) ranges in order, for
/// StorageForDisplay and WithoutPassword: the value of keyword=value text's
/// `password` (quotes included), of libpq's `?password=` parameters, and of
/// scheme://user:password@host, which lies between the first ':' after "//"
/// and the last '@' outside those parameters (a password with an unencoded
/// '/', '?' or '@' included: what cannot be parsed is hidden all the same).
std::vector<std::pair<std::size_t, std::size_t>> PasswordRanges(const std::string& spec) {
  std::vector<std::pair<std::size_t, std::size_t>> ranges;
  const std::size_t start = spec.find("://");
  if (start == std::string::npos) {  // a path, or keyword=value text
    static const std::regex kPassword(R"((^|\s)password\s*=\s*('([^'\\]|\\.)*'|\S*))");
    for (std::sregex_iterator m(spec.begin(), spec.end(), kPassword), end; m != end; ++m) {
      const auto begin = static_cast<std::size_t>(m->position(2));
      ranges.emplace_back(begin, begin + static_cast<std::size_t>(m->length(2)));
    }
    return ranges;
  }
  if (const std::size_t query = spec.find('?', start); query != std::string::npos) {
    for (std::size_t at = query; (at = spec.find("password=", at)) != std::string::npos;) {
      const bool parameter = spec[at - 1] == '?' || spec[at - 1] == '&';
      const std::size_t value = at + 9;
      at = value;
      if (parameter) ranges.emplace_back(value, std::min(spec.find('&', value), spec.size()));
    }
  }
  const std::size_t authority = start + 3;
  std::size_t at = spec.size();
  while (at-- > authority) {
    const bool in_parameter = std::any_of(ranges.begin(), ranges.end(),
                                          [at](const auto& r) { return at >= r.first && at < r.second; });
    if (spec[at] == '@' && !in_parameter) break;
  }
  const std::size_t colon = spec.find(':', authority);
  if (at + 1 > authority && at < spec.size() && colon < at) ranges.insert(ranges.begin(), {colon + 1, at});
  return ranges;
}

}  // namespace

std::string StorageForDisplay(const std::string& spec) {
  std::string out;
  std::size_t shown = 0;
  for (const auto& [begin, end] : PasswordRanges(spec)) {
    if (begin < shown) continue;  // within one already hidden
    out += spec.substr(shown, begin - shown) + "***";
    shown = end;
  }
  return out + spec.substr(shown);
}

std::string WithoutPassword(std::string text, const std::string& spec) {
  // A libpq message may quote any piece of a password: `invalid integer
  // value "Xy7" for connection option "port"` of user:Xy7/rest@host.
  std::vector<std::string> secrets;
  for (const auto& [begin, end] : PasswordRanges(spec)) {
    std::string password = spec.substr(begin, end - begin);
    if (password.size() >= 2 && password.front() == '\'' && password.back() == '\'') {
      password = password.substr(1, password.size() - 2);
    }
    if (!password.empty()) secrets.push_back(password);
    std::size_t piece = 0;
    for (std::size_t i = 0; i <= password.size(); ++i) {
      if (i == password.size() || std::strchr("/?#@:&=", password[i])) {
        if (i - piece >= 3) secrets.push_back(password.substr(piece, i - piece));
        piece = i + 1;
      }
    }
  }
  std::sort(secrets.begin(), secrets.end(),
            [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
  for (const std::string& secret : secrets) {
    for (std::size_t at = 0; (at = text.find(secret, at)) != std::string::npos; at += 3) {
      text.replace(at, secret.size(), "***");
    }
  }
  return text;
}

}  // namespace meshwire
