// Customer routes: register, read, change, contacts, list, import, history.
#include <google/protobuf/descriptor.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <deque>

#include "api/csv.h"
#include "api/json.h"
#include "api/server.h"
#include "customer.pb.h"
#include "events/codec.h"
#include "projections/customers_view.h"
#include "workflow/aggregate_handler.h"

namespace crm::api {
namespace {

// Customer ids never hold ':', which marks the streams of other types ("principal:…").
constexpr char kCustomerPath[] = R"(/v1/customers/([A-Za-z0-9_.-]{1,64}))";
bool is_customer_id(std::string_view text) {
  return !text.empty() && text.size() <= 64 &&
         std::all_of(text.begin(), text.end(), [](unsigned char c) {
           return std::isalnum(c) != 0 || c == '_' || c == '.' || c == '-';
         });
}

customer::Customer view_of(const CommandOutcome& outcome) {
  customer::Customer view = static_cast<const customer::Customer&>(*outcome.state);
  view.set_position(format_position(outcome.position));
  return view;
}

// A row's own idempotency key. The \x1f separators cannot come from a header (keys there are
// printable ASCII), so no registration's key can name an imported row or the reverse.
std::string import_row_key(const std::string& import_key, size_t row) {
  return "\x1fimport\x1f" + import_key + "\x1frow" + std::to_string(row);
}

}  // namespace

bool Server::claim_import(Call& call, const std::string& key) {
  const std::string claim_key = call.caller.id + '\0' + "\x1fimport\x1f" + key;
  const std::string body_hash = sha256(call.request.body);
  const int64_t now_us = clock_.now_us();
  std::lock_guard lock(import_claims_mu_);
  std::string bytes;
  Status s = engine_.store().get(Store::Family::kIdempotency, claim_key, &bytes);
  if (s.is_ok()) {
    events::IdempotencyRecord record;
    if (!record.ParseFromString(bytes)) {
      reply_problem(call, problem_from(Status::corruption("unreadable import claim")));
      return false;
    }
    const bool live = now_us - timestamp_to_us(record.recorded_at()) <=
                      ProcessorOptions{}.idempotency_retention_us;
    if (live && record.request_hash() != body_hash) {
      reply_problem(
          call, problem_from(Rejection{Rejection::Kind::kConflict,
                                       "idempotency.key_reused",
                                       "Expected Idempotency-Key '" + key +
                                           "' to come with the same CSV as its first use, but this "
                                           "import differs",
                                       {}}));
      return false;
    }
    if (live) return true;  // a retry of the same import: its rows answer as REPEATED
  } else if (s.code() != StatusCode::kNotFound) {
    reply_problem(call, problem_from(s));
    return false;
  }
  events::IdempotencyRecord record;
  record.set_request_hash(body_hash);
  *record.mutable_recorded_at() = timestamp_from_us(now_us);
  s = engine_.store().write_durable([&](rocksdb::WriteBatch& batch) {
    batch.Put(engine_.store().family(Store::Family::kIdempotency), claim_key,
              record.SerializeAsString());
  });
  if (!s.is_ok()) {
    reply_problem(call, problem_from(s));
    return false;
  }
  return true;
}

void Server::add_customer_routes() {
  route("POST", "/v1/customers", Access::kCustomerWrite, [this](Call& call) {
    customer::RegisterCustomer body;
    if (!parse_body(call, &body)) return;
    if (!scope_new_customer(call, body)) return;
    std::string key;
    if (!read_idempotency_key(call, &key)) return;
    std::string id = key.empty() ? ids_.next("cus_") : customer_id_for_key(call.caller.id, key);
    auto command = new_command(call, kCustomerStream, id, id);
    *command.mutable_register_customer() = std::move(body);
    auto outcome = execute(call, std::move(command));
    if (!outcome) return;
    call.response.set_header("Location", "/v1/customers/" + outcome->stream_id);
    reply(call, 201, view_of(*outcome));
  });

  route("GET", kCustomerPath, Access::kCustomerRead, [this](Call& call) {
    const std::string id = call.request.matches[1];
    if (call.request.has_param("asOf")) {
      auto then = read_as_of(call, kCustomerStream, id, "customer '" + id + "'");
      if (!then) return;
      customer::Customer view = static_cast<const customer::Customer&>(*then->state);
      view.set_position(format_position(then->position));
      return reply(call, 200, view);
    }
    if (!wait_for_min_position(call)) return;
    auto loaded = engine_.read(kCustomerStream, id);
    if (!loaded.is_ok()) return reply_problem(call, problem_from(loaded.status()));
    if (loaded->version == 0)
      return reply_problem(call, not_found("No customer '" + id + "' is registered"));
    const std::string etag = "\"" + std::to_string(loaded->version) + "\"";
    call.response.set_header("ETag", etag);
    if (call.request.get_header_value("If-None-Match") == etag) {
      call.response.status = 304;
      return;
    }
    customer::Customer view = static_cast<const customer::Customer&>(*loaded->state);
    view.set_position(format_position(loaded->position));
    reply(call, 200, view);
  });

  route("PATCH", kCustomerPath, Access::kCustomerWrite, [this](Call& call) {
    const std::string id = call.request.matches[1];
    customer::UpdateCustomer body;
    if (!parse_body(call, &body)) return;
    if (!call.scope.all() && (body.has_owner_id() || body.has_team())) {
      // A scoped caller may not hand a customer out of its own scope (a rep to another rep, a
      // manager to another team): that is for whoever sees both.
      auto loaded = engine_.read(kCustomerStream, id);
      if (!loaded.is_ok()) return reply_problem(call, problem_from(loaded.status()));
      const auto& now = static_cast<const customer::Customer&>(*loaded->state);
      const std::string owner = body.has_owner_id() ? body.owner_id() : now.owner_id();
      const std::string team = body.has_team() ? body.team() : now.team();
      if (loaded->version > 0 && !call.scope.covers(owner, team)) {
        return reply_problem(
            call, forbidden("Principal '" + call.caller.id + "' may see " + call.scope.describe() +
                            ": it cannot hand customer '" + id + "' to owner '" + owner +
                            "' of team '" + team + "'"));
      }
    }
    auto command = new_command(call, kCustomerStream, id, id);
    *command.mutable_update_customer() = std::move(body);
    auto outcome = execute(call, std::move(command));
    if (!outcome) return;
    reply(call, 200, view_of(*outcome));
  });

  route("POST", std::string(kCustomerPath) + "/contacts", Access::kCustomerWrite,
        [this](Call& call) {
          const std::string id = call.request.matches[1];
          customer::AddContact body;
          if (!parse_body(call, &body)) return;
          auto command = new_command(call, kCustomerStream, id, id);
          *command.mutable_add_contact() = std::move(body);
          auto outcome = execute(call, std::move(command));
          if (!outcome) return;
          call.response.set_header("Location", "/v1/customers/" + id);
          reply(call, 201, view_of(*outcome));
        });

  route("GET", std::string(kCustomerPath) + "/history", Access::kCustomerRead,
        [this](Call& call) { reply_history(call, call.request.matches[1]); });

  route("GET", "/v1/customers", Access::kCustomerRead, [this](Call& call) {
    static const std::set<std::string> kKnown = {"ownerId", "level",    "stage",     "region",
                                                 "team",    "pageSize", "pageToken", "minPosition"};
    for (const auto& [name, value] : call.request.params) {
      if (!kKnown.count(name))
        return reply_problem(call, bad_request("Unknown query parameter '" + name + "'", name,
                                               "request.unknown_parameter"));
    }
    CustomerFilter filter;
    filter.owner_id = call.request.get_param_value("ownerId");
    filter.team = call.request.get_param_value("team");
    // Data permissions: a rep lists its own customers, a manager its team's.
    using Kind = CustomerScope::Kind;
    const auto& scope = call.scope;
    const bool team_scope = scope.kind == Kind::kTeam && !scope.team.empty();
    if (!scope.all()) {
      if (team_scope && !filter.team.empty() && filter.team != scope.team)
        return reply_problem(
            call, forbidden("Principal '" + call.caller.id + "' may list " + scope.describe() +
                            ", not team '" + filter.team + "'"));
      if (!team_scope && !filter.owner_id.empty() && filter.owner_id != scope.principal_id)
        return reply_problem(
            call, forbidden("Principal '" + call.caller.id + "' may list " + scope.describe() +
                            ", not those of '" + filter.owner_id + "'"));
      if (team_scope) {
        filter.team = scope.team;
      } else {
        filter.owner_id = scope.principal_id;
      }
    }
    filter.region = call.request.get_param_value("region");
    filter.level = call.request.get_param_value("level");
    filter.stage = call.request.get_param_value("stage");
    customer::CustomerLevel level;
    if (!filter.level.empty() && !customer::CustomerLevel_Parse(filter.level, &level))
      return reply_problem(call, bad_request("Expected level VIP, GROWTH, STANDARD or BELOW_ZERO",
                                             "level", "request.enum"));
    customer::CustomerStage stage;
    if (!filter.stage.empty() && !customer::CustomerStage_Parse(filter.stage, &stage))
      return reply_problem(
          call, bad_request("Expected stage PROSPECT, TARGET, ACTIVE, AT_RISK or CHURNED", "stage",
                            "request.enum"));
    auto page_request = read_page(call, 50, is_customer_id);
    if (!page_request) return;
    if (!wait_for_min_position(call)) return;
    auto page = list_customers(engine_.store(), filter, page_request->size, page_request->token);
    if (!page.is_ok()) return reply_problem(call, problem_from(page.status()));
    reply(call, 200, page.value());
  });

  route("POST", "/v1/customers:import", Access::kCustomerWrite, [this](Call& call) {
    if (!has_media_type(call.request, "text/csv"))
      return reply_problem(call, unsupported_media_type("text/csv"));
    if (!is_valid_utf8(call.request.body))
      return reply_problem(call,
                           bad_request("Expected a UTF-8 CSV body, but it is not valid UTF-8"));
    // The header row and at most import_rows_max customers.
    auto table = parse_csv(call.request.body, options_.import_rows_max + 1);
    if (table.too_many_rows)
      return reply_problem(
          call, bad_request("Expected at most " + std::to_string(options_.import_rows_max) +
                            " customer rows per import (after the header row)"));
    if (!table.error.empty()) return reply_problem(call, bad_request(table.error));
    if (table.rows.empty())
      return reply_problem(call, bad_request("Expected a header row naming the columns"));
    std::string key;
    if (!read_idempotency_key(call, &key)) return;

    // Columns are RegisterCustomer's JSON field names.
    const auto* descriptor = customer::RegisterCustomer::descriptor();
    std::vector<const google::protobuf::FieldDescriptor*> columns;
    for (const auto& name : table.rows[0]) {
      const google::protobuf::FieldDescriptor* field = nullptr;
      for (int f = 0; f < descriptor->field_count() && field == nullptr; ++f)
        if (descriptor->field(f)->json_name() == name) field = descriptor->field(f);
      if (field == nullptr)
        return reply_problem(
            call, bad_request("Unknown column '" + name + "'", name, "import.unknown_column"));
      columns.push_back(field);
    }

    if (!key.empty() && !claim_import(call, key)) return;

    ImportResult result;
    struct InFlight {
      size_t row_index;
      std::future<CommandOutcome> outcome;
    };
    std::deque<InFlight> in_flight;
    auto collect = [&](InFlight& flight) {
      auto* row = result.mutable_rows(static_cast<int>(flight.row_index));
      CommandOutcome outcome = flight.outcome.get();
      if (!outcome.status.is_ok() || outcome.rejection) {
        Problem p =
            outcome.rejection ? problem_from(*outcome.rejection) : problem_from(outcome.status);
        row->set_status("REJECTED");
        row->clear_id();
        if (p.errors().empty()) {
          auto* e = row->add_errors();
          e->set_message(p.detail());
        }
        for (const auto& e : p.errors()) *row->add_errors() = e;
        result.set_rejected(result.rejected() + 1);
      } else {
        row->set_status(outcome.repeated ? "REPEATED" : "CREATED");
        row->set_position(format_position(outcome.position));
        outcome.repeated ? result.set_repeated(result.repeated() + 1)
                         : result.set_created(result.created() + 1);
      }
    };
    constexpr size_t kInFlightMax = 256;
    for (size_t r = 1; r < table.rows.size(); ++r) {
      auto* row = result.add_rows();
      row->set_row(static_cast<uint32_t>(r));
      const auto& cells = table.rows[r];
      customer::RegisterCustomer body;
      const auto* reflection = body.GetReflection();
      for (size_t c = 0; c < columns.size() && c < cells.size(); ++c) {
        if (cells[c].empty()) continue;
        const auto* field = columns[c];
        if (field->type() == google::protobuf::FieldDescriptor::TYPE_ENUM) {
          const auto* value = field->enum_type()->FindValueByName(cells[c]);
          if (value == nullptr || value->number() == 0) {
            auto* e = row->add_errors();
            e->set_field(field->json_name());
            e->set_rule("import.enum");
            e->set_message("Unknown " + field->json_name() + " '" + cells[c] + "'");
            continue;
          }
          reflection->SetEnum(&body, field, value);
        } else {
          reflection->SetString(&body, field, cells[c]);
        }
      }
      if (cells.size() != columns.size()) {
        auto* e = row->add_errors();
        e->set_rule("import.column_count");
        e->set_message("Expected " + std::to_string(columns.size()) + " cells, but the row has " +
                       std::to_string(cells.size()));
      }
      if (auto refusal = scope_refusal(call, body); !refusal.empty()) {
        auto* e = row->add_errors();
        e->set_field("ownerId");
        e->set_rule("permission.scope");
        e->set_message(refusal);
      }
      if (!row->errors().empty()) {
        row->set_status("REJECTED");
        result.set_rejected(result.rejected() + 1);
        continue;
      }
      const std::string row_key = key.empty() ? "" : import_row_key(key, r);
      const std::string id =
          row_key.empty() ? ids_.next("cus_") : customer_id_for_key(call.caller.id, row_key);
      row->set_id(id);
      auto command = new_command(call, kCustomerStream, id, id);
      command.set_idempotency_key(row_key);
      command.set_request_hash(sha256(body.SerializeAsString()));
      *command.mutable_register_customer() = std::move(body);
      in_flight.push_back({r - 1, engine_.submit(std::move(command))});
      if (in_flight.size() >= kInFlightMax) {
        collect(in_flight.front());
        in_flight.pop_front();
      }
    }
    for (auto& flight : in_flight) collect(flight);
    reply(call, 200, result);
  });
}

}  // namespace crm::api
