#pragma once
// Consistency levels and quorum math (docs/cluster.md). Pure: no I/O, no clock.
//
// A level says how many voting replicas of a shard must answer before a request succeeds:
// ONE, TWO, THREE, QUORUM (floor(N/2) + 1), ALL (N), or an explicit number 1..15. Extra and
// joining replicas never count, and neither do hints. Invariants:
//  1. required(level, n) is in 1..n whenever it succeeds; a level needing more than the n
//     voting replicas (TWO with n = 1, "5" with n = 3) is an error, never silently capped,
//     because capping would quietly weaken the guarantee the client asked for.
//  2. Two QUORUMs of the same N always intersect: 2 * (N/2 + 1) > N.
//  3. strong(R, W, N) holds exactly when R + W > N, i.e. every read set meets every write set,
//     so a read sees the latest acknowledged write.

#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"

namespace cairn::topology {

class ConsistencyLevel {
 public:
  enum class Kind { kOne, kTwo, kThree, kQuorum, kAll, kCount };

  // The highest explicit number accepted; it equals the largest replication factor.
  static constexpr uint32_t kCountMax = 15;

  static constexpr ConsistencyLevel one() { return ConsistencyLevel(Kind::kOne, 0); }
  static constexpr ConsistencyLevel two() { return ConsistencyLevel(Kind::kTwo, 0); }
  static constexpr ConsistencyLevel three() { return ConsistencyLevel(Kind::kThree, 0); }
  static constexpr ConsistencyLevel quorum() { return ConsistencyLevel(Kind::kQuorum, 0); }
  static constexpr ConsistencyLevel all() { return ConsistencyLevel(Kind::kAll, 0); }
  // REQUIRES: 1 <= count <= kCountMax (use parse_consistency for untrusted input).
  static ConsistencyLevel count(uint32_t count);

  constexpr ConsistencyLevel() = default;  // QUORUM, the cluster default
  Kind kind() const { return kind_; }
  // The explicit number for Kind::kCount, else 0.
  uint32_t number() const { return count_; }

  bool operator==(const ConsistencyLevel&) const = default;

 private:
  constexpr ConsistencyLevel(Kind kind, uint32_t count) : kind_(kind), count_(count) {}
  Kind kind_ = Kind::kQuorum;
  uint32_t count_ = 0;
};

// Parses "one", "TWO", "Quorum", "all", "3"... (names case-insensitive; numbers are plain
// decimal 1..kCountMax). Errors name the input and list what is accepted.
Result<ConsistencyLevel> parse_consistency(std::string_view text);

// "ONE", "TWO", "THREE", "QUORUM", "ALL" or the number, e.g. "2".
std::string consistency_name(ConsistencyLevel level);

// Acknowledgements needed from a shard with `n_voting` voting replicas.
// Errors (invalid_argument): n_voting is 0, or the level needs more than n_voting replicas
// ("cannot satisfy consistency TWO with 1 voting replica").
Result<uint32_t> required(ConsistencyLevel level, uint32_t n_voting);

// Whether reads at `read` and writes at `write` overlap on a shard of n_voting replicas
// (R + W > N). Errors as required() when either level cannot be satisfied.
Result<bool> strong(ConsistencyLevel read, ConsistencyLevel write, uint32_t n_voting);

}  // namespace cairn::topology
