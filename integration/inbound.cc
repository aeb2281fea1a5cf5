#include "integration/inbound.h"

#include <librdkafka/rdkafka.h>

#include <algorithm>
#include <deque>
#include <future>
#include <thread>

#include "aggregates/order/order.h"
#include "events/codec.h"
#include "integration/kafka_client.h"
#include "order.pb.h"
#include "workflow/aggregate_handler.h"
#include "workflow/ready_outcome.h"

namespace crm {

// ---------------------------------------------------------------------------------------------
// The Kafka side.

struct InboundConsumer::Kafka {
  rd_kafka_t* consumer = nullptr;
  rd_kafka_t* producer = nullptr;  // crm.rejected, and topic creation
  ~Kafka() {
    if (consumer) rd_kafka_destroy(consumer);
    if (producer) rd_kafka_destroy(producer);
  }
};

namespace {

// One delivery report, written by librdkafka's callback through the message's opaque: a
// shared slot, so a report that comes after the producer gave up waiting writes into live memory.
struct Delivery {
  std::atomic<int> error{-1};  // -1: not yet reported
};

void on_delivery(rd_kafka_t*, const rd_kafka_message_t* message, void*) {
  auto* slot = static_cast<std::shared_ptr<Delivery>*>(message->_private);
  if (slot == nullptr) return;
  (*slot)->error = static_cast<int>(message->err);
  delete slot;
}

kafka::ClientOptions client_options(const InboundOptions& options) {
  return {options.brokers, options.kafka_settings, options.connect_timeout};
}

}  // namespace

InboundConsumer::InboundConsumer(const InboundOptions& options, Engine& engine, const Clock& clock,
                                 IdSource& ids, Metrics* metrics)
    : options_(options),
      engine_(engine),
      clock_(clock),
      ids_(ids),
      metrics_(metrics),
      kafka_(std::make_unique<Kafka>()) {}

Result<std::unique_ptr<InboundConsumer>> InboundConsumer::start(const InboundOptions& options,
                                                                Engine& engine, const Clock& clock,
                                                                IdSource& ids, Metrics* metrics) {
  std::unique_ptr<InboundConsumer> inbound(
      new InboundConsumer(options, engine, clock, ids, metrics));
  auto producer = kafka::new_client(
      RD_KAFKA_PRODUCER, client_options(options), {{"enable.idempotence", "true"}, {"acks", "all"}},
      [](rd_kafka_conf_t* conf) { rd_kafka_conf_set_dr_msg_cb(conf, on_delivery); });
  if (!producer.is_ok()) return producer.status();
  inbound->kafka_->producer = producer.value();

  // Reaching the brokers at all: a clear start-up error instead of a silent wait. Topics are
  // created through a plain client: an idempotent producer's admin requests wait for its
  // producer id (ten seconds against the mock cluster).
  auto brokers = kafka::reach_brokers(inbound->kafka_->producer, client_options(options));
  if (!brokers.is_ok()) return brokers.status();
  if (auto admin = kafka::new_client(RD_KAFKA_PRODUCER, client_options(options),
                                     {{"allow.auto.create.topics", "false"}});
      admin.is_ok()) {
    kafka::create_topics(admin.value(), {options.topic, options.rejected_topic},
                         options.topic_partitions, options.replication_factor, brokers.value());
    rd_kafka_destroy(admin.value());
  }

  auto consumer = kafka::new_client(RD_KAFKA_CONSUMER, client_options(options),
                                    {{"group.id", options.group},
                                     {"enable.auto.commit", "false"},
                                     {"enable.auto.offset.store", "false"},
                                     {"auto.offset.reset", "earliest"},
                                     {"isolation.level", "read_committed"}});
  if (!consumer.is_ok()) return consumer.status();
  inbound->kafka_->consumer = consumer.value();
  rd_kafka_poll_set_consumer(inbound->kafka_->consumer);
  rd_kafka_topic_partition_list_t* topics = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(topics, options.topic.c_str(), RD_KAFKA_PARTITION_UA);
  auto err = rd_kafka_subscribe(inbound->kafka_->consumer, topics);
  rd_kafka_topic_partition_list_destroy(topics);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
    return Status::unavailable(std::string("cannot subscribe to ") + options.topic + ": " +
                               rd_kafka_err2str(err));
  inbound->thread_ = std::thread([raw = inbound.get()] { raw->run(); });
  return inbound;
}

InboundConsumer::~InboundConsumer() { stop(); }

void InboundConsumer::stop() {
  stopping_ = true;
  if (thread_.joinable()) thread_.join();
  if (kafka_ && kafka_->consumer) {
    rd_kafka_commit(kafka_->consumer, nullptr, 0);  // what was handled, synchronously
    rd_kafka_consumer_close(kafka_->consumer);
    rd_kafka_destroy(kafka_->consumer);
    kafka_->consumer = nullptr;
  }
  if (kafka_ && kafka_->producer) rd_kafka_flush(kafka_->producer, 10000);
}

InboundConsumer::Counts InboundConsumer::counts() const {
  return {applied_.load(), repeated_.load(), rejected_.load()};
}

namespace {

InboundRecord record_of(const rd_kafka_message_t* message) {
  InboundRecord record;
  record.topic = rd_kafka_topic_name(message->rkt);
  record.partition = message->partition;
  record.offset = message->offset;
  if (message->key) record.key.assign(static_cast<const char*>(message->key), message->key_len);
  if (message->payload)
    record.value.assign(static_cast<const char*>(message->payload), message->len);
  rd_kafka_headers_t* headers = nullptr;
  if (rd_kafka_message_headers(message, &headers) == RD_KAFKA_RESP_ERR_NO_ERROR) {
    const char* name = nullptr;
    const void* value = nullptr;
    size_t size = 0;
    for (size_t i = 0;
         rd_kafka_header_get_all(headers, i, &name, &value, &size) == RD_KAFKA_RESP_ERR_NO_ERROR;
         ++i) {
      record.headers.emplace_back(
          name, value ? std::string(static_cast<const char*>(value), size) : std::string());
    }
  }
  return record;
}

}  // namespace

// The lag over the assigned partitions: each one's high watermark less the consumer's position.
void InboundConsumer::measure_lag() {
  rd_kafka_t* consumer = kafka_->consumer;
  rd_kafka_topic_partition_list_t* assigned = nullptr;
  if (rd_kafka_assignment(consumer, &assigned) != RD_KAFKA_RESP_ERR_NO_ERROR) return;
  int64_t lag = 0;
  rd_kafka_position(consumer, assigned);
  for (int i = 0; i < assigned->cnt; ++i) {
    const auto& p = assigned->elems[i];
    int64_t low = 0, high = 0;
    if (rd_kafka_get_watermark_offsets(consumer, p.topic, p.partition, &low, &high) ==
            RD_KAFKA_RESP_ERR_NO_ERROR &&
        high >= 0)
      lag += std::max<int64_t>(0, high - (p.offset >= 0 ? p.offset : low));
  }
  rd_kafka_topic_partition_list_destroy(assigned);
  lag_ = lag;
}

// Records are submitted as they come, up to kWindowMax at once (the engine batches their
// durable writes), and finished in the order they came: each one's outcome counted or rejected,
// then its offset stored for the next commit. A record the engine cannot take now is submitted
// again, with its idempotency key, before any later record is finished.
void InboundConsumer::run() {
  constexpr size_t kWindowMax = 256;
  rd_kafka_t* consumer = kafka_->consumer;
  std::deque<InFlight> window;
  auto last_lag = std::chrono::steady_clock::now() - std::chrono::seconds(1);
  auto last_commit = std::chrono::steady_clock::now();
  bool stored = false;
  auto store = [&](const InboundRecord& record) {
    rd_kafka_topic_partition_list_t* offsets = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(offsets, record.topic.c_str(), record.partition)->offset =
        record.offset + 1;
    rd_kafka_offsets_store(consumer, offsets);
    rd_kafka_topic_partition_list_destroy(offsets);
    stored = true;
  };
  while (!stopping_) {
    const auto now = std::chrono::steady_clock::now();
    if (now - last_lag >= std::chrono::seconds(1)) {
      last_lag = now;
      measure_lag();
    }
    if (stored && now - last_commit >= std::chrono::milliseconds(200)) {
      rd_kafka_commit(consumer, nullptr, 1);
      last_commit = now;
      stored = false;
    }
    bool took = false;
    if (window.size() < kWindowMax) {
      if (rd_kafka_message_t* message =
              rd_kafka_consumer_poll(consumer, window.empty() ? 200 : 0)) {
        // Errors (partition EOF, a broker's transient trouble) are librdkafka's to retry.
        if (!message->err) {
          window.push_back(InFlight{record_of(message), {}, {}, 0});
          submit(window.back());
          took = true;
        }
        rd_kafka_message_destroy(message);
      }
    }
    if (window.empty()) continue;
    // While records keep coming and there is room, take them; otherwise wait for the oldest.
    InFlight& oldest = window.front();
    const auto wait = took && window.size() < kWindowMax ? std::chrono::milliseconds(0)
                                                         : std::chrono::milliseconds(50);
    if (oldest.outcome.valid() && oldest.outcome.wait_for(wait) != std::future_status::ready)
      continue;
    if (!finish(oldest)) {
      // The engine could not take it now: after a pause, again, before anything later.
      const auto pause =
          std::chrono::milliseconds(std::min(1000, 50 << std::min(oldest.attempts++, 5)));
      for (auto until = std::chrono::steady_clock::now() + pause;
           !stopping_ && std::chrono::steady_clock::now() < until;)
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      if (!stopping_) submit(oldest);
      continue;
    }
    store(oldest.record);
    window.pop_front();
  }
  // Stopping: what was submitted is finished while the engine still runs; the first record that
  // cannot be finished and everything after it stay uncommitted, for the next start.
  while (!window.empty()) {
    InFlight& oldest = window.front();
    if (oldest.outcome.valid() &&
        oldest.outcome.wait_for(options_.command_timeout) != std::future_status::ready)
      break;
    if (!finish(oldest)) break;
    store(oldest.record);
    window.pop_front();
  }
}

void InboundConsumer::submit(InFlight& flight) {
  flight.refusal.reset();
  flight.outcome = {};
  const InboundRecord& record = flight.record;
  auto parsed = parse_inbound(record);
  if (auto* refused = std::get_if<InboundRefusal>(&parsed)) {
    flight.refusal = *refused;
    return;
  }
  auto& inbound = std::get<InboundCommand>(parsed);
  auto& command = inbound.command;
  if (!inbound.order_id.empty()) {
    auto loaded = engine_.read(kOrderStream, order::stream_id(inbound.order_id));
    if (!loaded.is_ok()) return;  // neither refused nor submitted: finish() asks again
    if (loaded->version == 0) {
      flight.refusal = InboundRefusal{"order.not_found", "No order '" + inbound.order_id + "'"};
      return;
    }
    command.set_partition_key(static_cast<const order::Order&>(*loaded->state).customer_id());
  }
  const std::string position = "kafka:" + record.topic + ":" + std::to_string(record.partition) +
                               ":" + std::to_string(record.offset);
  command.set_command_id(ids_.next("cmd_"));
  command.mutable_actor()->set_principal_id(kInboundPrincipal);
  command.mutable_actor()->set_role(kInboundRole);
  const std::string* correlation = record.header("correlation-id");
  command.set_correlation_id(correlation && is_inbound_id(*correlation) ? *correlation : position);
  *command.mutable_issued_at() = timestamp_from_us(clock_.now_us());
  command.set_idempotency_key(inbound_idempotency_key(record));
  // What the record asks, for the key's reuse check: the command, the ids (in headers for
  // protobuf) and the body.
  std::string request = *record.header("command");
  for (const char* header : {"content-type", "customer-id", "order-id", "item-id"}) {
    const std::string* value = record.header(header);
    request += std::string("\n") + header + ": " + (value ? *value : "");
  }
  command.set_request_hash(sha256(request + "\n" + record.value));
  // A partition whose queue is full refuses at once (a future ready at submit): the record waits
  // here until it is taken, so that no later record of its customer is applied before it.
  for (int attempt = 0;; ++attempt) {
    auto outcome = engine_.submit(command);
    if (outcome.wait_for(std::chrono::seconds(0)) != std::future_status::ready) {
      flight.outcome = std::move(outcome);
      return;
    }
    CommandOutcome answered = outcome.get();
    if (answered.status.code() != StatusCode::kResourceExhausted || stopping_) {
      flight.outcome = ready_outcome(std::move(answered));
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(std::min(50, 1 << std::min(attempt, 6))));
  }
}

bool InboundConsumer::finish(InFlight& flight) {
  const InboundRecord& record = flight.record;
  auto count = [&](std::atomic<uint64_t>& counter, const char* outcome) {
    ++counter;
    if (metrics_) metrics_->inbound_record(outcome);
    return true;
  };
  auto rejected = [&](const InboundRefusal& refusal) {
    if (!reject(record, refusal).is_ok()) return false;  // crm.rejected not reachable: again
    return count(rejected_, "rejected");
  };
  if (flight.refusal) return rejected(*flight.refusal);
  if (!flight.outcome.valid()) return false;  // the order could not be read: again
  CommandOutcome outcome = flight.outcome.get();
  if (!outcome.status.is_ok()) {
    const auto code = outcome.status.code();
    if (code == StatusCode::kResourceExhausted || code == StatusCode::kUnavailable ||
        code == StatusCode::kInternal)
      return false;  // the engine, not the record: again later
    return rejected({"inbound.refused", outcome.status.message()});
  }
  if (outcome.rejection) {
    std::string reason = outcome.rejection->message;
    for (const auto& v : outcome.rejection->violations) {
      if (v.message == outcome.rejection->message) continue;
      reason += "; " + (v.field.empty() ? "" : v.field + ": ") + v.message;
    }
    return rejected({outcome.rejection->rule, reason});
  }
  return outcome.repeated ? count(repeated_, "repeated") : count(applied_, "applied");
}

Status InboundConsumer::reject(const InboundRecord& record, const InboundRefusal& refusal) {
  rd_kafka_headers_t* headers = rd_kafka_headers_new(record.headers.size() + 5);
  for (const auto& [name, value] : record.headers)
    rd_kafka_header_add(headers, name.data(), static_cast<ssize_t>(name.size()), value.data(),
                        static_cast<ssize_t>(value.size()));
  // One line: parsers' messages quote the input over several.
  std::string reason = refusal.reason;
  std::replace(reason.begin(), reason.end(), '\n', ' ');
  const std::string partition = std::to_string(record.partition);
  const std::string offset = std::to_string(record.offset);
  for (const auto& [name, value] :
       {std::pair<std::string, const std::string*>{"crm-source-topic", &record.topic},
        {"crm-source-partition", &partition},
        {"crm-source-offset", &offset},
        {"crm-rule", &refusal.rule},
        {"crm-reason", &reason}}) {
    rd_kafka_header_add(headers, name.data(), static_cast<ssize_t>(name.size()), value->data(),
                        static_cast<ssize_t>(value->size()));
  }
  auto delivery = std::make_shared<Delivery>();
  auto* slot = new std::shared_ptr<Delivery>(delivery);
  auto err = rd_kafka_producev(
      kafka_->producer, RD_KAFKA_V_TOPIC(options_.rejected_topic.c_str()),
      RD_KAFKA_V_KEY(record.key.data(), record.key.size()),
      RD_KAFKA_V_VALUE(const_cast<char*>(record.value.data()), record.value.size()),
      RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_HEADERS(headers),
      RD_KAFKA_V_OPAQUE(slot), RD_KAFKA_V_END);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    rd_kafka_headers_destroy(headers);  // not taken by librdkafka on failure
    delete slot;
    return Status::unavailable(std::string("cannot produce to ") + options_.rejected_topic + ": " +
                               rd_kafka_err2str(err));
  }
  // Acknowledged by the brokers before the record's offset is committed.
  rd_kafka_flush(kafka_->producer, 30000);
  while (delivery->error.load() == -1 && !stopping_) rd_kafka_poll(kafka_->producer, 100);
  if (delivery->error.load() != RD_KAFKA_RESP_ERR_NO_ERROR)
    return Status::unavailable("the rejected record was not delivered");
  return Status::ok();
}

}  // namespace crm
