// Operations endpoints: /healthz (process up) and /readyz (log open, projections caught up),
// both served without a token.
#include <gmock/gmock.h>
#include <google/protobuf/struct.pb.h>

#include <atomic>
#include <thread>

#include "tests/api/api_fixture.h"

namespace crm::api_test {
namespace {

class Operations : public ApiTest {
 protected:
  Reply get_without_token(const std::string& path) {
    auto anonymous = client_with("");
    return call({"GET", path, "", kJson, {}}, anonymous.get());
  }
};

TEST_F(Operations, HealthzAnswersUpWithoutAToken) {
  auto reply = get_without_token("/healthz");

  ASSERT_EQ(reply.status, 200) << reply.body;
  EXPECT_EQ(reply.header("Content-Type"), kJson);
  EXPECT_EQ(parse_json<api::Health>(reply.body).status(), "UP");
}

TEST_F(Operations, ReadyzAnswersReadyWithItsChecksWithoutAToken) {
  register_customer(R"({"name": "Acme", "kind": "ENTERPRISE"})");

  auto reply = get_without_token("/readyz");

  ASSERT_EQ(reply.status, 200) << reply.body;
  auto health = parse_json<api::Health>(reply.body);
  EXPECT_EQ(health.status(), "READY");
  ASSERT_EQ(health.checks_size(), 2);
  EXPECT_EQ(health.checks(0).name(), "event_log");
  EXPECT_EQ(health.checks(1).name(), "projections");
  for (const auto& check : health.checks()) {
    EXPECT_TRUE(check.ok()) << check.name() << ": " << check.detail();
    EXPECT_FALSE(check.detail().empty()) << check.name();
  }
}

TEST_F(Operations, OpenApiDocumentIsServedWithoutATokenAndNamesTheRoutes) {
  auto reply = get_without_token("/v1/openapi.json");

  ASSERT_EQ(reply.status, 200) << reply.body;
  EXPECT_EQ(reply.header("Content-Type"), kJson);
  google::protobuf::Struct document;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(reply.body, &document).ok());
  EXPECT_EQ(document.fields().at("openapi").string_value(), "3.0.3");
  const auto& paths = document.fields().at("paths").struct_value().fields();
  for (const char* path : {"/v1/customers", "/v1/customers/{id}", "/v1/customers/{id}/history",
                           "/v1/customers/{id}/contacts", "/v1/customers:import",
                           "/v1/principals/{id}", "/v1/streams/{streamId}/events"}) {
    EXPECT_TRUE(paths.count(path)) << path;
  }
}

TEST_F(Operations, ASecondEngineCannotTakeTheSamePort) {
  testing::TempDir other_data;
  AppConfig config;
  config.data_dir = other_data.path();
  config.http.host = "127.0.0.1";
  config.http.port = served().port();
  SystemClock clock;
  RandomIdSource ids;
  auto second = App::open(config, clock, ids);
  ASSERT_TRUE(second.is_ok()) << second.status().to_string();

  EXPECT_EQ(second.value()->bind(), -1);  // not sharing the port and half the connections
}

TEST_F(Operations, StopRightAfterStartingEndsServingEvenBeforeTheFirstAccept) {
  // stop() may come before the serving thread reaches accept(); serve() must still return.
  for (int round = 0; round < 20; ++round) {
    testing::TempDir data;
    AppConfig config;
    config.data_dir = data.path();
    config.http.host = "127.0.0.1";
    config.http.port = 0;
    SystemClock clock;
    RandomIdSource ids;
    auto app = App::open(config, clock, ids);
    ASSERT_TRUE(app.is_ok()) << app.status().to_string();
    ASSERT_GT(app.value()->bind(), 0);
    std::atomic<bool> returned = false;
    std::thread serving([&] {
      app.value()->serve();
      returned = true;
    });
    app.value()->stop();

    EXPECT_TRUE(testing::wait_until([&] { return returned.load(); })) << "round " << round;
    if (!returned)
      serving.detach();  // leave the process a failure, not a hang
    else
      serving.join();
    if (HasFailure()) return;
  }
}

}  // namespace
}  // namespace crm::api_test
