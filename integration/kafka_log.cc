#include "integration/kafka_log.h"

#include <librdkafka/rdkafka.h>

#include <algorithm>

#include "events/codec.h"

namespace crm {
namespace {

constexpr char kSideWriteHeader[] = "crm-side-write";
// On the last record of each append: the follower stores an append only once it has all of it.
constexpr char kAppendEndHeader[] = "crm-append-end";
constexpr size_t kFollowBatchMax = 2000;  // records stored in one local step
// Side writes a record carries before the next record of the append takes the rest: keeps each
// record well below Kafka's message.max.bytes (1 MB by default).
constexpr size_t kSideWriteBytesPerRecord = 256 * 1024;

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
    std::string lost;  // why it was given up after a transaction it could not settle
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
  stop_following();
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

  auto meta = kafka::new_client(RD_KAFKA_PRODUCER, options_.client,
                                {{"allow.auto.create.topics", "false"}});
  if (!meta.is_ok()) return meta.status();
  kafka_->meta = meta.value();
  auto brokers = kafka::reach_brokers(kafka_->meta, options_.client);
  if (!brokers.is_ok()) return brokers.status();
  // Created first (an existing topic is left as it is): asking a broker about a missing topic
  // may create it, with the broker's default partition count.
  // The log is kept whole (a new instance rebuilds from its first record), replicated.
  kafka::create_topics(
      kafka_->meta, {topic}, static_cast<int>(partitions), options_.replication_factor,
      brokers.value(),
      {{"retention.ms", "-1"}, {"retention.bytes", "-1"}, {"cleanup.policy", "delete"}});
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
  auto consumer = kafka::new_client(RD_KAFKA_CONSUMER, options_.client,
                                    {{"group.id", "crm-events-follower"},
                                     {"isolation.level", "read_committed"},
                                     {"enable.partition.eof", "true"},
                                     {"enable.auto.commit", "false"},
                                     {"enable.auto.offset.store", "false"},
                                     {"auto.offset.reset", "error"}});
  if (!consumer.is_ok()) return consumer.status();
  kafka_->consumer = consumer.value();
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
  for (uint32_t p : owned)
    if (p >= partitions) return Status::invalid_argument("no partition " + std::to_string(p));
  // Taken side by side: each waits on its own transaction coordinator.
  std::vector<Status> taken(owned.size());
  std::vector<std::thread> takers;
  for (size_t i = 0; i < owned.size(); ++i)
    takers.emplace_back([&, i] { taken[i] = take(owned[i]); });
  for (auto& t : takers) t.join();
  for (const auto& s : taken)
    if (!s.is_ok()) return s;
  return Status::ok();
}

Status KafkaLog::take(uint32_t partition) {
  if (partition >= partition_count())
    return Status::invalid_argument("no partition " + std::to_string(partition));
  Kafka::Owner& owner = *kafka_->owners[partition];
  const std::string where = options_.topic + " partition " + std::to_string(partition);
  {
    std::lock_guard lock(owner.mu);
    if (owner.owned) return Status::ok();
    if (owner.producer) {
      rd_kafka_destroy(owner.producer);
      owner.producer = nullptr;
    }
    auto producer = kafka::new_client(
        RD_KAFKA_PRODUCER, options_.client,
        {{"transactional.id", options_.transactional_id_prefix + std::to_string(partition)},
         {"transaction.timeout.ms", std::to_string(options_.transaction_timeout.count())},
         {"acks", "all"}});
    if (!producer.is_ok()) return producer.status();
    owner.producer = producer.value();
    // Fences any earlier producer with this id (an earlier owner, or this instance before a
    // transaction it could not settle) and settles its transaction.
    if (rd_kafka_error_t* e = rd_kafka_init_transactions(
            owner.producer, static_cast<int>(options_.transaction_timeout.count()))) {
      return Status::unavailable("cannot take " + where + ": " + error_text(e));
    }
  }
  // Everything committed until now, in the local copy before the first append here. (Not under
  // owner.mu: the follower may wait for an append's lock, and appends do not wait for take.)
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
  std::lock_guard lock(owner.mu);
  if (owner.producer == nullptr)
    return Status::unavailable("released while " + where + " was taken");
  owner.lost.clear();
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
  return health();
}

Status KafkaLog::health() const {
  auto s = follower_status();
  if (s.is_ok()) return s;
  return Status::unavailable("this instance stopped following " + options_.topic + ": " +
                             s.to_string());
}

void KafkaLog::stop_following() {
  stopping_ = true;
  if (follower_.joinable()) follower_.join();
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

// Gives the partition up after a transaction whose outcome this producer cannot settle (a
// commit that timed out, an abort that failed, a fence): the owner's loop takes it again, which
// settles the transaction (init_transactions) and catches the local copy up before anything else
// is appended. Called with owner.mu held.
void KafkaLog::abandon(uint32_t partition, const std::string& why) {
  Kafka::Owner& owner = *kafka_->owners[partition];
  owner.owned = false;
  owner.lost = why;
  if (owner.producer) {
    rd_kafka_destroy(owner.producer);
    owner.producer = nullptr;
  }
}

// Runs under the local copy's append lock of `partition`: one transaction at a time per producer.
// Every failure is kAborted: the batch is refused and nothing of it is in the local copy; when
// the transaction's outcome is unknown the partition is given up until it is taken again.
Status KafkaLog::publish(uint32_t partition, const std::vector<StreamAppend>& sealed,
                         const std::vector<SideWrite>& side_writes) {
  size_t total = 0;
  for (const auto& stream : sealed) total += stream.events.size();
  // Side writes alone (an idempotency key of a command that changed nothing) stay local.
  if (total == 0) return Status::ok();
  Kafka::Owner& owner = *kafka_->owners[partition];
  const std::string where = options_.topic + " partition " + std::to_string(partition);
  // Checked before the lock too: take() holds it while it fences, and appends must not wait.
  if (!owner.owned) return Status::aborted(where + " is not owned by this instance now");
  std::lock_guard lock(owner.mu);
  if (!owner.owned) return Status::aborted(where + " is not owned by this instance now");
  const int timeout_ms = static_cast<int>(options_.transaction_timeout.count());
  const std::string nothing_stored = where + ": the transaction failed, nothing was stored (";
  const std::string unknown =
      where + ": the transaction's outcome is unknown; retry with the same Idempotency-Key (";

  // Aborts the open transaction; false when even that failed (the partition is given up).
  auto abort_open = [&](std::string& text) {
    rd_kafka_error_t* a = rd_kafka_abort_transaction(owner.producer, timeout_ms);
    if (a == nullptr) return true;
    text += "; abort: " + error_text(a);
    abandon(partition, text);
    return false;
  };

  if (rd_kafka_error_t* e = rd_kafka_begin_transaction(owner.producer)) {
    const bool fatal = rd_kafka_error_is_fatal(e);
    std::string text = "begin: " + error_text(e);
    if (fatal) abandon(partition, text);
    return Status::aborted(nothing_stored + text + ")");
  }
  // Side writes spread over the append's records, in order, a bounded share each.
  std::vector<std::vector<const SideWrite*>> carried(total);
  {
    size_t record = 0, bytes = 0;
    for (const auto& write : side_writes) {
      const size_t size = write.key.size() + write.value.size() + 8;
      if (bytes > 0 && bytes + size > kSideWriteBytesPerRecord && record + 1 < total) {
        ++record;
        bytes = 0;
      }
      carried[record].push_back(&write);
      bytes += size;
    }
  }
  size_t produced = 0;
  std::string value;
  for (const auto& stream : sealed) {
    const std::string& key = stream.partition_key.empty() ? stream.stream_id : stream.partition_key;
    for (const auto& event : stream.events) {
      event.SerializeToString(&value);
      rd_kafka_headers_t* headers = rd_kafka_headers_new(carried[produced].size() + 1);
      for (const SideWrite* write : carried[produced]) {
        const std::string encoded = encode_side_write(*write);
        rd_kafka_header_add(headers, kSideWriteHeader, -1, encoded.data(),
                            static_cast<ssize_t>(encoded.size()));
      }
      if (++produced == total) {
        const std::string records = std::to_string(total);
        rd_kafka_header_add(headers, kAppendEndHeader, -1, records.data(),
                            static_cast<ssize_t>(records.size()));
      }
      auto err = rd_kafka_producev(
          owner.producer, RD_KAFKA_V_TOPIC(options_.topic.c_str()),
          RD_KAFKA_V_PARTITION(static_cast<int32_t>(partition)),
          RD_KAFKA_V_KEY(key.data(), key.size()), RD_KAFKA_V_VALUE(value.data(), value.size()),
          RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_HEADERS(headers), RD_KAFKA_V_END);
      if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        rd_kafka_headers_destroy(headers);  // not taken by librdkafka on failure
        std::string text = std::string("produce: ") + rd_kafka_err2str(err);
        abort_open(text);
        return Status::aborted(nothing_stored + text + ")");
      }
    }
  }
  const auto deadline = std::chrono::steady_clock::now() + options_.transaction_timeout;
  for (;;) {
    rd_kafka_error_t* e = rd_kafka_commit_transaction(owner.producer, timeout_ms);
    if (e == nullptr) return Status::ok();
    const bool retriable = rd_kafka_error_is_retriable(e);
    if (retriable && std::chrono::steady_clock::now() < deadline) {
      rd_kafka_error_destroy(e);
      continue;
    }
    const bool requires_abort = rd_kafka_error_txn_requires_abort(e);
    std::string text = "commit: " + error_text(e);
    if (requires_abort) {  // the broker refused it: nothing of it is visible
      abort_open(text);
      return Status::aborted(nothing_stored + text + ")");
    }
    // Fenced, or no answer in time: it may have committed. Taken again, the partition settles
    // it and the local copy gets it from crm.events if it did.
    abandon(partition, text);
    return Status::aborted(unknown + text + ")");
  }
}

void KafkaLog::follow() {
  const uint32_t partitions = partition_count();
  // Records read but not yet stored: whole appends are stored, an incomplete one waits.
  struct Read {
    RocksDbLog::Replicated replicated;
    int64_t kafka_offset;
    bool append_end;
  };
  std::vector<std::vector<Read>> pending(partitions);
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
      } else if (message->err == RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET) {
        std::string why = rd_kafka_message_errstr(message);
        rd_kafka_message_destroy(message);
        return stop_following(Status::unavailable(
            options_.topic + " partition " + std::to_string(p) +
            " no longer holds the records the local copy needs next (" + why +
            "): was its retention limited? The log on Kafka must be kept whole"));
      } else if (message->err == RD_KAFKA_RESP_ERR_NO_ERROR && p < partitions) {
        RocksDbLog::Replicated replicated;
        if (!replicated.event.ParseFromArray(message->payload, static_cast<int>(message->len))) {
          rd_kafka_message_destroy(message);
          return stop_following(Status::corruption(
              "unreadable event in " + options_.topic + " partition " + std::to_string(p) +
              " at Kafka offset " + std::to_string(message->offset)));
        }
        bool append_end = false;
        rd_kafka_headers_t* headers = nullptr;
        if (rd_kafka_message_headers(message, &headers) == RD_KAFKA_RESP_ERR_NO_ERROR) {
          const void* end_value = nullptr;
          size_t end_size = 0;
          append_end = rd_kafka_header_get_last(headers, kAppendEndHeader, &end_value, &end_size) ==
                       RD_KAFKA_RESP_ERR_NO_ERROR;
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
        pending[p].push_back({std::move(replicated), message->offset, append_end});
      }
      // Other errors (a broker away for a moment) are librdkafka's to retry.
      rd_kafka_message_destroy(message);
      if (++taken >= kFollowBatchMax || stopping_) break;
      message = rd_kafka_consumer_poll(kafka_->consumer, 0);
    }

    for (uint32_t p = 0; p < partitions; ++p) {
      auto& read = pending[p];
      // Up to the end of the last whole append read; the rest waits for its end.
      size_t whole = read.size();
      while (whole > 0 && !read[whole - 1].append_end) --whole;
      int64_t next = -1;
      if (whole > 0) {
        std::vector<RocksDbLog::Replicated> batch;
        batch.reserve(whole);
        for (size_t i = 0; i < whole; ++i) batch.push_back(std::move(read[i].replicated));
        next = read[whole - 1].kafka_offset + 1;
        std::string value;
        put_u64_be(value, static_cast<uint64_t>(next));
        auto s = local_->apply_replicated(
            p, batch, {{SideWrite::Table::kCheckpoint, checkpoint_key(options_.topic, p), value}});
        if (!s.is_ok()) return stop_following(s);
        std::function<void(uint32_t, const std::vector<RocksDbLog::Replicated>&)> notify;
        {
          std::lock_guard lock(follow_mu_);
          notify = on_replicated_;
        }
        if (notify) notify(p, batch);
        read.erase(read.begin(), read.begin() + static_cast<std::ptrdiff_t>(whole));
      }
      int64_t low = 0, high = 0;
      const bool known = rd_kafka_get_watermark_offsets(kafka_->consumer, options_.topic.c_str(),
                                                        static_cast<int32_t>(p), &low,
                                                        &high) == RD_KAFKA_RESP_ERR_NO_ERROR;
      std::lock_guard lock(follow_mu_);
      followed_[p] = std::max(followed_[p], next);
      // At the end of what is committed, unless part of an append is still to come.
      if (read.empty()) followed_[p] = std::max(followed_[p], eof[p]);
      if (known) high_[p] = std::max(high_[p], high);
      eof[p] = -1;
    }
    follow_cv_.notify_all();
  }
}

}  // namespace crm
