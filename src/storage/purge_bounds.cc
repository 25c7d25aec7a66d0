#include "storage/purge_bounds.h"

#include <algorithm>

#include "topology/token_range.h"

namespace cairn::storage {

void PurgeBounds::raise(topology::Token start, topology::Token end, int64_t before_ms) {
  std::lock_guard lock(mu_);
  auto exact = by_start_.find(start);
  if (exact != by_start_.end() && exact->second.end == end) {
    exact->second.before_ms = std::max(exact->second.before_ms, before_ms);
    return;
  }
  std::erase_if(by_start_, [&](const auto& item) {
    return topology::ranges_overlap(item.second.start, item.second.end, start, end);
  });
  by_start_[start] = PurgeBound{start, end, before_ms};
}

std::optional<PurgeBound> PurgeBounds::find(topology::Token token) const {
  std::lock_guard lock(mu_);
  auto it = by_start_.upper_bound(token);
  if (it == by_start_.begin()) return std::nullopt;
  --it;
  if (!topology::before_end(token, it->second.end)) return std::nullopt;
  return it->second;
}

int64_t PurgeBounds::bound(topology::Token token) const {
  const std::optional<PurgeBound> entry = find(token);
  return entry ? entry->before_ms : 0;
}

std::vector<PurgeBound> PurgeBounds::entries() const {
  std::lock_guard lock(mu_);
  std::vector<PurgeBound> out;
  out.reserve(by_start_.size());
  for (const auto& [start, entry] : by_start_) out.push_back(entry);
  return out;
}

}  // namespace cairn::storage
