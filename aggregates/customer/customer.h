// A customer (客户) from registration on: profile, level, credit level, owner, lifecycle stage
// and contacts. decide() never performs I/O and never reads a clock: the command carries
// everything, and evolve() folds events into state. Both are deterministic, so replays are
// identical.
#pragma once

#include <cstdint>
#include <string>
#include <variant>
#include <vector>

#include "aggregates/rejection.h"
#include "customer.pb.h"

namespace crm::customer {

using Command = std::variant<RegisterCustomer, UpdateCustomer, AddContact, ApplyProductChanges,
                             SetOrderBalance, OpenBirthdayGreeting, OpenVipRevisit>;
using Event =
    std::variant<CustomerRegistered, CustomerProfileChanged, CustomerLevelChanged,
                 CustomerCreditLevelChanged, CustomerOwnerChanged, CustomerStageChanged,
                 ContactAdded, ProductInstanceAdded, ProductInstanceChanged, ProductInstanceEnded,
                 OrderBalanceChanged, BirthdayGreetingOpened, VipRevisitOpened>;

inline constexpr size_t kContactsMax = 200;

// `state.version() == 0` means no such customer yet; `customer_id` is the stream's id.
Decision<Event> decide(const Customer& state, const std::string& customer_id,
                       const Command& command);

// The active product instance `instance_id`, or null.
const ProductInstance* find_instance(const Customer& state, const std::string& instance_id);

// Reminders (the follow-up rules on a customer): when each is next due. A contact's birthday
// greeting is due at the start of its next birthday (local time: UTC + `utc_offset_us`) not yet
// greeted and not before the contact was added (a 02-29 birthday falls on 02-28 in other
// years); a VIP customer's revisit is due `vip_every_us` after the customer became VIP or after
// the last revisit, whichever is later.
struct ReminderRules {
  int64_t vip_every_us = 0;  // 0: no periodic VIP revisits
  int64_t utc_offset_us = 0;
};
struct Reminder {
  int64_t due_us;
  std::string name;        // "vip-revisit" or "birthday/<contact id>"
  std::string contact_id;  // birthday: the contact
  int32_t year = 0;        // birthday: the year greeted
};
inline constexpr char kVipRevisitReminder[] = "vip-revisit";
inline constexpr char kBirthdayReminderPrefix[] = "birthday/";
std::vector<Reminder> reminders(const Customer& state, const ReminderRules& rules);

// Applies one event; `version` and `occurred_at_us` come from its envelope.
void evolve(Customer& state, const Event& event, uint64_t version, int64_t occurred_at_us);

}  // namespace crm::customer
