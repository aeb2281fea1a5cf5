// Audit read models (what auditors ask for first): approval decisions by principal and period,
// and overrides — manual prices, escalations, rejections — by period.
//   "audit/" id                      -> AuditEntry, id = 20-digit occurred µs "-" position
//   "audit_by_principal/" principal id   (decisions)
//   "audit_by_kind/" kind id
//   "audit_rule/" approval id         -> the rule that asked for the step
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "api.pb.h"
#include "projections/read_model.h"

namespace crm {

class AuditView final : public ReadModel {
 public:
  std::string name() const override { return "audit"; }
  Status apply(const events::EventEnvelope& event, ReadModelWriter& writer) override;
};

struct AuditFilter {
  std::string principal_id;   // decisions by this principal
  std::string kind;           // DECISION, MANUAL_PRICE, ESCALATION or REJECTION
  bool overrides = false;     // every kind but DECISION
  int64_t from_us = 0;        // occurred at or after
  int64_t to_us = INT64_MAX;  // occurred at or before
};

// Entries in time order, from `from_us` (or after `page_token`) until `to_us`.
Result<api::AuditEntryList> list_audit(Store& store, const AuditFilter& filter, size_t page_size,
                                       const std::string& page_token);

// Page tokens are entry ids: 20 digits, '-', a position (and an item id).
bool is_audit_id(std::string_view text);

}  // namespace crm
