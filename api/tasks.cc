// Follow-up task routes: open one by hand, read, list (by assignee, role, state, due time,
// overdue, customer, order), complete with an outcome, cancel. A task lives in the partition of
// its customer; commands on a task are routed by the customer read from its stored state.
#include <google/protobuf/util/time_util.h>

#include <algorithm>
#include <set>

#include "aggregates/task/task.h"
#include "api/server.h"
#include "events/codec.h"
#include "projections/tasks_view.h"
#include "task.pb.h"
#include "workflow/aggregate_handler.h"

namespace crm::api {
namespace {

constexpr char kTaskPath[] = R"(/v1/tasks/([A-Za-z0-9._-]{1,128}))";

task::Task view_of(const CommandOutcome& outcome) {
  task::Task view = static_cast<const task::Task&>(*outcome.state);
  view.set_position(format_position(outcome.position));
  return view;
}

std::string partition_of(const task::Task& t) {
  return t.customer_id().empty() ? t.id() : t.customer_id();
}

}  // namespace

void Server::add_task_routes() {
  route("POST", "/v1/tasks", Access::kTaskWrite, [this](Call& call) {
    task::CreateTask body;
    if (!parse_body(call, &body)) return;
    if (!body.rule().empty()) {
      return reply_problem(call, bad_request("Expected rule left out: the engine's follow-up "
                                             "rules set it",
                                             "rule", "task.read_only"));
    }
    std::string key;
    if (!read_idempotency_key(call, &key)) return;
    const std::string id =
        key.empty()
            ? ids_.next("task_")
            : "task_" + to_hex(sha256(call.caller.id + '\0' + "task" + '\0' + key)).substr(0, 32);
    // Data permissions: the task's customer, or its order's.
    const std::string about = body.customer_id().empty() && !body.order_id().empty()
                                  ? customer_of_order(body.order_id())
                                  : body.customer_id();
    if (!about.empty() && !check_customer_scope(call, about)) return;
    const std::string partition = body.customer_id().empty() ? id : body.customer_id();
    auto command = new_command(call, kTaskStream, task::stream_id(id), partition);
    *command.mutable_create_task() = std::move(body);
    auto outcome = execute(call, std::move(command));
    if (!outcome) return;
    call.response.set_header("Location", "/v1/tasks/" + id);
    reply(call, 201, view_of(*outcome));
  });

  auto load = [this](Call& call, const std::string& id) -> std::shared_ptr<const task::Task> {
    auto loaded = engine_.read(kTaskStream, task::stream_id(id));
    if (!loaded.is_ok()) {
      reply_problem(call, problem_from(loaded.status()));
      return nullptr;
    }
    if (loaded->version == 0) {
      reply_problem(call, not_found("No task '" + id + "'"));
      return nullptr;
    }
    return std::static_pointer_cast<const task::Task>(
        std::shared_ptr<const google::protobuf::Message>(loaded->state));
  };

  route("GET", std::string(kTaskPath) + "/history", Access::kTaskRead, [this](Call& call) {
    reply_history(call, task::stream_id(call.request.matches[1].str()));
  });

  route("GET", kTaskPath, Access::kTaskRead, [=, this](Call& call) {
    if (!check_min_position(call)) return;
    auto t = load(call, call.request.matches[1]);
    if (!t) return;
    call.response.set_header("ETag", "\"" + std::to_string(t->version()) + "\"");
    reply(call, 200, *t);
  });

  auto run = [=, this](Call& call, const std::function<void(events::CommandEnvelope&)>& fill) {
    auto t = load(call, call.request.matches[1]);
    if (!t) return;
    auto command = new_command(call, kTaskStream, task::stream_id(t->id()), partition_of(*t));
    fill(command);
    auto outcome = execute(call, std::move(command));
    if (!outcome) return;
    reply(call, 200, view_of(*outcome));
  };

  route("POST", std::string(kTaskPath) + ":complete", Access::kTaskWrite, [=, this](Call& call) {
    task::CompleteTask body;
    if (!call.request.body.empty() && !parse_body(call, &body)) return;
    run(call, [&](events::CommandEnvelope& c) { *c.mutable_complete_task() = std::move(body); });
  });

  route("POST", std::string(kTaskPath) + ":cancel", Access::kTaskWrite, [=, this](Call& call) {
    task::CancelTask body;
    if (!call.request.body.empty() && !parse_body(call, &body)) return;
    run(call, [&](events::CommandEnvelope& c) { *c.mutable_cancel_task() = std::move(body); });
  });

  route("GET", "/v1/tasks", Access::kTaskRead, [this](Call& call) {
    static const std::set<std::string> kKnown = {"assignee",  "role",       "state",   "dueBefore",
                                                 "overdue",   "customerId", "orderId", "pageSize",
                                                 "pageToken", "minPosition"};
    for (const auto& [name, value] : call.request.params) {
      if (!kKnown.count(name))
        return reply_problem(call, bad_request("Unknown query parameter '" + name + "'", name,
                                               "request.unknown_parameter"));
    }
    TaskFilter filter;
    filter.assignee = call.request.get_param_value("assignee");
    filter.role = call.request.get_param_value("role");
    filter.state = call.request.get_param_value("state");
    filter.customer_id = call.request.get_param_value("customerId");
    filter.order_id = call.request.get_param_value("orderId");
    // Data permissions: a scoped caller lists one customer's tasks, or its own.
    // Data permissions: a scoped caller lists one customer's tasks, a queue of one of its roles
    // (the tasks of customers outside its scope left out), or its own.
    bool filter_by_scope = false;
    if (!call.scope.all()) {
      if (!filter.customer_id.empty()) {
        if (!check_customer_scope(call, filter.customer_id)) return;
      } else if (!filter.role.empty() && call.caller.has_role(filter.role)) {
        filter_by_scope = true;
      } else if (filter.assignee.empty() || filter.assignee == call.caller.id) {
        filter.assignee = call.caller.id;
      } else {
        return reply_problem(
            call, forbidden("Principal '" + call.caller.id + "' sees " + call.scope.describe() +
                            ": list one customer's tasks with customerId, a "
                            "queue of its own roles with role=, or its own "
                            "with assignee=" +
                            call.caller.id));
      }
    }
    task::TaskState state;
    if (!filter.state.empty() &&
        (!task::TaskState_Parse(filter.state, &state) || state == task::TASK_STATE_UNSPECIFIED))
      return reply_problem(
          call, bad_request("Expected state OPEN, DONE or CANCELLED", "state", "request.enum"));
    if (call.request.has_param("dueBefore")) {
      google::protobuf::Timestamp due;
      if (!google::protobuf::util::TimeUtil::FromString(call.request.get_param_value("dueBefore"),
                                                        &due))
        return reply_problem(call, bad_request("Expected dueBefore as an RFC 3339 time",
                                               "dueBefore", "request.time"));
      filter.due_before_us = timestamp_to_us(due);
    }
    const std::string overdue = call.request.get_param_value("overdue");
    if (!overdue.empty() && overdue != "true" && overdue != "false")
      return reply_problem(
          call, bad_request("Expected overdue to be true or false", "overdue", "request.overdue"));
    filter.overdue_only = overdue == "true";
    auto page_request = read_page(call, 50, task::is_task_id);
    if (!page_request) return;
    if (!wait_for_min_position(call)) return;
    auto page = list_tasks(engine_.store(), filter, page_request->size, page_request->token);
    if (!page.is_ok()) return reply_problem(call, problem_from(page.status()));
    if (filter_by_scope) {  // a page may then hold fewer items; its token still goes on
      auto& items = *page->mutable_items();
      items.erase(std::remove_if(items.begin(), items.end(),
                                 [&](const task::Task& t) {
                                   const std::string customer =
                                       t.customer_id().empty() ? customer_of_order(t.order_id())
                                                               : t.customer_id();
                                   return !in_scope(call, customer);
                                 }),
                  items.end());
    }
    reply(call, 200, page.value());
  });
}

}  // namespace crm::api
