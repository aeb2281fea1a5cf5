// The log's digests (tamper evidence over time): one stream, "audit:digests", whose events
// record the combined hash of every stream's head at a cut of the log. Pure.
#pragma once

#include <cstdint>
#include <string>
#include <variant>

#include "aggregates/rejection.h"
#include "audit.pb.h"

namespace crm::audit {

inline constexpr char kStreamId[] = "audit:digests";

using Command = std::variant<RecordDigest>;
using Event = std::variant<LogDigestRecorded>;

// A digest at the cut of the last one records nothing.
Decision<Event> decide(const Digests& state, const Command& command);
void evolve(Digests& state, const Event& event, uint64_t version);

}  // namespace crm::audit
