// crm_echo_server: the baseline of ops/bench/http_bench.sh. A bare cpp-httplib server tuned as
// the engine's HTTP server is (TCP_NODELAY, long keep-alive, a pool of --threads workers) that
// does no work, so the gap between it and `crm serve` is what the engine costs.
//   POST /v1/customers  201, the request body echoed back as application/json
//   GET  /healthz       200
//
//   crm_echo_server [--listen 127.0.0.1:18080] [--threads 256]
// Port 0 picks a free port. Prints "listening on HOST:PORT" once bound; SIGTERM or SIGINT stop it.
#include <httplib.h>
#include <pthread.h>
#include <signal.h>

#include <charconv>
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>

namespace crm::bench {
namespace {

constexpr char kUsage[] =
    "usage: crm_echo_server [--listen HOST:PORT (127.0.0.1:18080)] [--threads N (256)]\n";

// The same settings as the engine's api/server.cc.
constexpr size_t kKeepAliveRequestsMax = 1000000;
constexpr time_t kKeepAliveTimeoutSeconds = 30;
constexpr time_t kReadWriteTimeoutSeconds = 30;
constexpr size_t kBodyBytesMax = 1 << 20;

struct Options {
  std::string host = "127.0.0.1";
  int port = 18080;
  int threads = 256;
};

bool parse_integer(const std::string& text, int min, int max, int* out) {
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), *out);
  return error == std::errc() && end == text.data() + text.size() && *out >= min && *out <= max;
}

// Reads the flags into `options`; returns an error sentence, or "" when they are all good.
std::string parse_options(int argc, char** argv, Options& options) {
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (i + 1 >= argc) return "flag " + flag + " needs a value (or is unknown)";
    const std::string value = argv[++i];
    if (flag == "--listen") {
      const auto colon = value.rfind(':');
      if (colon == std::string::npos || colon == 0 ||
          !parse_integer(value.substr(colon + 1), 0, 65535, &options.port)) {
        return "--listen must be HOST:PORT";
      }
      options.host = value.substr(0, colon);
    } else if (flag == "--threads") {
      if (!parse_integer(value, 1, 10000, &options.threads)) return "--threads must be 1..10000";
    } else {
      return "unknown flag " + flag;
    }
  }
  return "";
}

int serve(const Options& options) {
  // SIGTERM/SIGINT are taken by one thread with sigwait; every other thread (the pool is created
  // after this) inherits the blocked mask.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  httplib::Server server;
  const int threads = options.threads;
  server.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  server.set_tcp_nodelay(true);
  server.set_keep_alive_max_count(kKeepAliveRequestsMax);
  server.set_keep_alive_timeout(kKeepAliveTimeoutSeconds);
  server.set_read_timeout(kReadWriteTimeoutSeconds);
  server.set_write_timeout(kReadWriteTimeoutSeconds);
  server.set_payload_max_length(kBodyBytesMax);
  server.Post("/v1/customers", [](const httplib::Request& request, httplib::Response& response) {
    response.status = 201;
    response.set_content(request.body, "application/json");
  });
  server.Get("/healthz", [](const httplib::Request&, httplib::Response& response) {
    response.set_content("{\"status\":\"UP\"}", "application/json");
  });

  int port = options.port;
  if (port == 0) {
    port = server.bind_to_any_port(options.host);
  } else if (!server.bind_to_port(options.host, port)) {
    port = -1;
  }
  if (port < 0) {
    std::fprintf(stderr, "crm_echo_server: cannot listen on %s:%d\n", options.host.c_str(),
                 options.port);
    return 1;
  }
  std::thread signal_thread([&] {
    int received_signal = 0;
    sigwait(&stop_signals, &received_signal);
    // stop() does nothing until listening has begun; a signal right after binding waits for it.
    for (int attempt = 0; attempt < 100 && !server.is_running(); ++attempt) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    server.stop();
  });
  std::printf("listening on %s:%d (%d threads)\n", options.host.c_str(), port, options.threads);
  std::fflush(stdout);
  const bool served = server.listen_after_bind();
  // If listening ended by itself, release the signal thread.
  pthread_kill(signal_thread.native_handle(), SIGTERM);
  signal_thread.join();
  std::printf("stopped\n");
  return served ? 0 : 1;
}

}  // namespace
}  // namespace crm::bench

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (flag == "--help" || flag == "-h") return std::fputs(crm::bench::kUsage, stdout), 0;
  }
  crm::bench::Options options;
  if (const std::string error = crm::bench::parse_options(argc, argv, options); !error.empty()) {
    std::fprintf(stderr, "crm_echo_server: %s\n%s", error.c_str(), crm::bench::kUsage);
    return 2;
  }
  return crm::bench::serve(options);
}
