#include "topology/token.h"

#include <gtest/gtest.h>

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

TEST(Token, KeysWithTheSameTagShareAToken) {
  EXPECT_EQ(token_of("{user1000}.following"), token_of("{user1000}.followers"));
  EXPECT_NE(token_of("a"), token_of("b"));
  EXPECT_EQ(token_of("user1000"), token_of("{user1000}"));
}

}  // namespace
}  // namespace cairn::topology
