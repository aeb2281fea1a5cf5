// The write side as one object: a partition processor per partition of the log, and the
// router in front of them. Commands go in through submit(); reads of a single aggregate come
// straight from the state column family (always as fresh as the last acknowledged command).
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "workflow/aggregate_handler.h"
#include "workflow/partition_processor.h"

namespace crm {

class Engine {
 public:
  Engine(EventLog& log, Store& store, const Clock& clock, IdSource& ids,
         ProcessorOptions options = {});
  ~Engine();

  // Routes by command.partition_key(). The future is always fulfilled. A command for a partition
  // this instance cannot write (a log on Kafka owned elsewhere) goes to the forwarder when one is
  // set, else it is refused (kUnavailable, naming why).
  std::future<CommandOutcome> submit(events::CommandEnvelope command);
  // As submit(), but never forwarded: for commands forwarded here by other instances.
  std::future<CommandOutcome> submit_local(events::CommandEnvelope command);
  using Forwarder = std::function<std::future<CommandOutcome>(events::CommandEnvelope command,
                                                              uint32_t partition)>;
  // Set before commands arrive (App::open), not changed after.
  void set_forwarder(Forwarder forwarder) { forwarder_ = std::move(forwarder); }
  // The partition was written elsewhere while this instance did not own it: its processor drops
  // its cached aggregates.
  void partition_taken(uint32_t partition) { processors_.at(partition)->forget_cache(); }

  Result<LoadedAggregate> read(const std::string& stream_type, const std::string& stream_id);
  // The aggregate as it stood at `as_of_us`: folded from its stream's events up to the first
  // that occurred later (version 0: it did not exist yet). Costs the events of that stream.
  Result<LoadedAggregate> read_as_of(const std::string& stream_type, const std::string& stream_id,
                                     int64_t as_of_us);

  // Fires every timer due by the clock (an approval step's time limit): each as a command to its
  // stream, with the timer's key as Idempotency-Key, so that it takes effect once even when a
  // crash comes between firing and forgetting it. Returns how many fired.
  Result<size_t> fire_due_timers();
  // Fires due timers every `interval` on a thread of its own, until shutdown().
  // (`digest_interval` > 0: also records the log's digest that often.)
  void start_timers(std::chrono::milliseconds interval,
                    std::chrono::milliseconds digest_interval = std::chrono::milliseconds(0));
  // Records the log's digest now (tamper evidence over time), unless nothing but the last
  // digest was written since it. True when one was recorded.
  Result<bool> record_digest();

  // Stops taking commands, finishes the queued ones.
  void shutdown();

  uint32_t partition_count() const { return log_.partition_count(); }
  size_t in_flight();
  size_t queue_depth(uint32_t partition) { return processors_.at(partition)->queue_depth(); }
  EventLog& log() { return log_; }
  Store& store() { return store_; }
  const HandlerRegistry& handlers() const { return handlers_; }
  // Reference data every partition reads (the catalog), as of the last acknowledged change.
  ReferenceData& reference() { return reference_; }

 private:
  EventLog& log_;
  Store& store_;
  const Clock& clock_;
  IdSource& ids_;
  HandlerRegistry handlers_;
  ReferenceData reference_;
  std::vector<std::unique_ptr<ProcessorWorker>> workers_;  // outlive the processors they run
  std::vector<std::unique_ptr<PartitionProcessor>> processors_;
  Forwarder forwarder_;
  std::mutex timers_mu_;
  std::condition_variable timers_cv_;
  bool timers_stopping_ = false;
  std::thread timers_;
};

// The digest an auditor kept, recomputed from `log`'s events at the cut it was recorded with
// (kNotFound: no such digest was recorded).
Result<api::DigestCheck> check_digest(EventLog& log, const std::string& digest_hex);

}  // namespace crm
