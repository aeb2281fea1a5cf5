#include "projections/customers_view.h"

#include <algorithm>
#include <functional>
#include <memory>
#include <optional>

#include "aggregates/customer/customer.h"
#include "aggregates/event_variant.h"
#include "events/codec.h"

namespace crm {
namespace {

constexpr char kCustomerPrefix[] = "customer/";

std::string customer_key(const std::string& id) { return kCustomerPrefix + id; }

std::string customer_index(const std::string& index, const std::string& value) {
  return index_prefix("customer_by_" + index, value);
}

// The index entries a customer has: one per indexed attribute.
std::vector<std::string> index_keys(const customer::Customer& c) {
  std::vector<std::string> keys;
  if (!c.owner_id().empty()) keys.push_back(customer_index("owner", c.owner_id()) + c.id());
  if (!c.team().empty()) keys.push_back(customer_index("team", c.team()) + c.id());
  if (!c.region().empty()) keys.push_back(customer_index("region", c.region()) + c.id());
  keys.push_back(customer_index("level", customer::CustomerLevel_Name(c.level())) + c.id());
  keys.push_back(customer_index("stage", customer::CustomerStage_Name(c.stage())) + c.id());
  return keys;
}

}  // namespace

Status CustomersView::apply(const events::EventEnvelope& envelope, ReadModelWriter& writer) {
  if (envelope.stream_type() != "customer") return Status::ok();
  auto event = unpack_variant<customer::Event>(envelope.data());
  if (!event) {
    return Status::corruption("customers view: unknown event type " + envelope.event_type() +
                              " at " + format_position(envelope.position()));
  }
  return fold_row<customer::Customer>(
      writer, customer_key(envelope.stream_id()), "customers view",
      [&](customer::Customer& row) {
        customer::evolve(row, *event, envelope.stream_version(),
                         timestamp_to_us(envelope.occurred_at()));
      },
      index_keys);
}

Result<customer::CustomerList> list_customers(Store& store, const CustomerFilter& filter,
                                              size_t page_size, const std::string& page_token) {
  // Walk the most selective index given; check the other filters on each row.
  std::string prefix = kCustomerPrefix;
  if (!filter.owner_id.empty())
    prefix = customer_index("owner", filter.owner_id);
  else if (!filter.team.empty())
    prefix = customer_index("team", filter.team);
  else if (!filter.region.empty())
    prefix = customer_index("region", filter.region);
  else if (!filter.level.empty())
    prefix = customer_index("level", filter.level);
  else if (!filter.stage.empty())
    prefix = customer_index("stage", filter.stage);
  return list_rows<customer::CustomerList, customer::Customer>(
      store, "customers view", kCustomerPrefix, prefix, page_token, page_size,
      [&](const customer::Customer& c) {
        return (filter.owner_id.empty() || c.owner_id() == filter.owner_id) &&
               (filter.team.empty() || c.team() == filter.team) &&
               (filter.region.empty() || c.region() == filter.region) &&
               (filter.level.empty() || customer::CustomerLevel_Name(c.level()) == filter.level) &&
               (filter.stage.empty() || customer::CustomerStage_Name(c.stage()) == filter.stage);
      });
}

}  // namespace crm
