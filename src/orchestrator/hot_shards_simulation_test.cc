// A seeded simulation of the hot shard policy (hot_shards.h): a ring of shards and ranges, keys
// with rates, noisy observations once a simulated second, and the policy's splits carried out
// after a migration delay. Each seed replays exactly (CAIRN_HOT_SEED=n runs one seed).
//
// Checked for every seed:
//  - stable: uniform load under ±30 % noise never splits;
//  - a hot range is detected within the window (plus one observation) and split;
//  - the split divides the hot range's load as well as its keys allow (within one key's load
//    plus the noise);
//  - no flapping: within the cool-down, no split touches a shard of an earlier split or a piece
//    an earlier split moved;
//  - a single hot key is reported and never split.

#include <algorithm>
#include <cstdlib>
#include <functional>
#include <map>
#include <random>
#include <string>

#include <gtest/gtest.h>

#include "metrics/range_load.h"
#include "orchestrator/hot_shards.h"
#include "topology/token.h"

namespace cairn::orchestrator {
namespace {

using topology::ShardId;
using topology::Token;

struct SimKey {
  std::string name;
  Token token = 0;
  double rate = 0;  // ops/s
};

struct SimRange {
  Token start = 0;
  Token end = 0;  // 0 = the ring's end
  ShardId shard = 0;
};

bool holds(const SimRange& r, Token t) { return t >= r.start && (r.end == 0 || t < r.end); }

bool overlap(Token a_start, Token a_end, Token b_start, Token b_end) {
  return (b_end == 0 || a_start < b_end) && (a_end == 0 || b_start < a_end);
}

enum class Scenario { kUniform, kHotRange, kHotKey };

class Simulation {
 public:
  explicit Simulation(uint64_t seed) : random_(seed) {
    shards_ = 2 + static_cast<ShardId>(random_() % 3);  // 2 to 4
    const int per_shard = 2 + static_cast<int>(random_() % 3);
    const int ranges = static_cast<int>(shards_) * per_shard;
    const Token step = static_cast<Token>((static_cast<unsigned __int128>(1) << 64) / ranges);
    for (int i = 0; i < ranges; ++i) {
      ranges_.push_back(SimRange{step * static_cast<Token>(i),
                                 i + 1 == ranges ? 0 : step * static_cast<Token>(i + 1),
                                 static_cast<ShardId>(i % shards_) + 1});
    }
    // Uniform background: every shard well above the absolute line, so only the relative
    // line can keep it from being hot.
    const double total = 4000.0 * shards_ * (1.0 + uniform(0, 1));
    // Random names: names that differ in their last digits only have CRC16 slots (the top of
    // their tokens) in a few patterns, which would load shards unevenly by construction.
    for (int i = 0; i < kColdKeys; ++i) {
      add_key(fmt_key("cold", random_(), i), total / kColdKeys);
    }
    scenario_ = static_cast<Scenario>(seed % 3);
    hot_start_ms_ = static_cast<int64_t>(random_() % 60) * 1000;
    hot_range_ = static_cast<size_t>(random_() % ranges_.size());
    hot_total_ = total * (1.5 + uniform(0, 2));
    hot_keys_ = scenario_ == Scenario::kHotKey ? 1 : 4 + static_cast<int>(random_() % 9);
    seed_ = seed;
  }

  void run() {
    HotPolicy policy(settings_);
    for (int64_t now = 0; now < kDurationMs; now += 1000) {
      if (now == hot_start_ms_ && scenario_ != Scenario::kUniform) heat_up();
      if (migration_done_ms_ != 0 && now >= migration_done_ms_) land(now);
      const HotDecision d = policy.observe(observe(now));
      check(now, d);
      if (d.split) start(now, *d.split);
    }
    if (scenario_ == Scenario::kUniform) {
      EXPECT_EQ(splits_, 0) << "seed " << seed_;
    }
    if (scenario_ == Scenario::kHotRange) {
      EXPECT_GE(splits_, 1) << "seed " << seed_;
      EXPECT_GE(detected_ms_, 0) << "seed " << seed_;
    }
    if (scenario_ == Scenario::kHotKey) {
      EXPECT_EQ(splits_, 0) << "seed " << seed_;
      EXPECT_TRUE(hot_key_reported_) << "seed " << seed_;
    }
  }

 private:
  static constexpr int kColdKeys = 240;
  static constexpr int64_t kDurationMs = 600'000;
  static constexpr double kNoise = 0.3;

  static std::string fmt_key(const char* kind, uint64_t seed, int i) {
    return std::string(kind) + ":" + std::to_string(seed) + ":" + std::to_string(i);
  }
  double uniform(double low, double high) {
    return std::uniform_real_distribution<double>(low, high)(random_);
  }
  void add_key(std::string name, double rate) {
    const Token t = topology::token_of(name);
    keys_.push_back(SimKey{std::move(name), t, rate});
  }

  // The hot keys: names tried in turn until enough land in the hot range.
  void heat_up() {
    const SimRange r = ranges_[hot_range_];
    int found = 0;
    for (int i = 0; found < hot_keys_ && i < 1'000'000; ++i) {
      std::string name = fmt_key("hot", seed_, i);
      if (!holds(r, topology::token_of(name))) continue;
      add_key(std::move(name), hot_total_ / hot_keys_);
      hot_names_.push_back(keys_.back().name);
      ++found;
    }
    ASSERT_EQ(found, hot_keys_);
  }

  ShardId owner(Token t) const {
    for (const SimRange& r : ranges_) {
      if (holds(r, t)) return r.shard;
    }
    ADD_FAILURE() << "the ranges do not cover token " << t;
    return 0;
  }

  HotInput observe(int64_t now) {
    HotInput in;
    in.now_ms = now;
    in.replication_factor = 3;
    in.free_machines = free_machines_;
    in.migration_active = migration_done_ms_ != 0;
    std::map<ShardId, ShardHeat> shards;
    for (ShardId id = 1; id <= shards_; ++id) shards[id] = ShardHeat{id, 0, {}};
    // Each key's noisy rate, grouped by range (ranges_ is in ring order).
    std::vector<std::vector<std::pair<double, size_t>>> by_range(ranges_.size());
    for (size_t i = 0; i < keys_.size(); ++i) {
      const auto it = std::upper_bound(ranges_.begin(), ranges_.end(), keys_[i].token,
                                       [](Token t, const SimRange& r) { return t < r.start; });
      const size_t range = static_cast<size_t>(it - ranges_.begin()) - 1;
      by_range[range].emplace_back(keys_[i].rate * (1 + uniform(-kNoise, kNoise)), i);
    }
    for (size_t i = 0; i < ranges_.size(); ++i) {
      RangeHeat heat{ranges_[i].start, ranges_[i].end, 0, {}};
      std::vector<std::pair<double, size_t>>& rates = by_range[i];
      for (const auto& [rate, key] : rates) heat.ops_per_sec += rate;
      const size_t top = std::min(rates.size(), metrics::kTopKeys);
      std::partial_sort(rates.begin(), rates.begin() + static_cast<std::ptrdiff_t>(top),
                        rates.end(), std::greater<>());
      // Ten seconds of counts, as a machine's sketch holds them.
      for (size_t j = 0; j < top; ++j) {
        heat.top_keys.push_back(
            {keys_[rates[j].second].name, static_cast<uint64_t>(rates[j].first * 10), 0});
      }
      ShardHeat& s = shards[ranges_[i].shard];
      s.ops_per_sec += heat.ops_per_sec;
      s.ranges.push_back(std::move(heat));
    }
    for (auto& [id, s] : shards) in.shards.push_back(std::move(s));
    return in;
  }

  void check(int64_t now, const HotDecision& d) {
    for (const HotShard& s : d.shards) {
      if (s.hot && detected_ms_ < 0 && scenario_ == Scenario::kHotRange) detected_ms_ = now;
    }
    if (scenario_ == Scenario::kHotRange && detected_ms_ < 0) {
      // Detected within the window: the first observation at window_ms after it turned hot.
      EXPECT_LT(now, hot_start_ms_ + settings_.window_ms + 1000 + 1) << "seed " << seed_;
    }
    for (const HotKey& k : d.hot_keys) {
      // A key is reported only when it truly carries its range (after splits of a hot range,
      // a range may come down to one dominant key: that is a hot key too).
      EXPECT_NE(scenario_, Scenario::kUniform) << "seed " << seed_ << " key " << k.key;
      double range_rate = 0, key_rate = 0;
      for (const SimKey& key : keys_) {
        if (!holds(SimRange{k.start, k.end, 0}, key.token)) continue;
        range_rate += key.rate;
        if (key.name == k.key) key_rate = key.rate;
      }
      EXPECT_GE(key_rate, (settings_.hot_key_share - kNoise) * range_rate)
          << "seed " << seed_ << " key " << k.key;
      if (!hot_names_.empty() && k.key == hot_names_.front()) hot_key_reported_ = true;
    }
    if (!d.split) return;
    const HotSplit& s = *d.split;
    EXPECT_NE(scenario_, Scenario::kUniform) << "seed " << seed_ << " at " << now << debug(d);
    EXPECT_NE(scenario_, Scenario::kHotKey) << "seed " << seed_ << " at " << now;
    EXPECT_FALSE(migration_done_ms_ != 0) << "a split while a migration runs";
    for (const Moved& m : moved_) {
      if (now >= m.time_ms + settings_.cooldown_ms) continue;
      EXPECT_FALSE(overlap(s.start, s.end, m.start, m.end))
          << "seed " << seed_ << ": a moved piece moves again within the cool-down";
      EXPECT_NE(s.source, m.source) << "seed " << seed_;
      EXPECT_NE(s.source, m.target) << "seed " << seed_;
      EXPECT_NE(s.target, m.source) << "seed " << seed_ << ": load moved back";
    }
    // The halves' true load: as even as one key's load plus the noise allow.
    double left = 0, right = 0, largest = 0;
    for (const SimKey& k : keys_) {
      if (!holds(SimRange{s.range_start, s.range_end, 0}, k.token)) continue;
      (k.token < s.cut ? left : right) += k.rate;
      largest = std::max(largest, k.rate);
    }
    EXPECT_LE(std::abs(left - right), largest + 2 * kNoise * (left + right))
        << "seed " << seed_ << ": halves " << left << " / " << right;
  }

  std::string debug(const HotDecision& d) const {
    std::string out;
    for (const HotShard& s : d.shards) {
      out += " shard " + std::to_string(s.shard) + " " + std::to_string(s.ops_per_sec) + " med " +
             std::to_string(s.median_ops);
    }
    out += " shards " + std::to_string(shards_) + " ranges " + std::to_string(ranges_.size());
    return out;
  }

  struct Moved {
    Token start = 0;
    Token end = 0;
    ShardId source = 0;
    ShardId target = 0;
    int64_t time_ms = 0;
  };

  void start(int64_t now, const HotSplit& s) {
    ++splits_;
    pending_ = s;
    if (s.new_shard) {
      pending_.target = ++shards_;
      free_machines_ -= 3;
    }
    moved_.push_back(Moved{s.start, s.end, s.source, pending_.target, now});
    migration_done_ms_ = now + 1000 * static_cast<int64_t>(2 + random_() % 19);
  }

  // The migration commits: the range is cut and the half changes owner.
  void land(int64_t) {
    std::vector<SimRange> next;
    for (const SimRange& r : ranges_) {
      if (r.start != pending_.range_start) {
        next.push_back(r);
        continue;
      }
      SimRange left{r.start, pending_.cut, r.shard}, right{pending_.cut, r.end, r.shard};
      (pending_.start == pending_.cut ? right : left).shard = pending_.target;
      next.push_back(left);
      next.push_back(right);
    }
    ranges_ = std::move(next);
    migration_done_ms_ = 0;
  }

  std::mt19937_64 random_;
  uint64_t seed_ = 0;
  HotSettings settings_{.window_ms = 10'000, .cooldown_ms = 120'000};
  ShardId shards_ = 0;
  uint32_t free_machines_ = 3;
  std::vector<SimRange> ranges_;
  std::vector<SimKey> keys_;
  std::vector<std::string> hot_names_;
  Scenario scenario_ = Scenario::kUniform;
  int64_t hot_start_ms_ = 0;
  size_t hot_range_ = 0;
  double hot_total_ = 0;
  int hot_keys_ = 0;
  int64_t detected_ms_ = -1;
  int splits_ = 0;
  bool hot_key_reported_ = false;
  HotSplit pending_;
  int64_t migration_done_ms_ = 0;
  std::vector<Moved> moved_;
};

TEST(HotShardSimulation, SeedsAreStableDetectAndNeverFlap) {
  if (const char* one = std::getenv("CAIRN_HOT_SEED")) {
    Simulation(std::strtoull(one, nullptr, 10)).run();
    return;
  }
  for (uint64_t seed = 0; seed < 300; ++seed) {
    Simulation(seed).run();
    if (HasFailure()) {
      ADD_FAILURE() << "replay with CAIRN_HOT_SEED=" << seed;
      return;
    }
  }
}

}  // namespace
}  // namespace cairn::orchestrator
