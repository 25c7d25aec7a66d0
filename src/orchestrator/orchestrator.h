#pragma once
// `cairn orchestrator` (docs/operations.md): the composition root of the orchestrator process.
// Builds, in order: the data dir lock, the Service (state reloaded from D/state.json), the HTTP
// API server, the 100 ms tick timer, the signal handler; runs them on one io thread and stops
// them in reverse on SIGINT/SIGTERM.

#include <cstdint>
#include <string>

#include "common/status.h"
#include "orchestrator/service.h"

namespace CLI {
class App;
}  // namespace CLI

namespace cairn::orchestrator {

inline constexpr int64_t kTickIntervalMs = 100;

struct OrchestratorConfig {
  std::string bind = "127.0.0.1";
  uint16_t port = 7700;
  std::string data_dir;
  std::string cluster_secret;
  std::string store = "file";  // the only store so far; etcd:// is the hot-copy issue
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
