#include "workflow/engine.h"

#include "workflow/router.h"

namespace crm {

Engine::Engine(EventLog& log, Store& store, const Clock& clock, IdSource& ids,
               ProcessorOptions options)
    : log_(log), store_(store), reference_(store, handlers_) {
  for (uint32_t p = 0; p < log.partition_count(); ++p) {
    processors_.push_back(std::make_unique<PartitionProcessor>(p, log, store, handlers_, reference_,
                                                               clock, ids, options));
  }
}

Engine::~Engine() { shutdown(); }

std::future<CommandOutcome> Engine::submit(events::CommandEnvelope command) {
  uint32_t p = partition_for(command.partition_key(), log_.partition_count());
  return processors_[p]->submit(std::move(command));
}

Result<LoadedAggregate> Engine::read(const std::string& stream_type, const std::string& stream_id) {
  const AggregateHandler* handler = handlers_.find(stream_type);
  if (handler == nullptr) return Status::invalid_argument("unknown stream type " + stream_type);
  if (!handler->owns(stream_id)) {
    LoadedAggregate none;  // no stream of this type has that id: reads as never written
    none.state = handler->new_state();
    return none;
  }
  return load_aggregate(store_, *handler, stream_id);
}

void Engine::shutdown() {
  for (auto& processor : processors_) processor->shutdown();
}

size_t Engine::in_flight() {
  size_t total = 0;
  for (auto& processor : processors_) total += processor->queue_depth();
  return total;
}

}  // namespace crm
