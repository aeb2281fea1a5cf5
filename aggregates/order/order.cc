#include "aggregates/order/order.h"

#include <algorithm>
#include <map>
#include <set>

#include "aggregates/approval/policies.h"
#include "aggregates/catalog/catalog.h"
#include "aggregates/customer/customer.h"
#include "aggregates/money.h"
#include "aggregates/order/internal.h"
#include "aggregates/order/rules.h"
#include "aggregates/overloaded.h"
#include "aggregates/validation.h"
#include "events/codec.h"

namespace crm::order {
namespace {

using namespace internal;

Rejection not_editable(const Order& order, const std::string& what) {
  return conflict("order.not_editable", "Expected the order in DRAFT or RETURNED to " + what +
                                            ", but it is " + OrderState_Name(order.state()));
}

// Fills the defaults a client may leave out: quantity 1, action ADD, mode IMMEDIATE, and the
// plan when the offer has exactly one.
void normalize(Item& item, const catalog::Catalog& catalog) {
  if (item.quantity() == 0) item.set_quantity(1);
  if (item.action() == ITEM_ACTION_UNSPECIFIED) item.set_action(ADD);
  if (item.effective_mode() == catalog::EFFECTIVE_MODE_UNSPECIFIED)
    item.set_effective_mode(catalog::IMMEDIATE);
  if (item.action() != REMOVE && item.pricing_plan_id().empty()) {
    if (const auto* history = catalog::find_offer(catalog, item.offer_id())) {
      const auto& offer = history->versions(history->versions_size() - 1);
      if (offer.pricing_plans_size() == 1) item.set_pricing_plan_id(offer.pricing_plans(0).id());
    }
  }
}

// An item's own values, then its references into the catalog (offer, plan, packages). Rules
// about the customer and the rest of the order wait for the receipt.
std::optional<Rejection> check_item(const Item& item, const Context& context) {
  Violations v;
  auto engine_field = [&](bool set, const std::string& field) {
    if (set)
      v.add(field, "item.read_only", "Expected " + field + " to be left out: the engine sets it");
  };
  engine_field(!item.item_id().empty(), "itemId");
  engine_field(item.offer_version() != 0, "offerVersion");
  engine_field(item.state() != Item::STATE_UNSPECIFIED, "state");
  engine_field(!item.activation_detail().empty(), "activationDetail");
  engine_field(item.has_activated_at(), "activatedAt");
  if (item.offer_id().empty()) {
    v.add("offerId", "item.offer_required", "Expected an offerId");
  } else if (!catalog::is_offer_id(item.offer_id())) {
    v.add(
        "offerId", "item.offer_format",
        "Expected an offerId of 1–64 letters, digits or . _ -, but got '" + item.offer_id() + "'");
  }
  if (!ItemAction_IsValid(item.action()))
    v.add("action", "item.action", "Expected action ADD, MODIFY or REMOVE");
  if (item.quantity() > kQuantityMax) {
    v.add("quantity", "item.quantity",
          "Expected a quantity of 1 to " + std::to_string(kQuantityMax) + ", but got " +
              std::to_string(item.quantity()));
  }
  if (!catalog::EffectiveMode_IsValid(item.effective_mode())) {
    v.add("effectiveMode", "item.effective_mode",
          "Expected effectiveMode IMMEDIATE, NEXT_CYCLE or ON_DATE");
  } else if (item.effective_mode() == catalog::ON_DATE && !item.has_effective_date()) {
    v.add("effectiveDate", "item.effective_date_required",
          "Expected an effectiveDate with effectiveMode ON_DATE");
  } else if (item.effective_mode() != catalog::ON_DATE && item.has_effective_date()) {
    v.add("effectiveDate", "item.effective_date_unexpected",
          "Expected no effectiveDate unless effectiveMode is ON_DATE, but it is " +
              catalog::EffectiveMode_Name(item.effective_mode()));
  }
  if (item.action() == ADD && !item.product_instance_id().empty()) {
    v.add("productInstanceId", "item.product_instance_unexpected",
          "Expected no productInstanceId on an ADD: the instance is created on activation");
  } else if (item.action() != ADD && item.product_instance_id().empty()) {
    v.add("productInstanceId", "item.product_instance_required",
          "Expected the productInstanceId that a " + ItemAction_Name(item.action()) + " changes");
  }
  if (!item.product_instance_id().empty() &&
      !validation::is_identifier(item.product_instance_id())) {
    v.add("productInstanceId", "item.product_instance_format",
          "Expected a productInstanceId of up to 64 letters, digits or . _ - :");
  }
  if (item.action() == REMOVE &&
      (!item.pricing_plan_id().empty() || !item.discount_package_ids().empty() ||
       item.has_manual_price())) {
    v.add("pricingPlanId", "item.remove_terms",
          "Expected no pricingPlanId, discountPackageIds or manualPrice on a REMOVE");
  }
  std::set<std::string> packages;
  for (int i = 0; i < item.discount_package_ids_size(); ++i) {
    if (!packages.insert(item.discount_package_ids(i)).second) {
      v.add("discountPackageIds[" + std::to_string(i) + "]", "item.package_repeated",
            "Expected each package once, but '" + item.discount_package_ids(i) + "' repeats");
    }
  }
  if (item.has_manual_price()) {
    if (item.manual_price().amount_minor() < 0) {
      v.add("manualPrice.amountMinor", "money.negative",
            "Expected a manual price of zero or more, but got " +
                std::to_string(item.manual_price().amount_minor()));
    } else if (item.manual_price().amount_minor() > kAmountMax) {
      v.add("manualPrice.amountMinor", "money.too_large",
            "Expected a manual price of at most " + std::to_string(kAmountMax) + " minor units");
    }
    if (!validation::is_currency(item.manual_price().currency())) {
      v.add("manualPrice.currency", "money.currency_format",
            "Expected manualPrice.currency as an ISO 4217 code like CNY, but got '" +
                item.manual_price().currency() + "'");
    }
  }
  if (v.empty()) {
    std::vector<Violation> found;
    resolve_item(item, *context.catalog, "", &found);
    for (auto& f : found) v.add(f.field(), f.rule(), f.message());
  }
  if (v.empty()) return std::nullopt;
  return std::move(v).to_rejection();
}

Outcome create_order(const Order& state, const CreateOrder& c, const Context& context) {
  if (state.version() != 0)
    return Outcome::refuse(conflict("order.exists", "Order '" + context.order_id + "' exists"));
  Violations v;
  if (c.customer_id().empty()) {
    v.add("customerId", "order.customer_required", "Expected the customerId the order is for");
  } else if (context.customer == nullptr || context.customer->version() == 0) {
    v.add("customerId", "customer.not_found",
          "Expected a registered customer, but there is no customer '" + c.customer_id() + "'");
  }
  if (!OrderKind_IsValid(c.kind())) v.add("kind", "order.kind", "Expected kind NORMAL or CONTRACT");
  check_length(v, "channel", c.channel(), kChannelLengthMax);
  check_length(v, "note", c.note(), kNoteLengthMax);
  if (!v.empty()) return Outcome::refuse(std::move(v).to_rejection());

  OrderCreated e;
  e.set_order_id(context.order_id);
  e.set_customer_id(c.customer_id());
  e.set_kind(c.kind() == ORDER_KIND_UNSPECIFIED ? NORMAL : c.kind());
  e.set_channel(c.channel());
  e.set_note(c.note());
  e.set_owner_id(context.customer->owner_id());
  e.set_created_by(context.actor_id);
  return {{std::move(e)}, std::nullopt};
}

Outcome add_item(const Order& state, const AddItem& c, const Context& context) {
  if (state.version() == 0) return Outcome::refuse(order_not_found(context));
  if (!is_editable(state.state())) return Outcome::refuse(not_editable(state, "add items"));
  if (static_cast<size_t>(state.items_size()) >= kItemsMax) {
    return Outcome::refuse(
        conflict("order.items_max",
                 "Expected at most " + std::to_string(kItemsMax) + " items in one order"));
  }
  Item item = c.item();
  normalize(item, *context.catalog);
  if (auto refused = check_item(item, context)) return Outcome::refuse(std::move(*refused));
  item.set_item_id("it-" + std::to_string(state.items_created() + 1));
  ItemAdded e;
  *e.mutable_item() = std::move(item);
  return {{std::move(e)}, std::nullopt};
}

Outcome change_item(const Order& state, const ChangeItem& c, const Context& context) {
  if (state.version() == 0) return Outcome::refuse(order_not_found(context));
  const Item* current = find_item(state, c.item_id());
  if (current == nullptr) return Outcome::refuse(item_not_found(state, c.item_id()));
  if (!is_editable(state.state())) return Outcome::refuse(not_editable(state, "change items"));
  const ItemPatch& p = c.patch();
  Item item = *current;
  item.clear_item_id();  // the engine's fields, set again below or at the next submission
  item.clear_offer_version();
  item.clear_state();
  if (p.has_pricing_plan_id()) item.set_pricing_plan_id(p.pricing_plan_id());
  if (p.clear_discount_packages()) item.clear_discount_package_ids();
  if (!p.discount_package_ids().empty())
    *item.mutable_discount_package_ids() = p.discount_package_ids();
  if (p.has_quantity()) item.set_quantity(p.quantity());
  if (p.has_effective_mode()) {
    item.set_effective_mode(p.effective_mode());
    if (p.effective_mode() != catalog::ON_DATE) item.clear_effective_date();
  }
  if (p.has_effective_date()) *item.mutable_effective_date() = p.effective_date();
  if (p.clear_manual_price()) item.clear_manual_price();
  if (p.has_manual_price()) *item.mutable_manual_price() = p.manual_price();
  if (p.has_product_instance_id()) item.set_product_instance_id(p.product_instance_id());
  normalize(item, *context.catalog);
  if (auto refused = check_item(item, context)) return Outcome::refuse(std::move(*refused));
  item.set_item_id(current->item_id());
  if (item.SerializeAsString() == current->SerializeAsString()) return {};  // nothing changes
  ItemChanged e;
  *e.mutable_item() = std::move(item);
  return {{std::move(e)}, std::nullopt};
}

Outcome remove_item(const Order& state, const RemoveItem& c, const Context& context) {
  if (state.version() == 0) return Outcome::refuse(order_not_found(context));
  if (find_item(state, c.item_id()) == nullptr)
    return Outcome::refuse(item_not_found(state, c.item_id()));
  if (!is_editable(state.state())) return Outcome::refuse(not_editable(state, "remove items"));
  ItemRemoved e;
  e.set_item_id(c.item_id());
  return {{std::move(e)}, std::nullopt};
}

Outcome submit_order(const Order& state, const Context& context) {
  if (state.version() == 0) return Outcome::refuse(order_not_found(context));
  if (!is_editable(state.state())) return Outcome::refuse(not_editable(state, "be submitted"));
  Receipt receipt = price(state, context);
  if (!receipt.submittable()) {
    Violations v;
    for (const auto& violation : receipt.violations())
      v.add(violation.field(), violation.rule(), violation.message());
    return Outcome::refuse(std::move(v).to_rejection());
  }
  std::vector<Event> events;
  const auto chain = receipt.approval_chain();
  OrderSubmitted submitted;
  *submitted.mutable_receipt() = std::move(receipt);
  submitted.set_submitted_by(context.actor_id);
  events.emplace_back(std::move(submitted));
  if (chain.empty()) {
    OrderApproved approved;
    approved.set_reason("no approval policy asks for approval of this order");
    events.emplace_back(std::move(approved));
    return {std::move(events), std::nullopt};
  }

  // A step approved in an earlier round with the same tested values is carried over.
  const TestedValues tested = approval::tested_values(std::get<OrderSubmitted>(events[0]).receipt(),
                                                      state.kind(), context.customer);
  const std::string tested_bytes = tested.SerializeAsString();
  auto approved_before = [&](const ApprovalStep& step) {
    for (const auto* list : {&state.approvals(), &state.past_approvals()}) {
      for (const auto& earlier : *list) {
        // Four eyes: the new requester's own approval is never carried.
        const bool by_requester =
            std::any_of(earlier.decisions().begin(), earlier.decisions().end(), [&](const auto& d) {
              return d.principal_id() == context.actor_id || d.on_behalf_of() == context.actor_id;
            });
        if ((earlier.state() == Approval::APPROVED || earlier.state() == Approval::CARRIED) &&
            !by_requester && same_step(earlier.step(), step) &&
            earlier.tested().SerializeAsString() == tested_bytes)
          return true;
      }
    }
    return false;
  };
  ApprovalRequested requested;
  const uint32_t round = state.approval_round() + 1;
  requested.set_round(round);
  requested.set_policy_versions(
      context.policies == nullptr ? ""
                                  : approval::chain_for(*context.policies, tested).policy_versions);
  *requested.mutable_tested() = tested;
  requested.set_customer_id(state.customer_id());
  requested.set_requester(context.actor_id);
  bool asked = false;
  for (int i = 0; i < chain.size(); ++i) {
    Approval* a = requested.add_approvals();
    a->set_approval_id(context.order_id + "." + std::to_string(round) + "." +
                       std::to_string(i + 1));
    *a->mutable_step() = chain[i];
    a->set_asked_role(chain[i].role());
    *a->mutable_tested() = tested;
    if (approved_before(chain[i])) {
      a->set_state(Approval::CARRIED);
    } else if (!asked) {
      ask(*a, context.now_us);
      asked = true;
    } else {
      a->set_state(Approval::WAITING);
    }
  }
  events.emplace_back(std::move(requested));
  if (!asked) {
    OrderApproved approved;
    approved.set_reason("every step was approved before with the same tested values");
    events.emplace_back(std::move(approved));
  }
  return {std::move(events), std::nullopt};
}

Outcome cancel_order(const Order& state, const CancelOrder& c, const Context& context) {
  if (state.version() == 0) return Outcome::refuse(order_not_found(context));
  const bool started = std::any_of(state.items().begin(), state.items().end(), [](const Item& i) {
    return i.state() == Item::ACTIVATED || i.state() == Item::FAILED;
  });
  switch (state.state()) {
    case DRAFT:
    case RETURNED:
    case SUBMITTED:
    case PENDING_APPROVAL:
    case APPROVED:
      if (!started) break;
      [[fallthrough]];
    default:
      return Outcome::refuse(conflict(
          "order.not_cancellable", "Expected an order not yet in fulfilment to cancel, but it is " +
                                       OrderState_Name(state.state()) +
                                       (started ? " with item results recorded" : "")));
  }
  Violations v;
  check_length(v, "reason", c.reason(), kReasonLengthMax);
  if (!v.empty()) return Outcome::refuse(std::move(v).to_rejection());
  OrderCancelled e;
  e.set_reason(c.reason());
  e.set_from(state.state());
  return {{std::move(e)}, std::nullopt};
}

Approval* find_approval(Order& order, const std::string& approval_id) {
  for (auto& a : *order.mutable_approvals())
    if (a.approval_id() == approval_id) return &a;
  return nullptr;
}

// Steps still waiting or pending when the order moves on are closed.
void close_open_approvals(Order& order, const Approval*) {
  for (auto& a : *order.mutable_approvals())
    if (a.state() == Approval::PENDING || a.state() == Approval::WAITING)
      a.set_state(Approval::CLOSED);
}

Item* find_item(Order& order, const std::string& item_id) {
  for (auto& item : *order.mutable_items())
    if (item.item_id() == item_id) return &item;
  return nullptr;
}

}  // namespace

bool is_order_id(std::string_view text) { return catalog::is_offer_id(text); }

std::string stream_id(std::string_view order_id) {
  return std::string(kStreamPrefix).append(order_id);
}

bool is_editable(OrderState state) { return state == DRAFT || state == RETURNED; }

Decision<Event> decide(const Order& state, const Command& command, const Context& context) {
  return std::visit(
      Overloaded{
          [&](const CreateOrder& c) { return create_order(state, c, context); },
          [&](const AddItem& c) { return add_item(state, c, context); },
          [&](const ChangeItem& c) { return change_item(state, c, context); },
          [&](const RemoveItem& c) { return remove_item(state, c, context); },
          [&](const SubmitOrder&) { return submit_order(state, context); },
          [&](const CancelOrder& c) { return cancel_order(state, c, context); },
          [&](const RecordActivation& c) { return record_activation(state, c, context); },
          [&](const DecideApproval& c) { return decide_approval(state, c, context); },
          [&](const ApprovalTimedOut& c) { return approval_timed_out(state, c, context); },
          [&](const RecordPayment& c) { return record_payment(state, c, context); },
          [&](const OpenDepositChase& c) -> Outcome {
            if (!deposit_unpaid(state) || !state.deposit_chase_task().empty()) return {};
            DepositChaseOpened e;
            e.set_task_id(c.task_id());
            return {{std::move(e)}, std::nullopt};
          },
      },
      command);
}

void evolve(Order& state, const Event& event, uint64_t version, int64_t occurred_at_us) {
  const auto now = timestamp_from_us(occurred_at_us);
  std::visit(Overloaded{
                 [&](const OrderCreated& e) {
                   state.set_id(e.order_id());
                   state.set_customer_id(e.customer_id());
                   state.set_kind(e.kind());
                   state.set_channel(e.channel());
                   state.set_note(e.note());
                   state.set_owner_id(e.owner_id());
                   state.set_created_by(e.created_by());
                   state.set_state(DRAFT);
                   *state.mutable_created_at() = now;
                 },
                 [&](const ItemAdded& e) {
                   *state.add_items() = e.item();
                   state.set_items_created(state.items_created() + 1);
                 },
                 [&](const ItemChanged& e) {
                   if (Item* item = find_item(state, e.item().item_id())) *item = e.item();
                 },
                 [&](const ItemRemoved& e) {
                   auto* items = state.mutable_items();
                   for (int i = 0; i < items->size(); ++i) {
                     if (items->Get(i).item_id() != e.item_id()) continue;
                     items->DeleteSubrange(i, 1);
                     break;
                   }
                 },
                 [&](const OrderSubmitted& e) {
                   *state.mutable_receipt() = e.receipt();
                   state.set_submitted_by(e.submitted_by());
                   state.set_requester(e.submitted_by());
                   *state.mutable_submitted_at() = now;
                   state.set_state(SUBMITTED);
                   for (const auto& line : e.receipt().lines()) {
                     if (Item* item = find_item(state, line.item_id())) {
                       item->set_offer_version(line.offer_version());
                       item->set_state(Item::PENDING);
                     }
                   }
                 },
                 [&](const OrderApproved&) {
                   state.set_state(APPROVED);
                   close_open_approvals(state, nullptr);
                 },
                 [&](const ApprovalRequested& e) {
                   for (auto& earlier : *state.mutable_approvals())
                     *state.add_past_approvals() = std::move(earlier);
                   state.clear_approvals();
                   *state.mutable_approvals() = e.approvals();
                   state.set_approval_round(e.round());
                   state.set_policy_versions(e.policy_versions());
                   state.set_state(PENDING_APPROVAL);
                 },
                 [&](const ApprovalDecided& e) {
                   Approval* a = find_approval(state, e.approval_id());
                   if (a == nullptr) return;
                   *a->add_decisions() = e.decision();
                   if (!e.step_done()) return;
                   switch (e.decision().decision()) {
                     case ApprovalDecision::APPROVE:
                       a->set_state(Approval::APPROVED);
                       break;
                     case ApprovalDecision::REJECT:
                       a->set_state(Approval::REJECTED);
                       break;
                     default:
                       a->set_state(Approval::RETURNED);
                   }
                 },
                 [&](const ApprovalAsked& e) {
                   Approval* a = find_approval(state, e.approval_id());
                   if (a == nullptr) return;
                   a->set_state(Approval::PENDING);
                   a->set_asked_role(e.role());
                   *a->mutable_asked_at() = now;
                   if (e.has_due_at()) *a->mutable_due_at() = e.due_at();
                 },
                 [&](const ApprovalEscalated& e) {
                   Approval* a = find_approval(state, e.approval_id());
                   if (a == nullptr) return;
                   a->set_asked_role(e.to_role());
                   a->set_escalations(a->escalations() + 1);
                   if (e.has_due_at()) *a->mutable_due_at() = e.due_at();
                 },
                 [&](const OrderRejected& e) {
                   Approval* a = find_approval(state, e.approval_id());
                   if (a != nullptr && e.timed_out()) a->set_state(Approval::REJECTED);
                   close_open_approvals(state, nullptr);
                   state.set_state(REJECTED);
                   *state.mutable_closed_at() = now;
                 },
                 [&](const OrderReturned&) {
                   close_open_approvals(state, nullptr);
                   state.set_state(RETURNED);
                 },
                 [&](const PaymentRecorded& e) { *state.add_payments() = e.payment(); },
                 [&](const DepositChaseOpened& e) { state.set_deposit_chase_task(e.task_id()); },
                 [&](const OrderCancelled& e) {
                   close_open_approvals(state, nullptr);
                   state.set_state(CANCELLED);
                   state.set_cancel_reason(e.reason());
                   *state.mutable_closed_at() = now;
                 },
                 [&](const ItemActivated& e) {
                   if (Item* item = find_item(state, e.item_id())) {
                     item->set_state(Item::ACTIVATED);
                     item->set_activation_detail(e.detail());
                     *item->mutable_activated_at() = now;
                     if (item->action() == ADD)
                       item->set_product_instance_id(e.product_instance_id());
                   }
                   state.set_state(IN_PROGRESS);
                 },
                 [&](const ItemActivationFailed& e) {
                   if (Item* item = find_item(state, e.item_id())) {
                     item->set_state(Item::FAILED);
                     item->set_activation_detail(e.detail());
                   }
                   state.set_state(IN_PROGRESS);
                 },
                 [&](const OrderClosed& e) {
                   state.set_state(e.state());
                   *state.mutable_closed_at() = now;
                 },
             },
             event);
  if (std::holds_alternative<OrderSubmitted>(event) ||
      std::holds_alternative<PaymentRecorded>(event)) {
    state.clear_balances();
    for (auto& b : balances(state)) *state.add_balances() = std::move(b);
  }
  state.set_version(static_cast<uint32_t>(version));
  *state.mutable_updated_at() = now;
}

}  // namespace crm::order
