#include "orchestrator/balancer.h"

#include <map>

#include <gtest/gtest.h>

namespace cairn::orchestrator {
namespace {

using topology::Range;
using topology::RoutingTableSpec;
using topology::ShardId;
using topology::Token;

constexpr long double kRing = 18446744073709551616.0L;

long double span_of(Token start, Token end) {
  return end == 0 ? kRing - static_cast<long double>(start)
                  : static_cast<long double>(end - start);
}

// A table of `shards` shards (one voting replica each, machine id = shard id) whose ring is cut
// into `ranges` equal ranges dealt to the shards listed in `owners` round-robin.
RoutingTableSpec table_of(size_t shards, size_t ranges, const std::vector<ShardId>& owners) {
  RoutingTableSpec spec;
  spec.epoch = 1;
  spec.replication_factor = 1;
  for (size_t i = 1; i <= shards; ++i) {
    spec.machines.push_back({i, "127.0.0.1:" + std::to_string(7000 + i),
                             "127.0.0.1:" + std::to_string(8000 + i), topology::MachineState::kUp});
    spec.shards.push_back(topology::Shard{i, {i}, {}, {}, i, 0});
  }
  const Token step = static_cast<Token>(kRing / ranges);
  for (size_t i = 0; i < ranges; ++i) {
    Token start = step * i;
    Token end = i + 1 == ranges ? 0 : step * (i + 1);
    spec.ranges.push_back(Range{start, end, owners[i % owners.size()]});
  }
  return spec;
}

// Applies moves to per-shard shares (the moves need not be table ranges) and checks every
// counted shard is within 10 % of the ideal share.
void expect_balanced(const RoutingTableSpec& spec, const std::vector<Move>& moves) {
  std::map<ShardId, long double> share;
  for (const auto& shard : spec.shards) share[shard.id] = 0;
  for (const auto& r : spec.ranges) share[r.shard] += span_of(r.start, r.end);
  for (const auto& m : moves) {
    // Each move lies inside one range owned by its source.
    bool inside = false;
    for (const auto& r : spec.ranges) {
      if (r.shard == m.source && r.contains(m.start) &&
          (m.end == 0 ? r.end == 0 : (m.end > m.start && (r.end == 0 || m.end <= r.end)))) {
        inside = true;
      }
    }
    EXPECT_TRUE(inside) << "move " << m.start << ".." << m.end << " from " << m.source;
    share[m.source] -= span_of(m.start, m.end);
    share[m.target] += span_of(m.start, m.end);
  }
  const long double ideal = kRing / share.size();
  for (const auto& [id, value] : share) {
    EXPECT_NEAR(static_cast<double>(value / ideal), 1.0, kBalanceTolerance)
        << "shard " << id << " holds " << static_cast<double>(value / kRing) << " of the ring";
  }
}

struct Case {
  const char* name;
  size_t shards;
  size_t ranges;
  std::vector<ShardId> owners;
};

TEST(Balancer, BringsEveryShardWithinTenPercent) {
  const std::vector<Case> cases = {
      {"2 shards to 3", 3, 16, {1, 2}},
      {"3 shards to 4", 4, 24, {1, 2, 3}},
      {"many ranges", 5, 4096, {1, 2, 3}},
      {"one huge range", 2, 1, {1}},
      {"one huge range to 4", 4, 1, {1}},
      {"uneven owners", 3, 12, {1, 1, 1, 2, 3}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    RoutingTableSpec spec = table_of(c.shards, c.ranges, c.owners);
    std::vector<Move> moves = balance(spec, {});
    EXPECT_FALSE(moves.empty());
    expect_balanced(spec, moves);
    EXPECT_EQ(balance(spec, {}), moves) << "deterministic";
    // Counting the moves as active migrations leaves nothing more to do.
    EXPECT_TRUE(balance(spec, moves).empty());
  }
}

TEST(Balancer, TwoToThreeMovesExactAmountsCutOnSlotBoundaries) {
  RoutingTableSpec spec = table_of(3, 16, {1, 2});
  std::vector<Move> moves = balance(spec, {});
  long double to_three = 0;
  for (const auto& m : moves) {
    EXPECT_EQ(m.target, 3u);
    EXPECT_EQ(m.start % topology::kSlotTokens, 0u) << m.start;
    EXPECT_EQ(m.end % topology::kSlotTokens, 0u) << m.end;
    to_three += span_of(m.start, m.end);
  }
  // Exact to within half a slot per cut (1/32768 of the ring).
  EXPECT_NEAR(static_cast<double>(to_three / kRing), 1.0 / 3, 1.0 / topology::kSlotCount);
}

TEST(Balancer, SlotAlignedCutKeepsTheMinimumOnBothSides) {
  using topology::kSlotTokens;
  // Rounded to the nearest slot boundary.
  EXPECT_EQ(slot_aligned_cut(0, 0, 5 * kSlotTokens + 7), 5 * kSlotTokens);
  EXPECT_EQ(slot_aligned_cut(0, 0, 5 * kSlotTokens - 7), 5 * kSlotTokens);
  // A range inside one slot is cut where asked.
  EXPECT_EQ(slot_aligned_cut(kSlotTokens + 8, kSlotTokens + (1u << 30), kSlotTokens + (1u << 25)),
            kSlotTokens + (1u << 25));
  // Rounding that would leave less than kMinRangeTokens on a side keeps the exact cut.
  const Token start = 3 * kSlotTokens - kMinRangeTokens / 2;
  EXPECT_EQ(slot_aligned_cut(start, 0, start + kMinRangeTokens * 2), start + kMinRangeTokens * 2);
  // Never rounds up to the ring's end.
  EXPECT_EQ(slot_aligned_cut(0, 0, ~Token{0} - 5), ~Token{0} - 5);
}

TEST(Balancer, BalancedOrSingleShardTablesNeedNothing) {
  EXPECT_TRUE(balance(table_of(2, 16, {1, 2}), {}).empty());
  EXPECT_TRUE(balance(table_of(1, 4, {1}), {}).empty());
  // 11 % off would move, 9 % off does not: within the tolerance.
  RoutingTableSpec spec = table_of(2, 100, {1, 2});
  spec.ranges[0].shard = 1;  // already 1; flip ranges to make 54.5 / 45.5
  for (size_t i : {1, 3, 5, 7}) spec.ranges[i].shard = 1;
  EXPECT_TRUE(balance(spec, {}).empty());
  for (size_t i : {9, 11, 13, 15, 17, 19}) spec.ranges[i].shard = 1;
  EXPECT_FALSE(balance(spec, {}).empty());
}

TEST(Balancer, AShardWithoutVotingReplicasAndRangesDoesNotCount) {
  RoutingTableSpec spec = table_of(3, 16, {1, 2});
  spec.shards[2].joining = spec.shards[2].replicas;
  spec.shards[2].replicas.clear();
  spec.shards[2].leader = 0;
  EXPECT_TRUE(balance(spec, {}).empty());
}

TEST(Balancer, NeverCutsBelowTheMinimum) {
  // A ring of tiny ranges around a huge one: cuts leave at least kMinRangeTokens on each side.
  RoutingTableSpec spec = table_of(2, 1, {1});
  spec.ranges = {Range{0, kMinRangeTokens / 2, 1}, Range{kMinRangeTokens / 2, 0, 1}};
  auto moves = balance(spec, {});
  ASSERT_FALSE(moves.empty());
  for (const auto& m : moves) {
    bool whole = false;
    for (const auto& r : spec.ranges) whole = whole || (r.start == m.start && r.end == m.end);
    if (whole) continue;
    // A cut: the moved part and what stays of the cut range both keep the minimum.
    EXPECT_GE(span_of(m.start, m.end), static_cast<long double>(kMinRangeTokens));
    EXPECT_GE(span_of(m.end, 0), static_cast<long double>(kMinRangeTokens));
  }
  expect_balanced(spec, moves);
}

}  // namespace
}  // namespace cairn::orchestrator
