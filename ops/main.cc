// crm: the engine's one binary.
//   crm serve  [--data-dir DIR] [--listen HOST:PORT] [--partitions N] [--http-threads N]
//              [--body-limit BYTES] [--follow-up-rules NAME=VALUE,...]
//   crm replay [--data-dir DIR] [--partitions N]   rebuild every read model from position 0
//   crm verify [--data-dir DIR] [--partitions N] [--stream ID]   tamper evidence (I8)
//   crm version
// Flags may also come from the environment: CRM_DATA_DIR, CRM_LISTEN, CRM_PARTITIONS,
// CRM_HTTP_THREADS, CRM_BODY_LIMIT, CRM_FOLLOW_UP_RULES (a flag wins over the environment).
#include <signal.h>

#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "api/json.h"
#include "ops/app.h"
#include "ops/logging.h"
#include "workflow/follow_up_rules.h"
#include "workflow/partition_processor.h"

namespace crm {
namespace {

constexpr char kUsage[] =
    "usage: crm <command> [flags]\n"
    "  serve    run the engine (HTTP API) on the embedded log\n"
    "           --data-dir DIR (./data)  --listen HOST:PORT (0.0.0.0:8080)\n"
    "           --partitions N (8, fixed when the data directory is created)\n"
    "           --http-threads N (256: concurrent connections served)\n"
    "           --body-limit BYTES (1048576)\n"
    "           --follow-up-rules NAME=VALUE,... (e.g. revisitAfter=P7D,utcOffset=+08:00;\n"
    "             see docs/user-guide.md, Follow-up tasks)\n"
    "  replay   rebuild every read model from the log and compare digests\n"
    "           --data-dir DIR  --partitions N\n"
    "  verify   recompute every stream's hash chain; print the report as JSON\n"
    "           --data-dir DIR  --partitions N  [--stream ID]  (exit 4: the log was altered)\n"
    "  version  print the engine version\n";

struct Flags {
  std::map<std::string, std::string> values;
  std::string error;
};

Flags parse_flags(int argc, char** argv, int first, const std::vector<std::string>& known) {
  Flags flags;
  static const std::map<std::string, std::string> kEnvironment = {
      {"data-dir", "CRM_DATA_DIR"},     {"listen", "CRM_LISTEN"},
      {"partitions", "CRM_PARTITIONS"}, {"http-threads", "CRM_HTTP_THREADS"},
      {"body-limit", "CRM_BODY_LIMIT"}, {"follow-up-rules", "CRM_FOLLOW_UP_RULES"}};
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

// Reads the common flags into `config`; returns an error sentence or "".
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

int serve(int argc, char** argv) {
  auto flags = parse_flags(
      argc, argv, 2,
      {"data-dir", "listen", "partitions", "http-threads", "body-limit", "follow-up-rules"});
  AppConfig config;
  std::string error = flags.error.empty() ? read_config(flags, config) : flags.error;
  if (!error.empty()) {
    std::fprintf(stderr, "crm serve: %s\n%s", error.c_str(), kUsage);
    return 2;
  }
  // SIGTERM/SIGINT are taken by one thread with sigwait; every other thread blocks them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  SystemClock clock;
  RandomIdSource ids;
  auto app = App::open(config, clock, ids);
  if (!app.is_ok()) {
    log_line("error", "cannot start: " + app.status().to_string(), {{"data_dir", config.data_dir}});
    return 1;
  }
  int port = app.value()->bind();
  if (port < 0) {
    log_line("error",
             "cannot listen on " + config.http.host + ":" + std::to_string(config.http.port));
    return 1;
  }
  std::thread signal_thread([&] {
    int received = 0;
    sigwait(&signals, &received);
    log_line("info", "stopping: finishing in-flight commands",
             {{"signal", std::to_string(received)}});
    app.value()->stop();
  });
  log_line("info", "serving",
           {{"listen", config.http.host + ":" + std::to_string(port)},
            {"data_dir", config.data_dir},
            {"partitions", std::to_string(config.partitions)},
            {"http_threads", std::to_string(config.http.threads)}});
  app.value()->serve();
  app.value()->stop();
  // If serve() ended by itself, release the signal thread.
  pthread_kill(signal_thread.native_handle(), SIGTERM);
  signal_thread.join();
  app.value().reset();
  log_line("info", "stopped");
  return 0;
}

// The start of an offline tool: its flags read, then the data directory opened without serving
// it. Returns the exit code to stop with (2: bad flags, 1: cannot open) or 0 with `offline` set.
int open_tool(const std::string& name, int argc, char** argv, const std::vector<std::string>& known,
              Flags& flags, OfflineLog& offline) {
  flags = parse_flags(argc, argv, 2, known);
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

int replay(int argc, char** argv) {
  Flags flags;
  OfflineLog offline;
  if (int code = open_tool("replay", argc, argv, {"data-dir", "partitions"}, flags, offline))
    return code;
  auto& store = *offline.store;
  auto before = read_models_digest(store);
  if (!before.is_ok()) {
    std::fprintf(stderr, "crm replay: %s\n", before.status().to_string().c_str());
    return 1;
  }
  // Bring the live models up to the end of the log first, so the digests compare like for like.
  {
    Projector live(*offline.log, store, all_read_models());
    if (auto s = live.open(); !s.is_ok())
      return std::fprintf(stderr, "crm replay: %s\n", s.to_string().c_str()), 1;
    if (auto s = live.catch_up(); !s.is_ok())
      return std::fprintf(stderr, "crm replay: %s\n", s.to_string().c_str()), 1;
  }
  auto live_digest = read_models_digest(store);
  auto started = std::chrono::steady_clock::now();
  if (auto s = clear_read_models(store); !s.is_ok())
    return std::fprintf(stderr, "crm replay: %s\n", s.to_string().c_str()), 1;
  Projector rebuild(*offline.log, store, all_read_models());
  if (auto s = rebuild.open(); !s.is_ok())
    return std::fprintf(stderr, "crm replay: %s\n", s.to_string().c_str()), 1;
  if (auto s = rebuild.catch_up(); !s.is_ok())
    return std::fprintf(stderr, "crm replay: %s\n", s.to_string().c_str()), 1;
  double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  auto after = read_models_digest(store);
  uint64_t events = 0;
  for (uint32_t p = 0; p < offline.log->partition_count(); ++p)
    events += offline.log->end_offset(p);
  const bool identical =
      live_digest.is_ok() && after.is_ok() && live_digest.value() == after.value();
  std::printf("events replayed: %llu in %.3f s (%.0f events/s)\n",
              static_cast<unsigned long long>(events), seconds,
              seconds > 0 ? events / seconds : 0.0);
  std::printf("read models before: %s\n", live_digest.is_ok() ? live_digest.value().c_str() : "?");
  std::printf("read models after:  %s\n", after.is_ok() ? after.value().c_str() : "?");
  std::printf("%s\n", identical ? "identical" : "DIFFERENT");
  return identical ? 0 : 3;
}

// Tamper evidence for auditors: recomputes every stream's hash chain (or one stream's) and
// prints the report as JSON. Exit 0: the log is as written; 4: it was altered; 1: not checked.
int verify(int argc, char** argv) {
  Flags flags;
  OfflineLog offline;
  if (int code =
          open_tool("verify", argc, argv, {"data-dir", "partitions", "stream"}, flags, offline))
    return code;
  const auto started = std::chrono::steady_clock::now();
  auto stream = flags.values.find("stream");
  auto report = stream == flags.values.end() ? offline.log->verify()
                                             : offline.log->verify_stream(stream->second);
  if (!report.is_ok()) {
    std::fprintf(stderr, "crm verify: %s\n", report.status().to_string().c_str());
    return 1;
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  std::printf("%s\n", api::to_json(report.value()).c_str());
  std::fprintf(stderr, "crm verify: %llu events of %llu streams in %.3f s (%.0f events/s): %s\n",
               static_cast<unsigned long long>(report->events()),
               static_cast<unsigned long long>(report->streams()), seconds,
               seconds > 0 ? report->events() / seconds : 0.0,
               report->ok() ? "as written" : "ALTERED");
  return report->ok() ? 0 : 4;
}

}  // namespace
}  // namespace crm

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fputs(crm::kUsage, stderr);
    return 2;
  }
  std::string command = argv[1];
  if (command == "serve") return crm::serve(argc, argv);
  if (command == "replay") return crm::replay(argc, argv);
  if (command == "verify") return crm::verify(argc, argv);
  if (command == "version") {
    std::printf("crm 0.1.0 (writer version %u)\n", crm::kWriterVersion);
    return 0;
  }
  if (command == "help" || command == "--help" || command == "-h") {
    std::fputs(crm::kUsage, stdout);
    return 0;
  }
  std::fprintf(stderr, "crm: unknown command '%s'\n%s", command.c_str(), crm::kUsage);
  return 2;
}
