#pragma once
// Keyspace: what command handlers use to read and write keys (docs/cluster.md). Handlers never touch
// storage directly, so the same handlers serve a single machine (LocalKeyspace) and a cluster
// (ClusterSession, the coordinator that fans out to replicas).
//
// Timestamps: write() and remove() stamp the cell with a fresh HLC timestamp and this machine's
// writer id. Reads return only live cells (not deleted, not expired at the time of the read).
//
// Atomicity: a handler that reads and then writes (INCR, APPEND, SET NX...) wraps both in
// atomically(keys, fn): no other atomically() on any of those keys runs at the same time.

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"
#include "storage/cell.h"
#include "topology/consistency.h"

namespace cairn::coordinator {

struct ScanPage {
  uint64_t next_cursor = 0;        // 0: the iteration is complete
  std::vector<std::string> keys;   // live keys, in token order
};

struct ScanRequest {
  uint64_t cursor = 0;             // 0 starts a new iteration
  size_t count = 10;               // a hint, as in Redis: about this many keys are examined
  // Optional filter applied to live keys before they are returned (MATCH / TYPE).
  std::function<bool(std::string_view key, const storage::Cell& cell)> filter;
};

// A key as a row reader sees it (Keyspace::read_row).
struct RowRead {
  // The live cell of the key, whatever its type (a string, or a row header whose row has at
  // least one field); nullopt if the key does not exist.
  std::optional<storage::Cell> header;
  uint64_t count = 0;                 // fields or members of a row (0 for a string)
  HlcTimestamp hidden_through = 0;    // fields at or before belong to an earlier life of the key
  // What a new header written now must hide (the key's whole past), live or not.
  HlcTimestamp delete_through_for_new_header = 0;
};

// Visitor of a row's visible fields: sub-key and cell. Return false to stop.
using RowFieldVisitor = std::function<bool(std::string_view sub_key, const storage::Cell& cell)>;

// A row read at one moment (a storage snapshot), for a reply produced page by page after its
// command returned (docs/protocol.md "Big replies"): writes made meanwhile are not seen, so the
// count announced first and the fields listed after agree.
class RowCursor {
 public:
  virtual ~RowCursor() = default;
  // The row as read_row() saw it at that moment.
  virtual const RowRead& row() const = 0;
  // Visits the row's visible fields at that moment in sub-key order, from the first sub-key >=
  // from_sub_key, until `visitor` returns false.
  virtual Status scan_fields(std::string_view from_sub_key, const RowFieldVisitor& visitor) = 0;
};

inline constexpr std::string_view kRowsNotSupportedMessage =
    "hashes, sets and sorted sets are not supported by this keyspace";

// Per-connection request options (CONSISTENCY). A single machine (RF 1) satisfies every level.
struct RequestOptions {
  topology::ConsistencyLevel read = topology::ConsistencyLevel::quorum();
  topology::ConsistencyLevel write = topology::ConsistencyLevel::quorum();
};

class Keyspace {
 public:
  virtual ~Keyspace() = default;

  // Reads several keys; element i answers keys[i]. A cluster keyspace reads them in parallel,
  // one batch per shard. The default reads one key after the other.
  virtual Result<std::vector<std::optional<storage::Cell>>> read_many(
      std::span<const std::string> keys) {
    std::vector<std::optional<storage::Cell>> cells;
    cells.reserve(keys.size());
    for (const std::string& key : keys) {
      Result<std::optional<storage::Cell>> cell = read(key);
      if (!cell.is_ok()) return cell.status();
      cells.push_back(std::move(*cell));
    }
    return cells;
  }

  // The live cell of `key`, or nullopt if it does not exist, was deleted or has expired.
  virtual Result<std::optional<storage::Cell>> read(std::string_view key) = 0;

  // The key's own cell as stored, tombstones and expired cells included (a cluster keyspace
  // merges the replicas' cells by last-write-wins); nullopt if none is stored. WATCH tells a key
  // deleted again apart from one that stayed absent by it. The default sees live cells only.
  virtual Result<std::optional<storage::Cell>> read_stored(std::string_view key) {
    return read(key);
  }

  // Stores a new value for `key` (replacing any type). expire_at_ms 0 = no expiry.
  virtual Status write(std::string_view key, storage::ValueType type, std::string value,
                       int64_t expire_at_ms) = 0;

  // Deletes `key` (writes a tombstone).
  virtual Status remove(std::string_view key) = 0;

  // Runs `fn` while holding the locks of `keys` (taken in a fixed order, so no deadlock).
  virtual Status atomically(std::span<const std::string> keys,
                            const std::function<Status()>& fn) = 0;

  // Runs `fn`, a command that only sets or deletes fields of the row at `key` and computes its
  // reply from what it reads first (HSET, HMSET, HDEL, SADD, SREM). The default runs it
  // atomically: a single machine serializes it with every other command on the key, so the
  // reply is exact, as in Redis. A cluster keyspace runs it on this machine without the shard
  // leader, as a plain SET: reads at the connection's read level, writes at its write level,
  // each field ordered by last-write-wins, so the reply is exact only when no other client
  // writes the same fields at the same time (docs/cluster.md "Hashes, sets and sorted sets").
  virtual Status write_fields_leaderless(const std::string& key,
                                         const std::function<Status()>& fn) {
    return atomically(std::span<const std::string>(&key, 1), fn);
  }

  // Whether a command that removed the last field of a row deletes the key as well (a tombstone
  // at the key, which lets compaction reclaim the header). A cluster keyspace does not: with
  // field writes that need no leader, a tombstone stamped now could hide a field another
  // machine is writing at the same moment, and that acknowledged write would be lost. A row
  // without a visible field already reads as no key everywhere (read_row, SCAN, EXISTS...).
  virtual bool deletes_emptied_rows() const { return true; }

  // One page of a cursor iteration over live keys (SCAN / KEYS). The cursor encodes a token;
  // a key present during the whole iteration is returned at least once.
  virtual Result<ScanPage> scan(const ScanRequest& request) = 0;

  // Number of live keys (DBSIZE). O(number of keys) on this machine.
  virtual Result<uint64_t> count() = 0;

  // A random live key, or nullopt if there is none (RANDOMKEY).
  virtual Result<std::optional<std::string>> random_key() = 0;

  // Deletes every key (FLUSHALL / FLUSHDB).
  virtual Status clear() = 0;

  // Writes several string values without expiry (MSET). The default is atomic: all keys are
  // locked and written together. A cluster keyspace writes every key at the write level, split
  // by shard, without atomicity across shards (docs/transactions.md).
  virtual Status write_many(std::span<const std::pair<std::string, std::string>> entries) {
    std::vector<std::string> keys;
    keys.reserve(entries.size());
    for (const auto& entry : entries) keys.push_back(entry.first);
    return atomically(keys, [&] {
      for (const auto& [key, value] : entries) {
        if (Status status = write(key, storage::ValueType::kString, value, 0); !status.is_ok()) {
          return status;
        }
      }
      return Status::ok();
    });
  }

  // Deletes `keys` and returns how many of them existed; a key named twice counts once (DEL,
  // UNLINK). The default is atomic; a cluster keyspace reads them in parallel and writes
  // tombstones for those it found, so the count is as of that read.
  virtual Result<int64_t> remove_many(std::span<const std::string> keys) {
    int64_t removed = 0;
    Status status = atomically(keys, [&] {
      for (const std::string& key : keys) {
        Result<std::optional<storage::Cell>> cell = read(key);
        if (!cell.is_ok()) return cell.status();
        if (!cell->has_value()) continue;  // absent, or named before and deleted already
        if (Status removed_status = remove(key); !removed_status.is_ok()) return removed_status;
        ++removed;
      }
      return Status::ok();
    });
    if (!status.is_ok()) return status;
    return removed;
  }

  // The clock reads use to decide what has expired (Unix ms).
  virtual int64_t now_ms() = 0;

  // ---- Rows (hashes; docs/formats.md "Rows") ----
  // A row is a header cell at the key (type, key-level deletion bound, whole-key expiry) and one
  // cell per field at the field's sub-key, each with its own timestamp. LocalKeyspace and
  // ClusterSession implement them; the defaults refuse (a keyspace without rows).
  //
  // The key's live cell and, for a row, its field count and deletion bound. A row header whose
  // row has no field left is reported as no key at all (Redis deletes an emptied hash).
  virtual Result<RowRead> read_row(std::string_view /*key*/) {
    return Status::invalid_argument(std::string(kRowsNotSupportedMessage));
  }
  // Like read_row, for commands that need only the key's type and existence: `count` is
  // unspecified (at least 1 for a row that exists). A cluster keyspace stops reading the row at
  // its first visible field instead of counting them all.
  virtual Result<RowRead> read_row_exists(std::string_view key) { return read_row(key); }
  // The visible cells of `sub_keys` (element i answers sub_keys[i]): live and newer than
  // `hidden_through` (from read_row).
  virtual Result<std::vector<std::optional<storage::Cell>>> read_fields(
      std::string_view /*key*/, std::span<const std::string> /*sub_keys*/,
      HlcTimestamp /*hidden_through*/) {
    return Status::invalid_argument(std::string(kRowsNotSupportedMessage));
  }
  // Writes field cells of type `type` (each stamped with its own timestamp).
  virtual Status write_fields(std::string_view /*key*/, storage::ValueType /*type*/,
                              std::span<const std::pair<std::string, std::string>> /*fields*/) {
    return Status::invalid_argument(std::string(kRowsNotSupportedMessage));
  }
  // Writes field cells that expire on their own: fields[i] at expire_at_ms[i] (Unix ms, 0 =
  // never; an empty span: none expires). A command that gives a field an expiry also marks the
  // row header (storage::RowHeader::fields_expire) so counts skip expired fields.
  virtual Status write_expiring_fields(std::string_view key, storage::ValueType type,
                                       std::span<const std::pair<std::string, std::string>> fields,
                                       std::span<const int64_t> expire_at_ms) {
    for (int64_t at : expire_at_ms) {
      if (at != 0) return Status::invalid_argument(std::string(kRowsNotSupportedMessage));
    }
    return write_fields(key, type, fields);
  }
  // Writes tombstones for fields.
  virtual Status remove_fields(std::string_view /*key*/, storage::ValueType /*type*/,
                               std::span<const std::string> /*sub_keys*/) {
    return Status::invalid_argument(std::string(kRowsNotSupportedMessage));
  }
  // Tombstones for `removed` and the cells `fields` of one row, in one write where the keyspace
  // can (a single machine: one RocksDB write batch, all or none); otherwise the removals first.
  virtual Status change_fields(std::string_view key, storage::ValueType type,
                               std::span<const std::string> removed,
                               std::span<const std::pair<std::string, std::string>> fields) {
    if (Status status = remove_fields(key, type, removed); !status.is_ok()) return status;
    return write_fields(key, type, fields);
  }
  // A cursor over the row at `key` as it is now, if this keyspace can hold one (a single
  // machine: a storage snapshot) and the row's count is exact at that moment; nullptr
  // otherwise (a cluster, whose rows are merged from replicas; a row whose fields expire one by
  // one): the caller reads the row now, whole.
  virtual Result<std::unique_ptr<RowCursor>> open_row_cursor(std::string_view /*key*/) {
    return std::unique_ptr<RowCursor>();
  }
  // Visits the visible fields in sub-key order from the first sub-key >= from_sub_key.
  virtual Status scan_fields(std::string_view /*key*/, std::string_view /*from_sub_key*/,
                             HlcTimestamp /*hidden_through*/,
                             const RowFieldVisitor& /*visitor*/) {
    return Status::invalid_argument(std::string(kRowsNotSupportedMessage));
  }
  // Order statistics of a row (storage::Engine::scan_from_rank): visits the visible cells of
  // the namespace `ns` of sub-keys (a row's fields, or a sorted set's score index) from the one
  // of rank `rank` on, `total` being how many there are. False, visiting nothing, when this
  // keyspace cannot tell (a small row, a cluster machine): the caller walks from an end.
  virtual Result<bool> scan_fields_from_rank(std::string_view /*key*/, char /*ns*/,
                                             uint64_t /*rank*/, uint64_t /*total*/,
                                             HlcTimestamp /*hidden_through*/,
                                             const RowFieldVisitor& /*visitor*/) {
    return false;
  }
  // The rank of the cell `sub_key` within its namespace among `total`, or nullopt as above.
  virtual Result<std::optional<uint64_t>> field_rank(std::string_view /*key*/,
                                                     std::string_view /*sub_key*/,
                                                     uint64_t /*total*/) {
    return std::optional<uint64_t>();
  }
  // Visits the visible fields with from_sub_key <= sub-key < below_sub_key (an empty
  // below_sub_key: to the row's end) in descending sub-key order. The default reads them
  // forward and turns them around (memory for the whole span); a local keyspace reads its
  // storage backwards, so the top of a sorted set costs what its bottom does.
  virtual Status scan_fields_reverse(std::string_view key, std::string_view from_sub_key,
                                     std::string_view below_sub_key, HlcTimestamp hidden_through,
                                     const RowFieldVisitor& visitor) {
    std::vector<std::pair<std::string, storage::Cell>> fields;
    Status status = scan_fields(key, from_sub_key, hidden_through,
                                [&](std::string_view sub_key, const storage::Cell& cell) {
                                  if (!below_sub_key.empty() && sub_key >= below_sub_key) {
                                    return false;
                                  }
                                  fields.emplace_back(std::string(sub_key), cell);
                                  return true;
                                });
    if (!status.is_ok()) return status;
    for (auto it = fields.rbegin(); it != fields.rend(); ++it) {
      if (!visitor(it->first, it->second)) break;
    }
    return Status::ok();
  }
};

// Keyspace notifications' "expired" events (docs/pubsub.md): reads report a key whose cell they
// find expired (not deleted) to the observer the server installs. Process-wide, set while a
// server runs; empty: nobody listens (the reads then pay one relaxed load).
using ExpiredObserver = std::function<void(std::string_view key, int64_t expire_at_ms)>;
void set_expired_observer(ExpiredObserver observer);
// Reports `cell` of `key` when it is a value (no tombstone) that expired at or before now_ms.
void note_if_expired(std::string_view key, const storage::Cell& cell, int64_t now_ms);

}  // namespace cairn::coordinator
