#include "ops/cli.h"

#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "aggregates/approval/policies.h"
#include "workflow/follow_up_rules.h"

namespace crm {

const char kUsage[] =
    "usage: crm <command> [flags]\n"
    "  serve    run the engine (HTTP API) on the embedded log\n"
    "           --data-dir DIR (./data)  --listen HOST:PORT (0.0.0.0:8080)\n"
    "           --partitions N (8, fixed when the data directory is created; taken from it\n"
    "             when not given)\n"
    "           --http-threads N (256: concurrent connections served)\n"
    "           --config FILE (JSON: every flag's name in lowerCamelCase as a key)\n"
    "           --body-limit BYTES (1048576)\n"
    "           --inflight-max N (4096: queued commands a partition holds; beyond, 429)\n"
    "           --tls-cert FILE --tls-key FILE (PEM: serve HTTPS instead of HTTP)\n"
    "           --log-requests none|errors|all (errors: one JSON line per 4xx/5xx reply)\n"
    "           --cache-entries N (100000: aggregates kept in memory, in all)\n"
    "           --processor-threads N (threads deciding commands, the partitions shared out\n"
    "             among them, each writing its partitions' batches with one sync; embedded\n"
    "             log: 1, Kafka log: one per partition)\n"
    "           --block-cache-mb N (256)  --memtable-mb N (256, charged to the block cache)\n"
    "           --kafka-brokers HOST:PORT,... (commands from Kafka: --kafka-inbound-topic\n"
    "             crm.inbound, --kafka-rejected-topic crm.rejected, --kafka-group crm-inbound,\n"
    "             --kafka-settings NAME=VALUE,... passed to librdkafka (SASL, SSL),\n"
    "             --kafka-topic-partitions 8, --kafka-replication-factor 3 for new topics)\n"
    "           --event-log embedded|kafka (kafka: the log is the topic --kafka-events-topic\n"
    "             crm.events, with a local copy in the data directory; --kafka-owned-partitions\n"
    "             group (the default: handed out by the consumer group --kafka-owners-group\n"
    "             crm-owners) | all | none | 0,2-5: those this instance writes; commands for\n"
    "             the others are forwarded to their owners through --kafka-commands-topic\n"
    "             crm.commands, outcomes on --kafka-results-topic crm.results;\n"
    "             --kafka-transactional-id-prefix crm-events- + partition: one per deployment)\n"
    "           --follow-up-rules NAME=VALUE,... (e.g. revisitAfter=P7D,utcOffset=+08:00;\n"
    "             see docs/user-guide.md, Follow-up tasks)\n"
    "           --digest-interval PT1H (the log's digest for auditors; none: never)\n"
    "  replay   rebuild every read model from the log and compare digests\n"
    "           --data-dir DIR  --partitions N\n"
    "  verify   recompute every stream's hash chain; print the report as JSON\n"
    "           --data-dir DIR  --partitions N  [--stream ID | --digest HEX (one kept from\n"
    "           GET /v1/streams/audit:digests/events)]  (exit 4: the log was altered)\n"
    "  export   write events as JSON Lines, one event a line, for auditors\n"
    "           --data-dir DIR  --partitions N  and one of: --stream ID | --customer ID |\n"
    "           --from TIME --to TIME (RFC 3339)  [--out FILE (stdout)]\n"
    "  history  print an order's timeline: who did what, when, under which rule\n"
    "           ORDER_ID  --data-dir DIR  --partitions N\n"
    "  backup   copy the data directory, consistent, while serving or not\n"
    "           DIR  --data-dir DIR  (stopped engine)  |  DIR --url URL [--token-file F]\n"
    "           (serving engine: DIR is on the engine's machine)\n"
    "  config   check FILE: read a configuration file as serve would; names a bad key\n"
    "  version  print the engine version\n"
    "Every flag may also come from the environment (CRM_ and the flag's name in upper case,\n"
    "e.g. CRM_DATA_DIR): the command line wins over the environment, which wins over --config.\n";

const std::vector<std::string> kServeFlags = {"config",
                                              "data-dir",
                                              "listen",
                                              "partitions",
                                              "http-threads",
                                              "body-limit",
                                              "inflight-max",
                                              "follow-up-rules",
                                              "digest-interval",
                                              "tls-cert",
                                              "tls-key",
                                              "log-requests",
                                              "cache-entries",
                                              "processor-threads",
                                              "block-cache-mb",
                                              "memtable-mb",
                                              "kafka-brokers",
                                              "kafka-inbound-topic",
                                              "kafka-rejected-topic",
                                              "kafka-group",
                                              "kafka-settings",
                                              "kafka-topic-partitions",
                                              "kafka-replication-factor",
                                              "event-log",
                                              "kafka-events-topic",
                                              "kafka-commands-topic",
                                              "kafka-results-topic",
                                              "kafka-owners-group",
                                              "kafka-transactional-id-prefix",
                                              "kafka-owned-partitions"};

namespace {

// Every setting: its flag, its environment variable, and (by the flag's name in lowerCamelCase)
// its key in the configuration file.
const std::map<std::string, std::string>& environment_names() {
  static const std::map<std::string, std::string> names = {
      {"config", "CRM_CONFIG"},
      {"data-dir", "CRM_DATA_DIR"},
      {"listen", "CRM_LISTEN"},
      {"partitions", "CRM_PARTITIONS"},
      {"http-threads", "CRM_HTTP_THREADS"},
      {"body-limit", "CRM_BODY_LIMIT"},
      {"inflight-max", "CRM_INFLIGHT_MAX"},
      {"follow-up-rules", "CRM_FOLLOW_UP_RULES"},
      {"digest-interval", "CRM_DIGEST_INTERVAL"},
      {"tls-cert", "CRM_TLS_CERT"},
      {"tls-key", "CRM_TLS_KEY"},
      {"log-requests", "CRM_LOG_REQUESTS"},
      {"cache-entries", "CRM_CACHE_ENTRIES"},
      {"processor-threads", "CRM_PROCESSOR_THREADS"},
      {"block-cache-mb", "CRM_BLOCK_CACHE_MB"},
      {"memtable-mb", "CRM_MEMTABLE_MB"},
      {"kafka-brokers", "CRM_KAFKA_BROKERS"},
      {"kafka-inbound-topic", "CRM_KAFKA_INBOUND_TOPIC"},
      {"kafka-rejected-topic", "CRM_KAFKA_REJECTED_TOPIC"},
      {"kafka-group", "CRM_KAFKA_GROUP"},
      {"kafka-settings", "CRM_KAFKA_SETTINGS"},
      {"kafka-topic-partitions", "CRM_KAFKA_TOPIC_PARTITIONS"},
      {"kafka-replication-factor", "CRM_KAFKA_REPLICATION_FACTOR"},
      {"event-log", "CRM_EVENT_LOG"},
      {"kafka-events-topic", "CRM_KAFKA_EVENTS_TOPIC"},
      {"kafka-commands-topic", "CRM_KAFKA_COMMANDS_TOPIC"},
      {"kafka-results-topic", "CRM_KAFKA_RESULTS_TOPIC"},
      {"kafka-owners-group", "CRM_KAFKA_OWNERS_GROUP"},
      {"kafka-transactional-id-prefix", "CRM_KAFKA_TRANSACTIONAL_ID_PREFIX"},
      {"kafka-owned-partitions", "CRM_KAFKA_OWNED_PARTITIONS"}};
  return names;
}

std::string camel_case(const std::string& flag) {
  std::string key;
  for (size_t i = 0; i < flag.size(); ++i) {
    if (flag[i] == '-' && i + 1 < flag.size()) {
      key += static_cast<char>(std::toupper(static_cast<unsigned char>(flag[++i])));
    } else {
      key += flag[i];
    }
  }
  return key;
}

// One value of the configuration file as the flag's text; "" and an error sentence when the
// JSON type does not fit.
std::string setting_text(const std::string& key, const google::protobuf::Value& value,
                         std::string* error) {
  using google::protobuf::Value;
  switch (value.kind_case()) {
    case Value::kStringValue:
      return value.string_value();
    case Value::kNumberValue: {
      const double number = value.number_value();
      if (number < 0 || number > 9.0e15 || std::floor(number) != number) {
        *error = "key '" + key + "' must be a whole number, 0 or more";
        return "";
      }
      return std::to_string(static_cast<uint64_t>(number));
    }
    case Value::kStructValue: {
      if (key != "followUpRules" && key != "kafkaSettings") break;
      // {"revisitAfter": "P7D", ...} is the flag's "revisitAfter=P7D,...".
      std::string text;
      for (const auto& [name, rule] : value.struct_value().fields()) {
        if (rule.kind_case() != Value::kStringValue) {
          *error = "key '" + key + "." + name + "' must be a string";
          return "";
        }
        text += (text.empty() ? "" : ",") + name + "=" + rule.string_value();
      }
      if (text.empty()) *error = "key '" + key + "' names nothing";
      return text;
    }
    default:
      break;
  }
  *error = "key '" + key + "' must be " +
           (key == "followUpRules" || key == "kafkaSettings" ? std::string("an object or a string")
                                                             : std::string("a string or a number"));
  return "";
}

}  // namespace

std::string load_config_file(const std::string& path, const std::vector<std::string>& known,
                             Flags& flags) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return "cannot read the configuration file " + path;
  std::stringstream text;
  text << in.rdbuf();
  google::protobuf::Struct file;
  if (auto s = google::protobuf::util::JsonStringToMessage(text.str(), &file); !s.ok()) {
    return path + " is not a JSON object: " + std::string(s.message());
  }
  std::map<std::string, std::string> flag_of_key;
  for (const auto& name : known)
    if (name != "config") flag_of_key[camel_case(name)] = name;
  for (const auto& [key, value] : file.fields()) {
    auto flag = flag_of_key.find(key);
    if (flag == flag_of_key.end()) return path + ": unknown key '" + key + "'";
    std::string error;
    std::string setting = setting_text(key, value, &error);
    if (!error.empty()) return path + ": " + error;
    flags.values[flag->second] = setting;
    flags.sources[flag->second] = "key '" + key + "' of " + path;
  }
  return "";
}

Flags parse_flags(int argc, char** argv, int first, const std::vector<std::string>& known) {
  Flags flags;
  std::map<std::string, std::string> given;  // on the command line
  for (int i = first; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg.rfind("--", 0) != 0) {
      flags.error = "unexpected argument '" + arg + "'";
      return flags;
    }
    std::string name = arg.substr(2), value;
    if (auto eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
    } else if (i + 1 < argc) {
      value = argv[++i];
    } else {
      flags.error = "flag --" + name + " needs a value";
      return flags;
    }
    if (std::find(known.begin(), known.end(), name) == known.end()) {
      flags.error = "unknown flag --" + name;
      return flags;
    }
    given[name] = value;
  }
  // The configuration file first, the environment over it, the command line over both.
  auto is_known = [&](const std::string& name) {
    return std::find(known.begin(), known.end(), name) != known.end();
  };
  const auto& environment = environment_names();
  if (is_known("config")) {
    std::string path;
    if (const char* value = std::getenv("CRM_CONFIG")) path = value;
    if (auto it = given.find("config"); it != given.end()) path = it->second;
    if (!path.empty()) {
      flags.error = load_config_file(path, known, flags);
      if (!flags.error.empty()) return flags;
    }
  }
  for (const auto& name : known) {
    auto env = environment.find(name);
    if (env == environment.end()) continue;
    if (const char* value = std::getenv(env->second.c_str())) {
      flags.values[name] = value;
      flags.sources[name] = env->second;
    }
  }
  for (const auto& [name, value] : given) {
    flags.values[name] = value;
    flags.sources[name] = "--" + name;
  }
  return flags;
}

bool parse_number(const std::string& text, uint64_t min, uint64_t max, uint64_t* out) {
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), *out);
  return error == std::errc() && end == text.data() + text.size() && *out >= min && *out <= max;
}

std::string read_config(const Flags& flags, AppConfig& config) {
  auto get = [&](const std::string& name) -> const std::string* {
    auto it = flags.values.find(name);
    return it == flags.values.end() ? nullptr : &it->second;
  };
  // Where a bad value came from: the flag, the environment variable or the file's key.
  auto from = [&](const std::string& name) {
    auto it = flags.sources.find(name);
    return it == flags.sources.end() ? "--" + name : it->second;
  };
  if (auto* v = get("data-dir")) {
    if (v->empty()) return from("data-dir") + " must name a directory";
    config.data_dir = *v;
  }
  uint64_t number = 0;
  if (auto* v = get("partitions")) {
    if (!parse_number(*v, 1, 4096, &number)) return from("partitions") + " must be 1..4096";
    config.partitions = static_cast<uint32_t>(number);
  }
  if (auto* v = get("http-threads")) {
    if (!parse_number(*v, 1, 10000, &number)) return from("http-threads") + " must be 1..10000";
    config.http.threads = number;
  }
  if (auto* v = get("body-limit")) {
    if (!parse_number(*v, 1024, 1ull << 30, &number))
      return from("body-limit") + " must be 1024..1073741824";
    config.http.body_bytes_max = number;
  }
  if (auto* v = get("inflight-max")) {
    if (!parse_number(*v, 1, 1000000, &number)) return from("inflight-max") + " must be 1..1000000";
    config.processor.queue_max = number;
  }
  if (auto* v = get("cache-entries")) {
    if (!parse_number(*v, 1, 100000000, &number))
      return from("cache-entries") + " must be 1..100000000";
    config.processor.cache_entries_max = number;
  }
  if (auto* v = get("processor-threads")) {
    if (!parse_number(*v, 1, 4096, &number)) return from("processor-threads") + " must be 1..4096";
    config.processor.threads = static_cast<uint32_t>(number);
  }
  if (auto* v = get("block-cache-mb")) {
    if (!parse_number(*v, 8, 1u << 20, &number))
      return from("block-cache-mb") + " must be 8..1048576";
    config.block_cache_bytes = number << 20;
  }
  if (auto* v = get("memtable-mb")) {
    if (!parse_number(*v, 8, 1u << 20, &number)) return from("memtable-mb") + " must be 8..1048576";
    config.memtable_bytes_max = number << 20;
  }
  if (auto* v = get("digest-interval")) {
    auto seconds = approval::parse_duration_s(*v);
    if (*v == "none") {
      config.digest_interval = std::chrono::milliseconds(0);
    } else if (!seconds) {
      return from("digest-interval") + " must be an ISO 8601 duration such as PT1H, or none";
    } else {
      config.digest_interval = std::chrono::seconds(*seconds);
    }
  }
  if (auto* v = get("follow-up-rules")) {
    auto bad = parse_follow_up_rules(*v, config.processor.follow_ups);
    if (!bad.empty()) return from("follow-up-rules") + ": " + bad;
  }
  if (auto* v = get("listen")) {
    auto colon = v->rfind(':');
    if (colon == std::string::npos || !parse_number(v->substr(colon + 1), 0, 65535, &number))
      return from("listen") + " must be HOST:PORT";
    config.http.host = v->substr(0, colon);
    if (config.http.host.size() > 2 && config.http.host.front() == '[')
      config.http.host = config.http.host.substr(1, config.http.host.size() - 2);
    config.http.port = static_cast<int>(number);
  }
  if (auto* v = get("log-requests")) {
    if (*v == "none") {
      config.http.log_requests = api::RequestLogging::kNone;
    } else if (*v == "errors") {
      config.http.log_requests = api::RequestLogging::kErrors;
    } else if (*v == "all") {
      config.http.log_requests = api::RequestLogging::kAll;
    } else {
      return from("log-requests") + " must be none, errors or all";
    }
  }
  if (auto* v = get("kafka-brokers")) config.inbound.brokers = *v;
  for (const auto& [name, slot] :
       {std::pair{"kafka-inbound-topic", &config.inbound.topic},
        std::pair{"kafka-rejected-topic", &config.inbound.rejected_topic},
        std::pair{"kafka-group", &config.inbound.group},
        std::pair{"kafka-events-topic", &config.kafka_log.topic},
        std::pair{"kafka-commands-topic", &config.kafka_bus.commands_topic},
        std::pair{"kafka-results-topic", &config.kafka_bus.results_topic},
        std::pair{"kafka-owners-group", &config.kafka_bus.group},
        std::pair{"kafka-transactional-id-prefix", &config.kafka_log.transactional_id_prefix}}) {
    if (auto* v = get(name)) {
      if (v->empty() || v->size() > 249) return from(name) + " must be 1..249 characters";
      *slot = *v;
    }
  }
  if (auto* v = get("kafka-topic-partitions")) {
    if (!parse_number(*v, 1, 10000, &number))
      return from("kafka-topic-partitions") + " must be 1..10000";
    config.inbound.topic_partitions = static_cast<int>(number);
  }
  if (auto* v = get("kafka-replication-factor")) {
    if (!parse_number(*v, 1, 100, &number))
      return from("kafka-replication-factor") + " must be 1..100";
    config.inbound.replication_factor = static_cast<int>(number);
  }
  if (auto* v = get("kafka-settings")) {
    // name=value,... passed to librdkafka as they are (security.protocol, sasl.*, ssl.*).
    size_t start = 0;
    while (start < v->size()) {
      size_t end = v->find(',', start);
      if (end == std::string::npos) end = v->size();
      const std::string entry = v->substr(start, end - start);
      const auto eq = entry.find('=');
      if (eq == std::string::npos || eq == 0)
        return from("kafka-settings") + ": '" + entry + "' must be name=value";
      config.inbound.kafka_settings[entry.substr(0, eq)] = entry.substr(eq + 1);
      start = end + 1;
    }
  }
  if (auto* v = get("event-log")) {
    if (*v == "embedded") {
      config.event_log = AppConfig::EventLogKind::kEmbedded;
    } else if (*v == "kafka") {
      config.event_log = AppConfig::EventLogKind::kKafka;
    } else {
      return from("event-log") + " must be embedded or kafka";
    }
  }
  if (auto* v = get("kafka-owned-partitions")) {
    // group | all | none | a list of partitions and ranges: 0,2-5
    config.kafka_owners_by_group = *v == "group";
    config.kafka_log.owns_all = *v == "all";
    config.kafka_log.owned.clear();
    if (*v != "group" && *v != "all" && *v != "none") {
      size_t start = 0;
      while (start <= v->size()) {
        size_t end = v->find(',', start);
        if (end == std::string::npos) end = v->size();
        const std::string entry = v->substr(start, end - start);
        const auto dash = entry.find('-');
        uint64_t first = 0, last = 0;
        if (!parse_number(entry.substr(0, dash), 0, 4095, &first) ||
            !parse_number(
                dash == std::string::npos ? entry.substr(0, dash) : entry.substr(dash + 1), first,
                4095, &last))
          return from("kafka-owned-partitions") + ": '" + entry +
                 "' must be a partition (0..4095) or a range of them (2-5); or group, all or none";
        for (uint64_t p = first; p <= last; ++p)
          config.kafka_log.owned.push_back(static_cast<uint32_t>(p));
        start = end + 1;
      }
    }
  }
  if (config.event_log == AppConfig::EventLogKind::kKafka && config.inbound.brokers.empty())
    return from("event-log") +
           " kafka needs the brokers (--kafka-brokers, CRM_KAFKA_BROKERS or kafkaBrokers)";
  const std::string* cert = get("tls-cert");
  const std::string* key = get("tls-key");
  if ((cert == nullptr) != (key == nullptr))
    return cert ? from("tls-cert") + " needs a key as well (--tls-key, CRM_TLS_KEY or tlsKey)"
                : from("tls-key") +
                      " needs a certificate as well (--tls-cert, CRM_TLS_CERT or tlsCert)";
  if (cert) {
    for (const auto& [name, path] : {std::pair{"tls-cert", cert}, std::pair{"tls-key", key}}) {
      if (!std::ifstream(*path).good()) return from(name) + ": cannot read " + *path;
    }
    config.http.tls_cert_file = *cert;
    config.http.tls_key_file = *key;
  }
  return "";
}

int open_tool(const std::string& name, int argc, char** argv, int first,
              const std::vector<std::string>& known, Flags& flags, OfflineLog& offline) {
  flags = parse_flags(argc, argv, first, known);
  AppConfig config;
  std::string error = flags.error.empty() ? read_config(flags, config) : flags.error;
  if (!error.empty()) {
    std::fprintf(stderr, "crm %s: %s\n%s", name.c_str(), error.c_str(), kUsage);
    return 2;
  }
  // A tool never creates a data directory: a mistyped path would read as an empty, intact log.
  if (!std::filesystem::is_directory(config.data_dir + "/db")) {
    std::fprintf(stderr, "crm %s: %s holds no engine data (no %s/db)\n", name.c_str(),
                 config.data_dir.c_str(), config.data_dir.c_str());
    return 1;
  }
  auto opened = open_offline(config.data_dir, config.partitions);
  if (!opened.is_ok()) {
    std::fprintf(stderr, "crm %s: cannot open %s: %s (is crm serve running on it?)\n", name.c_str(),
                 config.data_dir.c_str(), opened.status().to_string().c_str());
    return 1;
  }
  offline = std::move(opened.value());
  return 0;
}

}  // namespace crm
