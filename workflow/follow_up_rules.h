// Follow-up rules (自动化任务): events and reminders that open tasks. Each task's id is derived
// from its cause (the order, the item, the contact and year), so a repeated or replayed cause
// finds its task instead of opening a second one. The parameters are configuration
// (`crm serve --follow-up-rules`).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace crm {

struct FollowUpRules {
  int64_t revisit_after_us = 7 * 86'400'000'000LL;  // order completed → satisfaction revisit
  int64_t retention_due_us = 86'400'000'000LL;      // disconnect submitted → retention task
  int64_t deposit_chase_after_us = 48 * 3'600'000'000LL;  // deposit still unpaid → chase
  int64_t deposit_chase_due_us = 86'400'000'000LL;        // … the chase is due a day later
  int64_t decision_due_us = 86'400'000'000LL;  // approval decided → the requester's task
  int64_t vip_revisit_every_us = 30 * 86'400'000'000LL;  // VIP customers: periodic revisit
  int64_t vip_revisit_due_us = 7 * 86'400'000'000LL;     // … due a week after it opens
  int64_t utc_offset_us = 0;                             // the local day of birthdays: UTC + this
  std::string overdue_escalate_to = "manager";           // who is asked when a task is overdue
  std::string fallback_role = "clerk";                   // the role assigned when there is no owner
};

// Reads "name=value,name=value" into `rules` (names as in the table of docs/user-guide.md:
// revisitAfter, retentionDue, depositChaseAfter, depositChaseDue, decisionDue, vipRevisitEvery
// ("none": no periodic revisits), vipRevisitDue as ISO 8601 durations; utcOffset as ±HH:MM;
// overdueEscalateTo and fallbackRole as roles). Returns "" or a sentence naming the bad entry;
// `rules` is unchanged then.
std::string parse_follow_up_rules(std::string_view text, FollowUpRules& rules);

}  // namespace crm
