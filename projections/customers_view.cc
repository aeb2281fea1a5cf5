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

// The value is length-prefixed, so one value's prefix never matches another value that merely
// starts with it ("North" and "North/East"), whatever characters values hold.
std::string index_prefix(const std::string& index, const std::string& value) {
  std::string prefix = "customer_by_" + index + "/";
  put_u32_be(prefix, static_cast<uint32_t>(value.size()));
  return prefix + value;
}

// The index entries a customer has: one per indexed attribute.
std::vector<std::string> index_keys(const customer::Customer& c) {
  std::vector<std::string> keys;
  if (!c.owner_id().empty()) keys.push_back(index_prefix("owner", c.owner_id()) + c.id());
  if (!c.team().empty()) keys.push_back(index_prefix("team", c.team()) + c.id());
  if (!c.region().empty()) keys.push_back(index_prefix("region", c.region()) + c.id());
  keys.push_back(index_prefix("level", customer::CustomerLevel_Name(c.level())) + c.id());
  keys.push_back(index_prefix("stage", customer::CustomerStage_Name(c.stage())) + c.id());
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
  customer::Customer view;
  std::string bytes;
  auto s = writer.get(customer_key(envelope.stream_id()), &bytes);
  if (s.is_ok()) {
    if (!view.ParseFromString(bytes)) return Status::corruption("customers view: unreadable row");
  } else if (s.code() != StatusCode::kNotFound) {
    return s;
  }
  auto old_keys = view.version() == 0 ? std::vector<std::string>{} : index_keys(view);
  customer::evolve(view, *event, envelope.stream_version(),
                   timestamp_to_us(envelope.occurred_at()));
  auto new_keys = index_keys(view);
  for (const auto& key : old_keys)
    if (std::find(new_keys.begin(), new_keys.end(), key) == new_keys.end()) writer.erase(key);
  for (const auto& key : new_keys) writer.put(key, "");
  writer.put(customer_key(envelope.stream_id()), view.SerializeAsString());
  return Status::ok();
}

Result<customer::CustomerList> list_customers(Store& store, const CustomerFilter& filter,
                                              size_t page_size, const std::string& page_token) {
  // Walk the most selective index given; check the other filters on each row.
  std::string prefix = kCustomerPrefix;
  if (!filter.owner_id.empty())
    prefix = index_prefix("owner", filter.owner_id);
  else if (!filter.team.empty())
    prefix = index_prefix("team", filter.team);
  else if (!filter.region.empty())
    prefix = index_prefix("region", filter.region);
  else if (!filter.level.empty())
    prefix = index_prefix("level", filter.level);
  else if (!filter.stage.empty())
    prefix = index_prefix("stage", filter.stage);
  const bool by_index = prefix != kCustomerPrefix;

  customer::CustomerList page;
  auto* family = store.family(Store::Family::kReadModels);
  rocksdb::ReadOptions read_options;
  std::unique_ptr<const rocksdb::Snapshot, std::function<void(const rocksdb::Snapshot*)>> snapshot(
      store.db()->GetSnapshot(),
      [&store](const rocksdb::Snapshot* s) { store.db()->ReleaseSnapshot(s); });
  read_options.snapshot = snapshot.get();
  std::unique_ptr<rocksdb::Iterator> it(store.db()->NewIterator(read_options, family));
  std::string start = prefix + page_token;
  if (!page_token.empty()) start.push_back('\0');  // strictly after the token
  for (it->Seek(start); it->Valid(); it->Next()) {
    if (!it->key().starts_with(prefix)) break;
    std::string id = it->key().ToString().substr(prefix.size());
    customer::Customer c;
    if (by_index) {
      std::string bytes;
      auto s = from_rocksdb(store.db()->Get(read_options, family, customer_key(id), &bytes));
      if (s.code() == StatusCode::kNotFound)
        return Status::corruption("customers view: an index names customer '" + id +
                                  "', which has no row");
      if (!s.is_ok()) return s;
      if (!c.ParseFromString(bytes)) return Status::corruption("customers view: unreadable row");
    } else if (!c.ParseFromArray(it->value().data(), static_cast<int>(it->value().size()))) {
      return Status::corruption("customers view: unreadable row");
    }
    if ((!filter.owner_id.empty() && c.owner_id() != filter.owner_id) ||
        (!filter.team.empty() && c.team() != filter.team) ||
        (!filter.region.empty() && c.region() != filter.region) ||
        (!filter.level.empty() && customer::CustomerLevel_Name(c.level()) != filter.level) ||
        (!filter.stage.empty() && customer::CustomerStage_Name(c.stage()) != filter.stage)) {
      continue;
    }
    if (static_cast<size_t>(page.items_size()) == page_size) {
      page.set_next_page_token(page.items(page.items_size() - 1).id());
      break;
    }
    *page.add_items() = std::move(c);
  }
  if (!it->status().ok()) return from_rocksdb(it->status());
  return page;
}

}  // namespace crm
