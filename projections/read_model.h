// A read model: a query-shaped view of the log kept in the read_models column family.
// apply() must be deterministic — the same events give the same bytes — so a rebuild from
// position 0 is byte-identical to the live model (invariant I7).
#pragma once

#include <rocksdb/utilities/write_batch_with_index.h>

#include <functional>
#include <string>
#include <string_view>

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

// Index keys: `"<name>/" u32be(len(value)) value`, then the row's id. The value is
// length-prefixed, so one value never matches another that merely starts with it ("North" and
// "North/East"), whatever characters values hold.
std::string index_prefix(const std::string& name, const std::string& value);

// Walks rows in id order after `page_token`, from one consistent snapshot: the rows themselves
// (`row_prefix` + id -> row) when `walk_prefix` == `row_prefix`, else an index (`walk_prefix`
// + id) whose every entry must name a row. Calls `take(id, row bytes)` until it returns false.
Status scan_rows(Store& store, const std::string& row_prefix, const std::string& walk_prefix,
                 const std::string& page_token,
                 const std::function<bool(const std::string& id, std::string_view row)>& take);

}  // namespace crm
