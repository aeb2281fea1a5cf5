#include "workflow/follow_up_rules.h"

#include <map>

#include "aggregates/approval/policies.h"
#include "aggregates/validation.h"

namespace crm {
namespace {

// ±HH:MM, at most 14 hours either way.
bool parse_utc_offset(std::string_view text, int64_t* us) {
  if (text.size() != 6 || (text[0] != '+' && text[0] != '-') || text[3] != ':') return false;
  for (int i : {1, 2, 4, 5})
    if (text[i] < '0' || text[i] > '9') return false;
  const int hours = (text[1] - '0') * 10 + (text[2] - '0');
  const int minutes = (text[4] - '0') * 10 + (text[5] - '0');
  if (hours > 14 || minutes > 59 || (hours == 14 && minutes != 0)) return false;
  *us = (text[0] == '-' ? -1 : 1) * (hours * 60LL + minutes) * 60'000'000LL;
  return true;
}

}  // namespace

std::string parse_follow_up_rules(std::string_view text, FollowUpRules& rules) {
  FollowUpRules parsed = rules;
  const std::map<std::string, int64_t*, std::less<>> durations = {
      {"revisitAfter", &parsed.revisit_after_us},
      {"retentionDue", &parsed.retention_due_us},
      {"depositChaseAfter", &parsed.deposit_chase_after_us},
      {"depositChaseDue", &parsed.deposit_chase_due_us},
      {"decisionDue", &parsed.decision_due_us},
      {"vipRevisitEvery", &parsed.vip_revisit_every_us},
      {"vipRevisitDue", &parsed.vip_revisit_due_us},
  };
  const std::map<std::string, std::string*, std::less<>> roles = {
      {"overdueEscalateTo", &parsed.overdue_escalate_to},
      {"fallbackRole", &parsed.fallback_role},
  };
  while (!text.empty()) {
    const size_t comma = text.find(',');
    const std::string_view entry = text.substr(0, comma);
    text = comma == std::string_view::npos ? std::string_view() : text.substr(comma + 1);
    const size_t equals = entry.find('=');
    if (equals == std::string_view::npos)
      return "follow-up rule '" + std::string(entry) + "' must be name=value";
    const std::string_view name = entry.substr(0, equals);
    const std::string_view value = entry.substr(equals + 1);
    const std::string quoted =
        "follow-up rule " + std::string(name) + "='" + std::string(value) + "'";
    if (auto d = durations.find(name); d != durations.end()) {
      if (name == "vipRevisitEvery" && value == "none") {
        *d->second = 0;
        continue;
      }
      auto seconds = approval::parse_duration_s(value);
      if (!seconds) return quoted + ": expected an ISO 8601 duration such as P7D or PT48H";
      *d->second = *seconds * 1'000'000;
    } else if (auto r = roles.find(name); r != roles.end()) {
      if (!validation::is_identifier(value)) return quoted + ": expected a role";
      *r->second = std::string(value);
    } else if (name == "utcOffset") {
      if (!parse_utc_offset(value, &parsed.utc_offset_us))
        return quoted + ": expected an offset such as +08:00";
    } else {
      return "unknown follow-up rule '" + std::string(name) +
             "' (known: revisitAfter, retentionDue, depositChaseAfter, depositChaseDue, "
             "decisionDue, vipRevisitEvery, vipRevisitDue, utcOffset, overdueEscalateTo, "
             "fallbackRole)";
    }
  }
  rules = std::move(parsed);
  return "";
}

}  // namespace crm
