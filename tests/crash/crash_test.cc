// Crash safety of the real binary. Sixteen writers register customers (some then change stage
// or add a contact) against `crm serve` while it is killed with SIGKILL; a fresh process on the
// same data directory must then show
//   - durability: every acknowledged write,
//   - atomicity: every stream's history complete, numbered 1..n and hash-chained, no half of a
//     command,
//   - idempotency across the crash: a retried unknown write lands exactly once, a retried
//     acknowledged one replays its first answer.
// Three kill/restart/verify cycles on one data directory, customers accumulating.
#include <arpa/inet.h>
#include <fcntl.h>
#include <google/protobuf/util/json_util.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "api.pb.h"
#include "customer.pb.h"
#include "tests/support/engine_process.h"
#include "tests/support/test_support.h"

extern char** environ;

namespace crm {
namespace {

using SteadyClock = std::chrono::steady_clock;
using namespace std::chrono_literals;

constexpr int kWriters = 16;
constexpr int kCycles = 3;
constexpr int kPartitions = 4;
// The engine is killed once this many registrations are acknowledged in a cycle (more each
// cycle, so the kill lands at a different point), or when the write window closes.
constexpr size_t kAcknowledgedBeforeKill = 300;
constexpr auto kWriteWindowMax = 8s;
constexpr auto kReadModelTimeout = 15s;
constexpr char kAdminPrincipal[] = "admin";  // the principal of <data-dir>/admin.token
constexpr char kJson[] = "application/json";

std::vector<std::string> serve_flags() { return {"--partitions", std::to_string(kPartitions)}; }

using testing::EngineProcess;
using testing::new_client;

// One HTTP answer; status 0 when there was none (refused, reset, timed out).
struct Reply {
  int status = 0;
  std::string body;
  std::string error;
  bool replayed = false;  // Idempotent-Replayed: true
};

Reply send(httplib::Client& client, const std::string& method, const std::string& path,
           const std::string& idempotency_key = "", const std::string& body = "") {
  httplib::Request request;
  request.method = method;
  request.path = path;
  if (!idempotency_key.empty()) request.set_header("Idempotency-Key", idempotency_key);
  if (!body.empty()) {
    request.body = body;
    request.set_header("Content-Type", kJson);
  }
  auto result = client.send(request);
  if (!result) return {0, "", httplib::to_string(result.error())};
  return {result->status, result->body, "",
          result->get_header_value("Idempotent-Replayed") == "true"};
}

template <typename M>
std::optional<M> parse(const std::string& json) {
  M message;
  if (!google::protobuf::util::JsonStringToMessage(json, &message).ok()) return std::nullopt;
  return message;
}

// A write whose outcome the client never learned; retried after the restart.
struct UnknownWrite {
  enum class Kind { kRegister, kStage, kContact };
  Kind kind;
  size_t customer;  // index into WriterLog::customers (CrashTest::customers_ once merged)
  std::string method, path, key, body;
  std::string error;  // what the writer saw
};

// What one writer expects of one customer it created (or tried to).
struct ExpectedCustomer {
  std::string key;  // Idempotency-Key of the registration
  std::string body;
  std::string name;
  std::string owner;
  std::string id;           // derived from the key: the same for every retry
  bool registered = false;  // acknowledged (201) — or, after retries, known to exist
  bool stage_active = false;
  bool has_contact = false;
};

struct WriterLog {
  std::vector<ExpectedCustomer> customers;
  std::vector<UnknownWrite> unknown;
  std::vector<std::string> unexpected;  // HTTP answers that are neither success nor a crash
};

std::string registration_body(const std::string& name, int writer) {
  return R"({"name":")" + name + R"(","kind":"ENTERPRISE","level":"GROWTH","creditLevel":"B",)" +
         R"("region":"r)" + std::to_string(writer) + R"(","ownerId":"sales-)" +
         std::to_string(writer) + R"("})";
}
constexpr char kStageBody[] = R"({"stage":"ACTIVE"})";
constexpr char kContactBody[] = R"({"name":"C","role":"USER","birthday":"04-23"})";

// One writer: registers customers until `stop`, changing the stage of every third and adding a
// contact to every fourth. Stops at its first write without an answer.
void write_until_stopped(int cycle, int writer, int port, const std::string& token,
                         const std::atomic<bool>& stop, std::atomic<size_t>& acknowledged,
                         WriterLog& log) {
  auto client = new_client(port, token);
  const auto deadline = SteadyClock::now() + 2 * kWriteWindowMax;
  // Sends one write; true when answered `success`. Otherwise records it as unknown.
  auto attempt = [&](UnknownWrite::Kind kind, const std::string& method, const std::string& path,
                     const std::string& key, const std::string& body, int success, Reply* reply) {
    *reply = send(*client, method, path, key, body);
    if (reply->status == success) return true;
    if (reply->status != 0)
      log.unexpected.push_back(method + " " + path + " (" + key + ") answered " +
                               std::to_string(reply->status) + ": " + reply->body);
    log.unknown.push_back({kind, log.customers.size() - 1, method, path, key, body,
                           reply->status == 0 ? reply->error : reply->body});
    return false;
  };

  for (int n = 0; !stop.load() && SteadyClock::now() < deadline; ++n) {
    const std::string suffix =
        std::to_string(cycle) + "-" + std::to_string(writer) + "-" + std::to_string(n);
    ExpectedCustomer customer;
    customer.key = "crash-" + suffix;
    customer.name = "Crash " + suffix;
    customer.owner = "sales-" + std::to_string(writer);
    customer.body = registration_body(customer.name, writer);
    customer.id = api::customer_id_for_key(kAdminPrincipal, customer.key);
    log.customers.push_back(customer);
    auto& expected = log.customers.back();
    const std::string path = "/v1/customers/" + expected.id;

    Reply reply;
    if (!attempt(UnknownWrite::Kind::kRegister, "POST", "/v1/customers", expected.key,
                 expected.body, 201, &reply))
      return;
    auto created = parse<customer::Customer>(reply.body);
    if (!created || created->id() != expected.id)
      log.unexpected.push_back("registration " + expected.key + " answered " + reply.body +
                               ", expected id " + expected.id);
    expected.registered = true;
    acknowledged.fetch_add(1);

    if (n % 3 == 1) {
      if (!attempt(UnknownWrite::Kind::kStage, "PATCH", path, expected.key + "-stage", kStageBody,
                   200, &reply))
        return;
      expected.stage_active = true;
    }
    if (n % 4 == 2) {
      if (!attempt(UnknownWrite::Kind::kContact, "POST", path + "/contacts",
                   expected.key + "-contact", kContactBody, 201, &reply))
        return;
      expected.has_contact = true;
    }
  }
}

class CrashTest : public ::testing::Test {
 protected:
  void TearDown() override {
    if (HasFailure())
      std::fprintf(stderr, "--- output of crm serve (%s) ---\n%s\n--- end ---\n", log_path_.c_str(),
                   testing::read_file(log_path_).c_str());
  }

  // Runs the writers against `engine` and kills it under them (or, `graceful`, sends it SIGTERM
  // and expects it to drain and exit 0); returns what they saw.
  std::vector<WriterLog> write_and_kill(int cycle, EngineProcess& engine, bool graceful = false) {
    std::vector<WriterLog> logs(kWriters);
    std::atomic<bool> stop{false};
    std::atomic<size_t> acknowledged{0};
    const std::string token = engine.admin_token();
    std::vector<std::thread> writers;
    for (int w = 0; w < kWriters; ++w) {
      writers.emplace_back(write_until_stopped, cycle, w, engine.port(), std::cref(token),
                           std::cref(stop), std::ref(acknowledged), std::ref(logs[w]));
    }
    const size_t kill_after = kAcknowledgedBeforeKill + 100 * static_cast<size_t>(cycle);
    testing::wait_until([&] { return acknowledged.load() >= kill_after; },
                        std::chrono::duration_cast<std::chrono::milliseconds>(kWriteWindowMax));
    if (graceful) {
      EXPECT_TRUE(engine.stop_gracefully());
    } else {
      engine.kill_now();
    }
    stop = true;
    for (auto& writer : writers) writer.join();
    return logs;
  }

  // (a)+(b): every acknowledged write is there after the crash.
  void expect_acknowledged_writes_survived(httplib::Client& client) {
    for (const auto& expected : customers_) {
      if (!expected.registered) continue;
      auto reply = send(client, "GET", "/v1/customers/" + expected.id);
      ASSERT_EQ(reply.status, 200) << "acknowledged registration " << expected.key << " ("
                                   << expected.id << ") lost: " << reply.body << reply.error;
      auto customer = parse<customer::Customer>(reply.body);
      ASSERT_TRUE(customer) << reply.body;
      EXPECT_EQ(customer->name(), expected.name) << expected.id;
      if (expected.stage_active) {
        EXPECT_EQ(customer->stage(), customer::ACTIVE)
            << "acknowledged stage change of " << expected.key << " lost: " << reply.body;
      }
      if (expected.has_contact) {
        EXPECT_EQ(customer->contacts_size(), 1)
            << "acknowledged contact of " << expected.key << " lost: " << reply.body;
      }
    }
  }

  // (d): an unknown write retried with its key and body succeeds, and once more replays.
  // Returns how many of them had been written before the kill (the retry was a replay).
  size_t retry_unknown_writes(httplib::Client& client, const std::vector<UnknownWrite>& unknown,
                              size_t first_customer) {
    size_t written_before_kill = 0;
    for (const auto& write : unknown) {
      const int success = write.method == "PATCH" ? 200 : 201;
      auto first = send(client, write.method, write.path, write.key, write.body);
      if (first.status != success) {
        ADD_FAILURE() << "retry of unknown " << write.method << " " << write.path << " ("
                      << write.key << ", first attempt: " << write.error << ") answered "
                      << first.status << " " << first.body << first.error;
        continue;
      }
      written_before_kill += first.replayed;
      auto again = send(client, write.method, write.path, write.key, write.body);
      EXPECT_EQ(again.status, success) << again.body << again.error;
      EXPECT_TRUE(again.replayed) << "second retry of " << write.key << " was not a replay";
      EXPECT_EQ(again.body, first.body) << write.key;

      auto& expected = customers_[first_customer + write.customer];
      auto customer = parse<customer::Customer>(first.body);
      EXPECT_TRUE(customer) << first.body;
      EXPECT_EQ(customer ? customer->id() : "", expected.id) << write.key;
      switch (write.kind) {
        case UnknownWrite::Kind::kRegister:
          expected.registered = true;
          break;
        case UnknownWrite::Kind::kStage:
          expected.stage_active = true;
          break;
        case UnknownWrite::Kind::kContact:
          expected.has_contact = true;
          break;
      }
    }
    return written_before_kill;
  }

  // (e): an acknowledged registration retried replays its first answer.
  void expect_acknowledged_registrations_replay(httplib::Client& client, size_t first_customer) {
    for (size_t i = first_customer; i < customers_.size(); ++i) {
      const auto& expected = customers_[i];
      if (!expected.registered) continue;
      auto reply = send(client, "POST", "/v1/customers", expected.key, expected.body);
      ASSERT_EQ(reply.status, 201) << expected.key << ": " << reply.body << reply.error;
      EXPECT_TRUE(reply.replayed) << "retry of acknowledged " << expected.key
                                  << " was not answered as a replay";
      auto customer = parse<customer::Customer>(reply.body);
      ASSERT_TRUE(customer) << reply.body;
      EXPECT_EQ(customer->id(), expected.id);
    }
  }

  // (c), once every write's outcome is known: each customer has exactly the events of the
  // writes made on it, numbered 1..n and hash-chained.
  void expect_complete_histories(httplib::Client& client) {
    for (const auto& expected : customers_) {
      if (!expected.registered) continue;
      auto reply = send(client, "GET", "/v1/customers/" + expected.id);
      ASSERT_EQ(reply.status, 200) << expected.id << ": " << reply.body << reply.error;
      auto customer = parse<customer::Customer>(reply.body);
      ASSERT_TRUE(customer) << reply.body;
      EXPECT_EQ(customer->stage() == customer::ACTIVE, expected.stage_active) << reply.body;
      EXPECT_EQ(customer->contacts_size(), expected.has_contact ? 1 : 0) << reply.body;

      std::vector<std::string> types = {"CustomerRegistered"};
      if (expected.stage_active) types.push_back("CustomerStageChanged");
      if (expected.has_contact) types.push_back("ContactAdded");
      EXPECT_EQ(customer->version(), types.size()) << reply.body;

      auto history_reply = send(client, "GET", "/v1/customers/" + expected.id + "/history");
      ASSERT_EQ(history_reply.status, 200) << history_reply.body << history_reply.error;
      auto history = parse<api::HistoryPage>(history_reply.body);
      ASSERT_TRUE(history) << history_reply.body;
      EXPECT_TRUE(history->next_page_token().empty());
      ASSERT_EQ(static_cast<uint64_t>(history->items_size()), customer->version())
          << expected.id << " is at version " << customer->version() << " but its history is "
          << history_reply.body;
      std::string previous_hash;
      for (int i = 0; i < history->items_size(); ++i) {
        const auto& item = history->items(i);
        EXPECT_EQ(item.version(), static_cast<uint64_t>(i + 1)) << history_reply.body;
        EXPECT_EQ(item.type(), types[static_cast<size_t>(i)]) << history_reply.body;
        EXPECT_EQ(item.previous_hash(), previous_hash) << history_reply.body;
        EXPECT_FALSE(item.hash().empty()) << history_reply.body;
        previous_hash = item.hash();
      }
    }
  }

  // The customers list (a read model, caught up asynchronously) names each customer of each
  // owner exactly once.
  void expect_lists_complete(httplib::Client& client) {
    std::map<std::string, std::multiset<std::string>> expected_by_owner;
    for (const auto& expected : customers_)
      if (expected.registered) expected_by_owner[expected.owner].insert(expected.name);
    for (const auto& [owner, expected_names] : expected_by_owner) {
      std::multiset<std::string> listed;
      std::string failure;
      auto read_list = [&] {
        listed.clear();
        failure.clear();
        std::string page_token;
        do {
          std::string path = "/v1/customers?ownerId=" + owner + "&pageSize=500";
          if (!page_token.empty()) path += "&pageToken=" + page_token;
          auto reply = send(client, "GET", path);
          auto page = parse<customer::CustomerList>(reply.body);
          if (reply.status != 200 || !page) {
            failure = path + " answered " + std::to_string(reply.status) + ": " + reply.body +
                      reply.error;
            return false;
          }
          for (const auto& item : page->items()) listed.insert(item.name());
          page_token = page->next_page_token();
        } while (!page_token.empty());
        return listed.size() >= expected_names.size();
      };
      testing::wait_until(read_list,
                          std::chrono::duration_cast<std::chrono::milliseconds>(kReadModelTimeout));
      ASSERT_TRUE(failure.empty()) << failure;
      EXPECT_EQ(listed, expected_names) << "customers listed for " << owner;
    }
  }

  testing::TempDir dir_;
  std::string log_path_ = dir_.path() + "/crm-serve.log";
  std::vector<ExpectedCustomer> customers_;  // of every cycle
};

// SIGTERM under load: the engine stops taking requests, finishes the commands it took, and
// exits 0; every write it acknowledged is there after a restart.
TEST_F(CrashTest, SigtermUnderLoadDrainsAndLosesNoAcknowledgedWrite) {
  const std::string data_dir = dir_.path() + "/data";
  std::vector<WriterLog> logs;
  {
    EngineProcess engine(data_dir, log_path_, serve_flags());
    ASSERT_TRUE(engine.start());
    logs = write_and_kill(0, engine, /*graceful=*/true);
  }
  ASSERT_FALSE(HasFailure());
  EngineProcess restarted(data_dir, log_path_, serve_flags());
  ASSERT_TRUE(restarted.start());
  auto client = new_client(restarted.port(), restarted.admin_token());
  size_t acknowledged = 0;
  for (auto& log : logs) {
    for (const auto& message : log.unexpected) ADD_FAILURE() << "while writing: " << message;
    for (auto& customer : log.customers) {
      acknowledged += customer.registered;
      customers_.push_back(std::move(customer));
    }
  }
  ASSERT_GT(acknowledged, 0u) << "no write was acknowledged before SIGTERM";
  expect_acknowledged_writes_survived(*client);
  client.reset();
  ASSERT_TRUE(restarted.stop_gracefully());
}

TEST_F(CrashTest, AcknowledgedWritesSurviveKillNineAndNoCommandIsHalfWritten) {
  const std::string data_dir = dir_.path() + "/data";
  for (int cycle = 0; cycle < kCycles; ++cycle) {
    SCOPED_TRACE("cycle " + std::to_string(cycle));
    const auto cycle_started = SteadyClock::now();
    std::vector<WriterLog> logs;
    {
      EngineProcess victim(data_dir, log_path_, serve_flags());
      ASSERT_TRUE(victim.start());
      logs = write_and_kill(cycle, victim);
    }

    EngineProcess survivor(data_dir, log_path_, serve_flags());
    ASSERT_TRUE(survivor.start());
    auto client = new_client(survivor.port(), survivor.admin_token());

    const size_t first_customer = customers_.size();
    std::vector<UnknownWrite> unknown;
    size_t acknowledged = 0;
    for (auto& log : logs) {
      for (const auto& message : log.unexpected) ADD_FAILURE() << "while writing: " << message;
      for (auto write : log.unknown) {
        write.customer += customers_.size() - first_customer;
        unknown.push_back(std::move(write));
      }
      for (auto& customer : log.customers) {
        acknowledged += customer.registered;
        customers_.push_back(std::move(customer));
      }
    }
    ASSERT_GT(acknowledged, 0u) << "no write was acknowledged before the kill";

    expect_acknowledged_writes_survived(*client);
    if (HasFatalFailure()) return;
    const size_t unknown_but_written = retry_unknown_writes(*client, unknown, first_customer);
    if (HasFailure()) return;
    expect_acknowledged_registrations_replay(*client, first_customer);
    if (HasFatalFailure()) return;
    expect_complete_histories(*client);
    if (HasFatalFailure()) return;
    expect_lists_complete(*client);
    if (HasFatalFailure()) return;

    client.reset();
    ASSERT_TRUE(survivor.stop_gracefully());
    std::printf(
        "cycle %d: killed; %zu registrations acknowledged; %zu writes unknown, of which %zu had "
        "been written; %zu customers in all; %.1f s\n",
        cycle, acknowledged, unknown.size(), unknown_but_written, customers_.size(),
        std::chrono::duration<double>(SteadyClock::now() - cycle_started).count());
  }

  // The read models that lived through three crashes equal ones rebuilt from the log.
  const std::string replay = std::string(CRM_BINARY) + " replay --data-dir " + data_dir +
                             " --partitions " + std::to_string(kPartitions) + " 2>&1";
  FILE* pipe = popen(replay.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  std::string output;
  char buffer[4096];
  for (size_t n; (n = fread(buffer, 1, sizeof buffer, pipe)) > 0;) output.append(buffer, n);
  const int status = pclose(pipe);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << output;
  EXPECT_NE(output.find("identical"), std::string::npos) << output;
}

}  // namespace
}  // namespace crm
