#pragma once
// Internal to src/storage: the RocksDB compaction filter that garbage-collects cells
// (docs/formats.md "TTL and tombstone GC"). Only engine.cc and storage tests include this.
//
// Invariants:
//  1. A cell that does not decode is kept: the filter never drops bytes it cannot read (reads
//     report them as corruption instead).
//  2. A removed entry becomes a RocksDB deletion marker (Decision::kRemove), never a silent drop,
//     so an older version of the key in a level below this compaction cannot resurface.
//  3. Thread-safe: one instance serves concurrent compactions; `wall_clock_ms` must be too.
//  4. A field of a row is removed only when its row's state (the `rows` column family) hides it:
//     timestamp <= RowState::hidden_through(now). The state only rises and outlives the header,
//     so a removed field can never become visible again (docs/formats.md "Rows").

#include <rocksdb/compaction_filter.h>
#include <rocksdb/db.h>

#include <atomic>

#include <cstdint>
#include <functional>
#include <string>

#include "storage/cell.h"
#include "storage/purge_bounds.h"

namespace cairn::storage {

class CellCompactionFilter final : public rocksdb::CompactionFilter {
 public:
  // REQUIRES: tombstone_grace_ms >= 0, wall_clock_ms is callable from any thread.
  // `purge_bounds` (may be null) must outlive the filter: a deletion of a range deleted before
  // the range's bound is removed before the grace period ends (storage/purge_bounds.h).
  CellCompactionFilter(std::function<int64_t()> wall_clock_ms, int64_t tombstone_grace_ms,
                       const PurgeBounds* purge_bounds = nullptr);

  enum class Verdict {
    kKeep,
    kToTombstone,  // an expired value: becomes a tombstone that keeps shadowing older versions
    kRemove,       // a tombstone (or expired value) older than the grace period
  };
  // Pure decision, separated from RocksDB for tests.
  static Verdict judge(const Cell& cell, int64_t now_ms, int64_t tombstone_grace_ms);

  Decision FilterV2(int level, const rocksdb::Slice& key, ValueType value_type,
                    const rocksdb::Slice& existing_value, std::string* new_value,
                    std::string* skip_until) const override;
  const char* Name() const override { return "cairn.CellCompactionFilter"; }

  // The row states fields are judged by. Until attached (and after detach) fields are judged
  // as cells only. REQUIRES: detach_rows() and the end of running compactions before `rows` is
  // destroyed.
  void attach_rows(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* rows);
  void detach_rows();

 private:
  // Whether the row state hides the field stored under `storage_key` with timestamp `timestamp`.
  bool row_hides(std::string_view storage_key, HlcTimestamp timestamp, int64_t now_ms) const;

  std::atomic<rocksdb::DB*> db_{nullptr};
  std::atomic<rocksdb::ColumnFamilyHandle*> rows_{nullptr};
  std::function<int64_t()> wall_clock_ms_;
  int64_t tombstone_grace_ms_;
  const PurgeBounds* purge_bounds_;
};

}  // namespace cairn::storage
