#include "api/server.h"

#include <charconv>

#include "api/json.h"
#include "api/openapi_document.h"
#include "events/codec.h"

namespace crm::api {
namespace {

constexpr char kJson[] = "application/json";
constexpr char kProblemJson[] = "application/problem+json";
constexpr size_t kIdempotencyKeyLengthMax = 200;

bool is_printable_ascii(std::string_view text) {
  return std::all_of(text.begin(), text.end(), [](char c) { return c >= 0x21 && c <= 0x7e; });
}

// Whether a client-chosen id header (X-Request-Id, X-Correlation-Id) can be recorded as is.
bool is_usable_id(const std::string& id) {
  return !id.empty() && id.size() <= 128 && is_printable_ascii(id);
}

// The client's X-Request-Id when it is usable, else a new one.
std::string request_id_of(const httplib::Request& request, IdSource& ids) {
  std::string id = request.get_header_value("X-Request-Id");
  return is_usable_id(id) ? id : ids.next("req_");
}

// A route's pattern as people write it: every capture group ("([^/]{1,64})") becomes "{id}".
std::string route_template(const std::string& pattern) {
  std::string name;
  int depth = 0;
  for (char c : pattern) {
    if (c == '(') {
      if (depth++ == 0) name += "{id}";
    } else if (c == ')') {
      --depth;
    } else if (depth == 0 && c != '\\') {
      name += c;
    }
  }
  return name;
}

}  // namespace

Server::Server(Engine& engine, Projector& projector, Principals& principals, const Clock& clock,
               IdSource& ids, ServerOptions options)
    : engine_(engine),
      projector_(projector),
      principals_(principals),
      clock_(clock),
      ids_(ids),
      options_(std::move(options)),
      http_(options_.tls_cert_file.empty()
                ? std::make_unique<httplib::Server>()
                : std::make_unique<httplib::SSLServer>(options_.tls_cert_file.c_str(),
                                                       options_.tls_key_file.c_str())) {
  const size_t threads = options_.threads;
  http_->new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  http_->set_tcp_nodelay(true);
  // SO_REUSEADDR (restart over TIME_WAIT), not httplib's default SO_REUSEPORT, which would let
  // a second engine bind the same port and silently take half of the connections.
  http_->set_socket_options([this](socket_t socket) {
    int yes = 1;
    ::setsockopt(socket, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    listen_socket_ = socket;
  });
  http_->set_keep_alive_max_count(1000000);
  http_->set_keep_alive_timeout(30);
  http_->set_read_timeout(30, 0);
  http_->set_write_timeout(30, 0);
  http_->set_payload_max_length(options_.body_bytes_max);
  // httplib applies the body limit to Content-Length only and would read a chunked body of any
  // size into memory. Bodies here are small JSON or CSV: refuse chunked ones before a byte of
  // the body is read (pre-routing runs before httplib reads the content), and tell the client
  // to close the connection, since the unread body is still on it.
  http_->set_pre_routing_handler(
      [this](const httplib::Request& request, httplib::Response& response) {
        // httplib adds REMOTE_ADDR, REMOTE_PORT, LOCAL_ADDR and LOCAL_PORT to the fields.
        size_t header_count = 0, header_bytes = 0;
        for (const auto& [name, value] : request.headers) {
          if (name == "REMOTE_ADDR" || name == "REMOTE_PORT" || name == "LOCAL_ADDR" ||
              name == "LOCAL_PORT")
            continue;
          ++header_count;
          header_bytes += name.size() + value.size();
        }
        if (header_count > options_.header_count_max || header_bytes > options_.header_bytes_max) {
          response.status = 431;
          response.set_header("Connection", "close");
          Problem p = header_fields_too_large(options_.header_count_max, options_.header_bytes_max);
          response.set_content(to_json(p), kProblemJson);
          return httplib::Server::HandlerResponse::Handled;
        }
        // httplib would inflate a compressed body without bound (1 MiB of gzip can become 1 GiB):
        // bodies here are small, and sent as they are.
        if (request.has_header("Content-Encoding") &&
            request.get_header_value("Content-Encoding") != "identity") {
          response.status = 415;
          response.set_header("Connection", "close");
          Problem p = unsupported_media_type("a body without Content-Encoding");
          response.set_content(to_json(p), kProblemJson);
          return httplib::Server::HandlerResponse::Handled;
        }
        if (!request.has_header("Transfer-Encoding")) {
          // A request with neither Content-Length nor Transfer-Encoding has no body (RFC 9112
          // 6.3), but httplib would read one until the client closes the connection: `curl -X
          // POST` without -d would hang. Saying so in the request (httplib's own object, not a
          // const one) makes httplib read the empty body the client sent.
          if (!request.has_header("Content-Length"))
            const_cast<httplib::Request&>(request).set_header("Content-Length", "0");
          return httplib::Server::HandlerResponse::Unhandled;
        }
        response.status = 411;
        response.set_header("Connection", "close");
        Problem p = length_required(options_.body_bytes_max);
        response.set_content(to_json(p), kProblemJson);
        return httplib::Server::HandlerResponse::Handled;
      });
  http_->set_error_handler(httplib::Server::HandlerWithResponse(
      [this](const httplib::Request& request, httplib::Response& response) {
        // Requests no route took, or that httplib itself refused (e.g. 413): problem+json too.
        // Handlers that answered with a problem of their own keep it.
        if (!response.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
        Problem p;
        if (response.status == 413) {
          p = payload_too_large(options_.body_bytes_max);
        } else if (response.status == 404) {
          p = not_found("There is no route " + request.method + " " + request.path);
        } else {
          p.set_status(response.status);
          p.set_type("urn:crm:problem:http-" + std::to_string(response.status));
          p.set_title("The request could not be served");
          p.set_detail(response.status == 400
                           ? "Expected an HTTP/1.1 request: a request line, headers, and a body "
                             "of its Content-Length"
                           : "The HTTP layer answered " + std::to_string(response.status) + " to " +
                                 request.method + " " + request.path);
        }
        const std::string request_id = request_id_of(request, ids_);
        p.set_request_id(request_id);
        response.set_header("X-Request-Id", request_id);
        response.set_content(to_json(p), kProblemJson);
        return httplib::Server::HandlerResponse::Handled;
      }));
  http_->set_exception_handler(
      [](const httplib::Request&, httplib::Response& response, std::exception_ptr) {
        Problem p = problem_from(Status::internal("unexpected failure while handling the request"));
        response.status = 500;
        response.set_content(to_json(p), kProblemJson);
      });
  add_operations_routes();
  add_customer_routes();
  add_principal_routes();
  add_stream_routes();
  add_catalog_routes();
  add_order_routes();
  add_approval_routes();
  add_task_routes();
}

Server::~Server() { stop(); }

std::string tls_setup_error(const ServerOptions& options) {
  if (options.tls_cert_file.empty()) return "";
  if (httplib::SSLServer(options.tls_cert_file.c_str(), options.tls_key_file.c_str()).is_valid())
    return "";
  return "the TLS certificate " + options.tls_cert_file + " or key " + options.tls_key_file +
         " cannot be loaded (PEM files, the key matching the certificate)";
}

int Server::bind() {
  if (!http_->is_valid()) return -1;
  const int port = options_.port == 0 ? http_->bind_to_any_port(options_.host)
                   : http_->bind_to_port(options_.host, options_.port) ? options_.port
                                                                       : -1;
  // The shared library listens with a backlog of 5 fixed at its compile time: a burst of new
  // connections beyond that waits for SYN retries (1 s and more). Listening again only
  // resizes the queue of the bound socket.
  if (port < 0) {
    listen_socket_ = INVALID_SOCKET;
    return port;
  }
  ::listen(listen_socket_, SOMAXCONN);
  return port;
}

void Server::serve() {
  {
    std::lock_guard lock(serving_mu_);
    serving_ = true;
  }
  http_->listen_after_bind();
  listen_socket_ = INVALID_SOCKET;  // httplib closed it; its number may be reused now
  std::lock_guard lock(serving_mu_);
  serving_ = false;
  serving_cv_.notify_all();
}

void Server::stop() {
  stopping_ = true;
  if (http_->is_running()) {
    http_->stop();
  } else if (socket_t socket = listen_socket_.exchange(INVALID_SOCKET); socket != INVALID_SOCKET) {
    // Bound but not yet accepting: httplib's stop() does nothing then, and serve() would
    // accept forever. Shutting the socket down makes its first accept fail, and httplib
    // then closes the socket and returns.
    ::shutdown(socket, SHUT_RDWR);
  }
  // httplib returns from listen once every connection's current request is answered.
  std::unique_lock lock(serving_mu_);
  serving_cv_.wait_for(lock, options_.command_timeout + std::chrono::seconds(5),
                       [&] { return !serving_; });
}

void Server::route(const std::string& method, const std::string& pattern, Access access,
                   Handler fn) {
  const Resource resource = pattern.starts_with("/v1/customers/(") ? Resource::kCustomer
                            : pattern.starts_with("/v1/orders/(")  ? Resource::kOrder
                            : pattern.starts_with("/v1/tasks/(")   ? Resource::kTask
                                                                   : Resource::kNone;
  auto wrapped = [this, access, resource, fn = std::move(fn), route_name = route_template(pattern)](
                     const httplib::Request& request, httplib::Response& response) {
    Call call{request, response, {}, {}, {}, {}, {}};
    const auto started = std::chrono::steady_clock::now();
    call.request_id = request_id_of(request, ids_);
    call.correlation_id = request.get_header_value("X-Correlation-Id");
    if (!is_usable_id(call.correlation_id)) call.correlation_id = call.request_id;
    response.set_header("X-Request-Id", call.request_id);
    try {
      authorize_and_run(call, access, resource, fn);
    } catch (const std::exception&) {
      reply_problem(call, problem_from(Status::internal("unexpected failure while handling the "
                                                        "request")));
    }
    // Draining: answer, then close, so no keep-alive connection carries a request past stop.
    if (stopping_) response.set_header("Connection", "close");
    log_request(call, route_name, started);
  };
  if (method == "GET")
    http_->Get(pattern, wrapped);
  else if (method == "POST")
    http_->Post(pattern, wrapped);
  else if (method == "PUT")
    http_->Put(pattern, wrapped);
  else if (method == "PATCH")
    http_->Patch(pattern, wrapped);
  else if (method == "DELETE")
    http_->Delete(pattern, wrapped);
}

void Server::log_request(const Call& call, const std::string& route,
                         std::chrono::steady_clock::time_point started) {
  const int status = call.response.status;
  const auto elapsed = std::chrono::steady_clock::now() - started;
  if (options_.metrics) {
    options_.metrics->http_request(route, call.request.method, status,
                                   std::chrono::duration<double>(elapsed).count());
  }
  if (!options_.request_log || options_.log_requests == RequestLogging::kNone ||
      (options_.log_requests == RequestLogging::kErrors && status < 400)) {
    return;
  }
  RequestRecord record;
  record.method = call.request.method;
  record.path = call.request.path;
  record.status = status;
  record.request_id = call.request_id;
  record.correlation_id = call.correlation_id;
  record.principal = call.caller.id;
  record.duration_us = std::chrono::duration_cast<std::chrono::microseconds>(elapsed).count();
  options_.request_log(record);
}

void Server::add_operations_routes() {
  // Prometheus scrapes without a token, like the health checks; nothing in it names a customer.
  http_->Get("/metrics", [this](const httplib::Request&, httplib::Response& response) {
    if (!options_.metrics) {
      response.status = 404;
      return;
    }
    response.set_content(options_.metrics->scrape(), "text/plain; version=0.0.4; charset=utf-8");
  });
  http_->Get("/healthz", [](const httplib::Request&, httplib::Response& response) {
    Health health;
    health.set_status("UP");
    response.set_content(to_json(health), kJson);
  });
  http_->Get("/readyz", [this](const httplib::Request&, httplib::Response& response) {
    Health health;
    auto* log = health.add_checks();
    log->set_name("event_log");
    const Status log_health = engine_.log().health();
    log->set_ok(log_health.is_ok());
    log->set_detail(log_health.is_ok()
                        ? std::to_string(engine_.partition_count()) + " partitions open"
                        : log_health.message());
    auto* projections = health.add_checks();
    projections->set_name("projections");
    auto failure = projector_.failure();
    const uint64_t lag = projector_.lag();
    constexpr uint64_t kLagMax = 100000;
    projections->set_ok(failure.is_ok() && lag <= kLagMax);
    projections->set_detail(!failure.is_ok()
                                ? "stopped: " + failure.message()
                                : std::to_string(lag) + " events behind the log (at most " +
                                      std::to_string(kLagMax) + ")");
    const bool ready = log->ok() && projections->ok();
    health.set_status(ready ? "READY" : "NOT_READY");
    response.status = ready ? 200 : 503;
    response.set_content(to_json(health), kJson);
  });
  // The contract itself, without auth, so clients can generate code against a running engine.
  http_->Get("/v1/openapi.json", [](const httplib::Request&, httplib::Response& response) {
    const std::string_view document = openapi_document();
    response.set_content(document.data(), document.size(), kJson);
  });
}

events::CommandEnvelope Server::new_command(const Call& call, const std::string& stream_type,
                                            const std::string& stream_id,
                                            const std::string& partition_key) {
  events::CommandEnvelope command;
  command.set_command_id(ids_.next("cmd_"));
  command.set_stream_type(stream_type);
  command.set_stream_id(stream_id);
  command.set_partition_key(partition_key);
  command.mutable_actor()->set_principal_id(call.caller.id);
  command.mutable_actor()->set_role(call.acting_role);
  command.set_correlation_id(call.correlation_id);
  *command.mutable_issued_at() = timestamp_from_us(clock_.now_us());
  command.set_request_hash(
      sha256(call.request.method + " " + call.request.path + "\n" + call.request.body));
  return command;
}

bool Server::read_idempotency_key(Call& call, std::string* key) {
  *key = call.request.get_header_value("Idempotency-Key");
  if (key->size() > kIdempotencyKeyLengthMax || !is_printable_ascii(*key)) {
    reply_problem(call, bad_request("Expected an Idempotency-Key of 1–200 printable ASCII "
                                    "characters without spaces",
                                    "Idempotency-Key", "request.idempotency_key"));
    return false;
  }
  return true;
}

bool Server::read_if_match(Call& call, events::CommandEnvelope& command) {
  std::optional<uint64_t> version;
  if (!read_if_match(call, &version)) return false;
  if (version) command.set_expected_version(*version);
  return true;
}

bool Server::read_if_match(Call& call, std::optional<uint64_t>* expected) {
  std::string header = call.request.get_header_value("If-Match");
  if (header.empty() || header == "*") return true;
  std::string_view text = header;
  if (text.starts_with("W/")) text.remove_prefix(2);
  if (text.size() >= 2 && text.front() == '"' && text.back() == '"')
    text = text.substr(1, text.size() - 2);
  uint64_t version = 0;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), version);
  if (error != std::errc() || end != text.data() + text.size() || text.empty()) {
    reply_problem(call, bad_request("Expected If-Match to be an ETag this API returned, like \"3\"",
                                    "If-Match", "request.if_match"));
    return false;
  }
  *expected = version;
  return true;
}

std::optional<CommandOutcome> Server::execute(Call& call, events::CommandEnvelope command,
                                              IfMatch if_match) {
  std::string key;
  if (!read_idempotency_key(call, &key)) return std::nullopt;
  command.set_idempotency_key(key);
  if (if_match == IfMatch::kStreamVersion && !read_if_match(call, command)) return std::nullopt;
  auto future = engine_.submit(std::move(command));
  if (future.wait_for(options_.command_timeout) != std::future_status::ready) {
    reply_problem(call, problem_from(Status::unavailable(
                            "The command was not decided in time; retry with the same "
                            "Idempotency-Key to learn its outcome")));
    return std::nullopt;
  }
  CommandOutcome outcome = future.get();
  if (!outcome.status.is_ok()) {
    if (outcome.status.code() == StatusCode::kResourceExhausted)
      call.response.set_header("Retry-After", "1");
    reply_problem(call, problem_from(outcome.status));
    return std::nullopt;
  }
  if (outcome.rejection) {
    reply_problem(call, problem_from(*outcome.rejection));
    return std::nullopt;
  }
  call.response.set_header("ETag", "\"" + std::to_string(outcome.version) + "\"");
  if (outcome.repeated) call.response.set_header("Idempotent-Replayed", "true");
  return outcome;
}

std::optional<Server::Page> Server::read_page(Call& call, size_t fallback,
                                              bool (*is_token)(std::string_view)) {
  constexpr uint64_t kPageMax = 500;
  uint64_t size = fallback;
  if (call.request.has_param("pageSize") &&
      !parse_count(call.request.get_param_value("pageSize"), 1, kPageMax, &size)) {
    reply_problem(
        call, bad_request("Expected pageSize between 1 and 500", "pageSize", "request.page_size"));
    return std::nullopt;
  }
  Page page{static_cast<size_t>(size), call.request.get_param_value("pageToken")};
  if (!page.token.empty() && !is_token(page.token)) {
    reply_problem(call, bad_request("Expected pageToken to be a nextPageToken this API returned",
                                    "pageToken", "request.page_token"));
    return std::nullopt;
  }
  return page;
}

bool Server::check_min_position(Call& call, std::optional<events::Position>* out) {
  if (!call.request.has_param("minPosition")) return true;
  auto position = parse_position(call.request.get_param_value("minPosition"));
  if (!position || position->partition() >= engine_.partition_count()) {
    reply_problem(call, bad_request("Expected minPosition as <partition>:<offset>, a position a "
                                    "command returned",
                                    "minPosition", "request.min_position"));
    return false;
  }
  if (out != nullptr) *out = std::move(position);
  return true;
}

bool Server::wait_for_min_position(Call& call) {
  std::optional<events::Position> position;
  if (!check_min_position(call, &position)) return false;
  if (!position) return true;
  if (!projector_.wait_for(*position, std::chrono::steady_clock::now() + options_.read_wait_max)) {
    reply_problem(
        call,
        problem_from(Status::unavailable("The read model has not reached position " +
                                         format_position(*position) + " yet; retry shortly")));
    return false;
  }
  return true;
}

bool parse_count(const std::string& text, uint64_t min, uint64_t max, uint64_t* out) {
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), *out);
  return error == std::errc() && end == text.data() + text.size() && *out >= min && *out <= max;
}

bool has_media_type(const httplib::Request& request, std::string_view expected) {
  const std::string header = request.get_header_value("Content-Type");
  std::string_view type = header;
  type = type.substr(0, type.find(';'));  // parameters, e.g. "; charset=utf-8"
  while (!type.empty() && (type.back() == ' ' || type.back() == '\t')) type.remove_suffix(1);
  return type.size() == expected.size() &&
         std::equal(type.begin(), type.end(), expected.begin(), [](char a, char b) {
           return std::tolower(static_cast<unsigned char>(a)) == b;
         });
}

bool Server::parse_body(Call& call, google::protobuf::Message* message) {
  // An absent Content-Type is taken as JSON; any other type is refused (415).
  if (call.request.has_header("Content-Type") && !has_media_type(call.request, kJson)) {
    reply_problem(call, unsupported_media_type(kJson));
    return false;
  }
  if (auto error = parse_json(call.request.body, message)) {
    reply_problem(call, bad_request(error->message, error->field));
    return false;
  }
  return true;
}

void Server::reply(Call& call, int status, const google::protobuf::Message& body) {
  call.response.status = status;
  call.response.set_content(to_json(body), kJson);
}

void Server::reply_problem(Call& call, Problem problem) {
  problem.set_request_id(call.request_id);
  call.response.status = problem.status();
  call.response.set_content(to_json(problem), kProblemJson);
}

}  // namespace crm::api
