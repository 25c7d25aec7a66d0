#include "topology/token.h"

#include <xxhash.h>

#include <array>

namespace cairn::topology {

namespace {

// The table-driven form of the bitwise CRC below, computed once at compile time.
constexpr std::array<uint16_t, 256> make_crc16_table() {
  std::array<uint16_t, 256> table{};
  for (uint32_t byte = 0; byte < 256; ++byte) {
    uint16_t crc = static_cast<uint16_t>(byte << 8);
    for (int bit = 0; bit < 8; ++bit) {
      crc = (crc & 0x8000) != 0 ? static_cast<uint16_t>((crc << 1) ^ 0x1021)
                                : static_cast<uint16_t>(crc << 1);
    }
    table[byte] = crc;
  }
  return table;
}

constexpr std::array<uint16_t, 256> kCrc16Table = make_crc16_table();

}  // namespace

std::string_view hash_tag(std::string_view key) {
  const size_t open = key.find('{');
  if (open == std::string_view::npos) return key;
  const size_t close = key.find('}', open + 1);
  if (close == std::string_view::npos || close == open + 1) return key;
  return key.substr(open + 1, close - open - 1);
}

uint16_t crc16(std::string_view bytes) {
  uint16_t crc = 0;
  for (const char c : bytes) {
    const auto index = static_cast<uint8_t>((crc >> 8) ^ static_cast<uint8_t>(c));
    crc = static_cast<uint16_t>((crc << 8) ^ kCrc16Table[index]);
  }
  return crc;
}

Slot slot_of(std::string_view key) {
  return static_cast<Slot>(crc16(hash_tag(key)) & (kSlotCount - 1));
}

Token token_of(std::string_view key) {
  const std::string_view hashed = hash_tag(key);
  const auto slot = static_cast<Slot>(crc16(hashed) & (kSlotCount - 1));
  return slot_start(slot) | (XXH3_64bits(hashed.data(), hashed.size()) >> (64 - kSlotShift));
}

}  // namespace cairn::topology
