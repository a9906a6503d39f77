#include "server/storage/store_factory.h"

#include "schemas/error.h"
#include "server/storage/pg_wake_bus.h"
#include "server/storage/postgres_store.h"
#include "server/storage/sqlite_store.h"

namespace meshwire {

std::unique_ptr<Store> OpenStore(const std::string& spec) {
  std::string path = spec;
  if (spec.rfind("sqlite:", 0) == 0) {
    path = spec.substr(7);
  } else if (spec.rfind("postgres://", 0) == 0 || spec.rfind("postgresql://", 0) == 0) {
    return std::make_unique<PostgresStore>(spec);
  }
  if (path.empty()) throw Error::BadRequest("invalid_storage", "--storage needs a path: sqlite:PATH.");
  return std::make_unique<SqliteStore>(path);
}

std::unique_ptr<WakeBus> OpenWakeBus(const std::string& spec, Store& store) {
  if (auto* pg = dynamic_cast<PostgresStore*>(&store)) {
    return std::make_unique<PgWakeBus>(spec, store, pg->node_id());
  }
  return std::make_unique<LocalWakeBus>();
}

std::string StorageForDisplay(const std::string& spec) {
  // scheme://user:password@host...: the password is what lies between the
  // first ':' after "//" and the '@' of the authority.
  const std::size_t start = spec.find("://");
  if (start == std::string::npos) return spec;
  const std::size_t authority = start + 3;
  const std::size_t end = spec.find_first_of("/?", authority);
  const std::size_t at = spec.rfind('@', end == std::string::npos ? std::string::npos : end);
  if (at == std::string::npos || at < authority) return spec;
  const std::size_t colon = spec.find(':', authority);
  if (colon == std::string::npos || colon > at) return spec;
  return spec.substr(0, colon + 1) + "***" + spec.substr(at);
}

}  // namespace meshwire
