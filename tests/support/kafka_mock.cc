#include "tests/support/kafka_mock.h"

#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>

namespace crm::testing {

KafkaMock::KafkaMock(int brokers, std::vector<std::pair<std::string, int>> topics) {
  std::vector<std::string> args = {CRM_KAFKA_MOCK, "--brokers", std::to_string(brokers)};
  for (const auto& [name, partitions] : topics) {
    args.push_back("--topic");
    args.push_back(name + ":" + std::to_string(partitions));
  }
  int out[2];
  if (pipe(out) != 0) {
    error_ = "pipe failed";
    return;
  }
  pid_ = fork();
  if (pid_ == 0) {
    dup2(out[1], STDOUT_FILENO);
    close(out[0]);
    close(out[1]);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  close(out[1]);
  // The first line, "BOOTSTRAP host:port,...", within a deadline.
  std::string line;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (line.find('\n') == std::string::npos && std::chrono::steady_clock::now() < deadline) {
    pollfd p{out[0], POLLIN, 0};
    if (poll(&p, 1, 100) <= 0) continue;
    char buffer[512];
    const ssize_t n = read(out[0], buffer, sizeof buffer);
    if (n <= 0) break;
    line.append(buffer, static_cast<size_t>(n));
  }
  close(out[0]);
  constexpr char kPrefix[] = "BOOTSTRAP ";
  const auto end = line.find('\n');
  if (line.rfind(kPrefix, 0) != 0 || end == std::string::npos) {
    error_ = "crm_kafka_mock did not print its bootstrap servers: '" + line + "'";
    return;
  }
  bootstrap_ = line.substr(sizeof kPrefix - 1, end - (sizeof kPrefix - 1));
}

KafkaMock::~KafkaMock() {
  if (pid_ <= 0) return;
  kill(pid_, SIGTERM);
  int status = 0;
  waitpid(pid_, &status, 0);
}

}  // namespace crm::testing
