#pragma once
// Capacity planning (docs/operations.md "Capacity planning"): growth of bytes and ops per shard
// fitted over the LoadBook history, the days until a machine reaches its disk or ops budget,
// and how many machines to add before when. Pure: no I/O, no clock (the caller passes now).
//
// Model, by number:
//  1. Growth is the least-squares line through a shard's history points (time, value); fewer
//     than kFitPointsMin points, or all at one time, give no growth (0 per day).
//  2. Every replica of a shard stores the whole shard, so a machine's bytes are the shard's;
//     a machine's ops are the shard's writes (each replica applies each) plus its share of the
//     reads (reads are summed over replicas by the LoadBook, so divided by the replicas here).
//  3. Days until a budget: (budget - now) / growth per day when growing; 0 when already over;
//     none when not growing or no budget is set (0 = no budget).
//  4. The recommendation looks kHorizonDays ahead: the shards needed then are the cluster's
//     projected bytes and per-machine ops divided by the budgets, rounded up; each missing
//     shard is RF machines. "Before" is the earliest day a shard reaches a budget.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "topology/routing_table.h"

namespace cairn::orchestrator {

inline constexpr size_t kFitPointsMin = 3;
inline constexpr double kHorizonDays = 90;
inline constexpr double kMsPerDay = 86'400'000.0;

struct CapacitySettings {
  uint64_t machine_disk_budget_bytes = 0;  // --machine-disk-budget-bytes; 0: none
  double machine_ops_budget = 0;           // --machine-ops-budget; 0: none
};

struct SeriesPoint {
  int64_t time_ms = 0;
  double value = 0;
};

struct Growth {
  double per_day = 0;  // slope of the fitted line
  size_t points = 0;   // points fitted (0 when there were too few)
};

// Rule 1.
Growth fit_growth(const std::vector<SeriesPoint>& points);

// Rule 3: nullopt when never (no budget, or not growing while under it).
std::optional<double> days_until(double now_value, double per_day, double budget);

struct ShardHistory {
  topology::ShardId shard = topology::kNoShard;
  uint32_t replicas = 1;   // voting replicas (at least 1)
  double bytes = 0;        // now
  double machine_ops = 0;  // now, per machine (rule 2)
  std::vector<SeriesPoint> bytes_history;
  std::vector<SeriesPoint> machine_ops_history;
};

struct ShardProjection {
  topology::ShardId shard = topology::kNoShard;
  double bytes = 0;
  Growth bytes_growth;
  double machine_ops = 0;
  Growth ops_growth;
  std::optional<double> days_to_disk;
  std::optional<double> days_to_ops;
};

struct CapacityProjection {
  std::vector<ShardProjection> shards;
  double bytes = 0;  // cluster: sum over shards
  double bytes_per_day = 0;
  double machine_ops = 0;  // cluster: sum over shards of the per-machine ops
  double ops_per_day = 0;
  std::optional<double> days_to_budget;  // the earliest shard's
  uint32_t machines_to_add = 0;
  std::optional<int64_t> add_before_ms;  // wall clock
  std::string recommendation;
};

CapacityProjection project_capacity(const CapacitySettings& settings,
                                    const std::vector<ShardHistory>& shards,
                                    uint32_t replication_factor, int64_t now_wall_ms);

nlohmann::json capacity_to_json(const CapacitySettings& settings,
                                const CapacityProjection& projection);

}  // namespace cairn::orchestrator
