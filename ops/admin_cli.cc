// The operators' tools: `crm backup` (a consistent copy of the data directory, from a stopped
// engine or through a serving one) and `crm config check` (a configuration file read as
// `crm serve` would read it).
#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>
#include <httplib.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "api.pb.h"
#include "api/json.h"
#include "events/backup.h"
#include "ops/cli.h"

namespace crm {
namespace {

// `crm backup DIR --url URL`: asks the serving engine for the copy (it holds the database).
int backup_through_server(const std::string& directory, const Flags& flags) {
  auto get = [&](const std::string& name) {
    auto it = flags.values.find(name);
    return it == flags.values.end() ? std::string() : it->second;
  };
  std::string token;
  if (const char* env = std::getenv("CRM_TOKEN")) token = env;
  const std::string token_file =
      get("token-file").empty() ? get("data-dir") + "/" + kAdminTokenFile : get("token-file");
  if (token.empty()) {
    std::ifstream in(token_file);
    std::getline(in, token);
    if (token.empty()) {
      std::fprintf(stderr, "crm backup: no admin token: set CRM_TOKEN or --token-file (read %s)\n",
                   token_file.c_str());
      return 2;
    }
  }
  httplib::Client client(get("url"));
  if (!client.is_valid()) {
    std::fprintf(stderr, "crm backup: --url must be http://HOST:PORT or https://HOST:PORT\n");
    return 2;
  }
  if (!get("ca-file").empty()) client.set_ca_cert_path(get("ca-file"));
  client.set_read_timeout(3600, 0);  // a large database takes a while to copy
  api::BackupRequest request;
  request.set_directory(directory);
  auto response = client.Post("/v1/admin/backups", {{"Authorization", "Bearer " + token}},
                              api::to_json(request), "application/json");
  if (!response) {
    std::fprintf(stderr, "crm backup: cannot reach %s: %s\n", get("url").c_str(),
                 httplib::to_string(response.error()).c_str());
    return 1;
  }
  std::printf("%s\n", response->body.c_str());
  return response->status == 201 ? 0 : 1;
}

}  // namespace

int backup_command(int argc, char** argv) {
  if (argc < 3 || std::string(argv[2]).rfind("--", 0) == 0) {
    std::fprintf(stderr, "crm backup: expected the directory to copy into\n%s", kUsage);
    return 2;
  }
  // Relative to where the command runs; with --url that is only right on the engine's machine.
  const std::string directory = std::filesystem::absolute(argv[2]).lexically_normal().string();
  const std::vector<std::string> known = {"data-dir", "partitions", "url", "token-file", "ca-file"};
  Flags flags = parse_flags(argc, argv, 3, known);
  if (!flags.error.empty()) {
    std::fprintf(stderr, "crm backup: %s\n%s", flags.error.c_str(), kUsage);
    return 2;
  }
  if (flags.values.count("data-dir") == 0) flags.values["data-dir"] = AppConfig().data_dir;
  if (flags.values.count("url")) return backup_through_server(directory, flags);

  OfflineLog offline;
  if (int code = open_tool("backup", argc, argv, 3, known, flags, offline)) return code;
  auto backup = backup_data_dir(*offline.store, *offline.log, directory);
  if (!backup.is_ok()) {
    std::fprintf(stderr, "crm backup: %s\n", backup.status().to_string().c_str());
    return 1;
  }
  std::printf("backed up into %s (start on it: crm serve --data-dir %s)\n",
              backup->directory.c_str(), backup->directory.c_str());
  return 0;
}

int config_command(int argc, char** argv) {
  if (argc != 4 || std::string(argv[2]) != "check") {
    std::fprintf(stderr, "crm config: expected `crm config check FILE`\n%s", kUsage);
    return 2;
  }
  Flags flags;
  AppConfig config;
  std::string error = load_config_file(argv[3], kServeFlags, flags);
  if (error.empty()) error = read_config(flags, config);
  if (!error.empty()) {
    std::fprintf(stderr, "crm config check: %s\n", error.c_str());
    return 2;
  }
  // What serve would run with: the file's settings over the defaults.
  google::protobuf::Struct effective;
  auto set = [&](const std::string& key, const std::string& value) {
    (*effective.mutable_fields())[key].set_string_value(value);
  };
  set("dataDir", config.data_dir);
  set("listen", config.http.host + ":" + std::to_string(config.http.port));
  set("partitions", config.partitions == 0 ? "the data directory's (8 when new)"
                                           : std::to_string(config.partitions));
  set("httpThreads", std::to_string(config.http.threads));
  set("bodyLimit", std::to_string(config.http.body_bytes_max));
  set("inflightMax", std::to_string(config.processor.queue_max));
  set("cacheEntries", std::to_string(config.processor.cache_entries_max));
  set("processorThreads", config.processor.threads == 0
                              ? "auto (embedded log: 1; Kafka log: one per partition)"
                              : std::to_string(config.processor.threads));
  set("blockCacheMb", std::to_string(config.block_cache_bytes >> 20));
  set("memtableMb", std::to_string(config.memtable_bytes_max >> 20));
  set("digestInterval", config.digest_interval.count() == 0
                            ? "none"
                            : "PT" + std::to_string(config.digest_interval.count() / 1000) + "S");
  set("tls", config.http.tls_cert_file.empty() ? "off" : "on");
  set("logRequests", config.http.log_requests == api::RequestLogging::kAll      ? "all"
                     : config.http.log_requests == api::RequestLogging::kErrors ? "errors"
                                                                                : "none");
  set("eventLog", config.event_log == AppConfig::EventLogKind::kKafka ? "kafka" : "embedded");
  if (!config.inbound.brokers.empty()) {
    set("kafkaBrokers", config.inbound.brokers);
    set("kafkaInboundTopic", config.inbound.topic);
    set("kafkaRejectedTopic", config.inbound.rejected_topic);
    set("kafkaGroup", config.inbound.group);
  }
  if (config.event_log == AppConfig::EventLogKind::kKafka) {
    set("kafkaEventsTopic", config.kafka_log.topic);
    set("kafkaCommandsTopic", config.kafka_bus.commands_topic);
    set("kafkaResultsTopic", config.kafka_bus.results_topic);
    set("kafkaOwnersGroup", config.kafka_bus.group);
    set("kafkaTransactionalIdPrefix", config.kafka_log.transactional_id_prefix);
    std::string owned = config.kafka_owners_by_group ? "group"
                        : config.kafka_log.owns_all  ? "all"
                                                     : "";
    if (owned.empty()) {
      for (uint32_t p : config.kafka_log.owned)
        owned += (owned.empty() ? "" : ",") + std::to_string(p);
      if (owned.empty()) owned = "none";
    }
    set("kafkaOwnedPartitions", owned);
  }
  // (kafkaSettings are not shown: they may hold secrets.)
  std::string text;
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = true;
  (void)google::protobuf::util::MessageToJsonString(effective, &text, options);
  std::printf("%s: ok\n%s", argv[3], text.c_str());
  return 0;
}

}  // namespace crm
