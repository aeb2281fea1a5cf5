#include "events/clock.h"

#include <chrono>

#include "events/codec.h"

namespace crm {

int64_t SystemClock::now_us() const {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

RandomIdSource::RandomIdSource() {
  std::random_device device;
  std::seed_seq seed{device(), device(), device(), device()};
  engine_.seed(seed);
}

std::string RandomIdSource::next(const std::string& prefix) {
  uint64_t high, low;
  {
    std::lock_guard lock(mu_);
    high = engine_();
    low = engine_();
  }
  std::string bytes(16, '\0');
  for (int i = 0; i < 8; ++i) {
    bytes[i] = static_cast<char>(high >> (56 - 8 * i));
    bytes[8 + i] = static_cast<char>(low >> (56 - 8 * i));
  }
  return prefix + to_hex(bytes);
}

}  // namespace crm
