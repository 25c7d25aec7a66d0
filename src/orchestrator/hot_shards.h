#pragma once
// Hot shards (docs/operations.md "Hot shards and hot keys"): which shard is hot, where its
// hottest range is cut, and where the hotter half goes. Pure: no I/O, no clock (the caller
// passes the time with every observation); the service feeds it LoadBook's view once a second
// and queues the migration it asks for with the ordinary two-phase machinery.
//
// Rules, by number (hot_shards.cc follows them):
//  1. A shard is over the line when its ops/s (reads + writes as LoadBook aggregates them) is
//     at least `shard_ops` and at least `factor` times the median of the shards' ops/s. The
//     median of an even count is the lower middle one: with two shards the reference is the
//     other shard, not the mean of both (which a shard could never exceed twice).
//  2. A shard is hot once it was over the line at every observation for `window_ms`; one
//     observation under the line starts the window again.
//  3. A hot shard's hottest range is cut at the load median of its sampled hottest keys: their
//     tokens in ring order, weighted by their guaranteed counts (count - error), cut where the
//     two sides' weights are closest. The cut is a slot boundary when one lies between the two
//     keys beside it (Redis Cluster clients route by slot), else the token of the first key of
//     the right side. The token middle is never used: load is not spread like tokens.
//  4. A range is not split when one token (one key, or keys sharing a hash tag, which share a
//     token) carries at least `hot_key_share` of its sampled weight, or when fewer than two
//     tokens were sampled: no cut could divide that load. The key is reported as a hot key
//     with its estimated rate instead.
//  5. The hotter half moves to a new shard when at least RF machines are free beyond the
//     spares the cluster keeps; else to the coolest shard that can take it, when the move
//     lowers the largest of the two shards' loads; else nothing moves (reported).
//  6. No flapping: a split's source and target shards are neither split nor chosen as targets
//     again for `cooldown_ms`, and both halves are pinned for as long: the policy never moves
//     them and the balancer is told to leave them alone (pinned()).
//  7. Nothing is split while any migration is active; detection goes on meanwhile.
//  8. Bounded: the state holds one entry per shard observed and one pin per half moved within
//     the cool-down; entries of shards no longer observed are dropped.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "metrics/topk.h"
#include "topology/routing_table.h"

namespace cairn::orchestrator {

struct HotSettings {
  double shard_ops = 3000;        // --hot-shard-ops
  double factor = 2.0;            // --hot-shard-factor
  int64_t window_ms = 10'000;     // --hot-shard-window-s
  int64_t cooldown_ms = 300'000;  // --hot-split-cooldown-s
  double hot_key_share = 0.5;     // --hot-key-share
  bool split = true;              // --no-hot-split: detect and report only
};

// Checks ranges; the message names the offending flag.
std::string validate_hot_settings(const HotSettings& settings);

struct RangeHeat {
  topology::Token start = 0;
  topology::Token end = 0;  // 0 = the ring's end
  double ops_per_sec = 0;
  std::vector<metrics::TopKEntry> top_keys;
};

struct ShardHeat {
  topology::ShardId shard = topology::kNoShard;
  double ops_per_sec = 0;
  std::vector<RangeHeat> ranges;  // ring order
};

struct HotInput {
  int64_t now_ms = 0;  // monotonic
  // Shards with voting replicas whose load is reported.
  std::vector<ShardHeat> shards;
  uint32_t replication_factor = 3;
  uint32_t free_machines = 0;  // up, without a role, beyond the spares kept
  bool migration_active = false;
};

struct HotShard {
  topology::ShardId shard = topology::kNoShard;
  double ops_per_sec = 0;
  double median_ops = 0;
  int64_t over_since_ms = 0;  // monotonic
  bool hot = false;           // over the line for the whole window
  bool cooling = false;       // split or received a half within the cool-down (rule 6)
};

struct HotKey {
  topology::ShardId shard = topology::kNoShard;
  topology::Token start = 0;  // the range holding it
  topology::Token end = 0;
  std::string key;
  double ops_per_sec = 0;  // estimated: its share of the sample times the range's ops/s
  double share = 0;
};

struct HotSplit {
  topology::ShardId source = topology::kNoShard;
  topology::Token range_start = 0;  // the hottest range of the source
  topology::Token range_end = 0;
  topology::Token cut = 0;
  topology::Token start = 0;  // the half that moves: [range_start, cut) or [cut, range_end)
  topology::Token end = 0;
  bool new_shard = false;
  topology::ShardId target = topology::kNoShard;  // when !new_shard
  double moved_ops = 0;                           // estimated from the sample
  double kept_ops = 0;
};

// Why a hot shard is not split.
enum class HoldReason { kAllPinned, kHotKey, kNoSample, kCooling, kMigrating, kOff, kNoTarget };

struct HeldSplit {
  topology::ShardId shard = topology::kNoShard;
  HoldReason reason = HoldReason::kNoSample;
  std::string text;  // for people: the reason with its figures
};

struct HotDecision {
  std::vector<HotShard> shards;  // over the line now (hot or within their window)
  std::vector<HotKey> hot_keys;  // of hot shards (rule 4)
  std::optional<HotSplit> split;
  std::vector<HeldSplit> held;  // hot shards not split (rules 4 to 7), one per shard
};

// A half moved by a split, left alone until `until_ms` (monotonic).
struct PinnedRange {
  topology::Token start = 0;
  topology::Token end = 0;
  int64_t until_ms = 0;
};

// Where the hottest range of `shard` would be cut (rules 3, 4): the cut, or the hot key.
struct CutChoice {
  std::optional<topology::Token> cut;
  double left_weight = 0;
  double right_weight = 0;
  std::optional<HotKey> hot_key;
};
CutChoice choose_cut(const RangeHeat& range, double hot_key_share);

// The median of rule 1 (the lower middle of an even count); 0 when empty.
double lower_median(std::vector<double> values);

class HotPolicy {
 public:
  explicit HotPolicy(HotSettings settings) : settings_(settings) {}

  // One observation, normally once a second. A returned split is assumed to be carried out:
  // its shards cool down and its halves are pinned from now on.
  HotDecision observe(const HotInput& input);

  // The halves pinned at `now_ms` (rule 6).
  std::vector<PinnedRange> pinned(int64_t now_ms) const;
  const HotSettings& settings() const { return settings_; }

 private:
  bool cooling(topology::ShardId shard, int64_t now_ms) const;
  std::optional<HotSplit> plan(const HotInput& input, const ShardHeat& hot, HotDecision& out);

  HotSettings settings_;
  std::map<topology::ShardId, int64_t> over_since_ms_;
  std::map<topology::ShardId, int64_t> cooling_until_ms_;
  std::vector<PinnedRange> pinned_;
};

}  // namespace cairn::orchestrator
