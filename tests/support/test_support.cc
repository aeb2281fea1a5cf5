#include "tests/support/test_support.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string_view>

#include "tests/support/kafka_mock.h"

namespace crm::testing {
namespace {

// CRM_TEST_EVENT_LOG=kafka runs the same tests with the event log on Kafka, by configuration
// alone: librdkafka's mock cluster (one per test process, its own process), and topics, groups
// and transactional ids of this data directory's own (a restart on it finds them again). The
// mock cluster makes topics with 4 partitions; this instance owns them all.
void put_log_on_kafka_when_asked(AppConfig& config) {
  const char* backend = std::getenv("CRM_TEST_EVENT_LOG");
  if (backend == nullptr || std::string_view(backend) != "kafka") return;
  char tag[17];
  std::snprintf(tag, sizeof tag, "%016zx", std::hash<std::string>{}(config.data_dir));
  const std::string suffix = std::string(".") + tag;
  if (config.inbound.brokers.empty()) {  // a test of inbound commands brings its own cluster
    static KafkaMock cluster(3);
    if (cluster.bootstrap().empty()) {
      ADD_FAILURE() << "no mock Kafka cluster: " << cluster.error();
      return;
    }
    config.inbound.brokers = cluster.bootstrap();
    config.inbound.topic = "crm.inbound" + suffix;
    config.inbound.rejected_topic = "crm.rejected" + suffix;
    config.inbound.group = "crm-inbound" + suffix;
    config.inbound.topic_partitions = 4;
  }
  config.event_log = AppConfig::EventLogKind::kKafka;
  if (config.partitions == 0) config.partitions = 4;
  config.kafka_log.topic = "crm.events" + suffix;
  config.kafka_log.transactional_id_prefix = "crm-events" + suffix + "-";
  config.kafka_owners_by_group = false;
  config.kafka_log.owns_all = true;
  config.kafka_bus.commands_topic = "crm.commands" + suffix;
  config.kafka_bus.results_topic = "crm.results" + suffix;
  config.kafka_bus.group = "crm-owners" + suffix;
}

}  // namespace

TempDir::TempDir() {
  std::string pattern = (std::filesystem::temp_directory_path() / "crm-test-XXXXXX").string();
  char* made = mkdtemp(pattern.data());
  if (made == nullptr) std::abort();
  path_ = made;
}

TempDir::~TempDir() {
  std::error_code ignored;
  std::filesystem::remove_all(path_, ignored);
}

bool wait_until(const std::function<bool()>& condition, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::yield();
    std::this_thread::sleep_for(std::chrono::milliseconds(2));  // poll interval, not a wait
  }
  return condition();
}

ServedApp::ServedApp(const std::string& data_dir, AppConfig config, const Clock* clock) {
  config.data_dir = data_dir;
  put_log_on_kafka_when_asked(config);
  config.http.host = "127.0.0.1";
  config.http.port = 0;
  if (config.http.threads == api::ServerOptions{}.threads) config.http.threads = 32;
  auto opened = App::open(config, clock ? *clock : system_clock_, ids_);
  if (!opened.is_ok()) {
    ADD_FAILURE() << "cannot open the engine: " << opened.status().to_string();
    return;
  }
  app_ = std::move(opened.value());
  admin_token_ = app_->admin_token();
  if (admin_token_.empty()) {
    admin_token_ = read_file(data_dir + "/admin.token");
    while (!admin_token_.empty() && admin_token_.back() == '\n') admin_token_.pop_back();
  }
  port_ = app_->bind();
  if (port_ < 0) {
    ADD_FAILURE() << "cannot bind a port";
    return;
  }
  serving_ = std::thread([this] { app_->serve(); });
}

ServedApp::~ServedApp() { stop(); }

void ServedApp::stop() {
  if (app_) app_->stop();
  if (serving_.joinable()) serving_.join();
  app_.reset();
}

std::unique_ptr<httplib::Client> ServedApp::client(const std::string& token) const {
  auto client = std::make_unique<httplib::Client>("127.0.0.1", port_);
  client->set_keep_alive(true);
  client->set_tcp_nodelay(true);
  client->set_read_timeout(30, 0);
  client->set_bearer_token_auth(token.empty() ? admin_token_ : token);
  return client;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

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

}  // namespace crm::testing
