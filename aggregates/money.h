// Limits on money every aggregate applies (I9: integer minor units, exact). Any single amount is
// at most kAmountMax minor units (10^15: ten trillion yuan in fen), so a line (≤ 10,000 units)
// and an order's sums stay far inside 64 bits, and sums are still checked.
#pragma once

#include <cstdint>

namespace crm {

inline constexpr int64_t kAmountMax = 1'000'000'000'000'000;

}  // namespace crm
