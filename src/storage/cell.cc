#include "storage/cell.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <limits>

#include "common/big_endian.h"

namespace cairn::storage {
namespace {

// Cell layout version 1 (docs/formats.md "Cell"). Every field has a fixed width so a decoder can
// check the exact length before reading, and the leading version byte lets a later layout coexist
// with cells already on disk.
constexpr uint8_t kCellFormatVersion = 1;
constexpr uint8_t kFlagTombstone = 0x01;
constexpr uint8_t kKnownFlags = kFlagTombstone;
// version(1) flags(1) type(1) timestamp(8) writer(8) expire_at_ms(8) value_length(4)
constexpr size_t kCellHeaderBytes = 1 + 1 + 1 + 8 + 8 + 8 + 4;
constexpr size_t kTokenBytes = 8;
constexpr size_t kKeyLengthBytes = 4;

bool known_type(uint8_t type) {
  return type >= static_cast<uint8_t>(ValueType::kString) &&
         type <= static_cast<uint8_t>(ValueType::kStream);
}

// Row header value, version 1: version(1) delete_through(8); version 2 (a row whose fields may
// expire): version(1) = 2 delete_through(8) flags(1) = 1.
constexpr uint8_t kRowHeaderVersion = 1;
constexpr size_t kRowHeaderBytes = 1 + 8;
constexpr uint8_t kRowHeaderVersionFieldsExpire = 2;

}  // namespace

bool supersedes(const Cell& a, const Cell& b) {
  if (a.timestamp != b.timestamp) return a.timestamp > b.timestamp;
  if (a.writer != b.writer) return a.writer > b.writer;
  // Same timestamp and writer: a correct cluster never produces this, but replicas must still
  // agree, so fall back to the encoding, which is injective (distinct cells encode differently).
  // std::string compares bytes as unsigned char, so the order is the same on every platform.
  return encode_cell(a) > encode_cell(b);
}

std::string encode_cell(const Cell& cell) {
  CAIRN_ASSERT(cell.value.size() <= std::numeric_limits<uint32_t>::max(), "cell value too large");
  std::string out;
  out.reserve(kCellHeaderBytes + cell.value.size());
  out.push_back(static_cast<char>(kCellFormatVersion));
  out.push_back(static_cast<char>(cell.tombstone ? kFlagTombstone : 0));
  out.push_back(static_cast<char>(cell.type));
  put_u64(out, cell.timestamp);
  put_u64(out, cell.writer);
  put_u64(out, static_cast<uint64_t>(cell.expire_at_ms));
  put_u32(out, static_cast<uint32_t>(cell.value.size()));
  out.append(cell.value);
  return out;
}

Result<Cell> decode_cell(std::string_view bytes) {
  if (bytes.size() < kCellHeaderBytes) {
    return Status::corruption("cell: " + std::to_string(bytes.size()) + " bytes, header needs " +
                              std::to_string(kCellHeaderBytes));
  }
  const auto version = static_cast<uint8_t>(bytes[0]);
  if (version != kCellFormatVersion) {
    return Status::corruption("cell: unknown format version " + std::to_string(version));
  }
  const auto flags = static_cast<uint8_t>(bytes[1]);
  if ((flags & ~kKnownFlags) != 0) {
    return Status::corruption("cell: unknown flags " + std::to_string(flags));
  }
  const auto type = static_cast<uint8_t>(bytes[2]);
  if (!known_type(type)) return Status::corruption("cell: unknown value type " + std::to_string(type));
  const uint32_t value_length = get_u32(bytes.substr(27));
  if (bytes.size() - kCellHeaderBytes != value_length) {
    return Status::corruption("cell: value length " + std::to_string(value_length) + " but " +
                              std::to_string(bytes.size() - kCellHeaderBytes) + " bytes follow");
  }
  Cell cell;
  cell.tombstone = (flags & kFlagTombstone) != 0;
  cell.type = static_cast<ValueType>(type);
  cell.timestamp = get_u64(bytes.substr(3));
  cell.writer = get_u64(bytes.substr(11));
  cell.expire_at_ms = static_cast<int64_t>(get_u64(bytes.substr(19)));
  cell.value.assign(bytes.substr(kCellHeaderBytes));
  return cell;
}

std::string field_sub_key(std::string_view field) {
  std::string out;
  out.reserve(1 + field.size());
  out.push_back(kFieldNamespace);
  out.append(field);
  return out;
}

std::optional<std::string_view> field_of_sub_key(std::string_view sub_key) {
  if (sub_key.empty() || sub_key[0] != kFieldNamespace) return std::nullopt;
  return sub_key.substr(1);
}

std::string encode_score(double score) {
  CAIRN_ASSERT(!std::isnan(score), "a score is a number");
  if (score == 0) score = 0;  // -0 and +0 are one score
  uint64_t bits = std::bit_cast<uint64_t>(score);
  // Positive numbers: set the sign bit so they sort above every negative one. Negative numbers:
  // flip every bit, so a larger magnitude sorts lower.
  bits = (bits & (uint64_t{1} << 63)) ? ~bits : bits | (uint64_t{1} << 63);
  std::string out;
  put_u64(out, bits);
  return out;
}

double decode_score(std::string_view eight_bytes) {
  CAIRN_ASSERT(eight_bytes.size() == 8, "a score is 8 bytes");
  uint64_t bits = get_u64(eight_bytes);
  bits = (bits & (uint64_t{1} << 63)) ? bits & ~(uint64_t{1} << 63) : ~bits;
  return std::bit_cast<double>(bits);
}

std::string score_index_sub_key(double score, std::string_view member) {
  std::string out;
  out.reserve(1 + 8 + member.size());
  out.push_back(kScoreIndexNamespace);
  out.append(encode_score(score));
  out.append(member);
  return out;
}

std::string encode_member_score(double score) {
  const uint64_t bits = std::bit_cast<uint64_t>(score);
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>(bits >> (56 - 8 * i));
  return out;
}

std::optional<double> decode_member_score(std::string_view value) {
  if (value.size() != 8) return std::nullopt;
  uint64_t bits = 0;
  for (char byte : value) bits = (bits << 8) | static_cast<uint8_t>(byte);
  const double score = std::bit_cast<double>(bits);
  if (std::isnan(score)) return std::nullopt;
  return score;
}

std::optional<std::string> derived_index_sub_key(std::string_view sub_key, const Cell& cell) {
  if (cell.tombstone || cell.type != ValueType::kZSet) return std::nullopt;
  std::optional<std::string_view> member = field_of_sub_key(sub_key);
  if (!member) return std::nullopt;
  std::optional<double> score = decode_member_score(cell.value);
  if (!score) return std::nullopt;
  return score_index_sub_key(*score, *member);
}

bool is_score_index_cell(std::string_view sub_key, const Cell& cell) {
  return cell.type == ValueType::kZSet && !sub_key.empty() && sub_key[0] == kScoreIndexNamespace;
}

std::string encode_row_header(const RowHeader& header) {
  std::string out;
  out.reserve(kRowHeaderBytes + 1);
  out.push_back(static_cast<char>(header.fields_expire ? kRowHeaderVersionFieldsExpire
                                                       : kRowHeaderVersion));
  put_u64(out, header.delete_through);
  if (header.fields_expire) out.push_back(1);
  return out;
}

Result<RowHeader> decode_row_header(std::string_view bytes) {
  if (bytes.size() == kRowHeaderBytes && static_cast<uint8_t>(bytes[0]) == kRowHeaderVersion) {
    return RowHeader{get_u64(bytes.substr(1)), false};
  }
  if (bytes.size() == kRowHeaderBytes + 1 &&
      static_cast<uint8_t>(bytes[0]) == kRowHeaderVersionFieldsExpire) {
    return RowHeader{get_u64(bytes.substr(1)), (bytes[kRowHeaderBytes] & 1) != 0};
  }
  return Status::corruption("row header: " + std::to_string(bytes.size()) +
                            " bytes, not a version 1 or 2 header");
}

HlcTimestamp hidden_through(const Cell& header, int64_t now_ms) {
  if (header.tombstone || !is_row_type(header.type)) {
    // A tombstone that was an expired row header (the compaction filter rewrites those) keeps
    // its expiry: it hides what was written until then too.
    return std::max(header.timestamp, header.tombstone ? expiry_bound(header.expire_at_ms) : 0);
  }
  Result<RowHeader> row = decode_row_header(header.value);
  HlcTimestamp bound = row.is_ok() ? row->delete_through : header.timestamp;
  if (header.expired_at(now_ms)) {
    bound = std::max({bound, header.timestamp, expiry_bound(header.expire_at_ms)});
  }
  return bound;
}

std::string encode_key(topology::Token token, std::string_view key, std::string_view sub_key) {
  CAIRN_ASSERT(key.size() <= std::numeric_limits<uint32_t>::max(), "key too large");
  std::string out;
  out.reserve(kTokenBytes + kKeyLengthBytes + key.size() + sub_key.size());
  put_u64(out, token);
  put_u32(out, static_cast<uint32_t>(key.size()));
  out.append(key);
  out.append(sub_key);
  return out;
}

Result<DecodedKey> decode_key(std::string_view encoded) {
  if (encoded.size() < kTokenBytes + kKeyLengthBytes) {
    return Status::corruption("storage key: " + std::to_string(encoded.size()) +
                              " bytes, shorter than token and key length");
  }
  const uint32_t key_length = get_u32(encoded.substr(kTokenBytes));
  const std::string_view rest = encoded.substr(kTokenBytes + kKeyLengthBytes);
  if (key_length > rest.size()) {
    return Status::corruption("storage key: key length " + std::to_string(key_length) +
                              " but only " + std::to_string(rest.size()) + " bytes follow");
  }
  return DecodedKey{get_u64(encoded), rest.substr(0, key_length), rest.substr(key_length)};
}

std::string token_prefix(topology::Token token) {
  std::string out;
  out.reserve(kTokenBytes);
  put_u64(out, token);
  return out;
}

}  // namespace cairn::storage
