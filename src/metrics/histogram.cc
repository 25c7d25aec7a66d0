#include "metrics/histogram.h"

#include <algorithm>
#include <bit>
#include <cmath>

namespace cairn::metrics {

size_t bucket_of(uint64_t value) {
  if (value < 4) return static_cast<size_t>(value);
  const int exponent = 63 - std::countl_zero(value);  // >= 2
  if (exponent > kExponentMax) return kHistogramBuckets - 1;
  const size_t sub = static_cast<size_t>((value >> (exponent - 2)) & 3);
  const size_t index = 4 + static_cast<size_t>(exponent - 2) * kSubBuckets + sub;
  return std::min(index, kHistogramBuckets - 1);
}

uint64_t bucket_lower(size_t index) {
  if (index < 4) return index;
  const size_t exponent = (index - 4) / kSubBuckets + 2;
  const uint64_t sub = (index - 4) % kSubBuckets;
  return (4 + sub) << (exponent - 2);
}

uint64_t HistogramSnapshot::percentile(double quantile) const {
  if (count == 0) return 0;
  quantile = std::clamp(quantile, 0.0, 1.0);
  const uint64_t rank =
      std::max<uint64_t>(1, static_cast<uint64_t>(std::ceil(quantile * static_cast<double>(count))));
  uint64_t seen = 0;
  for (size_t i = 0; i < kHistogramBuckets; ++i) {
    seen += buckets[i];
    if (seen >= rank) {
      // The bucket's largest value: values below 4 are exact.
      return i + 1 < kHistogramBuckets ? bucket_lower(i + 1) - 1 : bucket_lower(i);
    }
  }
  return bucket_lower(kHistogramBuckets - 1);
}

HistogramSnapshot HistogramSnapshot::minus(const HistogramSnapshot& earlier) const {
  HistogramSnapshot out;
  for (size_t i = 0; i < kHistogramBuckets; ++i) {
    out.buckets[i] = buckets[i] >= earlier.buckets[i] ? buckets[i] - earlier.buckets[i] : 0;
    out.count += out.buckets[i];
  }
  out.sum = sum >= earlier.sum ? sum - earlier.sum : 0;
  return out;
}

void HistogramSnapshot::add(const HistogramSnapshot& other) {
  for (size_t i = 0; i < kHistogramBuckets; ++i) buckets[i] += other.buckets[i];
  count += other.count;
  sum += other.sum;
}

uint64_t HistogramSnapshot::count_at_most(uint64_t bound) const {
  uint64_t total = 0;
  for (size_t i = 0; i < kHistogramBuckets; ++i) {
    const uint64_t upper = i + 1 < kHistogramBuckets ? bucket_lower(i + 1) - 1 : UINT64_MAX;
    if (upper > bound) break;
    total += buckets[i];
  }
  return total;
}

HistogramSnapshot LogHistogram::snapshot() const {
  HistogramSnapshot out;
  for (size_t i = 0; i < kHistogramBuckets; ++i) {
    out.buckets[i] = buckets_[i].load(std::memory_order_relaxed);
    out.count += out.buckets[i];
  }
  out.sum = sum_.load(std::memory_order_relaxed);
  return out;
}

void LogHistogram::reset() {
  for (auto& bucket : buckets_) bucket.store(0, std::memory_order_relaxed);
  sum_.store(0, std::memory_order_relaxed);
}

std::vector<uint64_t> prometheus_bounds() {
  std::vector<uint64_t> bounds;
  for (int k = 1; k <= 24; ++k) bounds.push_back((uint64_t{1} << k) - 1);
  return bounds;
}

}  // namespace cairn::metrics
