// What only the embedded log promises beyond the contract: side writes in the same atomic
// step, a fixed partition count, and group commit.
#include "events/rocksdb_log.h"

#include <gtest/gtest.h>

#include <thread>

#include "command.pb.h"
#include "customer.pb.h"
#include "events/codec.h"
#include "tests/support/test_support.h"

namespace crm {
namespace {

struct Opened {
  std::unique_ptr<Store> store;
  std::unique_ptr<RocksDbLog> log;
};

Result<Opened> open_log(const std::string& dir, uint32_t partitions) {
  StoreOptions options;
  options.path = dir + "/db";
  auto store = Store::open(options);
  if (!store.is_ok()) return store.status();
  Opened opened{std::move(store.value()), nullptr};
  auto log = RocksDbLog::open(*opened.store, partitions);
  if (!log.is_ok()) return log.status();
  opened.log = std::move(log.value());
  return opened;
}

AppendRequest one_event(uint32_t partition, const std::string& stream) {
  AppendRequest r;
  r.partition = partition;
  events::EventEnvelope e;
  e.set_event_type("test");
  r.streams.push_back({stream, kAnyVersion, {e}});
  return r;
}

TEST(RocksDbLog, SideWritesCommitWithTheEventsAndSeeTheirSealedPositions) {
  testing::TempDir dir;
  auto opened = open_log(dir.path(), 2);
  ASSERT_TRUE(opened.is_ok());
  auto r = one_event(1, "s");
  r.side_writes = [](const std::vector<StreamAppend>& sealed) {
    return std::vector<SideWrite>{
        {SideWrite::Table::kState, "s", format_position(sealed[0].events[0].position())},
        {SideWrite::Table::kIdempotency, "key", "value"}};
  };
  ASSERT_TRUE(opened->log->append(std::move(r)).is_ok());
  std::string value;
  ASSERT_TRUE(opened->store->get(Store::Family::kState, "s", &value).is_ok());
  EXPECT_EQ(value, "1:0");
  ASSERT_TRUE(opened->store->get(Store::Family::kIdempotency, "key", &value).is_ok());

  auto conflicting = one_event(1, "s");
  conflicting.streams[0].expected_version = kNoStream;
  conflicting.side_writes = [](const std::vector<StreamAppend>&) {
    return std::vector<SideWrite>{{SideWrite::Table::kState, "never", "x"}};
  };
  EXPECT_FALSE(opened->log->append(std::move(conflicting)).is_ok());
  EXPECT_EQ(opened->store->get(Store::Family::kState, "never", &value).code(),
            StatusCode::kNotFound);
}

TEST(RocksDbLog, ThePartitionCountIsFixedAtCreation) {
  testing::TempDir dir;
  { ASSERT_TRUE(open_log(dir.path(), 4).is_ok()); }
  auto reopened = open_log(dir.path(), 8);
  ASSERT_FALSE(reopened.is_ok());
  EXPECT_EQ(reopened.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(reopened.status().message().find("4 partitions"), std::string::npos);
  EXPECT_TRUE(open_log(dir.path(), 4).is_ok());
}

TEST(RocksDbLog, ConcurrentAppendsShareSyncedBatches) {
  testing::TempDir dir;
  auto opened = open_log(dir.path(), 8);
  ASSERT_TRUE(opened.is_ok());
  constexpr int kThreads = 8, kAppends = 200;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kAppends; ++i)
        ASSERT_TRUE(opened->log->append(one_event(t, "s" + std::to_string(t))).is_ok());
    });
  }
  for (auto& t : threads) t.join();
  auto stats = opened->store->group_commit_stats();
  // Every append was one durable request; the partition-count write at open was one more.
  EXPECT_EQ(stats.requests, static_cast<uint64_t>(kThreads * kAppends) + 1);
  EXPECT_LE(stats.batches, stats.requests);
  std::cout << "group commit: " << stats.requests << " requests in " << stats.batches
            << " synced batches\n";
}

TEST(RocksDbLog, AppendAllWritesEveryPartitionWithOneSync) {
  testing::TempDir dir;
  auto opened = open_log(dir.path(), 8);
  ASSERT_TRUE(opened.is_ok());
  const auto before = opened->store->group_commit_stats();
  std::vector<AppendRequest> requests;
  for (uint32_t p = 0; p < 8; ++p) requests.push_back(one_event(p, "s" + std::to_string(p)));

  auto results = opened->log->append_all(std::move(requests));

  for (const auto& result : results) ASSERT_TRUE(result.is_ok()) << result.status().to_string();
  const auto after = opened->store->group_commit_stats();
  EXPECT_EQ(after.batches - before.batches, 1u);
  EXPECT_EQ(after.requests - before.requests, 1u);
  for (uint32_t p = 0; p < 8; ++p) EXPECT_EQ(opened->log->end_offset(p), 1u);
}

TEST(RocksDbStore, CompactionDeletesIdempotencyRecordsPastTheirRetentionOnly) {
  testing::TempDir dir;
  ManualClock clock(1'700'000'000'000'000);
  constexpr int64_t kHourUs = 3600LL * 1000000;
  StoreOptions options;
  options.path = dir.path() + "/db";
  options.clock = &clock;
  options.idempotency_retention_us = 24 * kHourUs;
  auto store = Store::open(options);
  ASSERT_TRUE(store.is_ok()) << store.status().to_string();
  auto put_record = [&](const std::string& key, int64_t recorded_at_us) {
    events::IdempotencyRecord record;
    record.set_request_hash("h");
    *record.mutable_recorded_at() = timestamp_from_us(recorded_at_us);
    ASSERT_TRUE((*store)
                    ->write_durable([&](rocksdb::WriteBatch& batch) {
                      batch.Put((*store)->family(Store::Family::kIdempotency), key,
                                record.SerializeAsString());
                    })
                    .is_ok());
  };
  put_record("old", clock.now_us());
  clock.advance_us(20 * kHourUs);
  put_record("recent", clock.now_us());
  ASSERT_TRUE((*store)
                  ->write_durable([&](rocksdb::WriteBatch& batch) {
                    batch.Put((*store)->family(Store::Family::kIdempotency), "unreadable",
                              "\xff\xff not a record");
                  })
                  .is_ok());
  clock.advance_us(5 * kHourUs);  // "old" is 25 h old, "recent" 5 h

  rocksdb::CompactRangeOptions compact;
  compact.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kForce;
  ASSERT_TRUE(
      (*store)
          ->db()
          ->CompactRange(compact, (*store)->family(Store::Family::kIdempotency), nullptr, nullptr)
          .ok());

  std::string value;
  EXPECT_EQ((*store)->get(Store::Family::kIdempotency, "old", &value).code(),
            StatusCode::kNotFound);
  EXPECT_TRUE((*store)->get(Store::Family::kIdempotency, "recent", &value).is_ok());
  EXPECT_TRUE((*store)->get(Store::Family::kIdempotency, "unreadable", &value).is_ok());
}

}  // namespace
}  // namespace crm
