#include "server/storage/pg_flusher.h"

#include <spdlog/spdlog.h>

#include <future>

#include "schemas/error.h"
#include "server/core/thread_name.h"
#include "server/storage/pg_conn.h"

namespace meshwire {

// A WAL position function's value as bytes from 0/0.
#define MESHWIRE_PG_LSN_BYTES(f) "(" f "() - '0/0'::pg_lsn)::bigint"

const char* const PgFlusher::kWalPositions =
    "SELECT " MESHWIRE_PG_LSN_BYTES("pg_current_wal_insert_lsn") ", " MESHWIRE_PG_LSN_BYTES(
        "pg_current_wal_flush_lsn");

PgFlusher::PgFlusher(std::string conninfo, std::string node_id)
    : conninfo_(std::move(conninfo)), node_id_(std::move(node_id)), thread_([this] {
        NameThisThread("mw-pg-flusher");
        Loop();
      }) {}

PgFlusher::~PgFlusher() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  thread_.join();
  {
    std::lock_guard lock(mu_);
    stopped_ = true;
  }
  if (barriers_ > 0) spdlog::info("storage: {} flush barriers", barriers_);
  try {
    if (conn_) conn_->Prepare("DELETE FROM node_flushes WHERE node_id = ?1").Bind(1, node_id_).Run();
  } catch (const std::exception&) {
    // The database is gone; the row is removed with the node's (PostgresStore).
  }
}

void PgFlusher::After(Answer answer) {
  {
    std::lock_guard lock(mu_);
    if (!stopped_) {
      waiting_.push_back(std::move(answer));
      cv_.notify_all();
      return;
    }
  }
  answer(std::make_exception_ptr(Error::Unavailable("The relay is shutting down; retry shortly.")));
}

void PgFlusher::WaitDurable(std::uint64_t lsn) {
  {
    std::lock_guard lock(mu_);
    if (durable_lsn_ >= lsn) return;
  }
  auto done = std::make_shared<std::promise<void>>();
  auto future = done->get_future();
  After([done](std::exception_ptr error) {
    if (error) {
      done->set_exception(error);
    } else {
      done->set_value();
    }
  });
  future.get();
}

std::uint64_t PgFlusher::Barrier() {
  // A barrier is idempotent: one lost on a connection that went stale while
  // idle (the database restarted since) is run again on a new one, so the
  // commits it stands for are not reported failed for that alone.
  try {
    return BarrierOnce();
  } catch (const Error& e) {
    if (e.status() != 503) throw;
    spdlog::warn("storage: a flush barrier's connection was lost ({}); once more on a new one", e.what());
  }
  return BarrierOnce();
}

std::uint64_t PgFlusher::BarrierOnce() {
  if (!conn_) conn_ = std::make_unique<PgConnection>(conninfo_);
  // Outside a transaction block: the statement is its own transaction, with
  // the session's synchronous_commit (the server's setting).
  auto s = conn_->Prepare(
      "INSERT INTO node_flushes(node_id, n) VALUES (?1, 1)"
      " ON CONFLICT (node_id) DO UPDATE SET n = node_flushes.n + 1"
      " RETURNING " MESHWIRE_PG_LSN_BYTES("pg_current_wal_insert_lsn"));
  s.Bind(1, node_id_);
  if (!s.Step()) throw Error::Unavailable("PostgreSQL returned nothing for a flush barrier; retry shortly.");
  ++barriers_;
  return static_cast<std::uint64_t>(s.Int(0));
}

void PgFlusher::Loop() {
  for (;;) {
    std::vector<Answer> answers;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return !waiting_.empty() || stopping_; });
      if (waiting_.empty()) return;  // stopping, nothing left
      answers.swap(waiting_);
    }
    std::exception_ptr error;
    try {
      const std::uint64_t lsn = Barrier();
      std::lock_guard lock(mu_);
      if (lsn > durable_lsn_) durable_lsn_ = lsn;
    } catch (const std::exception& e) {
      spdlog::error("storage: a flush barrier failed: {}", e.what());
      error = std::current_exception();
    }
    for (auto& answer : answers) {
      try {
        answer(error);
      } catch (...) {
        spdlog::error("after a flush barrier: an exception from an answer (ignored)");
      }
    }
  }
}

}  // namespace meshwire
