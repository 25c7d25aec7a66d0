#pragma once
// Cells: the unit of storage and of conflict resolution (docs/architecture.md, docs/cluster.md, docs/formats.md).
// The byte layouts are documented in docs/formats.md; change both together.
//
// Invariants:
//  1. supersedes() is a strict total order on distinct cells: for cells a != b exactly one of
//     supersedes(a, b), supersedes(b, a) holds. So applying any set of cells in any order, keeping
//     the winner each time, leaves the same cell on every replica.
//  2. decode_cell(encode_cell(c)) == c for every cell.
//  3. Keys sort by token first (big-endian), so one token range is one contiguous key range; within
//     a token they sort by (key length, key, sub_key), so all sub-keys of one key are contiguous.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/hlc.h"
#include "common/status.h"
#include "topology/token.h"

namespace cairn::storage {

enum class ValueType : uint8_t {
  kString = 1,
};

struct Cell {
  bool tombstone = false;           // a delete; `value` is empty
  ValueType type = ValueType::kString;
  HlcTimestamp timestamp = 0;       // assigned by the coordinator
  uint64_t writer = 0;              // id of the machine that assigned `timestamp`; breaks ties
  int64_t expire_at_ms = 0;         // Unix ms; 0 means the cell never expires
  std::string value;

  bool expired_at(int64_t now_ms) const { return expire_at_ms != 0 && expire_at_ms <= now_ms; }
  // A live cell is a value a read returns: not a tombstone and not expired.
  bool live_at(int64_t now_ms) const { return !tombstone && !expired_at(now_ms); }
  bool operator==(const Cell&) const = default;
};

// True if `a` wins over `b` under last-write-wins: later timestamp, then larger writer id, then
// (for cells with the same timestamp and writer, which a correct cluster never produces) the
// lexicographically larger encoding, so the order stays total and deterministic.
bool supersedes(const Cell& a, const Cell& b);

std::string encode_cell(const Cell& cell);
Result<Cell> decode_cell(std::string_view bytes);

// Storage key: token (8 bytes big-endian) | key length (4 bytes big-endian) | key | sub_key.
std::string encode_key(topology::Token token, std::string_view key, std::string_view sub_key = {});

struct DecodedKey {
  topology::Token token;
  std::string_view key;      // views into the encoded bytes
  std::string_view sub_key;
};
Result<DecodedKey> decode_key(std::string_view encoded);

// The first encoded key of `token` (useful as a seek target and a range bound).
std::string token_prefix(topology::Token token);

}  // namespace cairn::storage
