// The operators' command line: `crm config check` reads a configuration file as `crm serve`
// would and names a bad key; `crm serve --config` takes it, under the environment and flags;
// `crm backup` copies a stopped engine's data directory, or asks a serving one for the copy,
// and the engine starts on the copy.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "tests/support/test_support.h"

namespace crm {
namespace {

using ::testing::HasSubstr;
using testing::run_command;

const std::string kCrm = CRM_BINARY;

class OperationsCli : public ::testing::Test {
 protected:
  std::string write(const std::string& name, const std::string& text) {
    const std::string path = dir_.path() + "/" + name;
    std::ofstream(path) << text;
    return path;
  }
  testing::TempDir dir_;
};

TEST_F(OperationsCli, ConfigCheckAcceptsAGoodFileAndPrintsWhatServeWouldRunWith) {
  auto path = write("crm.json", R"({"dataDir": "/srv/crm", "listen": "127.0.0.1:9090",
      "partitions": 4, "inflightMax": 100, "followUpRules": {"revisitAfter": "P7D"},
      "logRequests": "all", "digestInterval": "PT30M"})");

  auto result = run_command(kCrm + " config check " + path);

  EXPECT_EQ(result.exit_code, 0) << result.output;
  EXPECT_THAT(result.output, HasSubstr(path + ": ok"));
  EXPECT_THAT(result.output, HasSubstr(R"("listen": "127.0.0.1:9090")"));
  EXPECT_THAT(result.output, HasSubstr(R"("inflightMax": "100")"));
  EXPECT_THAT(result.output, HasSubstr(R"("digestInterval": "PT1800S")"));
}

TEST_F(OperationsCli, ConfigCheckNamesTheBadKey) {
  struct Case {
    std::string text;
    std::string expected;
  };
  for (const auto& c : std::vector<Case>{
           {R"({"partitons": 4})", "unknown key 'partitons'"},
           {R"({"partitions": 0})", "key 'partitions' of "},
           {R"({"partitions": 2.5})", "key 'partitions' must be a whole number"},
           {R"({"listen": "8080"})", "key 'listen' of "},
           {R"({"followUpRules": {"revisitAfter": "soon"}})", "key 'followUpRules' of "},
           {R"({"tlsCert": "/nonexistent/cert.pem"})", "tls-key"},
           {R"({"logRequests": "some"})", "none, errors or all"},
           {R"(["not", "an", "object"])", "is not a JSON object"},
       }) {
    auto path = write("bad.json", c.text);
    auto result = run_command(kCrm + " config check " + path);
    EXPECT_EQ(result.exit_code, 2) << c.text << "\n" << result.output;
    EXPECT_THAT(result.output, HasSubstr(c.expected)) << c.text;
  }
  auto missing = run_command(kCrm + " config check " + dir_.path() + "/none.json");
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_THAT(missing.output, HasSubstr("cannot read"));
}

TEST_F(OperationsCli, ServeRefusesABadConfigFileAndTheEnvironmentWinsOverIt) {
  auto bad = write("bad.json", R"({"httpThreads": 0})");
  auto refused = run_command(kCrm + " serve --config " + bad);
  EXPECT_EQ(refused.exit_code, 2);
  EXPECT_THAT(refused.output, HasSubstr("key 'httpThreads' of " + bad + " must be 1..10000"));

  // The file's good value is overridden by a bad one from the environment: the environment's
  // name is given as the culprit, and the engine does not start.
  auto good = write("good.json", R"({"dataDir": ")" + dir_.path() + R"(/data", "partitions": 2})");
  auto overridden = run_command("CRM_PARTITIONS=0 " + kCrm + " serve --config " + good);
  EXPECT_EQ(overridden.exit_code, 2);
  EXPECT_THAT(overridden.output, HasSubstr("CRM_PARTITIONS must be 1..4096"));
  EXPECT_FALSE(std::filesystem::exists(dir_.path() + "/data"));
}

TEST_F(OperationsCli, BackupOfAStoppedEngineStartsAndKeepsEveryWrite) {
  const std::string data = dir_.path() + "/data";
  std::string customer;
  std::string token;
  {
    testing::ServedApp served(data);
    token = served.admin_token();
    auto reply = served.client()->Post("/v1/customers", R"({"name": "Acme", "kind": "ENTERPRISE"})",
                                       "application/json");
    ASSERT_TRUE(reply);
    ASSERT_EQ(reply->status, 201) << reply->body;
    const auto at = reply->body.find("cus_");
    ASSERT_NE(at, std::string::npos) << reply->body;
    customer = reply->body.substr(at, 36);
  }
  const std::string copy = dir_.path() + "/copy";

  auto result = run_command(kCrm + " backup " + copy + " --data-dir " + data);

  ASSERT_EQ(result.exit_code, 0) << result.output;
  EXPECT_THAT(result.output, HasSubstr("crm serve --data-dir " + copy));
  auto verified = run_command(kCrm + " verify --data-dir " + copy);
  EXPECT_EQ(verified.exit_code, 0) << verified.output;
  testing::ServedApp restored(copy);
  auto got = restored.client(token)->Get("/v1/customers/" + customer);
  ASSERT_TRUE(got);
  EXPECT_EQ(got->status, 200) << customer << ": " << got->body;

  // Into the same directory again: refused, the first copy untouched.
  auto again = run_command(kCrm + " backup " + copy + " --data-dir " + data);
  EXPECT_EQ(again.exit_code, 1);
  EXPECT_THAT(again.output, HasSubstr("not empty"));
}

TEST_F(OperationsCli, BackupThroughAServingEngineWithTheAdminToken) {
  const std::string data = dir_.path() + "/data";
  testing::ServedApp served(data);
  auto reply = served.client()->Post("/v1/customers", R"({"name": "Acme", "kind": "ENTERPRISE"})",
                                     "application/json");
  ASSERT_TRUE(reply);
  ASSERT_EQ(reply->status, 201);
  const std::string copy = dir_.path() + "/copy";
  const std::string url = " --url http://127.0.0.1:" + std::to_string(served.port());

  // The database is the serving engine's: without --url the tool says so.
  auto offline = run_command(kCrm + " backup " + copy + " --data-dir " + data);
  EXPECT_EQ(offline.exit_code, 1);
  EXPECT_THAT(offline.output, HasSubstr("is crm serve running on it?"));

  auto result = run_command(kCrm + " backup " + copy + url + " --data-dir " + data);

  ASSERT_EQ(result.exit_code, 0) << result.output;
  EXPECT_THAT(result.output, HasSubstr(R"("directory":")" + copy + R"(")"));
  auto verified = run_command(kCrm + " verify --data-dir " + copy);
  EXPECT_EQ(verified.exit_code, 0) << verified.output;
  EXPECT_THAT(verified.output, HasSubstr("\"ok\":true"));

  auto no_token = run_command("CRM_TOKEN= " + kCrm + " backup " + dir_.path() + "/other" + url +
                              " --token-file " + dir_.path() + "/none");
  EXPECT_EQ(no_token.exit_code, 2);
  EXPECT_THAT(no_token.output, HasSubstr("no admin token"));
}

}  // namespace
}  // namespace crm
