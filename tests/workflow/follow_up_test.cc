// Follow-up commands: what one command causes on another stream of its partition (an activated
// order item changes the customer's product instances) is decided in the same atomic step, and
// when the follow-up is refused, nothing of the command is stored.
#include <google/protobuf/empty.pb.h>

#include "aggregates/customer/customer.h"
#include "tests/workflow/engine_fixture.h"
#include "workflow/follow_up_rules.h"
#include "workflow/router.h"

namespace crm {
namespace {

// A stream type whose every command appends one event and asks the customer "cus_x" to add a
// product instance.
class ProbeHandler final : public AggregateHandler {
 public:
  std::string stream_type() const override { return "probe"; }
  std::unique_ptr<google::protobuf::Message> new_state() const override {
    return std::make_unique<google::protobuf::Empty>();
  }
  bool owns(const std::string& stream_id) const override {
    return stream_id.rfind("probe:", 0) == 0;
  }
  HandlerDecision decide(const google::protobuf::Message&, const events::CommandEnvelope& command,
                         DecideContext&) const override {
    HandlerDecision out;
    out.events.push_back(std::make_unique<google::protobuf::Empty>());
    events::CommandEnvelope follow_up = command;
    follow_up.set_command_id(command.command_id() + "/follow-up");
    follow_up.set_stream_type(kCustomerStream);
    follow_up.set_stream_id("cus_x");
    follow_up.set_partition_key("cus_x");
    auto* change = follow_up.mutable_apply_product_changes()->add_changes();
    change->set_kind(customer::ProductChange::START);
    change->mutable_instance()->set_id("pi-1");
    change->mutable_instance()->set_offer_id("PHONE-LINE");
    out.follow_ups.push_back(std::move(follow_up));
    return out;
  }
  void evolve(google::protobuf::Message&, const google::protobuf::Message&, uint64_t,
              int64_t) const override {}
};

class FollowUpTest : public testing::EngineFixture {
 protected:
  void SetUp() override {
    EngineFixture::SetUp();
    handlers_.add(std::make_unique<ProbeHandler>());
    processor_ = std::make_unique<PartitionProcessor>(partition_for("cus_x", 4), *log_, *store_,
                                                      handlers_, engine_->reference(), clock_, ids_,
                                                      ProcessorOptions{});
  }
  void TearDown() override {
    processor_.reset();
    EngineFixture::TearDown();
  }
  CommandOutcome probe() {
    auto c = command("cus_x");
    c.set_stream_type("probe");
    c.set_stream_id("probe:1");
    c.mutable_add_contact();  // any body: the probe ignores it
    return processor_->submit(std::move(c)).get();
  }

  HandlerRegistry handlers_;
  std::unique_ptr<PartitionProcessor> processor_;
};

TEST_F(FollowUpTest, ARefusedFollowUpRefusesTheWholeCommandAndStoresNothing) {
  auto outcome = probe();  // customer cus_x does not exist: its follow-up is refused

  ASSERT_TRUE(outcome.status.is_ok()) << outcome.status.to_string();
  ASSERT_TRUE(outcome.rejection);
  EXPECT_EQ(outcome.rejection->rule, "customer.not_found");
  EXPECT_TRUE(outcome.events.empty());
  auto head = log_->stream_head("probe:1");
  ASSERT_TRUE(head.is_ok());
  EXPECT_EQ(head->version, 0u) << "the probe's own event was not stored";
}

TEST_F(FollowUpTest, ACommandAndItsFollowUpAreStoredInOneStep) {
  ASSERT_FALSE(run(register_command("cus_x", "Acme")).rejection);

  auto outcome = probe();

  ASSERT_TRUE(outcome.status.is_ok()) << outcome.status.to_string();
  ASSERT_FALSE(outcome.rejection) << outcome.rejection->message;
  EXPECT_EQ(outcome.version, 1u);
  auto customer = engine_->read("customer", "cus_x");
  ASSERT_TRUE(customer.is_ok());
  EXPECT_EQ(customer->version, 2u);
  const auto& state = static_cast<const customer::Customer&>(*customer->state);
  ASSERT_EQ(state.product_instances_size(), 1);
  EXPECT_EQ(state.product_instances(0).id(), "pi-1");
  auto events = log_->read_stream("cus_x", 2, 10);
  ASSERT_TRUE(events.is_ok());
  ASSERT_EQ(events->size(), 1u);
  EXPECT_EQ(events->at(0).event_type(), "crm.customer.ProductInstanceAdded");
  EXPECT_EQ(events->at(0).causation_id(), outcome.events.empty()
                                              ? std::string()
                                              : outcome.events[0].causation_id() + "/follow-up");
}

// The follow-up rules' parameters are configuration: each named, each checked, all or nothing.
TEST(FollowUpRulesConfig, ParsesDurationsOffsetsAndRolesAndNamesABadEntry) {
  FollowUpRules rules;
  EXPECT_EQ(parse_follow_up_rules("revisitAfter=P3D,depositChaseAfter=PT12H,utcOffset=+08:00,"
                                  "vipRevisitEvery=none,overdueEscalateTo=director",
                                  rules),
            "");
  EXPECT_EQ(rules.revisit_after_us, 3 * 86'400'000'000LL);
  EXPECT_EQ(rules.deposit_chase_after_us, 12 * 3'600'000'000LL);
  EXPECT_EQ(rules.utc_offset_us, 8 * 3'600'000'000LL);
  EXPECT_EQ(rules.vip_revisit_every_us, 0);
  EXPECT_EQ(rules.overdue_escalate_to, "director");
  EXPECT_EQ(parse_follow_up_rules("utcOffset=-05:30", rules), "");
  EXPECT_EQ(rules.utc_offset_us, -330 * 60'000'000LL);

  const FollowUpRules before = rules;
  EXPECT_EQ(parse_follow_up_rules("revisitAfter=P1D,retentionDue=soon", rules),
            "follow-up rule retentionDue='soon': expected an ISO 8601 duration such as P7D or "
            "PT48H");
  EXPECT_EQ(rules.revisit_after_us, before.revisit_after_us) << "nothing taken from a bad list";
  EXPECT_NE(parse_follow_up_rules("revisitAfter", rules).find("must be name=value"),
            std::string::npos);
  EXPECT_NE(parse_follow_up_rules("birthdayHour=9", rules).find("unknown follow-up rule"),
            std::string::npos);
  EXPECT_NE(parse_follow_up_rules("utcOffset=+15:00", rules).find("+08:00"), std::string::npos);
  EXPECT_NE(parse_follow_up_rules("fallbackRole=a b", rules).find("expected a role"),
            std::string::npos);
}

}  // namespace
}  // namespace crm
