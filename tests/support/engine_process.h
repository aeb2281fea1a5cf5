// `crm serve` as a child process of a test: started on a free port, killed with SIGKILL (as a
// power cut would) or stopped with SIGTERM; its output appended to a log file.
#pragma once

#include <gtest/gtest.h>
#include <httplib.h>
#include <sys/types.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

namespace crm::testing {

// A port nobody listens on right now (another process may still take it before we do;
// EngineProcess::start() retries on "cannot listen").
int free_port();

// A keep-alive client of 127.0.0.1:port, with the bearer token when one is given.
std::unique_ptr<httplib::Client> new_client(int port, const std::string& token);

class EngineProcess {
 public:
  static constexpr std::chrono::seconds kStartTimeout{20};
  // The drain waits at most the command timeout (30 s) + 5 s.
  static constexpr std::chrono::seconds kStopTimeout{40};

  // `flags` are passed to `crm serve` after --data-dir and --listen.
  EngineProcess(std::string data_dir, std::string log_path, std::vector<std::string> flags = {});
  EngineProcess(const EngineProcess&) = delete;
  EngineProcess& operator=(const EngineProcess&) = delete;
  ~EngineProcess() { kill_now(); }

  // Spawns the binary on a free port and waits until /healthz answers 200.
  ::testing::AssertionResult start();
  // SIGKILL; waits for the process to be gone.
  void kill_now();
  // SIGTERM; the engine must finish in-flight work and exit 0 within kStopTimeout.
  ::testing::AssertionResult stop_gracefully();

  int port() const { return port_; }
  std::string admin_token() const;

 private:
  ::testing::AssertionResult spawn();
  bool wait_healthy();
  // Reaps the child if it has ended; false once it has.
  bool running();

  std::string data_dir_;
  std::string log_path_;
  std::vector<std::string> flags_;
  pid_t pid_ = -1;
  int port_ = -1;
  std::string exit_description_;
};

}  // namespace crm::testing
