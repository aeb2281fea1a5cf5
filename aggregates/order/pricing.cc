// The receipt: pricing and the offer rules, shared by the preview and the submission.
//
// Pricing rules (all on integer minor units):
// - A line's list price is the plan's unit price × quantity: one-time and recurring charges
//   apart. MODIFY lines carry only the recurring charge of the new plan; REMOVE lines are free.
// - Discount packages apply in order: the plan's base packages, then the chosen optional ones.
//   A percent off takes that share of each remaining charge, rounded half to even on the minor
//   unit; an amount off (per unit × quantity) then comes off the recurring charge when the
//   line has one, else off the one-time charge. No charge goes below zero.
// - A manual price (non-standard pricing) replaces the unit price of the recurring charge (or
//   the one-time charge when the plan has no recurring one); no discount applies to it.
// - Deposits (ADD lines only): OBJECT scope per unit, GROUP once per line, CONTRACT once per
//   offer per order (on its first line).
// - Totals are per currency, never summed across currencies; the discount percent of a total
//   is its discount over its list price (one-time plus recurring), in basis points, half-even.
#include <algorithm>
#include <limits>
#include <map>
#include <set>

#include "aggregates/approval/policies.h"
#include "aggregates/catalog/catalog.h"
#include "aggregates/customer/customer.h"
#include "aggregates/order/order.h"
#include "aggregates/order/rules.h"
#include "events/codec.h"

namespace crm::order {
namespace {

Money money(int64_t amount, const std::string& currency) {
  Money m;
  m.set_amount_minor(amount);
  m.set_currency(currency);
  return m;
}

// amount × factor, or nullopt when it does not fit in int64.
std::optional<int64_t> multiply(int64_t amount, int64_t factor) {
  __int128 product = static_cast<__int128>(amount) * factor;
  if (product > std::numeric_limits<int64_t>::max()) return std::nullopt;
  return static_cast<int64_t>(product);
}

std::string plan_currency(const catalog::PricingPlan& plan) {
  return plan.has_recurring() ? plan.recurring().currency() : plan.one_time().currency();
}

struct Charges {
  int64_t one_time = 0;
  int64_t recurring = 0;
};

}  // namespace

int64_t divide_half_even(__int128 num, int64_t den) {
  __int128 quotient = num / den;
  __int128 twice_remainder = (num % den) * 2;
  if (twice_remainder > den || (twice_remainder == den && quotient % 2 != 0)) ++quotient;
  return static_cast<int64_t>(quotient);
}

Receipt price(const Order& order, const Context& context) {
  Receipt receipt;
  receipt.set_order_id(order.id());
  receipt.set_customer_id(order.customer_id());
  receipt.set_catalog_version(context.catalog->version());
  *receipt.mutable_priced_at() = timestamp_from_us(context.now_us);

  RuleCheck rules(order, context);
  bool overflow = false;                    // some sum left 64 bits: reported as price.overflow
  std::set<std::string> contract_deposits;  // offers whose CONTRACT deposit is already counted

  for (const auto& item : order.items()) {
    const ItemTerms* terms = rules.terms(item.item_id());
    if (terms == nullptr) continue;  // the offer or plan is unknown: a violation says so
    Line* line = receipt.add_lines();
    line->set_item_id(item.item_id());
    line->set_action(item.action());
    line->set_offer_id(item.offer_id());
    line->set_offer_version(terms->offer->version());
    line->set_offer_name(terms->offer->name());
    line->set_quantity(item.quantity());
    line->set_effective_mode(item.effective_mode());
    if (item.has_effective_date()) *line->mutable_effective_date() = item.effective_date();
    line->set_product_instance_id(item.product_instance_id());

    const catalog::PricingPlan* plan = terms->plan;
    const std::string currency = plan != nullptr ? plan_currency(*plan) : std::string();
    Charges list;
    if (plan != nullptr && item.action() != REMOVE) {
      line->set_pricing_plan_id(plan->id());
      Charges unit{item.action() == ADD ? plan->one_time().amount_minor() : 0,
                   plan->recurring().amount_minor()};
      if (item.has_manual_price()) {
        line->set_non_standard_price(true);
        (plan->has_recurring() ? unit.recurring : unit.one_time) =
            item.manual_price().amount_minor();
      }
      // A MODIFY changes the plan of every unit the instance holds.
      uint32_t quantity = item.quantity();
      if (item.action() == MODIFY && context.customer != nullptr) {
        if (const auto* held =
                customer::find_instance(*context.customer, item.product_instance_id()))
          quantity = std::max<uint32_t>(held->quantity(), 1);
      }
      line->set_quantity(quantity);
      auto one_time = multiply(unit.one_time, quantity);
      auto recurring = multiply(unit.recurring, quantity);
      if (!one_time || !recurring) {
        rules.add(item, "price.overflow", "quantity",
                  "Expected the line's price to fit in 64-bit minor units, but unit price × "
                  "quantity exceeds it");
        continue;
      }
      list = {*one_time, *recurring};
    }
    Charges net = list;
    if (!item.has_manual_price()) {
      for (const catalog::DiscountPackage* package : terms->packages) {
        AppliedDiscount* applied = line->add_discounts();
        applied->set_package_id(package->id());
        applied->set_base(package->base());
        applied->set_percent_off(package->percent_off());
        if (package->has_amount_off()) *applied->mutable_amount_off() = package->amount_off();
        Charges off;
        off.one_time =
            divide_half_even(static_cast<__int128>(net.one_time) * package->percent_off(), 100);
        off.recurring =
            divide_half_even(static_cast<__int128>(net.recurring) * package->percent_off(), 100);
        net.one_time -= off.one_time;
        net.recurring -= off.recurring;
        const int64_t amount = multiply(package->amount_off().amount_minor(), line->quantity())
                                   .value_or(std::numeric_limits<int64_t>::max());
        int64_t& target = list.recurring > 0 ? net.recurring : net.one_time;
        int64_t& target_off = list.recurring > 0 ? off.recurring : off.one_time;
        const int64_t taken = std::min(amount, target);
        target -= taken;
        target_off += taken;
        *applied->mutable_one_time_off() = money(off.one_time, currency);
        *applied->mutable_recurring_off() = money(off.recurring, currency);
      }
    }
    *line->mutable_one_time_list() = money(list.one_time, currency);
    *line->mutable_one_time() = money(net.one_time, currency);
    *line->mutable_recurring_list() = money(list.recurring, currency);
    *line->mutable_recurring() = money(net.recurring, currency);

    const catalog::Deposit& deposit = terms->offer->deposit();
    if (item.action() == ADD && deposit.amount().amount_minor() > 0) {
      int64_t due = 0;
      switch (deposit.scope()) {
        case catalog::Deposit::OBJECT:
          if (auto product = multiply(deposit.amount().amount_minor(), item.quantity()))
            due = *product;
          else
            overflow = true;
          break;
        case catalog::Deposit::CONTRACT:
          if (contract_deposits.insert(item.offer_id()).second)
            due = deposit.amount().amount_minor();
          break;
        default:  // GROUP: the line's objects are one group
          due = deposit.amount().amount_minor();
          break;
      }
      line->set_deposit_scope(deposit.scope());
      *line->mutable_deposit() = money(due, deposit.amount().currency());
    }
  }

  // Totals per currency, in currency order.
  std::map<std::string, Total> totals;
  auto total_for = [&](const std::string& currency) -> Total& {
    Total& t = totals[currency];
    if (t.currency().empty()) {
      t.set_currency(currency);
      for (auto* m : {t.mutable_one_time_list(), t.mutable_one_time(), t.mutable_recurring_list(),
                      t.mutable_recurring(), t.mutable_discount(), t.mutable_deposit()}) {
        *m = money(0, currency);
      }
    }
    return t;
  };
  auto add = [&](Money* to, int64_t amount) {
    int64_t sum = 0;
    if (__builtin_add_overflow(to->amount_minor(), amount, &sum)) overflow = true;
    to->set_amount_minor(sum);
  };
  for (const auto& line : receipt.lines()) {
    if (!line.one_time().currency().empty()) {
      Total& t = total_for(line.one_time().currency());
      add(t.mutable_one_time_list(), line.one_time_list().amount_minor());
      add(t.mutable_one_time(), line.one_time().amount_minor());
      add(t.mutable_recurring_list(), line.recurring_list().amount_minor());
      add(t.mutable_recurring(), line.recurring().amount_minor());
    }
    if (line.has_deposit())
      add(total_for(line.deposit().currency()).mutable_deposit(), line.deposit().amount_minor());
    if (line.non_standard_price()) receipt.set_non_standard_price(true);
  }
  for (auto& [currency, t] : totals) {
    int64_t list = 0, net = 0;
    if (__builtin_add_overflow(t.one_time_list().amount_minor(), t.recurring_list().amount_minor(),
                               &list) ||
        __builtin_add_overflow(t.one_time().amount_minor(), t.recurring().amount_minor(), &net))
      overflow = true;
    t.mutable_discount()->set_amount_minor(list - net);
    if (list > 0) {
      t.set_discount_basis_points(
          static_cast<uint32_t>(divide_half_even(static_cast<__int128>(list - net) * 10000, list)));
    }
    receipt.set_discount_basis_points(
        std::max(receipt.discount_basis_points(), t.discount_basis_points()));
    *receipt.add_totals() = std::move(t);
  }

  if (overflow) {
    Violation* v = receipt.add_violations();
    v->set_rule("price.overflow");
    v->set_field("items");
    v->set_message("Expected the order's totals to fit in 64-bit minor units, but they do not");
  }
  for (auto& violation : rules.take_violations()) *receipt.add_violations() = std::move(violation);
  receipt.set_submittable(receipt.violations().empty());
  if (receipt.submittable()) {
    if (context.policies != nullptr) {
      auto chain = approval::chain_for(
          *context.policies, approval::tested_values(receipt, order.kind(), context.customer));
      for (auto& step : chain.steps) *receipt.add_approval_chain() = std::move(step);
    }
    // Non-standard pricing always needs approval (DOMAIN "Catalog"): when no policy asks for
    // anyone, a manager is asked.
    if (receipt.non_standard_price() && receipt.approval_chain().empty()) {
      ApprovalStep* step = receipt.add_approval_chain();
      step->set_role(kNonStandardPriceRole);
      step->set_mode(ApprovalStep::ANY);
      step->set_level(1);
      step->set_rule(kNonStandardPriceRule);
      step->add_rules(kNonStandardPriceRule);
    }
  }
  return receipt;
}

}  // namespace crm::order
