// The embedded event log (the default backend): the EventLog contract over the Store's column
// families. Key layout (big-endian numbers so keys sort in log order):
//   log:     partition(4) offset(8)                  -> EventEnvelope
//   streams: 'h' stream_id                           -> head: version(8) partition(4) offset(8)
//   hash
//            'i' stream_id '\0' version(8)           -> partition(4) offset(8)
//   meta:    "partition_count"                       -> count(4)
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "events/event_log.h"
#include "events/rocksdb_store.h"

namespace crm {

class RocksDbLog final : public EventLog {
 public:
  // Opens the log in `store`. The partition count is fixed when the data directory is created;
  // opening it with another count is refused; 0 takes the stored count (kDefaultPartitions for
  // a new data directory).
  static constexpr uint32_t kDefaultPartitions = 8;
  static Result<std::unique_ptr<RocksDbLog>> open(Store& store, uint32_t partition_count);

  uint32_t partition_count() const override { return static_cast<uint32_t>(partitions_.size()); }
  Result<AppendResult> append(AppendRequest request) override;
  // One synced WriteBatch for every partition's events: one fsync, whatever their number.
  std::vector<Result<AppendResult>> append_all(std::vector<AppendRequest> requests) override;

  // append(), with `publish` called once the request is sealed and its side writes known, and
  // before anything is stored: a log that replicates elsewhere first (Kafka) writes there; when
  // publish fails, nothing is stored and its status is returned.
  using Publish = std::function<Status(uint32_t partition, const std::vector<StreamAppend>& sealed,
                                       const std::vector<SideWrite>& side_writes)>;
  Result<AppendResult> append_published(AppendRequest request, const Publish& publish);

  // Stores events sealed by another copy of the log (read back from Kafka), in one atomic step
  // with their side writes and `extra` (the copy's checkpoint). Events must continue the
  // partition (an offset already stored is skipped, with its side writes: they are older than
  // what is stored) and their streams' chains; anything else is kCorruption and stores nothing.
  struct Replicated {
    events::EventEnvelope event;
    std::vector<SideWrite> side_writes;  // stored with the event (those of its append)
  };
  Status apply_replicated(uint32_t partition, const std::vector<Replicated>& events,
                          const std::vector<SideWrite>& extra);
  Result<std::vector<events::EventEnvelope>> read_partition(uint32_t partition,
                                                            uint64_t from_offset,
                                                            size_t max_events) override;
  Result<std::vector<events::EventEnvelope>> read_stream(const std::string& stream_id,
                                                         uint64_t from_version,
                                                         size_t max_events) override;
  Result<StreamHead> stream_head(const std::string& stream_id) override;
  uint64_t end_offset(uint32_t partition) const override;
  bool wait_for_end_above(uint32_t partition, uint64_t end_offset,
                          std::chrono::steady_clock::time_point deadline) override;
  bool wait_for_any_above(const std::vector<uint64_t>& end_offsets,
                          std::chrono::steady_clock::time_point deadline) override;

  Store& store() { return store_; }

  // Tamper evidence (I8): recomputes every stream's hash chain from the log, walking each
  // partition in offset order, and checks the log against the stream index and heads. Finds a
  // changed byte (hash mismatch or unreadable event), a deleted event (offset gap, version
  // gap, an index entry naming nothing), reordered events (out-of-order versions, an event
  // stored at a position other than the index's) and a truncated log (a head beyond the last
  // event). Keeps at most `problems_max` problems, the first one found first; at most one per
  // stream. Reads a consistent snapshot; safe while serving.
  Result<api::VerifyReport> verify(size_t problems_max = 100) override;
  // The same checks for one stream only (its events through the stream index).
  Result<api::VerifyReport> verify_stream(const std::string& stream_id) override;
  Result<LogDigest> digest_now() override;
  Result<LogDigest> digest_at(const std::vector<uint64_t>& end_offsets) override;

 private:
  struct Partition {
    std::mutex append_mu;  // one append at a time per partition: offsets stay in order
    std::atomic<uint64_t> end_offset{0};
  };

  explicit RocksDbLog(Store& store) : store_(store) {}
  // One partition's part of a write: its events (sealed), the stream heads they leave, the
  // side writes stored with them, and the partition's end offset after them.
  struct Sealed {
    Partition* partition = nullptr;
    uint32_t index = 0;
    std::vector<const events::EventEnvelope*> events;
    std::unordered_map<std::string, StreamHead> heads;
    std::vector<SideWrite> side_writes;
    uint64_t end = 0;
  };
  // Gives the request's events their versions, positions and hashes after what is stored
  // (kConflict on an expected version not met) and asks it for its side writes. The caller
  // holds the partition's append lock.
  Status seal(AppendRequest& request, Sealed& out);
  // Stores the parts (events, stream index and heads, side writes) in ONE atomic WriteBatch,
  // synced when durable, then moves their partitions' ends. The caller holds their append locks.
  Status store_sealed(const std::vector<Sealed*>& parts, bool durable);

  Store& store_;
  std::vector<std::unique_ptr<Partition>> partitions_;
  std::mutex wait_mu_;
  std::condition_variable wait_cv_;
};

std::string log_key(uint32_t partition, uint64_t offset);
// A stream head record of the streams family ('h' keys), as the layout above says.
Result<StreamHead> decode_stream_head(const std::string& bytes);

}  // namespace crm
