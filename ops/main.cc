// crm: the engine's one binary.
//   crm serve  [--data-dir DIR] [--listen HOST:PORT] [--partitions N] [--http-threads N]
//              [--body-limit BYTES] [--follow-up-rules NAME=VALUE,...] [--digest-interval D]
//   crm replay [--data-dir DIR] [--partitions N]   rebuild every read model from position 0
//   crm verify [--data-dir DIR] [--partitions N] [--stream ID | --digest HEX]   tamper evidence
//   crm export (--stream ID | --customer ID | --from T --to T) [--out FILE]   JSON Lines
//   crm history ORDER_ID [--data-dir DIR]   an order's timeline
//   crm version
// Flags may also come from the environment: CRM_DATA_DIR, CRM_LISTEN, CRM_PARTITIONS,
// CRM_HTTP_THREADS, CRM_BODY_LIMIT, CRM_FOLLOW_UP_RULES, CRM_DIGEST_INTERVAL (a flag wins over
// the environment).
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
#include "ops/cli.h"
#include "ops/logging.h"
#include "workflow/follow_up_rules.h"
#include "workflow/partition_processor.h"

namespace crm {
namespace {

int serve(int argc, char** argv) {
  auto flags = parse_flags(argc, argv, 2, kServeFlags);
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
            {"partitions", std::to_string(app.value()->log().partition_count())},
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

int replay(int argc, char** argv) {
  Flags flags;
  OfflineLog offline;
  if (int code = open_tool("replay", argc, argv, 2, {"data-dir", "partitions"}, flags, offline))
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
  if (command == "verify") return crm::verify_command(argc, argv);
  if (command == "export") return crm::export_command(argc, argv);
  if (command == "history") return crm::history_command(argc, argv);
  if (command == "backup") return crm::backup_command(argc, argv);
  if (command == "config") return crm::config_command(argc, argv);
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
