#include "orchestrator/hot_shards.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "orchestrator/balancer.h"
#include "topology/token.h"
#include "topology/token_range.h"

namespace cairn::orchestrator {

namespace {

using topology::ShardId;
using topology::Token;

bool in_range(Token start, Token end, Token token) { return topology::in_range(token, start, end); }

// One sampled token: the weight of every sampled key on it, and its heaviest key (the name a
// hot key is reported by).
struct TokenWeight {
  Token token = 0;
  double weight = 0;
  std::string key;
  double key_weight = 0;
};

std::vector<TokenWeight> sampled_tokens(const RangeHeat& range) {
  std::map<Token, TokenWeight> by_token;
  for (const metrics::TopKEntry& entry : range.top_keys) {
    // The guaranteed part of the count: a key that entered the sketch late inherits the count
    // of the one it evicted as its error, which says nothing about its own load.
    const double weight =
        entry.count > entry.error ? static_cast<double>(entry.count - entry.error) : 0.0;
    const Token token = topology::token_of(entry.key);
    if (weight <= 0 || !in_range(range.start, range.end, token)) continue;
    TokenWeight& t = by_token[token];
    t.token = token;
    t.weight += weight;
    if (weight > t.key_weight) {
      t.key = entry.key;
      t.key_weight = weight;
    }
  }
  std::vector<TokenWeight> out;
  out.reserve(by_token.size());
  for (auto& [token, t] : by_token) out.push_back(std::move(t));
  return out;  // ring order: the map's
}

// A cut in (left, right]: a slot boundary when one lies there (the one nearest their middle),
// else `right` itself.
Token cut_between(Token left, Token right) {
  const Token middle = left + (right - left) / 2 + 1;
  const Token nearest = topology::nearest_slot_boundary(middle);
  if (nearest != 0 && nearest > left && nearest <= right) return nearest;
  const Token above = (left & ~(topology::kSlotTokens - 1)) + topology::kSlotTokens;
  if (above != 0 && above > left && above <= right) return above;
  return right;
}

}  // namespace

std::string validate_hot_settings(const HotSettings& s) {
  if (!(s.shard_ops >= 0) || !std::isfinite(s.shard_ops)) {
    return "--hot-shard-ops must be a non-negative number";
  }
  if (!(s.factor >= 1.0) || !std::isfinite(s.factor)) return "--hot-shard-factor must be >= 1";
  if (s.window_ms < 1000) return "--hot-shard-window-s must be at least 1";
  if (s.cooldown_ms < s.window_ms) {
    return "--hot-split-cooldown-s must be at least --hot-shard-window-s";
  }
  if (!(s.hot_key_share > 0.0 && s.hot_key_share <= 1.0)) {
    return "--hot-key-share must be in (0, 1]";
  }
  return "";
}

double lower_median(std::vector<double> values) {
  if (values.empty()) return 0;
  const size_t middle = (values.size() - 1) / 2;
  std::nth_element(values.begin(), values.begin() + static_cast<std::ptrdiff_t>(middle),
                   values.end());
  return values[middle];
}

CutChoice choose_cut(const RangeHeat& range, double hot_key_share) {
  CutChoice choice;
  const std::vector<TokenWeight> tokens = sampled_tokens(range);
  double total = 0;
  const TokenWeight* heaviest = nullptr;
  for (const TokenWeight& t : tokens) {
    total += t.weight;
    if (heaviest == nullptr || t.weight > heaviest->weight) heaviest = &t;
  }
  if (heaviest == nullptr) return choice;  // nothing sampled: no basis for a cut
  const double share = heaviest->weight / total;
  if (tokens.size() < 2 || share >= hot_key_share) {
    choice.hot_key = HotKey{topology::kNoShard,        range.start, range.end, heaviest->key,
                            range.ops_per_sec * share, share};
    return choice;
  }
  // Rule 3: the boundary between two sampled tokens where the weights are closest.
  size_t best = 0;
  double best_left = 0, best_imbalance = 0, left = 0;
  for (size_t j = 1; j < tokens.size(); ++j) {
    left += tokens[j - 1].weight;
    const double imbalance = std::abs(2 * left - total);
    if (best == 0 || imbalance < best_imbalance) {
      best = j;
      best_left = left;
      best_imbalance = imbalance;
    }
  }
  const Token cut = cut_between(tokens[best - 1].token, tokens[best].token);
  if (token_span(range.start, cut) < kMinRangeTokens ||
      token_span(cut, range.end) < kMinRangeTokens) {
    return choice;  // the keys sit at the very edge of the range: no useful cut
  }
  choice.cut = cut;
  choice.left_weight = best_left;
  choice.right_weight = total - best_left;
  return choice;
}

bool HotPolicy::cooling(ShardId shard, int64_t now_ms) const {
  auto it = cooling_until_ms_.find(shard);
  return it != cooling_until_ms_.end() && now_ms < it->second;
}

std::vector<PinnedRange> HotPolicy::pinned(int64_t now_ms) const {
  std::vector<PinnedRange> out;
  for (const PinnedRange& p : pinned_) {
    if (now_ms < p.until_ms) out.push_back(p);
  }
  return out;
}

HotDecision HotPolicy::observe(const HotInput& input) {
  const int64_t now = input.now_ms;
  HotDecision out;
  // Rule 8: forget what expired and shards that are gone.
  std::erase_if(pinned_, [now](const PinnedRange& p) { return now >= p.until_ms; });
  std::erase_if(cooling_until_ms_, [now](const auto& entry) { return now >= entry.second; });
  std::erase_if(over_since_ms_, [&input](const auto& entry) {
    return std::none_of(input.shards.begin(), input.shards.end(),
                        [&entry](const ShardHeat& s) { return s.shard == entry.first; });
  });
  std::vector<double> ops;
  for (const ShardHeat& s : input.shards) ops.push_back(s.ops_per_sec);
  const double median = lower_median(ops);
  std::vector<const ShardHeat*> hot;
  for (const ShardHeat& s : input.shards) {
    // Rule 1.
    const bool over = s.ops_per_sec >= settings_.shard_ops &&
                      s.ops_per_sec >= settings_.factor * median && s.ops_per_sec > 0;
    if (!over) {
      over_since_ms_.erase(s.shard);  // rule 2: the window starts again
      continue;
    }
    const int64_t since = over_since_ms_.emplace(s.shard, now).first->second;
    HotShard h{s.shard,
               s.ops_per_sec,
               median,
               since,
               now - since >= settings_.window_ms,
               cooling(s.shard, now)};
    out.shards.push_back(h);
    if (h.hot) hot.push_back(&s);
  }
  std::sort(hot.begin(), hot.end(), [](const ShardHeat* a, const ShardHeat* b) {
    return a->ops_per_sec != b->ops_per_sec ? a->ops_per_sec > b->ops_per_sec : a->shard < b->shard;
  });
  for (const ShardHeat* s : hot) {
    std::optional<HotSplit> split = plan(input, *s, out);
    if (split && !out.split) {
      out.split = split;
      // Rule 6 from now on.
      cooling_until_ms_[split->source] = now + settings_.cooldown_ms;
      if (!split->new_shard) cooling_until_ms_[split->target] = now + settings_.cooldown_ms;
      pinned_.push_back(PinnedRange{split->range_start, split->cut, now + settings_.cooldown_ms});
      pinned_.push_back(PinnedRange{split->cut, split->range_end, now + settings_.cooldown_ms});
    }
  }
  return out;
}

std::optional<HotSplit> HotPolicy::plan(const HotInput& input, const ShardHeat& hot,
                                        HotDecision& out) {
  const int64_t now = input.now_ms;
  // The hottest range not pinned (a pinned half is left alone, rule 6).
  const RangeHeat* hottest = nullptr;
  for (const RangeHeat& r : hot.ranges) {
    const bool pinned = std::any_of(pinned_.begin(), pinned_.end(), [&r](const PinnedRange& p) {
      return ranges_overlap(r.start, r.end, p.start, p.end);
    });
    if (!pinned && (hottest == nullptr || r.ops_per_sec > hottest->ops_per_sec)) hottest = &r;
  }
  auto hold = [&](HoldReason reason, std::string why) {
    out.held.push_back(HeldSplit{hot.shard, reason, std::move(why)});
    return std::nullopt;
  };
  if (hottest == nullptr) {
    return hold(HoldReason::kAllPinned, "every range was moved within the cool-down");
  }
  const CutChoice choice = choose_cut(*hottest, settings_.hot_key_share);
  if (choice.hot_key) {
    HotKey key = *choice.hot_key;
    key.shard = hot.shard;
    out.hot_keys.push_back(key);
    return hold(HoldReason::kHotKey,
                fmt::format("hot key \"{}\" ({:.0f} ops/s, {:.0f} % of its range's sample) cannot "
                            "be split",
                            key.key, key.ops_per_sec, key.share * 100));
  }
  if (!choice.cut) return hold(HoldReason::kNoSample, "no keys sampled in its hottest range yet");
  if (cooling(hot.shard, now)) return hold(HoldReason::kCooling, "cooling down after a split");
  if (input.migration_active) {
    return hold(HoldReason::kMigrating, "waiting for the active migrations");
  }
  if (!settings_.split) return hold(HoldReason::kOff, "splits are off (--no-hot-split)");
  HotSplit split;
  split.source = hot.shard;
  split.range_start = hottest->start;
  split.range_end = hottest->end;
  split.cut = *choice.cut;
  const double sampled = choice.left_weight + choice.right_weight;
  const bool right_hotter = choice.right_weight >= choice.left_weight;
  split.start = right_hotter ? split.cut : split.range_start;
  split.end = right_hotter ? split.range_end : split.cut;
  split.moved_ops =
      hottest->ops_per_sec * (right_hotter ? choice.right_weight : choice.left_weight) / sampled;
  split.kept_ops = hot.ops_per_sec - split.moved_ops;
  // Rule 5.
  if (input.free_machines >= input.replication_factor) {
    split.new_shard = true;
    return split;
  }
  const ShardHeat* coolest = nullptr;
  for (const ShardHeat& s : input.shards) {
    if (s.shard == hot.shard || cooling(s.shard, now)) continue;
    if (coolest == nullptr || s.ops_per_sec < coolest->ops_per_sec) coolest = &s;
  }
  if (coolest == nullptr || coolest->ops_per_sec + split.moved_ops >= hot.ops_per_sec) {
    return hold(HoldReason::kNoTarget,
                fmt::format("no shard can take {:.0f} ops/s and no {} free machines for a new "
                            "shard",
                            split.moved_ops, input.replication_factor));
  }
  split.target = coolest->shard;
  return split;
}

}  // namespace cairn::orchestrator
