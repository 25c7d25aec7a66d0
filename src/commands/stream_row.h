#pragma once
// The layout of a stream row (docs/formats.md "Streams"). A stream is a row of type kStream:
//
//   0x01                          the meta cell (StreamMeta). It sits in the field namespace so
//                                 the row always counts at least one field: a stream emptied by
//                                 XDEL / XTRIM, or made by XGROUP CREATE MKSTREAM, still exists.
//   0x01 | ms(8) | seq(8)         one entry (its field/value pairs), big-endian, so sub-key order
//                                 is ID order: XRANGE is a range scan, XREVRANGE a reverse one.
//   0x04 | group                  a consumer group (StreamGroup).
//   0x05 | u32 len | group | consumer        a consumer (StreamConsumer).
//   0x06 | u32 len | group | ms | seq        the group's pending entry (StreamPending).
//   0x07 | u32 len | group | u32 len | consumer | ms | seq   the same entry in its consumer's
//                                 index (empty value), so a consumer's history is a range scan.
//
// Invariants (kept by the stream commands, under the key's lock, at the shard leader):
//  1. meta.length is the number of entry cells; meta.last_id >= every entry's ID; a new entry's
//     ID is greater than meta.last_id (IDs never go backwards, whatever the clock does).
//  2. meta.first_id is the smallest entry ID (0-0 when there is none).
//  3. A pending cell (0x06) exists exactly when its consumer-index cell (0x07) exists; the
//     group's pending count and each consumer's pending count count them.
// Every write of a stream command ends with the meta cell, which wakes blocked readers.
// Pure: no I/O.

#include <compare>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace cairn::commands {

inline constexpr char kStreamGroupNamespace = '\x04';
inline constexpr char kStreamConsumerNamespace = '\x05';
inline constexpr char kStreamPendingNamespace = '\x06';
inline constexpr char kStreamConsumerPendingNamespace = '\x07';

struct StreamId {
  uint64_t ms = 0;
  uint64_t seq = 0;
  auto operator<=>(const StreamId&) const = default;
  bool is_zero() const { return ms == 0 && seq == 0; }
  bool is_max() const { return ms == UINT64_MAX && seq == UINT64_MAX; }
  std::string to_string() const;
  // The next / previous ID; false at the end of the ID space (the ID is then unchanged).
  bool increment();
  bool decrement();
};
inline constexpr StreamId kMaxStreamId{UINT64_MAX, UINT64_MAX};

// Entries per emulated listpack node: redis-server groups entries in nodes of
// stream-node-max-entries (100) and approximate trimming (~) removes whole nodes only.
inline constexpr uint64_t kStreamNodeEntries = 100;

struct StreamMeta {
  uint64_t length = 0;
  StreamId last_id;          // Redis's last-generated-id
  StreamId max_deleted_id;   // the greatest ID XDEL removed
  uint64_t entries_added = 0;
  StreamId first_id;         // the first entry's ID (0-0 when empty)
  uint64_t groups = 0;
  uint64_t node = 0;         // the emulated tail node's number
  uint64_t node_fill = 0;    // entries appended to it (deleted ones too)
  bool operator==(const StreamMeta&) const = default;
};

struct StreamGroup {
  StreamId last_delivered;
  int64_t entries_read = -1;  // -1: unknown (Redis's SCG_INVALID_ENTRIES_READ)
  uint64_t pending = 0;
  uint64_t consumers = 0;
  bool operator==(const StreamGroup&) const = default;
};

struct StreamConsumer {
  int64_t seen_ms = 0;
  uint64_t pending = 0;
  bool operator==(const StreamConsumer&) const = default;
};

struct StreamPending {
  int64_t delivery_ms = 0;
  uint64_t delivery_count = 0;
  std::string consumer;
  bool operator==(const StreamPending&) const = default;
};

// An entry's value: the emulated node it was appended to and its field/value pairs.
struct StreamEntry {
  uint64_t node = 0;
  std::vector<std::pair<std::string, std::string>> fields;
  bool operator==(const StreamEntry&) const = default;
};

std::string stream_meta_sub_key();
std::string encode_stream_meta(const StreamMeta& meta);
std::optional<StreamMeta> decode_stream_meta(std::string_view bytes);

std::string stream_entry_sub_key(const StreamId& id);
// The ID of an entry sub-key; nullopt for any other sub-key (the meta cell included).
std::optional<StreamId> stream_id_of_entry_sub_key(std::string_view sub_key);
std::string encode_stream_entry(const StreamEntry& entry);
std::optional<StreamEntry> decode_stream_entry(std::string_view bytes);

std::string stream_group_sub_key(std::string_view group);
std::optional<std::string_view> stream_group_of_sub_key(std::string_view sub_key);
std::string encode_stream_group(const StreamGroup& group);
std::optional<StreamGroup> decode_stream_group(std::string_view bytes);

// The prefix of every consumer cell of `group`, and one consumer's sub-key.
std::string stream_consumer_prefix(std::string_view group);
std::string stream_consumer_sub_key(std::string_view group, std::string_view consumer);
std::string encode_stream_consumer(const StreamConsumer& consumer);
std::optional<StreamConsumer> decode_stream_consumer(std::string_view bytes);

std::string stream_pending_prefix(std::string_view group);
std::string stream_pending_sub_key(std::string_view group, const StreamId& id);
std::string encode_stream_pending(const StreamPending& pending);
std::optional<StreamPending> decode_stream_pending(std::string_view bytes);

std::string stream_consumer_pending_prefix(std::string_view group, std::string_view consumer);
std::string stream_consumer_pending_sub_key(std::string_view group, std::string_view consumer,
                                            const StreamId& id);

// The ID at the end of a pending or consumer-pending sub-key (its last 16 bytes), given the
// prefix it must start with; nullopt otherwise.
std::optional<StreamId> stream_id_after_prefix(std::string_view sub_key, std::string_view prefix);

// Redis's stream ID argument syntax: "-", "+", "<ms>", "<ms>-<seq>" and (when `seq_given`
// is non-null) "<ms>-*". `strict` refuses "-" and "+". A missing sequence is `missing_seq`.
// nullopt for anything else (Redis: "Invalid stream ID specified as stream command argument").
std::optional<StreamId> parse_stream_id(std::string_view text, uint64_t missing_seq, bool strict,
                                        bool* seq_given = nullptr);

}  // namespace cairn::commands
