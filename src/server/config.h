#pragma once
// Settings of `cairn server` (docs/operations.md). They come from the defaults, then a TOML file
// (--config FILE), then command-line flags, each overriding the one before. Every setting has one
// name, used as the flag (--name), the TOML key (name or name_with_underscores) and the CONFIG
// GET/SET parameter. Unknown names and bad values are start-up errors, never ignored.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "storage/engine.h"

namespace CLI {
class App;
class Option;
}  // namespace CLI

namespace cairn::server {

inline constexpr uint64_t kMiB = 1024 * 1024;
inline constexpr uint64_t kGiB = 1024 * kMiB;

struct ServerConfig {
  uint16_t port = 6380;                // 0 picks a free port (tests)
  std::string bind = "127.0.0.1";
  std::string data_dir = "./cairn-data";
  storage::Durability durability = storage::Durability::kAlways;
  std::string requirepass;             // "" = no password
  int64_t maxclients = 10000;
  int64_t timeout_seconds = 0;         // close clients idle this long; 0 = never
  size_t threads = 0;                  // event-loop threads; 0 = half the cores (1 to 64)
  uint64_t proto_max_bulk_len = 512 * kMiB;
  uint64_t client_query_buffer_limit = 1 * kGiB;
  std::string log_level = "info";      // an spdlog level name
  std::string config_file;             // the --config file, "" if none (INFO reports it)
  bool handle_signals = false;         // stop on SIGINT/SIGTERM; the cairn binary sets it

  // Cluster mode (docs/formats.md "Internal protocol"). A secret turns it on: the machine then
  // serves other machines' CAIRN.* commands and coordinates client commands over the cluster.
  std::string cluster_secret;          // "" = single machine
  uint64_t machine_id = 0;             // 0 = the id in <data-dir>/machine-id (random if none)
  std::string table_file;              // routing table JSON installed at start ("" = none)
  // "host:port" of the orchestrator's HTTP API ("" = none: tables are pushed by hand). Needs a
  // cluster secret. The machine registers, heartbeats and follows the orchestrator's tables.
  std::string orchestrator;
  size_t workers = 32;                 // threads running client commands in cluster mode
  int64_t request_timeout_ms = 1000;   // a coordinator waits this long for its replicas
  // A read asks R replicas, and the others after this long without their answers (0: all at
  // once; coordinator::ClusterOptions::read_speculate_ms).
  int64_t read_speculate_ms = 50;
  // With an orchestrator: past this offset from the orchestrator's clock the machine coordinates
  // no writes (docs/operations.md "Clock offset"; 0 = no bound).
  int64_t max_clock_offset_ms = 500;
  // RocksDB's block cache: data blocks, and the index and Bloom filter blocks (docs/operations.md).
  int64_t block_cache_mb = 32;
  // The rebuild of a replaced replica (server/rebuilder.h) copies at most this many MiB per
  // second (0 = unlimited).
  int64_t rebuild_max_mb_per_s = 0;
  // Anti-entropy repair (server/repairer.h): cells per second it may digest and pull (0: off),
  // and the least time between two passes over one shard.
  int64_t repair_cells_per_s = 20'000;
  int64_t repair_interval_s = 60;
  // Hinted handoff (docs/cluster.md): a coordinator keeps the writes a replica missed and
  // replays them. Off: only read repair and anti-entropy bring such a replica up to date.
  bool hinted_handoff = true;
  // A hint older than this is dropped, not replayed; deletions are purged no earlier than this
  // after every replica held them (docs/cluster.md "Tombstone purge").
  int64_t hint_max_age_s = 3 * 3600;
  // Tests only (no flag): run client commands on workers in single-machine mode too.
  bool force_workers = false;

  uint16_t metrics_port = 0;                    // 0: no /metrics listener
  int64_t slowlog_log_slower_than_us = 10'000;  // negative: SLOWLOG records nothing
  int64_t slowlog_max_len = 128;
  int64_t latency_monitor_threshold_ms = 0;     // 0: LATENCY records nothing

  bool cluster() const { return !cluster_secret.empty(); }
};

inline constexpr size_t kServerWorkersMax = 256;
inline constexpr int64_t kRequestTimeoutMsMax = 600'000;
inline constexpr int64_t kMaxClockOffsetMsMax = 86'400'000;
inline constexpr int64_t kBlockCacheMbMin = 8;
inline constexpr int64_t kBlockCacheMbMax = 1'048'576;
inline constexpr int64_t kRebuildMaxMbPerSecMax = 1'000'000;
inline constexpr int64_t kRepairCellsPerSecMax = 100'000'000;
inline constexpr int64_t kRepairIntervalSecMax = 7 * 86'400;
// Below the 10-day tombstone grace period, which a hint must never outlive.
inline constexpr int64_t kHintMaxAgeSecMax = 7 * 86'400;
inline constexpr int64_t kSlowlogMaxLenMax = 100'000;

// The names of every setting, in the order `--help` and CONFIG GET * list them.
const std::vector<std::string_view>& setting_names();

// Sets one setting from its text form ("512mb", "always"...). Errors name the setting and say
// what is accepted. Accepts a name with '_' in place of '-'.
Status apply_setting(ServerConfig& config, std::string_view name, std::string_view value);

// Applies a TOML document over `config`. `source` names the document in error messages.
Status apply_toml(std::string_view text, std::string_view source, ServerConfig& config);
Status load_config_file(const std::string& path, ServerConfig& config);

// The current value of a setting in its text form (CONFIG GET); "" for unknown names.
std::string setting_value(const ServerConfig& config, std::string_view name);

// Threads to run when config.threads is 0: the number of cores, capped at 64.
size_t effective_threads(const ServerConfig& config);

// Parses a byte count the way redis.conf does: "1024", "64k", "64kb", "512mb", "1gb"
// (k = 1000, kb = 1024, and so on). Case-insensitive.
Result<uint64_t> parse_memory(std::string_view text);

// The flags of `cairn server`, bound to a CLI11 (sub)command. After parsing, resolve() reads the
// --config file, if any, and applies the flags that were given over it.
class ServerFlags {
 public:
  ServerFlags();
  ~ServerFlags();
  void add_to(CLI::App& app);
  Result<ServerConfig> resolve() const;

 private:
  struct Flag {
    std::string name;
    std::string value;
    CLI::Option* option = nullptr;
  };
  std::vector<std::unique_ptr<Flag>> flags_;
  std::string config_file_;
  CLI::Option* config_option_ = nullptr;
};

}  // namespace cairn::server
