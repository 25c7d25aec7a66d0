#pragma once
// LogHistogram: a bounded HDR-style histogram of non-negative integers (microseconds where it
// measures latency). Values below 4 have a bucket each; above, every power of two is cut into
// 4 sub-buckets, so a reported percentile is at most 25 % above the true value. Values past
// 2^kExponentMax land in the last bucket. 4 + 4 * (kExponentMax - 1) buckets of 8 bytes.
//
// record() is a relaxed fetch_add (many writers); record_single_writer() is a relaxed load and
// store (one writer thread, e.g. one event loop). Readers take snapshot() from any thread.

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace cairn::metrics {

inline constexpr int kExponentMax = 36;  // 2^36 us: about 19 hours
inline constexpr size_t kSubBuckets = 4;
inline constexpr size_t kHistogramBuckets = 4 + kSubBuckets * (kExponentMax - 1);

// The bucket of `value` and the smallest value of bucket `index` (its upper bound is the lower
// bound of index + 1, exclusive; the last bucket has none).
size_t bucket_of(uint64_t value);
uint64_t bucket_lower(size_t index);

// Counts per bucket, their sum and the sum of the recorded values: a plain copy to compute on.
struct HistogramSnapshot {
  std::array<uint64_t, kHistogramBuckets> buckets{};
  uint64_t count = 0;
  uint64_t sum = 0;

  // The smallest recorded-bucket upper bound (inclusive) below which a `quantile` (0..1]
  // fraction of the values fall; 0 without values. Conservative: never below the true value
  // by more than the bucket width.
  uint64_t percentile(double quantile) const;
  // this - earlier, bucket by bucket (the values recorded between two snapshots). Buckets that
  // went backwards (a reset in between) count as 0.
  HistogramSnapshot minus(const HistogramSnapshot& earlier) const;
  void add(const HistogramSnapshot& other);
  // How many values are <= bound (bound must be bucket_lower(i) - 1 for some i, e.g. a power of
  // two minus one, for an exact answer; otherwise whole buckets below `bound` are counted).
  uint64_t count_at_most(uint64_t bound) const;
};

class LogHistogram {
 public:
  void record(uint64_t value) {
    buckets_[bucket_of(value)].fetch_add(1, std::memory_order_relaxed);
    sum_.fetch_add(value, std::memory_order_relaxed);
  }
  void record_single_writer(uint64_t value) {
    auto& bucket = buckets_[bucket_of(value)];
    bucket.store(bucket.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    sum_.store(sum_.load(std::memory_order_relaxed) + value, std::memory_order_relaxed);
  }
  HistogramSnapshot snapshot() const;
  void reset();

 private:
  std::array<std::atomic<uint64_t>, kHistogramBuckets> buckets_{};
  std::atomic<uint64_t> sum_{0};
};

// The upper bounds, in the histogram's unit, of the buckets a Prometheus histogram shows:
// 2^k - 1 for k = 1 .. 24 (1 us .. 16.7 s in us); every bound is exact.
std::vector<uint64_t> prometheus_bounds();

}  // namespace cairn::metrics
