#include "commands/parse.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

namespace cairn::commands {
namespace {

TEST(ParseTest, Int64AcceptsWhatString2llAccepts) {
  EXPECT_EQ(parse_int64("0"), 0);
  EXPECT_EQ(parse_int64("42"), 42);
  EXPECT_EQ(parse_int64("-42"), -42);
  EXPECT_EQ(parse_int64("9223372036854775807"), std::numeric_limits<int64_t>::max());
  EXPECT_EQ(parse_int64("-9223372036854775808"), std::numeric_limits<int64_t>::min());
}

TEST(ParseTest, Int64RejectsWhatString2llRejects) {
  for (const char* text :
       {"", "-", "+1", "01", "-0", "00", " 1", "1 ", "1.0", "1e3", "abc", "9223372036854775808",
        "-9223372036854775809", "99999999999999999999999"}) {
    EXPECT_FALSE(parse_int64(text).has_value()) << text;
  }
  EXPECT_FALSE(parse_int64(std::string_view("1\0", 2)).has_value());
}

TEST(ParseTest, LongDouble) {
  EXPECT_EQ(parse_long_double("1.5"), 1.5L);
  EXPECT_EQ(parse_long_double("-3"), -3.0L);
  EXPECT_EQ(parse_long_double("1e3"), 1000.0L);
  EXPECT_EQ(parse_long_double("0x10"), 16.0L);  // strtold accepts hex, so does Redis
  EXPECT_EQ(parse_long_double("+2"), 2.0L);
  ASSERT_TRUE(parse_long_double("inf").has_value());
  EXPECT_TRUE(std::isinf(*parse_long_double("inf")));
  for (const char* text : {"", " 1", "1 ", "abc", "nan", "1e5000", "-1e5000", "1.5x"}) {
    EXPECT_FALSE(parse_long_double(text).has_value()) << text;
  }
  EXPECT_FALSE(parse_long_double(std::string(kLongDoubleCharsMax, '1')).has_value());
}

TEST(ParseTest, Double) {
  EXPECT_EQ(parse_double("2.5"), 2.5);
  EXPECT_FALSE(parse_double("1e400").has_value());
  EXPECT_FALSE(parse_double("nan").has_value());
  EXPECT_FALSE(parse_double(" 1").has_value());
}

TEST(ParseTest, ScanCursorFollowsStrtoul) {
  EXPECT_EQ(parse_scan_cursor("0"), 0u);
  EXPECT_EQ(parse_scan_cursor(""), 0u);
  EXPECT_EQ(parse_scan_cursor("+7"), 7u);
  EXPECT_EQ(parse_scan_cursor("-1"), std::numeric_limits<uint64_t>::max());
  EXPECT_EQ(parse_scan_cursor("18446744073709551615"), std::numeric_limits<uint64_t>::max());
  EXPECT_FALSE(parse_scan_cursor("18446744073709551616").has_value());
  EXPECT_FALSE(parse_scan_cursor(" 1").has_value());
  EXPECT_FALSE(parse_scan_cursor("1x").has_value());
}

TEST(ParseTest, CaseInsensitiveOptions) {
  EXPECT_TRUE(equals_ignore_case("EX", "ex"));
  EXPECT_TRUE(equals_ignore_case("KeepTTL", "keepttl"));
  EXPECT_FALSE(equals_ignore_case("ex", "exa"));
  EXPECT_EQ(to_lower("SetEX"), "setex");
  EXPECT_EQ(invalid_expire_time_error("SET"), "ERR invalid expire time in 'set' command");
}

}  // namespace
}  // namespace cairn::commands
