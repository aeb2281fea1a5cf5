// The order aggregate's fulfilment: recording each item's activation result (an ADD judged
// again against what the customer holds by then) and the product change an activated item makes
// to the customer.
#include <algorithm>

#include "aggregates/catalog/catalog.h"
#include "aggregates/customer/customer.h"
#include "aggregates/order/internal.h"
#include "aggregates/order/order.h"

namespace crm::order {
namespace internal {
namespace {

// An ADD is judged again against what the customer holds when it is carried out: another order
// of the customer may have been fulfilled since this one was submitted (an exclusion, a
// maximum), and a prerequisite must be held or still coming with this order.
std::optional<Rejection> still_allowed(const Order& state, const Item& item,
                                       const Context& context) {
  auto offer = catalog::offer_view(*context.catalog, item.offer_id(), item.offer_version());
  if (!offer || context.customer == nullptr) return std::nullopt;
  const auto& held = context.customer->product_instances();
  auto holds = [&](const std::string& offer_id) {
    return std::any_of(held.begin(), held.end(),
                       [&](const auto& i) { return i.offer_id() == offer_id; });
  };
  auto refuse = [&](std::string rule, std::string message) {
    return Rejection{Rejection::Kind::kConflict,
                     std::move(rule),
                     std::move(message) + ": record item '" + item.item_id() + "' as FAILED",
                     {}};
  };
  for (const auto& required : offer->required_offers()) {
    const bool coming = std::any_of(state.items().begin(), state.items().end(), [&](const auto& i) {
      return i.action() == ADD && i.offer_id() == required && i.state() != Item::FAILED;
    });
    if (!holds(required) && !coming)
      return refuse("offer.requires", "Offer '" + item.offer_id() + "' requires offer '" +
                                          required + "', which the customer no longer gets");
  }
  auto removed_here = [&](const std::string& instance_id) {
    return std::any_of(state.items().begin(), state.items().end(), [&](const auto& i) {
      return i.action() == REMOVE && i.product_instance_id() == instance_id &&
             i.state() != Item::FAILED;
    });
  };
  for (const auto& instance : held) {
    if (removed_here(instance.id())) continue;  // this order disconnects it
    auto other = catalog::find_offer(*context.catalog, instance.offer_id());
    const bool excluded =
        std::find(offer->excludes().begin(), offer->excludes().end(), instance.offer_id()) !=
            offer->excludes().end() ||
        (other != nullptr &&
         std::find(other->versions().rbegin()->excludes().begin(),
                   other->versions().rbegin()->excludes().end(),
                   item.offer_id()) != other->versions().rbegin()->excludes().end());
    if (excluded)
      return refuse("offer.excludes", "Offer '" + item.offer_id() +
                                          "' cannot be held together with offer '" +
                                          instance.offer_id() + "', which the customer now holds");
  }
  if (offer->max_quantity() > 0) {
    uint64_t count = item.quantity();
    for (const auto& instance : held)
      if (instance.offer_id() == item.offer_id())
        count += std::max<uint32_t>(instance.quantity(), 1);
    if (count > offer->max_quantity())
      return refuse("quantity.max", "Expected at most " + std::to_string(offer->max_quantity()) +
                                        " of offer '" + item.offer_id() +
                                        "' per customer, but it would hold " +
                                        std::to_string(count));
  }
  return std::nullopt;
}

}  // namespace

Outcome record_activation(const Order& state, const RecordActivation& c, const Context& context) {
  if (state.version() == 0) return Outcome::refuse(order_not_found(context));
  const Item* item = find_item(state, c.item_id());
  if (item == nullptr) return Outcome::refuse(item_not_found(state, c.item_id()));
  if (state.state() != APPROVED && state.state() != IN_PROGRESS) {
    return Outcome::refuse(conflict("order.not_in_fulfilment",
                                    "Expected an APPROVED or IN_PROGRESS order to record item "
                                    "results, but it is " +
                                        OrderState_Name(state.state())));
  }
  if (item->state() != Item::PENDING) {
    return Outcome::refuse(
        conflict("item.result_recorded", "Expected item '" + item->item_id() +
                                             "' without a result, but it is already " +
                                             Item::State_Name(item->state())));
  }
  Violations v;
  if (c.result() != RecordActivation::ACTIVATED && c.result() != RecordActivation::FAILED)
    v.add("result", "activation.result", "Expected result ACTIVATED or FAILED");
  check_length(v, "detail", c.detail(), kReasonLengthMax);
  if (!v.empty()) return Outcome::refuse(std::move(v).to_rejection());

  std::vector<Event> events;
  uint32_t activated = 0, failed = 0;
  for (const auto& other : state.items()) {
    if (other.item_id() == item->item_id()) continue;
    if (other.state() == Item::ACTIVATED) ++activated;
    if (other.state() == Item::FAILED) ++failed;
  }
  if (c.result() == RecordActivation::ACTIVATED) {
    if (item->action() == ADD) {
      if (auto refused = still_allowed(state, *item, context)) {
        return Outcome::refuse(std::move(*refused));
      }
    }
    for (const auto& b : state.balances()) {
      if (b.deposited().amount_minor() < b.deposit_due().amount_minor()) {
        return Outcome::refuse(conflict(
            "deposit.unpaid", "Expected the deposit of " +
                                  std::to_string(b.deposit_due().amount_minor()) + " " +
                                  b.currency() + " (minor units) paid before activation, but " +
                                  std::to_string(b.deposited().amount_minor()) + " is"));
      }
    }
    if (item->action() == REMOVE) {
      auto retention = context.retention.find(item->item_id());
      if (retention != context.retention.end() && retention->second == "OPEN") {
        return Outcome::refuse(conflict(
            "retention.open", "Expected the retention task of item '" + item->item_id() +
                                  "' done before the disconnect is carried out: record whether "
                                  "the customer was RETAINED or LOST"));
      }
      if (retention != context.retention.end() && retention->second == "RETAINED") {
        return Outcome::refuse(conflict(
            "retention.retained",
            "The customer was retained: record item '" + item->item_id() + "' as FAILED instead"));
      }
    }
    if (item->action() != ADD &&
        (context.customer == nullptr ||
         customer::find_instance(*context.customer, item->product_instance_id()) == nullptr)) {
      return Outcome::refuse(conflict(
          "product_instance.not_held",
          "Expected customer '" + state.customer_id() + "' to still hold product instance '" +
              item->product_instance_id() + "', but it does not: record this item as FAILED"));
    }
    ItemActivated e;
    e.set_item_id(item->item_id());
    e.set_detail(c.detail());
    e.set_product_instance_id(item->action() == ADD ? "pi-" + state.id() + "-" + item->item_id()
                                                    : item->product_instance_id());
    events.emplace_back(std::move(e));
    ++activated;
  } else {
    ItemActivationFailed e;
    e.set_item_id(item->item_id());
    e.set_detail(c.detail());
    events.emplace_back(std::move(e));
    ++failed;
  }
  if (activated + failed == static_cast<uint32_t>(state.items_size())) {
    OrderClosed closed;
    closed.set_state(failed == 0 ? COMPLETED : activated == 0 ? FAILED : PARTIAL);
    closed.set_activated(activated);
    closed.set_failed(failed);
    events.emplace_back(std::move(closed));
  }
  return {std::move(events), std::nullopt};
}

}  // namespace internal

std::optional<customer::ProductChange> product_change(const Order& order,
                                                      const ItemActivated& activated) {
  const Item* item = internal::find_item(order, activated.item_id());
  if (item == nullptr) return std::nullopt;
  customer::ProductChange change;
  auto* instance = change.mutable_instance();
  instance->set_id(activated.product_instance_id());
  instance->set_order_id(order.id());
  switch (item->action()) {
    case ADD:
      change.set_kind(customer::ProductChange::START);
      break;
    case MODIFY:
      change.set_kind(customer::ProductChange::CHANGE);
      break;
    case REMOVE:
      change.set_kind(customer::ProductChange::END);
      return change;
    default:
      return std::nullopt;
  }
  instance->set_offer_id(item->offer_id());
  instance->set_offer_version(item->offer_version());
  instance->set_pricing_plan_id(item->pricing_plan_id());
  instance->set_quantity(item->quantity());
  *instance->mutable_discount_package_ids() = item->discount_package_ids();
  return change;
}

}  // namespace crm::order
