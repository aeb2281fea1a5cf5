// Micro-benchmarks of the write path's parts: the pure customer decide/evolve, hash sealing,
// and log appends (synced one by one, and batched). Run: build/ops/bench/crm_micro_bench
#include <benchmark/benchmark.h>
#include <stdlib.h>

#include <filesystem>

#include "aggregates/customer/customer.h"
#include "events/codec.h"
#include "events/hash_chain.h"
#include "events/rocksdb_log.h"

namespace crm {
namespace {

customer::RegisterCustomer registration() {
  customer::RegisterCustomer c;
  c.set_name("Bench Customer 12345");
  c.set_kind(customer::ENTERPRISE);
  c.set_certificate_no("9131000012345");
  c.set_level(customer::GROWTH);
  c.set_credit_level(customer::B);
  c.set_region("north");
  c.set_industry("retail");
  c.set_owner_id("sales-1");
  return c;
}

void BM_CustomerDecideRegister(benchmark::State& state) {
  const customer::Customer empty;
  const customer::Command command = registration();
  for (auto _ : state) {
    auto decision = customer::decide(empty, "cus_0123456789abcdef", command);
    benchmark::DoNotOptimize(decision);
  }
}
BENCHMARK(BM_CustomerDecideRegister);

void BM_CustomerEvolveRegistered(benchmark::State& state) {
  auto decision = customer::decide(customer::Customer(), "cus_1", registration());
  for (auto _ : state) {
    customer::Customer c;
    customer::evolve(c, decision.events[0], 1, 1'790'000'000'000'000);
    benchmark::DoNotOptimize(c);
  }
}
BENCHMARK(BM_CustomerEvolveRegistered);

void BM_HashSeal(benchmark::State& state) {
  events::EventEnvelope e;
  e.set_stream_id("cus_0123456789abcdef");
  e.set_event_type("crm.customer.CustomerRegistered");
  e.mutable_data()->PackFrom(registration());
  const std::string previous(32, 'p');
  for (auto _ : state) {
    hash_chain::seal(e, previous);
    benchmark::DoNotOptimize(e);
  }
}
BENCHMARK(BM_HashSeal);

// Appends `events_per_append` events per append from one thread; every append is synced.
void BM_LogAppend(benchmark::State& state) {
  char pattern[] = "/tmp/crm-bench-XXXXXX";
  std::string dir = mkdtemp(pattern);
  {
    StoreOptions options;
    options.path = dir + "/db";
    options.sync_writes = state.range(1) != 0;
    auto store = Store::open(options);
    auto log = RocksDbLog::open(*store.value(), 8);
    events::EventEnvelope e;
    e.set_event_type("crm.customer.CustomerRegistered");
    e.mutable_data()->PackFrom(registration());
    uint64_t n = 0;
    for (auto _ : state) {
      AppendRequest request;
      request.partition = static_cast<uint32_t>(n % 8);
      for (int i = 0; i < state.range(0); ++i)
        request.streams.push_back({"s" + std::to_string(n++), kAnyVersion, {e}});
      auto result = log.value()->append(std::move(request));
      if (!result.is_ok()) state.SkipWithError(result.status().message().c_str());
    }
    state.SetItemsProcessed(static_cast<int64_t>(n));
  }
  std::filesystem::remove_all(dir);
}
BENCHMARK(BM_LogAppend)
    ->ArgNames({"events", "sync"})
    ->Args({1, 1})
    ->Args({100, 1})
    ->Args({1, 0})
    ->Unit(benchmark::kMicrosecond)
    ->MinTime(1.0);

}  // namespace
}  // namespace crm

BENCHMARK_MAIN();
