#include "commands/list_row.h"

#include "common/assert.h"
#include "common/big_endian.h"
#include "storage/cell.h"

namespace cairn::commands {
namespace {

constexpr uint8_t kListMetaVersion = 1;
constexpr size_t kListMetaBytes = 1 + 8 + 8 + 8 + 1;
constexpr uint64_t kSignBit = uint64_t{1} << 63;

}  // namespace

std::string list_meta_sub_key() { return std::string(1, storage::kListMetaNamespace); }

std::string encode_list_meta(const ListMeta& meta) {
  std::string out;
  out.reserve(kListMetaBytes);
  out.push_back(static_cast<char>(kListMetaVersion));
  put_u64(out, static_cast<uint64_t>(meta.head));
  put_u64(out, static_cast<uint64_t>(meta.tail));
  put_u64(out, meta.count);
  out.push_back(meta.sparse ? 1 : 0);
  return out;
}

std::optional<ListMeta> decode_list_meta(std::string_view bytes) {
  if (bytes.size() != kListMetaBytes || static_cast<uint8_t>(bytes[0]) != kListMetaVersion) {
    return std::nullopt;
  }
  const uint8_t flags = static_cast<uint8_t>(bytes[25]);
  if (flags > 1) return std::nullopt;
  ListMeta meta;
  meta.head = static_cast<int64_t>(get_u64(bytes.substr(1)));
  meta.tail = static_cast<int64_t>(get_u64(bytes.substr(9)));
  meta.count = get_u64(bytes.substr(17));
  meta.sparse = flags == 1;
  return meta;
}

std::string list_position_sub_key(int64_t position) {
  std::string out;
  out.reserve(9);
  out.push_back(storage::kFieldNamespace);
  put_u64(out, static_cast<uint64_t>(position) ^ kSignBit);
  return out;
}

std::optional<int64_t> list_position_of_sub_key(std::string_view sub_key) {
  if (sub_key.size() < 9 || sub_key[0] != storage::kFieldNamespace) return std::nullopt;
  return static_cast<int64_t>(get_u64(sub_key.substr(1)) ^ kSignBit);
}

std::string list_sub_key_between(std::string_view below, std::string_view above) {
  CAIRN_ASSERT(below < above && !below.empty() && below[0] == above[0],
               "a gap between two element sub-keys");
  std::string out;
  // Digit by digit: `below` padded with zeros; `above` bounds the result until the result has
  // taken a digit below above's, after which any larger continuation of `below` fits.
  bool bounded = true;
  for (size_t i = 0;; ++i) {
    const int low = i < below.size() ? static_cast<uint8_t>(below[i]) : 0;
    const int high = !bounded ? 256 : (i < above.size() ? static_cast<uint8_t>(above[i]) : 0);
    CAIRN_ASSERT(high >= low, "below < above as fractions");
    if (high - low > 1) {
      out.push_back(static_cast<char>(low + (high - low) / 2));
      return out;
    }
    out.push_back(static_cast<char>(low));
    if (high == low + 1) bounded = false;
  }
}

}  // namespace cairn::commands
