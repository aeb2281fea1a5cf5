// The inbound record parser on its own (no Kafka): what a record asks for, or why not.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "customer.pb.h"
#include "integration/inbound_record.h"
#include "order.pb.h"

namespace crm {
namespace {

using ::testing::HasSubstr;

InboundRecord record(std::vector<std::pair<std::string, std::string>> headers, std::string value) {
  InboundRecord r;
  r.topic = "crm.inbound";
  r.partition = 3;
  r.offset = 41;
  r.headers = std::move(headers);
  r.value = std::move(value);
  return r;
}

InboundRefusal refused(const InboundRecord& r) {
  auto parsed = parse_inbound(r);
  EXPECT_TRUE(std::holds_alternative<InboundRefusal>(parsed));
  return std::holds_alternative<InboundRefusal>(parsed) ? std::get<InboundRefusal>(parsed)
                                                        : InboundRefusal{};
}

TEST(InboundParse, JsonBodyWithThePathsIdsBecomesTheCommand) {
  auto parsed = parse_inbound(
      record({{"command", "UpdateCustomer"}}, R"({"customerId": "cus_1", "region": "East"})"));
  ASSERT_TRUE(std::holds_alternative<InboundCommand>(parsed));
  const auto& command = std::get<InboundCommand>(parsed).command;
  EXPECT_EQ(command.stream_type(), "customer");
  EXPECT_EQ(command.stream_id(), "cus_1");
  EXPECT_EQ(command.partition_key(), "cus_1");
  EXPECT_EQ(command.update_customer().region(), "East");
}

TEST(InboundParse, OrderCommandsNameTheOrderAndTheItem) {
  auto parsed = parse_inbound(record({{"command", "ActivateOrderItem"}},
                                     R"({"orderId": "ord_9", "itemId": "it-1",
                                         "result": "ACTIVATED"})"));
  ASSERT_TRUE(std::holds_alternative<InboundCommand>(parsed));
  const auto& inbound = std::get<InboundCommand>(parsed);
  EXPECT_EQ(inbound.order_id, "ord_9");
  EXPECT_EQ(inbound.command.stream_id(), "order:ord_9");
  EXPECT_EQ(inbound.command.record_activation().item_id(), "it-1");
}

TEST(InboundParse, ProtobufBodiesTakeTheirIdsFromHeaders) {
  customer::UpdateCustomer body;
  body.set_region("West");
  auto parsed = parse_inbound(record({{"command", "UpdateCustomer"},
                                      {"content-type", "application/x-protobuf"},
                                      {"customer-id", "cus_2"}},
                                     body.SerializeAsString()));
  ASSERT_TRUE(std::holds_alternative<InboundCommand>(parsed));
  EXPECT_EQ(std::get<InboundCommand>(parsed).command.stream_id(), "cus_2");
  EXPECT_EQ(std::get<InboundCommand>(parsed).command.update_customer().region(), "West");
  EXPECT_EQ(refused(record({{"command", "UpdateCustomer"},
                            {"content-type", "application/x-protobuf"},
                            {"customer-id", "cus_2"}},
                           "\xff\xff\xff"))
                .rule,
            "inbound.malformed");
}

TEST(InboundParse, RegistrationsWithoutAnIdGetOneFromTheirIdempotencyKey) {
  auto first = parse_inbound(record({{"command", "RegisterCustomer"}, {"idempotency-key", "k"}},
                                    R"({"name": "A", "kind": "ENTERPRISE"})"));
  auto again = parse_inbound(record({{"command", "RegisterCustomer"}, {"idempotency-key", "k"}},
                                    R"({"name": "A", "kind": "ENTERPRISE"})"));
  ASSERT_TRUE(std::holds_alternative<InboundCommand>(first));
  const std::string id = std::get<InboundCommand>(first).command.stream_id();
  EXPECT_THAT(id, ::testing::StartsWith("cus_"));
  EXPECT_EQ(std::get<InboundCommand>(again).command.stream_id(), id);
  EXPECT_EQ(inbound_idempotency_key(record({}, "")), "kafka:crm.inbound:3:41");
}

TEST(InboundParse, TheBodyReadsAsOverHttpEveryDigitAndFieldAsWritten) {
  auto parsed = parse_inbound(record({{"command", "RecordPayment"}},
                                     R"({"orderId": "ord_1", "kind": "PAYMENT",
                                         "amount": {"amountMinor": 9007199254740993,
                                                    "currency": "CNY"},
                                         "paymentRef": "A", "payment_ref": "B"})"));
  ASSERT_TRUE(std::holds_alternative<InboundCommand>(parsed));
  const auto& payment = std::get<InboundCommand>(parsed).command.record_payment().payment();
  EXPECT_EQ(payment.amount().amount_minor(), 9007199254740993);  // above 2^53, not rounded
  // Named twice: the same one wins every time, as parse_json decides for an HTTP body.
  for (int i = 0; i < 20; ++i) {
    auto again = parse_inbound(record({{"command", "RecordPayment"}},
                                      R"({"orderId": "ord_1", "kind": "PAYMENT",
                                          "amount": {"amountMinor": 9007199254740993,
                                                     "currency": "CNY"},
                                          "paymentRef": "A", "payment_ref": "B"})"));
    ASSERT_TRUE(std::holds_alternative<InboundCommand>(again));
    EXPECT_EQ(std::get<InboundCommand>(again).command.record_payment().payment().payment_ref(),
              payment.payment_ref());
  }
  // An id written with escapes is read as JSON reads it.
  auto escaped = parse_inbound(
      record({{"command", "UpdateCustomer"}}, R"({"region": "x", "customerId": "cus_1"})"));
  ASSERT_TRUE(std::holds_alternative<InboundCommand>(escaped));
  EXPECT_EQ(std::get<InboundCommand>(escaped).command.stream_id(), "cus_1");
  // Anything after the object is refused, as parse_json refuses it.
  EXPECT_EQ(refused(record({{"command", "UpdateCustomer"}},
                           R"({"customerId": "c", "region": "x"} trailing)"))
                .rule,
            "inbound.malformed");
  // Several unknown fields: the same one named every time.
  const auto first = refused(record({{"command", "UpdateCustomer"}},
                                    R"({"customerId": "c", "zz": 1, "aa": 2, "mm": 3})"))
                         .reason;
  for (int i = 0; i < 20; ++i) {
    EXPECT_EQ(refused(record({{"command", "UpdateCustomer"}},
                             R"({"customerId": "c", "zz": 1, "aa": 2, "mm": 3})"))
                  .reason,
              first);
  }
}

TEST(InboundParse, EveryRefusalNamesItsRule) {
  EXPECT_EQ(refused(record({}, "{}")).rule, "inbound.command_missing");
  EXPECT_EQ(refused(record({{"command", "Teleport"}}, "{}")).rule, "inbound.unknown_command");
  EXPECT_EQ(refused(record({{"command", "RegisterCustomer"}}, "{\"name\": ")).rule,
            "inbound.malformed");
  EXPECT_EQ(refused(record({{"command", "RegisterCustomer"}}, "\xc3\x28")).rule,
            "inbound.malformed");
  auto unknown_field = refused(record({{"command", "RegisterCustomer"}}, R"({"nmae": "A"})"));
  EXPECT_EQ(unknown_field.rule, "inbound.malformed");
  EXPECT_THAT(unknown_field.reason, HasSubstr("nmae"));
  EXPECT_EQ(
      refused(record({{"command", "RegisterCustomer"}, {"content-type", "text/csv"}}, "{}")).rule,
      "inbound.content_type");
  EXPECT_EQ(refused(record({{"command", "UpdateCustomer"}}, R"({"region": "x"})")).rule,
            "inbound.customer_id_required");
  EXPECT_EQ(refused(record({{"command", "RecordPayment"}}, "{}")).rule,
            "inbound.order_id_required");
  EXPECT_EQ(refused(record({{"command", "ActivateOrderItem"}}, R"({"orderId": "o"})")).rule,
            "inbound.item_id_required");
  EXPECT_EQ(
      refused(record({{"command", "UpdateCustomer"}}, R"({"customerId": "a/b", "region": "x"})"))
          .rule,
      "inbound.id");
  EXPECT_EQ(refused(record({{"command", "UpdateCustomer"}, {"idempotency-key", "has space"}},
                           R"({"customerId": "c", "region": "x"})"))
                .rule,
            "inbound.idempotency_key");
  EXPECT_EQ(refused(record({{"command", "UpdateCustomer"}}, R"({"customerId": 7})")).rule,
            "inbound.malformed");
}

}  // namespace
}  // namespace crm
