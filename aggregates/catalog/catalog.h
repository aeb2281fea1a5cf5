// The catalog (产品目录): publishing versions of offers — pricing plans, discount packages,
// eligibility, prerequisites, exclusions, quantities, deposit and validity — and retiring them.
// One aggregate for the whole catalog, so rules across offers (a cycle of `requires`, a
// component that must exist) are judged against one consistent state. Pure: no I/O, no clock.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "aggregates/rejection.h"
#include "catalog.pb.h"

namespace crm::catalog {

using Command = std::variant<PublishOffer, RetireOffer>;
using Event = std::variant<OfferPublished, OfferRetired>;

inline constexpr char kStreamId[] = "catalog:offers";
inline constexpr size_t kOffersMax = 10000;
inline constexpr size_t kVersionsMax = 1000;

// 1–64 of [A-Za-z0-9._-]; no ':' so that "/v1/catalog/offers/{id}:retire" is unambiguous.
bool is_offer_id(std::string_view text);

// Publishing an offer identical to its latest version appends nothing (PUT is idempotent).
Decision<Event> decide(const Catalog& state, const Command& command);

void evolve(Catalog& state, const Event& event, uint64_t version, int64_t occurred_at_us);

const OfferHistory* find_offer(const Catalog& catalog, std::string_view offer_id);

// The offer as a reader sees it: version `version` (0: the latest) with its retirement; nullopt
// when there is no such offer or version.
std::optional<Offer> offer_view(const Catalog& catalog, std::string_view offer_id,
                                uint32_t version = 0);

}  // namespace crm::catalog
