#include "api/ids.h"

#include "events/codec.h"

namespace crm::api {

std::string customer_id_for_key(const std::string& principal_id, const std::string& key) {
  return "cus_" + to_hex(sha256(principal_id + '\0' + key)).substr(0, 32);
}

}  // namespace crm::api
