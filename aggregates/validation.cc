#include "aggregates/validation.h"

#include <algorithm>
#include <cctype>

namespace crm::validation {

bool is_blank(std::string_view text) {
  return std::all_of(text.begin(), text.end(),
                     [](unsigned char c) { return std::isspace(c) != 0; });
}

bool is_email(std::string_view text) {
  if (text.size() > 254) return false;
  auto at = text.find('@');
  if (at == 0 || at == std::string_view::npos || text.find('@', at + 1) != std::string_view::npos)
    return false;
  auto domain = text.substr(at + 1);
  auto dot = domain.rfind('.');
  if (dot == std::string_view::npos || dot == 0 || dot + 1 == domain.size()) return false;
  return std::none_of(text.begin(), text.end(),
                      [](unsigned char c) { return std::isspace(c) != 0 || c < 0x20; });
}

bool is_phone(std::string_view text) {
  int digits = 0;
  for (unsigned char c : text) {
    if (std::isdigit(c)) {
      ++digits;
    } else if (c != '+' && c != '-' && c != ' ' && c != '(' && c != ')') {
      return false;
    }
  }
  return digits >= 3 && text.size() <= 32;
}

bool is_month_day(std::string_view text) {
  if (text.size() != 5 || text[2] != '-') return false;
  for (int i : {0, 1, 3, 4})
    if (!std::isdigit(static_cast<unsigned char>(text[i]))) return false;
  int month = (text[0] - '0') * 10 + (text[1] - '0');
  int day = (text[3] - '0') * 10 + (text[4] - '0');
  static constexpr int kDaysMax[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return month >= 1 && month <= 12 && day >= 1 && day <= kDaysMax[month - 1];
}

bool is_identifier(std::string_view text) {
  if (text.empty() || text.size() > 64) return false;
  return std::all_of(text.begin(), text.end(), [](unsigned char c) {
    return std::isalnum(c) != 0 || c == '.' || c == '_' || c == '-' || c == ':';
  });
}

size_t utf8_length(std::string_view text) {
  return static_cast<size_t>(
      std::count_if(text.begin(), text.end(), [](unsigned char c) { return (c & 0xC0) != 0x80; }));
}

bool is_currency(std::string_view text) {
  return text.size() == 3 &&
         std::all_of(text.begin(), text.end(), [](char c) { return c >= 'A' && c <= 'Z'; });
}

}  // namespace crm::validation
