// JSON ⇄ protobuf at the HTTP edge, through protobuf's own JSON mapping (no hand-written
// codec). Parsing refuses bad UTF-8 and unknown fields, naming the field where it can.
#pragma once

#include <google/protobuf/message.h>

#include <optional>
#include <string>
#include <string_view>

namespace crm::api {

bool is_valid_utf8(std::string_view text);

struct JsonError {
  std::string field;  // the offending field when known
  std::string message;
};

std::optional<JsonError> parse_json(std::string_view body, google::protobuf::Message* message);

std::string to_json(const google::protobuf::Message& message);

}  // namespace crm::api
