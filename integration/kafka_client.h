// What the engine's Kafka clients share: their configuration (the brokers, and settings passed
// to librdkafka as they are: security.protocol, sasl.*, ssl.*), reaching the brokers at start
// with a clear error, and creating the topics that are missing.
#pragma once

#include <librdkafka/rdkafka.h>

#include <chrono>
#include <functional>
#include <initializer_list>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "events/status.h"

namespace crm::kafka {

struct ClientOptions {
  std::string brokers;                                // host:port,...
  std::map<std::string, std::string> kafka_settings;  // passed to librdkafka as they are
  std::chrono::milliseconds connect_timeout{10000};   // to reach the brokers at start
};

// A librdkafka configuration: the brokers, `own` settings, then the user's (which win).
Result<rd_kafka_conf_t*> make_conf(const ClientOptions& options,
                                   std::initializer_list<std::pair<const char*, std::string>> own);

// A librdkafka client of `type`: make_conf's settings, then `adjust` (callbacks, opaque) on the
// configuration, then rd_kafka_new. The configuration is freed whatever happens.
Result<rd_kafka_t*> new_client(rd_kafka_type_t type, const ClientOptions& options,
                               std::initializer_list<std::pair<const char*, std::string>> own,
                               const std::function<void(rd_kafka_conf_t*)>& adjust = {});

// The number of brokers, once they answer; kUnavailable naming them when they do not in time.
Result<int> reach_brokers(rd_kafka_t* client, const ClientOptions& options);

// Creates the topics that are missing (ask through a client with allow.auto.create.topics=false,
// or the question creates them with the broker's defaults), with `partitions` partitions, the
// replication factor capped by the brokers there are, min.insync.replicas 2 (1 with one
// replica) and `configs` (brokers that create topics on first use, and clusters where the engine
// lacks the right, are fine: other errors are left to whoever uses the topic).
void create_topics(rd_kafka_t* client, const std::vector<std::string>& names, int partitions,
                   int replication_factor, int brokers,
                   const std::map<std::string, std::string>& configs = {});

// The partition count of `topic` (0 when it does not exist), or why it could not be read.
Result<int> partition_count(rd_kafka_t* client, const std::string& topic,
                            std::chrono::milliseconds timeout);

}  // namespace crm::kafka
