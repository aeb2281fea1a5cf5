#include "events/status.h"

namespace crm {

std::string Status::to_string() const {
  const char* name = "OK";
  switch (code_) {
    case StatusCode::kOk:
      return "OK";
    case StatusCode::kInvalidArgument:
      name = "INVALID_ARGUMENT";
      break;
    case StatusCode::kNotFound:
      name = "NOT_FOUND";
      break;
    case StatusCode::kConflict:
      name = "CONFLICT";
      break;
    case StatusCode::kUnavailable:
      name = "UNAVAILABLE";
      break;
    case StatusCode::kResourceExhausted:
      name = "RESOURCE_EXHAUSTED";
      break;
    case StatusCode::kCorruption:
      name = "CORRUPTION";
      break;
    case StatusCode::kAborted:
      name = "ABORTED";
      break;
    case StatusCode::kInternal:
      name = "INTERNAL";
      break;
  }
  return std::string(name) + ": " + message_;
}

}  // namespace crm
