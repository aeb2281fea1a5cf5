// Structured logs: one JSON object a line on stderr.
#pragma once

#include <initializer_list>
#include <string>
#include <utility>

namespace crm {

void log_line(const std::string& level, const std::string& message,
              std::initializer_list<std::pair<std::string, std::string>> fields = {});

}  // namespace crm
