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

#include <algorithm>
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
  // Row types (docs/formats.md "Rows"): the cell at the key's empty sub-key is the row header;
  // each field or member is its own cell at a non-empty sub-key.
  kHash = 2,
  kSet = 3,
  kZSet = 4,
  kList = 5,
  // Streams (docs/formats.md "Streams"): entries, the meta cell and consumer groups are cells
  // of the row under their own sub-key namespaces (src/commands/stream_row.h).
  kStream = 6,
};

// Whether values of `type` are rows (a header cell plus one cell per field or member).
constexpr bool is_row_type(ValueType type) {
  return type == ValueType::kHash || type == ValueType::kSet || type == ValueType::kZSet ||
         type == ValueType::kList || type == ValueType::kStream;
}

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
  // For a deletion (a tombstone, or a value once expired): when its key stopped existing, the
  // physical time of its timestamp or its expiry if that is later.
  int64_t deleted_ms() const {
    return std::max(HybridClock::physical_ms(timestamp), expire_at_ms);
  }
  // A deletion at `now_ms` whose key stopped existing before `bound_ms` (a purge bound).
  bool deleted_before(int64_t bound_ms, int64_t now_ms) const {
    return !live_at(now_ms) && deleted_ms() < bound_ms;
  }
  bool operator==(const Cell&) const = default;
};

// True if `a` wins over `b` under last-write-wins: later timestamp, then larger writer id, then
// (for cells with the same timestamp and writer, which a correct cluster never produces) the
// lexicographically larger encoding, so the order stays total and deterministic.
bool supersedes(const Cell& a, const Cell& b);

std::string encode_cell(const Cell& cell);
Result<Cell> decode_cell(std::string_view bytes);

// ---- Rows (docs/formats.md "Rows") ----
//
// Sub-keys of a row start with a namespace byte, so a field named "" is never the header's empty
// sub-key, and a sorted set can keep a score index beside its members.
inline constexpr char kFieldNamespace = '\x01';
// The score index of sorted sets (docs/formats.md "Sorted sets"): cells at 0x02 | score (8
// bytes, order-preserving) | member, derived by each machine from its member cells. They never
// count toward the row's size.
inline constexpr char kScoreIndexNamespace = '\x02';
// The one cell of a list that says where its elements are (docs/formats.md "Lists"). Never
// counted toward the row's size.
inline constexpr char kListMetaNamespace = '\x03';

// The 8 bytes of `score` whose bytewise order is the numeric order (-inf first, +inf last; -0 and
// +0 encode alike). REQUIRES: score is not NaN.
std::string encode_score(double score);
double decode_score(std::string_view eight_bytes);
// The score index sub-key of (score, member); members of equal score sort bytewise, as Redis
// orders them. REQUIRES: score is not NaN.
std::string score_index_sub_key(double score, std::string_view member);

// A sorted-set member's cell holds its score as the IEEE 754 bits of the double, big-endian
// (docs/formats.md "Sorted sets"); the index sub-key uses encode_score instead.
std::string encode_member_score(double score);
// nullopt unless `value` is 8 bytes holding a number (not NaN).
std::optional<double> decode_member_score(std::string_view value);
// The score index sub-key a sorted-set member's cell stands for: nullopt for a tombstone, a
// cell of another type or a sub-key outside the field namespace (docs/formats.md "Sorted sets":
// each replica derives its index from its member cells).
std::optional<std::string> derived_index_sub_key(std::string_view sub_key, const Cell& cell);
// Whether a cell at `sub_key` is a sorted set's score index entry, which a machine derives
// from its own member cells and never takes from another (Engine::apply_field ignores it).
bool is_score_index_cell(std::string_view sub_key, const Cell& cell);

// The sub-key of field (or member) `field`.
std::string field_sub_key(std::string_view field);
// The field name of a sub-key of kFieldNamespace; nullopt for any other sub-key.
std::optional<std::string_view> field_of_sub_key(std::string_view sub_key);

// The value of a row header cell: the key-level deletion bound the header carries. Every field
// whose timestamp is <= delete_through is hidden (it belonged to an earlier life of the key).
// `fields_expire`: some field of this life of the row has (or had) its own expiry (HEXPIRE), so
// a field count kept as cells arrive may include expired fields; readers count live fields.
struct RowHeader {
  HlcTimestamp delete_through = 0;
  bool fields_expire = false;
  bool operator==(const RowHeader&) const = default;
};
std::string encode_row_header(const RowHeader& header);
Result<RowHeader> decode_row_header(std::string_view bytes);

// The HLC timestamp of the last instant of Unix millisecond `ms` (every timestamp stamped at or
// before `ms` is <= it): the deletion bound of an expiry.
constexpr HlcTimestamp expiry_bound(int64_t ms) {
  return ms <= 0 ? 0 : HybridClock::make(ms, 0xffff);
}

// The fields a stored header cell at a key's empty sub-key hides, whatever it is: a tombstone
// or a value of another type hides everything up to its own timestamp; a live row header hides
// what its delete_through says; an expired row header also everything up to its expiry.
// A header of a row type that does not decode hides what its timestamp says (conservative).
HlcTimestamp hidden_through(const Cell& header, int64_t now_ms);

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
