// The OpenAPI 3 document of the HTTP API (api/openapi.json), compiled into the binary.
#pragma once

#include <string_view>

namespace crm::api {

std::string_view openapi_document();

}  // namespace crm::api
