#include "aggregates/order/rules.h"

#include <google/protobuf/util/time_util.h>

#include <algorithm>
#include <set>

#include "aggregates/catalog/catalog.h"
#include "aggregates/customer/customer.h"
#include "events/codec.h"

namespace crm::order {
namespace {

const catalog::Offer& latest(const catalog::OfferHistory& history) {
  return history.versions(history.versions_size() - 1);
}

// BELOW_ZERO < STANDARD < GROWTH < VIP; an unknown level ranks below them all.
int level_rank(customer::CustomerLevel level) {
  return level == customer::CUSTOMER_LEVEL_UNSPECIFIED ? 0 : 5 - static_cast<int>(level);
}

std::string item_field(const Item& item, const std::string& field) {
  return "items/" + item.item_id() + (field.empty() ? "" : "/" + field);
}

Violation violation(std::string rule, std::string item_id, std::string field, std::string message) {
  Violation v;
  v.set_rule(std::move(rule));
  v.set_item_id(std::move(item_id));
  v.set_field(std::move(field));
  v.set_message(std::move(message));
  return v;
}

DerivedAction derived(ItemAction action, const std::string& offer_id, const std::string& what) {
  DerivedAction fix;
  fix.set_action(action);
  fix.set_offer_id(offer_id);
  fix.set_message(what + " offer " + offer_id + " first");
  return fix;
}

bool contains(const google::protobuf::RepeatedPtrField<std::string>& list,
              const std::string& value) {
  return std::find(list.begin(), list.end(), value) != list.end();
}

}  // namespace

std::optional<ItemTerms> resolve_item(const Item& item, const catalog::Catalog& catalog,
                                      const std::string& field_prefix,
                                      std::vector<Violation>* violations) {
  auto add = [&](std::string rule, const std::string& field, std::string message) {
    violations->push_back(
        violation(std::move(rule), item.item_id(), field_prefix + field, std::move(message)));
  };
  const catalog::OfferHistory* history = catalog::find_offer(catalog, item.offer_id());
  if (history == nullptr) {
    add("offer.unknown", "offerId",
        "Expected a published offer, but there is no offer '" + item.offer_id() +
            "' in the catalog");
    return std::nullopt;
  }
  ItemTerms terms;
  terms.offer = &latest(*history);
  if (item.action() == REMOVE) return terms;  // a disconnect needs no plan

  const auto& plans = terms.offer->pricing_plans();
  if (item.pricing_plan_id().empty()) {
    add("plan.required", "pricingPlanId",
        "Expected a pricingPlanId: offer '" + item.offer_id() + "' has " +
            std::to_string(plans.size()) + " pricing plans");
    return std::nullopt;
  }
  auto plan = std::find_if(plans.begin(), plans.end(),
                           [&](const auto& p) { return p.id() == item.pricing_plan_id(); });
  if (plan == plans.end()) {
    add("plan.unknown", "pricingPlanId",
        "Expected a pricing plan of offer '" + item.offer_id() + "' (version " +
            std::to_string(terms.offer->version()) + "), but it has no plan '" +
            item.pricing_plan_id() + "'");
    return std::nullopt;
  }
  terms.plan = &*plan;

  for (const auto& package : plan->discount_packages())
    if (package.base()) terms.packages.push_back(&package);
  for (int i = 0; i < item.discount_package_ids_size(); ++i) {
    const std::string& id = item.discount_package_ids(i);
    auto package = std::find_if(plan->discount_packages().begin(), plan->discount_packages().end(),
                                [&](const auto& p) { return p.id() == id; });
    const std::string field = "discountPackageIds[" + std::to_string(i) + "]";
    if (package == plan->discount_packages().end()) {
      add("package.unknown", field,
          "Expected a discount package of plan '" + plan->id() + "', but it has no package '" + id +
              "'");
    } else if (std::find(terms.packages.begin(), terms.packages.end(), &*package) ==
               terms.packages.end()) {
      terms.packages.push_back(&*package);
    }
  }
  for (const catalog::DiscountPackage* package : terms.packages) {
    const auto& modes = package->effective_modes();
    if (std::find(modes.begin(), modes.end(), item.effective_mode()) == modes.end()) {
      add("package.effective_mode", "effectiveMode",
          "Expected an effective mode that package '" + package->id() + "' allows, but it does " +
              "not allow " + catalog::EffectiveMode_Name(item.effective_mode()));
    }
  }
  if (item.has_manual_price()) {
    const std::string currency =
        plan->has_recurring() ? plan->recurring().currency() : plan->one_time().currency();
    if (item.manual_price().currency() != currency) {
      add("price.manual_currency", "manualPrice.currency",
          "Expected the manual price in " + currency + ", the currency of plan '" + plan->id() +
              "', but got " + item.manual_price().currency());
    }
  }
  return terms;
}

RuleCheck::RuleCheck(const Order& order, const Context& context)
    : order_(order), context_(context) {
  check_customer_and_items();
  check_prerequisites();
  check_exclusions();
  check_quantities();
}

const ItemTerms* RuleCheck::terms(const std::string& item_id) const {
  auto it = terms_.find(item_id);
  return it == terms_.end() ? nullptr : &it->second;
}

void RuleCheck::add(const Item& item, std::string rule, const std::string& field,
                    std::string message, std::optional<DerivedAction> fix) {
  Violation v =
      violation(std::move(rule), item.item_id(), item_field(item, field), std::move(message));
  if (fix) {
    *v.mutable_message() += ": " + fix->message();
    *v.mutable_derived_action() = std::move(*fix);
  }
  violations_.push_back(std::move(v));
}

void RuleCheck::check_customer_and_items() {
  const customer::Customer* customer = context_.customer;
  if (customer == nullptr || customer->version() == 0) {
    violations_.push_back(violation("customer.not_found", "", "customerId",
                                    "Expected customer '" + order_.customer_id() +
                                        "' to exist, but no such customer is registered"));
  }
  if (order_.items().empty()) {
    violations_.push_back(
        violation("order.empty", "", "items", "Expected at least one item in the order"));
  }
  std::set<std::string> instances_named;
  for (const auto& item : order_.items()) {
    auto resolved =
        resolve_item(item, *context_.catalog, item_field(item, "").append("/"), &violations_);
    if (!resolved) continue;
    terms_.emplace(item.item_id(), *resolved);
    check_item(item, *resolved);
    if (item.action() != ADD && !instances_named.insert(item.product_instance_id()).second) {
      add(item, "product_instance.duplicate", "productInstanceId",
          "Expected each product instance in one item of the order, but '" +
              item.product_instance_id() + "' is changed by another item too");
    }
  }
}

void RuleCheck::check_item(const Item& item, const ItemTerms& terms) {
  const catalog::Offer& offer = *terms.offer;
  const catalog::OfferHistory* history = catalog::find_offer(*context_.catalog, item.offer_id());
  if (item.action() != REMOVE) {
    if (history->retired()) {
      add(item, "offer.retired", "offerId",
          "Expected a sellable offer, but '" + item.offer_id() + "' is retired");
    }
    if (offer.has_valid_from() && context_.now_us < timestamp_to_us(offer.valid_from())) {
      add(item, "offer.not_valid", "offerId",
          "Expected offer '" + item.offer_id() + "' to be valid now, but it is valid from " +
              google::protobuf::util::TimeUtil::ToString(offer.valid_from()));
    } else if (offer.has_valid_to() && context_.now_us >= timestamp_to_us(offer.valid_to())) {
      add(item, "offer.not_valid", "offerId",
          "Expected offer '" + item.offer_id() + "' to be valid now, but it was valid until " +
              google::protobuf::util::TimeUtil::ToString(offer.valid_to()));
    }
  }
  if (item.effective_mode() == catalog::ON_DATE && item.has_effective_date() &&
      timestamp_to_us(item.effective_date()) < context_.now_us) {
    add(item, "item.effective_date_past", "effectiveDate",
        "Expected an effective date from now on, but " +
            google::protobuf::util::TimeUtil::ToString(item.effective_date()) + " has passed");
  }
  if (item.action() == ADD) {
    check_eligibility(item, offer);
    if (offer.min_quantity() > 0 && item.quantity() < offer.min_quantity()) {
      add(item, "quantity.min", "quantity",
          "Expected at least " + std::to_string(offer.min_quantity()) + " of offer '" +
              item.offer_id() + "' in one item, but got " + std::to_string(item.quantity()));
    }
    return;
  }
  // MODIFY and REMOVE act on an instance the customer holds, of this offer.
  const customer::ProductInstance* held =
      context_.customer == nullptr
          ? nullptr
          : customer::find_instance(*context_.customer, item.product_instance_id());
  if (held == nullptr) {
    add(item, "product_instance.not_held", "productInstanceId",
        "Expected a product instance the customer holds, but customer '" + order_.customer_id() +
            "' holds no '" + item.product_instance_id() + "'");
  } else if (held->offer_id() != item.offer_id()) {
    add(item, "product_instance.offer_mismatch", "offerId",
        "Expected offer '" + held->offer_id() + "', the offer of product instance '" + held->id() +
            "', but got '" + item.offer_id() + "'");
  } else if (item.action() == MODIFY && held->pricing_plan_id() == item.pricing_plan_id() &&
             std::equal(held->discount_package_ids().begin(), held->discount_package_ids().end(),
                        item.discount_package_ids().begin(), item.discount_package_ids().end())) {
    add(item, "item.modify_unchanged", "pricingPlanId",
        "Expected a MODIFY to change the plan or packages, but product instance '" + held->id() +
            "' already has plan '" + held->pricing_plan_id() + "' with these packages");
  }
}

void RuleCheck::check_eligibility(const Item& item, const catalog::Offer& offer) {
  const customer::Customer* c = context_.customer;
  if (c == nullptr || c->version() == 0) return;  // reported once for the order
  const catalog::Eligibility& e = offer.eligibility();
  const std::string who = "customer '" + c->id() + "'";
  if (!e.customer_kinds().empty() && std::find(e.customer_kinds().begin(), e.customer_kinds().end(),
                                               c->kind()) == e.customer_kinds().end()) {
    add(item, "eligibility.customer_kind", "offerId",
        "Expected a customer kind offer '" + offer.offer_id() + "' admits, but " + who + " is " +
            customer::CustomerKind_Name(c->kind()));
  }
  if (e.min_level() != customer::CUSTOMER_LEVEL_UNSPECIFIED &&
      level_rank(c->level()) < level_rank(e.min_level())) {
    add(item, "eligibility.level", "offerId",
        "Expected level " + customer::CustomerLevel_Name(e.min_level()) + " or above for offer '" +
            offer.offer_id() + "', but " + who + " is " + customer::CustomerLevel_Name(c->level()));
  }
  if (!e.credit_levels().empty() && std::find(e.credit_levels().begin(), e.credit_levels().end(),
                                              c->credit_level()) == e.credit_levels().end()) {
    add(item, "eligibility.credit_level", "offerId",
        "Expected a credit level offer '" + offer.offer_id() + "' admits, but " + who +
            " has credit level " + customer::CreditLevel_Name(c->credit_level()));
  }
  if (!e.regions().empty() && !contains(e.regions(), c->region())) {
    add(item, "eligibility.region", "offerId",
        "Expected a region offer '" + offer.offer_id() + "' is sold in, but " + who +
            " is in region '" + c->region() + "'");
  }
}

// An offer's `requires` is met by an instance the customer keeps or an item this order adds.
// Removing the last instance of an offer that a kept or added offer requires breaks it too.
void RuleCheck::check_prerequisites() {
  std::set<std::string> removed;
  for (const auto& item : order_.items())
    if (item.action() == REMOVE) removed.insert(item.product_instance_id());
  std::multiset<std::string> offers_after;  // what the customer holds once the order is done
  if (context_.customer != nullptr) {
    for (const auto& instance : context_.customer->product_instances())
      if (!removed.count(instance.id())) offers_after.insert(instance.offer_id());
  }
  for (const auto& item : order_.items())
    if (item.action() == ADD) offers_after.insert(item.offer_id());

  for (const auto& item : order_.items()) {
    const ItemTerms* t = terms(item.item_id());
    if (t == nullptr) continue;
    if (item.action() != REMOVE) {
      for (const auto& required : t->offer->required_offers()) {
        if (offers_after.count(required)) continue;
        add(item, "offer.requires", "offerId",
            "Offer '" + item.offer_id() + "' requires offer '" + required +
                "', which the customer does not hold and this order does not add",
            derived(ADD, required, "add"));
      }
      continue;
    }
    if (context_.customer == nullptr ||
        customer::find_instance(*context_.customer, item.product_instance_id()) == nullptr) {
      continue;  // not held: product_instance.not_held says so
    }
    if (offers_after.count(item.offer_id())) continue;  // another instance of it stays
    // Which kept or added offers require the one this item removes?
    std::set<std::string> dependents;
    for (const auto& offer_id : offers_after) {
      const catalog::OfferHistory* h = catalog::find_offer(*context_.catalog, offer_id);
      if (h != nullptr && contains(latest(*h).required_offers(), item.offer_id()))
        dependents.insert(offer_id);
    }
    for (const auto& dependent : dependents) {
      add(item, "offer.still_required", "productInstanceId",
          "Removing '" + item.product_instance_id() + "' leaves offer '" + dependent +
              "' without offer '" + item.offer_id() + "', which it requires",
          derived(REMOVE, dependent, "remove"));
    }
  }
}

// Offers that exclude each other (either naming the other) cannot be held together: an added
// offer against the instances the customer keeps and against the order's other added offers.
void RuleCheck::check_exclusions() {
  auto excludes = [&](const std::string& a, const std::string& b) {
    const catalog::OfferHistory* ha = catalog::find_offer(*context_.catalog, a);
    const catalog::OfferHistory* hb = catalog::find_offer(*context_.catalog, b);
    return (ha != nullptr && contains(latest(*ha).excludes(), b)) ||
           (hb != nullptr && contains(latest(*hb).excludes(), a));
  };
  std::set<std::string> removed;
  for (const auto& item : order_.items())
    if (item.action() == REMOVE) removed.insert(item.product_instance_id());
  const auto& items = order_.items();
  for (int i = 0; i < items.size(); ++i) {
    const Item& item = items[i];
    if (item.action() != ADD || terms(item.item_id()) == nullptr) continue;
    if (context_.customer != nullptr) {
      for (const auto& instance : context_.customer->product_instances()) {
        if (removed.count(instance.id()) || !excludes(item.offer_id(), instance.offer_id()))
          continue;
        add(item, "offer.excludes", "offerId",
            "Offer '" + item.offer_id() + "' cannot be held together with offer '" +
                instance.offer_id() + "', which the customer holds as '" + instance.id() + "'",
            derived(REMOVE, instance.offer_id(), "remove"));
      }
    }
    for (int j = 0; j < i; ++j) {
      const Item& other = items[j];
      if (other.action() != ADD || !excludes(item.offer_id(), other.offer_id())) continue;
      add(item, "offer.excludes", "offerId",
          "Offer '" + item.offer_id() + "' cannot be ordered together with offer '" +
              other.offer_id() + "' of item '" + other.item_id() + "'");
    }
  }
}

// An offer's maximum counts what the customer keeps plus what the order adds.
void RuleCheck::check_quantities() {
  std::set<std::string> removed;
  for (const auto& item : order_.items())
    if (item.action() == REMOVE) removed.insert(item.product_instance_id());
  std::map<std::string, uint64_t> count;
  if (context_.customer != nullptr) {
    for (const auto& instance : context_.customer->product_instances())
      if (!removed.count(instance.id()))
        count[instance.offer_id()] += std::max<uint32_t>(instance.quantity(), 1);
  }
  std::map<std::string, const Item*> last_item;
  for (const auto& item : order_.items()) {
    if (item.action() != ADD || terms(item.item_id()) == nullptr) continue;
    count[item.offer_id()] += item.quantity();
    last_item[item.offer_id()] = &item;
  }
  for (const auto& [offer_id, item] : last_item) {
    const uint32_t max = terms(item->item_id())->offer->max_quantity();
    if (max > 0 && count[offer_id] > max) {
      add(*item, "quantity.max", "quantity",
          "Expected at most " + std::to_string(max) + " of offer '" + offer_id +
              "' per customer, but the customer would hold " + std::to_string(count[offer_id]));
    }
  }
}

}  // namespace crm::order
