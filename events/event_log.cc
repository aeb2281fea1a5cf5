#include "events/event_log.h"

namespace crm {

std::vector<Result<AppendResult>> EventLog::append_all(std::vector<AppendRequest> requests) {
  std::vector<Result<AppendResult>> results;
  results.reserve(requests.size());
  for (auto& request : requests) results.push_back(append(std::move(request)));
  return results;
}

Result<std::vector<events::EventEnvelope>> Subscription::next(size_t max_events,
                                                              std::chrono::milliseconds timeout) {
  if (!log_.wait_for_end_above(partition_, next_offset_,
                               std::chrono::steady_clock::now() + timeout)) {
    return std::vector<events::EventEnvelope>{};
  }
  auto events = log_.read_partition(partition_, next_offset_, max_events);
  if (!events.is_ok()) return events.status();
  if (!events.value().empty()) next_offset_ = events.value().back().position().offset() + 1;
  return events;
}

Status read_whole_stream(EventLog& log, const std::string& stream_id,
                         std::vector<events::EventEnvelope>& out) {
  constexpr size_t kPage = 1000;
  for (uint64_t next = 1;;) {
    auto page = log.read_stream(stream_id, next, kPage);
    if (!page.is_ok()) return page.status();
    for (auto& e : page.value()) out.push_back(std::move(e));
    if (page->size() < kPage) return Status::ok();
    next += page->size();
  }
}

}  // namespace crm
