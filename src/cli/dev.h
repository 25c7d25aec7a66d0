#pragma once

// `cairn dev` (docs/operations.md): a whole local cluster from one command. It runs an orchestrator
// and shards × rf + spares machines as child processes of this same binary (/proc/self/exe) on
// loopback, waits until the cluster serves, prints how to connect, and stops everything on
// Ctrl-C or SIGTERM. Layout under --data-dir (kept across restarts):
//   secret           the cluster secret, generated at the first start (mode 0600)
//   orchestrator/    the orchestrator's state (state.json; one orchestrator)
//   etcd/e<j>/       etcd member j's data (--orchestrators > 1: the state lives in etcd)
//   m<i>/            machine i's data; machine i serves clients on 127.0.0.1:(port + i)
//   logs/            one log per child (orchestrator.log or orchestrator<i>.log, etcd<j>.log,
//                    m<i>.log), truncated at each start
//   dev.lock         held (flock) while a `cairn dev` runs on this directory

#include <cstdint>
#include <string>
#include <vector>

namespace CLI {
class App;
}

namespace cairn::cli {

struct DevConfig {
  int shards = 2;
  int rf = 3;
  int spares = 1;
  uint16_t port = 7000;               // machine i listens on port + i
  uint16_t orchestrator_port = 7700;  // the orchestrator's HTTP API and dashboard
  // More than 1: a local 3-member etcd holds the state, orchestrator i listens on
  // orchestrator_port + i and one of them leads (docs/orchestrator-ha.md).
  int orchestrators = 1;
  uint16_t etcd_port = 2379;  // etcd member j: clients on etcd_port + 2j, peers on + 2j + 1
  std::string data_dir = "./cairn-data";
  // Passed through to `cairn orchestrator` when non-zero (0 = the orchestrator's default);
  // tests shorten them so that failure detection fits in a short run.
  int64_t down_after_ms = 0;
  int64_t dead_after_ms = 0;
  int64_t lease_ms = 0;
  // Passed through to `cairn orchestrator`: --migration-max-rate (bytes/s per target machine,
  // 0 = its default) and --no-auto-rebalance.
  int64_t migration_max_rate = 0;
  bool no_auto_rebalance = false;
  // Passed verbatim to every `cairn orchestrator` (e.g. "--hot-shard-ops=500"), after the
  // flags above.
  std::vector<std::string> orchestrator_args;
  std::string log_level = "info";     // this process and its children
  int64_t ready_timeout_ms = 30'000;  // how long to wait for the cluster to serve
};

// Binds the `cairn dev` flags to a CLI11 (sub)command.
void add_dev_flags(CLI::App& app, DevConfig& config);

// Runs the dev cluster until SIGINT or SIGTERM; returns the process exit code. Children are
// sent SIGTERM (the orchestrator first, so that it does not record the machines' clean stop as a
// failure) and are killed with SIGKILL if they have not exited 10 s later.
// REQUIRES: called from main() with no other thread running (it changes the signal mask).
int run_dev(const DevConfig& config);

}  // namespace cairn::cli
