#pragma once
// Digests of a token range as one replica stores it, for anti-entropy repair
// (docs/cluster.md "Anti-entropy repair"). Two replicas that hold the same cells for a range
// compute the same digest; a difference names the leaves (equal slices of the range) whose
// cells differ, so repair exchanges those leaves only.
//
// What is hashed. Every stored cell of the range (tombstones included), except what the
// replicas may legitimately hold differently because each compacts on its own schedule:
//  * a cell the compaction filter may already have removed (Engine::may_have_dropped: a
//    tombstone or expired value past the grace period);
//  * a field cell its row hides (RowState::hidden_through: fields of an earlier life of the key,
//    which compaction drops at once).
//  * a deletion (tombstone or expired value) deleted before `purge_before_ms`, the purge bound
//    the comparing replicas agree on (storage/purge_bounds.h): compaction may remove it.
// An expired value is hashed as the tombstone compaction turns it into, for the same reason.
// Each cell's hash is xxh3 of its storage key and encoded cell; a leaf's digest is the sum of
// its cells' hashes (independent of order). Pure over the engine's contents: no fence, no clock
// other than `now_ms`.

#include <cstddef>
#include <cstdint>
#include <vector>

#include "common/status.h"
#include "storage/engine.h"
#include "topology/token.h"

namespace cairn::replica {

struct RangeDigest {
  std::vector<uint64_t> hashes;  // one per leaf
  std::vector<uint64_t> cells;   // cells hashed, per leaf
  uint64_t visited = 0;          // cells read (skipped ones included)
  bool truncated = false;        // stopped after max_cells visits: the digest is incomplete
};

// The leaves of [start, end) (end 0: the ring's end): `leaves` slices of equal token width
// (the last one takes the remainder). REQUIRES: leaves >= 1, end == 0 or end > start.
size_t leaf_of(topology::Token start, topology::Token end, size_t leaves, topology::Token token);
// The first token of leaf `leaf`; leaf == leaves gives `end`.
topology::Token leaf_start(topology::Token start, topology::Token end, size_t leaves,
                           size_t leaf);

// Digests the cells of [start, end) stored in `engine` as seen at `now_ms`, visiting at most
// `max_cells` cells (truncated past that), leaving out deletions before `purge_before_ms`.
Result<RangeDigest> digest_range(storage::Engine& engine, topology::Token start,
                                 topology::Token end, size_t leaves, size_t max_cells,
                                 int64_t now_ms, int64_t purge_before_ms = 0);

}  // namespace cairn::replica
