#include "server/load_reporter.h"

#include <algorithm>

#include <fmt/format.h>

#include "topology/routing_table.h"

namespace cairn::server {

std::vector<std::pair<topology::Token, topology::Token>> range_bounds(
    const topology::RoutingTable& table) {
  std::vector<std::pair<topology::Token, topology::Token>> out;
  for (const topology::Range& range : table.ranges()) out.emplace_back(range.start, range.end);
  return out;
}

LoadReporter::LoadReporter(ServerState& state, storage::Engine& engine,
                           replica::TableHolder& tables, metrics::RangeLoadTracker& tracker,
                           uint64_t machine_id)
    : state_(state), engine_(engine), tables_(tables), tracker_(tracker), machine_id_(machine_id) {}

std::vector<topology::Range> LoadReporter::held_ranges() const {
  std::vector<topology::Range> out;
  const auto table = tables_.current();
  if (table == nullptr) return out;
  for (const topology::Range& range : table->ranges()) {
    const topology::Shard* shard = table->find_shard(range.shard);
    if (shard == nullptr) continue;
    auto has = [this](const std::vector<topology::MachineId>& ids) {
      return std::find(ids.begin(), ids.end(), machine_id_) != ids.end();
    };
    if (has(shard->replicas) || has(shard->extras) || has(shard->joining)) out.push_back(range);
  }
  return out;
}

MachineLoadCounters LoadReporter::collect(int64_t now_ms) {
  MachineLoadCounters counters;
  const metrics::CountWindow::Rate commands =
      commands_window_.update(now_ms, state_.total_commands(), state_.command_latency());
  counters.ops_per_sec = commands.per_sec;
  counters.p99_us = commands.latency.percentile(0.99);
  counters.bytes = engine_.stats().approximate_bytes;
  counters.storage_bytes = counters.bytes;

  if (last_rotation_ms_ < 0) last_rotation_ms_ = now_ms;
  if (now_ms - last_rotation_ms_ >= metrics::kTopKeysWindowMs) {
    tracker_.rotate_top_keys();
    last_rotation_ms_ = now_ms;
  }
  const std::vector<topology::Range> held = held_ranges();
  std::vector<metrics::RangeLoadReport> reports = ranges_window_.update(now_ms, tracker_.sample());
  const uint64_t keys_total = engine_.estimated_keys();
  for (metrics::RangeLoadReport& report : reports) {
    const bool mine = std::any_of(held.begin(), held.end(), [&](const topology::Range& r) {
      return r.start == report.start && r.end == report.end;
    });
    if (!mine) continue;
    report.bytes = engine_.approximate_range_bytes(report.start, report.end);
    // RocksDB estimates keys only for the whole database: share them out by bytes.
    report.keys = counters.bytes == 0
                      ? 0
                      : static_cast<uint64_t>(static_cast<double>(keys_total) *
                                              std::min(1.0, static_cast<double>(report.bytes) /
                                                                static_cast<double>(counters.bytes)));
    counters.ranges.push_back(std::move(report));
  }
  return counters;
}

void LoadReporter::write_metrics(metrics::PrometheusText& out) const {
  const std::vector<topology::Range> held = held_ranges();
  const std::vector<metrics::RangeSample> samples = tracker_.sample();
  struct Family {
    const char* name;
    const char* help;
    uint64_t metrics::RangeSample::*field;
  };
  const Family families[] = {
      {"cairn_range_reads_total", "Reads this replica served, per token range it holds.",
       &metrics::RangeSample::reads},
      {"cairn_range_writes_total", "Writes this replica applied, per token range it holds.",
       &metrics::RangeSample::writes},
      {"cairn_range_input_bytes_total", "Key and value bytes written, per token range.",
       &metrics::RangeSample::bytes_in},
      {"cairn_range_output_bytes_total", "Value bytes read, per token range.",
       &metrics::RangeSample::bytes_out},
  };
  for (const Family& family : families) {
    out.family(family.name, "counter", family.help);
    for (const topology::Range& range : held) {
      auto it = std::find_if(samples.begin(), samples.end(), [&](const metrics::RangeSample& s) {
        return s.start == range.start && s.end == range.end;
      });
      if (it == samples.end()) continue;
      out.sample(family.name,
                 {{"range", fmt::format("{}-{}", topology::format_token(range.start),
                                        topology::format_token(range.end))},
                  {"shard", std::to_string(range.shard)}},
                 static_cast<double>((*it).*family.field));
    }
  }
}

}  // namespace cairn::server
