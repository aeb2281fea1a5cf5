// Time and identity sources, injected so that tests and replays are deterministic.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <random>
#include <string>

namespace crm {

// Microseconds since the Unix epoch.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual int64_t now_us() const = 0;
};

class SystemClock final : public Clock {
 public:
  int64_t now_us() const override;
};

// A clock that moves only when told to: for tests.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(int64_t start_us) : now_us_(start_us) {}
  int64_t now_us() const override { return now_us_.load(); }
  void advance_us(int64_t delta_us) { now_us_ += delta_us; }
  void set_us(int64_t t_us) { now_us_ = t_us; }

 private:
  std::atomic<int64_t> now_us_;
};

// Unique ids: 128 random bits, hex encoded, with a prefix ("cus_…").
class IdSource {
 public:
  virtual ~IdSource() = default;
  virtual std::string next(const std::string& prefix) = 0;
};

class RandomIdSource final : public IdSource {
 public:
  RandomIdSource();
  explicit RandomIdSource(uint64_t seed) : engine_(seed) {}
  std::string next(const std::string& prefix) override;

 private:
  std::mutex mu_;
  std::mt19937_64 engine_;
};

}  // namespace crm
