// Read models follow the log with checkpoints, answer lists, and rebuild byte-identically.
#include "projections/projector.h"

#include <tuple>

#include "projections/customers_view.h"
#include "projections/orders_view.h"
#include "tests/workflow/engine_fixture.h"

namespace crm {
namespace {

class ProjectorTest : public testing::EngineFixture {
 protected:
  std::unique_ptr<Projector> projector() {
    std::vector<std::unique_ptr<ReadModel>> models;
    models.push_back(std::make_unique<CustomersView>());
    auto p = std::make_unique<Projector>(*log_, *store_, std::move(models));
    EXPECT_TRUE(p->open().is_ok());
    return p;
  }

  CommandOutcome register_customer(const std::string& id, const std::string& owner,
                                   customer::CustomerLevel level) {
    auto c = register_command(id, "Name " + id);
    c.mutable_register_customer()->set_owner_id(owner);
    c.mutable_register_customer()->set_level(level);
    c.mutable_register_customer()->set_region(id.back() % 2 ? "north" : "south");
    auto o = run(std::move(c));
    EXPECT_TRUE(o.status.is_ok() && !o.rejection);
    return o;
  }

  // Leaves the customers model's checkpoints as an earlier version kept them, at the log's end:
  // "<model>\0" u32be(partition) -> offset, one key each, and no shared key. Returns the keys.
  std::vector<std::string> checkpoints_as_an_earlier_version() {
    const std::string model = CustomersView().name();
    rocksdb::WriteBatch legacy;
    auto* family = store_->family(Store::Family::kCheckpoints);
    legacy.Delete(family, "read-models").PermitUncheckedError();
    std::vector<std::string> keys;
    for (uint32_t p = 0; p < 4; ++p) {
      std::string key = model;
      key.push_back('\0');
      put_u32_be(key, p);
      std::string offset;
      put_u64_be(offset, log_->end_offset(p));
      legacy.Put(family, key, offset).PermitUncheckedError();
      keys.push_back(key);
    }
    EXPECT_TRUE(store_->write(legacy).is_ok());
    return keys;
  }

  std::vector<std::string> ids(const CustomerFilter& filter, size_t page_size = 500) {
    std::vector<std::string> out;
    std::string token;
    do {
      auto page = list_customers(*store_, filter, page_size, token);
      EXPECT_TRUE(page.is_ok());
      for (const auto& c : page->items()) out.push_back(c.id());
      token = page->next_page_token();
    } while (!token.empty());
    return out;
  }
};

TEST_F(ProjectorTest, FollowsTheLogAndAnswersFilteredPagedLists) {
  auto p = projector();
  p->start();
  CommandOutcome last;
  for (int i = 0; i < 30; ++i)
    last = register_customer("cus_" + std::to_string(100 + i), i % 3 ? "sales-1" : "sales-2",
                             i % 2 ? customer::VIP : customer::GROWTH);
  // Read-your-writes: wait for the last command's position on every partition we wrote.
  for (uint32_t partition = 0; partition < 4; ++partition) {
    events::Position end;
    end.set_partition(partition);
    if (log_->end_offset(partition) == 0) continue;
    end.set_offset(log_->end_offset(partition) - 1);
    ASSERT_TRUE(p->wait_for(end, std::chrono::steady_clock::now() + std::chrono::seconds(10)));
  }
  EXPECT_EQ(ids({}).size(), 30u);
  EXPECT_EQ(ids({}, 7).size(), 30u) << "paging walks every customer exactly once";
  EXPECT_EQ(ids({.owner_id = "sales-2"}).size(), 10u);
  EXPECT_EQ(ids({.level = "VIP"}).size(), 15u);
  EXPECT_EQ(ids({.owner_id = "sales-1", .level = "VIP"}).size(), 10u);
  EXPECT_EQ(ids({.stage = "PROSPECT"}).size(), 30u);
  EXPECT_EQ(ids({.region = "north"}).size() + ids({.region = "south"}).size(), 30u);
  EXPECT_TRUE(ids({.owner_id = "nobody"}).empty());
  EXPECT_EQ(p->lag(), 0u);
}

TEST_F(ProjectorTest, IndexesFollowChanges) {
  auto p = projector();
  register_customer("cus_1", "sales-1", customer::GROWTH);
  auto u = command("cus_1");
  u.mutable_update_customer()->set_owner_id("sales-7");
  u.mutable_update_customer()->set_level(customer::VIP);
  ASSERT_FALSE(run(u).rejection);
  ASSERT_TRUE(p->catch_up().is_ok());
  EXPECT_TRUE(ids({.owner_id = "sales-1"}).empty());
  EXPECT_EQ(ids({.owner_id = "sales-7"}), std::vector<std::string>{"cus_1"});
  EXPECT_TRUE(ids({.level = "GROWTH"}).empty());
  EXPECT_EQ(ids({.level = "VIP"}).size(), 1u);
}

TEST_F(ProjectorTest, AFilterValueMatchesOnlyItselfNotLongerValuesStartingWithIt) {
  auto p = projector();
  for (const auto& [id, region, owner] :
       std::vector<std::tuple<std::string, std::string, std::string>>{
           {"cus_1", "North", "sales"},
           {"cus_2", "North/East", "sales.1"},
           {"cus_3", "North East", "sales-1"},
           {"cus_4", "Nort", "sale"}}) {
    auto c = register_command(id, "Name " + id);
    c.mutable_register_customer()->set_region(region);
    c.mutable_register_customer()->set_owner_id(owner);
    ASSERT_FALSE(run(std::move(c)).rejection);
  }
  ASSERT_TRUE(p->catch_up().is_ok());
  EXPECT_EQ(ids({.region = "North"}), std::vector<std::string>{"cus_1"});
  EXPECT_EQ(ids({.region = "North/East"}), std::vector<std::string>{"cus_2"});
  EXPECT_EQ(ids({.region = "Nort"}), std::vector<std::string>{"cus_4"});
  EXPECT_EQ(ids({.owner_id = "sales"}), std::vector<std::string>{"cus_1"});
  EXPECT_EQ(ids({.owner_id = "sales.1"}), std::vector<std::string>{"cus_2"});
  EXPECT_TRUE(ids({.region = "North/"}).empty());
}
TEST_F(ProjectorTest, RebuildFromPositionZeroIsByteIdentical) {
  for (int i = 0; i < 40; ++i)
    register_customer("cus_" + std::to_string(i), "sales-1", customer::STANDARD);
  for (int i = 0; i < 40; i += 3) {
    auto u = command("cus_" + std::to_string(i));
    u.mutable_update_customer()->set_stage(customer::ACTIVE);
    u.mutable_update_customer()->set_owner_id("sales-2");
    ASSERT_FALSE(run(u).rejection);
  }
  ASSERT_TRUE(projector()->catch_up().is_ok());
  auto live = read_models_digest(*store_);
  ASSERT_TRUE(live.is_ok());

  ASSERT_TRUE(clear_read_models(*store_).is_ok());
  EXPECT_NE(read_models_digest(*store_).value(), live.value());
  ASSERT_TRUE(projector()->catch_up().is_ok());
  EXPECT_EQ(read_models_digest(*store_).value(), live.value());
}

TEST_F(ProjectorTest, ResumesFromItsCheckpointWithoutApplyingTwice) {
  for (int i = 0; i < 10; ++i) register_customer("cus_a" + std::to_string(i), "s", customer::VIP);
  ASSERT_TRUE(projector()->catch_up().is_ok());
  for (int i = 0; i < 10; ++i) register_customer("cus_b" + std::to_string(i), "s", customer::VIP);
  {
    auto resumed = projector();  // a new projector: only the checkpoints say where it was
    ASSERT_TRUE(resumed->catch_up().is_ok());
    EXPECT_EQ(resumed->lag(), 0u);
  }
  auto resumed_digest = read_models_digest(*store_).value();
  ASSERT_TRUE(clear_read_models(*store_).is_ok());
  ASSERT_TRUE(projector()->catch_up().is_ok());
  EXPECT_EQ(read_models_digest(*store_).value(), resumed_digest);
  EXPECT_EQ(ids({}).size(), 20u);
}

TEST_F(ProjectorTest, CheckpointsOfAnEarlierVersionAreReplacedAlsoWithNothingNewToApply) {
  for (int i = 0; i < 6; ++i) register_customer("cus_" + std::to_string(i), "s", customer::VIP);
  ASSERT_TRUE(projector()->catch_up().is_ok());
  checkpoints_as_an_earlier_version();

  ASSERT_TRUE(projector()->catch_up().is_ok());  // caught up already: only the keys change
  std::string value;
  EXPECT_TRUE(store_->get(Store::Family::kCheckpoints, "read-models", &value).is_ok());
  // As `crm replay` checks after an upgrade: the live models equal a rebuild, byte for byte.
  auto live = read_models_digest(*store_).value();
  ASSERT_TRUE(clear_read_models(*store_).is_ok());
  ASSERT_TRUE(projector()->catch_up().is_ok());
  EXPECT_EQ(read_models_digest(*store_).value(), live);
}

TEST_F(ProjectorTest, AProjectorWithFewerModelsKeepsTheOthersPlaces) {
  auto both = [&] {
    std::vector<std::unique_ptr<ReadModel>> models;
    models.push_back(std::make_unique<CustomersView>());
    models.push_back(std::make_unique<OrdersView>());
    auto p = std::make_unique<Projector>(*log_, *store_, std::move(models));
    EXPECT_TRUE(p->open().is_ok());
    return p;
  };
  for (int i = 0; i < 6; ++i) register_customer("cus_a" + std::to_string(i), "s", customer::VIP);
  ASSERT_TRUE(both()->catch_up().is_ok());
  std::vector<uint64_t> ends;
  for (uint32_t p = 0; p < 4; ++p) ends.push_back(log_->end_offset(p));
  for (int i = 0; i < 6; ++i) register_customer("cus_b" + std::to_string(i), "s", customer::VIP);
  ASSERT_TRUE(projector()->catch_up().is_ok());  // the customers model alone moves on

  auto resumed = both();  // the orders model resumes where it stopped, not from 0
  for (uint32_t p = 0; p < 4; ++p) EXPECT_EQ(resumed->applied_offset(p), ends[p]) << p;
  ASSERT_TRUE(resumed->catch_up().is_ok());
  EXPECT_EQ(resumed->lag(), 0u);
}

TEST_F(ProjectorTest, ARebuildLeavesOtherCheckpointsInTheFamilyAlone) {
  for (int i = 0; i < 5; ++i) register_customer("cus_" + std::to_string(i), "s", customer::VIP);
  ASSERT_TRUE(projector()->catch_up().is_ok());
  auto live = read_models_digest(*store_).value();
  // How far a Kafka log's copy has read crm.events: not a read model's.
  std::string kafka_key = "kafka/crm.events/";
  put_u32_be(kafka_key, 1);
  rocksdb::WriteBatch other;
  other.Put(store_->family(Store::Family::kCheckpoints), kafka_key, "offset")
      .PermitUncheckedError();
  ASSERT_TRUE(store_->write(other).is_ok());
  EXPECT_EQ(read_models_digest(*store_).value(), live);

  ASSERT_TRUE(clear_read_models(*store_).is_ok());
  std::string value;
  ASSERT_TRUE(store_->get(Store::Family::kCheckpoints, kafka_key, &value).is_ok());
  EXPECT_EQ(value, "offset");
  ASSERT_TRUE(projector()->catch_up().is_ok());
  EXPECT_EQ(read_models_digest(*store_).value(), live);
}

TEST_F(ProjectorTest, ResumesFromCheckpointsAnEarlierVersionKeptOneKeyPerModel) {
  for (int i = 0; i < 10; ++i) register_customer("cus_a" + std::to_string(i), "s", customer::VIP);
  ASSERT_TRUE(projector()->catch_up().is_ok());
  const auto legacy_keys = checkpoints_as_an_earlier_version();
  for (int i = 0; i < 10; ++i) register_customer("cus_b" + std::to_string(i), "s", customer::VIP);

  auto resumed = projector();
  for (uint32_t p = 0; p < 4; ++p) {
    std::string offset;
    ASSERT_TRUE(store_->get(Store::Family::kCheckpoints, legacy_keys[p], &offset).is_ok());
    EXPECT_EQ(resumed->applied_offset(p), get_u64_be(offset)) << "partition " << p;
  }
  ASSERT_TRUE(resumed->catch_up().is_ok());
  std::string unused;
  for (const auto& key : legacy_keys)
    EXPECT_EQ(store_->get(Store::Family::kCheckpoints, key, &unused).code(), StatusCode::kNotFound);
  EXPECT_EQ(ids({}).size(), 20u);
  auto resumed_digest = read_models_digest(*store_).value();
  ASSERT_TRUE(clear_read_models(*store_).is_ok());
  ASSERT_TRUE(projector()->catch_up().is_ok());
  EXPECT_EQ(read_models_digest(*store_).value(), resumed_digest);
}

}  // namespace
}  // namespace crm

namespace crm {
namespace {

TEST_F(ProjectorTest, RefusesEventsFromANewerEngine) {
  AppendRequest request;
  request.partition = 0;
  events::EventEnvelope future_event;
  future_event.set_stream_type("customer");
  future_event.set_writer_version(kWriterVersion + 1);
  request.streams.push_back({"cus_future", kNoStream, {future_event}});
  ASSERT_TRUE(log_->append(std::move(request)).is_ok());
  auto p = projector();
  auto s = p->catch_up();
  EXPECT_EQ(s.code(), StatusCode::kCorruption);
  EXPECT_NE(s.message().find("newer than this one"), std::string::npos) << s.message();
  EXPECT_EQ(p->applied_offset(0), 0u) << "nothing past the refused event is applied";
}

}  // namespace
}  // namespace crm
