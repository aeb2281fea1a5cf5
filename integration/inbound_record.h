// An inbound Kafka record and what it asks for (API.md, "Kafka"): parsing only, with no
// librdkafka or engine types, so the parser is small enough to fuzz (tests/fuzz).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "command.pb.h"

namespace crm {

// The actor of every inbound command.
inline constexpr char kInboundPrincipal[] = "inbound";
inline constexpr char kInboundRole[] = "integrator";

// Ids as the HTTP paths take them: letters, digits, '_', '.', '-', at most 64.
bool is_inbound_id(const std::string& text);

// One record as consumed, for parsing (no librdkafka types: the parser is pure and fuzzed).
struct InboundRecord {
  std::string topic;
  int32_t partition = 0;
  int64_t offset = 0;
  std::string key;
  std::string value;
  std::vector<std::pair<std::string, std::string>> headers;
  const std::string* header(std::string_view name) const;
};

// What a record asks for, or why it cannot be applied.
struct InboundCommand {
  events::CommandEnvelope command;  // stream and body set; the consumer adds actor and ids
  std::string order_id;             // order commands: the partition key is the order's customer
};
struct InboundRefusal {
  std::string rule;    // e.g. inbound.unknown_command
  std::string reason;  // a sentence
};

// The commands an inbound record may name in its `command` header.
const std::vector<std::string>& inbound_commands();

// Parses a record: header `command`, `content-type` application/json (default) — the HTTP body
// plus the ids the path would carry (customerId, orderId, itemId) — or application/x-protobuf
// — the body's protobuf, the ids in headers customer-id, order-id, item-id. Never throws.
std::variant<InboundCommand, InboundRefusal> parse_inbound(const InboundRecord& record);

// The idempotency key of a record: its `idempotency-key` header, or its position.
std::string inbound_idempotency_key(const InboundRecord& record);

}  // namespace crm
