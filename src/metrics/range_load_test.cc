#include "metrics/range_load.h"

#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace cairn::metrics {
namespace {

constexpr topology::Token kHalf = topology::Token{1} << 63;

TEST(RangeLoadTracker, CountsPerRange) {
  RangeLoadTracker tracker;
  tracker.record_write(5, "ignored", 10, 1);  // no ranges yet: not counted
  tracker.set_ranges({{0, kHalf}, {kHalf, 0}});
  for (int i = 0; i < 100; ++i) tracker.record_write(5, "hot", 10, 20);
  tracker.record_write(kHalf + 1, "other", 7, 3000);
  tracker.record_read(kHalf + 2, "other", 4, 2);
  const std::vector<RangeSample> samples = tracker.sample();
  ASSERT_EQ(samples.size(), 2u);
  EXPECT_EQ(samples[0].writes, 100u);
  EXPECT_EQ(samples[0].bytes_in, 1000u);
  EXPECT_EQ(samples[0].reads, 0u);
  ASSERT_FALSE(samples[0].top_keys.empty());
  EXPECT_EQ(samples[0].top_keys[0].key, "hot");
  EXPECT_EQ(samples[0].top_keys[0].count, 100u);
  EXPECT_EQ(samples[1].writes, 1u);
  EXPECT_EQ(samples[1].reads, 1u);
  EXPECT_EQ(samples[1].bytes_out, 4u);
  EXPECT_GE(samples[1].latency_us.percentile(1.0), 3000u);
}

TEST(RangeLoadTracker, UnchangedRangesKeepTheirCountersAcrossTables) {
  RangeLoadTracker tracker;
  tracker.set_ranges({{0, kHalf}, {kHalf, 0}});
  tracker.record_write(1, "a", 1, 1);
  tracker.record_write(kHalf, "b", 1, 1);
  tracker.set_ranges({{0, kHalf}, {kHalf, kHalf + 100}, {kHalf + 100, 0}});  // split the second
  const std::vector<RangeSample> samples = tracker.sample();
  ASSERT_EQ(samples.size(), 3u);
  EXPECT_EQ(samples[0].writes, 1u);
  EXPECT_EQ(samples[1].writes, 0u);
  EXPECT_EQ(samples[2].start, kHalf + 100);
}

TEST(RangeLoadTracker, HotKeysAgeOutAfterTwoRotations) {
  RangeLoadTracker tracker;
  tracker.set_ranges({{0, 0}});
  tracker.record_read(1, "old", 1, 1);
  tracker.rotate_top_keys();
  EXPECT_EQ(tracker.sample()[0].top_keys.size(), 1u);  // the previous generation still shows
  tracker.rotate_top_keys();
  EXPECT_TRUE(tracker.sample()[0].top_keys.empty());
}

TEST(RangeLoadTracker, ConcurrentWritersAndTableChangesLoseNoCount) {
  RangeLoadTracker tracker;
  // The range holding token 42 stays; the others are split and merged again and again.
  tracker.set_ranges({{0, kHalf}, {kHalf, 0}});
  std::atomic<bool> stop{false};
  std::thread changer([&] {
    for (bool split = true; !stop.load(); split = !split) {
      if (split) {
        tracker.set_ranges({{0, kHalf}, {kHalf, kHalf + 100}, {kHalf + 100, 0}});
      } else {
        tracker.set_ranges({{0, kHalf}, {kHalf, 0}});
      }
    }
  });
  std::vector<std::thread> writers;
  for (int t = 0; t < 4; ++t) {
    writers.emplace_back([&] {
      for (int i = 0; i < 20000; ++i) tracker.record_write(42, "k", 1, 1);
    });
  }
  for (auto& w : writers) w.join();
  stop = true;
  changer.join();
  EXPECT_EQ(tracker.sample()[0].writes, 80000u);
}

TEST(RangeLoadReport, JsonRoundTripAndStrictParsing) {
  RangeLoadReport report;
  report.start = 0x10;
  report.end = 0;
  report.writes_per_sec = 12.5;
  report.writes_total = 100;
  report.p99_us = 250;
  report.top_keys = {{"hot", 90, 2}};
  auto parsed = range_report_from_json(range_report_to_json(report));
  ASSERT_TRUE(parsed.is_ok()) << parsed.status().message();
  EXPECT_EQ(*parsed, report);
  nlohmann::json bad = range_report_to_json(report);
  bad["p99_us"] = -1;
  EXPECT_FALSE(range_report_from_json(bad).is_ok());
  bad = range_report_to_json(report);
  bad.erase("start");
  EXPECT_FALSE(range_report_from_json(bad).is_ok());
  bad = range_report_to_json(report);
  bad["top_keys"] = nlohmann::json::array({{{"key", std::string(1000, 'x')}, {"count", 1}}});
  EXPECT_FALSE(range_report_from_json(bad).is_ok());
}

TEST(LoadWindow, RatesStayAfterTheTrafficStops) {
  // The old defect: ops/s was the rate of the last 250 ms, so 0 right after a burst.
  LoadWindow window(10'000);
  RangeSample sample;
  sample.start = 0;
  window.update(0, {sample});
  LogHistogram latency;
  for (int i = 0; i < 2000; ++i) latency.record(100);
  sample.writes = 2000;
  sample.latency_us = latency.snapshot();
  auto reports = window.update(1000, {sample});  // the burst
  EXPECT_DOUBLE_EQ(reports[0].writes_per_sec, 2000.0);
  reports = window.update(1250, {sample});  // nothing since: still counted in the window
  EXPECT_GT(reports[0].writes_per_sec, 1000.0);
  EXPECT_GE(reports[0].p99_us, 100u);
  reports = window.update(20000, {sample});  // long after: 0 again
  window.update(21000, {sample});
  reports = window.update(31500, {sample});
  EXPECT_EQ(reports[0].writes_per_sec, 0.0);
  EXPECT_EQ(reports[0].p99_us, 0u);
}

TEST(CountWindow, RateAndLatencyOverTheWindow) {
  CountWindow window(10'000);
  LogHistogram latency;
  window.update(0, 0, latency.snapshot());
  for (int i = 0; i < 100; ++i) latency.record(900);
  const CountWindow::Rate rate = window.update(2000, 100, latency.snapshot());
  EXPECT_DOUBLE_EQ(rate.per_sec, 50.0);
  EXPECT_GE(rate.latency.percentile(0.99), 900u);
}

}  // namespace
}  // namespace cairn::metrics
