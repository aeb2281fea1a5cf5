// Ids the API derives rather than draws, so that a retried request finds its first result.
#pragma once

#include <string>

namespace crm::api {

// Stream id of a customer registered with an idempotency key: the same key from the same
// principal always names the same customer, so a retried registration finds its first result.
std::string customer_id_for_key(const std::string& principal_id, const std::string& key);

}  // namespace crm::api
