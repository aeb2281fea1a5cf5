// RFC 4180 CSV: comma-separated, fields optionally in double quotes ("" escapes a quote,
// quoted fields may hold commas and line breaks), CRLF or LF line ends. A UTF-8 byte order
// mark at the start is skipped; blank lines are ignored.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace crm::api {

struct CsvTable {
  std::vector<std::vector<std::string>> rows;
  std::string error;           // empty when the text parsed; otherwise names the line
  bool too_many_rows = false;  // reading stopped after rows_max + 1 rows
};

// Stops, with too_many_rows set, once more than `rows_max` rows are read.
CsvTable parse_csv(std::string_view text, size_t rows_max);

}  // namespace crm::api
