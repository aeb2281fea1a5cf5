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
#include "command.pb.h"

namespace crm {

struct HandlerDecision {
  std::vector<std::unique_ptr<google::protobuf::Message>> events;
  std::optional<Rejection> rejection;
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
                                 const events::CommandEnvelope& command) const = 0;
  // Folds one event (any message decide() produced, now or in any earlier version).
  virtual void evolve(google::protobuf::Message& state, const google::protobuf::Message& event,
                      uint64_t version, int64_t occurred_at_us) const = 0;
};

// Every aggregate type the engine knows, by stream type.
class HandlerRegistry {
 public:
  HandlerRegistry();  // registers customer, principal and catalog
  const AggregateHandler* find(const std::string& stream_type) const;

 private:
  std::map<std::string, std::unique_ptr<AggregateHandler>> handlers_;
};

inline constexpr char kCustomerStream[] = "customer";
inline constexpr char kPrincipalStream[] = "principal";
// The whole catalog is one stream, "catalog:offers", decided in the partition of that id.
inline constexpr char kCatalogStream[] = "catalog";

// Stream ids: a customer's stream is its id; a principal's is "principal:<id>".
std::string principal_stream_id(const std::string& principal_id);

// The typed event inside an envelope's Any; nullptr for a type this engine does not know.
std::unique_ptr<google::protobuf::Message> unpack_event(const google::protobuf::Any& data);

}  // namespace crm
