// A read model: a query-shaped view of the log kept in the read_models column family.
// apply() must be deterministic — the same events give the same bytes — so a rebuild from
// position 0 is byte-identical to the live model (invariant I7).
#pragma once

#include <rocksdb/utilities/write_batch_with_index.h>

#include <algorithm>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

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
  // Calls `take(key)` for each key with `prefix`, as this batch leaves them, in key order,
  // until it returns false.
  Status scan(const std::string& prefix, const std::function<bool(std::string_view key)>& take);

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

// Folds one event into the row stored at `row_key` (a `Row` message; a new one when absent) and
// keeps the row's index entries: those it had and no longer has are erased, the others put.
// `is_new(row)` tells a row never written (whose index keys are not stored).
template <typename Row>
Status fold_row(ReadModelWriter& writer, const std::string& row_key, const std::string& view,
                const std::function<void(Row&)>& fold,
                const std::function<std::vector<std::string>(const Row&)>& index_keys) {
  Row row;
  std::string bytes;
  auto s = writer.get(row_key, &bytes);
  if (s.is_ok()) {
    if (!row.ParseFromString(bytes)) return Status::corruption(view + ": unreadable row");
  } else if (s.code() != StatusCode::kNotFound) {
    return s;
  }
  auto old_keys = s.is_ok() ? index_keys(row) : std::vector<std::string>{};
  fold(row);
  auto new_keys = index_keys(row);
  for (const auto& key : old_keys)
    if (std::find(new_keys.begin(), new_keys.end(), key) == new_keys.end()) writer.erase(key);
  for (const auto& key : new_keys) writer.put(key, "");
  writer.put(row_key, row.SerializeAsString());
  return Status::ok();
}

// One page of `List` (a message with `items` of `Row` and `next_page_token`): rows walked as
// scan_rows() does, those `matches` accepts, at most `page_size`; the token is the last id.
// The walk ends at the first row `past_end` accepts (when given: ordered walks, a period's end).
template <typename List, typename Row>
Result<List> list_rows(Store& store, const std::string& view, const std::string& row_prefix,
                       const std::string& walk_prefix, const std::string& page_token,
                       size_t page_size, const std::function<bool(const Row&)>& matches,
                       const std::function<bool(const Row&)>& past_end = nullptr) {
  List page;
  Status bad;
  std::string last_id;
  auto s = scan_rows(store, row_prefix, walk_prefix, page_token,
                     [&](const std::string& id, std::string_view bytes) {
                       Row row;
                       if (!row.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
                         bad = Status::corruption(view + ": unreadable row");
                         return false;
                       }
                       if (past_end && past_end(row)) return false;
                       if (!matches(row)) return true;
                       if (static_cast<size_t>(page.items_size()) == page_size) {
                         page.set_next_page_token(last_id);
                         return false;
                       }
                       *page.add_items() = std::move(row);
                       last_id = id;
                       return true;
                     });
  if (!bad.is_ok()) return bad;
  if (!s.is_ok()) return s;
  return page;
}

}  // namespace crm
