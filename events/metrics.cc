#include "events/metrics.h"

#include <prometheus/text_serializer.h>

#include <sstream>

namespace crm {
namespace {

// Seconds, from 100 µs to 10 s: a command's durable reply, an fsync, an HTTP request.
prometheus::Histogram::BucketBoundaries latency_buckets() {
  return {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
          0.05,   0.1,     0.25,   0.5,   1,      2.5,   5,    10};
}

}  // namespace

Metrics::Metrics()
    : commands_(prometheus::BuildCounter()
                    .Name("crm_commands_total")
                    .Help("Commands processed, by command type and outcome (accepted, rejected, "
                          "repeated, failed, overloaded)")
                    .Register(registry_)),
      command_seconds_(prometheus::BuildHistogram()
                           .Name("crm_command_duration_seconds")
                           .Help("From a command's queueing to its durable reply, by command type")
                           .Register(registry_)),
      batch_requests_(prometheus::BuildHistogram()
                          .Name("crm_group_commit_batch_requests")
                          .Help("Durable write requests sharing one synced write")
                          .Register(registry_)
                          .Add({}, prometheus::Histogram::BucketBoundaries{1, 2, 4, 8, 16, 32, 64,
                                                                           128, 256, 512, 1024})),
      fsync_seconds_(prometheus::BuildHistogram()
                         .Name("crm_group_commit_write_seconds")
                         .Help("Duration of one synced write of the group commit (fsync included)")
                         .Register(registry_)
                         .Add({}, latency_buckets())),
      cache_hits_(prometheus::BuildCounter()
                      .Name("crm_aggregate_cache_hits_total")
                      .Help("Aggregates found in the partition processors' memory")
                      .Register(registry_)
                      .Add({})),
      cache_misses_(prometheus::BuildCounter()
                        .Name("crm_aggregate_cache_misses_total")
                        .Help("Aggregates read from the state column family")
                        .Register(registry_)
                        .Add({})),
      inbound_records_(prometheus::BuildCounter()
                           .Name("crm_inbound_records_total")
                           .Help("Records of the inbound Kafka topic handled, by outcome (applied, "
                                 "repeated, rejected)")
                           .Register(registry_)),
      http_requests_(prometheus::BuildCounter()
                         .Name("crm_http_requests_total")
                         .Help("HTTP requests answered, by route, method and status")
                         .Register(registry_)),
      http_seconds_(prometheus::BuildHistogram()
                        .Name("crm_http_request_duration_seconds")
                        .Help("HTTP request handling time, by route and method")
                        .Register(registry_)) {}

void Metrics::command_done(const std::string& type, const char* outcome, double seconds) {
  commands_.Add({{"type", type}, {"outcome", outcome}}).Increment();
  command_seconds_.Add({{"type", type}}, latency_buckets()).Observe(seconds);
}

void Metrics::command_refused(const std::string& type) {
  commands_.Add({{"type", type}, {"outcome", "overloaded"}}).Increment();
}

void Metrics::group_commit(uint64_t requests, double seconds) {
  batch_requests_.Observe(static_cast<double>(requests));
  fsync_seconds_.Observe(seconds);
}

void Metrics::inbound_record(const char* outcome) {
  inbound_records_.Add({{"outcome", outcome}}).Increment();
}

void Metrics::aggregate_cache(bool hit) { (hit ? cache_hits_ : cache_misses_).Increment(); }

void Metrics::http_request(const std::string& route, const std::string& method, int status,
                           double seconds) {
  http_requests_.Add({{"route", route}, {"method", method}, {"status", std::to_string(status)}})
      .Increment();
  http_seconds_.Add({{"route", route}, {"method", method}}, latency_buckets()).Observe(seconds);
}

prometheus::Gauge& Metrics::gauge(const std::string& name, const std::string& help,
                                  const prometheus::Labels& labels) {
  std::lock_guard lock(mu_);
  for (auto& [known, family] : gauges_)
    if (known == name) return family->Add(labels);
  auto& family = prometheus::BuildGauge().Name(name).Help(help).Register(registry_);
  gauges_.emplace_back(name, &family);
  return family.Add(labels);
}

void Metrics::add_collector(std::function<void(Metrics&)> collector) {
  std::lock_guard lock(mu_);
  collectors_.push_back(std::move(collector));
}

std::string Metrics::scrape() {
  std::vector<std::function<void(Metrics&)>> collectors;
  {
    std::lock_guard lock(mu_);
    collectors = collectors_;
  }
  for (auto& collect : collectors) collect(*this);
  std::ostringstream out;
  prometheus::TextSerializer().Serialize(out, registry_.Collect());
  return out.str();
}

}  // namespace crm
