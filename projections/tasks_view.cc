#include "projections/tasks_view.h"

#include <cstring>
#include <memory>

#include "aggregates/event_variant.h"
#include "aggregates/task/task.h"
#include "events/codec.h"

namespace crm {
namespace {

constexpr char kTaskPrefix[] = "task/";

std::string task_index(const std::string& index, const std::string& value) {
  return index_prefix("task_by_" + index, value);
}

std::vector<std::string> index_keys(const task::Task& t) {
  std::vector<std::string> keys;
  keys.push_back(task_index("state", task::TaskState_Name(t.state())) + t.id());
  if (!t.assignee().empty()) keys.push_back(task_index("assignee", t.assignee()) + t.id());
  if (!t.assignee_role().empty()) keys.push_back(task_index("role", t.assignee_role()) + t.id());
  if (!t.escalated_to().empty() && t.escalated_to() != t.assignee_role())
    keys.push_back(task_index("role", t.escalated_to()) + t.id());
  if (!t.customer_id().empty()) keys.push_back(task_index("customer", t.customer_id()) + t.id());
  if (!t.order_id().empty()) keys.push_back(task_index("order", t.order_id()) + t.id());
  // The overdue list: open tasks past their due time (escalated), without a scan of the rest.
  if (t.overdue() && t.state() == task::OPEN)
    keys.push_back(task_index("overdue", "OPEN") + t.id());
  return keys;
}

}  // namespace

Status TasksView::apply(const events::EventEnvelope& envelope, ReadModelWriter& writer) {
  if (envelope.stream_type() != "task") return Status::ok();
  auto event = unpack_variant<task::Event>(envelope.data());
  if (!event) {
    return Status::corruption("tasks view: unknown event type " + envelope.event_type() + " at " +
                              format_position(envelope.position()));
  }
  const std::string id = envelope.stream_id().substr(strlen(task::kStreamPrefix));
  return fold_row<task::Task>(
      writer, kTaskPrefix + id, "tasks view",
      [&](task::Task& row) {
        task::evolve(row, *event, envelope.stream_version(),
                     timestamp_to_us(envelope.occurred_at()));
      },
      index_keys);
}

Result<task::TaskList> list_tasks(Store& store, const TaskFilter& filter, size_t page_size,
                                  const std::string& page_token) {
  std::string prefix = kTaskPrefix;
  if (!filter.order_id.empty())
    prefix = task_index("order", filter.order_id);
  else if (!filter.customer_id.empty())
    prefix = task_index("customer", filter.customer_id);
  else if (!filter.assignee.empty())
    prefix = task_index("assignee", filter.assignee);
  else if (!filter.role.empty())
    prefix = task_index("role", filter.role);
  else if (filter.overdue_only)
    prefix = task_index("overdue", "OPEN");
  else if (!filter.state.empty())
    prefix = task_index("state", filter.state);
  return list_rows<task::TaskList, task::Task>(
      store, "tasks view", kTaskPrefix, prefix, page_token, page_size, [&](const task::Task& t) {
        const bool role_matches = filter.role.empty() || t.assignee_role() == filter.role ||
                                  t.escalated_to() == filter.role;
        return (filter.assignee.empty() || t.assignee() == filter.assignee) && role_matches &&
               (filter.state.empty() || task::TaskState_Name(t.state()) == filter.state) &&
               (filter.customer_id.empty() || t.customer_id() == filter.customer_id) &&
               (filter.order_id.empty() || t.order_id() == filter.order_id) &&
               (filter.due_before_us == 0 || timestamp_to_us(t.due_at()) < filter.due_before_us) &&
               (!filter.overdue_only || (t.overdue() && t.state() == task::OPEN));
      });
}

Result<OpenTasks> count_open_tasks(Store& store) {
  auto count = [&](const std::string& prefix) -> Result<uint64_t> {
    uint64_t n = 0;
    std::unique_ptr<rocksdb::Iterator> it(
        store.db()->NewIterator(rocksdb::ReadOptions(), store.family(Store::Family::kReadModels)));
    for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) ++n;
    if (!it->status().ok()) return from_rocksdb(it->status());
    return n;
  };
  auto open = count(task_index("state", task::TaskState_Name(task::OPEN)));
  if (!open.is_ok()) return open.status();
  auto overdue = count(task_index("overdue", "OPEN"));
  if (!overdue.is_ok()) return overdue.status();
  return OpenTasks{open.value(), overdue.value()};
}

}  // namespace crm
