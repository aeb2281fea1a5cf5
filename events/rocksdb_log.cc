#include "events/rocksdb_log.h"

#include <algorithm>
#include <unordered_map>

#include "events/codec.h"
#include "events/hash_chain.h"

namespace crm {
namespace {

constexpr char kPartitionCountKey[] = "partition_count";

std::string head_key(const std::string& stream_id) { return "h" + stream_id; }

std::string index_key(const std::string& stream_id, uint64_t version) {
  std::string key = "i" + stream_id;
  key.push_back('\0');
  put_u64_be(key, version);
  return key;
}

std::string encode_head(const StreamHead& head) {
  std::string out;
  put_u64_be(out, head.version);
  put_u32_be(out, head.position.partition());
  put_u64_be(out, head.position.offset());
  out += head.hash;
  return out;
}

}  // namespace

Result<StreamHead> decode_stream_head(const std::string& bytes) {
  if (bytes.size() < 20) return Status::corruption("stream head record too short");
  StreamHead head;
  head.version = get_u64_be(bytes);
  head.position.set_partition(get_u32_be(std::string_view(bytes).substr(8)));
  head.position.set_offset(get_u64_be(std::string_view(bytes).substr(12)));
  head.hash = bytes.substr(20);
  return head;
}

namespace {

Status check_stream_id(const std::string& stream_id) {
  if (stream_id.empty()) return Status::invalid_argument("stream id is empty");
  if (stream_id.find('\0') != std::string::npos)
    return Status::invalid_argument("stream id contains a NUL byte");
  return Status::ok();
}

}  // namespace

std::string log_key(uint32_t partition, uint64_t offset) {
  std::string key;
  put_u32_be(key, partition);
  put_u64_be(key, offset);
  return key;
}

Result<std::unique_ptr<RocksDbLog>> RocksDbLog::open(Store& store, uint32_t partition_count) {
  if (partition_count > 4096)
    return Status::invalid_argument("partition count must be between 1 and 4096 (0: as stored)");
  std::string stored;
  auto s = store.get(Store::Family::kMeta, kPartitionCountKey, &stored);
  if (s.is_ok()) {
    uint32_t existing = get_u32_be(stored);
    if (partition_count == 0) partition_count = existing;
    if (existing != partition_count) {
      return Status::invalid_argument(
          "Expected the data directory's " + std::to_string(existing) + " partitions, but " +
          std::to_string(partition_count) +
          " were configured: the partition count is fixed when the data directory is created");
    }
  } else if (s.code() == StatusCode::kNotFound) {
    if (partition_count == 0) partition_count = kDefaultPartitions;
    std::string value;
    put_u32_be(value, partition_count);
    auto w = store.write_durable([&](rocksdb::WriteBatch& batch) {
      batch.Put(store.family(Store::Family::kMeta), kPartitionCountKey, value)
          .PermitUncheckedError();
    });
    if (!w.is_ok()) return w;
  } else {
    return s;
  }

  std::unique_ptr<RocksDbLog> log(new RocksDbLog(store));
  std::unique_ptr<rocksdb::Iterator> it(
      store.db()->NewIterator(rocksdb::ReadOptions(), store.family(Store::Family::kLog)));
  for (uint32_t p = 0; p < partition_count; ++p) {
    auto partition = std::make_unique<Partition>();
    it->SeekForPrev(log_key(p, UINT64_MAX));
    if (it->Valid() && it->key().size() == 12 && get_u32_be(it->key().ToStringView()) == p) {
      partition->end_offset = get_u64_be(it->key().ToStringView().substr(4)) + 1;
    }
    log->partitions_.push_back(std::move(partition));
  }
  if (!it->status().ok()) return from_rocksdb(it->status());
  return log;
}

Result<AppendResult> RocksDbLog::append(AppendRequest request) {
  return append_published(std::move(request), nullptr);
}

Status RocksDbLog::seal(AppendRequest& request, Sealed& out) {
  out.partition = partitions_[request.partition].get();
  out.index = request.partition;
  uint64_t offset = out.partition->end_offset;
  for (auto& stream : request.streams) {
    if (auto s = check_stream_id(stream.stream_id); !s.is_ok()) return s;
    auto found = out.heads.find(stream.stream_id);
    if (found == out.heads.end()) {
      auto head = stream_head(stream.stream_id);
      if (!head.is_ok()) return head.status();
      found = out.heads.emplace(stream.stream_id, std::move(head.value())).first;
    }
    StreamHead& head = found->second;
    if (stream.expected_version != kAnyVersion && stream.expected_version != head.version) {
      return Status::conflict("Expected stream '" + stream.stream_id + "' at version " +
                              std::to_string(stream.expected_version) + ", but it is at version " +
                              std::to_string(head.version));
    }
    for (auto& event : stream.events) {
      event.set_stream_id(stream.stream_id);
      event.set_stream_version(++head.version);
      event.mutable_position()->set_partition(request.partition);
      event.mutable_position()->set_offset(offset++);
      hash_chain::seal(event, head.hash);
      head.hash = event.hash();
      head.position = event.position();
    }
  }
  if (request.side_writes) out.side_writes = request.side_writes(request.streams);
  for (const auto& stream : request.streams)
    for (const auto& event : stream.events) out.events.push_back(&event);
  out.end = offset;
  return Status::ok();
}

Result<AppendResult> RocksDbLog::append_published(AppendRequest request, const Publish& publish) {
  if (request.partition >= partitions_.size())
    return Status::invalid_argument("no partition " + std::to_string(request.partition));
  std::lock_guard append_lock(partitions_[request.partition]->append_mu);
  Sealed sealed;
  if (auto s = seal(request, sealed); !s.is_ok()) return s;
  if (publish) {
    if (auto s = publish(request.partition, request.streams, sealed.side_writes); !s.is_ok())
      return s;
  }
  if (auto s = store_sealed({&sealed}, /*durable=*/true); !s.is_ok()) return s;
  return AppendResult{std::move(request.streams)};
}

std::vector<Result<AppendResult>> RocksDbLog::append_all(std::vector<AppendRequest> requests) {
  std::vector<Result<AppendResult>> results(requests.size(), Status::internal("not appended"));
  // Append locks in partition order (two callers never wait on each other in a circle); a
  // partition named twice would need two seals against one head: those go one by one.
  std::vector<size_t> order(requests.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(),
            [&](size_t a, size_t b) { return requests[a].partition < requests[b].partition; });
  for (size_t k = 0; k < order.size(); ++k) {
    const uint32_t p = requests[order[k]].partition;
    if (p >= partitions_.size() || (k > 0 && requests[order[k - 1]].partition == p))
      return EventLog::append_all(std::move(requests));
  }
  std::vector<std::unique_lock<std::mutex>> locks;
  locks.reserve(order.size());
  for (size_t i : order) locks.emplace_back(partitions_[requests[i].partition]->append_mu);

  std::vector<Sealed> sealed(requests.size());
  std::vector<Sealed*> parts;
  std::vector<size_t> stored;  // requests whose events go into the write
  for (size_t i = 0; i < requests.size(); ++i) {
    if (auto s = seal(requests[i], sealed[i]); !s.is_ok()) {
      results[i] = s;
      continue;
    }
    parts.push_back(&sealed[i]);
    stored.push_back(i);
  }
  if (parts.empty()) return results;
  auto s = store_sealed(parts, /*durable=*/true);
  for (size_t i : stored) {
    if (s.is_ok()) {
      results[i] = AppendResult{std::move(requests[i].streams)};
    } else {
      results[i] = s;
    }
  }
  return results;
}

Status RocksDbLog::apply_replicated(uint32_t partition_index, const std::vector<Replicated>& events,
                                    const std::vector<SideWrite>& extra) {
  if (partition_index >= partitions_.size())
    return Status::invalid_argument("no partition " + std::to_string(partition_index));
  Partition& partition = *partitions_[partition_index];
  // A record this copy stored already must be the very event stored (two owners never wrote
  // one offset); read without the append lock, which a transaction in progress may hold.
  auto same_as_stored = [&](const events::EventEnvelope& event) -> Status {
    std::string stored;
    auto s = store_.get(Store::Family::kLog, log_key(partition_index, event.position().offset()),
                        &stored);
    if (!s.is_ok()) return s;
    events::EventEnvelope mine;
    if (!mine.ParseFromString(stored) || mine.hash() != event.hash())
      return Status::corruption("event " + std::to_string(partition_index) + ":" +
                                std::to_string(event.position().offset()) +
                                " differs from the one this copy stored there");
    return Status::ok();
  };
  // Only events stored already (this copy wrote them): the checkpoint moves, nothing else.
  const uint64_t stored_end = partition.end_offset;
  if (std::all_of(events.begin(), events.end(), [&](const Replicated& r) {
        return r.event.position().partition() == partition_index &&
               r.event.position().offset() < stored_end;
      })) {
    for (const auto& r : events)
      if (auto s = same_as_stored(r.event); !s.is_ok()) return s;
    rocksdb::WriteBatch batch;
    for (const auto& w : extra)
      batch.Put(store_.family(Store::Family::kCheckpoints), w.key, w.value).PermitUncheckedError();
    return store_.write(batch);
  }
  std::lock_guard append_lock(partition.append_mu);

  std::unordered_map<std::string, StreamHead> heads;
  std::vector<const events::EventEnvelope*> to_store;
  std::vector<SideWrite> side_writes;
  uint64_t offset = partition.end_offset;
  for (const auto& replicated : events) {
    const auto& event = replicated.event;
    const std::string where =
        std::to_string(partition_index) + ":" + std::to_string(event.position().offset());
    if (event.position().partition() != partition_index)
      return Status::corruption("event " + where + " names partition " +
                                std::to_string(event.position().partition()));
    if (event.position().offset() < offset) {  // stored already (this copy wrote it)
      if (auto s = same_as_stored(event); !s.is_ok()) return s;
      continue;
    }
    if (event.position().offset() > offset)
      return Status::corruption("expected the event at " + std::to_string(partition_index) + ":" +
                                std::to_string(offset) + " next, but got " + where);
    if (auto s = check_stream_id(event.stream_id()); !s.is_ok()) return s;
    auto found = heads.find(event.stream_id());
    if (found == heads.end()) {
      auto head = stream_head(event.stream_id());
      if (!head.is_ok()) return head.status();
      found = heads.emplace(event.stream_id(), std::move(head.value())).first;
    }
    StreamHead& head = found->second;
    if (event.stream_version() != head.version + 1 || event.previous_hash() != head.hash ||
        hash_chain::compute(event) != event.hash()) {
      return Status::corruption("event " + where + " of stream '" + event.stream_id() +
                                "' does not continue its chain at version " +
                                std::to_string(head.version));
    }
    head.version = event.stream_version();
    head.hash = event.hash();
    head.position = event.position();
    ++offset;
    to_store.push_back(&event);
    side_writes.insert(side_writes.end(), replicated.side_writes.begin(),
                       replicated.side_writes.end());
  }
  side_writes.insert(side_writes.end(), extra.begin(), extra.end());
  Sealed sealed{&partition,       partition_index,        std::move(to_store),
                std::move(heads), std::move(side_writes), offset};
  return store_sealed({&sealed}, /*durable=*/false);
}

Status RocksDbLog::store_sealed(const std::vector<Sealed*>& parts, bool durable) {
  auto* log_family = store_.family(Store::Family::kLog);
  auto* stream_family = store_.family(Store::Family::kStreams);
  auto family_of = [&](SideWrite::Table table) {
    switch (table) {
      case SideWrite::Table::kState:
        return store_.family(Store::Family::kState);
      case SideWrite::Table::kIdempotency:
        return store_.family(Store::Family::kIdempotency);
      case SideWrite::Table::kCheckpoint:
        break;
    }
    return store_.family(Store::Family::kCheckpoints);
  };
  // Encoded before the group commit's lock is taken: under it, only the puts.
  struct Put {
    rocksdb::ColumnFamilyHandle* family;
    std::string key, value;
  };
  std::vector<Put> puts;
  for (const Sealed* part : parts) {
    for (const auto* event : part->events) {
      Put log{log_family, log_key(part->index, event->position().offset()), {}};
      event->SerializeToString(&log.value);
      puts.push_back(std::move(log));
      Put index{stream_family, index_key(event->stream_id(), event->stream_version()), {}};
      put_u32_be(index.value, part->index);
      put_u64_be(index.value, event->position().offset());
      puts.push_back(std::move(index));
    }
    for (const auto& [stream_id, head] : part->heads)
      puts.push_back({stream_family, head_key(stream_id), encode_head(head)});
  }
  auto fill = [&](rocksdb::WriteBatch& batch) {
    for (const auto& put : puts) batch.Put(put.family, put.key, put.value).PermitUncheckedError();
    for (const Sealed* part : parts)
      for (const auto& w : part->side_writes)
        batch.Put(family_of(w.table), w.key, w.value).PermitUncheckedError();
  };
  Status s;
  if (durable) {
    s = store_.write_durable(fill);
  } else {
    rocksdb::WriteBatch batch;
    fill(batch);
    s = store_.write(batch);
  }
  if (!s.is_ok()) return s;
  {
    std::lock_guard wait_lock(wait_mu_);
    for (Sealed* part : parts) part->partition->end_offset = part->end;
  }
  wait_cv_.notify_all();
  return Status::ok();
}

Result<std::vector<events::EventEnvelope>> RocksDbLog::read_partition(uint32_t partition,
                                                                      uint64_t from_offset,
                                                                      size_t max_events) {
  if (partition >= partitions_.size())
    return Status::invalid_argument("no partition " + std::to_string(partition));
  std::vector<events::EventEnvelope> out;
  const uint64_t end = partitions_[partition]->end_offset;
  std::unique_ptr<rocksdb::Iterator> it(
      store_.db()->NewIterator(rocksdb::ReadOptions(), store_.family(Store::Family::kLog)));
  for (it->Seek(log_key(partition, from_offset)); it->Valid() && out.size() < max_events;
       it->Next()) {
    auto key = it->key().ToStringView();
    if (key.size() != 12 || get_u32_be(key) != partition) break;
    // Only what has been acknowledged: a reader never sees a batch before its writer returns.
    if (get_u64_be(key.substr(4)) >= end) break;
    events::EventEnvelope event;
    if (!event.ParseFromArray(it->value().data(), static_cast<int>(it->value().size())))
      return Status::corruption("unreadable event at " + std::to_string(partition) + ":" +
                                std::to_string(get_u64_be(key.substr(4))));
    out.push_back(std::move(event));
  }
  if (!it->status().ok()) return from_rocksdb(it->status());
  return out;
}

Result<std::vector<events::EventEnvelope>> RocksDbLog::read_stream(const std::string& stream_id,
                                                                   uint64_t from_version,
                                                                   size_t max_events) {
  if (auto s = check_stream_id(stream_id); !s.is_ok()) return s;
  std::vector<std::string> keys;
  std::string prefix = "i" + stream_id;
  prefix.push_back('\0');
  std::unique_ptr<rocksdb::Iterator> it(
      store_.db()->NewIterator(rocksdb::ReadOptions(), store_.family(Store::Family::kStreams)));
  for (it->Seek(index_key(stream_id, std::max<uint64_t>(from_version, 1)));
       it->Valid() && keys.size() < max_events; it->Next()) {
    if (!it->key().starts_with(prefix)) break;
    auto value = it->value().ToStringView();
    if (value.size() != 12) return Status::corruption("bad stream index entry for " + stream_id);
    keys.push_back(log_key(get_u32_be(value), get_u64_be(value.substr(4))));
  }
  if (!it->status().ok()) return from_rocksdb(it->status());

  std::vector<events::EventEnvelope> out;
  out.reserve(keys.size());
  for (const auto& key : keys) {
    std::string value;
    auto s = store_.get(Store::Family::kLog, key, &value);
    if (!s.is_ok()) {
      return Status::corruption("stream '" + stream_id +
                                "' indexes an event missing from the log: " + s.message());
    }
    events::EventEnvelope event;
    if (!event.ParseFromString(value))
      return Status::corruption("unreadable event in stream '" + stream_id + "'");
    out.push_back(std::move(event));
  }
  return out;
}

Result<StreamHead> RocksDbLog::stream_head(const std::string& stream_id) {
  std::string value;
  auto s = store_.get(Store::Family::kStreams, head_key(stream_id), &value);
  if (s.code() == StatusCode::kNotFound) return StreamHead{};
  if (!s.is_ok()) return s;
  return decode_stream_head(value);
}

uint64_t RocksDbLog::end_offset(uint32_t partition) const {
  return partition < partitions_.size() ? partitions_[partition]->end_offset.load() : 0;
}

bool RocksDbLog::wait_for_end_above(uint32_t partition, uint64_t end_offset,
                                    std::chrono::steady_clock::time_point deadline) {
  if (partition >= partitions_.size()) return false;
  std::unique_lock lock(wait_mu_);
  return wait_cv_.wait_until(
      lock, deadline, [&] { return partitions_[partition]->end_offset.load() > end_offset; });
}

bool RocksDbLog::wait_for_any_above(const std::vector<uint64_t>& end_offsets,
                                    std::chrono::steady_clock::time_point deadline) {
  std::unique_lock lock(wait_mu_);
  return wait_cv_.wait_until(lock, deadline, [&] {
    for (size_t p = 0; p < partitions_.size() && p < end_offsets.size(); ++p) {
      if (partitions_[p]->end_offset.load() > end_offsets[p]) return true;
    }
    return false;
  });
}

}  // namespace crm
