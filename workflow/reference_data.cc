#include "workflow/reference_data.h"

#include "aggregates/approval/policies.h"
#include "aggregates/catalog/catalog.h"
#include "workflow/partition_processor.h"

namespace crm {

const ReferenceData::Source ReferenceData::kCatalog{kCatalogStream, catalog::kStreamId};
const ReferenceData::Source ReferenceData::kPolicies{kPolicyStream, approval::kStreamId};

template <typename State>
Result<std::shared_ptr<const State>> ReferenceData::get(std::shared_ptr<const State>& held,
                                                        const Source& from) {
  {
    std::lock_guard lock(mu_);
    if (held) return held;
  }
  if (auto s = load(held, from); !s.is_ok()) return s;
  std::lock_guard lock(mu_);
  return held;
}

template <typename State>
Status ReferenceData::load(std::shared_ptr<const State>& held, const Source& from) {
  auto loaded = load_aggregate(store_, *handlers_.find(from.stream_type), from.stream_id);
  if (!loaded.is_ok()) return loaded.status();
  put(held, std::static_pointer_cast<const State>(
                std::shared_ptr<const google::protobuf::Message>(loaded->state)));
  return Status::ok();
}

void ReferenceData::refresh(const std::string& stream_id) {
  // A failed read keeps what is held; the next change tries again.
  if (stream_id == kCatalog.stream_id) (void)load(catalog_, kCatalog);
  if (stream_id == kPolicies.stream_id) (void)load(policies_, kPolicies);
}

template Result<std::shared_ptr<const catalog::Catalog>> ReferenceData::get(
    std::shared_ptr<const catalog::Catalog>&, const Source&);
template Result<std::shared_ptr<const approval::ApprovalPolicies>> ReferenceData::get(
    std::shared_ptr<const approval::ApprovalPolicies>&, const Source&);

}  // namespace crm
