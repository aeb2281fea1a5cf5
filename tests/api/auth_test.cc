// Authentication and roles over HTTP (API.md "Common rules"): bearer tokens, principals managed
// by an admin, tokens shown once, replaced and revoked, the admin token file, and principals
// surviving a restart.
#include <gmock/gmock.h>
#include <sys/stat.h>

#include <algorithm>
#include <filesystem>

#include "tests/api/api_fixture.h"

namespace crm::api_test {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::StartsWith;

class Auth : public ApiTest {
 protected:
  // PUT /v1/principals/{id} as the admin, expecting `status`; returns the view with the token.
  principal::PrincipalView put_principal(
      const std::string& id, const std::string& roles, int status = 201,
      std::source_location where = std::source_location::current()) {
    auto trace = called_from(where);
    auto reply = put("/v1/principals/" + id,
                     R"({"roles": [)" + roles + R"(], "team": "north", "displayName": "Someone"})");
    EXPECT_EQ(reply.status, status) << reply.body;
    return parse_json<principal::PrincipalView>(reply.body);
  }

  // Runs `request` with `token` as the bearer.
  Reply as(const std::string& token, const Request& request) {
    auto client = client_with(token);
    return call(request, client.get());
  }

  static Request get_request(const std::string& path) { return {"GET", path, "", kJson, {}}; }
  static Request register_request() {
    return {"POST", "/v1/customers", kMinimalCustomer, kJson, {}};
  }
};

TEST_F(Auth, NoAuthorizationIs401WithWwwAuthenticate) {
  auto reply = as("", get_request("/v1/customers"));

  auto problem = expect_problem(reply, 401);
  EXPECT_THAT(reply.header("WWW-Authenticate"), StartsWith("Bearer"));
  EXPECT_EQ(problem.type(), "urn:crm:problem:unauthorized");
}

TEST_F(Auth, UnknownTokenIs401) {
  auto reply = as("crm_0123456789abcdef", get_request("/v1/customers"));

  expect_problem(reply, 401);
  EXPECT_THAT(reply.header("WWW-Authenticate"), HasSubstr("invalid_token"));
}

TEST_F(Auth, OtherAuthorizationSchemeIs401) {
  auto reply = as(
      "",
      {"GET", "/v1/customers", "", kJson, {{"Authorization", "Basic " + served().admin_token()}}});

  expect_problem(reply, 401);
  EXPECT_TRUE(reply.has_header("WWW-Authenticate"));
}

TEST_F(Auth, RefusedWritesStoreNothing) {
  const uint64_t events_before = events_in_log();

  expect_problem(as("", register_request()), 401);
  expect_problem(as("crm_forged", register_request()), 401);

  EXPECT_EQ(events_in_log(), events_before);
}

TEST_F(Auth, PutPrincipalAnswers201WithATokenThatWorks) {
  auto alice = put_principal("alice", R"("clerk")");

  EXPECT_EQ(alice.id(), "alice");
  EXPECT_THAT(alice.roles(), ElementsAre("clerk"));
  EXPECT_EQ(alice.team(), "north");
  EXPECT_EQ(alice.display_name(), "Someone");
  EXPECT_EQ(alice.version(), 1u);
  EXPECT_FALSE(alice.revoked());
  EXPECT_THAT(alice.token(), ::testing::MatchesRegex("crm_[0-9a-f]{64}"));
  EXPECT_EQ(as(alice.token(), get_request("/v1/customers")).status, 200);
}

TEST_F(Auth, GetPrincipalNeverShowsTheToken) {
  auto alice = put_principal("alice", R"("clerk", "sales")");

  auto reply = get("/v1/principals/alice");

  ASSERT_EQ(reply.status, 200) << reply.body;
  EXPECT_EQ(reply.header("ETag"), "\"1\"");
  auto view = parse_json<principal::PrincipalView>(reply.body);
  EXPECT_EQ(view.id(), "alice");
  EXPECT_THAT(view.roles(), ElementsAre("clerk", "sales"));
  EXPECT_TRUE(view.token().empty());
  EXPECT_THAT(reply.body, ::testing::Not(HasSubstr(alice.token())));
  EXPECT_THAT(reply.body, ::testing::Not(HasSubstr("token")));
  expect_problem(get("/v1/principals/nobody"), 404);
}

TEST_F(Auth, AuditorReadsCustomersButCannotRegister) {
  auto created = register_customer(kMinimalCustomer);
  auto auditor = put_principal("audrey", R"("auditor")");
  const uint64_t events_before = events_in_log();

  EXPECT_EQ(as(auditor.token(), get_request("/v1/customers/" + created.id())).status, 200);
  EXPECT_EQ(as(auditor.token(), get_request("/v1/customers/" + created.id() + "/history")).status,
            200);
  EXPECT_EQ(as(auditor.token(), get_request("/v1/streams/" + created.id() + "/events")).status,
            200);
  auto listed = as(auditor.token(), get_request("/v1/customers?minPosition=" + created.position()));
  ASSERT_EQ(listed.status, 200) << listed.body;
  EXPECT_EQ(parse_json<customer::CustomerList>(listed.body).items_size(), 1);

  auto problem = expect_problem(as(auditor.token(), register_request()), 403);
  EXPECT_EQ(problem.type(), "urn:crm:problem:forbidden");
  expect_problem(
      as(auditor.token(),
         {"PATCH", "/v1/customers/" + created.id(), R"({"region": "North"})", kJson, {}}),
      403);
  EXPECT_EQ(events_in_log(), events_before);
}

TEST_F(Auth, TheActorsRoleIsTheOneThatAllowedTheCall) {
  // "auditor" sorts first but may not write; the event names the role that let the write in.
  auto both = put_principal("ada", R"("auditor", "sales")");

  auto registered = as(both.token(), register_request());
  ASSERT_EQ(registered.status, 201) << registered.body;
  auto history_items = history(customer_of(registered).id());
  ASSERT_EQ(history_items.size(), 1u);
  EXPECT_EQ(history_items[0].actor().role(), "sales");
}

TEST_F(Auth, ClerkRegistersButCannotManagePrincipalsOrReadRawStreams) {
  auto clerk = put_principal("carl", R"("clerk")");

  auto registered = as(clerk.token(), register_request());
  ASSERT_EQ(registered.status, 201) << registered.body;
  auto created = customer_of(registered);
  auto history_items = history(created.id());
  ASSERT_EQ(history_items.size(), 1u);
  EXPECT_EQ(history_items[0].actor().principal_id(), "carl");
  EXPECT_EQ(history_items[0].actor().role(), "clerk");

  const uint64_t events_before = events_in_log();
  expect_problem(
      as(clerk.token(), {"PUT", "/v1/principals/mallory", R"({"roles": ["admin"]})", kJson, {}}),
      403);
  expect_problem(as(clerk.token(), {"DELETE", "/v1/principals/admin", "", kJson, {}}), 403);
  expect_problem(as(clerk.token(), get_request("/v1/principals/carl")), 403);
  expect_problem(as(clerk.token(), get_request("/v1/streams/" + created.id() + "/events")), 403);
  EXPECT_EQ(events_in_log(), events_before);
  expect_problem(get("/v1/principals/mallory"), 404);
}

TEST_F(Auth, IdempotencyKeysBelongToTheirPrincipal) {
  auto clerk = put_principal("carl", R"("clerk")");
  const httplib::Headers key = {{"Idempotency-Key", "shared-key"}};

  auto by_admin = register_customer(kMinimalCustomer, key);
  auto by_clerk = as(clerk.token(), {"POST", "/v1/customers", kMinimalCustomer, kJson, key});

  ASSERT_EQ(by_clerk.status, 201) << by_clerk.body;
  EXPECT_FALSE(by_clerk.has_header("Idempotent-Replayed"));
  EXPECT_NE(customer_of(by_clerk).id(), by_admin.id());
  EXPECT_EQ(all_customer_ids().size(), 2u);
}

TEST_F(Auth, PutAgainIssuesANewTokenAndTheOldOneStopsWorking) {
  auto first = put_principal("alice", R"("clerk")");
  auto second = put_principal("alice", R"("clerk", "manager")", 200);

  EXPECT_NE(second.token(), first.token());
  EXPECT_THAT(second.token(), StartsWith("crm_"));
  EXPECT_EQ(second.version(), 2u);
  EXPECT_THAT(second.roles(), ElementsAre("clerk", "manager"));
  expect_problem(as(first.token(), get_request("/v1/customers")), 401);
  EXPECT_EQ(as(second.token(), get_request("/v1/customers")).status, 200);
}

// Of concurrent PUTs, the one the log orders last wins: its token works, every other is dead.
// (Repeated rounds, since a lost update depends on how the replies interleave.)
TEST_F(Auth, ConcurrentPutsLeaveOnlyTheNewestTokenWorking) {
  put_principal("alice", R"("clerk")");
  for (int round = 0; round < 30; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    auto replies = concurrently(std::vector<Request>(
        4, {"PUT", "/v1/principals/alice", R"({"roles": ["clerk"]})", kJson, {}}));
    std::vector<principal::PrincipalView> views;
    for (const auto& reply : replies) {
      ASSERT_EQ(reply.status, 200) << reply.body;
      views.push_back(parse_json<principal::PrincipalView>(reply.body));
    }
    const auto newest = std::max_element(
        views.begin(), views.end(), [](auto& a, auto& b) { return a.version() < b.version(); });
    ASSERT_EQ(parse_json<principal::PrincipalView>(get("/v1/principals/alice").body).version(),
              newest->version());
    for (const auto& view : views) {
      const int expected = &view == &*newest ? 200 : 401;
      ASSERT_EQ(as(view.token(), get_request("/v1/customers")).status, expected)
          << "token of version " << view.version() << " (newest " << newest->version() << ")";
    }
  }
}

TEST_F(Auth, DeleteRevokesThePrincipal) {
  auto alice = put_principal("alice", R"("clerk")");
  ASSERT_EQ(as(alice.token(), get_request("/v1/customers")).status, 200);

  auto reply = del("/v1/principals/alice");

  ASSERT_EQ(reply.status, 200) << reply.body;
  auto view = parse_json<principal::PrincipalView>(reply.body);
  EXPECT_TRUE(view.revoked());
  EXPECT_TRUE(view.token().empty());
  expect_problem(as(alice.token(), get_request("/v1/customers")), 401);
  EXPECT_TRUE(parse_json<principal::PrincipalView>(get("/v1/principals/alice").body).revoked());

  auto restored = put_principal("alice", R"("clerk")", 200);
  EXPECT_FALSE(restored.revoked());
  EXPECT_EQ(as(restored.token(), get_request("/v1/customers")).status, 200);
  expect_problem(as(alice.token(), get_request("/v1/customers")), 401);
}

TEST_F(Auth, RevokingAnUnknownPrincipalIs404) {
  auto problem = expect_problem(del("/v1/principals/nobody"), 404);

  EXPECT_EQ(problem.rule(), "principal.not_found");
}

// A replayed DELETE answers with the first response and must change nothing: the principal
// was re-issued a token since, and that token stays valid.
TEST_F(Auth, ReplayedRevokeDoesNotRevokeATokenIssuedSince) {
  put_principal("alice", R"("clerk")");
  const Request revoke = {
      "DELETE", "/v1/principals/alice", "", kJson, {{"Idempotency-Key", "revoke-alice"}}};
  ASSERT_EQ(call(revoke).status, 200);
  auto reissued = put_principal("alice", R"("clerk")", 200);
  ASSERT_EQ(as(reissued.token(), get_request("/v1/customers")).status, 200);

  auto replay = call(revoke);

  EXPECT_EQ(replay.status, 200) << replay.body;
  EXPECT_EQ(replay.header("Idempotent-Replayed"), "true");
  auto now = parse_json<principal::PrincipalView>(get("/v1/principals/alice").body);
  EXPECT_FALSE(now.revoked());
  EXPECT_EQ(now.version(), 3u);
  EXPECT_EQ(as(reissued.token(), get_request("/v1/customers")).status, 200);
}

// Principal streams hold token hashes; only audit roles may read raw streams. The customer
// history route must not serve them to every role that may read customers.
TEST_F(Auth, CustomerHistoryRouteDoesNotServePrincipalStreams) {
  auto clerk = put_principal("carl", R"("clerk")");

  auto reply = as(clerk.token(), get_request("/v1/customers/principal:admin/history"));

  expect_problem(reply, 404);
  EXPECT_THAT(reply.body, ::testing::Not(HasSubstr("tokenHash")));
}

TEST_F(Auth, AdminCannotRevokeItself) {
  auto problem = expect_problem(del("/v1/principals/admin"), 409);

  EXPECT_EQ(problem.rule(), "principal.revoke_self");
  EXPECT_EQ(get("/v1/customers").status, 200);
}

TEST_F(Auth, AdminTokenFileIsWrittenOwnerOnly) {
  const std::string path = data_dir() + "/admin.token";
  struct stat info {};
  ASSERT_EQ(::stat(path.c_str(), &info), 0) << path;

  EXPECT_EQ(info.st_mode & 0777, 0600u);
  EXPECT_EQ(testing::read_file(path), served().admin_token() + "\n");
  EXPECT_THAT(served().admin_token(), StartsWith("crm_"));
}

TEST_F(Auth, RestartKeepsPrincipalsAndDoesNotRewriteTheAdminToken) {
  const std::string path = data_dir() + "/admin.token";
  const std::string admin_token = testing::read_file(path);
  const auto written_at = std::filesystem::last_write_time(path);
  auto replaced = put_principal("alice", R"("clerk")");
  auto alice = put_principal("alice", R"("clerk")", 200);
  auto bob = put_principal("bob", R"("auditor")");
  ASSERT_EQ(del("/v1/principals/bob").status, 200);

  restart();

  EXPECT_EQ(testing::read_file(path), admin_token);
  EXPECT_EQ(std::filesystem::last_write_time(path), written_at);
  EXPECT_EQ(served().admin_token() + "\n", admin_token);
  EXPECT_EQ(get("/v1/customers").status, 200);  // the admin token from the file still works
  EXPECT_EQ(as(alice.token(), register_request()).status, 201);
  expect_problem(as(replaced.token(), get_request("/v1/customers")), 401);
  expect_problem(as(bob.token(), get_request("/v1/customers")), 401);
}

}  // namespace
}  // namespace crm::api_test
