// Fuzzes the JSON bodies of the HTTP API: crm::api::parse_json into the messages of our schemas,
// and crm::api::to_json back. The first byte of an input picks the message (its index in the
// list `CRM_FUZZ_PRINT=messages fuzz_json_body` prints, modulo its length); the rest is the body.
//
// The messages are every top-level message of every file in events/proto, found through the
// generated descriptors, and google.protobuf.Empty: the request bodies (RegisterCustomer, Offer,
// DecideApproval, …) live beside the events and states of their aggregate, and a new body is
// fuzzed without editing this file.
//
// What a client relies on, checked on every input:
// - a body that is not UTF-8 is refused, whatever the message, and is_valid_utf8 agrees with a
//   reading of the Unicode standard written apart from it;
// - a refusal says why: its message is not empty;
// - an accepted body prints (to_json) as UTF-8 that parses again to an equal message, and the
//   equal message prints the same.
//
// `CRM_FUZZ_PRINT=dictionary fuzz_json_body` prints a libFuzzer dictionary of field names, enum
// values and type URLs: libprotobuf's JSON parser is not instrumented, so the fuzzer cannot
// learn them from coverage.

#include <google/protobuf/descriptor.h>
#include <google/protobuf/empty.pb.h>
#include <google/protobuf/message.h>
#include <google/protobuf/util/field_comparator.h>
#include <google/protobuf/util/message_differencer.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "api/json.h"
#include "proto_files.h"

namespace {

using google::protobuf::Descriptor;

// Well-formed UTF-8 as table 3-7 of the Unicode standard lists it: each lead byte with the range
// its second byte must fall in (which excludes overlong forms, surrogates and code points past
// U+10FFFF), every further byte 80..BF.
bool is_well_formed_utf8(std::string_view text) {
  size_t i = 0;
  while (i < text.size()) {
    const auto lead = static_cast<unsigned char>(text[i]);
    if (lead <= 0x7F) {
      ++i;
      continue;
    }
    size_t length = 0;
    unsigned char second_low = 0x80;
    unsigned char second_high = 0xBF;
    if (lead >= 0xC2 && lead <= 0xDF) {
      length = 2;
    } else if (lead == 0xE0) {
      length = 3;
      second_low = 0xA0;
    } else if ((lead >= 0xE1 && lead <= 0xEC) || lead == 0xEE || lead == 0xEF) {
      length = 3;
    } else if (lead == 0xED) {
      length = 3;
      second_high = 0x9F;
    } else if (lead == 0xF0) {
      length = 4;
      second_low = 0x90;
    } else if (lead >= 0xF1 && lead <= 0xF3) {
      length = 4;
    } else if (lead == 0xF4) {
      length = 4;
      second_high = 0x8F;
    } else {
      return false;
    }
    if (text.size() - i < length) return false;
    for (size_t k = 1; k < length; ++k) {
      const auto byte = static_cast<unsigned char>(text[i + k]);
      const unsigned char low = k == 1 ? second_low : 0x80;
      const unsigned char high = k == 1 ? second_high : 0xBF;
      if (byte < low || byte > high) return false;
    }
    i += length;
  }
  return true;
}

// Whether `type` holds a google.protobuf.Any, at any depth. No request body does: the messages
// that do (HistoryItem, AggregateRecord, …) are printed by the engine from its own events and
// never parsed from a client, and an Any lets a body name protobuf's own types (Struct,
// FieldMask), whose JSON printing the engine never uses and which do not round-trip.
bool holds_any(const Descriptor& type, std::vector<const Descriptor*>& seen) {
  if (type.full_name() == "google.protobuf.Any") return true;
  if (std::find(seen.begin(), seen.end(), &type) != seen.end()) return false;
  seen.push_back(&type);
  for (int i = 0; i < type.field_count(); ++i) {
    const auto* nested = type.field(i)->message_type();
    if (nested && holds_any(*nested, seen)) return true;
  }
  return false;
}

// Sorted by full name, so an index names the same message from run to run.
const std::vector<const Descriptor*>& body_types() {
  static const auto* types = [] {
    auto* found = new std::vector<const Descriptor*>;
    const auto* pool = google::protobuf::DescriptorPool::generated_pool();
    for (std::string_view name : kProtoFiles) {
      const auto* file = pool->FindFileByName(std::string(name));
      if (file == nullptr) {
        std::fprintf(stderr, "fuzz_json_body: %.*s is not linked in\n",
                     static_cast<int>(name.size()), name.data());
        std::abort();
      }
      for (int i = 0; i < file->message_type_count(); ++i) {
        std::vector<const Descriptor*> seen;
        if (!holds_any(*file->message_type(i), seen)) found->push_back(file->message_type(i));
      }
    }
    found->push_back(google::protobuf::Empty::descriptor());  // POST …:retire
    std::sort(found->begin(), found->end(), [](const Descriptor* a, const Descriptor* b) {
      return a->full_name() < b->full_name();
    });
    return found;
  }();
  return *types;
}

std::unique_ptr<google::protobuf::Message> new_message(const Descriptor& type) {
  return std::unique_ptr<google::protobuf::Message>(
      google::protobuf::MessageFactory::generated_factory()->GetPrototype(&type)->New());
}

[[noreturn]] void fail(const Descriptor& type, std::string_view body, std::string_view what) {
  std::fprintf(stderr, "fuzz_json_body: %s: %.*s\nbody (%zu bytes): %.*s\n",
               type.full_name().c_str(), static_cast<int>(what.size()), what.data(), body.size(),
               static_cast<int>(body.size()), body.data());
  std::abort();
}

// A dictionary entry: the text in quotes, with quotes, backslashes and other bytes escaped.
std::string dictionary_entry(std::string_view text) {
  std::string entry = "\"";
  for (char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      entry += '\\';
      entry += c;
    } else if (byte < 0x20 || byte > 0x7E) {
      char escaped[5];
      std::snprintf(escaped, sizeof escaped, "\\x%02X", byte);
      entry += escaped;
    } else {
      entry += c;
    }
  }
  return entry + "\"";
}

void collect_tokens(const Descriptor& type, std::set<const Descriptor*>& seen,
                    std::set<std::string>& tokens) {
  if (!seen.insert(&type).second) return;
  tokens.insert("\"type.googleapis.com/" + type.full_name() + "\"");
  for (int i = 0; i < type.field_count(); ++i) {
    const auto* field = type.field(i);
    tokens.insert("\"" + field->json_name() + "\":");
    if (const auto* values = field->enum_type()) {
      for (int v = 0; v < values->value_count(); ++v)
        tokens.insert("\"" + values->value(v)->name() + "\"");
    }
    if (const auto* nested = field->message_type()) collect_tokens(*nested, seen, tokens);
  }
}

void print_dictionary() {
  std::set<std::string> tokens = {"true",
                                  "false",
                                  "null",
                                  "\"@type\":",
                                  "\"2026-11-26T09:40:00Z\"",
                                  "\"-9223372036854775808\"",
                                  "18446744073709551615",
                                  "1e999",
                                  "\"\\u0000\"",
                                  "\"\\ud83d\\ude00\""};
  std::set<const Descriptor*> seen;
  for (const auto* type : body_types()) collect_tokens(*type, seen, tokens);
  for (const auto& token : tokens) std::printf("%s\n", dictionary_entry(token).c_str());
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int* /*argc*/, char*** /*argv*/) {
  const char* print = std::getenv("CRM_FUZZ_PRINT");
  if (print == nullptr) return 0;
  const std::string_view what = print;
  if (what == "messages") {
    const auto& types = body_types();
    for (size_t i = 0; i < types.size(); ++i)
      std::printf("%zu %s\n", i, types[i]->full_name().c_str());
  } else if (what == "dictionary") {
    print_dictionary();
  } else {
    std::fprintf(stderr, "CRM_FUZZ_PRINT takes messages or dictionary\n");
    std::exit(2);
  }
  std::exit(0);
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const auto& types = body_types();
  const Descriptor& type = *types[data[0] % types.size()];
  const std::string_view body(reinterpret_cast<const char*>(data) + 1, size - 1);

  const bool utf8 = is_well_formed_utf8(body);
  if (crm::api::is_valid_utf8(body) != utf8)
    fail(type, body,
         utf8 ? "is_valid_utf8 refuses well-formed UTF-8"
              : "is_valid_utf8 accepts a body that is not UTF-8");

  auto message = new_message(type);
  if (auto error = crm::api::parse_json(body, message.get())) {
    if (error->message.empty()) fail(type, body, "refused without a message");
    return 0;
  }
  if (!utf8) fail(type, body, "accepted a body that is not UTF-8");

  const std::string printed = crm::api::to_json(*message);
  if (!is_well_formed_utf8(printed)) fail(type, body, "printed JSON that is not UTF-8: " + printed);
  auto again = new_message(type);
  if (auto error = crm::api::parse_json(printed, again.get()))
    fail(type, body, "refused its own printing " + printed + ": " + error->message);

  google::protobuf::util::DefaultFieldComparator comparator;
  comparator.set_treat_nan_as_equal(true);  // NaN prints as "NaN" and reads back, but NaN != NaN
  google::protobuf::util::MessageDifferencer differencer;
  differencer.set_field_comparator(&comparator);
  std::string differences;
  differencer.ReportDifferencesToString(&differences);
  if (!differencer.Compare(*message, *again))
    fail(type, body, "printed as " + printed + ", which reads back different:\n" + differences);
  const std::string reprinted = crm::api::to_json(*again);
  if (reprinted != printed)
    fail(type, body, "printed as " + printed + ", read back and printed as " + reprinted);
  return 0;
}
