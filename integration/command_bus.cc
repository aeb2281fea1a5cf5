#include "integration/command_bus.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/message.h>

#include <algorithm>
#include <random>

#include "command.pb.h"
#include "envelope.pb.h"
#include "events/codec.h"
#include "workflow/ready_outcome.h"

namespace crm {
namespace {

// Headers of crm.commands and crm.results records.
constexpr char kReplyTo[] = "crm-reply-to";
constexpr char kRequestId[] = "crm-request-id";
constexpr char kStatusCode[] = "crm-status";
constexpr char kStatusMessage[] = "crm-status-message";
constexpr char kRejectionKind[] = "crm-rejection-kind";
constexpr char kRejectionRule[] = "crm-rejection-rule";
constexpr char kRejectionMessage[] = "crm-rejection-message";
constexpr char kViolation[] = "crm-violation";  // field \x1f rule \x1f message
constexpr char kRepeated[] = "crm-repeated";
constexpr char kEvent[] = "crm-event";
constexpr size_t kInHandMax = 256;
constexpr auto kCommitEvery = std::chrono::milliseconds(200);
constexpr auto kRetakeEvery = std::chrono::seconds(2);

std::vector<std::string> header_values(const rd_kafka_message_t* message, const char* name) {
  std::vector<std::string> values;
  rd_kafka_headers_t* headers = nullptr;
  if (rd_kafka_message_headers(message, &headers) != RD_KAFKA_RESP_ERR_NO_ERROR) return values;
  const void* data = nullptr;
  size_t size = 0;
  for (size_t i = 0;
       rd_kafka_header_get(headers, i, name, &data, &size) == RD_KAFKA_RESP_ERR_NO_ERROR; ++i)
    values.emplace_back(static_cast<const char*>(data), size);
  return values;
}

std::string header_value(const rd_kafka_message_t* message, const char* name) {
  auto values = header_values(message, name);
  return values.empty() ? std::string() : values.front();
}

std::string random_instance_id() {
  std::random_device random;
  std::string bytes;
  for (int i = 0; i < 8; ++i) bytes.push_back(static_cast<char>(random() & 0xff));
  return "crm-" + to_hex(bytes);
}

void add_header(rd_kafka_headers_t* headers, const char* name, const std::string& value) {
  rd_kafka_header_add(headers, name, -1, value.data(), static_cast<ssize_t>(value.size()));
}

// The outcome as crm.results carries it: headers, and the stream's record as the value.
// Status codes travel by name: instances of different versions agree on names, not numbers.
constexpr std::pair<StatusCode, const char*> kCodeNames[] = {
    {StatusCode::kOk, "OK"},
    {StatusCode::kInvalidArgument, "INVALID_ARGUMENT"},
    {StatusCode::kNotFound, "NOT_FOUND"},
    {StatusCode::kConflict, "CONFLICT"},
    {StatusCode::kUnavailable, "UNAVAILABLE"},
    {StatusCode::kResourceExhausted, "RESOURCE_EXHAUSTED"},
    {StatusCode::kCorruption, "CORRUPTION"},
    {StatusCode::kAborted, "ABORTED"},
    {StatusCode::kInternal, "INTERNAL"}};

std::string code_name(StatusCode code) {
  for (const auto& [c, name] : kCodeNames)
    if (c == code) return name;
  return "INTERNAL";
}

StatusCode code_of(const std::string& name) {
  for (const auto& [c, n] : kCodeNames)
    if (name == n) return c;
  return StatusCode::kUnavailable;  // a name this version does not know: retry later
}

rd_kafka_headers_t* outcome_headers(const CommandOutcome& outcome) {
  rd_kafka_headers_t* headers = rd_kafka_headers_new(8 + outcome.events.size());
  add_header(headers, kStatusCode, code_name(outcome.status.code()));
  add_header(headers, kStatusMessage, outcome.status.message());
  if (outcome.rejection) {
    add_header(headers, kRejectionKind, std::to_string(static_cast<int>(outcome.rejection->kind)));
    add_header(headers, kRejectionRule, outcome.rejection->rule);
    add_header(headers, kRejectionMessage, outcome.rejection->message);
    for (const auto& v : outcome.rejection->violations)
      add_header(headers, kViolation, v.field + '\x1f' + v.rule + '\x1f' + v.message);
  }
  if (outcome.repeated) add_header(headers, kRepeated, "1");
  for (const auto& event : outcome.events) add_header(headers, kEvent, event.SerializeAsString());
  return headers;
}

CommandOutcome outcome_of(const rd_kafka_message_t* message) {
  CommandOutcome outcome;
  const std::string status_message = header_value(message, kStatusMessage);
  switch (code_of(header_value(message, kStatusCode))) {
    case StatusCode::kOk:
      break;
    case StatusCode::kInvalidArgument:
      outcome.status = Status::invalid_argument(status_message);
      break;
    case StatusCode::kNotFound:
      outcome.status = Status::not_found(status_message);
      break;
    case StatusCode::kConflict:
      outcome.status = Status::conflict(status_message);
      break;
    case StatusCode::kResourceExhausted:
      outcome.status = Status::resource_exhausted(status_message);
      break;
    case StatusCode::kCorruption:
      outcome.status = Status::corruption(status_message);
      break;
    case StatusCode::kInternal:
      outcome.status = Status::internal(status_message);
      break;
    default:  // unavailable, aborted: the owner could not take it now
      outcome.status = Status::unavailable(status_message);
      break;
  }
  if (auto kind = header_values(message, kRejectionKind); !kind.empty()) {
    Rejection rejection;
    rejection.kind = static_cast<Rejection::Kind>(std::atoi(kind.front().c_str()));
    rejection.rule = header_value(message, kRejectionRule);
    rejection.message = header_value(message, kRejectionMessage);
    for (const auto& v : header_values(message, kViolation)) {
      const auto first = v.find('\x1f');
      const auto second = first == std::string::npos ? first : v.find('\x1f', first + 1);
      if (second == std::string::npos) continue;
      rejection.violations.push_back(
          {v.substr(0, first), v.substr(first + 1, second - first - 1), v.substr(second + 1)});
    }
    outcome.rejection = std::move(rejection);
  }
  outcome.repeated = !header_values(message, kRepeated).empty();
  for (const auto& bytes : header_values(message, kEvent)) {
    events::EventEnvelope event;
    if (event.ParseFromString(bytes)) outcome.events.push_back(std::move(event));
  }
  events::IdempotencyRecord record;
  if (record.ParseFromArray(message->payload, static_cast<int>(message->len))) {
    outcome.stream_id = record.stream_id();
    outcome.version = record.version();
    outcome.position = record.position();
    if (record.has_state()) {
      const std::string& url = record.state().type_url();
      const auto* type = google::protobuf::DescriptorPool::generated_pool()->FindMessageTypeByName(
          url.substr(url.rfind('/') + 1));
      if (type != nullptr) {
        std::shared_ptr<google::protobuf::Message> state(
            google::protobuf::MessageFactory::generated_factory()->GetPrototype(type)->New());
        if (record.state().UnpackTo(state.get())) outcome.state = std::move(state);
      }
    }
  }
  return outcome;
}

}  // namespace

struct CommandBus::Kafka {
  rd_kafka_t* producer = nullptr;   // commands out, outcomes out
  rd_kafka_t* owner = nullptr;      // crm.commands of the owned partitions
  rd_kafka_t* collector = nullptr;  // crm.results, every partition
  ~Kafka() {
    if (owner) rd_kafka_destroy(owner);
    if (collector) rd_kafka_destroy(collector);
    if (producer) rd_kafka_destroy(producer);
  }
};

CommandBus::CommandBus(const CommandBusOptions& options, Engine& engine, KafkaLog& log)
    : options_(options), engine_(engine), log_(log), kafka_(std::make_unique<Kafka>()) {
  if (options_.instance_id.empty()) options_.instance_id = random_instance_id();
}

CommandBus::~CommandBus() { stop(); }

Result<std::unique_ptr<CommandBus>> CommandBus::start(const CommandBusOptions& options,
                                                      Engine& engine, KafkaLog& log) {
  std::unique_ptr<CommandBus> bus(new CommandBus(options, engine, log));
  if (auto s = bus->open(); !s.is_ok()) return s;
  bus->collector_ = std::thread([raw = bus.get()] { raw->collect(); });
  bus->owner_ = std::thread([raw = bus.get()] { raw->own(); });
  return bus;
}

Status CommandBus::open() {
  const int partitions = static_cast<int>(engine_.partition_count());
  auto producer =
      kafka::new_client(RD_KAFKA_PRODUCER, options_.client,
                        {{"enable.idempotence", "true"}, {"acks", "all"}, {"linger.ms", "1"}},
                        [this](rd_kafka_conf_t* conf) {
                          rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
                          rd_kafka_conf_set_opaque(conf, this);
                        });
  if (!producer.is_ok()) return producer.status();
  kafka_->producer = producer.value();
  auto brokers = kafka::reach_brokers(kafka_->producer, options_.client);
  if (!brokers.is_ok()) return brokers.status();
  {
    auto client = kafka::new_client(RD_KAFKA_PRODUCER, options_.client,
                                    {{"allow.auto.create.topics", "false"}});
    if (!client.is_ok()) return client.status();
    rd_kafka_t* admin = client.value();
    kafka::create_topics(admin, {options_.commands_topic, options_.results_topic}, partitions,
                         options_.replication_factor, brokers.value());
    auto count =
        kafka::partition_count(admin, options_.commands_topic, options_.client.connect_timeout);
    rd_kafka_destroy(admin);
    if (!count.is_ok()) return count.status();
    if (count.value() != partitions)
      return Status::invalid_argument("Expected topic " + options_.commands_topic + " to have " +
                                      std::to_string(partitions) + " partitions, like the log, " +
                                      "but it has " + std::to_string(count.value()));
  }

  // Outcomes: every partition of crm.results from its end now (none sent before is ours).
  auto collector = kafka::new_client(RD_KAFKA_CONSUMER, options_.client,
                                     {{"group.id", "crm-results-" + options_.instance_id},
                                      {"enable.auto.commit", "false"},
                                      {"allow.auto.create.topics", "false"}});
  if (!collector.is_ok()) return collector.status();
  kafka_->collector = collector.value();
  auto results = kafka::partition_count(kafka_->collector, options_.results_topic,
                                        options_.client.connect_timeout);
  if (!results.is_ok()) return results.status();
  rd_kafka_topic_partition_list_t* assignment = rd_kafka_topic_partition_list_new(results.value());
  for (int p = 0; p < results.value(); ++p) {
    int64_t low = 0, high = 0;
    auto err = rd_kafka_query_watermark_offsets(
        kafka_->collector, options_.results_topic.c_str(), p, &low, &high,
        static_cast<int>(options_.client.connect_timeout.count()));
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      rd_kafka_topic_partition_list_destroy(assignment);
      return Status::unavailable("cannot read the end of " + options_.results_topic + ": " +
                                 rd_kafka_err2str(err));
    }
    rd_kafka_topic_partition_list_add(assignment, options_.results_topic.c_str(), p)->offset = high;
  }
  auto err = rd_kafka_assign(kafka_->collector, assignment);
  rd_kafka_topic_partition_list_destroy(assignment);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
    return Status::unavailable("cannot read " + options_.results_topic + ": " +
                               rd_kafka_err2str(err));

  // Commands: the owned partitions of crm.commands, through the group or fixed.
  auto owner = kafka::new_client(RD_KAFKA_CONSUMER, options_.client,
                                 {{"group.id", options_.group},
                                  {"enable.auto.commit", "false"},
                                  {"enable.auto.offset.store", "false"},
                                  {"auto.offset.reset", "earliest"},
                                  {"allow.auto.create.topics", "false"}},
                                 [this](rd_kafka_conf_t* conf) {
                                   if (options_.use_group)
                                     rd_kafka_conf_set_rebalance_cb(conf, on_rebalance);
                                   rd_kafka_conf_set_opaque(conf, this);
                                 });
  if (!owner.is_ok()) return owner.status();
  kafka_->owner = owner.value();
  rd_kafka_poll_set_consumer(kafka_->owner);
  if (options_.use_group) {
    rd_kafka_topic_partition_list_t* topics = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(topics, options_.commands_topic.c_str(),
                                      RD_KAFKA_PARTITION_UA);
    err = rd_kafka_subscribe(kafka_->owner, topics);
    rd_kafka_topic_partition_list_destroy(topics);
  } else {
    std::vector<uint32_t> owned = options_.owned;
    if (options_.owns_all) {
      owned.clear();
      for (int p = 0; p < partitions; ++p) owned.push_back(static_cast<uint32_t>(p));
    }
    mine_ = owned;  // taken by the log when it opened; taken again when lost
    rd_kafka_topic_partition_list_t* fixed =
        rd_kafka_topic_partition_list_new(static_cast<int>(owned.size()));
    for (uint32_t p : owned)
      rd_kafka_topic_partition_list_add(fixed, options_.commands_topic.c_str(),
                                        static_cast<int32_t>(p))
          ->offset = RD_KAFKA_OFFSET_STORED;
    err = rd_kafka_assign(kafka_->owner, fixed);
    rd_kafka_topic_partition_list_destroy(fixed);
  }
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
    return Status::unavailable("cannot read " + options_.commands_topic + ": " +
                               rd_kafka_err2str(err));
  return Status::ok();
}

void CommandBus::stop() {
  if (stopping_.exchange(true)) return;
  if (owner_.joinable()) owner_.join();
  if (collector_.joinable()) collector_.join();
  if (kafka_->producer) rd_kafka_flush(kafka_->producer, 10000);
  std::lock_guard lock(mu_);
  for (auto& [id, waiting] : waiting_) {
    CommandOutcome outcome;
    outcome.status = Status::unavailable("the engine is shutting down");
    waiting.reply.set_value(std::move(outcome));
  }
  waiting_.clear();
}

size_t CommandBus::waiting() const {
  std::lock_guard lock(mu_);
  return waiting_.size();
}

std::future<CommandOutcome> CommandBus::forward(events::CommandEnvelope command,
                                                uint32_t partition) {
  if (stopping_) return ready_outcome(Status::unavailable("the engine is shutting down"));
  // Applied once however often it is delivered: a key of its own when the caller gave none.
  if (command.idempotency_key().empty()) {
    command.set_idempotency_key("forwarded/" + command.command_id());
    if (command.request_hash().empty()) command.set_request_hash(command.command_id());
  }
  const std::string request_id =
      options_.instance_id + "/" + std::to_string(next_request_.fetch_add(1));
  std::future<CommandOutcome> future;
  {
    std::lock_guard lock(mu_);
    auto& waiting = waiting_[request_id];
    waiting.deadline = std::chrono::steady_clock::now() + options_.timeout;
    future = waiting.reply.get_future();
  }
  rd_kafka_headers_t* headers = rd_kafka_headers_new(2);
  add_header(headers, kReplyTo, options_.instance_id);
  add_header(headers, kRequestId, request_id);
  const std::string value = command.SerializeAsString();
  const std::string& key = command.partition_key();
  auto* opaque = new std::string(request_id);
  auto err = rd_kafka_producev(
      kafka_->producer, RD_KAFKA_V_TOPIC(options_.commands_topic.c_str()),
      RD_KAFKA_V_PARTITION(static_cast<int32_t>(partition)), RD_KAFKA_V_KEY(key.data(), key.size()),
      RD_KAFKA_V_VALUE(const_cast<char*>(value.data()), value.size()),
      RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_HEADERS(headers),
      RD_KAFKA_V_OPAQUE(opaque), RD_KAFKA_V_END);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    rd_kafka_headers_destroy(headers);
    delete opaque;
    CommandOutcome outcome;
    outcome.status = Status::unavailable("cannot send the command to the owner of partition " +
                                         std::to_string(partition) + ": " + rd_kafka_err2str(err));
    answer(request_id, std::move(outcome));
  }
  return future;
}

void CommandBus::on_delivery(rd_kafka_t*, const rd_kafka_message_t* message, void* opaque) {
  auto* request_id = static_cast<std::string*>(message->_private);
  if (request_id == nullptr) return;
  if (message->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    CommandOutcome outcome;
    outcome.status =
        Status::unavailable(std::string("cannot send the command to the partition's owner: ") +
                            rd_kafka_err2str(message->err));
    static_cast<CommandBus*>(opaque)->answer(*request_id, std::move(outcome));
  }
  delete request_id;
}

void CommandBus::answer(const std::string& request_id, CommandOutcome outcome) {
  std::lock_guard lock(mu_);
  auto it = waiting_.find(request_id);
  if (it == waiting_.end()) return;  // answered already (or given up on)
  it->second.reply.set_value(std::move(outcome));
  waiting_.erase(it);
}

void CommandBus::collect() {
  auto next_sweep = std::chrono::steady_clock::now();
  while (!stopping_) {
    rd_kafka_poll(kafka_->producer, 0);  // delivery reports
    if (rd_kafka_message_t* message = rd_kafka_consumer_poll(kafka_->collector, 100)) {
      if (message->err == RD_KAFKA_RESP_ERR_NO_ERROR &&
          header_value(message, kReplyTo) == options_.instance_id)
        answer(header_value(message, kRequestId), outcome_of(message));
      rd_kafka_message_destroy(message);
    }
    const auto now = std::chrono::steady_clock::now();
    if (now < next_sweep) continue;
    next_sweep = now + std::chrono::milliseconds(100);
    std::lock_guard lock(mu_);
    for (auto it = waiting_.begin(); it != waiting_.end();) {
      if (it->second.deadline > now) {
        ++it;
        continue;
      }
      CommandOutcome outcome;
      outcome.status = Status::unavailable(
          "no outcome from the partition's owner within " +
          std::to_string(options_.timeout.count()) +
          " ms; it may still apply the command: a request sent with an Idempotency-Key learns "
          "its outcome when sent again with the same key");
      it->second.reply.set_value(std::move(outcome));
      it = waiting_.erase(it);
    }
  }
}

// Partitions this instance should own but does not (a take that failed, a transaction whose
// outcome was unknown): taken again, each settling what its producer left.
void CommandBus::retake() {
  for (uint32_t p : mine_) {
    if (log_.owns(p)) continue;
    engine_.partition_taken(p);
    if (log_.take(p).is_ok()) engine_.partition_taken(p);
  }
}

void CommandBus::own() {
  auto last_commit = std::chrono::steady_clock::now();
  auto next_take = last_commit + kRetakeEvery;
  while (!stopping_) {
    rd_kafka_message_t* message = rd_kafka_consumer_poll(kafka_->owner, in_hand_.empty() ? 100 : 2);
    if (message != nullptr) {
      if (message->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        InHand command{message->partition,
                       message->offset,
                       header_value(message, kReplyTo),
                       header_value(message, kRequestId),
                       {}};
        events::CommandEnvelope envelope;
        if (envelope.ParseFromArray(message->payload, static_cast<int>(message->len))) {
          command.outcome = engine_.submit_local(std::move(envelope));
        } else {
          command.outcome = ready_outcome(Status::invalid_argument(
              "unreadable command at " + options_.commands_topic + " partition " +
              std::to_string(message->partition) + " offset " + std::to_string(message->offset)));
        }
        in_hand_.push_back(std::move(command));
      }
      rd_kafka_message_destroy(message);
    }
    finish_in_hand(in_hand_.size() >= kInHandMax);
    if (std::chrono::steady_clock::now() >= next_take) {
      retake();
      next_take = std::chrono::steady_clock::now() + kRetakeEvery;
    }
    if (std::chrono::steady_clock::now() - last_commit >= kCommitEvery) {
      rd_kafka_commit(kafka_->owner, nullptr, 1);  // what was answered, in the background
      last_commit = std::chrono::steady_clock::now();
    }
  }
  finish_in_hand(true);
  rd_kafka_commit(kafka_->owner, nullptr, 0);
  rd_kafka_consumer_close(kafka_->owner);  // a group member revokes (and gives up) its partitions
}

void CommandBus::finish_in_hand(bool wait) {
  size_t done = 0;
  for (auto& command : in_hand_) {
    if (!wait && command.outcome.wait_for(std::chrono::seconds(0)) != std::future_status::ready)
      break;
    const CommandOutcome outcome = command.outcome.get();
    (void)send_outcome(command, outcome);  // lost: the sender times out and may retry the key
    rd_kafka_topic_partition_list_t* offsets = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(offsets, options_.commands_topic.c_str(), command.partition)
        ->offset = command.offset + 1;
    rd_kafka_offsets_store(kafka_->owner, offsets);
    rd_kafka_topic_partition_list_destroy(offsets);
    ++done;
  }
  in_hand_.erase(in_hand_.begin(), in_hand_.begin() + static_cast<std::ptrdiff_t>(done));
}

Status CommandBus::send_outcome(const InHand& command, const CommandOutcome& outcome) {
  if (command.reply_to.empty()) return Status::ok();
  events::IdempotencyRecord record;
  record.set_stream_id(outcome.stream_id);
  record.set_version(outcome.version);
  *record.mutable_position() = outcome.position;
  if (outcome.state) record.mutable_state()->PackFrom(*outcome.state);
  const std::string value = record.SerializeAsString();
  rd_kafka_headers_t* headers = outcome_headers(outcome);
  add_header(headers, kReplyTo, command.reply_to);
  add_header(headers, kRequestId, command.request_id);
  auto err = rd_kafka_producev(kafka_->producer, RD_KAFKA_V_TOPIC(options_.results_topic.c_str()),
                               RD_KAFKA_V_KEY(command.reply_to.data(), command.reply_to.size()),
                               RD_KAFKA_V_VALUE(const_cast<char*>(value.data()), value.size()),
                               RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                               RD_KAFKA_V_HEADERS(headers), RD_KAFKA_V_END);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    rd_kafka_headers_destroy(headers);
    return Status::unavailable(std::string("cannot send an outcome: ") + rd_kafka_err2str(err));
  }
  return Status::ok();
}

void CommandBus::on_rebalance(rd_kafka_t* consumer, rd_kafka_resp_err_t err,
                              rd_kafka_topic_partition_list_t* partitions, void* opaque) {
  auto* bus = static_cast<CommandBus*>(opaque);
  if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
    // Each partition is taken (its earlier owner fenced, its copy caught up) before a command
    // of it is read. One that cannot be taken now is tried again every few seconds; until then
    // its commands are answered 503 (not applied), to be sent again.
    for (int i = 0; i < partitions->cnt; ++i) {
      const auto p = static_cast<uint32_t>(partitions->elems[i].partition);
      bus->mine_.push_back(p);
      bus->engine_.partition_taken(p);
      if (bus->log_.take(p).is_ok()) bus->engine_.partition_taken(p);
    }
    rd_kafka_assign(consumer, partitions);
    return;
  }
  // Revoked (or an error): answer what is in hand, commit, then give the partitions up.
  bus->finish_in_hand(true);
  rd_kafka_flush(bus->kafka_->producer, 10000);  // the outcomes out before the offsets move
  rd_kafka_commit(consumer, nullptr, 0);
  for (uint32_t p : bus->mine_) bus->log_.release(p);
  bus->mine_.clear();
  rd_kafka_assign(consumer, nullptr);
}

}  // namespace crm
