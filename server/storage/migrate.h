// `meshwire admin migrate`: one SQLite store's data into an empty
// PostgreSQL database, for a relay that outgrows one node.
#pragma once

#include <cstdint>
#include <functional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace meshwire {

/// Thrown by CopySqliteToPostgres when `interrupted` said so: the copy's
/// transaction was rolled back, so the target holds none of it.
struct MigrationInterrupted : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// Rows copied, per table, in the order copied.
using TableCounts = std::vector<std::pair<std::string, std::int64_t>>;

/// Copies everything the SQLite database at `sqlite_path` holds (users, token
/// hashes, meshes, members, agents with their cursors, messages, cursor
/// history) into the PostgreSQL database `pg_uri`, in one transaction, from
/// one consistent snapshot of the source (a running relay may keep using it;
/// what it writes meanwhile is not copied). Creates the schema when needed;
/// refuses a target that already holds meshwire data (checked in the same
/// transaction, so two migrations into one database cannot both copy); after
/// the commit, checks every table's row count against the source.
/// `progress` is told each table's rows as they are copied (every 20,000,
/// `done` false) and once it is whole (`done` true), all before the commit.
/// `interrupted`, when given, is asked after each statement of rows and
/// before the commit; true rolls the copy back (MigrationInterrupted).
/// Throws Error (400: bad source or non-empty target; 503: a database
/// unreachable) with a sentence; then nothing was written, unless the
/// sentence says the copy was committed (its count check failed).
TableCounts CopySqliteToPostgres(
    const std::string& sqlite_path, const std::string& pg_uri,
    const std::function<void(const std::string& table, std::int64_t rows, bool done)>& progress,
    const std::function<bool()>& interrupted = {});

}  // namespace meshwire
