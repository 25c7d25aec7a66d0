#include "server/config.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <fstream>
#include <limits>
#include <sstream>
#include <thread>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <toml++/toml.h>

#include "net/event_loops.h"
#include "server/http_client.h"
#include "server/orchestrator_client.h"

namespace cairn::server {

namespace {

struct SettingInfo {
  std::string_view name;
  std::string_view help;
};

// One row per setting: the order of --help and of CONFIG GET *.
constexpr SettingInfo kSettings[] = {
    {"port", "TCP port to listen on (0 picks a free one)  [default: 6380]"},
    {"bind", "address to listen on, an IPv4/IPv6 literal or * for all  [default: 127.0.0.1]"},
    {"data-dir", "data directory (RocksDB files and machine-id)  [default: ./cairn-data]"},
    {"durability",
     "always: fsync the WAL before replying to writes (group commit); batch: fsync every few "
     "ms; none: never fsync  [default: always]"},
    {"requirepass", "password clients must send with AUTH (empty: none)  [default: empty]"},
    {"maxclients", "maximum number of connected clients  [default: 10000]"},
    {"timeout", "close clients idle for this many seconds (0: never)  [default: 0]"},
    {"threads", "event-loop threads, 1-64 (0: half the cores, at least one)  [default: 0]"},
    {"proto-max-bulk-len",
     "largest bulk string a client may send, e.g. 512mb (at least 1mb)  [default: 512mb]"},
    {"client-query-buffer-limit",
     "close a client whose unparsed request exceeds this, e.g. 1gb (at least 1mb)  "
     "[default: 1gb]"},
    {"log-level", "trace, debug, info, warn, error, critical or off  [default: info]"},
    {"cluster-secret",
     "shared secret of the cluster's machines; setting it enables cluster mode  [default: empty]"},
    {"machine-id",
     "this machine's id in the routing table (1 to 2^64-1); recorded in <data-dir>/machine-id "
     "on first start and must match it afterwards (0: use the recorded or a random id)  "
     "[default: 0]"},
    {"table", "routing table (JSON file) to install at start in cluster mode  [default: empty]"},
    {"orchestrator",
     "host:port of the orchestrator that manages this machine, or several comma-separated "
     "(it follows the one that leads; needs --cluster-secret); the "
     "machine registers, heartbeats and follows its routing tables  [default: empty]"},
    {"workers", "threads running client commands in cluster mode, 1-256  [default: 32]"},
    {"request-timeout-ms",
     "how long a coordinator waits for its replicas in cluster mode, 1-600000  [default: 1000]"},
    {"max-clock-offset-ms",
     "an orchestrator-managed machine whose clock is further than this from the orchestrator's "
     "refuses to coordinate writes until it is back in bound, ms, 0-86400000 (0: no bound)  "
     "[default: 500]"},
    {"read-speculate-ms",
     "a read at level R asks R replicas; the others too when those have not answered after "
     "this long, 0-600000 (0: every read asks every voting replica)  [default: 50]"},
    {"block-cache-mb",
     "RocksDB block cache (data, index and Bloom filter blocks read from disk), MiB, 8-1048576  "
     "[default: 32]"},
    {"rebuild-max-mb-per-s",
     "throttle of the copy that rebuilds a replaced replica, MiB/s (0: unlimited)  [default: 0]"},
    {"repair-cells-per-s",
     "anti-entropy repair: cells per second it may compare and copy between the replicas of "
     "a shard, 0-100000000 (0: no repair)  [default: 20000]"},
    {"repair-interval-s",
     "anti-entropy repair: least time between the starts of two passes over one shard, "
     "seconds, 1-604800  [default: 60]"},
    {"hinted-handoff",
     "on: a coordinator keeps the writes a replica missed and replays them; off: only read "
     "repair and anti-entropy repair bring such a replica up to date  [default: on]"},
    {"hint-max-age-s",
     "a hint older than this is dropped instead of replayed; deletions are purged no earlier "
     "than this after every replica held them, seconds, 1-604800  [default: 10800]"},
    {"metrics-port",
     "serve Prometheus metrics at http://BIND:PORT/metrics (0: no metrics listener)  [default: 0]"},
    {"slowlog-log-slower-than",
     "SLOWLOG keeps commands that ran at least this many microseconds (negative: none)  "
     "[default: 10000]"},
    {"slowlog-max-len", "entries SLOWLOG keeps  [default: 128]"},
    {"latency-monitor-threshold",
     "LATENCY records commands that ran at least this many milliseconds (0: off)  [default: 0]"},
};

std::string normalize_name(std::string_view name) {
  std::string out(name);
  for (char& c : out) {
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (c == '_') c = '-';
  }
  return out;
}

std::string lower(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

Result<int64_t> parse_integer(std::string_view name, std::string_view text, int64_t min,
                              int64_t max) {
  int64_t value = 0;
  const auto* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (text.empty() || ec != std::errc() || ptr != end || value < min || value > max) {
    return Status::invalid_argument(fmt::format(
        "invalid value '{}' for {}: must be an integer from {} to {}", text, name, min, max));
  }
  return value;
}

Result<uint64_t> parse_bytes(std::string_view name, std::string_view text, uint64_t min) {
  auto parsed = parse_memory(text);
  if (!parsed.is_ok() || *parsed < min) {
    return Status::invalid_argument(fmt::format(
        "invalid value '{}' for {}: must be a byte count of at least {} (e.g. 512mb, 1gb)", text,
        name, min));
  }
  return *parsed;
}

Result<std::string> parse_log_level(std::string_view text) {
  const std::string level = lower(text);
  // redis.conf's names are accepted too, so a familiar config file works.
  if (level == "verbose") return std::string("debug");
  if (level == "notice") return std::string("info");
  if (level == "warning") return std::string("warn");
  for (std::string_view known : {"trace", "debug", "info", "warn", "error", "critical", "off"}) {
    if (level == known) return level;
  }
  return Status::invalid_argument(fmt::format(
      "invalid value '{}' for log-level: must be trace, debug, info, warn, error, critical or off",
      text));
}

std::string format_bytes(uint64_t bytes) { return std::to_string(bytes); }

}  // namespace

const std::vector<std::string_view>& setting_names() {
  static const std::vector<std::string_view> names = [] {
    std::vector<std::string_view> out;
    for (const auto& setting : kSettings) out.push_back(setting.name);
    return out;
  }();
  return names;
}

Result<uint64_t> parse_memory(std::string_view text) {
  const std::string value = lower(text);
  size_t digits = 0;
  while (digits < value.size() && std::isdigit(static_cast<unsigned char>(value[digits]))) {
    ++digits;
  }
  if (digits == 0) return Status::invalid_argument("not a byte count: " + std::string(text));
  uint64_t number = 0;
  const auto [ptr, ec] = std::from_chars(value.data(), value.data() + digits, number);
  if (ec != std::errc()) return Status::invalid_argument("not a byte count: " + std::string(text));
  const std::string_view unit = std::string_view(value).substr(digits);
  uint64_t multiplier = 0;
  if (unit.empty() || unit == "b") multiplier = 1;
  if (unit == "k") multiplier = 1000;
  if (unit == "kb") multiplier = 1024;
  if (unit == "m") multiplier = 1000 * 1000;
  if (unit == "mb") multiplier = 1024 * 1024;
  if (unit == "g") multiplier = 1000ull * 1000 * 1000;
  if (unit == "gb") multiplier = 1024ull * 1024 * 1024;
  if (multiplier == 0) return Status::invalid_argument("unknown unit in " + std::string(text));
  if (number > std::numeric_limits<uint64_t>::max() / multiplier) {
    return Status::invalid_argument("byte count too large: " + std::string(text));
  }
  return number * multiplier;
}

Status apply_setting(ServerConfig& config, std::string_view raw_name, std::string_view value) {
  const std::string name = normalize_name(raw_name);
  if (name == "port") {
    auto port = parse_integer(name, value, 0, 65535);
    if (!port.is_ok()) return port.status();
    config.port = static_cast<uint16_t>(*port);
  } else if (name == "bind") {
    if (value.empty()) return Status::invalid_argument("invalid value '' for bind: empty");
    config.bind = std::string(value);
  } else if (name == "data-dir") {
    if (value.empty()) return Status::invalid_argument("invalid value '' for data-dir: empty");
    config.data_dir = std::string(value);
  } else if (name == "durability") {
    auto durability = storage::parse_durability(lower(value));
    if (!durability.is_ok()) {
      return Status::invalid_argument(fmt::format(
          "invalid value '{}' for durability: must be always, batch or none", value));
    }
    config.durability = *durability;
  } else if (name == "requirepass") {
    config.requirepass = std::string(value);
  } else if (name == "maxclients") {
    auto maxclients = parse_integer(name, value, 1, 1'000'000);
    if (!maxclients.is_ok()) return maxclients.status();
    config.maxclients = *maxclients;
  } else if (name == "timeout") {
    auto timeout = parse_integer(name, value, 0, std::numeric_limits<int32_t>::max());
    if (!timeout.is_ok()) return timeout.status();
    config.timeout_seconds = *timeout;
  } else if (name == "threads") {
    auto threads = parse_integer(name, value, 0, static_cast<int64_t>(net::kLoopThreadsMax));
    if (!threads.is_ok()) return threads.status();
    config.threads = static_cast<size_t>(*threads);
  } else if (name == "proto-max-bulk-len") {
    auto bytes = parse_bytes(name, value, kMiB);
    if (!bytes.is_ok()) return bytes.status();
    config.proto_max_bulk_len = *bytes;
  } else if (name == "client-query-buffer-limit") {
    auto bytes = parse_bytes(name, value, kMiB);
    if (!bytes.is_ok()) return bytes.status();
    config.client_query_buffer_limit = *bytes;
  } else if (name == "log-level") {
    auto level = parse_log_level(value);
    if (!level.is_ok()) return level.status();
    config.log_level = *level;
  } else if (name == "cluster-secret") {
    config.cluster_secret = std::string(value);
  } else if (name == "machine-id") {
    uint64_t id = 0;
    const auto* end = value.data() + value.size();
    const auto [ptr, ec] = std::from_chars(value.data(), end, id);
    if (value.empty() || ec != std::errc() || ptr != end) {
      return Status::invalid_argument(fmt::format(
          "invalid value '{}' for machine-id: must be an integer from 0 to 2^64-1", value));
    }
    config.machine_id = id;
  } else if (name == "table") {
    config.table_file = std::string(value);
  } else if (name == "orchestrator") {
    if (!value.empty()) {
      if (auto endpoints = parse_orchestrator_list(value); !endpoints.is_ok()) {
        return Status::invalid_argument("invalid value for orchestrator: " +
                                        endpoints.status().message());
      }
    }
    config.orchestrator = std::string(value);
  } else if (name == "workers") {
    auto workers = parse_integer(name, value, 1, static_cast<int64_t>(kServerWorkersMax));
    if (!workers.is_ok()) return workers.status();
    config.workers = static_cast<size_t>(*workers);
  } else if (name == "request-timeout-ms") {
    auto timeout = parse_integer(name, value, 1, kRequestTimeoutMsMax);
    if (!timeout.is_ok()) return timeout.status();
    config.request_timeout_ms = *timeout;
  } else if (name == "max-clock-offset-ms") {
    auto offset = parse_integer(name, value, 0, kMaxClockOffsetMsMax);
    if (!offset.is_ok()) return offset.status();
    config.max_clock_offset_ms = *offset;
  } else if (name == "read-speculate-ms") {
    auto speculate = parse_integer(name, value, 0, kRequestTimeoutMsMax);
    if (!speculate.is_ok()) return speculate.status();
    config.read_speculate_ms = *speculate;
  } else if (name == "block-cache-mb") {
    auto megabytes = parse_integer(name, value, kBlockCacheMbMin, kBlockCacheMbMax);
    if (!megabytes.is_ok()) return megabytes.status();
    config.block_cache_mb = *megabytes;
  } else if (name == "rebuild-max-mb-per-s") {
    auto rate = parse_integer(name, value, 0, kRebuildMaxMbPerSecMax);
    if (!rate.is_ok()) return rate.status();
    config.rebuild_max_mb_per_s = *rate;
  } else if (name == "repair-cells-per-s") {
    auto rate = parse_integer(name, value, 0, kRepairCellsPerSecMax);
    if (!rate.is_ok()) return rate.status();
    config.repair_cells_per_s = *rate;
  } else if (name == "repair-interval-s") {
    auto interval = parse_integer(name, value, 1, kRepairIntervalSecMax);
    if (!interval.is_ok()) return interval.status();
    config.repair_interval_s = *interval;
  } else if (name == "hinted-handoff") {
    if (value == "on" || value == "yes") {
      config.hinted_handoff = true;
    } else if (value == "off" || value == "no") {
      config.hinted_handoff = false;
    } else {
      return Status::invalid_argument(
          fmt::format("invalid value '{}' for hinted-handoff: must be on or off", value));
    }
  } else if (name == "hint-max-age-s") {
    auto age = parse_integer(name, value, 1, kHintMaxAgeSecMax);
    if (!age.is_ok()) return age.status();
    config.hint_max_age_s = *age;
  } else if (name == "metrics-port") {
    auto port = parse_integer(name, value, 0, 65535);
    if (!port.is_ok()) return port.status();
    config.metrics_port = static_cast<uint16_t>(*port);
  } else if (name == "slowlog-log-slower-than") {
    auto micros = parse_integer(name, value, std::numeric_limits<int64_t>::min(),
                                std::numeric_limits<int64_t>::max());
    if (!micros.is_ok()) return micros.status();
    config.slowlog_log_slower_than_us = *micros;
  } else if (name == "slowlog-max-len") {
    auto length = parse_integer(name, value, 0, kSlowlogMaxLenMax);
    if (!length.is_ok()) return length.status();
    config.slowlog_max_len = *length;
  } else if (name == "latency-monitor-threshold") {
    auto millis = parse_integer(name, value, 0, std::numeric_limits<int64_t>::max());
    if (!millis.is_ok()) return millis.status();
    config.latency_monitor_threshold_ms = *millis;
  } else {
    return Status::invalid_argument(fmt::format("unknown setting '{}'", raw_name));
  }
  return Status::ok();
}

std::string setting_value(const ServerConfig& config, std::string_view raw_name) {
  const std::string name = normalize_name(raw_name);
  if (name == "port") return std::to_string(config.port);
  if (name == "bind") return config.bind;
  if (name == "data-dir") return config.data_dir;
  if (name == "durability") return std::string(storage::durability_name(config.durability));
  if (name == "requirepass") return config.requirepass;
  if (name == "maxclients") return std::to_string(config.maxclients);
  if (name == "timeout") return std::to_string(config.timeout_seconds);
  if (name == "threads") return std::to_string(config.threads);
  if (name == "proto-max-bulk-len") return format_bytes(config.proto_max_bulk_len);
  if (name == "client-query-buffer-limit") return format_bytes(config.client_query_buffer_limit);
  if (name == "log-level") return config.log_level;
  if (name == "cluster-secret") return config.cluster_secret;
  if (name == "machine-id") return std::to_string(config.machine_id);
  if (name == "table") return config.table_file;
  if (name == "orchestrator") return config.orchestrator;
  if (name == "workers") return std::to_string(config.workers);
  if (name == "request-timeout-ms") return std::to_string(config.request_timeout_ms);
  if (name == "read-speculate-ms") return std::to_string(config.read_speculate_ms);
  if (name == "max-clock-offset-ms") return std::to_string(config.max_clock_offset_ms);
  if (name == "rebuild-max-mb-per-s") return std::to_string(config.rebuild_max_mb_per_s);
  if (name == "repair-cells-per-s") return std::to_string(config.repair_cells_per_s);
  if (name == "repair-interval-s") return std::to_string(config.repair_interval_s);
  if (name == "hinted-handoff") return config.hinted_handoff ? "on" : "off";
  if (name == "hint-max-age-s") return std::to_string(config.hint_max_age_s);
  if (name == "block-cache-mb") return std::to_string(config.block_cache_mb);
  if (name == "metrics-port") return std::to_string(config.metrics_port);
  if (name == "slowlog-log-slower-than") return std::to_string(config.slowlog_log_slower_than_us);
  if (name == "slowlog-max-len") return std::to_string(config.slowlog_max_len);
  if (name == "latency-monitor-threshold") {
    return std::to_string(config.latency_monitor_threshold_ms);
  }
  return "";
}

size_t effective_threads(const ServerConfig& config) {
  if (config.threads != 0) return config.threads;
  // Half the cores: the other half is left to RocksDB's flush and compaction threads, the WAL
  // fsyncs and, on a developer's machine, the client. Measured on 2 cores with redis-benchmark
  // on the same machine: one loop serves durable SETs 30 % faster than two (bench/RESULTS.md).
  const size_t cores = std::max<size_t>(1, std::thread::hardware_concurrency());
  return std::clamp<size_t>(cores / 2, 1, net::kLoopThreadsMax);
}

Status apply_toml(std::string_view text, std::string_view source, ServerConfig& config) {
  toml::table table;
  try {
    table = toml::parse(text, source);
  } catch (const toml::parse_error& error) {
    const auto& where = error.source().begin;
    return Status::invalid_argument(fmt::format("{}:{}:{}: {}", source, where.line, where.column,
                                                error.description()));
  }
  for (const auto& [key, node] : table) {
    const std::string_view name = key.str();
    std::string value;
    if (const auto* text_value = node.as_string()) {
      value = text_value->get();
    } else if (const auto* integer = node.as_integer()) {
      value = std::to_string(integer->get());
    } else {
      return Status::invalid_argument(
          fmt::format("{}: '{}' must be a string or an integer", source, name));
    }
    const Status status = apply_setting(config, name, value);
    if (!status.is_ok()) {
      return Status::invalid_argument(fmt::format("{}: {}", source, status.message()));
    }
  }
  return Status::ok();
}

Status load_config_file(const std::string& path, ServerConfig& config) {
  std::ifstream file(path, std::ios::binary);
  if (!file) return Status::invalid_argument("cannot read config file " + path);
  std::ostringstream text;
  text << file.rdbuf();
  if (file.bad()) return Status::invalid_argument("cannot read config file " + path);
  config.config_file = path;
  return apply_toml(text.str(), path, config);
}

ServerFlags::ServerFlags() = default;
ServerFlags::~ServerFlags() = default;

void ServerFlags::add_to(CLI::App& app) {
  config_option_ =
      app.add_option("--config", config_file_, "TOML file of settings; flags override it");
  for (const auto& setting : kSettings) {
    auto flag = std::make_unique<Flag>();
    flag->name = std::string(setting.name);
    flag->option = app.add_option("--" + flag->name, flag->value, std::string(setting.help));
    flags_.push_back(std::move(flag));
  }
}

Result<ServerConfig> ServerFlags::resolve() const {
  ServerConfig config;
  if (config_option_ != nullptr && config_option_->count() > 0) {
    const Status status = load_config_file(config_file_, config);
    if (!status.is_ok()) return status;
  }
  for (const auto& flag : flags_) {
    if (flag->option->count() == 0) continue;
    const Status status = apply_setting(config, flag->name, flag->value);
    if (!status.is_ok()) return status;
  }
  if (!config.orchestrator.empty() && !config.cluster()) {
    return Status::invalid_argument(
        "--orchestrator needs --cluster-secret: an orchestrator manages cluster machines");
  }
  return config;
}

}  // namespace cairn::server
