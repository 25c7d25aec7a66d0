#pragma once
// The balancer (docs/migration.md (a)): which ranges to move so that every shard holds close to
// its share of the ring. Pure: no I/O, no clock; the service turns its moves into queued
// migrations.
//
// Keys hash uniformly over the ring, so a shard's share of the ring is its share of the keys.
// The shards that count are those owning a range or having a voting replica (a new shard whose
// replicas are still joining cannot take data yet). The ideal share is 2^64 / that count; the
// goal is every shard within kBalanceTolerance of it. Each step moves from the shard with the
// largest share (counting migrations already queued or running: what it is already sending is
// no longer its own) to the one with the smallest, exactly min(what the taker lacks, what the
// giver has too much): whole ranges when they fit, largest first, then one range cut so that
// the total is exact to within half a slot: the cut is moved to the nearest slot boundary
// (slot_aligned_cut), so that every Redis Cluster slot stays inside one range. A cut never
// leaves a piece below kMinRangeTokens. Ranges touched by an
// active migration are left alone. Ties are broken by the lower shard id / token, so the
// result depends on the input only.

#include <cstdint>
#include <vector>

#include "topology/routing_table.h"
#include "topology/token_range.h"

namespace cairn::orchestrator {

inline constexpr uint64_t kMinRangeTokens = uint64_t{1} << 20;
inline constexpr double kBalanceTolerance = 0.10;

// One range to move; end 0 = the end of the ring. [start, end) lies inside one table range.
struct Move {
  topology::Token start = 0;
  topology::Token end = 0;
  topology::ShardId source = topology::kNoShard;
  topology::ShardId target = topology::kNoShard;
  bool operator==(const Move&) const = default;
};

// `active`: migrations not finished yet (queued or running), as moves. Empty when balanced
// (every counted shard within the tolerance), when fewer than two shards count, or when what
// is left to move is smaller than kMinRangeTokens.
std::vector<Move> balance(const topology::RoutingTableSpec& table,
                          const std::vector<Move>& active);

// `at` moved to the nearest slot boundary (topology/token.h) when that keeps both [start, at)
// and [at, end) at least kMinRangeTokens long, else `at` itself (a range smaller than a slot
// is cut where asked). REQUIRES: `at` lies strictly inside [start, end) (end 0 = 2^64).
topology::Token slot_aligned_cut(topology::Token start, topology::Token end, topology::Token at);

// token_span and ranges_overlap: topology/token_range.h.
using topology::ranges_overlap;
using topology::token_span;

// Tokens in [start, end) with end 0 = 2^64, as a fraction of the ring (for tests and logs).
double ring_fraction(topology::Token start, topology::Token end);

}  // namespace cairn::orchestrator
