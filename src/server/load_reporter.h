#pragma once
// LoadReporter: what a machine measures about its own load, for the orchestrator's heartbeats
// and for /metrics (docs/operations.md "Load per range").
//
//  - machine-wide: commands per second and their p99 over the last metrics::kLoadWindowMs (a
//    10-second window, so a burst that just ended still shows);
//  - per token range this machine holds (voting, extra or joining replica of its shard): reads
//    and writes per second, bytes in and out per second, stored keys and bytes (RocksDB
//    approximations), latency percentiles of the replica's storage accesses, and the hottest
//    keys (metrics::RangeLoadTracker, fed by the Replica).
//
// Threading: collect() from the agent's thread only; write_metrics() from any thread.

#include <cstdint>

#include "metrics/range_load.h"
#include "metrics/text_format.h"
#include "replica/table_holder.h"
#include "server/orchestrator_agent.h"
#include "server/server_state.h"
#include "storage/engine.h"

namespace cairn::server {

class LoadReporter {
 public:
  // All references must outlive the reporter.
  LoadReporter(ServerState& state, storage::Engine& engine, replica::TableHolder& tables,
               metrics::RangeLoadTracker& tracker, uint64_t machine_id);

  MachineLoadCounters collect(int64_t now_ms);
  // cairn_range_* families: the cumulative counters of the ranges this machine holds.
  void write_metrics(metrics::PrometheusText& out) const;

 private:
  // [start, end) and shard of every range of the current table this machine holds.
  std::vector<topology::Range> held_ranges() const;

  ServerState& state_;
  storage::Engine& engine_;
  replica::TableHolder& tables_;
  metrics::RangeLoadTracker& tracker_;
  const uint64_t machine_id_;
  // The agent's thread only.
  metrics::LoadWindow ranges_window_;
  metrics::CountWindow commands_window_;
  int64_t last_rotation_ms_ = -1;
};

// The ranges of `table` as the tracker counts them.
std::vector<std::pair<topology::Token, topology::Token>> range_bounds(
    const topology::RoutingTable& table);

}  // namespace cairn::server
