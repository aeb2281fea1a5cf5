// Every error a caller can cause, mapped to one HTTP status and one problem type, here and
// nowhere else (RFC 9457 application/problem+json).
#pragma once

#include <string>

#include "aggregates/rejection.h"
#include "api.pb.h"
#include "events/status.h"

namespace crm::api {

Problem problem_from(const Rejection& rejection);
Problem problem_from(const Status& status);  // status must not be ok

// A request the server could not read: malformed JSON, wrong types, unknown fields, bad
// headers or query parameters (400).
Problem bad_request(const std::string& detail, const std::string& field = "",
                    const std::string& rule = "request.malformed");
Problem unauthorized(const std::string& detail);
Problem forbidden(const std::string& detail);
Problem not_found(const std::string& detail);
Problem payload_too_large(size_t limit_bytes);
// A body sent without Content-Length (chunked), which this API does not read (411).
Problem length_required(size_t limit_bytes);
Problem header_fields_too_large(size_t count_max, size_t bytes_max);
Problem unsupported_media_type(const std::string& expected);

}  // namespace crm::api
