#pragma once
// `cairn admin`: inspect and change a cluster through its orchestrator's HTTP API.
//
//   cairn admin [--orchestrator 127.0.0.1:7700[,HOST:PORT...]] [--json] [--cluster-secret S]
//               status | machines | shards | ring | events [--since N] | drain ID | remove ID
//               load [--ranges] [--history]
//               migrations [pause|resume|cancel ID | rate ID BYTES_PER_SEC]
//               split SHARD [--at TOKEN] [--max-rate R] | move RANGE --to SHARD [--max-rate R]
//
// Rates accept a unit: 50MB (10^6), 1GiB (2^30), 800K, plain bytes/s. RANGE is 0xSTART-0xEND
// or 0xSTART naming a range of the table (end 0x0 = the end of the ring); tokens may be decimal.
//
// Reads print aligned human-readable tables; --json (before or after the subcommand) prints the
// API's JSON as it came. drain and
// remove are authenticated with the cluster secret: --cluster-secret, else the environment
// variable CAIRN_CLUSTER_SECRET, else the file ./cairn-data/secret that `cairn dev` keeps.
// Exit status: 0 on success, 1 when the orchestrator is unreachable or refuses (the reason goes
// to stderr), 2 for bad usage (CLI11).

#include <cstdint>
#include <iosfwd>
#include <optional>
#include <string>
#include <string_view>

namespace CLI {
class App;
}  // namespace CLI

namespace cairn::cli {

struct AdminOptions {
  std::string orchestrator = "127.0.0.1:7700";
  bool json = false;
  std::string cluster_secret;
  std::string secret_file = "./cairn-data/secret";
  int timeout_ms = 3000;
  std::string command;     // status, machines, ...
  uint64_t machine_id = 0;  // drain, remove
  int64_t since = 0;        // events
  uint64_t migration_id = 0;  // migrations pause|resume|cancel|rate
  std::string rate;           // migrations rate, --max-rate of split/move ("" = default)
  uint64_t shard = 0;         // split SHARD, move --to SHARD
  std::string at;             // split --at TOKEN
  std::string range;          // move RANGE
  bool ranges = false;        // load --ranges
  bool history = false;       // load --history
};

// "50MB", "1GiB", "800k", "1000" (optionally "/s") as bytes/s; nullopt if malformed.
std::optional<uint64_t> parse_rate(std::string_view text);

// Adds the `admin` subcommand and its own subcommands to `app`, bound to `options`. Returns the
// `admin` subcommand (check ->parsed() after parsing).
CLI::App* add_admin_command(CLI::App& app, AdminOptions& options);

// Runs the parsed command. Returns the process exit status.
int run_admin(const AdminOptions& options, std::ostream& out, std::ostream& err);

}  // namespace cairn::cli
