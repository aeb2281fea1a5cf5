// Tamper evidence (I8): verify recomputes every stream's hash chain from the log and checks it
// against the stream index and heads. A changed byte, a deleted event, two events swapped and a
// truncated log are each reported with the first stream and version that fails.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "events/codec.h"
#include "events/hash_chain.h"
#include "events/rocksdb_log.h"
#include "tests/support/test_support.h"

namespace crm {
namespace {

using ::testing::HasSubstr;

class Verify : public ::testing::Test {
 protected:
  void SetUp() override {
    StoreOptions options;
    options.path = dir_.path() + "/db";
    auto store = Store::open(options);
    ASSERT_TRUE(store.is_ok());
    store_ = std::move(store.value());
    auto log = RocksDbLog::open(*store_, 2);
    ASSERT_TRUE(log.is_ok());
    log_ = std::move(log.value());
    // Partition 0: a1 b1 a2 b2 a3 b3 a4 a5 (offsets 0–7); partition 1: c1–c4.
    for (const char* stream : {"a", "b", "a", "b", "a", "b", "a", "a"}) append(0, stream);
    for (int i = 0; i < 4; ++i) append(1, "c");
  }
  void append(uint32_t partition, const std::string& stream) {
    AppendRequest r;
    r.partition = partition;
    events::EventEnvelope e;
    e.set_event_type("crm.test.Happened");
    e.set_event_id(stream + "-" + std::to_string(++appended_));
    r.streams.push_back({stream, kAnyVersion, {e}});
    ASSERT_TRUE(log_->append(std::move(r)).is_ok());
  }
  std::string raw(uint32_t partition, uint64_t offset) {
    std::string value;
    EXPECT_TRUE(store_->get(Store::Family::kLog, log_key(partition, offset), &value).is_ok());
    return value;
  }
  void put_raw(uint32_t partition, uint64_t offset, const std::string& value) {
    ASSERT_TRUE(
        store_
            ->write_durable([&](rocksdb::WriteBatch& batch) {
              batch.Put(store_->family(Store::Family::kLog), log_key(partition, offset), value)
                  .PermitUncheckedError();
            })
            .is_ok());
  }
  void erase_raw(uint32_t partition, uint64_t offset) {
    ASSERT_TRUE(store_
                    ->write_durable([&](rocksdb::WriteBatch& batch) {
                      batch.Delete(store_->family(Store::Family::kLog), log_key(partition, offset))
                          .PermitUncheckedError();
                    })
                    .is_ok());
  }
  api::VerifyReport verified() {
    auto report = log_->verify();
    EXPECT_TRUE(report.is_ok()) << report.status().to_string();
    return report.is_ok() ? report.value() : api::VerifyReport();
  }
  void expect_first(const api::VerifyReport& report, const std::string& stream, uint32_t version,
                    const std::string& reason) {
    EXPECT_FALSE(report.ok());
    EXPECT_EQ(report.first_mismatch().stream_id(), stream);
    EXPECT_EQ(report.first_mismatch().version(), version);
    EXPECT_THAT(report.first_mismatch().reason(), HasSubstr(reason));
    auto one = log_->verify_stream(stream);
    ASSERT_TRUE(one.is_ok()) << one.status().to_string();
    EXPECT_FALSE(one->ok());
    EXPECT_EQ(one->first_mismatch().stream_id(), stream) << "verify of the one stream agrees";
    EXPECT_EQ(one->first_mismatch().version(), version) << one->first_mismatch().reason();
  }

  testing::TempDir dir_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<RocksDbLog> log_;
  int appended_ = 0;
};

TEST_F(Verify, AnUntouchedLogVerifies) {
  auto report = verified();
  EXPECT_TRUE(report.ok()) << report.first_mismatch().reason();
  EXPECT_EQ(report.streams(), 3u);
  EXPECT_EQ(report.events(), 12u);
  EXPECT_TRUE(report.problems().empty());
  for (const char* stream : {"a", "b", "c"}) {
    auto one = log_->verify_stream(stream);
    ASSERT_TRUE(one.is_ok());
    EXPECT_TRUE(one->ok()) << one->first_mismatch().reason();
  }
  EXPECT_EQ(log_->verify_stream("nothing").status().code(), StatusCode::kNotFound);
}

TEST_F(Verify, AChangedByteIsFoundWithItsStreamAndVersion) {
  events::EventEnvelope a3;
  ASSERT_TRUE(a3.ParseFromString(raw(0, 4)));
  a3.set_event_type("crm.test.Forged");  // rewritten without its hash: what an editor does
  put_raw(0, 4, a3.SerializeAsString());
  expect_first(verified(), "a", 3, "content was changed");
}

TEST_F(Verify, AnUnreadableEventIsFoundWithItsStreamAndVersion) {
  put_raw(1, 2, "\xff\xff\xff garbage");
  auto report = verified();
  expect_first(report, "c", 3, "bytes were changed");
  EXPECT_EQ(report.first_mismatch().position(), "1:2") << "the event itself, not the next one";
}

TEST_F(Verify, ADeletedEventIsFoundWithItsStreamAndVersion) {
  erase_raw(0, 3);  // b2
  auto report = verified();
  expect_first(report, "b", 2, "");
  EXPECT_THAT(report.problems(report.problems_size() - 1).reason(), HasSubstr("offsets 3 to 3"))
      << "the gap in the partition is named too";
}

TEST_F(Verify, TwoSwappedEventsAreFoundWithTheFirstStreamAndVersion) {
  const std::string a2 = raw(0, 2), a4 = raw(0, 6);
  put_raw(0, 2, a4);
  put_raw(0, 6, a2);
  expect_first(verified(), "a", 2, "moved");
}

TEST_F(Verify, ATruncatedLogIsFoundWithTheFirstStreamAndVersionLost) {
  erase_raw(0, 7);  // a5
  erase_raw(0, 6);  // a4
  erase_raw(0, 5);  // b3
  auto report = verified();
  expect_first(report, "a", 4, "truncated");
  ASSERT_GE(report.problems_size(), 2);
  EXPECT_EQ(report.problems(1).stream_id(), "b");
  EXPECT_EQ(report.problems(1).version(), 3u);
}

TEST_F(Verify, ADeletedHeadOrIndexEntryIsFound) {
  auto erase_stream_key = [&](const std::string& key) {
    ASSERT_TRUE(
        store_
            ->write_durable([&](rocksdb::WriteBatch& batch) {
              batch.Delete(store_->family(Store::Family::kStreams), key).PermitUncheckedError();
            })
            .is_ok());
  };
  std::string b2 = "ib";
  b2.push_back('\0');
  put_u64_be(b2, 2);
  erase_stream_key(b2);
  erase_stream_key("hc");
  auto report = verified();
  EXPECT_FALSE(report.ok());
  ASSERT_EQ(report.problems_size(), 2) << report.DebugString();
  EXPECT_EQ(report.problems(0).stream_id(), "b");
  EXPECT_EQ(report.problems(0).version(), 2u);
  EXPECT_THAT(report.problems(0).reason(), HasSubstr("index entry was deleted"));
  EXPECT_EQ(report.problems(1).stream_id(), "c");
  EXPECT_THAT(report.problems(1).reason(), HasSubstr("no"));
}

TEST_F(Verify, AnIndexEntryForVersionZeroIsAProblemNotACrash) {
  std::string key = "ia";
  key.push_back('\0');
  put_u64_be(key, 0);
  std::string position;
  put_u32_be(position, 0);
  put_u64_be(position, 0);
  ASSERT_TRUE(store_
                  ->write_durable([&](rocksdb::WriteBatch& batch) {
                    batch.Put(store_->family(Store::Family::kStreams), key, position)
                        .PermitUncheckedError();
                  })
                  .is_ok());
  auto report = verified();
  EXPECT_FALSE(report.ok());
  EXPECT_EQ(report.first_mismatch().stream_id(), "a");
  EXPECT_THAT(report.first_mismatch().reason(), HasSubstr("version 0"));
}

TEST_F(Verify, ADigestIsRecomputedFromTheEventsBeforeItsCutAndChangesWhenOneWasAltered) {
  auto now = log_->digest_now();
  ASSERT_TRUE(now.is_ok()) << now.status().to_string();
  EXPECT_EQ(now->end_offsets, (std::vector<uint64_t>{8, 4}));
  EXPECT_EQ(now->streams, 3u);
  EXPECT_EQ(now->digest.size(), 64u);
  auto again = log_->digest_at(now->end_offsets);
  ASSERT_TRUE(again.is_ok());
  EXPECT_EQ(again->digest, now->digest) << "the live heads and the events agree";

  append(0, "a");  // the log goes on: the old cut's digest stands
  append(1, "d");
  EXPECT_EQ(log_->digest_at(now->end_offsets)->digest, now->digest);
  EXPECT_NE(log_->digest_now()->digest, now->digest);

  const std::string a6 = raw(0, 8);  // altering an event after the cut leaves it standing …
  events::EventEnvelope changed;
  ASSERT_TRUE(changed.ParseFromString(a6));
  changed.set_event_type("crm.test.Forged");
  changed.set_hash(std::string(32, 'x'));
  put_raw(0, 8, changed.SerializeAsString());
  EXPECT_EQ(log_->digest_at(now->end_offsets)->digest, now->digest);
  // … one before it does not, even with its hash and every later one recomputed to hide it
  // from verify: the digest recomputes the chain from the events' content.
  events::EventEnvelope b2, b3;
  ASSERT_TRUE(b2.ParseFromString(raw(0, 3)));
  ASSERT_TRUE(b3.ParseFromString(raw(0, 5)));
  b2.set_event_type("crm.test.Forged");
  b2.set_hash(hash_chain::compute(b2));
  hash_chain::seal(b3, b2.hash());
  put_raw(0, 3, b2.SerializeAsString());
  put_raw(0, 5, b3.SerializeAsString());
  EXPECT_NE(log_->digest_at(now->end_offsets)->digest, now->digest);
  EXPECT_EQ(log_->digest_at({8}).status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace crm
