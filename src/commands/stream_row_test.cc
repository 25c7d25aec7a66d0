// The stream row layout (stream_row.h): sub-keys that sort by ID, cell encodings that round-trip
// and refuse malformed bytes, and Redis's stream ID syntax.
#include "commands/stream_row.h"

#include <gtest/gtest.h>

#include <string>

#include "storage/cell.h"

namespace cairn::commands {
namespace {

TEST(StreamRowTest, EntrySubKeysSortByIdAndAfterTheMetaCell) {
  const StreamId ids[] = {{0, 1}, {0, 2}, {1, 0}, {255, UINT64_MAX}, {256, 0},
                          {UINT64_MAX - 1, 5}, {UINT64_MAX, UINT64_MAX}};
  const std::string meta = stream_meta_sub_key();
  ASSERT_EQ(meta, std::string(1, storage::kFieldNamespace));
  for (size_t i = 0; i < std::size(ids); ++i) {
    const std::string sub_key = stream_entry_sub_key(ids[i]);
    EXPECT_EQ(sub_key.size(), 17u);
    EXPECT_LT(meta, sub_key);
    EXPECT_EQ(stream_id_of_entry_sub_key(sub_key), ids[i]);
    if (i > 0) {
      EXPECT_LT(stream_entry_sub_key(ids[i - 1]), sub_key);
    }
    // Every entry sorts before the other namespaces of the row.
    EXPECT_LT(sub_key, stream_group_sub_key(""));
  }
  EXPECT_FALSE(stream_id_of_entry_sub_key(meta));
  EXPECT_FALSE(stream_id_of_entry_sub_key(stream_group_sub_key("g")));
}

TEST(StreamRowTest, MetaRoundTripsAndRefusesOtherBytes) {
  StreamMeta meta{7, {100, 3}, {50, 1}, 12, {20, 0}, 2, 12, 5};
  const std::string bytes = encode_stream_meta(meta);
  EXPECT_EQ(decode_stream_meta(bytes), meta);
  EXPECT_FALSE(decode_stream_meta(bytes.substr(1)));
  EXPECT_FALSE(decode_stream_meta(bytes + "x"));
  std::string wrong_version = bytes;
  wrong_version[0] = 9;
  EXPECT_FALSE(decode_stream_meta(wrong_version));
  EXPECT_FALSE(decode_stream_meta(""));
}

TEST(StreamRowTest, EntryRoundTripsAndRefusesTruncation) {
  StreamEntry entry{300, {{"f", "v"}, {"", ""}, {std::string("a\0b", 3), "\xff\r\n"}}};
  const std::string bytes = encode_stream_entry(entry);
  EXPECT_EQ(decode_stream_entry(bytes), entry);
  for (size_t cut = 0; cut < bytes.size(); ++cut) {
    EXPECT_FALSE(decode_stream_entry(bytes.substr(0, cut))) << cut;
  }
  EXPECT_FALSE(decode_stream_entry(bytes + "x"));
  // A pair count far beyond what the bytes hold is refused before any allocation.
  std::string huge = bytes.substr(0, 9) + std::string("\xff\xff\xff\xff", 4);
  EXPECT_FALSE(decode_stream_entry(huge));
}

TEST(StreamRowTest, GroupConsumerPendingRoundTrip) {
  const StreamGroup group{{5, 6}, -1, 3, 2};
  EXPECT_EQ(decode_stream_group(encode_stream_group(group)), group);
  EXPECT_FALSE(decode_stream_group("x"));
  const StreamConsumer consumer{1'700'000'000'000, 4};
  EXPECT_EQ(decode_stream_consumer(encode_stream_consumer(consumer)), consumer);
  EXPECT_FALSE(decode_stream_consumer(encode_stream_consumer(consumer) + "x"));
  const StreamPending pending{1'700'000'000'123, 2, "alice"};
  const std::string bytes = encode_stream_pending(pending);
  EXPECT_EQ(decode_stream_pending(bytes), pending);
  EXPECT_FALSE(decode_stream_pending(bytes.substr(0, bytes.size() - 1)));
}

TEST(StreamRowTest, GroupPrefixesDoNotOverlap) {
  // "g" and "g2" (and a consumer name that looks like a length) never share a prefix, since
  // names are length-prefixed.
  const std::string a = stream_pending_sub_key("g", {1, 1});
  EXPECT_FALSE(a.starts_with(stream_pending_prefix("g2")));
  EXPECT_EQ(stream_id_after_prefix(a, stream_pending_prefix("g")), (StreamId{1, 1}));
  EXPECT_FALSE(stream_id_after_prefix(a, stream_pending_prefix("g2")));
  const std::string b = stream_consumer_pending_sub_key("g", "c", {2, 3});
  EXPECT_EQ(stream_id_after_prefix(b, stream_consumer_pending_prefix("g", "c")),
            (StreamId{2, 3}));
  EXPECT_FALSE(stream_id_after_prefix(b, stream_consumer_pending_prefix("g", "cc")));
  EXPECT_LT(stream_pending_sub_key("g", {1, 1}), stream_pending_sub_key("g", {1, 2}));
  EXPECT_LT(stream_pending_sub_key("g", {1, UINT64_MAX}), stream_pending_sub_key("g", {2, 0}));
}

TEST(StreamRowTest, ParsesIdsAsRedisDoes) {
  EXPECT_EQ(parse_stream_id("-", 0, false), (StreamId{0, 0}));
  EXPECT_EQ(parse_stream_id("+", 0, false), kMaxStreamId);
  EXPECT_FALSE(parse_stream_id("-", 0, true));
  EXPECT_FALSE(parse_stream_id("+", 0, true));
  EXPECT_EQ(parse_stream_id("5", 0, false), (StreamId{5, 0}));
  EXPECT_EQ(parse_stream_id("5", UINT64_MAX, false), (StreamId{5, UINT64_MAX}));
  EXPECT_EQ(parse_stream_id("5-7", 0, false), (StreamId{5, 7}));
  EXPECT_EQ(parse_stream_id("18446744073709551615-18446744073709551615", 0, true), kMaxStreamId);
  EXPECT_FALSE(parse_stream_id("18446744073709551616-0", 0, true));
  EXPECT_FALSE(parse_stream_id("-1", 0, false));
  EXPECT_FALSE(parse_stream_id("1-2-3", 0, false));
  EXPECT_FALSE(parse_stream_id("a", 0, false));
  EXPECT_FALSE(parse_stream_id("", 0, false));
  EXPECT_FALSE(parse_stream_id("5-", 0, false));
  EXPECT_FALSE(parse_stream_id("5-*", 0, true));
  bool seq_given = true;
  EXPECT_EQ(parse_stream_id("5-*", 0, true, &seq_given), (StreamId{5, 0}));
  EXPECT_FALSE(seq_given);
  EXPECT_EQ(parse_stream_id("5-3", 0, true, &seq_given), (StreamId{5, 3}));
  EXPECT_TRUE(seq_given);
  EXPECT_FALSE(parse_stream_id(std::string(200, '1'), 0, false));
}

TEST(StreamRowTest, IncrementAndDecrementStopAtTheEnds) {
  StreamId id{3, UINT64_MAX};
  EXPECT_TRUE(id.increment());
  EXPECT_EQ(id, (StreamId{4, 0}));
  EXPECT_TRUE(id.decrement());
  EXPECT_EQ(id, (StreamId{3, UINT64_MAX}));
  StreamId max = kMaxStreamId;
  EXPECT_FALSE(max.increment());
  StreamId zero;
  EXPECT_FALSE(zero.decrement());
  EXPECT_EQ((StreamId{1, 2}).to_string(), "1-2");
}

}  // namespace
}  // namespace cairn::commands
