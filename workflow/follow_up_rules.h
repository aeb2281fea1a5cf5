// Follow-up rules (自动化任务): events that open tasks. Each task's id is derived from its cause
// (the order, the item), so a repeated or replayed cause finds its task instead of opening a
// second one. The parameters are configuration.
#pragma once

#include <cstdint>
#include <string>

namespace crm {

struct FollowUpRules {
  int64_t revisit_after_us = 7 * 86'400'000'000LL;  // order completed → satisfaction revisit
  int64_t retention_due_us = 86'400'000'000LL;      // disconnect submitted → retention task
  int64_t deposit_chase_after_us = 48 * 3'600'000'000LL;  // deposit still unpaid → chase
  std::string overdue_escalate_to = "manager";            // who is asked when a task is overdue
  std::string fallback_role = "clerk";  // the role assigned when an order has no owner
};

}  // namespace crm
