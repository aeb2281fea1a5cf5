// Checks of single values shared by the aggregates. Each returns true when the value is fine.
#pragma once

#include <string_view>

namespace crm::validation {

bool is_blank(std::string_view text);
bool is_email(std::string_view text);       // local@domain.tld, no spaces
bool is_phone(std::string_view text);       // digits with optional + - ( ) and spaces, 3–32 long
bool is_month_day(std::string_view text);   // "MM-DD", a real day of some year (02-29 allowed)
bool is_identifier(std::string_view text);  // 1–64 of [A-Za-z0-9._:-]
bool is_currency(std::string_view text);    // an ISO 4217 code: three capital letters
size_t utf8_length(
    std::string_view text);  // code points; input is valid UTF-8 (checked at the edge)

}  // namespace crm::validation
