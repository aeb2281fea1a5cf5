// The single writer of one partition (invariant I3). It takes commands from a bounded queue,
// and for each: answers repeats of an idempotency key from the persistent key table, checks
// the expected version, runs the aggregate's pure decide(), folds the events with evolve(),
// then appends every command of the batch in ONE atomic step — events, aggregate state and
// idempotency keys together (I6) — and replies only once that step is durable (I5).
// If a step fails to commit, the partition stops: log and state must never diverge; a
// restart recovers from what was committed.
#pragma once

#include <google/protobuf/message.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>

#include "aggregates/rejection.h"
#include "command.pb.h"
#include "events/clock.h"
#include "events/event_log.h"
#include "events/rocksdb_store.h"
#include "events/version.h"
#include "workflow/aggregate_handler.h"
#include "workflow/lru_cache.h"
#include "workflow/reference_data.h"

namespace crm {

struct CommandOutcome {
  Status status;                       // not ok: the command was not processed (retry later)
  std::optional<Rejection> rejection;  // a domain refusal; nothing was stored
  std::string stream_id;
  uint64_t version = 0;       // the stream's version after the command
  events::Position position;  // of the command's last event (or the stream's head)
  std::shared_ptr<const google::protobuf::Message> state;  // the aggregate after the command
  std::vector<events::EventEnvelope> events;  // what this command appended (empty on a repeat)
  bool repeated = false;                      // answered from the idempotency table
};

struct ProcessorOptions {
  size_t queue_max = 4096;  // queued commands beyond this are refused (429)
  size_t batch_max = 512;   // commands per partition and atomic step
  // The Engine's threads deciding commands, the partitions shared out among them (at most one
  // per partition). 0: chosen for the log (App: 1 on the embedded log, one per partition on
  // Kafka; the Engine alone takes it as 1).
  uint32_t threads = 0;
  size_t cache_entries_max = 100000;  // aggregates kept in memory (the Engine's: all partitions)
  int64_t idempotency_retention_us = StoreOptions::kIdempotencyRetentionUs;
  FollowUpRules follow_ups;        // the parameters of the rules that open follow-up tasks
  uint64_t snapshot_every = 1000;  // events between snapshots of a stream; 0: none
  Metrics* metrics = nullptr;      // commands by type and outcome, cache hits; none when null
};

// A loaded aggregate: its state and where its stream stands.
struct LoadedAggregate {
  std::shared_ptr<google::protobuf::Message> state;
  uint64_t version = 0;
  std::string last_hash;
  events::Position position;
  int64_t max_occurred_us = 0;  // the latest occurred time of the events folded in
};

// Timers live in the state column family beside the aggregates, ordered by due time:
// "timer/" u64be(due µs) stream_id "\0" name -> events::Timer. No stream id starts with it.
inline constexpr char kTimerPrefix[] = "timer/";
std::string timer_key(int64_t due_us, const std::string& stream_id, const std::string& name);

// Snapshots of long streams, for as-of reads: the aggregate each time its stream passes a
// multiple of ProcessorOptions::snapshot_every events, kept beside the state:
// "snapshot/" stream_id "\0" u64be(version) -> events::AggregateRecord.
inline constexpr char kSnapshotPrefix[] = "snapshot/";
std::string snapshot_key(const std::string& stream_id, uint64_t version);

// Reads an aggregate's stored state (the state column family), or a new empty one.
Result<LoadedAggregate> load_aggregate(Store& store, const AggregateHandler& handler,
                                       const std::string& stream_id);

class ProcessorWorker;

class PartitionProcessor {
 public:
  // Runs on `worker` beside other partitions' processors (the worker is started once they are
  // all made), or on a worker of its own when none is given.
  PartitionProcessor(uint32_t partition, EventLog& log, Store& store,
                     const HandlerRegistry& handlers, ReferenceData& reference, const Clock& clock,
                     IdSource& ids, ProcessorOptions options, ProcessorWorker* worker = nullptr);
  ~PartitionProcessor();

  // Queues a command; the future is fulfilled once its outcome is durable. Refuses at once
  // (kUnavailable) when the queue is full, the partition stopped, or shutdown began.
  std::future<CommandOutcome> submit(events::CommandEnvelope command);

  // Refuses new commands; on a worker of its own, also finishes every queued one and stops it.
  // (A shared worker finishes them when it is shut down.)
  void shutdown();

  size_t queue_depth();
  // Drops the cached aggregates before the next command: another instance wrote this partition
  // (its log on Kafka) while this one did not own it.
  void forget_cache() { forget_cache_ = true; }
  bool failed() const { return failed_; }

 private:
  struct Pending {
    events::CommandEnvelope command;
    std::promise<CommandOutcome> reply;
    std::chrono::steady_clock::time_point queued;
  };
  friend class ProcessorWorker;
  struct Step;
  void record(const events::CommandEnvelope& command, const CommandOutcome& outcome,
              std::chrono::steady_clock::time_point queued);
  // Answers every command of the batch with `status`: nothing of it was stored.
  void refuse(std::vector<Pending>& batch, const Status& status);
  Status stopped_status() const;
  // Decides a batch against the cache and the store; the step says what to append, if anything.
  std::unique_ptr<Step> prepare(std::vector<Pending> batch);
  // Replies to the step's commands once its append's outcome is known (null: nothing appended).
  void finish(Step& step, Result<AppendResult>* appended);
  // The stream's aggregate as this batch sees it: from the batch, the cache or the store.
  Result<LoadedAggregate*> load_working(std::unordered_map<std::string, LoadedAggregate>& working,
                                        const AggregateHandler& handler,
                                        const std::string& stream_id);

  const uint32_t partition_;
  EventLog& log_;
  Store& store_;
  const HandlerRegistry& handlers_;
  ReferenceData& reference_;
  const Clock& clock_;
  IdSource& ids_;
  const ProcessorOptions options_;

  std::unique_ptr<ProcessorWorker> own_worker_;  // when none was given
  ProcessorWorker* worker_;
  std::deque<Pending> queue_;  // guarded by the worker's mutex, like stopping_
  bool stopping_ = false;
  std::atomic<bool> failed_{false};
  std::atomic<bool> forget_cache_{false};
  LruCache<LoadedAggregate> cache_;  // the worker's thread alone uses it
};

// The thread that runs the batches of one or more partitions' processors. Each round it takes
// what every one of them has queued, decides each partition's batch, and appends them all with
// ONE EventLog::append_all — one synced write, however many partitions had commands — then
// replies. Fewer threads than partitions means bigger writes and fewer hand-offs.
class ProcessorWorker {
 public:
  explicit ProcessorWorker(EventLog& log) : log_(log) {}
  ~ProcessorWorker();
  ProcessorWorker(const ProcessorWorker&) = delete;
  ProcessorWorker& operator=(const ProcessorWorker&) = delete;

  // Starts the thread, once every processor that runs on this worker is made.
  void start();
  // Finishes every queued command, then stops the thread.
  void shutdown();

 private:
  friend class PartitionProcessor;
  void add(PartitionProcessor* processor);
  void run();

  EventLog& log_;
  std::vector<PartitionProcessor*> processors_;
  std::mutex mu_;  // guards every processor's queue
  std::condition_variable cv_;
  size_t queued_ = 0;  // commands queued over all the processors
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace crm
