#pragma once
// `cairn orchestrator` (docs/operations.md): the composition root of the orchestrator process.
// Builds, in order: the data dir lock, the Service (state reloaded from D/state.json), the HTTP
// API server, the 100 ms tick timer, the signal handler; runs them on one io thread and stops
// them in reverse on SIGINT/SIGTERM.
// With --etcd (docs/orchestrator-ha.md) there is no data dir: the state lives in etcd, and an
// EtcdLeadership (etcd_leadership.h) decides whether this process leads (its Service answers)
// or follows (reads from a view of etcd's state, changes redirected to the leader).

#include <cstdint>
#include <string>

#include "common/status.h"
#include "orchestrator/service.h"

namespace CLI {
class App;
}  // namespace CLI

namespace cairn::orchestrator {

struct OrchestratorConfig {
  std::string bind = "127.0.0.1";
  uint16_t port = 7700;
  std::string data_dir;
  std::string cluster_secret;
  std::string store = "file";  // "file"; --etcd selects etcd
  // etcd (docs/orchestrator-ha.md): "" = the file store in data_dir.
  std::string etcd;                       // URL[,URL...]
  std::string etcd_prefix = "/cairn/default";
  std::string advertise;                  // host:port others redirect to; "" = bind:port
  int64_t etcd_lease_ttl_s = 1;           // the leader lease (etcd may raise it)
  std::string import_state;               // a file store's state.json to import once
  int64_t unsafe_lease_overrun_ms = 0;    // tests only: LeadershipOptions::lease_overrun_ms
  ServiceSettings service;     // state_path is derived from data_dir
  std::string log_level = "info";
};

// Registers the subcommand's flags (orch.md) on `app`, writing into `config`.
void add_flags(CLI::App& app, OrchestratorConfig* config);

// Checks the config; the message names the flag at fault.
Status validate_config(const OrchestratorConfig& config);

// Runs until SIGINT/SIGTERM. Prints the listening line to stdout once serving. Errors at
// start-up (bad flags, unreadable/corrupt state, port in use, data dir locked) are returned.
Status run(const OrchestratorConfig& config);

}  // namespace cairn::orchestrator
