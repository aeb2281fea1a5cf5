// Follow-up tasks over HTTP (API.md "Payments and tasks"): tasks opened by hand and by the
// follow-up rules (satisfaction revisit, deposit chase), each once, with an injected clock that
// makes them due and overdue; lists by assignee, role, state, due time; complete and cancel.
#include <gmock/gmock.h>

#include "events/codec.h"
#include "order.pb.h"
#include "task.pb.h"
#include "tests/api/api_fixture.h"

namespace crm::api_test {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

constexpr char kLine[] = R"({"name": "Line", "kind": "SINGLE",
  "pricingPlans": [{"id": "std", "kind": "STANDARD",
    "recurring": {"amountMinor": 10000, "currency": "CNY"}}],
  "deposit": {"amount": {"amountMinor": 5000, "currency": "CNY"}, "scope": "OBJECT"}})";

class TasksHttp : public ClockedApiTest {
 protected:
  void SetUp() override {
    ApiTest::SetUp();
    ASSERT_EQ(put("/v1/catalog/offers/LINE", kLine).status, 201);
    customer_id_ = register_customer(R"({"name": "Acme", "kind": "ENTERPRISE",
                                        "ownerId": "sally"})")
                       .id();
  }
  order::Order submitted() {
    auto created = post("/v1/orders", R"({"customerId": ")" + customer_id_ + R"("})");
    EXPECT_EQ(created.status, 201) << created.body;
    const auto id = parse_json<order::Order>(created.body).id();
    EXPECT_EQ(post("/v1/orders/" + id + "/items", R"({"offerId": "LINE"})").status, 201);
    auto reply = post("/v1/orders/" + id + ":submit", "");
    EXPECT_EQ(reply.status, 200) << reply.body;
    return parse_json<order::Order>(reply.body);
  }
  size_t fire() {
    auto fired = served().app().engine().fire_due_timers();
    EXPECT_TRUE(fired.is_ok());
    return fired.is_ok() ? *fired : 0;
  }
  std::vector<std::string> listed(const std::string& query, const std::string& position) {
    auto reply = get("/v1/tasks?" + query + "&minPosition=" + position);
    EXPECT_EQ(reply.status, 200) << reply.body;
    std::vector<std::string> ids;
    const auto list = parse_json<task::TaskList>(reply.body);
    for (const auto& t : list.items()) ids.push_back(t.id());
    return ids;
  }

  std::string customer_id_;
};

TEST_F(TasksHttp, AFulfilledOrderOpensOneSatisfactionRevisitForItsOwner) {
  auto order = submitted();
  ASSERT_EQ(post("/v1/orders/" + order.id() + "/payments",
                 R"({"paymentRef": "d1", "kind": "DEPOSIT",
                     "amount": {"amountMinor": 5000, "currency": "CNY"}})")
                .status,
            201);
  auto done =
      post("/v1/orders/" + order.id() + "/items/it-1:activate", R"({"result": "ACTIVATED"})");
  ASSERT_EQ(done.status, 200) << done.body;
  const auto position = parse_json<order::Order>(done.body).position();

  auto revisit = parse_json<task::Task>(get("/v1/tasks/revisit-" + order.id()).body);
  EXPECT_EQ(revisit.state(), task::OPEN);
  EXPECT_EQ(revisit.assignee(), "sally");
  EXPECT_EQ(revisit.rule(), "order.completed.revisit");
  EXPECT_EQ(revisit.order_id(), order.id());
  EXPECT_EQ(timestamp_to_us(revisit.due_at()), kStartUs + 7 * 24 * kHourUs);
  EXPECT_THAT(listed("assignee=sally&state=OPEN", position), ElementsAre("revisit-" + order.id()));

  clock_.advance_us(8 * 24 * kHourUs);  // a week later it is overdue: escalated to a manager
  EXPECT_GE(fire(), 1u);  // (the deposit chase's timer, paid meanwhile, fires to no effect)
  auto overdue = parse_json<task::Task>(get("/v1/tasks/revisit-" + order.id()).body);
  EXPECT_TRUE(overdue.overdue());
  EXPECT_EQ(overdue.escalated_to(), "manager");
  EXPECT_EQ(fire(), 0u) << "once";
  auto completed =
      post("/v1/tasks/revisit-" + order.id() + ":complete", R"({"outcome": "happy customer"})");
  ASSERT_EQ(completed.status, 200) << completed.body;
  EXPECT_EQ(parse_json<task::Task>(completed.body).state(), task::DONE);
  expect_problem(post("/v1/tasks/revisit-" + order.id() + ":cancel", ""), 409);
}

TEST_F(TasksHttp, AnUnpaidDepositIsChasedOnceAfterTheDelayAcrossARestart) {
  auto order = submitted();
  clock_.advance_us(47 * kHourUs);
  EXPECT_EQ(fire(), 0u);
  clock_.advance_us(2 * kHourUs);
  restart();
  EXPECT_EQ(fire(), 1u);
  auto chase = get("/v1/tasks/chase-" + order.id());
  ASSERT_EQ(chase.status, 200) << chase.body;
  EXPECT_EQ(parse_json<task::Task>(chase.body).rule(), "order.deposit.chase");
  EXPECT_EQ(fire(), 0u);
  restart();
  EXPECT_EQ(fire(), 0u) << "never twice";

  auto paid = submitted();  // a deposit paid in time is not chased
  ASSERT_EQ(post("/v1/orders/" + paid.id() + "/payments",
                 R"({"paymentRef": "d2", "kind": "DEPOSIT",
                     "amount": {"amountMinor": 5000, "currency": "CNY"}})")
                .status,
            201);
  clock_.advance_us(49 * kHourUs);
  fire();
  expect_problem(get("/v1/tasks/chase-" + paid.id()), 404);
}

TEST_F(TasksHttp, ManualTasksAreOpenedListedAndCancelled) {
  const std::string body = R"({"customerId": ")" + customer_id_ +
                           R"(", "subject": "Call back", "dueAt": "2026-12-01T09:00:00Z",
                               "assigneeRole": "sales"})";
  auto created = post("/v1/tasks", body, {{"Idempotency-Key", "call-back-1"}});
  ASSERT_EQ(created.status, 201) << created.body;
  const auto t = parse_json<task::Task>(created.body);
  auto again = post("/v1/tasks", body, {{"Idempotency-Key", "call-back-1"}});
  EXPECT_EQ(parse_json<task::Task>(again.body).id(), t.id());
  EXPECT_THAT(listed("role=sales", t.position()), ElementsAre(t.id()));
  EXPECT_THAT(listed("role=sales&dueBefore=2026-11-30T00:00:00Z", t.position()), IsEmpty());
  EXPECT_THAT(listed("customerId=" + customer_id_, t.position()), ElementsAre(t.id()));

  auto bad = expect_problem(post("/v1/tasks", R"({"subject": "", "assignee": "x"})"), 422);
  EXPECT_THAT(rules_of(bad), ElementsAre("task.subject_required", "task.due_required"));
  expect_problem(post("/v1/tasks", R"({"subject": "s", "dueAt": "2026-12-01T09:00:00Z",
                                       "assignee": "x", "rule": "mine"})"),
                 400);
  auto cancelled = post("/v1/tasks/" + t.id() + ":cancel", R"({"reason": "not needed"})");
  ASSERT_EQ(cancelled.status, 200) << cancelled.body;
  EXPECT_EQ(parse_json<task::Task>(cancelled.body).state(), task::CANCELLED);
  expect_problem(get("/v1/tasks?state=LATE"), 400);
  expect_problem(get("/v1/tasks/nothing"), 404);
}

}  // namespace
}  // namespace crm::api_test
