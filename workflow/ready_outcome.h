// An outcome known at once, for a command refused before a partition processor decided it:
// its future, already fulfilled.
#pragma once

#include <future>
#include <utility>

#include "workflow/partition_processor.h"

namespace crm {

inline std::future<CommandOutcome> ready_outcome(CommandOutcome outcome) {
  std::promise<CommandOutcome> promise;
  promise.set_value(std::move(outcome));
  return promise.get_future();
}

inline std::future<CommandOutcome> ready_outcome(Status status) {
  CommandOutcome outcome;
  outcome.status = std::move(status);
  return ready_outcome(std::move(outcome));
}

}  // namespace crm
