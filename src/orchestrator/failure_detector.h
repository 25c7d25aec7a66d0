#pragma once
// Failure detection (docs/operations.md): a machine whose heartbeats stopped for down_after_ms is down,
// for dead_after_ms dead. Pure: the caller passes the monotonic time, so tests drive it with a
// fake clock. Returning machines are handled where their heartbeat arrives (Service), not here.

#include <cstdint>
#include <vector>

#include "orchestrator/state.h"

namespace cairn::orchestrator {

struct DetectorSettings {
  int64_t down_after_ms = 1500;
  int64_t dead_after_ms = 5000;
};

struct HealthChange {
  topology::MachineId machine = topology::kNoMachine;
  Health from = Health::kUp;
  Health to = Health::kUp;
  int64_t silent_ms = 0;  // time since the last heartbeat
};

// The transitions due at `now_ms` (only ever towards worse health: up→down, up→dead,
// down→dead), in machine order. REQUIRES: settings.down_after_ms <= settings.dead_after_ms.
std::vector<HealthChange> detect_failures(const std::vector<MachineRecord>& machines,
                                          int64_t now_ms, const DetectorSettings& settings);

}  // namespace cairn::orchestrator
