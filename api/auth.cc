#include "api/auth.h"

#include <openssl/rand.h>

#include <algorithm>
#include <cstdlib>
#include <memory>
#include <mutex>

#include "command.pb.h"
#include "events/codec.h"

namespace crm::api {

bool Caller::has_role(std::string_view role) const {
  return std::find(roles.begin(), roles.end(), role) != roles.end();
}

namespace {

// Approval roles are plain role names (API.md): any role but the read-only and machine ones.
bool has_approval_role(const Caller& caller) {
  return std::any_of(caller.roles.begin(), caller.roles.end(),
                     [](const std::string& r) { return r != "auditor" && r != "integrator"; });
}

}  // namespace

bool allows(const Caller& caller, Access access) {
  if (caller.has_role("admin")) return true;
  auto any_of = [&](std::initializer_list<std::string_view> roles) {
    return std::any_of(roles.begin(), roles.end(), [&](auto r) { return caller.has_role(r); });
  };
  switch (access) {
    case Access::kCustomerWrite:
      return any_of({"clerk", "sales", "manager", "director", "integrator"});
    case Access::kCustomerRead:
      return any_of({"clerk", "sales", "manager", "director", "pricing", "auditor"});
    case Access::kAuditRead:
      return any_of({"auditor"});
    case Access::kEventFeed:
      return any_of({"auditor", "integrator"});
    case Access::kAdministration:
      return false;
    case Access::kCatalogRead:
      return any_of({"clerk", "sales", "manager", "director", "pricing", "auditor"});
    case Access::kCatalogWrite:
      return any_of({"pricing"});
    case Access::kOrderRead:
      return any_of({"clerk", "sales", "manager", "director", "pricing", "auditor"});
    case Access::kOrderWrite:
      return any_of({"clerk", "sales", "manager", "director", "integrator"});
    case Access::kOrderFulfil:
      return any_of({"clerk", "integrator"});
    case Access::kPolicyRead:
      return any_of({"clerk", "sales", "manager", "director", "pricing", "auditor"}) ||
             has_approval_role(caller);
    case Access::kApprovals:  // the inbox and decisions: approvers, never auditors or integrators
    case Access::kDelegate:
      return has_approval_role(caller);
    case Access::kPolicyWrite:
      return any_of({"director"});
    case Access::kPayment:
      return any_of({"clerk", "sales", "integrator"});
    case Access::kTaskRead:
      return any_of({"clerk", "sales", "manager", "director", "pricing", "auditor"}) ||
             has_approval_role(caller);
    case Access::kTaskWrite:
      return any_of({"clerk", "sales", "manager", "director", "integrator"});
  }
  return false;
}

bool CustomerScope::covers(const std::string& owner_id, const std::string& customer_team) const {
  switch (kind) {
    case Kind::kAll:
      return true;
    case Kind::kTeam:
      if (!team.empty() && customer_team == team) return true;
      [[fallthrough]];
    case Kind::kOwn:
      return !owner_id.empty() && owner_id == principal_id;
  }
  return false;
}

std::string CustomerScope::describe() const {
  switch (kind) {
    case Kind::kAll:
      return "every customer";
    case Kind::kTeam:
      if (team.empty()) return "only customers owned by '" + principal_id + "' (it has no team)";
      return "only customers of team '" + team + "' or owned by '" + principal_id + "'";
    case Kind::kOwn:
      return "only customers owned by '" + principal_id + "'";
  }
  return "";
}

CustomerScope customer_scope(const Caller& caller, Access access) {
  CustomerScope scope;
  scope.principal_id = caller.id;
  scope.team = caller.team;
  bool own = false, team = false;
  for (const auto& role : caller.roles) {
    if (!allows(Caller{caller.id, {role}, caller.team}, access)) continue;
    if (role == "sales") {
      own = true;
    } else if (role == "manager") {
      team = true;
    } else {
      return scope;  // every customer
    }
  }
  scope.kind = team  ? CustomerScope::Kind::kTeam
               : own ? CustomerScope::Kind::kOwn
                     : CustomerScope::Kind::kAll;
  return scope;
}

std::string acting_role(const Caller& caller, Access access) {
  // The role whose reach the call has (customer_scope): one seeing every customer first, then
  // manager, then sales, so the events name the role that let the call through.
  std::string found;
  int found_rank = 0;
  for (const auto& role : caller.roles) {
    if (!allows(Caller{caller.id, {role}, caller.team}, access)) continue;
    const int rank = role == "sales" ? 1 : role == "manager" ? 2 : 3;
    if (rank > found_rank) {
      found = role;
      found_rank = rank;
    }
  }
  return found;
}

Status Principals::load(Store& store) {
  const std::string prefix = "principal:";
  std::unique_ptr<rocksdb::Iterator> it(
      store.db()->NewIterator(rocksdb::ReadOptions(), store.family(Store::Family::kState)));
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
    events::AggregateRecord record;
    principal::Principal p;
    if (!record.ParseFromArray(it->value().data(), static_cast<int>(it->value().size())) ||
        !record.state().UnpackTo(&p)) {
      return Status::corruption("unreadable principal " + it->key().ToString());
    }
    update(p);
  }
  return from_rocksdb(it->status());
}

std::optional<Caller> Principals::authenticate(std::string_view bearer_token) const {
  auto hash = token_hash(bearer_token);
  std::shared_lock lock(mu_);
  auto it = by_token_hash_.find(hash);
  if (it == by_token_hash_.end()) return std::nullopt;
  return it->second;
}

void Principals::update(const principal::Principal& p) {
  std::unique_lock lock(mu_);
  Known& known = by_id_[p.id()];
  if (known.version >= p.version() && known.version != 0) return;
  if (!known.token_hash.empty()) by_token_hash_.erase(known.token_hash);
  known.version = p.version();
  known.token_hash.clear();
  known.roles.assign(p.roles().begin(), p.roles().end());
  known.delegation = p.revoked() ? principal::Delegation() : p.delegation();
  if (p.revoked()) return;
  by_token_hash_[p.token_hash()] = Caller{p.id(), {p.roles().begin(), p.roles().end()}, p.team()};
  known.token_hash = p.token_hash();
}

size_t Principals::size() const {
  std::shared_lock lock(mu_);
  return by_token_hash_.size();
}

std::vector<Principals::Delegator> Principals::delegators_of(const std::string& delegate_id,
                                                             int64_t now_us) const {
  std::vector<Delegator> found;
  std::shared_lock lock(mu_);
  for (const auto& [id, known] : by_id_) {
    const auto& d = known.delegation;
    if (d.delegate_to() != delegate_id || known.token_hash.empty()) continue;
    if (now_us < timestamp_to_us(d.from()) || now_us >= timestamp_to_us(d.to())) continue;
    found.push_back({id, known.roles});
  }
  std::sort(found.begin(), found.end(),
            [](const auto& a, const auto& b) { return a.principal_id < b.principal_id; });
  return found;
}

std::string Principals::new_token() {
  unsigned char bytes[32];
  if (RAND_bytes(bytes, sizeof bytes) != 1) std::abort();  // no entropy: nothing safe to do
  return "crm_" + to_hex(std::string_view(reinterpret_cast<char*>(bytes), sizeof bytes));
}

std::string Principals::token_hash(std::string_view token) { return sha256(token); }

}  // namespace crm::api
