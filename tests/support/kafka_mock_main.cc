// crm_kafka_mock: librdkafka's mock Kafka cluster as a process of its own, for the Kafka tests
// and for trying the engine against Kafka on one machine. Prints one line,
// "BOOTSTRAP host:port,host:port,...", once the brokers listen on 127.0.0.1, then serves until
// SIGTERM or SIGINT.
//   crm_kafka_mock [--brokers N (3)] [--topic NAME:PARTITIONS]...
// Topics not created up front are created on first use, as a broker with automatic topic
// creation would. The mock keeps only 5 MiB a partition: size tests accordingly.
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <signal.h>

#include <charconv>
#include <cstdio>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

namespace {

bool parse_int(const std::string& text, int min, int max, int* out) {
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), *out);
  return error == std::errc() && end == text.data() + text.size() && *out >= min && *out <= max;
}

int usage(const char* problem) {
  std::fprintf(
      stderr,
      "crm_kafka_mock: %s\nusage: crm_kafka_mock [--brokers N] [--topic NAME:PARTITIONS]...\n",
      problem);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  int brokers = 3;
  std::vector<std::pair<std::string, int>> topics;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (i + 1 >= argc) return usage(("flag " + flag + " needs a value").c_str());
    const std::string value = argv[++i];
    if (flag == "--brokers") {
      if (!parse_int(value, 1, 16, &brokers)) return usage("--brokers must be 1..16");
    } else if (flag == "--topic") {
      const auto colon = value.rfind(':');
      int partitions = 0;
      if (colon == std::string::npos || colon == 0 ||
          !parse_int(value.substr(colon + 1), 1, 1000, &partitions))
        return usage("--topic must be NAME:PARTITIONS");
      topics.emplace_back(value.substr(0, colon), partitions);
    } else {
      return usage(("unknown flag " + flag).c_str());
    }
  }

  // Signals are taken by sigwait below; librdkafka's threads inherit the blocked mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  // The mock cluster lives inside a client handle; this one is never used to produce.
  char error[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  if (rd_kafka_conf_set(conf, "log_level", "3", error, sizeof error) != RD_KAFKA_CONF_OK) {
    std::fprintf(stderr, "crm_kafka_mock: %s\n", error);
    return 1;
  }
  rd_kafka_t* host = rd_kafka_new(RD_KAFKA_PRODUCER, conf, error, sizeof error);
  if (host == nullptr) {
    std::fprintf(stderr, "crm_kafka_mock: %s\n", error);
    return 1;
  }
  rd_kafka_mock_cluster_t* cluster = rd_kafka_mock_cluster_new(host, brokers);
  if (cluster == nullptr) {
    std::fprintf(stderr, "crm_kafka_mock: cannot start %d mock brokers\n", brokers);
    return 1;
  }
  const int replication = brokers < 3 ? brokers : 3;
  for (const auto& [name, partitions] : topics) {
    if (auto e = rd_kafka_mock_topic_create(cluster, name.c_str(), partitions, replication)) {
      std::fprintf(stderr, "crm_kafka_mock: cannot create topic %s: %s\n", name.c_str(),
                   rd_kafka_err2str(e));
      return 1;
    }
  }
  std::printf("BOOTSTRAP %s\n", rd_kafka_mock_cluster_bootstraps(cluster));
  std::fflush(stdout);

  int received = 0;
  sigwait(&signals, &received);
  rd_kafka_mock_cluster_destroy(cluster);
  rd_kafka_destroy(host);
  return 0;
}
