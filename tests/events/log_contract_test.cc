// The EventLog contract (events/event_log.h), written once and run against every
// implementation: add a LogBackend to INSTANTIATE_TEST_SUITE_P below for each new one.
#include <gtest/gtest.h>

#include <atomic>
#include <deque>
#include <set>
#include <thread>

#include "customer.pb.h"
#include "events/codec.h"
#include "events/hash_chain.h"
#include "events/rocksdb_log.h"
#include "integration/kafka_log.h"
#include "tests/support/kafka_mock.h"
#include "tests/support/test_support.h"

namespace crm {
namespace {

// An implementation under test, reopenable over the same storage.
class LogHarness {
 public:
  virtual ~LogHarness() = default;
  virtual EventLog& log() = 0;
  virtual Store& store() = 0;  // where the log's side writes go
  virtual void reopen() = 0;   // close and open again over the same data
};

class RocksDbHarness final : public LogHarness {
 public:
  explicit RocksDbHarness(uint32_t partitions) : partitions_(partitions) { reopen(); }
  EventLog& log() override { return *log_; }
  Store& store() override { return *store_; }
  void reopen() override {
    log_.reset();
    store_.reset();
    StoreOptions options;
    options.path = dir_.path() + "/db";
    auto store = Store::open(options);
    ASSERT_TRUE(store.is_ok()) << store.status().to_string();
    store_ = std::move(store.value());
    auto log = RocksDbLog::open(*store_, partitions_);
    ASSERT_TRUE(log.is_ok()) << log.status().to_string();
    log_ = std::move(log.value());
  }

 private:
  testing::TempDir dir_;
  uint32_t partitions_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<RocksDbLog> log_;
};

// The log on Kafka: librdkafka's mock cluster (3 brokers, its own process, shared by the suite),
// a topic and transactional ids of the harness's own, and the local copy in a directory that a
// reopen keeps — or, with `fresh_copy`, replaces by an empty one, so that everything read after
// the reopen comes back from crm.events.
class KafkaHarness final : public LogHarness {
 public:
  KafkaHarness(uint32_t partitions, bool fresh_copy)
      : partitions_(partitions), fresh_copy_(fresh_copy) {
    static std::atomic<int> harnesses{0};
    const int n = harnesses++;
    options_.client.brokers = cluster().bootstrap();
    options_.topic = "crm.events." + std::to_string(n);
    options_.transactional_id_prefix = "crm-events-" + std::to_string(n) + "-";
    options_.replication_factor = 3;
    reopen();
  }
  EventLog& log() override { return *log_; }
  Store& store() override { return *store_; }
  void reopen() override {
    log_.reset();
    store_.reset();
    if (fresh_copy_) dirs_.emplace_back();
    ASSERT_FALSE(cluster().bootstrap().empty()) << cluster().error();
    StoreOptions store_options;
    store_options.path = dirs_.back().path() + "/db";
    auto store = Store::open(store_options);
    ASSERT_TRUE(store.is_ok()) << store.status().to_string();
    store_ = std::move(store.value());
    auto log = KafkaLog::open(*store_, partitions_, options_);
    ASSERT_TRUE(log.is_ok()) << log.status().to_string();
    log_ = std::move(log.value());
  }

 private:
  static testing::KafkaMock& cluster() {
    static testing::KafkaMock mock(3);
    return mock;
  }
  uint32_t partitions_;
  bool fresh_copy_;
  KafkaLogOptions options_;
  std::deque<testing::TempDir> dirs_{1};
  std::unique_ptr<Store> store_;
  std::unique_ptr<KafkaLog> log_;
};

struct LogBackend {
  std::string name;
  std::function<std::unique_ptr<LogHarness>(uint32_t partitions)> make;
};

events::EventEnvelope event(const std::string& name) {
  customer::CustomerRegistered data;
  data.set_name(name);
  events::EventEnvelope e;
  e.set_event_id("evt-" + name);
  e.set_stream_type("customer");
  e.set_event_type(data.GetDescriptor()->full_name());
  e.set_schema_version(1);
  e.mutable_actor()->set_principal_id("tester");
  e.mutable_data()->PackFrom(data);
  return e;
}

std::string name_of(const events::EventEnvelope& e) {
  customer::CustomerRegistered data;
  e.data().UnpackTo(&data);
  return data.name();
}

AppendRequest request(uint32_t partition, const std::string& stream, uint64_t expected,
                      std::vector<std::string> names) {
  AppendRequest r;
  r.partition = partition;
  StreamAppend s{stream, expected, {}};
  for (auto& n : names) s.events.push_back(event(n));
  r.streams.push_back(std::move(s));
  return r;
}

void PrintTo(const LogBackend& backend, std::ostream* out) { *out << backend.name; }

class LogContract : public ::testing::TestWithParam<LogBackend> {
 protected:
  void SetUp() override { harness_ = GetParam().make(4); }
  EventLog& log() { return harness_->log(); }
  Store& store() { return harness_->store(); }
  std::unique_ptr<LogHarness> harness_;
};

TEST_P(LogContract, AppendAssignsVersionsOffsetsAndHashes) {
  auto first = log().append(request(1, "s-a", kNoStream, {"a1", "a2"}));
  ASSERT_TRUE(first.is_ok()) << first.status().to_string();
  auto second = log().append(request(1, "s-b", kNoStream, {"b1"}));
  ASSERT_TRUE(second.is_ok());
  const auto& a = first->sealed[0].events;
  EXPECT_EQ(a[0].stream_version(), 1u);
  EXPECT_EQ(a[1].stream_version(), 2u);
  EXPECT_EQ(a[0].position().partition(), 1u);
  EXPECT_EQ(a[0].position().offset(), 0u);
  EXPECT_EQ(a[1].position().offset(), 1u);
  EXPECT_EQ(second->sealed[0].events[0].position().offset(), 2u);
  EXPECT_EQ(a[0].previous_hash(), "");
  EXPECT_EQ(a[1].previous_hash(), a[0].hash());
  EXPECT_EQ(a[0].hash().size(), 32u);
  EXPECT_EQ(log().end_offset(1), 3u);
  EXPECT_EQ(log().end_offset(0), 0u);
  auto head = log().stream_head("s-a");
  ASSERT_TRUE(head.is_ok());
  EXPECT_EQ(head->version, 2u);
  EXPECT_EQ(head->hash, a[1].hash());
}

TEST_P(LogContract, StaleExpectedVersionIsRefusedAndStoresNothing) {
  ASSERT_TRUE(log().append(request(0, "s", kNoStream, {"1"})).is_ok());
  auto stale = log().append(request(0, "s", kNoStream, {"dup"}));
  EXPECT_EQ(stale.status().code(), StatusCode::kConflict);
  auto behind = log().append(request(0, "s", 5, {"x"}));
  EXPECT_EQ(behind.status().code(), StatusCode::kConflict);
  EXPECT_EQ(log().end_offset(0), 1u);
  ASSERT_TRUE(log().append(request(0, "s", 1, {"2"})).is_ok());
  ASSERT_TRUE(log().append(request(0, "s", kAnyVersion, {"3"})).is_ok());
  auto events = log().read_stream("s", 1, 100);
  ASSERT_TRUE(events.is_ok());
  ASSERT_EQ(events->size(), 3u);
  EXPECT_EQ(name_of((*events)[2]), "3");
}

TEST_P(LogContract, AnAppendIsAllOrNothingAcrossStreams) {
  ASSERT_TRUE(log().append(request(2, "taken", kNoStream, {"t"})).is_ok());
  AppendRequest r = request(2, "fresh", kNoStream, {"f1"});
  r.streams.push_back({"taken", kNoStream, {event("t2")}});
  EXPECT_EQ(log().append(std::move(r)).status().code(), StatusCode::kConflict);
  EXPECT_EQ(log().stream_head("fresh")->version, 0u) << "the first stream must not be stored";
  EXPECT_EQ(log().end_offset(2), 1u);
}

TEST_P(LogContract, ReadsAPartitionFromAnyOffsetInOrder) {
  for (int i = 0; i < 20; ++i)
    ASSERT_TRUE(
        log()
            .append(request(3, "s" + std::to_string(i % 3), kAnyVersion, {std::to_string(i)}))
            .is_ok());
  for (uint64_t from : {0u, 7u, 19u, 20u, 100u}) {
    auto events = log().read_partition(3, from, 1000);
    ASSERT_TRUE(events.is_ok());
    ASSERT_EQ(events->size(), from >= 20 ? 0u : 20 - from) << "from " << from;
    for (size_t i = 0; i < events->size(); ++i) {
      EXPECT_EQ((*events)[i].position().offset(), from + i);
      EXPECT_EQ(name_of((*events)[i]), std::to_string(from + i));
    }
  }
  EXPECT_EQ(log().read_partition(3, 0, 5)->size(), 5u) << "max_events bounds a read";
}

TEST_P(LogContract, ReadsAStreamFromAVersion) {
  for (int i = 1; i <= 5; ++i)
    ASSERT_TRUE(log().append(request(0, "stream", kAnyVersion, {std::to_string(i)})).is_ok());
  ASSERT_TRUE(log().append(request(0, "other", kAnyVersion, {"o"})).is_ok());
  auto events = log().read_stream("stream", 3, 2);
  ASSERT_TRUE(events.is_ok());
  ASSERT_EQ(events->size(), 2u);
  EXPECT_EQ((*events)[0].stream_version(), 3u);
  EXPECT_EQ(name_of((*events)[1]), "4");
  EXPECT_TRUE(log().read_stream("missing", 1, 10)->empty());
  EXPECT_EQ(log().stream_head("missing")->version, 0u);
}

TEST_P(LogContract, StreamsHoldTheirHashChain) {
  for (int i = 1; i <= 4; ++i)
    ASSERT_TRUE(log().append(request(1, "chained", kAnyVersion, {std::to_string(i)})).is_ok());
  auto events = log().read_stream("chained", 1, 100);
  ASSERT_TRUE(events.is_ok());
  EXPECT_TRUE(hash_chain::verify(*events, "", 1).is_ok());

  auto changed = *events;
  customer::CustomerRegistered forged;
  forged.set_name("forged");
  changed[2].mutable_data()->PackFrom(forged);
  auto s = hash_chain::verify(changed, "", 1);
  EXPECT_EQ(s.code(), StatusCode::kCorruption);
  EXPECT_NE(s.message().find("version 3"), std::string::npos) << s.message();

  auto dropped = *events;
  dropped.erase(dropped.begin() + 1);
  EXPECT_NE(hash_chain::verify(dropped, "", 1).message().find("version 3"), std::string::npos);

  auto swapped = *events;
  std::swap(swapped[1], swapped[2]);
  EXPECT_FALSE(hash_chain::verify(swapped, "", 1).is_ok());
}

TEST_P(LogContract, SubscribersSeeEveryEventOnceInOrderFromAnyPosition) {
  ASSERT_TRUE(log().append(request(2, "early", kAnyVersion, {"0", "1", "2"})).is_ok());
  constexpr int kLater = 50;
  std::vector<std::string> seen;
  std::thread subscriber([&] {
    Subscription subscription(log(), 2, 1);
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (seen.size() < 2 + kLater && std::chrono::steady_clock::now() < deadline) {
      auto events = subscription.next(7, std::chrono::milliseconds(200));
      ASSERT_TRUE(events.is_ok());
      for (const auto& e : *events) seen.push_back(name_of(e));
    }
  });
  for (int i = 3; i < 3 + kLater; ++i)
    ASSERT_TRUE(log().append(request(2, "late", kAnyVersion, {std::to_string(i)})).is_ok());
  subscriber.join();
  ASSERT_EQ(seen.size(), 2u + kLater);
  for (size_t i = 0; i < seen.size(); ++i) EXPECT_EQ(seen[i], std::to_string(i + 1));
}

TEST_P(LogContract, SubscriptionWithNothingNewReturnsEmptyAfterItsTimeout) {
  Subscription subscription(log(), 0, 0);
  auto events = subscription.next(10, std::chrono::milliseconds(20));
  ASSERT_TRUE(events.is_ok());
  EXPECT_TRUE(events->empty());
}

TEST_P(LogContract, RacingWritersOnOneStreamExactlyOneWins) {
  ASSERT_TRUE(log().append(request(0, "contended", kNoStream, {"base"})).is_ok());
  constexpr int kWriters = 8;
  std::atomic<int> won{0}, conflicted{0};
  std::vector<std::thread> writers;
  for (int w = 0; w < kWriters; ++w) {
    writers.emplace_back([&, w] {
      auto r = log().append(request(0, "contended", 1, {"w" + std::to_string(w)}));
      (r.is_ok() ? won : conflicted)++;
      if (!r.is_ok()) {
        EXPECT_EQ(r.status().code(), StatusCode::kConflict);
      }
    });
  }
  for (auto& t : writers) t.join();
  EXPECT_EQ(won.load(), 1);
  EXPECT_EQ(conflicted.load(), kWriters - 1);
  EXPECT_EQ(log().stream_head("contended")->version, 2u);
}

TEST_P(LogContract, ConcurrentAppendsAreAllDurableAcrossReopen) {
  constexpr int kThreads = 8, kAppends = 100;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kAppends; ++i) {
        auto r = log().append(request(static_cast<uint32_t>(t % 4), "t" + std::to_string(t),
                                      static_cast<uint64_t>(i), {std::to_string(i)}));
        ASSERT_TRUE(r.is_ok()) << r.status().to_string();
      }
    });
  }
  for (auto& t : threads) t.join();
  harness_->reopen();
  uint64_t total = 0;
  for (uint32_t p = 0; p < 4; ++p) {
    total += log().end_offset(p);
    auto events = log().read_partition(p, 0, 100000);
    ASSERT_TRUE(events.is_ok());
    EXPECT_EQ(events->size(), log().end_offset(p));
    for (size_t i = 0; i < events->size(); ++i) EXPECT_EQ((*events)[i].position().offset(), i);
  }
  EXPECT_EQ(total, static_cast<uint64_t>(kThreads * kAppends));
  for (int t = 0; t < kThreads; ++t) {
    auto events = log().read_stream("t" + std::to_string(t), 1, 1000);
    ASSERT_EQ(events->size(), static_cast<size_t>(kAppends));
    EXPECT_TRUE(hash_chain::verify(*events, "", 1).is_ok());
  }
  // Appends continue where they left off.
  auto next = log().append(request(0, "t0", kAppends, {"after"}));
  ASSERT_TRUE(next.is_ok());
  EXPECT_EQ(next->sealed[0].events[0].stream_version(), static_cast<uint64_t>(kAppends + 1));
}

TEST_P(LogContract, SideWritesAreStoredWithTheirEventsAcrossReopen) {
  // Large ones too: together more than a Kafka record holds.
  const std::string large(300 * 1024, 'x');
  auto r = request(2, "with-state", kNoStream, {"s1", "s2", "s3"});
  r.side_writes = [&](const std::vector<StreamAppend>& sealed) {
    EXPECT_EQ(sealed[0].events.back().stream_version(), 3u);  // called once sealed
    return std::vector<SideWrite>{{SideWrite::Table::kState, "with-state", "v3"},
                                  {SideWrite::Table::kIdempotency, "key-1", large + "1"},
                                  {SideWrite::Table::kIdempotency, "key-2", large + "2"},
                                  {SideWrite::Table::kIdempotency, "key-3", large + "3"}};
  };
  ASSERT_TRUE(log().append(std::move(r)).is_ok());
  harness_->reopen();
  std::string value;
  ASSERT_TRUE(store().get(Store::Family::kState, "with-state", &value).is_ok());
  EXPECT_EQ(value, "v3");
  for (int i = 1; i <= 3; ++i) {
    ASSERT_TRUE(
        store().get(Store::Family::kIdempotency, "key-" + std::to_string(i), &value).is_ok());
    EXPECT_EQ(value, large + std::to_string(i));
  }
  EXPECT_EQ(log().stream_head("with-state")->version, 3u);
}

TEST_P(LogContract, AppendAllGivesEachPartitionsRequestItsOwnResult) {
  ASSERT_TRUE(log().append(request(3, "taken", kNoStream, {"t"})).is_ok());
  std::vector<AppendRequest> requests;
  requests.push_back(request(2, "two", kNoStream, {"2a", "2b"}));
  requests.push_back(request(3, "taken", kNoStream, {"again"}));  // a conflict: nothing stored
  requests.push_back(request(0, "zero", kNoStream, {"0a"}));
  int side_writes_asked = 0;
  requests[2].side_writes = [&](const std::vector<StreamAppend>& sealed) {
    ++side_writes_asked;
    EXPECT_EQ(sealed[0].events[0].position().partition(), 0u);  // called once sealed
    return std::vector<SideWrite>{{SideWrite::Table::kState, "zero", "v1"}};
  };

  auto results = log().append_all(std::move(requests));

  ASSERT_EQ(results.size(), 3u);
  ASSERT_TRUE(results[0].is_ok()) << results[0].status().to_string();
  EXPECT_EQ(results[0]->sealed[0].events[1].stream_version(), 2u);
  EXPECT_EQ(results[0]->sealed[0].events[1].position().partition(), 2u);
  EXPECT_EQ(results[1].status().code(), StatusCode::kConflict);
  ASSERT_TRUE(results[2].is_ok()) << results[2].status().to_string();
  EXPECT_EQ(side_writes_asked, 1);
  EXPECT_EQ(log().end_offset(2), 2u);
  EXPECT_EQ(log().end_offset(3), 1u);
  EXPECT_EQ(log().end_offset(0), 1u);
  harness_->reopen();
  EXPECT_EQ(log().stream_head("two")->version, 2u);
  EXPECT_EQ(log().stream_head("taken")->version, 1u);
  EXPECT_EQ(log().stream_head("zero")->version, 1u);
  std::string value;
  ASSERT_TRUE(store().get(Store::Family::kState, "zero", &value).is_ok());
  EXPECT_EQ(value, "v1");
  auto stored = log().read_partition(3, 0, 10);
  ASSERT_TRUE(stored.is_ok());
  ASSERT_EQ(stored->size(), 1u);
  EXPECT_EQ(name_of((*stored)[0]), "t");
}

TEST_P(LogContract, AppendAllTakesOnePartitionTwiceInOrder) {
  std::vector<AppendRequest> requests;
  requests.push_back(request(1, "s", kNoStream, {"first"}));
  requests.push_back(request(1, "s", 1, {"second"}));
  auto results = log().append_all(std::move(requests));
  ASSERT_EQ(results.size(), 2u);
  ASSERT_TRUE(results[0].is_ok());
  ASSERT_TRUE(results[1].is_ok()) << results[1].status().to_string();
  auto events = log().read_stream("s", 1, 10);
  ASSERT_TRUE(events.is_ok());
  ASSERT_EQ(events->size(), 2u);
  EXPECT_EQ(name_of((*events)[1]), "second");
  EXPECT_EQ((*events)[1].previous_hash(), (*events)[0].hash());
}

TEST_P(LogContract, RefusesBadRequests) {
  EXPECT_EQ(log().append(request(99, "s", kAnyVersion, {"x"})).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(log().append(request(0, "", kAnyVersion, {"x"})).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(log().append(request(0, std::string("a\0b", 3), kAnyVersion, {"x"})).status().code(),
            StatusCode::kInvalidArgument);
}

INSTANTIATE_TEST_SUITE_P(
    Backends, LogContract,
    ::testing::Values(LogBackend{"rocksdb",
                                 [](uint32_t partitions) -> std::unique_ptr<LogHarness> {
                                   return std::make_unique<RocksDbHarness>(partitions);
                                 }},
                      LogBackend{"kafka",
                                 [](uint32_t partitions) -> std::unique_ptr<LogHarness> {
                                   return std::make_unique<KafkaHarness>(partitions, false);
                                 }},
                      // Reopened on an empty local copy: all of it back from crm.events.
                      LogBackend{"kafka_rebuilt",
                                 [](uint32_t partitions) -> std::unique_ptr<LogHarness> {
                                   return std::make_unique<KafkaHarness>(partitions, true);
                                 }}),
    [](const auto& info) { return info.param.name; });

}  // namespace
}  // namespace crm
