#include "workflow/partition_processor.h"

#include <algorithm>
#include <functional>
#include <map>
#include <unordered_map>
#include <unordered_set>

#include "aggregates/approval/policies.h"
#include "aggregates/catalog/catalog.h"
#include "events/codec.h"
#include "workflow/processor_step.h"
#include "workflow/ready_outcome.h"
#include "workflow/router.h"

namespace crm {
namespace {

constexpr int kFollowUpDepthMax = 4;

struct Applied {
  Status status;
  std::optional<Rejection> rejection;
  int stream_index = -1;  // into the batch's appends, when the command appended events
};

std::string idempotency_table_key(const events::CommandEnvelope& command) {
  std::string key = command.actor().principal_id();
  key.push_back('\0');
  key += command.idempotency_key();
  return key;
}

// The command's kind: the name of its body's field (register_customer, submit_order, …).
std::string command_type(const events::CommandEnvelope& command) {
  const auto* field = events::CommandEnvelope::descriptor()->FindFieldByNumber(
      static_cast<int>(command.body_case()));
  return field ? field->name() : "unknown";
}

std::shared_ptr<google::protobuf::Message> clone(const google::protobuf::Message& message) {
  std::shared_ptr<google::protobuf::Message> copy(message.New());
  copy->CopyFrom(message);
  return copy;
}

}  // namespace

std::string timer_key(int64_t due_us, const std::string& stream_id, const std::string& name) {
  std::string key = kTimerPrefix;
  put_u64_be(key, static_cast<uint64_t>(due_us));
  key += stream_id;
  key.push_back('\0');
  key += name;
  return key;
}

std::string snapshot_key(const std::string& stream_id, uint64_t version) {
  std::string key = kSnapshotPrefix + stream_id;
  key.push_back('\0');
  put_u64_be(key, version);
  return key;
}

Result<LoadedAggregate> load_aggregate(Store& store, const AggregateHandler& handler,
                                       const std::string& stream_id) {
  LoadedAggregate aggregate;
  aggregate.state = handler.new_state();
  std::string bytes;
  auto s = store.get(Store::Family::kState, stream_id, &bytes);
  if (s.code() == StatusCode::kNotFound) return aggregate;
  if (!s.is_ok()) return s;
  events::AggregateRecord record;
  if (!record.ParseFromString(bytes) || !record.state().UnpackTo(aggregate.state.get()))
    return Status::corruption("unreadable state of stream '" + stream_id + "'");
  aggregate.version = record.version();
  aggregate.last_hash = record.last_hash();
  aggregate.position = record.position();
  aggregate.max_occurred_us = record.max_occurred_us();
  return aggregate;
}

Result<LoadedAggregate*> PartitionProcessor::load_working(
    std::unordered_map<std::string, LoadedAggregate>& working, const AggregateHandler& handler,
    const std::string& stream_id) {
  auto found = working.find(stream_id);
  if (found != working.end()) return &found->second;
  auto* cached = cache_.find(stream_id);
  if (options_.metrics) options_.metrics->aggregate_cache(cached != nullptr);
  if (cached) return &working.emplace(stream_id, *cached).first->second;
  auto loaded = load_aggregate(store_, handler, stream_id);
  if (!loaded.is_ok()) return loaded.status();
  return &working.emplace(stream_id, std::move(loaded.value())).first->second;
}

PartitionProcessor::PartitionProcessor(uint32_t partition, EventLog& log, Store& store,
                                       const HandlerRegistry& handlers, ReferenceData& reference,
                                       const Clock& clock, IdSource& ids, ProcessorOptions options,
                                       ProcessorWorker* worker)
    : partition_(partition),
      log_(log),
      store_(store),
      handlers_(handlers),
      reference_(reference),
      clock_(clock),
      ids_(ids),
      options_(options),
      cache_(options.cache_entries_max) {
  if (worker == nullptr) {
    own_worker_ = std::make_unique<ProcessorWorker>(log);
    worker = own_worker_.get();
  }
  worker_ = worker;
  worker_->add(this);
  if (own_worker_) own_worker_->start();
}

PartitionProcessor::~PartitionProcessor() { shutdown(); }

Status PartitionProcessor::stopped_status() const {
  return Status::unavailable("partition " + std::to_string(partition_) +
                             " stopped after a failed write; restart the engine");
}

void PartitionProcessor::refuse(std::vector<Pending>& batch, const Status& status) {
  for (auto& pending : batch) {
    CommandOutcome outcome;
    outcome.status = status;
    record(pending.command, outcome, pending.queued);
    pending.reply.set_value(std::move(outcome));
  }
}

std::future<CommandOutcome> PartitionProcessor::submit(events::CommandEnvelope command) {
  std::unique_lock lock(worker_->mu_);
  if (failed_) return ready_outcome(stopped_status());
  if (stopping_ || worker_->stopping_)
    return ready_outcome(Status::unavailable("the engine is shutting down"));
  if (queue_.size() >= options_.queue_max) {
    if (options_.metrics) options_.metrics->command_refused(command_type(command));
    return ready_outcome(Status::resource_exhausted("partition " + std::to_string(partition_) +
                                                    " has " + std::to_string(queue_.size()) +
                                                    " commands in flight, its limit"));
  }
  queue_.push_back(Pending{std::move(command), {}, std::chrono::steady_clock::now()});
  ++worker_->queued_;
  auto future = queue_.back().reply.get_future();
  lock.unlock();
  worker_->cv_.notify_one();
  return future;
}

void PartitionProcessor::shutdown() {
  {
    std::lock_guard lock(worker_->mu_);
    stopping_ = true;
  }
  if (own_worker_) own_worker_->shutdown();
}

size_t PartitionProcessor::queue_depth() {
  std::lock_guard lock(worker_->mu_);
  return queue_.size();
}

std::unique_ptr<PartitionProcessor::Step> PartitionProcessor::prepare(
    std::vector<Pending> pending) {
  auto step = std::make_unique<Step>();
  Step& st = *step;
  st.batch = std::move(pending);
  auto& batch = st.batch;
  st.replies.resize(batch.size());
  auto& replies = st.replies;
  auto& working = st.working;
  auto& touched = st.touched;
  auto& request = st.request;
  std::unordered_map<std::string, size_t> keys_in_batch;
  request.partition = partition_;
  st.now_us = clock_.now_us();
  const int64_t now_us = st.now_us;

  // Reads for decisions: the catalog, and streams of this partition as this batch left them.
  class BatchContext final : public DecideContext {
   public:
    BatchContext(PartitionProcessor& p, std::unordered_map<std::string, LoadedAggregate>& working)
        : p_(p), working_(working) {}
    Result<std::shared_ptr<const catalog::Catalog>> catalog() override {
      return p_.reference_.catalog();
    }
    Result<std::shared_ptr<const approval::ApprovalPolicies>> policies() override {
      return p_.reference_.policies();
    }
    Result<std::shared_ptr<const google::protobuf::Message>> state(
        const std::string& stream_type, const std::string& stream_id) override {
      const AggregateHandler* handler = p_.handlers_.find(stream_type);
      if (handler == nullptr) return Status::invalid_argument("unknown stream type " + stream_type);
      if (!handler->owns(stream_id))
        return std::shared_ptr<const google::protobuf::Message>(handler->new_state());
      auto loaded = p_.load_working(working_, *handler, stream_id);
      if (!loaded.is_ok()) return loaded.status();
      return std::shared_ptr<const google::protobuf::Message>((*loaded)->state);
    }

   private:
    PartitionProcessor& p_;
    std::unordered_map<std::string, LoadedAggregate>& working_;
  };
  BatchContext context(*this, working);

  // Streams the current command made `touched` for the first time: forgotten if it is undone.
  std::vector<std::string> newly_touched;

  // Decides one command against the batch's working state and queues its events; then its
  // follow-ups, recursively. Every stream changed is saved in `savepoint` before it changes.
  std::function<Applied(const events::CommandEnvelope&, const AggregateHandler&, int,
                        std::unordered_map<std::string, LoadedAggregate>&)>
      apply = [&](const events::CommandEnvelope& command, const AggregateHandler& handler,
                  int depth,
                  std::unordered_map<std::string, LoadedAggregate>& savepoint) -> Applied {
    Applied result;
    auto loaded = load_working(working, handler, command.stream_id());
    if (!loaded.is_ok()) {
      result.status = loaded.status();
      return result;
    }
    LoadedAggregate& aggregate = **loaded;
    if (command.has_expected_version() && command.expected_version() != aggregate.version) {
      result.rejection =
          Rejection{Rejection::Kind::kVersionMismatch,
                    "stream.version_mismatch",
                    "Expected '" + command.stream_id() + "' at version " +
                        std::to_string(command.expected_version()) + ", but it is at version " +
                        std::to_string(aggregate.version),
                    {}};
      return result;
    }
    auto decided = handler.decide(*aggregate.state, command, context);
    if (!decided.status.is_ok()) {
      result.status = std::move(decided.status);
      return result;
    }
    if (decided.rejection) {
      result.rejection = std::move(decided.rejection);
      return result;
    }
    if (decided.events.empty()) return result;
    savepoint.try_emplace(command.stream_id(), aggregate);
    StreamAppend append{command.stream_id(), aggregate.version, {}, command.partition_key()};
    auto next = clone(*aggregate.state);
    const int64_t occurred_at_us = timestamp_to_us(command.issued_at());
    for (auto& event : decided.events) {
      events::EventEnvelope envelope;
      envelope.set_event_id(ids_.next("evt_"));
      envelope.set_stream_type(command.stream_type());
      envelope.set_event_type(event->GetDescriptor()->full_name());
      envelope.set_schema_version(kEventSchemaVersion);
      envelope.set_writer_version(kWriterVersion);
      *envelope.mutable_occurred_at() = command.issued_at();
      *envelope.mutable_recorded_at() = timestamp_from_us(now_us);
      *envelope.mutable_actor() = command.actor();
      envelope.set_correlation_id(command.correlation_id());
      envelope.set_causation_id(command.command_id());
      envelope.mutable_data()->PackFrom(*event);
      handler.evolve(*next, *event, ++aggregate.version, occurred_at_us);
      aggregate.max_occurred_us = std::max(aggregate.max_occurred_us, occurred_at_us);
      append.events.push_back(std::move(envelope));
    }
    aggregate.state = std::move(next);
    if (!touched.count(command.stream_id())) newly_touched.push_back(command.stream_id());
    touched.insert_or_assign(command.stream_id(), Step::Owner{&handler, command.partition_key()});
    result.stream_index = static_cast<int>(request.streams.size());
    request.streams.push_back(std::move(append));

    for (const auto& follow_up : decided.follow_ups) {
      const AggregateHandler* other = handlers_.find(follow_up.stream_type());
      if (other == nullptr || !other->owns(follow_up.stream_id()) || depth >= kFollowUpDepthMax ||
          partition_for(follow_up.partition_key(), log_.partition_count()) != partition_) {
        result.status =
            Status::internal("follow-up of " + command.command_id() +
                             " cannot be decided in partition " + std::to_string(partition_));
        return result;
      }
      Applied chained = apply(follow_up, *other, depth + 1, savepoint);
      if (!chained.status.is_ok() || chained.rejection) {
        result.status = std::move(chained.status);
        result.rejection = std::move(chained.rejection);
        return result;
      }
    }
    return result;
  };

  for (size_t i = 0; i < batch.size(); ++i) {
    const events::CommandEnvelope& command = batch[i].command;
    Step::Reply& reply = replies[i];
    CommandOutcome& out = reply.outcome;
    out.stream_id = command.stream_id();

    const AggregateHandler* handler = handlers_.find(command.stream_type());
    if (handler == nullptr) {
      out.rejection =
          Rejection{Rejection::Kind::kInvalid,
                    "command.stream_type",
                    "Expected a known stream type, but got '" + command.stream_type() + "'",
                    {}};
      continue;
    }
    if (!handler->owns(command.stream_id())) {
      out.rejection = Rejection{Rejection::Kind::kNotFound,
                                "command.stream_id",
                                "No " + command.stream_type() + " '" + command.stream_id() + "'",
                                {}};
      continue;
    }

    if (!command.idempotency_key().empty()) {
      std::string key = idempotency_table_key(command);
      if (auto it = keys_in_batch.find(key); it != keys_in_batch.end()) {
        reply.same_as = static_cast<int>(it->second);
        continue;
      }
      std::string bytes;
      auto s = store_.get(Store::Family::kIdempotency, key, &bytes);
      if (s.is_ok()) {
        events::IdempotencyRecord record;
        if (!record.ParseFromString(bytes)) {
          out.status = Status::corruption("unreadable idempotency record");
          continue;
        }
        if (now_us - timestamp_to_us(record.recorded_at()) <= options_.idempotency_retention_us) {
          if (record.request_hash() != command.request_hash()) {
            out.rejection = Rejection{Rejection::Kind::kConflict,
                                      "idempotency.key_reused",
                                      "Expected Idempotency-Key '" + command.idempotency_key() +
                                          "' to come with the same request as its first use, "
                                          "but this request differs",
                                      {}};
            continue;
          }
          auto state = handler->new_state();
          record.state().UnpackTo(state.get());
          out.version = record.version();
          out.position = record.position();
          out.stream_id = record.stream_id();
          out.state = std::move(state);
          out.repeated = true;
          continue;
        }
      } else if (s.code() != StatusCode::kNotFound) {
        out.status = s;
        continue;
      }
      keys_in_batch.emplace(key, i);
      reply.idempotency_key = std::move(key);
    }

    // Everything this command changes is saved first, so that a refused follow-up undoes it.
    std::unordered_map<std::string, LoadedAggregate> savepoint;
    const size_t streams_before = request.streams.size();
    newly_touched.clear();
    Applied applied = apply(command, *handler, 0, savepoint);
    if (!applied.status.is_ok() || applied.rejection) {
      for (auto& [stream_id, before] : savepoint) working[stream_id] = std::move(before);
      for (const auto& stream_id : newly_touched) touched.erase(stream_id);
      request.streams.erase(request.streams.begin() + static_cast<std::ptrdiff_t>(streams_before),
                            request.streams.end());
      out.status = std::move(applied.status);
      out.rejection = std::move(applied.rejection);
      if (!out.status.is_ok()) {
        keys_in_batch.erase(reply.idempotency_key);
        reply.idempotency_key.clear();
        continue;
      }
    } else {
      reply.stream_index = applied.stream_index;
    }
    const LoadedAggregate& aggregate = working.at(command.stream_id());
    if (out.rejection) {
      keys_in_batch.erase(reply.idempotency_key);  // a refused command does not use up its key
      reply.idempotency_key.clear();
      continue;
    }
    out.version = aggregate.version;
    out.position = aggregate.position;  // replaced by the last event's position once sealed
    out.state = aggregate.state;
  }

  st.must_write = !request.streams.empty() ||
                  std::any_of(replies.begin(), replies.end(),
                              [](const Step::Reply& r) { return !r.idempotency_key.empty(); });
  if (st.must_write) {
    request.side_writes = [this, &st](const std::vector<StreamAppend>& sealed) {
      auto& replies = st.replies;
      auto& working = st.working;
      const auto& batch = st.batch;
      for (auto& reply : replies) {
        if (reply.stream_index < 0) continue;
        reply.outcome.position = sealed[reply.stream_index].events.back().position();
      }
      for (const auto& stream : sealed) {
        auto& aggregate = working.at(stream.stream_id);
        aggregate.last_hash = stream.events.back().hash();
        aggregate.position = stream.events.back().position();
      }
      std::vector<SideWrite> writes;
      std::map<std::string, uint64_t> appended;  // events of each stream in this step
      for (const auto& stream : sealed) appended[stream.stream_id] += stream.events.size();
      for (const auto& [stream_id, owner] : st.touched) {
        const auto& aggregate = working.at(stream_id);
        events::AggregateRecord record;
        record.set_stream_id(stream_id);
        record.set_version(aggregate.version);
        record.set_last_hash(aggregate.last_hash);
        *record.mutable_position() = aggregate.position;
        record.mutable_state()->PackFrom(*aggregate.state);
        record.set_max_occurred_us(aggregate.max_occurred_us);
        writes.push_back({SideWrite::Table::kState, stream_id, record.SerializeAsString()});
        const uint64_t every = options_.snapshot_every;
        if (every > 0 &&
            aggregate.version / every != (aggregate.version - appended[stream_id]) / every)
          writes.push_back({SideWrite::Table::kState, snapshot_key(stream_id, aggregate.version),
                            record.SerializeAsString()});
        // Timers the state waits on, kept with it; one that is already written stays as it is.
        for (const auto& [due_us, name] : owner.handler->timers(*aggregate.state)) {
          events::Timer timer;
          timer.set_stream_id(stream_id);
          timer.set_stream_type(owner.handler->stream_type());
          timer.set_partition_key(owner.partition_key);
          timer.set_name(name);
          *timer.mutable_due_at() = timestamp_from_us(due_us);
          writes.push_back({SideWrite::Table::kState, timer_key(due_us, stream_id, name),
                            timer.SerializeAsString()});
        }
      }
      for (const auto& reply : replies) {
        if (reply.idempotency_key.empty()) continue;
        events::IdempotencyRecord record;
        record.set_request_hash(batch[&reply - replies.data()].command.request_hash());
        record.set_stream_id(reply.outcome.stream_id);
        record.set_version(reply.outcome.version);
        *record.mutable_position() = reply.outcome.position;
        record.mutable_state()->PackFrom(*reply.outcome.state);
        *record.mutable_recorded_at() = timestamp_from_us(st.now_us);
        writes.push_back(
            {SideWrite::Table::kIdempotency, reply.idempotency_key, record.SerializeAsString()});
      }
      return writes;
    };
  }
  return step;
}

void PartitionProcessor::finish(Step& st, Result<AppendResult>* appended) {
  auto& batch = st.batch;
  auto& replies = st.replies;
  auto& working = st.working;
  if (st.must_write) {
    if (!appended->is_ok() && (appended->status().code() == StatusCode::kAborted ||
                               appended->status().code() == StatusCode::kConflict)) {
      // Nothing was stored: a log on Kafka lost the partition or its transaction failed, or
      // (a conflict) another instance wrote the partition since this cache was filled. The
      // batch is refused, the cache dropped (read again from the log's copy), the partition
      // goes on.
      cache_.clear();
      refuse(batch, Status::aborted(appended->status().message()));
      return;
    }
    if (!appended->is_ok()) {
      failed_ = true;  // log and state may disagree with the cache: stop, recover by restart
      refuse(batch, Status::unavailable("partition " + std::to_string(partition_) +
                                        " stopped: " + appended->status().message()));
      return;
    }
    for (auto& reply : replies) {
      if (reply.stream_index >= 0)
        reply.outcome.events = std::move((*appended)->sealed[reply.stream_index].events);
    }
  }

  if (st.touched.count(catalog::kStreamId)) {
    reference_.publish(std::static_pointer_cast<const catalog::Catalog>(
        std::shared_ptr<const google::protobuf::Message>(working.at(catalog::kStreamId).state)));
  }
  if (st.touched.count(approval::kStreamId)) {
    reference_.publish(std::static_pointer_cast<const approval::ApprovalPolicies>(
        std::shared_ptr<const google::protobuf::Message>(working.at(approval::kStreamId).state)));
  }
  for (auto& [stream_id, aggregate] : working) cache_.put(stream_id, std::move(aggregate));
  for (size_t i = 0; i < batch.size(); ++i) {
    Step::Reply& reply = replies[i];
    if (reply.same_as >= 0) {
      const Step::Reply& first = replies[reply.same_as];
      if (first.outcome.status.is_ok() && !first.outcome.rejection &&
          batch[reply.same_as].command.request_hash() == batch[i].command.request_hash()) {
        reply.outcome = first.outcome;
        reply.outcome.events.clear();
        reply.outcome.repeated = true;
      } else if (!first.outcome.status.is_ok() || first.outcome.rejection) {
        reply.outcome.status =
            Status::unavailable("the first use of this Idempotency-Key failed; retry");
      } else {
        reply.outcome.rejection = Rejection{
            Rejection::Kind::kConflict,
            "idempotency.key_reused",
            "Expected Idempotency-Key '" + batch[i].command.idempotency_key() +
                "' to come with the same request as its first use, but this request differs",
            {}};
      }
    }
  }
  for (size_t i = 0; i < batch.size(); ++i) {
    record(batch[i].command, replies[i].outcome, batch[i].queued);
    batch[i].reply.set_value(std::move(replies[i].outcome));
  }
}

void PartitionProcessor::record(const events::CommandEnvelope& command,
                                const CommandOutcome& outcome,
                                std::chrono::steady_clock::time_point queued) {
  if (!options_.metrics) return;
  const char* result = !outcome.status.is_ok() ? "failed"
                       : outcome.rejection     ? "rejected"
                       : outcome.repeated      ? "repeated"
                                               : "accepted";
  options_.metrics->command_done(
      command_type(command), result,
      std::chrono::duration<double>(std::chrono::steady_clock::now() - queued).count());
}

}  // namespace crm
