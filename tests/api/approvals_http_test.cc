// Approvals over HTTP (API.md "Approvals"): policies as versioned data, the inbox by role and
// delegation, decisions that move the order, four eyes, concurrent decisions, time limits that
// escalate after a clock jump and fire once across a restart, and the order's history naming
// the policy version and who decided.
#include <gmock/gmock.h>
#include <google/protobuf/util/time_util.h>

#include "approval.pb.h"
#include "events/codec.h"
#include "order.pb.h"
#include "task.pb.h"
#include "tests/api/api_fixture.h"
#include "workflow/partition_processor.h"

namespace crm::api_test {
namespace {

using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

// A manager approves discounts of 10 % or more within 8 hours, else a director is asked.
constexpr char kPolicy[] = R"({"rules": [{"name": "big discount",
  "when": {"minDiscountPercent": 10},
  "steps": [{"role": "manager", "mode": "ANY", "timeLimit": "PT8H", "onTimeout": "ESCALATE",
             "escalateTo": "director"}]}]})";

constexpr char kLine[] = R"({"name": "Line", "kind": "SINGLE",
  "pricingPlans": [{"id": "std", "kind": "STANDARD",
    "recurring": {"amountMinor": 10000, "currency": "CNY"},
    "discountPackages": [{"id": "promo", "percentOff": 20, "effectiveModes": ["IMMEDIATE"]}]}]})";

class ApprovalsHttp : public ClockedApiTest {
 protected:
  void SetUp() override {
    ApiTest::SetUp();
    ASSERT_EQ(put("/v1/catalog/offers/LINE", kLine).status, 201);
    ASSERT_EQ(put("/v1/approval-policies/discounts", kPolicy).status, 201);
    auto customer = register_customer(R"({"name": "Acme", "kind": "ENTERPRISE"})");
    customer_id_ = customer.id();
    clerk_ = token_with_roles("carl", R"("clerk")");
    manager_ = token_with_roles("mia", R"("manager")");
    director_ = token_with_roles("dan", R"("director")");
  }

  // An order of one discounted line, submitted by `token`: waiting for a manager.
  order::Order submitted(const std::string& token) {
    auto created = as(
        token, {"POST", "/v1/orders", R"({"customerId": ")" + customer_id_ + R"("})", kJson, {}});
    EXPECT_EQ(created.status, 201) << created.body;
    const auto id = parse_json<order::Order>(created.body).id();
    auto item = as(token, {"POST",
                           "/v1/orders/" + id + "/items",
                           R"({"offerId": "LINE", "discountPackageIds": ["promo"]})",
                           kJson,
                           {}});
    EXPECT_EQ(item.status, 201) << item.body;
    auto reply = as(token, {"POST", "/v1/orders/" + id + ":submit", "", kJson, {}});
    EXPECT_EQ(reply.status, 200) << reply.body;
    auto order = parse_json<order::Order>(reply.body);
    last_position_ = order.position();
    return order;
  }
  approval::Inbox inbox(const std::string& token) {
    auto reply = as(
        token, {"GET", "/v1/approvals?state=PENDING&minPosition=" + last_position_, "", kJson, {}});
    EXPECT_EQ(reply.status, 200) << reply.body;
    return parse_json<approval::Inbox>(reply.body);
  }
  Reply decide(const std::string& token, const std::string& approval_id,
               const std::string& decision, const std::string& comment = "") {
    auto reply =
        as(token, {"POST",
                   "/v1/approvals/" + approval_id + ":decide",
                   R"({"decision": ")" + decision + R"(", "comment": ")" + comment + R"("})",
                   kJson,
                   {}});
    if (reply.status == 200) last_position_ = parse_json<order::Order>(reply.body).position();
    return reply;
  }
  std::vector<std::string> ids(const approval::Inbox& inbox) {
    std::vector<std::string> out;
    for (const auto& item : inbox.items()) out.push_back(item.approval_id());
    return out;
  }

  std::string customer_id_, clerk_, manager_, director_, last_position_;
};

TEST_F(ApprovalsHttp, AnApproverSeesTheInboxDecidesAndTheOrderMoves) {
  auto order = submitted(clerk_);
  EXPECT_EQ(order.state(), order::PENDING_APPROVAL);
  EXPECT_EQ(order.policy_versions(), "discounts@1");
  const std::string approval_id = order.approvals(0).approval_id();

  clock_.advance_us(2 * kHourUs);
  auto mine = inbox(manager_);
  ASSERT_THAT(ids(mine), ElementsAre(approval_id));
  const auto& item = mine.items(0);
  EXPECT_EQ(item.order_id(), order.id());
  EXPECT_EQ(item.rule(), "discounts@1/big discount");
  EXPECT_EQ(item.requester(), "carl");
  EXPECT_EQ(item.discount_basis_points(), 2000u);
  EXPECT_EQ(item.seconds_left(), 6 * 3600);
  EXPECT_THAT(ids(inbox(director_)), IsEmpty());
  EXPECT_THAT(ids(inbox(clerk_)), IsEmpty());

  auto decided = decide(manager_, approval_id, "APPROVE", "ok");
  ASSERT_EQ(decided.status, 200) << decided.body;
  EXPECT_EQ(parse_json<order::Order>(decided.body).state(), order::APPROVED);
  EXPECT_THAT(ids(inbox(manager_)), IsEmpty());
  expect_problem(decide(manager_, approval_id, "APPROVE"), 409);

  // The requester is told (审批结果反馈).
  auto told = as(clerk_, {"GET", "/v1/notifications?minPosition=" + last_position_, "", kJson, {}});
  ASSERT_EQ(told.status, 200) << told.body;
  auto notes = parse_json<approval::NotificationList>(told.body);
  ASSERT_EQ(notes.items_size(), 2);
  EXPECT_EQ(notes.items(0).message(), "Order " + order.id() + " is approved");
  EXPECT_EQ(notes.items(1).message(),
            "mia approved approval " + approval_id + " of order " + order.id() + ": ok");
  EXPECT_EQ(notes.items(1).recipient(), "carl");
  // ... and given a task to carry it out (a follow-up rule).
  auto task = parse_json<task::Task>(get("/v1/tasks/decided-" + order.id() + "-1").body);
  EXPECT_EQ(task.assignee(), "carl");
  EXPECT_EQ(task.rule(), "order.approval.decided");
  EXPECT_EQ(task.subject(), "Order approved: carry it out");

  // An auditor reads from the history which policy version asked and who decided.
  auto history = parse_json<api::HistoryPage>(get("/v1/orders/" + order.id() + "/history").body);
  std::vector<api::HistoryItem> events(history.items().begin(), history.items().end());
  EXPECT_THAT(types_of(events), Contains("ApprovalRequested"));
  EXPECT_THAT(types_of(events), Contains("ApprovalDecided"));
  const std::string all = history.DebugString();
  EXPECT_NE(all.find("discounts@1"), std::string::npos);
  EXPECT_NE(all.find("\"mia\""), std::string::npos);
}

TEST_F(ApprovalsHttp, TheRequesterNeverApprovesTheirOwnOrder) {
  const auto both = token_with_roles("max", R"("clerk", "manager")");
  auto order = submitted(both);
  EXPECT_THAT(ids(inbox(both)), IsEmpty()) << "not in the requester's own inbox";
  auto refused = expect_problem(decide(both, order.approvals(0).approval_id(), "APPROVE"), 403);
  EXPECT_THAT(rules_of(refused), ElementsAre("approval.own_order"));
  auto clerk = expect_problem(decide(clerk_, order.approvals(0).approval_id(), "APPROVE"), 403);
  EXPECT_THAT(rules_of(clerk), ElementsAre("approval.role"));
}

TEST_F(ApprovalsHttp, RejectAndReturnNeedAComment) {
  auto order = submitted(clerk_);
  const auto id = order.approvals(0).approval_id();
  expect_problem(decide(manager_, id, "REJECT"), 422);
  auto returned = decide(manager_, id, "RETURN", "add the contract number");
  ASSERT_EQ(returned.status, 200) << returned.body;
  EXPECT_EQ(parse_json<order::Order>(returned.body).state(), order::RETURNED);
  auto again = as(clerk_, {"POST", "/v1/orders/" + order.id() + ":submit", "", kJson, {}});
  ASSERT_EQ(again.status, 200) << again.body;
  auto resubmitted = parse_json<order::Order>(again.body);
  EXPECT_EQ(resubmitted.state(), order::PENDING_APPROVAL);
  auto rejected = decide(manager_, resubmitted.approvals(0).approval_id(), "REJECT", "no");
  ASSERT_EQ(rejected.status, 200) << rejected.body;
  EXPECT_EQ(parse_json<order::Order>(rejected.body).state(), order::REJECTED);
  // Each outcome gives the requester a task: revise (round 1), tell the customer (round 2).
  auto revise = parse_json<task::Task>(get("/v1/tasks/decided-" + order.id() + "-1").body);
  EXPECT_EQ(revise.subject(), "Order returned: revise and resubmit");
  EXPECT_THAT(revise.reason(), HasSubstr("add the contract number"));
  EXPECT_EQ(revise.assignee(), "carl");
  auto tell = parse_json<task::Task>(get("/v1/tasks/decided-" + order.id() + "-2").body);
  EXPECT_EQ(tell.subject(), "Order rejected: tell the customer");
}

TEST_F(ApprovalsHttp, ADelegateDecidesWithinTheWindowOnly) {
  auto order = submitted(clerk_);
  const auto bob = token_with_roles("bob", R"("sales")");
  const std::string window =
      R"({"delegateTo": "bob", "from": ")" +
      google::protobuf::util::TimeUtil::ToString(timestamp_from_us(kStartUs + kHourUs)) +
      R"(", "to": ")" +
      google::protobuf::util::TimeUtil::ToString(timestamp_from_us(kStartUs + 3 * kHourUs)) +
      R"("})";
  expect_problem(as(bob, {"PUT", "/v1/delegations/mia", window, kJson, {}}), 403);
  auto set = as(manager_, {"PUT", "/v1/delegations/mia", window, kJson, {}});
  ASSERT_EQ(set.status, 200) << set.body;

  EXPECT_THAT(ids(inbox(bob)), IsEmpty()) << "before the window";
  expect_problem(decide(bob, order.approvals(0).approval_id(), "APPROVE"), 403);
  clock_.advance_us(2 * kHourUs);
  EXPECT_THAT(ids(inbox(bob)), ElementsAre(order.approvals(0).approval_id()));
  auto approved = decide(bob, order.approvals(0).approval_id(), "APPROVE");
  ASSERT_EQ(approved.status, 200) << approved.body;
  const auto decided = parse_json<order::Order>(approved.body);
  EXPECT_EQ(decided.approvals(0).decisions(0).principal_id(), "bob");
  EXPECT_EQ(decided.approvals(0).decisions(0).on_behalf_of(), "mia");

  auto later = submitted(clerk_);
  clock_.advance_us(2 * kHourUs);  // the window has closed
  expect_problem(decide(bob, later.approvals(0).approval_id(), "APPROVE"), 403);
}

TEST_F(ApprovalsHttp, ConcurrentDecisionsOnOneStepExactlyOneWins) {
  auto order = submitted(clerk_);
  const auto other_manager = token_with_roles("meg", R"("manager")");
  const auto id = order.approvals(0).approval_id();
  std::vector<Request> requests;
  for (const auto& token : {manager_, other_manager, manager_, other_manager}) {
    requests.push_back({"POST",
                        "/v1/approvals/" + id + ":decide",
                        R"({"decision": "APPROVE"})",
                        kJson,
                        {{"Authorization", "Bearer " + token}}});
  }
  int ok = 0, conflict = 0;
  for (const auto& reply : concurrently(requests)) {
    if (reply.status == 200) ++ok;
    if (reply.status == 409) ++conflict;
  }
  EXPECT_EQ(ok, 1);
  EXPECT_EQ(conflict, 3);
  auto stored = parse_json<order::Order>(get("/v1/orders/" + order.id()).body);
  EXPECT_EQ(stored.approvals(0).decisions_size(), 1);
}

TEST_F(ApprovalsHttp, ATimeLimitEscalatesAfterAClockJumpOnceAcrossARestart) {
  auto order = submitted(clerk_);
  const auto id = order.approvals(0).approval_id();
  auto fired = served().app().engine().fire_due_timers();
  ASSERT_TRUE(fired.is_ok());
  EXPECT_EQ(*fired, 0u) << "not due yet";

  clock_.advance_us(9 * kHourUs);
  fired = served().app().engine().fire_due_timers();
  ASSERT_TRUE(fired.is_ok());
  EXPECT_EQ(*fired, 1u);
  auto escalated = parse_json<order::Order>(get("/v1/orders/" + order.id()).body);
  last_position_ = escalated.position();
  EXPECT_EQ(escalated.approvals(0).asked_role(), "director");
  EXPECT_THAT(ids(inbox(manager_)), IsEmpty());
  auto directors = inbox(director_);
  ASSERT_THAT(ids(directors), ElementsAre(id));
  EXPECT_EQ(directors.items(0).escalated_from(), "manager");
  auto told = parse_json<approval::NotificationList>(
      as(manager_, {"GET", "/v1/notifications?minPosition=" + last_position_, "", kJson, {}}).body);
  ASSERT_EQ(told.items_size(), 1) << "the managers are told it went to a director";
  EXPECT_EQ(told.items(0).recipient(), "role:manager");

  // A crash after the timer's command committed and before the timer was forgotten leaves it
  // behind: firing it again changes nothing (its Idempotency-Key is the timer's key).
  events::Timer timer;
  timer.set_stream_id("order:" + order.id());
  timer.set_stream_type("order");
  timer.set_partition_key(customer_id_);
  timer.set_name(id);
  *timer.mutable_due_at() = order.approvals(0).due_at();
  const std::string key =
      timer_key(timestamp_to_us(order.approvals(0).due_at()), timer.stream_id(), id);
  rocksdb::WriteBatch leftover;
  ASSERT_TRUE(
      leftover
          .Put(served().app().store().family(Store::Family::kState), key, timer.SerializeAsString())
          .ok());
  ASSERT_TRUE(served().app().store().write(leftover).is_ok());
  restart();
  EXPECT_EQ(*served().app().engine().fire_due_timers(), 1u) << "the leftover is fired ...";
  EXPECT_EQ(*served().app().engine().fire_due_timers(), 0u) << "... and forgotten";
  auto same = parse_json<order::Order>(get("/v1/orders/" + order.id()).body);
  EXPECT_EQ(same.version(), escalated.version());

  clock_.advance_us(9 * kHourUs);  // the director lets it pass too: rejected
  EXPECT_EQ(*served().app().engine().fire_due_timers(), 1u);
  auto rejected = parse_json<order::Order>(get("/v1/orders/" + order.id()).body);
  EXPECT_EQ(rejected.state(), order::REJECTED);
}

TEST_F(ApprovalsHttp, AuditorsListDecisionsByPrincipalAndOverridesByPeriod) {
  auto first = submitted(clerk_);
  ASSERT_EQ(decide(manager_, first.approvals(0).approval_id(), "APPROVE", "fine").status, 200);
  clock_.advance_us(kHourUs);
  auto second = submitted(clerk_);
  clock_.advance_us(9 * kHourUs);  // the manager lets it pass: a director is asked
  ASSERT_EQ(*served().app().engine().fire_due_timers(), 2u)
      << "(and the first order's time limit, decided meanwhile, fires to no effect)";
  ASSERT_EQ(decide(director_, second.approvals(0).approval_id(), "REJECT", "too much").status, 200);
  auto created =
      as(clerk_, {"POST", "/v1/orders", R"({"customerId": ")" + customer_id_ + R"("})", kJson, {}});
  const auto manual = parse_json<order::Order>(created.body).id();
  ASSERT_EQ(as(clerk_, {"POST",
                        "/v1/orders/" + manual + "/items",
                        R"({"offerId": "LINE", "manualPrice": {"amountMinor": 8000,
                            "currency": "CNY"}})",
                        kJson,
                        {}})
                .status,
            201);
  auto placed = as(clerk_, {"POST", "/v1/orders/" + manual + ":submit", "", kJson, {}});
  ASSERT_EQ(placed.status, 200) << placed.body;
  last_position_ = parse_json<order::Order>(placed.body).position();

  const auto auditor = token_with_roles("audrey", R"("auditor")");
  auto list = [&](const std::string& query) {
    auto reply = as(auditor, {"GET", query + "&minPosition=" + last_position_, "", kJson, {}});
    EXPECT_EQ(reply.status, 200) << reply.body;
    return parse_json<api::AuditEntryList>(reply.body);
  };
  auto mia = list("/v1/audit/decisions?principal=mia");
  ASSERT_EQ(mia.items_size(), 1);
  EXPECT_EQ(mia.items(0).approval_id(), first.approvals(0).approval_id());
  EXPECT_EQ(mia.items(0).decision(), "APPROVE");
  EXPECT_EQ(mia.items(0).role(), "manager");
  EXPECT_EQ(mia.items(0).rule(), "discounts@1/big discount") << "under which rule";
  EXPECT_EQ(mia.items(0).comment(), "fine");
  auto dan = list("/v1/audit/decisions?principal=dan");
  ASSERT_EQ(dan.items_size(), 1);
  EXPECT_EQ(dan.items(0).decision(), "REJECT");

  auto overrides = list("/v1/audit/overrides?pageSize=10");
  std::vector<std::string> kinds;
  for (const auto& e : overrides.items()) kinds.push_back(e.kind());
  EXPECT_THAT(kinds, ElementsAre("ESCALATION", "REJECTION", "MANUAL_PRICE")) << "in time order";
  EXPECT_EQ(overrides.items(0).order_id(), second.id());
  EXPECT_THAT(overrides.items(2).detail(), HasSubstr("8000 CNY"));
  EXPECT_EQ(overrides.items(2).principal_id(), "carl");

  auto later = list("/v1/audit/decisions?from=" + google::protobuf::util::TimeUtil::ToString(
                                                      timestamp_from_us(kStartUs + kHourUs)));
  ASSERT_EQ(later.items_size(), 1) << "the period leaves mia's decision out";
  EXPECT_EQ(later.items(0).principal_id(), "dan");
  auto early = list("/v1/audit/overrides?to=" + google::protobuf::util::TimeUtil::ToString(
                                                    timestamp_from_us(kStartUs + kHourUs)));
  EXPECT_EQ(early.items_size(), 0);
  auto paged = list("/v1/audit/overrides?pageSize=2");
  ASSERT_EQ(paged.items_size(), 2);
  auto rest = list("/v1/audit/overrides?pageSize=2&pageToken=" + paged.next_page_token());
  ASSERT_EQ(rest.items_size(), 1);
  EXPECT_EQ(rest.items(0).kind(), "MANUAL_PRICE");

  expect_problem(as(clerk_, {"GET", "/v1/audit/decisions", "", kJson, {}}), 403);
  expect_problem(as(auditor, {"GET", "/v1/audit/overrides?kind=LATE", "", kJson, {}}), 400);
  expect_problem(as(auditor, {"GET", "/v1/audit/overrides?principal=mia", "", kJson, {}}), 400);
}

TEST_F(ApprovalsHttp, PoliciesAreVersionedAndBadOnesRefused) {
  auto v1 = parse_json<approval::ApprovalPolicy>(get("/v1/approval-policies/discounts").body);
  EXPECT_EQ(v1.version(), 1u);
  auto changed = put("/v1/approval-policies/discounts",
                     R"({"rules": [{"name": "all", "steps": [{"role": "manager"}]}]})",
                     {{"If-Match", "\"1\""}});
  ASSERT_EQ(changed.status, 200) << changed.body;
  EXPECT_EQ(parse_json<approval::ApprovalPolicy>(changed.body).version(), 2u);
  expect_problem(put("/v1/approval-policies/discounts", kPolicy, {{"If-Match", "\"1\""}}), 412);
  EXPECT_EQ(
      parse_json<approval::ApprovalPolicy>(get("/v1/approval-policies/discounts?version=1").body)
          .rules(0)
          .name(),
      "big discount");
  auto bad = expect_problem(
      put("/v1/approval-policies/bad",
          R"({"rules": [{"name": "x", "steps": [{"role": "manager", "timeLimit": "8h"}]}]})"),
      422);
  EXPECT_THAT(fields_of(bad), ElementsAre("rules[0].steps[0].timeLimit"));
  expect_problem(as(clerk_, {"PUT", "/v1/approval-policies/mine", kPolicy, kJson, {}}), 403);
  auto list = parse_json<approval::PolicyList>(get("/v1/approval-policies").body);
  ASSERT_EQ(list.items_size(), 1);
}

}  // namespace
}  // namespace crm::api_test
