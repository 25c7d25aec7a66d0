#pragma once
// Rank blocks held in memory (docs/formats.md "Rank blocks"). A reader of ranks (SPOP,
// ZPOPMIN, ZRANGE by rank, ZRANK) needs every block of the row to add up the counts; read from
// RocksDB, each of them steps over every old version of the block that the memtable still holds
// (each write to the row rewrites one block), which made a pop cost as much as reading the
// whole row's blocks many times over. The engine keeps here the blocks of the rows read
// recently, as stored, and brings them up to date with every write that changes them.
//
// Consistency with storage, as the engine uses it:
// * the blocks of one row change only while its apply stripe is held, and a writer applies its
//   edits here after its WriteBatch is written, before it lets go of the stripe;
// * a reader takes the stripe, reads the cached blocks (or loads them from storage), takes its
//   RocksDB snapshot and lets go: blocks and snapshot are of one moment;
// * a range deletion (which takes no stripe) clears everything before and after it is written
//   and moves the epoch on twice; a reader that saw the epoch move reads from its snapshot.
//
// Thread-safe for the map; an entry's blocks are guarded by its row's apply stripe.

#include <cstddef>
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace cairn::storage {

struct RankBlock {
  std::string start;  // the first sub-key the block covers ("" for the first block)
  std::string end;    // the first sub-key after it ("" for the last block)
  uint64_t count = 0;
  bool operator==(const RankBlock&) const = default;
};

// The block changes one WriteBatch makes, in order: `block` set for a put, empty for the
// deletion of the block that ends at `end`.
struct RankEdits {
  struct Edit {
    std::string row_ns;  // row key | namespace
    std::string end;
    std::optional<RankBlock> block;
  };
  std::vector<Edit> edits;
};

class RankBlockCache {
 public:
  struct Entry {
    std::vector<RankBlock> blocks;  // ordered by end, the last block ("" end) last
  };

  // `max_blocks` bounds the blocks held across all rows (least recently used rows go first).
  explicit RankBlockCache(size_t max_blocks) : max_blocks_(max_blocks) {}

  // Even while no range deletion runs; a reader compares it before and after.
  uint64_t epoch() const;

  // The row's cached blocks, or null.
  std::shared_ptr<Entry> find(const std::string& row_ns);
  // Caches `blocks` (read from storage under the row's stripe) unless the epoch moved since
  // `epoch` was read; returns the entry either way.
  std::shared_ptr<Entry> insert(const std::string& row_ns, std::vector<RankBlock> blocks,
                                uint64_t epoch);
  // Brings the cached rows among `edits` up to date (others stay uncached). REQUIRES: the
  // stripes of those rows are held and the edits are written.
  void apply(const RankEdits& edits);

  // Around a range deletion: forget everything, the epoch odd while it runs.
  void begin_range_deletion();
  void end_range_deletion();

  size_t cached_blocks() const;

 private:
  struct Slot {
    std::shared_ptr<Entry> entry;
    std::list<std::string>::iterator lru;  // position in lru_
    size_t blocks = 0;                     // as counted into blocks_
  };
  void evict_locked();
  void clear_locked();

  const size_t max_blocks_;
  mutable std::mutex mu_;
  uint64_t epoch_ = 0;
  std::unordered_map<std::string, Slot> slots_;
  std::list<std::string> lru_;  // most recently used first
  size_t blocks_ = 0;
};

// The block holding `sub_key`: the first whose end is above it; null when there are none.
const RankBlock* rank_block_holding(const std::vector<RankBlock>& blocks, std::string_view sub_key);

// Replaces the block ending at `end` by `block`, inserts it in order, or (no block) removes it.
void apply_rank_edit(std::vector<RankBlock>& blocks, std::string_view end,
                     const std::optional<RankBlock>& block);

}  // namespace cairn::storage
