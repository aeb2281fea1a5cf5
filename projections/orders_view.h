// The orders read model: every order as GET shows it, and indexes by customer, state and owner
// for the list call.
//   "order/" id                                     -> Order
//   "order_by_<index>/" u32be(len(value)) value id  -> ""
#pragma once

#include <string>

#include "order.pb.h"
#include "projections/read_model.h"

namespace crm {

class OrdersView final : public ReadModel {
 public:
  std::string name() const override { return "orders"; }
  Status apply(const events::EventEnvelope& event, ReadModelWriter& writer) override;
};

struct OrderFilter {
  std::string customer_id{};
  std::string state{};  // enum name, e.g. "DRAFT"
  std::string owner_id{};
};

// One page of orders matching every given filter, in id order after `page_token`.
Result<order::OrderList> list_orders(Store& store, const OrderFilter& filter, size_t page_size,
                                     const std::string& page_token);

}  // namespace crm
