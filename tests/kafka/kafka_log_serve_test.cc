// `crm serve --event-log kafka` as real processes sharing librdkafka's mock cluster (3 brokers,
// its own process):
// - an instance killed with SIGKILL in the middle of concurrent registrations loses no
//   acknowledged one and applies none twice — shown by a new instance on an EMPTY data
//   directory, whose every record (events, aggregate state, idempotency keys, principals, read
//   models) comes back from crm.events; an instance that owns no partition answers queries about
//   what the others wrote and forwards writes to their owner;
// - two instances sharing the partitions through the consumer group take HTTP commands for any
//   partition (forwarded to the owner through crm.commands, outcomes back on crm.results); one is
//   killed with SIGKILL under load, the other takes its partitions over: no acknowledged command
//   lost, none applied twice.
// crm.events is read back with kcat, an independent Kafka client.
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
    // A killed group member's partitions move after 6 s instead of the default 45 s.
    return {"--partitions",
            "4",
            "--event-log",
            "kafka",
            "--kafka-brokers",
            cluster_.bootstrap(),
            "--kafka-owned-partitions",
            owned,
            "--kafka-settings",
            "session.timeout.ms=6000,heartbeat.interval.ms=500"};
  }
  // Retries every key attempted on `port` and checks that each names one customer, an
  // acknowledged key the customer it created; then that the read model lists each once.
  void expect_each_applied_once(int port, const std::string& token, const std::set<int>& attempted,
                                const std::map<int, std::string>& acknowledged) {
    auto client = new_client(port, token);
    client->set_read_timeout(60, 0);
    for (const auto& [n, id] : acknowledged) {
      // The survivor's copy may still be catching up with what the other instance wrote.
      EXPECT_TRUE(testing::wait_until([&] {
        auto reply = client->Get("/v1/customers/" + id);
        return reply && reply->status == 200;
      })) << "acknowledged customer "
          << id << " lost";
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
    size_t listed = 0;
    ASSERT_TRUE(testing::wait_until(
        [&] {
          listed = 0;
          std::string page_token;
          do {
            auto reply = client->Get("/v1/customers?pageSize=500&pageToken=" + page_token);
            if (!reply || reply->status != 200) return false;
            customer::CustomerList page;
            google::protobuf::util::JsonParseOptions options;
            options.ignore_unknown_fields = true;
            if (!google::protobuf::util::JsonStringToMessage(reply->body, &page, options).ok())
              return false;
            listed += static_cast<size_t>(page.items_size());
            page_token = page.next_page_token();
          } while (!page_token.empty());
          return listed == attempted.size();
        },
        std::chrono::seconds(30)))
        << listed << " customers listed, " << attempted.size() << " keys";
    ids_ = std::move(ids);
  }
  std::string data_dir(const std::string& name) { return dir_.path() + "/" + name; }

  testing::KafkaMock cluster_{3,
                              {{"crm.events", 4},
                               {"crm.commands", 4},
                               {"crm.results", 4},
                               {"crm.inbound", 4},
                               {"crm.rejected", 2}}};
  testing::TempDir dir_;
  std::string log_ = dir_.path() + "/crm.log";
  std::set<std::string> ids_;  // of the customers, after expect_each_applied_once
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
  expect_each_applied_once(second.port(), token, attempted, acknowledged);
  const std::set<std::string>& ids = ids_;

  // An instance that owns no partition follows crm.events: it answers about every customer.
  EngineProcess reader(data_dir("reader"), log_, flags("none"));
  ASSERT_TRUE(reader.start());
  auto reader_client = new_client(reader.port(), token);
  for (const auto& id : ids) {
    auto reply = reader_client->Get("/v1/customers/" + id);
    ASSERT_TRUE(reply);
    EXPECT_EQ(reply->status, 200) << id;
  }
  // A write to it is forwarded to the partition's owner through crm.commands; the reply is the
  // owner's outcome, and the customer is soon readable here too.
  auto forwarded = reader_client->Post("/v1/customers", body(-1), "application/json");
  ASSERT_TRUE(forwarded);
  ASSERT_EQ(forwarded->status, 201) << forwarded->body;
  const std::string forwarded_id = id_of(forwarded->body);
  EXPECT_TRUE(testing::wait_until([&] {
    auto reply = reader_client->Get("/v1/customers/" + forwarded_id);
    return reply && reply->status == 200;
  }));

  // kcat, an independent client, reads the events back: protobuf envelopes keyed by customer.
  auto read = testing::run_command("kcat -b " + cluster_.bootstrap() +
                                   " -C -t crm.events -o beginning -e -q -f '%k\\n'");
  ASSERT_EQ(read.exit_code, 0) << read.output;
  for (const auto& id : ids) EXPECT_NE(read.output.find(id), std::string::npos) << id;
}

TEST_F(KafkaServe, TwoInstancesShareThePartitionsAndOneSurvivesTheOthersKill) {
  EngineProcess first(data_dir("first"), log_, flags("group"));
  ASSERT_TRUE(first.start());
  const std::string token = first.admin_token();
  ASSERT_FALSE(token.empty());
  EngineProcess second(data_dir("second"), log_, flags("group"));
  ASSERT_TRUE(second.start());

  // Half the writers on each instance; commands for the other's partitions are forwarded.
  std::mutex mu;
  std::map<int, std::string> acknowledged;
  std::set<int> attempted;
  std::atomic<bool> first_killed{false}, done{false};
  std::atomic<size_t> acknowledged_after_kill{0};
  std::atomic<int> next{0};
  std::vector<std::thread> writers;
  for (int w = 0; w < kWriters; ++w) {
    const bool on_first = w % 2 == 0;
    writers.emplace_back([&, on_first] {
      auto client = new_client(on_first ? first.port() : second.port(), token);
      client->set_read_timeout(60, 0);
      while (!done && !(on_first && first_killed)) {
        const int n = next++;
        {
          std::lock_guard lock(mu);
          attempted.insert(n);
        }
        httplib::Headers headers = {{"Idempotency-Key", "kafka-" + std::to_string(n)}};
        auto reply = client->Post("/v1/customers", headers, body(n), "application/json");
        // No answer (the kill) or 503 (partitions moving): the outcome is unknown.
        if (!reply || reply->status == 503) continue;
        if (reply->status != 201) {
          ADD_FAILURE() << "registration " << n << ": " << reply->status << " " << reply->body;
          continue;
        }
        std::lock_guard lock(mu);
        acknowledged[n] = id_of(reply->body);
        if (first_killed) ++acknowledged_after_kill;
      }
    });
  }
  ASSERT_TRUE(testing::wait_until(
      [&] {
        std::lock_guard lock(mu);
        return acknowledged.size() >= kAcknowledgedBeforeKill;
      },
      std::chrono::seconds(90)));
  first.kill_now();
  first_killed = true;
  // The survivor takes the dead instance's partitions over and goes on acknowledging.
  EXPECT_TRUE(
      testing::wait_until([&] { return acknowledged_after_kill >= 50; }, std::chrono::seconds(90)));
  done = true;
  for (auto& t : writers) t.join();

  expect_each_applied_once(second.port(), token, attempted, acknowledged);
}

}  // namespace
}  // namespace crm
