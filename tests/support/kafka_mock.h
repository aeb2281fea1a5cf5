// The mock Kafka cluster (crm_kafka_mock, librdkafka's mock brokers) as a separate process on
// 127.0.0.1, started and stopped by a test.
#pragma once

#include <sys/types.h>

#include <string>
#include <utility>
#include <vector>

namespace crm::testing {

class KafkaMock {
 public:
  // Starts the cluster; bootstrap() is empty when it did not start (error() says why).
  explicit KafkaMock(int brokers = 3, std::vector<std::pair<std::string, int>> topics = {});
  ~KafkaMock();  // SIGTERM, then waits
  KafkaMock(const KafkaMock&) = delete;
  KafkaMock& operator=(const KafkaMock&) = delete;

  const std::string& bootstrap() const { return bootstrap_; }
  const std::string& error() const { return error_; }

 private:
  pid_t pid_ = -1;
  std::string bootstrap_;
  std::string error_;
};

}  // namespace crm::testing
