// An order (订单) from draft to its outcome: items added, changed and removed while it is
// editable, a receipt priced from the catalog and judged by the offer rules (the same code for
// the preview and the submission), cancellation, and each item's fulfilment result, after which
// the order closes COMPLETED, FAILED or PARTIAL.
//
// Pure: the catalog, the customer and the time come in through Context. An order records the
// exact offer versions that priced it (in the receipt fixed at submit).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "aggregates/rejection.h"
#include "approval.pb.h"
#include "catalog.pb.h"
#include "customer.pb.h"
#include "order.pb.h"

namespace crm::order {

using Command = std::variant<CreateOrder, AddItem, ChangeItem, RemoveItem, SubmitOrder, CancelOrder,
                             RecordActivation, DecideApproval, ApprovalTimedOut, RecordPayment,
                             OpenDepositChase>;
using Event =
    std::variant<OrderCreated, ItemAdded, ItemChanged, ItemRemoved, OrderSubmitted, OrderApproved,
                 OrderCancelled, ItemActivated, ItemActivationFailed, OrderClosed,
                 ApprovalRequested, ApprovalDecided, ApprovalAsked, ApprovalEscalated,
                 OrderRejected, OrderReturned, PaymentRecorded, DepositChaseOpened>;

inline constexpr char kStreamPrefix[] = "order:";
inline constexpr size_t kItemsMax = 200;
inline constexpr uint32_t kQuantityMax = 10000;
// Who approves a non-standard (manual) price when no policy asks for anyone.
inline constexpr char kNonStandardPriceRole[] = "manager";
inline constexpr char kNonStandardPriceRule[] = "built-in/non-standard price";

// What a decision reads besides the order itself.
struct Context {
  const catalog::Catalog* catalog = nullptr;     // the catalog in force; never null
  const customer::Customer* customer = nullptr;  // the order's customer; null or version 0: none
  const approval::ApprovalPolicies* policies = nullptr;  // null: no approval is ever asked
  std::string order_id;                                  // the id of the order's stream
  std::string actor_id;                                  // the principal issuing the command
  // The retention task (拆机挽留) of each REMOVE item that has one: "OPEN", or its outcome once
  // done ("RETAINED", "LOST"), or "CANCELLED". A REMOVE is carried out only once the customer
  // is lost.
  std::map<std::string, std::string> retention;
  int64_t now_us = 0;  // the command's time
};

// "ord_" ids the API generates and any other 1–64 of [A-Za-z0-9._-].
bool is_order_id(std::string_view text);
std::string stream_id(std::string_view order_id);

// DRAFT and RETURNED orders take item changes and submission.
bool is_editable(OrderState state);

Decision<Event> decide(const Order& state, const Command& command, const Context& context);

void evolve(Order& state, const Event& event, uint64_t version, int64_t occurred_at_us);

// The receipt of `order` as it would be submitted now: every line priced, totals per currency,
// the deposit due and every rule violated, each with its rule name and, where there is one, the
// action that fixes it. Submission fixes exactly this.
Receipt price(const Order& order, const Context& context);

// What an item's activation does to the customer's product instances: ADD starts one, MODIFY
// changes its plan, REMOVE ends it. Deterministic, so replays give the same change.
std::optional<customer::ProductChange> product_change(const Order& order,
                                                      const ItemActivated& activated);

// Whether the order's deposit is still (partly) unpaid after submission.
bool deposit_unpaid(const Order& order);

// The order's balances per currency, from its receipt and payments alone.
std::vector<Balance> balances(const Order& order);

// The order's id within an approval id ("<orderId>.<round>.<step>"); empty when malformed.
std::string order_of_approval(std::string_view approval_id);

// The approval steps waiting on a time limit: (due time, approval id).
std::vector<std::pair<int64_t, std::string>> due_approvals(const Order& order);

// Rounds num / den half to even (banker's rounding); num >= 0, den > 0.
int64_t divide_half_even(__int128 num, int64_t den);

}  // namespace crm::order
