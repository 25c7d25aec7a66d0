#pragma once
// The Redis Cluster view of a routing table (docs/cluster.md "Redis Cluster clients"): which
// shard each of the 16384 slots is reported on, and which machines a client should use for it.
// Pure: no I/O, no clock.
//
// A slot is one interval of the ring (topology/token.h). When ranges are cut on slot boundaries
// a slot lies in one range and is reported on that range's shard. When a cut falls inside a slot
// (a split finer than a slot), the slot is reported on the shard holding most of its tokens
// (ties: the lower token), and a machine of that shard forwards the keys held elsewhere.

#include <vector>

#include "topology/routing_table.h"
#include "topology/token.h"

namespace cairn::topology {

// A maximal run of consecutive slots reported on one shard.
struct SlotSpan {
  Slot first = 0;
  Slot last = 0;  // inclusive, as CLUSTER SLOTS reports it
  ShardId shard = kNoShard;

  bool operator==(const SlotSpan&) const = default;
};

// The shard `slot` is reported on. O(log ranges + ranges inside the slot).
ShardId slot_owner(const RoutingTable& table, Slot slot);

// Every slot, in order, grouped into maximal runs; the spans cover 0..16383 exactly.
std::vector<SlotSpan> slot_spans(const RoutingTable& table);

// The machine a Redis Cluster client should treat as the master of `shard`: its leader if the
// leader is up, else its first voting replica that is up, else its first voting replica; nullptr
// for a shard without voting replicas.
const Machine* shard_primary(const RoutingTable& table, const Shard& shard);

// The other machines of `shard` a client may read from (READONLY): its voting replicas and
// extras that are up, without the primary, in table order.
std::vector<const Machine*> shard_secondaries(const RoutingTable& table, const Shard& shard);

// Whether `machine` serves `shard` directly: one of its voting replicas or extras.
bool serves_shard(const Shard& shard, MachineId machine);

}  // namespace cairn::topology
