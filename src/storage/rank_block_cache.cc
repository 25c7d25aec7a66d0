#include "storage/rank_block_cache.h"

#include <algorithm>

namespace cairn::storage {

namespace {

// Blocks are ordered by their end; the last block's end is empty and above every other.
bool ends_before(std::string_view a, std::string_view b) {
  if (a.empty()) return false;
  if (b.empty()) return true;
  return a < b;
}

}  // namespace

const RankBlock* rank_block_holding(const std::vector<RankBlock>& blocks, std::string_view sub_key) {
  auto at = std::upper_bound(blocks.begin(), blocks.end(), sub_key,
                             [](std::string_view k, const RankBlock& b) { return ends_before(k, b.end); });
  return at == blocks.end() ? nullptr : &*at;
}

void apply_rank_edit(std::vector<RankBlock>& blocks, std::string_view end,
                     const std::optional<RankBlock>& block) {
  auto at = std::lower_bound(blocks.begin(), blocks.end(), end,
                             [](const RankBlock& b, std::string_view e) { return ends_before(b.end, e); });
  const bool found = at != blocks.end() && at->end == end;
  if (!block) {
    if (found) blocks.erase(at);
  } else if (found) {
    *at = *block;
  } else {
    blocks.insert(at, *block);
  }
}

uint64_t RankBlockCache::epoch() const {
  std::lock_guard<std::mutex> lock(mu_);
  return epoch_;
}

std::shared_ptr<RankBlockCache::Entry> RankBlockCache::find(const std::string& row_ns) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = slots_.find(row_ns);
  if (it == slots_.end()) return nullptr;
  lru_.splice(lru_.begin(), lru_, it->second.lru);
  return it->second.entry;
}

std::shared_ptr<RankBlockCache::Entry> RankBlockCache::insert(const std::string& row_ns,
                                                              std::vector<RankBlock> blocks,
                                                              uint64_t epoch) {
  auto entry = std::make_shared<Entry>(Entry{std::move(blocks)});
  std::lock_guard<std::mutex> lock(mu_);
  if (epoch != epoch_ || epoch_ % 2 != 0) return entry;
  const size_t size = entry->blocks.size() + 1;
  if (size > max_blocks_) return entry;
  auto [it, fresh] = slots_.try_emplace(row_ns);
  if (fresh) {
    lru_.push_front(row_ns);
    it->second.lru = lru_.begin();
  } else {
    blocks_ -= it->second.blocks;
    lru_.splice(lru_.begin(), lru_, it->second.lru);
  }
  it->second.entry = entry;
  it->second.blocks = size;
  blocks_ += size;
  evict_locked();
  return entry;
}

void RankBlockCache::apply(const RankEdits& edits) {
  if (edits.edits.empty()) return;
  std::lock_guard<std::mutex> lock(mu_);
  for (const RankEdits::Edit& edit : edits.edits) {
    auto it = slots_.find(edit.row_ns);
    if (it == slots_.end()) continue;
    std::vector<RankBlock>& blocks = it->second.entry->blocks;
    apply_rank_edit(blocks, edit.end, edit.block);
    blocks_ -= it->second.blocks;
    it->second.blocks = blocks.size() + 1;
    blocks_ += it->second.blocks;
  }
  evict_locked();
}

void RankBlockCache::begin_range_deletion() {
  std::lock_guard<std::mutex> lock(mu_);
  ++epoch_;
  clear_locked();
}

void RankBlockCache::end_range_deletion() {
  std::lock_guard<std::mutex> lock(mu_);
  ++epoch_;
  clear_locked();
}

size_t RankBlockCache::cached_blocks() const {
  std::lock_guard<std::mutex> lock(mu_);
  return blocks_;
}

void RankBlockCache::evict_locked() {
  while (blocks_ > max_blocks_ && !lru_.empty()) {
    auto it = slots_.find(lru_.back());
    blocks_ -= it->second.blocks;
    slots_.erase(it);
    lru_.pop_back();
  }
}

void RankBlockCache::clear_locked() {
  slots_.clear();
  lru_.clear();
  blocks_ = 0;
}

}  // namespace cairn::storage
