#include "ops/app.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <limits>

#include "events/codec.h"
#include "ops/logging.h"
#include "projections/approvals_view.h"
#include "projections/audit_view.h"
#include "projections/customers_view.h"
#include "projections/notifications_view.h"
#include "projections/orders_view.h"
#include "projections/tasks_view.h"
#include "workflow/aggregate_handler.h"

namespace crm {
namespace {

// Writes `content` to `path` atomically and durably, readable by the owner only.
Status write_secret_file(const std::string& path, const std::string& content) {
  const std::string temporary = path + ".tmp";
  int fd = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return Status::unavailable("cannot create " + temporary);
  bool ok = ::write(fd, content.data(), content.size()) == static_cast<ssize_t>(content.size()) &&
            ::fsync(fd) == 0;
  ok = ::close(fd) == 0 && ok;
  if (!ok || ::rename(temporary.c_str(), path.c_str()) != 0)
    return Status::unavailable("cannot write " + path);
  return Status::ok();
}

Status prepare_data_dir(const std::string& data_dir) {
  std::error_code error;
  std::filesystem::create_directories(data_dir, error);
  if (error)
    return Status::unavailable("cannot create data directory " + data_dir + ": " + error.message());
  return Status::ok();
}

}  // namespace

std::vector<std::unique_ptr<ReadModel>> all_read_models() {
  std::vector<std::unique_ptr<ReadModel>> models;
  models.push_back(std::make_unique<CustomersView>());
  models.push_back(std::make_unique<OrdersView>());
  models.push_back(std::make_unique<ApprovalsView>());
  models.push_back(std::make_unique<NotificationsView>());
  models.push_back(std::make_unique<TasksView>());
  models.push_back(std::make_unique<AuditView>());
  return models;
}

Result<OfflineLog> open_offline(const std::string& data_dir, uint32_t partitions) {
  if (auto s = prepare_data_dir(data_dir); !s.is_ok()) return s;
  OfflineLog offline;
  StoreOptions options;
  options.path = data_dir + "/db";
  auto store = Store::open(options);
  if (!store.is_ok()) return store.status();
  offline.store = std::move(store.value());
  auto log = RocksDbLog::open(*offline.store, partitions);
  if (!log.is_ok()) return log.status();
  offline.log = std::move(log.value());
  return offline;
}

Result<std::unique_ptr<App>> App::open(const AppConfig& config, const Clock& clock, IdSource& ids) {
  std::unique_ptr<App> app(new App());
  // A certificate that does not load stops the start before anything is written.
  if (auto error = api::tls_setup_error(config.http); !error.empty())
    return Status::invalid_argument(error);
  if (auto s = prepare_data_dir(config.data_dir); !s.is_ok()) return s;
  app->metrics_ = std::make_unique<Metrics>();
  StoreOptions store_options;
  store_options.metrics = app->metrics_.get();
  store_options.path = config.data_dir + "/db";
  store_options.sync_writes = config.sync_writes;
  store_options.block_cache_bytes = config.block_cache_bytes;
  store_options.memtable_bytes_max = config.memtable_bytes_max;
  store_options.idempotency_retention_us = config.processor.idempotency_retention_us;
  store_options.clock = &clock;
  auto store = Store::open(store_options);
  if (!store.is_ok()) return store.status();
  app->store_ = std::move(store.value());
  ProcessorOptions processor = config.processor;
  processor.metrics = app->metrics_.get();
  if (config.event_log == AppConfig::EventLogKind::kKafka) {
    KafkaLogOptions kafka = config.kafka_log;
    kafka.client = {config.inbound.brokers, config.inbound.kafka_settings,
                    config.inbound.connect_timeout};
    kafka.replication_factor = config.inbound.replication_factor;
    if (config.kafka_owners_by_group) {  // the group hands partitions over once serving
      kafka.owns_all = false;
      kafka.owned.clear();
    }
    auto log = KafkaLog::open(*app->store_, config.partitions, kafka);
    if (!log.is_ok()) return log.status();
    app->kafka_log_ = log.value().get();
    app->log_ = std::move(log.value());
    // An append is one Kafka transaction whose last record carries the side writes of all its
    // commands: fewer commands a step keep that record well below Kafka's message size limit.
    processor.batch_max = std::min<size_t>(processor.batch_max, 64);
    // Each partition's append is a transaction of its own producer, committed one after the
    // other by a worker: a thread per partition keeps them side by side.
    if (processor.threads == 0) processor.threads = app->log_->partition_count();
    if (processor.threads < app->log_->partition_count()) {
      log_line("warn",
               "fewer processor threads than partitions on the Kafka log: a thread commits its "
               "partitions' transactions one after another, so one slow commit holds up the others",
               {{"processor_threads", std::to_string(processor.threads)},
                {"partitions", std::to_string(app->log_->partition_count())}});
    }
    log_line("info", "event log on Kafka",
             {{"brokers", kafka.client.brokers}, {"topic", kafka.topic}});
  } else {
    auto log = RocksDbLog::open(*app->store_, config.partitions);
    if (!log.is_ok()) return log.status();
    app->log_ = std::move(log.value());
  }
  // The embedded log writes a worker's partitions with one fsync: one worker suits a few cores.
  if (processor.threads == 0) processor.threads = 1;
  app->engine_ = std::make_unique<Engine>(*app->log_, *app->store_, clock, ids, processor);
  if (app->kafka_log_) {
    // Reference data and principals another instance changed reach this one through
    // crm.events (their state is stored with the events before this is called).
    app->kafka_log_->set_on_replicated(
        [raw = app.get()](uint32_t, const std::vector<RocksDbLog::Replicated>& batch) {
          for (const auto& replicated : batch) {
            const auto& event = replicated.event;
            raw->engine_->reference().refresh(event.stream_id());
            if (event.stream_type() != kPrincipalStream) continue;
            auto principal = raw->engine_->read(kPrincipalStream, event.stream_id());
            if (principal.is_ok())
              raw->principals_.update(static_cast<const principal::Principal&>(*principal->state));
          }
        });
    CommandBusOptions bus = config.kafka_bus;
    bus.client = {config.inbound.brokers, config.inbound.kafka_settings,
                  config.inbound.connect_timeout};
    bus.replication_factor = config.inbound.replication_factor;
    bus.use_group = config.kafka_owners_by_group;
    bus.owns_all = config.kafka_log.owns_all;
    bus.owned = config.kafka_log.owned;
    auto started = CommandBus::start(bus, *app->engine_, *app->kafka_log_);
    if (!started.is_ok()) return started.status();
    app->bus_ = std::move(started.value());
    app->engine_->set_forwarder(
        [raw = app->bus_.get()](events::CommandEnvelope command, uint32_t partition) {
          return raw->forward(std::move(command), partition);
        });
  }
  app->engine_->start_timers(config.timer_interval, config.digest_interval);
  app->projector_ = std::make_unique<Projector>(*app->log_, *app->store_, all_read_models());
  if (auto s = app->projector_->open(); !s.is_ok()) return s;
  app->projector_->start();
  if (auto s = app->principals_.load(*app->store_); !s.is_ok()) return s;
  if (auto s = app->ensure_admin(config, clock, ids); !s.is_ok()) return s;
  api::ServerOptions http = config.http;
  http.metrics = app->metrics_.get();
  app->add_metric_collectors(clock);
  if (!http.request_log) {
    http.request_log = [](const api::RequestRecord& r) {
      log_line(r.status >= 500   ? "error"
               : r.status >= 400 ? "warn"
                                 : "info",
               "request",
               {{"method", r.method},
                {"path", r.path},
                {"status", std::to_string(r.status)},
                {"request_id", r.request_id},
                {"correlation_id", r.correlation_id},
                {"principal", r.principal},
                {"duration_us", std::to_string(r.duration_us)}});
    };
  }
  app->server_ = std::make_unique<api::Server>(*app->engine_, *app->projector_, app->principals_,
                                               clock, ids, std::move(http));
  if (!config.inbound.brokers.empty()) {
    auto inbound =
        InboundConsumer::start(config.inbound, *app->engine_, clock, ids, app->metrics_.get());
    if (!inbound.is_ok()) return inbound.status();
    app->inbound_ = std::move(inbound.value());
    log_line("info", "consuming inbound commands",
             {{"brokers", config.inbound.brokers},
              {"topic", config.inbound.topic},
              {"rejected_topic", config.inbound.rejected_topic}});
  }
  return app;
}

void App::add_metric_collectors(const Clock& clock) {
  metrics_->add_collector([this](Metrics& m) {
    for (uint32_t p = 0; p < log_->partition_count(); ++p) {
      const prometheus::Labels partition = {{"partition", std::to_string(p)}};
      m.gauge("crm_log_end_offset", "Events in each partition of the log", partition)
          .Set(static_cast<double>(log_->end_offset(p)));
      m.gauge("crm_partition_commands_queued",
              "Commands waiting for each partition's processor (429 beyond --inflight-max)",
              partition)
          .Set(static_cast<double>(engine_->queue_depth(p)));
    }
    m.gauge("crm_projection_lag_events", "Events written to the log but not yet in the read models")
        .Set(static_cast<double>(projector_->lag()));
    m.gauge("crm_projection_up", "1 while the projections apply events, 0 after they stopped")
        .Set(projector_->failure().is_ok() ? 1 : 0);
    m.gauge("crm_principals", "Principals with a valid token").Set(principals_.size());
    if (kafka_log_) {
      m.gauge("crm_kafka_log_lag_records",
              "Records of crm.events committed but not yet in this instance's local copy")
          .Set(static_cast<double>(kafka_log_->lag()));
      m.gauge("crm_kafka_log_following",
              "1 while this instance follows crm.events, 0 after it stopped (see the log)")
          .Set(kafka_log_->follower_status().is_ok() ? 1 : 0);
    }
    if (inbound_) {
      m.gauge("crm_inbound_consumer_lag",
              "Records of the inbound topic not yet handled, over the assigned partitions")
          .Set(static_cast<double>(inbound_->lag()));
    }
  });
  // Counting pending approvals and open tasks walks their indexes: at most every 10 s.
  // Two scrapes at once: one of them counts, the other keeps the last counts.
  auto last_us = std::make_shared<std::atomic<int64_t>>(std::numeric_limits<int64_t>::min());
  metrics_->add_collector([this, &clock, last_us](Metrics& m) {
    const int64_t now_us = std::chrono::duration_cast<std::chrono::microseconds>(
                               std::chrono::steady_clock::now().time_since_epoch())
                               .count();
    int64_t last = last_us->load();
    if (last != std::numeric_limits<int64_t>::min() && now_us - last < 10'000'000) return;
    if (!last_us->compare_exchange_strong(last, now_us)) return;
    if (auto approvals = count_pending_approvals(*store_, clock.now_us()); approvals.is_ok()) {
      m.gauge("crm_approvals_pending", "Approval steps waiting for a decision")
          .Set(static_cast<double>(approvals->pending));
      m.gauge("crm_approvals_overdue", "Pending approval steps past their time limit")
          .Set(static_cast<double>(approvals->overdue));
    }
    if (auto tasks = count_open_tasks(*store_); tasks.is_ok()) {
      m.gauge("crm_tasks_open", "Follow-up tasks open").Set(static_cast<double>(tasks->open));
      m.gauge("crm_tasks_overdue", "Open follow-up tasks past their due time")
          .Set(static_cast<double>(tasks->overdue));
    }
  });
}

Status App::ensure_admin(const AppConfig& config, const Clock& clock, IdSource& ids) {
  if (principals_.size() > 0) return Status::ok();
  // The token file is written before the principal is committed: a crash in between leaves
  // no principal, and the next start issues a new token.
  const std::string token = api::Principals::new_token();
  const std::string path = config.data_dir + "/" + kAdminTokenFile;
  if (auto s = write_secret_file(path, token + "\n"); !s.is_ok()) return s;

  events::CommandEnvelope command;
  command.set_command_id(ids.next("cmd_"));
  command.set_stream_type(kPrincipalStream);
  command.set_stream_id(principal_stream_id("admin"));
  command.set_partition_key("admin");
  command.mutable_actor()->set_principal_id("system");
  command.mutable_actor()->set_role("system");
  command.set_correlation_id(command.command_id());
  *command.mutable_issued_at() = timestamp_from_us(clock.now_us());
  auto* upsert = command.mutable_upsert_principal();
  upsert->mutable_request()->add_roles("admin");
  upsert->mutable_request()->set_display_name("Administrator");
  upsert->set_token_hash(api::Principals::token_hash(token));
  auto outcome = engine_->submit(std::move(command)).get();
  if (!outcome.status.is_ok()) return outcome.status;
  if (outcome.rejection)
    return Status::internal("admin principal refused: " + outcome.rejection->message);
  principals_.update(static_cast<const principal::Principal&>(*outcome.state));
  admin_token_ = token;
  log_line("info", "created the admin principal; its bearer token is in " + path,
           {{"token_file", path}});
  return Status::ok();
}

void App::stop() {
  // A second caller (the signal thread and main) waits until the first has finished.
  std::lock_guard lock(stop_mu_);
  if (stopped_.exchange(true)) return;
  if (server_) server_->stop();
  if (inbound_) inbound_->stop();
  if (bus_) bus_->stop();  // answers the forwarded commands in hand, leaves the group
  // Before the engine goes: what the follower calls (reference data, principals) lives there.
  if (kafka_log_) kafka_log_->stop_following();
  if (engine_) engine_->shutdown();
  if (projector_) projector_->stop();
  if (store_) {
    auto stats = store_->group_commit_stats();
    log_line("info", "group commit totals",
             {{"durable_writes", std::to_string(stats.requests)},
              {"synced_batches", std::to_string(stats.batches)}});
  }
}

App::~App() {
  stop();
  server_.reset();
  inbound_.reset();
  bus_.reset();
  projector_.reset();
  engine_.reset();
  log_.reset();
  store_.reset();
}

}  // namespace crm
