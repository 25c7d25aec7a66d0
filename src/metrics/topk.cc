#include "metrics/topk.h"

#include <algorithm>
#include <map>

namespace cairn::metrics {

namespace {

void sort_entries(std::vector<TopKEntry>& entries) {
  std::sort(entries.begin(), entries.end(), [](const TopKEntry& a, const TopKEntry& b) {
    return a.count != b.count ? a.count > b.count : a.key < b.key;
  });
}

}  // namespace

TopK::TopK(size_t k) : k_(std::max<size_t>(k, 1)) { entries_.reserve(k_); }

void TopK::add(std::string_view key, uint64_t count) {
  if (key.size() > kTopKeyBytesMax) key = key.substr(0, kTopKeyBytesMax);
  total_ += count;
  for (TopKEntry& entry : entries_) {
    if (entry.key == key) {
      entry.count += count;
      return;
    }
  }
  if (entries_.size() < k_) {
    TopKEntry entry;
    entry.key.reserve(kTopKeyBytesMax);
    entry.key.assign(key);
    entry.count = count;
    entries_.push_back(std::move(entry));
    return;
  }
  // Replace the least frequent: the newcomer inherits its count as the possible error.
  auto least = std::min_element(entries_.begin(), entries_.end(),
                                [](const TopKEntry& a, const TopKEntry& b) {
                                  return a.count < b.count;
                                });
  least->key.assign(key);  // within the reserved capacity: no allocation
  least->error = least->count;
  least->count += count;
}

std::vector<TopKEntry> TopK::top() const {
  std::vector<TopKEntry> out = entries_;
  sort_entries(out);
  return out;
}

void TopK::clear() {
  entries_.clear();
  total_ = 0;
}

std::vector<TopKEntry> merge_top(std::vector<TopKEntry> entries, size_t k) {
  std::map<std::string, TopKEntry> merged;
  for (TopKEntry& entry : entries) {
    TopKEntry& into = merged[entry.key];
    into.key = entry.key;
    into.count += entry.count;
    into.error += entry.error;
  }
  std::vector<TopKEntry> out;
  out.reserve(merged.size());
  for (auto& [key, entry] : merged) out.push_back(std::move(entry));
  sort_entries(out);
  if (out.size() > k) out.resize(k);
  return out;
}

}  // namespace cairn::metrics
