#include "workflow/follow_up_commands.h"

#include <algorithm>

#include "aggregates/task/task.h"
#include "events/codec.h"
#include "workflow/aggregate_handler.h"

namespace crm {
namespace {

// A follow-up command opening task `task_id` in the partition of `partition_key`, caused by
// `cause` (its id derives from the cause, so a repeat of the cause repeats the command).
events::CommandEnvelope open_task(const events::CommandEnvelope& cause, const std::string& task_id,
                                  const std::string& partition_key, task::CreateTask body) {
  events::CommandEnvelope c;
  c.set_command_id(cause.command_id() + "/" + task_id);
  c.set_stream_id(task::stream_id(task_id));
  c.set_stream_type(kTaskStream);
  c.set_partition_key(partition_key);
  *c.mutable_actor() = cause.actor();
  c.set_correlation_id(cause.correlation_id());
  *c.mutable_issued_at() = cause.issued_at();
  *c.mutable_create_task() = std::move(body);
  return c;
}

// The body of a task a follow-up rule opens: for the owner, or the fallback role without one.
task::CreateTask task_body(const FollowUpRules& rules, const std::string& owner_id,
                           std::string subject, std::string reason, int64_t due_us,
                           std::string rule) {
  task::CreateTask t;
  t.set_subject(std::move(subject));
  t.set_reason(std::move(reason));
  *t.mutable_due_at() = timestamp_from_us(due_us);
  t.set_assignee(owner_id);
  if (owner_id.empty()) t.set_assignee_role(rules.fallback_role);
  t.set_rule(std::move(rule));
  return t;
}

// The subject and reason of the requester's task when approval of `order` ends with `event`
// (approved after asking, rejected, returned); nullopt for other events.
std::optional<std::pair<std::string, std::string>> decision_task(const order::Order& order,
                                                                 const order::Event& event) {
  if (order.approval_round() == 0 || order.requester().empty()) return std::nullopt;
  if (std::holds_alternative<order::OrderApproved>(event))
    return std::pair{"Order approved: carry it out",
                     "Every approval step of order " + order.id() + " approved it"};
  if (const auto* rejected = std::get_if<order::OrderRejected>(&event))
    return std::pair{"Order rejected: tell the customer",
                     "Order " + order.id() + " was rejected" +
                         (rejected->timed_out() ? " (its approval timed out)" : "") +
                         (rejected->comment().empty() ? "" : ": " + rejected->comment())};
  if (const auto* returned = std::get_if<order::OrderReturned>(&event))
    return std::pair{"Order returned: revise and resubmit",
                     "Order " + order.id() + " was returned" +
                         (returned->comment().empty() ? "" : ": " + returned->comment())};
  return std::nullopt;
}

}  // namespace

std::vector<events::CommandEnvelope> reminder_tasks(const FollowUpRules& rules,
                                                    const customer::Customer& customer,
                                                    const std::vector<customer::Event>& events,
                                                    const events::CommandEnvelope& cause) {
  std::vector<events::CommandEnvelope> out;
  const int64_t now_us = timestamp_to_us(cause.issued_at());
  for (const auto& event : events) {
    task::CreateTask body;
    std::string task_id;
    if (const auto* greeting = std::get_if<customer::BirthdayGreetingOpened>(&event)) {
      const customer::Contact* contact = nullptr;
      for (const auto& c : customer.contacts())
        if (c.id() == greeting->contact_id()) contact = &c;
      if (contact == nullptr) continue;
      // Due at the end of the local birthday (the reminder fired at its start); a day after
      // it opens when the engine was down through the birthday.
      const int64_t end_us = timestamp_to_us(cause.timer_fired().due_at()) + 86'400'000'000LL;
      body = task_body(
          rules, customer.owner_id(), "Birthday greeting",
          contact->name() + " (" + customer::ContactRole_Name(contact->role()) + ") of " +
              customer.name() + " has a birthday today (" + contact->birthday() + ")",
          end_us > now_us ? end_us : now_us + 86'400'000'000LL, "customer.contact.birthday");
      task_id = greeting->task_id();
    } else if (const auto* revisit = std::get_if<customer::VipRevisitOpened>(&event)) {
      body = task_body(rules, customer.owner_id(), "VIP revisit",
                       "Periodic revisit " + std::to_string(revisit->number()) +
                           " of VIP customer " + customer.name(),
                       now_us + rules.vip_revisit_due_us, "customer.vip.revisit");
      task_id = revisit->task_id();
    } else {
      continue;
    }
    body.set_customer_id(customer.id());
    out.push_back(open_task(cause, task_id, customer.id(), std::move(body)));
  }
  return out;
}

std::optional<events::CommandEnvelope> customer_balance(const order::Order& order,
                                                        const std::vector<order::Event>& events,
                                                        const events::CommandEnvelope& cause,
                                                        int64_t now_us) {
  const bool changes = std::any_of(events.begin(), events.end(), [](const auto& e) {
    return std::holds_alternative<order::OrderSubmitted>(e) ||
           std::holds_alternative<order::PaymentRecorded>(e) ||
           std::holds_alternative<order::OrderCancelled>(e) ||
           std::holds_alternative<order::OrderRejected>(e) ||
           std::holds_alternative<order::OrderClosed>(e);
  });
  if (!changes) return std::nullopt;
  order::Order after = order;
  for (const auto& e : events) order::evolve(after, e, after.version() + 1, now_us);
  events::CommandEnvelope c;
  c.set_command_id(cause.command_id() + "/balance");
  c.set_stream_id(after.customer_id());
  c.set_stream_type(kCustomerStream);
  c.set_partition_key(after.customer_id());
  *c.mutable_actor() = cause.actor();
  c.set_correlation_id(cause.correlation_id());
  *c.mutable_issued_at() = cause.issued_at();
  auto* set = c.mutable_set_order_balance();
  set->set_order_id(after.id());
  const bool delivers = after.state() != order::CANCELLED && after.state() != order::REJECTED &&
                        after.state() != order::FAILED;
  for (const auto& b : after.balances()) {
    auto* net = set->add_net();
    net->set_currency(b.currency());
    net->set_amount_minor(b.paid().amount_minor() - (delivers ? b.due().amount_minor() : 0));
  }
  return c;
}

std::string retention_task_id(const order::Order& order, const order::Item& item) {
  return "retain-" + order.id() + "-" + item.item_id();
}

std::vector<events::CommandEnvelope> order_tasks(const FollowUpRules& rules,
                                                 const order::Order& order,
                                                 const std::vector<order::Event>& events,
                                                 const events::CommandEnvelope& cause) {
  std::vector<events::CommandEnvelope> out;
  const int64_t now_us = timestamp_to_us(cause.issued_at());
  auto body = [&](std::string subject, std::string reason, int64_t due_us, std::string rule,
                  const std::string& assignee) {
    auto t =
        task_body(rules, assignee, std::move(subject), std::move(reason), due_us, std::move(rule));
    t.set_customer_id(order.customer_id());
    t.set_order_id(order.id());
    return t;
  };
  const std::string& owner = order.owner_id();
  for (const auto& event : events) {
    if (const auto* closed = std::get_if<order::OrderClosed>(&event)) {
      if (closed->state() == order::FAILED) continue;
      out.push_back(
          open_task(cause, "revisit-" + order.id(), order.customer_id(),
                    body("Satisfaction revisit", "Order " + order.id() + " was fulfilled",
                         now_us + rules.revisit_after_us, "order.completed.revisit", owner)));
    } else if (std::holds_alternative<order::OrderSubmitted>(event)) {
      for (const auto& item : order.items()) {
        if (item.action() != order::REMOVE) continue;
        out.push_back(
            open_task(cause, retention_task_id(order, item), order.customer_id(),
                      body("Retention: the customer asks to disconnect " + item.offer_id(),
                           "Item " + item.item_id() + " of order " + order.id() + " removes " +
                               item.product_instance_id() + "; record RETAINED or LOST",
                           now_us + rules.retention_due_us, task::kRetentionRule, owner)));
      }
    } else if (const auto* chase = std::get_if<order::DepositChaseOpened>(&event)) {
      out.push_back(open_task(
          cause, chase->task_id(), order.customer_id(),
          body("Chase the deposit", "The deposit of order " + order.id() + " is still unpaid",
               now_us + rules.deposit_chase_due_us, "order.deposit.chase", owner)));
    } else if (auto decided = decision_task(order, event);
               decided && !std::any_of(events.begin(), events.end(), [](const auto& e) {
                 return std::holds_alternative<order::OrderSubmitted>(e);  // none was asked
               })) {
      // The requester (never a deciding approver) learns the outcome and acts on it.
      const std::string id = "decided-" + order.id() + "-" + std::to_string(order.approval_round());
      out.push_back(open_task(cause, id, order.customer_id(),
                              body(decided->first, decided->second, now_us + rules.decision_due_us,
                                   "order.approval.decided", order.requester())));
    }
  }
  return out;
}

}  // namespace crm
