// Shared test fixtures: temporary directories, waiting on conditions with a deadline (never
// sleeping for a fixed time), and an engine served on a free loopback port.
#pragma once

#include <httplib.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "ops/app.h"

namespace crm::testing {

// A fresh directory under /tmp, removed with everything in it when destroyed.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Polls `condition` until it holds or `timeout` passes; returns whether it held.
bool wait_until(const std::function<bool()>& condition,
                std::chrono::milliseconds timeout = std::chrono::seconds(10));

// The whole engine in this process, serving HTTP on 127.0.0.1 on a free port.
class ServedApp {
 public:
  explicit ServedApp(const std::string& data_dir, AppConfig config = {},
                     const Clock* clock = nullptr);
  ~ServedApp();

  int port() const { return port_; }
  App& app() { return *app_; }
  const std::string& admin_token() const { return admin_token_; }
  // A keep-alive client for this server, with the admin token unless another is given.
  std::unique_ptr<httplib::Client> client(const std::string& token = "") const;
  void stop();

 private:
  SystemClock system_clock_;
  RandomIdSource ids_;
  std::unique_ptr<App> app_;
  std::thread serving_;
  int port_ = -1;
  std::string admin_token_;
};

// Reads a whole file; empty if it cannot.
std::string read_file(const std::string& path);

// Runs a shell command; its exit code and its stdout and stderr together.
struct CommandResult {
  int exit_code = -1;
  std::string output;
};
CommandResult run_command(const std::string& command);

}  // namespace crm::testing
