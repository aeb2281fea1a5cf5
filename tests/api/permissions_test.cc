// Permissions: every role against every route group (function permissions), and data
// permissions by ownership: a sales rep sees and changes only the customers it owns — with their
// orders and tasks —, a manager its team's, an auditor everything without writing, an integrator
// only commands and the event feed.
#include <gmock/gmock.h>

#include <map>
#include <set>

#include "approval.pb.h"
#include "order.pb.h"
#include "task.pb.h"
#include "tests/api/api_fixture.h"

namespace crm::api_test {
namespace {

using ::testing::HasSubstr;

Request req(std::string method, std::string path, std::string body = "",
            std::string content_type = kJson) {
  return {std::move(method), std::move(path), std::move(body), std::move(content_type), {}};
}

const std::vector<std::string> kRoles = {"clerk",   "sales",   "manager",    "director",
                                         "pricing", "auditor", "integrator", "admin"};

class Permissions : public ApiTest {
 protected:
  void SetUp() override {
    ApiTest::SetUp();
    for (const auto& role : kRoles) {
      auto reply =
          put("/v1/principals/p-" + role, R"({"roles": [")" + role + R"("], "team": "north"})");
      ASSERT_EQ(reply.status, 201) << reply.body;
      tokens_[role] = parse_json<principal::PrincipalView>(reply.body).token();
    }
    // Owned by the sales principal, in the manager's team: data permissions let every role in.
    customer_ =
        register_customer(
            R"({"name": "Acme", "kind": "ENTERPRISE", "ownerId": "p-sales", "team": "north"})")
            .id();
    auto created = post("/v1/orders", R"({"customerId": ")" + customer_ + R"("})");
    ASSERT_EQ(created.status, 201) << created.body;
    order_ = parse_json<order::Order>(created.body).id();
  }

  std::map<std::string, std::string> tokens_;
  std::string customer_;
  std::string order_;
};

TEST_F(Permissions, EveryRoleAgainstEveryRouteGroup) {
  struct Probe {
    std::string group;
    Request request;
    std::set<std::string> allowed;
  };
  const std::set<std::string> staff = {"clerk", "sales", "manager", "director", "admin"};
  auto with = [](std::set<std::string> roles, std::initializer_list<std::string> more) {
    roles.insert(more);
    return roles;
  };
  const std::string c = customer_;
  const std::vector<Probe> probes = {
      {"customer read", req("GET", "/v1/customers/" + c), with(staff, {"pricing", "auditor"})},
      {"customer history", req("GET", "/v1/customers/" + c + "/history"),
       with(staff, {"pricing", "auditor"})},
      {"customer list", req("GET", "/v1/customers"), with(staff, {"pricing", "auditor"})},
      {"customer write", req("PATCH", "/v1/customers/" + c, R"({"region": "r1"})"),
       with(staff, {"integrator"})},
      {"catalog read", req("GET", "/v1/catalog/offers"), with(staff, {"pricing", "auditor"})},
      {"catalog write",
       req("PUT", "/v1/catalog/offers/X", R"({"name": ""})"),
       {"pricing", "admin"}},
      {"order read", req("GET", "/v1/orders/" + order_), with(staff, {"pricing", "auditor"})},
      {"order list", req("GET", "/v1/orders?customerId=" + c), with(staff, {"pricing", "auditor"})},
      {"order write", req("POST", "/v1/orders", R"({"customerId": ")" + c + R"("})"),
       with(staff, {"integrator"})},
      {"payments",
       req("POST", "/v1/orders/" + order_ + "/payments", R"({"kind": "DEPOSIT"})"),
       {"clerk", "sales", "integrator", "admin"}},
      {"policy read", req("GET", "/v1/approval-policies"), with(staff, {"pricing", "auditor"})},
      {"policy write",
       req("PUT", "/v1/approval-policies/p", R"({"rules": []})"),
       {"director", "admin"}},
      {"approval inbox", req("GET", "/v1/approvals"), with(staff, {"pricing"})},
      {"task read", req("GET", "/v1/tasks?customerId=" + c), with(staff, {"pricing", "auditor"})},
      {"task write",
       req("POST", "/v1/tasks",
           R"({"customerId": ")" + c + R"(", "subject": "s", "dueAt": "2999-01-01T00:00:00Z"})"),
       with(staff, {"integrator"})},
      {"event feed",
       req("GET", "/v1/streams/" + c + "/events"),
       {"auditor", "integrator", "admin"}},
      {"audit lists", req("GET", "/v1/audit/decisions"), {"auditor", "admin"}},
      {"audit verify", req("GET", "/v1/audit/verify?streamId=" + c), {"auditor", "admin"}},
      {"principals", req("GET", "/v1/principals/p-clerk"), {"admin"}},
      {"backups", req("POST", "/v1/admin/backups", R"({"directory": "relative"})"), {"admin"}},
  };
  for (const auto& role : kRoles) {
    auto client = client_with(tokens_[role]);
    for (const auto& probe : probes) {
      auto reply = call(probe.request, client.get());
      const bool allowed = probe.allowed.count(role) > 0;
      EXPECT_EQ(reply.status == 403, !allowed)
          << role << " on " << probe.group << " (" << probe.request.method << " "
          << probe.request.path << "): " << reply.status << " " << reply.body;
    }
    // One's own delegation: every role that can be asked to approve.
    auto delegation =
        call(req("PUT", "/v1/delegations/p-" + role, R"({"delegateTo": ""})"), client.get());
    EXPECT_EQ(delegation.status == 403, role == "auditor" || role == "integrator")
        << role << " on its delegation: " << delegation.status << " " << delegation.body;
  }
}

class DataPermissions : public ApiTest {
 protected:
  void SetUp() override {
    ApiTest::SetUp();
    rep_a_ = token_for("rep-a", "sales", "north");
    rep_b_ = token_for("rep-b", "sales", "south");
    manager_ = token_for("mgr", "manager", "north");
    of_a_ = register_customer(
                R"({"name": "A Co", "kind": "ENTERPRISE", "ownerId": "rep-a", "team": "north"})")
                .id();
    of_b_ = register_customer(
                R"({"name": "B Co", "kind": "ENTERPRISE", "ownerId": "rep-b", "team": "south"})")
                .id();
  }
  std::string token_for(const std::string& id, const std::string& role, const std::string& team) {
    auto reply =
        put("/v1/principals/" + id, R"({"roles": [")" + role + R"("], "team": ")" + team + R"("})");
    EXPECT_EQ(reply.status, 201) << reply.body;
    return parse_json<principal::PrincipalView>(reply.body).token();
  }
  std::vector<std::string> listed(const std::string& token, const std::string& query = "") {
    list();  // the read model holds every write this test made
    auto reply = as(token, req("GET", "/v1/customers" + query));
    EXPECT_EQ(reply.status, 200) << reply.body;
    std::vector<std::string> ids;
    const auto page = parse_json<customer::CustomerList>(reply.body);
    for (const auto& c : page.items()) ids.push_back(c.id());
    return ids;
  }
  std::string rep_a_, rep_b_, manager_, of_a_, of_b_;
};

TEST_F(DataPermissions, ARepSeesAndChangesOnlyItsOwnCustomers) {
  EXPECT_EQ(as(rep_a_, req("GET", "/v1/customers/" + of_a_)).status, 200);
  auto other = as(rep_a_, req("GET", "/v1/customers/" + of_b_));
  EXPECT_EQ(other.status, 403);
  EXPECT_THAT(other.body, HasSubstr("only customers owned by 'rep-a'"));
  EXPECT_EQ(as(rep_a_, req("GET", "/v1/customers/" + of_b_ + "/history")).status, 403);
  EXPECT_EQ(as(rep_a_, req("PATCH", "/v1/customers/" + of_b_, R"({"region": "x"})")).status, 403);
  EXPECT_EQ(as(rep_a_, req("POST", "/v1/customers/" + of_b_ + "/contacts",
                           R"({"name": "C", "role": "USER"})"))
                .status,
            403);
  EXPECT_EQ(get_customer(of_b_).region(), "");  // nothing changed

  EXPECT_THAT(listed(rep_a_), ::testing::ElementsAre(of_a_));
  EXPECT_EQ(as(rep_a_, req("GET", "/v1/customers?ownerId=rep-b")).status, 403);
}

TEST_F(DataPermissions, ARepRegistersCustomersItOwnsAndCannotHandThemOver) {
  auto mine = as(rep_a_, req("POST", "/v1/customers", R"({"name": "New", "kind": "INDIVIDUAL"})"));
  ASSERT_EQ(mine.status, 201) << mine.body;
  auto registered = customer_of(mine);
  EXPECT_EQ(registered.owner_id(), "rep-a");
  EXPECT_EQ(registered.team(), "north");

  auto theirs = as(rep_a_, req("POST", "/v1/customers",
                               R"({"name": "Theirs", "kind": "INDIVIDUAL", "ownerId": "rep-b"})"));
  EXPECT_EQ(theirs.status, 403) << theirs.body;
  auto handed = as(rep_a_, req("PATCH", "/v1/customers/" + of_a_, R"({"ownerId": "rep-b"})"));
  EXPECT_EQ(handed.status, 403) << handed.body;
  EXPECT_EQ(get_customer(of_a_).owner_id(), "rep-a");

  // A CSV row naming another owner is refused with its reason; the rest are imported.
  auto imported =
      as(rep_a_, req("POST", "/v1/customers:import",
                     "name,kind,ownerId\nMine,INDIVIDUAL,\nTheirs,INDIVIDUAL,rep-b\n", "text/csv"));
  ASSERT_EQ(imported.status, 200) << imported.body;
  auto result = parse_json<api::ImportResult>(imported.body);
  EXPECT_EQ(result.created(), 1u);
  ASSERT_EQ(result.rows_size(), 2);
  EXPECT_EQ(result.rows(1).status(), "REJECTED");
  EXPECT_EQ(result.rows(1).errors(0).rule(), "permission.scope");
}

TEST_F(DataPermissions, AManagerSeesItsTeamsCustomersAndReassignsWithinTheTeam) {
  EXPECT_EQ(as(manager_, req("GET", "/v1/customers/" + of_a_)).status, 200);
  EXPECT_EQ(as(manager_, req("GET", "/v1/customers/" + of_b_)).status, 403);
  EXPECT_THAT(listed(manager_), ::testing::ElementsAre(of_a_));
  EXPECT_EQ(as(manager_, req("GET", "/v1/customers?team=south")).status, 403);

  auto moved = as(manager_, req("PATCH", "/v1/customers/" + of_a_, R"({"ownerId": "rep-c"})"));
  EXPECT_EQ(moved.status, 200) << moved.body;
  auto away = as(manager_, req("PATCH", "/v1/customers/" + of_a_, R"({"team": "south"})"));
  EXPECT_EQ(away.status, 403) << away.body;
}

TEST_F(DataPermissions, OrdersAndTasksFollowTheirCustomer) {
  auto created = post("/v1/orders", R"({"customerId": ")" + of_b_ + R"("})");
  ASSERT_EQ(created.status, 201);
  const std::string order_b = parse_json<order::Order>(created.body).id();
  auto task = post("/v1/tasks", R"({"customerId": ")" + of_b_ +
                                    R"(", "subject": "Call", "dueAt": "2999-01-01T00:00:00Z",
                                    "assigneeRole": "sales"})");
  ASSERT_EQ(task.status, 201) << task.body;
  const std::string task_b = parse_json<task::Task>(task.body).id();

  EXPECT_EQ(as(rep_a_, req("GET", "/v1/orders/" + order_b)).status, 403);
  EXPECT_EQ(as(rep_a_, req("GET", "/v1/orders/" + order_b + "/history")).status, 403);
  EXPECT_EQ(as(rep_a_, req("POST", "/v1/orders/" + order_b + ":cancel", "")).status, 403);
  EXPECT_EQ(as(rep_a_, req("POST", "/v1/orders", R"({"customerId": ")" + of_b_ + R"("})")).status,
            403);
  EXPECT_EQ(as(rep_a_, req("GET", "/v1/orders?customerId=" + of_b_)).status, 403);
  EXPECT_EQ(as(rep_a_, req("GET", "/v1/orders?ownerId=rep-b")).status, 403);
  EXPECT_EQ(as(rep_a_, req("GET", "/v1/orders")).status, 403);  // one customer's, by name
  EXPECT_EQ(as(rep_a_, req("GET", "/v1/tasks/" + task_b)).status, 403);
  EXPECT_EQ(as(rep_a_, req("GET", "/v1/tasks?customerId=" + of_b_)).status, 403);
  EXPECT_EQ(as(rep_a_, req("POST", "/v1/tasks",
                           R"({"customerId": ")" + of_b_ +
                               R"(", "subject": "s", "dueAt": "2999-01-01T00:00:00Z"})"))
                .status,
            403);
  // A task about the order alone follows the order's customer.
  EXPECT_EQ(as(rep_a_, req("POST", "/v1/tasks",
                           R"({"orderId": ")" + order_b +
                               R"(", "subject": "s", "dueAt": "2999-01-01T00:00:00Z",
                                  "assignee": "rep-a"})"))
                .status,
            403);
  auto listed_b = as(rep_b_, req("GET", "/v1/orders?customerId=" + of_b_));
  ASSERT_EQ(listed_b.status, 200);
  EXPECT_THAT(listed_b.body, HasSubstr(order_b));
  EXPECT_EQ(as(rep_b_, req("GET", "/v1/orders/" + order_b)).status, 200);
  EXPECT_EQ(as(rep_b_, req("GET", "/v1/tasks/" + task_b)).status, 200);
}

TEST_F(DataPermissions, AReassignedCustomerMovesWithItsOrdersToTheNewOwner) {
  auto created = post("/v1/orders", R"({"customerId": ")" + of_a_ + R"("})");
  ASSERT_EQ(created.status, 201);
  const std::string order = parse_json<order::Order>(created.body).id();
  ASSERT_EQ(patch("/v1/customers/" + of_a_, R"({"ownerId": "rep-b", "team": "south"})").status,
            200);

  EXPECT_EQ(as(rep_a_, req("GET", "/v1/customers/" + of_a_)).status, 403);
  EXPECT_EQ(as(rep_a_, req("GET", "/v1/orders/" + order)).status, 403);
  EXPECT_EQ(as(rep_a_, req("GET", "/v1/orders?customerId=" + of_a_)).status, 403);
  EXPECT_EQ(as(rep_b_, req("GET", "/v1/customers/" + of_a_)).status, 200);
  EXPECT_EQ(as(rep_b_, req("GET", "/v1/orders/" + order)).status, 200);
  EXPECT_EQ(as(manager_, req("GET", "/v1/customers/" + of_a_)).status, 403);  // left north
}

TEST_F(DataPermissions, AManagerDecidesOnlyItsTeamsApprovals) {
  const std::string south_manager = token_for("mgr-s", "manager", "south");
  const std::string order = submit_order_asking_a_manager(of_b_);
  list();  // the read models hold the step

  auto north_inbox = as(manager_, req("GET", "/v1/approvals"));
  ASSERT_EQ(north_inbox.status, 200);
  EXPECT_EQ(parse_json<approval::Inbox>(north_inbox.body).items_size(), 0) << north_inbox.body;
  auto south_inbox = as(south_manager, req("GET", "/v1/approvals"));
  ASSERT_EQ(south_inbox.status, 200);
  EXPECT_EQ(parse_json<approval::Inbox>(south_inbox.body).items_size(), 1) << south_inbox.body;

  const std::string decide = "/v1/approvals/" + order + ".1.1:decide";
  auto refused = as(manager_, req("POST", decide, R"({"decision": "APPROVE"})"));
  EXPECT_EQ(refused.status, 403) << refused.body;
  auto decided = as(south_manager, req("POST", decide, R"({"decision": "APPROVE"})"));
  EXPECT_EQ(decided.status, 200) << decided.body;
}

TEST_F(DataPermissions, AnAuditorReadsEverythingAndWritesNothingAnIntegratorOnlyCommandsAndFeed) {
  const std::string auditor = token_for("aud", "auditor", "");
  const std::string integrator = token_for("int", "integrator", "");
  EXPECT_EQ(as(auditor, req("GET", "/v1/customers/" + of_b_)).status, 200);
  EXPECT_EQ(as(auditor, req("GET", "/v1/customers")).status, 200);
  EXPECT_EQ(as(auditor, req("PATCH", "/v1/customers/" + of_b_, R"({"region": "x"})")).status, 403);
  EXPECT_EQ(as(auditor, req("POST", "/v1/customers", kMinimalCustomer)).status, 403);

  EXPECT_EQ(as(integrator, req("GET", "/v1/customers/" + of_b_)).status, 403);
  EXPECT_EQ(as(integrator, req("PATCH", "/v1/customers/" + of_b_, R"({"region": "x"})")).status,
            200);
  EXPECT_EQ(as(integrator, req("GET", "/v1/streams/" + of_b_ + "/events")).status, 200);
}

}  // namespace
}  // namespace crm::api_test
