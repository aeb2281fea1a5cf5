// Drives read models from the log. For each partition it reads events after the models'
// checkpoints and writes the models' updates together with their new checkpoints in one
// WriteBatch, so a crash at any point re-applies nothing twice and skips nothing (I7).
// Checkpoints are log offsets, never a separately allocated sequence.
#pragma once

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "events/event_log.h"
#include "events/rocksdb_store.h"
#include "projections/read_model.h"

namespace crm {

class Projector {
 public:
  Projector(EventLog& log, Store& store, std::vector<std::unique_ptr<ReadModel>> models);
  ~Projector();

  // Loads checkpoints. Must succeed before start() or catch_up().
  Status open();
  // Follows the log on a thread of its own until stop().
  void start();
  void stop();

  // Applies everything in the log now; for replay and tests.
  Status catch_up();

  // The offset up to which every model of `partition` is applied (exclusive).
  uint64_t applied_offset(uint32_t partition) const;
  // Waits until the models have applied the event at `position`.
  bool wait_for(const events::Position& position, std::chrono::steady_clock::time_point deadline);
  // Events in the log that the models have not applied yet, over all partitions.
  uint64_t lag();
  // The first error that stopped the projector, if any.
  Status failure();

 private:
  // Applies up to `max_events` of each partition in one batch with the checkpoints; returns
  // how many events it applied.
  Result<size_t> step(size_t max_events);
  void run();

  EventLog& log_;
  Store& store_;
  std::vector<std::unique_ptr<ReadModel>> models_;
  // checkpoints_[model][partition]: next offset the model needs.
  std::vector<std::vector<uint64_t>> checkpoints_;
  bool legacy_checkpoints_ = false;  // one key per model and partition, from an older version
  std::string other_checkpoints_;    // entries of the shared key for models not run here
  std::vector<std::atomic<uint64_t>> applied_;  // min over models, per partition

  std::mutex mu_;
  std::condition_variable applied_cv_;
  Status failure_;
  std::atomic<bool> stopping_{false};
  std::mutex stop_mu_;
  std::condition_variable stop_cv_;
  std::thread thread_;
};

// Wipes every read model and the projector's checkpoints so a Projector rebuilds them from
// position 0. Other checkpoints in that family (the Kafka log's copy) stay.
Status clear_read_models(Store& store);

// SHA-256 over every key and value of the read models and the projector's checkpoints, in key
// order: equal digests mean byte-identical read models.
Result<std::string> read_models_digest(Store& store);

}  // namespace crm
