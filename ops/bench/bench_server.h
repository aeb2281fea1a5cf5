// What the benchmark programs share: flag parsing, and for the baseline servers (crm_echo_server,
// crm_floor_server) the engine's HTTP settings and a serve-until-signalled loop, so that every
// baseline runs cpp-httplib exactly as `crm serve` does.
#pragma once

#include <httplib.h>
#include <pthread.h>
#include <signal.h>

#include <atomic>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>

namespace crm::bench {

inline bool parse_integer(const std::string& text, int min, int max, int* out) {
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), *out);
  return error == std::errc() && end == text.data() + text.size() && *out >= min && *out <= max;
}

// HOST:PORT, the port within min_port..65535.
inline bool parse_host_port(const std::string& value, int min_port, std::string* host, int* port) {
  const auto colon = value.rfind(':');
  if (colon == std::string::npos || colon == 0 ||
      !parse_integer(value.substr(colon + 1), min_port, 65535, port)) {
    return false;
  }
  *host = value.substr(0, colon);
  return true;
}

// The flags every baseline server takes: --listen HOST:PORT (port 0: a free one), --threads N.
struct ServerFlags {
  std::string host = "127.0.0.1";
  int port = 18080;
  int threads = 256;

  // Takes `flag` when it is one of these: true, with `*error` set when its value is bad.
  bool take(const std::string& flag, const std::string& value, std::string* error) {
    if (flag == "--listen") {
      if (!parse_host_port(value, 0, &host, &port)) *error = "--listen must be HOST:PORT";
    } else if (flag == "--threads") {
      if (!parse_integer(value, 1, 10000, &threads)) *error = "--threads must be 1..10000";
    } else {
      return false;
    }
    return true;
  }
};

// The engine's settings (api/server.cc): TCP_NODELAY, long keep-alive, a pool of `threads`.
inline void tune_like_the_engine(httplib::Server& server, int threads) {
  constexpr size_t kKeepAliveRequestsMax = 1000000;
  constexpr time_t kKeepAliveTimeoutSeconds = 30;
  constexpr time_t kReadWriteTimeoutSeconds = 30;
  constexpr size_t kBodyBytesMax = 1 << 20;
  server.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  server.set_tcp_nodelay(true);
  server.set_keep_alive_max_count(kKeepAliveRequestsMax);
  server.set_keep_alive_timeout(kKeepAliveTimeoutSeconds);
  server.set_read_timeout(kReadWriteTimeoutSeconds);
  server.set_write_timeout(kReadWriteTimeoutSeconds);
  server.set_payload_max_length(kBodyBytesMax);
}

// SIGTERM and SIGINT, blocked in the calling thread and so in every thread started after it:
// call first, before any thread exists, then serve_until_stopped takes them with sigwait.
inline sigset_t block_stop_signals() {
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  signal(SIGPIPE, SIG_IGN);
  return stop_signals;
}

// Binds HOST:PORT (port 0: a free one), prints "listening on HOST:PORT (details)" once bound,
// serves until SIGTERM or SIGINT, prints "stopped". The exit status for main.
inline int serve_until_stopped(httplib::Server& server, sigset_t stop_signals,
                               const std::string& host, int port, const char* program,
                               const std::string& details) {
  int bound = port;
  if (port == 0) {
    bound = server.bind_to_any_port(host);
  } else if (!server.bind_to_port(host, port)) {
    bound = -1;
  }
  if (bound < 0) {
    std::fprintf(stderr, "%s: cannot listen on %s:%d\n", program, host.c_str(), port);
    return 1;
  }
  std::atomic<bool> listening_ended{false};
  std::thread signal_thread([&] {
    int received_signal = 0;
    sigwait(&stop_signals, &received_signal);
    if (listening_ended) return;
    // stop() does nothing until listening has begun; a signal right after binding waits for it.
    for (int attempt = 0; attempt < 100 && !server.is_running(); ++attempt) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    server.stop();
  });
  std::printf("listening on %s:%d (%s)\n", host.c_str(), bound, details.c_str());
  std::fflush(stdout);
  const bool served = server.listen_after_bind();
  // If listening ended by itself, release the signal thread.
  listening_ended = true;
  pthread_kill(signal_thread.native_handle(), SIGTERM);
  signal_thread.join();
  std::printf("stopped\n");
  return served ? 0 : 1;
}

// The main() of a benchmark program: --help or -h prints `usage`; `parse(argc, argv, options)`
// returns an error sentence (exit 2, with the usage) or ""; then `run(options)` is the exit status.
template <typename Options, typename Parse, typename Run>
int program_main(int argc, char** argv, const char* program, const char* usage, Parse parse,
                 Run run) {
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (flag == "--help" || flag == "-h") return std::fputs(usage, stdout), 0;
  }
  Options options;
  if (const std::string error = parse(argc, argv, options); !error.empty()) {
    std::fprintf(stderr, "%s: %s\n%s", program, error.c_str(), usage);
    return 2;
  }
  return run(options);
}

}  // namespace crm::bench
