// The embedded database: one RocksDB instance whose column families hold the log, the stream
// index, aggregate state, idempotency keys, read models and checkpoints. It owns the group
// commit: concurrent durable writes share one synced WriteBatch (invariants I5, I6).
#pragma once

#include <rocksdb/compaction_filter.h>
#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include "events/clock.h"
#include "events/metrics.h"
#include "events/status.h"

namespace crm {

struct StoreOptions {
  std::string path;
  size_t block_cache_bytes = 256u << 20;
  size_t memtable_bytes_max = 256u << 20;  // all column families together
  bool sync_writes = true;  // false only in benchmarks that measure the cost of fsync
  // Idempotency records older than this are deleted when RocksDB compacts them (they are
  // already ignored when read). Must be the partition processors' retention.
  int64_t idempotency_retention_us = kIdempotencyRetentionUs;
  const Clock* clock =
      nullptr;  // for that age; the system clock when null. Must outlive the store.

  Metrics* metrics = nullptr;  // group-commit batch sizes and write times; none when null

  static constexpr int64_t kIdempotencyRetentionUs = 7LL * 24 * 3600 * 1000000;
};

// Statistics of the group commit, for metrics and benchmarks.
struct GroupCommitStats {
  uint64_t batches = 0;   // synced writes
  uint64_t requests = 0;  // durable write requests they carried
};

class Store {
 public:
  enum class Family { kLog, kStreams, kState, kIdempotency, kReadModels, kCheckpoints, kMeta };

  static Result<std::unique_ptr<Store>> open(const StoreOptions& options);
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  rocksdb::DB* db() { return db_.get(); }
  rocksdb::ColumnFamilyHandle* family(Family f) { return families_[static_cast<int>(f)]; }

  // Durable write. `fill` puts this request's records into the shared open batch (it runs
  // under the group-commit lock: keep it to plain Puts of ready bytes). Returns once the
  // batch holding them is synced. After a failed write every later call fails: the caller
  // stops and recovers by reopening (the log and state must never diverge).
  Status write_durable(const std::function<void(rocksdb::WriteBatch&)>& fill);

  // A write outside the group commit: for rebuildable data (read models with their
  // checkpoints), unsynced unless asked.
  Status write(rocksdb::WriteBatch& batch, bool sync = false);

  Status get(Family f, const std::string& key, std::string* value);

  // A consistent copy of the whole database (every column family at one point, holding every
  // write acknowledged before the call) in `path`, which must not exist yet; RocksDB hard-links
  // the immutable files when `path` is on the same file system and copies them otherwise.
  Status checkpoint(const std::string& path);

  GroupCommitStats group_commit_stats();

 private:
  Store() = default;

  std::unique_ptr<rocksdb::DB> db_;
  std::vector<rocksdb::ColumnFamilyHandle*> families_;
  rocksdb::ColumnFamilyHandle* default_family_ = nullptr;
  std::unique_ptr<rocksdb::CompactionFilter> idempotency_expiry_;
  SystemClock system_clock_;
  bool sync_writes_ = true;
  Metrics* metrics_ = nullptr;

  std::mutex commit_mu_;
  std::condition_variable commit_cv_;
  rocksdb::WriteBatch open_batch_;
  uint64_t open_generation_ = 1;    // generation of the batch being filled
  uint64_t synced_generation_ = 0;  // every generation <= this one is written
  bool writing_ = false;
  uint64_t open_requests_ = 0;
  Status failure_;  // sticky once a write fails
  uint64_t failed_generation_ = UINT64_MAX;
  GroupCommitStats stats_;
};

Status from_rocksdb(const rocksdb::Status& s);

}  // namespace crm
