#pragma once
// Fixed-width unsigned integers in big-endian byte order, as every on-disk format of
// docs/formats.md writes them (so encoded keys and values sort as their numbers do).

#include <cstdint>
#include <string>
#include <string_view>

namespace cairn {

inline void put_u32(std::string& out, uint32_t value) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<char>(value >> shift));
}

inline void put_u64(std::string& out, uint64_t value) {
  for (int shift = 56; shift >= 0; shift -= 8) out.push_back(static_cast<char>(value >> shift));
}

// REQUIRES: bytes.size() >= 4.
inline uint32_t get_u32(std::string_view bytes) {
  uint32_t value = 0;
  for (size_t i = 0; i < 4; ++i) value = (value << 8) | static_cast<uint8_t>(bytes[i]);
  return value;
}

// REQUIRES: bytes.size() >= 8.
inline uint64_t get_u64(std::string_view bytes) {
  uint64_t value = 0;
  for (size_t i = 0; i < 8; ++i) value = (value << 8) | static_cast<uint8_t>(bytes[i]);
  return value;
}

}  // namespace cairn
