// The catalog over HTTP (API.md "Catalog"): publish versions of offers, read the latest or a
// given version, list, retire; who may do what; bad definitions refused naming the field.
#include <gmock/gmock.h>

#include "catalog.pb.h"
#include "tests/api/api_fixture.h"

namespace crm::api_test {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr char kPhoneLine[] = R"({
  "name": "Phone line", "kind": "SINGLE",
  "pricingPlans": [{"id": "std", "kind": "STANDARD",
    "oneTime": {"amountMinor": 5000, "currency": "CNY"},
    "recurring": {"amountMinor": 2900, "currency": "CNY"},
    "discountPackages": [{"id": "base", "base": true, "percentOff": 10,
                          "effectiveModes": ["IMMEDIATE", "NEXT_CYCLE"]}]}],
  "eligibility": {"customerKinds": ["ENTERPRISE"], "minLevel": "GROWTH"},
  "maxQuantity": 5,
  "deposit": {"amount": {"amountMinor": 10000, "currency": "CNY"}, "scope": "OBJECT"}})";

// A plain offer named `name` requiring `required` (a JSON list body, e.g. R"("A")").
std::string offer_json(const std::string& name, const std::string& required = "") {
  return R"({"name": ")" + name + R"(", "kind": "SINGLE", "requires": [)" + required +
         R"(], "pricingPlans": [{"id": "p", "kind": "STANDARD",
           "recurring": {"amountMinor": 1000, "currency": "CNY"}}]})";
}

class CatalogHttp : public ApiTest {
 protected:
  catalog::Offer put_offer(const std::string& id, const std::string& json, int status,
                           httplib::Headers headers = {},
                           std::source_location where = std::source_location::current()) {
    auto trace = called_from(where);
    auto reply = put("/v1/catalog/offers/" + id, json, std::move(headers));
    EXPECT_EQ(reply.status, status) << reply.body;
    return parse_json<catalog::Offer>(reply.body);
  }

  std::vector<std::string> listed(const std::string& query = "") {
    std::vector<std::string> ids;
    auto reply = get("/v1/catalog/offers" + query);
    EXPECT_EQ(reply.status, 200) << reply.body;
    const auto list = parse_json<catalog::OfferList>(reply.body);
    for (const auto& o : list.items()) ids.push_back(o.offer_id());
    return ids;
  }
};

TEST_F(CatalogHttp, PublishAnswers201WithVersionEtagLocationAndTheWholeOffer) {
  auto reply = put("/v1/catalog/offers/PHONE-LINE", kPhoneLine);

  ASSERT_EQ(reply.status, 201) << reply.body;
  EXPECT_EQ(reply.header("ETag"), "\"1\"");
  EXPECT_EQ(reply.header("Location"), "/v1/catalog/offers/PHONE-LINE");
  auto offer = parse_json<catalog::Offer>(reply.body);
  EXPECT_EQ(offer.offer_id(), "PHONE-LINE");
  EXPECT_EQ(offer.version(), 1u);
  EXPECT_TRUE(offer.has_published_at());
  EXPECT_THAT(offer.position(), ::testing::MatchesRegex("[0-9]+:[0-9]+"));
  EXPECT_EQ(offer.pricing_plans(0).discount_packages(0).effective_modes_size(), 2);
  EXPECT_EQ(offer.deposit().scope(), catalog::Deposit::OBJECT);
  EXPECT_EQ(offer.eligibility().min_level(), customer::GROWTH);
  // Money is a JSON number, as API.md shows it.
  EXPECT_THAT(reply.body, HasSubstr(R"("oneTime":{"amountMinor":5000,"currency":"CNY"})"));
}

TEST_F(CatalogHttp, AChangedPublishIsTheNextVersionAndAnUnchangedOneIsNot) {
  put_offer("PHONE-LINE", kPhoneLine, 201);
  std::string cheaper = kPhoneLine;
  cheaper.replace(cheaper.find("2900"), 4, "1900");

  EXPECT_EQ(put_offer("PHONE-LINE", cheaper, 200).version(), 2u);
  EXPECT_EQ(put_offer("PHONE-LINE", cheaper, 200).version(), 2u);

  auto latest = parse_json<catalog::Offer>(get("/v1/catalog/offers/PHONE-LINE").body);
  EXPECT_EQ(latest.pricing_plans(0).recurring().amount_minor(), 1900);
  auto first = get("/v1/catalog/offers/PHONE-LINE?version=1");
  ASSERT_EQ(first.status, 200) << first.body;
  EXPECT_EQ(first.header("ETag"), "\"1\"");
  EXPECT_EQ(parse_json<catalog::Offer>(first.body).pricing_plans(0).recurring().amount_minor(),
            2900);
  expect_problem(get("/v1/catalog/offers/PHONE-LINE?version=3"), 404);
  expect_problem(get("/v1/catalog/offers/PHONE-LINE?version=first"), 400);
  expect_problem(get("/v1/catalog/offers/NOWHERE"), 404);
}

TEST_F(CatalogHttp, ABadDefinitionIs422NamingEachField) {
  const std::string bad = R"({"name": "X", "kind": "SINGLE", "requires": ["X"],
    "pricingPlans": [{"id": "p", "kind": "STANDARD",
      "oneTime": {"amountMinor": -1, "currency": "CNY"},
      "recurring": {"amountMinor": 100, "currency": "USD"}}]})";

  auto problem = expect_problem(put("/v1/catalog/offers/X", bad), 422);

  EXPECT_THAT(fields_of(problem),
              ElementsAre("requires[0]", "pricingPlans[0].oneTime.amountMinor", "pricingPlans[0]"));
  EXPECT_THAT(rules_of(problem), ElementsAre("offer.requires_self", "money.negative",
                                             "pricing_plan.mixed_currencies"));
  expect_problem(get("/v1/catalog/offers/X"), 404);
}

TEST_F(CatalogHttp, ACycleOfRequiresIs422) {
  put_offer("A", offer_json("A"), 201);
  put_offer("B", offer_json("B", R"("A")"), 201);

  auto problem = expect_problem(put("/v1/catalog/offers/A", offer_json("A", R"("B")")), 422);

  EXPECT_THAT(rules_of(problem), ElementsAre("offer.requires_cycle"));
  EXPECT_THAT(problem.detail(), HasSubstr("A → B → A"));
}

TEST_F(CatalogHttp, UnknownFieldsAndAMismatchedIdAre400) {
  auto unknown =
      expect_problem(put("/v1/catalog/offers/X", R"({"name": "X", "colour": "red"})"), 400);
  EXPECT_THAT(fields_of(unknown), ElementsAre("colour"));

  auto mismatch = expect_problem(put("/v1/catalog/offers/X", R"({"offerId": "Y"})"), 400);
  EXPECT_THAT(fields_of(mismatch), ElementsAre("offerId"));
}

TEST_F(CatalogHttp, IfMatchNamesTheOffersVersion) {
  put_offer("A", offer_json("A"), 201);
  put_offer("B", offer_json("B"), 201);  // the catalog stream is at 2, offer A still at 1

  expect_problem(put("/v1/catalog/offers/A", offer_json("A2"), {{"If-Match", "\"2\""}}), 412);
  EXPECT_EQ(put_offer("A", offer_json("A2"), 200, {{"If-Match", "\"1\""}}).version(), 2u);
}

TEST_F(CatalogHttp, RetireKeepsTheOfferReadableButOutOfTheDefaultList) {
  put_offer("A", offer_json("A"), 201);
  put_offer("B", offer_json("B"), 201);

  auto reply = post("/v1/catalog/offers/A:retire", "");

  ASSERT_EQ(reply.status, 200) << reply.body;
  EXPECT_TRUE(parse_json<catalog::Offer>(reply.body).retired());
  EXPECT_TRUE(parse_json<catalog::Offer>(get("/v1/catalog/offers/A").body).retired());
  EXPECT_THAT(listed(), ElementsAre("B"));
  EXPECT_THAT(listed("?includeRetired=true"), ElementsAre("A", "B"));
  auto again = expect_problem(put("/v1/catalog/offers/A", offer_json("A")), 409);
  EXPECT_EQ(again.rule(), "offer.retired");
  expect_problem(post("/v1/catalog/offers/NOWHERE:retire", ""), 404);
}

TEST_F(CatalogHttp, AnOfferOthersRequireCannotBeRetired) {
  put_offer("PHONE-LINE", offer_json("Phone line"), 201);
  put_offer("CALL-PACK", offer_json("Call pack", R"("PHONE-LINE")"), 201);

  auto problem = expect_problem(post("/v1/catalog/offers/PHONE-LINE:retire", ""), 409);

  EXPECT_EQ(problem.rule(), "offer.still_required");
  EXPECT_THAT(problem.detail(), HasSubstr("CALL-PACK"));
}

TEST_F(CatalogHttp, ListFiltersByKindAndPages) {
  put_offer("BROADBAND", offer_json("Broadband"), 201);
  put_offer("PHONE", offer_json("Phone"), 201);
  put_offer("TV", offer_json("TV"), 201);
  put_offer("E-HOME",
            R"({"name": "My e-home", "kind": "BUNDLE", "components": ["BROADBAND", "PHONE", "TV"],
                "pricingPlans": [{"id": "p", "kind": "DISCOUNTED",
                  "recurring": {"amountMinor": 9900, "currency": "CNY"}}]})",
            201);

  EXPECT_THAT(listed("?kind=BUNDLE"), ElementsAre("E-HOME"));
  auto first = parse_json<catalog::OfferList>(get("/v1/catalog/offers?pageSize=3").body);
  ASSERT_EQ(first.items_size(), 3);
  EXPECT_EQ(first.next_page_token(), "PHONE");
  EXPECT_THAT(listed("?pageSize=3&pageToken=PHONE"), ElementsAre("TV"));
  expect_problem(get("/v1/catalog/offers?kind=COMBO"), 400);
  expect_problem(get("/v1/catalog/offers?colour=red"), 400);
  expect_problem(get("/v1/catalog/offers?pageSize=0"), 400);
}

TEST_F(CatalogHttp, EveryRoleReadsTheCatalogButOnlyPricingPublishesAndRetires) {
  put_offer("A", offer_json("A"), 201);
  const std::string clerk = token_with_roles("carl", R"("clerk")");
  const std::string pricing = token_with_roles("pia", R"("pricing")");
  const std::string auditor = token_with_roles("aude", R"("auditor")");

  EXPECT_EQ(as(clerk, {"GET", "/v1/catalog/offers/A", "", kJson, {}}).status, 200);
  EXPECT_EQ(as(auditor, {"GET", "/v1/catalog/offers", "", kJson, {}}).status, 200);
  expect_problem(as(clerk, {"PUT", "/v1/catalog/offers/B", offer_json("B"), kJson, {}}), 403);
  expect_problem(as(auditor, {"POST", "/v1/catalog/offers/A:retire", "", kJson, {}}), 403);
  EXPECT_EQ(as(pricing, {"PUT", "/v1/catalog/offers/B", offer_json("B"), kJson, {}}).status, 201);
  EXPECT_EQ(as(pricing, {"POST", "/v1/catalog/offers/B:retire", "", kJson, {}}).status, 200);
}

TEST_F(CatalogHttp, ARepeatedIdempotencyKeyReplaysTheFirstAnswer) {
  auto first = put("/v1/catalog/offers/A", offer_json("A"), {{"Idempotency-Key", "k1"}});
  ASSERT_EQ(first.status, 201) << first.body;

  auto repeat = put("/v1/catalog/offers/A", offer_json("A"), {{"Idempotency-Key", "k1"}});

  EXPECT_EQ(repeat.status, 201) << repeat.body;
  EXPECT_EQ(repeat.header("Idempotent-Replayed"), "true");
  EXPECT_EQ(parse_json<catalog::Offer>(repeat.body).version(), 1u);
  expect_problem(put("/v1/catalog/offers/A", offer_json("Other"), {{"Idempotency-Key", "k1"}}),
                 409);
}

TEST_F(CatalogHttp, TheCatalogSurvivesARestart) {
  put_offer("A", offer_json("A"), 201);
  put_offer("A", offer_json("A2"), 200);

  restart();

  EXPECT_EQ(parse_json<catalog::Offer>(get("/v1/catalog/offers/A").body).version(), 2u);
  EXPECT_EQ(parse_json<catalog::Offer>(get("/v1/catalog/offers/A?version=1").body).name(), "A");
}

}  // namespace
}  // namespace crm::api_test
