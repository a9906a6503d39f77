#include "server/storage/store_factory.h"

#include "schemas/error.h"
#include "server/storage/sqlite_store.h"

namespace meshwire {

std::unique_ptr<Store> OpenStore(const std::string& spec) {
  std::string path = spec;
  if (spec.rfind("sqlite:", 0) == 0) {
    path = spec.substr(7);
  } else if (spec.rfind("postgres://", 0) == 0 || spec.rfind("postgresql://", 0) == 0) {
    throw Error::BadRequest("invalid_storage",
                            "PostgreSQL storage is not built into this meshwire yet; use "
                            "--storage sqlite:PATH.");
  }
  if (path.empty()) throw Error::BadRequest("invalid_storage", "--storage needs a path: sqlite:PATH.");
  return std::make_unique<SqliteStore>(path);
}

}  // namespace meshwire
