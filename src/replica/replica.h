#pragma once
// Replica: what a machine does with data it owns (docs/architecture.md "replica"): apply and read cells
// for other machines' coordinators, with epoch fencing (docs/cluster.md). The internal commands
// (src/commands/cmd_internal.cc) are thin wrappers around this class.
//
// Epoch fencing. Every request carries the caller's epoch E_c; this machine follows E_r:
//  * E_c < E_r: refused with FenceError{kStaleEpoch, E_r}: the caller fetches the newer table
//    (CAIRN.TABLE GET) and retries;
//  * E_c > E_r: refused with FenceError{kTableBehind, E_r}: the caller pushes its table
//    (CAIRN.TABLE SET) and retries;
//  * equal: served only if this machine is a voting replica, an extra or a joining replica of
//    the shard owning the token; otherwise refused with kNotOwner.
//
// Migration fences (docs/migration.md "cutover"). fence_range(E, start, end) makes every later
// apply/read/scan at epoch E for a token in [start, end) answer kMoving ("MOVING E"). A fence is
// in force only while this machine's table epoch is E: any newer table lifts it (the commit's
// epoch, or the bump that aborts an attempt). apply/read/scan hold the fence lock shared across
// their check and their storage access, and fence_range takes it exclusively, so every request
// that passed its check before the fence is in storage when fence_range reads the fenced LSN.
// Until the first fence is set (and again once every fence is lifted) requests skip the lock.
// Fences are saved in the meta column family ("fences", JSON), so they survive kill -9.
// Thread-safe.

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/hlc.h"
#include "metrics/range_load.h"
#include "common/status.h"
#include "replica/range_digest.h"
#include "replica/table_holder.h"
#include "storage/engine.h"

namespace cairn::replica {

enum class FenceCode { kNone, kStaleEpoch, kTableBehind, kNotOwner, kNoTable, kMoving };

struct Fence {
  FenceCode code = FenceCode::kNone;
  uint64_t epoch = 0;  // this machine's epoch
  bool ok() const { return code == FenceCode::kNone; }
};

// The RESP error text of a fence, e.g. "STALEEPOCH 7", "TABLEBEHIND 5", "NOTOWNER 5",
// "NOTABLE", "MOVING 5"; and its inverse for coordinators reading a reply.
std::string fence_error_text(const Fence& fence);
std::optional<Fence> parse_fence_error(std::string_view error_text);

struct ScanEntry {
  std::string key;
  storage::Cell cell;
  std::string sub_key;  // empty: the key's own cell; else a field of its row
};

struct ScanResult {
  std::vector<ScanEntry> entries;  // stored cells (tombstones and expired included), key order
  topology::Token next_token = 0;  // where the next page starts; == end (or 0 at ring end) if done
  bool done = false;
  // Not empty: the page stopped inside token next_token, whose cells alone fill more than a page
  // (a big row); the next page starts at this storage key (the one after the last cell
  // returned), passed back as the scan's `from`. Empty: the next page starts at next_token.
  std::string resume;
};

// Where a scan page starts, as a storage-key lower bound: the start of a token, or a page's
// `resume` inside one. Positions order bytewise as the cells they bound.
std::string scan_position(topology::Token token, std::string_view resume = {});
// The token a position lies in (its first 8 bytes); a position is inside that token when it is
// longer than a token's prefix.
topology::Token scan_position_token(std::string_view position);
inline bool scan_position_inside_token(std::string_view position) { return position.size() > 8; }

// One page of a row as this replica stores it (Replica::read_row_page, CAIRN.ROW).
struct RowPage {
  std::optional<storage::Cell> header;  // the key's own cell, whatever it is
  storage::RowState state;              // this replica's derived row state
  std::vector<std::pair<std::string, storage::Cell>> fields;  // (sub-key, cell), sub-key order
  std::optional<std::string> next;      // the sub-key the next page starts at; nullopt: done
};

class Replica {
 public:
  // `engine`, `clock` and `tables` must outlive the replica.
  Replica(storage::Engine& engine, HybridClock& clock, uint64_t machine_id, TableHolder& tables);

  uint64_t machine_id() const { return machine_id_; }
  TableHolder& tables() { return tables_; }

  // Checks the fence for `token` at `epoch` (see the class comment).
  Fence check(uint64_t epoch, topology::Token token) const;

  // Applies a cell written by a coordinator (LWW), after the fence check. The clock observes the
  // cell's timestamp. Result: fence outcome, and whether the cell was stored.
  // `newer_timestamp`: see storage::Engine::apply.
  // A non-empty `sub_key` applies a field of the key's row (storage::Engine::apply_field).
  Result<std::pair<Fence, bool>> apply(uint64_t epoch, std::string_view key,
                                       const storage::Cell& cell,
                                       HlcTimestamp* newer_timestamp = nullptr,
                                       std::string_view sub_key = {});

  // The stored cell of `key` (tombstones and expired cells included: the coordinator merges).
  // A non-empty `sub_key` reads that field of the key's row (storage::Engine::read_field).
  Result<std::pair<Fence, std::optional<storage::Cell>>> read(uint64_t epoch,
                                                              std::string_view key,
                                                              std::string_view sub_key = {});

  // One page of a row (CAIRN.ROW): the header, the row state and at most `count` stored field
  // cells (tombstones and hidden ones included) from the first sub-key >= from_sub_key.
  Result<std::pair<Fence, RowPage>> read_row_page(uint64_t epoch, std::string_view key,
                                                  std::string_view from_sub_key, size_t count);

  // Stored cells with start <= token < end (end 0 = to the ring's end), at most `count` keys.
  // Fenced on `start`'s range; `end` must not exceed the end of that range. `keys_only`: the
  // keys' own cells only, without the fields of rows (a client's SCAN, KEYS, DBSIZE walk keys;
  // storage::Engine::scan).
  // A page of all cells stops inside a token only when that token's cells alone exceed the
  // page's budget (a big row): then ScanResult::resume says where the next page starts, and
  // `from` (a resume answered before) starts a page there. A keys-only page never splits a token.
  Result<std::pair<Fence, ScanResult>> scan(uint64_t epoch, topology::Token start,
                                            topology::Token end, size_t count,
                                            bool keys_only = false, std::string_view from = {});

  // The digest of [start, end) as stored here (replica/range_digest.h), for anti-entropy
  // repair. Fenced like scan(): on `start`'s range at `epoch`, and `end` must not exceed the end
  // of that range. Visits at most `max_cells` cells (RangeDigest::truncated past that).
  Result<std::pair<Fence, RangeDigest>> digest(uint64_t epoch, topology::Token start,
                                               topology::Token end, size_t leaves,
                                               size_t max_cells, int64_t purge_before_ms = 0);

  // Like scan(), without any fence check and without the range bound: what this machine stores
  // (CAIRN.MIGRATE SCAN, which copies a range this machine may no longer own).
  Result<ScanResult> scan_stored(topology::Token start, topology::Token end, size_t count,
                                 std::string_view from = {});

  // Counts the reads and writes this replica serves per token range (docs/operations.md "Load
  // per range"); null: not counted. Set before serving; `tracker` must outlive the replica.
  void set_load_tracker(metrics::RangeLoadTracker* tracker) { load_ = tracker; }

  // The machine's storage, for the migration endpoints (WAL holds and reads, range deletes).
  storage::Engine& engine() { return engine_; }

  // Deletes every cell on this machine (FLUSHALL fans this out to every machine).
  Status clear();

  // Fences [start, end) (end 0 = ring end) at `epoch` (see the class comment). Requires this
  // machine's epoch == epoch (else kStaleEpoch / kTableBehind) and that it is a member (voting,
  // extra or joining) of the shard owning `start` (else kNotOwner). Saves the fence list, syncs
  // the WAL, and returns the fenced LSN: no write to the range at `epoch` has a later one.
  // Fencing again the same range at the same epoch is harmless (same answer, a newer LSN).
  // Busy if kFencesMax fences are in force, or if requests in flight do not drain in time.
  static constexpr size_t kFencesMax = 64;
  Result<std::pair<Fence, uint64_t>> fence_range(uint64_t epoch, topology::Token start,
                                                 topology::Token end);
  // The fences in force now (for INFO and tests): (epoch, start, end).
  struct RangeFence {
    uint64_t epoch = 0;
    topology::Token start = 0;
    topology::Token end = 0;  // 0 = ring end
    bool operator==(const RangeFence&) const = default;
  };
  std::vector<RangeFence> fences() const;

  // A cell copied by a migration or a rebuild: stored by LWW without any fence check (the copy
  // runs before this machine owns the range); the clock observes its timestamp.
  Result<bool> apply_copied(std::string_view key, const storage::Cell& cell);
  // `logged` false: see storage::Engine::apply_batch (durable only after flush_memtables()).
  Result<size_t> apply_copied_batch(const std::vector<storage::WalChange>& cells,
                                    bool logged = true);

  ~Replica();

 private:
  struct FenceState;
  class FenceGuard;
  // The fence of a request for [start, end) at `epoch` against `table`, including migration
  // fences. REQUIRES: `guard` is held for the whole request.
  Fence fence_for(const FenceGuard& guard, const topology::RoutingTable* table, uint64_t epoch,
                  topology::Token start, topology::Token end) const;
  Status save_fences_locked();
  void forget_lifted_fences();

  storage::Engine& engine_;
  HybridClock& clock_;
  uint64_t machine_id_;
  TableHolder& tables_;
  std::unique_ptr<FenceState> fence_state_;
  metrics::RangeLoadTracker* load_ = nullptr;

  // Times one storage access when a tracker is set (no clock read otherwise).
  class LoadTimer {
   public:
    explicit LoadTimer(const metrics::RangeLoadTracker* tracker) {
      if (tracker != nullptr) start_ = std::chrono::steady_clock::now();
    }
    uint64_t elapsed_us() const {
      const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                          std::chrono::steady_clock::now() - start_)
                          .count();
      return ns <= 0 ? 1 : static_cast<uint64_t>((ns + 999) / 1000);
    }

   private:
    std::chrono::steady_clock::time_point start_{};
  };
};

}  // namespace cairn::replica
