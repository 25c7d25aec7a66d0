#pragma once
// Purge bounds: per token range, the moment before which every replica of the range is known to
// hold the same deletions (docs/cluster.md "Tombstone purge"). Anti-entropy repair raises a
// range's bound after a pass in which every voting replica's digest of the range matched this
// one's; the compaction filter then removes a deletion (a tombstone, or an expired value) of
// that range deleted before the bound, without waiting for the tombstone grace period.
// Memory only: after a restart nothing is purged early until the next matching pass.
//
// Thread-safe. The bound of a range given again only rises. A range of another shape (the table
// split or merged ranges since) replaces the entries it overlaps: its tokens take the new bound,
// and the tokens of those entries outside it lose theirs until a pass sets them again.

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <utility>
#include <vector>

#include "topology/token.h"

namespace cairn::storage {

struct PurgeBound {
  topology::Token start = 0;
  topology::Token end = 0;  // 0: the ring's end
  int64_t before_ms = 0;    // deletions strictly before this wall ms may be purged
  bool operator==(const PurgeBound&) const = default;
};

class PurgeBounds {
 public:
  // Sets the bound of [start, end) to max(its bound, before_ms) if an entry with exactly these
  // bounds exists; otherwise removes the entries overlapping it and adds it.
  void raise(topology::Token start, topology::Token end, int64_t before_ms);
  // The entry of the range holding `token`, if any.
  std::optional<PurgeBound> find(topology::Token token) const;
  // Its bound (0: none, nothing is purged early).
  int64_t bound(topology::Token token) const;
  std::vector<PurgeBound> entries() const;

 private:
  mutable std::mutex mu_;
  std::map<topology::Token, PurgeBound> by_start_;
};

}  // namespace cairn::storage
