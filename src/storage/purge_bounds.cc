#include "storage/purge_bounds.h"

#include <algorithm>

namespace cairn::storage {

namespace {

// Whether [a_start, a_end) and [b_start, b_end) share a token (end 0: the ring's end).
bool overlaps(topology::Token a_start, topology::Token a_end, topology::Token b_start,
              topology::Token b_end) {
  const bool a_before_b_ends = b_end == 0 || a_start < b_end;
  const bool b_before_a_ends = a_end == 0 || b_start < a_end;
  return a_before_b_ends && b_before_a_ends;
}

}  // namespace

void PurgeBounds::raise(topology::Token start, topology::Token end, int64_t before_ms) {
  std::lock_guard lock(mu_);
  auto exact = by_start_.find(start);
  if (exact != by_start_.end() && exact->second.end == end) {
    exact->second.before_ms = std::max(exact->second.before_ms, before_ms);
    return;
  }
  std::erase_if(by_start_, [&](const auto& item) {
    return overlaps(item.second.start, item.second.end, start, end);
  });
  by_start_[start] = PurgeBound{start, end, before_ms};
}

int64_t PurgeBounds::bound(topology::Token token) const {
  std::lock_guard lock(mu_);
  auto it = by_start_.upper_bound(token);
  if (it == by_start_.begin()) return 0;
  --it;
  const PurgeBound& entry = it->second;
  if (entry.end != 0 && token >= entry.end) return 0;
  return entry.before_ms;
}

std::vector<PurgeBound> PurgeBounds::entries() const {
  std::lock_guard lock(mu_);
  std::vector<PurgeBound> out;
  out.reserve(by_start_.size());
  for (const auto& [start, entry] : by_start_) out.push_back(entry);
  return out;
}

}  // namespace cairn::storage
