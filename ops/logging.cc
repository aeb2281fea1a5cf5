#include "ops/logging.h"

#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <mutex>

namespace crm {

void log_line(const std::string& level, const std::string& message,
              std::initializer_list<std::pair<std::string, std::string>> fields) {
  google::protobuf::Struct line;
  auto now = std::chrono::system_clock::now();
  std::time_t seconds = std::chrono::system_clock::to_time_t(now);
  char time_text[32];
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  std::strftime(time_text, sizeof time_text, "%Y-%m-%dT%H:%M:%SZ", &utc);
  (*line.mutable_fields())["time"].set_string_value(time_text);
  (*line.mutable_fields())["level"].set_string_value(level);
  (*line.mutable_fields())["message"].set_string_value(message);
  for (const auto& [key, value] : fields) (*line.mutable_fields())[key].set_string_value(value);
  std::string out;
  if (!google::protobuf::util::MessageToJsonString(line, &out).ok()) {
    // Only text that is not UTF-8 (a request path with %ff, say) fails: keep the line, with
    // every byte outside ASCII as '?'.
    for (auto& [key, value] : *line.mutable_fields()) {
      std::string text = value.string_value();
      for (char& c : text)
        if (static_cast<unsigned char>(c) >= 0x80) c = '?';
      value.set_string_value(text);
    }
    if (!google::protobuf::util::MessageToJsonString(line, &out).ok()) out = message;
  }
  static std::mutex mu;
  std::lock_guard lock(mu);
  std::fprintf(stderr, "%s\n", out.c_str());
  std::fflush(stderr);
}

}  // namespace crm
