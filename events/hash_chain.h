// The per-stream hash chain (invariant I8): each event's hash covers the previous event's hash
// and the event itself, so changing, dropping or reordering any stored event is detectable.
#pragma once

#include <string>
#include <vector>

#include "envelope.pb.h"
#include "events/status.h"

namespace crm::hash_chain {

// SHA-256(previous_hash || deterministic bytes of `event` without `hash` and `position`).
// The position is left out because a Kafka log learns it only after the write.
std::string compute(const events::EventEnvelope& event);

// Sets previous_hash and hash on `event`.
void seal(events::EventEnvelope& event, const std::string& previous_hash);

// Checks that `events` (one stream, ascending versions from `first_version`) chain from
// `previous_hash`. On failure the message names the stream and the first bad version.
Status verify(const std::vector<events::EventEnvelope>& events, std::string previous_hash,
              uint64_t first_version);

}  // namespace crm::hash_chain
