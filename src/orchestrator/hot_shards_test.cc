#include "orchestrator/hot_shards.h"

#include <algorithm>
#include <string>

#include <gtest/gtest.h>

#include "topology/token.h"

namespace cairn::orchestrator {
namespace {

using topology::Token;

constexpr Token kEighth = Token{1} << 61;  // an eighth of the ring

// `n` keys whose tokens lie in [start, end), in ring order (found by trying names in turn).
std::vector<std::string> keys_in(Token start, Token end, size_t n, const std::string& prefix) {
  std::vector<std::pair<Token, std::string>> found;
  for (size_t i = 0; found.size() < n && i < 1'000'000; ++i) {
    std::string key = prefix + std::to_string(i);
    const Token t = topology::token_of(key);
    if (t >= start && (end == 0 || t < end)) found.emplace_back(t, std::move(key));
  }
  std::sort(found.begin(), found.end());
  std::vector<std::string> out;
  for (auto& [t, key] : found) out.push_back(std::move(key));
  return out;
}

RangeHeat range_with(Token start, Token end, const std::vector<std::string>& keys,
                     const std::vector<uint64_t>& counts, double ops) {
  RangeHeat r{start, end, ops, {}};
  for (size_t i = 0; i < keys.size(); ++i) r.top_keys.push_back({keys[i], counts[i], 0});
  return r;
}

TEST(LowerMedian, TakesTheLowerMiddleOfAnEvenCount) {
  EXPECT_EQ(lower_median({}), 0);
  EXPECT_EQ(lower_median({5}), 5);
  EXPECT_EQ(lower_median({9, 1}), 1);
  EXPECT_EQ(lower_median({3, 1, 2}), 2);
  EXPECT_EQ(lower_median({4, 1, 3, 2}), 2);
}

TEST(ChooseCut, CutsAtTheLoadMedianOnASlotBoundary) {
  const Token start = 2 * kEighth, end = 3 * kEighth;
  const auto keys = keys_in(start, end, 10, "k:");
  ASSERT_EQ(keys.size(), 10u);
  const CutChoice c =
      choose_cut(range_with(start, end, keys, std::vector<uint64_t>(10, 100), 1000), 0.5);
  ASSERT_TRUE(c.cut.has_value());
  EXPECT_FALSE(c.hot_key.has_value());
  EXPECT_EQ(c.left_weight, 500);
  EXPECT_EQ(c.right_weight, 500);
  EXPECT_GT(*c.cut, topology::token_of(keys[4]));
  EXPECT_LE(*c.cut, topology::token_of(keys[5]));
  // Ten keys in an eighth of the ring are thousands of slots apart: a boundary lies between.
  EXPECT_EQ(*c.cut % topology::kSlotTokens, 0u);
}

TEST(ChooseCut, FollowsTheLoadNotTheTokens) {
  const Token start = 0, end = kEighth;
  const auto keys = keys_in(start, end, 6, "w:");
  ASSERT_EQ(keys.size(), 6u);
  // The first key carries 45 %: the best cut leaves it alone on the left (45 / 55).
  const CutChoice c = choose_cut(range_with(start, end, keys, {45, 11, 11, 11, 11, 11}, 100), 0.5);
  ASSERT_TRUE(c.cut.has_value());
  EXPECT_EQ(c.left_weight, 45);
  EXPECT_EQ(c.right_weight, 55);
  EXPECT_LE(*c.cut, topology::token_of(keys[1]));
}

TEST(ChooseCut, ReportsAKeyThatCarriesTheRange) {
  const Token start = 7 * kEighth, end = 0;
  const auto keys = keys_in(start, end, 4, "h:");
  const CutChoice c = choose_cut(range_with(start, end, keys, {10, 900, 50, 40}, 2000), 0.5);
  EXPECT_FALSE(c.cut.has_value());
  ASSERT_TRUE(c.hot_key.has_value());
  EXPECT_EQ(c.hot_key->key, keys[1]);
  EXPECT_NEAR(c.hot_key->share, 0.9, 1e-9);
  EXPECT_NEAR(c.hot_key->ops_per_sec, 1800, 1e-6);
}

TEST(ChooseCut, KeysSharingAHashTagAreOneToken) {
  const Token t = topology::token_of("{tag}");
  const Token start = t & ~(topology::kSlotTokens - 1);
  RangeHeat r{start, start + topology::kSlotTokens, 500, {}};
  for (int i = 0; i < 8; ++i) r.top_keys.push_back({"{tag}:" + std::to_string(i), 100, 0});
  const CutChoice c = choose_cut(r, 0.5);
  EXPECT_FALSE(c.cut.has_value());
  ASSERT_TRUE(c.hot_key.has_value());
  EXPECT_EQ(c.hot_key->share, 1.0);
}

TEST(ChooseCut, IgnoresKeysOutsideTheRangeAndUnguaranteedCounts) {
  const Token start = kEighth, end = 2 * kEighth;
  const auto inside = keys_in(start, end, 2, "i:");
  const auto outside = keys_in(3 * kEighth, 4 * kEighth, 1, "o:");
  RangeHeat r{start, end, 100, {}};
  r.top_keys = {{outside[0], 1000, 0}, {inside[0], 50, 0}, {inside[1], 500, 450}};
  const CutChoice c = choose_cut(r, 0.5);
  EXPECT_FALSE(c.cut.has_value());  // inside[0] alone carries 50 of 100 guaranteed
  ASSERT_TRUE(c.hot_key.has_value());
  EXPECT_EQ(c.hot_key->key, inside[0]);
  EXPECT_FALSE(choose_cut(RangeHeat{start, end, 100, {}}, 0.5).cut.has_value());
}

// Two shards of four ranges each; shard 1's range `hot` carries `hot_ops` over ten keys.
HotInput two_shards(int64_t now_ms, double hot_ops, double cool_ops, uint32_t free_machines) {
  HotInput in;
  in.now_ms = now_ms;
  in.replication_factor = 3;
  in.free_machines = free_machines;
  for (topology::ShardId id : {1, 2}) {
    ShardHeat s{id, 0, {}};
    for (int i = 0; i < 4; ++i) {
      const Token start = static_cast<Token>((id - 1) * 4 + i) * kEighth / 2;
      const Token end = start + kEighth / 2;
      RangeHeat r{start, end, cool_ops / 4, {}};
      if (id == 1 && i == 1) {
        const auto keys = keys_in(start, end, 10, "hot:");
        r = range_with(start, end, keys, std::vector<uint64_t>(10, 1000), hot_ops);
      }
      s.ops_per_sec += r.ops_per_sec;
      s.ranges.push_back(std::move(r));
    }
    in.shards.push_back(std::move(s));
  }
  return in;
}

TEST(HotPolicy, SplitsOnlyAfterTheWholeWindowAndToTheCoolestShard) {
  HotPolicy policy(HotSettings{});
  for (int64_t t = 0; t < 10'000; t += 1000) {
    const HotDecision d = policy.observe(two_shards(t, 8000, 1000, 0));
    ASSERT_EQ(d.shards.size(), 1u) << t;
    EXPECT_FALSE(d.shards[0].hot) << t;
    EXPECT_FALSE(d.split.has_value()) << t;
  }
  const HotDecision d = policy.observe(two_shards(10'000, 8000, 1000, 0));
  ASSERT_TRUE(d.shards[0].hot);
  ASSERT_TRUE(d.split.has_value());
  EXPECT_EQ(d.split->source, 1u);
  EXPECT_FALSE(d.split->new_shard);
  EXPECT_EQ(d.split->target, 2u);
  EXPECT_EQ(d.split->range_start, kEighth / 2);
  EXPECT_NEAR(d.split->moved_ops, 4000, 1e-6);
  const auto pins = policy.pinned(10'000);
  ASSERT_EQ(pins.size(), 2u);
  EXPECT_EQ(pins[0].end, pins[1].start);
  EXPECT_TRUE(policy.pinned(10'000 + HotSettings{}.cooldown_ms).empty());
}

TEST(HotPolicy, OneDipStartsTheWindowAgain) {
  HotPolicy policy(HotSettings{});
  for (int64_t t = 0; t <= 20'000; t += 1000) {
    const double hot = t == 9000 ? 2000 : 8000;  // under the absolute line once
    const HotDecision d = policy.observe(two_shards(t, hot, 1000, 0));
    EXPECT_EQ(d.split.has_value(), t == 20'000) << t;  // 10 s after the dip
  }
}

struct LineCase {
  double hot_ops;
  double cool_ops;
  bool over;
};

TEST(HotPolicy, BothTheAbsoluteAndTheRelativeLineMustBeCrossed) {
  for (const LineCase& c : {LineCase{2500, 100, false},   // under 3000 ops/s
                            LineCase{7000, 5000, false},  // the other shard is not half as busy
                            LineCase{9000, 4000, true}, LineCase{3000, 1000, true}}) {
    HotPolicy policy(HotSettings{});
    // cool_ops is spread over shard 1's other ranges too: the shard's total is hot + 3/4 cool.
    const HotDecision d =
        policy.observe(two_shards(0, c.hot_ops - 0.75 * c.cool_ops, c.cool_ops, 0));
    EXPECT_EQ(d.shards.size(), c.over ? 1u : 0u) << c.hot_ops << " vs " << c.cool_ops;
  }
}

TEST(HotPolicy, PrefersANewShardWhenMachinesAreFree) {
  HotPolicy policy(HotSettings{.window_ms = 1000, .cooldown_ms = 60'000});
  policy.observe(two_shards(0, 8000, 1000, 3));
  const HotDecision d = policy.observe(two_shards(1000, 8000, 1000, 3));
  ASSERT_TRUE(d.split.has_value());
  EXPECT_TRUE(d.split->new_shard);
}

TEST(HotPolicy, HoldsWhenNoShardCanTakeTheHalf) {
  // Shard 1: 2000 in its hot range + 3 x 1000 = 5000 ops/s; shard 2: 4000. Moving half of the
  // hot range (1000) would leave shard 2 at 5000: no better, so nothing moves.
  HotPolicy policy(HotSettings{.factor = 1.0, .window_ms = 1000, .cooldown_ms = 60'000});
  policy.observe(two_shards(0, 2000, 4000, 0));
  const HotDecision d = policy.observe(two_shards(1000, 2000, 4000, 0));
  // With a factor of 1 the median shard is over the line too (its range has no sampled keys).
  ASSERT_EQ(d.shards.size(), 2u);
  EXPECT_TRUE(d.shards[0].hot);
  EXPECT_FALSE(d.split.has_value());
  ASSERT_EQ(d.held.size(), 2u);
  EXPECT_EQ(d.held[1].reason, HoldReason::kNoSample);
  EXPECT_EQ(d.held[0].reason, HoldReason::kNoTarget);
  EXPECT_NE(d.held[0].text.find("no shard can take"), std::string::npos) << d.held[0].text;
}

TEST(HotPolicy, WaitsForMigrationsAndCoolsDown) {
  const HotSettings settings{.window_ms = 1000, .cooldown_ms = 30'000};
  HotPolicy policy(settings);
  HotInput busy = two_shards(0, 8000, 1000, 0);
  busy.migration_active = true;
  policy.observe(busy);
  busy.now_ms = 1000;
  HotDecision d = policy.observe(busy);
  EXPECT_FALSE(d.split.has_value());
  ASSERT_EQ(d.held.size(), 1u);
  EXPECT_EQ(d.held[0].reason, HoldReason::kMigrating);
  d = policy.observe(two_shards(2000, 8000, 1000, 0));
  ASSERT_TRUE(d.split.has_value());
  // Still hot (the move has not landed): held until the cool-down ends, then split again.
  for (int64_t t = 3000; t < 2000 + settings.cooldown_ms; t += 1000) {
    d = policy.observe(two_shards(t, 8000, 1000, 0));
    EXPECT_FALSE(d.split.has_value()) << t;
    EXPECT_TRUE(d.shards[0].cooling) << t;
  }
  d = policy.observe(two_shards(2000 + settings.cooldown_ms, 8000, 1000, 0));
  EXPECT_TRUE(d.split.has_value());
}

TEST(HotPolicy, ReportsAHotKeyInsteadOfSplitting) {
  HotPolicy policy(HotSettings{.window_ms = 1000, .cooldown_ms = 60'000});
  auto input = [](int64_t t) {
    HotInput in = two_shards(t, 8000, 1000, 3);
    in.shards[0].ranges[1].top_keys[3].count = 50'000;
    return in;
  };
  policy.observe(input(0));
  const HotDecision d = policy.observe(input(1000));
  EXPECT_FALSE(d.split.has_value());
  ASSERT_EQ(d.hot_keys.size(), 1u);
  EXPECT_EQ(d.hot_keys[0].shard, 1u);
  EXPECT_GT(d.hot_keys[0].share, 0.8);
}

TEST(HotSettings, AreValidated) {
  EXPECT_EQ(validate_hot_settings(HotSettings{}), "");
  EXPECT_NE(validate_hot_settings(HotSettings{.factor = 0.5}), "");
  EXPECT_NE(validate_hot_settings(HotSettings{.window_ms = 10'000, .cooldown_ms = 5000}), "");
  EXPECT_NE(validate_hot_settings(HotSettings{.hot_key_share = 0}), "");
  EXPECT_NE(validate_hot_settings(HotSettings{.shard_ops = -1}), "");
}

}  // namespace
}  // namespace cairn::orchestrator
