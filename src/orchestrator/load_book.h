#pragma once
// LoadBook: the load per shard as the machines' heartbeats report it (docs/operations.md "Load
// per range"), kept in memory by the leading orchestrator (not persisted: after a restart, or
// on another orchestrator, it fills again within seconds).
//
// Each heartbeat's "load.ranges" (metrics::RangeLoadReport, the codec machines use too)
// replaces that machine's previous report. A shard's load is aggregated from the reports of its
// members (voting, extra, joining) younger than kReportStaleMs, range by range:
//   writes/s and bytes in/s: the largest of its replicas (every replica applies every write);
//   reads/s and bytes out/s: the sum of its replicas (each read is served by R of them);
//   keys and bytes stored: the largest of its replicas; percentiles: the largest;
//   hottest keys: merged (counts summed), the kTopKeys first.
// History: one point a second for kSecondsKept seconds and one a minute (the mean of its
// seconds, the largest p99) for kMinutesKept minutes, per shard.

#include <cstdint>
#include <deque>
#include <map>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "metrics/range_load.h"
#include "topology/routing_table.h"

namespace cairn::orchestrator {

struct LoadPoint {
  int64_t time_ms = 0;  // wall clock
  double reads_per_sec = 0;
  double writes_per_sec = 0;
  double bytes_in_per_sec = 0;
  double bytes_out_per_sec = 0;
  uint64_t keys = 0;
  uint64_t bytes = 0;
  uint64_t p99_us = 0;
};

struct ShardLoad {
  topology::ShardId shard = topology::kNoShard;
  size_t machines_reporting = 0;
  metrics::RangeLoadReport total;  // start/end unused; the shard's aggregate
  std::vector<metrics::RangeLoadReport> ranges;  // aggregated over replicas, ring order
};

class LoadBook {
 public:
  static constexpr size_t kSecondsKept = 600;  // 10 minutes at 1 s
  static constexpr size_t kMinutesKept = 360;  // 6 hours at 1 min
  static constexpr int64_t kReportStaleMs = 5000;

  // `now_ms` monotonic.
  void report(topology::MachineId machine, int64_t now_ms,
              std::vector<metrics::RangeLoadReport> ranges);
  void forget(topology::MachineId machine);
  std::vector<ShardLoad> current(const topology::RoutingTableSpec& table, int64_t now_ms) const;
  // Once a second: appends each shard's current load to its history (`wall_ms` stamps it).
  void sample(const topology::RoutingTableSpec& table, int64_t now_ms, int64_t wall_ms);
  // A shard's history for trends: the minutes when there are at least `minutes_min` of them,
  // else the seconds (a young cluster); empty for an unknown shard.
  std::vector<LoadPoint> history_of(topology::ShardId shard, size_t minutes_min) const;
  // {"window_s", "shards": [{"shard", ..., "ranges": [...], "top_keys": [...]
  //  [, "history": {"seconds": [...], "minutes": [...]}]}]}
  nlohmann::json to_json(const topology::RoutingTableSpec* table, int64_t now_ms,
                         bool history) const;

 private:
  struct Reported {
    int64_t time_ms = 0;
    std::vector<metrics::RangeLoadReport> ranges;
  };
  struct History {
    std::deque<LoadPoint> seconds;
    std::deque<LoadPoint> minutes;
    // The minute being accumulated.
    int64_t minute = -1;
    LoadPoint sum;
    size_t count = 0;
  };
  std::map<topology::MachineId, Reported> reports_;
  std::map<topology::ShardId, History> history_;
};

}  // namespace cairn::orchestrator
