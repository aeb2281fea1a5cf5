// Audit reads over HTTP (API.md "Audit and integration"): a customer and an order as they stood
// at any moment (?asOf=), folded from their own events, with the offer versions that priced the
// order then; and the hash-chain check of a live engine.
#include <gmock/gmock.h>
#include <google/protobuf/util/time_util.h>
#include <rocksdb/db.h>

#include <algorithm>
#include <cctype>

#include "audit.pb.h"
#include "customer.pb.h"
#include "events/codec.h"
#include "order.pb.h"
#include "task.pb.h"
#include "tests/api/api_fixture.h"

namespace crm::api_test {
namespace {

std::string at(int64_t us) {
  return google::protobuf::util::TimeUtil::ToString(timestamp_from_us(us));
}

constexpr char kLine[] = R"({"name": "Line", "kind": "SINGLE",
  "pricingPlans": [{"id": "std", "kind": "STANDARD",
    "recurring": {"amountMinor": 10000, "currency": "CNY"}}]})";

class AuditHttp : public ClockedApiTest {};

TEST_F(AuditHttp, ACustomerReadsAsItStoodAtAnyMoment) {
  const auto registered = register_customer(R"({"name": "Acme", "kind": "ENTERPRISE"})");
  clock_.advance_us(kHourUs);
  ASSERT_EQ(patch("/v1/customers/" + registered.id(), R"({"level": "VIP"})").status, 200);
  clock_.advance_us(kHourUs);
  ASSERT_EQ(patch("/v1/customers/" + registered.id(), R"({"name": "Acme Group"})").status, 200);

  auto then = get("/v1/customers/" + registered.id() + "?asOf=" + at(kStartUs + kHourUs / 2));
  ASSERT_EQ(then.status, 200) << then.body;
  auto before = parse_json<customer::Customer>(then.body);
  EXPECT_EQ(before.version(), 1u);
  EXPECT_EQ(before.level(), customer::STANDARD);
  EXPECT_EQ(before.name(), "Acme");
  EXPECT_EQ(then.header("ETag"), "\"1\"");

  auto vip = parse_json<customer::Customer>(
      get("/v1/customers/" + registered.id() + "?asOf=" + at(kStartUs + kHourUs)).body);
  EXPECT_EQ(vip.level(), customer::VIP) << "an event at exactly asOf counts";
  EXPECT_EQ(vip.name(), "Acme");
  auto now = parse_json<customer::Customer>(
      get("/v1/customers/" + registered.id() + "?asOf=" + at(kStartUs + 3 * kHourUs)).body);
  EXPECT_EQ(now.name(), "Acme Group");
  EXPECT_EQ(now.version(), 3u);

  expect_problem(get("/v1/customers/" + registered.id() + "?asOf=" + at(kStartUs - 1)), 404);
  expect_problem(get("/v1/customers/" + registered.id() + "?asOf=yesterday"), 400);
  expect_problem(get("/v1/customers/nobody?asOf=" + at(kStartUs)), 404);
}

// Snapshots every 4 events, so a short stream has several.
class AuditSnapshots : public ClockedApiTest {
 protected:
  AppConfig app_config() override {
    AppConfig config = ClockedApiTest::app_config();
    config.processor.snapshot_every = 4;
    return config;
  }
};

TEST_F(AuditSnapshots, ALongStreamReadsAsOfAnyMomentFromItsSnapshots) {
  const auto c = register_customer(R"({"name": "Acme 0", "kind": "ENTERPRISE"})");
  for (int i = 1; i <= 10; ++i) {
    clock_.advance_us(kHourUs);
    ASSERT_EQ(
        patch("/v1/customers/" + c.id(), R"({"name": "Acme )" + std::to_string(i) + "\"}").status,
        200);
  }
  {
    auto& store = served().app().store();
    std::unique_ptr<rocksdb::Iterator> it(
        store.db()->NewIterator(rocksdb::ReadOptions(), store.family(Store::Family::kState)));
    const std::string prefix = "snapshot/" + c.id() + std::string(1, '\0');
    int snapshots = 0;
    for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) ++snapshots;
    EXPECT_EQ(snapshots, 2) << "at versions 4 and 8";
  }

  restart();  // snapshots are read from the store, not a cache
  for (int hour = 0; hour <= 10; ++hour) {
    auto then = parse_json<customer::Customer>(
        get("/v1/customers/" + c.id() + "?asOf=" + at(kStartUs + hour * kHourUs + kHourUs / 2))
            .body);
    EXPECT_EQ(then.name(), "Acme " + std::to_string(hour)) << "half past hour " << hour;
    EXPECT_EQ(then.version(), static_cast<uint32_t>(hour + 1));
  }
}

TEST_F(AuditHttp, AnOrderReadsAsItStoodWithTheOfferVersionsOfThen) {
  ASSERT_EQ(put("/v1/catalog/offers/LINE", kLine).status, 201);
  const auto customer = register_customer(R"({"name": "Acme", "kind": "ENTERPRISE"})");
  auto created = post("/v1/orders", R"({"customerId": ")" + customer.id() + R"("})");
  ASSERT_EQ(created.status, 201) << created.body;
  const auto id = parse_json<order::Order>(created.body).id();
  ASSERT_EQ(post("/v1/orders/" + id + "/items", R"({"offerId": "LINE"})").status, 201);
  clock_.advance_us(kHourUs);
  auto submitted = post("/v1/orders/" + id + ":submit", "");
  ASSERT_EQ(submitted.status, 200) << submitted.body;
  clock_.advance_us(kHourUs);  // the offer changes afterwards: the order keeps version 1
  std::string v2 = kLine;
  v2.replace(v2.find("10000"), 5, "12000");
  ASSERT_EQ(put("/v1/catalog/offers/LINE", v2).status, 200);

  auto draft = parse_json<order::Order>(get("/v1/orders/" + id + "?asOf=" + at(kStartUs)).body);
  EXPECT_EQ(draft.state(), order::DRAFT);
  EXPECT_FALSE(draft.has_receipt());
  auto then = get("/v1/orders/" + id + "?asOf=" + at(kStartUs + kHourUs));
  ASSERT_EQ(then.status, 200) << then.body;
  auto placed = parse_json<order::Order>(then.body);
  EXPECT_NE(placed.state(), order::DRAFT);
  ASSERT_EQ(placed.items_size(), 1);
  EXPECT_EQ(placed.items(0).offer_version(), 1u);
  EXPECT_EQ(placed.receipt().lines(0).offer_version(), 1u);
  EXPECT_EQ(placed.version(), parse_json<order::Order>(submitted.body).version());
  expect_problem(get("/v1/orders/" + id + "?asOf=" + at(kStartUs - 1)), 404);
}

TEST_F(AuditHttp, HistoryFiltersByTimeAndTypeAndPagesThroughTheMatches) {
  const auto c = register_customer(R"({"name": "Acme", "kind": "ENTERPRISE"})");
  for (const char* level : {"VIP", "GROWTH", "VIP"}) {
    clock_.advance_us(kHourUs);
    ASSERT_EQ(
        patch("/v1/customers/" + c.id(), std::string(R"({"level": ")") + level + "\"}").status,
        200);
  }
  const std::string history = "/v1/customers/" + c.id() + "/history";
  auto levels = parse_json<api::HistoryPage>(get(history + "?types=CustomerLevelChanged").body);
  ASSERT_EQ(levels.items_size(), 3);
  EXPECT_EQ(levels.items(0).version(), 2u);

  auto window = parse_json<api::HistoryPage>(
      get(history + "?from=" + at(kStartUs + kHourUs) + "&to=" + at(kStartUs + 2 * kHourUs)).body);
  ASSERT_EQ(window.items_size(), 2);
  EXPECT_EQ(window.items(0).version(), 2u);
  EXPECT_EQ(window.items(1).version(), 3u);

  auto first = parse_json<api::HistoryPage>(
      get(history + "?types=CustomerLevelChanged,CustomerRegistered&pageSize=2").body);
  ASSERT_EQ(first.items_size(), 2);
  ASSERT_EQ(first.next_page_token(), "3");
  auto second = parse_json<api::HistoryPage>(
      get(history + "?types=CustomerLevelChanged,CustomerRegistered&pageSize=2&pageToken=3").body);
  ASSERT_EQ(second.items_size(), 2);
  EXPECT_EQ(second.items(1).version(), 4u);
  EXPECT_TRUE(second.next_page_token().empty());

  expect_problem(get(history + "?from=noon"), 400);
  expect_problem(get(history + "?kind=x"), 400);
}

TEST_F(AuditHttp, ATasksHistoryIsReadable) {
  auto created = post("/v1/tasks", R"({"subject": "Call back", "dueAt": "2026-12-01T09:00:00Z",
                                       "assigneeRole": "sales"})");
  ASSERT_EQ(created.status, 201) << created.body;
  const auto id = parse_json<task::Task>(created.body).id();
  ASSERT_EQ(post("/v1/tasks/" + id + ":complete", R"({"outcome": "done"})").status, 200);
  auto history = parse_json<api::HistoryPage>(get("/v1/tasks/" + id + "/history").body);
  ASSERT_EQ(history.items_size(), 2);
  EXPECT_EQ(history.items(0).type(), "TaskCreated");
  EXPECT_EQ(history.items(1).type(), "TaskCompleted");
  EXPECT_EQ(history.items(1).previous_hash(), history.items(0).hash()) << "chained";
  expect_problem(get("/v1/tasks/task_none/history"), 404);
}

TEST_F(AuditHttp, ADigestKeptByAnAuditorIsCheckedAgainstTheEventsBeforeItsCut) {
  register_customer(R"({"name": "Acme", "kind": "ENTERPRISE"})");
  auto recorded = served().app().engine().record_digest();
  ASSERT_TRUE(recorded.is_ok()) << recorded.status().to_string();
  EXPECT_TRUE(*recorded);
  EXPECT_FALSE(*served().app().engine().record_digest()) << "nothing new since: none recorded";

  auto digests = get("/v1/streams/audit:digests/events");
  ASSERT_EQ(digests.status, 200) << digests.body;
  auto page = parse_json<api::HistoryPage>(digests.body);
  ASSERT_EQ(page.items_size(), 1);
  EXPECT_EQ(page.items(0).type(), "LogDigestRecorded");
  audit::LogDigestRecorded digest;
  ASSERT_TRUE(page.items(0).data().UnpackTo(&digest));
  ASSERT_EQ(digest.digest().size(), 64u);

  register_customer(R"({"name": "Later", "kind": "INDIVIDUAL"})");  // the log goes on
  auto checked = get("/v1/audit/verify?digest=" + digest.digest());
  ASSERT_EQ(checked.status, 200) << checked.body;
  auto report = parse_json<api::VerifyReport>(checked.body);
  EXPECT_TRUE(report.ok()) << report.first_mismatch().reason();
  EXPECT_TRUE(report.digest().ok());
  EXPECT_EQ(report.digest().recomputed(), digest.digest());
  EXPECT_FALSE(report.digest().cut().empty());

  auto unknown =
      parse_json<api::VerifyReport>(get("/v1/audit/verify?digest=" + std::string(64, '0')).body);
  EXPECT_FALSE(unknown.ok());
  EXPECT_THAT(unknown.first_mismatch().reason(), ::testing::HasSubstr("not one of this log's"));
  expect_problem(get("/v1/audit/verify?digest=x&streamId=y"), 400);
  expect_problem(get("/v1/audit/verify?digest=abc"), 400);
  std::string upper = digest.digest();
  std::transform(upper.begin(), upper.end(), upper.begin(), ::toupper);
  EXPECT_TRUE(parse_json<api::VerifyReport>(get("/v1/audit/verify?digest=" + upper).body).ok())
      << "hex in either case";
}

}  // namespace
}  // namespace crm::api_test
