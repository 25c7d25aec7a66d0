#include "common/hlc.h"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

namespace cairn {
namespace {

TEST(HybridClock, NeverGoesBackwardsWhenTheWallClockDoes) {
  int64_t wall = 1'000'000;
  HybridClock clock([&] { return wall; });
  HlcTimestamp a = clock.now();
  wall -= 500;  // NTP steps the clock back
  HlcTimestamp b = clock.now();
  EXPECT_GT(b, a);
  EXPECT_EQ(HybridClock::physical_ms(b), 1'000'000);
  wall += 10'000;
  HlcTimestamp c = clock.now();
  EXPECT_GT(c, b);
  EXPECT_EQ(HybridClock::physical_ms(c), 1'009'500);
  EXPECT_EQ(HybridClock::logical(c), 0);
}

TEST(HybridClock, AdvancesPastObservedTimestamps) {
  int64_t wall = 5'000;
  HybridClock clock([&] { return wall; });
  HlcTimestamp remote = HybridClock::make(9'000, 7);
  clock.observe(remote);
  EXPECT_GT(clock.now(), remote);
  clock.observe(HybridClock::make(1, 1));  // an older timestamp changes nothing
  EXPECT_GT(clock.now(), remote);
}

TEST(HybridClock, CounterOverflowCarriesIntoPhysicalTime) {
  HybridClock clock([] { return int64_t{42}; });
  HlcTimestamp t = 0;
  for (int i = 0; i < 70'000; ++i) {
    HlcTimestamp next = clock.now();
    ASSERT_GT(next, t);
    t = next;
  }
  EXPECT_EQ(HybridClock::physical_ms(t), 43);
}

TEST(HybridClock, UniqueAcrossThreads) {
  HybridClock clock([] { return int64_t{1}; });
  constexpr int kThreads = 4, kEach = 10'000;
  std::vector<std::vector<HlcTimestamp>> seen(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) seen[t].push_back(clock.now());
    });
  }
  for (auto& th : threads) th.join();
  std::vector<HlcTimestamp> all;
  for (auto& v : seen) all.insert(all.end(), v.begin(), v.end());
  std::sort(all.begin(), all.end());
  EXPECT_EQ(std::adjacent_find(all.begin(), all.end()), all.end());
}

}  // namespace
}  // namespace cairn
