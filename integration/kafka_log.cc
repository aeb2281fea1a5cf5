#include "integration/kafka_log.h"

#include <librdkafka/rdkafka.h>

#include <algorithm>

#include "events/codec.h"

namespace crm {
namespace {

constexpr char kSideWriteHeader[] = "crm-side-write";
constexpr size_t kFollowBatchMax = 2000;  // records stored in one local step

std::string checkpoint_key(const std::string& topic, uint32_t partition) {
  std::string key = "kafka/" + topic + "/";
  put_u32_be(key, partition);
  return key;
}

std::string error_text(rd_kafka_error_t* error) {
  std::string text = rd_kafka_error_string(error);
  rd_kafka_error_destroy(error);
  return text;
}

}  // namespace

std::string encode_side_write(const SideWrite& write) {
  std::string out;
  out.push_back(write.table == SideWrite::Table::kState         ? 's'
                : write.table == SideWrite::Table::kIdempotency ? 'i'
                                                                : 'c');
  put_u32_be(out, static_cast<uint32_t>(write.key.size()));
  out += write.key;
  out += write.value;
  return out;
}

Result<SideWrite> decode_side_write(std::string_view bytes) {
  if (bytes.size() < 5) return Status::corruption("side write record too short");
  SideWrite write;
  switch (bytes[0]) {
    case 's':
      write.table = SideWrite::Table::kState;
      break;
    case 'i':
      write.table = SideWrite::Table::kIdempotency;
      break;
    case 'c':
      write.table = SideWrite::Table::kCheckpoint;
      break;
    default:
      return Status::corruption("side write names no known table");
  }
  const uint32_t key_size = get_u32_be(bytes.substr(1));
  if (bytes.size() - 5 < key_size) return Status::corruption("side write key runs past its end");
  write.key = std::string(bytes.substr(5, key_size));
  write.value = std::string(bytes.substr(5 + key_size));
  return write;
}

struct KafkaLog::Kafka {
  struct Owner {
    std::mutex mu;  // held by an append's transaction, and by take/release
    rd_kafka_t* producer = nullptr;
    std::atomic<bool> owned{false};
    std::string fenced;  // why this producer may no longer write (set once)
    ~Owner() {
      if (producer) rd_kafka_destroy(producer);
    }
  };
  rd_kafka_t* meta = nullptr;  // metadata and topic creation
  rd_kafka_t* consumer = nullptr;
  std::vector<std::unique_ptr<Owner>> owners;  // by partition

  ~Kafka() {
    if (consumer) {
      rd_kafka_consumer_close(consumer);
      rd_kafka_destroy(consumer);
    }
    owners.clear();
    if (meta) rd_kafka_destroy(meta);
  }
};

KafkaLog::KafkaLog(Store& store, std::unique_ptr<RocksDbLog> local, const KafkaLogOptions& options)
    : store_(store),
      local_(std::move(local)),
      options_(options),
      kafka_(std::make_unique<Kafka>()),
      followed_(local_->partition_count(), 0),
      high_(local_->partition_count(), 0) {}

KafkaLog::~KafkaLog() {
  stopping_ = true;
  if (follower_.joinable()) follower_.join();
  kafka_.reset();
}

Result<std::unique_ptr<KafkaLog>> KafkaLog::open(Store& store, uint32_t partition_count,
                                                 const KafkaLogOptions& options) {
  auto local = RocksDbLog::open(store, partition_count);
  if (!local.is_ok()) return local.status();
  std::unique_ptr<KafkaLog> log(new KafkaLog(store, std::move(local.value()), options));
  if (auto s = log->start(); !s.is_ok()) return s;
  return log;
}

Status KafkaLog::start() {
  const uint32_t partitions = local_->partition_count();
  const auto& topic = options_.topic;
  char error[512];

  auto meta_conf = kafka::make_conf(options_.client, {{"allow.auto.create.topics", "false"}});
  if (!meta_conf.is_ok()) return meta_conf.status();
  kafka_->meta = rd_kafka_new(RD_KAFKA_PRODUCER, meta_conf.value(), error, sizeof error);
  if (kafka_->meta == nullptr)
    return Status::invalid_argument(std::string("Kafka client: ") + error);
  auto brokers = kafka::reach_brokers(kafka_->meta, options_.client);
  if (!brokers.is_ok()) return brokers.status();
  // Created first (an existing topic is left as it is): asking a broker about a missing topic
  // may create it, with the broker's default partition count.
  kafka::create_topics(kafka_->meta, {topic}, static_cast<int>(partitions),
                       options_.replication_factor, brokers.value());
  auto count = kafka::partition_count(kafka_->meta, topic, options_.client.connect_timeout);
  if (!count.is_ok()) return count.status();
  if (count.value() != static_cast<int>(partitions)) {
    return Status::invalid_argument("Expected topic " + topic + " to have the data directory's " +
                                    std::to_string(partitions) + " partitions, but it has " +
                                    std::to_string(count.value()) +
                                    (count.value() == 0 ? " (it could not be created)" : ""));
  }

  // The follower: every partition, from where the local copy stands.
  // (librdkafka wants a group even for assigned partitions; nothing is committed to it.)
  auto consumer_conf = kafka::make_conf(options_.client, {{"group.id", "crm-events-follower"},
                                                          {"isolation.level", "read_committed"},
                                                          {"enable.partition.eof", "true"},
                                                          {"enable.auto.commit", "false"},
                                                          {"enable.auto.offset.store", "false"},
                                                          {"auto.offset.reset", "earliest"}});
  if (!consumer_conf.is_ok()) return consumer_conf.status();
  kafka_->consumer = rd_kafka_new(RD_KAFKA_CONSUMER, consumer_conf.value(), error, sizeof error);
  if (kafka_->consumer == nullptr)
    return Status::invalid_argument(std::string("Kafka consumer: ") + error);
  rd_kafka_poll_set_consumer(kafka_->consumer);
  rd_kafka_topic_partition_list_t* assignment = rd_kafka_topic_partition_list_new(partitions);
  for (uint32_t p = 0; p < partitions; ++p) {
    std::string stored;
    int64_t from = 0;
    auto s = store_.get(Store::Family::kCheckpoints, checkpoint_key(topic, p), &stored);
    if (s.is_ok() && stored.size() == 8) {
      from = static_cast<int64_t>(get_u64_be(stored));
    } else if (s.code() != StatusCode::kNotFound && !s.is_ok()) {
      rd_kafka_topic_partition_list_destroy(assignment);
      return s;
    }
    followed_[p] = from;
    rd_kafka_topic_partition_list_add(assignment, topic.c_str(), static_cast<int32_t>(p))->offset =
        from;
  }
  auto err = rd_kafka_assign(kafka_->consumer, assignment);
  rd_kafka_topic_partition_list_destroy(assignment);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
    return Status::unavailable("cannot read " + topic + ": " + rd_kafka_err2str(err));

  // What was committed before now the local copy holds before this returns (take() then waits
  // again for what an earlier owner of a partition committed until it was fenced).
  std::vector<int64_t> ends(partitions, 0);
  for (uint32_t p = 0; p < partitions; ++p) {
    int64_t low = 0;
    err = rd_kafka_query_watermark_offsets(
        kafka_->consumer, topic.c_str(), static_cast<int32_t>(p), &low, &ends[p],
        static_cast<int>(options_.client.connect_timeout.count()));
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
      return Status::unavailable("cannot read the end of " + topic + " partition " +
                                 std::to_string(p) + ": " + rd_kafka_err2str(err));
  }
  {
    std::lock_guard lock(follow_mu_);
    high_ = ends;
  }
  follower_ = std::thread([this] { follow(); });
  if (auto s = wait_caught_up(ends, std::chrono::steady_clock::now() + options_.catch_up_timeout);
      !s.is_ok())
    return s;

  for (uint32_t p = 0; p < partitions; ++p)
    kafka_->owners.push_back(std::make_unique<Kafka::Owner>());
  std::vector<uint32_t> owned = options_.owned;
  if (options_.owns_all) {
    owned.clear();
    for (uint32_t p = 0; p < partitions; ++p) owned.push_back(p);
  }
  for (uint32_t p : owned) {
    if (p >= partitions) return Status::invalid_argument("no partition " + std::to_string(p));
    if (auto s = take(p); !s.is_ok()) return s;
  }
  return Status::ok();
}

Status KafkaLog::take(uint32_t partition) {
  if (partition >= partition_count())
    return Status::invalid_argument("no partition " + std::to_string(partition));
  Kafka::Owner& owner = *kafka_->owners[partition];
  std::lock_guard lock(owner.mu);
  if (owner.owned) return Status::ok();
  const std::string where = options_.topic + " partition " + std::to_string(partition);
  if (owner.producer) {
    rd_kafka_destroy(owner.producer);
    owner.producer = nullptr;
  }
  owner.fenced.clear();
  char error[512];
  auto conf = kafka::make_conf(
      options_.client,
      {{"transactional.id", options_.transactional_id_prefix + std::to_string(partition)},
       {"transaction.timeout.ms", std::to_string(options_.transaction_timeout.count())},
       {"acks", "all"}});
  if (!conf.is_ok()) return conf.status();
  owner.producer = rd_kafka_new(RD_KAFKA_PRODUCER, conf.value(), error, sizeof error);
  if (owner.producer == nullptr)
    return Status::invalid_argument(std::string("Kafka producer: ") + error);
  // Fences any earlier producer with this id (an earlier owner) and settles its transaction.
  if (rd_kafka_error_t* e = rd_kafka_init_transactions(
          owner.producer, static_cast<int>(options_.transaction_timeout.count()))) {
    return Status::unavailable("cannot take " + where + ": " + error_text(e));
  }
  // Everything the earlier owner committed, in the local copy before the first append here.
  std::vector<int64_t> ends;
  {
    std::lock_guard follow_lock(follow_mu_);
    ends = followed_;
  }
  int64_t low = 0;
  auto err = rd_kafka_query_watermark_offsets(
      kafka_->consumer, options_.topic.c_str(), static_cast<int32_t>(partition), &low,
      &ends[partition], static_cast<int>(options_.client.connect_timeout.count()));
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
    return Status::unavailable("cannot read the end of " + where + ": " + rd_kafka_err2str(err));
  if (auto s = wait_caught_up(ends, std::chrono::steady_clock::now() + options_.catch_up_timeout);
      !s.is_ok())
    return s;
  owner.owned = true;
  return Status::ok();
}

void KafkaLog::release(uint32_t partition) {
  if (partition >= kafka_->owners.size()) return;
  Kafka::Owner& owner = *kafka_->owners[partition];
  std::lock_guard lock(owner.mu);
  owner.owned = false;
  if (owner.producer) {
    rd_kafka_destroy(owner.producer);
    owner.producer = nullptr;
  }
}

void KafkaLog::set_on_replicated(
    std::function<void(uint32_t, const std::vector<RocksDbLog::Replicated>&)> f) {
  std::lock_guard lock(follow_mu_);
  on_replicated_ = std::move(f);
}

Status KafkaLog::wait_caught_up(const std::vector<int64_t>& ends,
                                std::chrono::steady_clock::time_point deadline) {
  std::unique_lock lock(follow_mu_);
  const bool done = follow_cv_.wait_until(lock, deadline, [&] {
    if (!follower_status_.is_ok()) return true;
    for (size_t p = 0; p < ends.size(); ++p)
      if (followed_[p] < ends[p]) return false;
    return true;
  });
  if (!follower_status_.is_ok()) return follower_status_;
  if (!done)
    return Status::unavailable("the local copy of " + options_.topic + " did not catch up within " +
                               std::to_string(options_.catch_up_timeout.count()) + " ms");
  return Status::ok();
}

bool KafkaLog::owns(uint32_t partition) const {
  return partition < kafka_->owners.size() && kafka_->owners[partition]->owned;
}

Status KafkaLog::writable(uint32_t partition) const {
  if (partition >= partition_count())
    return Status::invalid_argument("no partition " + std::to_string(partition));
  if (!owns(partition))
    return Status::unavailable("partition " + std::to_string(partition) + " of " + options_.topic +
                               " is owned by another instance");
  return follower_status();
}

Status KafkaLog::follower_status() const {
  std::lock_guard lock(follow_mu_);
  return follower_status_;
}

int64_t KafkaLog::lag() const {
  std::lock_guard lock(follow_mu_);
  int64_t lag = 0;
  for (size_t p = 0; p < high_.size(); ++p) lag += std::max<int64_t>(0, high_[p] - followed_[p]);
  return lag;
}

Result<AppendResult> KafkaLog::append(AppendRequest request) {
  if (request.partition >= partition_count())
    return Status::invalid_argument("no partition " + std::to_string(request.partition));
  if (auto s = writable(request.partition); !s.is_ok()) return Status::aborted(s.message());
  return local_->append_published(
      std::move(request), [this](uint32_t partition, const std::vector<StreamAppend>& sealed,
                                 const std::vector<SideWrite>& side_writes) {
        return publish(partition, sealed, side_writes);
      });
}

// Runs under the local copy's append lock of `partition`: one transaction at a time per producer.
Status KafkaLog::publish(uint32_t partition, const std::vector<StreamAppend>& sealed,
                         const std::vector<SideWrite>& side_writes) {
  size_t total = 0;
  for (const auto& stream : sealed) total += stream.events.size();
  // Side writes alone (an idempotency key of a command that changed nothing) stay local.
  if (total == 0) return Status::ok();
  Kafka::Owner& owner = *kafka_->owners[partition];
  std::lock_guard lock(owner.mu);
  const std::string where = options_.topic + " partition " + std::to_string(partition);
  if (!owner.owned) return Status::aborted(where + " is owned by another instance");
  if (!owner.fenced.empty()) return Status::aborted(where + ": " + owner.fenced);
  const int timeout_ms = static_cast<int>(options_.transaction_timeout.count());

  // A failed transaction is aborted (nothing of it is visible to read_committed readers); a
  // producer fenced by a newer owner never writes again.
  auto fail = [&](rd_kafka_error_t* e, const char* step) -> Status {
    const bool abort = rd_kafka_error_txn_requires_abort(e);
    const bool fatal = rd_kafka_error_is_fatal(e);
    std::string text = std::string(step) + ": " + error_text(e);
    if (fatal) {
      owner.fenced = "this instance no longer owns it (" + text + ")";
      owner.owned = false;
      return Status::aborted(where + ": " + owner.fenced);
    }
    if (abort) {
      if (rd_kafka_error_t* a = rd_kafka_abort_transaction(owner.producer, timeout_ms))
        text += "; abort: " + error_text(a);
    }
    return Status::aborted(where + ": the transaction failed, nothing was stored (" + text + ")");
  };

  if (rd_kafka_error_t* e = rd_kafka_begin_transaction(owner.producer)) return fail(e, "begin");
  size_t produced = 0;
  std::string value;
  for (const auto& stream : sealed) {
    const std::string& key = stream.partition_key.empty() ? stream.stream_id : stream.partition_key;
    for (const auto& event : stream.events) {
      ++produced;
      event.SerializeToString(&value);
      rd_kafka_headers_t* headers =
          rd_kafka_headers_new(produced == total ? side_writes.size() : 0);
      if (produced == total) {
        for (const auto& write : side_writes) {
          const std::string encoded = encode_side_write(write);
          rd_kafka_header_add(headers, kSideWriteHeader, -1, encoded.data(),
                              static_cast<ssize_t>(encoded.size()));
        }
      }
      auto err = rd_kafka_producev(
          owner.producer, RD_KAFKA_V_TOPIC(options_.topic.c_str()),
          RD_KAFKA_V_PARTITION(static_cast<int32_t>(partition)),
          RD_KAFKA_V_KEY(key.data(), key.size()), RD_KAFKA_V_VALUE(value.data(), value.size()),
          RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_HEADERS(headers), RD_KAFKA_V_END);
      if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        rd_kafka_headers_destroy(headers);  // not taken by librdkafka on failure
        std::string text = std::string("produce: ") + rd_kafka_err2str(err);
        if (rd_kafka_error_t* a = rd_kafka_abort_transaction(owner.producer, timeout_ms))
          text += "; abort: " + error_text(a);
        return Status::unavailable(where + ": the transaction failed, nothing was stored (" + text +
                                   ")");
      }
    }
  }
  const auto deadline = std::chrono::steady_clock::now() + options_.transaction_timeout;
  for (;;) {
    rd_kafka_error_t* e = rd_kafka_commit_transaction(owner.producer, timeout_ms);
    if (e == nullptr) return Status::ok();
    if (rd_kafka_error_is_retriable(e) && std::chrono::steady_clock::now() < deadline) {
      rd_kafka_error_destroy(e);
      continue;
    }
    return fail(e, "commit");
  }
}

void KafkaLog::follow() {
  const uint32_t partitions = partition_count();
  std::vector<std::vector<RocksDbLog::Replicated>> pending(partitions);
  std::vector<int64_t> next(partitions, -1);  // Kafka offset after the last record taken
  std::vector<int64_t> eof(partitions, -1);
  // The local copy cannot take a record: following stops (readiness reports it); nothing skipped.
  auto stop_following = [&](Status s) {
    std::lock_guard lock(follow_mu_);
    follower_status_ = std::move(s);
    follow_cv_.notify_all();
  };

  while (!stopping_) {
    size_t taken = 0;
    rd_kafka_message_t* message = rd_kafka_consumer_poll(kafka_->consumer, 100);
    while (message != nullptr) {
      const auto p = static_cast<uint32_t>(message->partition);
      if (message->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        if (p < partitions) eof[p] = std::max(eof[p], message->offset);
      } else if (message->err == RD_KAFKA_RESP_ERR_NO_ERROR && p < partitions) {
        RocksDbLog::Replicated replicated;
        if (!replicated.event.ParseFromArray(message->payload, static_cast<int>(message->len))) {
          rd_kafka_message_destroy(message);
          return stop_following(Status::corruption(
              "unreadable event in " + options_.topic + " partition " + std::to_string(p) +
              " at Kafka offset " + std::to_string(message->offset)));
        }
        rd_kafka_headers_t* headers = nullptr;
        if (rd_kafka_message_headers(message, &headers) == RD_KAFKA_RESP_ERR_NO_ERROR) {
          const void* data = nullptr;
          size_t size = 0;
          for (size_t i = 0; rd_kafka_header_get(headers, i, kSideWriteHeader, &data, &size) ==
                             RD_KAFKA_RESP_ERR_NO_ERROR;
               ++i) {
            auto write = decode_side_write(std::string_view(static_cast<const char*>(data), size));
            if (!write.is_ok()) {
              rd_kafka_message_destroy(message);
              return stop_following(write.status());
            }
            replicated.side_writes.push_back(std::move(write.value()));
          }
        }
        pending[p].push_back(std::move(replicated));
        next[p] = message->offset + 1;
      }
      // Other errors (a broker away for a moment) are librdkafka's to retry.
      rd_kafka_message_destroy(message);
      if (++taken >= kFollowBatchMax || stopping_) break;
      message = rd_kafka_consumer_poll(kafka_->consumer, 0);
    }

    for (uint32_t p = 0; p < partitions; ++p) {
      if (next[p] >= 0) {
        std::string value;
        put_u64_be(value, static_cast<uint64_t>(next[p]));
        auto s = local_->apply_replicated(
            p, pending[p],
            {{SideWrite::Table::kCheckpoint, checkpoint_key(options_.topic, p), value}});
        if (!s.is_ok()) return stop_following(s);
        std::function<void(uint32_t, const std::vector<RocksDbLog::Replicated>&)> notify;
        {
          std::lock_guard lock(follow_mu_);
          notify = on_replicated_;
        }
        if (notify && !pending[p].empty()) notify(p, pending[p]);
        pending[p].clear();
      }
      int64_t low = 0, high = 0;
      const bool known = rd_kafka_get_watermark_offsets(kafka_->consumer, options_.topic.c_str(),
                                                        static_cast<int32_t>(p), &low,
                                                        &high) == RD_KAFKA_RESP_ERR_NO_ERROR;
      std::lock_guard lock(follow_mu_);
      followed_[p] = std::max({followed_[p], next[p], eof[p]});
      if (known) high_[p] = std::max(high_[p], high);
      next[p] = eof[p] = -1;
    }
    follow_cv_.notify_all();
  }
}

}  // namespace crm
