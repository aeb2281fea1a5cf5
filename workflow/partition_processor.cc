#include "workflow/partition_processor.h"

#include <algorithm>
#include <unordered_map>
#include <unordered_set>

#include "events/codec.h"

namespace crm {
namespace {

std::string idempotency_table_key(const events::CommandEnvelope& command) {
  std::string key = command.actor().principal_id();
  key.push_back('\0');
  key += command.idempotency_key();
  return key;
}

std::future<CommandOutcome> ready(Status status) {
  std::promise<CommandOutcome> promise;
  CommandOutcome outcome;
  outcome.status = std::move(status);
  promise.set_value(std::move(outcome));
  return promise.get_future();
}

std::shared_ptr<google::protobuf::Message> clone(const google::protobuf::Message& message) {
  std::shared_ptr<google::protobuf::Message> copy(message.New());
  copy->CopyFrom(message);
  return copy;
}

}  // namespace

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
  return aggregate;
}

PartitionProcessor::PartitionProcessor(uint32_t partition, EventLog& log, Store& store,
                                       const HandlerRegistry& handlers, const Clock& clock,
                                       IdSource& ids, ProcessorOptions options)
    : partition_(partition),
      log_(log),
      store_(store),
      handlers_(handlers),
      clock_(clock),
      ids_(ids),
      options_(options),
      cache_(options.cache_entries_max) {
  thread_ = std::thread([this] { run(); });
}

PartitionProcessor::~PartitionProcessor() { shutdown(); }

std::future<CommandOutcome> PartitionProcessor::submit(events::CommandEnvelope command) {
  std::unique_lock lock(mu_);
  if (failed_) {
    return ready(Status::unavailable("partition " + std::to_string(partition_) +
                                     " stopped after a failed write; restart the engine"));
  }
  if (stopping_) return ready(Status::unavailable("the engine is shutting down"));
  if (queue_.size() >= options_.queue_max) {
    return ready(Status::resource_exhausted("partition " + std::to_string(partition_) + " has " +
                                            std::to_string(queue_.size()) +
                                            " commands in flight, its limit"));
  }
  queue_.push_back(Pending{std::move(command), {}});
  auto future = queue_.back().reply.get_future();
  lock.unlock();
  cv_.notify_one();
  return future;
}

void PartitionProcessor::shutdown() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

size_t PartitionProcessor::queue_depth() {
  std::lock_guard lock(mu_);
  return queue_.size();
}

void PartitionProcessor::run() {
  std::vector<Pending> batch;
  for (;;) {
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, and everything queued is done
      while (!queue_.empty() && batch.size() < options_.batch_max) {
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
    }
    process(batch);
    batch.clear();
  }
}

void PartitionProcessor::process(std::vector<Pending>& batch) {
  struct Reply {
    CommandOutcome outcome;
    int stream_index = -1;        // into request.streams when the command appended events
    std::string idempotency_key;  // set when this command's outcome must be remembered
    int same_as = -1;             // a repeat of a key used earlier in this batch
  };
  std::vector<Reply> replies(batch.size());
  std::unordered_map<std::string, LoadedAggregate> working;
  std::unordered_set<std::string> touched;
  std::unordered_map<std::string, size_t> keys_in_batch;
  AppendRequest request;
  request.partition = partition_;
  const int64_t now_us = clock_.now_us();

  for (size_t i = 0; i < batch.size(); ++i) {
    const events::CommandEnvelope& command = batch[i].command;
    Reply& reply = replies[i];
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

    auto found = working.find(command.stream_id());
    if (found == working.end()) {
      if (auto* cached = cache_.find(command.stream_id())) {
        found = working.emplace(command.stream_id(), *cached).first;
      } else {
        auto loaded = load_aggregate(store_, *handler, command.stream_id());
        if (!loaded.is_ok()) {
          out.status = loaded.status();
          keys_in_batch.erase(reply.idempotency_key);
          reply.idempotency_key.clear();
          continue;
        }
        found = working.emplace(command.stream_id(), std::move(loaded.value())).first;
      }
    }
    LoadedAggregate& aggregate = found->second;

    if (command.has_expected_version() && command.expected_version() != aggregate.version) {
      out.rejection = Rejection{Rejection::Kind::kVersionMismatch,
                                "stream.version_mismatch",
                                "Expected '" + command.stream_id() + "' at version " +
                                    std::to_string(command.expected_version()) +
                                    ", but it is at version " + std::to_string(aggregate.version),
                                {}};
    } else {
      auto decided = handler->decide(*aggregate.state, command);
      if (decided.rejection) {
        out.rejection = std::move(decided.rejection);
      } else if (!decided.events.empty()) {
        StreamAppend append{command.stream_id(), aggregate.version, {}};
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
          handler->evolve(*next, *event, ++aggregate.version, occurred_at_us);
          append.events.push_back(std::move(envelope));
        }
        aggregate.state = std::move(next);
        touched.insert(command.stream_id());
        reply.stream_index = static_cast<int>(request.streams.size());
        request.streams.push_back(std::move(append));
      }
    }
    if (out.rejection) {
      keys_in_batch.erase(reply.idempotency_key);  // a refused command does not use up its key
      reply.idempotency_key.clear();
      continue;
    }
    out.version = aggregate.version;
    out.position = aggregate.position;  // replaced by the last event's position once sealed
    out.state = aggregate.state;
  }

  const bool must_write = !request.streams.empty() ||
                          std::any_of(replies.begin(), replies.end(),
                                      [](const Reply& r) { return !r.idempotency_key.empty(); });
  if (must_write) {
    request.side_writes = [&](const std::vector<StreamAppend>& sealed) {
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
      for (const auto& stream_id : touched) {
        const auto& aggregate = working.at(stream_id);
        events::AggregateRecord record;
        record.set_stream_id(stream_id);
        record.set_version(aggregate.version);
        record.set_last_hash(aggregate.last_hash);
        *record.mutable_position() = aggregate.position;
        record.mutable_state()->PackFrom(*aggregate.state);
        writes.push_back({SideWrite::Table::kState, stream_id, record.SerializeAsString()});
      }
      for (const auto& reply : replies) {
        if (reply.idempotency_key.empty()) continue;
        events::IdempotencyRecord record;
        record.set_request_hash(batch[&reply - replies.data()].command.request_hash());
        record.set_stream_id(reply.outcome.stream_id);
        record.set_version(reply.outcome.version);
        *record.mutable_position() = reply.outcome.position;
        record.mutable_state()->PackFrom(*reply.outcome.state);
        *record.mutable_recorded_at() = timestamp_from_us(now_us);
        writes.push_back(
            {SideWrite::Table::kIdempotency, reply.idempotency_key, record.SerializeAsString()});
      }
      return writes;
    };
    auto appended = log_.append(std::move(request));
    if (!appended.is_ok()) {
      failed_ = true;  // log and state may disagree with the cache: stop, recover by restart
      Status stopped = Status::unavailable("partition " + std::to_string(partition_) +
                                           " stopped: " + appended.status().message());
      for (size_t i = 0; i < batch.size(); ++i) {
        CommandOutcome outcome;
        outcome.status = stopped;
        batch[i].reply.set_value(std::move(outcome));
      }
      return;
    }
    for (auto& reply : replies) {
      if (reply.stream_index >= 0)
        reply.outcome.events = std::move(appended->sealed[reply.stream_index].events);
    }
  }

  for (auto& [stream_id, aggregate] : working) cache_.put(stream_id, std::move(aggregate));
  for (size_t i = 0; i < batch.size(); ++i) {
    Reply& reply = replies[i];
    if (reply.same_as >= 0) {
      const Reply& first = replies[reply.same_as];
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
  for (size_t i = 0; i < batch.size(); ++i) batch[i].reply.set_value(std::move(replies[i].outcome));
}

}  // namespace crm
