// Approval routes: publish and read approval policies, the caller's inbox, decisions.
// A decision goes to the order's partition with the caller's roles and the delegations in force
// to the caller; the order judges them against the step (role, approvers, four eyes).
#include <google/protobuf/empty.pb.h>

#include <algorithm>
#include <set>

#include "aggregates/approval/policies.h"
#include "aggregates/order/order.h"
#include "api/server.h"
#include "approval.pb.h"
#include "events/codec.h"
#include "projections/approvals_view.h"
#include "projections/notifications_view.h"
#include "workflow/aggregate_handler.h"

namespace crm::api {
namespace {

constexpr char kPolicyPath[] = R"(/v1/approval-policies/([A-Za-z0-9._-]{1,64}))";
constexpr size_t kPageDefault = 50;

// The latest version (0) or `version` of a policy; nullopt when there is none.
std::optional<approval::ApprovalPolicy> policy_view(const approval::ApprovalPolicies& state,
                                                    const std::string& id, uint32_t version) {
  const auto* history = approval::find_policy(state, id);
  if (history == nullptr || history->versions().empty()) return std::nullopt;
  if (version == 0) return history->versions(history->versions_size() - 1);
  if (version > static_cast<uint32_t>(history->versions_size())) return std::nullopt;
  return history->versions(static_cast<int>(version) - 1);
}

bool is_page_token(std::string_view text) {
  return !text.empty() && text.size() <= 400 && std::all_of(text.begin(), text.end(), [](char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
  });
}

}  // namespace

void Server::add_approval_routes() {
  auto load_policies = [this](Call& call) -> std::shared_ptr<const approval::ApprovalPolicies> {
    auto loaded = engine_.reference().policies();
    if (!loaded.is_ok()) {
      reply_problem(call, problem_from(loaded.status()));
      return nullptr;
    }
    return std::move(loaded.value());
  };

  route("PUT", kPolicyPath, Access::kPolicyWrite, [=, this](Call& call) {
    const std::string id = call.request.matches[1];
    approval::ApprovalPolicy body;
    if (!parse_body(call, &body)) return;
    if (!body.policy_id().empty() && body.policy_id() != id) {
      return reply_problem(call,
                           bad_request("Expected policyId to be absent or '" + id +
                                           "' as in the path, but got '" + body.policy_id() + "'",
                                       "policyId", "policy.id_mismatch"));
    }
    body.set_policy_id(id);
    std::optional<uint64_t> expected;
    if (!read_if_match(call, &expected)) return;
    auto command = new_command(call, kPolicyStream, approval::kStreamId, approval::kStreamId);
    auto* publish = command.mutable_publish_policy();
    if (expected) publish->set_expected_policy_version(static_cast<uint32_t>(*expected));
    *publish->mutable_policy() = std::move(body);
    auto outcome = execute(call, std::move(command), IfMatch::kInCommand);
    if (!outcome) return;
    auto view = policy_view(static_cast<const approval::ApprovalPolicies&>(*outcome->state), id, 0);
    if (!view) return reply_problem(call, problem_from(Status::internal("policy missing")));
    view->set_position(format_position(outcome->position));
    call.response.headers.erase("ETag");
    call.response.set_header("ETag", "\"" + std::to_string(view->version()) + "\"");
    call.response.set_header("Location", "/v1/approval-policies/" + id);
    const bool created = view->version() == 1 && (!outcome->events.empty() || outcome->repeated);
    reply(call, created ? 201 : 200, *view);
  });

  route("GET", kPolicyPath, Access::kPolicyRead, [=, this](Call& call) {
    if (!check_min_position(call)) return;
    const std::string id = call.request.matches[1];
    uint64_t version = 0;
    if (call.request.has_param("version") &&
        !parse_count(call.request.get_param_value("version"), 1, UINT32_MAX, &version)) {
      return reply_problem(call, bad_request("Expected version to be a policy version (1 or more)",
                                             "version", "request.version"));
    }
    auto state = load_policies(call);
    if (!state) return;
    auto view = policy_view(*state, id, static_cast<uint32_t>(version));
    if (!view)
      return reply_problem(call,
                           not_found("No policy '" + id + "'" +
                                     (version ? " at version " + std::to_string(version) : "")));
    call.response.set_header("ETag", "\"" + std::to_string(view->version()) + "\"");
    reply(call, 200, *view);
  });

  route("GET", "/v1/approval-policies", Access::kPolicyRead, [=, this](Call& call) {
    if (!check_min_position(call)) return;
    auto page_request = read_page(call, kPageDefault, approval::is_policy_id);
    if (!page_request) return;
    auto state = load_policies(call);
    if (!state) return;
    approval::PolicyList page;
    for (const auto& history : state->policies()) {
      if (!page_request->token.empty() && history.policy_id() <= page_request->token) continue;
      if (static_cast<size_t>(page.items_size()) == page_request->size) {
        page.set_next_page_token(page.items(page.items_size() - 1).policy_id());
        break;
      }
      *page.add_items() = history.versions(history.versions_size() - 1);
    }
    reply(call, 200, page);
  });

  // The caller's inbox: steps asked of the caller's roles or naming the caller, and those of
  // whoever delegated to the caller (in the delegation's window), oldest first.
  route("GET", "/v1/approvals", Access::kApprovals, [this](Call& call) {
    static const std::set<std::string> kKnown = {"state", "pageSize", "pageToken", "minPosition"};
    for (const auto& [name, value] : call.request.params) {
      if (!kKnown.count(name))
        return reply_problem(call, bad_request("Unknown query parameter '" + name +
                                                   "'; expected state, pageSize, pageToken or "
                                                   "minPosition",
                                               name, "request.unknown_parameter"));
    }
    const std::string state = call.request.get_param_value("state");
    if (!state.empty() && state != "PENDING") {
      return reply_problem(call, bad_request("Expected state PENDING (the inbox lists the steps "
                                             "waiting for a decision)",
                                             "state", "request.enum"));
    }
    auto page_request = read_page(call, kPageDefault, is_page_token);
    if (!page_request) return;
    if (!wait_for_min_position(call)) return;
    const int64_t now_us = clock_.now_us();
    std::vector<std::string> roles = call.caller.roles;
    std::vector<std::string> principals = {call.caller.id};
    for (const auto& d : principals_.delegators_of(call.caller.id, now_us)) {
      principals.push_back(d.principal_id);
      roles.insert(roles.end(), d.roles.begin(), d.roles.end());
    }
    std::sort(roles.begin(), roles.end());
    roles.erase(std::unique(roles.begin(), roles.end()), roles.end());
    auto inbox = list_inbox(engine_.store(), call.caller.id, roles, principals, page_request->size,
                            page_request->token, now_us);
    if (!inbox.is_ok()) return reply_problem(call, problem_from(inbox.status()));
    // Data permissions: a manager with a team sees its team's customers' steps. A page may then
    // hold fewer items; its token still goes on.
    auto& items = *inbox->mutable_items();
    items.erase(std::remove_if(items.begin(), items.end(),
                               [&](const auto& item) {
                                 return !approver_in_scope(call, item.customer_id(), false);
                               }),
                items.end());
    reply(call, 200, inbox.value());
  });

  // The caller's notification records: decisions on the orders it submitted, and escalations
  // away from its roles; newest first.
  route("GET", "/v1/notifications", Access::kApprovals, [this](Call& call) {
    for (const auto& [name, value] : call.request.params) {
      if (name != "pageSize" && name != "minPosition")
        return reply_problem(call, bad_request("Unknown query parameter '" + name +
                                                   "'; expected pageSize or minPosition",
                                               name, "request.unknown_parameter"));
    }
    auto page_request = read_page(call, kPageDefault, is_page_token);
    if (!page_request) return;
    if (!wait_for_min_position(call)) return;
    std::vector<std::string> recipients = {call.caller.id};
    for (const auto& role : call.caller.roles) recipients.push_back("role:" + role);
    auto list = list_notifications(engine_.store(), recipients, page_request->size);
    if (!list.is_ok()) return reply_problem(call, problem_from(list.status()));
    // Only a manager with a team has notifications filtered (each costs an order read).
    if (call.scope.narrows_approvals()) {
      auto& items = *list->mutable_items();
      items.erase(std::remove_if(items.begin(), items.end(),
                                 [&](const auto& item) {
                                   return !approver_in_scope(
                                       call, customer_of_order(item.order_id()), false);
                                 }),
                  items.end());
    }
    reply(call, 200, list.value());
  });

  route("POST", R"(/v1/approvals/([A-Za-z0-9._-]{1,80}):decide)", Access::kApprovals,
        [this](Call& call) {
          const std::string approval_id = call.request.matches[1];
          order::DecideApproval body;
          if (!parse_body(call, &body)) return;
          if (!body.approval_id().empty() && body.approval_id() != approval_id) {
            return reply_problem(call, bad_request("Expected approvalId to be absent or '" +
                                                       approval_id + "' as in the path",
                                                   "approvalId", "approval.id_mismatch"));
          }
          if (!body.roles().empty() || !body.delegations().empty()) {
            return reply_problem(call, bad_request("Expected roles and delegations left out: "
                                                   "the engine sets them from your principal",
                                                   "roles", "approval.read_only"));
          }
          const std::string order_id = order::order_of_approval(approval_id);
          if (order_id.empty())
            return reply_problem(call, not_found("No approval '" + approval_id + "'"));
          auto loaded = engine_.read(kOrderStream, order::stream_id(order_id));
          if (!loaded.is_ok()) return reply_problem(call, problem_from(loaded.status()));
          if (loaded->version == 0)
            return reply_problem(call, not_found("No approval '" + approval_id + "'"));
          const auto& current = static_cast<const order::Order&>(*loaded->state);
          if (!approver_in_scope(call, current.customer_id(), true)) return;
          body.set_approval_id(approval_id);
          for (const auto& role : call.caller.roles) body.add_roles(role);
          for (const auto& d : principals_.delegators_of(call.caller.id, clock_.now_us())) {
            auto* delegation = body.add_delegations();
            delegation->set_principal_id(d.principal_id);
            for (const auto& role : d.roles) delegation->add_roles(role);
          }
          auto command =
              new_command(call, kOrderStream, order::stream_id(order_id), current.customer_id());
          *command.mutable_decide_approval() = std::move(body);
          auto outcome = execute(call, std::move(command));
          if (!outcome) return;
          order::Order view = static_cast<const order::Order&>(*outcome->state);
          view.set_position(format_position(outcome->position));
          reply(call, 200, view);
        });
}

}  // namespace crm::api
