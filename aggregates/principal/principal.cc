#include "aggregates/principal/principal.h"

#include <algorithm>
#include <cctype>
#include <set>

#include "aggregates/validation.h"
#include "events/codec.h"

namespace crm::principal {
namespace {

bool is_role_name(const std::string& role) {
  return !role.empty() && role.size() <= 64 && std::islower(static_cast<unsigned char>(role[0])) &&
         std::all_of(role.begin(), role.end(), [](unsigned char c) {
           return std::islower(c) || std::isdigit(c) || c == '_' || c == '-';
         });
}

Decision<Event> upsert(const std::string& principal_id, const events::UpsertPrincipal& c) {
  Violations v;
  if (!validation::is_identifier(principal_id)) {
    v.add("id", "principal.id_format",
          "Expected a principal id of 1–64 letters, digits or . _ - :, but got '" + principal_id +
              "'");
  }
  if (c.request().roles().empty())
    v.add("roles", "principal.roles_required", "Expected at least one role, but none was given");
  std::set<std::string> roles;
  for (int i = 0; i < c.request().roles_size(); ++i) {
    const auto& role = c.request().roles(i);
    if (!is_role_name(role)) {
      v.add("roles[" + std::to_string(i) + "]", "principal.role_format",
            "Expected a role name of lower-case letters, digits, _ or -, but got '" + role + "'");
    }
    roles.insert(role);
  }
  if (validation::utf8_length(c.request().display_name()) > 200)
    v.add("displayName", "principal.display_name_too_long", "Expected at most 200 characters");
  if (!c.request().team().empty() && !validation::is_identifier(c.request().team()))
    v.add("team", "principal.team_format", "Expected a team id of 1–64 letters, digits or . _ - :");
  if (c.token_hash().size() != 32)
    v.add("token", "principal.token_hash", "Expected the SHA-256 of a new token");
  if (!v.empty()) return Decision<Event>::refuse(std::move(v).to_rejection());

  PrincipalUpserted e;
  e.set_principal_id(principal_id);
  for (const auto& role : roles) e.add_roles(role);  // sorted and without duplicates
  e.set_team(c.request().team());
  e.set_display_name(c.request().display_name());
  e.set_token_hash(c.token_hash());
  return {{std::move(e)}, std::nullopt};
}

}  // namespace

Decision<Event> decide(const Principal& state, const std::string& principal_id,
                       const Command& command) {
  if (const auto* upsert_command = std::get_if<events::UpsertPrincipal>(&command))
    return upsert(principal_id, *upsert_command);
  if (state.version() == 0) {
    return Decision<Event>::refuse(
        {Rejection::Kind::kNotFound,
         "principal.not_found",
         "Expected principal '" + principal_id + "' to exist, but there is no such principal",
         {}});
  }
  if (const auto* delegate = std::get_if<SetDelegation>(&command)) {
    Violations v;
    if (!delegate->delegate_to().empty() && !validation::is_identifier(delegate->delegate_to()))
      v.add("delegateTo", "delegation.delegate_format",
            "Expected delegateTo as a principal id, but got '" + delegate->delegate_to() + "'");
    if (delegate->delegate_to() == principal_id)
      v.add("delegateTo", "delegation.self", "Expected a delegate other than the principal itself");
    if (!delegate->delegate_to().empty() && (!delegate->has_from() || !delegate->has_to())) {
      v.add(delegate->has_from() ? "to" : "from", "delegation.window_required",
            "Expected a delegation window: from and to");
    } else if (delegate->has_from() && delegate->has_to() &&
               timestamp_to_us(delegate->to()) <= timestamp_to_us(delegate->from())) {
      v.add("to", "delegation.window", "Expected `to` after `from`");
    }
    if (!v.empty()) return Decision<Event>::refuse(std::move(v).to_rejection());
    if (state.revoked()) {
      return Decision<Event>::refuse({Rejection::Kind::kConflict,
                                      "principal.revoked",
                                      "Principal '" + principal_id + "' is revoked",
                                      {}});
    }
    DelegationSet e;
    auto* d = e.mutable_delegation();
    d->set_delegate_to(delegate->delegate_to());
    if (!delegate->delegate_to().empty()) {
      *d->mutable_from() = delegate->from();
      *d->mutable_to() = delegate->to();
    }
    if (e.delegation().SerializeAsString() == state.delegation().SerializeAsString()) return {};
    return {{std::move(e)}, std::nullopt};
  }
  if (state.revoked()) return {};  // already revoked: nothing to change
  PrincipalRevoked e;
  e.set_principal_id(principal_id);
  return {{std::move(e)}, std::nullopt};
}

void evolve(Principal& state, const Event& event, uint64_t version) {
  if (const auto* e = std::get_if<PrincipalUpserted>(&event)) {
    state.set_id(e->principal_id());
    state.mutable_roles()->CopyFrom(e->roles());
    state.set_team(e->team());
    state.set_display_name(e->display_name());
    state.set_token_hash(e->token_hash());
    state.set_revoked(false);
  } else if (const auto* r = std::get_if<PrincipalRevoked>(&event)) {
    state.set_id(r->principal_id());
    state.set_revoked(true);
  } else if (const auto* d = std::get_if<DelegationSet>(&event)) {
    if (d->delegation().delegate_to().empty())
      state.clear_delegation();
    else
      *state.mutable_delegation() = d->delegation();
  }
  state.set_version(version);
}

}  // namespace crm::principal
