// CSV import over HTTP (POST /v1/customers:import): a header of RegisterCustomer's JSON field
// names, one customer a row, and an answer per row: CREATED, REPEATED or REJECTED with errors.
#include <gmock/gmock.h>

#include "tests/api/api_fixture.h"

namespace crm::api_test {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::UnorderedElementsAreArray;

constexpr char kCsv[] = "text/csv";

class Import : public ApiTest {
 protected:
  Reply import_csv(const std::string& csv, const std::string& key = "",
                   const std::string& content_type = kCsv) {
    httplib::Headers headers;
    if (!key.empty()) headers.emplace("Idempotency-Key", key);
    return call({"POST", "/v1/customers:import", csv, content_type, headers});
  }

  // Imports `csv` expecting 200; remembers the position of every row written.
  api::ImportResult imported(const std::string& csv, const std::string& key = "",
                             std::source_location where = std::source_location::current()) {
    auto trace = called_from(where);
    auto reply = import_csv(csv, key);
    EXPECT_EQ(reply.status, 200) << reply.body;
    EXPECT_EQ(reply.header("Content-Type"), kJson);
    auto result = parse_json<api::ImportResult>(reply.body);
    for (const auto& row : result.rows())
      if (!row.position().empty()) note_position(row.position());
    return result;
  }

  static std::vector<std::string> statuses_of(const api::ImportResult& result) {
    std::vector<std::string> statuses;
    for (const auto& row : result.rows()) statuses.push_back(row.status());
    return statuses;
  }

  static std::vector<std::string> created_ids(const api::ImportResult& result) {
    std::vector<std::string> ids;
    for (const auto& row : result.rows())
      if (row.status() == "CREATED") ids.push_back(row.id());
    return ids;
  }
};

TEST_F(Import, CreatesOneCustomerPerRow) {
  auto result = imported(
      "name,kind,level,creditLevel,region,ownerId,stage\n"
      "Acme,ENTERPRISE,VIP,A,North,alice,ACTIVE\n"
      "Li Lei,INDIVIDUAL,,,South,bob,\n"
      "Han Meimei,INDIVIDUAL,GROWTH,B,North,alice,TARGET\n");

  EXPECT_EQ(result.created(), 3u);
  EXPECT_EQ(result.rejected(), 0u);
  EXPECT_EQ(result.repeated(), 0u);
  ASSERT_EQ(result.rows_size(), 3);
  for (int i = 0; i < 3; ++i) {
    SCOPED_TRACE(i);
    EXPECT_EQ(result.rows(i).row(), static_cast<uint32_t>(i + 1));
    EXPECT_EQ(result.rows(i).status(), "CREATED");
    EXPECT_TRUE(result.rows(i).id().starts_with("cus_"));
    EXPECT_TRUE(parse_position(result.rows(i).position()));
    EXPECT_THAT(result.rows(i).errors(), IsEmpty());
  }
  auto acme = get_customer(result.rows(0).id());
  EXPECT_EQ(acme.name(), "Acme");
  EXPECT_EQ(acme.kind(), customer::ENTERPRISE);
  EXPECT_EQ(acme.level(), customer::VIP);
  EXPECT_EQ(acme.credit_level(), customer::A);
  EXPECT_EQ(acme.region(), "North");
  EXPECT_EQ(acme.owner_id(), "alice");
  EXPECT_EQ(acme.stage(), customer::ACTIVE);
  auto li = get_customer(result.rows(1).id());
  EXPECT_EQ(li.level(), customer::STANDARD);  // an empty cell is an absent field
  EXPECT_EQ(li.stage(), customer::PROSPECT);

  EXPECT_THAT(all_customer_ids(), UnorderedElementsAreArray(created_ids(result)));
  auto alice = list("ownerId=alice");
  EXPECT_EQ(alice.items_size(), 2);
}

TEST_F(Import, AnswersEveryRowOfALargeImportInOrder) {
  constexpr int kRows = 600;  // more than the import keeps in flight at once
  std::string csv = "name,kind,region\n";
  for (int r = 1; r <= kRows; ++r)
    csv +=
        "Customer " + std::to_string(r) + ",INDIVIDUAL," + (r % 3 == 0 ? "North" : "South") + "\n";

  auto result = imported(csv);

  EXPECT_EQ(result.created(), static_cast<uint32_t>(kRows));
  ASSERT_EQ(result.rows_size(), kRows);
  for (int i = 0; i < kRows; ++i) {
    ASSERT_EQ(result.rows(i).row(), static_cast<uint32_t>(i + 1));
    ASSERT_EQ(result.rows(i).status(), "CREATED") << i;
  }
  EXPECT_EQ(get_customer(result.rows(kRows - 1).id()).name(), "Customer " + std::to_string(kRows));
  EXPECT_EQ(all_customer_ids("region=North").size(), static_cast<size_t>(kRows / 3));
}

TEST_F(Import, MoreRowsThanTheLimitIs400AndStoresNothing) {
  std::string csv = "name,kind\n";
  for (int r = 0; r <= 10000; ++r) csv += "C,INDIVIDUAL\n";
  const uint64_t events_before = events_in_log();

  auto problem = expect_problem(import_csv(csv), 400);

  EXPECT_THAT(problem.detail(), HasSubstr("at most 10000 customer rows"));
  EXPECT_EQ(events_in_log(), events_before);
}

TEST_F(Import, ExactlyTheLimitIsAccepted) {
  std::string csv = "name,kind\n";
  for (int r = 0; r < 10000; ++r) csv += "C,INDIVIDUAL\n";

  auto reply = import_csv(csv);

  ASSERT_EQ(reply.status, 200) << reply.body.substr(0, 300);
  EXPECT_EQ(parse_json<api::ImportResult>(reply.body).created(), 10000u);
}

TEST_F(Import, RejectsBadRowsWithTheirErrorsAndCreatesTheOthers) {
  auto result = imported(
      "name,kind,level\n"
      "Good One,INDIVIDUAL,VIP\n"
      "Alien,ALIEN,VIP\n"
      ",ENTERPRISE,GROWTH\n"
      "Bad Level,INDIVIDUAL,PLATINUM\n"
      "Good Two,ENTERPRISE,\n");

  EXPECT_EQ(result.created(), 2u);
  EXPECT_EQ(result.rejected(), 3u);
  EXPECT_THAT(statuses_of(result),
              ElementsAre("CREATED", "REJECTED", "REJECTED", "REJECTED", "CREATED"));
  ASSERT_EQ(result.rows_size(), 5);
  const auto& alien = result.rows(1);
  ASSERT_EQ(alien.errors_size(), 1);
  EXPECT_EQ(alien.errors(0).field(), "kind");
  EXPECT_FALSE(alien.errors(0).message().empty());
  const auto& nameless = result.rows(2);
  ASSERT_EQ(nameless.errors_size(), 1);
  EXPECT_EQ(nameless.errors(0).field(), "name");
  EXPECT_EQ(nameless.errors(0).rule(), "customer.name_required");
  EXPECT_EQ(result.rows(3).errors(0).field(), "level");
  for (int i : {1, 2, 3}) {
    EXPECT_TRUE(result.rows(i).id().empty()) << i;
    EXPECT_TRUE(result.rows(i).position().empty()) << i;
  }

  EXPECT_THAT(all_customer_ids(), UnorderedElementsAreArray(created_ids(result)));
}

TEST_F(Import, RejectsARowWithTheWrongNumberOfCells) {
  auto result = imported(
      "name,kind\n"
      "Short\n"
      "Long,INDIVIDUAL,extra\n"
      "Right,INDIVIDUAL\n");

  EXPECT_THAT(statuses_of(result), ElementsAre("REJECTED", "REJECTED", "CREATED"));
  EXPECT_THAT(all_customer_ids(), UnorderedElementsAreArray(created_ids(result)));
}

TEST_F(Import, ReadsQuotedFieldsWithCommasQuotesAndLineBreaks) {
  auto result = imported(
      "name,kind,address,industry\r\n"
      "\"Acme, Inc.\",ENTERPRISE,\"12 Main St\nSuite 4\",\"Telecom \"\"5G\"\"\"\r\n"
      "Plain,INDIVIDUAL,,\r\n");

  ASSERT_THAT(statuses_of(result), ElementsAre("CREATED", "CREATED"));
  auto acme = get_customer(result.rows(0).id());
  EXPECT_EQ(acme.name(), "Acme, Inc.");
  EXPECT_EQ(acme.address(), "12 Main St\nSuite 4");
  EXPECT_EQ(acme.industry(), "Telecom \"5G\"");
  EXPECT_EQ(get_customer(result.rows(1).id()).name(), "Plain");
}

TEST_F(Import, UnknownColumnIs400NamingItAndStoresNothing) {
  const uint64_t events_before = events_in_log();

  auto problem = expect_problem(import_csv("name,kind,shoeSize\nAcme,ENTERPRISE,44\n"), 400);

  EXPECT_THAT(fields_of(problem), ElementsAre("shoeSize"));
  EXPECT_EQ(events_in_log(), events_before);
  EXPECT_EQ(list().items_size(), 0);
}

TEST_F(Import, MalformedCsvIs400AndStoresNothing) {
  const uint64_t events_before = events_in_log();

  expect_problem(import_csv("name,kind\n\"Acme,ENTERPRISE\n"), 400);      // quote never closed
  expect_problem(import_csv("name,kind\n\"Acme\"x,ENTERPRISE\n"), 400);   // text after a quote
  expect_problem(import_csv("name,kind\nZh\xff\xfe,INDIVIDUAL\n"), 400);  // not UTF-8
  expect_problem(import_csv("\r\n\n"), 400);                              // no header

  EXPECT_EQ(events_in_log(), events_before);
}

TEST_F(Import, RepeatWithTheSameKeyAnswersRepeatedWithTheSameIds) {
  const std::string csv = "name,kind\nAcme,ENTERPRISE\nNameless Alien,ALIEN\nLi Lei,INDIVIDUAL\n";
  auto first = imported(csv, "import-2026-11-22");
  ASSERT_THAT(statuses_of(first), ElementsAre("CREATED", "REJECTED", "CREATED"));
  const uint64_t events_before = events_in_log();

  auto again = imported(csv, "import-2026-11-22");

  EXPECT_THAT(statuses_of(again), ElementsAre("REPEATED", "REJECTED", "REPEATED"));
  EXPECT_EQ(again.repeated(), 2u);
  EXPECT_EQ(again.created(), 0u);
  EXPECT_EQ(again.rejected(), 1u);
  EXPECT_EQ(again.rows(0).id(), first.rows(0).id());
  EXPECT_EQ(again.rows(2).id(), first.rows(2).id());
  EXPECT_EQ(again.rows(0).position(), first.rows(0).position());
  EXPECT_EQ(events_in_log(), events_before);
  EXPECT_THAT(all_customer_ids(), UnorderedElementsAreArray(created_ids(first)));
}

// API.md: "Every POST accepts Idempotency-Key; … the same key with a different body → 409."
TEST_F(Import, SameKeyWithAnotherCsvIs409AndStoresNothing) {
  auto first = imported("name,kind\nAcme,ENTERPRISE\n", "import-batch-7");
  ASSERT_THAT(statuses_of(first), ElementsAre("CREATED"));
  const uint64_t events_before = events_in_log();

  auto problem = expect_problem(
      import_csv("name,kind\nAcme,ENTERPRISE\nLi Lei,INDIVIDUAL\n", "import-batch-7"), 409);

  EXPECT_EQ(problem.rule(), "idempotency.key_reused");
  EXPECT_EQ(events_in_log(), events_before);
  EXPECT_THAT(all_customer_ids(), ElementsAre(first.rows(0).id()));
}

// Keys are opaque strings: an import's key and a registration's key that merely look related
// are different keys, and neither may make the other's request a "reuse".
TEST_F(Import, ItsKeyDoesNotCollideWithARegistrationKey) {
  auto solo = register_customer(R"({"name": "Solo", "kind": "INDIVIDUAL"})",
                                {{"Idempotency-Key", "batch#row1"}});

  auto result = imported("name,kind\nAcme,ENTERPRISE\n", "batch");

  ASSERT_THAT(statuses_of(result), ElementsAre("CREATED")) << result.ShortDebugString();
  EXPECT_NE(result.rows(0).id(), solo.id());
  EXPECT_EQ(get_customer(solo.id()).name(), "Solo");
}

TEST_F(Import, WrongContentTypeIs415) {
  const uint64_t events_before = events_in_log();

  auto problem = expect_problem(import_csv("name,kind\nAcme,ENTERPRISE\n", "", kJson), 415);

  EXPECT_NE(problem.detail().find("text/csv"), std::string::npos) << problem.detail();
  EXPECT_EQ(events_in_log(), events_before);
}

TEST_F(Import, AnAuditorMayNotImport) {
  auto reply = put("/v1/principals/audrey", R"({"roles": ["auditor"]})");
  ASSERT_EQ(reply.status, 201) << reply.body;
  auto auditor = client_with(parse_json<principal::PrincipalView>(reply.body).token());
  const uint64_t events_before = events_in_log();

  expect_problem(call({"POST", "/v1/customers:import", "name,kind\nAcme,ENTERPRISE\n", kCsv, {}},
                      auditor.get()),
                 403);
  EXPECT_EQ(events_in_log(), events_before);
}

}  // namespace
}  // namespace crm::api_test
