// The auditors' CLI on a data directory written by a real engine: `crm export` writes JSON Lines
// an auditor reads without the engine (one stream, one customer's streams, a period), and
// `crm history` prints an order's timeline with who decided what under which rule.
#include <gmock/gmock.h>
#include <google/protobuf/util/json_util.h>
#include <gtest/gtest.h>

#include <set>
#include <sstream>

#include "api.pb.h"
#include "customer.pb.h"
#include "order.pb.h"
#include "tests/support/test_support.h"

namespace crm {
namespace {

using ::testing::HasSubstr;
using testing::run_command;

std::vector<api::HistoryItem> lines_of(const std::string& text) {
  std::vector<api::HistoryItem> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    api::HistoryItem item;
    EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(line, &item).ok()) << line;
    out.push_back(std::move(item));
  }
  return out;
}

class AuditCli : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new testing::TempDir();
    testing::ServedApp served(dir_->path());
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
    expect(client->Put("/v1/approval-policies/all",
                       R"({"rules": [{"name": "every order", "steps": [{"role": "manager"}]}]})",
                       "application/json"),
           201);
    for (const char* name : {"Acme", "Other"}) {
      auto registered = client->Post(
          "/v1/customers", std::string(R"({"name": ")") + name + R"(", "kind": "ENTERPRISE"})",
          "application/json");
      expect(registered, 201);
      customer::Customer c;
      ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(registered->body, &c).ok());
      customers_.push_back(c.id());
    }
    auto created = client->Post("/v1/orders", R"({"customerId": ")" + customers_[0] + R"("})",
                                "application/json");
    expect(created, 201);
    order::Order o;
    ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(created->body, &o).ok());
    order_id_ = o.id();
    expect(client->Post("/v1/orders/" + order_id_ + "/items", R"({"offerId": "LINE"})",
                        "application/json"),
           201);
    expect(client->Post("/v1/orders/" + order_id_ + ":submit", "", "application/json"), 200);
    auto made = client->Put("/v1/principals/mia", R"({"roles": ["manager"]})", "application/json");
    expect(made, 201);
    const size_t at = made->body.find("\"token\":\"") + 9;
    auto manager = served.client(made->body.substr(at, made->body.find('"', at) - at));
    expect(manager->Post("/v1/approvals/" + order_id_ + ".1.1:decide",
                         R"({"decision": "APPROVE", "comment": "ok by me"})", "application/json"),
           200);
  }
  static void TearDownTestSuite() { delete dir_; }

  std::string crm(const std::string& args) {
    return std::string(CRM_BINARY) + " " + args + " --data-dir " + dir_->path();
  }

  static testing::TempDir* dir_;
  static std::vector<std::string> customers_;
  static std::string order_id_;
};

testing::TempDir* AuditCli::dir_ = nullptr;
std::vector<std::string> AuditCli::customers_;
std::string AuditCli::order_id_;

TEST_F(AuditCli, ExportsOneStreamAsJsonLines) {
  const std::string out = dir_->path() + "/order.jsonl";
  auto result = run_command(crm("export --stream order:" + order_id_ + " --out " + out));
  ASSERT_EQ(result.exit_code, 0) << result.output;
  auto lines = lines_of(testing::read_file(out));
  ASSERT_GE(lines.size(), 5u);
  for (size_t i = 0; i < lines.size(); ++i) {
    EXPECT_EQ(lines[i].stream_id(), "order:" + order_id_);
    EXPECT_EQ(lines[i].version(), i + 1);
    EXPECT_EQ(lines[i].hash().size(), 64u);
    if (i > 0) {
      EXPECT_EQ(lines[i].previous_hash(), lines[i - 1].hash()) << "the chain is there";
    }
  }
  EXPECT_EQ(lines[0].type(), "OrderCreated");
  EXPECT_THAT(result.output, HasSubstr("crm export: " + std::to_string(lines.size()) + " events"));
}

TEST_F(AuditCli, ExportsACustomersStreamsInLogOrder) {
  const std::string out = dir_->path() + "/customer.jsonl";
  auto result = run_command(crm("export --customer " + customers_[0] + " --out " + out));
  ASSERT_EQ(result.exit_code, 0) << result.output;
  auto lines = lines_of(testing::read_file(out));
  std::set<std::string> streams;
  for (const auto& l : lines) streams.insert(l.stream_id());
  EXPECT_TRUE(streams.count(customers_[0]));
  EXPECT_TRUE(streams.count("order:" + order_id_));
  EXPECT_FALSE(streams.count(customers_[1])) << "only that customer's";
  auto offset = [](const api::HistoryItem& item) {  // one partition: the customer's
    return std::stoull(item.position().substr(item.position().find(':') + 1));
  };
  for (size_t i = 1; i < lines.size(); ++i) EXPECT_LT(offset(lines[i - 1]), offset(lines[i]));
}

TEST_F(AuditCli, ExportsAPeriodAndRefusesAmbiguousSelections) {
  const std::string out = dir_->path() + "/period.jsonl";
  auto all =
      run_command(crm("export --from 2000-01-01T00:00:00Z --to 2100-01-01T00:00:00Z --out " + out));
  ASSERT_EQ(all.exit_code, 0) << all.output;
  EXPECT_GE(lines_of(testing::read_file(out)).size(), 8u);
  auto none =
      run_command(crm("export --from 2000-01-01T00:00:00Z --to 2000-01-02T00:00:00Z --out " + out));
  EXPECT_EQ(none.exit_code, 0);
  EXPECT_TRUE(testing::read_file(out).empty());
  EXPECT_EQ(run_command(crm("export --stream a --customer b")).exit_code, 2);
  EXPECT_EQ(run_command(crm("export")).exit_code, 2);
  EXPECT_EQ(run_command(crm("export --from yesterday")).exit_code, 2);
}

TEST_F(AuditCli, HistoryPrintsAnOrdersTimelineWithTheRuleAndTheDecision) {
  auto result = run_command(crm("history " + order_id_));
  ASSERT_EQ(result.exit_code, 0) << result.output;
  EXPECT_THAT(result.output, HasSubstr("Order " + order_id_));
  EXPECT_THAT(result.output, HasSubstr("OrderSubmitted"));
  EXPECT_THAT(result.output, HasSubstr("LINE@1"));
  EXPECT_THAT(result.output, HasSubstr("by rule 'all@1/every order'"));
  EXPECT_THAT(result.output,
              HasSubstr("mia (manager) decided APPROVE on " + order_id_ + ".1.1: \"ok by me\""));
  EXPECT_EQ(run_command(crm("history ord_none")).exit_code, 1);
  EXPECT_EQ(run_command(std::string(CRM_BINARY) + " history").exit_code, 2);
}

}  // namespace
}  // namespace crm
