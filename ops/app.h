// The engine assembled: store, log, write side, projections, principals and HTTP server, in
// the order they must start and the reverse order they must stop. Used by `crm serve`, by the
// other subcommands, and by the tests (which start it on port 0).
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>

#include "api/server.h"
#include "events/rocksdb_log.h"
#include "events/rocksdb_store.h"
#include "integration/command_bus.h"
#include "integration/inbound.h"
#include "integration/kafka_log.h"
#include "projections/projector.h"
#include "workflow/engine.h"

namespace crm {

// The admin token file in a data directory, written on first start.
inline constexpr char kAdminTokenFile[] = "admin.token";

struct AppConfig {
  std::string data_dir = "./data";
  uint32_t partitions = 0;  // 0: the data directory's own (8 when it is created)
  api::ServerOptions http;
  ProcessorOptions processor;
  bool sync_writes = true;
  // Memory: RocksDB's block cache, and its memtables (charged to the block cache).
  size_t block_cache_bytes = StoreOptions().block_cache_bytes;
  size_t memtable_bytes_max = StoreOptions().memtable_bytes_max;
  std::chrono::milliseconds timer_interval{1000};        // how often due timers are looked for
  std::chrono::milliseconds digest_interval{3'600'000};  // the log's digest; 0: never
  InboundOptions inbound;  // commands from Kafka when inbound.brokers is set
  // The event log: embedded (RocksDB, the default) or on Kafka (crm.events; the brokers and
  // settings of `inbound`).
  enum class EventLogKind { kEmbedded, kKafka };
  EventLogKind event_log = EventLogKind::kEmbedded;
  KafkaLogOptions kafka_log;          // owns_all/owned: the fixed partitions when not by group
  bool kafka_owners_by_group = true;  // partitions owned through the group crm-owners
  CommandBusOptions kafka_bus;        // its topics and group (the rest comes from above)
};

class App {
 public:
  // Opens the data directory (creating it on first start) and starts the write side and the
  // projections. On first start with no principals it creates the admin principal and writes
  // its token to <data_dir>/admin.token.
  static Result<std::unique_ptr<App>> open(const AppConfig& config, const Clock& clock,
                                           IdSource& ids);
  ~App();

  // Binds the HTTP port (returns it, -1 on failure); serve() blocks until stop().
  int bind() { return server_->bind(); }
  void serve() { server_->serve(); }
  // Graceful stop: no new requests, queued commands finish, projections stop, log closes.
  void stop();

  Engine& engine() { return *engine_; }
  Projector& projector() { return *projector_; }
  Store& store() { return *store_; }
  EventLog& log() { return *log_; }
  api::Principals& principals() { return principals_; }
  Metrics& metrics() { return *metrics_; }
  InboundConsumer* inbound() { return inbound_.get(); }
  const std::string& admin_token() const { return admin_token_; }

 private:
  App() = default;
  Status ensure_admin(const AppConfig& config, const Clock& clock, IdSource& ids);

  void add_metric_collectors(const Clock& clock);

  std::unique_ptr<Metrics> metrics_;  // first: every part below records into it
  std::unique_ptr<Store> store_;
  std::unique_ptr<EventLog> log_;
  KafkaLog* kafka_log_ = nullptr;  // log_, when the log is on Kafka
  std::unique_ptr<Engine> engine_;
  std::unique_ptr<Projector> projector_;
  api::Principals principals_;
  std::unique_ptr<api::Server> server_;
  std::unique_ptr<CommandBus> bus_;  // with the log on Kafka
  std::unique_ptr<InboundConsumer> inbound_;
  std::string admin_token_;  // only when created by this start
  std::mutex stop_mu_;
  std::atomic<bool> stopped_{false};
};

// The read models this engine keeps.
std::vector<std::unique_ptr<ReadModel>> all_read_models();

// Opens store + log only (no processors): for offline tools such as replay.
struct OfflineLog {
  std::unique_ptr<Store> store;
  std::unique_ptr<RocksDbLog> log;
};
Result<OfflineLog> open_offline(const std::string& data_dir, uint32_t partitions);

}  // namespace crm
