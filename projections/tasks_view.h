// The tasks read model: every follow-up task, and indexes by assignee, role (assigned or
// escalated to), state, and the open tasks by due time (for the overdue list).
//   "task/" id                                          -> task::Task
//   "task_by_<index>/" u32be(len) value id              -> ""
//   "task_open_by_due/" u64be(due) id                   -> ""
#pragma once

#include <string>

#include "projections/read_model.h"
#include "task.pb.h"

namespace crm {

class TasksView final : public ReadModel {
 public:
  std::string name() const override { return "tasks"; }
  Status apply(const events::EventEnvelope& event, ReadModelWriter& writer) override;
};

struct TaskFilter {
  std::string assignee{};
  std::string role{};
  std::string state{};        // enum name
  int64_t due_before_us = 0;  // 0: any
  bool overdue_only = false;
  std::string customer_id{};
  std::string order_id{};
};

Result<task::TaskList> list_tasks(Store& store, const TaskFilter& filter, size_t page_size,
                                  const std::string& page_token);

// How many tasks are open, and how many of those are overdue (for metrics): walks of two
// indexes, so O(open tasks).
struct OpenTasks {
  uint64_t open = 0;
  uint64_t overdue = 0;
};
Result<OpenTasks> count_open_tasks(Store& store);

}  // namespace crm
