// PartitionProcessor::Step, shared by the processor (which makes and finishes steps) and the
// ProcessorWorker (which appends what they decided): not for other code.
#pragma once

#include <string>
#include <unordered_map>
#include <vector>

#include "workflow/partition_processor.h"

namespace crm {

// One batch of commands between its decision and its reply: what the batch decided, the
// working state its commands saw, and the request the worker appends for it.
struct PartitionProcessor::Step {
  struct Reply {
    CommandOutcome outcome;
    int stream_index = -1;        // into request.streams when the command appended events
    std::string idempotency_key;  // set when this command's outcome must be remembered
    int same_as = -1;             // a repeat of a key used earlier in this batch
  };
  struct Owner {
    const AggregateHandler* handler;
    std::string partition_key;
  };
  std::vector<Pending> batch;
  std::vector<Reply> replies;
  std::unordered_map<std::string, LoadedAggregate> working;
  std::unordered_map<std::string, Owner> touched;  // streams changed by the batch
  AppendRequest request;
  bool must_write = false;  // events or idempotency keys to store: `request` is to be appended
  int64_t now_us = 0;
};

}  // namespace crm
