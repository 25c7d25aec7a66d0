#include "topology/token.h"

#include <gtest/gtest.h>

#include <string>

namespace cairn::topology {
namespace {

TEST(Token, HashTagFollowsRedisClusterRules) {
  EXPECT_EQ(hash_tag("{user1000}.following"), "user1000");
  EXPECT_EQ(hash_tag("foo{}{bar}"), "foo{}{bar}");  // empty first tag: whole key
  EXPECT_EQ(hash_tag("foo{{bar}}zap"), "{bar");
  EXPECT_EQ(hash_tag("foo{bar}{zap}"), "bar");
  EXPECT_EQ(hash_tag("nobraces"), "nobraces");
  EXPECT_EQ(hash_tag("open{only"), "open{only");
  EXPECT_EQ(hash_tag(""), "");
}

TEST(Token, Crc16IsRedisCrc16) {
  EXPECT_EQ(crc16("123456789"), 0x31C3);  // the check value of CRC-16/XMODEM
  EXPECT_EQ(crc16(""), 0);
  EXPECT_EQ(crc16("foo"), 0xAF96);
}

// Values from redis-server 7.0's CLUSTER KEYSLOT.
TEST(Token, SlotsAreRedisKeySlots) {
  EXPECT_EQ(slot_of("foo"), 12182);
  EXPECT_EQ(slot_of("somekey"), 11058);
  EXPECT_EQ(slot_of("bar"), 5061);
  EXPECT_EQ(slot_of("hello"), 866);
  EXPECT_EQ(slot_of(""), 0);
  EXPECT_EQ(slot_of("{user1000}.following"), slot_of("{user1000}.followers"));
  EXPECT_EQ(slot_of("{user1000}.following"), slot_of("user1000"));
  EXPECT_EQ(slot_of("foo{}{bar}"), crc16("foo{}{bar}") % 16384);
  EXPECT_EQ(slot_of("foo{bar}{zap}"), slot_of("bar"));
  const std::string binary("\x00\xff{\x01}", 5);
  EXPECT_EQ(slot_of(binary), crc16(std::string_view("\x01", 1)) % 16384);
}

TEST(Token, EachSlotIsOneIntervalOfTheRing) {
  for (const std::string key : {"foo", "somekey", "", "{user1000}.x", "a", "b", "key:12345"}) {
    const Token token = token_of(key);
    EXPECT_EQ(slot_of_token(token), slot_of(key)) << key;
    EXPECT_GE(token, slot_start(slot_of(key))) << key;
    if (uint32_t{slot_of(key)} + 1 < kSlotCount) {
      EXPECT_LT(token, slot_start(static_cast<Slot>(slot_of(key) + 1))) << key;
    }
  }
  EXPECT_EQ(slot_start(1), kSlotTokens);
  EXPECT_EQ(uint32_t{slot_of_token(~Token{0})}, kSlotCount - 1);
}

TEST(Token, KeysWithTheSameTagShareAToken) {
  EXPECT_EQ(token_of("{user1000}.following"), token_of("{user1000}.followers"));
  EXPECT_NE(token_of("a"), token_of("b"));
  EXPECT_EQ(token_of("user1000"), token_of("{user1000}"));
}

TEST(Token, KeysOfOneSlotSpreadWithinIt) {
  // Two different untagged keys of one slot get different tokens (the low bits are xxh3).
  std::string first;
  std::string second;
  for (int i = 0; i < 200000 && second.empty(); ++i) {
    const std::string key = "k" + std::to_string(i);
    if (slot_of(key) != slot_of("foo")) continue;
    if (first.empty()) {
      first = key;
    } else {
      second = key;
    }
  }
  ASSERT_FALSE(second.empty());
  EXPECT_NE(token_of(first), token_of(second));
}

TEST(Token, NearestSlotBoundary) {
  EXPECT_EQ(nearest_slot_boundary(0), 0u);
  EXPECT_EQ(nearest_slot_boundary(slot_start(5) + 1), slot_start(5));
  EXPECT_EQ(nearest_slot_boundary(slot_start(5) + kSlotTokens / 2), slot_start(6));
  EXPECT_EQ(nearest_slot_boundary(slot_start(5) - 1), slot_start(5));
  EXPECT_EQ(nearest_slot_boundary(~Token{0}), 0u);  // the ring's end
}

}  // namespace
}  // namespace cairn::topology
