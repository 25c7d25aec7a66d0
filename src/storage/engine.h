#pragma once
// The storage engine of one machine: the only code that includes <rocksdb/...> (docs/architecture.md, docs/formats.md).
//
// Thread-safety: every method may be called from any thread concurrently.
// Durability: apply() puts its record in RocksDB's WAL buffer (manual_wal_flush); sync() makes
// every write that returned before the call durable according to the durability mode. The front
// end calls sync() once per event-loop iteration before it sends the replies of that iteration
// (group commit, as Redis does with appendfsync always).
//
// Invariants:
//  1. The stored cell of a key only ever changes to a cell that supersedes it (LWW).
//  2. Expired cells and tombstones older than the grace period are dropped by a compaction
//     filter; reads hide expired cells at once (callers use Cell::live_at).
//  3. After kill -9 and reopen, every write whose sync() returned is present.

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "common/status.h"
#include "storage/cell.h"
#include "storage/purge_bounds.h"

namespace rocksdb {
class WriteBatch;
}  // namespace rocksdb

namespace cairn::storage {

struct RankEdits;  // storage/rank_block_cache.h

enum class Durability {
  kAlways,  // sync() fsyncs the WAL; replies wait for it (default)
  kBatch,   // a background thread fsyncs the WAL every batch_sync_interval_ms; sync() only
            // hands buffered records to the kernel (survives kill -9, not power loss)
  kNone,    // sync() hands the WAL to the kernel, never fsyncs (survives kill -9, not power loss)
};

// Parses "always" | "batch" | "none".
Result<Durability> parse_durability(std::string_view text);
std::string_view durability_name(Durability durability);

struct EngineOptions {
  std::string path;                        // the RocksDB directory; created if missing
  Durability durability = Durability::kAlways;
  int batch_sync_interval_ms = 10;
  int64_t tombstone_grace_ms = 10ll * 24 * 3600 * 1000;  // as Cassandra's gc_grace_seconds
  size_t block_cache_bytes = 32 * 1024 * 1024;
  size_t write_buffer_bytes = 32 * 1024 * 1024;
  // Read by the compaction filter to decide what has expired. Tests pass a fake clock.
  std::function<int64_t()> wall_clock_ms;  // default: cairn::wall_clock_ms
  // If set, sync() first records this reading (the machine's HLC) in the WAL, so it is durable
  // with every write it covers; after a restart recorded_clock() returns it and the HLC observes
  // it. So a restarted machine never stamps a write older than one it acknowledged before, even
  // if the wall clock went backwards in between.
  std::function<uint64_t()> clock_to_record;
  // How long closed WAL files stay readable by wal_changes() without a hold (RocksDB's
  // WAL_ttl_seconds / WAL_size_limit_MB: whichever limit is reached first drops a file). Tests
  // set both to 0 so a flushed WAL is deleted at once.
  uint64_t wal_retention_seconds = 600;
  uint64_t wal_retention_megabytes = 128;
  // How long open() waits for another process to release the directory's lock (a previous
  // instance killed a moment ago still exiting) before it fails.
  int lock_wait_ms = 10000;
};

struct EngineStats {
  uint64_t approximate_bytes = 0;   // live SST + memtable bytes
  uint64_t wal_syncs = 0;           // WAL fsyncs performed (sync(), kBatch syncer, close)
  uint64_t writes = 0;              // cells applied
  uint64_t latest_sequence = 0;     // RocksDB's last sequence number (the WAL LSN)
};

// A write a coordinator could not deliver to a replica, kept for hinted handoff (docs/cluster.md):
// replayed (in `sequence` order) when the target answers again, then dropped.
struct Hint {
  uint64_t target = 0;    // machine id of the replica that missed the write
  uint64_t sequence = 0;  // engine-wide, increasing in storage order
  std::string key;
  Cell cell;              // the cell's timestamp tells the caller how old the hint is
  std::string sub_key;    // empty: the key's own cell; else a field of its row
};

// One cell change read back from the WAL (Engine::wal_changes), or a cell to apply in a batch
// (Engine::apply_batch).
struct WalChange {
  topology::Token token = 0;
  std::string key;
  Cell cell;
  std::string sub_key;  // empty: the key's own cell (a string, or a row's header)
};

// What this machine derives about a row (docs/formats.md "Rows"), kept in the `rows` column
// family and maintained by every apply under the row's lock. Local: never replicated, never
// relayed by a WAL reader; each replica derives its own from the cells it holds.
struct RowState {
  // Fields with timestamp <= delete_through are hidden (an earlier life of the key). Only rises.
  HlcTimestamp delete_through = 0;
  // Expiry of the stored header (0 = none); once passed, fields up to it are hidden as well.
  int64_t header_expire_at_ms = 0;
  // Stored field cells that are neither tombstones nor hidden by delete_through.
  uint64_t count = 0;
  // The largest timestamp of a counted field ever applied: when delete_through rises past it,
  // the count is 0 without a scan of the row.
  HlcTimestamp newest_field = 0;
  bool operator==(const RowState&) const = default;

  // The bound a reader or the compaction filter applies at `now_ms`.
  HlcTimestamp hidden_through(int64_t now_ms) const;
};

// The RowState layout of docs/formats.md "Rows".
std::string encode_row_state(const RowState& state);
Result<RowState> decode_row_state(std::string_view bytes);

// A row as stored: its header cell (the key's own cell, if any) and the state derived from it.
struct StoredRow {
  std::optional<Cell> header;
  RowState state;
};

// Visitor of a row's fields (scan_row): the sub-key and the stored cell. Return false to stop.
using FieldVisitor = std::function<bool(std::string_view sub_key, const Cell& cell)>;

// A range deletion read back from the WAL, in tokens: a client's FLUSHALL, or one relayed by a
// migration. Local drops (Engine::drop_range) are never read back.
struct WalRangeDelete {
  topology::Token start = 0;
  topology::Token end = 0;  // 0 = the ring's end
};

// One record of the WAL tail: a cell change or a range deletion, with the LSN it was written
// at. A reader must apply the entries in order: a range deletion hides exactly the cells written
// before it, and a cell written after it survives it, whatever the timestamps say (a range
// deletion is RocksDB's DeleteRange, not a timestamped tombstone).
struct WalEntry {
  uint64_t sequence = 0;
  std::variant<WalChange, WalRangeDelete> change;

  const WalChange* cell() const { return std::get_if<WalChange>(&change); }
  const WalRangeDelete* range_delete() const { return std::get_if<WalRangeDelete>(&change); }
};

struct WalChanges {
  uint64_t next_sequence = 0;    // pass as from_sequence next time
  uint64_t latest_sequence = 0;  // the engine's latest LSN when read
  // Cells of the data with start <= token < end and range deletions clipped to [start, end),
  // in sequence order (increasing `sequence`), from whole write batches.
  std::vector<WalEntry> entries;
};

// Visitor for scans: return false to stop. `sub_key` is empty for a key's own cell (a string or
// a row header) and non-empty for the fields of a row, which follow their header.
using CellVisitor = std::function<bool(topology::Token token, std::string_view key,
                                       std::string_view sub_key, const Cell& cell)>;

class Engine {
 public:
  // Opens (creating if missing) the directory options.path. A directory gets the current format
  // version recorded on first open; one recorded in another format, or holding cells or hints
  // without a recorded version (written before versions were recorded), is refused with
  // invalid_argument and a message saying what to do (docs/formats.md "Format version").
  static Result<std::unique_ptr<Engine>> open(const EngineOptions& options);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // The stored cell of `key` (including tombstones and expired cells), or nullopt.
  Result<std::optional<Cell>> read(topology::Token token, std::string_view key);

  // Stores `cell` if it supersedes the stored cell of `key` (or there is none). Returns whether it
  // was stored. The key's own cell is also a row's header: storing one raises the row's
  // delete_through to what the new cell hides (and recounts the row if fields are newer). Atomic with respect to other apply() calls on the same key. If a different,
  // newer cell is stored and `newer_timestamp` is given, it receives that cell's timestamp (so a
  // coordinator can stamp again after it; an identical cell leaves it untouched).
  Result<bool> apply(topology::Token token, std::string_view key, const Cell& cell,
                     HlcTimestamp* newer_timestamp = nullptr);

  // A read view of the whole storage at one moment (a RocksDB snapshot): reads given one see no
  // write made after it was taken. Holding one keeps the cell versions it sees from compaction,
  // so it is held for one reply at most (a big listing produced page by page, docs/protocol.md
  // "Big replies"). It must be released before the engine is closed.
  class Snapshot;
  std::shared_ptr<const Snapshot> snapshot();

  // ---- Rows (docs/formats.md "Rows") ----
  //
  // The header (the key's own cell) and the derived state of a row, now or as of `at`.
  Result<StoredRow> read_row(topology::Token token, std::string_view key,
                             const Snapshot* at = nullptr);
  // The stored cell of one field. REQUIRES: sub_key is not empty.
  Result<std::optional<Cell>> read_field(topology::Token token, std::string_view key,
                                         std::string_view sub_key);
  // Stores a field cell by LWW and keeps the row's count. A cell the row's delete_through
  // already hides is not stored: returns false and reports delete_through in newer_timestamp,
  // so a coordinator stamps again after it (a clock behind the DEL's). A sorted set's member
  // cell that is stored also moves the member's score index entry, in further writes under the
  // same lock; a score index cell given here is ignored (returns false): each machine derives
  // its index from its own member cells (docs/formats.md "Sorted sets"). REQUIRES: sub_key not
  // empty.
  Result<bool> apply_field(topology::Token token, std::string_view key, std::string_view sub_key,
                           const Cell& cell, HlcTimestamp* newer_timestamp = nullptr);
  // One field change of a row, for apply_fields.
  struct FieldChange {
    std::string sub_key;  // REQUIRES: not empty
    Cell cell;
  };
  // Applies field cells of one row, each exactly as apply_field would, with one read of the row
  // state, one MultiGet of the stored cells and one WriteBatch under one lock of the row, so a
  // crash keeps all or none of them. Returns how many were stored. Rank blocks are updated
  // from what is stored, which a pending batch is not yet: so when a row has blocks (or this
  // batch could make it outgrow one) and more than one cell changes a block's count, or a
  // sub-key is named twice, the cells go one by one through apply_field instead, each atomic
  // on its own. (A push or pop of one list element, one XADD, one HSET field: one batch.)
  Result<size_t> apply_fields(topology::Token token, std::string_view key,
                              std::span<const FieldChange> changes);
  // Called after apply_field or apply_fields stored a cell, and after apply() stored a key's own
  // cell (a row header, a string, a tombstone: `sub_key` empty), on the applying thread, with
  // the row's apply lock held: it must not call the engine and should only hand the news on (blocked list
  // pops and stream reads wake on it). Not called for strings stored by apply_batch's plain
  // path (keys that never were rows). Set once, before the engine serves writes; REQUIRES: not
  // changed afterwards.
  using FieldObserver =
      std::function<void(std::string_view key, std::string_view sub_key, const Cell& cell)>;
  void set_field_observer(FieldObserver observer) { field_observer_ = std::move(observer); }
  // Called after clear() emptied the engine (FLUSHALL), on the clearing thread. Set once, as
  // the field observer.
  void set_clear_observer(std::function<void()> observer) {
    clear_observer_ = std::move(observer);
  }
  // Visits the stored field cells of a row (tombstones and hidden ones included) in sub-key
  // order, from the first sub-key >= from_sub_key (at least the first field).
  Status scan_row(topology::Token token, std::string_view key, std::string_view from_sub_key,
                  const FieldVisitor& visitor, const Snapshot* at = nullptr);
  // The same in descending sub-key order, from the last sub-key < below_sub_key (an empty
  // below_sub_key: from the row's last field).
  Status scan_row_reverse(topology::Token token, std::string_view key,
                          std::string_view below_sub_key, const FieldVisitor& visitor);

  // ---- Order statistics of a row (docs/formats.md "Rank blocks") ----
  //
  // Within a namespace of a row's sub-keys (kFieldNamespace: its fields; kScoreIndexNamespace:
  // a sorted set's score index), the cells that count are those that are not tombstones and
  // not hidden by the row's delete_through. A row bigger than a block keeps a count per block
  // of about 1,000 such cells, so a rank is found in O(blocks + block size).
  //
  // Visits the stored cells of namespace `ns` from the one of rank `rank` on (0-based among
  // those that count; tombstones after it included), in sub-key order, from one snapshot.
  // Returns false, visiting nothing, when the row keeps no blocks or they do not add up to
  // `total` (the caller's count of fields): then the caller walks from an end.
  Result<bool> scan_from_rank(topology::Token token, std::string_view key, char ns,
                              uint64_t rank, uint64_t total, const FieldVisitor& visitor);
  // The rank of the cell `sub_key` within its namespace (the number of cells that count before
  // it), or nullopt as above.
  Result<std::optional<uint64_t>> index_rank(topology::Token token, std::string_view key,
                                             std::string_view sub_key, uint64_t total);

  // Visits stored cells (tombstones and expired ones included) in key order, starting at the
  // first key whose token is >= start_token, while token < end_token (end_token 0 means "to the
  // end of the ring"). Stops when the visitor returns false.
  // `keys_only`: skip the fields of rows (a seek past them), so a walk over keys costs
  // O(keys), not O(cells), whatever the size of the rows.
  // `from`: if not empty, start at the first stored key >= from instead (a page that resumes
  // inside a big row). REQUIRES: from is empty or starts with token_prefix(start_token).
  Status scan(topology::Token start_token, topology::Token end_token, const CellVisitor& visitor,
              bool keys_only = false, std::string_view from = {});

  // Deletes every stored cell (FLUSHALL): a range delete over the whole key space, then sync.
  Status clear();

  // Makes every write that completed before this call durable (see class comment). Concurrent
  // callers share one fsync when they can.
  Status sync();

  // The last reading of options.clock_to_record made durable (0 if none).
  Result<uint64_t> recorded_clock();

  // A small named value of the machine's own (e.g. the routing table it follows), kept in the
  // meta column family and made durable before put_meta returns. The names "hlc" (the recorded
  // clock) and "format-version" are the engine's own.
  Status put_meta(std::string_view name, std::string_view value);
  Result<std::optional<std::string>> get_meta(std::string_view name);

  // Whether the compaction filter may already have removed `cell` here: a tombstone or expired
  // value past the tombstone grace period. A copy that lacks such a cell is still complete.
  bool may_have_dropped(const Cell& cell) const;
  // The same, or a deletion of `token`'s range before the range's purge bound (purge_bounds()):
  // a copy of the range that lacks it is still complete.
  bool may_have_purged(topology::Token token, const Cell& cell) const;

  // Per range, the moment before which every replica is known to hold the same deletions
  // (storage/purge_bounds.h): anti-entropy repair raises them, compaction removes deletions
  // before them.
  PurgeBounds& purge_bounds();

  EngineStats stats() const;
  // RocksDB's estimate of the cells stored (fields of rows and tombstones included).
  uint64_t estimated_keys() const;
  // Approximate bytes stored for tokens in [start, end) (end 0: the ring's end), memtables
  // included (RocksDB's size approximation: cheap, not exact).
  uint64_t approximate_range_bytes(topology::Token start, topology::Token end) const;
  const EngineOptions& options() const { return options_; }

  // Per-key lock for read-modify-write commands (INCR, SET NX...). Striped: distinct keys may
  // share a stripe. Hold it across read → compute → apply. These stripes are not the ones
  // apply() uses internally, so calling apply() while holding one is safe.
  std::unique_lock<std::mutex> lock_key(topology::Token token, std::string_view key);

  // Hinted handoff storage: a "hints" column family sharing the WAL (so a hint is durable with
  // the next sync(), like a write). Keys are target (8 bytes BE) | sequence (8 bytes BE); values
  // key length (4 bytes BE) | key | encoded cell, or for a row's field a marker
  // and the sub-key as well (docs/formats.md "Hints"). Per-target counts and bytes
  // are kept in memory and rebuilt at open.
  //
  // Stores a hint for `target`. Returns busy (and stores nothing) if the target would then hold
  // more than `per_target_max_count` hints or `per_target_max_bytes` bytes of them.
  // A non-empty `sub_key` stores a hint for a field of the key's row.
  Status store_hint(uint64_t target, std::string_view key, const Cell& cell,
                    size_t per_target_max_count, size_t per_target_max_bytes,
                    std::string_view sub_key = {});
  // The oldest hints of `target`, at most `max_count`, in sequence order.
  Result<std::vector<Hint>> hints_for(uint64_t target, size_t max_count);
  // Deletes the hints of `target` with sequence <= up_to_sequence (after a successful replay).
  Status drop_hints(uint64_t target, uint64_t up_to_sequence);
  // (target, number of hints) for every target holding hints, by target (for INFO).
  std::vector<std::pair<uint64_t, uint64_t>> hint_counts() const;

  // ---- The WAL tail for migrations (docs/formats.md, docs/migration.md; docs/migration.md) ----
  //
  // The WAL records with sequence >= from_sequence: cells (tombstones and expired ones included)
  // and range deletions of the data with start <= token < end (end 0 = ring end); records of the
  // meta and hints column families are skipped. Reads whole write batches until about
  // `max_bytes` of WAL were examined (at least one batch), and never past the latest sequence
  // read at the start. Buffered records (manual WAL flush) are flushed first so they are seen.
  // from_sequence > latest: no changes, next_sequence = from_sequence.
  // Error kNotFound "WALGONE <oldest available LSN>" when the WAL no longer reaches back to
  // from_sequence (a hold keeps it, see hold_wal): the caller must copy the range again.
  Result<WalChanges> wal_changes(uint64_t from_sequence, topology::Token start,
                                 topology::Token end, size_t max_bytes);
  // The latest sequence number (LSN) written.
  uint64_t latest_sequence() const;

  // Keeps every WAL file from now on (RocksDB file deletions are disabled while at least one hold
  // is live) until release_wal(id), or until ttl_ms pass without a renewal (hold_wal again with
  // the same id). Expired holds are dropped lazily by every hold/release/wal_changes call and by
  // expire_wal_holds() (the server calls it every second). At most kWalHoldsMax holds: busy
  // otherwise. Returns latest_sequence() read after the hold is in force, so every record after
  // the returned LSN stays readable while the hold lives.
  static constexpr size_t kWalHoldsMax = 256;
  Result<uint64_t> hold_wal(std::string_view id, int64_t ttl_ms);
  void release_wal(std::string_view id);
  void expire_wal_holds();
  size_t wal_holds() const;  // live holds, for INFO

  // Deletes every cell with start <= token < end (end 0 = ring end) with one range deletion,
  // durable (WAL fsynced) before it returns. wal_changes() reports it: a machine copying the
  // range from this one repeats it (the relay of a client's FLUSHALL).
  Status delete_range(topology::Token start, topology::Token end);

  // Deletes like delete_range, but the deletion is this machine's own housekeeping: a range it
  // no longer owns (a migration's cleanup, a shard it left) or a copy it discards. The WAL record
  // carries a marker, and wal_changes() never reports it, so no machine copying from this one
  // repeats it: a target still following this source's WAL when the source gives the range up
  // must not delete what it now owns (docs/migration.md "Why nothing acknowledged is lost").
  Status drop_range(topology::Token start, topology::Token end);

  // Applies many cells, each by LWW under the same per-key locking as apply(), in one WriteBatch:
  // the fast path for migration copies. Returns how many cells were stored. Logged: durable with
  // the next sync(), like apply(). Unlogged (a migration's bulk copy): the cells skip the WAL, so
  // client fsyncs do not carry them, and are durable only once flush_memtables() returned; a
  // crash before loses them, so only a copy that is redone after a crash may skip the log.
  Result<size_t> apply_batch(const std::vector<WalChange>& cells, bool logged = true);

  // Writes every memtable to SST files and waits: makes unlogged batches durable.
  Status flush_memtables();

  // Test hook: runs a full manual compaction (so the compaction filter sees every cell).
  Status compact_all();

 private:
  Status record_clock();
  // apply_batch for cells of keys that are not rows (no sub-key, no row state).
  Result<size_t> apply_plain_batch(const std::vector<const WalChange*>& cells, bool logged);
  // Adds to `batch` the new RowState of the row `row_key` (storage key, no sub-key) whose header
  // changes from `current` to `cell`. REQUIRES: the row's apply stripe is held.
  // The rank blocks it changes are recorded in `edits` (the cache follows once it is written).
  Status update_row_for_header(const std::string& row_key, const std::optional<Cell>& current,
                               const Cell& cell, rocksdb::WriteBatch& batch, RankEdits& edits);
  // Adds to `batch` the change of the rank block holding the cell `sub_key` of the row
  // `row_key`, whose count changes by `delta` (docs/formats.md "Rank blocks"); `row_count` is
  // the row's field count before this change (a row smaller than a block keeps no blocks).
  // REQUIRES: the row's apply stripe is held; the batch holds no other change of the row's
  // blocks.
  Status update_rank_blocks(const std::string& row_key, std::string_view sub_key, int delta,
                            HlcTimestamp delete_through, uint64_t row_count,
                            rocksdb::WriteBatch& batch, RankEdits& edits);
  // apply_field with the row's apply stripe held. `derived`: a score index entry this engine
  // derives from a member cell that was just stored, stored without LWW against the entry it
  // replaces. `replaced` receives the cell the stored one replaced, if any.
  Result<bool> apply_field_locked(topology::Token token, std::string_view key,
                                  std::string_view sub_key, const Cell& cell,
                                  HlcTimestamp* newer_timestamp, bool derived,
                                  std::optional<Cell>* replaced);
  // After a sorted set's member cell `cell` replaced `replaced` (nullopt: none was stored), the
  // member's index entry follows: the old score's entry becomes a tombstone and the new score's
  // entry is written, both with the member cell's timestamp. REQUIRES: the row's apply stripe
  // is held.
  Status derive_score_index(topology::Token token, std::string_view key,
                            std::string_view sub_key, const std::optional<Cell>& replaced,
                            const Cell& cell);
  // A range deletion; `local` marks it as housekeeping that WAL readers skip (drop_range).
  Status delete_token_range(topology::Token start, topology::Token end, bool local);
  struct Impl;
  explicit Engine(EngineOptions options, std::unique_ptr<Impl> impl);
  EngineOptions options_;
  std::unique_ptr<Impl> impl_;
  FieldObserver field_observer_;
  std::function<void()> clear_observer_;
};

}  // namespace cairn::storage
