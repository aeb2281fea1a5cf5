// Inbound integration on Kafka, against librdkafka's mock cluster in its own process, with
// records published and read back by kcat (an independent Kafka client): every valid record is
// applied once (a second delivery of the same idempotency key applies nothing), every invalid one
// lands in crm.rejected with its key, headers, source position and reason, and the consumer moves
// on past it; after a restart nothing is applied again.
#include <gmock/gmock.h>
#include <google/protobuf/util/json_util.h>
#include <gtest/gtest.h>

#include <atomic>
#include <deque>
#include <fstream>
#include <future>
#include <sstream>
#include <thread>

#include "customer.pb.h"
#include "events/codec.h"
#include "tests/support/kafka_mock.h"
#include "tests/support/test_support.h"
#include "workflow/engine.h"
#include "workflow/router.h"

namespace crm {
namespace {

using ::testing::HasSubstr;
using testing::run_command;

class Inbound : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_FALSE(cluster_.bootstrap().empty()) << cluster_.error(); }
  AppConfig config() {
    AppConfig config;
    config.inbound.brokers = cluster_.bootstrap();
    config.inbound.topic_partitions = 4;
    // A restarted engine rejoins its group at once instead of waiting out the old member.
    config.inbound.kafka_settings["session.timeout.ms"] = "6000";
    config.inbound.kafka_settings["heartbeat.interval.ms"] = "500";
    return config;
  }
  // Publishes one record with kcat: key, headers ("name=value"), value.
  void publish(const std::string& key, const std::vector<std::string>& headers,
               const std::string& value) {
    const std::string file = dir_.path() + "/record";
    std::ofstream(file, std::ios::binary) << value;
    std::string command = "kcat -b " + cluster_.bootstrap() + " -P -t crm.inbound -k '" + key + "'";
    for (const auto& h : headers) command += " -H '" + h + "'";
    auto result = run_command(command + " " + file);
    ASSERT_EQ(result.exit_code, 0) << result.output;
  }
  // Every record of crm.rejected: key|headers|value, one a line.
  std::string rejected() {
    return run_command("kcat -b " + cluster_.bootstrap() +
                       " -C -t crm.rejected -o beginning -e -q -f '%k|%h|%s\\n'")
        .output;
  }
  customer::Customer customer(testing::ServedApp& served, const std::string& id) {
    auto reply = served.client()->Get("/v1/customers/" + id);
    customer::Customer c;
    if (reply && reply->status == 200) {
      EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(reply->body, &c).ok());
    }
    return c;
  }

  testing::KafkaMock cluster_{3, {{"crm.inbound", 4}, {"crm.rejected", 2}}};
  testing::TempDir dir_;
};

TEST_F(Inbound, ValidRecordsApplyOnceAndInvalidOnesLandInRejectedWithTheirReason) {
  testing::ServedApp served(dir_.path() + "/data", config());
  ASSERT_NE(served.app().inbound(), nullptr);
  const std::string id = "cus_inbound_1";
  const std::string registration =
      R"({"customerId": ")" + id + R"(", "name": "Acme", "kind": "ENTERPRISE"})";
  publish(id, {"command=RegisterCustomer", "idempotency-key=reg-1"}, registration);
  publish(id, {"command=RegisterCustomer", "idempotency-key=reg-1"}, registration);  // again
  publish("bad-json", {"command=RegisterCustomer"}, R"({"name": )");
  publish("no-such", {"command=FlyToTheMoon"}, "{}");
  publish("no-name", {"command=RegisterCustomer"}, R"({"name": "", "kind": "INDIVIDUAL"})");
  publish("ghost", {"command=UpdateCustomer"}, R"({"customerId": "cus_ghost", "region": "x"})");
  publish(id, {"command=UpdateCustomer", "idempotency-key=upd-1"},
          R"({"customerId": ")" + id + R"(", "region": "East"})");

  auto* inbound = served.app().inbound();
  ASSERT_TRUE(testing::wait_until(
      [&] {
        auto c = inbound->counts();
        return c.applied + c.repeated + c.rejected >= 7;
      },
      std::chrono::seconds(60)))
      << "applied " << inbound->counts().applied << ", repeated " << inbound->counts().repeated
      << ", rejected " << inbound->counts().rejected;
  EXPECT_EQ(inbound->counts().applied, 2u);
  EXPECT_EQ(inbound->counts().repeated, 1u);
  EXPECT_EQ(inbound->counts().rejected, 4u);

  auto acme = customer(served, id);
  EXPECT_EQ(acme.name(), "Acme");
  EXPECT_EQ(acme.region(), "East");
  EXPECT_EQ(acme.version(), 2u);

  std::string lines = rejected();
  std::vector<std::string> records;
  std::istringstream in(lines);
  for (std::string line; std::getline(in, line);) records.push_back(line);
  ASSERT_EQ(records.size(), 4u) << lines;
  for (const auto& [key, rule] :
       std::vector<std::pair<std::string, std::string>>{{"bad-json", "crm-rule=inbound.malformed"},
                                                        {"no-such", "inbound.unknown_command"},
                                                        {"no-name", "crm-rule=customer."},
                                                        {"ghost", "crm-rule="}}) {
    bool found = false;
    for (const auto& r : records) {
      if (r.rfind(key + "|", 0) != 0) continue;
      found = true;
      EXPECT_THAT(r, HasSubstr(rule));
      EXPECT_THAT(r, HasSubstr("crm-source-topic=crm.inbound"));
      EXPECT_THAT(r, HasSubstr("crm-source-offset="));
      EXPECT_THAT(r, HasSubstr("crm-reason="));
      EXPECT_THAT(r, HasSubstr("command="));  // the original headers stay
    }
    EXPECT_TRUE(found) << key << " not in crm.rejected:\n" << lines;
  }
  EXPECT_THAT(lines, HasSubstr(R"(|{"name": )"));  // the original value as it came

  auto text = served.client()->Get("/metrics");
  ASSERT_TRUE(text);
  EXPECT_THAT(text->body, HasSubstr(R"(crm_inbound_records_total{outcome="applied"} 2)"));
  EXPECT_THAT(text->body, HasSubstr(R"(crm_inbound_records_total{outcome="rejected"} 4)"));
  EXPECT_THAT(text->body, HasSubstr("crm_inbound_consumer_lag"));
}

TEST_F(Inbound, ACustomersRecordsApplyInTheirOrderAlsoWhenItsPartitionIsFull) {
  auto busy = config();
  busy.processor.queue_max = 64;  // a small queue, which the flood below keeps full
  testing::ServedApp served(dir_.path() + "/data", busy);
  const std::string id = "cus_inbound_order";
  publish(id, {"command=RegisterCustomer"},
          R"({"customerId": ")" + id + R"(", "name": "Ordered", "kind": "ENTERPRISE"})");
  auto* inbound = served.app().inbound();
  ASSERT_TRUE(testing::wait_until([&] { return inbound->counts().applied == 1; },
                                  std::chrono::seconds(60)));

  // Commands for other customers of the same partition, submitted as fast as the engine refuses
  // them, so that the inbound records keep meeting a full queue.
  std::atomic<bool> flooding{true};
  std::atomic<uint64_t> refused{0};
  std::thread flood([&] {
    const uint32_t partitions = served.app().log().partition_count();
    const uint32_t target = partition_for(id, partitions);
    std::deque<std::future<CommandOutcome>> pending;
    for (uint64_t n = 0; flooding; ++n) {
      const std::string other = "cus_flood_" + std::to_string(n);
      if (partition_for(other, partitions) != target) continue;
      events::CommandEnvelope c;
      c.set_command_id("cmd_flood_" + std::to_string(n));
      c.set_stream_type("customer");
      c.set_stream_id(other);
      c.set_partition_key(other);
      c.mutable_actor()->set_principal_id("flood");
      c.mutable_actor()->set_role("admin");
      c.mutable_register_customer()->set_name("Flood");
      c.mutable_register_customer()->set_kind(customer::INDIVIDUAL);
      c.set_request_hash(sha256(c.register_customer().SerializeAsString()));
      pending.push_back(served.app().engine().submit(std::move(c)));
      while (!pending.empty() &&
             pending.front().wait_for(std::chrono::seconds(0)) == std::future_status::ready) {
        if (pending.front().get().status.code() == StatusCode::kResourceExhausted) ++refused;
        pending.pop_front();
      }
    }
    for (auto& f : pending) f.wait();
  });

  constexpr int kUpdates = 100;
  const std::string file = dir_.path() + "/updates";
  {
    std::ofstream out(file, std::ios::binary);
    for (int i = 1; i <= kUpdates; ++i)
      out << id << '|' << R"({"customerId": ")" << id << R"(", "region": "r)" << i << "\"}\n";
  }
  auto sent = run_command("kcat -b " + cluster_.bootstrap() +
                          " -P -t crm.inbound -K '|' -H command=UpdateCustomer -l " + file);
  EXPECT_EQ(sent.exit_code, 0) << sent.output;
  const bool done = testing::wait_until(
      [&] {
        auto c = inbound->counts();
        return c.applied + c.repeated + c.rejected >= 1 + kUpdates;
      },
      std::chrono::seconds(90));
  flooding = false;
  flood.join();
  ASSERT_TRUE(done) << "applied " << inbound->counts().applied << ", rejected "
                    << inbound->counts().rejected;
  EXPECT_GT(refused.load(), 0u) << "the partition was never full: the test proved nothing";
  EXPECT_EQ(inbound->counts().applied, 1u + kUpdates);
  EXPECT_EQ(inbound->counts().rejected, 0u);
  auto events = served.app().log().read_stream(id, 2, 1000);
  ASSERT_TRUE(events.is_ok());
  ASSERT_EQ(events->size(), static_cast<size_t>(kUpdates));
  for (int i = 0; i < kUpdates; ++i) {
    customer::CustomerProfileChanged changed;
    ASSERT_TRUE((*events)[i].data().UnpackTo(&changed)) << (*events)[i].event_type();
    EXPECT_EQ(changed.region(), "r" + std::to_string(i + 1)) << "event " << i + 2;
  }
}

TEST_F(Inbound, AfterARestartNothingIsAppliedAgain) {
  const std::string id = "cus_inbound_2";
  {
    testing::ServedApp served(dir_.path() + "/data", config());
    publish(id, {"command=RegisterCustomer"},
            R"({"customerId": ")" + id + R"(", "name": "Once", "kind": "ENTERPRISE"})");
    ASSERT_TRUE(testing::wait_until([&] { return served.app().inbound()->counts().applied == 1; },
                                    std::chrono::seconds(60)));
  }
  testing::ServedApp restarted(dir_.path() + "/data", config());
  // A marker published after the restart: once it is applied, everything before it was seen.
  publish("marker", {"command=RegisterCustomer"},
          R"({"customerId": "cus_marker", "name": "Marker", "kind": "ENTERPRISE"})");
  auto* inbound = restarted.app().inbound();
  ASSERT_TRUE(testing::wait_until(
      [&] {
        return inbound->counts().applied + inbound->counts().repeated >= 1 &&
               customer(restarted, "cus_marker").version() == 1;
      },
      std::chrono::seconds(60)));
  EXPECT_EQ(customer(restarted, id).version(), 1u);
  EXPECT_EQ(inbound->counts().applied, 1u);  // the marker only
}

TEST(InboundStart, UnreachableBrokersStopTheStartWithAClearError) {
  testing::TempDir dir;
  AppConfig config;
  config.data_dir = dir.path();
  config.http.port = 0;
  config.inbound.brokers = "127.0.0.1:1";
  config.inbound.connect_timeout = std::chrono::milliseconds(1500);
  SystemClock clock;
  RandomIdSource ids;

  auto opened = App::open(config, clock, ids);

  ASSERT_FALSE(opened.is_ok());
  EXPECT_THAT(opened.status().message(),
              HasSubstr("cannot reach the Kafka brokers at 127.0.0.1:1"));
}

TEST(InboundStart, KafkaSettingsPassThroughToLibrdkafkaAndABadOneIsNamed) {
  testing::TempDir dir;
  AppConfig config;
  config.data_dir = dir.path();
  config.http.port = 0;
  config.inbound.brokers = "127.0.0.1:1";
  config.inbound.kafka_settings["security.protocol"] = "carrier-pigeon";
  SystemClock clock;
  RandomIdSource ids;

  auto opened = App::open(config, clock, ids);

  ASSERT_FALSE(opened.is_ok());
  EXPECT_THAT(opened.status().message(), HasSubstr("Kafka setting security.protocol"));
}

}  // namespace
}  // namespace crm
