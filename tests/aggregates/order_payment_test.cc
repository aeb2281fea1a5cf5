// Order aggregate: deposits and payments, and the properties — money reconciles from the events
// alone, and line totals always add up to the order's totals.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <random>

#include "tests/aggregates/order_spec.h"

namespace crm::order {
namespace {

using namespace spec;  // NOLINT: the fixture and builders of every order test

// --- Payments ---

RecordPayment payment(const std::string& ref, Payment::Kind kind, int64_t amount,
                      const std::string& currency = "CNY") {
  RecordPayment c;
  c.mutable_payment()->set_payment_ref(ref);
  c.mutable_payment()->set_kind(kind);
  *c.mutable_payment()->mutable_amount() = money(amount, currency);
  return c;
}

catalog::Offer with_deposit(const std::string& id, int64_t deposit) {
  catalog::Offer o = offer(id, 5000, 2900);
  *o.mutable_deposit()->mutable_amount() = money(deposit);
  o.mutable_deposit()->set_scope(catalog::Deposit::OBJECT);
  return o;
}

TEST_F(OrderSpec, ADepositDueBlocksActivationUntilPaid) {
  publish(with_deposit("LINE", 10000));
  given_submitted({add("LINE")});
  expect_refused(when(result("it-1", true)), "deposit.unpaid", "", Rejection::Kind::kConflict);
  given(payment("dep-1", Payment::DEPOSIT, 6000));
  expect_refused(when(result("it-1", true)), "deposit.unpaid", "", Rejection::Kind::kConflict);
  given(payment("dep-2", Payment::DEPOSIT, 4000));
  EXPECT_FALSE(when(result("it-1", true)).rejection);
  EXPECT_FALSE(when(result("it-1", false)).rejection) << "a failure needs no deposit";
}

TEST_F(OrderSpec, ARepeatedPaymentReferenceChangesNothing) {
  publish(with_deposit("LINE", 10000));
  given_submitted({add("LINE")});
  given(payment("bank-1", Payment::PAYMENT, 5000));
  EXPECT_THAT(when(payment("bank-1", Payment::PAYMENT, 5000)).events, IsEmpty());
  expect_refused(when(payment("bank-1", Payment::REFUND, 999)), "payment.ref_reused", "",
                 Rejection::Kind::kConflict);
}

TEST_F(OrderSpec, MoneyPaidAsAPaymentCountsTowardsTheDepositFirst) {
  publish(with_deposit("LINE", 1000));
  given_submitted({add("LINE")});
  given(payment("all-in-one", Payment::PAYMENT, 6000));
  EXPECT_EQ(order_.balances(0).deposited().amount_minor(), 1000);
  EXPECT_EQ(order_.balances(0).balance_due().amount_minor(), 0);
  EXPECT_FALSE(when(result("it-1", true)).rejection);
}

TEST_F(OrderSpec, RefundsNeverExceedWhatWasPaid) {
  publish(with_deposit("LINE", 10000));
  given_submitted({add("LINE")});
  given(payment("d", Payment::DEPOSIT, 10000));
  given(payment("p", Payment::PAYMENT, 3000));
  expect_refused(when(payment("r0", Payment::REFUND, 13001)), "payment.refund_exceeds",
                 "amount.amountMinor");
  given(payment("r1", Payment::REFUND, 4000));
  ASSERT_EQ(order_.balances_size(), 1);
  const Balance& b = order_.balances(0);
  EXPECT_EQ(b.paid().amount_minor(), 9000);
  EXPECT_EQ(b.deposited().amount_minor(), 9000) << "what is left counts towards the deposit";
  EXPECT_EQ(b.due().amount_minor(), 5000 + 10000);
  EXPECT_EQ(b.balance_due().amount_minor(), 6000);
}

TEST_F(OrderSpec, PaymentsAreCheckedAgainstTheOrder) {
  publish(with_deposit("LINE", 10000));
  given_draft();
  given(add_item(add("LINE")));
  expect_refused(when(payment("x", Payment::PAYMENT, 100)), "payment.not_submitted", "",
                 Rejection::Kind::kConflict);
  given(SubmitOrder());
  expect_refused(when(payment("x", Payment::PAYMENT, 100, "USD")), "payment.currency",
                 "amount.currency");
  expect_refused(when(payment("x", Payment::PAYMENT, 0)), "payment.amount", "amount.amountMinor");
  expect_refused(when(payment("has space", Payment::PAYMENT, 1)), "payment.ref_format",
                 "paymentRef");
  RecordPayment unknown_item = payment("x", Payment::PAYMENT, 1);
  unknown_item.mutable_payment()->add_item_ids("it-9");
  expect_refused(when(unknown_item), "payment.item_unknown", "itemIds[0]");
  given(CancelOrder());
  expect_refused(when(payment("late", Payment::PAYMENT, 100)), "payment.order_closed", "",
                 Rejection::Kind::kConflict);
}

TEST_F(OrderSpec, PropertyMoneyReconcilesFromTheEventsAlone) {
  std::mt19937_64 random(7);
  publish(with_deposit("LINE", 10000));
  given_submitted({add("LINE", 3)});
  int64_t in = 0, out = 0;
  for (int i = 0; i < 300; ++i) {
    const auto kind = static_cast<Payment::Kind>(1 + random() % 3);
    const int64_t amount = 1 + static_cast<int64_t>(random() % 20000);
    auto d = when(payment("ref-" + std::to_string(i), kind, amount));
    if (d.rejection) {
      EXPECT_EQ(d.rejection->rule, "payment.refund_exceeds");
      EXPECT_GT(amount, in - out);
      continue;
    }
    apply(d);
    (kind == Payment::REFUND ? out : in) += amount;
    const Balance& b = order_.balances(0);
    ASSERT_EQ(b.paid().amount_minor(), in - out);
    ASSERT_GE(b.paid().amount_minor(), 0);
    ASSERT_EQ(b.due().amount_minor() - b.paid().amount_minor(),
              b.balance_due().amount_minor() - b.credit().amount_minor());
  }
  // The balances are a function of the receipt and the payments alone.
  ASSERT_EQ(balances(order_).size(), 1u);
  EXPECT_EQ(balances(order_)[0].SerializeAsString(), order_.balances(0).SerializeAsString());
}

// --- Property: the lines always add up ---

TEST_F(OrderSpec, PropertyLineTotalsAddUpToTheOrderTotalsForRandomOrders) {
  std::mt19937_64 random(20261127);  // fixed seed: the same orders every run
  auto uniform = [&](int64_t lo, int64_t hi) {
    return std::uniform_int_distribution<int64_t>(lo, hi)(random);
  };
  const std::vector<std::string> currencies = {"CNY", "USD", "EUR"};
  for (int round = 0; round < 200; ++round) {
    catalog_ = catalog::Catalog();
    order_ = Order();
    const int offers = static_cast<int>(uniform(1, 6));
    for (int i = 0; i < offers; ++i) {
      const std::string currency = currencies[static_cast<size_t>(uniform(0, 2))];
      catalog::Offer o = offer("O" + std::to_string(i), 0, 0);
      auto* plan = o.mutable_pricing_plans(0);
      *plan->mutable_one_time() = money(uniform(0, 1'000'000), currency);
      *plan->mutable_recurring() = money(uniform(1, 100'000), currency);
      const int packages = static_cast<int>(uniform(0, 3));
      for (int p = 0; p < packages; ++p) {
        auto pkg = package("p" + std::to_string(p), p == 0 && uniform(0, 1) == 1,
                           static_cast<uint32_t>(uniform(0, 100)), uniform(0, 5000));
        if (pkg.has_amount_off()) pkg.mutable_amount_off()->set_currency(currency);
        *plan->add_discount_packages() = pkg;
      }
      if (uniform(0, 1) == 1) {
        *o.mutable_deposit()->mutable_amount() = money(uniform(1, 50'000), currency);
        o.mutable_deposit()->set_scope(static_cast<catalog::Deposit::Scope>(uniform(1, 3)));
      }
      publish(o);
    }
    given_draft();
    const int items = static_cast<int>(uniform(1, 8));
    for (int i = 0; i < items; ++i) {
      const std::string id = "O" + std::to_string(uniform(0, offers - 1));
      Item item = add(id, static_cast<uint32_t>(uniform(1, 50)));
      const auto& plan = catalog::find_offer(catalog_, id)->versions().rbegin()->pricing_plans(0);
      for (const auto& pkg : plan.discount_packages())
        if (!pkg.base() && uniform(0, 1) == 1) item.add_discount_package_ids(pkg.id());
      if (uniform(0, 9) == 0)
        *item.mutable_manual_price() = money(uniform(0, 9999), plan.recurring().currency());
      given(add_item(item));
    }

    Receipt r = receipt();
    ASSERT_TRUE(r.submittable()) << r.DebugString();
    std::map<std::string, std::array<int64_t, 5>> sums;  // list, net, deposit per currency
    for (const auto& line : r.lines()) {
      EXPECT_GE(line.one_time().amount_minor(), 0);
      EXPECT_GE(line.recurring().amount_minor(), 0);
      EXPECT_LE(line.one_time().amount_minor(), line.one_time_list().amount_minor());
      EXPECT_LE(line.recurring().amount_minor(), line.recurring_list().amount_minor());
      auto& s = sums[line.one_time().currency()];
      s[0] += line.one_time_list().amount_minor();
      s[1] += line.one_time().amount_minor();
      s[2] += line.recurring_list().amount_minor();
      s[3] += line.recurring().amount_minor();
      if (line.has_deposit()) sums[line.deposit().currency()][4] += line.deposit().amount_minor();
    }
    ASSERT_EQ(static_cast<size_t>(r.totals_size()), sums.size());
    for (const auto& t : r.totals()) {
      const auto& s = sums.at(t.currency());
      EXPECT_EQ(t.one_time_list().amount_minor(), s[0]);
      EXPECT_EQ(t.one_time().amount_minor(), s[1]);
      EXPECT_EQ(t.recurring_list().amount_minor(), s[2]);
      EXPECT_EQ(t.recurring().amount_minor(), s[3]);
      EXPECT_EQ(t.deposit().amount_minor(), s[4]);
      EXPECT_EQ(t.discount().amount_minor(), (s[0] - s[1]) + (s[2] - s[3]));
      EXPECT_LE(t.discount_basis_points(), 10000u);
    }
    // Submission fixes exactly what the preview showed.
    auto d = when(SubmitOrder());
    ASSERT_FALSE(d.rejection);
    EXPECT_EQ(std::get<OrderSubmitted>(d.events[0]).receipt().SerializeAsString(),
              r.SerializeAsString());
  }
}

}  // namespace
}  // namespace crm::order
