#include "storage/cell_compaction_filter.h"

#include <utility>

namespace cairn::storage {

CellCompactionFilter::CellCompactionFilter(std::function<int64_t()> wall_clock_ms,
                                           int64_t tombstone_grace_ms)
    : wall_clock_ms_(std::move(wall_clock_ms)), tombstone_grace_ms_(tombstone_grace_ms) {
  CAIRN_ASSERT(wall_clock_ms_ != nullptr, "compaction filter needs a clock");
  CAIRN_ASSERT(tombstone_grace_ms_ >= 0, "tombstone grace must not be negative");
}

bool CellCompactionFilter::collectable(const Cell& cell, int64_t now_ms,
                                       int64_t tombstone_grace_ms) {
  if (cell.tombstone) {
    // A tombstone must outlive every replica that might still hold the value it deletes (hints,
    // repairs, a replica that was down), or that value would come back: hence the grace period,
    // measured from when the delete was issued (the physical part of its HLC timestamp).
    // Written as a subtraction so a huge grace cannot overflow.
    const int64_t written_ms = HybridClock::physical_ms(cell.timestamp);
    return written_ms <= now_ms - tombstone_grace_ms;
  }
  return cell.expired_at(now_ms);
}

CellCompactionFilter::Decision CellCompactionFilter::FilterV2(
    int /*level*/, const rocksdb::Slice& /*key*/, ValueType value_type,
    const rocksdb::Slice& existing_value, std::string* /*new_value*/,
    std::string* /*skip_until*/) const {
  if (value_type != ValueType::kValue) return Decision::kKeep;
  Result<Cell> cell = decode_cell(std::string_view(existing_value.data(), existing_value.size()));
  if (!cell.is_ok()) return Decision::kKeep;
  // kRemove (not kRemoveAndSkipUntil) because RocksDB turns it into a deletion marker for this
  // key, which keeps shadowing older versions that sit in levels outside this compaction.
  return collectable(*cell, wall_clock_ms_(), tombstone_grace_ms_) ? Decision::kRemove
                                                                   : Decision::kKeep;
}

}  // namespace cairn::storage
