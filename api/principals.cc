// Administration routes (admin only): create or change a principal with a new token, read,
// revoke; backups of the data directory while serving.
#include "api/json.h"
#include "api/server.h"
#include "events/backup.h"
#include "events/codec.h"
#include "workflow/aggregate_handler.h"

namespace crm::api {
namespace {

constexpr char kPrincipalPath[] = R"(/v1/principals/([^/]{1,64}))";

principal::PrincipalView view_of(const principal::Principal& p) {
  principal::PrincipalView view;
  view.set_id(p.id());
  view.mutable_roles()->CopyFrom(p.roles());
  view.set_team(p.team());
  view.set_display_name(p.display_name());
  view.set_version(p.version());
  view.set_revoked(p.revoked());
  if (p.has_delegation()) *view.mutable_delegation() = p.delegation();
  return view;
}

}  // namespace

void Server::add_principal_routes() {
  route("PUT", kPrincipalPath, Access::kAdministration, [this](Call& call) {
    const std::string id = call.request.matches[1];
    principal::PutPrincipal body;
    if (!parse_body(call, &body)) return;
    const std::string token = Principals::new_token();
    auto command = new_command(call, kPrincipalStream, principal_stream_id(id), id);
    command.mutable_upsert_principal()->set_token_hash(Principals::token_hash(token));
    *command.mutable_upsert_principal()->mutable_request() = std::move(body);
    auto outcome = execute(call, std::move(command));
    if (!outcome) return;
    if (outcome->repeated) {
      // The token was shown once, to the first call; a replay cannot show it again.
      return reply_problem(
          call, problem_from(Rejection{Rejection::Kind::kConflict,
                                       "principal.token_shown_once",
                                       "Expected a new Idempotency-Key: this principal's token was "
                                       "issued to the first request with this key",
                                       {}}));
    }
    const auto& state = static_cast<const principal::Principal&>(*outcome->state);
    principals_.update(state);
    auto view = view_of(state);
    view.set_token(token);
    reply(call, outcome->version == 1 ? 201 : 200, view);
  });

  // A consistent copy of the data directory while serving; the directory names the backup, so
  // a retry into the same one is refused (409) rather than copied twice.
  route("POST", "/v1/admin/backups", Access::kAdministration, [this](Call& call) {
    BackupRequest body;
    if (!parse_body(call, &body)) return;
    auto backup = backup_data_dir(engine_.store(), engine_.log(), body.directory());
    if (backup.status().code() == StatusCode::kConflict) {
      return reply_problem(call, problem_from(Rejection{Rejection::Kind::kConflict,
                                                        "backup.directory_in_use",
                                                        backup.status().message(),
                                                        {}}));
    }
    if (!backup.is_ok()) return reply_problem(call, problem_from(backup.status()));
    Backup view;
    view.set_directory(backup->directory);
    *view.mutable_created_at() = timestamp_from_us(clock_.now_us());
    for (uint32_t p = 0; p < backup->end_offsets.size(); ++p)
      view.add_positions(std::to_string(p) + ":" + std::to_string(backup->end_offsets[p]));
    reply(call, 201, view);
  });

  route("GET", kPrincipalPath, Access::kAdministration, [this](Call& call) {
    if (!check_min_position(call)) return;
    const std::string id = call.request.matches[1];
    auto loaded = engine_.read(kPrincipalStream, principal_stream_id(id));
    if (!loaded.is_ok()) return reply_problem(call, problem_from(loaded.status()));
    if (loaded->version == 0) return reply_problem(call, not_found("No principal '" + id + "'"));
    call.response.set_header("ETag", "\"" + std::to_string(loaded->version) + "\"");
    reply(call, 200, view_of(static_cast<const principal::Principal&>(*loaded->state)));
  });

  // A principal sets their own delegation; an admin sets anyone's.
  route("PUT", R"(/v1/delegations/([^/]{1,64}))", Access::kDelegate, [this](Call& call) {
    const std::string id = call.request.matches[1];
    if (id != call.caller.id && !call.caller.has_role("admin")) {
      return reply_problem(
          call,
          problem_from(Rejection{Rejection::Kind::kForbidden,
                                 "delegation.not_yours",
                                 "Expected your own principal id ('" + call.caller.id +
                                     "') or the admin role to set the delegation of '" + id + "'",
                                 {}}));
    }
    principal::SetDelegation body;
    if (!parse_body(call, &body)) return;
    auto command = new_command(call, kPrincipalStream, principal_stream_id(id), id);
    *command.mutable_set_delegation() = std::move(body);
    auto outcome = execute(call, std::move(command));
    if (!outcome) return;
    const auto& state = static_cast<const principal::Principal&>(*outcome->state);
    principals_.update(state);
    reply(call, 200, view_of(state));
  });

  route("DELETE", kPrincipalPath, Access::kAdministration, [this](Call& call) {
    const std::string id = call.request.matches[1];
    if (id == call.caller.id) {
      return reply_problem(
          call, problem_from(Rejection{Rejection::Kind::kConflict,
                                       "principal.revoke_self",
                                       "Expected another principal: revoking yourself would lock "
                                       "you out",
                                       {}}));
    }
    auto command = new_command(call, kPrincipalStream, principal_stream_id(id), id);
    command.mutable_revoke_principal();
    auto outcome = execute(call, std::move(command));
    if (!outcome) return;
    const auto& state = static_cast<const principal::Principal&>(*outcome->state);
    principals_.update(state);
    reply(call, 200, view_of(state));
  });
}

}  // namespace crm::api
