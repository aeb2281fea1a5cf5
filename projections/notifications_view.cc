#include "projections/notifications_view.h"

#include <algorithm>
#include <cstring>
#include <memory>

#include "aggregates/event_variant.h"
#include "aggregates/order/order.h"
#include "events/codec.h"

namespace crm {
namespace {

constexpr char kRequesterPrefix[] = "notification_requester/";

std::string decision_word(order::ApprovalDecision::Kind kind) {
  switch (kind) {
    case order::ApprovalDecision::APPROVE:
      return "approved";
    case order::ApprovalDecision::REJECT:
      return "rejected";
    default:
      return "returned";
  }
}

}  // namespace

Status NotificationsView::apply(const events::EventEnvelope& envelope, ReadModelWriter& writer) {
  if (envelope.stream_type() != "order") return Status::ok();
  auto event = unpack_variant<order::Event>(envelope.data());
  if (!event) return Status::ok();  // the orders view reports unknown events
  const std::string order_id = envelope.stream_id().substr(strlen(order::kStreamPrefix));
  if (const auto* e = std::get_if<order::ApprovalRequested>(&*event)) {
    writer.put(kRequesterPrefix + order_id, e->requester());
    return Status::ok();
  }
  approval::Notification n;
  n.set_order_id(order_id);
  n.set_kind(envelope.event_type().substr(envelope.event_type().rfind('.') + 1));
  *n.mutable_at() = envelope.occurred_at();
  n.set_position(format_position(envelope.position()));
  std::string recipient;
  if (const auto* e = std::get_if<order::ApprovalEscalated>(&*event)) {
    recipient = "role:" + e->from_role();
    n.set_approval_id(e->approval_id());
    n.set_message("Approval " + e->approval_id() + " of order " + order_id +
                  " passed its time limit and was escalated to " + e->to_role());
  } else {
    std::string requester;
    auto s = writer.get(kRequesterPrefix + order_id, &requester);
    if (s.code() == StatusCode::kNotFound) return Status::ok();  // never asked for approval
    if (!s.is_ok()) return s;
    recipient = requester;
    if (const auto* d = std::get_if<order::ApprovalDecided>(&*event)) {
      const auto& decision = d->decision();
      n.set_approval_id(d->approval_id());
      n.set_message(
          decision.principal_id() +
          (decision.on_behalf_of().empty() ? "" : " (for " + decision.on_behalf_of() + ")") + " " +
          decision_word(decision.decision()) + " approval " + d->approval_id() + " of order " +
          order_id + (decision.comment().empty() ? "" : ": " + decision.comment()));
    } else if (std::holds_alternative<order::OrderApproved>(*event)) {
      n.set_message("Order " + order_id + " is approved");
    } else if (const auto* r = std::get_if<order::OrderRejected>(&*event)) {
      n.set_approval_id(r->approval_id());
      n.set_message("Order " + order_id + " is rejected: " + r->comment());
    } else if (const auto* r = std::get_if<order::OrderReturned>(&*event)) {
      n.set_approval_id(r->approval_id());
      n.set_message("Order " + order_id + " is returned for changes: " + r->comment());
    } else {
      return Status::ok();
    }
  }
  n.set_recipient(recipient);
  std::string key = index_prefix("notification", recipient);
  put_u64_be(key, static_cast<uint64_t>(timestamp_to_us(envelope.occurred_at())));
  put_u32_be(key, envelope.position().partition());
  put_u64_be(key, envelope.position().offset());
  writer.put(key, n.SerializeAsString());
  return Status::ok();
}

Result<approval::NotificationList> list_notifications(Store& store,
                                                      const std::vector<std::string>& recipients,
                                                      size_t page_size) {
  // Keys end in (occurred at, partition, offset): the newest of each recipient come last.
  std::vector<std::pair<std::string, approval::Notification>> found;
  for (const auto& recipient : recipients) {
    const std::string prefix = index_prefix("notification", recipient);
    std::unique_ptr<rocksdb::Iterator> it(
        store.db()->NewIterator(rocksdb::ReadOptions(), store.family(Store::Family::kReadModels)));
    std::string end = prefix;
    end.append(8, '\xff');
    size_t taken = 0;
    for (it->SeekForPrev(end); it->Valid() && it->key().starts_with(prefix) && taken < page_size;
         it->Prev(), ++taken) {
      approval::Notification n;
      if (!n.ParseFromArray(it->value().data(), static_cast<int>(it->value().size())))
        return Status::corruption("notifications view: unreadable row");
      found.emplace_back(it->key().ToString().substr(prefix.size()), std::move(n));
    }
    if (!it->status().ok()) return from_rocksdb(it->status());
  }
  std::sort(found.begin(), found.end(),
            [](const auto& a, const auto& b) { return a.first > b.first; });
  approval::NotificationList list;
  for (auto& [key, n] : found) {
    if (static_cast<size_t>(list.items_size()) == page_size) break;
    *list.add_items() = std::move(n);
  }
  return list;
}

}  // namespace crm
