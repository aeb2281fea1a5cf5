// crm_load: a closed-loop HTTP/1.1 load generator, so that the engine and the bare cpp-httplib
// baseline (crm_echo_server) are measured by the same client. Each connection is one thread with
// one keep-alive httplib::Client that sends its next request as soon as the previous one is
// answered. Connections open one at a time (cpp-httplib listens with a backlog of 5), within
// the warmup.
//
//   crm_load --target 127.0.0.1:8080 --method POST --path /v1/customers --connections 32
//            --duration-s 10 --warmup-s 2 --body-file ops/bench/register_customer.json
//            --header "Authorization: Bearer TOKEN" --unique-idempotency-key
//            --unique-field seq --expect-status 201
//
// --unique-field NAME replaces every "{{NAME}}" in the body template by a number unique to the
// request within the run; --unique-idempotency-key sends "Idempotency-Key: PREFIX-THREAD-SEQ"
// with a prefix random per run. Without --expect-status any 2xx answer is a success.
//
// Successes are counted, and their latencies kept, when they are answered after the warmup and
// before the deadline. Errors (another status, or no answer) are counted from the start, warmup
// included: an error there still means the setup is wrong. Requests still in flight at the
// deadline are abandoned. Output, the last line being for scripts:
//   crm_load: ... (one human line)
//   RESULT requests=N errors=N seconds=F rps=N p50_us=N p99_us=N p999_us=N max_us=N
// Exit status: 0; 1 when there were errors or no successful request; 2 on bad flags.
#include <httplib.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "ops/bench/bench_server.h"

namespace crm::bench {
namespace {

using Clock = std::chrono::steady_clock;

constexpr char kUsage[] =
    "usage: crm_load [flags]\n"
    "  --target HOST:PORT          (127.0.0.1:8080)\n"
    "  --method POST|GET           (POST)\n"
    "  --path PATH                 (/v1/customers)\n"
    "  --connections N             (32: one thread and one keep-alive connection each)\n"
    "  --duration-s S              (10: measured seconds)\n"
    "  --warmup-s S                (2: seconds sent before measuring, not counted)\n"
    "  --body-file FILE            the request body template\n"
    "  --header 'Name: value'      an extra request header (repeatable)\n"
    "  --content-type TYPE         (application/json)\n"
    "  --unique-idempotency-key    a distinct Idempotency-Key header on every request\n"
    "  --unique-field NAME         replace {{NAME}} in the body by a per-request unique number\n"
    "  --expect-status CODE        the only successful status (default: any 2xx)\n"
    "  --path-file FILE            one path a line, each sent once, in order, instead of --path\n"
    "                              (a connection stops when they run out: an error)\n";

// How long one request may take before it counts as an error; only a safety net, since the run
// aborts whatever is still in flight shortly after the deadline.
constexpr time_t kConnectTimeoutSeconds = 5;
constexpr time_t kReadWriteTimeoutSeconds = 10;
// After the deadline, connections get this long to finish their last request before it is cut.
constexpr auto kStopGrace = std::chrono::milliseconds(500);
// After a request got no answer (e.g. connection refused), wait this long before the next one so
// that a dead server does not turn the run into a busy loop.
constexpr auto kPauseAfterTransportError = std::chrono::milliseconds(10);
// Latency vectors are reserved for this many successes per connection-second (they grow beyond).
constexpr double kReservedRequestsPerConnectionSecond = 2000;
// The first error's response body is printed up to this length.
constexpr size_t kErrorBodyPrintedBytesMax = 2000;

struct Options {
  std::string host = "127.0.0.1";
  int port = 8080;
  std::string method = "POST";
  std::string path = "/v1/customers";
  int connections = 32;
  double duration_s = 10;
  double warmup_s = 2;
  std::string body_template;
  httplib::Headers headers;
  std::string content_type = "application/json";
  bool unique_idempotency_key = false;
  std::string unique_field;          // empty: the body is sent as it is
  std::optional<int> expect_status;  // unset: any 2xx
  std::vector<std::string> paths;    // --path-file: each sent once; empty: --path every time
};

// The three instants of a run: sending starts, measuring starts, everything stops.
struct Schedule {
  Clock::time_point start;
  Clock::time_point measure_start;
  Clock::time_point deadline;
};

// What one connection saw.
struct ConnectionResult {
  std::vector<uint32_t> latencies_us;  // successes answered between measure_start and deadline
  uint64_t errors = 0;                 // failures answered between start and deadline
};

// The body template cut at each placeholder: pieces[0] NUMBER pieces[1] ... NUMBER pieces[n].
class BodyTemplate {
 public:
  BodyTemplate(const std::string& text, const std::string& field) {
    const std::string placeholder = "{{" + field + "}}";
    size_t from = 0;
    if (!field.empty()) {
      for (size_t at = text.find(placeholder); at != std::string::npos;
           at = text.find(placeholder, from)) {
        pieces_.push_back(text.substr(from, at - from));
        from = at + placeholder.size();
      }
    }
    pieces_.push_back(text.substr(from));
  }

  size_t placeholder_count() const { return pieces_.size() - 1; }

  // Writes the body for `unique_number` into `body`, reusing its buffer.
  void render(uint64_t unique_number, std::string& body) const {
    char digits[24];
    const auto digits_end = std::to_chars(digits, digits + sizeof digits, unique_number).ptr;
    body.clear();
    body += pieces_[0];
    for (size_t i = 1; i < pieces_.size(); ++i) {
      body.append(digits, digits_end);
      body += pieces_[i];
    }
  }

 private:
  std::vector<std::string> pieces_;
};

// Prints the first error of the run to stderr, and nothing after it.
class FirstErrorReporter {
 public:
  // `at_s`: seconds since the run started; `sequence`: the request's number on its connection.
  void report(double at_s, int connection, uint64_t sequence, const std::string& description) {
    if (reported_.exchange(true)) return;
    std::fprintf(stderr,
                 "crm_load: first error, %.3f s into the run (connection %d, request %llu): %s\n",
                 at_s, connection, static_cast<unsigned long long>(sequence), description.c_str());
  }

 private:
  std::atomic<bool> reported_{false};
};

bool parse_seconds(const std::string& text, double min, double* out) {
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), *out);
  return error == std::errc() && end == text.data() + text.size() && *out >= min && *out < 1e6;
}

std::optional<std::string> read_file(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) return std::nullopt;
  std::ostringstream contents;
  contents << file.rdbuf();
  return contents.str();
}

// Reads the flags into `options`; returns an error sentence, or "" when they are all good.
std::string parse_options(int argc, char** argv, Options& options) {
  std::string body_file;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (flag == "--unique-idempotency-key") {
      options.unique_idempotency_key = true;
      continue;
    }
    if (i + 1 >= argc) return "flag " + flag + " needs a value (or is unknown)";
    const std::string value = argv[++i];
    if (flag == "--target") {
      if (!parse_host_port(value, 1, &options.host, &options.port))
        return "--target must be HOST:PORT";
    } else if (flag == "--method") {
      if (value != "POST" && value != "GET") return "--method must be POST or GET";
      options.method = value;
    } else if (flag == "--path") {
      if (value.empty() || value[0] != '/') return "--path must start with /";
      options.path = value;
    } else if (flag == "--connections") {
      if (!parse_integer(value, 1, 10000, &options.connections)) {
        return "--connections must be 1..10000";
      }
    } else if (flag == "--duration-s") {
      if (!parse_seconds(value, 0.001, &options.duration_s)) return "--duration-s must be > 0";
    } else if (flag == "--warmup-s") {
      if (!parse_seconds(value, 0, &options.warmup_s)) return "--warmup-s must be >= 0";
    } else if (flag == "--body-file") {
      body_file = value;
    } else if (flag == "--header") {
      const auto colon = value.find(':');
      if (colon == std::string::npos || colon == 0) return "--header must be 'Name: value'";
      const auto value_start = value.find_first_not_of(" \t", colon + 1);
      options.headers.emplace(value.substr(0, colon), value_start == std::string::npos
                                                          ? std::string()
                                                          : value.substr(value_start));
    } else if (flag == "--content-type") {
      options.content_type = value;
    } else if (flag == "--unique-field") {
      if (value.empty()) return "--unique-field needs a name";
      options.unique_field = value;
    } else if (flag == "--path-file") {
      auto contents = read_file(value);
      if (!contents) return "cannot read --path-file " + value;
      std::istringstream lines(*contents);
      for (std::string line; std::getline(lines, line);)
        if (!line.empty()) options.paths.push_back(line);
      if (options.paths.empty()) return "--path-file " + value + " has no paths";
      for (const auto& path : options.paths)
        if (path[0] != '/') return "--path-file: every path must start with /, not " + path;
      options.path = options.paths[0] + " and " + std::to_string(options.paths.size() - 1) +
                     " more paths of " + value;
    } else if (flag == "--expect-status") {
      int status = 0;
      if (!parse_integer(value, 100, 599, &status)) return "--expect-status must be 100..599";
      options.expect_status = status;
    } else {
      return "unknown flag " + flag;
    }
  }
  if (!body_file.empty()) {
    auto contents = read_file(body_file);
    if (!contents) return "cannot read --body-file " + body_file;
    options.body_template = std::move(*contents);
  }
  if (!options.unique_field.empty() &&
      BodyTemplate(options.body_template, options.unique_field).placeholder_count() == 0) {
    return "--unique-field " + options.unique_field + ": the body has no {{" +
           options.unique_field + "}}";
  }
  return "";
}

std::string random_hex_prefix() {
  std::random_device entropy;
  const uint64_t bits = (uint64_t{entropy()} << 32) | entropy();
  char text[17];
  std::snprintf(text, sizeof text, "%016llx", static_cast<unsigned long long>(bits));
  return text;
}

double seconds_since(Clock::time_point start, Clock::time_point now) {
  return std::chrono::duration<double>(now - start).count();
}

bool is_success(const Options& options, int status) {
  return options.expect_status ? status == *options.expect_status : status >= 200 && status < 300;
}

// What the connections of a run share.
struct RunContext {
  const Options& options;
  const BodyTemplate& body;
  Schedule schedule;
  std::string idempotency_key_prefix;
  FirstErrorReporter first_error{};
  // Held by a connection while it sends its first request, which opens it: cpp-httplib listens
  // with a backlog of 5, and dozens of connections opening at once overflow it; the kernel then
  // drops handshakes, seen as 1 s stalls and "Read" errors on first requests.
  std::timed_mutex opening_connection{};
  std::atomic<size_t> next_path{0};  // into options.paths
};

// One connection's closed loop: send, wait for the answer, record, repeat until the deadline.
void run_connection(RunContext& context, int connection, httplib::Client& client,
                    ConnectionResult& result) {
  const Options& options = context.options;
  const Schedule& schedule = context.schedule;
  httplib::Headers headers = options.headers;
  const auto idempotency_key =
      options.unique_idempotency_key ? headers.emplace("Idempotency-Key", "") : headers.end();
  const std::string key_prefix =
      context.idempotency_key_prefix + "-" + std::to_string(connection) + "-";
  const bool renders_body = context.body.placeholder_count() > 0;
  std::string rendered_body;
  const std::string& request_body = renders_body ? rendered_body : options.body_template;
  result.latencies_us.reserve(
      static_cast<size_t>(options.duration_s * kReservedRequestsPerConnectionSecond));

  for (uint64_t sequence = 0;; ++sequence) {
    std::unique_lock opening_turn(context.opening_connection, std::defer_lock);
    if (sequence == 0 && !opening_turn.try_lock_until(schedule.deadline)) break;
    if (Clock::now() >= schedule.deadline) break;
    if (options.unique_idempotency_key) {
      idempotency_key->second = key_prefix + std::to_string(sequence);
    }
    if (renders_body) {
      // Unique across connections: connection c sends c, c + N, c + 2N, ...
      context.body.render(sequence * options.connections + connection, rendered_body);
    }

    const std::string* path = &options.path;
    if (!options.paths.empty()) {
      const size_t index = context.next_path.fetch_add(1);
      if (index >= options.paths.size()) {
        ++result.errors;
        context.first_error.report(
            seconds_since(schedule.start, Clock::now()), connection, sequence,
            "--path-file ran out after " + std::to_string(options.paths.size()) +
                " paths; give it more");
        break;
      }
      path = &options.paths[index];
    }
    const auto sent_at = Clock::now();
    const httplib::Result response =
        options.method == "GET" ? client.Get(*path, headers)
                                : client.Post(*path, headers, request_body, options.content_type);
    const auto answered_at = Clock::now();
    if (answered_at >= schedule.deadline) break;  // cut by the deadline: not counted either way

    if (!response) {
      ++result.errors;
      context.first_error.report(seconds_since(schedule.start, answered_at), connection, sequence,
                                 "no response: " + httplib::to_string(response.error()));
      std::this_thread::sleep_for(kPauseAfterTransportError);
      continue;
    }
    if (!is_success(options, response->status)) {
      ++result.errors;
      context.first_error.report(seconds_since(schedule.start, answered_at), connection, sequence,
                                 "status " + std::to_string(response->status) + ", body: " +
                                     response->body.substr(0, kErrorBodyPrintedBytesMax));
      continue;
    }
    if (answered_at >= schedule.measure_start) {
      const auto latency_us =
          std::chrono::duration_cast<std::chrono::microseconds>(answered_at - sent_at).count();
      result.latencies_us.push_back(static_cast<uint32_t>(latency_us));
    }
  }
}

// Nearest-rank percentile of ascending `sorted` (empty: 0).
uint32_t percentile(const std::vector<uint32_t>& sorted, double fraction) {
  if (sorted.empty()) return 0;
  const auto rank = static_cast<size_t>(std::ceil(fraction * static_cast<double>(sorted.size())));
  return sorted[std::clamp<size_t>(rank, 1, sorted.size()) - 1];
}

Clock::duration to_clock_duration(double seconds) {
  return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
}

int run(const Options& options) {
  const BodyTemplate body(options.body_template, options.unique_field);
  if (options.unique_field.empty() && options.body_template.find("{{") != std::string::npos) {
    std::fprintf(stderr,
                 "crm_load: note: the body has a {{...}} placeholder but no --unique-field; "
                 "it is sent as it is\n");
  }

  std::vector<std::unique_ptr<httplib::Client>> clients;
  for (int i = 0; i < options.connections; ++i) {
    auto client = std::make_unique<httplib::Client>(options.host, options.port);
    client->set_tcp_nodelay(true);
    client->set_keep_alive(true);
    client->set_connection_timeout(kConnectTimeoutSeconds);
    client->set_read_timeout(kReadWriteTimeoutSeconds);
    client->set_write_timeout(kReadWriteTimeoutSeconds);
    clients.push_back(std::move(client));
  }

  Schedule schedule;
  schedule.start = Clock::now();
  schedule.measure_start = schedule.start + to_clock_duration(options.warmup_s);
  schedule.deadline = schedule.measure_start + to_clock_duration(options.duration_s);
  RunContext context{options, body, schedule, random_hex_prefix()};

  std::vector<ConnectionResult> results(options.connections);
  std::mutex finished_mutex;
  std::condition_variable finished_changed;
  int finished_connections = 0;
  std::vector<std::thread> threads;
  for (int i = 0; i < options.connections; ++i) {
    threads.emplace_back([&, i] {
      run_connection(context, i, *clients[i], results[i]);
      std::lock_guard lock(finished_mutex);
      ++finished_connections;
      finished_changed.notify_one();
    });
  }
  {
    std::unique_lock lock(finished_mutex);
    finished_changed.wait_until(lock, schedule.deadline + kStopGrace,
                                [&] { return finished_connections == options.connections; });
  }
  // Cuts any request still in flight (its thread then sees the deadline passed and ends).
  for (auto& client : clients) client->stop();
  for (auto& thread : threads) thread.join();

  std::vector<uint32_t> latencies_us;
  uint64_t errors = 0;
  for (auto& result : results) {
    latencies_us.insert(latencies_us.end(), result.latencies_us.begin(), result.latencies_us.end());
    errors += result.errors;
  }
  std::sort(latencies_us.begin(), latencies_us.end());
  const uint64_t requests = latencies_us.size();
  const double seconds = seconds_since(schedule.measure_start, schedule.deadline);
  const auto rps = static_cast<uint64_t>(std::llround(static_cast<double>(requests) / seconds));
  const uint32_t p50_us = percentile(latencies_us, 0.50);
  const uint32_t p99_us = percentile(latencies_us, 0.99);
  const uint32_t p999_us = percentile(latencies_us, 0.999);
  const uint32_t max_us = latencies_us.empty() ? 0 : latencies_us.back();

  std::printf(
      "crm_load: %s %s on %s:%d, %d connections, %.1f s after %.1f s warmup: %llu requests "
      "(%llu/s), %llu errors; latency p50 %u us, p99 %u us, p99.9 %u us, max %u us\n",
      options.method.c_str(), options.path.c_str(), options.host.c_str(), options.port,
      options.connections, seconds, options.warmup_s, static_cast<unsigned long long>(requests),
      static_cast<unsigned long long>(rps), static_cast<unsigned long long>(errors), p50_us, p99_us,
      p999_us, max_us);
  std::printf(
      "RESULT requests=%llu errors=%llu seconds=%.3f rps=%llu p50_us=%u p99_us=%u p999_us=%u "
      "max_us=%u\n",
      static_cast<unsigned long long>(requests), static_cast<unsigned long long>(errors), seconds,
      static_cast<unsigned long long>(rps), p50_us, p99_us, p999_us, max_us);
  std::fflush(stdout);
  if (requests == 0) std::fprintf(stderr, "crm_load: no request succeeded after the warmup\n");
  return errors > 0 || requests == 0 ? 1 : 0;
}

}  // namespace
}  // namespace crm::bench

int main(int argc, char** argv) {
  using namespace crm::bench;
  return program_main<Options>(argc, argv, "crm_load", kUsage, parse_options,
                               [](const Options& options) {
                                 // A server closing the connection must show up as an error, not
                                 // kill the run.
                                 signal(SIGPIPE, SIG_IGN);
                                 return run(options);
                               });
}
