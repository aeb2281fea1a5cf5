// Order aggregate: the offer rules, in the preview and at submission (eligibility, prerequisites,
// exclusions, quantities, validity), and the receipt's prices checked by hand.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/aggregates/order_spec.h"

namespace crm::order {
namespace {

using namespace spec;  // NOLINT: the fixture and builders of every order test

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

}  // namespace
}  // namespace crm::order
