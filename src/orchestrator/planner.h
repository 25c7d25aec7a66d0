#pragma once
// The planner: the machine addition protocol of docs/operations.md, as a pure function of the cluster
// state (no I/O, no clock: time comes in the state). The orchestrator calls it whenever machines
// change; the simulation test drives it for simulated days.
//
// Rules, in order (docs/operations.md):
//  1. Replace every failed (dead) voting replica: an extra replica of the same shard if there is
//     one (it joins, and votes once rebuilt: it only has the writes made since it became an
//     extra; the copy is mostly LWW no-ops); else take a spare, which joins
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
  std::string internal_address;   // machine-to-machine host:port; empty = same as address
  Health health = Health::kUp;
  bool draining = false;          // the operator asked to take it out (cairn admin drain)
  double load = 0;                // ops/s reported by heartbeats (for "busiest shards")
  // True once this machine cannot be acting as a shard leader any more: the orchestrator has
  // not renewed its lease (no heartbeat, or it stopped renewing a draining machine's lease) for
  // lease_ms + margin (docs/operations.md). The planner names another leader for a shard, or removes
  // a dead/draining leader from it, only when this is true; false (the default) is the safe
  // value. The orchestrator should re-run the planner when a leader's lease expires.
  bool lease_expired = false;
};

struct PlannerSettings {
  uint32_t replication_factor = 3;
  uint32_t min_spares = 1;
  uint32_t extras_per_shard_max = 1;
  uint32_t ranges_per_new_shard = 0;  // new shards own no range until a migration (docs/migration.md)
};

struct PlannerInput {
  topology::RoutingTableSpec table;   // the current table (epoch, machines, shards, ranges)
  std::vector<MachineInfo> machines;  // every registered machine, with health
  double average_down = 0;            // from the history
  PlannerSettings settings;
};

enum class ActionKind {
  kPromoteExtra,     // machine (an extra of shard) replaces dead `replaced`: joins, votes once rebuilt
  kReplaceWithSpare, // spare `machine` joins `shard` as joining, replacing dead `replaced`
  kRemoveDead,       // dead `machine` is removed from `shard` (no replacement available)
  kKeepSpare,        // free `machine` stays an idle spare
  kCreateShard,      // new shard `shard` from `machines` (joining)
  kAddExtra,         // free `machine` becomes an extra replica of `shard`
  kReleaseDrained,   // draining `machine` holds no role any more (safe to stop)
  kChangeLeader,     // `shard`'s leader becomes `machine` (0 = none for now), was `replaced`
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
// orchestrator's job, see bootstrap()); else invalid_argument. An empty table gives an empty plan.
//
// Details of the rules as implemented (planner.cc has the why):
//  - A machine is *gone* when it is dead, draining, or absent from input.machines (the
//    orchestrator forgot it, e.g. `cairn admin remove`); gone machines lose every role. A gone
//    leader whose lease has not expired (MachineInfo::lease_expired) keeps its voting seat and
//    leadership until it has (its replacement waits); an absent one counts as expired.
//  - The table's replication_factor rules (settings.replication_factor is only the bootstrap's).
//  - Dead and absent machines are dropped from the table's machine list (so the list stays
//    bounded and a new machine may reuse a dead one's address); a dead machine that comes back
//    is a new free machine. Down machines keep their roles and table state (health is the
//    orchestrator's view, not written into the table: that would bump the epoch on every blip).
//    Draining machines stay listed with state kLeaving until they are forgotten.
//  - Table states follow roles: voting/extra kUp, joining kJoining, free kSpare.
//  - Only machines that are up and not draining are given a new role. A new machine whose
//    address collides with one still in the table is left out until that one is gone.
//  - Rule 1 order: the shard's own up extras join as joining; then free machines join as joining;
//    then up extras of other shards are reclaimed and join as joining. Joining members that are
//    gone are replaced too (a shard aims at RF voting + joining members).
//  - Leaders: a shard without a leader, or whose leader is gone or down with its lease expired,
//    gets its first up voting replica as leader (lease_expiry_ms 0); none if there is none.
//  - Rules 2-3 may reclaim up extras (least loaded shards first) to reach X spares and to form
//    a new shard (free machines are used first). New shard ids are max id + 1. Rule 4 only
//    gives extras to shards owning a range; machines left over stay spares (more than X).
//  - Actions are emitted only for changes; plan() of its own output's state is a no-op.
// The returned table passes topology::validate and check_invariants (else kInternal: a bug).
Result<Plan> plan(const PlannerInput& input);

// The first table: S shards of RF machines each from `machines` (in order), ranges_per_shard
// ranges per shard spread round the ring; the rest become spares. Fails if fewer than S × RF.
// Only machines that are up and not draining are used (topology::RoutingTable::make_initial).
Result<topology::RoutingTableSpec> bootstrap(const std::vector<MachineInfo>& machines,
                                             uint32_t shards, uint32_t replication_factor,
                                             uint32_t ranges_per_shard);

// ceil(1.5 × average_down), at least min_spares.
uint32_t spares_target(double average_down, uint32_t min_spares);

// The invariants of the header comment; the message names the first violation.
Status check_invariants(const PlannerInput& input, const Plan& plan);

}  // namespace cairn::orchestrator
