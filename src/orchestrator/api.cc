#include "orchestrator/api.h"

#include "orchestrator/dashboard.h"
#include "orchestrator/web_assets.h"

#include "metrics/range_load.h"
#include "metrics/text_format.h"

#include <charconv>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace cairn::orchestrator {

namespace {

using nlohmann::json;

ApiResponse reply(int status, const json& body) {
  return ApiResponse{status, body.dump(), "application/json", ""};
}

ApiResponse error(int status, std::string_view message) {
  return reply(status, json{{"error", message}});
}

ApiResponse from_status(const Status& status) {
  switch (status.code()) {
    case StatusCode::kOk: return reply(200, json{{"ok", true}});
    case StatusCode::kInvalidArgument: return error(400, status.message());
    case StatusCode::kNotFound: return error(404, status.message());
    case StatusCode::kBusy: return error(409, status.message());
    // A decision refused because the state could not be stored: retry later.
    case StatusCode::kUnavailable: return error(503, status.message());
    default: return error(500, status.message());
  }
}

// Constant-time comparison: the secret must not leak through response timing.
bool equal_secret(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

Result<uint64_t> parse_u64(std::string_view text, std::string_view what) {
  uint64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || text.empty()) {
    return Status::invalid_argument(fmt::format("{} \"{}\" is not a number", what, text));
  }
  return value;
}

// An unsigned field, absent → `fallback`.
Result<uint64_t> u64_field(const json& object, const char* name, std::optional<uint64_t> fallback) {
  auto it = object.find(name);
  if (it == object.end()) {
    if (fallback) return *fallback;
    return Status::invalid_argument(fmt::format("missing \"{}\"", name));
  }
  if (!it->is_number_unsigned()) {
    return Status::invalid_argument(fmt::format("\"{}\" must be a non-negative integer", name));
  }
  return it->get<uint64_t>();
}

// An optional token field: "0x..." or a decimal string or an unsigned number.
Result<std::optional<uint64_t>> token_field(const json& object, const char* name) {
  auto it = object.find(name);
  if (it == object.end() || it->is_null()) return std::optional<uint64_t>();
  if (it->is_number_unsigned()) return std::optional<uint64_t>(it->get<uint64_t>());
  if (!it->is_string()) {
    return Status::invalid_argument(fmt::format("\"{}\" must be a token (\"0x...\")", name));
  }
  auto token = parse_token(it->get<std::string>());
  if (!token.is_ok()) {
    return Status::invalid_argument(fmt::format("\"{}\": {}", name, token.status().message()));
  }
  return std::optional<uint64_t>(*token);
}

Result<bool> bool_field(const json& object, const char* name) {
  auto it = object.find(name);
  if (it == object.end()) return false;
  if (!it->is_boolean()) return Status::invalid_argument(fmt::format("\"{}\" must be a boolean", name));
  return it->get<bool>();
}

// The heartbeat's "migrations" array (docs/migration.md); every field but id optional.
Result<std::vector<MigrationReport>> parse_reports(const json& body) {
  std::vector<MigrationReport> reports;
  auto it = body.find("migrations");
  if (it == body.end()) return reports;
  if (!it->is_array() || it->size() > kActiveMigrationsMax) {
    return Status::invalid_argument("\"migrations\" must be an array (of reports)");
  }
  for (const json& item : *it) {
    if (!item.is_object()) return Status::invalid_argument("a migration report is not an object");
    MigrationReport report;
    for (auto [name, out] : {std::pair{"id", &report.id}, std::pair{"keys", &report.keys},
                             std::pair{"bytes", &report.bytes}, std::pair{"lag", &report.lag}}) {
      auto value = u64_field(item, name, std::string_view(name) == "id"
                                             ? std::nullopt
                                             : std::optional<uint64_t>(0));
      if (!value.is_ok()) return Status::invalid_argument("migrations: " + value.status().message());
      *out = *value;
    }
    // Optional: absent means not measured (nothing sent), not 0.
    for (auto [name, out] : {std::pair{"fence_ms", &report.fence_ms},
                             std::pair{"copy_ms", &report.copy_ms}}) {
      if (!item.contains(name)) continue;
      auto value = u64_field(item, name, std::nullopt);
      if (!value.is_ok()) return Status::invalid_argument("migrations: " + value.status().message());
      *out = *value;
    }
    for (auto [name, out] : {std::pair{"staged", &report.staged},
                             std::pair{"ready", &report.ready},
                             std::pair{"cleaned", &report.cleaned}}) {
      auto value = bool_field(item, name);
      if (!value.is_ok()) return Status::invalid_argument("migrations: " + value.status().message());
      *out = *value;
    }
    reports.push_back(report);
  }
  return reports;
}

// The heartbeat's optional "repair" array (server/repairer.h): one object per shard.
Result<std::vector<RepairReport>> parse_repair(const json& body) {
  std::vector<RepairReport> out;
  auto it = body.find("repair");
  if (it == body.end()) return out;
  if (!it->is_array() || it->size() > topology::kShardsMax) {
    return Status::invalid_argument("\"repair\" must be an array of at most " +
                                    std::to_string(topology::kShardsMax) + " objects");
  }
  for (const json& item : *it) {
    if (!item.is_object()) return Status::invalid_argument("\"repair\" items must be objects");
    RepairReport report;
    auto shard = u64_field(item, "shard", std::nullopt);
    if (!shard.is_ok()) return Status::invalid_argument("repair: " + shard.status().message());
    report.shard = *shard;
    for (auto [name, field] : {std::pair{"passes", &report.passes},
                               std::pair{"complete_passes", &report.complete_passes},
                               std::pair{"cells_fixed", &report.cells_fixed},
                               std::pair{"last_pass_fixed", &report.last_pass_fixed}}) {
      auto value = u64_field(item, name, 0);
      if (!value.is_ok()) return Status::invalid_argument("repair: " + value.status().message());
      *field = *value;
    }
    auto last_full = u64_field(item, "last_full_ms", 0);
    if (!last_full.is_ok()) return Status::invalid_argument("repair: " + last_full.status().message());
    report.last_full_ms = static_cast<int64_t>(*last_full);
    if (auto running = item.find("running"); running != item.end() && running->is_boolean()) {
      report.running = running->get<bool>();
    }
    if (auto progress = item.find("progress"); progress != item.end() && progress->is_number()) {
      report.progress = std::clamp(progress->get<double>(), 0.0, 1.0);
    }
    if (auto problem = item.find("problem"); problem != item.end() && problem->is_string()) {
      report.problem = problem->get<std::string>().substr(0, 512);
    }
    out.push_back(std::move(report));
  }
  return out;
}

// The heartbeat's optional "clock" object (the machine's offset from this orchestrator's clock).
Result<ClockReport> parse_clock(const json& body) {
  ClockReport clock;
  auto it = body.find("clock");
  if (it == body.end()) return clock;
  const char* const kShape =
      "\"clock\" must be {\"offset_ms\": integer, \"error_ms\": integer, \"in_bound\": boolean}";
  if (!it->is_object()) return Status::invalid_argument(kShape);
  for (auto [name, out] : {std::pair{"offset_ms", &clock.offset_ms},
                           std::pair{"error_ms", &clock.error_ms}}) {
    auto field = it->find(name);
    if (field == it->end() || !field->is_number_integer()) {
      return Status::invalid_argument(kShape);
    }
    *out = field->get<int64_t>();
  }
  auto in_bound = it->find("in_bound");
  if (in_bound == it->end() || !in_bound->is_boolean()) return Status::invalid_argument(kShape);
  clock.in_bound = in_bound->get<bool>();
  clock.measured = true;
  return clock;
}

json order_json(const MigrationOrder& o) {
  return json{{"id", o.id},
              {"start", topology::format_token(o.start)},
              {"end", topology::format_token(o.end)},
              {"source", o.source},
              {"target", o.target},
              {"phase", std::string(migration_phase_name(o.phase))},
              {"paused", o.paused},
              {"max_rate", o.max_rate},
              {"attempt", o.attempt},
              {"driver", o.driver},
              {"commit_epoch", o.commit_epoch}};
}

Result<json> parse_body(const std::string& body) {
  json parsed = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded() || !parsed.is_object()) {
    return Status::invalid_argument("the body must be a JSON object");
  }
  return parsed;
}

}  // namespace

ApiRouter::ApiRouter(Service* service, std::string cluster_secret)
    : service_(service),
      expected_authorization_(cluster_secret.empty() ? "" : "Bearer " + cluster_secret) {}

bool ApiRouter::authorized(const ApiRequest& request) const {
  return !expected_authorization_.empty() &&
         equal_secret(request.authorization, expected_authorization_);
}

ApiResponse ApiRouter::handle(const ApiRequest& request) const {
  // A poisoned service (service.h) may hold changes that were never stored: nothing it says,
  // before or after this request, may reach a machine.
  if (service_->poisoned()) return error(503, "not the leader (the state store refused a write)");
  ApiResponse response = route(request);
  if (service_->poisoned()) return error(503, "not the leader (the state store refused a write)");
  return response;
}

ApiResponse ApiRouter::route(const ApiRequest& request) const {
  std::string_view target = request.target;
  std::string_view path = target.substr(0, target.find('?'));
  std::string_view query = path.size() < target.size() ? target.substr(path.size() + 1) : "";
  if (request.method == "GET") {
    if (path == "/" || path == "/dashboard") {
      return ApiResponse{200, std::string(dashboard_html()), "text/html; charset=utf-8", ""};
    }
    if (path == "/v1/table") {
      json table = service_->table_json();
      if (table.is_null()) return error(404, "not bootstrapped yet");
      return reply(200, table);
    }
    if (path == "/v1/status") return reply(200, service_->status_json());
    if (path == "/v1/machines") return reply(200, service_->machines_json());
    if (path == "/v1/shards") return reply(200, service_->shards_json());
    if (path == "/v1/repair") return reply(200, service_->repair_json());
    if (path == "/v1/ring") return reply(200, service_->ring_json());
    if (path == "/v1/history") return reply(200, service_->history_json());
    if (path == "/v1/migrations") return reply(200, service_->migrations_json());
    if (path == "/v1/load") {
      if (!query.empty() && query != "history=1" && query != "history=0") {
        return error(400, "the only query parameter is history=1");
      }
      return reply(200, service_->load_json(query == "history=1"));
    }
    if (path == "/v1/capacity") return reply(200, service_->capacity_json());
    // The chart library compiled in (web_assets.h); 404 when the build had none.
    if (path == "/assets/uplot.js" || path == "/assets/uplot.css") {
      const bool js = path.ends_with(".js");
      const std::string_view body = js ? kUplotJs : kUplotCss;
      if (body.empty()) return error(404, "this build has no chart library");
      return ApiResponse{200, std::string(body),
                         js ? "text/javascript; charset=utf-8" : "text/css; charset=utf-8", ""};
    }
    if (path == "/metrics") {
      return ApiResponse{200, service_->metrics_text(), std::string(metrics::kPrometheusContentType),
                         ""};
    }
    if (path == "/v1/events") {
      uint64_t since = 0;
      if (query.starts_with("since=")) {
        auto parsed = parse_u64(query.substr(6), "since");
        if (!parsed.is_ok()) return from_status(parsed.status());
        since = *parsed;
      } else if (!query.empty()) {
        return error(400, "the only query parameter is since=N");
      }
      return reply(200, service_->events_json(since));
    }
    return error(404, fmt::format("no such endpoint {}", path));
  }
  if (request.method != "POST") return error(405, "only GET and POST are supported");
  if (!authorized(request)) return error(401, "missing or wrong cluster secret");
  if (path == "/v1/register") return handle_register(request.body);
  if (path == "/v1/heartbeat") return handle_heartbeat(request.body);
  constexpr std::string_view kMachines = "/v1/machines/";
  if (path.starts_with(kMachines)) return handle_machine_action(path.substr(kMachines.size()));
  if (path == "/v1/migrations") return handle_create_migration(request.body);
  constexpr std::string_view kMigrations = "/v1/migrations/";
  if (path.starts_with(kMigrations)) {
    return handle_migration_action(path.substr(kMigrations.size()), request.body);
  }
  return error(404, fmt::format("no such endpoint {}", path));
}

ApiResponse ApiRouter::handle_register(const std::string& body) const {
  auto parsed = parse_body(body);
  if (!parsed.is_ok()) return from_status(parsed.status());
  auto id = u64_field(*parsed, "machine_id", 0);
  if (!id.is_ok()) return from_status(id.status());
  auto address = parsed->find("address");
  if (address == parsed->end() || !address->is_string()) {
    return error(400, "missing \"address\" (host:port)");
  }
  std::string internal;
  auto internal_it = parsed->find("internal_address");
  if (internal_it != parsed->end()) {
    if (!internal_it->is_string()) return error(400, "\"internal_address\" must be a string");
    internal = internal_it->get<std::string>();
  }
  auto registered = service_->register_machine(*id, address->get<std::string>(), internal);
  if (!registered.is_ok()) return from_status(registered.status());
  return reply(200, json{{"machine_id", registered->machine_id},
                         {"epoch", registered->epoch},
                         {"heartbeat_interval_ms", service_->settings().heartbeat_interval_ms}});
}

ApiResponse ApiRouter::handle_heartbeat(const std::string& body) const {
  auto parsed = parse_body(body);
  if (!parsed.is_ok()) return from_status(parsed.status());
  auto id = u64_field(*parsed, "machine_id", std::nullopt);
  if (!id.is_ok()) return from_status(id.status());
  auto epoch = u64_field(*parsed, "epoch", 0);
  if (!epoch.is_ok()) return from_status(epoch.status());
  Load load;
  std::vector<metrics::RangeLoadReport> ranges;
  auto load_it = parsed->find("load");
  if (load_it != parsed->end()) {
    if (!load_it->is_object()) return error(400, "\"load\" must be an object");
    auto ops = load_it->find("ops_per_sec");
    if (ops != load_it->end()) {
      if (!ops->is_number() || ops->get<double>() < 0) {
        return error(400, "\"load.ops_per_sec\" must be a non-negative number");
      }
      load.ops_per_sec = ops->get<double>();
    }
    for (auto [name, field] : {std::pair{"bytes", &load.bytes},
                               std::pair{"storage_bytes", &load.storage_bytes},
                               std::pair{"p99_us", &load.p99_us}}) {
      auto value = u64_field(*load_it, name, 0);
      if (!value.is_ok()) return error(400, "load: " + value.status().message());
      *field = *value;
    }
    if (auto ranges_it = load_it->find("ranges"); ranges_it != load_it->end()) {
      auto parsed_ranges = metrics::range_reports_from_json(*ranges_it);
      if (!parsed_ranges.is_ok()) return error(400, "load: " + parsed_ranges.status().message());
      ranges = std::move(*parsed_ranges);
    }
  }
  // Absent or 0: the machine finished no rebuild (server/rebuilder.h).
  auto rebuilt = u64_field(*parsed, "rebuilt_shard", 0);
  if (!rebuilt.is_ok()) return from_status(rebuilt.status());
  auto reports = parse_reports(*parsed);
  if (!reports.is_ok()) return from_status(reports.status());
  auto clock = parse_clock(*parsed);
  if (!clock.is_ok()) return from_status(clock.status());
  auto repair = parse_repair(*parsed);
  if (!repair.is_ok()) return from_status(repair.status());
  auto answered = service_->heartbeat(*id, *epoch, load, *rebuilt, *reports, std::move(ranges),
                                      *clock, std::move(*repair));
  if (!answered.is_ok()) return from_status(answered.status());
  json orders = json::array();
  for (const auto& order : answered->migrations) orders.push_back(order_json(order));
  return reply(200, json{{"epoch", answered->epoch},
                         {"state", answered->state},
                         {"lease_ms", answered->lease_ms},
                         {"time_ms", answered->time_ms},
                         {"migrations", std::move(orders)}});
}

ApiResponse ApiRouter::handle_create_migration(const std::string& body) const {
  auto parsed = parse_body(body);
  if (!parsed.is_ok()) return from_status(parsed.status());
  auto kind = parsed->find("kind");
  if (kind == parsed->end() || !kind->is_string()) {
    return error(400, "missing \"kind\" (\"split\" or \"move\")");
  }
  auto max_rate = u64_field(*parsed, "max_rate", 0);
  if (!max_rate.is_ok()) return from_status(max_rate.status());
  Result<MigrationsCreated> created = Status::invalid_argument("");
  if (*kind == "split") {
    auto shard = u64_field(*parsed, "shard", std::nullopt);
    if (!shard.is_ok()) return from_status(shard.status());
    auto at = token_field(*parsed, "at");
    if (!at.is_ok()) return from_status(at.status());
    created = service_->split(*shard, *at, *max_rate);
  } else if (*kind == "move") {
    auto start = token_field(*parsed, "start");
    if (!start.is_ok()) return from_status(start.status());
    if (!start->has_value()) return error(400, "missing \"start\"");
    auto end = token_field(*parsed, "end");
    if (!end.is_ok()) return from_status(end.status());
    auto to = u64_field(*parsed, "to", std::nullopt);
    if (!to.is_ok()) return from_status(to.status());
    created = service_->move(**start, *end, *to, *max_rate);
  } else {
    return error(400, "\"kind\" must be \"split\" or \"move\"");
  }
  if (!created.is_ok()) return from_status(created.status());
  json out{{"migrations", created->ids}, {"message", created->message}};
  if (created->new_shard != topology::kNoShard) out["new_shard"] = created->new_shard;
  return reply(201, out);
}

ApiResponse ApiRouter::handle_migration_action(std::string_view rest,
                                               const std::string& body) const {
  auto slash = rest.find('/');
  if (slash == std::string_view::npos) {
    return error(404, "expected /v1/migrations/{id}/pause|resume|cancel|rate|commit|abort");
  }
  auto id = parse_u64(rest.substr(0, slash), "migration id");
  if (!id.is_ok()) return from_status(id.status());
  std::string_view action = rest.substr(slash + 1);
  if (action == "pause") return from_status(service_->pause_migration(*id));
  if (action == "resume") return from_status(service_->resume_migration(*id));
  if (action == "cancel") return from_status(service_->cancel_migration(*id));
  auto parsed = parse_body(body);
  if (!parsed.is_ok()) return from_status(parsed.status());
  if (action == "rate") {
    auto rate = u64_field(*parsed, "max_rate", std::nullopt);
    if (!rate.is_ok()) return from_status(rate.status());
    return from_status(service_->set_migration_rate(*id, *rate));
  }
  if (action == "commit" || action == "abort") {
    auto attempt = u64_field(*parsed, "attempt", std::nullopt);
    if (!attempt.is_ok()) return from_status(attempt.status());
    if (*attempt > UINT32_MAX) return error(400, "\"attempt\" is out of range");
    if (action == "abort") {
      std::string why;
      auto it = parsed->find("error");
      if (it != parsed->end()) {
        if (!it->is_string()) return error(400, "\"error\" must be a string");
        why = it->get<std::string>();
      }
      return from_status(
          service_->abort_migration(*id, static_cast<uint32_t>(*attempt), std::move(why)));
    }
    auto epoch = u64_field(*parsed, "epoch", std::nullopt);
    if (!epoch.is_ok()) return from_status(epoch.status());
    auto table = service_->commit_migration(*id, static_cast<uint32_t>(*attempt), *epoch);
    if (!table.is_ok()) return from_status(table.status());
    return reply(200, json{{"table", std::move(*table)}});
  }
  return error(404, fmt::format("unknown migration action \"{}\"", action));
}

ApiResponse ApiRouter::handle_machine_action(std::string_view rest) const {
  auto slash = rest.find('/');
  if (slash == std::string_view::npos) return error(404, "expected /v1/machines/{id}/drain|remove");
  auto id = parse_u64(rest.substr(0, slash), "machine id");
  if (!id.is_ok()) return from_status(id.status());
  std::string_view action = rest.substr(slash + 1);
  if (action == "drain") return from_status(service_->drain(*id));
  if (action == "remove") return from_status(service_->remove(*id));
  return error(404, fmt::format("unknown machine action \"{}\"", action));
}

}  // namespace cairn::orchestrator
