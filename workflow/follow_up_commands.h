// Follow-up commands: what the follow-up rules (tasks) and the order's bookkeeping (the
// customer's balance) ask of other streams of the same partition when an aggregate's events are
// decided. Each command's id derives from its cause, so a repeated cause repeats the command.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "aggregates/customer/customer.h"
#include "aggregates/order/order.h"
#include "command.pb.h"
#include "workflow/follow_up_rules.h"

namespace crm {

// The tasks a customer's reminders open: a birthday greeting on the day, a VIP revisit.
std::vector<events::CommandEnvelope> reminder_tasks(const FollowUpRules& rules,
                                                    const customer::Customer& customer,
                                                    const std::vector<customer::Event>& events,
                                                    const events::CommandEnvelope& cause);

// The tasks the follow-up rules open for these events of `order` (its state before them):
// satisfaction revisit, disconnect retention, deposit chase, the requester's task when
// approval ends.
std::vector<events::CommandEnvelope> order_tasks(const FollowUpRules& rules,
                                                 const order::Order& order,
                                                 const std::vector<order::Event>& events,
                                                 const events::CommandEnvelope& cause);

// The customer's balance follows the order's money: paid − due, the due counting only while
// the order is to be delivered. Nullopt when these events do not change the order's money.
std::optional<events::CommandEnvelope> customer_balance(const order::Order& order,
                                                        const std::vector<order::Event>& events,
                                                        const events::CommandEnvelope& cause,
                                                        int64_t now_us);

// The retention task a disconnect (REMOVE) item waits for.
std::string retention_task_id(const order::Order& order, const order::Item& item);

}  // namespace crm
