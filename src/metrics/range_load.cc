#include "metrics/range_load.h"

#include "topology/routing_table.h"
#include "topology/token_range.h"

#include <algorithm>
#include <chrono>
#include <map>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace cairn::metrics {

using nlohmann::json;

struct RangeLoadTracker::Counters {
  topology::Token start = 0;
  topology::Token end = 0;
  alignas(64) std::atomic<uint64_t> reads{0};
  std::atomic<uint64_t> writes{0};
  std::atomic<uint64_t> bytes_in{0};
  std::atomic<uint64_t> bytes_out{0};
  LogHistogram latency_us;
  std::mutex top_mu;
  TopK current{kTopKeys};   // guarded by top_mu
  TopK previous{kTopKeys};  // guarded by top_mu

  void add_key(std::string_view key) {
    // Never waits: a contended update is dropped (the sketch is an estimate anyway).
    std::unique_lock lock(top_mu, std::try_to_lock);
    if (lock.owns_lock()) current.add(key);
  }
};

struct RangeLoadTracker::Index {
  std::vector<topology::Token> starts;
  std::vector<Counters*> counters;
};

RangeLoadTracker::RangeLoadTracker() = default;
RangeLoadTracker::~RangeLoadTracker() = default;

void RangeLoadTracker::set_ranges(
    const std::vector<std::pair<topology::Token, topology::Token>>& ranges) {
  std::lock_guard lock(mu_);
  std::map<std::pair<topology::Token, topology::Token>, std::unique_ptr<Counters>> old;
  for (auto& counters : live_) {
    auto key = std::make_pair(counters->start, counters->end);
    old.emplace(key, std::move(counters));
  }
  live_.clear();
  auto index = std::make_unique<Index>();
  for (const auto& [start, end] : ranges) {
    std::unique_ptr<Counters> counters;
    if (auto it = old.find({start, end}); it != old.end()) {
      counters = std::move(it->second);
      old.erase(it);
    } else {
      counters = std::make_unique<Counters>();
      counters->start = start;
      counters->end = end;
    }
    index->starts.push_back(start);
    index->counters.push_back(counters.get());
    live_.push_back(std::move(counters));
  }
  const int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::steady_clock::now().time_since_epoch())
                          .count();
  Retired retired;
  retired.time_ms = now;
  retired.index = std::move(current_);
  for (auto& [key, counters] : old) retired.counters.push_back(std::move(counters));
  index_.store(index.get(), std::memory_order_release);
  current_ = std::move(index);
  retired_.push_back(std::move(retired));
  while (retired_.size() > kRetiredGenerations && now - retired_.front().time_ms > kRetiredGraceMs) {
    retired_.pop_front();
  }
}

RangeLoadTracker::Counters* RangeLoadTracker::find(topology::Token token) const {
  const Index* index = index_.load(std::memory_order_acquire);
  if (index == nullptr || index->starts.empty()) return nullptr;
  auto it = std::upper_bound(index->starts.begin(), index->starts.end(), token);
  if (it == index->starts.begin()) return nullptr;
  Counters* counters = index->counters[static_cast<size_t>(it - index->starts.begin()) - 1];
  if (!topology::before_end(token, counters->end)) return nullptr;
  return counters;
}

void RangeLoadTracker::record(topology::Token token, std::string_view key, bool write,
                              uint64_t bytes, uint64_t latency_us) {
  Counters* counters = find(token);
  if (counters == nullptr) return;
  (write ? counters->writes : counters->reads).fetch_add(1, std::memory_order_relaxed);
  (write ? counters->bytes_in : counters->bytes_out).fetch_add(bytes, std::memory_order_relaxed);
  counters->latency_us.record(latency_us);
  counters->add_key(key);
}

std::vector<RangeSample> RangeLoadTracker::sample() const {
  std::lock_guard lock(mu_);
  std::vector<RangeSample> out;
  out.reserve(live_.size());
  for (const auto& counters : live_) {
    RangeSample sample;
    sample.start = counters->start;
    sample.end = counters->end;
    sample.reads = counters->reads.load(std::memory_order_relaxed);
    sample.writes = counters->writes.load(std::memory_order_relaxed);
    sample.bytes_in = counters->bytes_in.load(std::memory_order_relaxed);
    sample.bytes_out = counters->bytes_out.load(std::memory_order_relaxed);
    sample.latency_us = counters->latency_us.snapshot();
    {
      std::lock_guard top_lock(counters->top_mu);
      std::vector<TopKEntry> both = counters->current.top();
      for (TopKEntry& entry : counters->previous.top()) both.push_back(std::move(entry));
      sample.top_keys = merge_top(std::move(both), kTopKeys);
    }
    out.push_back(std::move(sample));
  }
  return out;
}

void RangeLoadTracker::rotate_top_keys() {
  std::lock_guard lock(mu_);
  for (const auto& counters : live_) {
    std::lock_guard top_lock(counters->top_mu);
    std::swap(counters->previous, counters->current);
    counters->current.clear();
  }
}

// ---- the heartbeat codec ----

json range_report_to_json(const RangeLoadReport& r) {
  json keys = json::array();
  for (const TopKEntry& entry : r.top_keys) {
    keys.push_back({{"key", entry.key}, {"count", entry.count}, {"error", entry.error}});
  }
  return json{{"start", topology::format_token(r.start)},
              {"end", topology::format_token(r.end)},
              {"reads_per_sec", r.reads_per_sec},
              {"writes_per_sec", r.writes_per_sec},
              {"bytes_in_per_sec", r.bytes_in_per_sec},
              {"bytes_out_per_sec", r.bytes_out_per_sec},
              {"reads_total", r.reads_total},
              {"writes_total", r.writes_total},
              {"keys", r.keys},
              {"bytes", r.bytes},
              {"p50_us", r.p50_us},
              {"p99_us", r.p99_us},
              {"p999_us", r.p999_us},
              {"top_keys", std::move(keys)}};
}

namespace {

Status token_from(const json& object, const char* name, topology::Token* out) {
  auto it = object.find(name);
  if (it == object.end()) return Status::invalid_argument(fmt::format("missing \"{}\"", name));
  if (it->is_number_unsigned()) {
    *out = it->get<uint64_t>();
    return Status::ok();
  }
  if (it->is_string()) {
    auto token = topology::parse_token(it->get<std::string>());
    if (token.is_ok()) {
      *out = *token;
      return Status::ok();
    }
  }
  return Status::invalid_argument(fmt::format("\"{}\" must be a token (\"0x...\")", name));
}

Status unsigned_from(const json& object, const char* name, uint64_t* out) {
  auto it = object.find(name);
  if (it == object.end()) return Status::ok();
  if (!it->is_number_unsigned()) {
    return Status::invalid_argument(fmt::format("\"{}\" must be a non-negative integer", name));
  }
  *out = it->get<uint64_t>();
  return Status::ok();
}

Status rate_from(const json& object, const char* name, double* out) {
  auto it = object.find(name);
  if (it == object.end()) return Status::ok();
  if (!it->is_number() || it->get<double>() < 0) {
    return Status::invalid_argument(fmt::format("\"{}\" must be a non-negative number", name));
  }
  *out = it->get<double>();
  return Status::ok();
}

}  // namespace

Result<RangeLoadReport> range_report_from_json(const json& object) {
  if (!object.is_object()) return Status::invalid_argument("a range report is not an object");
  RangeLoadReport r;
  for (auto [name, out] : {std::pair{"start", &r.start}, std::pair{"end", &r.end}}) {
    if (Status s = token_from(object, name, out); !s.is_ok()) return s;
  }
  for (auto [name, out] :
       {std::pair{"reads_per_sec", &r.reads_per_sec}, std::pair{"writes_per_sec", &r.writes_per_sec},
        std::pair{"bytes_in_per_sec", &r.bytes_in_per_sec},
        std::pair{"bytes_out_per_sec", &r.bytes_out_per_sec}}) {
    if (Status s = rate_from(object, name, out); !s.is_ok()) return s;
  }
  for (auto [name, out] :
       {std::pair{"reads_total", &r.reads_total}, std::pair{"writes_total", &r.writes_total},
        std::pair{"keys", &r.keys}, std::pair{"bytes", &r.bytes}, std::pair{"p50_us", &r.p50_us},
        std::pair{"p99_us", &r.p99_us}, std::pair{"p999_us", &r.p999_us}}) {
    if (Status s = unsigned_from(object, name, out); !s.is_ok()) return s;
  }
  if (auto it = object.find("top_keys"); it != object.end()) {
    if (!it->is_array() || it->size() > kTopKeys) {
      return Status::invalid_argument(
          fmt::format("\"top_keys\" must be an array of at most {} entries", kTopKeys));
    }
    for (const json& item : *it) {
      auto key = item.is_object() ? item.find("key") : item.end();
      if (!item.is_object() || key == item.end() || !key->is_string() ||
          key->get_ref<const std::string&>().size() > kTopKeyBytesMax) {
        return Status::invalid_argument("a top key must be {\"key\": string, \"count\": n}");
      }
      TopKEntry entry;
      entry.key = key->get<std::string>();
      if (Status s = unsigned_from(item, "count", &entry.count); !s.is_ok()) return s;
      if (Status s = unsigned_from(item, "error", &entry.error); !s.is_ok()) return s;
      r.top_keys.push_back(std::move(entry));
    }
  }
  return r;
}

json range_reports_to_json(const std::vector<RangeLoadReport>& reports) {
  json out = json::array();
  for (const RangeLoadReport& report : reports) out.push_back(range_report_to_json(report));
  return out;
}

Result<std::vector<RangeLoadReport>> range_reports_from_json(const json& array) {
  if (!array.is_array() || array.size() > kRangeReportsMax) {
    return Status::invalid_argument(
        fmt::format("\"ranges\" must be an array of at most {} reports", kRangeReportsMax));
  }
  std::vector<RangeLoadReport> out;
  out.reserve(array.size());
  for (const json& item : array) {
    auto report = range_report_from_json(item);
    if (!report.is_ok()) return Status::invalid_argument("ranges: " + report.status().message());
    out.push_back(std::move(*report));
  }
  return out;
}

// ---- windows ----

namespace {

double per_sec(uint64_t now, uint64_t then, int64_t elapsed_ms) {
  if (elapsed_ms <= 0 || now < then) return 0;
  return static_cast<double>(now - then) * 1000.0 / static_cast<double>(elapsed_ms);
}

// Keeps at most one entry per second, dropping those older than the window but always keeping
// the newest one that is at least window_ms old (the base of the rates).
template <typename Kept>
void prune(std::deque<Kept>& kept, int64_t now_ms, int64_t window_ms) {
  while (kept.size() >= 2 && now_ms - kept[1].time_ms >= window_ms) kept.pop_front();
}

}  // namespace

std::vector<RangeLoadReport> LoadWindow::update(int64_t now_ms,
                                                const std::vector<RangeSample>& samples) {
  prune(kept_, now_ms, window_ms_);
  const Kept* base = kept_.empty() ? nullptr : &kept_.front();
  std::vector<RangeLoadReport> out;
  out.reserve(samples.size());
  for (const RangeSample& sample : samples) {
    RangeLoadReport report;
    report.start = sample.start;
    report.end = sample.end;
    report.reads_total = sample.reads;
    report.writes_total = sample.writes;
    report.top_keys = sample.top_keys;
    HistogramSnapshot latency = sample.latency_us;
    if (base != nullptr) {
      auto it = std::find_if(base->samples.begin(), base->samples.end(), [&](const RangeSample& s) {
        return s.start == sample.start && s.end == sample.end;
      });
      const int64_t elapsed = now_ms - base->time_ms;
      if (it != base->samples.end()) {
        report.reads_per_sec = per_sec(sample.reads, it->reads, elapsed);
        report.writes_per_sec = per_sec(sample.writes, it->writes, elapsed);
        report.bytes_in_per_sec = per_sec(sample.bytes_in, it->bytes_in, elapsed);
        report.bytes_out_per_sec = per_sec(sample.bytes_out, it->bytes_out, elapsed);
        latency = sample.latency_us.minus(it->latency_us);
      } else {
        // A range new since the base: everything it counted happened within the window.
        report.reads_per_sec = per_sec(sample.reads, 0, elapsed);
        report.writes_per_sec = per_sec(sample.writes, 0, elapsed);
        report.bytes_in_per_sec = per_sec(sample.bytes_in, 0, elapsed);
        report.bytes_out_per_sec = per_sec(sample.bytes_out, 0, elapsed);
      }
    }
    report.p50_us = latency.percentile(0.50);
    report.p99_us = latency.percentile(0.99);
    report.p999_us = latency.percentile(0.999);
    out.push_back(std::move(report));
  }
  if (kept_.empty() || now_ms - kept_.back().time_ms >= 1000) {
    Kept kept;
    kept.time_ms = now_ms;
    kept.samples = samples;
    for (RangeSample& s : kept.samples) s.top_keys.clear();
    kept_.push_back(std::move(kept));
  }
  return out;
}

CountWindow::Rate CountWindow::update(int64_t now_ms, uint64_t count,
                                      const HistogramSnapshot& latency) {
  prune(kept_, now_ms, window_ms_);
  Rate out;
  out.latency = latency;
  if (!kept_.empty()) {
    out.per_sec = per_sec(count, kept_.front().count, now_ms - kept_.front().time_ms);
    out.latency = latency.minus(kept_.front().latency);
  }
  if (kept_.empty() || now_ms - kept_.back().time_ms >= 1000) {
    kept_.push_back(Kept{now_ms, count, latency});
  }
  return out;
}

}  // namespace cairn::metrics
