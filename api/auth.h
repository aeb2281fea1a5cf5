// Who is calling: bearer tokens mapped to principals with roles, and what each role may do.
// Tokens are kept only as SHA-256 hashes, in memory and in the log.
#pragma once

#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "events/rocksdb_store.h"
#include "principal.pb.h"

namespace crm::api {

struct Caller {
  std::string id;
  std::vector<std::string> roles;
  std::string team;
  bool has_role(std::string_view role) const;
};

// What a route does, for function permissions.
enum class Access {
  kCustomerRead,
  kCustomerWrite,
  kAuditRead,       // the audit lists and the hash-chain check: auditor
  kEventFeed,       // raw streams (the event feed): auditor, integrator
  kAdministration,  // principals
  kCatalogRead,     // offers: every role
  kCatalogWrite,    // publish and retire offers: pricing
  kOrderRead,       // orders, previews, lists: every role
  kOrderWrite,      // create, edit, submit, cancel orders: clerks and sales staff
  kOrderFulfil,     // item activation results from the network side: integrator, clerk
  kPolicyRead,      // approval policies: every role
  kPolicyWrite,     // publish approval policies: director
  kApprovals,       // the inbox and decisions: every role (the order checks the step's role)
  kDelegate,        // one's own delegation: every role
  kPayment,         // payments, deposits, refunds: clerk, sales, integrator (billing)
  kTaskRead,        // follow-up tasks: every role
  kTaskWrite,       // open, complete, cancel tasks: clerk, sales, manager, director
};

bool allows(const Caller& caller, Access access);

// Data permissions: the customers a caller may see and change through `access`. A caller whose
// only roles granting it are `sales` sees the customers it owns; `manager`, those of its team
// (and its own); any other role granting it, every customer.
struct CustomerScope {
  enum class Kind { kAll, kTeam, kOwn };
  Kind kind = Kind::kAll;
  std::string principal_id;
  std::string team;
  bool all() const { return kind == Kind::kAll; }
  // Whether data permissions narrow approvals too: only for a manager with a team.
  bool narrows_approvals() const { return kind == Kind::kTeam && !team.empty(); }
  bool covers(const std::string& owner_id, const std::string& customer_team) const;
  // "only customers it owns", for refusals.
  std::string describe() const;
};
CustomerScope customer_scope(const Caller& caller, Access access);
// The caller's role that grants `access` (the first such, in the principal's order), recorded
// as the actor's role on the events the call writes; empty when none does.
std::string acting_role(const Caller& caller, Access access);

class Principals {
 public:
  // Loads every principal from the aggregate state of "principal:" streams.
  Status load(Store& store);
  std::optional<Caller> authenticate(std::string_view bearer_token) const;
  // Takes a principal's newest state; a state older than one already taken is ignored, so
  // concurrent or replayed calls can never bring back a replaced token.
  void update(const principal::Principal& principal);
  size_t size() const;

  // Who delegated to `delegate_id` with a window holding `now_us`, and their roles. Only direct
  // delegations count (they do not chain); revoked principals delegate nothing.
  struct Delegator {
    std::string principal_id;
    std::vector<std::string> roles;
  };
  std::vector<Delegator> delegators_of(const std::string& delegate_id, int64_t now_us) const;

  // A new bearer token: 256 bits from OpenSSL's CSPRNG, hex, prefixed "crm_".
  static std::string new_token();
  static std::string token_hash(std::string_view token);

 private:
  mutable std::shared_mutex mu_;
  std::unordered_map<std::string, Caller> by_token_hash_;
  struct Known {
    std::string token_hash;  // empty when revoked
    uint64_t version = 0;
    std::vector<std::string> roles;
    principal::Delegation delegation;  // empty delegate_to: none
  };
  std::unordered_map<std::string, Known> by_id_;
};

}  // namespace crm::api
