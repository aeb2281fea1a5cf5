#include "api/problem.h"

namespace crm::api {
namespace {

Problem make(int status, const std::string& type, const std::string& title,
             const std::string& detail, const std::string& rule = "") {
  Problem p;
  p.set_status(status);
  p.set_type("urn:crm:problem:" + type);
  p.set_title(title);
  p.set_detail(detail);
  p.set_rule(rule);
  return p;
}

}  // namespace

Problem problem_from(const Rejection& rejection) {
  Problem p;
  switch (rejection.kind) {
    case Rejection::Kind::kInvalid:
      p = make(422, "rule-violation", "A business rule refused the request", rejection.message,
               rejection.rule);
      break;
    case Rejection::Kind::kNotFound:
      p = make(404, "not-found", "No such resource", rejection.message, rejection.rule);
      break;
    case Rejection::Kind::kConflict:
      p = make(409, "conflict", "The request conflicts with the current state", rejection.message,
               rejection.rule);
      break;
    case Rejection::Kind::kVersionMismatch:
      p = make(412, "version-mismatch", "The resource changed since the version you named",
               rejection.message, rejection.rule);
      break;
    case Rejection::Kind::kForbidden:
      p = make(403, "forbidden", "You may not do this", rejection.message, rejection.rule);
      break;
  }
  for (const auto& v : rejection.violations) {
    auto* e = p.add_errors();
    e->set_field(v.field);
    e->set_rule(v.rule);
    e->set_message(v.message);
  }
  if (p.errors().empty() && !rejection.rule.empty()) {
    auto* e = p.add_errors();
    e->set_rule(rejection.rule);
    e->set_message(rejection.message);
  }
  return p;
}

Problem problem_from(const Status& status) {
  switch (status.code()) {
    case StatusCode::kResourceExhausted:
      return make(429, "overloaded", "Too many requests in flight; retry after a pause",
                  status.message());
    case StatusCode::kUnavailable:
    case StatusCode::kAborted:
      return make(503, "unavailable", "The engine cannot take this request now", status.message());
    case StatusCode::kInvalidArgument:
      return bad_request(status.message());
    case StatusCode::kNotFound:
      return not_found(status.message());
    case StatusCode::kConflict:
      return make(412, "version-mismatch", "The resource changed since the version you named",
                  status.message());
    default:
      return make(500, "internal", "The engine failed to process the request", status.message());
  }
}

Problem bad_request(const std::string& detail, const std::string& field, const std::string& rule) {
  Problem p = make(400, "malformed-request", "The request could not be read", detail, rule);
  auto* e = p.add_errors();
  e->set_field(field);
  e->set_rule(rule);
  e->set_message(detail);
  return p;
}

Problem unauthorized(const std::string& detail) {
  return make(401, "unauthorized", "Authentication required", detail);
}

Problem forbidden(const std::string& detail) {
  return make(403, "forbidden", "Your roles do not allow this", detail);
}

Problem not_found(const std::string& detail) {
  return make(404, "not-found", "No such resource", detail);
}

Problem payload_too_large(size_t limit_bytes) {
  return make(413, "payload-too-large", "The request body is too large",
              "Expected a body of at most " + std::to_string(limit_bytes) + " bytes");
}

Problem length_required(size_t limit_bytes) {
  return make(411, "length-required", "Content-Length required",
              "Expected a Content-Length header and a body of at most " +
                  std::to_string(limit_bytes) +
                  " bytes; bodies sent with Transfer-Encoding are not read");
}

Problem header_fields_too_large(size_t count_max, size_t bytes_max) {
  return make(431, "header-fields-too-large", "Request header fields too large",
              "Expected at most " + std::to_string(count_max) + " header fields of at most " +
                  std::to_string(bytes_max) + " bytes together");
}

Problem unsupported_media_type(const std::string& expected) {
  return make(415, "unsupported-media-type", "Unsupported Content-Type",
              "Expected Content-Type " + expected);
}

}  // namespace crm::api
