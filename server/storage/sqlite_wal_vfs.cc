#include "server/storage/sqlite_wal_vfs.h"

#include <sqlite3.h>

#include <algorithm>
#include <cstring>

namespace meshwire {

namespace {

constexpr const char* kName = "meshwire-wal";
constexpr sqlite3_int64 kMaxGathered = 4 << 20;  // larger runs are written as they come
constexpr sqlite3_int64 kMaxWrite = 64 * 1024;
constexpr int kFrameHeader = 24;  // WAL_FRAME_HDRSIZE

sqlite3_vfs* g_base = nullptr;  // the default VFS this one wraps
sqlite3_vfs g_vfs;

/// A WAL file: the base VFS's file (after this struct, in the memory SQLite
/// allocates for it) and the writes not yet passed on, one contiguous run.
struct WalFile {
  sqlite3_file base;  // first: SQLite sees a sqlite3_file
  sqlite3_file* real;
  bool gather;              // false: every write passed on at once (no powersafe overwrite)
  bool commit_page_next;    // a commit frame's header was gathered: flush after its page
  char* run;                // sqlite3_malloc'd; run_len bytes from file offset run_at
  sqlite3_int64 run_at;
  sqlite3_int64 run_len;
  sqlite3_int64 run_cap;
};

constexpr std::size_t kRealOffset = (sizeof(WalFile) + 7) & ~std::size_t{7};

WalFile* Wal(sqlite3_file* f) { return reinterpret_cast<WalFile*>(f); }
const sqlite3_io_methods* Real(WalFile* f) { return f->real->pMethods; }

/// Writes the gathered run (all of it, or an error: then it is dropped, and
/// the error reaches SQLite through the call that flushed, a sync at the
/// latest, so the commit fails).
int Flush(WalFile* f) {
  int rc = SQLITE_OK;
  // In pieces of at most 64 KiB: the unix VFS writes at most 128 KiB - 1 at
  // a time (SQLite itself never writes more than a page).
  for (sqlite3_int64 done = 0; done < f->run_len && rc == SQLITE_OK; done += kMaxWrite) {
    const auto n = static_cast<int>(std::min(kMaxWrite, f->run_len - done));
    rc = Real(f)->xWrite(f->real, f->run + done, n, f->run_at + done);
  }
  f->run_len = 0;
  f->commit_page_next = false;
  return rc;
}

int Close(sqlite3_file* file) {
  WalFile* f = Wal(file);
  const int flushed = Flush(f);
  const int closed = Real(f)->xClose(f->real);
  sqlite3_free(f->run);
  f->run = nullptr;
  f->run_cap = 0;
  return flushed != SQLITE_OK ? flushed : closed;
}

int Read(sqlite3_file* file, void* out, int amount, sqlite3_int64 offset) {
  WalFile* f = Wal(file);
  if (const int rc = Flush(f); rc != SQLITE_OK) return rc;
  return Real(f)->xRead(f->real, out, amount, offset);
}

int Write(sqlite3_file* file, const void* data, int amount, sqlite3_int64 offset) {
  WalFile* f = Wal(file);
  if (!f->gather) return Real(f)->xWrite(f->real, data, amount, offset);
  // Only a write that continues the run joins it; any other goes after it.
  if (f->run_len > 0 && (offset != f->run_at + f->run_len || f->run_len + amount > kMaxGathered)) {
    if (const int rc = Flush(f); rc != SQLITE_OK) return rc;
  }
  if (amount > kMaxWrite) {  // never from SQLite (a page is at most 64 KiB): as is, after the run
    if (const int rc = Flush(f); rc != SQLITE_OK) return rc;
    return Real(f)->xWrite(f->real, data, amount, offset);
  }
  if (f->run_len + amount > f->run_cap) {
    const sqlite3_int64 cap = std::max<sqlite3_int64>({f->run_cap * 2, f->run_len + amount, 64 * 1024});
    auto* grown = static_cast<char*>(sqlite3_realloc64(f->run, static_cast<sqlite3_uint64>(cap)));
    if (!grown) {  // no memory: no gathering
      if (const int rc = Flush(f); rc != SQLITE_OK) return rc;
      return Real(f)->xWrite(f->real, data, amount, offset);
    }
    f->run = grown;
    f->run_cap = cap;
  }
  if (f->run_len == 0) f->run_at = offset;
  std::memcpy(f->run + f->run_len, data, static_cast<std::size_t>(amount));
  f->run_len += amount;
  // A commit frame is on its way to the file as soon as it is whole, sync or
  // not: whatever SQLite then publishes is never only here. (A frame header
  // is the only 24-byte write; its bytes 4-7 are the database size in pages
  // after a commit, zero in any other frame.)
  if (f->commit_page_next && amount != kFrameHeader) return Flush(f);
  if (amount == kFrameHeader) {
    const auto* h = static_cast<const unsigned char*>(data);
    f->commit_page_next = (h[4] | h[5] | h[6] | h[7]) != 0;
  }
  return SQLITE_OK;
}

int Truncate(sqlite3_file* file, sqlite3_int64 size) {
  WalFile* f = Wal(file);
  if (const int rc = Flush(f); rc != SQLITE_OK) return rc;
  return Real(f)->xTruncate(f->real, size);
}

int Sync(sqlite3_file* file, int flags) {
  WalFile* f = Wal(file);
  if (const int rc = Flush(f); rc != SQLITE_OK) return rc;
  return Real(f)->xSync(f->real, flags);
}

int FileSize(sqlite3_file* file, sqlite3_int64* size) {
  WalFile* f = Wal(file);
  if (const int rc = Flush(f); rc != SQLITE_OK) return rc;
  return Real(f)->xFileSize(f->real, size);
}

int Lock(sqlite3_file* file, int level) { return Real(Wal(file))->xLock(Wal(file)->real, level); }
int Unlock(sqlite3_file* file, int level) { return Real(Wal(file))->xUnlock(Wal(file)->real, level); }
int CheckReservedLock(sqlite3_file* file, int* out) {
  return Real(Wal(file))->xCheckReservedLock(Wal(file)->real, out);
}

int FileControl(sqlite3_file* file, int op, void* arg) {
  WalFile* f = Wal(file);
  if (const int rc = Flush(f); rc != SQLITE_OK) return rc;
  return Real(f)->xFileControl(f->real, op, arg);
}

int SectorSize(sqlite3_file* file) { return Real(Wal(file))->xSectorSize(Wal(file)->real); }
int DeviceCharacteristics(sqlite3_file* file) {
  return Real(Wal(file))->xDeviceCharacteristics(Wal(file)->real);
}

// Version 1: SQLite maps and locks shared memory, and fetches pages, through
// the database file, never through its WAL.
const sqlite3_io_methods kWalMethods = {
    1,    Close,  Read,   Write,  Truncate,          Sync,        FileSize,
    Lock, Unlock, CheckReservedLock, FileControl, SectorSize, DeviceCharacteristics,
    nullptr, nullptr, nullptr, nullptr, nullptr, nullptr,
};

int Open(sqlite3_vfs* /*vfs*/, const char* name, sqlite3_file* file, int flags, int* out_flags) {
  if (!(flags & SQLITE_OPEN_WAL)) return g_base->xOpen(g_base, name, file, flags, out_flags);
  WalFile* f = Wal(file);
  f->base.pMethods = nullptr;  // until open: SQLite closes nothing
  f->real = reinterpret_cast<sqlite3_file*>(reinterpret_cast<char*>(file) + kRealOffset);
  f->run = nullptr;
  f->run_at = f->run_len = f->run_cap = 0;
  f->gather = false;
  f->commit_page_next = false;
  const int rc = g_base->xOpen(g_base, name, f->real, flags, out_flags);
  if (rc != SQLITE_OK) return rc;
  if (!f->real->pMethods) return SQLITE_CANTOPEN;
  // Without powersafe overwrite (a psow=0 URI) SQLite pads a commit to a
  // sector and writes the padding's end after the sync: not gathered then.
  f->gather = (f->real->pMethods->xDeviceCharacteristics(f->real) & SQLITE_IOCAP_POWERSAFE_OVERWRITE) != 0;
  f->base.pMethods = &kWalMethods;
  return SQLITE_OK;
}

}  // namespace

void DropUnwrittenWal(sqlite3* db) {
  sqlite3_file* wal = nullptr;
  if (sqlite3_file_control(db, "main", SQLITE_FCNTL_JOURNAL_POINTER, &wal) != SQLITE_OK || !wal) return;
  if (wal->pMethods != &kWalMethods) return;
  WalFile* f = Wal(wal);
  f->run_len = 0;
  f->commit_page_next = false;
}

const char* GatheringWalVfs() {
  // sqlite3_initialize has run (SqliteConnection's ConfigureSqliteOnce).
  static const char* const name = []() -> const char* {
    g_base = sqlite3_vfs_find(nullptr);
    if (!g_base || g_base->iVersion < 3) return nullptr;
    g_vfs = *g_base;  // every other method and the app data (the unix VFS's own) as they are
    g_vfs.pNext = nullptr;
    g_vfs.zName = kName;
    g_vfs.szOsFile = static_cast<int>(kRealOffset) + std::max(g_base->szOsFile, 0);
    g_vfs.xOpen = Open;
    return sqlite3_vfs_register(&g_vfs, /*makeDflt=*/0) == SQLITE_OK ? kName : nullptr;
  }();
  return name;
}

}  // namespace meshwire
