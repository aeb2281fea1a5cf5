// Commands between instances (ARCHITECTURE.md, "Backends"): with the event log on Kafka, any
// instance takes any HTTP command. One for a partition it does not own goes to `crm.commands`
// (that partition, keyed by the partition key), the owner applies it, and its outcome — accepted
// with version, position and state, refused with the rule, or failed — comes back on
// `crm.results` to the instance that sent it, which answers its caller with it.
//
// Ownership: the owners of crm.commands' partitions in the consumer group `crm-owners` own the
// same partitions of crm.events. On assignment an instance takes each partition (KafkaLog::take:
// fences the earlier owner, catches its copy up) before it reads a command of it; on revocation
// it finishes the commands in hand, answers them, commits, then gives the partitions up.
//
// Exactly once: a forwarded command carries an idempotency key (the caller's, else its command
// id), so a command delivered again to a new owner after a crash is answered from the key table
// (replicated through crm.events) instead of being applied twice. Offsets are committed after
// the outcome was handed to the producer (flushed first on a revocation); an outcome lost in a
// crash leaves its sender to time out, and a caller that sent an Idempotency-Key learns the
// outcome by sending the request again.
#pragma once

#include <atomic>
#include <chrono>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "integration/kafka_client.h"
#include "integration/kafka_log.h"
#include "workflow/engine.h"

namespace crm {

struct CommandBusOptions {
  kafka::ClientOptions client;
  std::string commands_topic = "crm.commands";
  std::string results_topic = "crm.results";
  std::string group = "crm-owners";
  int replication_factor = 3;
  // Ownership through the consumer group; when false, the partitions `owned` (all when
  // owns_all), fixed.
  bool use_group = true;
  bool owns_all = false;
  std::vector<uint32_t> owned;
  std::chrono::milliseconds timeout{30000};  // for a forwarded command's outcome
  std::string instance_id;                   // results come back to it; random when empty
};

class CommandBus {
 public:
  // Creates the topics when missing, joins the group (or takes the fixed partitions), and starts
  // its threads. The engine's forwarder should be set to forward() after this returns.
  static Result<std::unique_ptr<CommandBus>> start(const CommandBusOptions& options, Engine& engine,
                                                   KafkaLog& log);
  ~CommandBus();
  // Finishes the commands in hand, leaves the group, stops the threads.
  void stop();

  // Sends a command to the owner of `partition`; the future holds its outcome, or kUnavailable
  // when none came within the timeout.
  std::future<CommandOutcome> forward(events::CommandEnvelope command, uint32_t partition);

  // Forwarded commands waiting for their outcome.
  size_t waiting() const;

 private:
  struct Kafka;
  struct Waiting {
    std::promise<CommandOutcome> reply;
    std::chrono::steady_clock::time_point deadline;
  };
  // A command read from crm.commands, being applied here.
  struct InHand {
    int32_t partition;
    int64_t offset;
    std::string reply_to, request_id;
    std::future<CommandOutcome> outcome;
  };

  CommandBus(const CommandBusOptions& options, Engine& engine, KafkaLog& log);
  Status open();
  void own();      // the owner's loop: commands of owned partitions in, outcomes out
  void collect();  // the sender's loop: outcomes of forwarded commands
  void answer(const std::string& request_id, CommandOutcome outcome);
  // Sends the outcomes of the commands in hand that are ready (all of them, waiting, when
  // `wait`), and marks their offsets for the next commit.
  void finish_in_hand(bool wait);
  Status send_outcome(const InHand& command, const CommandOutcome& outcome);
  void retake();

  static void on_rebalance(rd_kafka_t* consumer, rd_kafka_resp_err_t err,
                           rd_kafka_topic_partition_list_t* partitions, void* opaque);
  static void on_delivery(rd_kafka_t*, const rd_kafka_message_t* message, void* opaque);

  CommandBusOptions options_;
  Engine& engine_;
  KafkaLog& log_;
  std::unique_ptr<Kafka> kafka_;
  mutable std::mutex mu_;
  std::map<std::string, Waiting> waiting_;  // by request id
  std::atomic<uint64_t> next_request_{0};
  std::atomic<bool> stopping_{false};
  std::vector<InHand> in_hand_;  // the owner loop's, in arrival order
  std::vector<uint32_t> mine_;   // partitions this instance should own (the owner loop's)
  std::thread owner_;
  std::thread collector_;
};

}  // namespace crm
