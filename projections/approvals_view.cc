#include "projections/approvals_view.h"

#include <algorithm>
#include <cstring>
#include <map>
#include <memory>
#include <set>

#include "aggregates/event_variant.h"
#include "aggregates/order/order.h"
#include "events/codec.h"

namespace crm {
namespace {

constexpr char kRowPrefix[] = "approval/";
using order::Approval;

std::string time_key(const approval::InboxItem& item) {
  std::string key;
  put_u64_be(key, static_cast<uint64_t>(timestamp_to_us(item.asked_at())));
  return key + item.approval_id();
}

std::vector<std::string> index_keys(const approval::InboxItem& item) {
  std::vector<std::string> keys;
  keys.push_back(index_prefix("approval_of_order", item.order_id()) + item.approval_id());
  if (item.state() != Approval::PENDING) return keys;
  {
    std::string by_due = index_prefix("approval_pending_by_due", "");
    put_u64_be(by_due, static_cast<uint64_t>(std::max<int64_t>(0, timestamp_to_us(item.due_at()))));
    keys.push_back(by_due + item.approval_id());
  }
  if (item.approvers().empty()) {
    keys.push_back(index_prefix("approval_by_role", item.role()) + time_key(item));
  } else {
    for (const auto& p : item.approvers()) {
      if (std::find(item.approved_by().begin(), item.approved_by().end(), p) ==
          item.approved_by().end())
        keys.push_back(index_prefix("approval_by_principal", p) + time_key(item));
    }
  }
  return keys;
}

Status fold(ReadModelWriter& writer, const std::string& approval_id,
            const std::function<void(approval::InboxItem&)>& change) {
  return fold_row<approval::InboxItem>(writer, kRowPrefix + approval_id, "approvals view", change,
                                       index_keys);
}

// The approval ids of an order, from its index.
Result<std::vector<std::string>> approvals_of(ReadModelWriter& writer,
                                              const std::string& order_id) {
  std::vector<std::string> ids;
  const std::string prefix = index_prefix("approval_of_order", order_id);
  auto s = writer.scan(prefix, [&](std::string_view key) {
    ids.emplace_back(key.substr(prefix.size()));
    return true;
  });
  if (!s.is_ok()) return s;
  return ids;
}

// Closes the order's steps still waiting or pending (the order moved on without them).
Status close_open(ReadModelWriter& writer, const std::string& order_id,
                  const std::string& rejected_id) {
  auto ids = approvals_of(writer, order_id);
  if (!ids.is_ok()) return ids.status();
  for (const auto& id : *ids) {
    auto s = fold(writer, id, [&](approval::InboxItem& item) {
      if (id == rejected_id && item.state() == Approval::PENDING)
        item.set_state(Approval::REJECTED);
      else if (item.state() == Approval::PENDING || item.state() == Approval::WAITING)
        item.set_state(Approval::CLOSED);
    });
    if (!s.is_ok()) return s;
  }
  return Status::ok();
}

}  // namespace

Status ApprovalsView::apply(const events::EventEnvelope& envelope, ReadModelWriter& writer) {
  if (envelope.stream_type() != "order") return Status::ok();
  auto event = unpack_variant<order::Event>(envelope.data());
  if (!event) {
    return Status::corruption("approvals view: unknown event type " + envelope.event_type() +
                              " at " + format_position(envelope.position()));
  }
  const std::string order_id = envelope.stream_id().substr(strlen(order::kStreamPrefix));
  const auto now = envelope.occurred_at();
  if (const auto* e = std::get_if<order::ApprovalRequested>(&*event)) {
    for (const auto& a : e->approvals()) {
      auto s = fold(writer, a.approval_id(), [&](approval::InboxItem& item) {
        item.set_approval_id(a.approval_id());
        item.set_order_id(order_id);
        item.set_customer_id(e->customer_id());
        item.set_state(a.state());
        item.set_role(a.asked_role());
        *item.mutable_approvers() = a.step().approvers();
        item.set_rule(a.step().rule());
        *item.mutable_rules() = a.step().rules();
        item.set_requester(e->requester());
        if (a.has_asked_at()) *item.mutable_asked_at() = a.asked_at();
        if (a.has_due_at()) *item.mutable_due_at() = a.due_at();
        item.set_kind(e->tested().kind());
        *item.mutable_totals() = e->tested().totals();
        item.set_discount_basis_points(e->tested().discount_basis_points());
        item.set_non_standard_price(e->tested().non_standard_price());
      });
      if (!s.is_ok()) return s;
    }
  } else if (const auto* e = std::get_if<order::ApprovalDecided>(&*event)) {
    return fold(writer, e->approval_id(), [&](approval::InboxItem& item) {
      const auto& d = e->decision();
      item.add_approved_by(d.on_behalf_of().empty() ? d.principal_id() : d.on_behalf_of());
      if (!e->step_done()) return;
      item.set_state(d.decision() == order::ApprovalDecision::APPROVE  ? Approval::APPROVED
                     : d.decision() == order::ApprovalDecision::REJECT ? Approval::REJECTED
                                                                       : Approval::RETURNED);
    });
  } else if (const auto* e = std::get_if<order::ApprovalAsked>(&*event)) {
    return fold(writer, e->approval_id(), [&](approval::InboxItem& item) {
      item.set_state(Approval::PENDING);
      item.set_role(e->role());
      *item.mutable_asked_at() = now;
      if (e->has_due_at()) *item.mutable_due_at() = e->due_at();
    });
  } else if (const auto* e = std::get_if<order::ApprovalEscalated>(&*event)) {
    return fold(writer, e->approval_id(), [&](approval::InboxItem& item) {
      item.set_escalated_from(e->from_role());
      item.set_role(e->to_role());
      item.set_escalations(item.escalations() + 1);
      if (e->has_due_at()) *item.mutable_due_at() = e->due_at();
    });
  } else if (const auto* e = std::get_if<order::OrderRejected>(&*event)) {
    return close_open(writer, order_id, e->timed_out() ? e->approval_id() : "");
  } else if (std::holds_alternative<order::OrderApproved>(*event) ||
             std::holds_alternative<order::OrderReturned>(*event) ||
             std::holds_alternative<order::OrderCancelled>(*event)) {
    return close_open(writer, order_id, "");
  }
  return Status::ok();
}

Result<approval::Inbox> list_inbox(Store& store, const std::string& principal_id,
                                   const std::vector<std::string>& roles,
                                   const std::vector<std::string>& principals, size_t page_size,
                                   const std::string& page_token, int64_t now_us) {
  std::vector<std::string> prefixes;
  for (const auto& role : roles) prefixes.push_back(index_prefix("approval_by_role", role));
  for (const auto& p : principals) prefixes.push_back(index_prefix("approval_by_principal", p));
  // Every pending approval the caller may see, by (asked at, id): the token is the last one's.
  std::map<std::string, std::string> found;
  for (const auto& prefix : prefixes) {
    std::unique_ptr<rocksdb::Iterator> it(
        store.db()->NewIterator(rocksdb::ReadOptions(), store.family(Store::Family::kReadModels)));
    for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
      std::string rest = it->key().ToString().substr(prefix.size());
      if (rest.size() <= 8) continue;
      found.emplace(rest, rest.substr(8));
    }
    if (!it->status().ok()) return from_rocksdb(it->status());
  }
  approval::Inbox inbox;
  for (const auto& [order_key, approval_id] : found) {
    if (!page_token.empty() && to_hex(order_key) <= page_token) continue;
    std::string bytes;
    auto s = store.get(Store::Family::kReadModels, kRowPrefix + approval_id, &bytes);
    if (s.code() == StatusCode::kNotFound) continue;  // indexed and gone in between: skip it
    if (!s.is_ok()) return s;
    approval::InboxItem item;
    if (!item.ParseFromString(bytes)) return Status::corruption("approvals view: unreadable row");
    if (item.requester() == principal_id || item.state() != Approval::PENDING) continue;
    if (static_cast<size_t>(inbox.items_size()) == page_size) {
      const auto& last = inbox.items(inbox.items_size() - 1);
      inbox.set_next_page_token(to_hex(time_key(last)));
      break;
    }
    if (item.has_due_at())
      item.set_seconds_left((timestamp_to_us(item.due_at()) - now_us) / 1'000'000);
    *inbox.add_items() = std::move(item);
  }
  return inbox;
}

Result<PendingApprovals> count_pending_approvals(Store& store, int64_t now_us) {
  PendingApprovals counts;
  const std::string prefix = index_prefix("approval_pending_by_due", "");
  std::unique_ptr<rocksdb::Iterator> it(
      store.db()->NewIterator(rocksdb::ReadOptions(), store.family(Store::Family::kReadModels)));
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
    ++counts.pending;
    if (it->key().size() < prefix.size() + 8) continue;
    // A step without a time limit has due 0: never overdue.
    const uint64_t due = get_u64_be(std::string_view(it->key().data() + prefix.size(), 8));
    if (due != 0 && static_cast<int64_t>(due) < now_us) ++counts.overdue;
  }
  if (!it->status().ok()) return from_rocksdb(it->status());
  return counts;
}

}  // namespace crm
