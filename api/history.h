// One event as auditors read it (the history routes, `crm export`, `crm history`): type by its
// short name, version, position, times, actor, correlation and causation ids, data, hashes.
#pragma once

#include "api.pb.h"
#include "envelope.pb.h"

namespace crm::api {

HistoryItem history_item(const events::EventEnvelope& event);

}  // namespace crm::api
