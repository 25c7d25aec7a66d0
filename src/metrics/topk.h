#pragma once
// TopK: the space-saving sketch (Metwally et al.) of the most frequent keys, bounded to k
// entries of at most kTopKeyBytesMax bytes each. A key's count is never below its true count
// and at most `error` above it; any key more frequent than total / k is in the sketch.
// Not thread-safe: the owner guards it (RangeLoadTracker uses a try-lock, skipping an update
// rather than waiting).

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace cairn::metrics {

inline constexpr size_t kTopKeyBytesMax = 128;  // longer keys are truncated (and so merged)

struct TopKEntry {
  std::string key;
  uint64_t count = 0;
  uint64_t error = 0;  // count - error is a lower bound of the true count
  bool operator==(const TopKEntry&) const = default;
};

class TopK {
 public:
  explicit TopK(size_t k = 16);
  void add(std::string_view key, uint64_t count = 1);
  // The entries, most frequent first (ties: key order).
  std::vector<TopKEntry> top() const;
  void clear();
  uint64_t total() const { return total_; }
  size_t capacity() const { return k_; }

 private:
  size_t k_;
  std::vector<TopKEntry> entries_;  // at most k_, unordered; strings reserved once
  uint64_t total_ = 0;
};

// Merges entries (summing counts of equal keys) and keeps the k most frequent.
std::vector<TopKEntry> merge_top(std::vector<TopKEntry> entries, size_t k);

}  // namespace cairn::metrics
