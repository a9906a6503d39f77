// A SQLite VFS that is the default one ("unix") except for one thing: the
// writes to a write-ahead log are gathered in memory and reach the file in
// one write when SQLite syncs it (or reads, truncates, sizes or closes it,
// or writes anywhere but right after them). A commit of a few messages
// writes a header and a page for each of several WAL frames: about 17
// pwrite() calls, now one (at most 64 KiB each). On a machine where a system call is expensive
// (a virtual machine) that is the writer's time per commit.
//
// What SQLite publishes (the wal-index's last frame) is always in the file:
// the run is written as soon as a commit frame is whole, and before every
// sync, read, truncate or close of the WAL (with synchronous=FULL, as
// SqliteConnection opens every connection, the sync follows at once). Frames
// of a transaction that rolls back (a cache spill) are never published, and
// must not be written later either, over what another writer may have
// committed there since: SqliteConnection drops them (DropUnwrittenWal) at
// each ROLLBACK and at each BEGIN. A crash loses only what no commit had
// confirmed. Without powersafe overwrite (a psow=0 URI), where SQLite pads a
// commit after its sync, nothing is gathered.
#pragma once

struct sqlite3;

namespace meshwire {

/// The VFS's name, registered (not as the default) on the first call; null
/// when it could not be (then connections use the default VFS).
const char* GatheringWalVfs();

/// Drops the WAL writes `db` gathered and has not written: those of a
/// transaction that ended without a commit. Call at ROLLBACK and at BEGIN.
void DropUnwrittenWal(sqlite3* db);

}  // namespace meshwire
