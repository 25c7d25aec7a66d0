#include "commands/stream_row.h"

#include <cerrno>
#include <cstdlib>

#include "commands/parse.h"
#include "common/big_endian.h"
#include "storage/cell.h"

namespace cairn::commands {
namespace {

constexpr uint8_t kMetaVersion = 1;
constexpr size_t kMetaBytes = 1 + 8 * 11;
constexpr uint8_t kGroupVersion = 1;
constexpr size_t kGroupBytes = 1 + 8 * 5;
constexpr uint8_t kConsumerVersion = 1;
constexpr size_t kConsumerBytes = 1 + 8 * 2;
constexpr uint8_t kPendingVersion = 1;
constexpr uint8_t kEntryVersion = 1;
// Bounds a decoder accepts (an entry is built from one command's arguments).
constexpr uint64_t kEntryPairsMax = uint64_t{1} << 28;

void put_id(std::string& out, const StreamId& id) {
  put_u64(out, id.ms);
  put_u64(out, id.seq);
}
StreamId get_id(std::string_view bytes) { return {get_u64(bytes), get_u64(bytes.substr(8))}; }

// A string with its length (u32) in front.
void put_string(std::string& out, std::string_view text) {
  put_u32(out, static_cast<uint32_t>(text.size()));
  out.append(text);
}
// Reads a length-prefixed string at `at`, advancing it; false if it does not fit.
bool get_string(std::string_view bytes, size_t& at, std::string& out) {
  if (bytes.size() - at < 4) return false;
  const uint32_t size = get_u32(bytes.substr(at));
  at += 4;
  if (bytes.size() - at < size) return false;
  out.assign(bytes.substr(at, size));
  at += size;
  return true;
}

std::string prefixed(char ns, std::string_view group) {
  std::string out(1, ns);
  put_string(out, group);
  return out;
}

// Redis's string2ull: a canonical 64-bit integer that is not negative, or what strtoull takes.
std::optional<uint64_t> parse_u64(std::string_view text) {
  if (text.empty()) return std::nullopt;
  if (const std::optional<int64_t> value = parse_int64(text)) {
    if (*value < 0) return std::nullopt;
    return static_cast<uint64_t>(*value);
  }
  const std::string copy(text);
  if (copy.find('\0') != std::string::npos) return std::nullopt;
  errno = 0;
  char* end = nullptr;
  const unsigned long long value = std::strtoull(copy.c_str(), &end, 10);
  if (errno == EINVAL || errno == ERANGE || end == copy.c_str() || *end != '\0') {
    return std::nullopt;
  }
  return static_cast<uint64_t>(value);
}

}  // namespace

std::string StreamId::to_string() const { return std::to_string(ms) + "-" + std::to_string(seq); }

bool StreamId::increment() {
  if (seq != UINT64_MAX) {
    ++seq;
    return true;
  }
  if (ms == UINT64_MAX) return false;
  ++ms;
  seq = 0;
  return true;
}

bool StreamId::decrement() {
  if (seq != 0) {
    --seq;
    return true;
  }
  if (ms == 0) return false;
  --ms;
  seq = UINT64_MAX;
  return true;
}

std::string stream_meta_sub_key() { return std::string(1, storage::kFieldNamespace); }

std::string encode_stream_meta(const StreamMeta& meta) {
  std::string out;
  out.reserve(kMetaBytes);
  out.push_back(static_cast<char>(kMetaVersion));
  put_u64(out, meta.length);
  put_id(out, meta.last_id);
  put_id(out, meta.max_deleted_id);
  put_u64(out, meta.entries_added);
  put_id(out, meta.first_id);
  put_u64(out, meta.groups);
  put_u64(out, meta.node);
  put_u64(out, meta.node_fill);
  return out;
}

std::optional<StreamMeta> decode_stream_meta(std::string_view bytes) {
  if (bytes.size() != kMetaBytes || static_cast<uint8_t>(bytes[0]) != kMetaVersion) {
    return std::nullopt;
  }
  StreamMeta meta;
  meta.length = get_u64(bytes.substr(1));
  meta.last_id = get_id(bytes.substr(9));
  meta.max_deleted_id = get_id(bytes.substr(25));
  meta.entries_added = get_u64(bytes.substr(41));
  meta.first_id = get_id(bytes.substr(49));
  meta.groups = get_u64(bytes.substr(65));
  meta.node = get_u64(bytes.substr(73));
  meta.node_fill = get_u64(bytes.substr(81));
  return meta;
}

std::string stream_entry_sub_key(const StreamId& id) {
  std::string out;
  out.reserve(17);
  out.push_back(storage::kFieldNamespace);
  put_id(out, id);
  return out;
}

std::optional<StreamId> stream_id_of_entry_sub_key(std::string_view sub_key) {
  if (sub_key.size() != 17 || sub_key[0] != storage::kFieldNamespace) return std::nullopt;
  return get_id(sub_key.substr(1));
}

std::string encode_stream_entry(const StreamEntry& entry) {
  size_t size = 1 + 8 + 4;
  for (const auto& [field, value] : entry.fields) size += 8 + field.size() + value.size();
  std::string out;
  out.reserve(size);
  out.push_back(static_cast<char>(kEntryVersion));
  put_u64(out, entry.node);
  put_u32(out, static_cast<uint32_t>(entry.fields.size()));
  for (const auto& [field, value] : entry.fields) {
    put_string(out, field);
    put_string(out, value);
  }
  return out;
}

std::optional<StreamEntry> decode_stream_entry(std::string_view bytes) {
  if (bytes.size() < 13 || static_cast<uint8_t>(bytes[0]) != kEntryVersion) return std::nullopt;
  StreamEntry entry;
  entry.node = get_u64(bytes.substr(1));
  const uint32_t pairs = get_u32(bytes.substr(9));
  // Each pair takes at least 8 bytes: a count beyond what the bytes can hold is corrupt.
  if (pairs > kEntryPairsMax || pairs > (bytes.size() - 13) / 8) return std::nullopt;
  entry.fields.resize(pairs);
  size_t at = 13;
  for (auto& [field, value] : entry.fields) {
    if (!get_string(bytes, at, field) || !get_string(bytes, at, value)) return std::nullopt;
  }
  if (at != bytes.size()) return std::nullopt;
  return entry;
}

std::string stream_group_sub_key(std::string_view group) {
  std::string out(1, kStreamGroupNamespace);
  out.append(group);
  return out;
}

std::optional<std::string_view> stream_group_of_sub_key(std::string_view sub_key) {
  if (sub_key.empty() || sub_key[0] != kStreamGroupNamespace) return std::nullopt;
  return sub_key.substr(1);
}

std::string encode_stream_group(const StreamGroup& group) {
  std::string out;
  out.reserve(kGroupBytes);
  out.push_back(static_cast<char>(kGroupVersion));
  put_id(out, group.last_delivered);
  put_u64(out, static_cast<uint64_t>(group.entries_read));
  put_u64(out, group.pending);
  put_u64(out, group.consumers);
  return out;
}

std::optional<StreamGroup> decode_stream_group(std::string_view bytes) {
  if (bytes.size() != kGroupBytes || static_cast<uint8_t>(bytes[0]) != kGroupVersion) {
    return std::nullopt;
  }
  StreamGroup group;
  group.last_delivered = get_id(bytes.substr(1));
  group.entries_read = static_cast<int64_t>(get_u64(bytes.substr(17)));
  group.pending = get_u64(bytes.substr(25));
  group.consumers = get_u64(bytes.substr(33));
  return group;
}

std::string stream_consumer_prefix(std::string_view group) {
  return prefixed(kStreamConsumerNamespace, group);
}

std::string stream_consumer_sub_key(std::string_view group, std::string_view consumer) {
  std::string out = stream_consumer_prefix(group);
  out.append(consumer);
  return out;
}

std::string encode_stream_consumer(const StreamConsumer& consumer) {
  std::string out;
  out.reserve(kConsumerBytes);
  out.push_back(static_cast<char>(kConsumerVersion));
  put_u64(out, static_cast<uint64_t>(consumer.seen_ms));
  put_u64(out, consumer.pending);
  return out;
}

std::optional<StreamConsumer> decode_stream_consumer(std::string_view bytes) {
  if (bytes.size() != kConsumerBytes || static_cast<uint8_t>(bytes[0]) != kConsumerVersion) {
    return std::nullopt;
  }
  StreamConsumer consumer;
  consumer.seen_ms = static_cast<int64_t>(get_u64(bytes.substr(1)));
  consumer.pending = get_u64(bytes.substr(9));
  return consumer;
}

std::string stream_pending_prefix(std::string_view group) {
  return prefixed(kStreamPendingNamespace, group);
}

std::string stream_pending_sub_key(std::string_view group, const StreamId& id) {
  std::string out = stream_pending_prefix(group);
  put_id(out, id);
  return out;
}

std::string encode_stream_pending(const StreamPending& pending) {
  std::string out;
  out.reserve(1 + 16 + 4 + pending.consumer.size());
  out.push_back(static_cast<char>(kPendingVersion));
  put_u64(out, static_cast<uint64_t>(pending.delivery_ms));
  put_u64(out, pending.delivery_count);
  put_string(out, pending.consumer);
  return out;
}

std::optional<StreamPending> decode_stream_pending(std::string_view bytes) {
  if (bytes.size() < 21 || static_cast<uint8_t>(bytes[0]) != kPendingVersion) return std::nullopt;
  StreamPending pending;
  pending.delivery_ms = static_cast<int64_t>(get_u64(bytes.substr(1)));
  pending.delivery_count = get_u64(bytes.substr(9));
  size_t at = 17;
  if (!get_string(bytes, at, pending.consumer) || at != bytes.size()) return std::nullopt;
  return pending;
}

std::string stream_consumer_pending_prefix(std::string_view group, std::string_view consumer) {
  std::string out = prefixed(kStreamConsumerPendingNamespace, group);
  put_string(out, consumer);
  return out;
}

std::string stream_consumer_pending_sub_key(std::string_view group, std::string_view consumer,
                                            const StreamId& id) {
  std::string out = stream_consumer_pending_prefix(group, consumer);
  put_id(out, id);
  return out;
}

std::optional<StreamId> stream_id_after_prefix(std::string_view sub_key,
                                               std::string_view prefix) {
  if (sub_key.size() != prefix.size() + 16 || !sub_key.starts_with(prefix)) return std::nullopt;
  return get_id(sub_key.substr(prefix.size()));
}

std::optional<StreamId> parse_stream_id(std::string_view text, uint64_t missing_seq, bool strict,
                                        bool* seq_given) {
  if (text.size() > 127) return std::nullopt;
  if (strict && (text == "-" || text == "+")) return std::nullopt;
  if (seq_given != nullptr) *seq_given = true;
  if (text == "-") return StreamId{0, 0};
  if (text == "+") return kMaxStreamId;
  const size_t dash = text.find('-');
  const std::optional<uint64_t> ms = parse_u64(text.substr(0, dash));
  if (!ms) return std::nullopt;
  if (dash == std::string_view::npos) return StreamId{*ms, missing_seq};
  const std::string_view rest = text.substr(dash + 1);
  if (seq_given != nullptr && rest == "*") {
    *seq_given = false;
    return StreamId{*ms, 0};
  }
  const std::optional<uint64_t> seq = parse_u64(rest);
  if (!seq) return std::nullopt;
  return StreamId{*ms, *seq};
}

}  // namespace cairn::commands
