// Reference data every partition reads (invariant I3): the catalog. It is decided in one
// partition and read by all; this holds the latest acknowledged state in memory, shared, so an
// order's decision does not parse the catalog from the store each time.
#pragma once

#include <memory>
#include <mutex>

#include "catalog.pb.h"
#include "events/rocksdb_store.h"
#include "events/status.h"
#include "workflow/aggregate_handler.h"

namespace crm {

class ReferenceData {
 public:
  ReferenceData(Store& store, const HandlerRegistry& handlers)
      : store_(store), handlers_(handlers) {}

  // The catalog as of the last acknowledged change (loaded from the store on first use).
  Result<std::shared_ptr<const catalog::Catalog>> catalog();

  // Called by the catalog's partition once a change is durable; an older state never replaces
  // a newer one.
  void publish_catalog(std::shared_ptr<const catalog::Catalog> state);

 private:
  Store& store_;
  const HandlerRegistry& handlers_;
  std::mutex mu_;
  std::shared_ptr<const catalog::Catalog> catalog_;
};

}  // namespace crm
