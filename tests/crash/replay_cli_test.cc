// `crm replay` on a data directory written by a real engine: every read model rebuilt from
// position 0 must be byte-identical to the live one.
#include <google/protobuf/util/json_util.h>
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdio>

#include "customer.pb.h"
#include "tests/support/test_support.h"

namespace crm {
namespace {

struct CommandResult {
  int exit_code = -1;
  std::string output;
};

CommandResult run_command(const std::string& command) {
  CommandResult result;
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return result;
  char buffer[4096];
  size_t n;
  while ((n = fread(buffer, 1, sizeof buffer, pipe)) > 0) result.output.append(buffer, n);
  int status = pclose(pipe);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

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

TEST(ReplayCli, RefusesUnknownFlags) {
  auto result = run_command(std::string(CRM_BINARY) + " replay --bogus 1");
  EXPECT_EQ(result.exit_code, 2);
  EXPECT_NE(result.output.find("unknown flag --bogus"), std::string::npos) << result.output;
}

}  // namespace
}  // namespace crm
