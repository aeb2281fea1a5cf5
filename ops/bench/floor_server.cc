// crm_floor_server: the least a durable registration can cost with the pieces issue 2 requires,
// and nothing of the engine around them. ops/bench/floor_bench.sh runs it between the echo
// server and `crm serve` to show how much of the gap between them those pieces alone take.
//   POST /v1/customers  the body parsed into RegisterCustomer through protobuf's JSON util (the
//                       engine's api::parse_json), a Customer built from it, its bytes, its state
//                       and its Idempotency-Key written to RocksDB in a synced WriteBatch, and the
//                       Customer printed back through protobuf's JSON util (api::to_json); 201
//   GET  /healthz       200
// No authentication, envelope, hash chain, stream index, read models or checks: each is a cost
// the engine adds on top of this floor.
//
//   crm_floor_server --data-dir DIR [--listen 127.0.0.1:18080] [--threads 256]
//                    [--writer queue|direct] [--json on|off] [--write on|off]
// --writer queue (the default): one writer thread takes every waiting request's batch and writes
// them as one synced WriteBatch (the engine's group commit); direct: each HTTP thread writes its
// own synced batch and RocksDB's write thread groups them. --json off echoes the body instead
// of parsing and printing it; --write off writes nothing: each alone shows one piece's share.
#include <httplib.h>
#include <pthread.h>
#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <rocksdb/write_batch.h>
#include <signal.h>

#include <atomic>
#include <charconv>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "api/json.h"
#include "customer.pb.h"

namespace crm::bench {
namespace {

constexpr char kUsage[] =
    "usage: crm_floor_server --data-dir DIR [--listen HOST:PORT (127.0.0.1:18080)]"
    " [--threads N (256)] [--writer queue|direct] [--json on|off] [--write on|off]\n";

// The same settings as the engine's api/server.cc and the echo server.
constexpr size_t kKeepAliveRequestsMax = 1000000;
constexpr time_t kKeepAliveTimeoutSeconds = 30;
constexpr time_t kReadWriteTimeoutSeconds = 30;
constexpr size_t kBodyBytesMax = 1 << 20;

struct Options {
  std::string host = "127.0.0.1";
  int port = 18080;
  int threads = 256;
  std::string data_dir;
  bool queue_writer = true;
  bool json = true;   // --json off: the body is neither parsed nor printed (echoed back)
  bool write = true;  // --write off: nothing is written
};

bool parse_integer(const std::string& text, int min, int max, int* out) {
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), *out);
  return error == std::errc() && end == text.data() + text.size() && *out >= min && *out <= max;
}

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
    } else if (flag == "--data-dir") {
      options.data_dir = value;
    } else if (flag == "--writer") {
      if (value != "queue" && value != "direct") return "--writer must be queue or direct";
      options.queue_writer = value == "queue";
    } else if (flag == "--json" || flag == "--write") {
      if (value != "on" && value != "off") return flag + " must be on or off";
      (flag == "--json" ? options.json : options.write) = value == "on";
    } else {
      return "unknown flag " + flag;
    }
  }
  if (options.data_dir.empty()) return "--data-dir is required";
  return "";
}

// One thread writes whatever batches are waiting as one synced WriteBatch, then answers them.
class GroupCommitWriter {
 public:
  explicit GroupCommitWriter(rocksdb::DB* db) : db_(db), thread_([this] { run(); }) {}
  ~GroupCommitWriter() {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
    }
    wake_.notify_one();
    thread_.join();
  }

  using Puts = std::vector<std::pair<std::string, std::string>>;

  rocksdb::Status write(Puts puts) {
    Pending pending{std::move(puts), {}};
    auto done = pending.done.get_future();
    {
      std::lock_guard lock(mu_);
      queue_.push_back(std::move(pending));
    }
    wake_.notify_one();
    return done.get();
  }

 private:
  struct Pending {
    Puts puts;
    std::promise<rocksdb::Status> done;
  };

  void run() {
    rocksdb::WriteOptions synced;
    synced.sync = true;
    std::deque<Pending> taken;
    for (;;) {
      {
        std::unique_lock lock(mu_);
        wake_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
        if (queue_.empty()) return;
        taken.swap(queue_);
      }
      rocksdb::WriteBatch group;
      for (auto& pending : taken) {
        for (auto& [key, value] : pending.puts) group.Put(key, value);
      }
      const rocksdb::Status status = db_->Write(synced, &group);
      for (auto& pending : taken) pending.done.set_value(status);
      taken.clear();
    }
  }

  rocksdb::DB* db_;
  std::mutex mu_;
  std::condition_variable wake_;
  std::deque<Pending> queue_;
  bool stopping_ = false;
  std::thread thread_;
};

int serve(const Options& options) {
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  rocksdb::Options db_options;
  db_options.create_if_missing = true;
  rocksdb::DB* raw_db = nullptr;
  if (auto s = rocksdb::DB::Open(db_options, options.data_dir, &raw_db); !s.ok()) {
    std::fprintf(stderr, "crm_floor_server: %s\n", s.ToString().c_str());
    return 1;
  }
  std::unique_ptr<rocksdb::DB> db(raw_db);
  std::unique_ptr<GroupCommitWriter> writer;
  if (options.queue_writer) writer = std::make_unique<GroupCommitWriter>(db.get());
  std::atomic<uint64_t> sequence{0};

  httplib::Server server;
  const int threads = options.threads;
  server.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  server.set_tcp_nodelay(true);
  server.set_keep_alive_max_count(kKeepAliveRequestsMax);
  server.set_keep_alive_timeout(kKeepAliveTimeoutSeconds);
  server.set_read_timeout(kReadWriteTimeoutSeconds);
  server.set_write_timeout(kReadWriteTimeoutSeconds);
  server.set_payload_max_length(kBodyBytesMax);
  server.Post("/v1/customers", [&](const httplib::Request& request, httplib::Response& response) {
    customer::RegisterCustomer body;
    if (!options.json) {
      body.set_name(request.body);
    } else if (auto error = api::parse_json(request.body, &body)) {
      response.status = 400;
      response.set_content(error->message, "text/plain");
      return;
    }
    const uint64_t n = sequence.fetch_add(1) + 1;
    customer::Customer customer;
    customer.set_id("cus_" + std::to_string(n));
    customer.set_version(1);
    customer.set_name(body.name());
    customer.set_kind(body.kind());
    customer.set_certificate_no(body.certificate_no());
    customer.set_level(body.level());
    customer.set_credit_level(body.credit_level());
    customer.set_region(body.region());
    customer.set_industry(body.industry());
    customer.set_owner_id(body.owner_id());
    customer.set_stage(body.stage());
    customer.mutable_created_at()->set_seconds(static_cast<int64_t>(std::time(nullptr)));

    char log_key[8];
    for (int i = 0; i < 8; ++i) log_key[i] = static_cast<char>(n >> (56 - 8 * i));
    GroupCommitWriter::Puts puts;
    puts.emplace_back(std::string(log_key, sizeof log_key), body.SerializeAsString());
    puts.emplace_back("state/" + customer.id(), customer.SerializeAsString());
    puts.emplace_back("idempotency/" + request.get_header_value("Idempotency-Key"), customer.id());
    rocksdb::Status status;
    if (!options.write) {
      // nothing written: the cost of the JSON alone
    } else if (writer) {
      status = writer->write(std::move(puts));
    } else {
      rocksdb::WriteBatch batch;
      for (auto& [key, value] : puts) batch.Put(key, value);
      rocksdb::WriteOptions synced;
      synced.sync = true;
      status = db->Write(synced, &batch);
    }
    if (!status.ok()) {
      response.status = 503;
      response.set_content(status.ToString(), "text/plain");
      return;
    }
    response.status = 201;
    response.set_content(options.json ? api::to_json(customer) : request.body, "application/json");
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
    std::fprintf(stderr, "crm_floor_server: cannot listen on %s:%d\n", options.host.c_str(),
                 options.port);
    return 1;
  }
  std::thread signal_thread([&] {
    int received_signal = 0;
    sigwait(&stop_signals, &received_signal);
    for (int attempt = 0; attempt < 100 && !server.is_running(); ++attempt) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    server.stop();
  });
  std::printf("listening on %s:%d (%d threads, %s writer)\n", options.host.c_str(), port,
              options.threads, options.queue_writer ? "queue" : "direct");
  std::fflush(stdout);
  const bool served = server.listen_after_bind();
  pthread_kill(signal_thread.native_handle(), SIGTERM);
  signal_thread.join();
  writer.reset();
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
    std::fprintf(stderr, "crm_floor_server: %s\n%s", error.c_str(), crm::bench::kUsage);
    return 2;
  }
  return crm::bench::serve(options);
}
