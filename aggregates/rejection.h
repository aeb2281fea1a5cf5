// A domain refusal: which rule said no, and a message a clerk can act on ("Expected …, but …").
// Not an error of the machine: the API answers it with a 4xx, the log records nothing.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace crm {

struct FieldViolation {
  std::string field;  // JSON path in the request, e.g. "email" or "contacts[2].birthday"
  std::string rule;   // e.g. "customer.email_format"
  std::string message;
};

struct Rejection {
  enum class Kind {
    kInvalid,          // the command breaks a rule about its own values (422)
    kNotFound,         // the aggregate does not exist (404)
    kConflict,         // the command conflicts with the aggregate's state (409)
    kVersionMismatch,  // If-Match named another version (412)
    kForbidden,        // the caller may not do this to this aggregate (403)
  };
  Kind kind = Kind::kInvalid;
  std::string rule;
  std::string message;
  std::vector<FieldViolation> violations;
};

// The outcome of decide(): the events to append (possibly none: nothing to change), or why not.
template <typename Event>
struct Decision {
  std::vector<Event> events;
  std::optional<Rejection> rejection;

  static Decision refuse(Rejection r) { return Decision{{}, std::move(r)}; }
};

// Collects field violations while a command is validated.
class Violations {
 public:
  void add(std::string field, std::string rule, std::string message) {
    list_.push_back({std::move(field), std::move(rule), std::move(message)});
  }
  bool empty() const { return list_.empty(); }
  // One rejection naming the first rule broken and listing every violation.
  Rejection to_rejection() && {
    Rejection r{Rejection::Kind::kInvalid, list_.front().rule, list_.front().message, {}};
    if (list_.size() > 1)
      r.message += " (and " + std::to_string(list_.size() - 1) + " more, see errors)";
    r.violations = std::move(list_);
    return r;
  }

 private:
  std::vector<FieldViolation> list_;
};

}  // namespace crm
