#include "aggregates/catalog/catalog.h"

#include <algorithm>
#include <functional>
#include <set>

#include "aggregates/money.h"
#include "aggregates/overloaded.h"
#include "aggregates/validation.h"
#include "events/codec.h"

namespace crm::catalog {
namespace {

constexpr size_t kNameLengthMax = 200;
constexpr uint32_t kPercentMax = 100;

std::string at(const std::string& field, int index) {
  return field + "[" + std::to_string(index) + "]";
}

// Checks one amount; returns its currency when it has a valid one.
std::optional<std::string> check_money(Violations& v, const std::string& field, const Money& m) {
  if (m.amount_minor() < 0) {
    v.add(field + ".amountMinor", "money.negative",
          "Expected " + field + " of zero or more, but got " + std::to_string(m.amount_minor()));
  } else if (m.amount_minor() > kAmountMax) {
    v.add(field + ".amountMinor", "money.too_large",
          "Expected " + field + " of at most " + std::to_string(kAmountMax) + " minor units");
  }
  if (!validation::is_currency(m.currency())) {
    v.add(field + ".currency", "money.currency_format",
          "Expected " + field + ".currency as an ISO 4217 code like CNY, but got '" + m.currency() +
              "'");
    return std::nullopt;
  }
  return m.currency();
}

// Adds a violation for each entry of `ids` that repeats an earlier one.
void check_unique(Violations& v, const std::string& field,
                  const google::protobuf::RepeatedPtrField<std::string>& ids,
                  const std::string& rule) {
  std::set<std::string> seen;
  for (int i = 0; i < ids.size(); ++i) {
    if (!seen.insert(ids[i]).second)
      v.add(at(field, i), rule,
            "Expected each of " + field + " once, but '" + ids[i] + "' repeats");
  }
}

const Offer& latest(const OfferHistory& history) {
  return history.versions(history.versions_size() - 1);
}

// Offer ids named in `field` must be published offers, not this one, and (unless
// `retired_allowed`) not retired.
void check_references(Violations& v, const Catalog& catalog, const std::string& self,
                      const std::string& field,
                      const google::protobuf::RepeatedPtrField<std::string>& ids,
                      const std::string& rule_prefix, bool retired_allowed) {
  for (int i = 0; i < ids.size(); ++i) {
    const std::string& id = ids[i];
    if (id == self) {
      v.add(at(field, i), rule_prefix + "_self",
            "Expected " + field + " to name other offers, but it names '" + self + "' itself");
      continue;
    }
    const OfferHistory* other = find_offer(catalog, id);
    if (other == nullptr) {
      v.add(at(field, i), rule_prefix + "_unknown",
            "Expected " + field + " to name published offers, but there is no offer '" + id + "'");
    } else if (other->retired() && !retired_allowed) {
      v.add(at(field, i), rule_prefix + "_retired",
            "Expected " + field + " to name sellable offers, but '" + id + "' is retired");
    }
  }
}

// A path from `from` to `target` along the latest versions' `requires`, skipping `target`'s
// own (about to be replaced) edges; empty when there is none.
std::vector<std::string> requires_path(const Catalog& catalog, const std::string& from,
                                       const std::string& target) {
  std::set<std::string> visited;
  std::vector<std::string> path;
  std::function<bool(const std::string&)> visit = [&](const std::string& id) {
    path.push_back(id);
    if (id == target) return true;
    if (visited.insert(id).second) {
      if (const OfferHistory* h = find_offer(catalog, id)) {
        for (const auto& next : latest(*h).required_offers())
          if (visit(next)) return true;
      }
    }
    path.pop_back();
    return false;
  };
  return visit(from) ? path : std::vector<std::string>{};
}

void check_plans(Violations& v, const Offer& offer) {
  if (offer.pricing_plans().empty()) {
    v.add("pricingPlans", "offer.pricing_plan_required",
          "Expected at least one pricing plan, but none was given");
  }
  std::set<std::string> plan_ids;
  for (int p = 0; p < offer.pricing_plans_size(); ++p) {
    const PricingPlan& plan = offer.pricing_plans(p);
    const std::string field = at("pricingPlans", p);
    if (!validation::is_identifier(plan.id())) {
      v.add(field + ".id", "pricing_plan.id_format",
            "Expected a plan id of 1–64 letters, digits or . _ - :, but got '" + plan.id() + "'");
    } else if (!plan_ids.insert(plan.id()).second) {
      v.add(field + ".id", "pricing_plan.id_duplicate",
            "Expected plan ids to be unique in the offer, but '" + plan.id() + "' repeats");
    }
    if (!PlanKind_IsValid(plan.kind()) || plan.kind() == PLAN_KIND_UNSPECIFIED) {
      v.add(field + ".kind", "pricing_plan.kind_required",
            "Expected a plan kind: STANDARD or DISCOUNTED");
    }
    std::set<std::string> currencies;
    if (!plan.has_one_time() && !plan.has_recurring()) {
      v.add(field, "pricing_plan.price_required",
            "Expected plan '" + plan.id() +
                "' to have a oneTime or a recurring price, but it has "
                "neither");
    }
    if (plan.has_one_time()) {
      if (auto c = check_money(v, field + ".oneTime", plan.one_time())) currencies.insert(*c);
    }
    if (plan.has_recurring()) {
      if (auto c = check_money(v, field + ".recurring", plan.recurring())) currencies.insert(*c);
    }
    std::set<std::string> package_ids;
    int base_packages = 0;
    for (int k = 0; k < plan.discount_packages_size(); ++k) {
      const DiscountPackage& package = plan.discount_packages(k);
      const std::string pfield = field + "." + at("discountPackages", k);
      if (!validation::is_identifier(package.id())) {
        v.add(pfield + ".id", "discount_package.id_format",
              "Expected a package id of 1–64 letters, digits or . _ - :, but got '" + package.id() +
                  "'");
      } else if (!package_ids.insert(package.id()).second) {
        v.add(pfield + ".id", "discount_package.id_duplicate",
              "Expected package ids to be unique in the plan, but '" + package.id() + "' repeats");
      }
      if (package.base() && ++base_packages == 2) {
        v.add(pfield + ".base", "pricing_plan.base_package_duplicate",
              "Expected at most one base package in plan '" + plan.id() + "', but there are more");
      }
      if (package.percent_off() > kPercentMax) {
        v.add(pfield + ".percentOff", "discount_package.percent_range",
              "Expected percentOff between 0 and 100, but got " +
                  std::to_string(package.percent_off()));
      }
      if (package.has_amount_off()) {
        if (auto c = check_money(v, pfield + ".amountOff", package.amount_off()))
          currencies.insert(*c);
      }
      if (package.effective_modes().empty()) {
        v.add(pfield + ".effectiveModes", "discount_package.effective_mode_required",
              "Expected at least one effective mode: IMMEDIATE, NEXT_CYCLE or ON_DATE");
      }
      std::set<int> modes;
      for (int m = 0; m < package.effective_modes_size(); ++m) {
        const int mode = package.effective_modes(m);
        if (!EffectiveMode_IsValid(mode) || mode == EFFECTIVE_MODE_UNSPECIFIED) {
          v.add(pfield + "." + at("effectiveModes", m), "discount_package.effective_mode_invalid",
                "Expected IMMEDIATE, NEXT_CYCLE or ON_DATE, but got " + std::to_string(mode));
        } else if (!modes.insert(mode).second) {
          v.add(pfield + "." + at("effectiveModes", m), "discount_package.effective_mode_duplicate",
                "Expected each effective mode once, but " + EffectiveMode_Name(mode) + " repeats");
        }
      }
    }
    if (currencies.size() > 1) {
      std::string list;
      for (const auto& c : currencies) list += (list.empty() ? "" : ", ") + c;
      v.add(field, "pricing_plan.mixed_currencies",
            "Expected one currency in plan '" + plan.id() + "', but it mixes " + list);
    }
  }
}

void check_eligibility(Violations& v, const Eligibility& e) {
  for (int i = 0; i < e.customer_kinds_size(); ++i) {
    const int kind = e.customer_kinds(i);
    if (!customer::CustomerKind_IsValid(kind) || kind == 0)
      v.add(at("eligibility.customerKinds", i), "eligibility.customer_kind_invalid",
            "Expected INDIVIDUAL or ENTERPRISE, but got " + std::to_string(kind));
  }
  if (!customer::CustomerLevel_IsValid(e.min_level()))
    v.add("eligibility.minLevel", "eligibility.min_level_invalid",
          "Expected a customer level, but got " + std::to_string(e.min_level()));
  for (int i = 0; i < e.credit_levels_size(); ++i) {
    const int level = e.credit_levels(i);
    if (!customer::CreditLevel_IsValid(level) || level == 0)
      v.add(at("eligibility.creditLevels", i), "eligibility.credit_level_invalid",
            "Expected a credit level A, B, C or D, but got " + std::to_string(level));
  }
  for (int i = 0; i < e.regions_size(); ++i) {
    if (validation::is_blank(e.regions(i)) || validation::utf8_length(e.regions(i)) > 100)
      v.add(at("eligibility.regions", i), "eligibility.region_invalid",
            "Expected a region name of 1–100 characters");
  }
}

void check_read_only(Violations& v, const Offer& offer) {
  auto engine_field = [&](bool present, const std::string& field) {
    if (present)
      v.add(field, "offer.read_only_field",
            "Expected no " + field + ": the engine sets it, a publish may not");
  };
  engine_field(offer.version() != 0, "version");
  engine_field(offer.has_published_at(), "publishedAt");
  engine_field(offer.retired(), "retired");
  engine_field(offer.has_retired_at(), "retiredAt");
  engine_field(!offer.position().empty(), "position");
}

Rejection not_found(const std::string& offer_id) {
  return {Rejection::Kind::kNotFound,
          "offer.not_found",
          "Expected offer '" + offer_id + "' to be published, but there is no such offer",
          {}};
}

std::optional<Rejection> check_expected(const OfferHistory* history, const std::string& offer_id,
                                        bool has_expected, uint32_t expected) {
  if (!has_expected) return std::nullopt;
  const uint32_t current = history == nullptr ? 0 : latest(*history).version();
  if (expected == current) return std::nullopt;
  return Rejection{Rejection::Kind::kVersionMismatch,
                   "offer.version_mismatch",
                   "Expected offer '" + offer_id + "' at version " + std::to_string(expected) +
                       ", but it is at version " + std::to_string(current),
                   {}};
}

// The definition alone: what a publish changes, without the engine's fields.
std::string definition_bytes(Offer offer) {
  offer.clear_offer_id();
  offer.clear_version();
  offer.clear_published_at();
  offer.clear_retired();
  offer.clear_retired_at();
  offer.clear_position();
  return offer.SerializeAsString();
}

Decision<Event> publish(const Catalog& state, const PublishOffer& c) {
  const Offer& offer = c.offer();
  const std::string& id = offer.offer_id();
  if (!is_offer_id(id)) {
    return Decision<Event>::refuse({Rejection::Kind::kInvalid,
                                    "offer.id_format",
                                    "Expected an offer id of 1–64 letters, digits or . _ -, but "
                                    "got '" +
                                        id + "'",
                                    {}});
  }
  const OfferHistory* history = find_offer(state, id);
  if (auto r =
          check_expected(history, id, c.has_expected_offer_version(), c.expected_offer_version())) {
    return Decision<Event>::refuse(std::move(*r));
  }
  if (history != nullptr && history->retired()) {
    return Decision<Event>::refuse(
        {Rejection::Kind::kConflict,
         "offer.retired",
         "Expected a sellable offer, but '" + id + "' is retired and cannot be published again",
         {}});
  }
  if (history == nullptr && static_cast<size_t>(state.offers_size()) >= kOffersMax) {
    return Decision<Event>::refuse({Rejection::Kind::kConflict,
                                    "catalog.offers_max",
                                    "Expected at most " + std::to_string(kOffersMax) +
                                        " offers in the catalog, but it is full",
                                    {}});
  }
  if (history != nullptr && static_cast<size_t>(history->versions_size()) >= kVersionsMax) {
    return Decision<Event>::refuse({Rejection::Kind::kConflict,
                                    "offer.versions_max",
                                    "Expected at most " + std::to_string(kVersionsMax) +
                                        " versions of offer '" + id + "', but it has them all",
                                    {}});
  }

  Violations v;
  check_read_only(v, offer);
  if (validation::is_blank(offer.name())) {
    v.add("name", "offer.name_required", "Expected a name, but it is empty");
  } else if (validation::utf8_length(offer.name()) > kNameLengthMax) {
    v.add("name", "offer.name_too_long", "Expected a name of at most 200 characters");
  }
  if (!OfferKind_IsValid(offer.kind()) || offer.kind() == OFFER_KIND_UNSPECIFIED) {
    v.add("kind", "offer.kind_required", "Expected a kind: SINGLE, GROUP, BUNDLE or AGREEMENT");
  }
  if (offer.kind() == SINGLE && !offer.components().empty()) {
    v.add("components", "offer.components_not_allowed",
          "Expected no components on a SINGLE offer; use BUNDLE or GROUP to combine offers");
  }
  if ((offer.kind() == BUNDLE || offer.kind() == GROUP) && offer.components().empty()) {
    v.add("components", "offer.components_required",
          "Expected the offers a " + OfferKind_Name(offer.kind()) +
              " is made of, but none "
              "was given");
  }
  check_references(v, state, id, "components", offer.components(), "offer.component", false);
  check_unique(v, "components", offer.components(), "offer.component_duplicate");
  check_references(v, state, id, "requires", offer.required_offers(), "offer.requires", false);
  check_unique(v, "requires", offer.required_offers(), "offer.requires_duplicate");
  check_references(v, state, id, "excludes", offer.excludes(), "offer.excludes", true);
  check_unique(v, "excludes", offer.excludes(), "offer.excludes_duplicate");
  for (int i = 0; i < offer.required_offers_size(); ++i) {
    const std::string& required = offer.required_offers(i);
    if (std::find(offer.excludes().begin(), offer.excludes().end(), required) !=
        offer.excludes().end()) {
      v.add(at("requires", i), "offer.requires_excluded",
            "Expected an offer to be either required or excluded, but '" + required + "' is both");
    }
    if (required == id) continue;
    auto path = requires_path(state, required, id);
    if (!path.empty()) {
      std::string cycle = id;
      for (const auto& step : path) cycle += " → " + step;
      v.add(at("requires", i), "offer.requires_cycle",
            "Expected requires without a cycle, but " + cycle + " would be one");
    }
  }
  check_plans(v, offer);
  if (offer.has_eligibility()) check_eligibility(v, offer.eligibility());
  if (offer.max_quantity() != 0 && offer.min_quantity() > offer.max_quantity()) {
    v.add("minQuantity", "offer.quantity_range",
          "Expected minQuantity (" + std::to_string(offer.min_quantity()) +
              ") at most maxQuantity (" + std::to_string(offer.max_quantity()) + ")");
  }
  if (offer.has_deposit()) {
    const Deposit& deposit = offer.deposit();
    if (!deposit.has_amount() || deposit.amount().amount_minor() == 0) {
      v.add("deposit.amount", "deposit.amount_required",
            "Expected a deposit amount above zero (leave deposit out when none is due)");
    } else {
      check_money(v, "deposit.amount", deposit.amount());
    }
    if (!Deposit::Scope_IsValid(deposit.scope()) || deposit.scope() == Deposit::SCOPE_UNSPECIFIED)
      v.add("deposit.scope", "deposit.scope_required",
            "Expected a deposit scope: OBJECT, GROUP or CONTRACT");
  }
  if (offer.has_valid_from() && offer.has_valid_to() &&
      timestamp_to_us(offer.valid_to()) <= timestamp_to_us(offer.valid_from())) {
    v.add("validTo", "offer.validity_window", "Expected validTo after validFrom");
  }
  if (!v.empty()) return Decision<Event>::refuse(std::move(v).to_rejection());

  if (history != nullptr && definition_bytes(latest(*history)) == definition_bytes(offer))
    return {};  // the latest version already says exactly this
  OfferPublished e;
  *e.mutable_offer() = offer;
  e.mutable_offer()->set_offer_id(id);
  e.mutable_offer()->set_version(history == nullptr ? 1 : latest(*history).version() + 1);
  return {{std::move(e)}, std::nullopt};
}

Decision<Event> retire(const Catalog& state, const RetireOffer& c) {
  const OfferHistory* history = find_offer(state, c.offer_id());
  if (history == nullptr) return Decision<Event>::refuse(not_found(c.offer_id()));
  if (auto r = check_expected(history, c.offer_id(), c.has_expected_offer_version(),
                              c.expected_offer_version())) {
    return Decision<Event>::refuse(std::move(*r));
  }
  if (history->retired()) return {};  // already retired: nothing changes
  std::vector<FieldViolation> dependents;
  std::string names;
  for (const auto& other : state.offers()) {
    if (other.retired() || other.offer_id() == c.offer_id()) continue;
    const Offer& o = latest(other);
    auto mentions = [&](const auto& ids) {
      return std::find(ids.begin(), ids.end(), c.offer_id()) != ids.end();
    };
    if (mentions(o.required_offers()) || mentions(o.components())) {
      dependents.push_back(
          {"offerId", "offer.still_required",
           "Offer '" + other.offer_id() + "' requires or contains '" + c.offer_id() + "'"});
      names += (names.empty() ? "'" : ", '") + other.offer_id() + "'";
    }
  }
  if (!dependents.empty()) {
    return Decision<Event>::refuse({Rejection::Kind::kConflict, "offer.still_required",
                                    "Expected no sellable offer to require or contain '" +
                                        c.offer_id() + "', but " + names +
                                        " do; retire or republish them first",
                                    std::move(dependents)});
  }
  OfferRetired e;
  e.set_offer_id(c.offer_id());
  e.set_version(latest(*history).version());
  return {{std::move(e)}, std::nullopt};
}

OfferHistory* find_mutable(Catalog& catalog, const std::string& offer_id) {
  auto* offers = catalog.mutable_offers();
  auto it = std::lower_bound(
      offers->begin(), offers->end(), offer_id,
      [](const OfferHistory& h, const std::string& id) { return h.offer_id() < id; });
  if (it != offers->end() && it->offer_id() == offer_id) return &*it;
  // Insert keeping the order by offer id.
  const int index = static_cast<int>(it - offers->begin());
  offers->Add()->set_offer_id(offer_id);
  for (int i = offers->size() - 1; i > index; --i) offers->SwapElements(i, i - 1);
  return offers->Mutable(index);
}

}  // namespace

bool is_offer_id(std::string_view text) {
  return !text.empty() && text.size() <= 64 &&
         std::all_of(text.begin(), text.end(), [](unsigned char c) {
           return std::isalnum(c) != 0 || c == '.' || c == '_' || c == '-';
         });
}

const OfferHistory* find_offer(const Catalog& catalog, std::string_view offer_id) {
  const auto& offers = catalog.offers();
  auto it = std::lower_bound(
      offers.begin(), offers.end(), offer_id,
      [](const OfferHistory& h, std::string_view id) { return h.offer_id() < id; });
  return it != offers.end() && it->offer_id() == offer_id ? &*it : nullptr;
}

std::optional<Offer> offer_view(const Catalog& catalog, std::string_view offer_id,
                                uint32_t version) {
  const OfferHistory* history = find_offer(catalog, offer_id);
  if (history == nullptr || history->versions().empty()) return std::nullopt;
  if (version > static_cast<uint32_t>(history->versions_size())) return std::nullopt;
  Offer view = version == 0 ? latest(*history) : history->versions(static_cast<int>(version) - 1);
  view.set_retired(history->retired());
  if (history->has_retired_at()) *view.mutable_retired_at() = history->retired_at();
  return view;
}

Decision<Event> decide(const Catalog& state, const Command& command) {
  return std::visit(Overloaded{
                        [&](const PublishOffer& c) { return publish(state, c); },
                        [&](const RetireOffer& c) { return retire(state, c); },
                    },
                    command);
}

void evolve(Catalog& state, const Event& event, uint64_t version, int64_t occurred_at_us) {
  std::visit(Overloaded{
                 [&](const OfferPublished& e) {
                   OfferHistory* history = find_mutable(state, e.offer().offer_id());
                   Offer* added = history->add_versions();
                   *added = e.offer();
                   *added->mutable_published_at() = timestamp_from_us(occurred_at_us);
                 },
                 [&](const OfferRetired& e) {
                   OfferHistory* history = find_mutable(state, e.offer_id());
                   history->set_retired(true);
                   *history->mutable_retired_at() = timestamp_from_us(occurred_at_us);
                 },
             },
             event);
  state.set_version(static_cast<uint32_t>(version));
}

}  // namespace crm::catalog
