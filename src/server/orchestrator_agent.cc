#include "server/orchestrator_agent.h"

#include <algorithm>
#include <charconv>
#include <cstdlib>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "common/clock.h"
#include "topology/routing_table.h"

namespace cairn::server {

namespace {

using nlohmann::json;

// The answers of the orchestrator are small; a larger one is a bug or not the orchestrator.
json parse_object(const std::string& text) {
  json value = json::parse(text, nullptr, /*allow_exceptions=*/false);
  return value.is_object() ? value : json();
}

// A non-negative integer field of `object`, or `fallback` if absent or of another type.
int64_t integer_field(const json& object, const char* name, int64_t fallback) {
  if (!object.is_object()) return fallback;
  auto it = object.find(name);
  if (it == object.end() || !it->is_number_integer()) return fallback;
  const int64_t value = it->get<int64_t>();
  return value < 0 ? fallback : value;
}

std::string error_text(const HttpResponse& response) {
  const json body = parse_object(response.body);
  if (body.is_object() && body.contains("error") && body["error"].is_string()) {
    return fmt::format("HTTP {}: {}", response.status, body["error"].get<std::string>());
  }
  return fmt::format("HTTP {}", response.status);
}

// A token field: "0x" + 1-16 hex digits, or a non-negative integer.
bool token_field(const json& object, const char* name, topology::Token* out) {
  auto it = object.find(name);
  if (it == object.end()) return false;
  if (it->is_number_unsigned() || (it->is_number_integer() && it->get<int64_t>() >= 0)) {
    *out = it->get<uint64_t>();
    return true;
  }
  if (!it->is_string()) return false;
  const std::string& text = it->get_ref<const std::string&>();
  if (text.size() < 3 || text.size() > 18 || text[0] != '0' || (text[1] != 'x' && text[1] != 'X')) {
    return false;
  }
  const char* begin = text.data() + 2;
  const char* end = text.data() + text.size();
  const auto [parsed_end, error] = std::from_chars(begin, end, *out, 16);
  return error == std::errc() && parsed_end == end;
}

uint64_t unsigned_field(const json& object, const char* name) {
  auto it = object.find(name);
  if (it == object.end()) return 0;
  if (it->is_number_unsigned()) return it->get<uint64_t>();
  if (it->is_number_integer() && it->get<int64_t>() >= 0) return it->get<uint64_t>();
  return 0;
}

json report_json(const MigrationReport& report) {
  json out = {{"id", report.id},       {"staged", report.staged}, {"ready", report.ready},
              {"keys", report.keys},   {"bytes", report.bytes},   {"lag", report.lag},
              {"cleaned", report.cleaned}};
  if (report.fence_ms >= 0) out["fence_ms"] = report.fence_ms;
  if (report.copy_ms >= 0) out["copy_ms"] = report.copy_ms;
  return out;
}

}  // namespace

std::vector<MigrationOrder> parse_migration_orders(const std::string& answer_json) {
  std::vector<MigrationOrder> orders;
  const json answer = parse_object(answer_json);
  if (!answer.is_object()) return orders;
  auto it = answer.find("migrations");
  if (it == answer.end() || !it->is_array()) return orders;
  for (const json& item : *it) {
    if (orders.size() >= kMigrationOrdersMax) break;
    MigrationOrder order;
    if (!item.is_object() || !token_field(item, "start", &order.start) ||
        !token_field(item, "end", &order.end)) {
      spdlog::warn("orchestrator agent: a migration order does not parse: {}", item.dump());
      continue;
    }
    order.id = unsigned_field(item, "id");
    order.source = unsigned_field(item, "source");
    order.target = unsigned_field(item, "target");
    if (order.id == 0 || order.source == 0 || order.target == 0) {
      spdlog::warn("orchestrator agent: a migration order lacks its id or shards: {}", item.dump());
      continue;
    }
    if (auto phase = item.find("phase"); phase != item.end() && phase->is_string()) {
      order.phase = phase->get<std::string>();
    }
    if (auto paused = item.find("paused"); paused != item.end() && paused->is_boolean()) {
      order.paused = paused->get<bool>();
    }
    order.max_rate = unsigned_field(item, "max_rate");
    order.attempt = unsigned_field(item, "attempt");
    order.driver = unsigned_field(item, "driver");
    order.commit_epoch = unsigned_field(item, "commit_epoch");
    orders.push_back(std::move(order));
  }
  return orders;
}

Result<std::unique_ptr<OrchestratorAgent>> OrchestratorAgent::create(
    OrchestratorAgentOptions options, replica::TableHolder& tables) {
  auto endpoints = parse_orchestrator_list(options.orchestrator);
  if (!endpoints.is_ok()) {
    return Status::invalid_argument("orchestrator: " + endpoints.status().message());
  }
  if (auto own = parse_http_endpoint(options.address); !own.is_ok()) {
    return Status::invalid_argument("machine address: " + own.status().message());
  }
  if (options.machine_id == 0) return Status::invalid_argument("machine id 0 is reserved");
  if (options.cluster_secret.empty()) {
    return Status::invalid_argument("an orchestrator-managed machine needs a cluster secret");
  }
  if (options.request_timeout_ms <= 0 || options.lease_ms <= 0 ||
      options.retry_interval_max_ms <= 0 ||
      options.heartbeat_interval_ms < kHeartbeatIntervalMsMin ||
      options.heartbeat_interval_ms > kHeartbeatIntervalMsMax) {
    return Status::invalid_argument("orchestrator agent: timeouts and intervals out of range");
  }
  return std::unique_ptr<OrchestratorAgent>(
      new OrchestratorAgent(std::move(options), std::move(*endpoints), tables));
}

OrchestratorAgent::OrchestratorAgent(OrchestratorAgentOptions options,
                                     std::vector<HttpEndpoint> endpoints,
                                     replica::TableHolder& tables)
    : options_(std::move(options)),
      client_(std::move(endpoints)),
      tables_(tables),
      clock_(options_.max_clock_offset_ms),
      heartbeat_interval_ms_(options_.heartbeat_interval_ms),
      lease_ms_(options_.lease_ms) {}

OrchestratorAgent::~OrchestratorAgent() { stop(); }

void OrchestratorAgent::start() {
  std::lock_guard lock(mu_);
  if (thread_.joinable() || stopping_) return;
  thread_ = std::thread([this] { run(); });
}

void OrchestratorAgent::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

int64_t OrchestratorAgent::now_ms() const {
  return options_.monotonic_ms ? options_.monotonic_ms() : monotonic_ms();
}

int64_t OrchestratorAgent::wall_now_ms() const {
  return options_.wall_ms ? options_.wall_ms() : wall_clock_ms();
}

void OrchestratorAgent::observe_clock(const ClockOffsetSample& sample) {
  if (clock_.observe(sample)) {
    if (clock_.in_bound()) {
      spdlog::info("orchestrator agent: the clock is back within {} ms of the orchestrator's "
                   "(offset {} ms): coordinating writes again",
                   clock_.max_offset_ms(), clock_.offset_ms());
    } else {
      spdlog::error("orchestrator agent: the clock is {} ms {} the orchestrator's (bound {} ms): "
                    "refusing to coordinate writes until it is back in bound",
                    std::llabs(clock_.offset_ms()), clock_.offset_ms() < 0 ? "ahead of" : "behind",
                    clock_.max_offset_ms());
    }
  }
  {
    std::lock_guard lock(mu_);
    stats_.clock_measured = true;
    stats_.clock_in_bound = clock_.in_bound();
    stats_.clock_offset_ms = clock_.offset_ms();
    stats_.clock_error_ms = clock_.error_ms();
  }
  if (options_.on_clock) options_.on_clock(clock_);
}

bool OrchestratorAgent::lease_valid() const {
  if (!heartbeat_succeeded_.load(std::memory_order_acquire)) return false;
  const int64_t age = now_ms() - last_heartbeat_sent_ms_.load(std::memory_order_acquire);
  return age < lease_ms_.load(std::memory_order_relaxed);
}

OrchestratorAgentStats OrchestratorAgent::stats() const {
  std::lock_guard lock(mu_);
  return stats_;
}

bool OrchestratorAgent::wait_ms(int ms) {
  std::unique_lock lock(mu_);
  wake_.wait_for(lock, std::chrono::milliseconds(std::max(ms, 0)), [this] { return stopping_; });
  return !stopping_;
}

void OrchestratorAgent::run() {
  spdlog::info("orchestrator agent: machine {} at {} reports to {}", options_.machine_id,
               options_.address, options_.orchestrator);
  int delay_ms = 0;
  while (wait_ms(delay_ms)) {
    bool registered;
    {
      std::lock_guard lock(mu_);
      registered = stats_.registered;
    }
    const int64_t started = now_ms();
    const int wanted_ms = registered ? heartbeat_once() : register_once();
    // The interval runs from the start of one call to the start of the next, so a slow answer
    // does not stretch the time between heartbeats (and the lease) further.
    delay_ms = std::max<int>(0, wanted_ms - static_cast<int>(now_ms() - started));
  }
}

Result<HttpResponse> OrchestratorAgent::post(const std::string& target, std::string body) const {
  HttpRequest request;
  request.method = "POST";
  request.target = target;
  request.body = std::move(body);
  request.bearer = options_.cluster_secret;
  return client_.call(request, options_.request_timeout_ms);
}

Result<HttpResponse> OrchestratorAgent::call(const char* method, const char* target,
                                             std::string body) {
  HttpRequest request;
  request.method = method;
  request.target = target;
  request.body = std::move(body);
  request.bearer = options_.cluster_secret;
  auto response = client_.call(request, options_.request_timeout_ms);
  if (!response.is_ok() || response->status != 200) {
    std::lock_guard lock(mu_);
    ++stats_.failed_calls;
  }
  if (!response.is_ok()) {
    // Logged once per outage rather than four times a second.
    if (!unreachable_logged_) {
      spdlog::warn("orchestrator agent: {}", response.status().message());
      unreachable_logged_ = true;
    }
  } else if (unreachable_logged_) {
    spdlog::info("orchestrator agent: {} answers again", client_.current());
    unreachable_logged_ = false;
  }
  return response;
}

int OrchestratorAgent::register_once() {
  const json body = {{"machine_id", options_.machine_id}, {"address", options_.address}};
  auto response = call("POST", "/v1/register", body.dump());
  const bool ok = response.is_ok() && response->status == 200;
  const json answer = ok ? parse_object(response->body) : json();
  if (!ok || !answer.is_object()) {
    if (response.is_ok()) {
      spdlog::warn("orchestrator agent: registration refused: {}",
                   response->status == 200 ? "malformed answer" : error_text(*response));
    }
    // Back off from the heartbeat interval up to the maximum, doubling.
    const int interval = heartbeat_interval_ms_.load(std::memory_order_relaxed);
    retry_delay_ms_ = retry_delay_ms_ == 0
                          ? interval
                          : std::min(retry_delay_ms_ * 2, options_.retry_interval_max_ms);
    return retry_delay_ms_;
  }
  retry_delay_ms_ = 0;
  const int64_t id = integer_field(answer, "machine_id", 0);
  if (id != 0 && static_cast<uint64_t>(id) != options_.machine_id) {
    spdlog::error("orchestrator agent: registered machine {} but the orchestrator answered for {}",
                  options_.machine_id, id);
  }
  const int64_t interval = integer_field(answer, "heartbeat_interval_ms",
                                         heartbeat_interval_ms_.load(std::memory_order_relaxed));
  heartbeat_interval_ms_.store(
      static_cast<int>(std::clamp<int64_t>(interval, kHeartbeatIntervalMsMin,
                                           kHeartbeatIntervalMsMax)),
      std::memory_order_relaxed);
  const uint64_t epoch = static_cast<uint64_t>(integer_field(answer, "epoch", 0));
  {
    std::lock_guard lock(mu_);
    stats_.registered = true;
    ++stats_.registrations;
    stats_.orchestrator_epoch = std::max(stats_.orchestrator_epoch, epoch);
  }
  spdlog::info("orchestrator agent: registered machine {} (cluster epoch {}, heartbeat every {} ms)",
               options_.machine_id, epoch, heartbeat_interval_ms_.load());
  fetch_table_if_behind(epoch);
  return 0;  // heartbeat at once: it starts the lease
}

std::string OrchestratorAgent::load_json() {
  const MachineLoadCounters counters = options_.load ? options_.load() : MachineLoadCounters{};
  json load = {{"ops_per_sec", counters.ops_per_sec},
               {"bytes", counters.bytes},
               {"storage_bytes", counters.storage_bytes},
               {"p99_us", counters.p99_us}};
  if (!counters.ranges.empty()) load["ranges"] = metrics::range_reports_to_json(counters.ranges);
  json body = {{"machine_id", options_.machine_id},
               {"epoch", tables_.epoch()},
               {"load", std::move(load)}};
  if (options_.rebuilt_shard) {
    if (const uint64_t shard = options_.rebuilt_shard(); shard != 0) body["rebuilt_shard"] = shard;
  }
  if (clock_.measured()) {
    body["clock"] = {{"offset_ms", clock_.offset_ms()},
                     {"error_ms", clock_.error_ms()},
                     {"in_bound", clock_.in_bound()}};
  }
  if (options_.repair_status) {
    json repair = json::array();
    for (const ShardRepairStatus& shard : options_.repair_status()) {
      repair.push_back({{"shard", shard.shard},
                        {"last_full_ms", shard.last_full_ms},
                        {"passes", shard.passes},
                        {"complete_passes", shard.complete_passes},
                        {"cells_fixed", shard.cells_fixed},
                        {"last_pass_fixed", shard.last_pass_fixed},
                        {"running", shard.running},
                        {"progress", shard.progress},
                        {"problem", shard.last_problem}});
    }
    if (!repair.empty()) body["repair"] = std::move(repair);
  }
  if (options_.migration_reports) {
    const std::vector<MigrationReport> reports = options_.migration_reports();
    if (!reports.empty()) {
      json array = json::array();
      for (const MigrationReport& report : reports) array.push_back(report_json(report));
      body["migrations"] = std::move(array);
    }
  }
  return body.dump();
}

int OrchestratorAgent::heartbeat_once() {
  const int interval = heartbeat_interval_ms_.load(std::memory_order_relaxed);
  const int64_t sent_ms = now_ms();
  const int64_t sent_wall_ms = wall_now_ms();
  auto response = call("POST", "/v1/heartbeat", load_json());
  const int64_t round_trip_ms = now_ms() - sent_ms;
  if (!response.is_ok()) return interval;
  if (response->status == 404) {
    spdlog::warn("orchestrator agent: the orchestrator does not know machine {}: registering again",
                 options_.machine_id);
    std::lock_guard lock(mu_);
    stats_.registered = false;
    return 0;
  }
  const json answer = response->status == 200 ? parse_object(response->body) : json();
  if (!answer.is_object()) {
    spdlog::warn("orchestrator agent: heartbeat refused: {}",
                 response->status == 200 ? "malformed answer" : error_text(*response));
    return interval;
  }
  const int64_t lease = integer_field(answer, "lease_ms", lease_ms_.load());
  if (lease > 0 && lease <= INT32_MAX) lease_ms_.store(static_cast<int>(lease));
  if (const int64_t reference_ms = integer_field(answer, "time_ms", 0); reference_ms > 0) {
    observe_clock({sent_wall_ms, round_trip_ms, reference_ms});
  }
  last_heartbeat_sent_ms_.store(sent_ms, std::memory_order_release);
  heartbeat_succeeded_.store(true, std::memory_order_release);
  const uint64_t epoch = static_cast<uint64_t>(integer_field(answer, "epoch", 0));
  {
    std::lock_guard lock(mu_);
    ++stats_.heartbeats;
    stats_.orchestrator_epoch = std::max(stats_.orchestrator_epoch, epoch);
    if (auto it = answer.find("state"); it != answer.end() && it->is_string()) {
      stats_.state = it->get<std::string>();
    }
  }
  fetch_table_if_behind(epoch);
  // After the table: an order naming a newer epoch then finds it installed where it could be.
  if (options_.on_migrations) options_.on_migrations(parse_migration_orders(response->body), epoch);
  return interval;
}

void OrchestratorAgent::fetch_table_if_behind(uint64_t epoch) {
  if (epoch <= tables_.epoch()) return;
  auto response = call("GET", "/v1/table", "");
  if (!response.is_ok()) return;
  if (response->status != 200) {
    // 404 before the orchestrator has bootstrapped a table: nothing to install yet.
    if (response->status != 404) {
      spdlog::warn("orchestrator agent: cannot fetch table epoch {}: {}", epoch,
                   error_text(*response));
    }
    return;
  }
  auto table = topology::RoutingTable::from_json_text(response->body);
  if (!table.is_ok()) {
    spdlog::error("orchestrator agent: the orchestrator's table does not parse: {}",
                  table.status().message());
    return;
  }
  const uint64_t fetched = table->epoch();
  if (fetched <= tables_.epoch()) return;  // a push got here first
  if (table->find_machine(options_.machine_id) == nullptr) {
    spdlog::info("orchestrator agent: machine {} is not in table epoch {} yet",
                 options_.machine_id, fetched);
  }
  // A push may install the same or a newer epoch between the check and here: then install()
  // refuses this one, which is right.
  if (Status status = tables_.install(std::move(*table)); !status.is_ok()) {
    spdlog::debug("orchestrator agent: table epoch {} not installed: {}", fetched,
                  status.message());
    return;
  }
  spdlog::info("orchestrator agent: installed routing table epoch {}", fetched);
  std::lock_guard lock(mu_);
  ++stats_.tables_installed;
}

}  // namespace cairn::server
