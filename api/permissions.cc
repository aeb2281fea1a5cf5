// Who may call what, on which customers: authentication and function permissions for every
// route, then data permissions (api/auth.h, CustomerScope) on the customer a path names, and the
// helpers the handlers use for the customers they name otherwise.
#include "aggregates/order/order.h"
#include "aggregates/task/task.h"
#include "api/server.h"
#include "customer.pb.h"
#include "order.pb.h"
#include "task.pb.h"
#include "workflow/aggregate_handler.h"

namespace crm::api {
namespace {

std::optional<std::string> bearer_token(const httplib::Request& request) {
  auto header = request.get_header_value("Authorization");
  constexpr std::string_view kScheme = "bearer ";
  if (header.size() <= kScheme.size()) return std::nullopt;
  for (size_t i = 0; i < kScheme.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(header[i])) != kScheme[i]) return std::nullopt;
  return header.substr(kScheme.size());
}

}  // namespace

void Server::authorize_and_run(Call& call, Access access, Resource resource, const Handler& fn) {
  const httplib::Request& request = call.request;
  auto token = bearer_token(request);
  if (!token) {
    call.response.set_header("WWW-Authenticate", "Bearer");
    return reply_problem(call, unauthorized("Expected an Authorization: Bearer <token> header"));
  }
  auto caller = principals_.authenticate(*token);
  if (!caller) {
    call.response.set_header("WWW-Authenticate", "Bearer error=\"invalid_token\"");
    return reply_problem(call, unauthorized("The bearer token is unknown or revoked"));
  }
  call.caller = std::move(*caller);
  if (!allows(call.caller, access)) {
    return reply_problem(call,
                         forbidden("Principal '" + call.caller.id + "' lacks a role allowed to " +
                                   request.method + " " + request.path));
  }
  call.acting_role = acting_role(call.caller, access);
  call.scope = customer_scope(call.caller, access);
  if (!call.scope.all() && resource != Resource::kNone) {
    const std::string id = request.matches[1];
    std::string customer_id = id;
    if (resource == Resource::kOrder) {
      customer_id = customer_of_order(id);
    } else if (resource == Resource::kTask) {
      auto loaded = engine_.read(kTaskStream, task::stream_id(id));
      if (!loaded.is_ok()) return reply_problem(call, problem_from(loaded.status()));
      const auto& t = static_cast<const task::Task&>(*loaded->state);
      customer_id = loaded->version == 0 ? "" : t.customer_id();
      if (customer_id.empty() && !t.order_id().empty())
        customer_id = customer_of_order(t.order_id());
      // A task about no customer is its assignee's (or its role queue's).
      if (loaded->version > 0 && customer_id.empty() && t.assignee() != call.caller.id &&
          (t.assignee_role().empty() || !call.caller.has_role(t.assignee_role()))) {
        return reply_problem(
            call, forbidden("Principal '" + call.caller.id + "' sees " + call.scope.describe() +
                            " and its own tasks; task '" + id + "' is not one of them"));
      }
    }
    if (!customer_id.empty() && !check_customer_scope(call, customer_id)) return;
  }
  fn(call);
}

std::string Server::customer_of_order(const std::string& order_id) {
  auto loaded = engine_.read(kOrderStream, order::stream_id(order_id));
  if (!loaded.is_ok() || loaded->version == 0) return "";
  return static_cast<const order::Order&>(*loaded->state).customer_id();
}

Result<std::shared_ptr<const customer::Customer>> Server::load_customer(
    const std::string& customer_id) {
  auto loaded = engine_.read(kCustomerStream, customer_id);
  if (!loaded.is_ok()) return loaded.status();
  if (loaded->version == 0) return std::shared_ptr<const customer::Customer>();
  return std::static_pointer_cast<const customer::Customer>(
      std::shared_ptr<const google::protobuf::Message>(loaded->state));
}

bool Server::in_scope(const Call& call, const std::string& customer_id) {
  if (call.scope.all() || customer_id.empty()) return true;
  auto c = load_customer(customer_id);
  return !c.is_ok() || !c.value() || call.scope.covers(c.value()->owner_id(), c.value()->team());
}

bool Server::approver_in_scope(Call& call, const std::string& customer_id, bool reply) {
  const auto& scope = call.scope;
  if (!scope.narrows_approvals() || customer_id.empty()) return true;
  auto c = load_customer(customer_id);
  if (!c.is_ok() || !c.value()) return true;
  if (c.value()->team().empty() || scope.covers(c.value()->owner_id(), c.value()->team()))
    return true;
  if (reply) {
    reply_problem(call, forbidden("Principal '" + call.caller.id + "' decides the approvals of " +
                                  scope.describe() + "; customer '" + customer_id +
                                  "' is of team '" + c.value()->team() + "'"));
  }
  return false;
}

bool Server::check_customer_scope(Call& call, const std::string& customer_id) {
  if (call.scope.all()) return true;
  auto c = load_customer(customer_id);
  if (!c.is_ok()) {
    reply_problem(call, problem_from(c.status()));
    return false;
  }
  if (!c.value() || call.scope.covers(c.value()->owner_id(), c.value()->team())) return true;
  reply_problem(call, forbidden("Principal '" + call.caller.id + "' may see and change " +
                                call.scope.describe() + "; customer '" + customer_id +
                                "' is not one of them"));
  return false;
}

std::string scope_refusal(const Call& call, customer::RegisterCustomer& body) {
  if (call.scope.all()) return "";
  if (body.owner_id().empty()) body.set_owner_id(call.caller.id);
  if (body.team().empty()) body.set_team(call.caller.team);
  if (call.scope.covers(body.owner_id(), body.team())) return "";
  return "Principal '" + call.caller.id + "' may register " + call.scope.describe() +
         ", not one owned by '" + body.owner_id() + "' of team '" + body.team() + "'";
}

bool Server::scope_new_customer(Call& call, customer::RegisterCustomer& body) {
  auto refusal = scope_refusal(call, body);
  if (refusal.empty()) return true;
  reply_problem(call, forbidden(refusal));
  return false;
}

}  // namespace crm::api
