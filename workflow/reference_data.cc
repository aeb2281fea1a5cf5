#include "workflow/reference_data.h"

#include "aggregates/catalog/catalog.h"
#include "workflow/partition_processor.h"

namespace crm {

Result<std::shared_ptr<const catalog::Catalog>> ReferenceData::catalog() {
  {
    std::lock_guard lock(mu_);
    if (catalog_) return catalog_;
  }
  auto loaded = load_aggregate(store_, *handlers_.find(kCatalogStream), catalog::kStreamId);
  if (!loaded.is_ok()) return loaded.status();
  auto state = std::static_pointer_cast<const catalog::Catalog>(
      std::shared_ptr<const google::protobuf::Message>(loaded->state));
  publish_catalog(state);
  std::lock_guard lock(mu_);
  return catalog_;
}

void ReferenceData::publish_catalog(std::shared_ptr<const catalog::Catalog> state) {
  std::lock_guard lock(mu_);
  if (!catalog_ || catalog_->version() <= state->version()) catalog_ = std::move(state);
}

}  // namespace crm
