// Fuzzes crm::api::parse_csv, the reader of POST /v1/customers:import, with a limit of 100 rows.
//
// What an importer relies on, checked on every input:
// - an error names its line ("CSV line N: …");
// - without an error the text gave rows, or it held nothing but line ends (after a byte order
//   mark): no text is dropped without a word;
// - never more than rows_max + 1 rows, and too_many_rows says exactly when there are more than
//   rows_max; no row is without a field;
// - the rows, written back with every field quoted (quotes doubled, commas between fields, CRLF
//   between rows), read back as the same rows.

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "api/csv.h"

namespace {

constexpr size_t kRowsMax = 100;

using Rows = std::vector<std::vector<std::string>>;

std::string write_csv(const Rows& rows) {
  std::string text;
  for (size_t r = 0; r < rows.size(); ++r) {
    if (r > 0) text += "\r\n";
    for (size_t f = 0; f < rows[r].size(); ++f) {
      if (f > 0) text += ',';
      text += '"';
      for (char c : rows[r][f]) {
        if (c == '"') text += '"';
        text += c;
      }
      text += '"';
    }
  }
  return text;
}

[[noreturn]] void fail(std::string_view text, std::string_view what) {
  std::fprintf(stderr, "fuzz_csv: %.*s\ntext (%zu bytes): %.*s\n", static_cast<int>(what.size()),
               what.data(), text.size(), static_cast<int>(text.size()), text.data());
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const auto table = crm::api::parse_csv(text, kRowsMax);

  if (table.rows.size() > kRowsMax + 1)
    fail(text, "read " + std::to_string(table.rows.size()) + " rows, over rows_max + 1");
  if (!table.error.empty()) {
    if (!table.error.starts_with("CSV line "))
      fail(text, "an error without its line: " + table.error);
    return 0;
  }
  if (table.too_many_rows != (table.rows.size() > kRowsMax))
    fail(text, "too_many_rows is " + std::to_string(table.too_many_rows) + " with " +
                   std::to_string(table.rows.size()) + " rows");
  if (table.rows.empty()) {
    std::string_view content = text;
    if (content.starts_with("\xEF\xBB\xBF")) content.remove_prefix(3);
    if (content.find_first_not_of("\r\n") != std::string_view::npos)
      fail(text, "no rows and no error from text that is not only line ends");
    return 0;
  }
  for (const auto& row : table.rows) {
    if (row.empty()) fail(text, "a row without fields");
  }

  const std::string written = write_csv(table.rows);
  const auto again = crm::api::parse_csv(written, kRowsMax);
  if (!again.error.empty())
    fail(text, "its rows, written as " + written + ", fail: " + again.error);
  if (again.rows != table.rows)
    fail(text, "its rows, written as " + written + ", read back different");
  if (again.too_many_rows != table.too_many_rows)
    fail(text, "its rows, written as " + written + ", change too_many_rows");
  return 0;
}
