#include "ops/cli.h"

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include "aggregates/approval/policies.h"
#include "workflow/follow_up_rules.h"

namespace crm {

const char kUsage[] =
    "usage: crm <command> [flags]\n"
    "  serve    run the engine (HTTP API) on the embedded log\n"
    "           --data-dir DIR (./data)  --listen HOST:PORT (0.0.0.0:8080)\n"
    "           --partitions N (8, fixed when the data directory is created)\n"
    "           --http-threads N (256: concurrent connections served)\n"
    "           --body-limit BYTES (1048576)\n"
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
    "  version  print the engine version\n";

Flags parse_flags(int argc, char** argv, int first, const std::vector<std::string>& known) {
  Flags flags;
  static const std::map<std::string, std::string> kEnvironment = {
      {"data-dir", "CRM_DATA_DIR"},
      {"listen", "CRM_LISTEN"},
      {"partitions", "CRM_PARTITIONS"},
      {"http-threads", "CRM_HTTP_THREADS"},
      {"body-limit", "CRM_BODY_LIMIT"},
      {"follow-up-rules", "CRM_FOLLOW_UP_RULES"},
      {"digest-interval", "CRM_DIGEST_INTERVAL"}};
  for (const auto& name : known) {
    auto env = kEnvironment.find(name);
    if (env == kEnvironment.end()) continue;
    if (const char* value = std::getenv(env->second.c_str())) flags.values[name] = value;
  }
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
    flags.values[name] = value;
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
  if (auto* v = get("data-dir")) config.data_dir = *v;
  uint64_t number = 0;
  if (auto* v = get("partitions")) {
    if (!parse_number(*v, 1, 4096, &number)) return "--partitions must be 1..4096";
    config.partitions = static_cast<uint32_t>(number);
  }
  if (auto* v = get("http-threads")) {
    if (!parse_number(*v, 1, 10000, &number)) return "--http-threads must be 1..10000";
    config.http.threads = number;
  }
  if (auto* v = get("body-limit")) {
    if (!parse_number(*v, 1024, 1ull << 30, &number))
      return "--body-limit must be 1024..1073741824";
    config.http.body_bytes_max = number;
  }
  if (auto* v = get("digest-interval")) {
    auto seconds = approval::parse_duration_s(*v);
    if (*v == "none") {
      config.digest_interval = std::chrono::milliseconds(0);
    } else if (!seconds) {
      return "--digest-interval must be an ISO 8601 duration such as PT1H, or none";
    } else {
      config.digest_interval = std::chrono::seconds(*seconds);
    }
  }
  if (auto* v = get("follow-up-rules")) {
    auto bad = parse_follow_up_rules(*v, config.processor.follow_ups);
    if (!bad.empty()) return "--follow-up-rules: " + bad;
  }
  if (auto* v = get("listen")) {
    auto colon = v->rfind(':');
    if (colon == std::string::npos || !parse_number(v->substr(colon + 1), 0, 65535, &number))
      return "--listen must be HOST:PORT";
    config.http.host = v->substr(0, colon);
    if (config.http.host.size() > 2 && config.http.host.front() == '[')
      config.http.host = config.http.host.substr(1, config.http.host.size() - 2);
    config.http.port = static_cast<int>(number);
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
