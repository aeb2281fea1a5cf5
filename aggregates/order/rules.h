// The offer rules (优惠业务限制) an order is judged by: eligibility, prerequisites with the
// derived action that satisfies them, exclusions, quantities, packages' effective modes,
// validity windows, and product instances a MODIFY or REMOVE must name. Every violation names
// its rule; the preview shows them all, submission refuses while any remains.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "aggregates/order/order.h"

namespace crm::order {

// An item resolved against the catalog: the latest version of its offer, its plan (null for
// REMOVE) and the discount packages that apply (base ones first, then the chosen ones).
struct ItemTerms {
  const catalog::Offer* offer = nullptr;
  const catalog::PricingPlan* plan = nullptr;
  std::vector<const catalog::DiscountPackage*> packages;
};

// Resolves one item; each problem found (unknown offer, plan or package, a mode a package does
// not allow, a manual price in another currency) is added to `violations` with `field_prefix`
// before the field name. nullopt when the offer or plan cannot be resolved.
std::optional<ItemTerms> resolve_item(const Item& item, const catalog::Catalog& catalog,
                                      const std::string& field_prefix,
                                      std::vector<Violation>* violations);

// Runs every rule over a whole order on construction.
class RuleCheck {
 public:
  RuleCheck(const Order& order, const Context& context);

  // The resolved terms of an item; null when it could not be resolved.
  const ItemTerms* terms(const std::string& item_id) const;
  void add(const Item& item, std::string rule, const std::string& field, std::string message,
           std::optional<DerivedAction> fix = std::nullopt);
  std::vector<Violation> take_violations() { return std::move(violations_); }

 private:
  void check_customer_and_items();
  void check_item(const Item& item, const ItemTerms& terms);
  void check_eligibility(const Item& item, const catalog::Offer& offer);
  void check_prerequisites();
  void check_exclusions();
  void check_quantities();

  const Order& order_;
  const Context& context_;
  std::map<std::string, ItemTerms> terms_;
  std::vector<Violation> violations_;
};

}  // namespace crm::order
