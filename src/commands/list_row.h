#pragma once
// The layout of a list row (docs/formats.md "Lists"): each element is a field cell whose sub-key
// is an order-preserving position, and one meta cell says where the elements are.
//
// Invariants (kept by the list commands, under the key's lock, at the shard leader):
//  1. Element sub-keys are kFieldNamespace | 8 bytes of a signed position (sign bit flipped,
//     big-endian, so bytewise order is numeric order) | an optional suffix that never ends in
//     0x00. The list's order is the sub-keys' bytewise order.
//  2. Every element's 8-byte position lies in [head, tail] of the meta cell, and the first and
//     last elements have exactly the positions head and tail.
//  3. meta.count is the number of elements. A list without elements does not exist (the
//     commands delete the key when they remove its last element).
//  4. When meta.sparse is false, the elements are exactly the positions head, head + 1, ...,
//     tail without suffixes, so the element at index i has position head + i (LINDEX, LSET and
//     pops read it directly). LINSERT and LREM make a list sparse for the rest of its life.
// Pure: no I/O.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace cairn::commands {

// The sub-key of the meta cell.
std::string list_meta_sub_key();

struct ListMeta {
  int64_t head = 0;    // position of the first element
  int64_t tail = -1;   // position of the last element (an empty list: head = tail + 1)
  uint64_t count = 0;
  bool sparse = false;
  bool operator==(const ListMeta&) const = default;
};
std::string encode_list_meta(const ListMeta& meta);
std::optional<ListMeta> decode_list_meta(std::string_view bytes);

// The sub-key of the element at `position` (no suffix).
std::string list_position_sub_key(int64_t position);
// The 8-byte position of an element sub-key; nullopt for any other sub-key.
std::optional<int64_t> list_position_of_sub_key(std::string_view sub_key);

// A sub-key strictly between the element sub-keys `below` and `above` (below < above), as short
// as possible: the bytes after the namespace are read as base-256 fractions and the result is a
// midpoint that ends in a non-zero byte (invariant 1), so a later insert between it and either
// neighbour always finds room. Each insert at the same gap adds a byte about every 8 inserts.
std::string list_sub_key_between(std::string_view below, std::string_view above);

// Longest element sub-key an insert may create; beyond it the list is renumbered (O(n)).
inline constexpr size_t kListSubKeyBytesMax = 1 + 8 + 32;

}  // namespace cairn::commands
