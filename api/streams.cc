// Audit routes: the history of one stream, as-of reads, the hash-chain and digest checks, and
// the audit read models (decisions by principal, overrides by period).
#include <google/protobuf/util/time_util.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <set>

#include "aggregates/audit/digests.h"
#include "api/history.h"
#include "api/json.h"
#include "api/server.h"
#include "events/codec.h"

namespace crm::api {
namespace {

constexpr size_t kHistoryPageDefault = 100;
constexpr size_t kHistoryPageMax = 500;

}  // namespace

HistoryItem history_item(const events::EventEnvelope& e) {
  HistoryItem item;
  item.set_event_id(e.event_id());
  item.set_stream_id(e.stream_id());
  item.set_version(e.stream_version());
  item.set_position(format_position(e.position()));
  auto dot = e.event_type().rfind('.');
  item.set_type(dot == std::string::npos ? e.event_type() : e.event_type().substr(dot + 1));
  item.set_schema_version(e.schema_version());
  *item.mutable_occurred_at() = e.occurred_at();
  *item.mutable_recorded_at() = e.recorded_at();
  *item.mutable_actor() = e.actor();
  item.set_correlation_id(e.correlation_id());
  item.set_causation_id(e.causation_id());
  *item.mutable_data() = e.data();
  item.set_hash(to_hex(e.hash()));
  item.set_previous_hash(to_hex(e.previous_hash()));
  return item;
}

Result<VerifyReport> digest_report(EventLog& log, const std::string& digest_hex) {
  VerifyReport report;
  report.set_ok(true);
  auto check = check_digest(log, digest_hex);
  if (!check.is_ok() && check.status().code() != StatusCode::kNotFound) return check.status();
  if (check.is_ok()) *report.mutable_digest() = check.value();
  report.mutable_digest()->set_digest(digest_hex);
  if (!report.digest().ok()) {
    report.set_ok(false);
    auto* first = report.mutable_first_mismatch();
    first->set_stream_id(audit::kStreamId);
    first->set_reason(check.is_ok()
                          ? "Expected the events before the cut " + check->cut() +
                                " to give digest " + digest_hex + " as recorded at " +
                                check->recorded_at() + ", but they give " + check->recomputed() +
                                ": the history before it was altered"
                          : "Expected digest " + digest_hex +
                                " among those recorded, but it is not: the digest is not one of "
                                "this log's, or its record was removed");
    *report.add_problems() = *first;
  }
  return report;
}

bool Server::read_period(Call& call, int64_t* from_us, int64_t* to_us) {
  for (auto [name, bound] : {std::pair{"from", from_us}, std::pair{"to", to_us}}) {
    if (!call.request.has_param(name)) continue;
    google::protobuf::Timestamp t;
    if (!google::protobuf::util::TimeUtil::FromString(call.request.get_param_value(name), &t)) {
      reply_problem(call, bad_request(std::string("Expected ") + name +
                                          " as an RFC 3339 time such as 2026-11-27T09:00:00Z",
                                      name, "request.time"));
      return false;
    }
    *bound = timestamp_to_us(t);
  }
  return true;
}

void Server::reply_history(Call& call, const std::string& stream_id) {
  static const std::set<std::string> kKnown = {
      "fromVersion", "pageToken", "pageSize", "minPosition", "from", "to", "types"};
  for (const auto& [name, value] : call.request.params) {
    if (!kKnown.count(name))
      return reply_problem(call, bad_request("Unknown query parameter '" + name + "'", name,
                                             "request.unknown_parameter"));
  }
  if (!check_min_position(call)) return;
  uint64_t from_version = 1;
  uint64_t size = kHistoryPageDefault;
  for (const char* name : {"fromVersion", "pageToken"}) {
    if (call.request.has_param(name) &&
        !parse_count(call.request.get_param_value(name), 1, UINT64_MAX, &from_version)) {
      return reply_problem(
          call, bad_request(std::string("Expected ") + name + " to be a stream version (1 or more)",
                            name, "request.version"));
    }
  }
  if (call.request.has_param("pageSize") &&
      !parse_count(call.request.get_param_value("pageSize"), 1, kHistoryPageMax, &size)) {
    return reply_problem(
        call, bad_request("Expected pageSize between 1 and 500", "pageSize", "request.page_size"));
  }
  // Filters: occurred in [from, to], of one of `types` (short names, comma-separated).
  int64_t from_us = INT64_MIN, to_us = INT64_MAX;
  if (!read_period(call, &from_us, &to_us)) return;
  std::set<std::string> types;
  if (call.request.has_param("types")) {
    std::string list = call.request.get_param_value("types");
    for (size_t start = 0; start <= list.size();) {
      size_t comma = std::min(list.find(',', start), list.size());
      if (comma > start) types.insert(list.substr(start, comma - start));
      start = comma + 1;
    }
  }
  auto head = engine_.log().stream_head(stream_id);
  if (!head.is_ok()) return reply_problem(call, problem_from(head.status()));
  if (head->version == 0) return reply_problem(call, not_found("No stream '" + stream_id + "'"));
  HistoryPage page;
  uint64_t next = from_version;
  while (next <= head->version && static_cast<uint64_t>(page.items_size()) < size) {
    auto events = engine_.log().read_stream(stream_id, next, size);
    if (!events.is_ok()) return reply_problem(call, problem_from(events.status()));
    if (events->empty()) break;
    for (const auto& e : events.value()) {
      if (static_cast<uint64_t>(page.items_size()) == size) break;
      next = e.stream_version() + 1;
      const int64_t occurred_us = timestamp_to_us(e.occurred_at());
      if (occurred_us < from_us || occurred_us > to_us) continue;
      auto item = history_item(e);
      if (!types.empty() && !types.count(item.type())) continue;
      *page.add_items() = std::move(item);
    }
  }
  if (next <= head->version) page.set_next_page_token(std::to_string(next));
  call.response.set_header("ETag", "\"" + std::to_string(head->version) + "\"");
  reply(call, 200, page);
}

std::optional<LoadedAggregate> Server::read_as_of(Call& call, const std::string& stream_type,
                                                  const std::string& stream_id,
                                                  const std::string& what) {
  const std::string text = call.request.get_param_value("asOf");
  google::protobuf::Timestamp as_of;
  if (!google::protobuf::util::TimeUtil::FromString(text, &as_of)) {
    reply_problem(call, bad_request("Expected asOf as an RFC 3339 time such as "
                                    "2026-11-27T09:00:00Z, but got '" +
                                        text + "'",
                                    "asOf", "request.time"));
    return std::nullopt;
  }
  auto loaded = engine_.read_as_of(stream_type, stream_id, timestamp_to_us(as_of));
  if (!loaded.is_ok()) {
    reply_problem(call, problem_from(loaded.status()));
    return std::nullopt;
  }
  if (loaded->version == 0) {
    reply_problem(call, not_found("No " + what + " at " + text));
    return std::nullopt;
  }
  call.response.set_header("ETag", "\"" + std::to_string(loaded->version) + "\"");
  return std::move(loaded.value());
}

void Server::reply_audit(Call& call, AuditFilter filter) {
  static const std::set<std::string> kKnown = {"principal", "kind",      "from",       "to",
                                               "pageSize",  "pageToken", "minPosition"};
  for (const auto& [name, value] : call.request.params) {
    const bool allowed = kKnown.count(name) && (name != "principal" || !filter.overrides) &&
                         (name != "kind" || filter.overrides);
    if (!allowed)
      return reply_problem(call, bad_request("Unknown query parameter '" + name + "'", name,
                                             "request.unknown_parameter"));
  }
  if (filter.overrides) {
    filter.kind = call.request.get_param_value("kind");
    if (!filter.kind.empty() && filter.kind != "MANUAL_PRICE" && filter.kind != "ESCALATION" &&
        filter.kind != "REJECTION")
      return reply_problem(call, bad_request("Expected kind MANUAL_PRICE, ESCALATION or REJECTION",
                                             "kind", "request.enum"));
  } else {
    filter.principal_id = call.request.get_param_value("principal");
  }
  if (!read_period(call, &filter.from_us, &filter.to_us)) return;
  auto page_request = read_page(call, 100, is_audit_id);
  if (!page_request) return;
  if (!wait_for_min_position(call)) return;
  auto page = list_audit(engine_.store(), filter, page_request->size, page_request->token);
  if (!page.is_ok()) return reply_problem(call, problem_from(page.status()));
  reply(call, 200, page.value());
}

void Server::add_stream_routes() {
  route("GET", "/v1/audit/decisions", Access::kAuditRead, [this](Call& call) {
    AuditFilter decisions;
    decisions.kind = "DECISION";
    reply_audit(call, decisions);
  });
  route("GET", "/v1/audit/overrides", Access::kAuditRead, [this](Call& call) {
    AuditFilter overrides;
    overrides.overrides = true;
    reply_audit(call, overrides);
  });
  route("GET", R"(/v1/streams/([^/]{1,200})/events)", Access::kEventFeed,
        [this](Call& call) { reply_history(call, call.request.matches[1]); });
  // Tamper evidence: 200 with ok=false when the log was altered (the check itself succeeded).
  route("GET", "/v1/audit/verify", Access::kAuditRead, [this](Call& call) {
    for (const auto& [name, value] : call.request.params) {
      if (name != "streamId" && name != "digest")
        return reply_problem(call, bad_request("Unknown query parameter '" + name + "'", name,
                                               "request.unknown_parameter"));
    }
    if (call.request.has_param("digest")) {
      if (call.request.has_param("streamId"))
        return reply_problem(
            call, bad_request("Give streamId or digest, not both", "digest", "request.digest"));
      std::string digest = call.request.get_param_value("digest");
      std::transform(digest.begin(), digest.end(), digest.begin(),
                     [](unsigned char c) { return std::tolower(c); });
      if (digest.size() != 64 || digest.find_first_not_of("0123456789abcdef") != std::string::npos)
        return reply_problem(
            call, bad_request("Expected digest as 64 hex digits", "digest", "request.digest"));
      auto report = digest_report(engine_.log(), digest);
      if (!report.is_ok()) return reply_problem(call, problem_from(report.status()));
      return reply(call, 200, report.value());
    }
    const std::string stream_id = call.request.get_param_value("streamId");
    if (call.request.has_param("streamId") && (stream_id.empty() || stream_id.size() > 200))
      return reply_problem(call, bad_request("Expected streamId to be a stream id", "streamId",
                                             "request.stream_id"));
    auto report =
        stream_id.empty() ? engine_.log().verify() : engine_.log().verify_stream(stream_id);
    if (!report.is_ok()) {
      if (report.status().code() == StatusCode::kNotFound)
        return reply_problem(call, not_found("No stream '" + stream_id + "'"));
      return reply_problem(call, problem_from(report.status()));
    }
    reply(call, 200, report.value());
  });
}

}  // namespace crm::api
