// EventLog: the ordered, durable, partitioned log of events — the system of record.
//
// Promises, for every implementation (tests/events/log_contract_test.cc holds them to it):
// - append() is atomic: all of a request's events and side writes are stored, or none.
// - append() returns only once the request is durable (fsync'd / committed).
// - A stream's events get versions 1, 2, 3… with no gaps; an append whose expected version
//   does not match the stream's current version is refused with kConflict and stores nothing.
// - Each partition's offsets are 0, 1, 2… in append order; reading a partition from any offset
//   returns the events in that order, and subscribers see every event once, in order.
// - Every event is sealed into its stream's hash chain (hash_chain.h) by the log.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "api.pb.h"
#include "envelope.pb.h"
#include "events/status.h"

namespace crm {

inline constexpr uint64_t kAnyVersion = std::numeric_limits<uint64_t>::max();
inline constexpr uint64_t kNoStream = 0;  // expected version of a stream that must not exist yet

struct StreamAppend {
  std::string stream_id;
  uint64_t expected_version = kAnyVersion;
  // The log fills in stream_id, stream_version, position, previous_hash and hash; the caller
  // sets everything else (type, data, times, actor, ids).
  std::vector<events::EventEnvelope> events;
  // What the stream is partitioned by (a customer id); a log on Kafka keys its records with it.
  // Empty: the stream id.
  std::string partition_key = {};
};

// A key/value written in the same atomic step as the events: aggregate state, idempotency keys,
// and (for a replicated log) where its copy stands in the source.
struct SideWrite {
  enum class Table { kState, kIdempotency, kCheckpoint };
  Table table;
  std::string key;
  std::string value;
};

struct AppendRequest {
  uint32_t partition = 0;
  std::vector<StreamAppend> streams;
  // Called once the events are sealed (versions, positions and hashes known) and before they
  // are committed, to produce the side writes that must commit with them. May be empty.
  std::function<std::vector<SideWrite>(const std::vector<StreamAppend>& sealed)> side_writes;
};

struct AppendResult {
  std::vector<StreamAppend> sealed;  // the request's streams with every field filled in
};

struct StreamHead {
  uint64_t version = 0;  // 0: no such stream
  std::string hash;      // hash of the stream's last event
  events::Position position;
};

// The combined hash of every stream's head at a cut of the log (audit.proto says how).
struct LogDigest {
  std::vector<uint64_t> end_offsets;  // the cut: per partition, the offset after its last event
  std::string digest;                 // hex
  uint64_t streams = 0;
};

class EventLog {
 public:
  virtual ~EventLog() = default;

  virtual uint32_t partition_count() const = 0;

  // Whether this instance may append to `partition` now (a log on Kafka appends only to the
  // partitions its instance owns); kUnavailable says why not.
  virtual Status writable(uint32_t /*partition*/) const { return Status::ok(); }
  // Whether the log works (a log on Kafka: whether it still follows the topic), for readiness.
  virtual Status health() const { return Status::ok(); }

  // Durable, atomic append to one partition. kConflict on a version mismatch (nothing stored),
  // kAborted when the write was abandoned and nothing of it stored (a log on Kafka: the
  // partition is not owned here now, or its transaction failed) — the caller may go on —,
  // kUnavailable if the log has failed and must be reopened.
  virtual Result<AppendResult> append(AppendRequest request) = 0;
  // Appends to several partitions, each named at most once, as one durable write where the log
  // can (the embedded log: one synced WriteBatch for all); each request gets the result
  // append() would give it. This one appends them one by one.
  virtual std::vector<Result<AppendResult>> append_all(std::vector<AppendRequest> requests);

  // Up to `max_events` events of `partition` from `from_offset` on, in offset order.
  virtual Result<std::vector<events::EventEnvelope>> read_partition(uint32_t partition,
                                                                    uint64_t from_offset,
                                                                    size_t max_events) = 0;

  // Up to `max_events` events of one stream from `from_version` (≥ 1) on, in version order.
  virtual Result<std::vector<events::EventEnvelope>> read_stream(const std::string& stream_id,
                                                                 uint64_t from_version,
                                                                 size_t max_events) = 0;

  virtual Result<StreamHead> stream_head(const std::string& stream_id) = 0;

  // The offset the next event of `partition` will get (= number of events in it).
  virtual uint64_t end_offset(uint32_t partition) const = 0;

  // Blocks until end_offset(partition) > end_offset or the deadline passes; true if it did.
  virtual bool wait_for_end_above(uint32_t partition, uint64_t end_offset,
                                  std::chrono::steady_clock::time_point deadline) = 0;

  // Blocks until some partition p has end_offset(p) > end_offsets[p], or the deadline passes.
  virtual bool wait_for_any_above(const std::vector<uint64_t>& end_offsets,
                                  std::chrono::steady_clock::time_point deadline) = 0;
  // Tamper evidence (I8): every stream's hash chain recomputed from what the log stores, and
  // the log's own order; or one stream's (kNotFound when it does not exist).
  virtual Result<api::VerifyReport> verify(size_t problems_max = 100) = 0;
  virtual Result<api::VerifyReport> verify_stream(const std::string& stream_id) = 0;
  // The digest at the log's end now (one consistent view), and the digest recomputed from the
  // stored events before `end_offsets` (kInvalidArgument when the cut is not the log's).
  virtual Result<LogDigest> digest_now() = 0;
  virtual Result<LogDigest> digest_at(const std::vector<uint64_t>& end_offsets) = 0;
};

// Every event of `stream_id`, in version order, appended to `out` (read in pages).
Status read_whole_stream(EventLog& log, const std::string& stream_id,
                         std::vector<events::EventEnvelope>& out);

// Reads one partition in order from a position, waiting for new events: what projections and
// integrators use to follow the log.
class Subscription {
 public:
  Subscription(EventLog& log, uint32_t partition, uint64_t from_offset)
      : log_(log), partition_(partition), next_offset_(from_offset) {}

  // The next events (at most max_events), waiting up to `timeout` when there are none.
  Result<std::vector<events::EventEnvelope>> next(size_t max_events,
                                                  std::chrono::milliseconds timeout);
  uint64_t next_offset() const { return next_offset_; }

 private:
  EventLog& log_;
  uint32_t partition_;
  uint64_t next_offset_;
};

}  // namespace crm
