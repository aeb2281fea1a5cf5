#include "workflow/engine.h"

#include <google/protobuf/util/time_util.h>

#include <algorithm>

#include "aggregates/audit/digests.h"
#include "events/codec.h"
#include "workflow/ready_outcome.h"
#include "workflow/router.h"

namespace crm {

Engine::Engine(EventLog& log, Store& store, const Clock& clock, IdSource& ids,
               ProcessorOptions options)
    : log_(log),
      store_(store),
      clock_(clock),
      ids_(ids),
      handlers_(options.follow_ups),
      reference_(store, handlers_) {
  // The cache bound is the engine's: shared out among the partitions.
  ProcessorOptions each = options;
  each.cache_entries_max = std::max<size_t>(1, options.cache_entries_max / log.partition_count());
  // The partitions are shared out among the worker threads, each writing its share at once.
  const uint32_t threads = std::clamp<uint32_t>(options.threads, 1, log.partition_count());
  for (uint32_t t = 0; t < threads; ++t) workers_.push_back(std::make_unique<ProcessorWorker>(log));
  for (uint32_t p = 0; p < log.partition_count(); ++p) {
    processors_.push_back(std::make_unique<PartitionProcessor>(
        p, log, store, handlers_, reference_, clock, ids, each, workers_[p % threads].get()));
  }
  for (auto& worker : workers_) worker->start();
}

Engine::~Engine() { shutdown(); }

std::future<CommandOutcome> Engine::submit(events::CommandEnvelope command) {
  const uint32_t p = partition_for(command.partition_key(), log_.partition_count());
  if (forwarder_ && !log_.writable(p).is_ok()) return forwarder_(std::move(command), p);
  return submit_local(std::move(command));
}

std::future<CommandOutcome> Engine::submit_local(events::CommandEnvelope command) {
  const uint32_t p = partition_for(command.partition_key(), log_.partition_count());
  // Refused before it is decided: a partition another instance owns is not this one's to write.
  if (auto s = log_.writable(p); !s.is_ok()) return ready_outcome(std::move(s));
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

Result<LoadedAggregate> Engine::read_as_of(const std::string& stream_type,
                                           const std::string& stream_id, int64_t as_of_us) {
  const AggregateHandler* handler = handlers_.find(stream_type);
  if (handler == nullptr) return Status::invalid_argument("unknown stream type " + stream_type);
  LoadedAggregate out;
  out.state = handler->new_state();
  if (!handler->owns(stream_id)) return out;
  // Start from the latest snapshot whose every event occurred by then: the fold from the first
  // event would have taken all of them.
  uint64_t next = 1;
  {
    std::unique_ptr<rocksdb::Iterator> it(
        store_.db()->NewIterator(rocksdb::ReadOptions(), store_.family(Store::Family::kState)));
    std::string prefix = kSnapshotPrefix + stream_id;
    prefix.push_back('\0');
    for (it->SeekForPrev(snapshot_key(stream_id, UINT64_MAX));
         it->Valid() && it->key().starts_with(prefix); it->Prev()) {
      events::AggregateRecord record;
      if (!record.ParseFromArray(it->value().data(), static_cast<int>(it->value().size())))
        return Status::corruption("unreadable snapshot of stream '" + stream_id + "'");
      if (record.max_occurred_us() > as_of_us) continue;
      if (!record.state().UnpackTo(out.state.get()))
        return Status::corruption("unreadable snapshot of stream '" + stream_id + "'");
      out.version = record.version();
      out.last_hash = record.last_hash();
      out.position = record.position();
      out.max_occurred_us = record.max_occurred_us();
      next = record.version() + 1;
      break;
    }
    if (!it->status().ok()) return from_rocksdb(it->status());
  }
  constexpr size_t kPage = 512;
  for (;;) {
    auto page = log_.read_stream(stream_id, next, kPage);
    if (!page.is_ok()) return page.status();
    for (const auto& e : page.value()) {
      const int64_t occurred_us = timestamp_to_us(e.occurred_at());
      if (occurred_us > as_of_us) return out;
      auto event = unpack_event(e.data());
      if (event == nullptr)
        return Status::corruption("unknown event type " + e.event_type() + " in stream '" +
                                  stream_id + "'");
      handler->evolve(*out.state, *event, e.stream_version(), occurred_us);
      out.version = e.stream_version();
      out.last_hash = e.hash();
      out.position = e.position();
    }
    if (page->size() < kPage) return out;
    next += page->size();
  }
}

Result<size_t> Engine::fire_due_timers() {
  const int64_t now_us = clock_.now_us();
  std::string end = kTimerPrefix;
  put_u64_be(end, static_cast<uint64_t>(now_us) + 1);
  struct Due {
    std::string key;
    events::Timer timer;
  };
  std::vector<Due> due;
  {
    rocksdb::ReadOptions options;
    std::unique_ptr<rocksdb::Iterator> it(
        store_.db()->NewIterator(options, store_.family(Store::Family::kState)));
    for (it->Seek(kTimerPrefix); it->Valid() && it->key().compare(end) < 0; it->Next()) {
      Due d{it->key().ToString(), {}};
      if (!d.timer.ParseFromArray(it->value().data(), static_cast<int>(it->value().size())))
        return Status::corruption("unreadable timer");
      due.push_back(std::move(d));
    }
    if (!it->status().ok()) return from_rocksdb(it->status());
  }
  // Timers of partitions this instance does not write are their owner's to fire.
  due.erase(std::remove_if(due.begin(), due.end(),
                           [&](const Due& d) {
                             return !log_.writable(partition_for(d.timer.partition_key(),
                                                                 log_.partition_count()))
                                         .is_ok();
                           }),
            due.end());
  std::vector<std::future<CommandOutcome>> outcomes;
  for (const auto& d : due) {
    events::CommandEnvelope command;
    command.set_command_id(ids_.next("cmd_"));
    command.set_stream_id(d.timer.stream_id());
    command.set_stream_type(d.timer.stream_type());
    command.set_partition_key(d.timer.partition_key());
    command.mutable_actor()->set_principal_id("engine");
    command.mutable_actor()->set_role("timer");
    command.set_correlation_id(command.command_id());
    *command.mutable_issued_at() = timestamp_from_us(now_us);
    command.set_idempotency_key(to_hex(d.key));
    command.set_request_hash(sha256(d.key));
    command.mutable_timer_fired()->set_name(d.timer.name());
    *command.mutable_timer_fired()->mutable_due_at() = d.timer.due_at();
    outcomes.push_back(submit_local(std::move(command)));
  }
  size_t fired = 0;
  rocksdb::WriteBatch forget;
  for (size_t i = 0; i < due.size(); ++i) {
    auto outcome = outcomes[i].get();
    if (!outcome.status.is_ok()) continue;  // not decided: it fires again next time
    forget.Delete(store_.family(Store::Family::kState), due[i].key).PermitUncheckedError();
    ++fired;
    // A timer that fired to no effect wrote no state, so it set no timers either: set those the
    // state now waits on (after a change of the follow-up rules, say), or nothing would.
    const AggregateHandler* handler = handlers_.find(due[i].timer.stream_type());
    if (!outcome.events.empty() || outcome.rejection || !outcome.state || handler == nullptr)
      continue;
    for (const auto& [due_us, name] : handler->timers(*outcome.state)) {
      const std::string key = timer_key(due_us, due[i].timer.stream_id(), name);
      if (key == due[i].key) continue;
      events::Timer timer = due[i].timer;
      timer.set_name(name);
      *timer.mutable_due_at() = timestamp_from_us(due_us);
      forget.Put(store_.family(Store::Family::kState), key, timer.SerializeAsString())
          .PermitUncheckedError();
    }
  }
  if (fired > 0) {
    if (auto s = store_.write(forget); !s.is_ok()) return s;
  }
  return fired;
}

void Engine::start_timers(std::chrono::milliseconds interval,
                          std::chrono::milliseconds digest_interval) {
  timers_ = std::thread([this, interval, digest_interval] {
    // One interval after start, then every interval (each skipped when nothing is new).
    auto next_digest = std::chrono::steady_clock::now() + digest_interval;
    std::unique_lock lock(timers_mu_);
    while (!timers_cv_.wait_for(lock, interval, [&] { return timers_stopping_; })) {
      lock.unlock();
      (void)fire_due_timers();  // a failure is retried on the next tick
      if (digest_interval.count() > 0 && std::chrono::steady_clock::now() >= next_digest) {
        (void)record_digest();  // likewise
        next_digest = std::chrono::steady_clock::now() + digest_interval;
      }
      lock.lock();
    }
  });
}

Result<bool> Engine::record_digest() {
  // The instance that writes the digests' partition records them, from its copy of the log.
  if (!log_.writable(partition_for(audit::kStreamId, log_.partition_count())).is_ok()) return false;
  auto digest = log_.digest_now();
  if (!digest.is_ok()) return digest.status();
  auto last = read(kAuditStream, audit::kStreamId);
  if (!last.is_ok()) return last.status();
  const auto& digests = static_cast<const audit::Digests&>(*last->state);
  if (digests.last_end_offsets_size() == static_cast<int>(digest->end_offsets.size())) {
    uint64_t written = 0;  // since the last digest
    for (size_t p = 0; p < digest->end_offsets.size(); ++p)
      written += digest->end_offsets[p] - digests.last_end_offsets(static_cast<int>(p));
    if (written <= 1) return false;  // at most the last digest's own event
  }
  events::CommandEnvelope command;
  command.set_command_id(ids_.next("cmd_"));
  command.set_stream_id(audit::kStreamId);
  command.set_stream_type(kAuditStream);
  command.set_partition_key(audit::kStreamId);
  command.mutable_actor()->set_principal_id("engine");
  command.mutable_actor()->set_role("digest");
  command.set_correlation_id(command.command_id());
  *command.mutable_issued_at() = timestamp_from_us(clock_.now_us());
  command.set_idempotency_key("digest/" + digest->digest);
  command.set_request_hash(sha256(digest->digest));
  auto* body = command.mutable_record_digest();
  for (uint64_t end : digest->end_offsets) body->add_end_offsets(end);
  body->set_digest(digest->digest);
  body->set_streams(digest->streams);
  auto outcome = submit_local(std::move(command)).get();
  if (!outcome.status.is_ok()) return outcome.status;
  if (outcome.rejection) return Status::invalid_argument(outcome.rejection->message);
  return !outcome.events.empty();
}

Result<api::DigestCheck> check_digest(EventLog& log, const std::string& digest_hex) {
  api::DigestCheck check;
  check.set_digest(digest_hex);
  std::vector<events::EventEnvelope> recorded;
  if (auto s = read_whole_stream(log, audit::kStreamId, recorded); !s.is_ok()) return s;
  for (const auto& e : recorded) {
    audit::LogDigestRecorded digest;
    if (!e.data().UnpackTo(&digest) || digest.digest() != digest_hex) continue;
    std::vector<uint64_t> cut(digest.end_offsets().begin(), digest.end_offsets().end());
    auto recomputed = log.digest_at(cut);
    if (!recomputed.is_ok()) return recomputed.status();
    check.set_recorded_at(google::protobuf::util::TimeUtil::ToString(e.occurred_at()));
    std::string text;
    for (size_t p = 0; p < cut.size(); ++p)
      text += (p ? "," : "") + std::to_string(p) + ":" + std::to_string(cut[p]);
    check.set_cut(text);
    check.set_recomputed(recomputed->digest);
    check.set_ok(recomputed->digest == digest_hex);
    return check;
  }
  return Status::not_found("No digest " + digest_hex + " was recorded");
}

void Engine::shutdown() {
  {
    std::lock_guard lock(timers_mu_);
    timers_stopping_ = true;
  }
  timers_cv_.notify_all();
  if (timers_.joinable()) timers_.join();
  for (auto& processor : processors_) processor->shutdown();
  for (auto& worker : workers_) worker->shutdown();  // after the queued commands are done
}

size_t Engine::in_flight() {
  size_t total = 0;
  for (auto& processor : processors_) total += processor->queue_depth();
  return total;
}

}  // namespace crm
