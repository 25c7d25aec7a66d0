#include "coordinator/local_keyspace.h"

#include <algorithm>
#include <mutex>
#include <random>
#include <utility>

#include "coordinator/key_locks.h"
#include "topology/token.h"

namespace cairn::coordinator {
namespace {

// A page never holds more than this many keys, whatever COUNT the client asked for, so one SCAN
// reply stays bounded.
constexpr size_t kScanCountMax = 100'000;
// Stored cells (tombstones and expired cells included) examined per page: at least this many...
constexpr size_t kScanCellsMin = 1'000;
// ...and at most this many; then the page ends at the next token boundary, possibly empty.
constexpr size_t kScanCellsMax = 1'000'000;
// Stamps `cell` with a fresh timestamp and applies it. The engine keeps the stored cell when it
// supersedes ours, which on a single machine means another write to the key was stamped after
// ours (a concurrent writer on another loop): our write is then ordered just before it, which is
// a valid outcome for two concurrent writes, and the acknowledgement is truthful. A stored cell
// from before a restart cannot be ahead of our clock: the server makes the HLC observe the clock
// reading recorded with the last acknowledged writes (Engine::recorded_clock).
Status stamp_and_apply(storage::Engine& engine, HybridClock& clock, uint64_t writer_id,
                       std::string_view key, storage::Cell cell) {
  cell.writer = writer_id;
  cell.timestamp = clock.now();
  Result<bool> applied = engine.apply(topology::token_of(key), key, cell);
  return applied.status();
}

}  // namespace

bool LocalKeyspace::is_live_key(topology::Token token, std::string_view key,
                                const storage::Cell& cell, int64_t now) {
  if (!cell.live_at(now)) return false;
  if (!storage::is_row_type(cell.type)) return true;
  // A row header counts as a key only while its row has a field. A storage error here counts
  // the key as live: SCAN may over-report, never hide a key.
  Result<storage::StoredRow> row = engine_.read_row(token, key);
  if (!row.is_ok()) return true;
  Result<uint64_t> count = row_count(token, key, *row, cell, now, /*any=*/true);
  return !count.is_ok() || *count > 0;
}

Result<uint64_t> LocalKeyspace::count_live_fields(topology::Token token, std::string_view key,
                                                  HlcTimestamp hidden_through, int64_t now,
                                                  bool any) {
  uint64_t count = 0;
  Status status = engine_.scan_row(token, key, std::string(1, storage::kFieldNamespace),
                                   [&](std::string_view sub_key, const storage::Cell& cell) {
                                     if (!storage::field_of_sub_key(sub_key)) return false;
                                     if (cell.live_at(now) && cell.timestamp > hidden_through) {
                                       ++count;
                                     }
                                     return !any || count == 0;
                                   });
  if (!status.is_ok()) return status;
  return count;
}

Result<uint64_t> LocalKeyspace::row_count(topology::Token token, std::string_view key,
                                          const storage::StoredRow& row,
                                          const storage::Cell& header, int64_t now, bool any) {
  Result<storage::RowHeader> decoded = storage::decode_row_header(header.value);
  if (row.state.count == 0 || !decoded.is_ok() || !decoded->fields_expire) {
    return row.state.count;
  }
  return count_live_fields(token, key, row.state.hidden_through(now), now, any);
}

LocalKeyspace::LocalKeyspace(storage::Engine& engine, HybridClock& clock, uint64_t writer_id,
                             std::function<int64_t()> wall_clock_ms)
    : engine_(engine),
      clock_(clock),
      writer_id_(writer_id),
      wall_clock_ms_(std::move(wall_clock_ms)) {
  CAIRN_ASSERT(static_cast<bool>(wall_clock_ms_), "LocalKeyspace needs a wall clock");
}

int64_t LocalKeyspace::now_ms() { return wall_clock_ms_(); }

Result<std::optional<storage::Cell>> LocalKeyspace::read(std::string_view key) {
  const topology::Token token = topology::token_of(key);
  Result<std::optional<storage::Cell>> stored = engine_.read(token, key);
  if (!stored.is_ok()) return stored.status();
  if (!stored->has_value()) return stored;
  const int64_t now = now_ms();
  if (!is_live_key(token, key, **stored, now)) {
    note_if_expired(key, **stored, now);
    return std::optional<storage::Cell>();
  }
  return stored;
}

Result<std::optional<storage::Cell>> LocalKeyspace::read_stored(std::string_view key) {
  return engine_.read(topology::token_of(key), key);
}

Result<RowRead> LocalKeyspace::read_row(std::string_view key) {
  Result<storage::StoredRow> stored = engine_.read_row(topology::token_of(key), key);
  if (!stored.is_ok()) return stored.status();
  return row_read_of(key, std::move(stored).value(), now_ms());
}

namespace {

// A row at one moment: the engine's snapshot of it.
class SnapshotRowCursor final : public RowCursor {
 public:
  SnapshotRowCursor(storage::Engine& engine, std::string_view key,
                    std::shared_ptr<const storage::Engine::Snapshot> snapshot, RowRead row,
                    int64_t now)
      : engine_(engine), key_(key), snapshot_(std::move(snapshot)), row_(std::move(row)),
        now_(now) {}
  const RowRead& row() const override { return row_; }
  Status scan_fields(std::string_view from_sub_key, const RowFieldVisitor& visitor) override {
    return engine_.scan_row(
        topology::token_of(key_), key_, from_sub_key,
        [&](std::string_view sub_key, const storage::Cell& cell) {
          if (!cell.live_at(now_) || cell.timestamp <= row_.hidden_through) return true;
          return visitor(sub_key, cell);
        },
        snapshot_.get());
  }

 private:
  storage::Engine& engine_;
  std::string key_;
  std::shared_ptr<const storage::Engine::Snapshot> snapshot_;
  RowRead row_;
  // Expiry is judged at the moment of the snapshot, as its count was: a listing produced over
  // several seconds still lists what the count announced.
  int64_t now_;
};

}  // namespace

Result<std::unique_ptr<RowCursor>> LocalKeyspace::open_row_cursor(std::string_view key) {
  std::shared_ptr<const storage::Engine::Snapshot> snapshot = engine_.snapshot();
  Result<storage::StoredRow> stored = engine_.read_row(topology::token_of(key), key,
                                                       snapshot.get());
  if (!stored.is_ok()) return stored.status();
  if (stored->header) {
    // Fields that expire one by one are counted live, which no snapshot fixes for later pages.
    Result<storage::RowHeader> decoded = storage::decode_row_header(stored->header->value);
    if (storage::is_row_type(stored->header->type) && decoded.is_ok() &&
        decoded->fields_expire) {
      return std::unique_ptr<RowCursor>();
    }
  }
  const int64_t now = now_ms();
  Result<RowRead> row = row_read_of(key, std::move(stored).value(), now);
  if (!row.is_ok()) return row.status();
  return std::unique_ptr<RowCursor>(
      new SnapshotRowCursor(engine_, key, std::move(snapshot), std::move(row).value(), now));
}

Result<RowRead> LocalKeyspace::row_read_of(std::string_view key, storage::StoredRow stored,
                                           int64_t now) {
  RowRead row;
  row.hidden_through = stored.state.hidden_through(now);
  row.delete_through_for_new_header = row.hidden_through;
  if (!stored.header.has_value()) return row;
  storage::Cell& header = *stored.header;
  row.delete_through_for_new_header =
      std::max(row.delete_through_for_new_header, storage::hidden_through(header, now));
  if (!header.live_at(now)) {
    note_if_expired(key, header, now);
    return row;
  }
  if (storage::is_row_type(header.type)) {
    Result<uint64_t> count =
        row_count(topology::token_of(key), key, stored, header, now, /*any=*/false);
    if (!count.is_ok()) return count.status();
    // An emptied row is no key (Redis deletes a hash with its last field).
    if (*count == 0) return row;
    row.count = *count;
  }
  row.header = std::move(header);
  return row;
}

Result<std::vector<std::optional<storage::Cell>>> LocalKeyspace::read_fields(
    std::string_view key, std::span<const std::string> sub_keys, HlcTimestamp hidden_through) {
  const topology::Token token = topology::token_of(key);
  const int64_t now = now_ms();
  std::vector<std::optional<storage::Cell>> cells;
  cells.reserve(sub_keys.size());
  for (const std::string& sub_key : sub_keys) {
    Result<std::optional<storage::Cell>> cell = engine_.read_field(token, key, sub_key);
    if (!cell.is_ok()) return cell.status();
    if (cell->has_value() && (!(*cell)->live_at(now) || (*cell)->timestamp <= hidden_through)) {
      cell->reset();
    }
    cells.push_back(std::move(*cell));
  }
  return cells;
}

Status LocalKeyspace::write_fields(std::string_view key, storage::ValueType type,
                                   std::span<const std::pair<std::string, std::string>> fields) {
  return write_expiring_fields(key, type, fields, {});
}

Status LocalKeyspace::write_expiring_fields(
    std::string_view key, storage::ValueType type,
    std::span<const std::pair<std::string, std::string>> fields,
    std::span<const int64_t> expire_at_ms) {
  return apply_field_changes(key, type, {}, fields, expire_at_ms);
}

Status LocalKeyspace::remove_fields(std::string_view key, storage::ValueType type,
                                    std::span<const std::string> sub_keys) {
  return apply_field_changes(key, type, sub_keys, {}, {});
}

Status LocalKeyspace::change_fields(std::string_view key, storage::ValueType type,
                                    std::span<const std::string> removed,
                                    std::span<const std::pair<std::string, std::string>> fields) {
  return apply_field_changes(key, type, removed, fields, {});
}

Status LocalKeyspace::apply_field_changes(
    std::string_view key, storage::ValueType type, std::span<const std::string> removed,
    std::span<const std::pair<std::string, std::string>> fields,
    std::span<const int64_t> expire_at_ms) {
  std::vector<storage::Engine::FieldChange> changes(removed.size() + fields.size());
  for (size_t i = 0; i < changes.size(); ++i) {
    storage::Cell& cell = changes[i].cell;
    cell.type = type;
    if (i < removed.size()) {
      changes[i].sub_key = removed[i];
      cell.tombstone = true;
    } else {
      const size_t field = i - removed.size();
      changes[i].sub_key = fields[field].first;
      cell.value = fields[field].second;
      if (field < expire_at_ms.size()) cell.expire_at_ms = expire_at_ms[field];
    }
    cell.writer = writer_id_;
    cell.timestamp = clock_.now();
  }
  return engine_.apply_fields(topology::token_of(key), key, changes).status();
}

Status LocalKeyspace::scan_fields(std::string_view key, std::string_view from_sub_key,
                                  HlcTimestamp hidden_through, const RowFieldVisitor& visitor) {
  const int64_t now = now_ms();
  return engine_.scan_row(topology::token_of(key), key, from_sub_key,
                          [&](std::string_view sub_key, const storage::Cell& cell) {
                            if (!cell.live_at(now) || cell.timestamp <= hidden_through) return true;
                            return visitor(sub_key, cell);
                          });
}

Status LocalKeyspace::scan_fields_reverse(std::string_view key, std::string_view from_sub_key,
                                          std::string_view below_sub_key,
                                          HlcTimestamp hidden_through,
                                          const RowFieldVisitor& visitor) {
  const int64_t now = now_ms();
  return engine_.scan_row_reverse(topology::token_of(key), key, below_sub_key,
                                  [&](std::string_view sub_key, const storage::Cell& cell) {
                                    if (sub_key < from_sub_key) return false;
                                    if (!cell.live_at(now) || cell.timestamp <= hidden_through) {
                                      return true;
                                    }
                                    return visitor(sub_key, cell);
                                  });
}

Result<bool> LocalKeyspace::scan_fields_from_rank(std::string_view key, char ns, uint64_t rank,
                                                   uint64_t total, HlcTimestamp hidden_through,
                                                   const RowFieldVisitor& visitor) {
  const int64_t now = now_ms();
  return engine_.scan_from_rank(topology::token_of(key), key, ns, rank, total,
                                      [&](std::string_view sub_key, const storage::Cell& cell) {
                                        if (!cell.live_at(now) || cell.timestamp <= hidden_through) {
                                          return true;
                                        }
                                        return visitor(sub_key, cell);
                                      });
}

Result<std::optional<uint64_t>> LocalKeyspace::field_rank(std::string_view key,
                                                          std::string_view sub_key,
                                                          uint64_t total) {
  return engine_.index_rank(topology::token_of(key), key, sub_key, total);
}

Status LocalKeyspace::write(std::string_view key, storage::ValueType type, std::string value,
                            int64_t expire_at_ms) {
  storage::Cell cell;
  cell.type = type;
  cell.expire_at_ms = expire_at_ms;
  cell.value = std::move(value);
  return stamp_and_apply(engine_, clock_, writer_id_, key, std::move(cell));
}

Status LocalKeyspace::remove(std::string_view key) {
  storage::Cell cell;
  cell.tombstone = true;
  return stamp_and_apply(engine_, clock_, writer_id_, key, std::move(cell));
}

Status LocalKeyspace::atomically(std::span<const std::string> keys,
                                 const std::function<Status()>& fn) {
  // Nested (a command run by EXEC): the transaction already holds the locks of every key its
  // commands name; locking again would wait for itself.
  thread_local int depth = 0;
  if (depth > 0) return fn();
  std::vector<std::unique_lock<std::mutex>> locks = lock_keys(engine_, keys);
  ++depth;
  struct Leave {
    int& depth;
    ~Leave() { --depth; }
  } leave{depth};
  return fn();
}

Result<ScanPage> LocalKeyspace::scan(const ScanRequest& request) {
  const size_t count = std::clamp<size_t>(request.count, 1, kScanCountMax);
  const size_t cells_max = std::clamp<size_t>(count * 10, kScanCellsMin, kScanCellsMax);
  const int64_t now = now_ms();
  ScanPage page;
  size_t cells_seen = 0;
  size_t keys_seen = 0;
  bool any_token = false;
  topology::Token current_token = 0;
  Status status =
      engine_.scan(request.cursor, 0,
                   [&](topology::Token token, std::string_view key, std::string_view sub_key,
                       const storage::Cell& cell) {
                     if (!any_token || token != current_token) {
                       // Pages end only between tokens, so the keys of one token (one hash tag) are
                       // never split across pages and the cursor (a token) resumes exactly after
                       // them.
                       if (any_token && (keys_seen >= count || cells_seen >= cells_max)) {
                         page.next_cursor = token;
                         return false;
                       }
                       any_token = true;
                       current_token = token;
                     }
                     ++cells_seen;
                     // A key is its own cell (sub-key empty), which comes before its fields.
                     if (!sub_key.empty()) return true;
                     if (!is_live_key(token, key, cell, now)) return true;
                     ++keys_seen;
                     if (!request.filter || request.filter(key, cell)) page.keys.emplace_back(key);
                     return true;
                   },
                   /*keys_only=*/true);
  if (!status.is_ok()) return status;
  return page;
}

Result<uint64_t> LocalKeyspace::count() {
  const int64_t now = now_ms();
  uint64_t live = 0;
  Status status =
      engine_.scan(0, 0, [&](topology::Token token, std::string_view key, std::string_view sub_key,
                             const storage::Cell& cell) {
        if (!sub_key.empty() || !is_live_key(token, key, cell, now)) return true;
        ++live;
        return true;
      }, /*keys_only=*/true);
  if (!status.is_ok()) return status;
  return live;
}

Result<std::optional<std::string>> LocalKeyspace::random_key() {
  thread_local std::mt19937_64 random{std::random_device{}()};
  const topology::Token start = random();
  const int64_t now = now_ms();
  std::optional<std::string> found;
  auto visit = [&](topology::Token token, std::string_view key, std::string_view sub_key,
                   const storage::Cell& cell) {
    if (!sub_key.empty() || !is_live_key(token, key, cell, now)) return true;
    found.emplace(key);
    return false;
  };
  // From a random token to the end of the ring, then wrap around once to cover [0, start).
  if (Status status = engine_.scan(start, 0, visit, true); !status.is_ok()) return status;
  if (!found && start != 0) {
    if (Status status = engine_.scan(0, start, visit, true); !status.is_ok()) return status;
  }
  return found;
}

Status LocalKeyspace::clear() { return engine_.clear(); }

}  // namespace cairn::coordinator
