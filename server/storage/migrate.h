// `meshwire admin migrate`: one SQLite store's data into an empty
// PostgreSQL database, for a relay that outgrows one node.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace meshwire {

/// Rows copied, per table, in the order copied.
using TableCounts = std::vector<std::pair<std::string, std::int64_t>>;

/// Copies everything the SQLite database at `sqlite_path` holds (users, token
/// hashes, meshes, members, agents with their cursors, messages, cursor
/// history) into the PostgreSQL database `pg_uri`, in one transaction, from
/// one consistent snapshot of the source (a running relay may keep using it;
/// what it writes meanwhile is not copied). Creates the schema when needed;
/// refuses a target that already holds meshwire data; after the commit,
/// checks every table's row count against the source. `progress` is told each
/// table as it is copied (before the commit). Throws Error (400: bad source or non-empty target;
/// 503: a database unreachable) with a sentence; then nothing was written.
TableCounts CopySqliteToPostgres(const std::string& sqlite_path, const std::string& pg_uri,
                                 const std::function<void(const std::string& table, std::int64_t rows)>& progress);

}  // namespace meshwire
