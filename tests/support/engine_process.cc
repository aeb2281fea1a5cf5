#include "tests/support/engine_process.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "tests/support/test_support.h"

extern char** environ;

namespace crm::testing {

int free_port() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = 0;
  socklen_t length = sizeof address;
  int port = -1;
  if (bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0) {
    port = ntohs(address.sin_port);
  }
  close(fd);
  return port;
}

std::unique_ptr<httplib::Client> new_client(int port, const std::string& token) {
  auto client = std::make_unique<httplib::Client>("127.0.0.1", port);
  client->set_keep_alive(true);
  client->set_tcp_nodelay(true);
  client->set_connection_timeout(2, 0);
  client->set_read_timeout(10, 0);
  client->set_write_timeout(10, 0);
  if (!token.empty()) client->set_bearer_token_auth(token);
  return client;
}

EngineProcess::EngineProcess(std::string data_dir, std::string log_path,
                             std::vector<std::string> flags)
    : data_dir_(std::move(data_dir)), log_path_(std::move(log_path)), flags_(std::move(flags)) {}

::testing::AssertionResult EngineProcess::start() {
  for (int attempt = 0; attempt < 3; ++attempt) {
    const auto log_start = std::filesystem::exists(log_path_)
                               ? std::filesystem::file_size(log_path_)
                               : std::uintmax_t{0};
    port_ = free_port();
    if (port_ < 0) return ::testing::AssertionFailure() << "no free port";
    if (auto spawned = spawn(); !spawned) return spawned;
    if (wait_healthy()) return ::testing::AssertionSuccess();
    const bool exited = pid_ < 0;
    kill_now();
    const std::string output = read_file(log_path_).substr(log_start);
    // Someone took the port between free_port() and the engine's bind: try another one.
    if (exited && output.find("cannot listen") != std::string::npos) continue;
    return ::testing::AssertionFailure()
           << "crm serve did not become healthy on port " << port_
           << (exited ? " (it exited: " + exit_description_ + ")" : "") << "; its output:\n"
           << output;
  }
  return ::testing::AssertionFailure() << "crm serve found no free port in 3 attempts";
}

void EngineProcess::kill_now() {
  if (pid_ < 0) return;
  ::kill(pid_, SIGKILL);
  int status = 0;
  waitpid(pid_, &status, 0);
  pid_ = -1;
}

::testing::AssertionResult EngineProcess::stop_gracefully() {
  if (pid_ < 0) return ::testing::AssertionFailure() << "crm serve is not running";
  ::kill(pid_, SIGTERM);
  if (!wait_until([&] { return !running(); },
                  std::chrono::duration_cast<std::chrono::milliseconds>(kStopTimeout))) {
    kill_now();
    return ::testing::AssertionFailure() << "crm serve did not exit within " << kStopTimeout.count()
                                         << " s of SIGTERM; killed it";
  }
  if (exit_description_ != "exit code 0")
    return ::testing::AssertionFailure() << "crm serve ended with " << exit_description_
                                         << " after SIGTERM, expected exit code 0";
  return ::testing::AssertionSuccess();
}

std::string EngineProcess::admin_token() const {
  std::string token = read_file(data_dir_ + "/admin.token");
  while (!token.empty() && (token.back() == '\n' || token.back() == '\r')) token.pop_back();
  return token;
}

::testing::AssertionResult EngineProcess::spawn() {
  {
    std::ofstream log(log_path_, std::ios::app);
    log << "=== crm serve --listen 127.0.0.1:" << port_ << " ===\n";
  }
  const std::string listen = "127.0.0.1:" + std::to_string(port_);
  std::vector<std::string> args = {CRM_BINARY, "serve",    "--data-dir",
                                   data_dir_,  "--listen", listen};
  args.insert(args.end(), flags_.begin(), flags_.end());
  std::vector<char*> argv;
  for (auto& arg : args) argv.push_back(arg.data());
  argv.push_back(nullptr);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, log_path_.c_str(),
                                   O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
  pid_t pid = -1;
  const int error = posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (error != 0)
    return ::testing::AssertionFailure()
           << "cannot spawn " << CRM_BINARY << ": " << std::strerror(error);
  pid_ = pid;
  exit_description_.clear();
  return ::testing::AssertionSuccess();
}

bool EngineProcess::wait_healthy() {
  auto client = new_client(port_, "");
  client->set_connection_timeout(0, 200000);
  return wait_until(
             [&] {
               if (!running()) return true;  // stop waiting; start() sees pid_ < 0
               auto reply = client->Get("/healthz");
               return reply && reply->status == 200;
             },
             std::chrono::duration_cast<std::chrono::milliseconds>(kStartTimeout)) &&
         running();
}

bool EngineProcess::running() {
  if (pid_ < 0) return false;
  int status = 0;
  if (waitpid(pid_, &status, WNOHANG) != pid_) return true;
  pid_ = -1;
  exit_description_ = WIFEXITED(status)     ? "exit code " + std::to_string(WEXITSTATUS(status))
                      : WIFSIGNALED(status) ? "signal " + std::to_string(WTERMSIG(status))
                                            : "status " + std::to_string(status);
  return false;
}

}  // namespace crm::testing
