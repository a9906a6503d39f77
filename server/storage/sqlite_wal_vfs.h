// A SQLite VFS that is the default one ("unix") except for one thing: the
// writes to a write-ahead log are gathered in memory and reach the file in
// one write when SQLite syncs it (or reads, truncates, sizes or closes it,
// or writes anywhere but right after them). A commit of a few messages
// writes a header and a page for each of several WAL frames: about 17
// pwrite() calls, now one (at most 64 KiB each). On a machine where a system call is expensive
// (a virtual machine) that is the writer's time per commit.
//
// Safe only where every commit syncs the WAL before it is made visible:
// journal_mode=WAL with synchronous=FULL, as SqliteConnection opens every
// connection. SQLite then writes a transaction's frames, syncs the WAL
// (here: flushes, then syncs) and only then publishes them in the
// wal-index, so no other connection can read a frame still in memory.
// Frames of an unfinished transaction (a cache spill) are never published,
// and a crash loses only what no commit had confirmed.
#pragma once

namespace meshwire {

/// The VFS's name, registered (not as the default) on the first call; null
/// when it could not be (then connections use the default VFS).
const char* GatheringWalVfs();

}  // namespace meshwire
