#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>

#include <algorithm>
#include <cctype>
#include <optional>
#include <string_view>
#include <vector>

#include "aggregates/order/order.h"
#include "api/ids.h"
#include "api/json.h"
#include "customer.pb.h"
#include "integration/inbound_record.h"
#include "order.pb.h"
#include "workflow/aggregate_handler.h"

namespace crm {
namespace {

InboundRefusal refusal(std::string rule, std::string reason) {
  return InboundRefusal{std::move(rule), std::move(reason)};
}

// The command's body message inside `command`, by the name of the `command` header.
google::protobuf::Message* body_of(const std::string& name, events::CommandEnvelope& command) {
  if (name == "RegisterCustomer") return command.mutable_register_customer();
  if (name == "UpdateCustomer") return command.mutable_update_customer();
  if (name == "AddContact") return command.mutable_add_contact();
  if (name == "RecordPayment") return command.mutable_record_payment()->mutable_payment();
  if (name == "ActivateOrderItem") return command.mutable_record_activation();
  return nullptr;
}

// The ids the HTTP path would carry, and the body without them.
struct Ids {
  std::string customer_id, order_id, item_id;
};

// The members of a JSON object at its top level, as spans of its text: each member's name as
// written (escapes left in), where the member starts (after the '{' or ','), where its value
// starts and where it ends. nullopt when the text is not a JSON object this walk can follow —
// then parse_json says what is wrong with it.
struct Member {
  std::string_view name;
  size_t start, value, end;
};
std::optional<std::vector<Member>> top_level_members(std::string_view text) {
  size_t i = 0;
  auto skip_space = [&] {
    while (i < text.size() &&
           (text[i] == ' ' || text[i] == '\t' || text[i] == '\n' || text[i] == '\r'))
      ++i;
  };
  auto skip_string = [&] {  // at the opening quote; after it, past the closing one
    for (++i; i < text.size(); ++i) {
      if (text[i] == '\\') {
        ++i;
      } else if (text[i] == '"') {
        ++i;
        return true;
      }
    }
    return false;
  };
  skip_space();
  if (i >= text.size() || text[i] != '{') return std::nullopt;
  ++i;
  std::vector<Member> members;
  size_t member_start = i;
  skip_space();
  if (i < text.size() && text[i] == '}') {
    ++i;
    skip_space();
    if (i != text.size()) return std::nullopt;
    return members;
  }
  while (true) {
    skip_space();
    if (i >= text.size() || text[i] != '"') return std::nullopt;
    const size_t name_at = i + 1;
    if (!skip_string()) return std::nullopt;
    const std::string_view name = text.substr(name_at, i - 1 - name_at);
    skip_space();
    if (i >= text.size() || text[i] != ':') return std::nullopt;
    ++i;
    skip_space();
    const size_t value_at = i;
    int depth = 0;
    while (i < text.size()) {
      const char c = text[i];
      if (c == '"') {
        if (!skip_string()) return std::nullopt;
        continue;
      }
      if (c == '{' || c == '[') ++depth;
      if (c == '}' || c == ']') {
        if (depth == 0) break;
        --depth;
      }
      if (c == ',' && depth == 0) break;
      ++i;
    }
    if (i >= text.size() || i == value_at) return std::nullopt;
    size_t value_end = i;
    while (value_end > value_at && (text[value_end - 1] == ' ' || text[value_end - 1] == '\t' ||
                                    text[value_end - 1] == '\n' || text[value_end - 1] == '\r'))
      --value_end;
    members.push_back({name, member_start, value_at, value_end});
    if (text[i] == '}') {
      ++i;
      skip_space();
      if (i != text.size()) return std::nullopt;  // something after the object
      return members;
    }
    member_start = ++i;  // past the ','
  }
}

// Reads a JSON record: the ids the path would carry are taken out of the top-level object as
// written, and the rest of the text goes to parse_json unchanged, so the body reads exactly as
// the same body over HTTP (numbers keep every digit, a field named twice resolves the same way).
std::variant<Ids, InboundRefusal> read_json(const InboundRecord& record,
                                            google::protobuf::Message* body) {
  if (!api::is_valid_utf8(record.value))
    return refusal("inbound.malformed", "Expected a UTF-8 JSON body, but it is not valid UTF-8");
  Ids ids;
  std::string rest = record.value;
  if (auto members = top_level_members(record.value)) {
    const auto* descriptor = body->GetDescriptor();
    std::string kept;  // the other members, each as written
    for (const auto& member : *members) {
      std::string* slot = member.name == "customerId" ? &ids.customer_id
                          : member.name == "orderId"  ? &ids.order_id
                          : member.name == "itemId"   ? &ids.item_id
                                                      : nullptr;
      const std::string_view written =
          std::string_view(record.value).substr(member.start, member.end - member.start);
      bool own_field = slot == nullptr;
      if (slot != nullptr) {
        // The value as JSON decodes it (escapes and all): a string, or the record is refused.
        google::protobuf::Value value;
        const std::string text = record.value.substr(member.value, member.end - member.value);
        if (!google::protobuf::util::JsonStringToMessage(text, &value).ok() ||
            value.kind_case() != google::protobuf::Value::kStringValue) {
          return refusal("inbound.malformed",
                         "Expected " + std::string(member.name) + " to be a string");
        }
        *slot = value.string_value();
        // The body's own field of that name (CreateOrder's customerId) stays in the body.
        for (int f = 0; f < descriptor->field_count(); ++f)
          own_field = own_field || descriptor->field(f)->json_name() == member.name;
      }
      if (!own_field) continue;
      if (!kept.empty()) kept += ',';
      kept += written;
    }
    rest = "{" + kept + "}";
  }
  if (auto error = api::parse_json(rest, body)) {
    return refusal("inbound.malformed", "Expected the body of " + body->GetDescriptor()->name() +
                                            ", but: " + error->message);
  }
  return ids;
}

}  // namespace

bool is_inbound_id(const std::string& text) {
  return !text.empty() && text.size() <= 64 &&
         std::all_of(text.begin(), text.end(), [](unsigned char c) {
           return std::isalnum(c) != 0 || c == '_' || c == '.' || c == '-';
         });
}

const std::string* InboundRecord::header(std::string_view name) const {
  for (const auto& [key, value] : headers)
    if (key == name) return &value;
  return nullptr;
}

const std::vector<std::string>& inbound_commands() {
  static const std::vector<std::string> names = {"RegisterCustomer", "UpdateCustomer", "AddContact",
                                                 "RecordPayment", "ActivateOrderItem"};
  return names;
}

std::string inbound_idempotency_key(const InboundRecord& record) {
  if (const auto* key = record.header("idempotency-key"); key && !key->empty()) return *key;
  return "kafka:" + record.topic + ":" + std::to_string(record.partition) + ":" +
         std::to_string(record.offset);
}

std::variant<InboundCommand, InboundRefusal> parse_inbound(const InboundRecord& record) {
  const std::string* name = record.header("command");
  if (name == nullptr || name->empty()) {
    return refusal("inbound.command_missing",
                   "Expected a header 'command' naming the command (RegisterCustomer, "
                   "UpdateCustomer, AddContact, RecordPayment or ActivateOrderItem)");
  }
  InboundCommand parsed;
  google::protobuf::Message* body = body_of(*name, parsed.command);
  if (body == nullptr) {
    return refusal("inbound.unknown_command",
                   "Unknown command '" + *name +
                       "'; expected RegisterCustomer, UpdateCustomer, AddContact, RecordPayment or "
                       "ActivateOrderItem");
  }
  if (const auto* key = record.header("idempotency-key");
      key && (key->size() > 200 || !std::all_of(key->begin(), key->end(),
                                                [](char c) { return c >= 0x21 && c <= 0x7e; }))) {
    return refusal("inbound.idempotency_key",
                   "Expected an idempotency-key of at most 200 printable ASCII characters");
  }
  const std::string* type = record.header("content-type");
  Ids ids;
  if (type == nullptr || type->empty() || *type == "application/json") {
    auto read = read_json(record, body);
    if (auto* r = std::get_if<InboundRefusal>(&read)) return *r;
    ids = std::get<Ids>(read);
  } else if (*type == "application/x-protobuf") {
    if (!body->ParseFromString(record.value))
      return refusal("inbound.malformed",
                     "Expected the protobuf of " + body->GetDescriptor()->full_name());
    for (auto [header, slot] :
         {std::pair{"customer-id", &ids.customer_id}, std::pair{"order-id", &ids.order_id},
          std::pair{"item-id", &ids.item_id}}) {
      if (const auto* value = record.header(header)) *slot = *value;
    }
  } else {
    return refusal("inbound.content_type", "Unknown content-type '" + *type +
                                               "'; expected application/json or "
                                               "application/x-protobuf");
  }
  for (const auto* id : {&ids.customer_id, &ids.order_id, &ids.item_id}) {
    if (!id->empty() && !is_inbound_id(*id))
      return refusal("inbound.id",
                     "Expected ids of at most 64 letters, digits, '_', '.' or '-', "
                     "not '" +
                         *id + "'");
  }
  auto& command = parsed.command;
  if (*name == "RegisterCustomer") {
    const std::string id =
        !ids.customer_id.empty()
            ? ids.customer_id
            : api::customer_id_for_key(kInboundPrincipal, inbound_idempotency_key(record));
    command.set_stream_type(kCustomerStream);
    command.set_stream_id(id);
    command.set_partition_key(id);
  } else if (*name == "UpdateCustomer" || *name == "AddContact") {
    if (ids.customer_id.empty())
      return refusal("inbound.customer_id_required", "Expected the customerId of " + *name);
    command.set_stream_type(kCustomerStream);
    command.set_stream_id(ids.customer_id);
    command.set_partition_key(ids.customer_id);
  } else {
    if (ids.order_id.empty())
      return refusal("inbound.order_id_required", "Expected the orderId of " + *name);
    if (*name == "ActivateOrderItem") {
      auto& activation = *command.mutable_record_activation();
      if (ids.item_id.empty() && activation.item_id().empty())
        return refusal("inbound.item_id_required", "Expected the itemId of ActivateOrderItem");
      if (!ids.item_id.empty() && !activation.item_id().empty() &&
          ids.item_id != activation.item_id())
        return refusal("inbound.item_id", "Expected one itemId, but got '" + ids.item_id +
                                              "' and '" + activation.item_id() + "'");
      if (!ids.item_id.empty()) activation.set_item_id(ids.item_id);
    }
    command.set_stream_type(kOrderStream);
    command.set_stream_id(std::string(order::kStreamPrefix) + ids.order_id);
    parsed.order_id = ids.order_id;  // the partition key is the order's customer
  }
  return parsed;
}

}  // namespace crm
