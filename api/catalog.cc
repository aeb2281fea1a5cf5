// Catalog routes: publish a version of an offer, read one (latest or a given version), list,
// retire. The catalog aggregate is its own read model: reads come from its state, always as
// fresh as the last acknowledged publish. ETags and If-Match name the offer's version.
#include "aggregates/catalog/catalog.h"

#include <google/protobuf/empty.pb.h>

#include <charconv>

#include "api/json.h"
#include "api/server.h"
#include "events/codec.h"
#include "workflow/aggregate_handler.h"

namespace crm::api {
namespace {

constexpr char kOfferPath[] = R"(/v1/catalog/offers/([A-Za-z0-9._-]{1,64}))";
constexpr size_t kPageDefault = 100;

void set_offer_etag(Call& call, const catalog::Offer& offer) {
  call.response.headers.erase(
      "ETag");  // a command's reply carries the stream's; offers have their own
  call.response.set_header("ETag", "\"" + std::to_string(offer.version()) + "\"");
}

}  // namespace

void Server::add_catalog_routes() {
  // The catalog as of the last acknowledged change (shared, not copied or parsed per request);
  // null and a problem reply when it cannot be read.
  auto load_catalog = [this](Call& call) -> std::shared_ptr<const catalog::Catalog> {
    auto loaded = engine_.reference().catalog();
    if (!loaded.is_ok()) {
      reply_problem(call, problem_from(loaded.status()));
      return nullptr;
    }
    return std::move(loaded.value());
  };

  // Runs a catalog command and answers with the offer as it stands after it.
  auto run = [this](Call& call, events::CommandEnvelope command, const std::string& offer_id,
                    bool created_is_201) {
    auto outcome = execute(call, std::move(command), IfMatch::kInCommand);
    if (!outcome) return;
    const auto& state = static_cast<const catalog::Catalog&>(*outcome->state);
    auto view = catalog::offer_view(state, offer_id);
    if (!view) return reply_problem(call, problem_from(Status::internal("offer missing")));
    view->set_position(format_position(outcome->position));
    set_offer_etag(call, *view);
    call.response.set_header("Location", "/v1/catalog/offers/" + offer_id);
    const bool created = view->version() == 1 && (!outcome->events.empty() || outcome->repeated);
    reply(call, created_is_201 && created ? 201 : 200, *view);
  };

  // If-Match names the offer's version; the catalog decides it, inside its own stream.
  auto offer_if_match = [this](Call& call, std::optional<uint32_t>* expected) {
    std::optional<uint64_t> version;
    if (!read_if_match(call, &version)) return false;
    if (version) *expected = static_cast<uint32_t>(*version);
    return true;
  };

  route("PUT", kOfferPath, Access::kCatalogWrite, [=, this](Call& call) {
    const std::string offer_id = call.request.matches[1];
    catalog::Offer body;
    if (!parse_body(call, &body)) return;
    std::optional<uint32_t> expected;
    if (!offer_if_match(call, &expected)) return;
    auto command = new_command(call, kCatalogStream, catalog::kStreamId, catalog::kStreamId);
    auto* publish = command.mutable_publish_offer();
    if (expected) publish->set_expected_offer_version(*expected);
    *publish->mutable_offer() = std::move(body);
    // The body may repeat the id; the catalog refuses one that differs from the path.
    if (publish->offer().offer_id().empty())
      publish->mutable_offer()->set_offer_id(offer_id);
    else if (publish->offer().offer_id() != offer_id) {
      return reply_problem(
          call, bad_request("Expected offerId to be absent or '" + offer_id +
                                "' as in the path, but got '" + publish->offer().offer_id() + "'",
                            "offerId", "offer.id_mismatch"));
    }
    run(call, std::move(command), offer_id, /*created_is_201=*/true);
  });

  route("POST", std::string(kOfferPath) + ":retire", Access::kCatalogWrite, [=, this](Call& call) {
    const std::string offer_id = call.request.matches[1];
    std::optional<uint32_t> expected;
    if (!offer_if_match(call, &expected)) return;
    if (!call.request.body.empty()) {
      google::protobuf::Empty none;
      if (!parse_body(call, &none)) return;
    }
    auto command = new_command(call, kCatalogStream, catalog::kStreamId, catalog::kStreamId);
    auto* retire = command.mutable_retire_offer();
    retire->set_offer_id(offer_id);
    if (expected) retire->set_expected_offer_version(*expected);
    run(call, std::move(command), offer_id, /*created_is_201=*/false);
  });

  route("GET", kOfferPath, Access::kCatalogRead, [=, this](Call& call) {
    if (!check_min_position(call)) return;
    const std::string offer_id = call.request.matches[1];
    uint64_t version = 0;
    if (call.request.has_param("version") &&
        !parse_count(call.request.get_param_value("version"), 1, UINT32_MAX, &version)) {
      return reply_problem(call, bad_request("Expected version to be an offer version (1 or more)",
                                             "version", "request.version"));
    }
    auto state = load_catalog(call);
    if (!state) return;
    auto view = catalog::offer_view(*state, offer_id, static_cast<uint32_t>(version));
    if (!view) {
      const bool known = catalog::find_offer(*state, offer_id) != nullptr;
      return reply_problem(call, not_found(known ? "Offer '" + offer_id + "' has no version " +
                                                       std::to_string(version)
                                                 : "No offer '" + offer_id + "'"));
    }
    set_offer_etag(call, *view);
    reply(call, 200, *view);
  });

  route("GET", "/v1/catalog/offers", Access::kCatalogRead, [=, this](Call& call) {
    for (const auto& [name, value] : call.request.params) {
      if (name != "kind" && name != "includeRetired" && name != "pageSize" && name != "pageToken" &&
          name != "minPosition") {
        return reply_problem(call, bad_request("Unknown query parameter '" + name +
                                                   "'; expected kind, includeRetired, pageSize, "
                                                   "pageToken or minPosition",
                                               name, "request.unknown_parameter"));
      }
    }
    if (!check_min_position(call)) return;
    catalog::OfferKind kind = catalog::OFFER_KIND_UNSPECIFIED;
    if (call.request.has_param("kind") &&
        (!catalog::OfferKind_Parse(call.request.get_param_value("kind"), &kind) ||
         kind == catalog::OFFER_KIND_UNSPECIFIED)) {
      return reply_problem(call, bad_request("Expected kind SINGLE, GROUP, BUNDLE or AGREEMENT",
                                             "kind", "request.kind"));
    }
    const std::string include = call.request.get_param_value("includeRetired");
    if (!include.empty() && include != "true" && include != "false") {
      return reply_problem(call, bad_request("Expected includeRetired to be true or false",
                                             "includeRetired", "request.include_retired"));
    }
    auto page_request = read_page(call, kPageDefault, catalog::is_offer_id);
    if (!page_request) return;
    const std::string& token = page_request->token;
    auto state = load_catalog(call);
    if (!state) return;
    catalog::OfferList page;
    for (const auto& history : state->offers()) {
      if (!token.empty() && history.offer_id() <= token) continue;
      if (history.retired() && include != "true") continue;
      auto view = catalog::offer_view(*state, history.offer_id());
      if (!view || (kind != catalog::OFFER_KIND_UNSPECIFIED && view->kind() != kind)) continue;
      if (static_cast<size_t>(page.items_size()) == page_request->size) {
        page.set_next_page_token(page.items(page.items_size() - 1).offer_id());
        break;
      }
      *page.add_items() = std::move(*view);
    }
    reply(call, 200, page);
  });
}

}  // namespace crm::api
