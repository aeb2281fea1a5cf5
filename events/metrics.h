// The engine's Prometheus metrics (prometheus-cpp's core registry), served as text at
// GET /metrics. Each part of the engine takes a Metrics* that may be null (tests, offline
// tools): then it records nothing. Gauges that describe state (log ends, projection lag,
// pending approvals, open tasks) are set at scrape time by the collectors the App registers.
#pragma once

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <functional>
#include <mutex>
#include <string>
#include <vector>

namespace crm {

class Metrics {
 public:
  Metrics();

  // A command's outcome (accepted, rejected, repeated, failed, overloaded) and how long it took
  // from queueing to its durable reply.
  void command_done(const std::string& type, const char* outcome, double seconds);
  // A command refused before it was queued (the partition's bound): counted, not timed.
  void command_refused(const std::string& type);
  // One synced write of the group commit: how many durable requests shared it, how long it took.
  void group_commit(uint64_t requests, double seconds);
  void aggregate_cache(bool hit);
  // One record of crm.inbound handled: applied, repeated or rejected.
  void inbound_record(const char* outcome);
  // One answered HTTP request; `route` is the route's template (/v1/customers/{id}).
  void http_request(const std::string& route, const std::string& method, int status,
                    double seconds);

  // A gauge the collectors set at scrape time.
  prometheus::Gauge& gauge(const std::string& name, const std::string& help,
                           const prometheus::Labels& labels = {});
  // Runs before each scrape, to set gauges from the engine's state.
  void add_collector(std::function<void(Metrics&)> collector);

  // Prometheus text exposition format 0.0.4.
  std::string scrape();

 private:
  prometheus::Registry registry_;
  prometheus::Family<prometheus::Counter>& commands_;
  prometheus::Family<prometheus::Histogram>& command_seconds_;
  prometheus::Histogram& batch_requests_;
  prometheus::Histogram& fsync_seconds_;
  prometheus::Counter& cache_hits_;
  prometheus::Counter& cache_misses_;
  prometheus::Family<prometheus::Counter>& inbound_records_;
  prometheus::Family<prometheus::Counter>& http_requests_;
  prometheus::Family<prometheus::Histogram>& http_seconds_;

  std::mutex mu_;  // gauges' families and the collectors
  std::vector<std::pair<std::string, prometheus::Family<prometheus::Gauge>*>> gauges_;
  std::vector<std::function<void(Metrics&)>> collectors_;
};

}  // namespace crm
