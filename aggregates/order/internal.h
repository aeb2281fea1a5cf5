// Shared by the order aggregate's source files (order.cc, approvals.cc, payments.cc,
// fulfilment.cc): the helpers they all use, and the deciders of approvals, payments and item
// results. Not part of the API.
#pragma once

#include <string>
#include <vector>

#include "aggregates/order/order.h"
#include "aggregates/validation.h"

namespace crm::order::internal {

inline constexpr size_t kChannelLengthMax = 64;
inline constexpr size_t kNoteLengthMax = 1000;
inline constexpr size_t kReasonLengthMax = 1000;

using Outcome = Decision<Event>;

inline Rejection conflict(std::string rule, std::string message) {
  return {Rejection::Kind::kConflict, std::move(rule), std::move(message), {}};
}

inline Rejection not_found(std::string rule, std::string message) {
  return {Rejection::Kind::kNotFound, std::move(rule), std::move(message), {}};
}

inline Rejection order_not_found(const Context& context) {
  return not_found("order.not_found", "No order '" + context.order_id + "'");
}

inline void check_length(Violations& v, const std::string& field, const std::string& text,
                         size_t max) {
  if (validation::utf8_length(text) > max) {
    v.add(field, "order." + field + "_too_long",
          "Expected " + field + " of at most " + std::to_string(max) + " characters, but it has " +
              std::to_string(validation::utf8_length(text)));
  }
}

inline Rejection item_not_found(const Order& order, const std::string& item_id) {
  return not_found("order.item_not_found",
                   "Order '" + order.id() + "' has no item '" + item_id + "'");
}

inline const Item* find_item(const Order& order, const std::string& item_id) {
  for (const auto& item : order.items())
    if (item.item_id() == item_id) return &item;
  return nullptr;
}

// Two steps ask for the same approval when role, mode and approvers agree.
bool same_step(const ApprovalStep& a, const ApprovalStep& b);
// Asks `approval` now: it becomes PENDING, with its time limit from now.
void ask(Approval& approval, int64_t now_us);

Outcome decide_approval(const Order& state, const DecideApproval& c, const Context& context);
Outcome approval_timed_out(const Order& state, const ApprovalTimedOut& c, const Context& context);
Outcome record_payment(const Order& state, const RecordPayment& c, const Context& context);
Outcome record_activation(const Order& state, const RecordActivation& c, const Context& context);

}  // namespace crm::order::internal
