#include "projections/projector.h"

#include <openssl/evp.h>

#include <algorithm>

#include "events/codec.h"
#include "events/version.h"

namespace crm {
namespace {

constexpr size_t kStepEventsMax = 1000;  // per partition and step

// Every model's checkpoints, one key: each step writes it once, whatever the models and
// partitions. (Not a model name: those keys end in '\0' and a partition.)
constexpr char kCheckpointsKey[] = "read-models";

std::string checkpoint_key(const std::string& model, uint32_t partition) {
  std::string key = model;
  key.push_back('\0');
  put_u32_be(key, partition);
  return key;
}

}  // namespace

Status ReadModelWriter::get(const std::string& key, std::string* value) {
  return from_rocksdb(batch_.GetFromBatchAndDB(
      store_.db(), rocksdb::ReadOptions(), store_.family(Store::Family::kReadModels), key, value));
}

void ReadModelWriter::put(const std::string& key, const std::string& value) {
  batch_.Put(store_.family(Store::Family::kReadModels), key, value).PermitUncheckedError();
}

void ReadModelWriter::erase(const std::string& key) {
  batch_.Delete(store_.family(Store::Family::kReadModels), key).PermitUncheckedError();
}

Status ReadModelWriter::scan(const std::string& prefix,
                             const std::function<bool(std::string_view key)>& take) {
  auto* family = store_.family(Store::Family::kReadModels);
  std::unique_ptr<rocksdb::Iterator> base(store_.db()->NewIterator(rocksdb::ReadOptions(), family));
  std::unique_ptr<rocksdb::Iterator> it(batch_.NewIteratorWithBase(family, base.release()));
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
    if (!take(std::string_view(it->key().data(), it->key().size()))) break;
  }
  return from_rocksdb(it->status());
}

std::string index_prefix(const std::string& name, const std::string& value) {
  std::string prefix = name + "/";
  put_u32_be(prefix, static_cast<uint32_t>(value.size()));
  return prefix + value;
}

Status scan_rows(Store& store, const std::string& row_prefix, const std::string& walk_prefix,
                 const std::string& page_token,
                 const std::function<bool(const std::string& id, std::string_view row)>& take) {
  const bool by_index = walk_prefix != row_prefix;
  auto* family = store.family(Store::Family::kReadModels);
  rocksdb::ReadOptions read_options;
  std::unique_ptr<const rocksdb::Snapshot, std::function<void(const rocksdb::Snapshot*)>> snapshot(
      store.db()->GetSnapshot(),
      [&store](const rocksdb::Snapshot* s) { store.db()->ReleaseSnapshot(s); });
  read_options.snapshot = snapshot.get();
  std::unique_ptr<rocksdb::Iterator> it(store.db()->NewIterator(read_options, family));
  std::string start = walk_prefix + page_token;
  if (!page_token.empty()) start.push_back('\0');  // strictly after the token
  std::string bytes;
  for (it->Seek(start); it->Valid(); it->Next()) {
    if (!it->key().starts_with(walk_prefix)) break;
    std::string id = it->key().ToString().substr(walk_prefix.size());
    std::string_view row(it->value().data(), it->value().size());
    if (by_index) {
      auto s = from_rocksdb(store.db()->Get(read_options, family, row_prefix + id, &bytes));
      if (s.code() == StatusCode::kNotFound)
        return Status::corruption("read model: an index names row '" + row_prefix + id +
                                  "', which does not exist");
      if (!s.is_ok()) return s;
      row = bytes;
    }
    if (!take(id, row)) break;
  }
  return from_rocksdb(it->status());
}

Projector::Projector(EventLog& log, Store& store, std::vector<std::unique_ptr<ReadModel>> models)
    : log_(log), store_(store), models_(std::move(models)), applied_(log.partition_count()) {}

Projector::~Projector() { stop(); }

Status Projector::open() {
  const uint32_t partitions = log_.partition_count();
  checkpoints_.assign(models_.size(), std::vector<uint64_t>(partitions, 0));
  legacy_checkpoints_ = false;
  other_checkpoints_.clear();
  std::string value;
  auto s = store_.get(Store::Family::kCheckpoints, kCheckpointsKey, &value);
  if (s.is_ok()) {
    // name length (u32be), name, then one offset (u64be) per partition; for each model.
    std::string_view rest(value);
    while (!rest.empty()) {
      if (rest.size() < 4) return Status::corruption("bad read model checkpoints");
      const uint32_t name_size = get_u32_be(rest);
      const size_t entry_size = 4 + name_size + 8ull * partitions;
      if (rest.size() < entry_size) return Status::corruption("bad read model checkpoints");
      const std::string_view name = rest.substr(4, name_size);
      const std::string_view offsets = rest.substr(4 + name_size, 8ull * partitions);
      bool mine = false;
      for (size_t m = 0; m < models_.size(); ++m) {
        if (models_[m]->name() != name) continue;
        mine = true;
        for (uint32_t p = 0; p < partitions; ++p)
          checkpoints_[m][p] = get_u64_be(offsets.substr(8 * p));
      }
      // A model this projector does not run keeps its place: written back as it was.
      if (!mine) other_checkpoints_ += rest.substr(0, entry_size);
      rest.remove_prefix(entry_size);
    }
  } else if (s.code() == StatusCode::kNotFound) {
    // A data directory from before the checkpoints shared one key: one key per model and
    // partition, replaced by the shared key in the first step's batch.
    for (size_t m = 0; m < models_.size(); ++m) {
      for (uint32_t p = 0; p < partitions; ++p) {
        auto legacy =
            store_.get(Store::Family::kCheckpoints, checkpoint_key(models_[m]->name(), p), &value);
        if (legacy.is_ok()) {
          if (value.size() != 8)
            return Status::corruption("bad checkpoint of " + models_[m]->name());
          checkpoints_[m][p] = get_u64_be(value);
          legacy_checkpoints_ = true;
        } else if (legacy.code() != StatusCode::kNotFound) {
          return legacy;
        }
      }
    }
  } else {
    return s;
  }
  for (uint32_t p = 0; p < partitions; ++p) {
    uint64_t lowest = UINT64_MAX;
    for (const auto& model : checkpoints_) lowest = std::min(lowest, model[p]);
    applied_[p] = models_.empty() ? log_.end_offset(p) : lowest;
  }
  return Status::ok();
}

Result<size_t> Projector::step(size_t max_events) {
  const uint32_t partitions = log_.partition_count();
  rocksdb::WriteBatchWithIndex batch(rocksdb::BytewiseComparator(), 0, /*overwrite_key=*/true);
  ReadModelWriter writer(store_, batch);
  std::vector<uint64_t> next(partitions);
  size_t applied = 0;
  for (uint32_t p = 0; p < partitions; ++p) {
    next[p] = applied_[p];
    auto events = log_.read_partition(p, next[p], max_events);
    if (!events.is_ok()) return events.status();
    for (const auto& event : events.value()) {
      if (event.writer_version() > kWriterVersion) {
        return Status::corruption(
            "event at " + format_position(event.position()) + " was written by engine version " +
            std::to_string(event.writer_version()) + ", newer than this one (" +
            std::to_string(kWriterVersion) + "): upgrade before replaying");
      }
      for (size_t m = 0; m < models_.size(); ++m) {
        if (event.position().offset() < checkpoints_[m][p]) continue;  // already applied
        if (auto s = models_[m]->apply(event, writer); !s.is_ok()) return s;
      }
    }
    if (!events->empty()) next[p] = events->back().position().offset() + 1;
    applied += events->size();
  }
  // Nothing new: done — unless an earlier version's checkpoint keys are still to be replaced.
  if (applied == 0 && !legacy_checkpoints_) return size_t{0};

  // Every model's checkpoint moves in the same batch as its updates (I7): one key for all.
  auto moved = checkpoints_;
  std::string value = other_checkpoints_;
  for (size_t m = 0; m < models_.size(); ++m) {
    const std::string name = models_[m]->name();
    put_u32_be(value, static_cast<uint32_t>(name.size()));
    value += name;
    for (uint32_t p = 0; p < partitions; ++p) {
      moved[m][p] = std::max(moved[m][p], next[p]);
      put_u64_be(value, moved[m][p]);
    }
  }
  auto* family = store_.family(Store::Family::kCheckpoints);
  batch.Put(family, kCheckpointsKey, value).PermitUncheckedError();
  if (legacy_checkpoints_) {
    for (const auto& model : models_)
      for (uint32_t p = 0; p < partitions; ++p)
        batch.Delete(family, checkpoint_key(model->name(), p)).PermitUncheckedError();
  }
  if (auto s = store_.write(*batch.GetWriteBatch()); !s.is_ok()) return s;
  legacy_checkpoints_ = false;
  checkpoints_ = std::move(moved);
  {
    std::lock_guard lock(mu_);
    for (uint32_t p = 0; p < partitions; ++p) applied_[p] = next[p];
  }
  applied_cv_.notify_all();
  return applied;
}

Status Projector::catch_up() {
  for (;;) {
    auto applied = step(kStepEventsMax);
    if (!applied.is_ok()) return applied.status();
    if (applied.value() == 0) return Status::ok();
  }
}

void Projector::start() {
  stopping_ = false;
  thread_ = std::thread([this] { run(); });
}

void Projector::stop() {
  {
    std::lock_guard lock(stop_mu_);
    stopping_ = true;
  }
  stop_cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void Projector::run() {
  std::vector<uint64_t> seen(log_.partition_count());
  while (!stopping_) {
    auto applied = step(kStepEventsMax);
    if (!applied.is_ok()) {
      std::lock_guard lock(mu_);
      failure_ = applied.status();
      applied_cv_.notify_all();
      return;  // a read model that cannot apply an event must not skip it
    }
    if (applied.value() > 0) {
      // Let events gather for a moment: one step then carries many events, instead of paying
      // a step's fixed cost for each commit. Bounds the lag added to 1 ms.
      std::unique_lock lock(stop_mu_);
      stop_cv_.wait_for(lock, std::chrono::milliseconds(1), [&] { return stopping_.load(); });
      continue;
    }
    for (uint32_t p = 0; p < log_.partition_count(); ++p) seen[p] = applied_[p];
    log_.wait_for_any_above(seen,
                            std::chrono::steady_clock::now() + std::chrono::milliseconds(100));
  }
}

uint64_t Projector::applied_offset(uint32_t partition) const {
  return partition < applied_.size() ? applied_[partition].load() : 0;
}

bool Projector::wait_for(const events::Position& position,
                         std::chrono::steady_clock::time_point deadline) {
  if (position.partition() >= applied_.size()) return false;
  std::unique_lock lock(mu_);
  return applied_cv_.wait_until(lock, deadline, [&] {
    return applied_[position.partition()] > position.offset() || !failure_.is_ok();
  }) && failure_.is_ok();
}

uint64_t Projector::lag() {
  uint64_t total = 0;
  for (uint32_t p = 0; p < log_.partition_count(); ++p) {
    uint64_t end = log_.end_offset(p);
    uint64_t applied = applied_[p];
    total += end > applied ? end - applied : 0;
  }
  return total;
}

Status Projector::failure() {
  std::lock_guard lock(mu_);
  return failure_;
}

namespace {

// Whether a key of the read models' families is theirs: every read-model row, and of the
// checkpoints only the projector's (the shared key, or an earlier version's "<model>\0" u32be
// with a model name of lower-case letters) — not those of others in that family, such as how
// far the Kafka log's copy has read.
bool is_read_model_key(Store::Family family, std::string_view key) {
  if (family == Store::Family::kReadModels || key == kCheckpointsKey) return true;
  if (key.size() < 6 || key[key.size() - 5] != '\0') return false;
  const std::string_view name = key.substr(0, key.size() - 5);
  return std::all_of(name.begin(), name.end(), [](char c) { return c >= 'a' && c <= 'z'; });
}

}  // namespace

Status clear_read_models(Store& store) {
  rocksdb::WriteBatch batch;
  for (auto family : {Store::Family::kReadModels, Store::Family::kCheckpoints}) {
    std::unique_ptr<rocksdb::Iterator> it(
        store.db()->NewIterator(rocksdb::ReadOptions(), store.family(family)));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      if (is_read_model_key(family, it->key().ToStringView()))
        batch.Delete(store.family(family), it->key()).PermitUncheckedError();
    }
    if (!it->status().ok()) return from_rocksdb(it->status());
  }
  return store.write(batch, /*sync=*/true);
}

Result<std::string> read_models_digest(Store& store) {
  EVP_MD_CTX* context = EVP_MD_CTX_new();
  EVP_DigestInit_ex(context, EVP_sha256(), nullptr);
  for (auto family : {Store::Family::kReadModels, Store::Family::kCheckpoints}) {
    std::unique_ptr<rocksdb::Iterator> it(
        store.db()->NewIterator(rocksdb::ReadOptions(), store.family(family)));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      if (!is_read_model_key(family, it->key().ToStringView())) continue;
      std::string lengths;
      put_u64_be(lengths, it->key().size());
      put_u64_be(lengths, it->value().size());
      EVP_DigestUpdate(context, lengths.data(), lengths.size());
      EVP_DigestUpdate(context, it->key().data(), it->key().size());
      EVP_DigestUpdate(context, it->value().data(), it->value().size());
    }
    if (!it->status().ok()) {
      EVP_MD_CTX_free(context);
      return from_rocksdb(it->status());
    }
  }
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_DigestFinal_ex(context, digest, &length);
  EVP_MD_CTX_free(context);
  return to_hex(std::string_view(reinterpret_cast<char*>(digest), length));
}

}  // namespace crm
