#pragma once
// Tokens place keys on the ring (docs/architecture.md, docs/formats.md "Tokens"). Pure: no I/O,
// no clock.
//
// A key's hashed part is its hash tag — the bytes between the first '{' and the first '}' after
// it, when that span is non-empty — or else the whole key: the rule of Redis Cluster.
//
// A key's token is
//
//   token = slot << 50 | (xxh3-64(hashed part) >> 14)
//
// where slot = CRC16(hashed part) mod 16384, exactly as Redis Cluster computes a key's slot.
// Invariants:
//  1. Each of the 16384 slots is one contiguous interval of the ring,
//     [slot << 50, (slot + 1) << 50), so a table whose ranges are cut on slot boundaries maps
//     every slot to one shard, and Redis Cluster clients can route by slot (docs/cluster.md).
//  2. Keys that share a hash tag share the whole token (not only the slot), so they stay on one
//     shard even where a range boundary falls inside their slot, as they did before slots.
//  3. Within a slot, keys without a tag spread uniformly by xxh3, so a slot can still be split
//     by ring share when one slot holds too much.

#include <cstdint>
#include <string_view>

namespace cairn::topology {

using Token = uint64_t;
using Slot = uint16_t;

inline constexpr uint32_t kSlotCount = 16384;  // Redis Cluster's slots
inline constexpr int kSlotShift = 50;          // 64 - log2(kSlotCount)
inline constexpr Token kSlotTokens = Token{1} << kSlotShift;

// The part of `key` that is hashed: its hash tag if it has a non-empty one, else the whole key.
std::string_view hash_tag(std::string_view key);

// CRC16-CCITT (XMODEM: polynomial 0x1021, initial value 0, no reflection), as Redis's crc16().
uint16_t crc16(std::string_view bytes);

// The Redis Cluster slot of `key`: CRC16 of its hashed part, mod 16384 (CLUSTER KEYSLOT).
Slot slot_of(std::string_view key);

// The token of `key`.
Token token_of(std::string_view key);

// The slot holding `token` (invariant 1).
constexpr Slot slot_of_token(Token token) { return static_cast<Slot>(token >> kSlotShift); }

// The first token of `slot`.
constexpr Token slot_start(Slot slot) { return Token{slot} << kSlotShift; }

// The slot boundary nearest to `token` (halfway rounds up); 0 for tokens in the last half slot,
// which stands for the end of the ring as a range end does.
constexpr Token nearest_slot_boundary(Token token) {
  const Token below = token & ~(kSlotTokens - 1);
  return token - below < kSlotTokens / 2 ? below : below + kSlotTokens;
}

}  // namespace cairn::topology
