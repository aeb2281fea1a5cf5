// Payments on an order: deposits, payments and refunds with their external reference, and
// the balances per currency they leave.
#include <algorithm>
#include <map>

#include "aggregates/money.h"
#include "aggregates/order/internal.h"
#include "events/codec.h"

namespace crm::order {
namespace internal {
namespace {

bool is_reference(std::string_view text) {
  return !text.empty() && text.size() <= 128 &&
         std::all_of(text.begin(), text.end(), [](char c) { return c > ' ' && c < 127; });
}

}  // namespace

Outcome record_payment(const Order& state, const RecordPayment& c, const Context& context) {
  if (state.version() == 0) return Outcome::refuse(order_not_found(context));
  const Payment& p = c.payment();
  for (const auto& earlier : state.payments()) {
    if (earlier.payment_ref() != p.payment_ref()) continue;
    // Seen before: the same payment changes nothing; another one under its reference is refused.
    const bool same = earlier.kind() == p.kind() &&
                      earlier.amount().SerializeAsString() == p.amount().SerializeAsString() &&
                      std::equal(earlier.item_ids().begin(), earlier.item_ids().end(),
                                 p.item_ids().begin(), p.item_ids().end());
    if (same) return {};
    return Outcome::refuse(
        conflict("payment.ref_reused", "Payment reference '" + p.payment_ref() +
                                           "' was recorded with another kind, amount or items"));
  }
  Violations v;
  if (!is_reference(p.payment_ref()))
    v.add("paymentRef", "payment.ref_format",
          "Expected the external paymentRef: 1–128 printable characters without spaces");
  if (p.kind() != Payment::DEPOSIT && p.kind() != Payment::PAYMENT && p.kind() != Payment::REFUND)
    v.add("kind", "payment.kind", "Expected kind DEPOSIT, PAYMENT or REFUND");
  if (p.amount().amount_minor() <= 0 || p.amount().amount_minor() > kAmountMax)
    v.add(
        "amount.amountMinor", "payment.amount",
        "Expected an amount above zero and at most " + std::to_string(kAmountMax) + " minor units");
  if (p.has_recorded_at() || !p.recorded_by().empty() || !p.products().empty())
    v.add("recordedAt", "payment.read_only",
          "Expected recordedAt, recordedBy and products left out");
  check_length(v, "method", p.method(), kChannelLengthMax);
  check_length(v, "note", p.note(), kNoteLengthMax);
  for (int i = 0; i < p.item_ids_size(); ++i) {
    if (find_item(state, p.item_ids(i)) == nullptr)
      v.add("itemIds[" + std::to_string(i) + "]", "payment.item_unknown",
            "Order '" + state.id() + "' has no item '" + p.item_ids(i) + "'");
  }
  if (!v.empty()) return Outcome::refuse(std::move(v).to_rejection());
  if (!state.has_receipt()) {
    return Outcome::refuse(conflict("payment.not_submitted",
                                    "Expected a submitted order to take payments: its prices are "
                                    "fixed at submission, but it is " +
                                        OrderState_Name(state.state())));
  }
  const Balance* balance = nullptr;
  for (const auto& b : state.balances())
    if (b.currency() == p.amount().currency()) balance = &b;
  if (balance == nullptr) {
    std::string currencies;
    for (const auto& b : state.balances())
      currencies += (currencies.empty() ? "" : ", ") + b.currency();
    Violations cv;
    cv.add("amount.currency", "payment.currency",
           "Expected a payment in the order's currency (" + currencies + "), but got '" +
               p.amount().currency() + "'");
    return Outcome::refuse(std::move(cv).to_rejection());
  }
  constexpr int64_t kReceivedMax = 1000 * kAmountMax;  // keeps every balance inside 64 bits
  if (p.kind() != Payment::REFUND &&
      balance->paid().amount_minor() + balance->refunded().amount_minor() >
          kReceivedMax - p.amount().amount_minor()) {
    return Outcome::refuse(conflict(
        "payment.too_much",
        "Expected at most " + std::to_string(kReceivedMax) + " minor units received on one order"));
  }
  if (p.kind() == Payment::REFUND && p.amount().amount_minor() > balance->paid().amount_minor()) {
    Violations rv;
    rv.add("amount.amountMinor", "payment.refund_exceeds",
           "Expected a refund of at most " + std::to_string(balance->paid().amount_minor()) + " " +
               balance->currency() + " (minor units), what was paid, but got " +
               std::to_string(p.amount().amount_minor()));
    return Outcome::refuse(std::move(rv).to_rejection());
  }
  if (p.kind() != Payment::REFUND &&
      (state.state() == CANCELLED || state.state() == REJECTED || state.state() == FAILED)) {
    return Outcome::refuse(conflict("payment.order_closed",
                                    "Expected an order that is still to be fulfilled, but it is " +
                                        OrderState_Name(state.state()) + ": only refunds"));
  }
  PaymentRecorded e;
  Payment* recorded = e.mutable_payment();
  *recorded = p;
  *recorded->mutable_recorded_at() = timestamp_from_us(context.now_us);
  recorded->set_recorded_by(context.actor_id);
  std::string products;
  for (const auto& line : state.receipt().lines()) {
    const bool paid_for =
        p.item_ids().empty() ||
        std::find(p.item_ids().begin(), p.item_ids().end(), line.item_id()) != p.item_ids().end();
    if (paid_for) products += (products.empty() ? "" : ", ") + line.offer_name();
  }
  recorded->set_products(products);
  return {{std::move(e)}, std::nullopt};
}

}  // namespace internal

bool deposit_unpaid(const Order& order) {
  switch (order.state()) {
    case SUBMITTED:
    case PENDING_APPROVAL:
    case APPROVED:
    case IN_PROGRESS:
      break;
    default:
      return false;
  }
  for (const auto& b : order.balances())
    if (b.deposited().amount_minor() < b.deposit_due().amount_minor()) return true;
  return false;
}

std::vector<Balance> balances(const Order& order) {
  struct Sums {
    int64_t due = 0, deposit_due = 0, deposits = 0, payments = 0, refunds = 0;
  };
  std::map<std::string, Sums> by_currency;
  for (const auto& total : order.receipt().totals()) {
    Sums& s = by_currency[total.currency()];
    s.due += total.one_time().amount_minor() + total.deposit().amount_minor();
    s.deposit_due += total.deposit().amount_minor();
  }
  for (const auto& p : order.payments()) {
    Sums& s = by_currency[p.amount().currency()];
    const int64_t amount = p.amount().amount_minor();
    if (p.kind() == Payment::DEPOSIT) s.deposits += amount;
    if (p.kind() == Payment::PAYMENT) s.payments += amount;
    if (p.kind() == Payment::REFUND) s.refunds += amount;
  }
  std::vector<Balance> out;
  for (const auto& [currency, s] : by_currency) {
    auto money = [&](int64_t amount) {
      Money m;
      m.set_amount_minor(amount);
      m.set_currency(currency);
      return m;
    };
    Balance b;
    b.set_currency(currency);
    const int64_t paid = s.deposits + s.payments - s.refunds;
    // Money received counts first towards the deposit due, whatever its kind.
    const int64_t deposited = std::clamp<int64_t>(paid, 0, s.deposit_due);
    *b.mutable_due() = money(s.due);
    *b.mutable_deposit_due() = money(s.deposit_due);
    *b.mutable_deposited() = money(deposited);
    *b.mutable_paid() = money(paid);
    *b.mutable_refunded() = money(s.refunds);
    *b.mutable_balance_due() = money(std::max<int64_t>(0, s.due - paid));
    *b.mutable_credit() = money(std::max<int64_t>(0, paid - s.due));
    out.push_back(std::move(b));
  }
  return out;
}

}  // namespace crm::order
