#include "common/clock_offset.h"

#include <gtest/gtest.h>

namespace cairn {
namespace {

ClockOffsetSample sample(int64_t our_clock_ahead_ms, int64_t round_trip_ms,
                         int64_t reference_reads_after_ms) {
  // The reference's clock reads `t` when ours reads `t + our_clock_ahead_ms`.
  const int64_t reference_sent = 1'000'000;
  return {reference_sent + our_clock_ahead_ms, round_trip_ms,
          reference_sent + reference_reads_after_ms};
}

TEST(ClockOffsetTest, EstimatesTheOffsetWithinHalfTheRoundTrip) {
  ClockOffset clock(500);
  clock.observe(sample(3'600'000, 10, 5));
  EXPECT_TRUE(clock.measured());
  EXPECT_EQ(clock.offset_ms(), -3'600'000);  // we are an hour ahead
  EXPECT_EQ(clock.error_ms(), 6);
  // Wherever within the round trip the reference read its clock, the estimate is within error.
  for (int64_t at : {0, 3, 10}) {
    clock.observe(sample(-200, 10, at));
    EXPECT_LE(std::llabs(clock.offset_ms() - 200), clock.error_ms()) << at;
  }
}

TEST(ClockOffsetTest, OutOfBoundOnlyWhenEvenTheBestReadingIsOut) {
  ClockOffset clock(500);
  EXPECT_FALSE(clock.observe(sample(0, 2, 1)));
  EXPECT_TRUE(clock.in_bound());
  // 520 ms ahead but a 100 ms round trip: it may be 469 ms: no verdict change.
  EXPECT_FALSE(clock.observe(sample(520, 100, 50)));
  EXPECT_TRUE(clock.in_bound());
  EXPECT_TRUE(clock.observe(sample(520, 4, 2)));
  EXPECT_FALSE(clock.in_bound());
  // Back to 480 ms but with an uncertain sample: stays out until surely in.
  EXPECT_FALSE(clock.observe(sample(480, 100, 50)));
  EXPECT_FALSE(clock.in_bound());
  EXPECT_TRUE(clock.observe(sample(480, 4, 2)));
  EXPECT_TRUE(clock.in_bound());
  // Behind counts as much as ahead.
  EXPECT_TRUE(clock.observe(sample(-2000, 4, 2)));
  EXPECT_FALSE(clock.in_bound());
}

TEST(ClockOffsetTest, ABoundOfZeroIsOff) {
  ClockOffset clock(0);
  EXPECT_FALSE(clock.observe(sample(86'400'000, 2, 1)));
  EXPECT_TRUE(clock.in_bound());
  EXPECT_EQ(clock.offset_ms(), -86'400'000);
}

}  // namespace
}  // namespace cairn
