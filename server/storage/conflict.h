// What a connection throws (alongside its own error type) when the database
// rolled the whole transaction back over a conflict with another: nothing of
// it was written, and the same transaction run again may succeed
// (PostgreSQL's deadlock_detected and serialization_failure: PgConflict).
// BatchWriter runs such a batch again.
#pragma once

namespace meshwire {

class TransactionConflict {
 public:
  virtual ~TransactionConflict() = default;
};

}  // namespace meshwire
