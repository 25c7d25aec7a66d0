#include "metrics/topk.h"

#include <random>

#include <gtest/gtest.h>

namespace cairn::metrics {
namespace {

TEST(TopK, FindsTheHeavyHittersAmongManyKeys) {
  TopK top(16);
  std::mt19937_64 random(1);
  for (int i = 0; i < 100000; ++i) {
    if (i % 5 == 0) {
      top.add("hot");  // 20 %
    } else if (i % 10 == 1) {
      top.add("warm");  // 10 %: above total / k, so guaranteed to be found
    } else {
      top.add("k" + std::to_string(random() % 50000));
    }
  }
  const std::vector<TopKEntry> entries = top.top();
  ASSERT_EQ(entries.size(), 16u);
  EXPECT_EQ(entries[0].key, "hot");
  EXPECT_GE(entries[0].count, 20000u);
  EXPECT_LE(entries[0].count - entries[0].error, 20000u);
  EXPECT_EQ(entries[1].key, "warm");
  EXPECT_EQ(top.total(), 100000u);
}

TEST(TopK, BoundedAndTruncatesLongKeys) {
  TopK top(4);
  for (int i = 0; i < 100; ++i) top.add("key" + std::to_string(i));
  EXPECT_EQ(top.top().size(), 4u);
  top.clear();
  top.add(std::string(1000, 'x'));
  ASSERT_EQ(top.top().size(), 1u);
  EXPECT_EQ(top.top()[0].key.size(), kTopKeyBytesMax);
}

TEST(TopK, MergeSumsEqualKeys) {
  std::vector<TopKEntry> entries = {{"a", 5, 0}, {"b", 3, 0}, {"a", 4, 1}, {"c", 1, 0}};
  const std::vector<TopKEntry> merged = merge_top(entries, 2);
  ASSERT_EQ(merged.size(), 2u);
  EXPECT_EQ(merged[0], (TopKEntry{"a", 9, 1}));
  EXPECT_EQ(merged[1].key, "b");
}

}  // namespace
}  // namespace cairn::metrics
