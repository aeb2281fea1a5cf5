// Order aggregate: drafts and their items, submission, cancellation and fulfilment — given a
// catalog, a customer and an order's events, when a command, then the events or the rule that
// refused it. Offer rules and pricing: order_rules_test.cc; approvals: order_approval_test.cc;
// payments and the properties: order_payment_test.cc.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/aggregates/order_spec.h"

namespace crm::order {
namespace {

using namespace spec;  // NOLINT: the fixture and builders of every order test

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

}  // namespace
}  // namespace crm::order
