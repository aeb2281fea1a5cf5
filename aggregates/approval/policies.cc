#include "aggregates/approval/policies.h"

#include <algorithm>
#include <iterator>
#include <map>
#include <set>

#include "aggregates/catalog/catalog.h"
#include "aggregates/money.h"
#include "aggregates/validation.h"
#include "events/codec.h"

namespace crm::approval {
namespace {

using Outcome = Decision<Event>;
using order::ApprovalStep;

std::string at(const std::string& field, int index) {
  return field + "[" + std::to_string(index) + "]";
}

template <typename List, typename Value>
bool contains(const List& list, const Value& value) {
  return std::find(list.begin(), list.end(), value) != list.end();
}

// Checks a step and fills its defaults (mode ANY; on timeout ESCALATE with escalateTo, else
// REJECT).
void check_step(Violations& v, const std::string& field, ApprovalStep& step) {
  if (!validation::is_identifier(step.role()))
    v.add(field + ".role", "policy.step_role", "Expected the role that approves, e.g. manager");
  if (!ApprovalStep::Mode_IsValid(step.mode()))
    v.add(field + ".mode", "policy.step_mode", "Expected mode ANY or ALL");
  if (step.mode() == ApprovalStep::MODE_UNSPECIFIED) step.set_mode(ApprovalStep::ANY);
  if (step.mode() == ApprovalStep::ALL && step.approvers().empty()) {
    v.add(field + ".approvers", "policy.step_approvers",
          "Expected the principals who must each approve a step in mode ALL");
  }
  if (step.mode() == ApprovalStep::ANY && !step.approvers().empty()) {
    v.add(field + ".approvers", "policy.step_approvers",
          "Expected approvers only in mode ALL: in mode ANY whoever holds the role decides");
  }
  for (int i = 0; i < step.approvers_size(); ++i) {
    if (!validation::is_identifier(step.approvers(i)))
      v.add(at(field + ".approvers", i), "policy.step_approvers", "Expected a principal id");
  }
  if (!step.time_limit().empty() && !parse_duration_s(step.time_limit())) {
    v.add(field + ".timeLimit", "policy.time_limit",
          "Expected timeLimit as an ISO 8601 duration like PT8H or P2D, but got '" +
              step.time_limit() + "'");
  }
  if (!ApprovalStep::OnTimeout_IsValid(step.on_timeout()))
    v.add(field + ".onTimeout", "policy.on_timeout", "Expected onTimeout ESCALATE or REJECT");
  if (step.on_timeout() == ApprovalStep::ON_TIMEOUT_UNSPECIFIED) {
    step.set_on_timeout(step.escalate_to().empty() ? ApprovalStep::REJECT : ApprovalStep::ESCALATE);
  }
  if (step.on_timeout() == ApprovalStep::ESCALATE && step.mode() == ApprovalStep::ALL)
    v.add(field + ".onTimeout", "policy.escalate_all",
          "Expected onTimeout REJECT in mode ALL: named approvers cannot be escalated to a role");
  if (step.on_timeout() == ApprovalStep::ESCALATE && !validation::is_identifier(step.escalate_to()))
    v.add(field + ".escalateTo", "policy.escalate_to",
          "Expected escalateTo, the role asked when the time limit passes");
  if (step.on_timeout() == ApprovalStep::REJECT && !step.escalate_to().empty())
    v.add(field + ".escalateTo", "policy.escalate_to", "Expected no escalateTo with REJECT");
  if (step.time_limit().empty() && !step.escalate_to().empty())
    v.add(field + ".timeLimit", "policy.time_limit", "Expected a timeLimit with escalateTo");
  if (!step.rule().empty() || !step.rules().empty())
    v.add(field + ".rule", "policy.read_only", "Expected rule and rules to be left out");
}

Outcome publish(const ApprovalPolicies& state, const PublishPolicy& c) {
  ApprovalPolicy policy = c.policy();
  Violations v;
  if (!is_policy_id(policy.policy_id()))
    v.add("policyId", "policy.id_format", "Expected a policy id of 1–64 letters, digits or . _ -");
  if (policy.version() != 0 || policy.has_published_at() || !policy.position().empty())
    v.add("version", "policy.read_only", "Expected version, publishedAt and position left out");
  if (policy.rules().empty()) v.add("rules", "policy.rules_required", "Expected at least one rule");
  if (static_cast<size_t>(policy.rules_size()) > kRulesMax)
    v.add("rules", "policy.rules_max", "Expected at most " + std::to_string(kRulesMax) + " rules");
  std::set<std::string> names;
  for (int r = 0; r < policy.rules_size(); ++r) {
    PolicyRule& rule = *policy.mutable_rules(r);
    const std::string field = at("rules", r);
    if (validation::is_blank(rule.name()))
      v.add(field + ".name", "policy.rule_name", "Expected a rule name");
    else if (!names.insert(rule.name()).second)
      v.add(field + ".name", "policy.rule_name",
            "Expected unique rule names: '" + rule.name() + "' repeats");
    const Condition& when = rule.when();
    if (when.min_discount_percent() > 100)
      v.add(field + ".when.minDiscountPercent", "policy.min_discount_percent",
            "Expected minDiscountPercent between 0 and 100");
    if (when.has_min_total() &&
        (when.min_total().amount_minor() < 0 || when.min_total().amount_minor() > kAmountMax ||
         !validation::is_currency(when.min_total().currency())))
      v.add(field + ".when.minTotal", "policy.min_total",
            "Expected minTotal as Money of zero or more with an ISO 4217 currency");
    if (rule.steps().empty())
      v.add(field + ".steps", "policy.steps_required", "Expected at least one step");
    if (static_cast<size_t>(rule.steps_size()) > kStepsMax)
      v.add(field + ".steps", "policy.steps_max",
            "Expected at most " + std::to_string(kStepsMax) + " steps");
    for (int s = 0; s < rule.steps_size(); ++s)
      check_step(v, at(field + ".steps", s), *rule.mutable_steps(s));
  }
  if (!v.empty()) return Outcome::refuse(std::move(v).to_rejection());

  const PolicyHistory* history = find_policy(state, policy.policy_id());
  const uint32_t latest = history == nullptr ? 0 : history->versions_size();
  if (c.has_expected_policy_version() && c.expected_policy_version() != latest) {
    return Outcome::refuse({Rejection::Kind::kVersionMismatch,
                            "policy.version_mismatch",
                            "Expected policy '" + policy.policy_id() + "' at version " +
                                std::to_string(c.expected_policy_version()) + ", but it is at " +
                                std::to_string(latest),
                            {}});
  }
  if (history == nullptr && static_cast<size_t>(state.policies_size()) >= kPoliciesMax) {
    return Outcome::refuse({Rejection::Kind::kConflict,
                            "policy.policies_max",
                            "Expected at most " + std::to_string(kPoliciesMax) + " policies",
                            {}});
  }
  if (history != nullptr) {
    ApprovalPolicy last = history->versions(history->versions_size() - 1);
    last.clear_version();
    last.clear_published_at();
    if (last.SerializeAsString() == policy.SerializeAsString()) return {};  // nothing new
  }
  policy.set_version(latest + 1);
  PolicyPublished e;
  *e.mutable_policy() = std::move(policy);
  return {{std::move(e)}, std::nullopt};
}

bool matches(const Condition& when, const order::TestedValues& t) {
  if (when.min_discount_percent() > 0 &&
      t.discount_basis_points() < when.min_discount_percent() * 100)
    return false;
  if (when.has_min_total()) {
    bool reached = false;
    for (const auto& total : t.totals())
      if (total.currency() == when.min_total().currency() &&
          total.amount_minor() >= when.min_total().amount_minor())
        reached = true;
    if (!reached) return false;
  }
  if (when.non_standard_price() && !t.non_standard_price()) return false;
  if (!when.credit_levels().empty() && !contains(when.credit_levels(), t.credit_level()))
    return false;
  if (!when.order_kinds().empty() && !contains(when.order_kinds(), t.kind())) return false;
  if (!when.customer_levels().empty() && !contains(when.customer_levels(), t.customer_level()))
    return false;
  return true;
}

}  // namespace

bool is_policy_id(std::string_view text) { return catalog::is_offer_id(text); }

const PolicyHistory* find_policy(const ApprovalPolicies& state, std::string_view policy_id) {
  for (const auto& history : state.policies())
    if (history.policy_id() == policy_id) return &history;
  return nullptr;
}

Decision<Event> decide(const ApprovalPolicies& state, const Command& command) {
  return publish(state, std::get<PublishPolicy>(command));
}

void evolve(ApprovalPolicies& state, const Event& event, uint64_t version, int64_t occurred_at_us) {
  const auto& e = std::get<PolicyPublished>(event);
  PolicyHistory* history = nullptr;
  for (auto& h : *state.mutable_policies())
    if (h.policy_id() == e.policy().policy_id()) history = &h;
  if (history == nullptr) {
    history = state.add_policies();
    history->set_policy_id(e.policy().policy_id());
    std::sort(state.mutable_policies()->begin(), state.mutable_policies()->end(),
              [](const auto& a, const auto& b) { return a.policy_id() < b.policy_id(); });
    history = const_cast<PolicyHistory*>(find_policy(state, e.policy().policy_id()));
  }
  ApprovalPolicy* added = history->add_versions();
  *added = e.policy();
  *added->mutable_published_at() = timestamp_from_us(occurred_at_us);
  state.set_version(static_cast<uint32_t>(version));
}

std::optional<int64_t> parse_duration_s(std::string_view text) {
  // P[nD][T[nH][nM][nS]], each unit at most once and in this order; at most kDurationMax.
  constexpr int64_t kDurationMax = 366 * 86400;
  if (text.size() < 3 || text[0] != 'P') return std::nullopt;
  struct Unit {
    char letter;
    bool in_time;
    int64_t seconds;
  };
  static constexpr Unit kUnits[] = {
      {'D', false, 86400}, {'H', true, 3600}, {'M', true, 60}, {'S', true, 1}};
  size_t next_unit = 0;
  bool in_time = false, any = false;
  int64_t total = 0, number = -1;
  for (size_t i = 1; i < text.size(); ++i) {
    const char c = text[i];
    if (c == 'T') {
      if (in_time || number >= 0) return std::nullopt;
      in_time = true;
    } else if (c >= '0' && c <= '9') {
      number = (number < 0 ? 0 : number) * 10 + (c - '0');
      if (number > kDurationMax) return std::nullopt;
    } else {
      if (number < 0) return std::nullopt;
      while (next_unit < std::size(kUnits) && kUnits[next_unit].letter != c) ++next_unit;
      if (next_unit == std::size(kUnits) || kUnits[next_unit].in_time != in_time)
        return std::nullopt;
      total += number * kUnits[next_unit].seconds;
      if (total > kDurationMax) return std::nullopt;
      ++next_unit;
      number = -1;
      any = true;
    }
  }
  if (number >= 0 || !any || total == 0) return std::nullopt;
  return total;
}

Chain chain_for(const ApprovalPolicies& policies, const order::TestedValues& tested) {
  Chain chain;
  std::map<std::string, size_t> by_key;  // role, mode, approvers -> index in steps
  for (const auto& history : policies.policies()) {
    const ApprovalPolicy& policy = history.versions(history.versions_size() - 1);
    const std::string version = policy.policy_id() + "@" + std::to_string(policy.version());
    chain.policy_versions += (chain.policy_versions.empty() ? "" : ",") + version;
    for (const auto& rule : policy.rules()) {
      if (!matches(rule.when(), tested)) continue;
      const std::string rule_name = version + "/" + rule.name();
      for (int s = 0; s < rule.steps_size(); ++s) {
        ApprovalStep step = rule.steps(s);
        if (step.level() == 0) step.set_level(static_cast<uint32_t>(s + 1));
        std::string key = step.role() + '\0' + ApprovalStep::Mode_Name(step.mode());
        for (const auto& a : step.approvers()) key += '\0' + a;
        auto [it, added] = by_key.emplace(key, chain.steps.size());
        if (added) {
          step.set_rule(rule_name);
          step.add_rules(rule_name);
          chain.steps.push_back(std::move(step));
        } else {
          ApprovalStep& merged = chain.steps[it->second];
          merged.add_rules(rule_name);
          merged.set_level(std::min(merged.level(), step.level()));
        }
      }
    }
  }
  std::stable_sort(chain.steps.begin(), chain.steps.end(),
                   [](const auto& a, const auto& b) { return a.level() < b.level(); });
  return chain;
}

order::TestedValues tested_values(const order::Receipt& receipt, order::OrderKind kind,
                                  const customer::Customer* customer) {
  order::TestedValues t;
  t.set_discount_basis_points(receipt.discount_basis_points());
  for (const auto& total : receipt.totals()) {
    auto* m = t.add_totals();
    m->set_currency(total.currency());
    m->set_amount_minor(total.one_time().amount_minor() + total.recurring().amount_minor());
  }
  t.set_non_standard_price(receipt.non_standard_price());
  t.set_kind(kind);
  if (customer != nullptr) {
    t.set_credit_level(customer->credit_level());
    t.set_customer_level(customer->level());
  }
  return t;
}

}  // namespace crm::approval
