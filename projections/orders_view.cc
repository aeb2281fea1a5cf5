#include "projections/orders_view.h"

#include <algorithm>
#include <cstring>

#include "aggregates/event_variant.h"
#include "aggregates/order/order.h"
#include "events/codec.h"

namespace crm {
namespace {

constexpr char kOrderPrefix[] = "order/";

std::string order_index(const std::string& index, const std::string& value) {
  return index_prefix("order_by_" + index, value);
}

std::vector<std::string> index_keys(const order::Order& o) {
  std::vector<std::string> keys;
  keys.push_back(order_index("customer", o.customer_id()) + o.id());
  keys.push_back(order_index("state", order::OrderState_Name(o.state())) + o.id());
  if (!o.owner_id().empty()) keys.push_back(order_index("owner", o.owner_id()) + o.id());
  return keys;
}

}  // namespace

Status OrdersView::apply(const events::EventEnvelope& envelope, ReadModelWriter& writer) {
  if (envelope.stream_type() != "order") return Status::ok();
  auto event = unpack_variant<order::Event>(envelope.data());
  if (!event) {
    return Status::corruption("orders view: unknown event type " + envelope.event_type() + " at " +
                              format_position(envelope.position()));
  }
  const std::string id = envelope.stream_id().substr(strlen(order::kStreamPrefix));
  return fold_row<order::Order>(
      writer, kOrderPrefix + id, "orders view",
      [&](order::Order& row) {
        order::evolve(row, *event, envelope.stream_version(),
                      timestamp_to_us(envelope.occurred_at()));
      },
      index_keys);
}

Result<order::OrderList> list_orders(Store& store, const OrderFilter& filter, size_t page_size,
                                     const std::string& page_token) {
  std::string prefix = kOrderPrefix;
  if (!filter.customer_id.empty())
    prefix = order_index("customer", filter.customer_id);
  else if (!filter.owner_id.empty())
    prefix = order_index("owner", filter.owner_id);
  else if (!filter.state.empty())
    prefix = order_index("state", filter.state);

  return list_rows<order::OrderList, order::Order>(
      store, "orders view", kOrderPrefix, prefix, page_token, page_size,
      [&](const order::Order& o) {
        return (filter.customer_id.empty() || o.customer_id() == filter.customer_id) &&
               (filter.owner_id.empty() || o.owner_id() == filter.owner_id) &&
               (filter.state.empty() || order::OrderState_Name(o.state()) == filter.state);
      });
}

}  // namespace crm
