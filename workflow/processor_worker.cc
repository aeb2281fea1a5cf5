// ProcessorWorker: the thread that runs several partitions' processors, one write per round.
#include <memory>
#include <utility>
#include <vector>

#include "workflow/partition_processor.h"
#include "workflow/processor_step.h"

namespace crm {

ProcessorWorker::~ProcessorWorker() { shutdown(); }

void ProcessorWorker::add(PartitionProcessor* processor) { processors_.push_back(processor); }

void ProcessorWorker::start() {
  thread_ = std::thread([this] { run(); });
}

void ProcessorWorker::shutdown() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void ProcessorWorker::run() {
  struct Taken {
    PartitionProcessor* processor;
    std::vector<PartitionProcessor::Pending> batch;
  };
  std::vector<Taken> taken;
  for (;;) {
    taken.clear();
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return stopping_ || queued_ > 0; });
      if (queued_ == 0) return;  // stopping, and everything queued is done
      for (auto* processor : processors_) {
        auto& queue = processor->queue_;
        if (queue.empty()) continue;
        Taken next{processor, {}};
        while (!queue.empty() && next.batch.size() < processor->options_.batch_max) {
          next.batch.push_back(std::move(queue.front()));
          queue.pop_front();
          --queued_;
        }
        taken.push_back(std::move(next));
      }
    }
    // Decide every partition's batch, append what they decided in one write, then reply.
    std::vector<std::unique_ptr<PartitionProcessor::Step>> steps;
    std::vector<AppendRequest> requests;
    for (auto& [processor, batch] : taken) {
      if (processor->failed_) {  // stopped by a failed write since these were queued
        processor->refuse(batch, processor->stopped_status());
        steps.push_back(nullptr);
        continue;
      }
      if (processor->forget_cache_.exchange(false)) processor->cache_.clear();
      steps.push_back(processor->prepare(std::move(batch)));
      if (steps.back()->must_write) requests.push_back(std::move(steps.back()->request));
    }
    std::vector<Result<AppendResult>> appended;
    if (!requests.empty()) appended = log_.append_all(std::move(requests));
    size_t next_result = 0;
    for (size_t i = 0; i < taken.size(); ++i) {
      if (!steps[i]) continue;
      auto* result = steps[i]->must_write ? &appended[next_result++] : nullptr;
      taken[i].processor->finish(*steps[i], result);
    }
  }
}

}  // namespace crm
