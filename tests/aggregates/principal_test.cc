#include "aggregates/principal/principal.h"

#include <gtest/gtest.h>

namespace crm::principal {
namespace {

events::UpsertPrincipal upsert(std::vector<std::string> roles) {
  events::UpsertPrincipal c;
  for (auto& r : roles) c.mutable_request()->add_roles(r);
  c.set_token_hash(std::string(32, 'h'));
  return c;
}

TEST(Principal, UpsertSortsAndDeduplicatesRoles) {
  auto d = decide(Principal(), "alice", upsert({"sales", "clerk", "sales"}));
  ASSERT_FALSE(d.rejection);
  const auto& e = std::get<PrincipalUpserted>(d.events[0]);
  ASSERT_EQ(e.roles_size(), 2);
  EXPECT_EQ(e.roles(0), "clerk");
  EXPECT_EQ(e.roles(1), "sales");
}

TEST(Principal, RefusesBadIdsAndRoles) {
  auto d = decide(Principal(), "bad id", upsert({"Sales Manager"}));
  ASSERT_TRUE(d.rejection);
  EXPECT_EQ(d.rejection->rule, "principal.id_format");
  ASSERT_EQ(d.rejection->violations.size(), 2u);
  EXPECT_EQ(d.rejection->violations[1].rule, "principal.role_format");
  EXPECT_EQ(decide(Principal(), "bob", upsert({})).rejection->rule, "principal.roles_required");
}

TEST(Principal, RevokeOnceThenNothingToChange) {
  Principal state;
  EXPECT_EQ(decide(state, "carol", RevokePrincipal()).rejection->rule, "principal.not_found");
  evolve(state, std::get<PrincipalUpserted>(decide(state, "carol", upsert({"auditor"})).events[0]),
         1);
  auto revoke = decide(state, "carol", RevokePrincipal());
  ASSERT_EQ(revoke.events.size(), 1u);
  evolve(state, revoke.events[0], 2);
  EXPECT_TRUE(state.revoked());
  EXPECT_TRUE(decide(state, "carol", RevokePrincipal()).events.empty());
  // A new upsert restores the principal with its new token.
  evolve(state, decide(state, "carol", upsert({"auditor"})).events[0], 3);
  EXPECT_FALSE(state.revoked());
}

}  // namespace
}  // namespace crm::principal
