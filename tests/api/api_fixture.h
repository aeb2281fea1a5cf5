// The fixture the HTTP tests share: a whole engine served on a loopback port (one per test, in
// its own data directory), request helpers that return status, headers and body, and parsers
// that read bodies with protobuf's JSON util, refusing unknown fields, so every parse also
// proves the body has exactly the documented shape.
#pragma once

#include <google/protobuf/util/json_util.h>
#include <gtest/gtest.h>
#include <httplib.h>

#include <charconv>
#include <latch>
#include <map>
#include <memory>
#include <optional>
#include <source_location>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "api.pb.h"
#include "customer.pb.h"
#include "order.pb.h"
#include "principal.pb.h"
#include "tests/support/test_support.h"

namespace crm::api_test {

inline constexpr char kJson[] = "application/json";
inline constexpr char kProblemJson[] = "application/problem+json";
// The smallest registration the API accepts.
inline constexpr char kMinimalCustomer[] = R"({"name": "Zhang San", "kind": "INDIVIDUAL"})";

// One HTTP answer. status is 0 when the request failed below HTTP (connection refused, reset);
// body then says why.
struct Reply {
  int status = 0;
  std::string body;
  httplib::Headers headers;

  std::string header(const std::string& name) const {
    auto it = headers.find(name);  // httplib compares header names case-insensitively
    return it == headers.end() ? "" : it->second;
  }
  bool has_header(const std::string& name) const { return headers.count(name) > 0; }
};

// A request as the tests build it. content_type is sent only with a body.
struct Request {
  std::string method = "GET";
  std::string path;
  std::string body;
  std::string content_type = kJson;
  httplib::Headers headers;
};

inline Reply send(httplib::Client& client, const Request& request) {
  httplib::Request r;
  r.method = request.method;
  r.path = request.path;
  r.headers = request.headers;
  r.body = request.body;
  if (!request.body.empty() && !request.content_type.empty())
    r.set_header("Content-Type", request.content_type);
  auto result = client.send(r);
  if (!result) return {0, "no HTTP answer: " + httplib::to_string(result.error()), {}};
  return {result->status, result->body, result->headers};
}

// Parses `json` into M with unknown fields refused; a failure is a test failure.
template <typename M>
M parse_json(const std::string& json) {
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = false;
  M message;
  auto status = google::protobuf::util::JsonStringToMessage(json, &message, options);
  EXPECT_TRUE(status.ok()) << "cannot read the body as " << M::descriptor()->full_name() << ": "
                           << status.ToString() << "\nbody: " << json;
  return message;
}

// Failures inside a helper also name the line of the test that called it.
inline ::testing::ScopedTrace called_from(const std::source_location& where) {
  return ::testing::ScopedTrace(where.file_name(), static_cast<int>(where.line()), "called here");
}

// Expects `reply` to be an RFC 9457 problem with the given status, and returns it.
inline api::Problem expect_problem(const Reply& reply, int status,
                                   std::source_location where = std::source_location::current()) {
  auto trace = called_from(where);
  EXPECT_EQ(reply.status, status) << reply.body;
  if (reply.header("Content-Type") != kProblemJson) {
    ADD_FAILURE() << "expected Content-Type " << kProblemJson << ", but got '"
                  << reply.header("Content-Type") << "'; body: " << reply.body;
    return {};
  }
  auto problem = parse_json<api::Problem>(reply.body);
  EXPECT_EQ(problem.status(), status);
  EXPECT_FALSE(problem.type().empty()) << reply.body;
  EXPECT_FALSE(problem.title().empty()) << reply.body;
  EXPECT_FALSE(problem.detail().empty()) << reply.body;
  return problem;
}

// The rules named by a problem's errors[], and the fields they name.
inline std::vector<std::string> rules_of(const api::Problem& problem) {
  std::vector<std::string> rules;
  for (const auto& e : problem.errors()) rules.push_back(e.rule());
  return rules;
}

inline std::vector<std::string> fields_of(const api::Problem& problem) {
  std::vector<std::string> fields;
  for (const auto& e : problem.errors()) fields.push_back(e.field());
  return fields;
}

// The short event type names of a history, in order.
inline std::vector<std::string> types_of(const std::vector<api::HistoryItem>& items) {
  std::vector<std::string> types;
  for (const auto& item : items) types.push_back(item.type());
  return types;
}

// "<partition>:<offset>", or nothing when `text` is not a position.
inline std::optional<std::pair<uint32_t, uint64_t>> parse_position(const std::string& text) {
  auto colon = text.find(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == text.size()) return std::nullopt;
  uint32_t partition = 0;
  uint64_t offset = 0;
  const char* end = text.data() + text.size();
  auto p = std::from_chars(text.data(), text.data() + colon, partition);
  auto o = std::from_chars(text.data() + colon + 1, end, offset);
  if (p.ec != std::errc() || p.ptr != text.data() + colon || o.ec != std::errc() || o.ptr != end)
    return std::nullopt;
  return std::make_pair(partition, offset);
}

class ApiTest : public ::testing::Test {
 protected:
  void SetUp() override { start(); }
  // The engine stops here, while what a derived fixture lends it (its clock) still lives: the
  // store's compaction filter reads that clock until the database is closed.
  void TearDown() override {
    admin_.reset();
    served_.reset();
  }

  // Starts the engine on this test's data directory; restart() stops it and starts it again.
  void start() {
    served_ = std::make_unique<testing::ServedApp>(dir_.path(), app_config(), clock());
    ASSERT_GT(served_->port(), 0);
    admin_ = served_->client();
  }
  void restart() {
    admin_.reset();
    served_.reset();
    start();
  }
  // What a test suite may change: the engine's configuration and its clock (null: the system's).
  virtual AppConfig app_config() { return {}; }
  virtual const Clock* clock() { return nullptr; }
  testing::ServedApp& served() { return *served_; }
  const std::string& data_dir() const { return dir_.path(); }

  // Requests as the admin, or with `client` when given.
  Reply call(const Request& request, httplib::Client* client = nullptr) {
    return send(client ? *client : *admin_, request);
  }
  Reply get(const std::string& path, httplib::Headers headers = {}) {
    return call({"GET", path, "", kJson, std::move(headers)});
  }
  Reply post(const std::string& path, const std::string& json, httplib::Headers headers = {}) {
    return call({"POST", path, json, kJson, std::move(headers)});
  }
  Reply patch(const std::string& path, const std::string& json, httplib::Headers headers = {}) {
    return call({"PATCH", path, json, kJson, std::move(headers)});
  }
  Reply put(const std::string& path, const std::string& json, httplib::Headers headers = {}) {
    return call({"PUT", path, json, kJson, std::move(headers)});
  }
  Reply del(const std::string& path) { return call({"DELETE", path, "", kJson, {}}); }

  // A principal with `roles` (a JSON list body, e.g. R"("clerk", "manager")"); its token.
  std::string token_with_roles(const std::string& id, const std::string& roles) {
    auto reply = put("/v1/principals/" + id, R"({"roles": [)" + roles + "]}");
    EXPECT_EQ(reply.status, 201) << reply.body;
    return parse_json<principal::PrincipalView>(reply.body).token();
  }
  // Sends `request` with `token`.
  Reply as(const std::string& token, const Request& request) {
    auto client = client_with(token);
    return call(request, client.get());
  }

  // A client that sends `token`, or no Authorization at all when it is empty.
  std::unique_ptr<httplib::Client> client_with(const std::string& token) const {
    auto client = std::make_unique<httplib::Client>("127.0.0.1", served_->port());
    client->set_keep_alive(true);
    client->set_read_timeout(30, 0);
    if (!token.empty()) client->set_bearer_token_auth(token);
    return client;
  }

  // Sends every request at once as the admin, each on its own connection, and returns the
  // replies in order. The connections are opened first, one by one, so the requests (not the
  // connection handshakes) race.
  std::vector<Reply> concurrently(const std::vector<Request>& requests) {
    std::vector<std::unique_ptr<httplib::Client>> clients;
    for (size_t i = 0; i < requests.size(); ++i) {
      clients.push_back(client_with(served_->admin_token()));
      EXPECT_EQ(send(*clients.back(), {"GET", "/healthz", "", kJson, {}}).status, 200);
    }
    std::vector<Reply> replies(requests.size());
    std::latch start(static_cast<std::ptrdiff_t>(requests.size()));
    std::vector<std::thread> threads;
    for (size_t i = 0; i < requests.size(); ++i) {
      threads.emplace_back([&, i] {
        start.arrive_and_wait();
        replies[i] = send(*clients[i], requests[i]);
      });
    }
    for (auto& thread : threads) thread.join();
    return replies;
  }

  // An order of one line for `customer_id`, submitted under a policy that asks a manager to
  // approve every order (the offer and the policy are published first); its id.
  std::string submit_order_asking_a_manager(
      const std::string& customer_id,
      std::source_location where = std::source_location::current()) {
    auto trace = called_from(where);
    EXPECT_EQ(put("/v1/catalog/offers/LINE", R"({"name": "Line", "kind": "SINGLE", "pricingPlans":
                  [{"id": "std", "kind": "STANDARD",
                    "recurring": {"amountMinor": 2900, "currency": "CNY"}}]})")
                  .status,
              201);
    EXPECT_EQ(put("/v1/approval-policies/all",
                  R"({"rules": [{"name": "every order", "steps": [{"role": "manager"}]}]})")
                  .status,
              201);
    auto created = post("/v1/orders", R"({"customerId": ")" + customer_id + R"("})");
    EXPECT_EQ(created.status, 201) << created.body;
    const std::string order = parse_json<order::Order>(created.body).id();
    EXPECT_EQ(post("/v1/orders/" + order + "/items", R"({"offerId": "LINE"})").status, 201);
    auto submitted = post("/v1/orders/" + order + ":submit", "");
    EXPECT_EQ(submitted.status, 200) << submitted.body;
    return order;
  }

  // Reads a command's reply as a Customer and remembers its position.
  customer::Customer customer_of(const Reply& reply) {
    auto customer = parse_json<customer::Customer>(reply.body);
    note_position(customer.position());
    return customer;
  }

  // Registers a customer, expecting 201.
  customer::Customer register_customer(
      const std::string& json, httplib::Headers headers = {},
      std::source_location where = std::source_location::current()) {
    auto trace = called_from(where);
    auto reply = post("/v1/customers", json, std::move(headers));
    EXPECT_EQ(reply.status, 201) << reply.body;
    return customer_of(reply);
  }

  customer::Customer get_customer(const std::string& id,
                                  std::source_location where = std::source_location::current()) {
    auto trace = called_from(where);
    auto reply = get("/v1/customers/" + id);
    EXPECT_EQ(reply.status, 200) << reply.body;
    return parse_json<customer::Customer>(reply.body);
  }

  // Every event of a customer, walking all history pages.
  std::vector<api::HistoryItem> history(
      const std::string& id, int page_size = 500,
      std::source_location where = std::source_location::current()) {
    auto trace = called_from(where);
    std::vector<api::HistoryItem> items;
    std::string token;
    for (int pages = 0; pages < 1000; ++pages) {
      std::string path = "/v1/customers/" + id + "/history?pageSize=" + std::to_string(page_size);
      if (!token.empty()) path += "&pageToken=" + token;
      auto reply = get(path);
      EXPECT_EQ(reply.status, 200) << reply.body;
      if (reply.status != 200) break;
      auto page = parse_json<api::HistoryPage>(reply.body);
      items.insert(items.end(), page.items().begin(), page.items().end());
      token = page.next_page_token();
      if (token.empty()) break;
    }
    return items;
  }

  // GET /v1/customers?<query> once the read model holds every write this test made: waits on
  // each partition written to with ?minPosition=, the last write's in the list call itself.
  customer::CustomerList list(const std::string& query = "",
                              std::source_location where = std::source_location::current()) {
    auto trace = called_from(where);
    for (const auto& [partition, offset] : written_) {
      const std::string position = std::to_string(partition) + ":" + std::to_string(offset);
      if (position == last_position_) continue;
      auto reply = get("/v1/customers?pageSize=1&minPosition=" + position);
      EXPECT_EQ(reply.status, 200) << reply.body;
    }
    std::string path = "/v1/customers?" + query;
    if (!last_position_.empty())
      path += (query.empty() ? "" : "&") + ("minPosition=" + last_position_);
    auto reply = get(path);
    EXPECT_EQ(reply.status, 200) << path << ": " << reply.body;
    return parse_json<customer::CustomerList>(reply.body);
  }

  // Ids of every customer matching `query`, walking all pages.
  std::vector<std::string> all_customer_ids(
      const std::string& query = "", int page_size = 500,
      std::source_location where = std::source_location::current()) {
    auto trace = called_from(where);
    std::vector<std::string> ids;
    std::string token;
    for (int pages = 0; pages < 1000; ++pages) {
      std::string q = "pageSize=" + std::to_string(page_size);
      if (!query.empty()) q += "&" + query;
      if (!token.empty()) q += "&pageToken=" + token;
      auto page = list(q);
      for (const auto& c : page.items()) ids.push_back(c.id());
      token = page.next_page_token();
      if (token.empty()) break;
    }
    return ids;
  }

  // Remembers a position "<partition>:<offset>" a command returned.
  void note_position(const std::string& position) {
    auto parsed = parse_position(position);
    ASSERT_TRUE(parsed) << "not a position: '" << position << "'";
    auto& highest = written_[parsed->first];
    highest = std::max(highest, parsed->second);
    last_position_ = position;
  }

  // Events in the log over all partitions: unchanged across a refused request, it proves that
  // nothing was stored.
  uint64_t events_in_log() {
    auto& log = served_->app().log();
    uint64_t total = 0;
    for (uint32_t p = 0; p < log.partition_count(); ++p) total += log.end_offset(p);
    return total;
  }

  int port() const { return served_->port(); }
  std::string admin_token() const { return served_->admin_token(); }

 private:
  testing::TempDir dir_;
  std::unique_ptr<testing::ServedApp> served_;
  std::unique_ptr<httplib::Client> admin_;
  std::map<uint32_t, uint64_t> written_;  // partition -> highest offset this test wrote
  std::string last_position_;
};

// An engine on a manual clock whose timers fire only when a test calls fire_due_timers(), so
// tests move time and see each time limit take effect exactly when they say.
class ClockedApiTest : public ApiTest {
 protected:
  static constexpr int64_t kStartUs = 1'790'000'000'000'000;
  static constexpr int64_t kHourUs = 3'600'000'000;

  AppConfig app_config() override {
    AppConfig config;
    config.timer_interval = std::chrono::hours(24);  // timers fire when a test says so
    config.processor.follow_ups = follow_ups_;
    return config;
  }
  const Clock* clock() override { return &clock_; }

  ManualClock clock_{kStartUs};
  FollowUpRules follow_ups_;  // taken at each (re)start
};

}  // namespace crm::api_test
