// One event as auditors read it (the history routes, `crm export`, `crm history`): type by its
// short name, version, position, times, actor, correlation and causation ids, data, hashes.
#pragma once

#include "api.pb.h"
#include "envelope.pb.h"
#include "workflow/engine.h"

namespace crm::api {

HistoryItem history_item(const events::EventEnvelope& event);

// A digest an auditor kept, checked: ok when the events before its cut still give it.
Result<VerifyReport> digest_report(EventLog& log, const std::string& digest_hex);

}  // namespace crm::api
