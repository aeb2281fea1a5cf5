// Orders over HTTP (API.md "Orders"): drafts, items, the preview with its violations and derived
// actions, submission, cancellation, fulfilment results and the product instances they leave
// on the customer, reads, lists, history, roles, idempotency and If-Match.
#include <gmock/gmock.h>

#include "catalog.pb.h"
#include "order.pb.h"
#include "task.pb.h"
#include "tests/api/api_fixture.h"

namespace crm::api_test {
namespace {

using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

constexpr char kPhoneLine[] = R"({
  "name": "Phone line", "kind": "SINGLE",
  "pricingPlans": [{"id": "std", "kind": "STANDARD",
    "oneTime": {"amountMinor": 5000, "currency": "CNY"},
    "recurring": {"amountMinor": 2900, "currency": "CNY"},
    "discountPackages": [{"id": "base", "base": true, "percentOff": 10,
                          "effectiveModes": ["IMMEDIATE", "NEXT_CYCLE"]}]},
    {"id": "gold", "kind": "DISCOUNTED",
     "recurring": {"amountMinor": 4900, "currency": "CNY"}}],
  "deposit": {"amount": {"amountMinor": 10000, "currency": "CNY"}, "scope": "OBJECT"}})";

constexpr char kCallPack[] = R"({
  "name": "Call package", "kind": "SINGLE", "requires": ["PHONE-LINE"],
  "pricingPlans": [{"id": "p", "kind": "DISCOUNTED",
    "recurring": {"amountMinor": 1000, "currency": "CNY"},
    "discountPackages": [{"id": "promo", "amountOff": {"amountMinor": 200, "currency": "CNY"},
                          "effectiveModes": ["IMMEDIATE"]}]}]})";

constexpr char kAcme[] = R"({"name": "Acme", "kind": "ENTERPRISE", "level": "VIP",
                             "creditLevel": "A", "region": "North", "ownerId": "alice"})";

class OrdersHttp : public ApiTest {
 protected:
  void SetUp() override {
    ApiTest::SetUp();
    ASSERT_EQ(put("/v1/catalog/offers/PHONE-LINE", kPhoneLine).status, 201);
    ASSERT_EQ(put("/v1/catalog/offers/CALL-PACK", kCallPack).status, 201);
    customer_id_ = register_customer(kAcme).id();
  }

  order::Order order_of(const Reply& reply, int status,
                        std::source_location where = std::source_location::current()) {
    auto trace = called_from(where);
    EXPECT_EQ(reply.status, status) << reply.body;
    auto order = parse_json<order::Order>(reply.body);
    if (!order.position().empty()) last_position_ = order.position();
    return order;
  }
  order::Order create_order(std::source_location where = std::source_location::current()) {
    return order_of(post("/v1/orders", R"({"customerId": ")" + customer_id_ +
                                           R"(", "channel": "web", "note": "new office"})"),
                    201, where);
  }
  order::Order add_item(const std::string& order_id, const std::string& json,
                        std::source_location where = std::source_location::current()) {
    return order_of(post("/v1/orders/" + order_id + "/items", json), 201, where);
  }
  order::Receipt preview(const std::string& order_id,
                         std::source_location where = std::source_location::current()) {
    auto trace = called_from(where);
    auto reply = get("/v1/orders/" + order_id + "/preview");
    EXPECT_EQ(reply.status, 200) << reply.body;
    return parse_json<order::Receipt>(reply.body);
  }
  order::Order activate(const std::string& order_id, const std::string& item_id,
                        const std::string& result,
                        std::source_location where = std::source_location::current()) {
    return order_of(post("/v1/orders/" + order_id + "/items/" + item_id + ":activate",
                         R"({"result": ")" + result + R"(", "detail": "line test ok"})"),
                    200, where);
  }
  // Records a payment on an order, expecting `status`.
  order::Order pay(const std::string& order_id, const std::string& kind, int64_t amount,
                   const std::string& ref, int status = 201,
                   std::source_location where = std::source_location::current()) {
    return order_of(post("/v1/orders/" + order_id + "/payments",
                         R"({"paymentRef": ")" + ref + R"(", "kind": ")" + kind +
                             R"(", "amount": {"amountMinor": )" + std::to_string(amount) +
                             R"(, "currency": "CNY"}, "method": "CARD"})"),
                    status, where);
  }
  // An order with one phone line, submitted.
  order::Order submitted_order(const std::string& items_json = R"({"offerId": "PHONE-LINE",
                                                                  "pricingPlanId": "std"})") {
    auto order = create_order();
    add_item(order.id(), items_json);
    return order_of(post("/v1/orders/" + order.id() + ":submit", ""), 200);
  }
  std::vector<std::string> listed(const std::string& query) {
    auto reply = get("/v1/orders?" + query + "&minPosition=" + last_position_);
    EXPECT_EQ(reply.status, 200) << reply.body;
    std::vector<std::string> ids;
    const auto list = parse_json<order::OrderList>(reply.body);
    for (const auto& o : list.items()) ids.push_back(o.id());
    return ids;
  }
  std::string customer_id_;
  std::string last_position_;
};

TEST_F(OrdersHttp, AClerkSeesEveryErrorInThePreviewFixesItSubmitsAndTheOrderCompletes) {
  auto draft = create_order();
  EXPECT_EQ(draft.state(), order::DRAFT);
  EXPECT_EQ(draft.owner_id(), "alice");
  EXPECT_EQ(draft.customer_id(), customer_id_);

  auto reply = post("/v1/orders/" + draft.id() + "/items",
                    R"({"offerId": "CALL-PACK", "discountPackageIds": ["promo"]})");
  auto with_calls = order_of(reply, 201);
  EXPECT_EQ(reply.header("Location"), "/v1/orders/" + draft.id() + "/items/it-1");
  EXPECT_EQ(with_calls.items(0).pricing_plan_id(), "p");

  auto receipt = preview(draft.id());
  EXPECT_FALSE(receipt.submittable());
  ASSERT_EQ(receipt.violations_size(), 1);
  EXPECT_EQ(receipt.violations(0).rule(), "offer.requires");
  EXPECT_EQ(receipt.violations(0).derived_action().offer_id(), "PHONE-LINE");
  EXPECT_EQ(receipt.violations(0).derived_action().message(), "add offer PHONE-LINE first");

  auto refused = expect_problem(post("/v1/orders/" + draft.id() + ":submit", ""), 422);
  EXPECT_THAT(rules_of(refused), ElementsAre("offer.requires"));
  EXPECT_THAT(refused.detail(), HasSubstr("add offer PHONE-LINE first"));

  add_item(draft.id(), R"({"offerId": "PHONE-LINE", "pricingPlanId": "std", "quantity": 2})");
  receipt = preview(draft.id());
  ASSERT_TRUE(receipt.submittable()) << receipt.DebugString();
  // Phone lines: one-time 2×5000 −10 % = 9000; recurring 2×2900 −10 % = 5220.
  // Call package: recurring 1000 − 200 = 800. Deposit: 2 × 10000 (per object).
  ASSERT_EQ(receipt.totals_size(), 1);
  EXPECT_EQ(receipt.totals(0).one_time().amount_minor(), 9000);
  EXPECT_EQ(receipt.totals(0).recurring().amount_minor(), 6020);
  EXPECT_EQ(receipt.totals(0).deposit().amount_minor(), 20000);
  EXPECT_EQ(receipt.totals(0).discount().amount_minor(), 1000 + 580 + 200);

  auto approved = order_of(post("/v1/orders/" + draft.id() + ":submit", ""), 200);
  EXPECT_EQ(approved.state(), order::APPROVED);
  EXPECT_EQ(approved.receipt().totals(0).recurring().amount_minor(), 6020);
  EXPECT_EQ(approved.items(1).offer_version(), 1u);
  EXPECT_EQ(preview(draft.id()).SerializeAsString(), approved.receipt().SerializeAsString())
      << "a submitted order's preview is the receipt it was submitted with";

  expect_problem(post("/v1/orders/" + draft.id() + "/items", R"({"offerId": "PHONE-LINE",
                                                                 "pricingPlanId": "std"})"),
                 409);
  auto unpaid = expect_problem(
      post("/v1/orders/" + draft.id() + "/items/it-1:activate", R"({"result": "ACTIVATED"})"), 409);
  EXPECT_THAT(rules_of(unpaid), ElementsAre("deposit.unpaid"));
  pay(draft.id(), "DEPOSIT", 20000, "bank-1");
  EXPECT_EQ(activate(draft.id(), "it-1", "ACTIVATED").state(), order::IN_PROGRESS);
  auto done = activate(draft.id(), "it-2", "ACTIVATED");
  EXPECT_EQ(done.state(), order::COMPLETED);
  EXPECT_EQ(done.items(0).activation_detail(), "line test ok");

  auto acme = get_customer(customer_id_);
  ASSERT_EQ(acme.product_instances_size(), 2);
  EXPECT_EQ(acme.product_instances(1).offer_id(), "PHONE-LINE");
  EXPECT_EQ(acme.product_instances(1).quantity(), 2u);
  EXPECT_EQ(acme.product_instances(1).order_id(), draft.id());

  auto got = get("/v1/orders/" + draft.id());
  EXPECT_EQ(order_of(got, 200).state(), order::COMPLETED);
  EXPECT_EQ(got.header("ETag"), "\"" + std::to_string(done.version()) + "\"");

  auto history = parse_json<api::HistoryPage>(get("/v1/orders/" + draft.id() + "/history").body);
  std::vector<api::HistoryItem> items(history.items().begin(), history.items().end());
  EXPECT_THAT(types_of(items), ElementsAre("OrderCreated", "ItemAdded", "ItemAdded",
                                           "OrderSubmitted", "OrderApproved", "PaymentRecorded",
                                           "ItemActivated", "ItemActivated", "OrderClosed"));
}

TEST_F(OrdersHttp, ModifyAndRemoveChangeTheInstancesTheCustomerHolds) {
  auto first = submitted_order();
  pay(first.id(), "DEPOSIT", 10000, "dep-first");
  activate(first.id(), "it-1", "ACTIVATED");
  const std::string instance = get_customer(customer_id_).product_instances(0).id();

  auto change = create_order();
  add_item(change.id(), R"({"action": "MODIFY", "offerId": "PHONE-LINE", "pricingPlanId": "gold",
                            "productInstanceId": ")" +
                            instance + R"("})");
  EXPECT_EQ(preview(change.id()).totals(0).recurring().amount_minor(), 4900);
  order_of(post("/v1/orders/" + change.id() + ":submit", ""), 200);
  activate(change.id(), "it-1", "ACTIVATED");
  EXPECT_EQ(get_customer(customer_id_).product_instances(0).pricing_plan_id(), "gold");

  auto disconnect = create_order();
  add_item(disconnect.id(), R"({"action": "REMOVE", "offerId": "PHONE-LINE",
                                "productInstanceId": ")" +
                                instance + R"("})");
  order_of(post("/v1/orders/" + disconnect.id() + ":submit", ""), 200);
  // The disconnect opened a retention task (拆机挽留): it waits for its outcome.
  const std::string retention = "/v1/tasks/retain-" + disconnect.id() + "-it-1";
  auto task = parse_json<task::Task>(get(retention).body);
  EXPECT_EQ(task.state(), task::OPEN);
  EXPECT_EQ(task.rule(), "order.disconnect.retention");
  auto waiting = expect_problem(
      post("/v1/orders/" + disconnect.id() + "/items/it-1:activate", R"({"result": "ACTIVATED"})"),
      409);
  EXPECT_THAT(rules_of(waiting), ElementsAre("retention.open"));
  expect_problem(post(retention + ":complete", R"({"outcome": "MAYBE"})"), 422);
  ASSERT_EQ(post(retention + ":complete", R"({"outcome": "LOST"})").status, 200);
  activate(disconnect.id(), "it-1", "ACTIVATED");
  EXPECT_THAT(get_customer(customer_id_).product_instances(), IsEmpty());

  auto again = create_order();
  add_item(again.id(), R"({"action": "REMOVE", "offerId": "PHONE-LINE",
                           "productInstanceId": ")" +
                           instance + R"("})");
  EXPECT_THAT(rules_of(expect_problem(post("/v1/orders/" + again.id() + ":submit", ""), 422)),
              ElementsAre("product_instance.not_held"));
}

TEST_F(OrdersHttp, FailedItemsEndPartialOrFailed) {
  auto order = submitted_order(R"({"offerId": "PHONE-LINE", "pricingPlanId": "std"})");
  auto failed = activate(order.id(), "it-1", "FAILED");
  EXPECT_EQ(failed.state(), order::FAILED);
  EXPECT_THAT(get_customer(customer_id_).product_instances(), IsEmpty());
  expect_problem(
      post("/v1/orders/" + order.id() + "/items/it-1:activate", R"({"result": "ACTIVATED"})"), 409);

  auto mixed = create_order();
  add_item(mixed.id(), R"({"offerId": "PHONE-LINE", "pricingPlanId": "std"})");
  add_item(mixed.id(), R"({"offerId": "PHONE-LINE", "pricingPlanId": "gold"})");
  order_of(post("/v1/orders/" + mixed.id() + ":submit", ""), 200);
  pay(mixed.id(), "DEPOSIT", 20000, "dep-mixed");
  activate(mixed.id(), "it-1", "ACTIVATED");
  EXPECT_EQ(activate(mixed.id(), "it-2", "FAILED").state(), order::PARTIAL);
  EXPECT_EQ(get_customer(customer_id_).product_instances_size(), 1);
}

TEST_F(OrdersHttp, ItemsAreChangedAndRemovedWhileTheOrderIsADraft) {
  auto order = create_order();
  add_item(order.id(), R"({"offerId": "PHONE-LINE", "pricingPlanId": "std"})");
  auto changed =
      order_of(patch("/v1/orders/" + order.id() + "/items/it-1", R"({"quantity": 3, "effectiveMode":
                                                            "NEXT_CYCLE"})"),
               200);
  EXPECT_EQ(changed.items(0).quantity(), 3u);
  EXPECT_EQ(changed.items(0).effective_mode(), catalog::NEXT_CYCLE);
  EXPECT_EQ(changed.items(0).pricing_plan_id(), "std");

  expect_problem(patch("/v1/orders/" + order.id() + "/items/it-9", R"({"quantity": 2})"), 404);
  auto bad = expect_problem(
      patch("/v1/orders/" + order.id() + "/items/it-1", R"({"pricingPlanId": "platinum"})"), 422);
  EXPECT_THAT(rules_of(bad), ElementsAre("plan.unknown"));
  expect_problem(patch("/v1/orders/" + order.id() + "/items/it-1", R"({"colour": "red"})"), 400);

  auto removed = order_of(del("/v1/orders/" + order.id() + "/items/it-1"), 200);
  EXPECT_THAT(removed.items(), IsEmpty());
  expect_problem(del("/v1/orders/" + order.id() + "/items/it-1"), 404);
  EXPECT_THAT(rules_of(expect_problem(post("/v1/orders/" + order.id() + ":submit", ""), 422)),
              ElementsAre("order.empty"));
}

TEST_F(OrdersHttp, BadItemsAreRefusedNamingTheField) {
  auto order = create_order();
  auto unknown =
      expect_problem(post("/v1/orders/" + order.id() + "/items", R"({"offerId": "NOPE"})"), 422);
  EXPECT_THAT(fields_of(unknown), ElementsAre("offerId"));
  auto plan = expect_problem(
      post("/v1/orders/" + order.id() + "/items", R"({"offerId": "PHONE-LINE"})"), 422);
  EXPECT_THAT(rules_of(plan), ElementsAre("plan.required"));
  expect_problem(post("/v1/orders/" + order.id() + "/items", R"({"offerId": "PHONE-LINE",
                                                                 "size": 1})"),
                 400);
  auto manual = expect_problem(post("/v1/orders/" + order.id() + "/items",
                                    R"({"offerId": "PHONE-LINE", "pricingPlanId": "std",
               "manualPrice": {"amountMinor": -5, "currency": "CNY"}})"),
                               422);
  EXPECT_THAT(fields_of(manual), ElementsAre("manualPrice.amountMinor"));
}

TEST_F(OrdersHttp, AManualPriceIsMarkedNonStandardInThePreview) {
  auto order = create_order();
  add_item(order.id(), R"({"offerId": "PHONE-LINE", "pricingPlanId": "std",
                           "manualPrice": {"amountMinor": 1999, "currency": "CNY"}})");
  auto receipt = preview(order.id());
  EXPECT_TRUE(receipt.non_standard_price());
  EXPECT_TRUE(receipt.lines(0).non_standard_price());
  EXPECT_EQ(receipt.lines(0).recurring().amount_minor(), 1999);
}

TEST_F(OrdersHttp, AnOrderForAnUnknownCustomerIsRefusedAndUnknownOrdersAre404) {
  auto problem = expect_problem(post("/v1/orders", R"({"customerId": "cus_nobody"})"), 422);
  EXPECT_THAT(rules_of(problem), ElementsAre("customer.not_found"));
  expect_problem(get("/v1/orders/ord_nothing"), 404);
  expect_problem(get("/v1/orders/ord_nothing/preview"), 404);
  expect_problem(post("/v1/orders/ord_nothing:submit", ""), 404);
  expect_problem(post("/v1/orders/ord_nothing/items", R"({"offerId": "PHONE-LINE"})"), 404);
  expect_problem(get("/v1/orders/ord_nothing/history"), 404);
}

TEST_F(OrdersHttp, CancelRecordsTheReasonOnce) {
  auto order = create_order();
  auto cancelled =
      order_of(post("/v1/orders/" + order.id() + ":cancel", R"({"reason": "duplicate"})"), 200);
  EXPECT_EQ(cancelled.state(), order::CANCELLED);
  EXPECT_EQ(cancelled.cancel_reason(), "duplicate");
  expect_problem(post("/v1/orders/" + order.id() + ":cancel", ""), 409);
}

TEST_F(OrdersHttp, IdempotencyKeysAndIfMatch) {
  auto first = post("/v1/orders", R"({"customerId": ")" + customer_id_ + R"("})",
                    {{"Idempotency-Key", "order-1"}});
  auto again = post("/v1/orders", R"({"customerId": ")" + customer_id_ + R"("})",
                    {{"Idempotency-Key", "order-1"}});
  const auto id = order_of(first, 201).id();
  EXPECT_EQ(order_of(again, 201).id(), id);
  EXPECT_EQ(again.header("Idempotent-Replayed"), "true");

  auto item =
      post("/v1/orders/" + id + "/items", R"({"offerId": "PHONE-LINE", "pricingPlanId": "std"})",
           {{"Idempotency-Key", "item-1"}});
  auto item_again =
      post("/v1/orders/" + id + "/items", R"({"offerId": "PHONE-LINE", "pricingPlanId": "std"})",
           {{"Idempotency-Key", "item-1"}});
  EXPECT_EQ(order_of(item_again, 201).items_size(), 1) << "the item was added once";
  EXPECT_EQ(item_again.header("Location"), item.header("Location"));

  expect_problem(post("/v1/orders/" + id + ":submit", "", {{"If-Match", "\"1\""}}), 412);
  EXPECT_EQ(
      order_of(post("/v1/orders/" + id + ":submit", "", {{"If-Match", "\"2\""}}), 200).state(),
      order::APPROVED);
}

TEST_F(OrdersHttp, ListsByCustomerStateAndOwner) {
  auto draft = create_order();
  auto approved = submitted_order();
  auto other = register_customer(R"({"name": "Beta", "kind": "INDIVIDUAL", "ownerId": "bob"})");
  auto beta_order = order_of(post("/v1/orders", R"({"customerId": ")" + other.id() + R"("})"), 201);

  EXPECT_THAT(listed("customerId=" + customer_id_),
              ::testing::UnorderedElementsAre(draft.id(), approved.id()));
  EXPECT_THAT(listed("customerId=" + customer_id_ + "&state=APPROVED"), ElementsAre(approved.id()));
  EXPECT_THAT(listed("ownerId=bob"), ElementsAre(beta_order.id()));
  auto page = parse_json<order::OrderList>(
      get("/v1/orders?customerId=" + customer_id_ + "&pageSize=1").body);
  ASSERT_EQ(page.items_size(), 1);
  EXPECT_FALSE(page.next_page_token().empty());

  expect_problem(get("/v1/orders?state=LOST"), 400);
  expect_problem(get("/v1/orders?color=red"), 400);
  expect_problem(get("/v1/orders?pageSize=501"), 400);
}

TEST_F(OrdersHttp, RolesDecideWhoMayOrderAndWhoMayRecordFulfilment) {
  const auto auditor = token_with_roles("audrey", R"("auditor")");
  const auto sales = token_with_roles("alice", R"("sales")");  // the customer's owner
  const auto network = token_with_roles("net", R"("integrator")");
  auto order = submitted_order();
  pay(order.id(), "DEPOSIT", 10000, "dep-roles");

  EXPECT_EQ(as(auditor, {"GET", "/v1/orders/" + order.id(), "", kJson, {}}).status, 200);
  expect_problem(
      as(auditor,
         {"POST", "/v1/orders", R"({"customerId": ")" + customer_id_ + R"("})", kJson, {}}),
      403);
  EXPECT_EQ(
      as(sales, {"POST", "/v1/orders", R"({"customerId": ")" + customer_id_ + R"("})", kJson, {}})
          .status,
      201);
  expect_problem(as(sales, {"POST",
                            "/v1/orders/" + order.id() + "/items/it-1:activate",
                            R"({"result": "ACTIVATED"})",
                            kJson,
                            {}}),
                 403);
  EXPECT_EQ(as(network, {"POST",
                         "/v1/orders/" + order.id() + "/items/it-1:activate",
                         R"({"result": "ACTIVATED"})",
                         kJson,
                         {}})
                .status,
            200);
}

TEST_F(OrdersHttp, OrdersAndTheCatalogTheyReadSurviveARestart) {
  auto order = create_order();
  add_item(order.id(), R"({"offerId": "CALL-PACK"})");
  restart();
  EXPECT_EQ(preview(order.id()).violations(0).rule(), "offer.requires");
  add_item(order.id(), R"({"offerId": "PHONE-LINE", "pricingPlanId": "std"})");
  EXPECT_EQ(order_of(post("/v1/orders/" + order.id() + ":submit", ""), 200).state(),
            order::APPROVED);
}

TEST_F(OrdersHttp, PaymentsReconcileToTheMinorUnitAndARepeatedReferenceCountsOnce) {
  auto order = submitted_order();  // one line: 45.00 once after 10 %, deposit 100.00
  ASSERT_EQ(order.balances_size(), 1);
  EXPECT_EQ(order.balances(0).due().amount_minor(), 4500 + 10000);
  EXPECT_EQ(order.balances(0).balance_due().amount_minor(), 14500);

  auto deposited = pay(order.id(), "DEPOSIT", 10000, "bank-77");
  EXPECT_EQ(deposited.payments(0).products(), "Phone line");
  EXPECT_EQ(deposited.payments(0).recorded_by(), "admin");
  auto again = pay(order.id(), "DEPOSIT", 10000, "bank-77", 200);  // delivered twice
  EXPECT_EQ(again.payments_size(), 1);
  EXPECT_EQ(again.balances(0).paid().amount_minor(), 10000);

  auto over = pay(order.id(), "PAYMENT", 5000, "bank-78");
  EXPECT_EQ(over.balances(0).balance_due().amount_minor(), 0);
  EXPECT_EQ(over.balances(0).credit().amount_minor(), 500) << "overpayment kept as credit";

  auto too_much = expect_problem(post("/v1/orders/" + order.id() + "/payments",
                                      R"({"paymentRef": "r-1", "kind": "REFUND",
                                          "amount": {"amountMinor": 15001, "currency": "CNY"}})"),
                                 422);
  EXPECT_THAT(rules_of(too_much), ElementsAre("payment.refund_exceeds"));
  auto dollars = expect_problem(post("/v1/orders/" + order.id() + "/payments",
                                     R"({"paymentRef": "usd-1", "kind": "PAYMENT",
                                         "amount": {"amountMinor": 100, "currency": "USD"}})"),
                                422);
  EXPECT_THAT(rules_of(dollars), ElementsAre("payment.currency"));
  // The customer's balance follows: paid − due over its orders.
  auto balance = [&] {
    auto c = get_customer(customer_id_);
    return c.balance().empty() ? int64_t{0} : c.balance(0).amount_minor();
  };
  EXPECT_EQ(balance(), 500);
  auto refunded = pay(order.id(), "REFUND", 500, "r-2");
  EXPECT_EQ(balance(), 0);
  EXPECT_EQ(refunded.balances(0).credit().amount_minor(), 0);
  EXPECT_EQ(refunded.balances(0).paid().amount_minor(), 14500);
  EXPECT_EQ(refunded.balances(0).refunded().amount_minor(), 500);

  auto second = submitted_order();  // owes 145.00 until cancelled: then only its payment counts
  EXPECT_EQ(balance(), -14500);
  pay(second.id(), "DEPOSIT", 1000, "d-second");
  ASSERT_EQ(post("/v1/orders/" + second.id() + ":cancel", R"({"reason": "moved"})").status, 200);
  EXPECT_EQ(balance(), 1000) << "the deposit of the cancelled order is the customer's credit";

  auto draft = create_order();
  expect_problem(post("/v1/orders/" + draft.id() + "/payments",
                      R"({"paymentRef": "early", "kind": "PAYMENT",
                          "amount": {"amountMinor": 100, "currency": "CNY"}})"),
                 409);
}

TEST_F(OrdersHttp, ConcurrentDeliveriesOfOnePaymentCountOnce) {
  auto order = submitted_order();
  std::vector<Request> requests(6, Request{"POST",
                                           "/v1/orders/" + order.id() + "/payments",
                                           R"({"paymentRef": "billing-42", "kind": "DEPOSIT",
                                               "amount": {"amountMinor": 10000,
                                                          "currency": "CNY"}})",
                                           kJson,
                                           {}});
  int created = 0;
  for (const auto& reply : concurrently(requests)) {
    EXPECT_TRUE(reply.status == 201 || reply.status == 200) << reply.body;
    if (reply.status == 201) ++created;
  }
  EXPECT_EQ(created, 1);
  auto stored = parse_json<order::Order>(get("/v1/orders/" + order.id()).body);
  ASSERT_EQ(stored.payments_size(), 1);
  EXPECT_EQ(stored.balances(0).deposited().amount_minor(), 10000);
}

}  // namespace
}  // namespace crm::api_test
