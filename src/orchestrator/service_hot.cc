// The load half of the Service: hot shards and capacity planning. The hot shard half (service.h,
// docs/operations.md "Hot shards and hot keys"): once a second the load the LoadBook aggregated is
// shown to the HotPolicy (hot_shards.h, the pure policy); what it decides becomes events, the "hot"
// part of GET /v1/load, and at most one migration of kind "hot-split" through the same queue
// operator splits use.

#include <algorithm>
#include <functional>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "orchestrator/service.h"

namespace cairn::orchestrator {

namespace {

using nlohmann::json;
using topology::ShardId;

bool has_voting_replicas(const topology::RoutingTableSpec& table, ShardId id) {
  for (const auto& shard : table.shards) {
    if (shard.id == id) return !shard.replicas.empty();
  }
  return false;
}

}  // namespace

void Service::run_hot_shards(int64_t now) {
  if (!state_.table) return;
  HotInput input;
  input.now_ms = now;
  input.replication_factor = state_.table->replication_factor;
  const size_t free = free_machines().size();
  // The spares the cluster keeps for replacements are not spent on load.
  input.free_machines =
      static_cast<uint32_t>(free > settings_.min_spares ? free - settings_.min_spares : 0);
  input.migration_active = std::any_of(state_.migrations.begin(), state_.migrations.end(),
                                       [](const Migration& m) { return !m.finished(); });
  for (const ShardLoad& load : load_book_.current(*state_.table, now)) {
    // A shard nobody reports for, or still joining, says nothing about the cluster's load.
    if (load.machines_reporting == 0 || !has_voting_replicas(*state_.table, load.shard)) continue;
    ShardHeat heat{load.shard, load.total.reads_per_sec + load.total.writes_per_sec, {}};
    for (const metrics::RangeLoadReport& r : load.ranges) {
      heat.ranges.push_back(
          RangeHeat{r.start, r.end, r.reads_per_sec + r.writes_per_sec, r.top_keys});
    }
    input.shards.push_back(std::move(heat));
  }
  last_hot_ = hot_policy_.observe(input);
  report_hot(last_hot_);
  if (!last_hot_.split) return;
  if (Status started = start_hot_split(*last_hot_.split); !started.is_ok()) {
    // The policy already pinned the halves and started the cool-down: a refused split is not
    // retried every second, and the event says why.
    add_event(fmt::format("hot shard {}: split not started: {}", last_hot_.split->source,
                          started.message()));
  }
}

// Events say each thing once: when a shard turns hot, when a hot key appears, when a split is
// held for a new reason; and when a shard is no longer over the line.
void Service::report_hot(const HotDecision& d) {
  std::vector<std::string> now_reported;
  auto once = [&](std::string id, const std::function<std::string()>& message) {
    if (std::find(hot_reported_.begin(), hot_reported_.end(), id) == hot_reported_.end()) {
      add_event(message());
    }
    now_reported.push_back(std::move(id));
  };
  for (const HotShard& s : d.shards) {
    if (!s.hot) continue;
    once(fmt::format("shard {}", s.shard), [&] {
      return fmt::format(
          "hot shard {}: {:.0f} ops/s for {} s (cluster median {:.0f} ops/s; "
          "lines {:.0f} ops/s and {:.1f}x the median)",
          s.shard, s.ops_per_sec, settings_.hot.window_ms / 1000, s.median_ops,
          settings_.hot.shard_ops, settings_.hot.factor);
    });
  }
  for (const HotKey& k : d.hot_keys) {
    once(fmt::format("key {} {}", k.shard, k.key), [&] {
      return fmt::format(
          "hot key \"{}\" on shard {}: about {:.0f} ops/s, {:.0f} % of its range's "
          "sampled load; one key cannot be split (see docs/operations.md "
          "\"Hot shards and hot keys\")",
          k.key, k.shard, k.ops_per_sec, k.share * 100);
    });
  }
  for (const HeldSplit& held : d.held) {
    once(fmt::format("held {} {}", held.shard, static_cast<int>(held.reason)),
         [&] { return fmt::format("hot shard {} not split: {}", held.shard, held.text); });
  }
  for (const std::string& old : hot_reported_) {
    if (old.starts_with("shard ") &&
        std::find(now_reported.begin(), now_reported.end(), old) == now_reported.end()) {
      add_event(fmt::format("{} is no longer hot", old));
    }
  }
  hot_reported_ = std::move(now_reported);
}

Status Service::start_hot_split(const HotSplit& split) {
  const std::string what = fmt::format(
      "hot shard {}: its hottest range [{}, {}) cut at {} (the load median of its sampled keys); "
      "moving [{}, {}) (about {:.0f} ops/s, {:.0f} stay)",
      split.source, topology::format_token(split.range_start),
      topology::format_token(split.range_end), topology::format_token(split.cut),
      topology::format_token(split.start), topology::format_token(split.end), split.moved_ops,
      split.kept_ops);
  if (split.new_shard) {
    auto created = split_to_new_shard(split.source, {{split.start, split.end}}, 0, "hot-split");
    if (!created.is_ok()) return created.status();
    add_event(fmt::format("{} to new shard {} (machines {})", what, created->new_shard,
                          created->message));
  } else {
    auto id = queue_migration("hot-split", split.start, split.end, split.source, split.target, 0);
    if (!id.is_ok()) return id.status();
    add_event(fmt::format("{} to shard {}, the coolest (migration {})", what, split.target, *id));
  }
  return persist(false);
}

json Service::capacity_json() const {
  std::lock_guard lock(mu_);
  std::vector<ShardHistory> shards;
  if (state_.table) {
    for (const ShardLoad& load : load_book_.current(*state_.table, clock_->monotonic_ms())) {
      uint32_t replicas = 1;
      for (const auto& s : state_.table->shards) {
        if (s.id == load.shard) replicas = std::max<uint32_t>(1, s.replicas.size());
      }
      ShardHistory h;
      h.shard = load.shard;
      h.replicas = replicas;
      h.bytes = static_cast<double>(load.total.bytes);
      // Rule 2 of capacity.h: each replica applies every write and serves its share of reads.
      auto per_machine = [replicas](double reads, double writes) {
        return writes + reads / replicas;
      };
      h.machine_ops = per_machine(load.total.reads_per_sec, load.total.writes_per_sec);
      for (const LoadPoint& p : load_book_.history_of(load.shard, kFitPointsMin)) {
        h.bytes_history.push_back({p.time_ms, static_cast<double>(p.bytes)});
        h.machine_ops_history.push_back(
            {p.time_ms, per_machine(p.reads_per_sec, p.writes_per_sec)});
      }
      shards.push_back(std::move(h));
    }
  }
  const uint32_t rf =
      state_.table ? state_.table->replication_factor : settings_.replication_factor;
  json out = capacity_to_json(settings_.capacity,
                              project_capacity(settings_.capacity, shards, rf, clock_->wall_ms()));
  out["time_ms"] = clock_->wall_ms();
  return out;
}

json Service::hot_json() const {
  const HotSettings& s = settings_.hot;
  json shards = json::array();
  for (const HotShard& h : last_hot_.shards) {
    shards.push_back(json{{"shard", h.shard},
                          {"ops_per_sec", h.ops_per_sec},
                          {"median_ops_per_sec", h.median_ops},
                          {"over_for_s", (clock_->monotonic_ms() - h.over_since_ms) / 1000},
                          {"hot", h.hot},
                          {"cooling", h.cooling}});
  }
  json keys = json::array();
  for (const HotKey& k : last_hot_.hot_keys) {
    keys.push_back(json{{"shard", k.shard},
                        {"key", k.key},
                        {"ops_per_sec", k.ops_per_sec},
                        {"share", k.share},
                        {"range_start", topology::format_token(k.start)},
                        {"range_end", topology::format_token(k.end)}});
  }
  json held = json::array();
  for (const HeldSplit& h : last_hot_.held) {
    held.push_back(json{{"shard", h.shard}, {"why", h.text}});
  }
  json pinned = json::array();
  const int64_t now = clock_->monotonic_ms();
  for (const PinnedRange& p : hot_policy_.pinned(now)) {
    pinned.push_back(json{{"start", topology::format_token(p.start)},
                          {"end", topology::format_token(p.end)},
                          {"for_s", (p.until_ms - now + 999) / 1000}});
  }
  return json{{"settings",
               {{"shard_ops", s.shard_ops},
                {"factor", s.factor},
                {"window_s", s.window_ms / 1000},
                {"cooldown_s", s.cooldown_ms / 1000},
                {"hot_key_share", s.hot_key_share},
                {"split", s.split}}},
              {"shards", std::move(shards)},
              {"hot_keys", std::move(keys)},
              {"held", std::move(held)},
              {"pinned", std::move(pinned)}};
}

}  // namespace cairn::orchestrator
