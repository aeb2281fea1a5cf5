// What an operator relies on while the engine serves: Prometheus metrics, the request log with
// request and correlation ids, 429 with Retry-After beyond a partition's bound, backups taken
// while serving, and HTTPS when a certificate is configured.
#include <gmock/gmock.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <set>
#include <thread>

#include "order.pb.h"
#include "tests/api/api_fixture.h"

namespace crm::api_test {
namespace {

using ::testing::HasSubstr;

// The value of one sample line ("name{labels} value") in Prometheus text, or -1 if absent.
double sample(const std::string& text, const std::string& series) {
  size_t at = 0;
  while ((at = text.find(series + " ", at)) != std::string::npos) {
    if (at == 0 || text[at - 1] == '\n') return std::stod(text.substr(at + series.size() + 1));
    at += series.size();
  }
  return -1;
}

class Metrics : public ApiTest {};

TEST_F(Metrics, CountCommandsRequestsAndGroupCommitsWithoutAToken) {
  register_customer(kMinimalCustomer);
  register_customer(kMinimalCustomer);
  EXPECT_EQ(post("/v1/customers", R"({"name": "")").status, 400);   // cut short
  EXPECT_EQ(post("/v1/customers", R"({"name": ""})").status, 422);  // refused by the rules
  auto anonymous = client_with("");

  auto reply = call({"GET", "/metrics", "", kJson, {}}, anonymous.get());

  ASSERT_EQ(reply.status, 200) << reply.body;
  EXPECT_THAT(reply.header("Content-Type"), HasSubstr("text/plain; version=0.0.4"));
  const std::string& text = reply.body;
  EXPECT_EQ(sample(text, R"(crm_commands_total{outcome="accepted",type="register_customer"})"), 2)
      << text;
  EXPECT_EQ(
      sample(text, R"(crm_http_requests_total{method="POST",route="/v1/customers",status="201"})"),
      2);
  EXPECT_EQ(
      sample(text, R"(crm_http_requests_total{method="POST",route="/v1/customers",status="400"})"),
      1);
  EXPECT_GE(sample(text, "crm_group_commit_batch_requests_count"), 1);
  EXPECT_GE(sample(text, "crm_group_commit_write_seconds_count"), 1);
  EXPECT_EQ(sample(text, R"(crm_commands_total{outcome="rejected",type="register_customer"})"), 1);
  EXPECT_EQ(sample(text, R"(crm_command_duration_seconds_count{type="register_customer"})"), 3);
  double events = 0;
  for (uint32_t p = 0; p < served().app().log().partition_count(); ++p)
    events += sample(text, "crm_log_end_offset{partition=\"" + std::to_string(p) + "\"}");
  EXPECT_GE(events, 3);  // the admin principal and two customers
  for (const char* gauge :
       {"crm_projection_lag_events", "crm_projection_up", "crm_approvals_pending",
        "crm_approvals_overdue", "crm_tasks_open", "crm_tasks_overdue",
        "crm_aggregate_cache_misses_total", "crm_aggregate_cache_hits_total"}) {
    EXPECT_GE(sample(text, gauge), 0) << gauge << " missing from\n" << text;
  }
  EXPECT_EQ(sample(text, "crm_projection_up"), 1);
}

TEST_F(Metrics, PassPromtoolCheck) {
  register_customer(kMinimalCustomer);
  auto reply = get("/metrics");
  ASSERT_EQ(reply.status, 200);
  testing::TempDir dir;
  const std::string path = dir.path() + "/metrics.txt";
  {
    std::ofstream out(path);
    out << reply.body;
  }
  // promtool comes with Debian's prometheus package, which ops/test.sh installs.
  auto checked = testing::run_command("promtool check metrics < " + path);
  EXPECT_EQ(checked.exit_code, 0) << checked.output;
}

TEST_F(Metrics, CountPendingApprovalsAndOpenTasks) {
  const std::string customer = register_customer(kMinimalCustomer).id();
  submit_order_asking_a_manager(customer);
  for (const char* subject : {"Call back", "Send the contract"}) {
    auto task = post("/v1/tasks", R"({"customerId": ")" + customer + R"(", "subject": ")" +
                                      subject + R"(", "dueAt": "2999-12-01T09:00:00Z",
                                      "assigneeRole": "sales"})");
    ASSERT_EQ(task.status, 201) << task.body;
  }
  ASSERT_TRUE(testing::wait_until([&] { return served().app().projector().lag() == 0; }));

  auto text = get("/metrics").body;

  EXPECT_EQ(sample(text, "crm_approvals_pending"), 1) << text;
  EXPECT_EQ(sample(text, "crm_approvals_overdue"), 0);
  EXPECT_EQ(sample(text, "crm_tasks_open"), 2);
  EXPECT_EQ(sample(text, "crm_tasks_overdue"), 0);
}

class RequestLog : public ApiTest {
 protected:
  AppConfig app_config() override {
    AppConfig config;
    config.http.log_requests = api::RequestLogging::kAll;
    config.http.request_log = [this](const api::RequestRecord& record) {
      std::lock_guard lock(mu_);
      records_.push_back(record);
    };
    return config;
  }
  std::vector<api::RequestRecord> records() {
    std::lock_guard lock(mu_);
    return records_;
  }
  std::mutex mu_;
  std::vector<api::RequestRecord> records_;
};

TEST_F(RequestLog, EachLineCarriesTheRequestAndCorrelationIds) {
  auto reply = post("/v1/customers", kMinimalCustomer, {{"X-Correlation-Id", "order-flow-7"}});
  ASSERT_EQ(reply.status, 201);

  auto logged = records();
  ASSERT_FALSE(logged.empty());
  const auto& line = logged.back();
  EXPECT_EQ(line.method, "POST");
  EXPECT_EQ(line.path, "/v1/customers");
  EXPECT_EQ(line.status, 201);
  EXPECT_EQ(line.request_id, reply.header("X-Request-Id"));
  EXPECT_EQ(line.correlation_id, "order-flow-7");
  EXPECT_EQ(line.principal, "admin");
  EXPECT_GE(line.duration_us, 0);
}

class Overload : public ApiTest {
 protected:
  AppConfig app_config() override {
    AppConfig config;
    config.partitions = 1;
    config.processor.queue_max = 1;
    return config;
  }
};

TEST_F(Overload, BeyondThePartitionsBoundCommandsGet429WithRetryAfterAndNothingStored) {
  // One partition holding one queued command: a burst overflows it. Bursts until one does.
  bool refused = false;
  for (int burst = 0; burst < 20 && !refused; ++burst) {
    std::vector<Request> requests;
    for (int i = 0; i < 32; ++i) {
      const std::string key = "burst-" + std::to_string(burst) + "-" + std::to_string(i);
      requests.push_back(
          {"POST", "/v1/customers", kMinimalCustomer, kJson, {{"Idempotency-Key", key}}});
    }
    auto replies = concurrently(requests);
    for (size_t i = 0; i < replies.size(); ++i) {
      const auto& reply = replies[i];
      ASSERT_TRUE(reply.status == 201 || reply.status == 429) << reply.status << reply.body;
      if (reply.status != 429) continue;
      refused = true;
      EXPECT_EQ(reply.header("Retry-After"), "1");
      EXPECT_THAT(reply.body, HasSubstr("in flight"));
      // Nothing was stored: the same key now registers the customer once.
      auto retried = call(requests[i]);
      EXPECT_EQ(retried.status, 201) << retried.body;
      EXPECT_FALSE(retried.has_header("Idempotent-Replayed")) << "the refused request was stored";
    }
  }
  EXPECT_TRUE(refused) << "no burst of 32 overflowed a bound of 1";
  auto text = get("/metrics").body;
  EXPECT_GE(sample(text, R"(crm_commands_total{outcome="overloaded",type="register_customer"})"),
            1);
}

class Limits : public ApiTest {};

TEST_F(Limits, TooManyOrTooLargeHeadersAreRefusedWithAProblem) {
  httplib::Headers many;
  for (int i = 0; i < 120; ++i) many.emplace("X-Field-" + std::to_string(i), "v");
  auto counted = get("/v1/customers", many);
  EXPECT_EQ(counted.status, 431) << counted.body;
  EXPECT_EQ(counted.header("Content-Type"), kProblemJson);
  EXPECT_THAT(counted.body, HasSubstr("at most 100 header fields"));

  httplib::Headers large;
  for (int i = 0; i < 10; ++i)
    large.emplace("X-Large-" + std::to_string(i), std::string(8000, 'a'));
  EXPECT_EQ(get("/v1/customers", large).status, 431);

  auto long_line = get("/v1/customers", {{"X-Long", std::string(9000, 'a')}});
  EXPECT_EQ(long_line.status, 400) << long_line.body;
  EXPECT_EQ(long_line.header("Content-Type"), kProblemJson);
  // A compressed body is refused unread: httplib would inflate it without a bound.
  auto compressed = call(
      {"POST", "/v1/customers", std::string("\x1f\x8b", 2), kJson, {{"Content-Encoding", "gzip"}}});
  EXPECT_EQ(compressed.status, 415) << compressed.body;
  // The server still answers.
  EXPECT_EQ(get("/v1/customers").status, 200);
}

class Backups : public ApiTest {};

TEST_F(Backups, CopyTakenWhileWritingHoldsEveryEarlierAcknowledgedWriteAndVerifies) {
  std::vector<std::string> before;
  for (int i = 0; i < 20; ++i) before.push_back(register_customer(kMinimalCustomer).id());
  // Writers keep going while the copy is taken.
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    auto client = client_with(served().admin_token());
    while (!stop) send(*client, {"POST", "/v1/customers", kMinimalCustomer, kJson, {}});
  });
  testing::TempDir target;
  const std::string copy = target.path() + "/copy";

  auto reply = post("/v1/admin/backups", R"({"directory": ")" + copy + R"("})");
  stop = true;
  writer.join();

  ASSERT_EQ(reply.status, 201) << reply.body;
  auto backup = parse_json<api::Backup>(reply.body);
  EXPECT_EQ(backup.directory(), copy);
  EXPECT_EQ(backup.positions_size(), static_cast<int>(served().app().log().partition_count()));
  auto verified = testing::run_command(std::string(CRM_BINARY) + " verify --data-dir " + copy);
  EXPECT_EQ(verified.exit_code, 0) << verified.output;

  testing::ServedApp restored(copy);
  auto client = restored.client(served().admin_token());
  for (const auto& id : before) {
    auto got = send(*client, {"GET", "/v1/customers/" + id, "", kJson, {}});
    EXPECT_EQ(got.status, 200) << id << ": " << got.body;
  }
}

TEST_F(Backups, RefuseAnUsedOrRelativeDirectoryAndAnyoneButAdmins) {
  testing::TempDir target;
  std::filesystem::create_directories(target.path() + "/used");
  std::ofstream(target.path() + "/used/file") << "x";

  auto used = post("/v1/admin/backups", R"({"directory": ")" + target.path() + R"(/used"})");
  EXPECT_EQ(used.status, 409) << used.body;
  EXPECT_THAT(used.body, HasSubstr("not empty"));
  auto relative = post("/v1/admin/backups", R"({"directory": "backups/one"})");
  EXPECT_EQ(relative.status, 400) << relative.body;
  EXPECT_THAT(relative.body, HasSubstr("absolute"));
  EXPECT_FALSE(std::filesystem::exists(target.path() + "/used/db"));

  const std::string auditor = token_with_roles("ada", R"("auditor")");
  auto forbidden = as(
      auditor,
      {"POST", "/v1/admin/backups", R"({"directory": ")" + target.path() + R"(/new"})", kJson, {}});
  EXPECT_EQ(forbidden.status, 403);
  EXPECT_FALSE(std::filesystem::exists(target.path() + "/new"));
}

// HTTPS: a self-signed certificate made with the openssl command line for 127.0.0.1.
class Tls : public ApiTest {
 protected:
  void SetUp() override {
    auto made = testing::run_command(
        "openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1 "
        "-addext subjectAltName=IP:127.0.0.1 -keyout " +
        key_path() + " -out " + cert_path() + " 2>&1");
    ASSERT_EQ(made.exit_code, 0) << made.output;
    ApiTest::SetUp();
  }
  AppConfig app_config() override {
    AppConfig config;
    config.http.tls_cert_file = cert_path();
    config.http.tls_key_file = key_path();
    return config;
  }
  std::string cert_path() const { return certs_.path() + "/cert.pem"; }
  std::string key_path() const { return certs_.path() + "/key.pem"; }
  testing::TempDir certs_;
};

TEST_F(Tls, ServesHttpsWithTheConfiguredCertificateAndRefusesPlainHttp) {
  httplib::SSLClient client("127.0.0.1", served().port());
  client.set_ca_cert_path(cert_path());
  client.enable_server_certificate_verification(true);
  client.set_bearer_token_auth(served().admin_token());

  auto registered = client.Post("/v1/customers", kMinimalCustomer, kJson);
  ASSERT_TRUE(registered) << httplib::to_string(registered.error());
  EXPECT_EQ(registered->status, 201) << registered->body;

  httplib::Client plain("127.0.0.1", served().port());
  plain.set_read_timeout(5, 0);
  auto refused = plain.Get("/healthz");
  EXPECT_FALSE(refused && refused->status == 200);
}

TEST(TlsConfiguration, AKeyThatDoesNotLoadStopsTheStartNamingTheFiles) {
  testing::TempDir dir;
  std::ofstream(dir.path() + "/cert.pem") << "not a certificate";
  std::ofstream(dir.path() + "/key.pem") << "not a key";
  AppConfig config;
  config.data_dir = dir.path() + "/data";
  config.http.port = 0;
  config.http.tls_cert_file = dir.path() + "/cert.pem";
  config.http.tls_key_file = dir.path() + "/key.pem";
  SystemClock clock;
  RandomIdSource ids;

  auto opened = App::open(config, clock, ids);

  ASSERT_FALSE(opened.is_ok());
  EXPECT_THAT(opened.status().message(), HasSubstr(dir.path() + "/cert.pem"));
}

}  // namespace
}  // namespace crm::api_test
