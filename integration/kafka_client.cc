#include "integration/kafka_client.h"

#include <algorithm>

namespace crm::kafka {

Result<rd_kafka_conf_t*> make_conf(const ClientOptions& options,
                                   std::initializer_list<std::pair<const char*, std::string>> own) {
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  char error[512];
  auto set = [&](const std::string& name, const std::string& value) -> Status {
    if (rd_kafka_conf_set(conf, name.c_str(), value.c_str(), error, sizeof error) !=
        RD_KAFKA_CONF_OK) {
      return Status::invalid_argument("Kafka setting " + name + ": " + error);
    }
    return Status::ok();
  };
  Status s = set("bootstrap.servers", options.brokers);
  if (s.is_ok()) s = set("log_level", "3");
  for (const auto& [name, value] : options.kafka_settings)
    if (s.is_ok()) s = set(name, value);
  // The engine's own settings last: exactly once rests on them (isolation, commits, ids).
  for (const auto& [name, value] : own)
    if (s.is_ok()) s = set(name, value);
  if (!s.is_ok()) {
    rd_kafka_conf_destroy(conf);
    return s;
  }
  return conf;
}

Result<rd_kafka_t*> new_client(rd_kafka_type_t type, const ClientOptions& options,
                               std::initializer_list<std::pair<const char*, std::string>> own,
                               const std::function<void(rd_kafka_conf_t*)>& adjust) {
  auto conf = make_conf(options, own);
  if (!conf.is_ok()) return conf.status();
  if (adjust) adjust(conf.value());
  char error[512];
  rd_kafka_t* client = rd_kafka_new(type, conf.value(), error, sizeof error);
  if (client == nullptr) {
    rd_kafka_conf_destroy(conf.value());  // still ours when rd_kafka_new fails
    return Status::invalid_argument(
        std::string(type == RD_KAFKA_PRODUCER ? "Kafka producer: " : "Kafka consumer: ") + error);
  }
  return client;
}

Result<int> reach_brokers(rd_kafka_t* client, const ClientOptions& options) {
  const rd_kafka_metadata_t* metadata = nullptr;
  auto err = rd_kafka_metadata(client, 0, nullptr, &metadata,
                               static_cast<int>(options.connect_timeout.count()));
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return Status::unavailable("cannot reach the Kafka brokers at " + options.brokers + " within " +
                               std::to_string(options.connect_timeout.count()) +
                               " ms: " + rd_kafka_err2str(err));
  }
  const int brokers = metadata->broker_cnt;
  rd_kafka_metadata_destroy(metadata);
  return brokers;
}

void create_topics(rd_kafka_t* client, const std::vector<std::string>& names, int partitions,
                   int replication_factor, int brokers,
                   const std::map<std::string, std::string>& configs) {
  const int replication = std::max(1, std::min(replication_factor, brokers));
  std::vector<rd_kafka_NewTopic_t*> topics;
  char error[256];
  for (const auto& name : names) {
    // Only those missing: some brokers (the mock cluster) answer CreateTopics of an existing
    // topic only after the request's timeout.
    if (auto count = partition_count(client, name, std::chrono::milliseconds(5000));
        count.is_ok() && count.value() > 0)
      continue;
    auto* topic = rd_kafka_NewTopic_new(name.c_str(), partitions, replication, error, sizeof error);
    if (topic == nullptr) continue;
    // Acknowledged writes survive a broker's loss: two replicas in sync (when there are two).
    const std::string in_sync = std::to_string(std::min(2, replication));
    rd_kafka_NewTopic_set_config(topic, "min.insync.replicas", in_sync.c_str());
    for (const auto& [config, value] : configs)
      rd_kafka_NewTopic_set_config(topic, config.c_str(), value.c_str());
    topics.push_back(topic);
  }
  if (topics.empty()) return;
  rd_kafka_queue_t* queue = rd_kafka_queue_new(client);
  rd_kafka_CreateTopics(client, topics.data(), topics.size(), nullptr, queue);
  if (rd_kafka_event_t* event = rd_kafka_queue_poll(queue, 10000)) rd_kafka_event_destroy(event);
  rd_kafka_queue_destroy(queue);
  rd_kafka_NewTopic_destroy_array(topics.data(), topics.size());
}

Result<int> partition_count(rd_kafka_t* client, const std::string& topic,
                            std::chrono::milliseconds timeout) {
  rd_kafka_topic_t* handle = rd_kafka_topic_new(client, topic.c_str(), nullptr);
  const rd_kafka_metadata_t* metadata = nullptr;
  auto err = rd_kafka_metadata(client, 0, handle, &metadata, static_cast<int>(timeout.count()));
  rd_kafka_topic_destroy(handle);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
    return Status::unavailable("cannot read the metadata of topic " + topic + ": " +
                               rd_kafka_err2str(err));
  int count = 0;
  if (metadata->topic_cnt == 1 && metadata->topics[0].err == RD_KAFKA_RESP_ERR_NO_ERROR)
    count = metadata->topics[0].partition_cnt;
  rd_kafka_metadata_destroy(metadata);
  return count;
}

}  // namespace crm::kafka
