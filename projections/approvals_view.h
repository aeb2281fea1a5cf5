// The approvals read model: one row per approval step, and the inbox indexes of the steps
// waiting for a decision, by the role asked (mode ANY) or by each approver still to decide
// (mode ALL), oldest first. Folded from the order streams' approval events alone.
//   "approval/" approval_id                                   -> approval::InboxItem
//   "approval_by_role/" u32be(len) role u64be(asked_at) id     -> ""
//   "approval_by_principal/" u32be(len) p u64be(asked_at) id   -> ""
//   "approval_of_order/" u32be(len) order_id approval_id       -> ""
#pragma once

#include <string>
#include <vector>

#include "approval.pb.h"
#include "projections/read_model.h"

namespace crm {

class ApprovalsView final : public ReadModel {
 public:
  std::string name() const override { return "approvals"; }
  Status apply(const events::EventEnvelope& event, ReadModelWriter& writer) override;
};

// The pending approvals `principal_id` may decide: those asked of any of `roles`, or naming any
// of `principals` (the caller and whoever delegated to it), except on orders the caller itself
// submitted; oldest first, at most `page_size` after `page_token`. seconds_left is counted
// from `now_us`.
Result<approval::Inbox> list_inbox(Store& store, const std::string& principal_id,
                                   const std::vector<std::string>& roles,
                                   const std::vector<std::string>& principals, size_t page_size,
                                   const std::string& page_token, int64_t now_us);

// How many approval steps are pending, and how many of them are past their time limit at
// `now_us` (for metrics): a walk of one index, so O(pending steps).
struct PendingApprovals {
  uint64_t pending = 0;
  uint64_t overdue = 0;
};
Result<PendingApprovals> count_pending_approvals(Store& store, int64_t now_us);

}  // namespace crm
