// Fuzzes crm::parse_inbound, the reader of the Kafka records on crm.inbound
// (integration/inbound_parse.cc), and crm::inbound_idempotency_key.
//
// An input is a record, in an encoding meant to survive mutation and to stay readable in the
// seeds (tests/fuzz/corpus/fuzz_inbound):
// - byte 0 picks the header `command`: (byte - '0') modulo n+2, where n is the size of
//   inbound_commands(): '0'..'4' its names (RegisterCustomer, UpdateCustomer, AddContact,
//   RecordPayment, ActivateOrderItem), then CreateOrder (a command of the engine, not of
//   Kafka), then no header at all;
// - byte 1 picks the header `content-type`: (byte - '0') modulo 4: '0' none,
//   '1' application/json, '2' application/x-protobuf, '3' text/csv;
// - the low four bits of byte 2 say which headers follow: 1 idempotency-key, 2 customer-id,
//   4 order-id, 8 item-id ('0' none, '1' the key alone, '<' order-id and item-id, '?' all);
// - then the value of each of those headers, in that order: the bytes up to the next '\n'
//   (which is dropped), at most 255 of them;
// - the rest is the record's value.
// For example "010{\"name\":\"A\"}" is a RegisterCustomer with no content-type and no other
// header, and "42<ord_9\nit-1\n<protobuf>" an ActivateOrderItem in protobuf with its ids in
// headers. Topic, partition and offset are always crm.inbound, 3 and 41.
//
// What the consumer relies on, checked on every input:
// - a refusal has a rule "inbound.…" and a reason; no `command` header (or an empty one) is
//   inbound.command_missing, a name outside inbound_commands() inbound.unknown_command;
// - an accepted command has the body of its `command` header, a stream type and a stream id:
//   for a customer command the customer id (an id as the HTTP paths take them: at most 64
//   letters, digits, '_', '.', '-'), also its partition key; for an order command
//   "order:<order id>" with that order id beside it. So a stream id is at most 70 bytes and
//   has no '/';
// - a JSON value is read as over HTTP (user-guide.md, "Integrating over Kafka"): when the
//   value, without its top-level ids, is a body api::parse_json accepts, an accepted command
//   carries that very body;
// - inbound_idempotency_key is never empty;
// - the same record parses the same twice: the same rule and reason, or the same command
//   (compared serialized). `-runs=20` replays an input enough times to see it break.
//
// `CRM_FUZZ_TRACE=1 fuzz_inbound <files>` prints what each record parses to (to check a seed).
// `CRM_FUZZ_PRINT=dictionary fuzz_inbound` prints a libFuzzer dictionary of the bodies' field
// names (JSON and proto) and enum values: their JSON is read by libprotobuf, which is not
// instrumented.

#include <google/protobuf/descriptor.h>
#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <google/protobuf/util/message_differencer.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "aggregates/order/order.h"
#include "api/json.h"
#include "command.pb.h"
#include "customer.pb.h"
#include "integration/inbound_record.h"
#include "order.pb.h"
#include "workflow/aggregate_handler.h"

namespace {

using crm::events::CommandEnvelope;
using google::protobuf::Descriptor;

constexpr char kUnknownCommand[] = "CreateOrder";
constexpr const char* kContentTypes[] = {nullptr, "application/json", "application/x-protobuf",
                                         "text/csv"};
constexpr const char* kIdHeaders[] = {"idempotency-key", "customer-id", "order-id", "item-id"};
constexpr size_t kSliceMax = 255;

// What the fuzzer knows of each inbound command, apart from the parser.
struct Known {
  std::string_view name;
  CommandEnvelope::BodyCase body;
  const Descriptor* json;  // the message the JSON value is read into
  bool order;              // an order command (else a customer one)
  const google::protobuf::Message& (*body_of)(const CommandEnvelope&);  // that message
};

const std::vector<Known>& known_commands() {
  static const auto* known = [] {
    const std::vector<Known> all = {
        {"RegisterCustomer", CommandEnvelope::kRegisterCustomer,
         crm::customer::RegisterCustomer::descriptor(), false,
         [](const CommandEnvelope& c) -> const google::protobuf::Message& {
           return c.register_customer();
         }},
        {"UpdateCustomer", CommandEnvelope::kUpdateCustomer,
         crm::customer::UpdateCustomer::descriptor(), false,
         [](const CommandEnvelope& c) -> const google::protobuf::Message& {
           return c.update_customer();
         }},
        {"AddContact", CommandEnvelope::kAddContact, crm::customer::AddContact::descriptor(), false,
         [](const CommandEnvelope& c) -> const google::protobuf::Message& {
           return c.add_contact();
         }},
        {"RecordPayment", CommandEnvelope::kRecordPayment, crm::order::Payment::descriptor(), true,
         [](const CommandEnvelope& c) -> const google::protobuf::Message& {
           return c.record_payment().payment();
         }},
        {"ActivateOrderItem", CommandEnvelope::kRecordActivation,
         crm::order::RecordActivation::descriptor(), true,
         [](const CommandEnvelope& c) -> const google::protobuf::Message& {
           return c.record_activation();
         }},
    };
    // In the parser's order, and every name of the parser known here: a new inbound command
    // must say here what it becomes before it is fuzzed.
    auto* ordered = new std::vector<Known>;
    for (const auto& name : crm::inbound_commands()) {
      auto it =
          std::find_if(all.begin(), all.end(), [&](const Known& k) { return k.name == name; });
      if (it == all.end()) {
        std::fprintf(stderr,
                     "fuzz_inbound: inbound command %s unknown to tests/fuzz/fuzz_inbound.cc\n",
                     name.c_str());
        std::abort();
      }
      ordered->push_back(*it);
    }
    return ordered;
  }();
  return *known;
}

// Bytes as a C string literal would show them.
std::string escaped(std::string_view bytes) {
  std::string out;
  for (char c : bytes) {
    const auto byte = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (byte < 0x20 || byte > 0x7E) {
      char hex[5];
      std::snprintf(hex, sizeof hex, "\\x%02X", byte);
      out += hex;
    } else {
      out += c;
    }
  }
  return out;
}

[[noreturn]] void fail(const crm::InboundRecord& record, const std::string& what) {
  std::fprintf(stderr, "fuzz_inbound: %s\nrecord:\n", what.c_str());
  for (const auto& [name, value] : record.headers)
    std::fprintf(stderr, "  header %s: \"%s\"\n", name.c_str(), escaped(value).c_str());
  std::fprintf(stderr, "  value (%zu bytes): \"%s\"\n", record.value.size(),
               escaped(record.value).c_str());
  std::abort();
}

std::string serialized(const CommandEnvelope& command) {
  std::string out;
  {
    google::protobuf::io::StringOutputStream stream(&out);
    google::protobuf::io::CodedOutputStream coded(&stream);
    coded.SetSerializationDeterministic(true);
    command.SerializeToCodedStream(&coded);
  }
  return out;
}

bool same(const std::variant<crm::InboundCommand, crm::InboundRefusal>& a,
          const std::variant<crm::InboundCommand, crm::InboundRefusal>& b) {
  if (a.index() != b.index()) return false;
  if (const auto* refusal = std::get_if<crm::InboundRefusal>(&a)) {
    const auto& other = std::get<crm::InboundRefusal>(b);
    return refusal->rule == other.rule && refusal->reason == other.reason;
  }
  const auto& command = std::get<crm::InboundCommand>(a);
  const auto& other = std::get<crm::InboundCommand>(b);
  return command.order_id == other.order_id &&
         serialized(command.command) == serialized(other.command);
}

std::string describe(const std::variant<crm::InboundCommand, crm::InboundRefusal>& parsed) {
  if (const auto* refusal = std::get_if<crm::InboundRefusal>(&parsed))
    return "refusal " + refusal->rule + ": " + refusal->reason;
  const auto& command = std::get<crm::InboundCommand>(parsed);
  return "command " + command.command.ShortDebugString() + " order_id \"" +
         escaped(command.order_id) + "\"";
}

// A JSON object's text without its top-level members customerId, orderId and itemId (those
// that are not fields of `body`): the body an HTTP client would send. Keys are compared as
// written (an escaped key stays); nothing when the text is not an object of the expected shape.
std::optional<std::string> without_ids(std::string_view json, const Descriptor& body) {
  size_t i = 0;
  const auto skip_space = [&] {
    while (i < json.size() &&
           (json[i] == ' ' || json[i] == '\t' || json[i] == '\n' || json[i] == '\r'))
      ++i;
  };
  const auto skip_string = [&]() -> bool {  // at the opening quote; after the closing one
    for (++i; i < json.size(); ++i) {
      if (json[i] == '\\') {
        ++i;
      } else if (json[i] == '"') {
        ++i;
        return true;
      }
    }
    return false;
  };
  const auto skip_value = [&]() -> bool {
    int depth = 0;
    while (i < json.size()) {
      const char c = json[i];
      if (c == '"') {
        if (!skip_string()) return false;
        continue;
      }
      if (depth == 0 && (c == ',' || c == '}')) return true;
      if (c == '{' || c == '[') ++depth;
      if (c == '}' || c == ']') {
        if (--depth < 0) return false;
      }
      ++i;
    }
    return false;
  };
  const auto own_field = [&](std::string_view key) {
    for (int f = 0; f < body.field_count(); ++f)
      if (body.field(f)->json_name() == key) return true;
    return false;
  };

  skip_space();
  if (i == json.size() || json[i] != '{') return std::nullopt;
  ++i;
  std::string kept;
  for (;;) {
    skip_space();
    if (i < json.size() && json[i] == '}' && kept.empty()) break;  // {} or the end after ids
    if (i == json.size() || json[i] != '"') return std::nullopt;
    const size_t start = i;
    if (!skip_string()) return std::nullopt;
    const std::string_view key = json.substr(start + 1, i - start - 2);
    skip_space();
    if (i == json.size() || json[i] != ':') return std::nullopt;
    ++i;
    if (!skip_value()) return std::nullopt;
    const bool id = key == "customerId" || key == "orderId" || key == "itemId";
    if (!id || own_field(key)) {
      if (!kept.empty()) kept += ',';
      kept += json.substr(start, i - start);
    }
    if (json[i] == '}') break;
    ++i;  // ','
  }
  ++i;
  skip_space();
  if (i != json.size()) return std::nullopt;
  return "{" + kept + "}";
}

void collect_tokens(const Descriptor& type, std::set<const Descriptor*>& seen,
                    std::set<std::string>& tokens) {
  if (!seen.insert(&type).second) return;
  for (int i = 0; i < type.field_count(); ++i) {
    const auto* field = type.field(i);
    tokens.insert("\"" + field->json_name() + "\":");
    tokens.insert("\"" + field->name() + "\":");  // read too, as the same field
    if (const auto* values = field->enum_type()) {
      for (int v = 0; v < values->value_count(); ++v)
        tokens.insert("\"" + values->value(v)->name() + "\"");
    }
    if (const auto* nested = field->message_type()) collect_tokens(*nested, seen, tokens);
  }
}

void print_dictionary() {
  std::set<std::string> tokens = {
      "\"customerId\":",          "\"orderId\":",     "\"itemId\":", "true",   "false", "null",
      "\"2026-11-26T09:40:00Z\"", "9007199254740993", "\"\\u0000\"", "\"a/b\""};
  std::set<const Descriptor*> seen;
  for (const auto& known : known_commands()) collect_tokens(*known.json, seen, tokens);
  for (const auto& token : tokens) std::printf("\"%s\"\n", escaped(token).c_str());
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int* /*argc*/, char*** /*argv*/) {
  known_commands();  // aborts at once if the parser has a command this file does not know
  const char* print = std::getenv("CRM_FUZZ_PRINT");
  if (print == nullptr) return 0;
  if (std::string_view(print) == "dictionary") {
    print_dictionary();
  } else {
    std::fprintf(stderr, "CRM_FUZZ_PRINT takes dictionary\n");
    std::exit(2);
  }
  std::exit(0);
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 3) return 0;
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const auto& known = known_commands();

  crm::InboundRecord record;
  record.topic = "crm.inbound";
  record.partition = 3;
  record.offset = 41;
  record.key = "cus_1";

  const size_t command_choice = static_cast<uint8_t>(input[0] - '0') % (known.size() + 2);
  const Known* command = command_choice < known.size() ? &known[command_choice] : nullptr;
  if (command != nullptr)
    record.headers.emplace_back("command", std::string(command->name));
  else if (command_choice == known.size())
    record.headers.emplace_back("command", kUnknownCommand);

  if (const char* type = kContentTypes[static_cast<uint8_t>(input[1] - '0') % 4])
    record.headers.emplace_back("content-type", type);

  const unsigned flags = static_cast<uint8_t>(input[2]) & 0x0F;
  size_t at = 3;
  for (unsigned bit = 0; bit < 4; ++bit) {
    if ((flags & (1u << bit)) == 0) continue;
    const std::string_view rest = input.substr(at);
    const size_t end = std::min({rest.find('\n'), rest.size(), kSliceMax});
    record.headers.emplace_back(kIdHeaders[bit], std::string(rest.substr(0, end)));
    at += end + (end < rest.size() && rest[end] == '\n' ? 1 : 0);
  }
  record.value = std::string(input.substr(at));

  if (crm::inbound_idempotency_key(record).empty()) fail(record, "an empty idempotency key");

  const auto parsed = crm::parse_inbound(record);
  const auto again = crm::parse_inbound(record);
  if (!same(parsed, again))
    fail(record, "parsed twice, differently: " + describe(parsed) + ", then " + describe(again));
  static const bool trace = std::getenv("CRM_FUZZ_TRACE") != nullptr;
  if (trace) std::fprintf(stderr, "fuzz_inbound: %s\n", describe(parsed).c_str());

  if (const auto* refusal = std::get_if<crm::InboundRefusal>(&parsed)) {
    if (refusal->rule.size() <= 8 || refusal->rule.rfind("inbound.", 0) != 0)
      fail(record, "a refusal with the rule \"" + refusal->rule + "\"");
    if (refusal->reason.empty()) fail(record, "a refusal " + refusal->rule + " without a reason");
    if (command_choice == known.size() + 1 && refusal->rule != "inbound.command_missing")
      fail(record, "no header command, refused as " + refusal->rule);
    if (command_choice == known.size() && refusal->rule != "inbound.unknown_command")
      fail(record, std::string(kUnknownCommand) + " refused as " + refusal->rule);
    return 0;
  }

  const auto& inbound = std::get<crm::InboundCommand>(parsed);
  const auto& envelope = inbound.command;
  if (command == nullptr)
    fail(record, "accepted without one of the inbound commands: " + describe(parsed));
  if (envelope.body_case() != command->body)
    fail(record,
         "accepted " + std::string(command->name) + " with another body: " + describe(parsed));
  const std::string& id = envelope.stream_id();
  if (envelope.stream_type().empty() || id.empty())
    fail(record, "accepted without a stream: " + describe(parsed));
  if (id.size() > 70 || id.find('/') != std::string::npos)
    fail(record, "accepted with a stream id unfit for a path: " + describe(parsed));
  if (command->order) {
    if (envelope.stream_type() != crm::kOrderStream)
      fail(record, "an order command on another stream: " + describe(parsed));
    if (inbound.order_id.empty()) fail(record, "an order command without its order id");
    if (!crm::is_inbound_id(inbound.order_id) ||
        id != std::string(crm::order::kStreamPrefix) + inbound.order_id)
      fail(record, "an order command whose stream is not its order's: " + describe(parsed));
  } else {
    if (envelope.stream_type() != crm::kCustomerStream)
      fail(record, "a customer command on another stream: " + describe(parsed));
    if (!crm::is_inbound_id(id) || envelope.partition_key() != id)
      fail(record, "a customer command with a stream id unlike a customer id: " + describe(parsed));
    if (!inbound.order_id.empty()) fail(record, "a customer command with an order id");
  }

  const std::string* type = record.header("content-type");
  if (type == nullptr || *type == "application/json") {
    if (auto body = without_ids(record.value, *command->json)) {
      std::unique_ptr<google::protobuf::Message> over_http(command->body_of(envelope).New());
      if (!crm::api::parse_json(*body, over_http.get())) {
        google::protobuf::util::MessageDifferencer differencer;
        std::string differences;
        differencer.ReportDifferencesToString(&differences);
        if (!differencer.Compare(command->body_of(envelope), *over_http))
          fail(record, "read otherwise than over HTTP, where the body " + *body + " is " +
                           over_http->ShortDebugString() + ":\n" + differences);
      }
    }
  }
  return 0;
}
