// An engine over a real RocksDB in a temporary directory, with a manual clock.
#pragma once

#include <gtest/gtest.h>

#include "events/codec.h"
#include "events/rocksdb_log.h"
#include "tests/support/test_support.h"
#include "workflow/engine.h"

namespace crm::testing {

inline constexpr int64_t kStartUs = 1'790'000'000'000'000;

class EngineFixture : public ::testing::Test {
 protected:
  void SetUp() override { open(); }
  void TearDown() override { close(); }

  void open(ProcessorOptions options = {}) {
    StoreOptions store_options;
    store_options.path = dir_.path() + "/db";
    auto store = Store::open(store_options);
    ASSERT_TRUE(store.is_ok()) << store.status().to_string();
    store_ = std::move(store.value());
    auto log = RocksDbLog::open(*store_, 4);
    ASSERT_TRUE(log.is_ok());
    log_ = std::move(log.value());
    engine_ = std::make_unique<Engine>(*log_, *store_, clock_, ids_, options);
  }
  void close() {
    engine_.reset();
    log_.reset();
    store_.reset();
  }
  void reopen(ProcessorOptions options = {}) {
    close();
    open(options);
  }

  events::CommandEnvelope command(const std::string& customer_id, const std::string& key = "") {
    events::CommandEnvelope c;
    c.set_command_id(ids_.next("cmd_"));
    c.set_stream_type("customer");
    c.set_stream_id(customer_id);
    c.set_partition_key(customer_id);
    c.mutable_actor()->set_principal_id("clerk-1");
    c.mutable_actor()->set_role("clerk");
    c.set_correlation_id("corr-1");
    *c.mutable_issued_at() = timestamp_from_us(clock_.now_us());
    c.set_idempotency_key(key);
    return c;
  }

  events::CommandEnvelope register_command(const std::string& id, const std::string& name,
                                           const std::string& key = "") {
    auto c = command(id, key);
    auto* r = c.mutable_register_customer();
    r->set_name(name);
    r->set_kind(customer::ENTERPRISE);
    r->set_owner_id("sales-1");
    c.set_request_hash(sha256(r->SerializeAsString()));
    return c;
  }

  CommandOutcome run(events::CommandEnvelope c) { return engine_->submit(std::move(c)).get(); }

  TempDir dir_;
  ManualClock clock_{kStartUs};
  RandomIdSource ids_{42};
  std::unique_ptr<Store> store_;
  std::unique_ptr<RocksDbLog> log_;
  std::unique_ptr<Engine> engine_;
};

}  // namespace crm::testing
