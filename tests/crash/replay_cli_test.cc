// `crm replay` on a data directory written by a real engine: every read model rebuilt from
// position 0 must be byte-identical to the live one. `crm verify` on the same: as written, then
// altered (one event rewritten without its hash) and named.
#include <google/protobuf/util/json_util.h>
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdio>

#include "customer.pb.h"
#include "ops/app.h"
#include "order.pb.h"
#include "tests/support/test_support.h"

namespace crm {
namespace {

using testing::run_command;

TEST(ReplayCli, RebuildsReadModelsIdentically) {
  testing::TempDir dir;
  {
    testing::ServedApp served(dir.path());
    auto client = served.client();
    for (int i = 0; i < 25; ++i) {
      std::string body = R"({"name":"Replay )" + std::to_string(i) +
                         R"(","kind":"INDIVIDUAL","level":"VIP","ownerId":"sales-)" +
                         std::to_string(i % 3) + R"("})";
      auto created = client->Post("/v1/customers", body, "application/json");
      ASSERT_TRUE(created);
      ASSERT_EQ(created->status, 201) << created->body;
      if (i % 4 == 0) {
        customer::Customer c;
        ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(created->body, &c).ok());
        auto changed =
            client->Patch(("/v1/customers/" + c.id()).c_str(),
                          R"({"stage":"ACTIVE","ownerId":"sales-9"})", "application/json");
        ASSERT_TRUE(changed);
        ASSERT_EQ(changed->status, 200) << changed->body;
      }
    }
  }
  auto replay = run_command(std::string(CRM_BINARY) + " replay --data-dir " + dir.path());
  EXPECT_EQ(replay.exit_code, 0) << replay.output;
  EXPECT_NE(replay.output.find("identical"), std::string::npos) << replay.output;
  // 25 registrations, 7 changes of two events each (stage, owner), the admin principal.
  EXPECT_NE(replay.output.find("events replayed: 40 in"), std::string::npos) << replay.output;

  auto wrong =
      run_command(std::string(CRM_BINARY) + " replay --data-dir " + dir.path() + " --partitions 3");
  EXPECT_NE(wrong.exit_code, 0);
  EXPECT_NE(wrong.output.find("partition"), std::string::npos) << wrong.output;
}

TEST(ReplayCli, RebuildsTheOrdersReadModelIdentically) {
  testing::TempDir dir;
  {
    testing::ServedApp served(dir.path());
    auto client = served.client();
    auto expect = [](const httplib::Result& r, int status) {
      ASSERT_TRUE(r);
      ASSERT_EQ(r->status, status) << r->body;
    };
    expect(client->Put("/v1/catalog/offers/LINE",
                       R"({"name": "Line", "kind": "SINGLE", "pricingPlans": [{"id": "std",
                           "kind": "STANDARD",
                           "recurring": {"amountMinor": 2900, "currency": "CNY"}}]})",
                       "application/json"),
           201);
    auto registered = client->Post(
        "/v1/customers", R"({"name": "Acme", "kind": "ENTERPRISE", "ownerId": "sales-1"})",
        "application/json");
    expect(registered, 201);
    customer::Customer c;
    ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(registered->body, &c).ok());
    for (int i = 0; i < 6; ++i) {
      if (i == 4) {
        // From here on a manager approves every order: approvals, inbox and notifications too.
        expect(client->Put("/v1/approval-policies/all",
                           R"({"rules": [{"name": "every order",
                               "steps": [{"role": "manager"}]}]})",
                           "application/json"),
               201);
      }
      auto created =
          client->Post("/v1/orders", R"({"customerId": ")" + c.id() + R"("})", "application/json");
      expect(created, 201);
      const std::string id = created->body.substr(7, created->body.find('"', 7) - 7);
      const std::string order = "/v1/orders/" + id;
      expect(client->Post(order + "/items", R"({"offerId": "LINE", "quantity": 2})",
                          "application/json"),
             201);
      if (i % 3 == 0) continue;  // left a draft
      expect(client->Post(order + ":submit", "", "application/json"), 200);
      if (i == 4) {
        auto made =
            client->Put("/v1/principals/mia", R"({"roles": ["manager"]})", "application/json");
        expect(made, 201);
        const size_t at = made->body.find("\"token\":\"") + 9;
        auto manager = served.client(made->body.substr(at, made->body.find('"', at) - at));
        expect(manager->Post("/v1/approvals/" + id + ".1.1:decide", R"({"decision": "APPROVE"})",
                             "application/json"),
               200);
        continue;
      }
      if (i == 5) continue;  // left pending
      if (i % 3 == 1)
        expect(client->Post(order + "/items/it-1:activate", R"({"result": "ACTIVATED"})",
                            "application/json"),
               200);
    }
  }
  auto replay = run_command(std::string(CRM_BINARY) + " replay --data-dir " + dir.path());
  EXPECT_EQ(replay.exit_code, 0) << replay.output;
  EXPECT_NE(replay.output.find("identical"), std::string::npos) << replay.output;
  // The rebuilt orders read model answers lists as the live one did.
  testing::ServedApp served(dir.path());
  auto listed = served.client()->Get("/v1/orders?state=APPROVED");
  ASSERT_TRUE(listed);
  EXPECT_EQ(listed->status, 200) << listed->body;
  order::OrderList list;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(listed->body, &list).ok());
  const size_t approved = static_cast<size_t>(list.items_size());
  EXPECT_EQ(approved, 2u) << listed->body;
}

TEST(VerifyCli, SaysTheLogIsAsWrittenAndNamesTheFirstAlteredEvent) {
  testing::TempDir dir;
  std::string customer_id, kept_digest;
  {
    testing::ServedApp served(dir.path());
    auto client = served.client();
    for (int i = 0; i < 5; ++i) {
      auto created = client->Post(
          "/v1/customers", R"({"name":"Audit )" + std::to_string(i) + R"(","kind":"INDIVIDUAL"})",
          "application/json");
      ASSERT_TRUE(created);
      ASSERT_EQ(created->status, 201) << created->body;
      customer::Customer c;
      ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(created->body, &c).ok());
      customer_id = c.id();
    }
    auto recorded = served.app().engine().record_digest();  // the auditor keeps its digest
    ASSERT_TRUE(recorded.is_ok() && *recorded);
    auto digests = client->Get("/v1/streams/audit:digests/events");
    ASSERT_TRUE(digests);
    const size_t at = digests->body.find("\"digest\":\"") + 10;
    kept_digest = digests->body.substr(at, 64);
    auto verified = client->Get("/v1/audit/verify");
    ASSERT_TRUE(verified);
    EXPECT_EQ(verified->status, 200) << verified->body;
    EXPECT_NE(verified->body.find(R"("ok":true)"), std::string::npos) << verified->body;
    auto one = client->Get(("/v1/audit/verify?streamId=" + customer_id).c_str());
    ASSERT_TRUE(one);
    EXPECT_NE(one->body.find(R"("ok":true)"), std::string::npos) << one->body;
    EXPECT_EQ(client->Get("/v1/audit/verify?streamId=nothing")->status, 404);
    EXPECT_EQ(client->Get("/v1/audit/verify?stream=x")->status, 400);
  }
  auto clean = run_command(std::string(CRM_BINARY) + " verify --data-dir " + dir.path());
  EXPECT_EQ(clean.exit_code, 0) << clean.output;
  EXPECT_NE(clean.output.find(R"("ok":true)"), std::string::npos) << clean.output;
  EXPECT_NE(clean.output.find("as written"), std::string::npos) << clean.output;

  {  // An editor rewrites the last customer's registration, leaving its hash as it was.
    auto offline = open_offline(dir.path(), 8);
    ASSERT_TRUE(offline.is_ok()) << offline.status().to_string();
    auto head = offline->log->stream_head(customer_id);
    ASSERT_TRUE(head.is_ok());
    auto events = offline->log->read_stream(customer_id, 1, 1);
    ASSERT_TRUE(events.is_ok());
    ASSERT_EQ(events->size(), 1u);
    auto forged = events->front();
    forged.set_correlation_id("forged");
    ASSERT_TRUE(offline->store
                    ->write_durable([&](rocksdb::WriteBatch& batch) {
                      batch
                          .Put(offline->store->family(Store::Family::kLog),
                               log_key(forged.position().partition(), forged.position().offset()),
                               forged.SerializeAsString())
                          .PermitUncheckedError();
                    })
                    .is_ok());
  }
  auto altered = run_command(std::string(CRM_BINARY) + " verify --data-dir " + dir.path());
  EXPECT_EQ(altered.exit_code, 4) << altered.output;
  EXPECT_NE(altered.output.find(R"("streamId":")" + customer_id + R"(","version":1)"),
            std::string::npos)
      << altered.output;
  EXPECT_NE(altered.output.find("ALTERED"), std::string::npos) << altered.output;
  auto one = run_command(std::string(CRM_BINARY) + " verify --data-dir " + dir.path() +
                         " --stream " + customer_id);
  EXPECT_EQ(one.exit_code, 4) << one.output;
  // The digest the auditor kept no longer matches the events before its cut.
  auto digest = run_command(std::string(CRM_BINARY) + " verify --data-dir " + dir.path() +
                            " --digest " + kept_digest);
  EXPECT_EQ(digest.exit_code, 4) << digest.output;
  EXPECT_NE(digest.output.find("the history before it was altered"), std::string::npos)
      << digest.output;
}

TEST(VerifyCli, RefusesADirectoryWithoutEngineDataRatherThanCallingItIntact) {
  testing::TempDir dir;
  auto result = run_command(std::string(CRM_BINARY) + " verify --data-dir " + dir.path() + "/typo");
  EXPECT_EQ(result.exit_code, 1) << result.output;
  EXPECT_NE(result.output.find("holds no engine data"), std::string::npos) << result.output;
}

TEST(ReplayCli, RefusesUnknownFlags) {
  auto result = run_command(std::string(CRM_BINARY) + " replay --bogus 1");
  EXPECT_EQ(result.exit_code, 2);
  EXPECT_NE(result.output.find("unknown flag --bogus"), std::string::npos) << result.output;
}

}  // namespace
}  // namespace crm
