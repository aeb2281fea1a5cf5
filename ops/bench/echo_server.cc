// crm_echo_server: the baseline of ops/bench/http_bench.sh. A bare cpp-httplib server tuned as
// the engine's HTTP server is (TCP_NODELAY, long keep-alive, a pool of --threads workers) that
// does no work, so the gap between it and `crm serve` is what the engine costs.
//   POST /v1/customers  201, the request body echoed back as application/json
//   GET  /healthz       200
//
//   crm_echo_server [--listen 127.0.0.1:18080] [--threads 256]
// Port 0 picks a free port. Prints "listening on HOST:PORT" once bound; SIGTERM or SIGINT stop it.
#include <httplib.h>

#include <cstdio>
#include <string>

#include "ops/bench/bench_server.h"

namespace crm::bench {
namespace {

constexpr char kUsage[] =
    "usage: crm_echo_server [--listen HOST:PORT (127.0.0.1:18080)] [--threads N (256)]\n";

using Options = ServerFlags;

// Reads the flags into `options`; returns an error sentence, or "" when they are all good.
std::string parse_options(int argc, char** argv, Options& options) {
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (i + 1 >= argc) return "flag " + flag + " needs a value (or is unknown)";
    std::string error;
    if (!options.take(flag, argv[++i], &error)) return "unknown flag " + flag;
    if (!error.empty()) return error;
  }
  return "";
}

int serve(const Options& options) {
  const sigset_t stop_signals = block_stop_signals();
  httplib::Server server;
  tune_like_the_engine(server, options.threads);
  server.Post("/v1/customers", [](const httplib::Request& request, httplib::Response& response) {
    response.status = 201;
    response.set_content(request.body, "application/json");
  });
  server.Get("/healthz", [](const httplib::Request&, httplib::Response& response) {
    response.set_content("{\"status\":\"UP\"}", "application/json");
  });
  return serve_until_stopped(server, stop_signals, options.host, options.port, "crm_echo_server",
                             std::to_string(options.threads) + " threads");
}

}  // namespace
}  // namespace crm::bench

int main(int argc, char** argv) {
  using namespace crm::bench;
  return program_main<Options>(argc, argv, "crm_echo_server", kUsage, parse_options, serve);
}
