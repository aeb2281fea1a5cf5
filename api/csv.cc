#include "api/csv.h"

namespace crm::api {

CsvTable parse_csv(std::string_view text, size_t rows_max) {
  CsvTable table;
  if (text.starts_with("\xEF\xBB\xBF")) text.remove_prefix(3);
  std::vector<std::string> row;
  std::string field;
  bool in_quotes = false;
  bool field_started = false;  // the row has content (so a blank line is skipped)
  size_t line = 1;
  auto end_row = [&] {
    if (field_started || !row.empty()) {
      row.push_back(std::move(field));
      table.rows.push_back(std::move(row));
    }
    row.clear();
    field.clear();
    field_started = false;
  };
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_quotes) {
      if (c == '"') {
        if (i + 1 < text.size() && text[i + 1] == '"') {
          field.push_back('"');
          ++i;
        } else {
          in_quotes = false;
          if (i + 1 < text.size() && text[i + 1] != ',' && text[i + 1] != '\n' &&
              text[i + 1] != '\r') {
            table.error = "CSV line " + std::to_string(line) +
                          ": expected a comma or line end after a closing quote";
            return table;
          }
        }
      } else {
        if (c == '\n') ++line;
        field.push_back(c);
      }
      continue;
    }
    switch (c) {
      case '"':
        if (!field.empty()) {
          table.error = "CSV line " + std::to_string(line) +
                        ": a quote may only open a field; double it inside a quoted field";
          return table;
        }
        in_quotes = true;
        field_started = true;
        break;
      case ',':
        row.push_back(std::move(field));
        field.clear();
        field_started = true;
        break;
      case '\r':
        break;
      case '\n':
        end_row();
        ++line;
        if (table.rows.size() > rows_max) {
          table.too_many_rows = true;
          return table;
        }
        break;
      default:
        field.push_back(c);
        field_started = true;
    }
  }
  if (in_quotes) {
    table.error = "CSV line " + std::to_string(line) + ": a quoted field is never closed";
    return table;
  }
  end_row();
  table.too_many_rows = table.rows.size() > rows_max;
  return table;
}

}  // namespace crm::api
