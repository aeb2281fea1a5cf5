#include "events/rocksdb_store.h"

#include <rocksdb/cache.h>
#include <rocksdb/compaction_filter.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/table.h>
#include <rocksdb/utilities/checkpoint.h>
#include <rocksdb/write_buffer_manager.h>

#include <array>

#include "command.pb.h"
#include "events/codec.h"

namespace crm {
namespace {

constexpr std::array<const char*, 7> kFamilyNames = {
    "log", "streams", "state", "idempotency", "read_models", "checkpoints", "meta"};

// Deletes idempotency records past their retention as compaction meets them, so the family
// stays as large as a week of keyed commands rather than growing forever.
class IdempotencyExpiry final : public rocksdb::CompactionFilter {
 public:
  IdempotencyExpiry(const Clock& clock, int64_t retention_us)
      : clock_(clock), retention_us_(retention_us) {}
  const char* Name() const override { return "crm.IdempotencyExpiry"; }
  bool Filter(int, const rocksdb::Slice&, const rocksdb::Slice& value, std::string*,
              bool*) const override {
    events::IdempotencyRecord record;
    if (!record.ParseFromArray(value.data(), static_cast<int>(value.size())))
      return false;  // keep what we cannot read; never guess
    return clock_.now_us() - timestamp_to_us(record.recorded_at()) > retention_us_;
  }

 private:
  const Clock& clock_;
  const int64_t retention_us_;
};

}  // namespace

Status from_rocksdb(const rocksdb::Status& s) {
  if (s.ok()) return Status::ok();
  if (s.IsNotFound()) return Status::not_found(s.ToString());
  if (s.IsCorruption()) return Status::corruption(s.ToString());
  if (s.IsInvalidArgument()) return Status::invalid_argument(s.ToString());
  if (s.IsBusy() || s.IsTimedOut() || s.IsTryAgain() || s.IsIOError())
    return Status::unavailable(s.ToString());
  return Status::internal(s.ToString());
}

Result<std::unique_ptr<Store>> Store::open(const StoreOptions& options) {
  rocksdb::Options db_options;
  db_options.create_if_missing = true;
  db_options.create_missing_column_families = true;
  db_options.IncreaseParallelism(2);
  db_options.max_open_files = 512;
  db_options.keep_log_file_num = 4;
  // On a machine with few cores a writer waiting behind an fsync must sleep, not spin.
  db_options.enable_write_thread_adaptive_yield = false;

  rocksdb::BlockBasedTableOptions table;
  table.block_cache = rocksdb::NewLRUCache(options.block_cache_bytes);
  // Most point reads on the write path miss (a new customer has no state, no stream head):
  // bloom filters, also over the memtable, answer those without searching.
  table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  // Index and filter blocks live in the block cache too (level 0's pinned, being read most), so
  // the resident size stays within the cache's bound however large the data grows.
  table.cache_index_and_filter_blocks = true;
  table.cache_index_and_filter_blocks_with_high_priority = true;
  table.pin_l0_filter_and_index_blocks_in_cache = true;
  rocksdb::ColumnFamilyOptions family_options;
  family_options.memtable_prefix_bloom_size_ratio = 0.02;
  family_options.memtable_whole_key_filtering = true;
  family_options.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  // Memory stays bounded: every family's memtables share one budget.
  family_options.write_buffer_size = 32u << 20;
  family_options.max_write_buffer_number = 3;
  family_options.level_compaction_dynamic_level_bytes = true;
  db_options.write_buffer_manager =
      std::make_shared<rocksdb::WriteBufferManager>(options.memtable_bytes_max, table.block_cache);

  std::unique_ptr<Store> store(new Store());
  store->idempotency_expiry_ = std::make_unique<IdempotencyExpiry>(
      options.clock ? *options.clock : store->system_clock_, options.idempotency_retention_us);
  rocksdb::ColumnFamilyOptions idempotency_options = family_options;
  idempotency_options.compaction_filter = store->idempotency_expiry_.get();

  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
  descriptors.emplace_back(rocksdb::kDefaultColumnFamilyName, family_options);
  for (const char* name : kFamilyNames) {
    descriptors.emplace_back(
        name, std::string_view(name) == "idempotency" ? idempotency_options : family_options);
  }

  store->sync_writes_ = options.sync_writes;
  store->metrics_ = options.metrics;
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  auto s = rocksdb::DB::Open(db_options, options.path, descriptors, &handles, &raw);
  if (!s.ok()) return from_rocksdb(s);
  store->db_.reset(raw);
  // handles[0] is the default family, which we do not use.
  store->families_.assign(handles.begin() + 1, handles.end());
  store->default_family_ = handles[0];
  return store;
}

Store::~Store() {
  if (!db_) return;
  for (auto* h : families_) db_->DestroyColumnFamilyHandle(h).PermitUncheckedError();
  db_->DestroyColumnFamilyHandle(default_family_).PermitUncheckedError();
  db_->Close().PermitUncheckedError();  // closing errors leave nothing for us to do
}

Status Store::write_durable(const std::function<void(rocksdb::WriteBatch&)>& fill) {
  std::unique_lock lock(commit_mu_);
  if (!failure_.is_ok()) return failure_;
  fill(open_batch_);
  ++open_requests_;
  const uint64_t my_generation = open_generation_;
  while (synced_generation_ < my_generation) {
    if (writing_) {
      commit_cv_.wait(lock);
      continue;
    }
    // Lead: take the open batch and write it while others keep filling the next one.
    writing_ = true;
    rocksdb::WriteBatch batch;
    std::swap(batch, open_batch_);
    const uint64_t generation = open_generation_++;
    const uint64_t requests = std::exchange(open_requests_, 0);
    lock.unlock();
    rocksdb::WriteOptions write_options;
    write_options.sync = sync_writes_;
    const auto started = std::chrono::steady_clock::now();
    auto s = db_->Write(write_options, &batch);
    if (metrics_) {
      metrics_->group_commit(
          requests,
          std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
    }
    lock.lock();
    writing_ = false;
    synced_generation_ = generation;
    ++stats_.batches;
    stats_.requests += requests;
    if (!s.ok() && failure_.is_ok()) {
      failure_ = from_rocksdb(s);
      failed_generation_ = generation;
    }
    commit_cv_.notify_all();
  }
  return my_generation >= failed_generation_ ? failure_ : Status::ok();
}

Status Store::write(rocksdb::WriteBatch& batch, bool sync) {
  rocksdb::WriteOptions write_options;
  write_options.sync = sync;
  return from_rocksdb(db_->Write(write_options, &batch));
}

Status Store::checkpoint(const std::string& path) {
  rocksdb::Checkpoint* raw = nullptr;
  if (auto s = from_rocksdb(rocksdb::Checkpoint::Create(db_.get(), &raw)); !s.is_ok()) return s;
  std::unique_ptr<rocksdb::Checkpoint> checkpoint(raw);
  // log_size_for_flush 0: flush the memtables first, so the copy needs no WAL replay.
  return from_rocksdb(checkpoint->CreateCheckpoint(path, /*log_size_for_flush=*/0));
}

Status Store::get(Family f, const std::string& key, std::string* value) {
  return from_rocksdb(db_->Get(rocksdb::ReadOptions(), family(f), key, value));
}

GroupCommitStats Store::group_commit_stats() {
  std::lock_guard lock(commit_mu_);
  return stats_;
}

}  // namespace crm
