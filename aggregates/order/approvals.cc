// Approvals on an order: who may decide a step (role, delegation, four eyes, ALL and ANY),
// the chain advancing to approval, rejection or return, and time limits.
#include <algorithm>
#include <set>

#include "aggregates/approval/policies.h"
#include "aggregates/order/internal.h"
#include "events/codec.h"

namespace crm::order {
namespace internal {

bool same_step(const ApprovalStep& a, const ApprovalStep& b) {
  return a.role() == b.role() && a.mode() == b.mode() &&
         std::equal(a.approvers().begin(), a.approvers().end(), b.approvers().begin(),
                    b.approvers().end());
}

void ask(Approval& approval, int64_t now_us) {
  approval.set_state(Approval::PENDING);
  *approval.mutable_asked_at() = timestamp_from_us(now_us);
  if (auto limit = approval::parse_duration_s(approval.step().time_limit()))
    *approval.mutable_due_at() = timestamp_from_us(now_us + *limit * 1'000'000);
}

namespace {

const Approval* find_approval(const Order& order, const std::string& approval_id) {
  for (const auto& a : order.approvals())
    if (a.approval_id() == approval_id) return &a;
  return nullptr;
}

// Whoever decides on `a`: the role taken and on whose behalf; or why they may not.
struct Decider {
  std::string role;
  std::string on_behalf_of;
};

std::variant<Decider, Rejection> decider_for(const Order& state, const Approval& a,
                                             const DecideApproval& c, const Context& context) {
  auto forbidden = [](std::string rule, std::string message) {
    return Rejection{Rejection::Kind::kForbidden, std::move(rule), std::move(message), {}};
  };
  if (context.actor_id == state.requester()) {
    return forbidden("approval.own_order",
                     "Expected someone other than the requester to decide (four eyes): '" +
                         context.actor_id + "' submitted order '" + state.id() + "'");
  }
  auto decided_by = [&](const std::string& principal) {
    return std::any_of(a.decisions().begin(), a.decisions().end(), [&](const auto& d) {
      return d.principal_id() == principal || d.on_behalf_of() == principal;
    });
  };
  const auto& delegations = c.delegations();
  if (a.step().mode() == ApprovalStep::ALL) {
    const auto& approvers = a.step().approvers();
    auto is_approver = [&](const std::string& p) {
      return std::find(approvers.begin(), approvers.end(), p) != approvers.end();
    };
    // One person decides once per step, in their own name or for someone else.
    const bool actor_decided =
        std::any_of(a.decisions().begin(), a.decisions().end(),
                    [&](const auto& d) { return d.principal_id() == context.actor_id; });
    if (is_approver(context.actor_id)) {
      if (decided_by(context.actor_id) || actor_decided) {
        return Rejection{Rejection::Kind::kConflict,
                         "approval.already_decided",
                         "'" + context.actor_id + "' has already decided on " + a.approval_id(),
                         {}};
      }
      return Decider{a.asked_role(), ""};
    }
    for (const auto& d : delegations) {
      if (actor_decided) break;
      if (is_approver(d.principal_id()) && d.principal_id() != state.requester() &&
          !decided_by(d.principal_id()))
        return Decider{a.asked_role(), d.principal_id()};
    }
    if (actor_decided) {
      return Rejection{Rejection::Kind::kConflict,
                       "approval.already_decided",
                       "'" + context.actor_id + "' has already decided on " + a.approval_id(),
                       {}};
    }
    return forbidden("approval.not_an_approver",
                     "Expected one of the approvers named by " + a.approval_id() +
                         " (or their delegate), but '" + context.actor_id + "' is neither");
  }
  if (std::find(c.roles().begin(), c.roles().end(), a.asked_role()) != c.roles().end())
    return Decider{a.asked_role(), ""};
  for (const auto& d : delegations) {
    if (d.principal_id() != state.requester() &&
        std::find(d.roles().begin(), d.roles().end(), a.asked_role()) != d.roles().end())
      return Decider{a.asked_role(), d.principal_id()};
  }
  return forbidden("approval.role", "Expected a principal holding role '" + a.asked_role() +
                                        "' (or a delegate of one) to decide " + a.approval_id() +
                                        ", but '" + context.actor_id + "' is neither");
}

// The step after `approval_id` that waits, to be asked next; null when none.
const Approval* next_waiting(const Order& order, const std::string& approval_id) {
  bool after = false;
  for (const auto& a : order.approvals()) {
    if (after && a.state() == Approval::WAITING) return &a;
    if (a.approval_id() == approval_id) after = true;
  }
  return nullptr;
}

// After `approval_id` is done: the next waiting step is asked, or the order is approved.
void advance(std::vector<Event>& events, const Order& state, const std::string& approval_id,
             int64_t now_us) {
  if (const Approval* next = next_waiting(state, approval_id)) {
    Approval asked = *next;
    ask(asked, now_us);
    ApprovalAsked e;
    e.set_approval_id(asked.approval_id());
    e.set_role(asked.asked_role());
    if (asked.has_due_at()) *e.mutable_due_at() = asked.due_at();
    events.emplace_back(std::move(e));
    return;
  }
  OrderApproved approved;
  approved.set_reason("every approval step approved");
  events.emplace_back(std::move(approved));
}

}  // namespace

Outcome decide_approval(const Order& state, const DecideApproval& c, const Context& context) {
  if (state.version() == 0) return Outcome::refuse(order_not_found(context));
  const Approval* a = find_approval(state, c.approval_id());
  if (a == nullptr) {
    const bool past =
        std::any_of(state.past_approvals().begin(), state.past_approvals().end(),
                    [&](const auto& p) { return p.approval_id() == c.approval_id(); });
    if (!past)
      return Outcome::refuse(
          not_found("approval.not_found", "No approval '" + c.approval_id() + "'"));
    return Outcome::refuse(conflict(
        "approval.closed", "Approval '" + c.approval_id() + "' belongs to an earlier submission"));
  }
  if (a->state() != Approval::PENDING || state.state() != PENDING_APPROVAL) {
    return Outcome::refuse(
        conflict("approval.decided", "Expected approval '" + c.approval_id() +
                                         "' to be waiting for a decision, but it is " +
                                         Approval::State_Name(a->state())));
  }
  Violations v;
  if (c.decision() != ApprovalDecision::APPROVE && c.decision() != ApprovalDecision::REJECT &&
      c.decision() != ApprovalDecision::RETURN)
    v.add("decision", "approval.decision", "Expected decision APPROVE, REJECT or RETURN");
  else if (c.decision() != ApprovalDecision::APPROVE && validation::is_blank(c.comment()))
    v.add("comment", "approval.comment_required",
          "Expected a comment saying why the order is " +
              std::string(c.decision() == ApprovalDecision::REJECT ? "rejected" : "returned"));
  check_length(v, "comment", c.comment(), kReasonLengthMax);
  if (!v.empty()) return Outcome::refuse(std::move(v).to_rejection());
  auto who = decider_for(state, *a, c, context);
  if (auto* refused = std::get_if<Rejection>(&who)) return Outcome::refuse(std::move(*refused));
  const Decider& decider = std::get<Decider>(who);

  std::vector<Event> events;
  ApprovalDecided decided;
  decided.set_approval_id(a->approval_id());
  auto* d = decided.mutable_decision();
  d->set_principal_id(context.actor_id);
  d->set_role(decider.role);
  d->set_on_behalf_of(decider.on_behalf_of);
  d->set_decision(c.decision());
  d->set_comment(c.comment());
  *d->mutable_decided_at() = timestamp_from_us(context.now_us);
  bool done = true;
  if (c.decision() == ApprovalDecision::APPROVE && a->step().mode() == ApprovalStep::ALL) {
    std::set<std::string> approved;
    for (const auto& earlier : a->decisions())
      approved.insert(earlier.on_behalf_of().empty() ? earlier.principal_id()
                                                     : earlier.on_behalf_of());
    approved.insert(decider.on_behalf_of.empty() ? context.actor_id : decider.on_behalf_of);
    done = std::all_of(a->step().approvers().begin(), a->step().approvers().end(),
                       [&](const auto& p) { return approved.count(p) > 0; });
  }
  decided.set_step_done(done);
  events.emplace_back(std::move(decided));
  if (c.decision() == ApprovalDecision::REJECT) {
    OrderRejected rejected;
    rejected.set_approval_id(a->approval_id());
    rejected.set_comment(c.comment());
    events.emplace_back(std::move(rejected));
  } else if (c.decision() == ApprovalDecision::RETURN) {
    OrderReturned returned;
    returned.set_approval_id(a->approval_id());
    returned.set_comment(c.comment());
    events.emplace_back(std::move(returned));
  } else if (done) {
    advance(events, state, a->approval_id(), context.now_us);
  }
  return {std::move(events), std::nullopt};
}

// A step's time limit passed: escalate once to its escalation role, else reject. A timer that
// fires late (the step was decided, or escalated since) changes nothing.
Outcome approval_timed_out(const Order& state, const ApprovalTimedOut& c, const Context& context) {
  const Approval* a = find_approval(state, c.approval_id());
  if (a == nullptr || a->state() != Approval::PENDING || state.state() != PENDING_APPROVAL ||
      !a->has_due_at() || context.now_us < timestamp_to_us(a->due_at()))
    return {};
  if (a->step().on_timeout() == ApprovalStep::ESCALATE && a->escalations() == 0) {
    ApprovalEscalated e;
    e.set_approval_id(a->approval_id());
    e.set_from_role(a->asked_role());
    e.set_to_role(a->step().escalate_to());
    if (auto limit = approval::parse_duration_s(a->step().time_limit()))
      *e.mutable_due_at() = timestamp_from_us(context.now_us + *limit * 1'000'000);
    return {{std::move(e)}, std::nullopt};
  }
  OrderRejected rejected;
  rejected.set_approval_id(a->approval_id());
  rejected.set_comment("the time limit of approval " + a->approval_id() + " (" +
                       a->step().time_limit() + ") passed without a decision");
  rejected.set_timed_out(true);
  return {{std::move(rejected)}, std::nullopt};
}

}  // namespace internal

std::string order_of_approval(std::string_view approval_id) {
  // "<orderId>.<round>.<step>": the order id is all before the last two dots.
  const size_t step_dot = approval_id.rfind('.');
  if (step_dot == std::string_view::npos || step_dot == 0) return "";
  const size_t round_dot = approval_id.rfind('.', step_dot - 1);
  if (round_dot == std::string_view::npos || round_dot == 0) return "";
  auto digits = [](std::string_view t) {
    return !t.empty() &&
           std::all_of(t.begin(), t.end(), [](char c) { return c >= '0' && c <= '9'; });
  };
  if (!digits(approval_id.substr(round_dot + 1, step_dot - round_dot - 1)) ||
      !digits(approval_id.substr(step_dot + 1)))
    return "";
  std::string order_id(approval_id.substr(0, round_dot));
  return is_order_id(order_id) ? order_id : "";
}

std::vector<std::pair<int64_t, std::string>> due_approvals(const Order& order) {
  std::vector<std::pair<int64_t, std::string>> due;
  if (order.state() != PENDING_APPROVAL) return due;
  for (const auto& a : order.approvals())
    if (a.state() == Approval::PENDING && a.has_due_at())
      due.emplace_back(timestamp_to_us(a.due_at()), a.approval_id());
  return due;
}

}  // namespace crm::order
