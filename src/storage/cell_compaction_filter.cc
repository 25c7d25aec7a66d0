#include "storage/cell_compaction_filter.h"

#include <algorithm>
#include <utility>

#include "storage/engine.h"

namespace cairn::storage {

CellCompactionFilter::CellCompactionFilter(std::function<int64_t()> wall_clock_ms,
                                           int64_t tombstone_grace_ms,
                                           const PurgeBounds* purge_bounds)
    : wall_clock_ms_(std::move(wall_clock_ms)),
      tombstone_grace_ms_(tombstone_grace_ms),
      purge_bounds_(purge_bounds) {
  CAIRN_ASSERT(wall_clock_ms_ != nullptr, "compaction filter needs a clock");
  CAIRN_ASSERT(tombstone_grace_ms_ >= 0, "tombstone grace must not be negative");
}

CellCompactionFilter::Verdict CellCompactionFilter::judge(const Cell& cell, int64_t now_ms,
                                                          int64_t tombstone_grace_ms) {
  if (!cell.tombstone && !cell.expired_at(now_ms)) return Verdict::kKeep;
  // A deletion (a tombstone, or a value whose TTL ran out, as Cassandra treats it) must outlive
  // every replica that might still hold an older value of the key (hints, repairs, a replica
  // that was down), or that value would come back: hence the grace period, measured from when
  // the key stopped existing. Written as a subtraction so a huge grace cannot overflow.
  if (cell.deleted_ms() <= now_ms - tombstone_grace_ms) return Verdict::kRemove;
  return cell.tombstone ? Verdict::kKeep : Verdict::kToTombstone;
}

void CellCompactionFilter::attach_rows(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* rows) {
  rows_.store(rows);
  db_.store(db);
}

void CellCompactionFilter::detach_rows() {
  db_.store(nullptr);
  rows_.store(nullptr);
}

bool CellCompactionFilter::row_hides(std::string_view storage_key, HlcTimestamp timestamp,
                                     int64_t now_ms) const {
  rocksdb::DB* db = db_.load();
  rocksdb::ColumnFamilyHandle* rows = rows_.load();
  if (db == nullptr || rows == nullptr) return false;
  Result<DecodedKey> decoded = decode_key(storage_key);
  if (!decoded.is_ok() || decoded->sub_key.empty()) return false;
  const std::string row_key = encode_key(decoded->token, decoded->key);
  std::string stored;
  if (!db->Get(rocksdb::ReadOptions(), rows, row_key, &stored).ok()) return false;
  Result<RowState> state = decode_row_state(stored);
  if (!state.is_ok()) return false;
  return timestamp <= state->hidden_through(now_ms);
}

CellCompactionFilter::Decision CellCompactionFilter::FilterV2(
    int /*level*/, const rocksdb::Slice& key, ValueType value_type,
    const rocksdb::Slice& existing_value, std::string* new_value,
    std::string* /*skip_until*/) const {
  if (value_type != ValueType::kValue) return Decision::kKeep;
  Result<Cell> cell = decode_cell(std::string_view(existing_value.data(), existing_value.size()));
  if (!cell.is_ok()) return Decision::kKeep;
  const int64_t now = wall_clock_ms_();
  // A field of an earlier life of its key (before a DEL, a type change, a whole-key expiry):
  // no read can see it again, whatever its own timestamp says.
  if (row_hides(std::string_view(key.data(), key.size()), cell->timestamp, now)) {
    return Decision::kRemove;
  }
  Verdict verdict = judge(*cell, now, tombstone_grace_ms_);
  // Every replica of the range held this deletion when they last compared equal
  // (storage/purge_bounds.h): it has done its job and goes before the grace period ends.
  if (verdict != Verdict::kRemove && purge_bounds_ != nullptr && !cell->live_at(now)) {
    Result<DecodedKey> decoded = decode_key(std::string_view(key.data(), key.size()));
    if (decoded.is_ok() && cell->deleted_before(purge_bounds_->bound(decoded->token), now)) {
      verdict = Verdict::kRemove;
    }
  }
  switch (verdict) {
    case Verdict::kKeep:
      return Decision::kKeep;
    case Verdict::kToTombstone: {
      // Same timestamp and writer, so last-write-wins orders it exactly as the expired value;
      // the expiry stays as the moment of deletion for the grace period.
      Cell tombstone = std::move(cell).value();
      tombstone.tombstone = true;
      tombstone.value.clear();
      *new_value = encode_cell(tombstone);
      return Decision::kChangeValue;
    }
    case Verdict::kRemove:
      // kRemove (not kRemoveAndSkipUntil) because RocksDB turns it into a deletion marker for
      // this key, which keeps shadowing older versions in levels outside this compaction.
      return Decision::kRemove;
  }
  return Decision::kKeep;
}

}  // namespace cairn::storage
