// A read model: a query-shaped view of the log kept in the read_models column family.
// apply() must be deterministic — the same events give the same bytes — so a rebuild from
// position 0 is byte-identical to the live model (invariant I7).
#pragma once

#include <rocksdb/utilities/write_batch_with_index.h>

#include <string>

#include "envelope.pb.h"
#include "events/rocksdb_store.h"

namespace crm {

// What a read model writes through: puts and deletes of this batch, and reads that see them.
class ReadModelWriter {
 public:
  ReadModelWriter(Store& store, rocksdb::WriteBatchWithIndex& batch)
      : store_(store), batch_(batch) {}
  Status get(const std::string& key, std::string* value);
  void put(const std::string& key, const std::string& value);
  void erase(const std::string& key);

 private:
  Store& store_;
  rocksdb::WriteBatchWithIndex& batch_;
};

class ReadModel {
 public:
  virtual ~ReadModel() = default;
  // Stable name: checkpoint keys are derived from it.
  virtual std::string name() const = 0;
  virtual Status apply(const events::EventEnvelope& event, ReadModelWriter& writer) = 0;
};

}  // namespace crm
