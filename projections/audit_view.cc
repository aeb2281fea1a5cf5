#include "projections/audit_view.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstring>

#include "aggregates/event_variant.h"
#include "aggregates/order/order.h"
#include "events/codec.h"

namespace crm {
namespace {

constexpr char kEntryPrefix[] = "audit/";
constexpr char kRulePrefix[] = "audit_rule/";

std::string time_key(int64_t us) {
  char digits[24];
  std::snprintf(digits, sizeof digits, "%020lld", static_cast<long long>(us < 0 ? 0 : us));
  return digits;
}

std::string money_text(const Money& m) {
  return std::to_string(m.amount_minor()) + " " + m.currency() + " (minor units)";
}

Status put_entry(ReadModelWriter& writer, api::AuditEntry entry, int64_t at_us) {
  const std::string id = time_key(at_us) + "-" + entry.position();
  writer.put(kEntryPrefix + id, entry.SerializeAsString());
  writer.put(index_prefix("audit_by_kind", entry.kind()) + id, "");
  if (entry.kind() == "DECISION")
    writer.put(index_prefix("audit_by_principal", entry.principal_id()) + id, "");
  return Status::ok();
}

std::string rule_of(ReadModelWriter& writer, const std::string& approval_id) {
  std::string rule;
  return writer.get(kRulePrefix + approval_id, &rule).is_ok() ? rule : "";
}

}  // namespace

bool is_audit_id(std::string_view text) {
  if (text.size() < 22 || text.size() > 160 || text[20] != '-') return false;
  for (size_t i = 0; i < 20; ++i)
    if (!std::isdigit(static_cast<unsigned char>(text[i]))) return false;
  return std::all_of(text.begin() + 21, text.end(), [](unsigned char c) {
    return std::isalnum(c) != 0 || c == ':' || c == '.' || c == '_' || c == '-';
  });
}

Status AuditView::apply(const events::EventEnvelope& envelope, ReadModelWriter& writer) {
  if (envelope.stream_type() != "order") return Status::ok();
  auto event = unpack_variant<order::Event>(envelope.data());
  if (!event) return Status::ok();  // the orders view reports unknown events
  const std::string order_id = envelope.stream_id().substr(strlen(order::kStreamPrefix));
  const int64_t at_us = timestamp_to_us(envelope.occurred_at());
  api::AuditEntry entry;
  entry.set_order_id(order_id);
  *entry.mutable_at() = envelope.occurred_at();
  entry.set_position(format_position(envelope.position()));
  entry.set_principal_id(envelope.actor().principal_id());
  entry.set_role(envelope.actor().role());

  if (const auto* requested = std::get_if<order::ApprovalRequested>(&*event)) {
    for (const auto& a : requested->approvals())
      writer.put(kRulePrefix + a.approval_id(), a.step().rule());
  } else if (const auto* decided = std::get_if<order::ApprovalDecided>(&*event)) {
    const auto& d = decided->decision();
    entry.set_kind("DECISION");
    entry.set_principal_id(d.principal_id());
    entry.set_role(d.role());
    entry.set_on_behalf_of(d.on_behalf_of());
    entry.set_approval_id(decided->approval_id());
    entry.set_decision(order::ApprovalDecision::Kind_Name(d.decision()));
    entry.set_comment(d.comment());
    entry.set_rule(rule_of(writer, decided->approval_id()));
    return put_entry(writer, std::move(entry), at_us);
  } else if (const auto* escalated = std::get_if<order::ApprovalEscalated>(&*event)) {
    entry.set_kind("ESCALATION");
    entry.set_approval_id(escalated->approval_id());
    entry.set_rule(rule_of(writer, escalated->approval_id()));
    entry.set_detail("time limit passed: asked of " + escalated->to_role() + " instead of " +
                     escalated->from_role());
    return put_entry(writer, std::move(entry), at_us);
  } else if (const auto* rejected = std::get_if<order::OrderRejected>(&*event)) {
    entry.set_kind("REJECTION");
    entry.set_approval_id(rejected->approval_id());
    entry.set_comment(rejected->comment());
    entry.set_rule(rule_of(writer, rejected->approval_id()));
    entry.set_detail(rejected->timed_out() ? "rejected when the time limit passed"
                                           : "rejected by an approver");
    return put_entry(writer, std::move(entry), at_us);
  } else if (const auto* submitted = std::get_if<order::OrderSubmitted>(&*event)) {
    entry.set_kind("MANUAL_PRICE");
    entry.set_principal_id(submitted->submitted_by().empty() ? envelope.actor().principal_id()
                                                             : submitted->submitted_by());
    for (const auto& line : submitted->receipt().lines()) {
      if (!line.non_standard_price()) continue;
      api::AuditEntry priced = entry;
      const auto& price = line.has_one_time_list() && line.one_time_list().amount_minor() != 0
                              ? line.one_time_list()
                              : line.recurring_list();
      priced.set_detail("item " + line.item_id() + " (" + line.offer_id() + "@" +
                        std::to_string(line.offer_version()) + ") at a manual price: " +
                        money_text(price) + " for " + std::to_string(line.quantity()));
      // One entry per line: the id gets the item to stay unique within the event.
      priced.set_position(entry.position() + ":" + line.item_id());
      if (auto s = put_entry(writer, std::move(priced), at_us); !s.is_ok()) return s;
    }
  }
  return Status::ok();
}

Result<api::AuditEntryList> list_audit(Store& store, const AuditFilter& filter, size_t page_size,
                                       const std::string& page_token) {
  std::string walk = kEntryPrefix;
  if (!filter.principal_id.empty())
    walk = index_prefix("audit_by_principal", filter.principal_id);
  else if (!filter.kind.empty())
    walk = index_prefix("audit_by_kind", filter.kind);
  // Start at `from` (ids begin with the time): "strictly after" a token of the bare time key
  // still takes entries at exactly that time, whose ids continue with '-'.
  std::string start = page_token;
  if (start.empty() && filter.from_us > 0) start = time_key(filter.from_us);
  return list_rows<api::AuditEntryList, api::AuditEntry>(
      store, "audit view", kEntryPrefix, walk, start, page_size,
      [&](const api::AuditEntry& e) { return !filter.overrides || e.kind() != "DECISION"; },
      [&](const api::AuditEntry& e) { return timestamp_to_us(e.at()) > filter.to_us; });
}

}  // namespace crm
