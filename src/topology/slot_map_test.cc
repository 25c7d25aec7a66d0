#include "topology/slot_map.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "topology/test_tables.h"

namespace cairn::topology {
namespace {

using test::initial;

TEST(SlotMap, SlotAlignedRangesMapEachSlotToItsRange) {
  const RoutingTable table = initial(6, 2, 3, 2);  // 4 ranges of 4096 slots, shards 1 2 1 2
  const std::vector<SlotSpan> spans = slot_spans(table);
  EXPECT_EQ(spans, (std::vector<SlotSpan>{
                       {0, 4095, 1}, {4096, 8191, 2}, {8192, 12287, 1}, {12288, 16383, 2}}));
  for (const std::string key : {"foo", "somekey", "{user1000}.following", "a", ""}) {
    EXPECT_EQ(slot_owner(table, slot_of(key)), table.shard_for_token(token_of(key)).id) << key;
  }
}

TEST(SlotMap, ASplitSlotIsReportedOnTheShardHoldingMostOfIt) {
  RoutingTableSpec spec = initial(6, 2, 3, 1).spec();  // [0, slot 8192) → 1, the rest → 2
  // Move the last quarter of slot 100 and the first three quarters of slot 101 to shard 2.
  spec.ranges = {
      Range{0, slot_start(100) + 3 * (kSlotTokens / 4), 1},
      Range{slot_start(100) + 3 * (kSlotTokens / 4), slot_start(101) + kSlotTokens / 4 * 3, 2},
      Range{slot_start(101) + kSlotTokens / 4 * 3, slot_start(8192), 1},
      Range{slot_start(8192), 0, 2}};
  Result<RoutingTable> table = RoutingTable::create(spec);
  ASSERT_TRUE(table.is_ok()) << table.status().to_string();
  EXPECT_EQ(slot_owner(*table, 100), 1u);
  EXPECT_EQ(slot_owner(*table, 101), 2u);
  EXPECT_EQ(slot_owner(*table, 102), 1u);
  EXPECT_EQ(slot_owner(*table, 16383), 2u);
  EXPECT_EQ(slot_spans(*table),
            (std::vector<SlotSpan>{{0, 100, 1}, {101, 101, 2}, {102, 8191, 1}, {8192, 16383, 2}}));
}

TEST(SlotMap, ATieGoesToTheLowerTokens) {
  RoutingTableSpec spec = initial(6, 2, 3, 1).spec();
  spec.ranges = {Range{0, slot_start(7) + kSlotTokens / 2, 2},
                 Range{slot_start(7) + kSlotTokens / 2, 0, 1}};
  Result<RoutingTable> table = RoutingTable::create(spec);
  ASSERT_TRUE(table.is_ok()) << table.status().to_string();
  EXPECT_EQ(slot_owner(*table, 7), 2u);
  EXPECT_EQ(slot_owner(*table, 8), 1u);
}

TEST(SlotMap, SpansCoverEverySlotOnce) {
  const RoutingTable table = initial(9, 3, 3, 7);  // 21 ranges
  const std::vector<SlotSpan> spans = slot_spans(table);
  ASSERT_FALSE(spans.empty());
  EXPECT_EQ(spans.front().first, 0);
  EXPECT_EQ(uint32_t{spans.back().last}, kSlotCount - 1);
  for (size_t i = 1; i < spans.size(); ++i) {
    EXPECT_EQ(spans[i].first, spans[i - 1].last + 1);
    EXPECT_NE(spans[i].shard, spans[i - 1].shard);
  }
  EXPECT_EQ(spans.size(), 21u);
}

TEST(SlotMap, PrimaryIsTheLeaderWhileItIsUp) {
  RoutingTableSpec spec = initial(7, 2, 3, 1).spec();
  Result<RoutingTable> table = RoutingTable::create(spec);
  ASSERT_TRUE(table.is_ok());
  const Shard& shard = *table->find_shard(1);
  EXPECT_EQ(shard_primary(*table, shard)->id, 1u);
  std::vector<MachineId> secondaries;
  for (const Machine* m : shard_secondaries(*table, shard)) secondaries.push_back(m->id);
  EXPECT_EQ(secondaries, (std::vector<MachineId>{2, 3}));
  EXPECT_TRUE(serves_shard(shard, 2));
  EXPECT_FALSE(serves_shard(shard, 4));

  spec.machines[0].state = MachineState::kDown;
  table = RoutingTable::create(spec);
  ASSERT_TRUE(table.is_ok());
  EXPECT_EQ(shard_primary(*table, *table->find_shard(1))->id, 2u);
  secondaries.clear();
  for (const Machine* m : shard_secondaries(*table, *table->find_shard(1))) {
    secondaries.push_back(m->id);
  }
  EXPECT_EQ(secondaries, (std::vector<MachineId>{3}));
}

}  // namespace
}  // namespace cairn::topology
