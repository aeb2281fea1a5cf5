// Bad input over HTTP: every refusal is a clear 4xx application/problem+json naming the field
// where there is one, and nothing is stored (the log holds no new event, the list and the
// existing customer are unchanged).
#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "api/server.h"
#include "tests/api/api_fixture.h"

namespace crm::api_test {
namespace {

using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

class BadInput : public ApiTest {
 protected:
  void SetUp() override {
    ApiTest::SetUp();
    existing_ = register_customer(R"({"name": "Existing", "kind": "ENTERPRISE"})");
    events_before_ = events_in_log();
  }

  std::string existing_path() const { return "/v1/customers/" + existing_.id(); }

  // Expects a registration with `body` refused with `status`, and returns the problem.
  api::Problem refused_registration(const std::string& body, int status,
                                    httplib::Headers headers = {}) {
    return expect_problem(post("/v1/customers", body, std::move(headers)), status);
  }

  // Expects no event since SetUp: the log did not grow, the list still holds only the existing
  // customer, and it is still at version 1 with one event in its history.
  void expect_nothing_stored() {
    EXPECT_EQ(events_in_log(), events_before_);
    EXPECT_THAT(all_customer_ids(), ElementsAre(existing_.id()));
    EXPECT_EQ(get_customer(existing_.id()).version(), 1u);
    EXPECT_EQ(history(existing_.id()).size(), 1u);
  }

  customer::Customer existing_;
  uint64_t events_before_ = 0;
};

TEST_F(BadInput, MalformedJsonIs400) {
  auto problem = refused_registration(R"({"name": "Zhang San", )", 400);

  EXPECT_EQ(problem.type(), "urn:crm:problem:malformed-request");
  expect_nothing_stored();
}

TEST_F(BadInput, WrongJsonTypeIs400NamingTheField) {
  auto problem = refused_registration(R"({"name": 5, "kind": "INDIVIDUAL"})", 400);

  EXPECT_THAT(fields_of(problem), Contains("name"));
  expect_nothing_stored();
}

TEST_F(BadInput, UnknownFieldIs400NamingTheField) {
  auto problem = refused_registration(R"({"nmae": "Zhang San", "kind": "INDIVIDUAL"})", 400);

  EXPECT_THAT(fields_of(problem), ElementsAre("nmae"));
  EXPECT_THAT(problem.detail(), HasSubstr("nmae"));
  expect_nothing_stored();
}

TEST_F(BadInput, UnknownFieldInPatchIs400NamingTheField) {
  auto problem = expect_problem(patch(existing_path(), R"({"regoin": "North"})"), 400);

  EXPECT_THAT(fields_of(problem), ElementsAre("regoin"));
  expect_nothing_stored();
}

TEST_F(BadInput, UnknownEnumNameIs400NamingTheField) {
  auto problem = refused_registration(R"({"name": "Zhang San", "kind": "ALIEN"})", 400);

  EXPECT_THAT(fields_of(problem), ElementsAre("kind"));
  expect_nothing_stored();
}

TEST_F(BadInput, EnumNamesAreCaseSensitive) {
  refused_registration(R"({"name": "Zhang San", "kind": "individual"})", 400);
  expect_nothing_stored();
}

TEST_F(BadInput, OutOfRangeEnumNumberIs422KindInvalid) {
  auto problem = refused_registration(R"({"name": "Zhang San", "kind": 9})", 422);

  EXPECT_EQ(problem.rule(), "customer.kind_invalid");
  EXPECT_THAT(rules_of(problem), ElementsAre("customer.kind_invalid"));
  EXPECT_THAT(fields_of(problem), ElementsAre("kind"));
  expect_nothing_stored();
}

TEST_F(BadInput, MissingNameIs422NameRequired) {
  auto problem = refused_registration(R"({"kind": "INDIVIDUAL"})", 422);

  EXPECT_EQ(problem.type(), "urn:crm:problem:rule-violation");
  EXPECT_EQ(problem.rule(), "customer.name_required");
  EXPECT_THAT(fields_of(problem), ElementsAre("name"));
  expect_nothing_stored();
}

TEST_F(BadInput, BadEmailIs422NamingEmail) {
  auto problem = refused_registration(
      R"({"name": "Zhang San", "kind": "INDIVIDUAL", "email": "not-an-address"})", 422);

  EXPECT_THAT(rules_of(problem), ElementsAre("customer.email_format"));
  EXPECT_THAT(fields_of(problem), ElementsAre("email"));
  expect_nothing_stored();
}

TEST_F(BadInput, BadPhoneIs422NamingPhone) {
  auto problem = refused_registration(
      R"({"name": "Zhang San", "kind": "INDIVIDUAL", "phone": "call me maybe"})", 422);

  EXPECT_THAT(rules_of(problem), ElementsAre("customer.phone_format"));
  EXPECT_THAT(fields_of(problem), ElementsAre("phone"));
  expect_nothing_stored();
}

TEST_F(BadInput, EveryViolationIsListed) {
  auto problem = refused_registration(R"({"kind": "INDIVIDUAL", "email": "x", "phone": "?"})", 422);

  EXPECT_THAT(fields_of(problem), ElementsAre("name", "email", "phone"));
  expect_nothing_stored();
}

TEST_F(BadInput, BadContactBirthdayIs422NamingBirthday) {
  auto problem =
      expect_problem(post(existing_path() + "/contacts",
                          R"({"name": "Wang Fang", "role": "USER", "birthday": "13-45"})"),
                     422);

  EXPECT_THAT(rules_of(problem), ElementsAre("contact.birthday_format"));
  EXPECT_THAT(fields_of(problem), ElementsAre("birthday"));
  EXPECT_EQ(get_customer(existing_.id()).contacts_size(), 0);
  expect_nothing_stored();
}

TEST_F(BadInput, BadPatchEmailIs422NamingEmail) {
  auto problem = expect_problem(patch(existing_path(), R"({"email": "@nowhere"})"), 422);

  EXPECT_THAT(fields_of(problem), ElementsAre("email"));
  expect_nothing_stored();
}

TEST_F(BadInput, OversizedBodyIs413) {
  const std::string body =
      R"({"name": ")" + std::string((1u << 20) + 1, 'x') + R"(", "kind": "INDIVIDUAL"})";

  auto problem = refused_registration(body, 413);

  EXPECT_EQ(problem.type(), "urn:crm:problem:payload-too-large");
  expect_nothing_stored();
}

// Sends `request` as raw bytes on a new connection and returns the first answer the server
// writes: its head and a body of its Content-Length (or what came within 10 s).
std::string raw_exchange(int port, const std::string& request) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  timeval timeout{10, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  std::string answer;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0 &&
      ::send(fd, request.data(), request.size(), MSG_NOSIGNAL) ==
          static_cast<ssize_t>(request.size())) {
    char buffer[4096];
    for (ssize_t n; (n = ::recv(fd, buffer, sizeof buffer, 0)) > 0;) {
      answer.append(buffer, n);
      const auto head_end = answer.find("\r\n\r\n");
      const auto length_at = answer.find("Content-Length: ");
      if (head_end == std::string::npos || length_at == std::string::npos) continue;
      const size_t length = std::stoul(answer.substr(length_at + 16));
      if (answer.size() >= head_end + 4 + length) break;
    }
  }
  ::close(fd);
  return answer;
}

// httplib would read a chunked body of any size into memory: such bodies are refused before a
// byte of them is read, and the connection is closed.
TEST_F(BadInput, ChunkedBodyIs411AndNotRead) {
  const std::string chunk(1000, 'x');
  std::string request =
      "POST /v1/customers HTTP/1.1\r\nHost: localhost\r\n"
      "Authorization: Bearer " +
      admin_token() +
      "\r\n"
      "Content-Type: application/json\r\nIdempotency-Key: chunked\r\n"
      "Transfer-Encoding: chunked\r\n\r\n3e8\r\n" +
      chunk + "\r\n";

  const std::string answer = raw_exchange(port(), request);

  EXPECT_THAT(answer, ::testing::StartsWith("HTTP/1.1 411 "));
  EXPECT_THAT(answer, HasSubstr("Content-Type: application/problem+json"));
  EXPECT_THAT(answer, HasSubstr("urn:crm:problem:length-required"));
  EXPECT_THAT(answer, HasSubstr("Connection: close"));
  expect_nothing_stored();
}

// `curl -X POST` without -d sends neither Content-Length nor a body: that is an empty body,
// answered at once, not a wait for more bytes until the connection times out.
TEST_F(BadInput, PostWithoutContentLengthIsAnEmptyBody) {
  std::string request =
      "POST /v1/customers HTTP/1.1\r\nHost: localhost\r\n"
      "Authorization: Bearer " +
      admin_token() + "\r\n\r\n";

  const std::string answer = raw_exchange(port(), request);

  EXPECT_THAT(answer, ::testing::StartsWith("HTTP/1.1 400 "));
  EXPECT_THAT(answer, HasSubstr("Content-Type: application/problem+json"));
  expect_nothing_stored();
}

TEST_F(BadInput, ARequestThatIsNotHttpGetsAProblemWithDetailAndRequestId) {
  const std::string answer = raw_exchange(port(), "NOT HTTP AT ALL\r\n\r\n");

  EXPECT_THAT(answer, ::testing::StartsWith("HTTP/1.1 400 "));
  const auto body_at = answer.find("\r\n\r\n");
  ASSERT_NE(body_at, std::string::npos) << answer;
  Reply reply{400, answer.substr(body_at + 4), {{"Content-Type", kProblemJson}}};
  auto problem = expect_problem(reply, 400);
  EXPECT_THAT(problem.request_id(), ::testing::StartsWith("req_"));
  EXPECT_THAT(answer, HasSubstr("X-Request-Id: " + problem.request_id()));
}

TEST_F(BadInput, InvalidUtf8InAJsonStringIs400) {
  auto problem =
      refused_registration("{\"name\": \"Zhang\xff\xfe San\", \"kind\": \"INDIVIDUAL\"}", 400);

  EXPECT_THAT(problem.detail(), HasSubstr("UTF-8"));
  expect_nothing_stored();
}

TEST_F(BadInput, OverlongUtf8EncodingIs400) {
  // "/" encoded in two bytes: not UTF-8.
  refused_registration("{\"name\": \"Zhang\xc0\xaf\", \"kind\": \"INDIVIDUAL\"}", 400);
  expect_nothing_stored();
}

TEST_F(BadInput, StaleIfMatchIs412) {
  auto problem = expect_problem(
      patch(existing_path(), R"({"region": "North"})", {{"If-Match", "\"7\""}}), 412);

  EXPECT_EQ(problem.type(), "urn:crm:problem:version-mismatch");
  expect_nothing_stored();
}

TEST_F(BadInput, MalformedIfMatchIs400NamingTheHeader) {
  auto problem =
      expect_problem(patch(existing_path(), R"({"region": "North"})", {{"If-Match", "abc"}}), 400);

  EXPECT_THAT(fields_of(problem), ElementsAre("If-Match"));
  expect_nothing_stored();
}

TEST_F(BadInput, ReusedIdempotencyKeyWithAnotherBodyIs409) {
  const httplib::Headers key = {{"Idempotency-Key", "change-region"}};
  auto first = patch(existing_path(), R"({"region": "North"})", key);
  ASSERT_EQ(first.status, 200) << first.body;
  customer_of(first);
  events_before_ = events_in_log();

  auto problem = expect_problem(patch(existing_path(), R"({"region": "South"})", key), 409);

  EXPECT_EQ(problem.rule(), "idempotency.key_reused");
  EXPECT_EQ(events_in_log(), events_before_);
  EXPECT_EQ(get_customer(existing_.id()).region(), "North");
  EXPECT_EQ(history(existing_.id()).size(), 2u);
}

TEST_F(BadInput, IdempotencyKeyOver200CharactersIs400) {
  auto problem =
      refused_registration(kMinimalCustomer, 400, {{"Idempotency-Key", std::string(201, 'k')}});

  EXPECT_THAT(fields_of(problem), ElementsAre("Idempotency-Key"));
  const std::string would_be = api::customer_id_for_key("admin", std::string(201, 'k'));
  expect_problem(get("/v1/customers/" + would_be), 404);
  expect_nothing_stored();

  register_customer(kMinimalCustomer, {{"Idempotency-Key", std::string(200, 'k')}});
}

TEST_F(BadInput, IdempotencyKeyWithSpacesIs400) {
  auto problem = refused_registration(kMinimalCustomer, 400, {{"Idempotency-Key", "two words"}});

  EXPECT_THAT(fields_of(problem), ElementsAre("Idempotency-Key"));
  expect_nothing_stored();
}

TEST_F(BadInput, TextPlainOnAJsonRouteIs415) {
  auto reply = call({"POST", "/v1/customers", kMinimalCustomer, "text/plain", {}});

  auto problem = expect_problem(reply, 415);
  EXPECT_THAT(problem.detail(), HasSubstr("application/json"));
  expect_nothing_stored();
}

TEST_F(BadInput, AMediaTypeThatOnlyStartsLikeJsonIs415) {
  auto reply = call({"POST", "/v1/customers", kMinimalCustomer, "application/jsonp", {}});

  expect_problem(reply, 415);
  expect_nothing_stored();
}

TEST_F(BadInput, JsonWithACharsetOrInUpperCaseIsAccepted) {
  EXPECT_EQ(call({"POST", "/v1/customers", kMinimalCustomer, "application/json; charset=utf-8", {}})
                .status,
            201);
  EXPECT_EQ(call({"POST", "/v1/customers", kMinimalCustomer, "Application/JSON", {}}).status, 201);
}

TEST_F(BadInput, APageTokenThisApiCouldNotHaveIssuedIs400) {
  auto problem = expect_problem(get("/v1/customers?pageToken=principal:admin"), 400);

  EXPECT_THAT(fields_of(problem), ElementsAre("pageToken"));
}

TEST_F(BadInput, EmptyPatchIs422ChangeEmpty) {
  auto problem = expect_problem(patch(existing_path(), "{}"), 422);

  EXPECT_EQ(problem.rule(), "customer.change_empty");
  expect_nothing_stored();
}

TEST_F(BadInput, PatchOfUnknownCustomerIs404) {
  expect_problem(patch("/v1/customers/cus_nobody", R"({"region": "North"})"), 404);
  expect_problem(post("/v1/customers/cus_nobody/contacts", R"({"name": "X", "role": "USER"})"),
                 404);
  expect_nothing_stored();
}

// "principal:admin" names a stream, but not a customer: customer routes answer 404 for it (not
// a 500 from reading a principal's state as a customer's) and store nothing.
TEST_F(BadInput, CustomerRoutesAnswer404ForAnotherKindOfStream) {
  const std::string path = "/v1/customers/principal:admin";

  expect_problem(get(path), 404);
  expect_problem(patch(path, R"({"region": "North"})"), 404);
  expect_problem(post(path + "/contacts", R"({"name": "X", "role": "USER"})"), 404);
  expect_nothing_stored();
}

TEST_F(BadInput, UnknownRouteIs404Problem) {
  auto problem = expect_problem(get("/v1/nothing-here"), 404);

  EXPECT_THAT(problem.detail(), HasSubstr("/v1/nothing-here"));
}

TEST_F(BadInput, MalformedMinPositionIs400) {
  auto problem = expect_problem(get("/v1/customers?minPosition=soon"), 400);

  EXPECT_THAT(fields_of(problem), ElementsAre("minPosition"));
}

TEST_F(BadInput, MalformedMinPositionOnHistoryStreamAndPrincipalReadsIs400) {
  for (const std::string& path :
       {existing_path() + "/history", "/v1/streams/" + existing_.id() + "/events",
        std::string("/v1/principals/admin")}) {
    auto problem = expect_problem(get(path + "?minPosition=soon"), 400);
    EXPECT_THAT(fields_of(problem), ElementsAre("minPosition")) << path;
    EXPECT_EQ(get(path + "?minPosition=" + existing_.position()).status, 200) << path;
  }
}

TEST_F(BadInput, UnknownLevelFilterIs400) {
  auto problem = expect_problem(get("/v1/customers?level=PLATINUM"), 400);

  EXPECT_THAT(fields_of(problem), ElementsAre("level"));
}

}  // namespace
}  // namespace crm::api_test
