// The order aggregate's test fixture, shared by the order_*_test.cc files: a catalog, a customer
// and approval policies, given/when helpers over the pure decide() and evolve(), and builders
// of offers, items and money.
#pragma once

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <array>
#include <map>
#include <random>

#include "aggregates/approval/policies.h"
#include "aggregates/catalog/catalog.h"
#include "aggregates/customer/customer.h"
#include "aggregates/money.h"
#include "aggregates/order/order.h"
#include "events/codec.h"
#include "tests/aggregates/refusals.h"

namespace crm::order::spec {

using crm::testing::expect_refused;

using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

inline constexpr int64_t kT0 = 1'790'000'000'000'000;
inline constexpr int64_t kDayUs = 86'400'000'000;

inline Money money(int64_t minor, const std::string& currency = "CNY") {
  Money m;
  m.set_amount_minor(minor);
  m.set_currency(currency);
  return m;
}

inline catalog::DiscountPackage package(const std::string& id, bool base, uint32_t percent,
                                        int64_t amount_off = 0,
                                        std::vector<catalog::EffectiveMode> modes = {
                                            catalog::IMMEDIATE}) {
  catalog::DiscountPackage p;
  p.set_id(id);
  p.set_base(base);
  p.set_percent_off(percent);
  if (amount_off > 0) *p.mutable_amount_off() = money(amount_off);
  for (auto m : modes) p.add_effective_modes(m);
  return p;
}

// A single offer with one standard plan "std" (one-time and recurring charges).
inline catalog::Offer offer(const std::string& id, int64_t one_time = 5000,
                            int64_t recurring = 2900) {
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

inline Item add(const std::string& offer_id, uint32_t quantity = 1) {
  Item item;
  item.set_offer_id(offer_id);
  item.set_quantity(quantity);
  return item;
}

inline Item change(ItemAction action, const std::string& offer_id, const std::string& instance_id) {
  Item item;
  item.set_action(action);
  item.set_offer_id(offer_id);
  item.set_product_instance_id(instance_id);
  return item;
}

inline AddItem add_item(const Item& item) {
  AddItem c;
  *c.mutable_item() = item;
  return c;
}

inline RecordActivation result(const std::string& item_id, bool activated) {
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

}  // namespace crm::order::spec
