// The customers read model: every customer as GET shows it, and indexes by owner, level,
// stage and region for the list call.
//   "customer/" id                          -> Customer
//   "customer_by_<index>/" u32be(len(value)) value id     -> ""
#pragma once

#include <string>

#include "customer.pb.h"
#include "projections/read_model.h"

namespace crm {

class CustomersView final : public ReadModel {
 public:
  std::string name() const override { return "customers"; }
  Status apply(const events::EventEnvelope& event, ReadModelWriter& writer) override;
};

struct CustomerFilter {
  std::string owner_id{};
  std::string level{};  // enum name, e.g. "VIP"
  std::string stage{};  // enum name
  std::string region{};
  std::string team{};
};

// One page of customers matching every given filter, in id order after `page_token`.
Result<customer::CustomerList> list_customers(Store& store, const CustomerFilter& filter,
                                              size_t page_size, const std::string& page_token);

}  // namespace crm
