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

#include <rocksdb/compaction_filter.h>

#include <cstdint>
#include <functional>
#include <string>

#include "storage/cell.h"

namespace cairn::storage {

class CellCompactionFilter final : public rocksdb::CompactionFilter {
 public:
  // REQUIRES: tombstone_grace_ms >= 0, wall_clock_ms is callable from any thread.
  CellCompactionFilter(std::function<int64_t()> wall_clock_ms, int64_t tombstone_grace_ms);

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

 private:
  std::function<int64_t()> wall_clock_ms_;
  int64_t tombstone_grace_ms_;
};

}  // namespace cairn::storage
