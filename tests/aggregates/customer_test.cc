// Customer aggregate: given events, when a command, then events or the rule that refused it.
#include "aggregates/customer/customer.h"

#include <google/protobuf/util/message_differencer.h>
#include <google/protobuf/util/time_util.h>
#include <gtest/gtest.h>

#include "events/codec.h"

namespace crm::customer {
namespace {

constexpr char kId[] = "cus_1";
constexpr int64_t kT0 = 1'790'000'000'000'000;

RegisterCustomer acme() {
  RegisterCustomer c;
  c.set_name("Acme Telecom Ltd");
  c.set_kind(ENTERPRISE);
  c.set_certificate_no("91310000MA1K");
  c.set_level(VIP);
  c.set_credit_level(A);
  c.set_region("north");
  c.set_industry("retail");
  c.set_owner_id("sales-1");
  c.set_team("team-north");
  return c;
}

class Spec {
 public:
  Spec& given(const std::vector<Event>& events) {
    for (const auto& e : events) {
      ++version_;
      evolve(state_, e, version_, at_us_ != 0 ? at_us_ : kT0 + static_cast<int64_t>(version_));
    }
    return *this;
  }
  // Events given from now on occurred at `us`.
  Spec& at(int64_t us) {
    at_us_ = us;
    return *this;
  }
  Spec& given_registered() {
    auto d = decide(state_, kId, acme());
    EXPECT_FALSE(d.rejection);
    return given(d.events);
  }
  Decision<Event> when(const Command& command) { return decide(state_, kId, command); }
  const Customer& state() const { return state_; }

 private:
  Customer state_;
  uint64_t version_ = 0;
  int64_t at_us_ = 0;
};

void expect_refused(const Decision<Event>& d, const std::string& rule, Rejection::Kind kind) {
  ASSERT_TRUE(d.rejection.has_value()) << "expected rule " << rule;
  EXPECT_EQ(d.rejection->rule, rule);
  EXPECT_EQ(d.rejection->kind, kind);
  EXPECT_TRUE(d.events.empty());
}

bool has_violation(const Decision<Event>& d, const std::string& field, const std::string& rule) {
  if (!d.rejection) return false;
  for (const auto& v : d.rejection->violations)
    if (v.field == field && v.rule == rule) return true;
  return false;
}

TEST(CustomerRegister, RegistersWithDefaults) {
  RegisterCustomer c;
  c.set_name("Li Lei");
  c.set_kind(INDIVIDUAL);
  auto d = Spec().when(c);
  ASSERT_FALSE(d.rejection);
  ASSERT_EQ(d.events.size(), 1u);
  const auto& e = std::get<CustomerRegistered>(d.events[0]);
  EXPECT_EQ(e.customer_id(), kId);
  EXPECT_EQ(e.level(), STANDARD) << "level defaults to STANDARD";
  EXPECT_EQ(e.stage(), PROSPECT) << "stage defaults to PROSPECT";
}

TEST(CustomerRegister, FoldsIntoState) {
  Spec spec;
  spec.given_registered();
  EXPECT_EQ(spec.state().id(), kId);
  EXPECT_EQ(spec.state().version(), 1u);
  EXPECT_EQ(spec.state().name(), "Acme Telecom Ltd");
  EXPECT_EQ(spec.state().level(), VIP);
  EXPECT_EQ(spec.state().owner_id(), "sales-1");
  EXPECT_EQ(spec.state().created_at().seconds(), (kT0 + 1) / 1000000);
}

TEST(CustomerRegister, RefusesASecondRegistration) {
  Spec spec;
  spec.given_registered();
  expect_refused(spec.when(acme()), "customer.already_registered", Rejection::Kind::kConflict);
}

TEST(CustomerRegister, NamesEveryBrokenRule) {
  RegisterCustomer c = acme();
  c.set_name("   ");
  c.set_kind(CUSTOMER_KIND_UNSPECIFIED);
  c.set_email("not-an-email");
  c.set_phone("call me");
  c.set_owner_id("bad owner id");
  auto d = Spec().when(c);
  ASSERT_TRUE(d.rejection);
  EXPECT_EQ(d.rejection->kind, Rejection::Kind::kInvalid);
  EXPECT_EQ(d.rejection->rule, "customer.name_required") << "the first rule broken leads";
  EXPECT_TRUE(has_violation(d, "name", "customer.name_required"));
  EXPECT_TRUE(has_violation(d, "kind", "customer.kind_required"));
  EXPECT_TRUE(has_violation(d, "email", "customer.email_format"));
  EXPECT_TRUE(has_violation(d, "phone", "customer.phone_format"));
  EXPECT_TRUE(has_violation(d, "ownerId", "customer.owner_format"));
  EXPECT_EQ(d.rejection->violations.size(), 5u);
}

TEST(CustomerRegister, RefusesEnumNumbersOutOfRange) {
  RegisterCustomer c = acme();
  c.set_kind(static_cast<CustomerKind>(9));
  c.set_credit_level(static_cast<CreditLevel>(42));
  auto d = Spec().when(c);
  EXPECT_TRUE(has_violation(d, "kind", "customer.kind_invalid"));
  EXPECT_TRUE(has_violation(d, "creditLevel", "customer.creditLevel_invalid"));
}

TEST(CustomerRegister, CountsLengthInCharactersNotBytes) {
  RegisterCustomer c = acme();
  std::string name;
  for (int i = 0; i < 200; ++i) name += "电";  // 200 characters, 600 bytes
  c.set_name(name);
  EXPECT_FALSE(Spec().when(c).rejection);
  c.set_name(name + "信");
  EXPECT_TRUE(has_violation(Spec().when(c), "name", "customer.name_too_long"));
}

TEST(CustomerUpdate, EachKindOfChangeIsItsOwnEvent) {
  Spec spec;
  spec.given_registered();
  UpdateCustomer u;
  u.set_name("Acme Group");
  u.set_address("1 Harbour Rd");
  u.set_level(GROWTH);
  u.set_credit_level(C);
  u.set_owner_id("sales-2");
  u.set_stage(ACTIVE);
  auto d = spec.when(u);
  ASSERT_FALSE(d.rejection);
  ASSERT_EQ(d.events.size(), 5u);
  const auto& profile = std::get<CustomerProfileChanged>(d.events[0]);
  EXPECT_EQ(profile.name(), "Acme Group");
  EXPECT_EQ(profile.address(), "1 Harbour Rd");
  EXPECT_FALSE(profile.has_region()) << "only changed fields are in the event";
  EXPECT_EQ(std::get<CustomerLevelChanged>(d.events[1]).from(), VIP);
  EXPECT_EQ(std::get<CustomerLevelChanged>(d.events[1]).to(), GROWTH);
  EXPECT_EQ(std::get<CustomerCreditLevelChanged>(d.events[2]).to(), C);
  EXPECT_EQ(std::get<CustomerOwnerChanged>(d.events[3]).from_owner_id(), "sales-1");
  EXPECT_EQ(std::get<CustomerOwnerChanged>(d.events[3]).to_owner_id(), "sales-2");
  EXPECT_EQ(std::get<CustomerStageChanged>(d.events[4]).to(), ACTIVE);

  spec.given(d.events);
  EXPECT_EQ(spec.state().name(), "Acme Group");
  EXPECT_EQ(spec.state().level(), GROWTH);
  EXPECT_EQ(spec.state().credit_level(), C);
  EXPECT_EQ(spec.state().owner_id(), "sales-2");
  EXPECT_EQ(spec.state().team(), "team-north") << "team unchanged when not given";
  EXPECT_EQ(spec.state().stage(), ACTIVE);
  EXPECT_EQ(spec.state().region(), "north");
  EXPECT_EQ(spec.state().version(), 6u);
}

TEST(CustomerUpdate, ChangingNothingAppendsNothing) {
  Spec spec;
  spec.given_registered();
  UpdateCustomer same;
  same.set_name("Acme Telecom Ltd");
  same.set_level(VIP);
  same.set_owner_id("sales-1");
  auto d = spec.when(same);
  EXPECT_FALSE(d.rejection);
  EXPECT_TRUE(d.events.empty());
}

TEST(CustomerUpdate, RefusesAnEmptyChange) {
  Spec spec;
  spec.given_registered();
  expect_refused(spec.when(UpdateCustomer{}), "customer.change_empty", Rejection::Kind::kInvalid);
}

TEST(CustomerUpdate, RefusesAnUnknownCustomer) {
  UpdateCustomer u;
  u.set_name("x");
  expect_refused(Spec().when(u), "customer.not_found", Rejection::Kind::kNotFound);
}

TEST(CustomerUpdate, RefusesBlankNameAndUnspecifiedLevel) {
  Spec spec;
  spec.given_registered();
  UpdateCustomer u;
  u.set_name("");
  u.set_level(CUSTOMER_LEVEL_UNSPECIFIED);
  auto d = spec.when(u);
  EXPECT_TRUE(has_violation(d, "name", "customer.name_required"));
  EXPECT_TRUE(has_violation(d, "level", "customer.level_required"));
}

TEST(CustomerUpdate, TeamChangeAloneIsAnOwnerChange) {
  Spec spec;
  spec.given_registered();
  UpdateCustomer u;
  u.set_team("team-south");
  auto d = spec.when(u);
  ASSERT_EQ(d.events.size(), 1u);
  const auto& e = std::get<CustomerOwnerChanged>(d.events[0]);
  EXPECT_EQ(e.from_owner_id(), "sales-1");
  EXPECT_EQ(e.to_owner_id(), "sales-1");
  EXPECT_EQ(e.to_team(), "team-south");
}

TEST(CustomerContacts, AddsContactsWithSequentialIds) {
  Spec spec;
  spec.given_registered();
  AddContact c;
  c.set_name("Wang Fang");
  c.set_role(DECISION_MAKER);
  c.set_birthday("02-29");
  c.set_email("wang@acme.example");
  auto first = spec.when(c);
  ASSERT_FALSE(first.rejection);
  EXPECT_EQ(std::get<ContactAdded>(first.events[0]).contact().id(), "contact-1");
  spec.given(first.events);
  c.set_role(BLOCKER);
  auto second = spec.when(c);
  EXPECT_EQ(std::get<ContactAdded>(second.events[0]).contact().id(), "contact-2");
  spec.given(second.events);
  ASSERT_EQ(spec.state().contacts_size(), 2);
  EXPECT_EQ(spec.state().contacts(0).role(), DECISION_MAKER);
  EXPECT_EQ(spec.state().contacts(0).birthday(), "02-29");
  EXPECT_EQ(spec.state().contacts(1).role(), BLOCKER);
}

TEST(CustomerContacts, RefusesBadContacts) {
  Spec spec;
  spec.given_registered();
  AddContact c;
  c.set_name("");
  c.set_birthday("13-45");
  c.set_phone("abc");
  auto d = spec.when(c);
  EXPECT_TRUE(has_violation(d, "name", "contact.name_required"));
  EXPECT_TRUE(has_violation(d, "role", "contact.role_required"));
  EXPECT_TRUE(has_violation(d, "birthday", "contact.birthday_format"));
  EXPECT_TRUE(has_violation(d, "phone", "customer.phone_format"));
  for (const char* bad : {"02-30", "00-10", "4-23", "04/23", "12-32"}) {
    c = AddContact();
    c.set_name("x");
    c.set_role(USER);
    c.set_birthday(bad);
    EXPECT_TRUE(has_violation(spec.when(c), "birthday", "contact.birthday_format")) << bad;
  }
}

TEST(CustomerContacts, RefusesContactsOfUnknownCustomerAndBeyondTheLimit) {
  AddContact c;
  c.set_name("x");
  c.set_role(USER);
  expect_refused(Spec().when(c), "customer.not_found", Rejection::Kind::kNotFound);

  Spec spec;
  spec.given_registered();
  for (size_t i = 0; i < kContactsMax; ++i) spec.given(spec.when(c).events);
  expect_refused(spec.when(c), "customer.contacts_max", Rejection::Kind::kConflict);
}

ApplyProductChanges product_change(ProductChange::Kind kind, const std::string& id,
                                   const std::string& plan = "std") {
  ApplyProductChanges c;
  auto* change = c.add_changes();
  change->set_kind(kind);
  change->mutable_instance()->set_id(id);
  change->mutable_instance()->set_offer_id("PHONE-LINE");
  change->mutable_instance()->set_pricing_plan_id(plan);
  change->mutable_instance()->set_order_id("ord-1");
  return c;
}

TEST(CustomerProducts, ActivatedItemsStartChangeAndEndInstancesAndRepeatsChangeNothing) {
  Spec spec;
  spec.given_registered();
  auto start = spec.when(product_change(ProductChange::START, "pi-1"));
  ASSERT_EQ(start.events.size(), 1u);
  spec.given(start.events);
  ASSERT_EQ(spec.state().product_instances_size(), 1);
  EXPECT_EQ(spec.state().product_instances(0).pricing_plan_id(), "std");
  EXPECT_TRUE(spec.when(product_change(ProductChange::START, "pi-1")).events.empty());

  auto change = spec.when(product_change(ProductChange::CHANGE, "pi-1", "gold"));
  ASSERT_EQ(change.events.size(), 1u);
  EXPECT_EQ(std::get<ProductInstanceChanged>(change.events[0]).from_pricing_plan_id(), "std");
  spec.given(change.events);
  EXPECT_EQ(spec.state().product_instances(0).pricing_plan_id(), "gold");
  EXPECT_TRUE(spec.when(product_change(ProductChange::CHANGE, "pi-1", "gold")).events.empty());

  auto end = spec.when(product_change(ProductChange::END, "pi-1"));
  ASSERT_EQ(end.events.size(), 1u);
  spec.given(end.events);
  EXPECT_EQ(spec.state().product_instances_size(), 0);
  EXPECT_TRUE(spec.when(product_change(ProductChange::END, "pi-1")).events.empty());
}

TEST(CustomerProducts, ChangingAnInstanceNotHeldOrOfAnUnknownCustomerIsRefused) {
  Spec unknown;
  expect_refused(unknown.when(product_change(ProductChange::START, "pi-1")), "customer.not_found",
                 Rejection::Kind::kNotFound);
  Spec spec;
  spec.given_registered();
  expect_refused(spec.when(product_change(ProductChange::CHANGE, "pi-9", "gold")),
                 "product_instance.not_held", Rejection::Kind::kConflict);
}

OrderBalance order_balance_of(const std::string& order_id, int64_t net) {
  OrderBalance b;
  b.set_order_id(order_id);
  auto* m = b.add_net();
  m->set_currency("CNY");
  m->set_amount_minor(net);
  return b;
}

SetOrderBalance order_balance(const std::string& order_id, int64_t net) {
  const OrderBalance b = order_balance_of(order_id, net);
  SetOrderBalance c;
  c.set_order_id(b.order_id());
  *c.mutable_net() = b.net();
  return c;
}

TEST(CustomerBalance, SumsWhatEachOrderLeavesOnTheAccount) {
  Spec spec;
  spec.given_registered();
  spec.given(spec.when(order_balance("ord-1", -14500)).events);
  spec.given(spec.when(order_balance("ord-2", 3000)).events);
  ASSERT_EQ(spec.state().balance_size(), 1);
  EXPECT_EQ(spec.state().balance(0).amount_minor(), -11500);
  spec.given(spec.when(order_balance("ord-1", 0)).events);
  EXPECT_EQ(spec.state().balance(0).amount_minor(), 3000);
  EXPECT_TRUE(spec.when(order_balance("ord-1", 0)).events.empty()) << "unchanged: nothing";
}

// A customer with years of orders must not carry every one of them in its state (each order
// command would copy and write them all): a settled order drops out of the list.
TEST(CustomerBalance, HoldsOnlyTheOrdersThatLeaveSomethingOnTheAccount) {
  Spec spec;
  spec.given_registered();
  for (int i = 0; i < 50; ++i) {
    const std::string order = "ord-" + std::to_string(i);
    spec.given(spec.when(order_balance(order, -1000)).events);  // submitted: owes 10.00
    spec.given(spec.when(order_balance(order, 0)).events);      // paid: settled
  }
  spec.given(spec.when(order_balance("ord-open", -2500)).events);
  spec.given(spec.when(order_balance("ord-credit", 700)).events);
  ASSERT_EQ(spec.state().order_balances_size(), 2);
  EXPECT_EQ(spec.state().order_balances(0).order_id(), "ord-open");
  EXPECT_EQ(spec.state().order_balances(1).order_id(), "ord-credit");
  ASSERT_EQ(spec.state().balance_size(), 1);
  EXPECT_EQ(spec.state().balance(0).amount_minor(), -1800);

  // An update keeps the order's place; settling everything leaves the currency at 0.
  spec.given(spec.when(order_balance("ord-open", -500)).events);
  EXPECT_EQ(spec.state().order_balances(0).order_id(), "ord-open");
  EXPECT_EQ(spec.state().balance(0).amount_minor(), 200);
  spec.given(spec.when(order_balance("ord-open", 0)).events);
  spec.given(spec.when(order_balance("ord-credit", 0)).events);
  EXPECT_EQ(spec.state().order_balances_size(), 0);
  ASSERT_EQ(spec.state().balance_size(), 1);
  EXPECT_EQ(spec.state().balance(0).currency(), "CNY");
  EXPECT_EQ(spec.state().balance(0).amount_minor(), 0);

  // A settled order that was never held changes nothing; a settled one reopened is held again,
  // at the end of the list.
  EXPECT_TRUE(spec.when(order_balance("ord-new", 0)).events.empty());
  spec.given(spec.when(order_balance("ord-open", -100)).events);
  spec.given(spec.when(order_balance("ord-3", 400)).events);  // e.g. a payment after settling
  ASSERT_EQ(spec.state().order_balances_size(), 2);
  EXPECT_EQ(spec.state().order_balances(1).order_id(), "ord-3");
  EXPECT_EQ(spec.state().balance(0).amount_minor(), 300);
  EXPECT_TRUE(spec.when(order_balance("ord-3", 400)).events.empty())
      << "the same balance again (a redelivered follow-up): nothing";
}

TEST(CustomerBalance, AnOrderInSeveralCurrenciesIsHeldUntilEveryOneIsSettled) {
  Spec spec;
  spec.given_registered();
  SetOrderBalance both = order_balance("ord-1", 0);  // CNY settled, USD owed
  auto* usd = both.add_net();
  usd->set_currency("USD");
  usd->set_amount_minor(-500);
  spec.given(spec.when(both).events);
  ASSERT_EQ(spec.state().order_balances_size(), 1);
  ASSERT_EQ(spec.state().balance_size(), 2);
  EXPECT_EQ(spec.state().balance(0).currency(), "CNY");
  EXPECT_EQ(spec.state().balance(0).amount_minor(), 0);
  EXPECT_EQ(spec.state().balance(1).currency(), "USD");
  EXPECT_EQ(spec.state().balance(1).amount_minor(), -500);
  EXPECT_TRUE(spec.when(both).events.empty());

  usd->set_amount_minor(0);
  spec.given(spec.when(both).events);
  EXPECT_EQ(spec.state().order_balances_size(), 0);
  ASSERT_EQ(spec.state().balance_size(), 2) << "both currencies stay, at 0";
  EXPECT_EQ(spec.state().balance(0).amount_minor(), 0);
  EXPECT_EQ(spec.state().balance(1).amount_minor(), 0);
}

TEST(CustomerBalance, AStateThatKeptSettledOrdersDropsThemAtTheNextChange) {
  Spec spec;
  spec.given_registered();
  spec.given(spec.when(order_balance("ord-1", -300)).events);
  Customer legacy = spec.state();  // as an earlier version kept it: a settled order listed
  *legacy.add_order_balances() = order_balance_of("ord-0", 0);
  OrderBalanceChanged changed;
  *changed.mutable_order_balance() = order_balance_of("ord-1", -200);
  EXPECT_TRUE(decide(legacy, legacy.id(), Command{order_balance("ord-0", 0)}).events.empty())
      << "the settled value it holds, again: nothing";
  evolve(legacy, Event{changed}, legacy.version() + 1, 0);
  ASSERT_EQ(legacy.order_balances_size(), 1);
  EXPECT_EQ(legacy.order_balances(0).order_id(), "ord-1");
  EXPECT_EQ(legacy.balance(0).amount_minor(), -200);
}

// An earlier version wrote OrderBalanceChanged for orders that never owed anything (net 0); a
// replay of such a log gives the balance it gave then: the currency listed, at 0.
TEST(CustomerBalance, ASettledEventOfAnEarlierVersionStillListsItsCurrency) {
  Spec spec;
  spec.given_registered();
  Customer state = spec.state();
  OrderBalanceChanged free_order;
  *free_order.mutable_order_balance() = order_balance_of("ord-free", 0);
  evolve(state, Event{free_order}, state.version() + 1, 0);
  EXPECT_EQ(state.order_balances_size(), 0);
  ASSERT_EQ(state.balance_size(), 1);
  EXPECT_EQ(state.balance(0).currency(), "CNY");
  EXPECT_EQ(state.balance(0).amount_minor(), 0);
}

int64_t us(const std::string& rfc3339) {
  google::protobuf::Timestamp t;
  EXPECT_TRUE(google::protobuf::util::TimeUtil::FromString(rfc3339, &t)) << rfc3339;
  return timestamp_to_us(t);
}

AddContact contact(const std::string& birthday) {
  AddContact c;
  c.set_name("Han Meimei");
  c.set_role(DECISION_MAKER);
  c.set_birthday(birthday);
  return c;
}

// The birthday reminders of `state`: (due, year) per contact in order.
std::vector<std::pair<int64_t, int32_t>> birthdays(const Customer& state,
                                                   int64_t utc_offset_us = 0) {
  std::vector<std::pair<int64_t, int32_t>> out;
  for (const auto& r : reminders(state, {0, utc_offset_us}))
    if (!r.contact_id.empty()) out.emplace_back(r.due_us, r.year);
  return out;
}

TEST(CustomerReminders, ABirthdayIsDueAtTheStartOfItsNextDayFromWhenTheContactWasAdded) {
  Spec spec;
  spec.at(us("2026-03-10T17:00:00Z")).given_registered();
  spec.given(spec.when(contact("04-23")).events);  // later this year
  spec.given(spec.when(contact("01-05")).events);  // passed this year: next year
  spec.given(spec.when(contact("03-10")).events);  // today: due now
  spec.given(spec.when(contact("")).events);       // no birthday: no reminder
  using Due = std::pair<int64_t, int32_t>;
  EXPECT_EQ(birthdays(spec.state()), (std::vector<Due>{{us("2026-04-23T00:00:00Z"), 2026},
                                                       {us("2027-01-05T00:00:00Z"), 2027},
                                                       {us("2026-03-10T00:00:00Z"), 2026}}));
  // In the local day of UTC+08:00, 17:00Z of 03-10 is already 03-11: 03-10 has passed.
  EXPECT_EQ(birthdays(spec.state(), 8 * 3'600'000'000LL)[2], Due(us("2027-03-09T16:00:00Z"), 2027));
}

TEST(CustomerReminders, AContactStoredWithoutItsAddedTimeCountsFromTheLastChange) {
  Spec spec;
  spec.at(us("2024-01-01T00:00:00Z")).given_registered();
  spec.given(spec.when(contact("02-01")).events);
  Customer legacy = spec.state();
  legacy.mutable_contacts(0)->clear_added_at();
  *legacy.mutable_updated_at() = timestamp_from_us(us("2026-11-27T10:00:00Z"));
  EXPECT_EQ(birthdays(legacy)[0], std::make_pair(us("2027-02-01T00:00:00Z"), 2027))
      << "no greetings for the years before";
}

TEST(CustomerReminders, AGreetingIsOpenedOnceAYearAndA29FebruaryBirthdayFallsOn28InOtherYears) {
  Spec spec;
  spec.at(us("2027-01-10T00:00:00Z")).given_registered();
  spec.given(spec.when(contact("02-29")).events);
  ASSERT_EQ(birthdays(spec.state())[0].first, us("2027-02-28T00:00:00Z"));

  OpenBirthdayGreeting greet;
  greet.set_contact_id("contact-1");
  greet.set_year(2027);
  auto d = spec.when(greet);
  ASSERT_EQ(d.events.size(), 1u);
  const auto& opened = std::get<BirthdayGreetingOpened>(d.events[0]);
  EXPECT_EQ(opened.task_id(), "greet-cus_1-contact-1-2027") << "derived: a repeat finds it";
  spec.given(d.events);
  EXPECT_TRUE(spec.when(greet).events.empty()) << "greeted for 2027 already";
  EXPECT_EQ(birthdays(spec.state())[0], std::make_pair(us("2028-02-29T00:00:00Z"), 2028));
  greet.set_contact_id("contact-9");
  greet.set_year(2028);
  EXPECT_TRUE(spec.when(greet).events.empty()) << "no such contact: a stale timer";
}

TEST(CustomerReminders, AVipIsRevisitedPeriodicallyWhileVipFromWhenTheyBecameOne) {
  constexpr int64_t kDay = 86'400'000'000LL;
  const ReminderRules rules{30 * kDay, 0};
  Spec spec;
  const int64_t t0 = us("2026-05-01T09:00:00Z");
  spec.at(t0).given_registered();  // acme() is VIP
  ASSERT_EQ(reminders(spec.state(), rules).size(), 1u);
  EXPECT_EQ(reminders(spec.state(), rules)[0].due_us, t0 + 30 * kDay);
  EXPECT_EQ(reminders(spec.state(), rules)[0].name, kVipRevisitReminder);
  EXPECT_TRUE(reminders(spec.state(), {0, 0}).empty()) << "no period: no revisits";

  auto d = spec.when(OpenVipRevisit());
  ASSERT_EQ(d.events.size(), 1u);
  EXPECT_EQ(std::get<VipRevisitOpened>(d.events[0]).task_id(), "vip-cus_1-1");
  spec.at(t0 + 31 * kDay).given(d.events);  // fired a day late: the next counts from then
  EXPECT_EQ(reminders(spec.state(), rules)[0].due_us, t0 + 61 * kDay);
  EXPECT_EQ(std::get<VipRevisitOpened>(spec.when(OpenVipRevisit()).events[0]).task_id(),
            "vip-cus_1-2");

  UpdateCustomer down;
  down.set_level(STANDARD);
  spec.given(spec.when(down).events);
  EXPECT_TRUE(reminders(spec.state(), rules).empty());
  EXPECT_TRUE(spec.when(OpenVipRevisit()).events.empty()) << "no longer VIP: nothing";
  UpdateCustomer up;
  up.set_level(VIP);
  spec.at(t0 + 100 * kDay).given(spec.when(up).events);
  EXPECT_EQ(reminders(spec.state(), rules)[0].due_us, t0 + 130 * kDay);
}

TEST(CustomerReplay, DecideIsDeterministic) {
  Spec a, b;
  a.given_registered();
  b.given_registered();
  UpdateCustomer u;
  u.set_stage(AT_RISK);
  auto da = a.when(u), db = b.when(u);
  ASSERT_EQ(da.events.size(), db.events.size());
  a.given(da.events);
  b.given(db.events);
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(a.state(), b.state()));
}

}  // namespace
}  // namespace crm::customer
