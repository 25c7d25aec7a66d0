#include "server/server_state.h"

#include <sys/resource.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "common/clock.h"
#include "server/client_session.h"
#include "server/cluster_runner.h"

namespace cairn::server {

namespace {

char fold(char c, bool ignore_case) {
  return ignore_case ? static_cast<char>(std::tolower(static_cast<unsigned char>(c))) : c;
}

// Matches one character class starting at pattern[start] == '['; sets `next` past its ']'.
bool match_class(std::string_view pattern, size_t start, char c, bool ignore_case, size_t& next) {
  size_t i = start + 1;
  const bool negate = i < pattern.size() && pattern[i] == '^';
  if (negate) ++i;
  bool matched = false;
  while (i < pattern.size() && pattern[i] != ']') {
    if (pattern[i] == '\\' && i + 1 < pattern.size()) {
      matched |= fold(pattern[i + 1], ignore_case) == c;
      i += 2;
    } else if (i + 2 < pattern.size() && pattern[i + 1] == '-' && pattern[i + 2] != ']') {
      char low = fold(pattern[i], ignore_case);
      char high = fold(pattern[i + 2], ignore_case);
      if (low > high) std::swap(low, high);
      matched |= c >= low && c <= high;
      i += 3;
    } else {
      matched |= fold(pattern[i], ignore_case) == c;
      ++i;
    }
  }
  next = i < pattern.size() ? i + 1 : i;  // an unterminated class ends with the pattern
  return negate ? !matched : matched;
}

std::string human_bytes(uint64_t bytes) {
  const double value = static_cast<double>(bytes);
  if (bytes < 1024) return fmt::format("{}B", bytes);
  if (bytes < 1024 * 1024) return fmt::format("{:.2f}K", value / 1024);
  if (bytes < 1024ull * 1024 * 1024) return fmt::format("{:.2f}M", value / (1024 * 1024));
  return fmt::format("{:.2f}G", value / (1024.0 * 1024 * 1024));
}

uint64_t resident_bytes() {
  std::ifstream statm("/proc/self/statm");
  uint64_t size_pages = 0;
  uint64_t resident_pages = 0;
  if (!(statm >> size_pages >> resident_pages)) return 0;
  return resident_pages * static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
}

std::string executable_path() {
  std::error_code error;
  auto path = std::filesystem::read_symlink("/proc/self/exe", error);
  return error ? std::string() : path.string();
}

std::string lower(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// The sections INFO prints with no argument, "all" or "everything", in Redis's order.
constexpr std::string_view kDefaultSections[] = {"server",      "clients", "memory",
                                                 "persistence", "stats",   "replication",
                                                 "cpu",         "cluster", "keyspace"};

// Parameters CONFIG SET may change at run time.
constexpr std::string_view kSettableNames[] = {"requirepass", "timeout", "maxclients",
                                               "proto-max-bulk-len", "client-query-buffer-limit"};

bool is_cairn_setting(std::string_view name) {
  const std::vector<std::string_view>& names = setting_names();
  return std::find(names.begin(), names.end(), name) != names.end();
}

// CONFIG SET loglevel: Redis's levels on spdlog's.
void apply_log_level(std::string_view level) {
  if (level == "debug") {
    spdlog::set_level(spdlog::level::debug);
  } else if (level == "verbose") {
    spdlog::set_level(spdlog::level::info);
  } else if (level == "notice") {
    spdlog::set_level(spdlog::level::info);
  } else if (level == "warning") {
    spdlog::set_level(spdlog::level::warn);
  }
}

}  // namespace

bool glob_match(std::string_view pattern, std::string_view text, bool ignore_case) {
  // Greedy matching with one backtrack point (the last '*'): linear in practice and never
  // recursive, so a hostile pattern cannot blow the stack.
  constexpr size_t kNone = std::string_view::npos;
  size_t p = 0;
  size_t t = 0;
  size_t star = kNone;
  size_t star_text = 0;
  while (t < text.size()) {
    if (p < pattern.size()) {
      const char pc = pattern[p];
      const char tc = fold(text[t], ignore_case);
      if (pc == '*') {
        star = p++;
        star_text = t;
        continue;
      }
      size_t next = p + 1;
      bool ok = false;
      if (pc == '?') {
        ok = true;
      } else if (pc == '[') {
        ok = match_class(pattern, p, tc, ignore_case, next);
      } else if (pc == '\\' && p + 1 < pattern.size()) {
        ok = fold(pattern[p + 1], ignore_case) == tc;
        next = p + 2;
      } else {
        ok = fold(pc, ignore_case) == tc;
      }
      if (ok) {
        p = next;
        ++t;
        continue;
      }
    }
    if (star == kNone) return false;
    p = star + 1;
    t = ++star_text;
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

ServerState::ServerState(ServerConfig config, size_t loop_count, storage::Engine& engine,
                         coordinator::Keyspace& keyspace, std::function<void()> on_shutdown)
    : engine_(engine), keyspace_(keyspace), table_(commands::default_table()),
      on_shutdown_(std::move(on_shutdown)), started_monotonic_ms_(monotonic_ms()),
      config_(std::move(config)), loop_stats_(new LoopStats[loop_count]),
      loop_count_(loop_count) {
  settings_.maxclients.store(config_.maxclients);
  settings_.idle_timeout_ms.store(config_.timeout_seconds * 1000);
  settings_.proto_max_bulk_len.store(config_.proto_max_bulk_len);
  settings_.client_query_buffer_limit.store(config_.client_query_buffer_limit);
  // Redis parameters whose value follows from Cairn's configuration.
  redis_settings_.put("appendonly",
                      config_.durability == storage::Durability::kAlways ? "yes" : "no");
  redis_settings_.put("databases", "1");
  redis_settings_.put("dir", config_.data_dir);
}

std::vector<std::pair<std::string, std::string>> ServerState::config_get(
    std::string_view pattern) {
  std::vector<std::pair<std::string, std::string>> out;
  std::lock_guard lock(config_mutex_);
  for (std::string_view name : setting_names()) {
    // The cluster secret admits a connection as a machine of the cluster: never shown.
    if (name == "cluster-secret") continue;
    if (glob_match(pattern, name, true)) {
      out.emplace_back(std::string(name), setting_value(config_, name));
    }
  }
  // redis-server 7.0's parameters that are not Cairn's own (docs/protocol.md "CONFIG").
  for (const RedisSetting& setting : redis_settings()) {
    if (is_cairn_setting(setting.name)) continue;
    if (glob_match(pattern, setting.name, true)) {
      out.emplace_back(std::string(setting.name), redis_settings_.get(setting));
    }
  }
  return out;
}

Status ServerState::config_set(std::string_view raw_name, std::string_view value) {
  const std::string name = lower(raw_name);
  const bool settable = std::find(std::begin(kSettableNames), std::end(kSettableNames), name) !=
                        std::end(kSettableNames);
  if (!settable) {
    std::lock_guard lock(config_mutex_);
    const RedisSetting* redis = redis_settings_.find(name);
    if (redis != nullptr && is_cairn_setting(redis->name)) {
      // Cairn's own (port, bind...): fixed while the server runs.
      return Status::invalid_argument("can't set immutable config");
    }
    if (redis == nullptr) {
      // kNotFound: the handler answers Redis's "Unknown option or number of arguments ..." text.
      return Status::not_found(
          fmt::format("Unknown option or number of arguments for CONFIG SET - '{}'", raw_name));
    }
    if (Status status = redis_settings_.set(*redis, value); !status.is_ok()) return status;
    if (redis->name == "loglevel") apply_log_level(redis_settings_.get(*redis));
    return Status::ok();
  }
  std::lock_guard lock(config_mutex_);
  // Redis's own check and error text first (e.g. "argument couldn't be parsed into an integer").
  if (const RedisSetting* redis = redis_settings_.find(name); redis != nullptr) {
    RedisSettings scratch = redis_settings_;
    if (Status status = scratch.set(*redis, value); !status.is_ok()) return status;
  }
  ServerConfig updated = config_;
  const Status status = apply_setting(updated, name, value);
  // The handler wraps the reason in Redis's "CONFIG SET failed (possibly related to ...)".
  if (!status.is_ok()) return status;
  config_ = std::move(updated);
  settings_.maxclients.store(config_.maxclients);
  settings_.idle_timeout_ms.store(config_.timeout_seconds * 1000);
  settings_.proto_max_bulk_len.store(config_.proto_max_bulk_len);
  settings_.client_query_buffer_limit.store(config_.client_query_buffer_limit);
  return Status::ok();
}

std::string ServerState::cluster_secret() {
  std::lock_guard lock(config_mutex_);
  return config_.cluster_secret;
}

Status ServerState::migration_finish(uint64_t migration,
                                     const std::vector<std::pair<uint64_t, uint64_t>>& source_lsns,
                                     int timeout_ms) {
  if (!cluster_.migration_finish) {
    return Status::unavailable("NOTREADY this machine runs no migrations");
  }
  return cluster_.migration_finish(migration, source_lsns, timeout_ms);
}

std::string ServerState::requirepass() {
  std::lock_guard lock(config_mutex_);
  return config_.requirepass;
}

void ServerState::request_shutdown() {
  spdlog::info("shutdown requested by a client");
  on_shutdown_();
}

std::string ServerState::version() { return std::string(kRedisVersion); }

bool ServerState::admit_client() {
  const auto maxclients = static_cast<size_t>(settings_.maxclients.load());
  if (connected_.load(std::memory_order_relaxed) >= maxclients) {
    // As redis-server: a rejected connection counts in rejected_connections only.
    rejected_connections_.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  total_connections_.fetch_add(1, std::memory_order_relaxed);
  connected_.fetch_add(1, std::memory_order_relaxed);
  return true;
}

void ServerState::register_client(const std::shared_ptr<net::Connection>& connection,
                                  const ClientSession* session) {
  std::lock_guard lock(clients_mutex_);
  clients_[connection->id()] = ClientEntry{connection, session};
}

void ServerState::unregister_client(uint64_t id) {
  std::lock_guard lock(clients_mutex_);
  clients_.erase(id);
}

std::string ServerState::client_list() {
  // Take strong references under the lock, format outside it: each session publishes its own
  // state, so formatting needs no lock of ours.
  std::vector<std::pair<std::shared_ptr<net::Connection>, const ClientSession*>> clients;
  {
    std::lock_guard lock(clients_mutex_);
    clients.reserve(clients_.size());
    for (const auto& [id, entry] : clients_) {
      if (auto connection = entry.connection.lock()) clients.emplace_back(connection, entry.session);
    }
  }
  std::string out;
  for (const auto& [connection, session] : clients) out += session->describe();
  return out;
}

std::string ServerState::client_info(const commands::Session& session) {
  std::shared_ptr<net::Connection> connection;
  const ClientSession* client = nullptr;
  {
    std::lock_guard lock(clients_mutex_);
    auto it = clients_.find(session.id);
    if (it != clients_.end()) {
      connection = it->second.connection.lock();
      client = it->second.session;
    }
  }
  if (connection == nullptr) return "";
  return client->describe_current(session);
}

int ServerState::kill_client(uint64_t id) {
  std::shared_ptr<net::Connection> connection;
  {
    std::lock_guard lock(clients_mutex_);
    auto it = clients_.find(id);
    if (it != clients_.end()) connection = it->second.connection.lock();
  }
  if (connection == nullptr) return 0;
  connection->kill();  // posted to the client's own loop
  return 1;
}

uint64_t ServerState::total_commands() const {
  uint64_t total = 0;
  for (size_t i = 0; i < loop_count_; ++i) {
    total += loop_stats_[i].commands_processed.load(std::memory_order_relaxed);
  }
  return total;
}

void ServerState::sample_ops(int64_t now_ms) {
  const uint64_t commands = total_commands();
  if (last_sample_ms_ != 0 && now_ms > last_sample_ms_) {
    const uint64_t rate =
        (commands - last_sample_commands_) * 1000 / static_cast<uint64_t>(now_ms - last_sample_ms_);
    ops_samples_[ops_sample_index_] = rate;
    ops_sample_index_ = (ops_sample_index_ + 1) % kOpsSamples;
    uint64_t sum = 0;
    for (uint64_t sample : ops_samples_) sum += sample;
    instantaneous_ops_.store(sum / kOpsSamples, std::memory_order_relaxed);
  }
  last_sample_ms_ = now_ms;
  last_sample_commands_ = commands;
}

std::string ServerState::info(std::string_view raw_section) {
  const std::string section = lower(raw_section);
  if (section.empty() || section == "default" || section == "all" || section == "everything") {
    std::string out;
    for (std::string_view name : kDefaultSections) {
      if (!out.empty()) out += "\r\n";
      out += section_text(name);
    }
    return out;
  }
  return section_text(section);
}

std::string ServerState::section_text(std::string_view section) {
  if (section == "server") return server_section();
  if (section == "clients") return clients_section();
  if (section == "memory") return memory_section();
  if (section == "persistence") return persistence_section();
  if (section == "stats") return stats_section();
  if (section == "replication") return replication_section();
  if (section == "cpu") return cpu_section();
  if (section == "cluster") return cluster_section();
  if (section == "keyspace") return keyspace_section();
  return "";
}

std::string ServerState::server_section() {
  struct utsname name {};
  uname(&name);
  const int64_t uptime_s = (monotonic_ms() - started_monotonic_ms_) / 1000;
  std::string config_file;
  {
    std::lock_guard lock(config_mutex_);
    if (!config_.config_file.empty()) {
      std::error_code error;
      auto absolute = std::filesystem::absolute(config_.config_file, error);
      config_file = error ? config_.config_file : absolute.string();
    }
  }
  return fmt::format(
      "# Server\r\nredis_version:{}\r\ncairn_version:{}\r\nredis_mode:standalone\r\n"
      "os:{} {} {}\r\narch_bits:64\r\nmultiplexing_api:epoll\r\nprocess_id:{}\r\n"
      "tcp_port:{}\r\nuptime_in_seconds:{}\r\nuptime_in_days:{}\r\nio_threads_active:0\r\n"
      "event_loops:{}\r\nexecutable:{}\r\nconfig_file:{}\r\n",
      kRedisVersion, kCairnVersion, name.sysname, name.release, name.machine,
      static_cast<int>(getpid()), port_.load(), uptime_s, uptime_s / 86400, loop_count_,
      executable_path(), config_file);
}

std::string ServerState::clients_section() {
  return fmt::format(
      "# Clients\r\nconnected_clients:{}\r\nmaxclients:{}\r\nblocked_clients:0\r\n"
      "tracking_clients:0\r\n",
      connected_clients(), settings_.maxclients.load());
}

std::string ServerState::memory_section() {
  const storage::EngineStats stats = engine_.stats();
  const uint64_t rss = resident_bytes();
  return fmt::format(
      "# Memory\r\nused_memory:{}\r\nused_memory_human:{}\r\nused_memory_rss:{}\r\n"
      "used_memory_rss_human:{}\r\nmaxmemory:0\r\nmaxmemory_human:0B\r\n"
      "maxmemory_policy:noeviction\r\n",
      stats.approximate_bytes, human_bytes(stats.approximate_bytes), rss, human_bytes(rss));
}

std::string ServerState::persistence_section() {
  const storage::EngineStats stats = engine_.stats();
  const storage::Durability durability = engine_.options().durability;
  return fmt::format(
      "# Persistence\r\nloading:0\r\ndurability:{}\r\nwal_syncs:{}\r\nwal_sequence:{}\r\n"
      "rdb_changes_since_last_save:0\r\nrdb_bgsave_in_progress:0\r\naof_enabled:{}\r\n"
      "aof_rewrite_in_progress:0\r\n",
      storage::durability_name(durability), stats.wal_syncs, stats.latest_sequence,
      durability == storage::Durability::kAlways ? 1 : 0);
}

std::string ServerState::stats_section() {
  return fmt::format(
      "# Stats\r\ntotal_connections_received:{}\r\ntotal_commands_processed:{}\r\n"
      "instantaneous_ops_per_sec:{}\r\nrejected_connections:{}\r\nexpired_keys:0\r\n"
      "evicted_keys:0\r\npubsub_channels:0\r\npubsub_patterns:0\r\n",
      total_connections_.load(), total_commands(), instantaneous_ops_.load(),
      rejected_connections_.load());
}

std::string ServerState::replication_section() {
  return "# Replication\r\nrole:master\r\nconnected_slaves:0\r\n";
}

std::string ServerState::cpu_section() {
  struct rusage self {};
  getrusage(RUSAGE_SELF, &self);
  const auto seconds = [](const timeval& t) {
    return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6;
  };
  return fmt::format("# CPU\r\nused_cpu_sys:{:.6f}\r\nused_cpu_user:{:.6f}\r\n",
                     seconds(self.ru_stime), seconds(self.ru_utime));
}

std::string ServerState::cluster_section() {
  // A cluster machine speaks the Redis Cluster protocol (CLUSTER SLOTS...); a single machine
  // answers it as a Redis without cluster support does.
  if (cluster_.coordinator == nullptr) {
    return "# Cluster\r\ncluster_enabled:0\r\ncairn_cluster_mode:0\r\n";
  }
  std::string out = "# Cluster\r\ncluster_enabled:1\r\n";
  const auto table = cluster_.coordinator->tables().current();
  size_t peers_up = 0;
  size_t peers_known = 0;
  for (const net::PeerStats& peer : cluster_.peers->stats()) {
    ++peers_known;
    if (peer.connected) ++peers_up;
  }
  uint64_t hints_pending = 0;
  for (const auto& [target, count] : engine_.hint_counts()) hints_pending += count;
  const coordinator::ClusterStats stats = cluster_.coordinator->stats();
  out += fmt::format(
      "cairn_cluster_mode:1\r\nmachine_id:{}\r\nepoch:{}\r\nshards:{}\r\nmachines:{}\r\n"
      "replication_factor:{}\r\npeers_connected:{}\r\npeers_known:{}\r\nhints_pending:{}\r\n"
      "coordinator_writes:{}\r\ncoordinator_reads:{}\r\nuncertain_writes:{}\r\n"
      "unavailable_reads:{}\r\nread_repairs:{}\r\nhints_stored:{}\r\nhints_replayed:{}\r\n"
      "redirects:{}\r\ntable_refreshes:{}\r\nrestamps:{}\r\n",
      cluster_.coordinator->machine_id(), table ? table->epoch() : 0,
      table ? table->shards().size() : 0, table ? table->machines().size() : 0,
      table ? table->replication_factor() : 0, peers_up, peers_known, hints_pending,
      stats.writes, stats.reads, stats.uncertain_writes, stats.unavailable_reads,
      stats.read_repairs, stats.hints_stored, stats.hints_replayed, stats.redirects,
      stats.table_refreshes, stats.restamps);
  if (cluster_.runner != nullptr) {
    out += fmt::format("forwarded_to_leader:{}\r\nforwards_served:{}\r\n",
                       cluster_.runner->forwarded(), cluster_.runner->forwards_served());
  }
  if (cluster_.extra_info) out += cluster_.extra_info();
  return out;
}

std::string ServerState::keyspace_section() {
  std::string out = "# Keyspace\r\n";
  auto keys = keyspace_.count();
  if (!keys.is_ok() || *keys == 0) return out;
  // Expiring keys are counted by a scan: O(keys), acceptable for INFO on one machine.
  uint64_t expires = 0;
  coordinator::ScanRequest request;
  request.count = 1000;
  request.filter = [&expires](std::string_view, const storage::Cell& cell) {
    if (cell.expire_at_ms != 0) ++expires;
    return false;
  };
  // Bounded: each page advances the cursor; the cap only guards against a cursor bug.
  constexpr int kPagesMax = 1 << 24;
  for (int page = 0; page < kPagesMax; ++page) {
    auto result = keyspace_.scan(request);
    if (!result.is_ok() || result->next_cursor == 0) break;
    request.cursor = result->next_cursor;
  }
  // A cluster machine counts only the keys it stores (as a replica of its shards): counting the
  // whole cluster would ask every machine. scope=local says so.
  out += fmt::format("db0:keys={},expires={},avg_ttl=0{}\r\n", *keys, expires,
                     cluster_.coordinator != nullptr ? ",scope=local" : "");
  return out;
}

}  // namespace cairn::server
