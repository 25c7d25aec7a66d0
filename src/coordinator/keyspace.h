#pragma once
// Keyspace: what command handlers use to read and write keys (DESIGN.md §4). Handlers never touch
// storage directly, so the same handlers serve a single machine (LocalKeyspace, this issue) and a
// cluster (the coordinator that fans out to replicas, a later issue).
//
// Timestamps: write() and remove() stamp the cell with a fresh HLC timestamp and this machine's
// writer id. Reads return only live cells (not deleted, not expired at the time of the read).
//
// Atomicity: a handler that reads and then writes (INCR, APPEND, SET NX...) wraps both in
// atomically(keys, fn): no other atomically() on any of those keys runs at the same time.

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
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

  // Stores a new value for `key` (replacing any type). expire_at_ms 0 = no expiry.
  virtual Status write(std::string_view key, storage::ValueType type, std::string value,
                       int64_t expire_at_ms) = 0;

  // Deletes `key` (writes a tombstone).
  virtual Status remove(std::string_view key) = 0;

  // Runs `fn` while holding the locks of `keys` (taken in a fixed order, so no deadlock).
  virtual Status atomically(std::span<const std::string> keys,
                            const std::function<Status()>& fn) = 0;

  // One page of a cursor iteration over live keys (SCAN / KEYS). The cursor encodes a token;
  // a key present during the whole iteration is returned at least once.
  virtual Result<ScanPage> scan(const ScanRequest& request) = 0;

  // Number of live keys (DBSIZE). O(number of keys) on this machine.
  virtual Result<uint64_t> count() = 0;

  // A random live key, or nullopt if there is none (RANDOMKEY).
  virtual Result<std::optional<std::string>> random_key() = 0;

  // Deletes every key (FLUSHALL / FLUSHDB).
  virtual Status clear() = 0;

  // The clock reads use to decide what has expired (Unix ms).
  virtual int64_t now_ms() = 0;
};

}  // namespace cairn::coordinator
