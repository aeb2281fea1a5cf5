// The HTTP API (v1, ../shared/API.md): routing, authentication and roles, idempotency keys,
// ETag/If-Match, problem+json errors, body limits, and read-your-writes via minPosition.
// Commands go to the Engine; single aggregates are read from its state, lists from read
// models kept by the Projector.
#pragma once

#include <httplib.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "api/auth.h"
#include "api/ids.h"
#include "api/problem.h"
#include "customer.pb.h"
#include "events/clock.h"
#include "events/metrics.h"
#include "projections/audit_view.h"
#include "projections/projector.h"
#include "workflow/engine.h"

namespace crm::api {

enum class RequestLogging { kNone, kErrors, kAll };

// One answered /v1 request, for the request log.
struct RequestRecord {
  std::string method;
  std::string path;
  int status = 0;
  std::string request_id;
  std::string correlation_id;
  std::string principal;  // empty when the caller was not authenticated
  int64_t duration_us = 0;
};

struct ServerOptions {
  std::string host = "0.0.0.0";
  int port = 8080;       // 0: any free port
  size_t threads = 256;  // = concurrent keep-alive connections served at once
  size_t body_bytes_max = 1u << 20;
  // httplib refuses a header line over 8 KiB itself; these bound the fields together (431).
  size_t header_count_max = 100;
  size_t header_bytes_max = 64u << 10;
  std::chrono::milliseconds command_timeout{30000};
  std::chrono::milliseconds read_wait_max{5000};  // longest wait for ?minPosition=
  size_t import_rows_max = 10000;
  // HTTPS when both are set (PEM files); plain HTTP otherwise.
  std::string tls_cert_file;
  std::string tls_key_file;
  RequestLogging log_requests = RequestLogging::kErrors;
  // Receives the requests `log_requests` selects; none when empty.
  std::function<void(const RequestRecord&)> request_log;
  // Counts requests by route and status, and serves GET /metrics; none when null.
  Metrics* metrics = nullptr;
};

// One request as the handlers see it.
struct Call {
  const httplib::Request& request;
  httplib::Response& response;
  std::string request_id;
  std::string correlation_id;
  Caller caller;
  std::string acting_role;  // the caller's role that let this call through
  CustomerScope scope;      // the customers this call may see and change
};

class Server {
 public:
  Server(Engine& engine, Projector& projector, Principals& principals, const Clock& clock,
         IdSource& ids, ServerOptions options);
  ~Server();

  // Binds the listening socket; returns the port, or -1 when it cannot bind.
  int bind();
  // Serves until stop(). bind() first.
  void serve();
  // Stops taking connections; when serve() runs, waits (bounded) until the requests being
  // handled are answered, so the engine behind them can be shut down after.
  void stop();
  bool running() const { return http_->is_running(); }

 private:
  using Handler = std::function<void(Call&)>;
  void route(const std::string& method, const std::string& pattern, Access access, Handler fn);
  // What a route's first path parameter names, for data permissions.
  enum class Resource { kNone, kCustomer, kOrder, kTask };
  // Authentication, function permissions, data permissions on the resource the path names,
  // then the handler.
  void authorize_and_run(Call& call, Access access, Resource resource, const Handler& fn);
  // Data permissions: false after a 403 when the customer exists and is outside the call's
  // scope (a customer that does not exist is left to the handler's 404 or 422).
  bool check_customer_scope(Call& call, const std::string& customer_id);
  // The same check without a reply, for filtering lists: true for a customer in scope or one
  // that does not exist.
  bool in_scope(const Call& call, const std::string& customer_id);
  // Approvals follow the approval policy's routing (a step asks a role or names principals);
  // data permissions narrow it only for a manager with a team, who decides the steps of its
  // team's customers (and of customers with no team). False after a 403 when `reply`.
  bool approver_in_scope(Call& call, const std::string& customer_id, bool reply);
  // A customer's state, null when it is not registered.
  Result<std::shared_ptr<const customer::Customer>> load_customer(const std::string& customer_id);
  // The customer an order belongs to ("" when there is no such order).
  std::string customer_of_order(const std::string& order_id);
  // A customer being registered by a scoped caller (sales, manager): owned by the caller and in
  // its team unless it names others, which must be in its scope; false after a 403.
  bool scope_new_customer(Call& call, customer::RegisterCustomer& body);
  void log_request(const Call& call, const std::string& route,
                   std::chrono::steady_clock::time_point started);
  void add_operations_routes();
  void add_customer_routes();
  void add_principal_routes();
  void add_stream_routes();
  void add_catalog_routes();
  void add_order_routes();
  void add_approval_routes();
  void add_task_routes();

  // Command plumbing shared by every resource.
  events::CommandEnvelope new_command(const Call& call, const std::string& stream_type,
                                      const std::string& stream_id,
                                      const std::string& partition_key);
  bool read_if_match(Call& call, events::CommandEnvelope& command);
  // The version If-Match names (none for an absent header or "*"); false and a 400 reply when
  // it is not an ETag this API returned.
  bool read_if_match(Call& call, std::optional<uint64_t>* expected);
  bool read_idempotency_key(Call& call, std::string* key);
  // Which version If-Match names: the stream's (checked by the processor), or one the route
  // has already put into the command itself (an offer's version inside the catalog stream).
  enum class IfMatch { kStreamVersion, kInCommand };
  std::optional<CommandOutcome> execute(Call& call, events::CommandEnvelope command,
                                        IfMatch if_match = IfMatch::kStreamVersion);
  // Reads ?minPosition= (400 when malformed) and waits, bounded, for the read models to reach
  // it (503 when they do not in time).
  bool wait_for_min_position(Call& call);
  // Only validates ?minPosition=, for reads served from the log or aggregate state, which
  // already hold every acknowledged position.
  // `out`, when given, receives the position (none when the parameter is absent).
  bool check_min_position(Call& call, std::optional<events::Position>* out = nullptr);
  bool parse_body(Call& call, google::protobuf::Message* message);
  // ?pageSize= (1–500, `fallback` when absent) and ?pageToken= (empty, or one `is_token`
  // accepts); nullopt and a 400 reply when either is malformed.
  struct Page {
    size_t size = 0;
    std::string token;
  };
  std::optional<Page> read_page(Call& call, size_t fallback, bool (*is_token)(std::string_view));

  void reply(Call& call, int status, const google::protobuf::Message& body);
  void reply_problem(Call& call, Problem problem);
  void reply_history(Call& call, const std::string& stream_id);
  // ?from= and ?to= (RFC 3339) into `from_us` and `to_us` (unchanged when absent); false after
  // a 400 reply for a bad one.
  bool read_period(Call& call, int64_t* from_us, int64_t* to_us);
  // GET /v1/audit/decisions and /v1/audit/overrides.
  void reply_audit(Call& call, AuditFilter filter);
  // GET …?asOf=<RFC 3339>: the aggregate as it stood then, or nullopt after replying a problem
  // (a bad asOf: 400; nothing yet at that time: 404 naming `what`).
  std::optional<LoadedAggregate> read_as_of(Call& call, const std::string& stream_type,
                                            const std::string& stream_id, const std::string& what);
  // Binds an import's Idempotency-Key to its whole body before any row is written; false and
  // a 409 reply when the key was used with another body.
  bool claim_import(Call& call, const std::string& key);

  Engine& engine_;
  Projector& projector_;
  Principals& principals_;
  const Clock& clock_;
  IdSource& ids_;
  ServerOptions options_;
  std::unique_ptr<httplib::Server> http_;                 // an SSLServer when TLS is configured
  std::atomic<socket_t> listen_socket_ = INVALID_SOCKET;  // bound, until serve() returns
  std::mutex import_claims_mu_;                           // check-then-write of import claims
  std::mutex serving_mu_;
  std::condition_variable serving_cv_;
  bool serving_ = false;               // serve() has not returned
  std::atomic<bool> stopping_{false};  // stop() began: replies close their connections
};

// Reads a whole decimal number in [min, max] (query parameters); false when `text` is not one.
bool parse_count(const std::string& text, uint64_t min, uint64_t max, uint64_t* out);

// Why a server with `options` could not serve HTTPS (a certificate or key that does not load), or
// "" (also when no TLS is configured). Checked before the engine writes anything.
std::string tls_setup_error(const ServerOptions& options);

// Whether the request's Content-Type is `expected` (lower case), parameters aside.
bool has_media_type(const httplib::Request& request, std::string_view expected);

// Why a scoped caller (sales, manager) may not register `body`, or "" when it may; fills in the
// caller as owner and its team when the body names none.
std::string scope_refusal(const Call& call, customer::RegisterCustomer& body);

}  // namespace crm::api
