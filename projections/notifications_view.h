// Notification records (审批结果反馈): the requester of an order is told of every decision on
// it and of its outcome; the role a step was asked of is told when it escalates away.
//   "notification/" u32be(len) recipient u64be(at) u32be(partition) u64be(offset) -> Notification
//   "notification_requester/" order_id                                  -> requester
#pragma once

#include <string>
#include <vector>

#include "approval.pb.h"
#include "projections/read_model.h"

namespace crm {

class NotificationsView final : public ReadModel {
 public:
  std::string name() const override { return "notifications"; }
  Status apply(const events::EventEnvelope& event, ReadModelWriter& writer) override;
};

// The notifications of any of `recipients`, newest first, at most `page_size`.
Result<approval::NotificationList> list_notifications(Store& store,
                                                      const std::vector<std::string>& recipients,
                                                      size_t page_size);

}  // namespace crm
