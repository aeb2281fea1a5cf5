#include "aggregates/customer/customer.h"

#include <algorithm>
#include <chrono>
#include <map>

#include "aggregates/overloaded.h"
#include "aggregates/validation.h"
#include "events/codec.h"

namespace crm::customer {
namespace {

constexpr size_t kNameLengthMax = 200;
constexpr size_t kTextLengthMax = 500;

void check_text(Violations& v, const std::string& field, const std::string& value,
                size_t length_max) {
  if (validation::utf8_length(value) > length_max) {
    v.add(field, "customer." + field + "_too_long",
          "Expected " + field + " of at most " + std::to_string(length_max) +
              " characters, but it has " + std::to_string(validation::utf8_length(value)));
  }
}

void check_name(Violations& v, const std::string& field, const std::string& name,
                const std::string& rule) {
  if (validation::is_blank(name)) {
    v.add(field, rule, "Expected a " + field + ", but it is empty");
  } else {
    check_text(v, field, name, kNameLengthMax);
  }
}

void check_email(Violations& v, const std::string& field, const std::string& email) {
  if (!email.empty() && !validation::is_email(email))
    v.add(field, "customer.email_format",
          "Expected an e-mail address like name@example.com, but got '" + email + "'");
}

void check_phone(Violations& v, const std::string& field, const std::string& phone) {
  if (!phone.empty() && !validation::is_phone(phone))
    v.add(field, "customer.phone_format",
          "Expected a phone number of digits with optional + - ( ), but got '" + phone + "'");
}

void check_owner(Violations& v, const std::string& field, const std::string& owner_id) {
  if (!owner_id.empty() && !validation::is_identifier(owner_id))
    v.add(field, "customer.owner_format",
          "Expected an owner principal id of up to 64 letters, digits or . _ - :, but got '" +
              owner_id + "'");
}

template <typename Enum>
void check_enum(Violations& v, const std::string& field, int value, bool (*is_valid)(int),
                bool required) {
  if (!is_valid(value) || (required && value == 0)) {
    v.add(field, "customer." + field + (value == 0 ? "_required" : "_invalid"),
          value == 0 ? "Expected a " + field + ", but none was given"
                     : "Expected a known " + field + ", but got " + std::to_string(value));
  }
}

Rejection not_found(const std::string& customer_id) {
  return {Rejection::Kind::kNotFound,
          "customer.not_found",
          "Expected customer '" + customer_id + "' to exist, but no such customer is registered",
          {}};
}

Decision<Event> register_customer(const Customer& state, const std::string& customer_id,
                                  const RegisterCustomer& c) {
  if (state.version() != 0) {
    return Decision<Event>::refuse(
        {Rejection::Kind::kConflict,
         "customer.already_registered",
         "Expected a new customer id, but customer '" + customer_id + "' is already registered",
         {}});
  }
  Violations v;
  check_name(v, "name", c.name(), "customer.name_required");
  check_enum<CustomerKind>(v, "kind", c.kind(), CustomerKind_IsValid, true);
  check_enum<CustomerLevel>(v, "level", c.level(), CustomerLevel_IsValid, false);
  check_enum<CreditLevel>(v, "creditLevel", c.credit_level(), CreditLevel_IsValid, false);
  check_enum<CustomerStage>(v, "stage", c.stage(), CustomerStage_IsValid, false);
  check_text(v, "certificateNo", c.certificate_no(), 64);
  check_text(v, "region", c.region(), 100);
  check_text(v, "industry", c.industry(), 100);
  check_text(v, "address", c.address(), kTextLengthMax);
  check_text(v, "team", c.team(), 100);
  check_owner(v, "ownerId", c.owner_id());
  check_email(v, "email", c.email());
  check_phone(v, "phone", c.phone());
  if (!v.empty()) return Decision<Event>::refuse(std::move(v).to_rejection());

  CustomerRegistered e;
  e.set_customer_id(customer_id);
  e.set_name(c.name());
  e.set_kind(c.kind());
  e.set_certificate_no(c.certificate_no());
  e.set_level(c.level() == CUSTOMER_LEVEL_UNSPECIFIED ? STANDARD : c.level());
  e.set_credit_level(c.credit_level());
  e.set_region(c.region());
  e.set_industry(c.industry());
  e.set_owner_id(c.owner_id());
  e.set_team(c.team());
  e.set_stage(c.stage() == CUSTOMER_STAGE_UNSPECIFIED ? PROSPECT : c.stage());
  e.set_address(c.address());
  e.set_phone(c.phone());
  e.set_email(c.email());
  return {{std::move(e)}, std::nullopt};
}

Decision<Event> update_customer(const Customer& state, const std::string& customer_id,
                                const UpdateCustomer& c) {
  if (state.version() == 0) return Decision<Event>::refuse(not_found(customer_id));
  if (c.ByteSizeLong() == 0) {
    return Decision<Event>::refuse({Rejection::Kind::kInvalid,
                                    "customer.change_empty",
                                    "Expected at least one field to change, but none was given",
                                    {}});
  }
  Violations v;
  if (c.has_name()) check_name(v, "name", c.name(), "customer.name_required");
  if (c.has_certificate_no()) check_text(v, "certificateNo", c.certificate_no(), 64);
  if (c.has_region()) check_text(v, "region", c.region(), 100);
  if (c.has_industry()) check_text(v, "industry", c.industry(), 100);
  if (c.has_address()) check_text(v, "address", c.address(), kTextLengthMax);
  if (c.has_team()) check_text(v, "team", c.team(), 100);
  if (c.has_email()) check_email(v, "email", c.email());
  if (c.has_phone()) check_phone(v, "phone", c.phone());
  if (c.has_owner_id()) check_owner(v, "ownerId", c.owner_id());
  if (c.has_level()) check_enum<CustomerLevel>(v, "level", c.level(), CustomerLevel_IsValid, true);
  if (c.has_credit_level())
    check_enum<CreditLevel>(v, "creditLevel", c.credit_level(), CreditLevel_IsValid, true);
  if (c.has_stage()) check_enum<CustomerStage>(v, "stage", c.stage(), CustomerStage_IsValid, true);
  if (!v.empty()) return Decision<Event>::refuse(std::move(v).to_rejection());

  std::vector<Event> events;
  CustomerProfileChanged profile;
  bool profile_changed = false;
  using P = CustomerProfileChanged;
  auto diff = [&](bool present, const std::string& now, const std::string& wanted,
                  std::string* (P::*field)()) {
    if (present && now != wanted) {
      *(profile.*field)() = wanted;
      profile_changed = true;
    }
  };
  diff(c.has_name(), state.name(), c.name(), &P::mutable_name);
  diff(c.has_certificate_no(), state.certificate_no(), c.certificate_no(),
       &P::mutable_certificate_no);
  diff(c.has_address(), state.address(), c.address(), &P::mutable_address);
  diff(c.has_region(), state.region(), c.region(), &P::mutable_region);
  diff(c.has_industry(), state.industry(), c.industry(), &P::mutable_industry);
  diff(c.has_phone(), state.phone(), c.phone(), &P::mutable_phone);
  diff(c.has_email(), state.email(), c.email(), &P::mutable_email);
  if (profile_changed) events.emplace_back(std::move(profile));

  if (c.has_level() && c.level() != state.level()) {
    CustomerLevelChanged e;
    e.set_from(state.level());
    e.set_to(c.level());
    events.emplace_back(std::move(e));
  }
  if (c.has_credit_level() && c.credit_level() != state.credit_level()) {
    CustomerCreditLevelChanged e;
    e.set_from(state.credit_level());
    e.set_to(c.credit_level());
    events.emplace_back(std::move(e));
  }
  const std::string& owner = c.has_owner_id() ? c.owner_id() : state.owner_id();
  const std::string& team = c.has_team() ? c.team() : state.team();
  if (owner != state.owner_id() || team != state.team()) {
    CustomerOwnerChanged e;
    e.set_from_owner_id(state.owner_id());
    e.set_to_owner_id(owner);
    e.set_from_team(state.team());
    e.set_to_team(team);
    events.emplace_back(std::move(e));
  }
  if (c.has_stage() && c.stage() != state.stage()) {
    CustomerStageChanged e;
    e.set_from(state.stage());
    e.set_to(c.stage());
    events.emplace_back(std::move(e));
  }
  return {std::move(events), std::nullopt};
}

Decision<Event> add_contact(const Customer& state, const std::string& customer_id,
                            const AddContact& c) {
  if (state.version() == 0) return Decision<Event>::refuse(not_found(customer_id));
  if (static_cast<size_t>(state.contacts_size()) >= kContactsMax) {
    return Decision<Event>::refuse({Rejection::Kind::kConflict,
                                    "customer.contacts_max",
                                    "Expected at most " + std::to_string(kContactsMax) +
                                        " contacts per customer, but '" + customer_id +
                                        "' has them all",
                                    {}});
  }
  Violations v;
  check_name(v, "name", c.name(), "contact.name_required");
  if (!ContactRole_IsValid(c.role()) || c.role() == CONTACT_ROLE_UNSPECIFIED) {
    v.add("role", "contact.role_required",
          "Expected a role: DECISION_MAKER, INFLUENCER, BLOCKER or USER");
  }
  check_email(v, "email", c.email());
  check_phone(v, "phone", c.phone());
  if (!c.birthday().empty() && !validation::is_month_day(c.birthday())) {
    v.add("birthday", "contact.birthday_format",
          "Expected a birthday as MM-DD (e.g. 04-23), but got '" + c.birthday() + "'");
  }
  if (!v.empty()) return Decision<Event>::refuse(std::move(v).to_rejection());

  ContactAdded e;
  Contact* contact = e.mutable_contact();
  contact->set_id("contact-" +
                  std::to_string(state.contacts_size() + 1));  // contacts are never removed
  contact->set_name(c.name());
  contact->set_role(c.role());
  contact->set_phone(c.phone());
  contact->set_email(c.email());
  contact->set_birthday(c.birthday());
  return {{std::move(e)}, std::nullopt};
}

// Fulfilment of order items. Repeats change nothing: an instance already added, already ended
// or already changed to the same plan is skipped, so a replayed activation cannot double it.
Decision<Event> apply_product_changes(const Customer& state, const std::string& customer_id,
                                      const ApplyProductChanges& c) {
  if (state.version() == 0) return Decision<Event>::refuse(not_found(customer_id));
  std::vector<Event> events;
  for (const auto& change : c.changes()) {
    const ProductInstance* held = find_instance(state, change.instance().id());
    switch (change.kind()) {
      case ProductChange::START:
        if (held == nullptr) {
          ProductInstanceAdded e;
          *e.mutable_instance() = change.instance();
          events.emplace_back(std::move(e));
        }
        break;
      case ProductChange::CHANGE: {
        if (held == nullptr) {
          return Decision<Event>::refuse({Rejection::Kind::kConflict,
                                          "product_instance.not_held",
                                          "Expected customer '" + customer_id +
                                              "' to hold product instance '" +
                                              change.instance().id() + "', but it does not",
                                          {}});
        }
        ProductInstance next = *held;
        next.set_pricing_plan_id(change.instance().pricing_plan_id());
        next.set_offer_version(change.instance().offer_version());
        *next.mutable_discount_package_ids() = change.instance().discount_package_ids();
        next.set_order_id(change.instance().order_id());
        if (next.SerializeAsString() == held->SerializeAsString()) break;
        ProductInstanceChanged e;
        e.set_from_pricing_plan_id(held->pricing_plan_id());
        *e.mutable_instance() = std::move(next);
        events.emplace_back(std::move(e));
        break;
      }
      case ProductChange::END:
        if (held != nullptr) {
          ProductInstanceEnded e;
          e.set_instance_id(held->id());
          e.set_order_id(change.instance().order_id());
          events.emplace_back(std::move(e));
        }
        break;
      default:
        return Decision<Event>::refuse({Rejection::Kind::kInvalid,
                                        "product_change.kind",
                                        "Expected a product change ADD, CHANGE or END",
                                        {}});
    }
  }
  return {std::move(events), std::nullopt};
}

Contact* find_contact(Customer& state, const std::string& contact_id) {
  for (auto& contact : *state.mutable_contacts())
    if (contact.id() == contact_id) return &contact;
  return nullptr;
}

// A birthday greeting, once a year: a timer left behind (the contact greeted for that year
// already) changes nothing.
Decision<Event> open_birthday_greeting(const Customer& state, const std::string& customer_id,
                                       const OpenBirthdayGreeting& c) {
  if (state.version() == 0) return Decision<Event>::refuse(not_found(customer_id));
  for (const auto& contact : state.contacts()) {
    if (contact.id() != c.contact_id()) continue;
    if (contact.birthday().empty() || c.year() <= contact.greeted_year()) return {};
    BirthdayGreetingOpened e;
    e.set_contact_id(contact.id());
    e.set_year(c.year());
    e.set_task_id("greet-" + customer_id + "-" + contact.id() + "-" + std::to_string(c.year()));
    return {{std::move(e)}, std::nullopt};
  }
  return {};
}

Decision<Event> open_vip_revisit(const Customer& state, const std::string& customer_id) {
  if (state.version() == 0) return Decision<Event>::refuse(not_found(customer_id));
  if (state.level() != VIP) return {};  // no longer VIP: no revisit
  VipRevisitOpened e;
  e.set_number(state.vip_revisits() + 1);
  e.set_task_id("vip-" + customer_id + "-" + std::to_string(e.number()));
  return {{std::move(e)}, std::nullopt};
}

// Civil dates in the reminders' time zone.
using std::chrono::days;
using std::chrono::microseconds;
using std::chrono::year_month_day;

year_month_day local_date(int64_t us, int64_t utc_offset_us) {
  return year_month_day(std::chrono::floor<days>(
      std::chrono::sys_time<microseconds>(microseconds(us + utc_offset_us))));
}

int64_t local_midnight_us(year_month_day date, int64_t utc_offset_us) {
  return std::chrono::duration_cast<microseconds>(std::chrono::sys_days(date).time_since_epoch())
             .count() -
         utc_offset_us;
}

// "MM-DD" in `year`; 02-29 is 02-28 in a common year.
year_month_day birthday_in(int year, const std::string& month_day) {
  const unsigned month = static_cast<unsigned>(std::stoi(month_day.substr(0, 2)));
  const unsigned day = static_cast<unsigned>(std::stoi(month_day.substr(3, 2)));
  year_month_day date{std::chrono::year(year), std::chrono::month(month), std::chrono::day(day)};
  if (!date.ok())
    date = year_month_day{std::chrono::year(year), std::chrono::month(month), std::chrono::day(28)};
  return date;
}

// An order settled with the customer leaves nothing on the account in any currency.
bool settled(const OrderBalance& balance) {
  return std::all_of(balance.net().begin(), balance.net().end(),
                     [](const auto& m) { return m.amount_minor() == 0; });
}

}  // namespace

std::vector<Reminder> reminders(const Customer& state, const ReminderRules& rules) {
  std::vector<Reminder> out;
  if (state.version() == 0) return out;
  const int64_t created_us = timestamp_to_us(state.created_at());
  if (state.level() == VIP && rules.vip_every_us > 0) {
    int64_t base = state.has_vip_since() ? timestamp_to_us(state.vip_since()) : created_us;
    if (state.has_last_vip_revisit_at())
      base = std::max(base, timestamp_to_us(state.last_vip_revisit_at()));
    out.push_back({base + rules.vip_every_us, kVipRevisitReminder, "", 0});
  }
  for (const auto& contact : state.contacts()) {
    if (!validation::is_month_day(contact.birthday())) continue;
    int year = contact.greeted_year() + 1;
    if (contact.greeted_year() == 0) {
      // (A contact stored before contacts recorded when they were added counts from the
      // customer's last change: its birthdays before then are never greeted late.)
      const auto added = local_date(contact.has_added_at() ? timestamp_to_us(contact.added_at())
                                                           : timestamp_to_us(state.updated_at()),
                                    rules.utc_offset_us);
      year = static_cast<int>(added.year());
      if (birthday_in(year, contact.birthday()) < added) ++year;
    }
    out.push_back({local_midnight_us(birthday_in(year, contact.birthday()), rules.utc_offset_us),
                   kBirthdayReminderPrefix + contact.id(), contact.id(), year});
  }
  return out;
}

const ProductInstance* find_instance(const Customer& state, const std::string& instance_id) {
  for (const auto& instance : state.product_instances())
    if (instance.id() == instance_id) return &instance;
  return nullptr;
}

Decision<Event> decide(const Customer& state, const std::string& customer_id,
                       const Command& command) {
  return std::visit(
      Overloaded{
          [&](const RegisterCustomer& c) { return register_customer(state, customer_id, c); },
          [&](const UpdateCustomer& c) { return update_customer(state, customer_id, c); },
          [&](const AddContact& c) { return add_contact(state, customer_id, c); },
          [&](const ApplyProductChanges& c) {
            return apply_product_changes(state, customer_id, c);
          },
          [&](const SetOrderBalance& c) -> Decision<Event> {
            if (state.version() == 0) return Decision<Event>::refuse(not_found(customer_id));
            OrderBalanceChanged e;
            e.mutable_order_balance()->set_order_id(c.order_id());
            *e.mutable_order_balance()->mutable_net() = c.net();
            const OrderBalance* held = nullptr;
            for (const auto& b : state.order_balances())
              if (b.order_id() == c.order_id()) held = &b;
            const bool unchanged =
                held ? held->SerializeAsString() == e.order_balance().SerializeAsString()
                     : settled(e.order_balance());  // not held means it leaves nothing
            if (unchanged) return {};
            return {{std::move(e)}, std::nullopt};
          },
          [&](const OpenBirthdayGreeting& c) {
            return open_birthday_greeting(state, customer_id, c);
          },
          [&](const OpenVipRevisit&) { return open_vip_revisit(state, customer_id); },
      },
      command);
}

void evolve(Customer& state, const Event& event, uint64_t version, int64_t occurred_at_us) {
  std::visit(Overloaded{
                 [&](const CustomerRegistered& e) {
                   state.set_id(e.customer_id());
                   state.set_name(e.name());
                   state.set_kind(e.kind());
                   state.set_certificate_no(e.certificate_no());
                   state.set_level(e.level());
                   state.set_credit_level(e.credit_level());
                   state.set_region(e.region());
                   state.set_industry(e.industry());
                   state.set_owner_id(e.owner_id());
                   state.set_team(e.team());
                   state.set_stage(e.stage());
                   state.set_address(e.address());
                   state.set_phone(e.phone());
                   state.set_email(e.email());
                   *state.mutable_created_at() = timestamp_from_us(occurred_at_us);
                   if (e.level() == VIP) *state.mutable_vip_since() = state.created_at();
                 },
                 [&](const CustomerProfileChanged& e) {
                   if (e.has_name()) state.set_name(e.name());
                   if (e.has_certificate_no()) state.set_certificate_no(e.certificate_no());
                   if (e.has_address()) state.set_address(e.address());
                   if (e.has_region()) state.set_region(e.region());
                   if (e.has_industry()) state.set_industry(e.industry());
                   if (e.has_phone()) state.set_phone(e.phone());
                   if (e.has_email()) state.set_email(e.email());
                 },
                 [&](const CustomerLevelChanged& e) {
                   if (e.to() == VIP && e.from() != VIP)
                     *state.mutable_vip_since() = timestamp_from_us(occurred_at_us);
                   state.set_level(e.to());
                 },
                 [&](const CustomerCreditLevelChanged& e) { state.set_credit_level(e.to()); },
                 [&](const CustomerOwnerChanged& e) {
                   state.set_owner_id(e.to_owner_id());
                   state.set_team(e.to_team());
                 },
                 [&](const CustomerStageChanged& e) { state.set_stage(e.to()); },
                 [&](const ContactAdded& e) {
                   auto* contact = state.add_contacts();
                   *contact = e.contact();
                   *contact->mutable_added_at() = timestamp_from_us(occurred_at_us);
                 },
                 [&](const BirthdayGreetingOpened& e) {
                   if (auto* contact = find_contact(state, e.contact_id()))
                     contact->set_greeted_year(e.year());
                 },
                 [&](const VipRevisitOpened& e) {
                   state.set_vip_revisits(e.number());
                   *state.mutable_last_vip_revisit_at() = timestamp_from_us(occurred_at_us);
                 },
                 [&](const ProductInstanceAdded& e) {
                   auto* instance = state.add_product_instances();
                   *instance = e.instance();
                   *instance->mutable_since() = timestamp_from_us(occurred_at_us);
                 },
                 [&](const ProductInstanceChanged& e) {
                   for (auto& instance : *state.mutable_product_instances()) {
                     if (instance.id() != e.instance().id()) continue;
                     auto since = instance.since();
                     instance = e.instance();
                     *instance.mutable_since() = since;
                   }
                 },
                 [&](const OrderBalanceChanged& e) {
                   // Only the orders that leave something on the account are held: a settled
                   // one adds nothing, so the list stays as long as the open orders, however
                   // many orders the customer ever had. (Entries a state kept from before are
                   // dropped here too.) A currency once in the balance stays in it, at 0 when
                   // everything is settled.
                   auto* held = state.mutable_order_balances();
                   google::protobuf::RepeatedPtrField<OrderBalance> kept;
                   bool found = false;
                   for (auto& b : *held) {
                     if (b.order_id() == e.order_balance().order_id()) {
                       found = true;
                       b = e.order_balance();  // keeps its place in the list
                     }
                     if (!settled(b)) kept.Add(std::move(b));
                   }
                   if (!found && !settled(e.order_balance())) *kept.Add() = e.order_balance();
                   held->Swap(&kept);
                   std::map<std::string, int64_t> sums;
                   for (const auto& m : state.balance()) sums[m.currency()] = 0;
                   // Logs of earlier versions hold settled events of orders never held; their
                   // currency entered the balance at 0 then, and must on a replay too.
                   for (const auto& m : e.order_balance().net()) sums.try_emplace(m.currency(), 0);
                   for (const auto& b : state.order_balances())
                     for (const auto& m : b.net()) sums[m.currency()] += m.amount_minor();
                   state.clear_balance();
                   for (const auto& [currency, amount] : sums) {
                     auto* m = state.add_balance();
                     m->set_currency(currency);
                     m->set_amount_minor(amount);
                   }
                 },
                 [&](const ProductInstanceEnded& e) {
                   auto* instances = state.mutable_product_instances();
                   for (int i = 0; i < instances->size(); ++i) {
                     if (instances->Get(i).id() != e.instance_id()) continue;
                     instances->DeleteSubrange(i, 1);
                     break;
                   }
                 },
             },
             event);
  state.set_version(version);
  *state.mutable_updated_at() = timestamp_from_us(occurred_at_us);
}

}  // namespace crm::customer
