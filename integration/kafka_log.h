// The event log on Kafka (ARCHITECTURE.md, "Backends"): the topic `crm.events`, partitioned like
// the embedded log, is the system of record; every instance keeps a local copy of it — the
// embedded log in its own RocksDB, with aggregate state and idempotency keys — so reads, stream
// heads, verification and projections work as on the embedded log.
//
// Appending (to a partition this instance owns): the request is sealed against the local copy,
// then its events are produced to crm.events in ONE Kafka transaction by the partition's
// transactional producer (transactional.id = prefix + partition, so a new owner fences the old
// one), then stored locally. Each event is one record: key = partition key (customer id), value
// = the EventEnvelope; the append's side writes (aggregate state, idempotency keys) ride as
// `crm-side-write` headers of its records (a bounded share each), its last record marked
// `crm-append-end`, so that a copy rebuilt from crm.events — after a crash between the commit
// and the local write, or on another instance — holds them too. (An append of side writes only,
// the idempotency key of a command that changed nothing, stays local.)
//
// Following: one read_committed consumer reads every partition of crm.events from where the
// local copy stands (a checkpoint stored in the same RocksDB batch as the events it covers) and
// stores what this instance did not write itself, whole appends only. open() returns once the
// copy holds everything committed before it started; take() once it holds everything the
// partition's earlier owner committed.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "events/event_log.h"
#include "events/rocksdb_log.h"
#include "integration/kafka_client.h"

namespace crm {

struct KafkaLogOptions {
  kafka::ClientOptions client;
  std::string topic = "crm.events";
  int replication_factor = 3;  // for the topic, when it is created
  std::string transactional_id_prefix = "crm-events-";
  // Partitions this instance appends to (owns); the others it only follows.
  bool owns_all = true;
  std::vector<uint32_t> owned;  // when not owns_all
  std::chrono::milliseconds transaction_timeout{30000};
  std::chrono::milliseconds catch_up_timeout{60000};
};

class KafkaLog final : public EventLog {
 public:
  // Opens the local copy in `store` (partition count as RocksDbLog::open), reaches the brokers,
  // creates crm.events when missing (refuses one with another partition count), fences earlier
  // owners of the owned partitions, and catches the local copy up.
  static Result<std::unique_ptr<KafkaLog>> open(Store& store, uint32_t partition_count,
                                                const KafkaLogOptions& options);
  ~KafkaLog() override;

  uint32_t partition_count() const override { return local_->partition_count(); }
  Status writable(uint32_t partition) const override;
  // kUnavailable once following crm.events stopped (a record the local copy cannot take).
  Status health() const override;
  // kAborted, nothing stored, for a partition this instance does not own now, a transaction that
  // failed, and one whose outcome is unknown (the partition is then given up until taken again,
  // which settles it: see take()).
  Result<AppendResult> append(AppendRequest request) override;
  Result<std::vector<events::EventEnvelope>> read_partition(uint32_t partition,
                                                            uint64_t from_offset,
                                                            size_t max_events) override {
    return local_->read_partition(partition, from_offset, max_events);
  }
  Result<std::vector<events::EventEnvelope>> read_stream(const std::string& stream_id,
                                                         uint64_t from_version,
                                                         size_t max_events) override {
    return local_->read_stream(stream_id, from_version, max_events);
  }
  Result<StreamHead> stream_head(const std::string& stream_id) override {
    return local_->stream_head(stream_id);
  }
  uint64_t end_offset(uint32_t partition) const override { return local_->end_offset(partition); }
  bool wait_for_end_above(uint32_t partition, uint64_t end_offset,
                          std::chrono::steady_clock::time_point deadline) override {
    return local_->wait_for_end_above(partition, end_offset, deadline);
  }
  bool wait_for_any_above(const std::vector<uint64_t>& end_offsets,
                          std::chrono::steady_clock::time_point deadline) override {
    return local_->wait_for_any_above(end_offsets, deadline);
  }
  Result<api::VerifyReport> verify(size_t problems_max = 100) override {
    return local_->verify(problems_max);
  }
  Result<api::VerifyReport> verify_stream(const std::string& stream_id) override {
    return local_->verify_stream(stream_id);
  }
  Result<LogDigest> digest_now() override { return local_->digest_now(); }
  Result<LogDigest> digest_at(const std::vector<uint64_t>& end_offsets) override {
    return local_->digest_at(end_offsets);
  }

  RocksDbLog& local() { return *local_; }
  bool owns(uint32_t partition) const;
  // Takes a partition (ownership moved here through the consumer group): fences its earlier
  // owner with the partition's transactional id, then waits until the local copy holds all that
  // owner committed. Until it returns ok the partition is not writable here.
  Status take(uint32_t partition);
  // Gives a partition up; waits for a transaction to it in progress.
  void release(uint32_t partition);
  // Stops the follower thread (before what on_replicated calls goes away).
  void stop_following();
  // Called on the follower's thread with each batch of records it stored (some may have been
  // this copy's already): the engine learns of reference data another instance changed.
  void set_on_replicated(
      std::function<void(uint32_t partition, const std::vector<RocksDbLog::Replicated>&)> f);
  // Why following crm.events stopped (a record the local copy cannot take); ok while it runs.
  Status follower_status() const;
  // Records of crm.events committed but not yet in the local copy, over all partitions.
  int64_t lag() const;

 private:
  struct Kafka;
  KafkaLog(Store& store, std::unique_ptr<RocksDbLog> local, const KafkaLogOptions& options);
  Status start();
  void abandon(uint32_t partition, const std::string& why);
  Status publish(uint32_t partition, const std::vector<StreamAppend>& sealed,
                 const std::vector<SideWrite>& side_writes);
  void follow();
  // Waits until the local copy of every partition reaches `ends` (Kafka offsets).
  Status wait_caught_up(const std::vector<int64_t>& ends,
                        std::chrono::steady_clock::time_point deadline);

  Store& store_;
  std::unique_ptr<RocksDbLog> local_;
  KafkaLogOptions options_;
  std::unique_ptr<Kafka> kafka_;

  mutable std::mutex follow_mu_;
  std::condition_variable follow_cv_;
  std::vector<int64_t> followed_;  // per partition: the Kafka offset the local copy reached
  std::vector<int64_t> high_;      // per partition: the last known end of crm.events
  Status follower_status_;
  std::function<void(uint32_t, const std::vector<RocksDbLog::Replicated>&)> on_replicated_;
  std::atomic<bool> stopping_{false};
  std::thread follower_;
};

// The header value that carries one side write on a crm.events record, and back.
std::string encode_side_write(const SideWrite& write);
Result<SideWrite> decode_side_write(std::string_view bytes);

}  // namespace crm
