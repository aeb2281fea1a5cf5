#include "aggregates/audit/digests.h"

#include <algorithm>

namespace crm::audit {

Decision<Event> decide(const Digests& state, const Command& command) {
  const auto& c = std::get<RecordDigest>(command);
  if (c.end_offsets_size() == 0 || c.digest().size() != 64) {
    return Decision<Event>::refuse({Rejection::Kind::kInvalid,
                                    "digest.invalid",
                                    "Expected a digest (64 hex digits) and its cut",
                                    {}});
  }
  if (std::equal(c.end_offsets().begin(), c.end_offsets().end(), state.last_end_offsets().begin(),
                 state.last_end_offsets().end()))
    return {};  // nothing new since the last digest
  LogDigestRecorded e;
  *e.mutable_end_offsets() = c.end_offsets();
  e.set_digest(c.digest());
  e.set_streams(c.streams());
  return {{std::move(e)}, std::nullopt};
}

void evolve(Digests& state, const Event& event, uint64_t version) {
  const auto& e = std::get<LogDigestRecorded>(event);
  *state.mutable_last_end_offsets() = e.end_offsets();
  state.set_last_digest(e.digest());
  state.set_count(state.count() + 1);
  state.set_version(static_cast<uint32_t>(version));
}

}  // namespace crm::audit
