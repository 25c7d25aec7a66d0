#include "orchestrator/api.h"

#include "orchestrator/dashboard.h"

#include <charconv>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace cairn::orchestrator {

namespace {

using nlohmann::json;

ApiResponse reply(int status, const json& body) { return ApiResponse{status, body.dump()}; }

ApiResponse error(int status, std::string_view message) {
  return reply(status, json{{"error", message}});
}

ApiResponse from_status(const Status& status) {
  switch (status.code()) {
    case StatusCode::kOk: return reply(200, json{{"ok", true}});
    case StatusCode::kInvalidArgument: return error(400, status.message());
    case StatusCode::kNotFound: return error(404, status.message());
    case StatusCode::kBusy: return error(409, status.message());
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
  std::string_view target = request.target;
  std::string_view path = target.substr(0, target.find('?'));
  std::string_view query = path.size() < target.size() ? target.substr(path.size() + 1) : "";
  if (request.method == "GET") {
    if (path == "/" || path == "/dashboard") {
      return ApiResponse{200, std::string(dashboard_html()), "text/html; charset=utf-8"};
    }
    if (path == "/v1/table") {
      json table = service_->table_json();
      if (table.is_null()) return error(404, "not bootstrapped yet");
      return reply(200, table);
    }
    if (path == "/v1/status") return reply(200, service_->status_json());
    if (path == "/v1/machines") return reply(200, service_->machines_json());
    if (path == "/v1/shards") return reply(200, service_->shards_json());
    if (path == "/v1/ring") return reply(200, service_->ring_json());
    if (path == "/v1/history") return reply(200, service_->history_json());
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
  }
  // Absent or 0: the machine finished no rebuild (server/rebuilder.h).
  auto rebuilt = u64_field(*parsed, "rebuilt_shard", 0);
  if (!rebuilt.is_ok()) return from_status(rebuilt.status());
  auto answered = service_->heartbeat(*id, *epoch, load, *rebuilt);
  if (!answered.is_ok()) return from_status(answered.status());
  return reply(200, json{{"epoch", answered->epoch},
                         {"state", answered->state},
                         {"lease_ms", answered->lease_ms}});
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
