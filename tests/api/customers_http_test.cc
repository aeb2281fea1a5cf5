// Customers over HTTP, the happy paths of API.md "Customers": register, read, change, contacts,
// list with filters and paging, history, raw streams, idempotency keys, ETags.
#include <gmock/gmock.h>

#include <algorithm>
#include <set>

#include "tests/api/api_fixture.h"

namespace crm::api_test {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::UnorderedElementsAreArray;

constexpr char kAcme[] = R"({"name": "Acme Telecom", "kind": "ENTERPRISE",
  "certificateNo": "91310000MA1FL0000X", "level": "VIP", "creditLevel": "A",
  "region": "Shanghai", "industry": "Telecom", "ownerId": "alice", "stage": "TARGET"})";

std::string customer_json(const std::string& name, const std::string& extra = "") {
  return R"({"name": ")" + name + R"(", "kind": "INDIVIDUAL")" +
         (extra.empty() ? "" : ", " + extra) + "}";
}

std::vector<std::string> ids_of(const customer::CustomerList& list) {
  std::vector<std::string> ids;
  for (const auto& c : list.items()) ids.push_back(c.id());
  return ids;
}

using ::testing::HasSubstr;
using CustomersHttp = ApiTest;

TEST_F(CustomersHttp, RegisterAnswers201WithIdVersionPositionLocationAndEtag) {
  auto reply = post("/v1/customers", kAcme);

  ASSERT_EQ(reply.status, 201) << reply.body;
  EXPECT_EQ(reply.header("Content-Type"), kJson);
  auto created = customer_of(reply);
  EXPECT_TRUE(created.id().starts_with("cus_")) << created.id();
  EXPECT_EQ(created.version(), 1u);
  EXPECT_THAT(created.position(), ::testing::MatchesRegex("[0-9]+:[0-9]+"));
  EXPECT_EQ(reply.header("Location"), "/v1/customers/" + created.id());
  EXPECT_EQ(reply.header("ETag"), "\"1\"");
  EXPECT_EQ(created.name(), "Acme Telecom");
  EXPECT_EQ(created.kind(), customer::ENTERPRISE);
  EXPECT_EQ(created.certificate_no(), "91310000MA1FL0000X");
  EXPECT_EQ(created.level(), customer::VIP);
  EXPECT_EQ(created.credit_level(), customer::A);
  EXPECT_EQ(created.region(), "Shanghai");
  EXPECT_EQ(created.industry(), "Telecom");
  EXPECT_EQ(created.owner_id(), "alice");
  EXPECT_EQ(created.stage(), customer::TARGET);
  EXPECT_TRUE(created.has_created_at());
}

TEST_F(CustomersHttp, RegisterDefaultsLevelToStandardAndStageToProspect) {
  auto created = register_customer(customer_json("Li Lei"));

  EXPECT_EQ(created.level(), customer::STANDARD);
  EXPECT_EQ(created.stage(), customer::PROSPECT);
}

TEST_F(CustomersHttp, GetAnswersTheCustomerWithItsEtag) {
  auto created = register_customer(kAcme);

  auto reply = get("/v1/customers/" + created.id());

  ASSERT_EQ(reply.status, 200) << reply.body;
  EXPECT_EQ(reply.header("ETag"), "\"1\"");
  auto read = parse_json<customer::Customer>(reply.body);
  EXPECT_EQ(read.id(), created.id());
  EXPECT_EQ(read.version(), 1u);
  EXPECT_EQ(read.name(), "Acme Telecom");
  EXPECT_EQ(read.owner_id(), "alice");
  EXPECT_EQ(read.position(), created.position());
}

TEST_F(CustomersHttp, GetWithCurrentEtagInIfNoneMatchAnswers304) {
  auto created = register_customer(kAcme);

  auto unchanged = get("/v1/customers/" + created.id(), {{"If-None-Match", "\"1\""}});
  EXPECT_EQ(unchanged.status, 304);
  EXPECT_THAT(unchanged.body, IsEmpty());
  EXPECT_EQ(unchanged.header("ETag"), "\"1\"");

  ASSERT_EQ(patch("/v1/customers/" + created.id(), R"({"region": "Beijing"})").status, 200);
  auto changed = get("/v1/customers/" + created.id(), {{"If-None-Match", "\"1\""}});
  EXPECT_EQ(changed.status, 200);
  EXPECT_EQ(changed.header("ETag"), "\"2\"");
}

// JavaScript clients read `body.items.length` and `problem.errors`: lists and fields are
// always present, and versions are JSON numbers (not the strings protobuf gives 64-bit ints).
TEST_F(CustomersHttp, BodiesShowEmptyListsAndNumbersAsJsonNumbers) {
  auto created = post("/v1/customers", kMinimalCustomer);
  ASSERT_EQ(created.status, 201) << created.body;
  EXPECT_THAT(created.body, HasSubstr(R"("version":1,)"));
  EXPECT_THAT(created.body, HasSubstr(R"("contacts":[])"));
  EXPECT_THAT(created.body, HasSubstr(R"("region":"")"));

  auto empty = get("/v1/customers?ownerId=nobody");
  ASSERT_EQ(empty.status, 200) << empty.body;
  EXPECT_THAT(empty.body, HasSubstr(R"("items":[])"));
  EXPECT_THAT(empty.body, HasSubstr(R"("nextPageToken":"")"));

  auto missing = get("/v1/customers/cus_nobody");
  EXPECT_EQ(missing.status, 404);
  EXPECT_THAT(missing.body, HasSubstr(R"("errors":[])"));
  EXPECT_THAT(missing.body, HasSubstr(R"("status":404)"));
}

TEST_F(CustomersHttp, GetUnknownCustomerAnswers404Problem) {
  auto problem = expect_problem(get("/v1/customers/cus_nobody"), 404);

  EXPECT_NE(problem.detail().find("cus_nobody"), std::string::npos) << problem.detail();
}

TEST_F(CustomersHttp, PatchRecordsEachKindOfChangeAsItsOwnEvent) {
  auto created = register_customer(kAcme);
  const std::string path = "/v1/customers/" + created.id();

  auto reply = patch(path, R"({"name": "Acme Telecom Group", "email": "it@acme.example",
    "level": "GROWTH", "creditLevel": "B", "ownerId": "bob", "stage": "ACTIVE"})");

  ASSERT_EQ(reply.status, 200) << reply.body;
  auto changed = customer_of(reply);
  EXPECT_EQ(changed.version(), 6u);
  EXPECT_EQ(reply.header("ETag"), "\"6\"");
  EXPECT_EQ(changed.name(), "Acme Telecom Group");
  EXPECT_EQ(changed.email(), "it@acme.example");
  EXPECT_EQ(changed.level(), customer::GROWTH);
  EXPECT_EQ(changed.credit_level(), customer::B);
  EXPECT_EQ(changed.owner_id(), "bob");
  EXPECT_EQ(changed.stage(), customer::ACTIVE);
  EXPECT_EQ(get_customer(created.id()).owner_id(), "bob");

  auto items = history(created.id());
  EXPECT_THAT(types_of(items), ElementsAre("CustomerRegistered", "CustomerProfileChanged",
                                           "CustomerLevelChanged", "CustomerCreditLevelChanged",
                                           "CustomerOwnerChanged", "CustomerStageChanged"));
  ASSERT_EQ(items.size(), 6u);
  customer::CustomerLevelChanged level;
  ASSERT_TRUE(items[2].data().UnpackTo(&level));
  EXPECT_EQ(level.from(), customer::VIP);
  EXPECT_EQ(level.to(), customer::GROWTH);
  customer::CustomerOwnerChanged owner;
  ASSERT_TRUE(items[4].data().UnpackTo(&owner));
  EXPECT_EQ(owner.from_owner_id(), "alice");
  EXPECT_EQ(owner.to_owner_id(), "bob");
}

TEST_F(CustomersHttp, PatchOfOneFieldAppendsOnlyItsEvent) {
  auto created = register_customer(kAcme);

  auto reply = patch("/v1/customers/" + created.id(), R"({"stage": "AT_RISK"})");

  ASSERT_EQ(reply.status, 200) << reply.body;
  EXPECT_EQ(customer_of(reply).version(), 2u);
  EXPECT_THAT(types_of(history(created.id())),
              ElementsAre("CustomerRegistered", "CustomerStageChanged"));
}

TEST_F(CustomersHttp, PatchThatChangesNothingAppendsNothing) {
  auto created = register_customer(kAcme);
  const uint64_t events_before = events_in_log();

  auto reply = patch("/v1/customers/" + created.id(),
                     R"({"name": "Acme Telecom", "level": "VIP", "ownerId": "alice"})");

  ASSERT_EQ(reply.status, 200) << reply.body;
  EXPECT_EQ(parse_json<customer::Customer>(reply.body).version(), 1u);
  EXPECT_EQ(reply.header("ETag"), "\"1\"");
  EXPECT_EQ(history(created.id()).size(), 1u);
  EXPECT_EQ(events_in_log(), events_before);
}

TEST_F(CustomersHttp, PatchWithCurrentIfMatchSucceedsAndStaleIfMatchIsRefusedWith412) {
  auto created = register_customer(kAcme);
  const std::string path = "/v1/customers/" + created.id();

  auto current = patch(path, R"({"region": "Beijing"})", {{"If-Match", "\"1\""}});
  ASSERT_EQ(current.status, 200) << current.body;
  EXPECT_EQ(current.header("ETag"), "\"2\"");

  auto stale = patch(path, R"({"region": "Shenzhen"})", {{"If-Match", "\"1\""}});
  auto problem = expect_problem(stale, 412);
  EXPECT_THAT(rules_of(problem), ElementsAre("stream.version_mismatch"));

  auto now = get_customer(created.id());
  EXPECT_EQ(now.version(), 2u);
  EXPECT_EQ(now.region(), "Beijing");
  EXPECT_EQ(history(created.id()).size(), 2u);
}

TEST_F(CustomersHttp, AddContactAnswers201AndTheContactShowsInGet) {
  auto created = register_customer(kAcme);

  auto reply = post("/v1/customers/" + created.id() + "/contacts",
                    R"({"name": "Wang Fang", "role": "DECISION_MAKER", "phone": "+86 21 5555-0101",
                        "email": "wang.fang@acme.example", "birthday": "04-23"})");

  ASSERT_EQ(reply.status, 201) << reply.body;
  EXPECT_EQ(reply.header("ETag"), "\"2\"");
  EXPECT_EQ(customer_of(reply).version(), 2u);
  auto read = get_customer(created.id());
  ASSERT_EQ(read.contacts_size(), 1);
  const auto& contact = read.contacts(0);
  EXPECT_FALSE(contact.id().empty());
  EXPECT_EQ(contact.name(), "Wang Fang");
  EXPECT_EQ(contact.role(), customer::DECISION_MAKER);
  EXPECT_EQ(contact.phone(), "+86 21 5555-0101");
  EXPECT_EQ(contact.email(), "wang.fang@acme.example");
  EXPECT_EQ(contact.birthday(), "04-23");
  EXPECT_THAT(types_of(history(created.id())), ElementsAre("CustomerRegistered", "ContactAdded"));
}

TEST_F(CustomersHttp, ListFiltersByOwnerLevelStageAndRegion) {
  auto a = register_customer(customer_json(
      "A", R"("ownerId": "alice", "level": "VIP", "stage": "ACTIVE", "region": "North")"));
  auto b = register_customer(customer_json(
      "B", R"("ownerId": "alice", "level": "GROWTH", "stage": "TARGET", "region": "South")"));
  auto c = register_customer(customer_json(
      "C", R"("ownerId": "bob", "level": "VIP", "stage": "TARGET", "region": "North")"));
  auto d = register_customer(customer_json(
      "D", R"("ownerId": "bob", "level": "BELOW_ZERO", "stage": "CHURNED", "region": "West")"));

  EXPECT_THAT(ids_of(list()), UnorderedElementsAreArray({a.id(), b.id(), c.id(), d.id()}));
  EXPECT_THAT(ids_of(list("ownerId=alice")), UnorderedElementsAreArray({a.id(), b.id()}));
  EXPECT_THAT(ids_of(list("level=VIP")), UnorderedElementsAreArray({a.id(), c.id()}));
  EXPECT_THAT(ids_of(list("stage=TARGET")), UnorderedElementsAreArray({b.id(), c.id()}));
  EXPECT_THAT(ids_of(list("region=North")), UnorderedElementsAreArray({a.id(), c.id()}));
  EXPECT_THAT(ids_of(list("ownerId=bob&level=VIP")), ElementsAre(c.id()));
  EXPECT_THAT(ids_of(list("ownerId=alice&region=West")), IsEmpty());
  EXPECT_THAT(all_customer_ids("region=North", 1), UnorderedElementsAreArray({a.id(), c.id()}));
}

TEST_F(CustomersHttp, ListShowsChangesAfterPatch) {
  auto a = register_customer(customer_json("A", R"("ownerId": "alice")"));
  auto moved = patch("/v1/customers/" + a.id(), R"({"ownerId": "carol", "stage": "ACTIVE"})");
  ASSERT_EQ(moved.status, 200) << moved.body;
  customer_of(moved);

  EXPECT_THAT(ids_of(list("ownerId=alice")), IsEmpty());
  auto carol = list("ownerId=carol");
  ASSERT_EQ(carol.items_size(), 1);
  EXPECT_EQ(carol.items(0).id(), a.id());
  EXPECT_EQ(carol.items(0).stage(), customer::ACTIVE);
}

TEST_F(CustomersHttp, ListPagesWalkEveryCustomerOnce) {
  std::vector<std::string> registered;
  for (int i = 0; i < 7; ++i)
    registered.push_back(register_customer(customer_json("Customer " + std::to_string(i))).id());

  auto first = list("pageSize=3");
  EXPECT_EQ(first.items_size(), 3);
  EXPECT_FALSE(first.next_page_token().empty());

  auto walked = all_customer_ids("", 3);
  EXPECT_EQ(walked.size(), registered.size());
  EXPECT_EQ(std::set<std::string>(walked.begin(), walked.end()).size(), walked.size());
  EXPECT_THAT(walked, UnorderedElementsAreArray(registered));
}

TEST_F(CustomersHttp, ListRefusesBadPageSizesAndUnknownParameters) {
  for (const char* size : {"0", "501", "ten"}) {
    SCOPED_TRACE(size);
    auto problem = expect_problem(get(std::string("/v1/customers?pageSize=") + size), 400);
    EXPECT_THAT(fields_of(problem), ElementsAre("pageSize"));
  }
  auto problem = expect_problem(get("/v1/customers?owner=alice"), 400);
  EXPECT_THAT(fields_of(problem), ElementsAre("owner"));
  EXPECT_EQ(get("/v1/customers?pageSize=500").status, 200);
}

TEST_F(CustomersHttp, HistoryShowsTypeVersionActorDataAndAHashChain) {
  auto created = register_customer(kAcme);
  const std::string path = "/v1/customers/" + created.id();
  ASSERT_EQ(patch(path, R"({"level": "GROWTH"})").status, 200);
  ASSERT_EQ(patch(path, R"({"stage": "ACTIVE"})").status, 200);

  auto reply = get(path + "/history");
  ASSERT_EQ(reply.status, 200) << reply.body;
  EXPECT_EQ(reply.header("ETag"), "\"3\"");
  auto page = parse_json<api::HistoryPage>(reply.body);
  EXPECT_TRUE(page.next_page_token().empty());
  ASSERT_EQ(page.items_size(), 3);
  const std::vector<std::string> data_types = {"crm.customer.CustomerRegistered",
                                               "crm.customer.CustomerLevelChanged",
                                               "crm.customer.CustomerStageChanged"};
  for (int i = 0; i < page.items_size(); ++i) {
    SCOPED_TRACE(i);
    const auto& item = page.items(i);
    EXPECT_EQ(item.version(), static_cast<uint64_t>(i + 1));
    EXPECT_EQ(item.stream_id(), created.id());
    EXPECT_FALSE(item.event_id().empty());
    EXPECT_TRUE(parse_position(item.position()));
    EXPECT_EQ(item.actor().principal_id(), "admin");
    EXPECT_TRUE(item.has_occurred_at());
    EXPECT_EQ(item.data().type_url(), "type.googleapis.com/" + data_types[i]);
    EXPECT_THAT(item.hash(), ::testing::MatchesRegex("[0-9a-f]{64}"));
    EXPECT_EQ(item.previous_hash(), i == 0 ? "" : page.items(i - 1).hash());
  }
  EXPECT_THAT(types_of({page.items().begin(), page.items().end()}),
              ElementsAre("CustomerRegistered", "CustomerLevelChanged", "CustomerStageChanged"));
  customer::CustomerRegistered registered;
  ASSERT_TRUE(page.items(0).data().UnpackTo(&registered));
  EXPECT_EQ(registered.customer_id(), created.id());
  EXPECT_EQ(registered.name(), "Acme Telecom");
}

TEST_F(CustomersHttp, HistoryPagesFollowThePageToken) {
  auto created = register_customer(kAcme);
  const std::string path = "/v1/customers/" + created.id();
  for (const char* stage : {"ACTIVE", "AT_RISK", "CHURNED", "PROSPECT"})
    ASSERT_EQ(patch(path, std::string(R"({"stage": ")") + stage + R"("})").status, 200);

  auto first = get(path + "/history?pageSize=2");
  ASSERT_EQ(first.status, 200) << first.body;
  auto page = parse_json<api::HistoryPage>(first.body);
  ASSERT_EQ(page.items_size(), 2);
  EXPECT_EQ(page.items(1).version(), 2u);
  ASSERT_FALSE(page.next_page_token().empty());
  auto second = get(path + "/history?pageSize=2&pageToken=" + page.next_page_token());
  ASSERT_EQ(second.status, 200) << second.body;
  auto next = parse_json<api::HistoryPage>(second.body);
  ASSERT_EQ(next.items_size(), 2);
  EXPECT_EQ(next.items(0).version(), 3u);
  EXPECT_EQ(next.items(0).previous_hash(), page.items(1).hash());

  auto all = history(created.id(), 2);
  ASSERT_EQ(all.size(), 5u);
  for (size_t i = 0; i < all.size(); ++i) EXPECT_EQ(all[i].version(), i + 1);
}

TEST_F(CustomersHttp, HistoryOfUnknownCustomerAnswers404) {
  expect_problem(get("/v1/customers/cus_nobody/history"), 404);
}

TEST_F(CustomersHttp, StreamEventsServeTheRawStreamToAnAdmin) {
  auto created = register_customer(kAcme);
  ASSERT_EQ(patch("/v1/customers/" + created.id(), R"({"creditLevel": "C"})").status, 200);

  auto reply = get("/v1/streams/" + created.id() + "/events");
  ASSERT_EQ(reply.status, 200) << reply.body;
  auto page = parse_json<api::HistoryPage>(reply.body);
  EXPECT_THAT(types_of({page.items().begin(), page.items().end()}),
              ElementsAre("CustomerRegistered", "CustomerCreditLevelChanged"));

  auto from_two = get("/v1/streams/" + created.id() + "/events?fromVersion=2");
  ASSERT_EQ(from_two.status, 200) << from_two.body;
  auto tail = parse_json<api::HistoryPage>(from_two.body);
  ASSERT_EQ(tail.items_size(), 1);
  EXPECT_EQ(tail.items(0).version(), 2u);
  EXPECT_EQ(tail.items(0).hash(), page.items(1).hash());
}

TEST_F(CustomersHttp, RepeatedIdempotencyKeyWithSameBodyReplaysTheFirstAnswer) {
  const httplib::Headers key = {{"Idempotency-Key", "register-acme-1"}};
  auto first = post("/v1/customers", kAcme, key);
  ASSERT_EQ(first.status, 201) << first.body;
  EXPECT_FALSE(first.has_header("Idempotent-Replayed"));
  auto created = customer_of(first);

  auto again = post("/v1/customers", kAcme, key);

  ASSERT_EQ(again.status, 201) << again.body;
  EXPECT_EQ(again.header("Idempotent-Replayed"), "true");
  auto replayed = parse_json<customer::Customer>(again.body);
  EXPECT_EQ(replayed.id(), created.id());
  EXPECT_EQ(replayed.version(), 1u);
  EXPECT_EQ(replayed.position(), created.position());
  EXPECT_EQ(again.header("Location"), "/v1/customers/" + created.id());
  EXPECT_EQ(again.header("ETag"), "\"1\"");
  EXPECT_THAT(all_customer_ids(), ElementsAre(created.id()));
  EXPECT_EQ(history(created.id()).size(), 1u);
}

TEST_F(CustomersHttp, RepeatedIdempotencyKeyWithAnotherBodyIsAConflict) {
  const httplib::Headers key = {{"Idempotency-Key", "register-acme-2"}};
  auto created = register_customer(kAcme, key);
  const uint64_t events_before = events_in_log();

  auto reused = post("/v1/customers", customer_json("Someone Else"), key);

  auto problem = expect_problem(reused, 409);
  EXPECT_EQ(problem.rule(), "idempotency.key_reused");
  EXPECT_THAT(rules_of(problem), ElementsAre("idempotency.key_reused"));
  EXPECT_EQ(events_in_log(), events_before);
  EXPECT_THAT(all_customer_ids(), ElementsAre(created.id()));
  EXPECT_EQ(get_customer(created.id()).name(), "Acme Telecom");
}

TEST_F(CustomersHttp, DistinctIdempotencyKeysRegisterDistinctCustomers) {
  auto one = register_customer(kAcme, {{"Idempotency-Key", "k-1"}});
  auto two = register_customer(kAcme, {{"Idempotency-Key", "k-2"}});

  EXPECT_NE(one.id(), two.id());
  EXPECT_THAT(all_customer_ids(), UnorderedElementsAreArray({one.id(), two.id()}));
}

TEST_F(CustomersHttp, ConcurrentRetriesWithOneIdempotencyKeyRegisterOneCustomer) {
  const Request retry = {"POST", "/v1/customers", kAcme, kJson, {{"Idempotency-Key", "burst"}}};
  auto replies = concurrently(std::vector<Request>(8, retry));

  std::set<std::string> ids;
  int first_answers = 0;
  for (const auto& reply : replies) {
    ASSERT_EQ(reply.status, 201) << reply.body;
    ids.insert(customer_of(reply).id());
    if (!reply.has_header("Idempotent-Replayed")) ++first_answers;
  }
  EXPECT_EQ(ids.size(), 1u);
  EXPECT_EQ(first_answers, 1);
  EXPECT_THAT(all_customer_ids(), ElementsAre(*ids.begin()));
  EXPECT_EQ(history(*ids.begin()).size(), 1u);
}

TEST_F(CustomersHttp, ConcurrentPatchesWithTheSameIfMatchLetExactlyOneWin) {
  auto created = register_customer(kAcme);
  std::vector<Request> patches;
  for (int i = 0; i < 6; ++i) {
    patches.push_back({"PATCH",
                       "/v1/customers/" + created.id(),
                       R"({"region": "Region )" + std::to_string(i) + R"("})",
                       kJson,
                       {{"If-Match", "\"1\""}}});
  }
  auto replies = concurrently(patches);

  std::string winner;
  for (size_t i = 0; i < replies.size(); ++i) {
    if (replies[i].status == 200) {
      EXPECT_TRUE(winner.empty()) << "a second PATCH won";
      winner = "Region " + std::to_string(i);
    } else {
      expect_problem(replies[i], 412);
    }
  }
  ASSERT_FALSE(winner.empty());
  auto now = get_customer(created.id());
  EXPECT_EQ(now.version(), 2u);
  EXPECT_EQ(now.region(), winner);
}

TEST_F(CustomersHttp, CustomersAndIdempotencyKeysSurviveARestart) {
  const httplib::Headers key = {{"Idempotency-Key", "before-restart"}};
  auto created = register_customer(kAcme, key);
  auto contact = post("/v1/customers/" + created.id() + "/contacts",
                      R"({"name": "Wang Fang", "role": "INFLUENCER"})");
  ASSERT_EQ(contact.status, 201) << contact.body;
  customer_of(contact);

  restart();

  auto read = get_customer(created.id());
  EXPECT_EQ(read.version(), 2u);
  EXPECT_EQ(read.contacts_size(), 1);
  auto replay = post("/v1/customers", kAcme, key);
  EXPECT_EQ(replay.status, 201) << replay.body;
  EXPECT_EQ(replay.header("Idempotent-Replayed"), "true");
  EXPECT_EQ(parse_json<customer::Customer>(replay.body).id(), created.id());
  EXPECT_THAT(ids_of(list("ownerId=alice")), ElementsAre(created.id()));
  EXPECT_EQ(history(created.id()).size(), 2u);
}

}  // namespace
}  // namespace crm::api_test
