#include "aggregates/task/task.h"

#include <algorithm>
#include <cctype>

#include "aggregates/overloaded.h"
#include "aggregates/validation.h"
#include "events/codec.h"

namespace crm::task {
namespace {

using Outcome = Decision<Event>;

constexpr size_t kSubjectLengthMax = 200;
constexpr size_t kTextLengthMax = 1000;

void check_length(Violations& v, const std::string& field, const std::string& text, size_t max) {
  if (validation::utf8_length(text) > max) {
    v.add(field, "task." + field + "_too_long",
          "Expected " + field + " of at most " + std::to_string(max) + " characters");
  }
}

Rejection not_found(const std::string& id) {
  return {Rejection::Kind::kNotFound, "task.not_found", "No task '" + id + "'", {}};
}

Rejection not_open(const Task& state, const std::string& what) {
  return {Rejection::Kind::kConflict,
          "task.not_open",
          "Expected an OPEN task to " + what + ", but it is " + TaskState_Name(state.state()),
          {}};
}

Outcome create(const Task& state, const std::string& id, const std::string& actor,
               const CreateTask& c) {
  if (state.version() != 0) return {};  // opened before: a repeated cause finds its task
  Violations v;
  if (validation::is_blank(c.subject()))
    v.add("subject", "task.subject_required", "Expected a subject");
  check_length(v, "subject", c.subject(), kSubjectLengthMax);
  check_length(v, "reason", c.reason(), kTextLengthMax);
  if (!c.has_due_at()) v.add("dueAt", "task.due_required", "Expected dueAt, when it is due");
  if (c.assignee().empty() && c.assignee_role().empty())
    v.add("assignee", "task.assignee_required", "Expected an assignee or an assigneeRole");
  for (const auto& [field, value] :
       {std::pair{"assignee", c.assignee()}, std::pair{"assigneeRole", c.assignee_role()},
        std::pair{"customerId", c.customer_id()}, std::pair{"orderId", c.order_id()}}) {
    if (!value.empty() && !validation::is_identifier(value))
      v.add(field, "task.id_format", std::string("Expected ") + field + " as an id");
  }
  if (!v.empty()) return Outcome::refuse(std::move(v).to_rejection());
  TaskCreated e;
  Task* t = e.mutable_task();
  t->set_id(id);
  t->set_subject(c.subject());
  t->set_reason(c.reason());
  *t->mutable_due_at() = c.due_at();
  t->set_assignee(c.assignee());
  t->set_assignee_role(c.assignee_role());
  t->set_customer_id(c.customer_id());
  t->set_order_id(c.order_id());
  t->set_rule(c.rule());
  t->set_created_by(actor);
  return {{std::move(e)}, std::nullopt};
}

}  // namespace

bool is_task_id(std::string_view text) {
  return !text.empty() && text.size() <= 128 &&
         std::all_of(text.begin(), text.end(), [](unsigned char c) {
           return std::isalnum(c) != 0 || c == '.' || c == '_' || c == '-';
         });
}

std::string stream_id(std::string_view task_id) {
  return std::string(kStreamPrefix).append(task_id);
}

Decision<Event> decide(const Task& state, const std::string& task_id, const std::string& actor,
                       const Command& command) {
  if (const auto* c = std::get_if<CreateTask>(&command)) return create(state, task_id, actor, *c);
  if (state.version() == 0) return Outcome::refuse(not_found(task_id));
  return std::visit(Overloaded{
                        [&](const CreateTask&) -> Outcome { return {}; },
                        [&](const CompleteTask& c) -> Outcome {
                          if (state.state() != OPEN)
                            return Outcome::refuse(not_open(state, "complete it"));
                          Violations v;
                          check_length(v, "outcome", c.outcome(), kTextLengthMax);
                          if (state.rule() == kRetentionRule && c.outcome() != "RETAINED" &&
                              c.outcome() != "LOST")
                            v.add("outcome", "task.retention_outcome",
                                  "Expected the outcome of a retention task: RETAINED or LOST");
                          if (!v.empty()) return Outcome::refuse(std::move(v).to_rejection());
                          TaskCompleted e;
                          e.set_outcome(c.outcome());
                          return {{std::move(e)}, std::nullopt};
                        },
                        [&](const CancelTask& c) -> Outcome {
                          if (state.state() != OPEN)
                            return Outcome::refuse(not_open(state, "cancel it"));
                          Violations v;
                          check_length(v, "reason", c.reason(), kTextLengthMax);
                          if (!v.empty()) return Outcome::refuse(std::move(v).to_rejection());
                          TaskCancelled e;
                          e.set_reason(c.reason());
                          return {{std::move(e)}, std::nullopt};
                        },
                        [&](const MarkOverdue& c) -> Outcome {
                          if (state.state() != OPEN || state.overdue())
                            return {};  // late or repeated: nothing
                          TaskOverdue e;
                          e.set_escalated_to(c.escalate_to());
                          return {{std::move(e)}, std::nullopt};
                        },
                    },
                    command);
}

void evolve(Task& state, const Event& event, uint64_t version, int64_t occurred_at_us) {
  const auto now = timestamp_from_us(occurred_at_us);
  std::visit(Overloaded{
                 [&](const TaskCreated& e) {
                   state = e.task();
                   state.set_state(OPEN);
                   *state.mutable_created_at() = now;
                 },
                 [&](const TaskCompleted& e) {
                   state.set_state(DONE);
                   state.set_outcome(e.outcome());
                   *state.mutable_closed_at() = now;
                 },
                 [&](const TaskCancelled& e) {
                   state.set_state(CANCELLED);
                   state.set_cancel_reason(e.reason());
                   *state.mutable_closed_at() = now;
                 },
                 [&](const TaskOverdue& e) {
                   state.set_overdue(true);
                   state.set_escalated_to(e.escalated_to());
                 },
             },
             event);
  state.set_version(static_cast<uint32_t>(version));
}

std::vector<std::pair<int64_t, std::string>> due_timers(const Task& task) {
  if (task.state() != OPEN || task.overdue() || !task.has_due_at()) return {};
  return {{timestamp_to_us(task.due_at()), "due"}};
}

}  // namespace crm::task
