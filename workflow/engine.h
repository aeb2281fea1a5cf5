// The write side as one object: a partition processor per partition of the log, and the
// router in front of them. Commands go in through submit(); reads of a single aggregate come
// straight from the state column family (always as fresh as the last acknowledged command).
#pragma once

#include <future>
#include <memory>
#include <vector>

#include "workflow/aggregate_handler.h"
#include "workflow/partition_processor.h"

namespace crm {

class Engine {
 public:
  Engine(EventLog& log, Store& store, const Clock& clock, IdSource& ids,
         ProcessorOptions options = {});
  ~Engine();

  // Routes by command.partition_key(). The future is always fulfilled.
  std::future<CommandOutcome> submit(events::CommandEnvelope command);

  Result<LoadedAggregate> read(const std::string& stream_type, const std::string& stream_id);

  // Stops taking commands, finishes the queued ones.
  void shutdown();

  uint32_t partition_count() const { return log_.partition_count(); }
  size_t in_flight();
  EventLog& log() { return log_; }
  Store& store() { return store_; }
  const HandlerRegistry& handlers() const { return handlers_; }
  // Reference data every partition reads (the catalog), as of the last acknowledged change.
  ReferenceData& reference() { return reference_; }

 private:
  EventLog& log_;
  Store& store_;
  HandlerRegistry handlers_;
  ReferenceData reference_;
  std::vector<std::unique_ptr<PartitionProcessor>> processors_;
};

}  // namespace crm
