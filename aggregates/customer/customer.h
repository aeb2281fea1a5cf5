// A customer (客户) from registration on: profile, level, credit level, owner, lifecycle stage
// and contacts. decide() never performs I/O and never reads a clock: the command carries
// everything, and evolve() folds events into state. Both are deterministic, so replays are
// identical.
#pragma once

#include <cstdint>
#include <string>
#include <variant>

#include "aggregates/rejection.h"
#include "customer.pb.h"

namespace crm::customer {

using Command = std::variant<RegisterCustomer, UpdateCustomer, AddContact, ApplyProductChanges,
                             SetOrderBalance>;
using Event = std::variant<CustomerRegistered, CustomerProfileChanged, CustomerLevelChanged,
                           CustomerCreditLevelChanged, CustomerOwnerChanged, CustomerStageChanged,
                           ContactAdded, ProductInstanceAdded, ProductInstanceChanged,
                           ProductInstanceEnded, OrderBalanceChanged>;

inline constexpr size_t kContactsMax = 200;

// `state.version() == 0` means no such customer yet; `customer_id` is the stream's id.
Decision<Event> decide(const Customer& state, const std::string& customer_id,
                       const Command& command);

// The active product instance `instance_id`, or null.
const ProductInstance* find_instance(const Customer& state, const std::string& instance_id);

// Applies one event; `version` and `occurred_at_us` come from its envelope.
void evolve(Customer& state, const Event& event, uint64_t version, int64_t occurred_at_us);

}  // namespace crm::customer
