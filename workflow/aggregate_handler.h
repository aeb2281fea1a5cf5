// Adapters between the generic partition processor and each pure aggregate: turn a command
// envelope into the aggregate's command, its events into protobuf messages, and back.
#pragma once

#include <google/protobuf/message.h>

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "aggregates/rejection.h"
#include "approval.pb.h"
#include "catalog.pb.h"
#include "command.pb.h"
#include "events/status.h"
#include "workflow/follow_up_rules.h"

namespace crm {

struct HandlerDecision {
  std::vector<std::unique_ptr<google::protobuf::Message>> events;
  std::optional<Rejection> rejection;
  Status status;  // not ok: the command could not be decided (a read failed); retry later
  // Commands on other streams of the same partition that these events cause (an activated
  // order item changes the customer's product instances). They are decided in the same atomic
  // step; if one is refused, the whole command is, and nothing of it is stored.
  std::vector<events::CommandEnvelope> follow_ups;
};

// What a decision may read besides its own aggregate: the reference data every partition reads
// (the catalog), and other aggregates of its own partition as this batch has left them.
class DecideContext {
 public:
  virtual ~DecideContext() = default;
  virtual Result<std::shared_ptr<const catalog::Catalog>> catalog() = 0;
  virtual Result<std::shared_ptr<const approval::ApprovalPolicies>> policies() = 0;
  // The state of `stream_id` (an empty state when it was never written). Only streams routed to
  // the deciding partition are consistent; others may lag.
  virtual Result<std::shared_ptr<const google::protobuf::Message>> state(
      const std::string& stream_type, const std::string& stream_id) = 0;
};

class AggregateHandler {
 public:
  virtual ~AggregateHandler() = default;
  virtual std::string stream_type() const = 0;
  virtual std::unique_ptr<google::protobuf::Message> new_state() const = 0;
  // Whether `stream_id` names a stream of this type. Stream ids of different types never
  // overlap, so a command or read of one type can never reach another type's stream.
  virtual bool owns(const std::string& stream_id) const = 0;
  virtual HandlerDecision decide(const google::protobuf::Message& state,
                                 const events::CommandEnvelope& command,
                                 DecideContext& context) const = 0;
  // The timers `state` waits on: (due time, name). The processor keeps them with the state and
  // fires each once it is due, as a command with a TimerFired body naming it.
  virtual std::vector<std::pair<int64_t, std::string>> timers(
      const google::protobuf::Message&) const {
    return {};
  }
  // Folds one event (any message decide() produced, now or in any earlier version).
  virtual void evolve(google::protobuf::Message& state, const google::protobuf::Message& event,
                      uint64_t version, int64_t occurred_at_us) const = 0;
};

// Every aggregate type the engine knows, by stream type.
class HandlerRegistry {
 public:
  // Registers customer, principal, catalog, order, approval policies and task.
  explicit HandlerRegistry(const FollowUpRules& rules = {});
  const AggregateHandler* find(const std::string& stream_type) const;
  // Registers another type (tests use it to probe the processor); replaces one of that type.
  void add(std::unique_ptr<AggregateHandler> handler);

 private:
  std::map<std::string, std::unique_ptr<AggregateHandler>> handlers_;
};

inline constexpr char kCustomerStream[] = "customer";
inline constexpr char kPrincipalStream[] = "principal";
// The whole catalog is one stream, "catalog:offers", decided in the partition of that id.
inline constexpr char kCatalogStream[] = "catalog";
// An order's stream is "order:<id>", decided in the partition of its customer.
inline constexpr char kOrderStream[] = "order";
// Every approval policy is in one stream, "approval:policies".
inline constexpr char kPolicyStream[] = "approval";
// A task's stream is "task:<id>", in the partition of its customer.
inline constexpr char kTaskStream[] = "task";
// The log's digests are one stream, "audit:digests".
inline constexpr char kAuditStream[] = "audit";

// Stream ids: a customer's stream is its id; a principal's is "principal:<id>".
std::string principal_stream_id(const std::string& principal_id);

// The typed event inside an envelope's Any; nullptr for a type this engine does not know.
std::unique_ptr<google::protobuf::Message> unpack_event(const google::protobuf::Any& data);

}  // namespace crm
