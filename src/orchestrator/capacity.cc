#include "orchestrator/capacity.h"

#include <algorithm>
#include <cmath>
#include <ctime>

#include <fmt/chrono.h>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace cairn::orchestrator {

namespace {

using nlohmann::json;

std::string date_of(int64_t wall_ms) {
  const std::time_t seconds = static_cast<std::time_t>(wall_ms / 1000);
  return fmt::format("{:%Y-%m-%d}", fmt::gmtime(seconds));
}

json optional_number(const std::optional<double>& value) {
  return value ? json(*value) : json(nullptr);
}

// Shards needed to hold `total` when each holds at most `budget` (0 budget: no bound).
double shards_for(double total, double budget) {
  return budget > 0 ? std::ceil(std::max(0.0, total) / budget) : 0;
}

}  // namespace

Growth fit_growth(const std::vector<SeriesPoint>& points) {
  if (points.size() < kFitPointsMin) return Growth{};
  // Times relative to the first point, in days, so the sums stay well inside double precision.
  double mean_t = 0, mean_v = 0;
  for (const SeriesPoint& p : points) {
    mean_t += static_cast<double>(p.time_ms - points.front().time_ms) / kMsPerDay;
    mean_v += p.value;
  }
  const double n = static_cast<double>(points.size());
  mean_t /= n;
  mean_v /= n;
  double covariance = 0, variance = 0;
  for (const SeriesPoint& p : points) {
    const double t = static_cast<double>(p.time_ms - points.front().time_ms) / kMsPerDay - mean_t;
    covariance += t * (p.value - mean_v);
    variance += t * t;
  }
  if (variance <= 0) return Growth{};
  return Growth{covariance / variance, points.size()};
}

std::optional<double> days_until(double now_value, double per_day, double budget) {
  if (budget <= 0) return std::nullopt;
  if (now_value >= budget) return 0.0;
  if (per_day <= 0) return std::nullopt;
  return (budget - now_value) / per_day;
}

CapacityProjection project_capacity(const CapacitySettings& settings,
                                    const std::vector<ShardHistory>& shards,
                                    uint32_t replication_factor, int64_t now_wall_ms) {
  CapacityProjection out;
  const double disk = static_cast<double>(settings.machine_disk_budget_bytes);
  const double ops = settings.machine_ops_budget;
  bool shard_within_horizon = false;
  std::optional<topology::ShardId> first_shard;
  std::string first_budget;
  for (const ShardHistory& h : shards) {
    ShardProjection p;
    p.shard = h.shard;
    p.bytes = h.bytes;
    p.bytes_growth = fit_growth(h.bytes_history);
    p.machine_ops = h.machine_ops;
    p.ops_growth = fit_growth(h.machine_ops_history);
    p.days_to_disk = days_until(h.bytes, p.bytes_growth.per_day, disk);
    p.days_to_ops = days_until(h.machine_ops, p.ops_growth.per_day, ops);
    for (const auto& [days, budget] :
         {std::pair{p.days_to_disk, "disk"}, std::pair{p.days_to_ops, "ops"}}) {
      if (!days) continue;
      if (!out.days_to_budget || *days < *out.days_to_budget) {
        out.days_to_budget = *days;
        first_shard = h.shard;
        first_budget = budget;
      }
      if (*days < kHorizonDays) shard_within_horizon = true;
    }
    out.bytes += p.bytes;
    out.bytes_per_day += p.bytes_growth.per_day;
    out.machine_ops += p.machine_ops;
    out.ops_per_day += p.ops_growth.per_day;
    out.shards.push_back(std::move(p));
  }
  if (disk <= 0 && ops <= 0) {
    out.recommendation =
        "no budget set (--machine-disk-budget-bytes, --machine-ops-budget): nothing to project";
    return out;
  }
  // Rule 4.
  const double current = static_cast<double>(shards.size());
  double needed = std::max({current, shards_for(out.bytes + out.bytes_per_day * kHorizonDays, disk),
                            shards_for(out.machine_ops + out.ops_per_day * kHorizonDays, ops)});
  // One shard filling up alone still needs a shard to take part of it, however the others do.
  if (shard_within_horizon) needed = std::max(needed, current + 1);
  const double missing = std::min(needed - current, 1e6);  // bounded against absurd growth
  out.machines_to_add = static_cast<uint32_t>(missing) * std::max<uint32_t>(1, replication_factor);
  if (out.machines_to_add == 0) {
    out.recommendation = fmt::format("no machines needed in the next {:.0f} days", kHorizonDays);
    return out;
  }
  const double days =
      out.days_to_budget ? std::min(*out.days_to_budget, kHorizonDays) : kHorizonDays;
  out.add_before_ms = now_wall_ms + static_cast<int64_t>(days * kMsPerDay);
  out.recommendation =
      fmt::format("add {} machines before {}", out.machines_to_add, date_of(*out.add_before_ms));
  if (first_shard && out.days_to_budget) {
    out.recommendation += fmt::format(" (shard {} reaches its {} budget in {:.1f} days)",
                                      *first_shard, first_budget, *out.days_to_budget);
  }
  return out;
}

json capacity_to_json(const CapacitySettings& settings, const CapacityProjection& p) {
  json shards = json::array();
  for (const ShardProjection& s : p.shards) {
    shards.push_back(json{{"shard", s.shard},
                          {"bytes", s.bytes},
                          {"bytes_per_day", s.bytes_growth.per_day},
                          {"machine_ops_per_sec", s.machine_ops},
                          {"ops_per_day", s.ops_growth.per_day},
                          {"points", s.bytes_growth.points},
                          {"days_to_disk_budget", optional_number(s.days_to_disk)},
                          {"days_to_ops_budget", optional_number(s.days_to_ops)}});
  }
  return json{{"machine_disk_budget_bytes", settings.machine_disk_budget_bytes},
              {"machine_ops_budget", settings.machine_ops_budget},
              {"horizon_days", kHorizonDays},
              {"shards", std::move(shards)},
              {"cluster",
               {{"bytes", p.bytes},
                {"bytes_per_day", p.bytes_per_day},
                {"machine_ops_per_sec", p.machine_ops},
                {"ops_per_day", p.ops_per_day},
                {"days_to_budget", optional_number(p.days_to_budget)}}},
              {"machines_to_add", p.machines_to_add},
              {"add_before_ms", p.add_before_ms ? json(*p.add_before_ms) : json(nullptr)},
              {"add_before", p.add_before_ms ? json(date_of(*p.add_before_ms)) : json(nullptr)},
              {"recommendation", p.recommendation}};
}

}  // namespace cairn::orchestrator
