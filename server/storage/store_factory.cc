#include "server/storage/store_factory.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <regex>
#include <vector>

#include "schemas/error.h"
#include "server/storage/pg_wake_bus.h"
#include "server/storage/postgres_store.h"
#include "server/storage/sqlite_store.h"

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
  if (lower == "sqlite:" || lower == "postgres:" || lower == "postgresql:") {  // SQLITE:x, POSTGRES://...
    return "--storage " + StorageForDisplay(spec) + ": write its scheme in lower case (sqlite:, postgres:// or "
           "postgresql://).";
  }
  const bool uri = spec.find("://") != std::string::npos;  // may hold a password: never echoed
  return "--storage " + StorageForDisplay(spec) + kStoresIn +
         (uri ? "." : "; for a file whose name has a colon, write sqlite:" + spec + ".");
}

std::unique_ptr<Store> OpenStore(const std::string& spec) {
  if (IsPostgres(spec)) return std::make_unique<PostgresStore>(spec);
  return std::make_unique<SqliteStore>(SqlitePath(spec));
}

StorageLock::~StorageLock() {
  if (fd_ >= 0) ::close(fd_);  // the lock goes with the descriptor
}

std::unique_ptr<StorageLock> LockForRelay(const std::string& spec) {
  if (IsPostgres(spec)) return nullptr;
  const std::string database = SqlitePath(spec);
  const std::string path = database + ".lock";
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
    throw Error(409, "storage_in_use",
                "Another meshwire server" + (holder.empty() ? std::string() : " (pid " + holder + ")") +
                    " already runs on " + database +
                    ": stop it first, or give this one its own --storage sqlite:PATH. (Several relay "
                    "nodes share meshes through PostgreSQL: --storage postgres://...)");
  }
  const std::string pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd, 0) != 0 || ::pwrite(fd, pid.data(), pid.size(), 0) < 0) {
    // The pid is only for the message above; the lock is what counts.
  }
  return std::make_unique<StorageLock>(fd);
}

std::unique_ptr<WakeBus> OpenWakeBus(const std::string& spec, Store& store) {
  if (auto* pg = dynamic_cast<PostgresStore*>(&store)) {
    return std::make_unique<PgWakeBus>(spec, store, pg->node_id());
  }
  return std::make_unique<LocalWakeBus>();
}

std::string StorageForDisplay(const std::string& spec) {
  const std::size_t start = spec.find("://");
  if (start == std::string::npos) {  // a path, or keyword=value text: no password shown
    static const std::regex kPassword(R"((^|\s)(password\s*=\s*)('([^'\\]|\\.)*'|\S*))");
    return std::regex_replace(spec, kPassword, "$1$2***");
  }
  std::string out = spec;
  // libpq's ...?user=u&password=p: the value of each password parameter.
  if (const std::size_t query = out.find('?', start); query != std::string::npos) {
    for (std::size_t at = query; (at = out.find("password=", at)) != std::string::npos;) {
      const bool parameter = out[at - 1] == '?' || out[at - 1] == '&';
      const std::size_t value = at + 9;
      at = value;
      if (!parameter) continue;
      const std::size_t value_end = std::min(out.find('&', value), out.size());
      out.replace(value, value_end - value, "***");
    }
  }
  // scheme://user:password@host...: the password is what lies between the
  // first ':' after "//" and the last '@' (a password with an unencoded '/',
  // '?' or '@' included: what cannot be parsed is hidden all the same).
  const std::size_t authority = start + 3;
  const std::size_t at = out.rfind('@');
  if (at == std::string::npos || at < authority) return out;
  const std::size_t colon = out.find(':', authority);
  if (colon == std::string::npos || colon > at) return out;
  return out.substr(0, colon + 1) + "***" + out.substr(at);
}

std::string WithoutPassword(std::string text, const std::string& spec) {
  // The passwords `spec` holds, as StorageForDisplay finds them.
  std::vector<std::string> passwords;
  if (const std::size_t start = spec.find("://"); start == std::string::npos) {
    static const std::regex kPassword(R"((^|\s)password\s*=\s*('(([^'\\]|\\.)*)'|(\S*)))");
    for (std::sregex_iterator m(spec.begin(), spec.end(), kPassword), end; m != end; ++m) {
      passwords.push_back((*m)[3].matched ? (*m)[3].str() : (*m)[5].str());
    }
  } else {
    const std::size_t at = spec.rfind('@'), colon = spec.find(':', start + 3);
    if (at != std::string::npos && at >= start + 3 && colon != std::string::npos && colon < at) {
      passwords.push_back(spec.substr(colon + 1, at - colon - 1));
    }
    for (std::size_t p = spec.find("password=", start); p != std::string::npos; p = spec.find("password=", p + 1)) {
      if (spec[p - 1] != '?' && spec[p - 1] != '&') continue;
      const std::size_t value = p + 9;
      passwords.push_back(spec.substr(value, std::min(spec.find('&', value), spec.size()) - value));
    }
  }
  // A libpq message may quote any piece of one: `invalid integer value
  // "Xy7" for connection option "port"` of user:Xy7/rest@host.
  std::vector<std::string> secrets;
  for (const std::string& password : passwords) {
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
