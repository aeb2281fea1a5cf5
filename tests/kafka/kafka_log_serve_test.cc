// `crm serve --event-log kafka` as real processes sharing librdkafka's mock cluster (3 brokers,
// its own process): an instance killed with SIGKILL in the middle of concurrent registrations
// loses no acknowledged one and applies none twice — shown by a new instance on an EMPTY data
// directory, whose every record (events, aggregate state, idempotency keys, principals, read
// models) comes back from crm.events — and an instance that owns no partition answers queries
// about what the others wrote and refuses writes with the reason. crm.events is read back with
// kcat, an independent Kafka client.
#include <google/protobuf/util/json_util.h>
#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "customer.pb.h"
#include "tests/support/engine_process.h"
#include "tests/support/kafka_mock.h"
#include "tests/support/test_support.h"

namespace crm {
namespace {

using testing::EngineProcess;
using testing::new_client;

constexpr int kWriters = 8;
constexpr size_t kAcknowledgedBeforeKill = 150;

std::string body(int n) {
  return R"({"name":"Kafka Customer )" + std::to_string(n) +
         R"(","kind":"ENTERPRISE","certificateNo":"KC)" + std::to_string(n) +
         R"(","level":"GROWTH","creditLevel":"B","region":"north","industry":"retail",)"
         R"("ownerId":"sales-1","stage":"PROSPECT"})";
}

std::string id_of(const std::string& json) {
  customer::Customer c;
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = true;
  if (!google::protobuf::util::JsonStringToMessage(json, &c, options).ok()) return "";
  return c.id();
}

class KafkaServe : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_FALSE(cluster_.bootstrap().empty()) << cluster_.error(); }
  std::vector<std::string> flags(const std::string& owned) {
    return {"--partitions",   "4",    "--event-log", "kafka", "--kafka-brokers",
            cluster_.bootstrap(), "--kafka-owned-partitions", owned};
  }
  std::string data_dir(const std::string& name) { return dir_.path() + "/" + name; }

  testing::KafkaMock cluster_{
      3, {{"crm.events", 4}, {"crm.inbound", 4}, {"crm.rejected", 2}}};
  testing::TempDir dir_;
  std::string log_ = dir_.path() + "/crm.log";
};

TEST_F(KafkaServe, KilledInstanceLosesNothingAndAFreshOneRebuildsEverythingFromKafka) {
  EngineProcess first(data_dir("first"), log_, flags("all"));
  ASSERT_TRUE(first.start());
  const std::string token = first.admin_token();
  ASSERT_FALSE(token.empty());

  // Writers register customers, each with an idempotency key, until the kill.
  std::mutex mu;
  std::map<int, std::string> acknowledged;  // key number -> customer id
  std::set<int> attempted;
  std::atomic<bool> killed{false};
  std::atomic<int> next{0};
  std::vector<std::thread> writers;
  for (int w = 0; w < kWriters; ++w) {
    writers.emplace_back([&] {
      auto client = new_client(first.port(), token);
      while (!killed) {
        const int n = next++;
        {
          std::lock_guard lock(mu);
          attempted.insert(n);
        }
        httplib::Headers headers = {{"Idempotency-Key", "kafka-" + std::to_string(n)}};
        auto reply = client->Post("/v1/customers", headers, body(n), "application/json");
        if (!reply) continue;  // the kill: outcome unknown
        if (reply->status != 201) {
          ADD_FAILURE() << "registration " << n << ": " << reply->status << " " << reply->body;
          continue;
        }
        std::lock_guard lock(mu);
        acknowledged[n] = id_of(reply->body);
      }
    });
  }
  ASSERT_TRUE(testing::wait_until(
      [&] {
        std::lock_guard lock(mu);
        return acknowledged.size() >= kAcknowledgedBeforeKill;
      },
      std::chrono::seconds(60)));
  first.kill_now();
  killed = true;
  for (auto& t : writers) t.join();

  // A new instance on an empty data directory: the same admin token works (the principal came
  // back from crm.events), every acknowledged customer is there, and every key retried — known
  // or not — answers with one customer: an acknowledged key with the customer it created.
  EngineProcess second(data_dir("second"), log_, flags("all"));
  ASSERT_TRUE(second.start());
  auto client = new_client(second.port(), token);
  for (const auto& [n, id] : acknowledged) {
    auto reply = client->Get("/v1/customers/" + id);
    ASSERT_TRUE(reply);
    EXPECT_EQ(reply->status, 200) << "acknowledged customer " << id << " lost";
  }
  std::set<std::string> ids;
  for (int n : attempted) {
    httplib::Headers headers = {{"Idempotency-Key", "kafka-" + std::to_string(n)}};
    auto reply = client->Post("/v1/customers", headers, body(n), "application/json");
    ASSERT_TRUE(reply);
    ASSERT_EQ(reply->status, 201) << reply->body;
    const std::string id = id_of(reply->body);
    if (auto it = acknowledged.find(n); it != acknowledged.end()) {
      EXPECT_EQ(id, it->second) << "key " << n << " applied twice";
      EXPECT_EQ(reply->get_header_value("Idempotent-Replayed"), "true");
    }
    ids.insert(id);
  }
  EXPECT_EQ(ids.size(), attempted.size());

  // The read model lists each customer once: nothing applied twice.
  size_t listed = 0;
  std::string page_token;
  do {
    auto reply = client->Get("/v1/customers?pageSize=500&pageToken=" + page_token);
    ASSERT_TRUE(reply);
    ASSERT_EQ(reply->status, 200) << reply->body;
    customer::CustomerList page;
    google::protobuf::util::JsonParseOptions options;
    options.ignore_unknown_fields = true;
    ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(reply->body, &page, options).ok());
    listed += static_cast<size_t>(page.items_size());
    page_token = page.next_page_token();
  } while (!page_token.empty());
  EXPECT_EQ(listed, attempted.size());

  // An instance that owns no partition follows crm.events: it answers about every customer and
  // refuses writes, naming why.
  EngineProcess reader(data_dir("reader"), log_, flags("none"));
  ASSERT_TRUE(reader.start());
  auto reader_client = new_client(reader.port(), token);
  for (const auto& id : ids) {
    auto reply = reader_client->Get("/v1/customers/" + id);
    ASSERT_TRUE(reply);
    EXPECT_EQ(reply->status, 200) << id;
  }
  auto refused = reader_client->Post("/v1/customers", body(-1), "application/json");
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 503);
  EXPECT_NE(refused->body.find("owned by another instance"), std::string::npos) << refused->body;

  // kcat, an independent client, reads the events back: protobuf envelopes keyed by customer.
  auto read = testing::run_command("kcat -b " + cluster_.bootstrap() +
                                   " -C -t crm.events -o beginning -e -q -f '%k\\n'");
  ASSERT_EQ(read.exit_code, 0) << read.output;
  for (const auto& id : ids) EXPECT_NE(read.output.find(id), std::string::npos) << id;
}

}  // namespace
}  // namespace crm
