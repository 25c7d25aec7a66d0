#include "orchestrator/capacity.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace cairn::orchestrator {
namespace {

constexpr int64_t kDay = 86'400'000;
constexpr int64_t kNow = 1'767'225'600'000;  // 2026-01-01T00:00:00Z

// `count` points a minute apart ending at kNow, growing `per_day` from `start`.
std::vector<SeriesPoint> line(double start, double per_day, int count) {
  std::vector<SeriesPoint> out;
  for (int i = 0; i < count; ++i) {
    const int64_t t = kNow - (count - 1 - i) * 60'000;
    out.push_back({t, start + per_day * static_cast<double>(i) * 60'000 / kDay});
  }
  return out;
}

TEST(FitGrowth, RecoversTheSlopeOfALine) {
  const Growth g = fit_growth(line(1000, 240, 60));
  EXPECT_NEAR(g.per_day, 240, 1e-6);
  EXPECT_EQ(g.points, 60u);
}

TEST(FitGrowth, NeedsThreePointsAtDifferentTimes) {
  EXPECT_EQ(fit_growth(line(5, 100, 2)).points, 0u);
  EXPECT_EQ(fit_growth({{kNow, 1}, {kNow, 2}, {kNow, 3}}).per_day, 0);
}

TEST(FitGrowth, FitsThroughNoise) {
  std::vector<SeriesPoint> points = line(0, 1440, 100);  // one a minute
  for (size_t i = 0; i < points.size(); ++i) points[i].value += (i % 2 == 0 ? 0.3 : -0.3);
  EXPECT_NEAR(fit_growth(points).per_day, 1440, 20);
}

struct DaysCase {
  double now;
  double per_day;
  double budget;
  std::optional<double> days;
};

TEST(DaysUntil, Cases) {
  for (const DaysCase& c :
       {DaysCase{50, 10, 100, 5.0}, DaysCase{100, 10, 100, 0.0}, DaysCase{150, -1, 100, 0.0},
        DaysCase{50, 0, 100, std::nullopt}, DaysCase{50, -3, 100, std::nullopt},
        DaysCase{50, 10, 0, std::nullopt}}) {
    EXPECT_EQ(days_until(c.now, c.per_day, c.budget), c.days)
        << c.now << " " << c.per_day << " " << c.budget;
  }
}

ShardHistory shard(topology::ShardId id, double bytes, double bytes_per_day, double ops,
                   double ops_per_day) {
  ShardHistory h;
  h.shard = id;
  h.replicas = 3;
  h.bytes = bytes;
  h.machine_ops = ops;
  h.bytes_history = line(bytes - bytes_per_day * 59.0 / 1440, bytes_per_day, 60);
  h.machine_ops_history = line(ops - ops_per_day * 59.0 / 1440, ops_per_day, 60);
  return h;
}

TEST(ProjectCapacity, RecommendsMachinesBeforeTheFirstShardIsFull) {
  // 1 TB disks; shard 1 at 800 GB growing 10 GB/day: full in 20 days. In 90 days the cluster
  // holds 1.2 + 0.9 + 0.0 = 2.1 TB: 3 shards of 1 TB, one more than now (3 machines at RF 3).
  const CapacitySettings settings{.machine_disk_budget_bytes = 1'000'000'000'000};
  const CapacityProjection p = project_capacity(
      settings, {shard(1, 800e9, 10e9, 100, 0), shard(2, 400e9, 0, 100, 0)}, 3, kNow);
  ASSERT_EQ(p.shards.size(), 2u);
  ASSERT_TRUE(p.shards[0].days_to_disk.has_value());
  EXPECT_NEAR(*p.shards[0].days_to_disk, 20, 1e-3);
  EXPECT_FALSE(p.shards[1].days_to_disk.has_value());
  EXPECT_NEAR(p.bytes_per_day, 10e9, 1e3);
  EXPECT_EQ(p.machines_to_add, 3u);
  ASSERT_TRUE(p.add_before_ms.has_value());
  EXPECT_NEAR(static_cast<double>(*p.add_before_ms - kNow) / kDay, 20, 1e-3);
  // 20 days from 2026-01-01T00:00Z, give or take the fit's rounding either side of midnight.
  EXPECT_EQ(p.recommendation.rfind("add 3 machines before 2026-01-2", 0), 0u) << p.recommendation;
  EXPECT_NE(p.recommendation.find("(shard 1 reaches its disk budget in 20.0 days)"),
            std::string::npos)
      << p.recommendation;
  const nlohmann::json j = capacity_to_json(settings, p);
  EXPECT_EQ(j["add_before"].get<std::string>().substr(0, 9), "2026-01-2");
  EXPECT_EQ(j["machines_to_add"], 3);
}

TEST(ProjectCapacity, OpsBudgetCountsToo) {
  // 5000 ops/s per machine; two shards at 3000 growing 100/day: 20 days; in 90 days
  // 2 x 12000 = 24000 machine-ops: 5 shards, 3 more (9 machines).
  const CapacityProjection p =
      project_capacity(CapacitySettings{.machine_ops_budget = 5000},
                       {shard(1, 1e9, 0, 3000, 100), shard(2, 1e9, 0, 3000, 100)}, 3, kNow);
  ASSERT_TRUE(p.days_to_budget.has_value());
  EXPECT_NEAR(*p.days_to_budget, 20, 1e-3);
  EXPECT_EQ(p.machines_to_add, 9u);
}

TEST(ProjectCapacity, NothingToAddWhenFlatAndNothingWithoutBudgets) {
  const std::vector<ShardHistory> flat = {shard(1, 1e9, 0, 10, 0), shard(2, 1e9, 0, 10, 0)};
  const CapacityProjection fine = project_capacity(
      CapacitySettings{.machine_disk_budget_bytes = 1'000'000'000'000}, flat, 3, kNow);
  EXPECT_EQ(fine.machines_to_add, 0u);
  EXPECT_FALSE(fine.add_before_ms.has_value());
  EXPECT_EQ(fine.recommendation, "no machines needed in the next 90 days");
  const CapacityProjection none = project_capacity(CapacitySettings{}, flat, 3, kNow);
  EXPECT_EQ(none.machines_to_add, 0u);
  EXPECT_NE(none.recommendation.find("no budget set"), std::string::npos);
}

TEST(ProjectCapacity, AShardAlreadyOverItsBudgetNeedsMachinesNow) {
  const CapacityProjection p = project_capacity(CapacitySettings{.machine_disk_budget_bytes = 1000},
                                                {shard(1, 1500, 0, 0, 0)}, 1, kNow);
  EXPECT_EQ(p.machines_to_add, 1u);
  EXPECT_EQ(p.add_before_ms, kNow);
}

}  // namespace
}  // namespace cairn::orchestrator
