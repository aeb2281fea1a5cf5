// Catalog aggregate: given published offers, when a publish or a retire, then the new version
// or the rule that refused it, naming the field.
#include "aggregates/catalog/catalog.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "events/codec.h"
#include "tests/aggregates/refusals.h"

namespace crm::catalog {
namespace {

using crm::testing::expect_refused;

using ::testing::Contains;
using ::testing::HasSubstr;

constexpr int64_t kT0 = 1'790'000'000'000'000;

Money cny(int64_t minor) {
  Money m;
  m.set_amount_minor(minor);
  m.set_currency("CNY");
  return m;
}

// A sellable single offer with one standard plan and a base package.
Offer single(const std::string& id) {
  Offer o;
  o.set_offer_id(id);
  o.set_name("Offer " + id);
  o.set_kind(SINGLE);
  PricingPlan* plan = o.add_pricing_plans();
  plan->set_id("std");
  plan->set_kind(STANDARD);
  *plan->mutable_one_time() = cny(5000);
  *plan->mutable_recurring() = cny(2900);
  DiscountPackage* base = plan->add_discount_packages();
  base->set_id("base");
  base->set_base(true);
  base->set_percent_off(10);
  base->add_effective_modes(IMMEDIATE);
  return o;
}

PublishOffer publish(const Offer& offer) {
  PublishOffer c;
  *c.mutable_offer() = offer;
  return c;
}

RetireOffer retire(const std::string& id) {
  RetireOffer c;
  c.set_offer_id(id);
  return c;
}

class CatalogSpec : public ::testing::Test {
 protected:
  // Applies the command's events; fails the test if it was refused.
  void given(const Command& command) {
    auto d = decide(state_, command);
    ASSERT_FALSE(d.rejection) << d.rejection->message;
    for (const auto& e : d.events) {
      ++version_;
      evolve(state_, e, version_, kT0 + static_cast<int64_t>(version_));
    }
  }
  Decision<Event> when(const Command& command) { return decide(state_, command); }

  Catalog state_;
  uint64_t version_ = 0;
};

TEST_F(CatalogSpec, FirstPublishIsVersionOneWithItsTime) {
  auto d = when(publish(single("PHONE-LINE")));

  ASSERT_FALSE(d.rejection);
  ASSERT_EQ(d.events.size(), 1u);
  const auto& e = std::get<OfferPublished>(d.events[0]);
  EXPECT_EQ(e.offer().offer_id(), "PHONE-LINE");
  EXPECT_EQ(e.offer().version(), 1u);
  evolve(state_, d.events[0], 1, kT0);
  auto view = offer_view(state_, "PHONE-LINE");
  ASSERT_TRUE(view);
  EXPECT_EQ(view->version(), 1u);
  EXPECT_EQ(timestamp_to_us(view->published_at()), kT0);
  EXPECT_FALSE(view->retired());
}

TEST_F(CatalogSpec, EveryChangedPublishIsANewVersionAndOldVersionsStayReadable) {
  given(publish(single("PHONE-LINE")));
  Offer cheaper = single("PHONE-LINE");
  *cheaper.mutable_pricing_plans(0)->mutable_recurring() = cny(1900);
  given(publish(cheaper));

  EXPECT_EQ(offer_view(state_, "PHONE-LINE")->version(), 2u);
  EXPECT_EQ(offer_view(state_, "PHONE-LINE")->pricing_plans(0).recurring().amount_minor(), 1900);
  EXPECT_EQ(offer_view(state_, "PHONE-LINE", 1)->pricing_plans(0).recurring().amount_minor(), 2900);
  EXPECT_FALSE(offer_view(state_, "PHONE-LINE", 3));
  EXPECT_FALSE(offer_view(state_, "NOTHING"));
}

TEST_F(CatalogSpec, PublishingTheSameDefinitionAgainAppendsNothing) {
  given(publish(single("PHONE-LINE")));

  auto d = when(publish(single("PHONE-LINE")));

  EXPECT_FALSE(d.rejection);
  EXPECT_TRUE(d.events.empty());
}

TEST_F(CatalogSpec, OffersAreKeptInIdOrderWhateverThePublishOrder) {
  for (const char* id : {"M", "B", "Z", "A"}) given(publish(single(id)));

  std::vector<std::string> ids;
  for (const auto& h : state_.offers()) ids.push_back(h.offer_id());
  EXPECT_EQ(ids, (std::vector<std::string>{"A", "B", "M", "Z"}));
}

TEST_F(CatalogSpec, AmountsBeyondTheLimitAreRefused) {
  Offer o = single("X");
  o.mutable_pricing_plans(0)->mutable_recurring()->set_amount_minor(1'000'000'000'000'001);
  expect_refused(when(publish(o)), "money.too_large", "pricingPlans[0].recurring.amountMinor");
}

TEST_F(CatalogSpec, APlanWithNoPriceIsRefused) {
  Offer o = single("X");
  o.mutable_pricing_plans(0)->clear_one_time();
  o.mutable_pricing_plans(0)->clear_recurring();

  expect_refused(when(publish(o)), "pricing_plan.price_required", "pricingPlans[0]");
}

TEST_F(CatalogSpec, AnOfferWithoutPlansIsRefused) {
  Offer o = single("X");
  o.clear_pricing_plans();

  expect_refused(when(publish(o)), "offer.pricing_plan_required", "pricingPlans");
}

TEST_F(CatalogSpec, NegativeMoneyIsRefusedNamingTheAmount) {
  Offer o = single("X");
  o.mutable_pricing_plans(0)->mutable_one_time()->set_amount_minor(-1);

  expect_refused(when(publish(o)), "money.negative", "pricingPlans[0].oneTime.amountMinor");
}

TEST_F(CatalogSpec, MixedCurrenciesInOnePlanAreRefused) {
  Offer o = single("X");
  o.mutable_pricing_plans(0)->mutable_recurring()->set_currency("USD");

  expect_refused(when(publish(o)), "pricing_plan.mixed_currencies", "pricingPlans[0]");
}

TEST_F(CatalogSpec, APackageDiscountInAnotherCurrencyThanItsPlanIsRefused) {
  Offer o = single("X");
  Money usd;
  usd.set_amount_minor(100);
  usd.set_currency("USD");
  *o.mutable_pricing_plans(0)->mutable_discount_packages(0)->mutable_amount_off() = usd;

  expect_refused(when(publish(o)), "pricing_plan.mixed_currencies", "pricingPlans[0]");
}

TEST_F(CatalogSpec, ACurrencyThatIsNotAnIsoCodeIsRefused) {
  Offer o = single("X");
  o.mutable_pricing_plans(0)->mutable_one_time()->set_currency("yuan");

  expect_refused(when(publish(o)), "money.currency_format", "pricingPlans[0].oneTime.currency");
}

TEST_F(CatalogSpec, PackageRulesAreEnforced) {
  Offer o = single("X");
  auto* plan = o.mutable_pricing_plans(0);
  plan->mutable_discount_packages(0)->set_percent_off(101);
  auto* second_base = plan->add_discount_packages();
  second_base->set_id("base");
  second_base->set_base(true);
  auto* no_modes = plan->add_discount_packages();
  no_modes->set_id("promo");
  no_modes->add_effective_modes(NEXT_CYCLE);
  no_modes->add_effective_modes(NEXT_CYCLE);

  auto d = when(publish(o));

  expect_refused(d, "discount_package.percent_range",
                 "pricingPlans[0].discountPackages[0].percentOff");
  expect_refused(d, "discount_package.id_duplicate", "pricingPlans[0].discountPackages[1].id");
  expect_refused(d, "pricing_plan.base_package_duplicate",
                 "pricingPlans[0].discountPackages[1].base");
  expect_refused(d, "discount_package.effective_mode_required",
                 "pricingPlans[0].discountPackages[1].effectiveModes");
  expect_refused(d, "discount_package.effective_mode_duplicate",
                 "pricingPlans[0].discountPackages[2].effectiveModes[1]");
}

TEST_F(CatalogSpec, DuplicatePlanIdsAreRefused) {
  Offer o = single("X");
  *o.add_pricing_plans() = o.pricing_plans(0);

  expect_refused(when(publish(o)), "pricing_plan.id_duplicate", "pricingPlans[1].id");
}

TEST_F(CatalogSpec, AnOfferRequiringItselfIsRefused) {
  Offer o = single("X");
  o.add_required_offers("X");

  expect_refused(when(publish(o)), "offer.requires_self", "requires[0]");
}

TEST_F(CatalogSpec, RequiringAnUnknownOfferIsRefused) {
  Offer o = single("X");
  o.add_required_offers("NOWHERE");

  expect_refused(when(publish(o)), "offer.requires_unknown", "requires[0]");
}

TEST_F(CatalogSpec, ACycleOfRequiresIsRefusedNamingTheCycle) {
  given(publish(single("A")));
  Offer b = single("B");
  b.add_required_offers("A");
  given(publish(b));
  Offer c = single("C");
  c.add_required_offers("B");
  given(publish(c));
  Offer a = single("A");
  a.add_required_offers("C");

  auto d = when(publish(a));

  expect_refused(d, "offer.requires_cycle", "requires[0]");
  EXPECT_THAT(d.rejection->message, HasSubstr("A → C → B → A"));
}

TEST_F(CatalogSpec, ADiamondOfRequiresIsNoCycle) {
  given(publish(single("BASE")));
  for (const char* id : {"LEFT", "RIGHT"}) {
    Offer o = single(id);
    o.add_required_offers("BASE");
    given(publish(o));
  }
  Offer top = single("TOP");
  top.add_required_offers("LEFT");
  top.add_required_offers("RIGHT");

  EXPECT_FALSE(when(publish(top)).rejection);
}

TEST_F(CatalogSpec, AnOfferBothRequiredAndExcludedIsRefused) {
  given(publish(single("A")));
  Offer o = single("X");
  o.add_required_offers("A");
  o.add_excludes("A");

  expect_refused(when(publish(o)), "offer.requires_excluded", "requires[0]");
}

TEST_F(CatalogSpec, ExcludingItselfOrAnUnknownOfferIsRefused) {
  Offer o = single("X");
  o.add_excludes("X");
  o.add_excludes("NOWHERE");

  auto d = when(publish(o));

  expect_refused(d, "offer.excludes_self", "excludes[0]");
  expect_refused(d, "offer.excludes_unknown", "excludes[1]");
}

TEST_F(CatalogSpec, BundlesNeedPublishedComponentsAndSinglesHaveNone) {
  Offer bundle = single("E-HOME");
  bundle.set_kind(BUNDLE);
  expect_refused(when(publish(bundle)), "offer.components_required", "components");

  bundle.add_components("BROADBAND");
  expect_refused(when(publish(bundle)), "offer.component_unknown", "components[0]");

  Offer lonely = single("X");
  lonely.add_components("Y");
  expect_refused(when(publish(lonely)), "offer.components_not_allowed", "components");

  given(publish(single("BROADBAND")));
  EXPECT_FALSE(when(publish(bundle)).rejection);
}

TEST_F(CatalogSpec, QuantityBoundsMustBeOrdered) {
  Offer o = single("X");
  o.set_min_quantity(5);
  o.set_max_quantity(2);

  expect_refused(when(publish(o)), "offer.quantity_range", "minQuantity");
}

TEST_F(CatalogSpec, ADepositNeedsAnAmountAndAScope) {
  Offer o = single("X");
  o.mutable_deposit()->set_scope(Deposit::OBJECT);
  expect_refused(when(publish(o)), "deposit.amount_required", "deposit.amount");

  *o.mutable_deposit()->mutable_amount() = cny(10000);
  o.mutable_deposit()->clear_scope();
  expect_refused(when(publish(o)), "deposit.scope_required", "deposit.scope");

  o.mutable_deposit()->set_scope(Deposit::CONTRACT);
  EXPECT_FALSE(when(publish(o)).rejection);
}

TEST_F(CatalogSpec, TheValidityWindowMustNotBeEmpty) {
  Offer o = single("X");
  *o.mutable_valid_from() = timestamp_from_us(kT0);
  *o.mutable_valid_to() = timestamp_from_us(kT0);

  expect_refused(when(publish(o)), "offer.validity_window", "validTo");
}

TEST_F(CatalogSpec, EngineFieldsCannotBePublished) {
  Offer o = single("X");
  o.set_version(7);
  o.set_retired(true);

  auto d = when(publish(o));

  expect_refused(d, "offer.read_only_field", "version");
  expect_refused(d, "offer.read_only_field", "retired");
}

TEST_F(CatalogSpec, EligibilityValuesMustBeKnown) {
  Offer o = single("X");
  o.mutable_eligibility()->add_customer_kinds(customer::ENTERPRISE);
  o.mutable_eligibility()->add_credit_levels(static_cast<customer::CreditLevel>(42));
  o.mutable_eligibility()->add_regions(" ");

  auto d = when(publish(o));

  expect_refused(d, "eligibility.credit_level_invalid", "eligibility.creditLevels[0]");
  expect_refused(d, "eligibility.region_invalid", "eligibility.regions[0]");
}

TEST_F(CatalogSpec, AStaleExpectedOfferVersionIsAMismatch) {
  given(publish(single("X")));
  PublishOffer c = publish(single("X"));
  c.mutable_offer()->set_name("Renamed");
  c.set_expected_offer_version(3);

  expect_refused(when(c), "offer.version_mismatch", "", Rejection::Kind::kVersionMismatch);
  c.set_expected_offer_version(1);
  EXPECT_FALSE(when(c).rejection);
}

TEST_F(CatalogSpec, RetireKeepsEveryVersionReadableAndRefusesNewPublishes) {
  given(publish(single("X")));
  given(retire("X"));

  auto view = offer_view(state_, "X", 1);
  ASSERT_TRUE(view);
  EXPECT_TRUE(view->retired());
  EXPECT_TRUE(view->has_retired_at());
  expect_refused(when(publish(single("X"))), "offer.retired", "", Rejection::Kind::kConflict);
  EXPECT_TRUE(when(retire("X")).events.empty()) << "retiring twice changes nothing";
}

TEST_F(CatalogSpec, RetiringAnUnknownOfferIsNotFound) {
  expect_refused(when(retire("NOWHERE")), "offer.not_found", "", Rejection::Kind::kNotFound);
}

TEST_F(CatalogSpec, AnOfferOthersRequireOrContainCannotBeRetired) {
  given(publish(single("PHONE-LINE")));
  Offer calls = single("CALL-PACK");
  calls.add_required_offers("PHONE-LINE");
  given(publish(calls));

  auto d = when(retire("PHONE-LINE"));

  expect_refused(d, "offer.still_required", "offerId", Rejection::Kind::kConflict);
  EXPECT_THAT(d.rejection->message, HasSubstr("'CALL-PACK'"));
  given(retire("CALL-PACK"));
  EXPECT_FALSE(when(retire("PHONE-LINE")).rejection);
}

TEST_F(CatalogSpec, NewOffersCannotRequireOrContainARetiredOneButMayExcludeIt) {
  given(publish(single("OLD")));
  given(retire("OLD"));
  Offer o = single("NEW");
  o.add_required_offers("OLD");
  expect_refused(when(publish(o)), "offer.requires_retired", "requires[0]");

  o.clear_required_offers();
  o.add_excludes("OLD");
  EXPECT_FALSE(when(publish(o)).rejection);
}

TEST_F(CatalogSpec, OfferIdsAreShortAndHaveNoColon) {
  EXPECT_TRUE(is_offer_id("PHONE-LINE_2.0"));
  EXPECT_FALSE(is_offer_id(""));
  EXPECT_FALSE(is_offer_id("A:retire"));
  EXPECT_FALSE(is_offer_id(std::string(65, 'A')));
  expect_refused(when(publish(single("bad id"))), "offer.id_format", "");
}

}  // namespace
}  // namespace crm::catalog
