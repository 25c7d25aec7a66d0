#include "orchestrator/load_book.h"

#include <algorithm>

#include <nlohmann/json.hpp>

namespace cairn::orchestrator {

using nlohmann::json;

namespace {

bool is_member(const topology::Shard& shard, topology::MachineId id) {
  for (const auto* ids : {&shard.replicas, &shard.extras, &shard.joining}) {
    if (std::find(ids->begin(), ids->end(), id) != ids->end()) return true;
  }
  return false;
}

// Folds `r` into `into`. Replicas of one range hold the same data (`replicas`): each applied
// every write, so writes, bytes in, keys and bytes stored are the largest of them; disjoint
// ranges of a shard add up. Reads and bytes out always add up (each read is served by some
// replicas); percentiles are the largest; hot keys are merged.
void fold(metrics::RangeLoadReport& into, const metrics::RangeLoadReport& r, bool replicas) {
  auto combine = [replicas](auto& a, auto b) { a = replicas ? std::max(a, b) : a + b; };
  combine(into.writes_per_sec, r.writes_per_sec);
  combine(into.bytes_in_per_sec, r.bytes_in_per_sec);
  combine(into.writes_total, r.writes_total);
  combine(into.keys, r.keys);
  combine(into.bytes, r.bytes);
  into.reads_per_sec += r.reads_per_sec;
  into.bytes_out_per_sec += r.bytes_out_per_sec;
  into.reads_total += r.reads_total;
  into.p50_us = std::max(into.p50_us, r.p50_us);
  into.p99_us = std::max(into.p99_us, r.p99_us);
  into.p999_us = std::max(into.p999_us, r.p999_us);
  std::vector<metrics::TopKEntry> keys = into.top_keys;
  keys.insert(keys.end(), r.top_keys.begin(), r.top_keys.end());
  into.top_keys = metrics::merge_top(std::move(keys), metrics::kTopKeys);
}

LoadPoint point_of(const metrics::RangeLoadReport& total, int64_t wall_ms) {
  return LoadPoint{wall_ms,        total.reads_per_sec, total.writes_per_sec,
                   total.bytes_in_per_sec, total.bytes_out_per_sec, total.keys,
                   total.bytes,    total.p99_us};
}

json point_json(const LoadPoint& p) {
  return json{{"time_ms", p.time_ms},
              {"reads_per_sec", p.reads_per_sec},
              {"writes_per_sec", p.writes_per_sec},
              {"bytes_in_per_sec", p.bytes_in_per_sec},
              {"bytes_out_per_sec", p.bytes_out_per_sec},
              {"keys", p.keys},
              {"bytes", p.bytes},
              {"p99_us", p.p99_us}};
}

json load_fields(const metrics::RangeLoadReport& r) {
  json out = metrics::range_report_to_json(r);
  out.erase("start");
  out.erase("end");
  return out;
}

}  // namespace

void LoadBook::report(topology::MachineId machine, int64_t now_ms,
                      std::vector<metrics::RangeLoadReport> ranges) {
  Reported& reported = reports_[machine];
  reported.time_ms = now_ms;
  reported.ranges = std::move(ranges);
}

void LoadBook::forget(topology::MachineId machine) { reports_.erase(machine); }

std::vector<ShardLoad> LoadBook::current(const topology::RoutingTableSpec& table,
                                         int64_t now_ms) const {
  std::vector<ShardLoad> out;
  for (const topology::Shard& shard : table.shards) {
    ShardLoad load;
    load.shard = shard.id;
    for (const topology::Range& range : table.ranges) {
      if (range.shard != shard.id) continue;
      metrics::RangeLoadReport aggregate;
      aggregate.start = range.start;
      aggregate.end = range.end;
      load.ranges.push_back(std::move(aggregate));
    }
    for (const auto& [machine, reported] : reports_) {
      if (now_ms - reported.time_ms > kReportStaleMs || !is_member(shard, machine)) continue;
      bool counted = false;
      for (const metrics::RangeLoadReport& r : reported.ranges) {
        for (metrics::RangeLoadReport& aggregate : load.ranges) {
          if (aggregate.start == r.start && aggregate.end == r.end) {
            fold(aggregate, r, /*replicas=*/true);
            counted = true;
          }
        }
      }
      if (counted) ++load.machines_reporting;
    }
    for (const metrics::RangeLoadReport& range : load.ranges) {
      fold(load.total, range, /*replicas=*/false);
    }
    out.push_back(std::move(load));
  }
  return out;
}

void LoadBook::sample(const topology::RoutingTableSpec& table, int64_t now_ms, int64_t wall_ms) {
  std::map<topology::ShardId, History> kept;
  for (const ShardLoad& load : current(table, now_ms)) {
    History& h = kept[load.shard];
    if (auto it = history_.find(load.shard); it != history_.end()) h = std::move(it->second);
    const LoadPoint p = point_of(load.total, wall_ms);
    h.seconds.push_back(p);
    while (h.seconds.size() > kSecondsKept) h.seconds.pop_front();
    const int64_t minute = wall_ms / 60'000;
    if (h.minute != minute && h.count > 0) {
      const double n = static_cast<double>(h.count);
      LoadPoint m = h.sum;
      m.time_ms = h.minute * 60'000;
      m.reads_per_sec /= n;
      m.writes_per_sec /= n;
      m.bytes_in_per_sec /= n;
      m.bytes_out_per_sec /= n;
      h.minutes.push_back(m);
      while (h.minutes.size() > kMinutesKept) h.minutes.pop_front();
      h.sum = LoadPoint{};
      h.count = 0;
    }
    h.minute = minute;
    h.sum.reads_per_sec += p.reads_per_sec;
    h.sum.writes_per_sec += p.writes_per_sec;
    h.sum.bytes_in_per_sec += p.bytes_in_per_sec;
    h.sum.bytes_out_per_sec += p.bytes_out_per_sec;
    h.sum.keys = p.keys;
    h.sum.bytes = p.bytes;
    h.sum.p99_us = std::max(h.sum.p99_us, p.p99_us);
    ++h.count;
  }
  history_ = std::move(kept);  // shards that no longer exist are forgotten
}

std::vector<LoadPoint> LoadBook::history_of(topology::ShardId shard, size_t minutes_min) const {
  auto it = history_.find(shard);
  if (it == history_.end()) return {};
  const std::deque<LoadPoint>& points =
      it->second.minutes.size() >= minutes_min ? it->second.minutes : it->second.seconds;
  return std::vector<LoadPoint>(points.begin(), points.end());
}

json LoadBook::to_json(const topology::RoutingTableSpec* table, int64_t now_ms,
                       bool history) const {
  json shards = json::array();
  if (table != nullptr) {
    for (const ShardLoad& load : current(*table, now_ms)) {
      json shard = load_fields(load.total);
      shard["shard"] = load.shard;
      shard["machines_reporting"] = load.machines_reporting;
      shard["ranges"] = metrics::range_reports_to_json(load.ranges);
      if (history) {
        json seconds = json::array();
        json minutes = json::array();
        if (auto it = history_.find(load.shard); it != history_.end()) {
          for (const LoadPoint& p : it->second.seconds) seconds.push_back(point_json(p));
          for (const LoadPoint& p : it->second.minutes) minutes.push_back(point_json(p));
        }
        shard["history"] = json{{"seconds", std::move(seconds)}, {"minutes", std::move(minutes)}};
      }
      shards.push_back(std::move(shard));
    }
  }
  return json{{"window_s", metrics::kLoadWindowMs / 1000}, {"shards", std::move(shards)}};
}

}  // namespace cairn::orchestrator
