#pragma once
// Load per token range (docs/operations.md "Load per range").
//
// RangeLoadTracker counts, for every range of the routing table, the reads and writes this
// machine's replica serves, their bytes, their latency (LogHistogram, microseconds) and the
// hottest keys (TopK, two generations of kTopKeysWindowMs so a key that cooled down leaves).
// The hot path (record_read / record_write) is a binary search over the range starts, relaxed
// atomic increments, and a try-lock on the range's sketch (an update is skipped, not waited
// for, when another thread holds it).
//
// RangeLoadReport is what a machine sends about one range in its heartbeat ("load.ranges") and
// what the orchestrator parses: both sides use the codec below, so they stay in step.
// LoadWindow turns cumulative samples into rates and percentiles over the last window_ms.

#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "common/status.h"
#include "metrics/histogram.h"
#include "metrics/topk.h"
#include "topology/token.h"

namespace cairn::metrics {

inline constexpr size_t kTopKeys = 16;
inline constexpr int64_t kTopKeysWindowMs = 10'000;
inline constexpr int64_t kLoadWindowMs = 10'000;
inline constexpr size_t kRangeReportsMax = 4096;

// Cumulative counters of one range, as sampled.
struct RangeSample {
  topology::Token start = 0;
  topology::Token end = 0;  // 0 = the ring's end
  uint64_t reads = 0;
  uint64_t writes = 0;
  uint64_t bytes_in = 0;   // written: key + value bytes
  uint64_t bytes_out = 0;  // read: value bytes returned
  HistogramSnapshot latency_us;
  std::vector<TopKEntry> top_keys;  // both generations merged, most frequent first
};

class RangeLoadTracker {
 public:
  RangeLoadTracker();
  ~RangeLoadTracker();
  RangeLoadTracker(const RangeLoadTracker&) = delete;
  RangeLoadTracker& operator=(const RangeLoadTracker&) = delete;

  // The ranges to count, as [start, end) pairs in ring order covering the ring (a routing
  // table's ranges). Ranges that are unchanged keep their counters. Any thread; rare (each new
  // table). Memory of replaced ranges is freed once it is both kRetiredGenerations
  // replacements and kRetiredGraceMs old, long after any request that could hold it finished.
  void set_ranges(const std::vector<std::pair<topology::Token, topology::Token>>& ranges);

  // Hot path, any thread. Tokens outside every range (no ranges set) are not counted.
  void record_read(topology::Token token, std::string_view key, uint64_t bytes_out,
                   uint64_t latency_us) {
    record(token, key, /*write=*/false, bytes_out, latency_us);
  }
  void record_write(topology::Token token, std::string_view key, uint64_t bytes_in,
                    uint64_t latency_us) {
    record(token, key, /*write=*/true, bytes_in, latency_us);
  }

  std::vector<RangeSample> sample() const;
  // Starts a new hot-key generation (the one before the previous is forgotten).
  void rotate_top_keys();

  static constexpr size_t kRetiredGenerations = 16;
  static constexpr int64_t kRetiredGraceMs = 60'000;

 private:
  struct Counters;
  struct Index;
  Counters* find(topology::Token token) const;
  void record(topology::Token token, std::string_view key, bool write, uint64_t bytes,
              uint64_t latency_us);

  std::atomic<const Index*> index_{nullptr};
  mutable std::mutex mu_;  // set_ranges, sample, rotate; never the hot path
  std::vector<std::unique_ptr<Counters>> live_;        // guarded by mu_
  struct Retired {
    int64_t time_ms = 0;  // steady clock
    std::unique_ptr<const Index> index;  // replaced by a newer one
    std::vector<std::unique_ptr<Counters>> counters;  // of ranges it alone held
  };
  std::unique_ptr<const Index> current_;  // guarded by mu_
  std::deque<Retired> retired_;           // guarded by mu_
};

// What a heartbeat carries about one range: rates and percentiles over the last window.
struct RangeLoadReport {
  topology::Token start = 0;
  topology::Token end = 0;
  double reads_per_sec = 0;
  double writes_per_sec = 0;
  double bytes_in_per_sec = 0;
  double bytes_out_per_sec = 0;
  uint64_t reads_total = 0;
  uint64_t writes_total = 0;
  uint64_t keys = 0;   // stored (estimate)
  uint64_t bytes = 0;  // stored (RocksDB approximate size of the range)
  uint64_t p50_us = 0;
  uint64_t p99_us = 0;
  uint64_t p999_us = 0;
  std::vector<TopKEntry> top_keys;
  bool operator==(const RangeLoadReport&) const = default;
};

nlohmann::json range_report_to_json(const RangeLoadReport& report);
// Strict: every field of the right type, tokens "0x..." or integers, at most kTopKeys keys of
// at most kTopKeyBytesMax bytes. Absent fields are 0.
Result<RangeLoadReport> range_report_from_json(const nlohmann::json& json);
nlohmann::json range_reports_to_json(const std::vector<RangeLoadReport>& reports);
Result<std::vector<RangeLoadReport>> range_reports_from_json(const nlohmann::json& json);

// Keeps the samples of the last window_ms (at most one a second is kept) and derives reports:
// rates = (now - oldest kept) / elapsed, percentiles over the latency recorded in between. The
// first call (no earlier sample) reports rates of 0 and percentiles of everything so far.
class LoadWindow {
 public:
  explicit LoadWindow(int64_t window_ms = kLoadWindowMs) : window_ms_(window_ms) {}
  // `samples` are cumulative; keys/bytes of the reports are left 0 (the caller fills them).
  std::vector<RangeLoadReport> update(int64_t now_ms, const std::vector<RangeSample>& samples);

 private:
  struct Kept {
    int64_t time_ms = 0;
    std::vector<RangeSample> samples;  // without top keys
  };
  int64_t window_ms_;
  std::deque<Kept> kept_;
};

// A machine-wide rate and latency over the same window (ops/s and p99 of the heartbeat's
// "load"): cumulative count and latency histogram in, rate and percentiles out.
class CountWindow {
 public:
  explicit CountWindow(int64_t window_ms = kLoadWindowMs) : window_ms_(window_ms) {}
  struct Rate {
    double per_sec = 0;
    HistogramSnapshot latency;  // recorded within the window
  };
  Rate update(int64_t now_ms, uint64_t count, const HistogramSnapshot& latency);

 private:
  struct Kept {
    int64_t time_ms = 0;
    uint64_t count = 0;
    HistogramSnapshot latency;
  };
  int64_t window_ms_;
  std::deque<Kept> kept_;
};

}  // namespace cairn::metrics
