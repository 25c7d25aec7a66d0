#include "metrics/histogram.h"

#include <random>

#include <gtest/gtest.h>

namespace cairn::metrics {
namespace {

TEST(LogHistogram, BucketsAreContiguousAndOrdered) {
  for (size_t i = 0; i + 1 < kHistogramBuckets; ++i) {
    ASSERT_LT(bucket_lower(i), bucket_lower(i + 1)) << i;
    EXPECT_EQ(bucket_of(bucket_lower(i)), i);
    EXPECT_EQ(bucket_of(bucket_lower(i + 1) - 1), i);
  }
  EXPECT_EQ(bucket_of(UINT64_MAX), kHistogramBuckets - 1);
}

TEST(LogHistogram, SmallValuesAreExact) {
  LogHistogram h;
  for (int i = 0; i < 100; ++i) h.record(3);
  const HistogramSnapshot s = h.snapshot();
  EXPECT_EQ(s.count, 100u);
  EXPECT_EQ(s.sum, 300u);
  EXPECT_EQ(s.percentile(0.5), 3u);
  EXPECT_EQ(s.percentile(0.99), 3u);
}

TEST(LogHistogram, PercentilesWithinAQuarterOfTheTruth) {
  LogHistogram h;
  std::mt19937_64 random(7);
  std::vector<uint64_t> values;
  for (int i = 0; i < 20000; ++i) {
    const uint64_t v = 1 + random() % 100000;
    values.push_back(v);
    h.record_single_writer(v);
  }
  std::sort(values.begin(), values.end());
  const HistogramSnapshot s = h.snapshot();
  for (double q : {0.5, 0.9, 0.99, 0.999}) {
    const uint64_t truth = values[static_cast<size_t>(std::ceil(q * values.size())) - 1];
    const uint64_t reported = s.percentile(q);
    EXPECT_GE(reported, truth) << q;
    EXPECT_LE(static_cast<double>(reported), 1.25 * static_cast<double>(truth) + 1) << q;
  }
}

TEST(LogHistogram, OneSlowValueShowsInTheTail) {
  LogHistogram h;
  for (int i = 0; i < 999; ++i) h.record(10);
  h.record(50000);
  const HistogramSnapshot s = h.snapshot();
  EXPECT_LT(s.percentile(0.99), 16u);
  EXPECT_GE(s.percentile(0.9999), 50000u);
  EXPECT_EQ(HistogramSnapshot().percentile(0.99), 0u);  // empty: 0
}

TEST(LogHistogram, MinusGivesTheValuesRecordedInBetween) {
  LogHistogram h;
  for (int i = 0; i < 10; ++i) h.record(5);
  const HistogramSnapshot before = h.snapshot();
  for (int i = 0; i < 10; ++i) h.record(1000);
  const HistogramSnapshot between = h.snapshot().minus(before);
  EXPECT_EQ(between.count, 10u);
  EXPECT_EQ(between.sum, 10000u);
  EXPECT_GE(between.percentile(0.5), 1000u);
}

TEST(LogHistogram, CountAtMostTheExposedBoundsIsExact) {
  LogHistogram h;
  for (uint64_t v = 0; v < 5000; ++v) h.record(v);
  const HistogramSnapshot s = h.snapshot();
  for (uint64_t bound : prometheus_bounds()) {
    EXPECT_EQ(s.count_at_most(bound), std::min<uint64_t>(bound + 1, 5000)) << bound;
  }
}

}  // namespace
}  // namespace cairn::metrics
