// Approval policies (publishing, matching, checks) and approval on the order: chains, delegates,
// time limits and escalation, return and resubmission.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/aggregates/order_spec.h"

namespace crm::order {
namespace {

using namespace spec;  // NOLINT: the fixture and builders of every order test

// --- Approval policies ---

ApprovalStep step(const std::string& role, const std::string& limit = "",
                  const std::string& escalate_to = "") {
  ApprovalStep st;
  st.set_role(role);
  st.set_time_limit(limit);
  st.set_escalate_to(escalate_to);
  return st;
}

// A policy: rule "big discount" (≥ 10 %) asks a manager (8 h, then a director); rule "huge"
// (≥ 30 %) asks a manager and then a director.
approval::ApprovalPolicy discount_policy() {
  approval::ApprovalPolicy p;
  p.set_policy_id("discounts");
  auto* big = p.add_rules();
  big->set_name("big discount");
  big->mutable_when()->set_min_discount_percent(10);
  *big->add_steps() = step("manager", "PT8H", "director");
  auto* huge = p.add_rules();
  huge->set_name("huge discount");
  huge->mutable_when()->set_min_discount_percent(30);
  *huge->add_steps() = step("manager");
  *huge->add_steps() = step("director", "P1D");
  return p;
}

// A line of 100.00 a month with the given percent off.
catalog::Offer discounted(const std::string& id, uint32_t percent) {
  catalog::Offer o = offer(id, 0, 10000);
  *o.mutable_pricing_plans(0)->add_discount_packages() = package("base", true, percent);
  return o;
}

TEST(ApprovalPolicies, EveryChangedPublishIsANewVersion) {
  approval::ApprovalPolicies state;
  approval::PublishPolicy c;
  *c.mutable_policy() = discount_policy();
  auto first = approval::decide(state, c);
  ASSERT_FALSE(first.rejection) << first.rejection->message;
  const auto& published = std::get<approval::PolicyPublished>(first.events.at(0)).policy();
  EXPECT_EQ(published.version(), 1u);
  EXPECT_EQ(published.rules(0).steps(0).on_timeout(), ApprovalStep::ESCALATE) << "defaulted";
  EXPECT_EQ(published.rules(1).steps(0).mode(), ApprovalStep::ANY) << "defaulted";
  approval::evolve(state, first.events[0], 1, kT0);
  EXPECT_THAT(approval::decide(state, c).events, IsEmpty()) << "the same again: nothing new";
  c.mutable_policy()->mutable_rules(0)->mutable_when()->set_min_discount_percent(15);
  auto second = approval::decide(state, c);
  ASSERT_EQ(second.events.size(), 1u);
  EXPECT_EQ(std::get<approval::PolicyPublished>(second.events[0]).policy().version(), 2u);
}

TEST(ApprovalPolicies, BadPoliciesAreRefusedNamingTheField) {
  approval::ApprovalPolicies state;
  auto refused = [&](approval::ApprovalPolicy p, const std::string& rule,
                     const std::string& field) {
    approval::PublishPolicy c;
    *c.mutable_policy() = std::move(p);
    expect_refused(approval::decide(state, c), rule, field);
  };
  approval::ApprovalPolicy none = discount_policy();
  none.clear_rules();
  refused(none, "policy.rules_required", "rules");
  approval::ApprovalPolicy all = discount_policy();
  all.mutable_rules(0)->mutable_steps(0)->set_mode(ApprovalStep::ALL);
  refused(all, "policy.step_approvers", "rules[0].steps[0].approvers");
  approval::ApprovalPolicy limit = discount_policy();
  limit.mutable_rules(0)->mutable_steps(0)->set_time_limit("8 hours");
  refused(limit, "policy.time_limit", "rules[0].steps[0].timeLimit");
  approval::ApprovalPolicy escalate = discount_policy();
  escalate.mutable_rules(0)->mutable_steps(0)->clear_escalate_to();
  escalate.mutable_rules(0)->mutable_steps(0)->set_on_timeout(ApprovalStep::ESCALATE);
  refused(escalate, "policy.escalate_to", "rules[0].steps[0].escalateTo");
  approval::ApprovalPolicy twice = discount_policy();
  twice.mutable_rules(1)->set_name("big discount");
  refused(twice, "policy.rule_name", "rules[1].name");
  approval::ApprovalPolicy no_steps = discount_policy();
  no_steps.mutable_rules(1)->clear_steps();
  refused(no_steps, "policy.steps_required", "rules[1].steps");
}

TEST(ApprovalPolicies, IsoDurations) {
  EXPECT_EQ(approval::parse_duration_s("PT8H"), 8 * 3600);
  EXPECT_EQ(approval::parse_duration_s("P1D"), 86400);
  EXPECT_EQ(approval::parse_duration_s("P1DT2H30M"), 86400 + 2 * 3600 + 30 * 60);
  EXPECT_EQ(approval::parse_duration_s("PT45S"), 45);
  for (const char* bad : {"", "P", "PT", "8H", "PT8", "P1H", "PT1D", "P0D", "PTH", "P1D1D",
                          "PT1M1H", "P367D", "P99999999D"})
    EXPECT_FALSE(approval::parse_duration_s(bad)) << bad;
}

TEST(ApprovalPolicies, MatchingRulesMergeIntoOneChainByLevelWithoutDuplicates) {
  approval::ApprovalPolicies state;
  approval::PublishPolicy c;
  *c.mutable_policy() = discount_policy();
  approval::evolve(state, approval::decide(state, c).events.at(0), 1, kT0);

  TestedValues tested;
  tested.set_discount_basis_points(3500);
  auto chain = approval::chain_for(state, tested);
  ASSERT_EQ(chain.steps.size(), 2u);
  EXPECT_EQ(chain.steps[0].role(), "manager");
  EXPECT_THAT(chain.steps[0].rules(),
              ElementsAre("discounts@1/big discount", "discounts@1/huge discount"));
  EXPECT_EQ(chain.steps[1].role(), "director");
  EXPECT_EQ(chain.policy_versions, "discounts@1");

  tested.set_discount_basis_points(1000);
  EXPECT_EQ(approval::chain_for(state, tested).steps.size(), 1u);
  tested.set_discount_basis_points(999);
  EXPECT_TRUE(approval::chain_for(state, tested).steps.empty());
}

TEST(ApprovalPolicies, EachConditionMustHold) {
  approval::ApprovalPolicies state;
  approval::ApprovalPolicy p;
  p.set_policy_id("p");
  auto* rule = p.add_rules();
  rule->set_name("r");
  *rule->add_steps() = step("manager");
  auto* when = rule->mutable_when();
  *when->mutable_min_total() = money(100000);
  when->set_non_standard_price(true);
  when->add_credit_levels(customer::C);
  when->add_order_kinds(CONTRACT);
  when->add_customer_levels(customer::VIP);
  approval::PublishPolicy c;
  *c.mutable_policy() = p;
  approval::evolve(state, approval::decide(state, c).events.at(0), 1, kT0);

  TestedValues t;
  *t.add_totals() = money(100000);
  t.set_non_standard_price(true);
  t.set_credit_level(customer::C);
  t.set_kind(CONTRACT);
  t.set_customer_level(customer::VIP);
  EXPECT_EQ(approval::chain_for(state, t).steps.size(), 1u);
  for (int miss = 0; miss < 5; ++miss) {
    TestedValues u = t;
    if (miss == 0) u.mutable_totals(0)->set_amount_minor(99999);
    if (miss == 1) u.set_non_standard_price(false);
    if (miss == 2) u.set_credit_level(customer::A);
    if (miss == 3) u.set_kind(NORMAL);
    if (miss == 4) u.set_customer_level(customer::GROWTH);
    EXPECT_TRUE(approval::chain_for(state, u).steps.empty()) << "condition " << miss;
  }
}

TEST(ApprovalPolicies, StepsThatCouldNeverBeDecidedAreRefused) {
  approval::ApprovalPolicies state;
  approval::ApprovalPolicy p = discount_policy();
  ApprovalStep* all = p.mutable_rules(0)->mutable_steps(0);
  all->set_mode(ApprovalStep::ALL);
  all->add_approvers("ann");
  approval::PublishPolicy c;
  *c.mutable_policy() = p;
  expect_refused(approval::decide(state, c), "policy.escalate_all", "rules[0].steps[0].onTimeout");
  approval::ApprovalPolicy any = discount_policy();
  any.mutable_rules(1)->mutable_steps(0)->add_approvers("ann");
  *c.mutable_policy() = any;
  expect_refused(approval::decide(state, c), "policy.step_approvers",
                 "rules[1].steps[0].approvers");
}

// --- Approval on the order ---

TEST_F(OrderSpec, APolicyThatMatchesSendsTheOrderToApprovalAndRecordsItsVersion) {
  publish_policy(discount_policy());
  publish(discounted("LINE", 35));
  given_draft();
  given(add_item(add("LINE")));
  ASSERT_EQ(receipt().approval_chain_size(), 2) << "the preview shows the chain";

  given(SubmitOrder());
  EXPECT_EQ(order_.state(), PENDING_APPROVAL);
  EXPECT_EQ(order_.policy_versions(), "discounts@1");
  EXPECT_EQ(order_.requester(), "clerk-1");
  ASSERT_EQ(order_.approvals_size(), 2);
  EXPECT_EQ(order_.approvals(0).approval_id(), "ord-1.1.1");
  EXPECT_EQ(order_.approvals(0).state(), Approval::PENDING);
  EXPECT_EQ(timestamp_to_us(order_.approvals(0).due_at()), now_ + 8 * 3600 * 1'000'000LL);
  EXPECT_EQ(order_.approvals(1).state(), Approval::WAITING);
  EXPECT_THAT(due_approvals(order_),
              ElementsAre(std::make_pair(now_ + 8 * 3600 * 1'000'000LL, std::string("ord-1.1.1"))));
}

TEST_F(OrderSpec, EachApprovalAdvancesTheChainAndTheLastApprovesTheOrder) {
  publish_policy(discount_policy());
  publish(discounted("LINE", 35));
  given_submitted({add("LINE")});

  apply(decide_as("mia", {"manager"}, "ord-1.1.1", ApprovalDecision::APPROVE));
  EXPECT_EQ(order_.approvals(0).state(), Approval::APPROVED);
  EXPECT_EQ(order_.approvals(0).decisions(0).principal_id(), "mia");
  EXPECT_EQ(order_.approvals(0).decisions(0).role(), "manager");
  EXPECT_EQ(order_.approvals(1).state(), Approval::PENDING);
  EXPECT_EQ(order_.state(), PENDING_APPROVAL);

  apply(decide_as("dan", {"director"}, "ord-1.1.2", ApprovalDecision::APPROVE, "fine"));
  EXPECT_EQ(order_.state(), APPROVED);
  expect_refused(decide_as("dan", {"director"}, "ord-1.1.2", ApprovalDecision::APPROVE),
                 "approval.decided", "", Rejection::Kind::kConflict);
}

TEST_F(OrderSpec, RejectEndsTheOrderWithTheComment) {
  publish_policy(discount_policy());
  publish(discounted("LINE", 15));
  given_submitted({add("LINE")});
  expect_refused(decide_as("mia", {"manager"}, "ord-1.1.1", ApprovalDecision::REJECT),
                 "approval.comment_required", "comment");
  apply(decide_as("mia", {"manager"}, "ord-1.1.1", ApprovalDecision::REJECT, "too generous"));
  EXPECT_EQ(order_.state(), REJECTED);
  EXPECT_EQ(order_.approvals(0).state(), Approval::REJECTED);
  EXPECT_EQ(order_.approvals(0).decisions(0).comment(), "too generous");
  expect_refused(when(add_item(add("LINE"))), "order.not_editable", "", Rejection::Kind::kConflict);
}

TEST_F(OrderSpec, ReturnMakesTheOrderEditableAndAResubmissionReasksOnlyWhatChanged) {
  publish_policy(discount_policy());
  publish(discounted("LINE", 35));
  publish(offer("PLAIN", 0, 10000));
  given_submitted({add("LINE")});
  apply(decide_as("mia", {"manager"}, "ord-1.1.1", ApprovalDecision::APPROVE));
  apply(decide_as("dan", {"director"}, "ord-1.1.2", ApprovalDecision::RETURN, "add a note"));
  EXPECT_EQ(order_.state(), RETURNED);

  given(SubmitOrder());  // unchanged: the manager's approval is carried, the director asked
  EXPECT_EQ(order_.approval_round(), 2u);
  ASSERT_EQ(order_.approvals_size(), 2);
  EXPECT_EQ(order_.approvals(0).approval_id(), "ord-1.2.1");
  EXPECT_EQ(order_.approvals(0).state(), Approval::CARRIED);
  EXPECT_EQ(order_.approvals(1).state(), Approval::PENDING);
  EXPECT_EQ(order_.past_approvals_size(), 2);
  expect_refused(decide_as("mia", {"manager"}, "ord-1.1.1", ApprovalDecision::APPROVE),
                 "approval.closed", "", Rejection::Kind::kConflict);

  apply(decide_as("dan", {"director"}, "ord-1.2.2", ApprovalDecision::RETURN, "cheaper please"));
  given(add_item(add("PLAIN")));  // the discount falls to 17.5 %: tested values change
  given(SubmitOrder());
  ASSERT_EQ(order_.approvals_size(), 1);
  EXPECT_EQ(order_.approvals(0).state(), Approval::PENDING) << "asked again";
}

TEST_F(OrderSpec, TheRequesterCanNeverDecideOnTheirOwnOrder) {
  publish_policy(discount_policy());
  publish(discounted("LINE", 15));
  actor_ = "mia";  // a manager submits
  given_submitted({add("LINE")});
  expect_refused(decide_as("mia", {"manager"}, "ord-1.1.1", ApprovalDecision::APPROVE),
                 "approval.own_order", "", Rejection::Kind::kForbidden);
}

TEST_F(OrderSpec, OnlyTheRoleOrADelegateOfItDecides) {
  publish_policy(discount_policy());
  publish(discounted("LINE", 15));
  given_submitted({add("LINE")});
  expect_refused(decide_as("sam", {"sales"}, "ord-1.1.1", ApprovalDecision::APPROVE),
                 "approval.role", "", Rejection::Kind::kForbidden);
  // A delegation from the requester does not let anyone approve the requester's order.
  expect_refused(decide_as("sam", {"sales"}, "ord-1.1.1", ApprovalDecision::APPROVE, "",
                           {{"clerk-1", "manager"}}),
                 "approval.role", "", Rejection::Kind::kForbidden);
  auto d =
      decide_as("sam", {"sales"}, "ord-1.1.1", ApprovalDecision::APPROVE, "", {{"mia", "manager"}});
  apply(d);
  EXPECT_EQ(order_.approvals(0).decisions(0).principal_id(), "sam");
  EXPECT_EQ(order_.approvals(0).decisions(0).on_behalf_of(), "mia");
  EXPECT_EQ(order_.state(), APPROVED);
}

TEST_F(OrderSpec, AnAllStepNeedsEveryNamedApprover) {
  approval::ApprovalPolicy p;
  p.set_policy_id("board");
  auto* rule = p.add_rules();
  rule->set_name("contracts");
  rule->mutable_when()->add_order_kinds(NORMAL);
  ApprovalStep board = step("board");
  board.set_mode(ApprovalStep::ALL);
  board.add_approvers("ann");
  board.add_approvers("ben");
  *rule->add_steps() = board;
  publish_policy(p);
  publish(offer("LINE"));
  given_submitted({add("LINE")});

  expect_refused(decide_as("cat", {"board"}, "ord-1.1.1", ApprovalDecision::APPROVE),
                 "approval.not_an_approver", "", Rejection::Kind::kForbidden);
  apply(decide_as("ann", {}, "ord-1.1.1", ApprovalDecision::APPROVE));
  EXPECT_EQ(order_.state(), PENDING_APPROVAL);
  expect_refused(decide_as("ann", {}, "ord-1.1.1", ApprovalDecision::APPROVE),
                 "approval.already_decided", "", Rejection::Kind::kConflict);
  apply(decide_as("ben", {}, "ord-1.1.1", ApprovalDecision::APPROVE));
  EXPECT_EQ(order_.state(), APPROVED);
}

TEST_F(OrderSpec, OnePersonCannotCompleteAnAllStepThroughTwoDelegations) {
  approval::ApprovalPolicy p;
  p.set_policy_id("board");
  auto* rule = p.add_rules();
  rule->set_name("all orders");
  ApprovalStep board = step("board");
  board.set_mode(ApprovalStep::ALL);
  board.add_approvers("ann");
  board.add_approvers("ben");
  *rule->add_steps() = board;
  publish_policy(p);
  publish(offer("LINE"));
  given_submitted({add("LINE")});
  const std::vector<std::pair<std::string, std::string>> both = {{"ann", "board"},
                                                                 {"ben", "board"}};
  apply(decide_as("dan", {}, "ord-1.1.1", ApprovalDecision::APPROVE, "", both));
  expect_refused(decide_as("dan", {}, "ord-1.1.1", ApprovalDecision::APPROVE, "", both),
                 "approval.already_decided", "", Rejection::Kind::kConflict);
  EXPECT_EQ(order_.state(), PENDING_APPROVAL);
}

TEST_F(OrderSpec, TheRequestersOwnEarlierApprovalIsNeverCarried) {
  publish_policy(discount_policy());
  publish(discounted("LINE", 35));
  given_submitted({add("LINE")});
  apply(decide_as("mia", {"manager"}, "ord-1.1.1", ApprovalDecision::APPROVE));
  apply(decide_as("dan", {"director"}, "ord-1.1.2", ApprovalDecision::RETURN, "again"));
  actor_ = "mia";  // the manager who approved step 1 resubmits
  given(SubmitOrder());
  EXPECT_EQ(order_.approvals(0).state(), Approval::PENDING) << "asked again, of someone else";
}

TEST_F(OrderSpec, AManualPriceAlwaysNeedsApproval) {
  publish(offer("LINE"));
  given_draft();
  Item item = add("LINE");
  *item.mutable_manual_price() = money(100);
  given(add_item(item));
  ASSERT_EQ(receipt().approval_chain_size(), 1);
  EXPECT_EQ(receipt().approval_chain(0).role(), "manager");
  EXPECT_EQ(receipt().approval_chain(0).rule(), "built-in/non-standard price");
  given(SubmitOrder());
  EXPECT_EQ(order_.state(), PENDING_APPROVAL);
}

TEST_F(OrderSpec, SumsThatWouldLeave64BitsAreAViolationNotAWrap) {
  publish(offer("BIG", 0, kAmountMax));
  given_draft();
  for (int i = 0; i < 2; ++i) given(add_item(add("BIG", 5000)));  // 5·10^18 each: fits alone
  expect_violation("price.overflow", "");
}

TEST_F(OrderSpec, AModifyIsPricedForEveryUnitTheInstanceHolds) {
  catalog::Offer tv = offer("TV", 0, 3000);
  auto* gold = tv.add_pricing_plans();
  gold->set_id("gold");
  gold->set_kind(catalog::DISCOUNTED);
  *gold->mutable_recurring() = money(4500);
  publish(tv);
  hold("pi-tv", "TV", 5);
  given_draft();
  Item upgrade = change(MODIFY, "TV", "pi-tv");
  upgrade.set_pricing_plan_id("gold");
  given(add_item(upgrade));
  EXPECT_EQ(receipt().lines(0).quantity(), 5u);
  EXPECT_EQ(receipt().lines(0).recurring().amount_minor(), 5 * 4500);
}

TEST_F(OrderSpec, ATimedOutStepEscalatesOnceThenRejects) {
  publish_policy(discount_policy());
  publish(discounted("LINE", 15));
  given_submitted({add("LINE")});
  ApprovalTimedOut timeout;
  timeout.set_approval_id("ord-1.1.1");
  EXPECT_THAT(when(timeout).events, IsEmpty()) << "not due yet: a timer firing early does nothing";

  now_ += 8 * 3600 * 1'000'000LL;
  given(timeout);
  EXPECT_EQ(order_.approvals(0).asked_role(), "director");
  EXPECT_EQ(order_.approvals(0).escalations(), 1u);
  EXPECT_EQ(timestamp_to_us(order_.approvals(0).due_at()), now_ + 8 * 3600 * 1'000'000LL);
  expect_refused(decide_as("mia", {"manager"}, "ord-1.1.1", ApprovalDecision::APPROVE),
                 "approval.role", "", Rejection::Kind::kForbidden);

  now_ += 8 * 3600 * 1'000'000LL;
  given(timeout);
  EXPECT_EQ(order_.state(), REJECTED);
  EXPECT_EQ(order_.approvals(0).state(), Approval::REJECTED);
  EXPECT_THAT(when(timeout).events, IsEmpty()) << "fired again: nothing changes";
}

TEST_F(OrderSpec, APendingOrderKeepsThePolicyVersionThatAskedForApproval) {
  publish_policy(discount_policy());
  publish(discounted("LINE", 15));
  given_submitted({add("LINE")});
  approval::ApprovalPolicy stricter = discount_policy();
  *stricter.mutable_rules(0)->add_steps() = step("ceo");
  publish_policy(stricter);

  apply(decide_as("mia", {"manager"}, "ord-1.1.1", ApprovalDecision::APPROVE));
  EXPECT_EQ(order_.state(), APPROVED) << "the ceo step of version 2 is not asked";
  EXPECT_EQ(order_.policy_versions(), "discounts@1");
}

TEST_F(OrderSpec, CancellingAPendingOrderClosesItsSteps) {
  publish_policy(discount_policy());
  publish(discounted("LINE", 35));
  given_submitted({add("LINE")});
  given(CancelOrder());
  EXPECT_EQ(order_.approvals(0).state(), Approval::CLOSED);
  EXPECT_EQ(order_.approvals(1).state(), Approval::CLOSED);
  EXPECT_THAT(due_approvals(order_), IsEmpty());
}

TEST(ApprovalIds, NameTheirOrder) {
  EXPECT_EQ(order_of_approval("ord_ab.cd.2.13"), "ord_ab.cd");
  EXPECT_EQ(order_of_approval("ord_1.1.1"), "ord_1");
  EXPECT_EQ(order_of_approval("ord_1.x.1"), "");
  EXPECT_EQ(order_of_approval("ord_1.1"), "");
  EXPECT_EQ(order_of_approval(".1.1"), "");
}

}  // namespace
}  // namespace crm::order
