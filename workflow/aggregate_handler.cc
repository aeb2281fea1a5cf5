#include "workflow/aggregate_handler.h"

#include <google/protobuf/any.pb.h>
#include <google/protobuf/descriptor.h>

#include <cstring>

#include "aggregates/approval/policies.h"
#include "aggregates/audit/digests.h"
#include "aggregates/catalog/catalog.h"
#include "aggregates/customer/customer.h"
#include "aggregates/event_variant.h"
#include "aggregates/order/order.h"
#include "aggregates/principal/principal.h"
#include "aggregates/task/task.h"
#include "events/codec.h"
#include "workflow/follow_up_commands.h"

namespace crm {
namespace {

template <typename Event>
HandlerDecision to_handler_decision(Decision<Event>&& decision) {
  HandlerDecision out;
  out.rejection = std::move(decision.rejection);
  for (auto& event : decision.events) {
    out.events.push_back(std::visit(
        [](auto& e) -> std::unique_ptr<google::protobuf::Message> {
          return std::make_unique<std::decay_t<decltype(e)>>(std::move(e));
        },
        event));
  }
  return out;
}

constexpr char kPrincipalPrefix[] = "principal:";

Rejection wrong_command(const std::string& stream_type) {
  return {Rejection::Kind::kInvalid,
          "command.unknown",
          "Expected a " + stream_type + " command, but the command has another body",
          {}};
}

class CustomerHandler final : public AggregateHandler {
 public:
  explicit CustomerHandler(const FollowUpRules& rules)
      : rules_(rules), reminder_rules_{rules.vip_revisit_every_us, rules.utc_offset_us} {}
  std::string stream_type() const override { return kCustomerStream; }
  std::unique_ptr<google::protobuf::Message> new_state() const override {
    return std::make_unique<customer::Customer>();
  }
  bool owns(const std::string& stream_id) const override {
    return stream_id.find(':') == std::string::npos;
  }
  HandlerDecision decide(const google::protobuf::Message& state,
                         const events::CommandEnvelope& command, DecideContext&) const override {
    const auto& customer = static_cast<const customer::Customer&>(state);
    customer::Command c;
    switch (command.body_case()) {
      case events::CommandEnvelope::kRegisterCustomer:
        c = command.register_customer();
        break;
      case events::CommandEnvelope::kUpdateCustomer:
        c = command.update_customer();
        break;
      case events::CommandEnvelope::kAddContact:
        c = command.add_contact();
        break;
      case events::CommandEnvelope::kApplyProductChanges:
        c = command.apply_product_changes();
        break;
      case events::CommandEnvelope::kSetOrderBalance:
        c = command.set_order_balance();
        break;
      case events::CommandEnvelope::kTimerFired: {
        // A reminder no longer asked for (greeted already, no longer VIP, a contact's timer
        // moved on) fires to no effect.
        const auto& fired = command.timer_fired();
        const auto due = customer::reminders(customer, reminder_rules_);
        auto it = std::find_if(due.begin(), due.end(), [&](const customer::Reminder& r) {
          return r.name == fired.name() && r.due_us == timestamp_to_us(fired.due_at());
        });
        if (it == due.end()) return {};
        if (it->name == customer::kVipRevisitReminder) {
          c = customer::OpenVipRevisit();
        } else {
          customer::OpenBirthdayGreeting greeting;
          greeting.set_contact_id(it->contact_id);
          greeting.set_year(it->year);
          c = std::move(greeting);
        }
        break;
      }
      default:
        return {{}, wrong_command(kCustomerStream), {}, {}};
    }
    auto decided = customer::decide(customer, command.stream_id(), c);
    auto tasks = reminder_tasks(rules_, customer, decided.events, command);
    HandlerDecision out = to_handler_decision(std::move(decided));
    for (auto& t : tasks) out.follow_ups.push_back(std::move(t));
    return out;
  }
  std::vector<std::pair<int64_t, std::string>> timers(
      const google::protobuf::Message& state) const override {
    std::vector<std::pair<int64_t, std::string>> out;
    for (auto& r :
         customer::reminders(static_cast<const customer::Customer&>(state), reminder_rules_))
      out.emplace_back(r.due_us, std::move(r.name));
    return out;
  }
  void evolve(google::protobuf::Message& state, const google::protobuf::Message& event,
              uint64_t version, int64_t occurred_at_us) const override {
    auto e = to_variant<customer::Event>(event);
    if (!e) std::abort();  // the processor only hands us events of this aggregate
    customer::evolve(static_cast<customer::Customer&>(state), *e, version, occurred_at_us);
  }

 private:
  FollowUpRules rules_;
  customer::ReminderRules reminder_rules_;
};

class PrincipalHandler final : public AggregateHandler {
 public:
  std::string stream_type() const override { return kPrincipalStream; }
  std::unique_ptr<google::protobuf::Message> new_state() const override {
    return std::make_unique<principal::Principal>();
  }
  bool owns(const std::string& stream_id) const override {
    return stream_id.rfind(kPrincipalPrefix, 0) == 0;
  }
  HandlerDecision decide(const google::protobuf::Message& state,
                         const events::CommandEnvelope& command, DecideContext&) const override {
    principal::Command c;
    switch (command.body_case()) {
      case events::CommandEnvelope::kUpsertPrincipal:
        c = command.upsert_principal();
        break;
      case events::CommandEnvelope::kRevokePrincipal:
        c = command.revoke_principal();
        break;
      case events::CommandEnvelope::kSetDelegation:
        c = command.set_delegation();
        break;
      default:
        return {{}, wrong_command(kPrincipalStream), {}, {}};
    }
    return to_handler_decision(principal::decide(static_cast<const principal::Principal&>(state),
                                                 command.partition_key(), c));
  }
  void evolve(google::protobuf::Message& state, const google::protobuf::Message& event,
              uint64_t version, int64_t) const override {
    auto e = to_variant<principal::Event>(event);
    if (!e) std::abort();
    principal::evolve(static_cast<principal::Principal&>(state), *e, version);
  }
};

class CatalogHandler final : public AggregateHandler {
 public:
  std::string stream_type() const override { return kCatalogStream; }
  std::unique_ptr<google::protobuf::Message> new_state() const override {
    return std::make_unique<catalog::Catalog>();
  }
  bool owns(const std::string& stream_id) const override { return stream_id == catalog::kStreamId; }
  HandlerDecision decide(const google::protobuf::Message& state,
                         const events::CommandEnvelope& command, DecideContext&) const override {
    catalog::Command c;
    switch (command.body_case()) {
      case events::CommandEnvelope::kPublishOffer:
        c = command.publish_offer();
        break;
      case events::CommandEnvelope::kRetireOffer:
        c = command.retire_offer();
        break;
      default:
        return {{}, wrong_command(kCatalogStream), {}, {}};
    }
    return to_handler_decision(catalog::decide(static_cast<const catalog::Catalog&>(state), c));
  }
  void evolve(google::protobuf::Message& state, const google::protobuf::Message& event,
              uint64_t version, int64_t occurred_at_us) const override {
    auto e = to_variant<catalog::Event>(event);
    if (!e) std::abort();
    catalog::evolve(static_cast<catalog::Catalog&>(state), *e, version, occurred_at_us);
  }
};

constexpr char kDepositChaseTimer[] = "deposit-chase";

class OrderHandler final : public AggregateHandler {
 public:
  explicit OrderHandler(const FollowUpRules& rules) : rules_(rules) {}

  std::string stream_type() const override { return kOrderStream; }
  std::unique_ptr<google::protobuf::Message> new_state() const override {
    return std::make_unique<order::Order>();
  }
  bool owns(const std::string& stream_id) const override {
    return stream_id.rfind(order::kStreamPrefix, 0) == 0 &&
           order::is_order_id(std::string_view(stream_id).substr(strlen(order::kStreamPrefix)));
  }
  HandlerDecision decide(const google::protobuf::Message& state,
                         const events::CommandEnvelope& command,
                         DecideContext& context) const override {
    const auto& order = static_cast<const order::Order&>(state);
    order::Command c;
    switch (command.body_case()) {
      case events::CommandEnvelope::kCreateOrder:
        c = command.create_order();
        break;
      case events::CommandEnvelope::kAddItem:
        c = command.add_item();
        break;
      case events::CommandEnvelope::kChangeItem:
        c = command.change_item();
        break;
      case events::CommandEnvelope::kRemoveItem:
        c = command.remove_item();
        break;
      case events::CommandEnvelope::kSubmitOrder:
        c = command.submit_order();
        break;
      case events::CommandEnvelope::kCancelOrder:
        c = command.cancel_order();
        break;
      case events::CommandEnvelope::kRecordActivation:
        c = command.record_activation();
        break;
      case events::CommandEnvelope::kDecideApproval:
        c = command.decide_approval();
        break;
      case events::CommandEnvelope::kRecordPayment:
        c = command.record_payment();
        break;
      case events::CommandEnvelope::kTimerFired:
        if (command.timer_fired().name() == kDepositChaseTimer) {
          order::OpenDepositChase chase;
          chase.set_task_id("chase-" + order.id());
          c = std::move(chase);
        } else {
          order::ApprovalTimedOut timed_out;
          timed_out.set_approval_id(command.timer_fired().name());
          c = std::move(timed_out);
        }
        break;
      default:
        return {{}, wrong_command(kOrderStream), {}, {}};
    }
    auto catalog = context.catalog();
    if (!catalog.is_ok()) return {{}, std::nullopt, catalog.status(), {}};
    auto policies = context.policies();
    if (!policies.is_ok()) return {{}, std::nullopt, policies.status(), {}};
    // The customer decides in this partition (its id is the order's partition key), so its
    // product instances are exactly those of every order decided before this one.
    const std::string customer_id =
        order.version() == 0 ? command.create_order().customer_id() : order.customer_id();
    std::shared_ptr<const google::protobuf::Message> customer;
    if (!customer_id.empty()) {
      auto loaded = context.state(kCustomerStream, customer_id);
      if (!loaded.is_ok()) return {{}, std::nullopt, loaded.status(), {}};
      customer = std::move(loaded.value());
    }
    order::Context ctx;
    ctx.catalog = catalog->get();
    ctx.policies = policies->get();
    ctx.customer = static_cast<const customer::Customer*>(customer.get());
    ctx.order_id = command.stream_id().substr(strlen(order::kStreamPrefix));
    ctx.actor_id = command.actor().principal_id();
    ctx.now_us = timestamp_to_us(command.issued_at());
    if (command.body_case() == events::CommandEnvelope::kRecordActivation) {
      // A disconnect waits for its retention task (same partition: the customer's).
      for (const auto& item : order.items()) {
        if (item.action() != order::REMOVE) continue;
        auto loaded = context.state(kTaskStream, task::stream_id(retention_task_id(order, item)));
        if (!loaded.is_ok()) return {{}, std::nullopt, loaded.status(), {}};
        const auto& t = static_cast<const task::Task&>(**loaded);
        if (t.version() == 0) continue;
        ctx.retention[item.item_id()] = t.state() == task::OPEN   ? "OPEN"
                                        : t.state() == task::DONE ? t.outcome()
                                                                  : "CANCELLED";
      }
    }
    auto decided = order::decide(order, c, ctx);

    // Activated items change the customer's product instances, in the same atomic step.
    customer::ApplyProductChanges changes;
    for (const auto& event : decided.events) {
      if (const auto* activated = std::get_if<order::ItemActivated>(&event)) {
        if (auto change = order::product_change(order, *activated))
          *changes.add_changes() = std::move(*change);
      }
    }
    std::vector<events::CommandEnvelope> tasks =
        order_tasks(rules_, order, decided.events, command);
    if (auto balance = customer_balance(order, decided.events, command, ctx.now_us))
      tasks.push_back(std::move(*balance));
    HandlerDecision out = to_handler_decision(std::move(decided));
    for (auto& t : tasks) out.follow_ups.push_back(std::move(t));
    if (!changes.changes().empty()) {
      events::CommandEnvelope follow_up;
      follow_up.set_command_id(command.command_id() + "/product-instances");
      follow_up.set_stream_id(order.customer_id());
      follow_up.set_stream_type(kCustomerStream);
      follow_up.set_partition_key(order.customer_id());
      *follow_up.mutable_actor() = command.actor();
      follow_up.set_correlation_id(command.correlation_id());
      *follow_up.mutable_issued_at() = command.issued_at();
      *follow_up.mutable_apply_product_changes() = std::move(changes);
      out.follow_ups.push_back(std::move(follow_up));
    }
    return out;
  }
  std::vector<std::pair<int64_t, std::string>> timers(
      const google::protobuf::Message& state) const override {
    const auto& order = static_cast<const order::Order&>(state);
    auto due = order::due_approvals(order);
    if (order::deposit_unpaid(order) && order.deposit_chase_task().empty() &&
        order.has_submitted_at()) {
      due.emplace_back(timestamp_to_us(order.submitted_at()) + rules_.deposit_chase_after_us,
                       kDepositChaseTimer);
    }
    return due;
  }

 private:
  FollowUpRules rules_;

 public:
  void evolve(google::protobuf::Message& state, const google::protobuf::Message& event,
              uint64_t version, int64_t occurred_at_us) const override {
    auto e = to_variant<order::Event>(event);
    if (!e) std::abort();
    order::evolve(static_cast<order::Order&>(state), *e, version, occurred_at_us);
  }
};

class PolicyHandler final : public AggregateHandler {
 public:
  std::string stream_type() const override { return kPolicyStream; }
  std::unique_ptr<google::protobuf::Message> new_state() const override {
    return std::make_unique<approval::ApprovalPolicies>();
  }
  bool owns(const std::string& stream_id) const override {
    return stream_id == approval::kStreamId;
  }
  HandlerDecision decide(const google::protobuf::Message& state,
                         const events::CommandEnvelope& command, DecideContext&) const override {
    if (command.body_case() != events::CommandEnvelope::kPublishPolicy)
      return {{}, wrong_command(kPolicyStream), {}, {}};
    return to_handler_decision(approval::decide(
        static_cast<const approval::ApprovalPolicies&>(state), command.publish_policy()));
  }
  void evolve(google::protobuf::Message& state, const google::protobuf::Message& event,
              uint64_t version, int64_t occurred_at_us) const override {
    auto e = to_variant<approval::Event>(event);
    if (!e) std::abort();
    approval::evolve(static_cast<approval::ApprovalPolicies&>(state), *e, version, occurred_at_us);
  }
};

class TaskHandler final : public AggregateHandler {
 public:
  explicit TaskHandler(const FollowUpRules& rules) : rules_(rules) {}
  std::string stream_type() const override { return kTaskStream; }
  std::unique_ptr<google::protobuf::Message> new_state() const override {
    return std::make_unique<task::Task>();
  }
  bool owns(const std::string& stream_id) const override {
    return stream_id.rfind(task::kStreamPrefix, 0) == 0 &&
           task::is_task_id(std::string_view(stream_id).substr(strlen(task::kStreamPrefix)));
  }
  HandlerDecision decide(const google::protobuf::Message& state,
                         const events::CommandEnvelope& command, DecideContext&) const override {
    task::Command c;
    switch (command.body_case()) {
      case events::CommandEnvelope::kCreateTask:
        c = command.create_task();
        break;
      case events::CommandEnvelope::kCompleteTask:
        c = command.complete_task();
        break;
      case events::CommandEnvelope::kCancelTask:
        c = command.cancel_task();
        break;
      case events::CommandEnvelope::kTimerFired: {
        task::MarkOverdue overdue;
        overdue.set_escalate_to(rules_.overdue_escalate_to);
        c = std::move(overdue);
        break;
      }
      default:
        return {{}, wrong_command(kTaskStream), {}, {}};
    }
    const std::string id = command.stream_id().substr(strlen(task::kStreamPrefix));
    return to_handler_decision(
        task::decide(static_cast<const task::Task&>(state), id, command.actor().principal_id(), c));
  }
  std::vector<std::pair<int64_t, std::string>> timers(
      const google::protobuf::Message& state) const override {
    return task::due_timers(static_cast<const task::Task&>(state));
  }
  void evolve(google::protobuf::Message& state, const google::protobuf::Message& event,
              uint64_t version, int64_t occurred_at_us) const override {
    auto e = to_variant<task::Event>(event);
    if (!e) std::abort();
    task::evolve(static_cast<task::Task&>(state), *e, version, occurred_at_us);
  }

 private:
  FollowUpRules rules_;
};

class DigestHandler final : public AggregateHandler {
 public:
  std::string stream_type() const override { return kAuditStream; }
  std::unique_ptr<google::protobuf::Message> new_state() const override {
    return std::make_unique<audit::Digests>();
  }
  bool owns(const std::string& stream_id) const override { return stream_id == audit::kStreamId; }
  HandlerDecision decide(const google::protobuf::Message& state,
                         const events::CommandEnvelope& command, DecideContext&) const override {
    if (command.body_case() != events::CommandEnvelope::kRecordDigest)
      return {{}, wrong_command(kAuditStream), {}, {}};
    return to_handler_decision(
        audit::decide(static_cast<const audit::Digests&>(state), command.record_digest()));
  }
  void evolve(google::protobuf::Message& state, const google::protobuf::Message& event,
              uint64_t version, int64_t) const override {
    auto e = to_variant<audit::Event>(event);
    if (!e) std::abort();
    audit::evolve(static_cast<audit::Digests&>(state), *e, version);
  }
};

}  // namespace

HandlerRegistry::HandlerRegistry(const FollowUpRules& rules) {
  handlers_.emplace(kCustomerStream, std::make_unique<CustomerHandler>(rules));
  handlers_.emplace(kPrincipalStream, std::make_unique<PrincipalHandler>());
  handlers_.emplace(kCatalogStream, std::make_unique<CatalogHandler>());
  handlers_.emplace(kOrderStream, std::make_unique<OrderHandler>(rules));
  handlers_.emplace(kTaskStream, std::make_unique<TaskHandler>(rules));
  handlers_.emplace(kPolicyStream, std::make_unique<PolicyHandler>());
  handlers_.emplace(kAuditStream, std::make_unique<DigestHandler>());
}

const AggregateHandler* HandlerRegistry::find(const std::string& stream_type) const {
  auto it = handlers_.find(stream_type);
  return it == handlers_.end() ? nullptr : it->second.get();
}

void HandlerRegistry::add(std::unique_ptr<AggregateHandler> handler) {
  auto type = handler->stream_type();
  handlers_[type] = std::move(handler);
}

std::string principal_stream_id(const std::string& principal_id) {
  return kPrincipalPrefix + principal_id;
}

std::unique_ptr<google::protobuf::Message> unpack_event(const google::protobuf::Any& data) {
  std::string full_name;
  if (!google::protobuf::Any::ParseAnyTypeUrl(data.type_url(), &full_name)) return nullptr;
  const auto* descriptor =
      google::protobuf::DescriptorPool::generated_pool()->FindMessageTypeByName(full_name);
  if (descriptor == nullptr) return nullptr;
  const auto* prototype =
      google::protobuf::MessageFactory::generated_factory()->GetPrototype(descriptor);
  std::unique_ptr<google::protobuf::Message> message(prototype->New());
  if (!data.UnpackTo(message.get())) return nullptr;
  return message;
}

}  // namespace crm
