// The write path: routing, single writers, idempotency keys, expected versions, the atomic
// step, bounded queues, and the replay law.
#include <google/protobuf/util/message_differencer.h>

#include <thread>

#include "aggregates/customer/customer.h"
#include "aggregates/event_variant.h"
#include "customer.pb.h"
#include "tests/workflow/engine_fixture.h"
#include "workflow/router.h"

namespace crm {
namespace {

using testing::EngineFixture;

const customer::Customer& customer_of(const CommandOutcome& o) {
  return static_cast<const customer::Customer&>(*o.state);
}

TEST_F(EngineFixture, RegistersDurablyWithAFullEnvelope) {
  auto outcome = run(register_command("cus_a", "Acme"));
  ASSERT_TRUE(outcome.status.is_ok()) << outcome.status.to_string();
  ASSERT_FALSE(outcome.rejection);
  EXPECT_EQ(outcome.version, 1u);
  EXPECT_EQ(customer_of(outcome).name(), "Acme");
  ASSERT_EQ(outcome.events.size(), 1u);
  const auto& e = outcome.events[0];
  EXPECT_EQ(e.stream_id(), "cus_a");
  EXPECT_EQ(e.stream_version(), 1u);
  EXPECT_EQ(e.event_type(), "crm.customer.CustomerRegistered");
  EXPECT_EQ(e.schema_version(), kEventSchemaVersion);
  EXPECT_EQ(e.writer_version(), kWriterVersion);
  EXPECT_EQ(e.actor().principal_id(), "clerk-1");
  EXPECT_EQ(e.correlation_id(), "corr-1");
  EXPECT_FALSE(e.causation_id().empty());
  EXPECT_FALSE(e.event_id().empty());
  EXPECT_EQ(timestamp_to_us(e.occurred_at()), testing::kStartUs);
  EXPECT_EQ(e.hash().size(), 32u);
  EXPECT_EQ(e.position().partition(), partition_for("cus_a", 4));
  EXPECT_EQ(outcome.position.offset(), e.position().offset());

  auto stored = engine_->read("customer", "cus_a");
  ASSERT_TRUE(stored.is_ok());
  EXPECT_EQ(stored->version, 1u);
  EXPECT_EQ(stored->last_hash, e.hash());
}

TEST_F(EngineFixture, ARepeatedIdempotencyKeyReturnsTheFirstOutcome) {
  auto first = run(register_command("cus_k", "Keyed", "key-1"));
  ASSERT_TRUE(first.status.is_ok());
  clock_.advance_us(3'600'000'000);
  auto again = run(register_command("cus_k", "Keyed", "key-1"));
  ASSERT_TRUE(again.status.is_ok());
  ASSERT_FALSE(again.rejection) << again.rejection->message;
  EXPECT_TRUE(again.repeated);
  EXPECT_TRUE(again.events.empty());
  EXPECT_EQ(again.version, 1u);
  EXPECT_EQ(format_position(again.position), format_position(first.position));
  EXPECT_EQ(customer_of(again).name(), "Keyed");
  EXPECT_EQ(log_->stream_head("cus_k")->version, 1u);
}

TEST_F(EngineFixture, AKeyReusedWithAnotherRequestIsRefused) {
  ASSERT_TRUE(run(register_command("cus_r", "First", "key-2")).status.is_ok());
  auto other = run(register_command("cus_r", "Second", "key-2"));
  ASSERT_TRUE(other.rejection);
  EXPECT_EQ(other.rejection->rule, "idempotency.key_reused");
  EXPECT_EQ(other.rejection->kind, Rejection::Kind::kConflict);
}

TEST_F(EngineFixture, KeysAreScopedToThePrincipal) {
  ASSERT_TRUE(run(register_command("cus_p1", "One", "shared-key")).status.is_ok());
  auto c = register_command("cus_p2", "Two", "shared-key");
  c.mutable_actor()->set_principal_id("clerk-2");
  auto outcome = run(std::move(c));
  EXPECT_FALSE(outcome.rejection);
  EXPECT_FALSE(outcome.repeated);
}

TEST_F(EngineFixture, ARefusedCommandDoesNotUseUpItsKey) {
  auto bad = register_command("cus_f", "", "key-3");
  auto refused = run(std::move(bad));
  ASSERT_TRUE(refused.rejection);
  EXPECT_EQ(refused.rejection->rule, "customer.name_required");
  auto fixed = run(register_command("cus_f", "Fixed", "key-3"));
  ASSERT_FALSE(fixed.rejection);
  EXPECT_FALSE(fixed.repeated);
  EXPECT_EQ(fixed.version, 1u);
}

TEST_F(EngineFixture, KeysExpireAfterTheRetentionWindow) {
  ProcessorOptions options;
  options.idempotency_retention_us = 60'000'000;
  reopen(options);
  ASSERT_TRUE(run(register_command("cus_e", "Expiring", "key-4")).status.is_ok());
  clock_.advance_us(61'000'000);
  auto late = run(register_command("cus_e", "Expiring", "key-4"));
  ASSERT_TRUE(late.rejection) << "past the window the key is forgotten; the rule decides";
  EXPECT_EQ(late.rejection->rule, "customer.already_registered");
}

TEST_F(EngineFixture, DuplicatesInOneBatchApplyOnce) {
  constexpr int kCopies = 32;
  std::vector<std::future<CommandOutcome>> futures;
  for (int i = 0; i < kCopies; ++i)
    futures.push_back(engine_->submit(register_command("cus_d", "Dup", "key-5")));
  int created = 0, repeated = 0;
  for (auto& f : futures) {
    auto o = f.get();
    ASSERT_TRUE(o.status.is_ok()) << o.status.to_string();
    ASSERT_FALSE(o.rejection) << o.rejection->rule;
    (o.repeated ? repeated : created)++;
    EXPECT_EQ(o.version, 1u);
  }
  EXPECT_EQ(created, 1);
  EXPECT_EQ(repeated, kCopies - 1);
  EXPECT_EQ(log_->stream_head("cus_d")->version, 1u);
}

TEST_F(EngineFixture, AStaleExpectedVersionIsRefusedAndAppendsNothing) {
  ASSERT_TRUE(run(register_command("cus_v", "Versioned")).status.is_ok());
  auto update = command("cus_v");
  update.mutable_update_customer()->set_stage(customer::ACTIVE);
  update.set_expected_version(0);
  auto stale = run(update);
  ASSERT_TRUE(stale.rejection);
  EXPECT_EQ(stale.rejection->kind, Rejection::Kind::kVersionMismatch);
  EXPECT_EQ(log_->stream_head("cus_v")->version, 1u);
  update.set_expected_version(1);
  update.set_command_id("cmd-next");
  auto current = run(update);
  ASSERT_FALSE(current.rejection);
  EXPECT_EQ(current.version, 2u);
}

TEST_F(EngineFixture, ConcurrentCommandsOnOneCustomerGetContiguousVersions) {
  ASSERT_TRUE(run(register_command("cus_c", "Busy")).status.is_ok());
  constexpr int kThreads = 8, kEach = 25;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        auto c = command("cus_c");
        c.mutable_add_contact()->set_name("c" + std::to_string(t) + "-" + std::to_string(i));
        c.mutable_add_contact()->set_role(customer::USER);
        auto o = engine_->submit(std::move(c)).get();
        ASSERT_TRUE(o.status.is_ok());
        ASSERT_FALSE(o.rejection);
      }
    });
  }
  for (auto& t : threads) t.join();
  auto events = log_->read_stream("cus_c", 1, 1000);
  ASSERT_EQ(events->size(), 1u + kThreads * kEach);
  for (size_t i = 0; i < events->size(); ++i) EXPECT_EQ((*events)[i].stream_version(), i + 1);
  EXPECT_EQ(engine_->read("customer", "cus_c")->version, 1u + kThreads * kEach);
}

TEST_F(EngineFixture, EveryPartitionIsServedWhateverTheNumberOfThreads) {
  for (uint32_t threads : {1u, 2u, 4u, 9u}) {
    ProcessorOptions options;
    options.threads = threads;
    reopen(options);
    constexpr int kWriters = 4, kEach = 30;
    std::vector<std::thread> writers;
    for (int w = 0; w < kWriters; ++w) {
      writers.emplace_back([&, w] {
        for (int i = 0; i < kEach; ++i) {
          const std::string id =
              "cus_t" + std::to_string(threads) + "_" + std::to_string(w) + "_" + std::to_string(i);
          auto o = engine_->submit(register_command(id, "n")).get();
          ASSERT_TRUE(o.status.is_ok()) << o.status.to_string();
          ASSERT_FALSE(o.rejection);
          ASSERT_EQ(o.events.size(), 1u);
          EXPECT_EQ(o.events[0].position().partition(), partition_for(id, 4));
        }
      });
    }
    for (auto& w : writers) w.join();
    for (int w = 0; w < kWriters; ++w)
      for (int i = 0; i < kEach; ++i)
        EXPECT_EQ(log_->stream_head("cus_t" + std::to_string(threads) + "_" + std::to_string(w) +
                                    "_" + std::to_string(i))
                      ->version,
                  1u);
  }
  uint64_t events = 0;
  for (uint32_t p = 0; p < 4; ++p) events += log_->end_offset(p);
  EXPECT_EQ(events, 4u * 4 * 30);
}

TEST_F(EngineFixture, ARoundMixingPartitionsThatWriteAndOnesThatOnlyRefuseAnswersEach) {
  // Queued at once, these mostly share the worker's rounds; each gets its own outcome anyway.
  std::vector<std::future<CommandOutcome>> registered, refused;
  for (int i = 0; i < 16; ++i) {
    registered.push_back(engine_->submit(register_command("cus_m" + std::to_string(i), "m")));
    auto u = command("cus_none" + std::to_string(i));
    u.mutable_update_customer()->set_stage(customer::ACTIVE);
    refused.push_back(engine_->submit(std::move(u)));
  }
  for (int i = 0; i < 16; ++i) {
    auto ok = registered[i].get();
    ASSERT_TRUE(ok.status.is_ok()) << ok.status.to_string();
    ASSERT_FALSE(ok.rejection);
    ASSERT_EQ(ok.events.size(), 1u);
    EXPECT_EQ(ok.events[0].stream_id(), "cus_m" + std::to_string(i));
    auto no = refused[i].get();
    ASSERT_TRUE(no.status.is_ok()) << no.status.to_string();
    EXPECT_TRUE(no.rejection);
    EXPECT_TRUE(no.events.empty());
    EXPECT_EQ(log_->stream_head("cus_none" + std::to_string(i))->version, 0u);
  }
}

TEST_F(EngineFixture, StateFoldedFromTheLogEqualsTheStoredState) {
  ASSERT_TRUE(run(register_command("cus_law", "Law")).status.is_ok());
  auto u = command("cus_law");
  u.mutable_update_customer()->set_level(customer::VIP);
  u.mutable_update_customer()->set_owner_id("sales-9");
  ASSERT_FALSE(run(u).rejection);
  auto c = command("cus_law");
  c.mutable_add_contact()->set_name("Zhang");
  c.mutable_add_contact()->set_role(customer::INFLUENCER);
  ASSERT_FALSE(run(c).rejection);

  customer::Customer folded;
  auto stream = log_->read_stream("cus_law", 1, 100);
  ASSERT_TRUE(stream.is_ok());
  for (const auto& e : *stream) {
    auto event = unpack_variant<customer::Event>(e.data());
    ASSERT_TRUE(event);
    customer::evolve(folded, *event, e.stream_version(), timestamp_to_us(e.occurred_at()));
  }
  reopen();  // read from disk, not the cache
  auto stored = engine_->read("customer", "cus_law");
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(folded, *stored->state))
      << folded.ShortDebugString() << "\nvs\n"
      << stored->state->ShortDebugString();
}

TEST_F(EngineFixture, ASmallCacheStillDecidesFromTheStoredState) {
  ProcessorOptions options;
  options.cache_entries_max = 1;
  reopen(options);
  for (int i = 0; i < 5; ++i)
    ASSERT_TRUE(run(register_command("cus_" + std::to_string(i), "n")).status.is_ok());
  for (int i = 0; i < 5; ++i) {
    auto u = command("cus_" + std::to_string(i));
    u.mutable_update_customer()->set_stage(customer::TARGET);
    auto o = run(u);
    ASSERT_FALSE(o.rejection);
    EXPECT_EQ(o.version, 2u);
  }
}

TEST_F(EngineFixture, ABoundedQueueRefusesInsteadOfGrowing) {
  ProcessorOptions options;
  options.queue_max = 0;
  reopen(options);
  auto o = run(register_command("cus_q", "q"));
  EXPECT_EQ(o.status.code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(log_->stream_head("cus_q")->version, 0u);
}

TEST_F(EngineFixture, RestartContinuesStreamsWhereTheyEnded) {
  ASSERT_TRUE(run(register_command("cus_s", "Restart", "key-6")).status.is_ok());
  reopen();
  auto again = run(register_command("cus_s", "Restart", "key-6"));
  EXPECT_TRUE(again.repeated) << "idempotency keys are persistent";
  auto u = command("cus_s");
  u.mutable_update_customer()->set_stage(customer::CHURNED);
  auto o = run(u);
  ASSERT_FALSE(o.rejection);
  EXPECT_EQ(o.version, 2u);
  auto events = log_->read_stream("cus_s", 1, 10);
  ASSERT_EQ(events->size(), 2u);
  EXPECT_EQ((*events)[1].previous_hash(), (*events)[0].hash());
}

TEST_F(EngineFixture, ShutdownFinishesQueuedCommands) {
  std::vector<std::future<CommandOutcome>> futures;
  for (int i = 0; i < 200; ++i)
    futures.push_back(engine_->submit(register_command("cus_z" + std::to_string(i), "z")));
  engine_->shutdown();
  for (auto& f : futures) EXPECT_TRUE(f.get().status.is_ok());
  EXPECT_EQ(engine_->submit(register_command("cus_late", "late")).get().status.code(),
            StatusCode::kUnavailable);
}

TEST(Router, MatchesKafkaDefaultPartitioner) {
  // Kafka's Java client: Utils.toPositive(Utils.murmur2("customer-1".getBytes())) % 8 etc.
  // Spread check plus stability: the function must never change once data exists.
  std::vector<int> counts(8);
  for (int i = 0; i < 8000; ++i) counts[partition_for("cus_" + std::to_string(i), 8)]++;
  for (int c : counts) EXPECT_GT(c, 800);
  EXPECT_EQ(partition_for("cus_a", 8), partition_for("cus_a", 8));
}

}  // namespace
}  // namespace crm
