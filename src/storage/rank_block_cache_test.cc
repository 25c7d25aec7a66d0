#include "storage/rank_block_cache.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace cairn::storage {
namespace {

std::vector<RankBlock> three_blocks() {
  return {RankBlock{"", "f", 3}, RankBlock{"f", "p", 4}, RankBlock{"p", "", 5}};
}

TEST(RankBlockCacheTest, EditsKeepTheBlocksInOrderOfTheirEnds) {
  std::vector<RankBlock> blocks = three_blocks();
  // A split of the middle block: its lower half gets a new end, the upper half keeps "p".
  apply_rank_edit(blocks, "k", RankBlock{"f", "k", 2});
  apply_rank_edit(blocks, "p", RankBlock{"k", "p", 3});
  EXPECT_EQ(blocks, (std::vector<RankBlock>{{"", "f", 3}, {"f", "k", 2}, {"k", "p", 3}, {"p", "", 5}}));
  // The last block (empty end) is replaced in place, and deletions remove by end.
  apply_rank_edit(blocks, "", RankBlock{"q", "", 4});
  apply_rank_edit(blocks, "k", std::nullopt);
  apply_rank_edit(blocks, "zz", std::nullopt);  // not there: nothing happens
  EXPECT_EQ(blocks, (std::vector<RankBlock>{{"", "f", 3}, {"k", "p", 3}, {"q", "", 4}}));
}

TEST(RankBlockCacheTest, TheBlockHoldingASubKeyIsTheFirstEndingAboveIt) {
  const std::vector<RankBlock> blocks = three_blocks();
  EXPECT_EQ(rank_block_holding(blocks, "a")->end, "f");
  EXPECT_EQ(rank_block_holding(blocks, "f")->end, "p");  // an end belongs to the next block
  EXPECT_EQ(rank_block_holding(blocks, "o")->end, "p");
  EXPECT_EQ(rank_block_holding(blocks, "zzz")->end, "");
  EXPECT_EQ(rank_block_holding({}, "a"), nullptr);
}

TEST(RankBlockCacheTest, WritesFollowCachedRowsOnly) {
  RankBlockCache cache(1000);
  cache.insert("row1", three_blocks(), cache.epoch());
  RankEdits edits;
  edits.edits.push_back({"row1", "f", RankBlock{"", "f", 2}});
  edits.edits.push_back({"row2", "f", RankBlock{"", "f", 9}});  // not cached: stays so
  cache.apply(edits);
  ASSERT_NE(cache.find("row1"), nullptr);
  EXPECT_EQ(cache.find("row1")->blocks[0].count, 2u);
  EXPECT_EQ(cache.find("row2"), nullptr);
}

TEST(RankBlockCacheTest, ARangeDeletionForgetsEverythingAndRefusesLoadsFromBeforeIt) {
  RankBlockCache cache(1000);
  const uint64_t before = cache.epoch();
  cache.insert("row1", three_blocks(), before);
  cache.begin_range_deletion();
  EXPECT_EQ(cache.epoch() % 2, 1u);  // readers go to their snapshot meanwhile
  EXPECT_EQ(cache.find("row1"), nullptr);
  cache.end_range_deletion();
  // Blocks a reader loaded before the deletion are returned to it but not kept.
  auto entry = cache.insert("row2", three_blocks(), before);
  EXPECT_EQ(entry->blocks.size(), 3u);
  EXPECT_EQ(cache.find("row2"), nullptr);
  cache.insert("row2", three_blocks(), cache.epoch());
  EXPECT_NE(cache.find("row2"), nullptr);
}

TEST(RankBlockCacheTest, TheLeastRecentlyUsedRowsGoFirstPastTheBound) {
  RankBlockCache cache(10);  // each row below counts 3 blocks + 1
  cache.insert("a", three_blocks(), cache.epoch());
  cache.insert("b", three_blocks(), cache.epoch());
  ASSERT_NE(cache.find("a"), nullptr);  // "a" is now the most recently used
  cache.insert("c", three_blocks(), cache.epoch());
  EXPECT_EQ(cache.find("b"), nullptr);
  EXPECT_NE(cache.find("a"), nullptr);
  EXPECT_NE(cache.find("c"), nullptr);
  EXPECT_EQ(cache.cached_blocks(), 8u);
  // A row too big for the whole bound is never kept.
  cache.insert("huge", std::vector<RankBlock>(20), cache.epoch());
  EXPECT_EQ(cache.find("huge"), nullptr);
  EXPECT_LE(cache.cached_blocks(), 10u);
}

}  // namespace
}  // namespace cairn::storage
