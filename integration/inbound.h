// Inbound integration over Kafka (API.md, "Kafka"): integrating systems publish commands to
// `crm.inbound`; each valid record is applied exactly once, each invalid one lands in
// `crm.rejected` with its original key, headers, partition and offset and the reason, and the
// consumer moves on: nothing is dropped silently and a poison record never blocks its partition.
//
// Exactly once: a record's command carries an idempotency key — the record's `idempotency-key`
// header, or else its topic, partition and offset — which the partition processor stores in the
// same atomic step as the command's events. Offsets are committed to Kafka after the outcome
// (applied, or produced to crm.rejected and acknowledged); a record delivered again after a crash
// is answered from the idempotency table and applies nothing.
#pragma once

#include <atomic>
#include <chrono>
#include <future>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <variant>
#include <vector>

#include "events/clock.h"
#include "events/metrics.h"
#include "events/status.h"
#include "integration/inbound_record.h"
#include "workflow/engine.h"

namespace crm {

struct InboundOptions {
  std::string brokers;  // host:port,...; empty: no Kafka
  std::string topic = "crm.inbound";
  std::string rejected_topic = "crm.rejected";
  std::string group = "crm-inbound";
  int topic_partitions = 8;  // for topics created because they were missing
  int replication_factor = 3;
  // Passed to librdkafka as they are (security.protocol, sasl.*, ssl.*, …).
  std::map<std::string, std::string> kafka_settings;
  std::chrono::milliseconds command_timeout{30000};
  std::chrono::milliseconds connect_timeout{10000};  // to reach the brokers at start
};

class InboundConsumer {
 public:
  // Reaches the brokers (a clear error when it cannot within connect_timeout), creates the
  // topics that are missing, and starts consuming on a thread of its own.
  static Result<std::unique_ptr<InboundConsumer>> start(const InboundOptions& options,
                                                        Engine& engine, const Clock& clock,
                                                        IdSource& ids, Metrics* metrics);
  ~InboundConsumer();
  // Finishes the record in hand, commits what was done, and closes the consumer.
  void stop();

  struct Counts {
    uint64_t applied = 0;
    uint64_t repeated = 0;
    uint64_t rejected = 0;
  };
  Counts counts() const;
  // Records published to the inbound topic but not yet handled, over the assigned partitions.
  int64_t lag() const { return lag_.load(); }

 private:
  struct Kafka;
  InboundConsumer(const InboundOptions& options, Engine& engine, const Clock& clock, IdSource& ids,
                  Metrics* metrics);
  // One record between its poll and its commit.
  struct InFlight {
    InboundRecord record;
    std::optional<InboundRefusal> refusal;  // refused before it reached the engine
    std::future<CommandOutcome> outcome;    // submitted (invalid: to submit again)
    int attempts = 0;
  };
  void run();
  void measure_lag();
  // Parses the record and submits its command, or notes why it is refused.
  void submit(InFlight& flight);
  // Counts the outcome or rejects the record; false when the engine could not take it now.
  bool finish(InFlight& flight);
  Status reject(const InboundRecord& record, const InboundRefusal& refusal);

  InboundOptions options_;
  Engine& engine_;
  const Clock& clock_;
  IdSource& ids_;
  Metrics* metrics_;
  std::unique_ptr<Kafka> kafka_;
  std::atomic<bool> stopping_{false};
  std::atomic<uint64_t> applied_{0}, repeated_{0}, rejected_{0};
  std::atomic<int64_t> lag_{0};
  std::thread thread_;
};

}  // namespace crm
