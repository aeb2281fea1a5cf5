// A follow-up task (自动化任务): opened by hand or by a follow-up rule, OPEN until it is done
// (with its outcome) or cancelled, marked overdue (and escalated to a role) once its due time
// passes. Pure: time comes in the command.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "aggregates/rejection.h"
#include "task.pb.h"

namespace crm::task {

using Command = std::variant<CreateTask, CompleteTask, CancelTask, MarkOverdue>;
using Event = std::variant<TaskCreated, TaskCompleted, TaskCancelled, TaskOverdue>;

inline constexpr char kStreamPrefix[] = "task:";
// The follow-up rule of disconnect retention (拆机挽留): its outcome is RETAINED or LOST.
inline constexpr char kRetentionRule[] = "order.disconnect.retention";

bool is_task_id(
    std::string_view text);  // 1–128 of [A-Za-z0-9._-]: room for ids derived from causes
std::string stream_id(std::string_view task_id);

// Opening a task that exists already changes nothing: follow-up rules open tasks with ids
// derived from their cause, so a repeated cause finds its task.
Decision<Event> decide(const Task& state, const std::string& task_id, const std::string& actor,
                       const Command& command);
void evolve(Task& state, const Event& event, uint64_t version, int64_t occurred_at_us);

// The task's due-time timer while it is open and not yet overdue: (due µs, "due").
std::vector<std::pair<int64_t, std::string>> due_timers(const Task& task);

}  // namespace crm::task
