#include "server/server_state.h"

#include <charconv>

#include "commands/keyspace_events.h"

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

// The sections INFO prints with no argument or "default", in Redis's order.
constexpr std::string_view kDefaultSections[] = {"server",      "clients", "memory",
                                                 "persistence", "stats",   "replication",
                                                 "cpu",         "cluster", "keyspace"};
// "all" and "everything" add the per-command sections, as Redis does.
constexpr std::string_view kAllSections[] = {
    "server", "clients",      "memory",       "persistence", "stats",   "replication",
    "cpu",    "commandstats", "latencystats", "cluster",     "keyspace"};

// Parameters CONFIG SET may change at run time.
constexpr std::string_view kSettableNames[] = {
    "requirepass",     "timeout",         "maxclients",
    "proto-max-bulk-len", "client-query-buffer-limit", "slowlog-log-slower-than",
    "slowlog-max-len", "latency-monitor-threshold"};

// Redis trims what SLOWLOG keeps of a command.
constexpr size_t kSlowlogArgsMax = 32;
constexpr size_t kSlowlogArgBytesMax = 128;

double cpu_seconds(const timeval& t) {
  return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6;
}

void add_specs(const commands::CommandSpec& spec, std::vector<const commands::CommandSpec*>& out) {
  out.push_back(&spec);
  for (const commands::CommandSpec& sub : spec.subcommands) add_specs(sub, out);
}

// The name INFO and /metrics show for a command: "get", "config|set".
std::string_view shown_name(const commands::CommandSpec& spec) { return spec.name; }

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
  // Every list write ends with its meta cell (docs/formats.md "Lists"): one notification per
  // command, on every replica that applies it, whichever machine coordinated it.
  engine_.set_field_observer([this](std::string_view key, std::string_view sub_key,
                                    const storage::Cell& cell) {
    if (cell.type == storage::ValueType::kList && !cell.tombstone && sub_key.size() == 1 &&
        sub_key[0] == storage::kListMetaNamespace) {
      blocked_clients_.notify(key);
    }
    // Every stream write ends with its meta cell (the lone field-namespace byte): XREAD and
    // XREADGROUP waiters of the key try again.
    if (cell.type == storage::ValueType::kStream && !cell.tombstone && sub_key.size() == 1 &&
        sub_key[0] == storage::kFieldNamespace) {
      blocked_clients_.notify(key);
    }
    // The key's own cell (DEL, a type change, a rename's source...): its waiters look again,
    // since a blocked XREADGROUP ends when its stream goes away, as in Redis.
    if (sub_key.empty()) blocked_clients_.notify(key);
  });
  engine_.set_clear_observer([this] { blocked_clients_.notify_all(); });
  settings_.maxclients.store(config_.maxclients);
  settings_.idle_timeout_ms.store(config_.timeout_seconds * 1000);
  settings_.proto_max_bulk_len.store(config_.proto_max_bulk_len);
  settings_.client_query_buffer_limit.store(config_.client_query_buffer_limit);
  settings_.slowlog_log_slower_than_us.store(config_.slowlog_log_slower_than_us);
  settings_.slowlog_max_len.store(config_.slowlog_max_len);
  settings_.latency_monitor_threshold_ms.store(config_.latency_monitor_threshold_ms);
  for (const auto& [name, spec] : table_.all()) add_specs(spec, specs_);
  for (size_t i = 0; i < specs_.size(); ++i) spec_index_.emplace(specs_[i], i);
  // Redis parameters whose value follows from Cairn's configuration.
  redis_settings_.put("appendonly",
                      config_.durability == storage::Durability::kAlways ? "yes" : "no");
  redis_settings_.put("databases", "1");
  redis_settings_.put("dir", config_.data_dir);
  for (size_t loop = 0; loop < loop_count_; ++loop) {
    loop_stats_[loop].commands = std::make_unique<CommandCounters[]>(specs_.size());
  }
  apply_pubsub_settings();
  coordinator::set_expired_observer([this](std::string_view key, int64_t expire_at_ms) {
    if ((keyspace_events_.load(std::memory_order_relaxed) & commands::kEventExpired) == 0) return;
    {
      constexpr size_t kExpiredRememberedMax = 65536;
      std::lock_guard lock(expired_mutex_);
      auto [it, added] = expired_sent_.try_emplace(std::string(key), expire_at_ms);
      if (!added && it->second == expire_at_ms) return;
      it->second = expire_at_ms;
      if (expired_sent_.size() > kExpiredRememberedMax) expired_sent_.clear();
    }
    notify_keyspace_event(commands::kEventExpired, "expired", key);
  });
}

ServerState::~ServerState() { coordinator::set_expired_observer(nullptr); }

void ServerState::apply_pubsub_settings() {
  if (const RedisSetting* limits = redis_settings_.find("client-output-buffer-limit")) {
    pubsub_.set_limits(parse_pubsub_limits(redis_settings_.get(*limits)));
  }
  if (const RedisSetting* events = redis_settings_.find("notify-keyspace-events")) {
    uint32_t flags = commands::parse_keyspace_event_flags(redis_settings_.get(*events));
    // Without K or E, or without any class, nothing is published (Redis's rule).
    if ((flags & (commands::kEventKeyspace | commands::kEventKeyevent)) == 0 ||
        (flags & ~(commands::kEventKeyspace | commands::kEventKeyevent)) == 0) {
      flags = 0;
    }
    keyspace_events_.store(flags, std::memory_order_relaxed);
  }
  if (const RedisSetting* max_keys = redis_settings_.find("tracking-table-max-keys")) {
    tracking_.set_max_keys(std::stoull(redis_settings_.get(*max_keys)));
  }
}

ClientSession* ServerState::find_session(uint64_t id) {
  std::lock_guard lock(clients_mutex_);
  const auto it = clients_.find(id);
  return it == clients_.end() ? nullptr : const_cast<ClientSession*>(it->second.session);
}

bool ServerState::pubsub_change(const commands::Session& session, commands::PubSubKind kind,
                                std::string_view channel, bool subscribe) {
  ClientSession* client = find_session(session.id);
  if (client == nullptr) return false;
  return pubsub_.change(client->subscriber(), kind, channel, subscribe);
}

std::vector<std::string> ServerState::pubsub_subscriptions(const commands::Session& session,
                                                           commands::PubSubKind kind) {
  ClientSession* client = find_session(session.id);
  if (client == nullptr) return {};
  return pubsub_.subscriptions(client->subscriber(), kind);
}

int64_t ServerState::publish(commands::PubSubKind kind, std::string_view channel,
                             std::string_view message) {
  const int64_t receivers = pubsub_.deliver(kind, channel, message);
  if (fanout_ != nullptr) fanout_->send(kind, channel, message);
  return receivers;
}

namespace {
// Invalidations travel to the other machines as pub/sub messages on this internal channel
// (docs/tracking.md): the payload is each key as "<length>:<bytes>", or "*" for a flush.
constexpr std::string_view kInvalidateChannel = PubSubFanout::kInvalidateChannel;

std::string encode_keys(const std::vector<std::string>& keys) {
  std::string out;
  for (const std::string& key : keys) {
    out += std::to_string(key.size());
    out += ':';
    out += key;
  }
  return out;
}

std::optional<std::vector<std::string>> decode_keys(std::string_view payload) {
  std::vector<std::string> keys;
  while (!payload.empty()) {
    const size_t colon = payload.find(':');
    if (colon == std::string_view::npos) return std::nullopt;
    size_t length = 0;
    const auto [end, ec] = std::from_chars(payload.data(), payload.data() + colon, length);
    if (ec != std::errc() || colon + 1 + length > payload.size()) return std::nullopt;
    keys.emplace_back(payload.substr(colon + 1, length));
    payload.remove_prefix(colon + 1 + length);
  }
  return keys;
}
}  // namespace

void ServerState::publish_local(commands::PubSubKind kind, std::string_view channel,
                                std::string_view message) {
  if (kind == commands::PubSubKind::kChannel && channel == kInvalidateChannel) {
    if (message == "*") {
      tracking_.flushed(0);
    } else if (std::optional<std::vector<std::string>> keys = decode_keys(message)) {
      tracking_.invalidate(0, *keys);
    }
    return;
  }
  pubsub_.deliver(kind, channel, message);
}

// A write forwarded to its shard leader may run dispatch() on both machines: both send (a
// duplicate invalidation is harmless, a missing one is not).
void ServerState::tracking_keys_written(const commands::Session& session,
                                        const std::vector<std::string>& keys) {
  tracking_.invalidate(session.id, keys);
  if (fanout_ != nullptr) {
    fanout_->send(commands::PubSubKind::kChannel, kInvalidateChannel, encode_keys(keys));
  }
}

void ServerState::tracking_flushed(const commands::Session& session) {
  tracking_.flushed(session.id);
  if (fanout_ != nullptr) {
    fanout_->send(commands::PubSubKind::kChannel, kInvalidateChannel, "*");
  }
}

void ServerState::deliver_invalidation(uint64_t id, bool redirected,
                                       std::shared_ptr<const PubSubMessage> message) {
  std::lock_guard lock(clients_mutex_);
  const auto it = clients_.find(id);
  if (it == clients_.end()) return;
  ClientSession& client = *it->second.session;
  // RESP2 has no pushes: only a REDIRECT target with a subscription takes it, as a message.
  if (client.push_protocol() == 2 && !(redirected && pubsub_.counts(client.subscriber()).any())) {
    return;
  }
  client.subscriber().push(std::move(message));
}

std::vector<std::string> ServerState::pubsub_channels(commands::PubSubKind kind,
                                                      std::string_view pattern) {
  return pubsub_.channels(kind, pattern);
}

int64_t ServerState::pubsub_numsub(commands::PubSubKind kind, std::string_view channel) {
  return pubsub_.numsub(kind, channel);
}

int64_t ServerState::pubsub_numpat() { return pubsub_.numpat(); }

void ServerState::notify_keyspace_event(uint32_t event_class, std::string_view event,
                                        std::string_view key) {
  const uint32_t flags = keyspace_events_.load(std::memory_order_relaxed);
  if ((flags & event_class) == 0) return;
  if ((flags & commands::kEventKeyspace) != 0) {
    publish(commands::PubSubKind::kChannel, fmt::format("__keyspace@0__:{}", key), event);
  }
  if ((flags & commands::kEventKeyevent) != 0) {
    publish(commands::PubSubKind::kChannel, fmt::format("__keyevent@0__:{}", event), key);
  }
}

void LoopStats::record_command(size_t index, uint64_t usec, bool failed) {
  if (index == kNoCommand || commands == nullptr) return;
  CommandCounters& counters = commands[index];
  bump(counters.calls);
  bump(counters.usec, usec);
  if (failed) bump(counters.failed);
  counters.latency_us.record_single_writer(usec);
}

size_t ServerState::command_index(const commands::CommandSpec* spec) const {
  if (spec == nullptr) return kNoCommand;
  auto it = spec_index_.find(spec);
  return it == spec_index_.end() ? kNoCommand : it->second;
}

void ServerState::after_command(const std::vector<std::string>& args, uint64_t usec,
                                const commands::Session& session) {
  const int64_t slower_than = settings_.slowlog_log_slower_than_us.load(std::memory_order_relaxed);
  if (slower_than >= 0 && usec >= static_cast<uint64_t>(slower_than)) {
    record_slow(args, usec, session);
  }
  const int64_t threshold_ms =
      settings_.latency_monitor_threshold_ms.load(std::memory_order_relaxed);
  if (threshold_ms > 0 && usec / 1000 >= static_cast<uint64_t>(threshold_ms)) {
    record_latency("command", usec / 1000);
  }
}

void ServerState::record_slow(const std::vector<std::string>& args, uint64_t usec,
                              const commands::Session& session) {
  commands::SlowlogEntry entry;
  entry.time_s = wall_clock_ms() / 1000;
  entry.duration_us = usec;
  // Passwords and the cluster secret never reach SLOWLOG (as Redis redacts AUTH and HELLO).
  const std::string name = args.empty() ? std::string() : lower(args[0]);
  const bool secret = name == "auth" || name == "hello" || name == "cairn.auth" ||
                      (name == "config" && std::any_of(args.begin(), args.end(), [](const auto& a) {
                         const std::string arg = lower(a);
                         return arg == "requirepass" || arg == "cluster-secret";
                       }));
  const size_t shown = secret ? std::min<size_t>(args.size(), name == "config" ? 2 : 1)
                              : std::min(args.size(), kSlowlogArgsMax);
  for (size_t i = 0; i < shown; ++i) {
    if (i + 1 == kSlowlogArgsMax && args.size() > kSlowlogArgsMax) {
      entry.args.push_back(fmt::format("... ({} more arguments)", args.size() - shown + 1));
      break;
    }
    const std::string& arg = args[i];
    entry.args.push_back(arg.size() <= kSlowlogArgBytesMax
                             ? arg
                             : fmt::format("{}... ({} more bytes)", arg.substr(0, kSlowlogArgBytesMax),
                                           arg.size() - kSlowlogArgBytesMax));
  }
  if (secret && args.size() > shown) entry.args.push_back("(redacted)");
  entry.client_address = session.peer_address;
  entry.client_name = session.name;
  const auto max_len = static_cast<size_t>(
      std::max<int64_t>(0, settings_.slowlog_max_len.load(std::memory_order_relaxed)));
  std::lock_guard lock(slow_mutex_);
  entry.id = next_slowlog_id_++;
  slowlog_.push_front(std::move(entry));
  while (slowlog_.size() > max_len) slowlog_.pop_back();
}

void ServerState::record_latency(std::string_view name, uint64_t ms) {
  const int64_t now_s = wall_clock_ms() / 1000;
  std::lock_guard lock(slow_mutex_);
  auto it = latency_.find(name);
  if (it == latency_.end()) {
    commands::LatencyEvent event;
    event.name = std::string(name);
    it = latency_.emplace(event.name, std::move(event)).first;
  }
  commands::LatencyEvent& event = it->second;
  event.latest_time_s = now_s;
  event.latest_ms = ms;
  event.max_ms = std::max(event.max_ms, ms);
  // One sample a second, the largest of that second (as Redis's latency monitor).
  if (!event.history.empty() && event.history.back().first == now_s) {
    event.history.back().second = std::max(event.history.back().second, ms);
  } else {
    event.history.emplace_back(now_s, ms);
    if (event.history.size() > kLatencyHistoryMax) event.history.erase(event.history.begin());
  }
}

std::vector<commands::SlowlogEntry> ServerState::slowlog_get(int64_t count) {
  std::lock_guard lock(slow_mutex_);
  const size_t wanted = count < 0 ? slowlog_.size()
                                  : std::min(slowlog_.size(), static_cast<size_t>(count));
  return std::vector<commands::SlowlogEntry>(slowlog_.begin(), slowlog_.begin() + wanted);
}

size_t ServerState::slowlog_len() {
  std::lock_guard lock(slow_mutex_);
  return slowlog_.size();
}

void ServerState::slowlog_reset() {
  std::lock_guard lock(slow_mutex_);
  slowlog_.clear();
}

std::vector<commands::LatencyEvent> ServerState::latency_events() {
  std::lock_guard lock(slow_mutex_);
  std::vector<commands::LatencyEvent> out;
  for (const auto& [name, event] : latency_) out.push_back(event);
  return out;
}

size_t ServerState::latency_reset(const std::vector<std::string>& events) {
  std::lock_guard lock(slow_mutex_);
  if (events.empty()) {
    const size_t count = latency_.size();
    latency_.clear();
    return count;
  }
  size_t count = 0;
  for (const std::string& name : events) count += latency_.erase(lower(name));
  return count;
}

std::vector<ServerState::CommandTotals> ServerState::command_totals() const {
  std::vector<CommandTotals> out;
  for (size_t i = 0; i < specs_.size(); ++i) {
    CommandTotals totals;
    totals.index = i;
    for (size_t loop = 0; loop < loop_count_; ++loop) {
      const CommandCounters& counters = loop_stats_[loop].commands[i];
      const uint64_t calls = counters.calls.load(std::memory_order_relaxed);
      if (calls == 0) continue;
      totals.calls += calls;
      totals.failed += counters.failed.load(std::memory_order_relaxed);
      totals.usec += counters.usec.load(std::memory_order_relaxed);
      totals.latency_us.add(counters.latency_us.snapshot());
    }
    if (totals.calls > 0) out.push_back(std::move(totals));
  }
  return out;
}

metrics::HistogramSnapshot ServerState::command_latency() const {
  metrics::HistogramSnapshot all;
  for (const CommandTotals& totals : command_totals()) all.add(totals.latency_us);
  return all;
}

uint64_t ServerState::net_input_bytes() const {
  uint64_t total = 0;
  for (size_t i = 0; i < loop_count_; ++i) {
    total += loop_stats_[i].net_input_bytes.load(std::memory_order_relaxed);
  }
  return total;
}

uint64_t ServerState::net_output_bytes() const {
  uint64_t total = 0;
  for (size_t i = 0; i < loop_count_; ++i) {
    total += loop_stats_[i].net_output_bytes.load(std::memory_order_relaxed);
  }
  return total;
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
    apply_pubsub_settings();
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
  settings_.slowlog_log_slower_than_us.store(config_.slowlog_log_slower_than_us);
  settings_.slowlog_max_len.store(config_.slowlog_max_len);
  settings_.latency_monitor_threshold_ms.store(config_.latency_monitor_threshold_ms);
  if (name == "slowlog-max-len") {
    std::lock_guard slow_lock(slow_mutex_);
    while (slowlog_.size() > static_cast<size_t>(config_.slowlog_max_len)) slowlog_.pop_back();
  }
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
                                  ClientSession* session) {
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

int ServerState::unblock_client(uint64_t id, bool error) {
  std::shared_ptr<net::Connection> connection;
  ClientSession* session = nullptr;
  {
    std::lock_guard lock(clients_mutex_);
    auto it = clients_.find(id);
    if (it != clients_.end()) {
      connection = it->second.connection.lock();
      session = it->second.session;
    }
  }
  // The connection reference keeps the session alive until the wake is posted.
  if (connection == nullptr || session == nullptr) return 0;
  return session->unblock(error) ? 1 : 0;
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
  const bool all = section == "all" || section == "everything";
  if (section.empty() || section == "default" || all) {
    std::string out;
    auto add = [&](std::string_view name) {
      if (!out.empty()) out += "\r\n";
      out += section_text(name);
    };
    if (all) {
      for (std::string_view name : kAllSections) add(name);
    } else {
      for (std::string_view name : kDefaultSections) add(name);
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
  if (section == "commandstats") return commandstats_section();
  if (section == "latencystats") return latencystats_section();
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
      "tracking_clients:{}\r\n",
      connected_clients(), settings_.maxclients.load(), tracking_.clients());
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

void ServerState::note_transaction(TransactionEnd end) {
  switch (end) {
    case TransactionEnd::kCommitted: transactions_committed_.fetch_add(1); return;
    case TransactionEnd::kWatchAborted: transactions_watch_aborted_.fetch_add(1); return;
    case TransactionEnd::kQueueErrors: transactions_queue_errors_.fetch_add(1); return;
    case TransactionEnd::kRefused: transactions_refused_.fetch_add(1); return;
  }
}

std::string ServerState::stats_section() {
  uint64_t errors = 0;
  for (const CommandTotals& totals : command_totals()) errors += totals.failed;
  size_t slowlog_length = 0;
  {
    std::lock_guard lock(slow_mutex_);
    slowlog_length = slowlog_.size();
  }
  const PubSubStats pubsub = pubsub_.stats();
  const PubSubFanoutStats fanout = fanout_ != nullptr ? fanout_->stats() : PubSubFanoutStats{};
  return fmt::format(
      "# Stats\r\ntotal_connections_received:{}\r\ntotal_commands_processed:{}\r\n"
      "instantaneous_ops_per_sec:{}\r\ntotal_net_input_bytes:{}\r\ntotal_net_output_bytes:{}\r\n"
      "rejected_connections:{}\r\nexpired_keys:0\r\nevicted_keys:0\r\nkeyspace_hits:0\r\n"
      "keyspace_misses:0\r\npubsub_channels:{}\r\npubsub_patterns:{}\r\n"
      "pubsubshard_channels:{}\r\n"
      "total_error_replies:{}\r\nslowlog_len:{}\r\n"
      "cairn_transactions_committed:{}\r\ncairn_transactions_watch_aborted:{}\r\n"
      "cairn_transactions_queue_errors:{}\r\ncairn_transactions_refused:{}\r\n"
      "cairn_pubsub_messages_delivered:{}\r\ncairn_pubsub_clients_disconnected:{}\r\n"
      "cairn_pubsub_peer_messages_sent:{}\r\ncairn_pubsub_peer_messages_dropped:{}\r\n",
      total_connections_.load(), total_commands(), instantaneous_ops_.load(), net_input_bytes(),
      net_output_bytes(), rejected_connections_.load(),
      pubsub_.channels(commands::PubSubKind::kChannel, "").size(), pubsub_.numpat(),
      pubsub_.channels(commands::PubSubKind::kShard, "").size(), errors, slowlog_length,
      transactions_committed_.load(), transactions_watch_aborted_.load(),
      transactions_queue_errors_.load(), transactions_refused_.load(), pubsub.messages_delivered,
      pubsub.clients_disconnected, fanout.messages_sent, fanout.messages_dropped);
}

// Every replica of a shard accepts writes, so each machine is a "master" to Redis tools; the
// other members of its shards are listed as its replicas (slaveN), with Cairn's shard view.
std::string ServerState::replication_section() {
  std::string out = "# Replication\r\nrole:master\r\n";
  const auto table = cluster_.coordinator != nullptr ? cluster_.coordinator->tables().current()
                                                     : nullptr;
  if (table == nullptr) return out + "connected_slaves:0\r\n";
  const uint64_t self = cluster_.coordinator->machine_id();
  std::vector<std::string> members;
  std::string shard_lines;
  size_t shards_held = 0;
  for (const topology::Shard& shard : table->shards()) {
    const char* role = nullptr;
    auto has = [self](const std::vector<topology::MachineId>& ids) {
      return std::find(ids.begin(), ids.end(), self) != ids.end();
    };
    if (has(shard.replicas)) role = shard.leader == self ? "leader" : "voting";
    else if (has(shard.extras)) role = "extra";
    else if (has(shard.joining)) role = "joining";
    if (role == nullptr) continue;
    shard_lines += fmt::format(
        "cairn_shard{}:id={},role={},leader={},voting={},extras={},joining={}\r\n", shards_held,
        shard.id, role, shard.leader, shard.replicas.size(), shard.extras.size(),
        shard.joining.size());
    ++shards_held;
    for (const auto* ids : {&shard.replicas, &shard.extras, &shard.joining}) {
      for (topology::MachineId id : *ids) {
        if (id == self) continue;
        const topology::Machine* machine = table->find_machine(id);
        if (machine == nullptr) continue;
        const size_t colon = machine->address.rfind(':');
        const std::string ip = colon == std::string::npos ? machine->address
                                                          : machine->address.substr(0, colon);
        const std::string port = colon == std::string::npos ? "0" : machine->address.substr(colon + 1);
        const bool up = machine->state == topology::MachineState::kUp;
        members.push_back(fmt::format("ip={},port={},state={},offset=0,lag=0,machine_id={}", ip,
                                      port, up ? "online" : "wait_bgsave", id));
      }
    }
  }
  out += fmt::format("connected_slaves:{}\r\n", members.size());
  for (size_t i = 0; i < members.size(); ++i) out += fmt::format("slave{}:{}\r\n", i, members[i]);
  out += fmt::format("cairn_epoch:{}\r\ncairn_shards_held:{}\r\n", table->epoch(), shards_held);
  return out + shard_lines;
}

std::string ServerState::commandstats_section() {
  std::string out = "# Commandstats\r\n";
  for (const CommandTotals& totals : command_totals()) {
    out += fmt::format(
        "cmdstat_{}:calls={},usec={},usec_per_call={:.2f},rejected_calls=0,failed_calls={}\r\n",
        shown_name(*specs_[totals.index]), totals.calls, totals.usec,
        static_cast<double>(totals.usec) / static_cast<double>(totals.calls), totals.failed);
  }
  return out;
}

std::string ServerState::latencystats_section() {
  std::string out = "# Latencystats\r\n";
  for (const CommandTotals& totals : command_totals()) {
    out += fmt::format("latency_percentiles_usec_{}:p50={:.3f},p99={:.3f},p99.9={:.3f}\r\n",
                       shown_name(*specs_[totals.index]),
                       static_cast<double>(totals.latency_us.percentile(0.50)),
                       static_cast<double>(totals.latency_us.percentile(0.99)),
                       static_cast<double>(totals.latency_us.percentile(0.999)));
  }
  return out;
}

void ServerState::write_metrics(metrics::PrometheusText& out) {
  out.gauge("cairn_uptime_seconds", "Seconds since this machine started.",
            static_cast<double>(monotonic_ms() - started_monotonic_ms_) / 1000.0);
  out.gauge("cairn_connected_clients", "Client connections open now.",
            static_cast<double>(connected_clients()));
  out.counter("cairn_connections_received_total", "Client connections accepted.",
              static_cast<double>(total_connections_.load()));
  out.counter("cairn_rejected_connections_total", "Client connections refused (maxclients).",
              static_cast<double>(rejected_connections_.load()));
  out.counter("cairn_commands_processed_total", "Commands served, all commands together.",
              static_cast<double>(total_commands()));
  const PubSubStats pubsub = pubsub_.stats();
  const PubSubFanoutStats fanout = fanout_ != nullptr ? fanout_->stats() : PubSubFanoutStats{};
  out.counter("cairn_pubsub_messages_delivered_total",
              "Pub/sub messages queued for this machine's subscribers (one per receiver).",
              static_cast<double>(pubsub.messages_delivered));
  out.counter("cairn_pubsub_clients_disconnected_total",
              "Subscribers closed by client-output-buffer-limit pubsub.",
              static_cast<double>(pubsub.clients_disconnected));
  out.counter("cairn_pubsub_peer_messages_sent_total",
              "Published messages another machine acknowledged (one per machine).",
              static_cast<double>(fanout.messages_sent));
  out.counter("cairn_pubsub_peer_messages_dropped_total",
              "Published messages not delivered to another machine (queue full, peer "
              "unreachable or slow).",
              static_cast<double>(fanout.messages_dropped));
  const std::vector<CommandTotals> totals = command_totals();
  out.family("cairn_commands_total", "counter",
             "Commands served, by command and outcome (ok, or error when the reply is an error).");
  for (const CommandTotals& t : totals) {
    const std::string name(shown_name(*specs_[t.index]));
    out.sample("cairn_commands_total", {{"command", name}, {"outcome", "ok"}},
               static_cast<double>(t.calls - t.failed));
    out.sample("cairn_commands_total", {{"command", name}, {"outcome", "error"}},
               static_cast<double>(t.failed));
  }
  out.family("cairn_command_duration_seconds", "histogram",
             "Time to run a command on this machine (replicas and peers included, network to "
             "the client excluded).");
  for (const CommandTotals& t : totals) {
    out.histogram_us("cairn_command_duration_seconds",
                     {{"command", std::string(shown_name(*specs_[t.index]))}}, t.latency_us);
  }
  out.counter("cairn_net_input_bytes_total", "Bytes read from client connections.",
              static_cast<double>(net_input_bytes()));
  out.counter("cairn_net_output_bytes_total", "Bytes written to client connections.",
              static_cast<double>(net_output_bytes()));
  const storage::EngineStats stats = engine_.stats();
  out.gauge("cairn_stored_bytes", "Bytes of live data stored on this machine (RocksDB estimate).",
            static_cast<double>(stats.approximate_bytes));
  out.gauge("cairn_keys",
            "Cells stored on this machine (RocksDB estimate: fields of rows and tombstones count).",
            static_cast<double>(engine_.estimated_keys()));
  out.counter("cairn_wal_syncs_total", "WAL fsyncs.", static_cast<double>(stats.wal_syncs));
  out.counter("cairn_cells_written_total", "Cells applied to storage.",
              static_cast<double>(stats.writes));
  out.gauge("cairn_resident_memory_bytes", "Resident set size of the process.",
            static_cast<double>(resident_bytes()));
  struct rusage self {};
  getrusage(RUSAGE_SELF, &self);
  out.family("cairn_cpu_seconds_total", "counter", "CPU time used by the process.");
  out.sample("cairn_cpu_seconds_total", {{"mode", "user"}}, cpu_seconds(self.ru_utime));
  out.sample("cairn_cpu_seconds_total", {{"mode", "system"}}, cpu_seconds(self.ru_stime));
  out.gauge("cairn_slowlog_length", "Entries in SLOWLOG.", static_cast<double>(slowlog_len()));
  if (cluster_.coordinator == nullptr) return;
  const auto table = cluster_.coordinator->tables().current();
  out.gauge("cairn_epoch", "Epoch of the routing table this machine follows.",
            static_cast<double>(table ? table->epoch() : 0));
  out.gauge("cairn_shards", "Shards in the routing table this machine follows.",
            static_cast<double>(table ? table->shards().size() : 0));
  size_t peers_up = 0;
  for (const net::PeerStats& peer : cluster_.peers->stats()) peers_up += peer.connected ? 1 : 0;
  out.gauge("cairn_peers_connected", "Machines this one holds a connection to.",
            static_cast<double>(peers_up));
  uint64_t hints_pending = 0;
  for (const auto& [target, count] : engine_.hint_counts()) hints_pending += count;
  out.gauge("cairn_hints_pending", "Hinted writes waiting for their machine.",
            static_cast<double>(hints_pending));
  const coordinator::ClusterStats cs = cluster_.coordinator->stats();
  out.counter("cairn_hints_stored_total", "Writes stored as hints for an unreachable replica.",
              static_cast<double>(cs.hints_stored));
  out.counter("cairn_hints_replayed_total", "Hints delivered to their machine.",
              static_cast<double>(cs.hints_replayed));
  out.counter("cairn_read_repairs_total", "Replicas repaired by reads that found them behind.",
              static_cast<double>(cs.read_repairs));
  out.counter("cairn_coordinator_reads_total", "Reads this machine coordinated.",
              static_cast<double>(cs.reads));
  out.counter("cairn_coordinator_writes_total", "Writes this machine coordinated.",
              static_cast<double>(cs.writes));
  out.counter("cairn_uncertain_writes_total", "Writes answered UNCERTAIN (too few replicas).",
              static_cast<double>(cs.uncertain_writes));
  out.counter("cairn_unavailable_reads_total", "Reads answered UNAVAILABLE (too few replicas).",
              static_cast<double>(cs.unavailable_reads));
  out.counter("cairn_table_refreshes_total", "Routing tables fetched after a STALEEPOCH.",
              static_cast<double>(cs.table_refreshes));
  if (cluster_.runner != nullptr) {
    out.counter("cairn_forwarded_to_leader_total", "Commands sent to their shard's leader.",
                static_cast<double>(cluster_.runner->forwarded()));
  }
  if (cluster_.extra_metrics) cluster_.extra_metrics(out);
}

std::string ServerState::cpu_section() {
  struct rusage self {};
  getrusage(RUSAGE_SELF, &self);
  struct rusage children {};
  getrusage(RUSAGE_CHILDREN, &children);
  return fmt::format(
      "# CPU\r\nused_cpu_sys:{:.6f}\r\nused_cpu_user:{:.6f}\r\nused_cpu_sys_children:{:.6f}\r\n"
      "used_cpu_user_children:{:.6f}\r\n",
      cpu_seconds(self.ru_stime), cpu_seconds(self.ru_utime), cpu_seconds(children.ru_stime),
      cpu_seconds(children.ru_utime));
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
