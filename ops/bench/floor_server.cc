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
// them as one synced WriteBatch, then answers them (as the engine's processor worker does: one
// hand-off there and one back); direct: each HTTP thread writes its
// own synced batch and RocksDB's write thread groups them. --json off echoes the body instead
// of parsing and printing it; --write off writes nothing: each alone shows one piece's share.
#include <httplib.h>
#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <rocksdb/write_batch.h>

#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <ctime>
#include <deque>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "api/json.h"
#include "customer.pb.h"
#include "events/codec.h"
#include "ops/bench/bench_server.h"

namespace crm::bench {
namespace {

constexpr char kUsage[] =
    "usage: crm_floor_server --data-dir DIR [--listen HOST:PORT (127.0.0.1:18080)]"
    " [--threads N (256)] [--writer queue|direct] [--json on|off] [--write on|off]\n";

struct Options {
  ServerFlags server;
  std::string data_dir;
  bool queue_writer = true;
  bool json = true;   // --json off: the body is neither parsed nor printed (echoed back)
  bool write = true;  // --write off: nothing is written
};

std::string parse_options(int argc, char** argv, Options& options) {
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (i + 1 >= argc) return "flag " + flag + " needs a value (or is unknown)";
    const std::string value = argv[++i];
    std::string error;
    if (options.server.take(flag, value, &error)) {
      if (!error.empty()) return error;
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
  const sigset_t stop_signals = block_stop_signals();
  rocksdb::Options db_options;
  db_options.create_if_missing = true;
  db_options.enable_write_thread_adaptive_yield = false;  // as the engine (events/rocksdb_store.cc)
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
  tune_like_the_engine(server, options.server.threads);
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

    rocksdb::Status status;
    if (options.write) {
      std::string log_key;
      put_u64_be(log_key, n);
      GroupCommitWriter::Puts puts;
      puts.emplace_back(std::move(log_key), body.SerializeAsString());
      puts.emplace_back("state/" + customer.id(), customer.SerializeAsString());
      puts.emplace_back("idempotency/" + request.get_header_value("Idempotency-Key"),
                        customer.id());
      if (writer) {
        status = writer->write(std::move(puts));
      } else {
        rocksdb::WriteBatch batch;
        for (auto& [key, value] : puts) batch.Put(key, value);
        rocksdb::WriteOptions synced;
        synced.sync = true;
        status = db->Write(synced, &batch);
      }
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

  const std::string details = std::to_string(options.server.threads) + " threads, " +
                              (options.queue_writer ? "queue" : "direct") + " writer";
  const int status = serve_until_stopped(server, stop_signals, options.server.host,
                                         options.server.port, "crm_floor_server", details);
  writer.reset();
  return status;
}

}  // namespace
}  // namespace crm::bench

int main(int argc, char** argv) {
  using namespace crm::bench;
  return program_main<Options>(argc, argv, "crm_floor_server", kUsage, parse_options, serve);
}
