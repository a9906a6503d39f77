// The one place a storage option becomes a Store: the relay and `meshwire
// admin` both open storage here.
#pragma once

#include <memory>
#include <string>

#include "server/core/store.h"
#include "server/core/wake_bus.h"

namespace meshwire {

/// Opens the store an option string names: "sqlite:PATH" or a bare path, or
/// a PostgreSQL URI (postgres://user:pass@host:port/db, also postgresql://;
/// libpq's PG* variables fill what it leaves out). Throws Error 503 (saying
/// why) when it cannot, 400 for an unknown scheme.
std::unique_ptr<Store> OpenStore(const std::string& spec);
/// As OpenStore, for a command that reads or changes what is already there
/// (`meshwire admin token list|revoke`): a SQLite file that does not exist
/// is Error 404 naming it, and is not created.
std::unique_ptr<Store> OpenExistingStore(const std::string& spec);

/// Held by a relay for as long as it runs on a SQLite file: two relays on one
/// file would each wake only their own parked polls (their wake-up buses are
/// in-process), so a second relay is refused. `meshwire admin` takes none.
class StorageLock {
 public:
  StorageLock(int fd, std::string database) : fd_(fd), database_(std::move(database)) {}
  ~StorageLock();
  StorageLock(const StorageLock&) = delete;
  StorageLock& operator=(const StorageLock&) = delete;

  /// Locks the database file itself too (flock, which SQLite's own POSIX
  /// locks never meet on a local file system), once it exists: a hard link
  /// is another name for it, with a lock file of its own. Error 409 when
  /// another relay holds it; where flock is not had (NFS), a warning.
  /// Idempotent; call once the store has opened (and so created) the file.
  void LockDatabase();

 private:
  int fd_;
  std::string database_;
  int database_fd_ = -1;  // closed after the store: see Relay's member order
};

/// For SQLite storage: an exclusive lock on PATH.lock beside the database,
/// PATH with its symbolic links resolved (it holds the relay's pid), and on
/// the database file when it exists (LockDatabase); or Error 409 naming the
/// relay that holds it. Nothing for PostgreSQL, where any number of relays
/// share the database.
std::unique_ptr<StorageLock> LockForRelay(const std::string& spec);

/// What a relay's operator should read about its storage, in the log at
/// start: on PostgreSQL, the node id /health names, and a warning when the
/// server's synchronous_commit is off (not for `admin`'s brief opens).
void LogStorageNotes(Store& store);

/// The wake-up bus for `store` opened from `spec`: in-process for SQLite (one
/// node), LISTEN/NOTIFY for PostgreSQL (every node on the database).
std::unique_ptr<WakeBus> OpenWakeBus(const std::string& spec, Store& store);

/// Tells the relays running on `spec`'s storage of an access change that
/// another process (`meshwire admin`) made there, so that they forget their
/// cached identities and end the polls `ended` names: on PostgreSQL a
/// notification every node hears at once (Error 503 when it cannot be sent);
/// on SQLite nothing to do, the relay looks for other processes' commits
/// itself once a second (SqliteWakeBus).
void AnnounceAccessChange(const std::string& spec, Store& store, const WakeEvent::Ended& ended);

/// Why `spec` names no storage meshwire has: a scheme other than sqlite:,
/// postgres:// or postgresql:// ("bogus:x", "mysql://h/db"), which OpenStore
/// would take for a file's name and create. Empty when it may name one (a
/// bare path has no scheme).
std::string StorageSpecProblem(const std::string& spec);

/// Throws Error 400 "invalid_storage" (a setting to change, exit 2) when
/// PostgreSQL URL `spec`, given as `flag`, is one libpq cannot read or whose
/// port is no port number (libpq says that only when it connects, in the
/// words of a server that is down).
void CheckPostgresUrl(const std::string& spec, const std::string& flag);

/// `spec` fit for a log line or a hint: a URI's password replaced by "***".
std::string StorageForDisplay(const std::string& spec);
/// `text` (a libpq message about `spec`) with every password `spec` holds,
/// and every piece of one a parser may have quoted, replaced by "***".
std::string WithoutPassword(std::string text, const std::string& spec);

}  // namespace meshwire
