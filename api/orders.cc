// Order routes: create a draft, add/change/remove items, preview the receipt, submit, cancel,
// record fulfilment results, read one (from the aggregate's state), list (from the orders read
// model), history. A command on an existing order is routed by the order's customer, read from
// the order's stored state (the customer of an order never changes).
#include <google/protobuf/empty.pb.h>

#include <set>

#include "aggregates/order/order.h"
#include "api/server.h"
#include "events/codec.h"
#include "order.pb.h"
#include "projections/orders_view.h"
#include "workflow/aggregate_handler.h"

namespace crm::api {
namespace {

constexpr char kOrderPath[] = R"(/v1/orders/([A-Za-z0-9._-]{1,64}))";
constexpr char kItemPath[] = R"(/items/([A-Za-z0-9._-]{1,64}))";
constexpr size_t kPageDefault = 50;

order::Order view_of(const CommandOutcome& outcome) {
  order::Order view = static_cast<const order::Order&>(*outcome.state);
  view.set_position(format_position(outcome.position));
  return view;
}

std::string order_id_for_key(const std::string& principal_id, const std::string& key) {
  return "ord_" + to_hex(sha256(principal_id + '\0' + "order" + '\0' + key)).substr(0, 32);
}

}  // namespace

void Server::add_order_routes() {
  // The order's stored state; null and a 404/5xx reply when there is none.
  auto load_order = [this](Call& call,
                           const std::string& id) -> std::shared_ptr<const order::Order> {
    auto loaded = engine_.read(kOrderStream, order::stream_id(id));
    if (!loaded.is_ok()) {
      reply_problem(call, problem_from(loaded.status()));
      return nullptr;
    }
    if (loaded->version == 0) {
      reply_problem(call, not_found("No order '" + id + "'"));
      return nullptr;
    }
    return std::static_pointer_cast<const order::Order>(
        std::shared_ptr<const google::protobuf::Message>(loaded->state));
  };

  // Sends a command to an existing order (routed by its customer) and answers with the order.
  auto run = [=, this](Call& call, const std::string& id,
                       const std::function<void(events::CommandEnvelope&)>& fill,
                       int status = 200) {
    auto current = load_order(call, id);
    if (!current) return;
    auto command = new_command(call, kOrderStream, order::stream_id(id), current->customer_id());
    fill(command);
    auto outcome = execute(call, std::move(command));
    if (!outcome) return;
    reply(call, status, view_of(*outcome));
  };

  // Reads an optional body into `message`; an empty body is an empty message.
  auto optional_body = [this](Call& call, google::protobuf::Message* message) {
    return call.request.body.empty() || parse_body(call, message);
  };

  route("POST", "/v1/orders", Access::kOrderWrite, [this](Call& call) {
    order::CreateOrder body;
    if (!parse_body(call, &body)) return;
    if (!check_customer_scope(call, body.customer_id())) return;
    std::string key;
    if (!read_idempotency_key(call, &key)) return;
    const std::string id = key.empty() ? ids_.next("ord_") : order_id_for_key(call.caller.id, key);
    auto command = new_command(call, kOrderStream, order::stream_id(id), body.customer_id());
    *command.mutable_create_order() = std::move(body);
    auto outcome = execute(call, std::move(command));
    if (!outcome) return;
    call.response.set_header("Location", "/v1/orders/" + id);
    reply(call, 201, view_of(*outcome));
  });

  route("GET", kOrderPath, Access::kOrderRead, [=, this](Call& call) {
    if (call.request.has_param("asOf")) {  // as it stood then, with the versions that priced it
      const std::string id = call.request.matches[1];
      auto then = read_as_of(call, kOrderStream, order::stream_id(id), "order '" + id + "'");
      if (!then) return;
      order::Order view = static_cast<const order::Order&>(*then->state);
      view.set_position(format_position(then->position));
      return reply(call, 200, view);
    }
    if (!check_min_position(call)) return;
    auto loaded = engine_.read(kOrderStream, order::stream_id(call.request.matches[1].str()));
    if (!loaded.is_ok()) return reply_problem(call, problem_from(loaded.status()));
    if (loaded->version == 0)
      return reply_problem(call, not_found("No order '" + call.request.matches[1].str() + "'"));
    const std::string etag = "\"" + std::to_string(loaded->version) + "\"";
    call.response.set_header("ETag", etag);
    if (call.request.get_header_value("If-None-Match") == etag) {
      call.response.status = 304;
      return;
    }
    order::Order view = static_cast<const order::Order&>(*loaded->state);
    view.set_position(format_position(loaded->position));
    reply(call, 200, view);
  });

  route("POST", std::string(kOrderPath) + "/items", Access::kOrderWrite, [=, this](Call& call) {
    const std::string id = call.request.matches[1];
    order::Item body;
    if (!parse_body(call, &body)) return;
    auto current = load_order(call, id);
    if (!current) return;
    auto command = new_command(call, kOrderStream, order::stream_id(id), current->customer_id());
    *command.mutable_add_item()->mutable_item() = std::move(body);
    auto outcome = execute(call, std::move(command));
    if (!outcome) return;
    auto view = view_of(*outcome);
    if (!view.items().empty()) {
      // The new item is the last; a replayed request names the one its first reply named.
      call.response.set_header(
          "Location", "/v1/orders/" + id + "/items/" + view.items(view.items_size() - 1).item_id());
    }
    reply(call, 201, view);
  });

  route("PATCH", std::string(kOrderPath) + kItemPath, Access::kOrderWrite, [=, this](Call& call) {
    const std::string id = call.request.matches[1];
    const std::string item_id = call.request.matches[2];
    order::ItemPatch body;
    if (!parse_body(call, &body)) return;
    run(call, id, [&](events::CommandEnvelope& command) {
      command.mutable_change_item()->set_item_id(item_id);
      *command.mutable_change_item()->mutable_patch() = std::move(body);
    });
  });

  route("DELETE", std::string(kOrderPath) + kItemPath, Access::kOrderWrite, [=, this](Call& call) {
    const std::string id = call.request.matches[1];
    const std::string item_id = call.request.matches[2];
    run(call, id, [&](events::CommandEnvelope& command) {
      command.mutable_remove_item()->set_item_id(item_id);
    });
  });

  route("GET", std::string(kOrderPath) + "/preview", Access::kOrderRead, [=, this](Call& call) {
    if (!check_min_position(call)) return;
    const std::string id = call.request.matches[1];
    auto current = load_order(call, id);
    if (!current) return;
    if (!order::is_editable(current->state())) {
      return reply(call, 200, current->receipt());  // fixed at submission
    }
    auto catalog = engine_.reference().catalog();
    if (!catalog.is_ok()) return reply_problem(call, problem_from(catalog.status()));
    auto policies = engine_.reference().policies();
    if (!policies.is_ok()) return reply_problem(call, problem_from(policies.status()));
    auto customer = engine_.read(kCustomerStream, current->customer_id());
    if (!customer.is_ok()) return reply_problem(call, problem_from(customer.status()));
    order::Context context;
    context.catalog = catalog->get();
    context.policies = policies->get();
    context.customer = static_cast<const customer::Customer*>(customer->state.get());
    context.order_id = id;
    context.actor_id = call.caller.id;
    context.now_us = clock_.now_us();
    call.response.set_header("ETag", "\"" + std::to_string(current->version()) + "\"");
    reply(call, 200, order::price(*current, context));
  });

  route("POST", std::string(kOrderPath) + ":submit", Access::kOrderWrite, [=, this](Call& call) {
    google::protobuf::Empty none;
    if (!optional_body(call, &none)) return;
    run(call, call.request.matches[1],
        [](events::CommandEnvelope& command) { command.mutable_submit_order(); });
  });

  route("POST", std::string(kOrderPath) + ":cancel", Access::kOrderWrite, [=, this](Call& call) {
    order::CancelOrder body;
    if (!optional_body(call, &body)) return;
    run(call, call.request.matches[1], [&](events::CommandEnvelope& command) {
      *command.mutable_cancel_order() = std::move(body);
    });
  });

  route("POST", std::string(kOrderPath) + kItemPath + ":activate", Access::kOrderFulfil,
        [=, this](Call& call) {
          const std::string id = call.request.matches[1];
          const std::string item_id = call.request.matches[2];
          order::RecordActivation body;
          if (!parse_body(call, &body)) return;
          if (!body.item_id().empty() && body.item_id() != item_id) {
            return reply_problem(
                call, bad_request("Expected itemId to be absent or '" + item_id +
                                      "' as in the path, but got '" + body.item_id() + "'",
                                  "itemId", "item.id_mismatch"));
          }
          body.set_item_id(item_id);
          run(call, id, [&](events::CommandEnvelope& command) {
            *command.mutable_record_activation() = std::move(body);
          });
        });

  // A payment, deposit or refund; a paymentRef seen before changes nothing (200, the order as
  // it stands), a new one answers 201.
  route("POST", std::string(kOrderPath) + "/payments", Access::kPayment, [=, this](Call& call) {
    order::Payment body;
    if (!parse_body(call, &body)) return;
    auto current = load_order(call, call.request.matches[1]);
    if (!current) return;
    auto command =
        new_command(call, kOrderStream, order::stream_id(current->id()), current->customer_id());
    *command.mutable_record_payment()->mutable_payment() = std::move(body);
    auto outcome = execute(call, std::move(command));
    if (!outcome) return;
    reply(call, outcome->events.empty() && !outcome->repeated ? 200 : 201, view_of(*outcome));
  });

  route("GET", std::string(kOrderPath) + "/history", Access::kOrderRead, [this](Call& call) {
    reply_history(call, order::stream_id(call.request.matches[1].str()));
  });

  route("GET", "/v1/orders", Access::kOrderRead, [this](Call& call) {
    static const std::set<std::string> kKnown = {"customerId", "state",     "ownerId",
                                                 "pageSize",   "pageToken", "minPosition"};
    for (const auto& [name, value] : call.request.params) {
      if (!kKnown.count(name)) {
        return reply_problem(call, bad_request("Unknown query parameter '" + name +
                                                   "'; expected customerId, state, ownerId, "
                                                   "pageSize, pageToken or minPosition",
                                               name, "request.unknown_parameter"));
      }
    }
    OrderFilter filter;
    filter.customer_id = call.request.get_param_value("customerId");
    filter.owner_id = call.request.get_param_value("ownerId");
    // Data permissions: a scoped caller lists one customer's orders. (An order's ownerId is its
    // customer's owner when it was created, which a reassignment leaves behind: the customer's
    // current owner and team decide.)
    if (!call.scope.all()) {
      if (filter.customer_id.empty()) {
        return reply_problem(
            call, forbidden("Principal '" + call.caller.id + "' sees " + call.scope.describe() +
                            ": list one customer's orders with customerId"));
      }
      if (!check_customer_scope(call, filter.customer_id)) return;
    }
    filter.state = call.request.get_param_value("state");
    order::OrderState state;
    if (!filter.state.empty() && (!order::OrderState_Parse(filter.state, &state) ||
                                  state == order::ORDER_STATE_UNSPECIFIED)) {
      return reply_problem(call, bad_request("Expected state DRAFT, SUBMITTED, PENDING_APPROVAL, "
                                             "APPROVED, IN_PROGRESS, COMPLETED, REJECTED, "
                                             "RETURNED, CANCELLED, FAILED or PARTIAL",
                                             "state", "request.enum"));
    }
    auto page_request = read_page(call, kPageDefault, order::is_order_id);
    if (!page_request) return;
    if (!wait_for_min_position(call)) return;
    auto page = list_orders(engine_.store(), filter, page_request->size, page_request->token);
    if (!page.is_ok()) return reply_problem(call, problem_from(page.status()));
    reply(call, 200, page.value());
  });
}

}  // namespace crm::api
