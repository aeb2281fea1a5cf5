// The auditors' tools: `crm verify` (tamper evidence), `crm export` (JSON Lines an auditor reads
// without the engine) and `crm history` (an order's timeline in words).
#include <google/protobuf/util/time_util.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <memory>

#include "aggregates/event_variant.h"
#include "aggregates/order/order.h"
#include "aggregates/task/task.h"
#include "api/history.h"
#include "api/json.h"
#include "events/codec.h"
#include "ops/cli.h"
#include "projections/orders_view.h"
#include "projections/projector.h"
#include "projections/tasks_view.h"
#include "workflow/aggregate_handler.h"

namespace crm {
namespace {

constexpr size_t kPage = 1000;

// The streams of a customer: its own, its orders' and its tasks' (from the read models, brought
// up to the end of the log first).
Result<std::vector<std::string>> customer_streams(OfflineLog& offline,
                                                  const std::string& customer_id) {
  Projector projector(*offline.log, *offline.store, all_read_models());
  if (auto s = projector.open(); !s.is_ok()) return s;
  if (auto s = projector.catch_up(); !s.is_ok()) return s;
  std::vector<std::string> streams = {customer_id};
  OrderFilter orders;
  orders.customer_id = customer_id;
  for (std::string token;;) {
    auto page = list_orders(*offline.store, orders, 500, token);
    if (!page.is_ok()) return page.status();
    for (const auto& o : page->items()) streams.push_back(order::stream_id(o.id()));
    token = page->next_page_token();
    if (token.empty()) break;
  }
  TaskFilter tasks;
  tasks.customer_id = customer_id;
  for (std::string token;;) {
    auto page = list_tasks(*offline.store, tasks, 500, token);
    if (!page.is_ok()) return page.status();
    for (const auto& t : page->items()) streams.push_back(task::stream_id(t.id()));
    token = page->next_page_token();
    if (token.empty()) break;
  }
  return streams;
}

bool parse_time(const std::string& text, int64_t* us) {
  google::protobuf::Timestamp t;
  if (!google::protobuf::util::TimeUtil::FromString(text, &t)) return false;
  *us = timestamp_to_us(t);
  return true;
}

std::string actor_text(const events::Actor& actor) {
  std::string out = actor.principal_id().empty() ? "?" : actor.principal_id();
  if (!actor.role().empty()) out += " (" + actor.role() + ")";
  if (!actor.on_behalf_of().empty()) out += " for " + actor.on_behalf_of();
  return out;
}

std::string money_text(const Money& m) {
  return std::to_string(m.amount_minor()) + " " + m.currency();
}

// One order event in words; the data as JSON for the kinds without a sentence of their own.
std::string order_event_text(const events::EventEnvelope& envelope) {
  auto event = unpack_variant<order::Event>(envelope.data());
  if (!event) return "(an event this engine does not know)";
  if (const auto* e = std::get_if<order::ApprovalRequested>(&*event)) {
    std::string out = "approval asked (round " + std::to_string(e->round()) + ", policies " +
                      (e->policy_versions().empty() ? "none" : e->policy_versions()) + "):";
    for (const auto& a : e->approvals())
      out += " " + a.approval_id() + " of " + a.step().role() + " by rule '" + a.step().rule() +
             "'" + (a.step().time_limit().empty() ? "" : " within " + a.step().time_limit()) + ";";
    return out;
  }
  if (const auto* e = std::get_if<order::ApprovalDecided>(&*event)) {
    const auto& d = e->decision();
    return d.principal_id() + " (" + d.role() + ")" +
           (d.on_behalf_of().empty() ? "" : " for " + d.on_behalf_of()) + " decided " +
           order::ApprovalDecision::Kind_Name(d.decision()) + " on " + e->approval_id() +
           (d.comment().empty() ? "" : ": \"" + d.comment() + "\"");
  }
  if (const auto* e = std::get_if<order::ApprovalEscalated>(&*event))
    return e->approval_id() + " passed its time limit: asked of " + e->to_role() + " instead of " +
           e->from_role();
  if (const auto* e = std::get_if<order::OrderSubmitted>(&*event)) {
    std::string out = "submitted by " + e->submitted_by() + ":";
    for (const auto& line : e->receipt().lines())
      out += " " + line.item_id() + " " + order::ItemAction_Name(line.action()) + " " +
             line.offer_id() + "@" + std::to_string(line.offer_version()) +
             (line.non_standard_price() ? " (manual price)" : "") + ";";
    for (const auto& t : e->receipt().totals())
      out += " total " + money_text(t.one_time()) + " one-time + " + money_text(t.recurring()) +
             " recurring, discount " + std::to_string(t.discount_basis_points()) + " bp;";
    return out;
  }
  auto message = unpack_event(envelope.data());  // null for a type this engine does not know
  if (message == nullptr) return "";
  std::string json = api::to_json(*message);
  return json == "{}" ? "" : json;
}

}  // namespace

// Tamper evidence for auditors: recomputes every stream's hash chain (or one stream's) and
// prints the report as JSON. Exit 0: the log is as written; 4: it was altered; 1: not checked.
int verify_command(int argc, char** argv) {
  Flags flags;
  OfflineLog offline;
  if (int code = open_tool("verify", argc, argv, 2, {"data-dir", "partitions", "stream", "digest"},
                           flags, offline))
    return code;
  const auto started = std::chrono::steady_clock::now();
  auto stream = flags.values.find("stream");
  auto digest = flags.values.find("digest");
  if (stream != flags.values.end() && digest != flags.values.end()) {
    std::fprintf(stderr, "crm verify: give --stream or --digest, not both\n%s", kUsage);
    return 2;
  }
  std::string kept = digest == flags.values.end() ? "" : digest->second;
  std::transform(kept.begin(), kept.end(), kept.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  if (digest != flags.values.end() &&
      (kept.size() != 64 || kept.find_first_not_of("0123456789abcdef") != std::string::npos)) {
    std::fprintf(stderr, "crm verify: --digest must be 64 hex digits\n");
    return 2;
  }
  auto report = digest != flags.values.end()   ? api::digest_report(*offline.log, kept)
                : stream == flags.values.end() ? offline.log->verify()
                                               : offline.log->verify_stream(stream->second);
  if (!report.is_ok()) {
    std::fprintf(stderr, "crm verify: %s\n", report.status().to_string().c_str());
    return 1;
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  std::printf("%s\n", api::to_json(report.value()).c_str());
  std::fprintf(stderr, "crm verify: %llu events of %llu streams in %.3f s (%.0f events/s): %s\n",
               static_cast<unsigned long long>(report->events()),
               static_cast<unsigned long long>(report->streams()), seconds,
               seconds > 0 ? report->events() / seconds : 0.0,
               report->ok() ? "as written" : "ALTERED");
  return report->ok() ? 0 : 4;
}

// JSON Lines of the events an auditor asks for: one stream, one customer's streams (customer,
// orders, tasks; in log order), or every event that occurred in a period (partition by
// partition, each in log order). Each line is an event as the history routes show it.
int export_command(int argc, char** argv) {
  Flags flags;
  OfflineLog offline;
  if (int code = open_tool("export", argc, argv, 2,
                           {"data-dir", "partitions", "stream", "customer", "from", "to", "out"},
                           flags, offline))
    return code;
  auto get = [&](const char* name) {
    auto it = flags.values.find(name);
    return it == flags.values.end() ? std::string() : it->second;
  };
  const int selections = !get("stream").empty() + !get("customer").empty() +
                         (!get("from").empty() || !get("to").empty());
  if (selections != 1) {
    std::fprintf(stderr, "crm export: give one of --stream ID, --customer ID, --from/--to\n%s",
                 kUsage);
    return 2;
  }
  int64_t from_us = INT64_MIN, to_us = INT64_MAX;
  if ((!get("from").empty() && !parse_time(get("from"), &from_us)) ||
      (!get("to").empty() && !parse_time(get("to"), &to_us))) {
    std::fprintf(stderr, "crm export: --from and --to are RFC 3339 times (2026-11-27T09:00:00Z)\n");
    return 2;
  }
  std::unique_ptr<FILE, int (*)(FILE*)> file(nullptr, &std::fclose);
  FILE* out = stdout;
  if (!get("out").empty()) {
    file.reset(std::fopen(get("out").c_str(), "w"));
    if (!file) {
      std::fprintf(stderr, "crm export: cannot write %s\n", get("out").c_str());
      return 1;
    }
    out = file.get();
  }
  uint64_t written = 0;
  auto write = [&](const events::EventEnvelope& e) {
    std::fprintf(out, "%s\n", api::to_json(api::history_item(e)).c_str());
    ++written;
  };
  std::vector<events::EventEnvelope> events;
  Status status;
  if (!get("stream").empty()) {
    status = read_whole_stream(*offline.log, get("stream"), events);
  } else if (!get("customer").empty()) {
    auto streams = customer_streams(offline, get("customer"));
    status = streams.status();
    for (size_t i = 0; status.is_ok() && streams.is_ok() && i < streams->size(); ++i)
      status = read_whole_stream(*offline.log, (*streams)[i], events);
    std::sort(events.begin(), events.end(), [](const auto& a, const auto& b) {
      return std::pair(a.position().partition(), a.position().offset()) <
             std::pair(b.position().partition(), b.position().offset());
    });
  } else {
    for (uint32_t p = 0; status.is_ok() && p < offline.log->partition_count(); ++p) {
      for (uint64_t next = 0;;) {
        auto page = offline.log->read_partition(p, next, kPage);
        if (!page.is_ok()) {
          status = page.status();
          break;
        }
        for (const auto& e : page.value()) {
          const int64_t at = timestamp_to_us(e.occurred_at());
          if (at >= from_us && at <= to_us) write(e);
        }
        if (page->size() < kPage) break;
        next += page->size();
      }
    }
  }
  if (!status.is_ok()) {
    std::fprintf(stderr, "crm export: %s\n", status.to_string().c_str());
    return 1;
  }
  for (const auto& e : events) write(e);
  if (std::fflush(out) != 0) {
    std::fprintf(stderr, "crm export: writing failed\n");
    return 1;
  }
  std::fprintf(stderr, "crm export: %llu events\n", static_cast<unsigned long long>(written));
  return 0;
}

// An order's timeline: one line an event — when, version, who (role, on behalf of), what, and
// for approvals which rule asked and who decided.
int history_command(int argc, char** argv) {
  if (argc < 3 || std::string(argv[2]).rfind("--", 0) == 0) {
    std::fprintf(stderr, "crm history: which order? crm history ORDER_ID [--data-dir DIR]\n%s",
                 kUsage);
    return 2;
  }
  const std::string order_id = argv[2];
  Flags flags;
  OfflineLog offline;
  if (int code = open_tool("history", argc, argv, 3, {"data-dir", "partitions"}, flags, offline))
    return code;
  std::vector<events::EventEnvelope> events;
  if (!order::is_order_id(order_id)) {
    std::fprintf(stderr, "crm history: '%s' is not an order id\n", order_id.c_str());
    return 1;
  }
  if (auto s = read_whole_stream(*offline.log, order::stream_id(order_id), events); !s.is_ok()) {
    std::fprintf(stderr, "crm history: %s\n", s.to_string().c_str());
    return 1;
  }
  if (events.empty()) {
    std::fprintf(stderr, "crm history: no order '%s'\n", order_id.c_str());
    return 1;
  }
  std::printf("Order %s: %zu events\n", order_id.c_str(), events.size());
  for (const auto& e : events) {
    const std::string type = e.event_type().substr(e.event_type().rfind('.') + 1);
    std::printf("%s  v%llu  %s  %s  %s\n",
                google::protobuf::util::TimeUtil::ToString(e.occurred_at()).c_str(),
                static_cast<unsigned long long>(e.stream_version()), actor_text(e.actor()).c_str(),
                type.c_str(), order_event_text(e).c_str());
  }
  return 0;
}

}  // namespace crm
