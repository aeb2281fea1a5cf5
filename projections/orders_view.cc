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
  order::Order view;
  std::string bytes;
  auto s = writer.get(kOrderPrefix + id, &bytes);
  if (s.is_ok()) {
    if (!view.ParseFromString(bytes)) return Status::corruption("orders view: unreadable row");
  } else if (s.code() != StatusCode::kNotFound) {
    return s;
  }
  auto old_keys = view.version() == 0 ? std::vector<std::string>{} : index_keys(view);
  order::evolve(view, *event, envelope.stream_version(), timestamp_to_us(envelope.occurred_at()));
  auto new_keys = index_keys(view);
  for (const auto& key : old_keys)
    if (std::find(new_keys.begin(), new_keys.end(), key) == new_keys.end()) writer.erase(key);
  for (const auto& key : new_keys) writer.put(key, "");
  writer.put(kOrderPrefix + id, view.SerializeAsString());
  return Status::ok();
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

  order::OrderList page;
  Status bad;
  auto s = scan_rows(
      store, kOrderPrefix, prefix, page_token, [&](const std::string&, std::string_view row) {
        order::Order o;
        if (!o.ParseFromArray(row.data(), static_cast<int>(row.size()))) {
          bad = Status::corruption("orders view: unreadable row");
          return false;
        }
        if ((!filter.customer_id.empty() && o.customer_id() != filter.customer_id) ||
            (!filter.owner_id.empty() && o.owner_id() != filter.owner_id) ||
            (!filter.state.empty() && order::OrderState_Name(o.state()) != filter.state)) {
          return true;
        }
        if (static_cast<size_t>(page.items_size()) == page_size) {
          page.set_next_page_token(page.items(page.items_size() - 1).id());
          return false;
        }
        *page.add_items() = std::move(o);
        return true;
      });
  if (!bad.is_ok()) return bad;
  if (!s.is_ok()) return s;
  return page;
}

}  // namespace crm
