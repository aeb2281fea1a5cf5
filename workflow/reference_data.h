// Reference data every partition reads (invariant I3): the catalog and the approval policies.
// Each is decided in one partition and read by all; this holds the latest acknowledged state of
// each in memory, shared, so an order's decision does not parse them from the store each time.
#pragma once

#include <memory>
#include <mutex>
#include <string>

#include "approval.pb.h"
#include "catalog.pb.h"
#include "events/rocksdb_store.h"
#include "events/status.h"
#include "workflow/aggregate_handler.h"

namespace crm {

class ReferenceData {
 public:
  ReferenceData(Store& store, const HandlerRegistry& handlers)
      : store_(store), handlers_(handlers) {}

  // As of the last acknowledged change (loaded from the store on first use).
  Result<std::shared_ptr<const catalog::Catalog>> catalog() { return get(catalog_, kCatalog); }
  Result<std::shared_ptr<const approval::ApprovalPolicies>> policies() {
    return get(policies_, kPolicies);
  }

  // Called by the deciding partition once a change is durable; an older state never replaces
  // a newer one.
  void publish(std::shared_ptr<const catalog::Catalog> state) { put(catalog_, std::move(state)); }
  void publish(std::shared_ptr<const approval::ApprovalPolicies> state) {
    put(policies_, std::move(state));
  }
  // Reads the state of `stream_id` again from the store when it is the catalog's or the
  // policies' (another instance changed it: a log on Kafka brought the change here).
  void refresh(const std::string& stream_id);

 private:
  struct Source {
    const char* stream_type;
    const char* stream_id;
  };
  static const Source kCatalog;
  static const Source kPolicies;

  template <typename State>
  Result<std::shared_ptr<const State>> get(std::shared_ptr<const State>& held, const Source& from);
  template <typename State>
  Status load(std::shared_ptr<const State>& held, const Source& from);
  template <typename State>
  void put(std::shared_ptr<const State>& held, std::shared_ptr<const State> state) {
    std::lock_guard lock(mu_);
    if (!held || held->version() <= state->version()) held = std::move(state);
  }

  Store& store_;
  const HandlerRegistry& handlers_;
  std::mutex mu_;
  std::shared_ptr<const catalog::Catalog> catalog_;
  std::shared_ptr<const approval::ApprovalPolicies> policies_;
};

}  // namespace crm
