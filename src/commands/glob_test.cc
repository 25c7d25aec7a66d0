#include "commands/glob.h"

#include <gtest/gtest.h>

#include <chrono>
#include <string>

namespace cairn::commands {
namespace {

TEST(GlobTest, StarAndQuestionMark) {
  EXPECT_TRUE(glob_match("*", "anything"));
  EXPECT_TRUE(glob_match("a*", "a"));
  EXPECT_TRUE(glob_match("*a", "a"));
  EXPECT_TRUE(glob_match("a*b*c", "aXXbYYc"));
  EXPECT_FALSE(glob_match("a*b*c", "aXXbYYd"));
  EXPECT_TRUE(glob_match("h?llo", "hello"));
  EXPECT_FALSE(glob_match("h?llo", "hllo"));
  EXPECT_TRUE(glob_match("user:*:name", "user:42:name"));
  EXPECT_TRUE(glob_match("**a**", "xxaxx"));
  EXPECT_TRUE(glob_match("", ""));
  EXPECT_FALSE(glob_match("", "a"));
  EXPECT_FALSE(glob_match("a", ""));
}

TEST(GlobTest, EmptyTextNeverMatchesNonEmptyPattern) {
  // stringmatchlen's loop never runs on an empty string; KEYS/SCAN special-case "*" instead.
  EXPECT_FALSE(glob_match("*", ""));
  EXPECT_FALSE(glob_match("**", ""));
}

TEST(GlobTest, Sets) {
  EXPECT_TRUE(glob_match("h[ae]llo", "hallo"));
  EXPECT_FALSE(glob_match("h[ae]llo", "hillo"));
  EXPECT_TRUE(glob_match("h[a-b]llo", "hbllo"));
  EXPECT_FALSE(glob_match("h[a-b]llo", "hcllo"));
  EXPECT_TRUE(glob_match("h[^e]llo", "hallo"));
  EXPECT_FALSE(glob_match("h[^e]llo", "hello"));
  // A backwards range is swapped.
  EXPECT_TRUE(glob_match("[z-a]", "m"));
  EXPECT_TRUE(glob_match("[z-a]", "a"));
  // An escaped ']' inside a set.
  EXPECT_TRUE(glob_match("[\\]]", "]"));
  EXPECT_FALSE(glob_match("[\\]]", "a"));
}

// Quirks checked against redis-server 7.0.15 with KEYS.
TEST(GlobTest, RedisQuirks) {
  EXPECT_FALSE(glob_match("a[", "ab"));  // unterminated empty set matches nothing
  EXPECT_TRUE(glob_match("a[^", "ab"));  // ...but its negation matches any byte
  EXPECT_TRUE(glob_match("[a-]", "]"));  // "a-]" is the range ']'..'a'
  EXPECT_TRUE(glob_match("[a-]", "^"));
  EXPECT_TRUE(glob_match("[a-]", "a"));
  EXPECT_FALSE(glob_match("[a-]", "-"));
  EXPECT_TRUE(glob_match("[^]", "*"));  // empty negated set: any byte
  EXPECT_FALSE(glob_match("[]", "a"));
  EXPECT_FALSE(glob_match("[]", "]"));
  EXPECT_TRUE(glob_match("[-]", "-"));
  EXPECT_TRUE(glob_match("[a-", "a"));  // unterminated: literal 'a' and '-'
  EXPECT_TRUE(glob_match("[a-", "-"));
  EXPECT_FALSE(glob_match("[a-", "b"));
  EXPECT_FALSE(glob_match("a\\", "a\\b"));
  EXPECT_TRUE(glob_match("a\\", "a\\"));  // a trailing backslash is literal
}

TEST(GlobTest, Escapes) {
  EXPECT_TRUE(glob_match("\\*", "*"));
  EXPECT_FALSE(glob_match("\\*", "a"));
  EXPECT_TRUE(glob_match("\\?", "?"));
  EXPECT_FALSE(glob_match("\\?", "x"));
  EXPECT_TRUE(glob_match("a\\\\b", "a\\b"));
  EXPECT_TRUE(glob_match("ab\\[", "ab["));
}

TEST(GlobTest, NoCase) {
  EXPECT_FALSE(glob_match("HELLO", "hello"));
  EXPECT_TRUE(glob_match("HELLO", "hello", true));
  EXPECT_TRUE(glob_match("[A-C]x", "bX", true));
}

TEST(GlobTest, BinarySafe) {
  const std::string text("a\0b", 3);
  EXPECT_TRUE(glob_match(std::string("a\0b", 3), text));
  EXPECT_TRUE(glob_match("a?b", text));
  EXPECT_FALSE(glob_match("a", text));
}

TEST(GlobTest, PathologicalPatternIsFast) {
  const std::string text(100, 'a');
  const auto start = std::chrono::steady_clock::now();
  EXPECT_FALSE(glob_match("*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*b", text));
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(1));
}

TEST(GlobTest, TooManyStarGroupsMatchNothing) {
  std::string pattern;
  for (int i = 0; i <= kGlobNestingMax + 1; ++i) pattern += "a*";
  const std::string text(kGlobNestingMax + 10, 'a');
  EXPECT_FALSE(glob_match(pattern, text));
  EXPECT_TRUE(glob_match("a*a*a*", "aaa"));
}

}  // namespace
}  // namespace cairn::commands
