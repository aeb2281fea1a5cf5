// A principal: someone (or some system) allowed to call the API, with roles and a team. Only a
// hash of its bearer token is ever stored. Pure like every aggregate.
#pragma once

#include <string>
#include <variant>

#include "aggregates/rejection.h"
#include "command.pb.h"
#include "principal.pb.h"

namespace crm::principal {

using Command = std::variant<crm::events::UpsertPrincipal, RevokePrincipal, SetDelegation>;
using Event = std::variant<PrincipalUpserted, PrincipalRevoked, DelegationSet>;

Decision<Event> decide(const Principal& state, const std::string& principal_id,
                       const Command& command);
void evolve(Principal& state, const Event& event, uint64_t version);

}  // namespace crm::principal
