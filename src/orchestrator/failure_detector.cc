#include "orchestrator/failure_detector.h"

namespace cairn::orchestrator {

std::vector<HealthChange> detect_failures(const std::vector<MachineRecord>& machines,
                                          int64_t now_ms, const DetectorSettings& settings) {
  CAIRN_ASSERT(settings.down_after_ms <= settings.dead_after_ms,
               "down_after_ms must not exceed dead_after_ms");
  std::vector<HealthChange> changes;
  for (const auto& machine : machines) {
    // A heartbeat stamped after `now_ms` (clock read order between threads) counts as fresh.
    int64_t silent_ms = now_ms > machine.last_heartbeat_ms ? now_ms - machine.last_heartbeat_ms : 0;
    Health due = Health::kUp;
    if (silent_ms >= settings.dead_after_ms) {
      due = Health::kDead;
    } else if (silent_ms >= settings.down_after_ms) {
      due = Health::kDown;
    }
    // Health only worsens here; kUp < kDown < kDead in declaration order.
    if (static_cast<int>(due) > static_cast<int>(machine.health)) {
      changes.push_back(HealthChange{machine.id, machine.health, due, silent_ms});
    }
  }
  return changes;
}

}  // namespace cairn::orchestrator
