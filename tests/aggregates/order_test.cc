// Order aggregate: given a catalog, a customer and an order's events, when a command, then the
// events, or the rule that refused it; the receipt's prices checked by hand; and a property
// test that line totals always add up to the order's totals.
#include "aggregates/order/order.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <array>
#include <map>
#include <random>

#include "aggregates/approval/policies.h"
#include "aggregates/catalog/catalog.h"
#include "aggregates/customer/customer.h"
#include "aggregates/money.h"
#include "events/codec.h"
#include "tests/aggregates/refusals.h"

namespace crm::order {
namespace {

using crm::testing::expect_refused;

using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

constexpr int64_t kT0 = 1'790'000'000'000'000;
constexpr int64_t kDayUs = 86'400'000'000;

Money money(int64_t minor, const std::string& currency = "CNY") {
  Money m;
  m.set_amount_minor(minor);
  m.set_currency(currency);
  return m;
}

catalog::DiscountPackage package(const std::string& id, bool base, uint32_t percent,
                                 int64_t amount_off = 0,
                                 std::vector<catalog::EffectiveMode> modes = {catalog::IMMEDIATE}) {
  catalog::DiscountPackage p;
  p.set_id(id);
  p.set_base(base);
  p.set_percent_off(percent);
  if (amount_off > 0) *p.mutable_amount_off() = money(amount_off);
  for (auto m : modes) p.add_effective_modes(m);
  return p;
}

// A single offer with one standard plan "std" (one-time and recurring charges).
catalog::Offer offer(const std::string& id, int64_t one_time = 5000, int64_t recurring = 2900) {
  catalog::Offer o;
  o.set_offer_id(id);
  o.set_name("Offer " + id);
  o.set_kind(catalog::SINGLE);
  auto* plan = o.add_pricing_plans();
  plan->set_id("std");
  plan->set_kind(catalog::STANDARD);
  if (one_time > 0) *plan->mutable_one_time() = money(one_time);
  if (recurring > 0) *plan->mutable_recurring() = money(recurring);
  return o;
}

Item add(const std::string& offer_id, uint32_t quantity = 1) {
  Item item;
  item.set_offer_id(offer_id);
  item.set_quantity(quantity);
  return item;
}

Item change(ItemAction action, const std::string& offer_id, const std::string& instance_id) {
  Item item;
  item.set_action(action);
  item.set_offer_id(offer_id);
  item.set_product_instance_id(instance_id);
  return item;
}

AddItem add_item(const Item& item) {
  AddItem c;
  *c.mutable_item() = item;
  return c;
}

RecordActivation result(const std::string& item_id, bool activated) {
  RecordActivation c;
  c.set_item_id(item_id);
  c.set_result(activated ? RecordActivation::ACTIVATED : RecordActivation::FAILED);
  return c;
}

class OrderSpec : public ::testing::Test {
 protected:
  OrderSpec() {
    customer::RegisterCustomer r;
    r.set_name("Acme");
    r.set_kind(customer::ENTERPRISE);
    r.set_level(customer::GROWTH);
    r.set_credit_level(customer::B);
    r.set_region("North");
    r.set_owner_id("alice");
    apply_customer(r);
  }

  void publish(const catalog::Offer& o) {
    catalog::PublishOffer c;
    *c.mutable_offer() = o;
    auto d = catalog::decide(catalog_, c);
    ASSERT_FALSE(d.rejection) << d.rejection->message;
    for (const auto& e : d.events) catalog::evolve(catalog_, e, catalog_.version() + 1, now_);
  }
  void retire(const std::string& id) {
    catalog::RetireOffer c;
    c.set_offer_id(id);
    auto d = catalog::decide(catalog_, c);
    ASSERT_FALSE(d.rejection) << d.rejection->message;
    for (const auto& e : d.events) catalog::evolve(catalog_, e, catalog_.version() + 1, now_);
  }
  void apply_customer(const customer::Command& command) {
    auto d = customer::decide(customer_, "cus-1", command);
    ASSERT_FALSE(d.rejection) << d.rejection->message;
    for (const auto& e : d.events) customer::evolve(customer_, e, customer_.version() + 1, now_);
  }
  // The customer holds an instance of `offer_id` on plan "std".
  void hold(const std::string& instance_id, const std::string& offer_id, uint32_t quantity = 1) {
    customer::ApplyProductChanges c;
    auto* change = c.add_changes();
    change->set_kind(customer::ProductChange::START);
    auto* instance = change->mutable_instance();
    instance->set_id(instance_id);
    instance->set_offer_id(offer_id);
    instance->set_offer_version(1);
    instance->set_pricing_plan_id("std");
    instance->set_quantity(quantity);
    apply_customer(c);
  }

  Context context() {
    Context c;
    c.catalog = &catalog_;
    c.customer = &customer_;
    c.policies = &policies_;
    c.order_id = "ord-1";
    c.actor_id = actor_;
    c.now_us = now_;
    return c;
  }
  void given(const Command& command) {
    auto d = decide(order_, command, context());
    ASSERT_FALSE(d.rejection) << d.rejection->rule << ": " << d.rejection->message;
    for (const auto& e : d.events) evolve(order_, e, order_.version() + 1, now_);
  }
  Decision<Event> when(const Command& command) { return decide(order_, command, context()); }
  void given_draft() {
    CreateOrder c;
    c.set_customer_id("cus-1");
    given(c);
  }
  // A draft with `items`, submitted.
  void given_submitted(const std::vector<Item>& items) {
    given_draft();
    for (const auto& item : items) given(add_item(item));
    given(SubmitOrder());
  }
  Receipt receipt() { return price(order_, context()); }

  // The receipt lists a violation of `rule` on `item_id`, and submission is refused by it.
  Violation expect_violation(const std::string& rule, const std::string& item_id) {
    Receipt r = receipt();
    EXPECT_FALSE(r.submittable());
    for (const auto& v : r.violations()) {
      if (v.rule() == rule && v.item_id() == item_id) {
        auto d = when(SubmitOrder());
        expect_refused(d, rule, v.field());
        return v;
      }
    }
    ADD_FAILURE() << "no " << rule << " on " << item_id << " in " << r.DebugString();
    return {};
  }
  void expect_no_violation() {
    Receipt r = receipt();
    EXPECT_THAT(r.violations(), IsEmpty()) << r.DebugString();
    EXPECT_TRUE(r.submittable());
  }

  // Publishes an approval policy; fails the test if it is refused.
  void publish_policy(const approval::ApprovalPolicy& policy) {
    approval::PublishPolicy c;
    *c.mutable_policy() = policy;
    auto d = approval::decide(policies_, c);
    ASSERT_FALSE(d.rejection) << d.rejection->message;
    for (const auto& e : d.events) approval::evolve(policies_, e, policies_.version() + 1, now_);
  }
  // Decides `approval_id` as `actor` holding `roles`.
  Decision<Event> decide_as(
      const std::string& actor, const std::vector<std::string>& roles,
      const std::string& approval_id, ApprovalDecision::Kind kind, const std::string& comment = "",
      const std::vector<std::pair<std::string, std::string>>& delegators = {}) {
    DecideApproval c;
    c.set_approval_id(approval_id);
    c.set_decision(kind);
    c.set_comment(comment);
    for (const auto& r : roles) c.add_roles(r);
    for (const auto& [who, role] : delegators) {
      auto* d = c.add_delegations();
      d->set_principal_id(who);
      d->add_roles(role);
    }
    const std::string before = actor_;
    actor_ = actor;
    auto d = when(c);
    actor_ = before;
    return d;
  }
  void apply(const Decision<Event>& d) {
    ASSERT_FALSE(d.rejection) << d.rejection->rule << ": " << d.rejection->message;
    for (const auto& e : d.events) evolve(order_, e, order_.version() + 1, now_);
  }

  catalog::Catalog catalog_;
  customer::Customer customer_;
  approval::ApprovalPolicies policies_;
  Order order_;
  int64_t now_ = kT0;
  std::string actor_ = "clerk-1";
};

// --- Drafts and items ---

TEST_F(OrderSpec, ADraftIsOwnedByTheCustomersOwnerAndRecordsItsCreator) {
  CreateOrder c;
  c.set_customer_id("cus-1");
  c.set_channel("web");
  auto d = when(c);

  ASSERT_FALSE(d.rejection);
  const auto& e = std::get<OrderCreated>(d.events.at(0));
  EXPECT_EQ(e.owner_id(), "alice");
  EXPECT_EQ(e.created_by(), "clerk-1");
  EXPECT_EQ(e.kind(), NORMAL);
  evolve(order_, d.events[0], 1, now_);
  EXPECT_EQ(order_.state(), DRAFT);
  EXPECT_EQ(order_.id(), "ord-1");
}

TEST_F(OrderSpec, AnOrderForAnUnknownCustomerIsRefused) {
  customer_ = customer::Customer();
  CreateOrder c;
  c.set_customer_id("cus-404");
  expect_refused(when(c), "customer.not_found", "customerId");
}

TEST_F(OrderSpec, AnOrderIsCreatedOnce) {
  given_draft();
  CreateOrder c;
  c.set_customer_id("cus-1");
  expect_refused(when(c), "order.exists", "", Rejection::Kind::kConflict);
}

TEST_F(OrderSpec, ItemsTakeDefaultsAndIdsThatAreNeverReused) {
  publish(offer("PHONE-LINE"));
  given_draft();
  Item bare;
  bare.set_offer_id("PHONE-LINE");
  given(add_item(bare));
  given(add_item(bare));
  RemoveItem remove;
  remove.set_item_id("it-2");
  given(remove);
  given(add_item(bare));

  ASSERT_EQ(order_.items_size(), 2);
  EXPECT_EQ(order_.items(0).item_id(), "it-1");
  EXPECT_EQ(order_.items(1).item_id(), "it-3");
  EXPECT_EQ(order_.items(0).quantity(), 1u);
  EXPECT_EQ(order_.items(0).action(), ADD);
  EXPECT_EQ(order_.items(0).effective_mode(), catalog::IMMEDIATE);
  EXPECT_EQ(order_.items(0).pricing_plan_id(), "std") << "the only plan is taken";
}

TEST_F(OrderSpec, AnItemMustNameWhatTheCatalogHas) {
  catalog::Offer two_plans = offer("TV");
  auto* premium = two_plans.add_pricing_plans();
  premium->set_id("premium");
  premium->set_kind(catalog::DISCOUNTED);
  *premium->mutable_recurring() = money(5900);
  *premium->add_discount_packages() = package("base", true, 10);
  publish(two_plans);
  given_draft();

  expect_refused(when(add_item(add("NOPE"))), "offer.unknown", "offerId");
  expect_refused(when(add_item(add("TV"))), "plan.required", "pricingPlanId");
  Item wrong_plan = add("TV");
  wrong_plan.set_pricing_plan_id("gold");
  expect_refused(when(add_item(wrong_plan)), "plan.unknown", "pricingPlanId");
  Item wrong_package = add("TV");
  wrong_package.set_pricing_plan_id("premium");
  wrong_package.add_discount_package_ids("summer");
  expect_refused(when(add_item(wrong_package)), "package.unknown", "discountPackageIds[0]");
  Item wrong_mode = add("TV");
  wrong_mode.set_pricing_plan_id("premium");
  wrong_mode.set_effective_mode(catalog::NEXT_CYCLE);
  expect_refused(when(add_item(wrong_mode)), "package.effective_mode", "effectiveMode");
}

TEST_F(OrderSpec, AnItemsOwnValuesAreChecked) {
  publish(offer("PHONE-LINE"));
  given_draft();
  Item engine_fields = add("PHONE-LINE");
  engine_fields.set_item_id("it-9");
  engine_fields.set_offer_version(3);
  expect_refused(when(add_item(engine_fields)), "item.read_only", "itemId");
  expect_refused(when(add_item(engine_fields)), "item.read_only", "offerVersion");

  Item on_date = add("PHONE-LINE");
  on_date.set_effective_mode(catalog::ON_DATE);
  expect_refused(when(add_item(on_date)), "item.effective_date_required", "effectiveDate");
  Item dated = add("PHONE-LINE");
  *dated.mutable_effective_date() = timestamp_from_us(now_ + kDayUs);
  expect_refused(when(add_item(dated)), "item.effective_date_unexpected", "effectiveDate");

  expect_refused(when(add_item(change(REMOVE, "PHONE-LINE", ""))), "item.product_instance_required",
                 "productInstanceId");
  Item add_with_instance = add("PHONE-LINE");
  add_with_instance.set_product_instance_id("pi-1");
  expect_refused(when(add_item(add_with_instance)), "item.product_instance_unexpected",
                 "productInstanceId");
  Item remove_with_plan = change(REMOVE, "PHONE-LINE", "pi-1");
  remove_with_plan.set_pricing_plan_id("std");
  expect_refused(when(add_item(remove_with_plan)), "item.remove_terms", "pricingPlanId");

  Item too_many = add("PHONE-LINE", kQuantityMax + 1);
  expect_refused(when(add_item(too_many)), "item.quantity", "quantity");

  Item negative = add("PHONE-LINE");
  *negative.mutable_manual_price() = money(-1);
  expect_refused(when(add_item(negative)), "money.negative", "manualPrice.amountMinor");
  Item dollars = add("PHONE-LINE");
  *dollars.mutable_manual_price() = money(100, "USD");
  expect_refused(when(add_item(dollars)), "price.manual_currency", "manualPrice.currency");

  Item twice = add("PHONE-LINE");
  twice.add_discount_package_ids("a");
  twice.add_discount_package_ids("a");
  expect_refused(when(add_item(twice)), "item.package_repeated", "discountPackageIds[1]");
}

TEST_F(OrderSpec, APatchChangesOnlyWhatItNames) {
  catalog::Offer o = offer("PHONE-LINE");
  *o.mutable_pricing_plans(0)->add_discount_packages() = package("promo", false, 5);
  publish(o);
  given_draft();
  given(add_item(add("PHONE-LINE", 2)));

  ChangeItem c;
  c.set_item_id("it-1");
  c.mutable_patch()->add_discount_package_ids("promo");
  auto d = when(c);
  ASSERT_FALSE(d.rejection) << d.rejection->message;
  const Item& changed = std::get<ItemChanged>(d.events.at(0)).item();
  EXPECT_EQ(changed.item_id(), "it-1");
  EXPECT_EQ(changed.quantity(), 2u);
  EXPECT_THAT(changed.discount_package_ids(), ElementsAre("promo"));
  given(c);

  EXPECT_THAT(when(c).events, IsEmpty()) << "the same patch again changes nothing";
  ChangeItem clear;
  clear.set_item_id("it-1");
  clear.mutable_patch()->set_clear_discount_packages(true);
  given(clear);
  EXPECT_THAT(order_.items(0).discount_package_ids(), IsEmpty());

  ChangeItem unknown;
  unknown.set_item_id("it-7");
  expect_refused(when(unknown), "order.item_not_found", "", Rejection::Kind::kNotFound);
  ChangeItem bad;
  bad.set_item_id("it-1");
  bad.mutable_patch()->set_pricing_plan_id("gold");
  expect_refused(when(bad), "plan.unknown", "pricingPlanId");
}

TEST_F(OrderSpec, ASubmittedOrderTakesNoItemChanges) {
  publish(offer("PHONE-LINE"));
  given_submitted({add("PHONE-LINE")});

  expect_refused(when(add_item(add("PHONE-LINE"))), "order.not_editable", "",
                 Rejection::Kind::kConflict);
  ChangeItem c;
  c.set_item_id("it-1");
  c.mutable_patch()->set_quantity(3);
  expect_refused(when(c), "order.not_editable", "", Rejection::Kind::kConflict);
  RemoveItem r;
  r.set_item_id("it-1");
  expect_refused(when(r), "order.not_editable", "", Rejection::Kind::kConflict);
  expect_refused(when(SubmitOrder()), "order.not_editable", "", Rejection::Kind::kConflict);
}

TEST_F(OrderSpec, CommandsOnAnOrderThatDoesNotExistAre404) {
  expect_refused(when(add_item(add("X"))), "order.not_found", "", Rejection::Kind::kNotFound);
  expect_refused(when(SubmitOrder()), "order.not_found", "", Rejection::Kind::kNotFound);
  expect_refused(when(CancelOrder()), "order.not_found", "", Rejection::Kind::kNotFound);
}

// --- Submission ---

TEST_F(OrderSpec, SubmittingFixesTheReceiptAndTheOfferVersionsAndApproves) {
  publish(offer("PHONE-LINE"));
  publish(offer("PHONE-LINE", 4000));  // version 2
  given_draft();
  given(add_item(add("PHONE-LINE")));

  auto d = when(SubmitOrder());
  ASSERT_FALSE(d.rejection) << d.rejection->message;
  ASSERT_EQ(d.events.size(), 2u);
  const auto& submitted = std::get<OrderSubmitted>(d.events[0]);
  EXPECT_EQ(submitted.submitted_by(), "clerk-1");
  EXPECT_EQ(submitted.receipt().lines(0).offer_version(), 2u);
  EXPECT_TRUE(std::holds_alternative<OrderApproved>(d.events[1]));
  for (const auto& e : d.events) evolve(order_, e, order_.version() + 1, now_);
  EXPECT_EQ(order_.state(), APPROVED);
  EXPECT_EQ(order_.items(0).offer_version(), 2u);
  EXPECT_EQ(order_.items(0).state(), Item::PENDING);
  EXPECT_EQ(order_.receipt().totals(0).one_time().amount_minor(), 4000);

  publish(offer("PHONE-LINE", 9999));  // later versions do not reprice a submitted order
  EXPECT_EQ(order_.receipt().totals(0).one_time().amount_minor(), 4000);
}

TEST_F(OrderSpec, AnEmptyOrderCannotBeSubmitted) {
  given_draft();
  expect_refused(when(SubmitOrder()), "order.empty", "items");
}

// --- Cancellation ---

TEST_F(OrderSpec, ADraftOrApprovedOrderCanBeCancelledWithItsReason) {
  publish(offer("PHONE-LINE"));
  given_submitted({add("PHONE-LINE")});
  CancelOrder c;
  c.set_reason("customer changed their mind");
  given(c);
  EXPECT_EQ(order_.state(), CANCELLED);
  EXPECT_EQ(order_.cancel_reason(), "customer changed their mind");
  expect_refused(when(c), "order.not_cancellable", "", Rejection::Kind::kConflict);
}

TEST_F(OrderSpec, AnOrderInFulfilmentCannotBeCancelled) {
  publish(offer("PHONE-LINE"));
  given_submitted({add("PHONE-LINE"), add("PHONE-LINE")});
  given(result("it-1", true));
  expect_refused(when(CancelOrder()), "order.not_cancellable", "", Rejection::Kind::kConflict);
}

// --- Fulfilment ---

TEST_F(OrderSpec, AllItemsActivatedCompletesTheOrder) {
  publish(offer("PHONE-LINE"));
  given_submitted({add("PHONE-LINE"), add("PHONE-LINE")});
  given(result("it-1", true));
  EXPECT_EQ(order_.state(), IN_PROGRESS);

  auto d = when(result("it-2", true));
  ASSERT_EQ(d.events.size(), 2u);
  EXPECT_EQ(std::get<OrderClosed>(d.events[1]).state(), COMPLETED);
  given(result("it-2", true));
  EXPECT_EQ(order_.state(), COMPLETED);
  EXPECT_EQ(order_.items(1).product_instance_id(), "pi-ord-1-it-2");
}

TEST_F(OrderSpec, SomeFailedIsPartialAndAllFailedIsFailed) {
  publish(offer("PHONE-LINE"));
  given_submitted({add("PHONE-LINE"), add("PHONE-LINE")});
  given(result("it-1", true));
  given(result("it-2", false));
  EXPECT_EQ(order_.state(), PARTIAL);

  order_ = Order();
  given_submitted({add("PHONE-LINE")});
  given(result("it-1", false));
  EXPECT_EQ(order_.state(), FAILED);
}

TEST_F(OrderSpec, ActivationNeedsAnApprovedOrderAndOneResultPerItem) {
  publish(offer("PHONE-LINE"));
  given_draft();
  given(add_item(add("PHONE-LINE")));
  expect_refused(when(result("it-1", true)), "order.not_in_fulfilment", "",
                 Rejection::Kind::kConflict);
  given(SubmitOrder());
  expect_refused(when(result("it-9", true)), "order.item_not_found", "",
                 Rejection::Kind::kNotFound);
  RecordActivation none;
  none.set_item_id("it-1");
  expect_refused(when(none), "activation.result", "result");
  given(result("it-1", true));
  expect_refused(when(result("it-1", true)), "order.not_in_fulfilment", "",
                 Rejection::Kind::kConflict);
}

TEST_F(OrderSpec, ASecondResultForAnItemIsRefused) {
  publish(offer("PHONE-LINE"));
  given_submitted({add("PHONE-LINE"), add("PHONE-LINE")});
  given(result("it-1", false));
  expect_refused(when(result("it-1", true)), "item.result_recorded", "",
                 Rejection::Kind::kConflict);
}

TEST_F(OrderSpec, ActivatedItemsChangeProductInstances) {
  publish(offer("PHONE-LINE"));
  catalog::Offer tv = offer("TV");
  auto* gold = tv.add_pricing_plans();
  gold->set_id("gold");
  gold->set_kind(catalog::DISCOUNTED);
  *gold->mutable_recurring() = money(9900);
  publish(tv);
  hold("pi-tv", "TV");
  hold("pi-old", "PHONE-LINE");
  Item upgrade = change(MODIFY, "TV", "pi-tv");
  upgrade.set_pricing_plan_id("gold");
  given_submitted({add("PHONE-LINE", 2), upgrade, change(REMOVE, "PHONE-LINE", "pi-old")});

  auto added = std::get<ItemActivated>(when(result("it-1", true)).events.at(0));
  auto change_add = product_change(order_, added);
  ASSERT_TRUE(change_add);
  EXPECT_EQ(change_add->kind(), customer::ProductChange::START);
  EXPECT_EQ(change_add->instance().id(), "pi-ord-1-it-1");
  EXPECT_EQ(change_add->instance().quantity(), 2u);
  EXPECT_EQ(change_add->instance().offer_version(), 1u);

  auto modified = std::get<ItemActivated>(when(result("it-2", true)).events.at(0));
  auto change_plan = product_change(order_, modified);
  EXPECT_EQ(change_plan->kind(), customer::ProductChange::CHANGE);
  EXPECT_EQ(change_plan->instance().id(), "pi-tv");
  EXPECT_EQ(change_plan->instance().pricing_plan_id(), "gold");

  auto removed = std::get<ItemActivated>(when(result("it-3", true)).events.at(0));
  EXPECT_EQ(product_change(order_, removed)->kind(), customer::ProductChange::END);
  EXPECT_EQ(product_change(order_, removed)->instance().id(), "pi-old");
}

TEST_F(OrderSpec, AnAddIsJudgedAgainAgainstWhatTheCustomerHoldsWhenItIsCarriedOut) {
  catalog::Offer single = offer("SINGLE-SIM");
  single.set_max_quantity(1);
  publish(single);
  publish(offer("PREPAID"));
  catalog::Offer postpaid = offer("POSTPAID");
  postpaid.add_excludes("PREPAID");
  publish(postpaid);
  given_submitted({add("SINGLE-SIM"), add("POSTPAID")});
  // Meanwhile another order of the customer was fulfilled.
  hold("pi-sim", "SINGLE-SIM");
  hold("pi-pre", "PREPAID");
  expect_refused(when(result("it-1", true)), "quantity.max", "", Rejection::Kind::kConflict);
  expect_refused(when(result("it-2", true)), "offer.excludes", "", Rejection::Kind::kConflict);
  EXPECT_FALSE(when(result("it-2", false)).rejection) << "recorded as FAILED instead";
}

TEST_F(OrderSpec, AnAddWhosePrerequisiteFailedIsNotCarriedOut) {
  publish(offer("PHONE-LINE"));
  catalog::Offer calls = offer("CALL-PACK", 0, 1000);
  calls.add_required_offers("PHONE-LINE");
  publish(calls);
  given_submitted({add("PHONE-LINE"), add("CALL-PACK")});
  given(result("it-1", false));
  expect_refused(when(result("it-2", true)), "offer.requires", "", Rejection::Kind::kConflict);
}

TEST_F(OrderSpec, AnInstanceEndedSinceSubmissionCannotBeActivatedForAModifyOrRemove) {
  publish(offer("PHONE-LINE"));
  hold("pi-old", "PHONE-LINE");
  given_submitted({change(REMOVE, "PHONE-LINE", "pi-old")});
  customer::ApplyProductChanges end;
  auto* c = end.add_changes();
  c->set_kind(customer::ProductChange::END);
  c->mutable_instance()->set_id("pi-old");
  apply_customer(end);  // another order disconnected it meanwhile

  expect_refused(when(result("it-1", true)), "product_instance.not_held", "",
                 Rejection::Kind::kConflict);
  EXPECT_FALSE(when(result("it-1", false)).rejection) << "a FAILED result is still recorded";
}

// --- Offer rules, in the preview and at submission ---

TEST_F(OrderSpec, EligibilityByCustomerKindLevelCreditAndRegion) {
  catalog::Offer o = offer("HOME");
  o.mutable_eligibility()->add_customer_kinds(customer::INDIVIDUAL);
  publish(o);
  given_draft();
  given(add_item(add("HOME")));
  expect_violation("eligibility.customer_kind", "it-1");

  o = offer("HOME");
  o.mutable_eligibility()->set_min_level(customer::VIP);
  publish(o);
  expect_violation("eligibility.level", "it-1");

  o = offer("HOME");
  o.mutable_eligibility()->set_min_level(customer::GROWTH);  // the customer's own level
  o.mutable_eligibility()->add_credit_levels(customer::A);
  publish(o);
  auto v = expect_violation("eligibility.credit_level", "it-1");
  EXPECT_THAT(v.message(), HasSubstr("credit level B"));

  o = offer("HOME");
  o.mutable_eligibility()->add_credit_levels(customer::B);
  o.mutable_eligibility()->add_regions("South");
  publish(o);
  expect_violation("eligibility.region", "it-1");

  o.mutable_eligibility()->add_regions("North");
  publish(o);
  expect_no_violation();
}

TEST_F(OrderSpec, AMissingPrerequisiteDerivesTheItemToAdd) {
  publish(offer("PHONE-LINE"));
  catalog::Offer calls = offer("CALL-PACK", 0, 1000);
  calls.add_required_offers("PHONE-LINE");
  publish(calls);
  given_draft();
  given(add_item(add("CALL-PACK")));

  Violation v = expect_violation("offer.requires", "it-1");
  EXPECT_EQ(v.derived_action().action(), ADD);
  EXPECT_EQ(v.derived_action().offer_id(), "PHONE-LINE");
  EXPECT_EQ(v.derived_action().message(), "add offer PHONE-LINE first");
  EXPECT_EQ(v.field(), "items/it-1/offerId");

  given(add_item(add("PHONE-LINE")));  // the derived action, taken
  expect_no_violation();
}

TEST_F(OrderSpec, APrerequisiteTheCustomerHoldsIsMet) {
  publish(offer("PHONE-LINE"));
  catalog::Offer calls = offer("CALL-PACK", 0, 1000);
  calls.add_required_offers("PHONE-LINE");
  publish(calls);
  hold("pi-1", "PHONE-LINE");
  given_draft();
  given(add_item(add("CALL-PACK")));
  expect_no_violation();

  given(add_item(change(REMOVE, "PHONE-LINE", "pi-1")));  // ... unless this order removes it
  expect_violation("offer.requires", "it-1");
}

TEST_F(OrderSpec, RemovingAnOfferThatAnotherRequiresDerivesTheRemovalOfTheOther) {
  publish(offer("PHONE-LINE"));
  catalog::Offer calls = offer("CALL-PACK", 0, 1000);
  calls.add_required_offers("PHONE-LINE");
  publish(calls);
  hold("pi-line", "PHONE-LINE");
  hold("pi-calls", "CALL-PACK");
  given_draft();
  given(add_item(change(REMOVE, "PHONE-LINE", "pi-line")));

  Violation v = expect_violation("offer.still_required", "it-1");
  EXPECT_EQ(v.derived_action().action(), REMOVE);
  EXPECT_EQ(v.derived_action().offer_id(), "CALL-PACK");

  given(add_item(change(REMOVE, "CALL-PACK", "pi-calls")));
  expect_no_violation();
}

TEST_F(OrderSpec, ExcludedOffersCannotBeHeldOrOrderedTogether) {
  publish(offer("PREPAID"));
  catalog::Offer postpaid = offer("POSTPAID");
  postpaid.add_excludes("PREPAID");
  publish(postpaid);
  hold("pi-pre", "PREPAID");
  given_draft();
  given(add_item(add("POSTPAID")));

  Violation v = expect_violation("offer.excludes", "it-1");
  EXPECT_EQ(v.derived_action().action(), REMOVE);
  EXPECT_EQ(v.derived_action().offer_id(), "PREPAID");

  given(add_item(change(REMOVE, "PREPAID", "pi-pre")));
  expect_no_violation();
  given(add_item(add("PREPAID")));  // exclusion named by the other offer works both ways
  expect_violation("offer.excludes", "it-3");
}

TEST_F(OrderSpec, QuantityBoundsCountWhatTheCustomerKeeps) {
  catalog::Offer o = offer("SIM");
  o.set_min_quantity(2);
  o.set_max_quantity(5);
  publish(o);
  hold("pi-sims", "SIM", 3);
  given_draft();
  given(add_item(add("SIM", 1)));
  expect_violation("quantity.min", "it-1");

  ChangeItem more;
  more.set_item_id("it-1");
  more.mutable_patch()->set_quantity(3);
  given(more);
  auto v = expect_violation("quantity.max", "it-1");
  EXPECT_THAT(v.message(), HasSubstr("would hold 6"));

  more.mutable_patch()->set_quantity(2);
  given(more);
  expect_no_violation();
}

TEST_F(OrderSpec, APackageWhoseModeIsNoLongerAllowedIsReported) {
  catalog::Offer o = offer("TV");
  *o.mutable_pricing_plans(0)->add_discount_packages() =
      package("promo", false, 10, 0, {catalog::IMMEDIATE, catalog::NEXT_CYCLE});
  publish(o);
  given_draft();
  Item item = add("TV");
  item.add_discount_package_ids("promo");
  item.set_effective_mode(catalog::NEXT_CYCLE);
  given(add_item(item));
  expect_no_violation();

  o.mutable_pricing_plans(0)->mutable_discount_packages(0)->clear_effective_modes();
  o.mutable_pricing_plans(0)->mutable_discount_packages(0)->add_effective_modes(catalog::IMMEDIATE);
  publish(o);
  expect_violation("package.effective_mode", "it-1");
}

TEST_F(OrderSpec, AnOfferOutsideItsValidityWindowOrRetiredCannotBeSold) {
  catalog::Offer o = offer("SUMMER");
  *o.mutable_valid_from() = timestamp_from_us(kT0 + kDayUs);
  *o.mutable_valid_to() = timestamp_from_us(kT0 + 10 * kDayUs);
  publish(o);
  given_draft();
  given(add_item(add("SUMMER")));
  auto early = expect_violation("offer.not_valid", "it-1");
  EXPECT_THAT(early.message(), HasSubstr("valid from"));

  now_ = kT0 + 2 * kDayUs;
  expect_no_violation();

  now_ = kT0 + 10 * kDayUs;
  auto late = expect_violation("offer.not_valid", "it-1");
  EXPECT_THAT(late.message(), HasSubstr("valid until"));

  now_ = kT0 + 2 * kDayUs;
  retire("SUMMER");
  expect_violation("offer.retired", "it-1");
}

TEST_F(OrderSpec, ADatedItemMustNotStartInThePast) {
  publish(offer("PHONE-LINE"));
  given_draft();
  Item item = add("PHONE-LINE");
  item.set_effective_mode(catalog::ON_DATE);
  *item.mutable_effective_date() = timestamp_from_us(kT0 + kDayUs);
  given(add_item(item));
  expect_no_violation();
  now_ = kT0 + 2 * kDayUs;
  expect_violation("item.effective_date_past", "it-1");
}

TEST_F(OrderSpec, ModifyAndRemoveNeedAnInstanceTheCustomerHoldsOfThatOffer) {
  publish(offer("PHONE-LINE"));
  publish(offer("TV"));
  hold("pi-tv", "TV");
  given_draft();
  given(add_item(change(REMOVE, "PHONE-LINE", "pi-nothing")));
  expect_violation("product_instance.not_held", "it-1");

  order_ = Order();
  given_draft();
  given(add_item(change(REMOVE, "PHONE-LINE", "pi-tv")));
  expect_violation("product_instance.offer_mismatch", "it-1");

  order_ = Order();
  given_draft();
  given(add_item(change(REMOVE, "TV", "pi-tv")));
  given(add_item(change(REMOVE, "TV", "pi-tv")));
  expect_violation("product_instance.duplicate", "it-2");

  order_ = Order();
  given_draft();
  Item same = change(MODIFY, "TV", "pi-tv");
  same.set_pricing_plan_id("std");
  given(add_item(same));
  expect_violation("item.modify_unchanged", "it-1");
}

TEST_F(OrderSpec, APlanWithdrawnFromTheCatalogIsReportedAtSubmission) {
  catalog::Offer o = offer("TV");
  auto* gold = o.add_pricing_plans();
  gold->set_id("gold");
  gold->set_kind(catalog::DISCOUNTED);
  *gold->mutable_recurring() = money(9900);
  publish(o);
  given_draft();
  Item item = add("TV");
  item.set_pricing_plan_id("gold");
  given(add_item(item));
  publish(offer("TV"));  // version 2 has only "std"
  expect_violation("plan.unknown", "it-1");
}

TEST_F(OrderSpec, ThePreviewListsEveryViolationAtOnce) {
  catalog::Offer vip_only = offer("VIP-LINE");
  vip_only.mutable_eligibility()->set_min_level(customer::VIP);
  vip_only.add_required_offers("PHONE-LINE");
  publish(offer("PHONE-LINE"));
  publish(vip_only);
  given_draft();
  given(add_item(add("VIP-LINE")));
  given(add_item(change(REMOVE, "PHONE-LINE", "pi-none")));

  std::vector<std::string> rules;
  const Receipt r = receipt();
  for (const auto& v : r.violations()) rules.push_back(v.rule());
  EXPECT_THAT(rules, ::testing::UnorderedElementsAre("eligibility.level", "offer.requires",
                                                     "product_instance.not_held"));
  auto d = when(SubmitOrder());
  ASSERT_TRUE(d.rejection);
  EXPECT_EQ(d.rejection->violations.size(), 3u);
}

TEST_F(OrderSpec, AReceiptWithoutTheCustomerSaysSo) {
  publish(offer("PHONE-LINE"));
  given_draft();
  given(add_item(add("PHONE-LINE")));
  customer_ = customer::Customer();
  Receipt r = receipt();
  ASSERT_EQ(r.violations_size(), 1);
  EXPECT_EQ(r.violations(0).rule(), "customer.not_found");
}

// --- Pricing, checked by hand ---

TEST_F(OrderSpec, HalfEvenRoundingOnMinorUnits) {
  EXPECT_EQ(divide_half_even(4425, 10), 442);  // 442.5 → even 442
  EXPECT_EQ(divide_half_even(4455, 10), 446);  // 445.5 → even 446
  EXPECT_EQ(divide_half_even(4451, 10), 445);
  EXPECT_EQ(divide_half_even(4459, 10), 446);
  EXPECT_EQ(divide_half_even(5, 10), 0);
  EXPECT_EQ(divide_half_even(15, 10), 2);
}

TEST_F(OrderSpec, BasePackagesApplyFirstThenChosenOnesPercentBeforeAmount) {
  catalog::Offer o = offer("LINE", 5000, 2950);
  auto* plan = o.mutable_pricing_plans(0);
  *plan->add_discount_packages() = package("base15", true, 15);
  *plan->add_discount_packages() = package("promo", false, 10, 300);
  publish(o);
  given_draft();
  Item item = add("LINE", 2);
  item.add_discount_package_ids("promo");
  given(add_item(item));

  Receipt r = receipt();
  ASSERT_EQ(r.lines_size(), 1);
  const Line& line = r.lines(0);
  // one-time: 5000×2 = 10000; −15 % = 8500; −10 % = 7650 (amount off goes to recurring)
  EXPECT_EQ(line.one_time_list().amount_minor(), 10000);
  EXPECT_EQ(line.one_time().amount_minor(), 7650);
  // recurring: 2950×2 = 5900; −15 % (885) = 5015; −10 % (501.5 → 502, half to even) = 4513;
  // −300×2 = 3913
  EXPECT_EQ(line.recurring_list().amount_minor(), 5900);
  EXPECT_EQ(line.recurring().amount_minor(), 3913);
  ASSERT_EQ(line.discounts_size(), 2);
  EXPECT_EQ(line.discounts(0).package_id(), "base15");
  EXPECT_EQ(line.discounts(0).recurring_off().amount_minor(), 885);
  EXPECT_EQ(line.discounts(1).recurring_off().amount_minor(), 502 + 600);
  EXPECT_EQ(line.discounts(1).one_time_off().amount_minor(), 850);
  // discount (10000−7650) + (5900−3913) = 2350 + 1987 = 4337 of 15900 = 27.277 % → 2728 bp
  ASSERT_EQ(r.totals_size(), 1);
  EXPECT_EQ(r.totals(0).discount().amount_minor(), 4337);
  EXPECT_EQ(r.totals(0).discount_basis_points(), 2728u);
  EXPECT_EQ(r.discount_basis_points(), 2728u);
}

TEST_F(OrderSpec, AnAmountOffNeverTakesAChargeBelowZero) {
  catalog::Offer o = offer("CHEAP", 0, 200);
  *o.mutable_pricing_plans(0)->add_discount_packages() = package("big", true, 0, 500);
  publish(o);
  given_draft();
  given(add_item(add("CHEAP")));
  Receipt r = receipt();
  EXPECT_EQ(r.lines(0).recurring().amount_minor(), 0);
  EXPECT_EQ(r.lines(0).discounts(0).recurring_off().amount_minor(), 200);
  EXPECT_EQ(r.totals(0).discount_basis_points(), 10000u);
}

TEST_F(OrderSpec, AManualPriceReplacesTheRecurringPriceIsFlaggedAndTakesNoDiscount) {
  catalog::Offer o = offer("LINE", 5000, 2900);
  *o.mutable_pricing_plans(0)->add_discount_packages() = package("base", true, 50);
  publish(o);
  given_draft();
  Item item = add("LINE", 3);
  *item.mutable_manual_price() = money(1999);
  given(add_item(item));

  Receipt r = receipt();
  const Line& line = r.lines(0);
  EXPECT_TRUE(line.non_standard_price());
  EXPECT_TRUE(r.non_standard_price());
  EXPECT_EQ(line.recurring().amount_minor(), 5997);
  EXPECT_EQ(line.one_time().amount_minor(), 15000);
  EXPECT_THAT(line.discounts(), IsEmpty());
}

TEST_F(OrderSpec, ModifyChargesTheNewRecurringPriceOnlyAndRemoveIsFree) {
  catalog::Offer tv = offer("TV", 8000, 3000);
  auto* gold = tv.add_pricing_plans();
  gold->set_id("gold");
  gold->set_kind(catalog::DISCOUNTED);
  *gold->mutable_one_time() = money(7000);
  *gold->mutable_recurring() = money(4500);
  publish(tv);
  hold("pi-tv", "TV");
  hold("pi-tv2", "TV");
  given_draft();
  Item upgrade = change(MODIFY, "TV", "pi-tv");
  upgrade.set_pricing_plan_id("gold");
  given(add_item(upgrade));
  given(add_item(change(REMOVE, "TV", "pi-tv2")));

  Receipt r = receipt();
  ASSERT_EQ(r.lines_size(), 2);
  EXPECT_EQ(r.lines(0).one_time().amount_minor(), 0);
  EXPECT_EQ(r.lines(0).recurring().amount_minor(), 4500);
  EXPECT_EQ(r.lines(1).one_time().amount_minor(), 0);
  EXPECT_EQ(r.lines(1).recurring().amount_minor(), 0);
  EXPECT_EQ(r.totals(0).recurring().amount_minor(), 4500);
}

TEST_F(OrderSpec, DepositsByObjectGroupAndContract) {
  auto with_deposit = [&](const std::string& id, catalog::Deposit::Scope scope) {
    catalog::Offer o = offer(id);
    *o.mutable_deposit()->mutable_amount() = money(10000);
    o.mutable_deposit()->set_scope(scope);
    publish(o);
  };
  with_deposit("OBJ", catalog::Deposit::OBJECT);
  with_deposit("GRP", catalog::Deposit::GROUP);
  with_deposit("CTR", catalog::Deposit::CONTRACT);
  given_draft();
  given(add_item(add("OBJ", 3)));  // 3 × 10000
  given(add_item(add("GRP", 3)));  // once for the line
  given(add_item(add("GRP", 2)));  // once for this line too
  given(add_item(add("CTR", 2)));  // once for the contract ...
  given(add_item(add("CTR", 1)));  // ... however many lines

  Receipt r = receipt();
  std::vector<int64_t> deposits;
  for (const auto& line : r.lines()) deposits.push_back(line.deposit().amount_minor());
  EXPECT_THAT(deposits, ElementsAre(30000, 10000, 10000, 10000, 0));
  EXPECT_EQ(r.totals(0).deposit().amount_minor(), 60000);
}

TEST_F(OrderSpec, TotalsAreKeptPerCurrency) {
  publish(offer("LINE", 5000, 2900));
  catalog::Offer roaming = offer("ROAM", 0, 0);
  auto* plan = roaming.mutable_pricing_plans(0);
  *plan->mutable_recurring() = money(1500, "USD");
  publish(roaming);
  given_draft();
  given(add_item(add("LINE")));
  given(add_item(add("ROAM", 2)));

  Receipt r = receipt();
  ASSERT_EQ(r.totals_size(), 2);
  EXPECT_EQ(r.totals(0).currency(), "CNY");
  EXPECT_EQ(r.totals(0).recurring().amount_minor(), 2900);
  EXPECT_EQ(r.totals(1).currency(), "USD");
  EXPECT_EQ(r.totals(1).recurring().amount_minor(), 3000);
  EXPECT_EQ(r.totals(1).one_time().amount_minor(), 0);
}

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

// --- Payments ---

RecordPayment payment(const std::string& ref, Payment::Kind kind, int64_t amount,
                      const std::string& currency = "CNY") {
  RecordPayment c;
  c.mutable_payment()->set_payment_ref(ref);
  c.mutable_payment()->set_kind(kind);
  *c.mutable_payment()->mutable_amount() = money(amount, currency);
  return c;
}

catalog::Offer with_deposit(const std::string& id, int64_t deposit) {
  catalog::Offer o = offer(id, 5000, 2900);
  *o.mutable_deposit()->mutable_amount() = money(deposit);
  o.mutable_deposit()->set_scope(catalog::Deposit::OBJECT);
  return o;
}

TEST_F(OrderSpec, ADepositDueBlocksActivationUntilPaid) {
  publish(with_deposit("LINE", 10000));
  given_submitted({add("LINE")});
  expect_refused(when(result("it-1", true)), "deposit.unpaid", "", Rejection::Kind::kConflict);
  given(payment("dep-1", Payment::DEPOSIT, 6000));
  expect_refused(when(result("it-1", true)), "deposit.unpaid", "", Rejection::Kind::kConflict);
  given(payment("dep-2", Payment::DEPOSIT, 4000));
  EXPECT_FALSE(when(result("it-1", true)).rejection);
  EXPECT_FALSE(when(result("it-1", false)).rejection) << "a failure needs no deposit";
}

TEST_F(OrderSpec, ARepeatedPaymentReferenceChangesNothing) {
  publish(with_deposit("LINE", 10000));
  given_submitted({add("LINE")});
  given(payment("bank-1", Payment::PAYMENT, 5000));
  EXPECT_THAT(when(payment("bank-1", Payment::PAYMENT, 5000)).events, IsEmpty());
  expect_refused(when(payment("bank-1", Payment::REFUND, 999)), "payment.ref_reused", "",
                 Rejection::Kind::kConflict);
}

TEST_F(OrderSpec, MoneyPaidAsAPaymentCountsTowardsTheDepositFirst) {
  publish(with_deposit("LINE", 1000));
  given_submitted({add("LINE")});
  given(payment("all-in-one", Payment::PAYMENT, 6000));
  EXPECT_EQ(order_.balances(0).deposited().amount_minor(), 1000);
  EXPECT_EQ(order_.balances(0).balance_due().amount_minor(), 0);
  EXPECT_FALSE(when(result("it-1", true)).rejection);
}

TEST_F(OrderSpec, RefundsNeverExceedWhatWasPaid) {
  publish(with_deposit("LINE", 10000));
  given_submitted({add("LINE")});
  given(payment("d", Payment::DEPOSIT, 10000));
  given(payment("p", Payment::PAYMENT, 3000));
  expect_refused(when(payment("r0", Payment::REFUND, 13001)), "payment.refund_exceeds",
                 "amount.amountMinor");
  given(payment("r1", Payment::REFUND, 4000));
  ASSERT_EQ(order_.balances_size(), 1);
  const Balance& b = order_.balances(0);
  EXPECT_EQ(b.paid().amount_minor(), 9000);
  EXPECT_EQ(b.deposited().amount_minor(), 9000) << "what is left counts towards the deposit";
  EXPECT_EQ(b.due().amount_minor(), 5000 + 10000);
  EXPECT_EQ(b.balance_due().amount_minor(), 6000);
}

TEST_F(OrderSpec, PaymentsAreCheckedAgainstTheOrder) {
  publish(with_deposit("LINE", 10000));
  given_draft();
  given(add_item(add("LINE")));
  expect_refused(when(payment("x", Payment::PAYMENT, 100)), "payment.not_submitted", "",
                 Rejection::Kind::kConflict);
  given(SubmitOrder());
  expect_refused(when(payment("x", Payment::PAYMENT, 100, "USD")), "payment.currency",
                 "amount.currency");
  expect_refused(when(payment("x", Payment::PAYMENT, 0)), "payment.amount", "amount.amountMinor");
  expect_refused(when(payment("has space", Payment::PAYMENT, 1)), "payment.ref_format",
                 "paymentRef");
  RecordPayment unknown_item = payment("x", Payment::PAYMENT, 1);
  unknown_item.mutable_payment()->add_item_ids("it-9");
  expect_refused(when(unknown_item), "payment.item_unknown", "itemIds[0]");
  given(CancelOrder());
  expect_refused(when(payment("late", Payment::PAYMENT, 100)), "payment.order_closed", "",
                 Rejection::Kind::kConflict);
}

TEST_F(OrderSpec, PropertyMoneyReconcilesFromTheEventsAlone) {
  std::mt19937_64 random(7);
  publish(with_deposit("LINE", 10000));
  given_submitted({add("LINE", 3)});
  int64_t in = 0, out = 0;
  for (int i = 0; i < 300; ++i) {
    const auto kind = static_cast<Payment::Kind>(1 + random() % 3);
    const int64_t amount = 1 + static_cast<int64_t>(random() % 20000);
    auto d = when(payment("ref-" + std::to_string(i), kind, amount));
    if (d.rejection) {
      EXPECT_EQ(d.rejection->rule, "payment.refund_exceeds");
      EXPECT_GT(amount, in - out);
      continue;
    }
    apply(d);
    (kind == Payment::REFUND ? out : in) += amount;
    const Balance& b = order_.balances(0);
    ASSERT_EQ(b.paid().amount_minor(), in - out);
    ASSERT_GE(b.paid().amount_minor(), 0);
    ASSERT_EQ(b.due().amount_minor() - b.paid().amount_minor(),
              b.balance_due().amount_minor() - b.credit().amount_minor());
  }
  // The balances are a function of the receipt and the payments alone.
  ASSERT_EQ(balances(order_).size(), 1u);
  EXPECT_EQ(balances(order_)[0].SerializeAsString(), order_.balances(0).SerializeAsString());
}

// --- Property: the lines always add up ---

TEST_F(OrderSpec, PropertyLineTotalsAddUpToTheOrderTotalsForRandomOrders) {
  std::mt19937_64 random(20261127);  // fixed seed: the same orders every run
  auto uniform = [&](int64_t lo, int64_t hi) {
    return std::uniform_int_distribution<int64_t>(lo, hi)(random);
  };
  const std::vector<std::string> currencies = {"CNY", "USD", "EUR"};
  for (int round = 0; round < 200; ++round) {
    catalog_ = catalog::Catalog();
    order_ = Order();
    const int offers = static_cast<int>(uniform(1, 6));
    for (int i = 0; i < offers; ++i) {
      const std::string currency = currencies[static_cast<size_t>(uniform(0, 2))];
      catalog::Offer o = offer("O" + std::to_string(i), 0, 0);
      auto* plan = o.mutable_pricing_plans(0);
      *plan->mutable_one_time() = money(uniform(0, 1'000'000), currency);
      *plan->mutable_recurring() = money(uniform(1, 100'000), currency);
      const int packages = static_cast<int>(uniform(0, 3));
      for (int p = 0; p < packages; ++p) {
        auto pkg = package("p" + std::to_string(p), p == 0 && uniform(0, 1) == 1,
                           static_cast<uint32_t>(uniform(0, 100)), uniform(0, 5000));
        if (pkg.has_amount_off()) pkg.mutable_amount_off()->set_currency(currency);
        *plan->add_discount_packages() = pkg;
      }
      if (uniform(0, 1) == 1) {
        *o.mutable_deposit()->mutable_amount() = money(uniform(1, 50'000), currency);
        o.mutable_deposit()->set_scope(static_cast<catalog::Deposit::Scope>(uniform(1, 3)));
      }
      publish(o);
    }
    given_draft();
    const int items = static_cast<int>(uniform(1, 8));
    for (int i = 0; i < items; ++i) {
      const std::string id = "O" + std::to_string(uniform(0, offers - 1));
      Item item = add(id, static_cast<uint32_t>(uniform(1, 50)));
      const auto& plan = catalog::find_offer(catalog_, id)->versions().rbegin()->pricing_plans(0);
      for (const auto& pkg : plan.discount_packages())
        if (!pkg.base() && uniform(0, 1) == 1) item.add_discount_package_ids(pkg.id());
      if (uniform(0, 9) == 0)
        *item.mutable_manual_price() = money(uniform(0, 9999), plan.recurring().currency());
      given(add_item(item));
    }

    Receipt r = receipt();
    ASSERT_TRUE(r.submittable()) << r.DebugString();
    std::map<std::string, std::array<int64_t, 5>> sums;  // list, net, deposit per currency
    for (const auto& line : r.lines()) {
      EXPECT_GE(line.one_time().amount_minor(), 0);
      EXPECT_GE(line.recurring().amount_minor(), 0);
      EXPECT_LE(line.one_time().amount_minor(), line.one_time_list().amount_minor());
      EXPECT_LE(line.recurring().amount_minor(), line.recurring_list().amount_minor());
      auto& s = sums[line.one_time().currency()];
      s[0] += line.one_time_list().amount_minor();
      s[1] += line.one_time().amount_minor();
      s[2] += line.recurring_list().amount_minor();
      s[3] += line.recurring().amount_minor();
      if (line.has_deposit()) sums[line.deposit().currency()][4] += line.deposit().amount_minor();
    }
    ASSERT_EQ(static_cast<size_t>(r.totals_size()), sums.size());
    for (const auto& t : r.totals()) {
      const auto& s = sums.at(t.currency());
      EXPECT_EQ(t.one_time_list().amount_minor(), s[0]);
      EXPECT_EQ(t.one_time().amount_minor(), s[1]);
      EXPECT_EQ(t.recurring_list().amount_minor(), s[2]);
      EXPECT_EQ(t.recurring().amount_minor(), s[3]);
      EXPECT_EQ(t.deposit().amount_minor(), s[4]);
      EXPECT_EQ(t.discount().amount_minor(), (s[0] - s[1]) + (s[2] - s[3]));
      EXPECT_LE(t.discount_basis_points(), 10000u);
    }
    // Submission fixes exactly what the preview showed.
    auto d = when(SubmitOrder());
    ASSERT_FALSE(d.rejection);
    EXPECT_EQ(std::get<OrderSubmitted>(d.events[0]).receipt().SerializeAsString(),
              r.SerializeAsString());
  }
}

}  // namespace
}  // namespace crm::order
