// Follow-up tasks over HTTP (API.md "Payments and tasks"): tasks opened by hand and by the
// follow-up rules (satisfaction revisit, deposit chase, birthday greeting, VIP revisit), each
// once, with an injected clock that makes them due and overdue, across restarts and a crash
// between a timer's command and forgetting the timer; lists by assignee, role, state, due time;
// complete and cancel.
#include <gmock/gmock.h>
#include <google/protobuf/util/time_util.h>
#include <rocksdb/db.h>

#include <thread>

#include "customer.pb.h"
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
    auto reply = get("/v1/tasks?" + query + (position.empty() ? "" : "&minPosition=" + position));
    EXPECT_EQ(reply.status, 200) << reply.body;
    std::vector<std::string> ids;
    const auto list = parse_json<task::TaskList>(reply.body);
    for (const auto& t : list.items()) ids.push_back(t.id());
    return ids;
  }

  // Every timer stored, key and value: what a crash before they are forgotten leaves behind.
  std::vector<std::pair<std::string, std::string>> stored_timers() {
    auto& store = served().app().store();
    std::vector<std::pair<std::string, std::string>> out;
    std::unique_ptr<rocksdb::Iterator> it(
        store.db()->NewIterator(rocksdb::ReadOptions(), store.family(Store::Family::kState)));
    for (it->Seek("timer/"); it->Valid() && it->key().starts_with("timer/"); it->Next())
      out.emplace_back(it->key().ToString(), it->value().ToString());
    return out;
  }
  void put_back(const std::vector<std::pair<std::string, std::string>>& timers) {
    auto& store = served().app().store();
    rocksdb::WriteBatch batch;
    for (const auto& [key, value] : timers)
      ASSERT_TRUE(batch.Put(store.family(Store::Family::kState), key, value).ok());
    ASSERT_TRUE(store.write(batch).is_ok());
  }
  // Waits (with a deadline) until the read models hold every event written so far.
  void caught_up() {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (served().app().projector().lag() != 0) {
      ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "read models never caught up";
      std::this_thread::yield();
    }
  }

  std::string customer_id_;
};

// kStartUs is 2026-09-21T14:13:20Z.
constexpr int64_t kDayUs = 24 * 3'600'000'000LL;

TEST_F(TasksHttp, AContactsBirthdayOpensOneGreetingOnTheDayEachYearAcrossRestarts) {
  auto added = post("/v1/customers/" + customer_id_ + "/contacts",
                    R"({"name": "Han Meimei", "role": "DECISION_MAKER", "birthday": "09-23"})");
  ASSERT_EQ(added.status, 201) << added.body;
  clock_.advance_us(33 * 3'600'000'000LL);  // 2026-09-22T23:13Z: not the day yet
  EXPECT_EQ(fire(), 0u);
  clock_.advance_us(3'600'000'000LL);
  restart();
  EXPECT_EQ(fire(), 1u);
  const std::string id = "greet-" + customer_id_ + "-contact-1-2026";
  auto greeting = get("/v1/tasks/" + id);
  ASSERT_EQ(greeting.status, 200) << greeting.body;
  auto t = parse_json<task::Task>(greeting.body);
  EXPECT_EQ(t.rule(), "customer.contact.birthday");
  EXPECT_EQ(t.assignee(), "sally");
  EXPECT_EQ(t.customer_id(), customer_id_);
  EXPECT_THAT(t.reason(), ::testing::HasSubstr("Han Meimei"));
  EXPECT_EQ(google::protobuf::util::TimeUtil::ToString(t.due_at()), "2026-09-24T00:00:00Z")
      << "the end of the day";
  EXPECT_EQ(fire(), 0u);
  restart();
  EXPECT_EQ(fire(), 0u) << "once";
  caught_up();
  EXPECT_THAT(listed("customerId=" + customer_id_, ""), ElementsAre(id));

  clock_.advance_us(365 * kDayUs);  // a year later: the next greeting (and the first overdue)
  EXPECT_EQ(fire(), 2u);
  auto next = get("/v1/tasks/greet-" + customer_id_ + "-contact-1-2027");
  ASSERT_EQ(next.status, 200) << next.body;
  EXPECT_TRUE(parse_json<task::Task>(get("/v1/tasks/" + id).body).overdue());
}

TEST_F(TasksHttp, AVipCustomerIsRevisitedEachPeriodWhileVip) {
  const auto vip = register_customer(R"({"name": "Big", "kind": "ENTERPRISE", "level": "VIP",
                                         "ownerId": "sally"})");
  clock_.advance_us(29 * kDayUs);
  EXPECT_EQ(fire(), 0u);
  clock_.advance_us(kDayUs + 1);
  EXPECT_EQ(fire(), 1u);
  auto first = get("/v1/tasks/vip-" + vip.id() + "-1");
  ASSERT_EQ(first.status, 200) << first.body;
  auto t = parse_json<task::Task>(first.body);
  EXPECT_EQ(t.rule(), "customer.vip.revisit");
  EXPECT_EQ(t.assignee(), "sally");
  EXPECT_EQ(timestamp_to_us(t.due_at()), kStartUs + 37 * kDayUs + 1) << "a week to do it";
  ASSERT_EQ(post("/v1/tasks/" + t.id() + ":complete", R"({"outcome": "visited"})").status, 200);

  clock_.advance_us(30 * kDayUs);
  EXPECT_EQ(fire(), 2u) << "the revisit, and the first's due timer (done: to no effect)";
  EXPECT_EQ(get("/v1/tasks/vip-" + vip.id() + "-2").status, 200);
  EXPECT_FALSE(parse_json<task::Task>(get("/v1/tasks/" + t.id()).body).overdue());

  auto down = patch("/v1/customers/" + vip.id(), R"({"level": "GROWTH"})");
  ASSERT_EQ(down.status, 200) << down.body;
  clock_.advance_us(31 * kDayUs);
  fire();  // (the second revisit's overdue timer)
  expect_problem(get("/v1/tasks/vip-" + vip.id() + "-3"), 404);
}

TEST_F(TasksHttp, ChangedRuleParametersTakeEffectByTheTimeTheOldTimerFalls) {
  const auto vip = register_customer(R"({"name": "Big", "kind": "ENTERPRISE", "level": "VIP",
                                         "ownerId": "sally"})");
  follow_ups_.vip_revisit_every_us = 40 * kDayUs;  // restarted with a longer period
  restart();
  clock_.advance_us(30 * kDayUs);
  EXPECT_EQ(fire(), 1u) << "the old timer falls, to no effect, and sets the new one";
  expect_problem(get("/v1/tasks/vip-" + vip.id() + "-1"), 404);
  clock_.advance_us(10 * kDayUs);
  EXPECT_EQ(fire(), 1u);
  EXPECT_EQ(get("/v1/tasks/vip-" + vip.id() + "-1").status, 200);
}

TEST_F(TasksHttp, DueRemindersFireOnceEachAcrossACrashBeforeTheyAreForgotten) {
  std::vector<std::string> customers;
  for (int i = 0; i < 4; ++i) {
    const auto c =
        register_customer(R"({"name": "VIP )" + std::to_string(i) +
                          R"(", "kind": "ENTERPRISE", "level": "VIP", "ownerId": "sally"})");
    ASSERT_EQ(post("/v1/customers/" + c.id() + "/contacts",
                   R"({"name": "Boss", "role": "DECISION_MAKER", "birthday": "10-01"})")
                  .status,
              201);
    customers.push_back(c.id());
  }
  clock_.advance_us(31 * kDayUs);  // past every revisit and every birthday
  const auto due = stored_timers();
  ASSERT_EQ(due.size(), 8u);
  EXPECT_EQ(fire(), 8u);
  // A crash after the timers' commands committed and before the timers were forgotten.
  put_back(due);
  restart();
  EXPECT_EQ(fire(), 8u) << "the leftovers fire ...";
  EXPECT_EQ(fire(), 0u) << "... to no effect, and are forgotten";
  caught_up();
  for (const auto& c : customers) {
    auto reply = get("/v1/tasks?customerId=" + c);
    std::vector<std::string> ids;
    const auto list = parse_json<task::TaskList>(reply.body);
    for (const auto& t : list.items()) ids.push_back(t.id());
    EXPECT_THAT(ids, ElementsAre("greet-" + c + "-contact-1-2026", "vip-" + c + "-1"));
  }
}

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
  caught_up();
  EXPECT_THAT(listed("overdue=true", ""), ElementsAre("revisit-" + order.id()));
  EXPECT_THAT(listed("role=manager", ""), ElementsAre("revisit-" + order.id())) << "escalated";
  auto completed =
      post("/v1/tasks/revisit-" + order.id() + ":complete", R"({"outcome": "happy customer"})");
  ASSERT_EQ(completed.status, 200) << completed.body;
  EXPECT_EQ(parse_json<task::Task>(completed.body).state(), task::DONE);
  EXPECT_THAT(listed("overdue=true", parse_json<task::Task>(completed.body).position()), IsEmpty())
      << "done: off the overdue list";
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
