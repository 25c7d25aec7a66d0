#pragma once
// The planner: the machine addition protocol of DESIGN.md §6, as a pure function of the cluster
// state (no I/O, no clock: time comes in the state). The orchestrator calls it whenever machines
// change; the simulation test drives it for simulated days.
//
// Rules, in order (DESIGN.md §6):
//  1. Replace every failed (dead) voting replica: promote an extra replica of the same shard if
//     there is one (it already has the data: it votes at once); else take a spare, which joins
//     the shard as *joining* (receives writes, does not vote) until its data is streamed to it
//     (the migration issue); until then the shard has fewer voting replicas, never a silent
//     quorum member without data.
//  2. Keep X = max(min_spares, ceil(1.5 × average machines down)) machines as idle spares; the
//     average comes from the recorded history (samples of how many machines were down).
//  3. With at least RF free machines left, create a new shard from RF of them (its replicas join
//     as joining; it owns no range until the migration issue moves ranges to it).
//  4. Leftover free machines become extra replicas of the busiest shards (by load), at most
//     extras_per_shard_max each; extras are reclaimable at any time (rule 1 takes them first).
// Invariants checked after every plan (check_invariants): no machine in two roles; every range
// owned by exactly one existing shard; no shard below RF voting replicas while a replacement
// (an extra of that shard or a spare) was available; dead machines hold no role.

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"
#include "topology/routing_table.h"

namespace cairn::orchestrator {

enum class Health { kUp, kDown, kDead };

struct MachineInfo {
  topology::MachineId id = 0;
  std::string address;
  Health health = Health::kUp;
  bool draining = false;          // the operator asked to take it out (cairn admin drain)
  double load = 0;                // ops/s reported by heartbeats (for "busiest shards")
};

struct PlannerSettings {
  uint32_t replication_factor = 3;
  uint32_t min_spares = 1;
  uint32_t extras_per_shard_max = 1;
  uint32_t ranges_per_new_shard = 0;  // new shards own no range until migration (issue 5)
};

struct PlannerInput {
  topology::RoutingTableSpec table;   // the current table (epoch, machines, shards, ranges)
  std::vector<MachineInfo> machines;  // every registered machine, with health
  double average_down = 0;            // from the history
  PlannerSettings settings;
};

enum class ActionKind {
  kPromoteExtra,     // machine (an extra of shard) replaces dead `replaced` as a voting replica
  kReplaceWithSpare, // spare `machine` joins `shard` as joining, replacing dead `replaced`
  kRemoveDead,       // dead `machine` is removed from `shard` (no replacement available)
  kKeepSpare,        // free `machine` stays an idle spare
  kCreateShard,      // new shard `shard` from `machines` (joining)
  kAddExtra,         // free `machine` becomes an extra replica of `shard`
  kReleaseDrained,   // draining `machine` holds no role any more (safe to stop)
};

struct Action {
  ActionKind kind;
  topology::MachineId machine = 0;
  topology::MachineId replaced = 0;
  topology::ShardId shard = 0;
  std::vector<topology::MachineId> machines;
  std::string describe() const;  // one line for the event log, e.g. "promote extra 7 in shard 2 (replaces dead 3)"
};

struct Plan {
  std::vector<Action> actions;
  topology::RoutingTableSpec table;  // the new table; epoch+1 if anything changed, else equal
  uint32_t spares_target = 0;
  bool changed() const { return !actions.empty(); }
};

// REQUIRES: input.table is valid (topology::validate) or empty (no shards: bootstrap is the
// orchestrator's job, see bootstrap()).
Result<Plan> plan(const PlannerInput& input);

// The first table: S shards of RF machines each from `machines` (in order), ranges_per_shard
// ranges per shard spread round the ring; the rest become spares. Fails if fewer than S × RF.
Result<topology::RoutingTableSpec> bootstrap(const std::vector<MachineInfo>& machines,
                                             uint32_t shards, uint32_t replication_factor,
                                             uint32_t ranges_per_shard);

// ceil(1.5 × average_down), at least min_spares.
uint32_t spares_target(double average_down, uint32_t min_spares);

// The invariants of the header comment; the message names the first violation.
Status check_invariants(const PlannerInput& input, const Plan& plan);

}  // namespace cairn::orchestrator
