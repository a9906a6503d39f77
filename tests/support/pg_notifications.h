// What a test's own LISTEN session heard from the relay's nodes: the seqs of
// the meshwire_messages notifications (PgWakeBus's payload), read until the
// one of a given seq came.
//
//   PgConnection listener(uri);
//   listener.Exec("LISTEN meshwire_messages");
//   ... sends ...
//   CHECK(AnnouncedSeqs(listener, 2) == std::vector<std::int64_t>{2});
#pragma once

#include <doctest/doctest.h>
#include <libpq-fe.h>
#include <poll.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "server/storage/pg_conn.h"
#include "server/storage/pg_wake_bus.h"

namespace meshwire::testing {

/// The seqs of the notifications `listener` (which LISTENs on
/// meshwire_messages) received, in the order they came, once one of `upto`
/// or above came, or 10 s passed. A lost session or a payload that is not a
/// message's fails the test case.
inline std::vector<std::int64_t> AnnouncedSeqs(PgConnection& listener, std::int64_t upto) {
  std::vector<std::int64_t> seqs;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while ((seqs.empty() || seqs.back() < upto) && std::chrono::steady_clock::now() < deadline) {
    pollfd fd{PQsocket(listener.raw()), POLLIN, 0};
    ::poll(&fd, 1, 100);
    if (PQconsumeInput(listener.raw()) != 1) {
      FAIL_CHECK("the LISTEN session was lost: " << PQerrorMessage(listener.raw()));
      break;  // what came so far
    }
    while (PGnotify* note = PQnotifies(listener.raw())) {
      const std::string extra = note->extra ? note->extra : "";
      PQfreemem(note);
      if (auto payload = PgWakeBus::ParseMessagePayload(extra)) {
        seqs.push_back(payload->seq);
      } else {
        FAIL_CHECK("a notification whose payload is not a message's: " << extra);
      }
    }
  }
  return seqs;
}

}  // namespace meshwire::testing
