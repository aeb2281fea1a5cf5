// Approval policies (审批流程设置) as versioned data, and the chain they ask of an order.
// One aggregate for every policy ("approval:policies"), decided in one partition and read by
// all, like the catalog. Pure: no I/O, no clock.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "aggregates/rejection.h"
#include "approval.pb.h"
#include "customer.pb.h"
#include "order.pb.h"

namespace crm::approval {

using Command = std::variant<PublishPolicy>;
using Event = std::variant<PolicyPublished>;

inline constexpr char kStreamId[] = "approval:policies";
inline constexpr size_t kPoliciesMax = 1000;
inline constexpr size_t kRulesMax = 100;
inline constexpr size_t kStepsMax = 20;

bool is_policy_id(std::string_view text);  // 1–64 of [A-Za-z0-9._-]

// Publishing a policy identical to its latest version appends nothing.
Decision<Event> decide(const ApprovalPolicies& state, const Command& command);
void evolve(ApprovalPolicies& state, const Event& event, uint64_t version, int64_t occurred_at_us);

const PolicyHistory* find_policy(const ApprovalPolicies& state, std::string_view policy_id);

// Seconds in an ISO 8601 duration of days, hours, minutes and seconds ("P1D", "PT8H30M");
// nullopt when `text` is not one or is zero.
std::optional<int64_t> parse_duration_s(std::string_view text);

// The chain every matching rule of every policy's latest version asks of an order with this
// receipt: steps merged (one per role, mode and approvers, naming every rule that asked for
// it), ordered by level; and the policy versions that judged it ("id@v,id@v").
struct Chain {
  std::vector<order::ApprovalStep> steps;
  std::string policy_versions;
};
Chain chain_for(const ApprovalPolicies& policies, const order::TestedValues& tested);

// What the rules test, read from a receipt, the order's kind and its customer.
order::TestedValues tested_values(const order::Receipt& receipt, order::OrderKind kind,
                                  const customer::Customer* customer);

}  // namespace crm::approval
