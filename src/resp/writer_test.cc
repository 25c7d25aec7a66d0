#include "resp/writer.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>

namespace cairn::resp {
namespace {

using namespace std::literals;

// Runs `write` against a fresh writer speaking `protocol` and returns the bytes it produced.
template <typename Write>
std::string encode(int protocol, Write write) {
  std::string out;
  ReplyWriter writer(&out, protocol);
  write(writer);
  return out;
}

// The same call in RESP2 and RESP3.
template <typename Write>
void expect_encodings(Write write, std::string_view resp2, std::string_view resp3) {
  EXPECT_EQ(encode(2, write), resp2);
  EXPECT_EQ(encode(3, write), resp3);
}

TEST(ReplyWriter, SimpleStringsAndErrors) {
  expect_encodings([](ReplyWriter& w) { w.simple("PONG"); }, "+PONG\r\n", "+PONG\r\n");
  expect_encodings([](ReplyWriter& w) { w.ok(); }, "+OK\r\n", "+OK\r\n");
  expect_encodings([](ReplyWriter& w) { w.simple("a\r\nb\nc\r"); }, "+a  b c \r\n",
                   "+a  b c \r\n");
  expect_encodings([](ReplyWriter& w) { w.error("ERR syntax error"); }, "-ERR syntax error\r\n",
                   "-ERR syntax error\r\n");
  expect_encodings([](ReplyWriter& w) { w.error("ERR Protocol error: expected '$', got '\r'"); },
                   "-ERR Protocol error: expected '$', got ' '\r\n",
                   "-ERR Protocol error: expected '$', got ' '\r\n");
  expect_encodings([](ReplyWriter& w) { w.simple(""); }, "+\r\n", "+\r\n");
}

TEST(ReplyWriter, Integers) {
  expect_encodings([](ReplyWriter& w) { w.integer(0); }, ":0\r\n", ":0\r\n");
  expect_encodings([](ReplyWriter& w) { w.integer(-42); }, ":-42\r\n", ":-42\r\n");
  expect_encodings([](ReplyWriter& w) { w.integer(std::numeric_limits<int64_t>::min()); },
                   ":-9223372036854775808\r\n", ":-9223372036854775808\r\n");
  expect_encodings([](ReplyWriter& w) { w.integer(std::numeric_limits<int64_t>::max()); },
                   ":9223372036854775807\r\n", ":9223372036854775807\r\n");
}

TEST(ReplyWriter, BulkStringsAreBinarySafe) {
  expect_encodings([](ReplyWriter& w) { w.bulk("hello"); }, "$5\r\nhello\r\n",
                   "$5\r\nhello\r\n");
  expect_encodings([](ReplyWriter& w) { w.bulk(""); }, "$0\r\n\r\n", "$0\r\n\r\n");
  std::string bytes;
  for (int i = 0; i < 256; ++i) bytes.push_back(static_cast<char>(i));
  const std::string expected = "$256\r\n" + bytes + "\r\n";
  expect_encodings([&](ReplyWriter& w) { w.bulk(bytes); }, expected, expected);
}

TEST(ReplyWriter, Nulls) {
  expect_encodings([](ReplyWriter& w) { w.null(); }, "$-1\r\n", "_\r\n");
  expect_encodings([](ReplyWriter& w) { w.null_array(); }, "*-1\r\n", "_\r\n");
}

TEST(ReplyWriter, Aggregates) {
  expect_encodings([](ReplyWriter& w) { w.array(3); }, "*3\r\n", "*3\r\n");
  expect_encodings([](ReplyWriter& w) { w.array(0); }, "*0\r\n", "*0\r\n");
  expect_encodings([](ReplyWriter& w) { w.map(2); }, "*4\r\n", "%2\r\n");
  expect_encodings([](ReplyWriter& w) { w.map(0); }, "*0\r\n", "%0\r\n");
  expect_encodings([](ReplyWriter& w) { w.set(5); }, "*5\r\n", "~5\r\n");
  expect_encodings([](ReplyWriter& w) { w.push(3); }, "*3\r\n", ">3\r\n");
  expect_encodings(
      [](ReplyWriter& w) {
        w.map(1);
        w.bulk("k");
        w.array(2);
        w.integer(1);
        w.null();
      },
      "*2\r\n$1\r\nk\r\n*2\r\n:1\r\n$-1\r\n", "%1\r\n$1\r\nk\r\n*2\r\n:1\r\n_\r\n");
}

TEST(ReplyWriter, Doubles) {
  // The texts redis-server 7.0 sends for ZSCORE and friends.
  expect_encodings([](ReplyWriter& w) { w.double_value(1.1); }, "$18\r\n1.1000000000000001\r\n",
                   ",1.1000000000000001\r\n");
  expect_encodings([](ReplyWriter& w) { w.double_value(1e300); },
                   "$23\r\n1.0000000000000001e+300\r\n", ",1.0000000000000001e+300\r\n");
  expect_encodings([](ReplyWriter& w) { w.double_value(3); }, "$1\r\n3\r\n", ",3\r\n");
  expect_encodings([](ReplyWriter& w) { w.double_value(-2.5); }, "$4\r\n-2.5\r\n", ",-2.5\r\n");
  expect_encodings([](ReplyWriter& w) { w.double_value(0); }, "$1\r\n0\r\n", ",0\r\n");
  expect_encodings([](ReplyWriter& w) { w.double_value(HUGE_VAL); }, "$3\r\ninf\r\n",
                   ",inf\r\n");
  expect_encodings([](ReplyWriter& w) { w.double_value(-HUGE_VAL); }, "$4\r\n-inf\r\n",
                   ",-inf\r\n");
  expect_encodings([](ReplyWriter& w) { w.double_value(std::nan("")); }, "$3\r\nnan\r\n",
                   ",nan\r\n");
}

TEST(ReplyWriter, BooleansAndVerbatim) {
  expect_encodings([](ReplyWriter& w) { w.boolean(true); }, ":1\r\n", "#t\r\n");
  expect_encodings([](ReplyWriter& w) { w.boolean(false); }, ":0\r\n", "#f\r\n");
  expect_encodings([](ReplyWriter& w) { w.verbatim("a\r\nb"); }, "$4\r\na\r\nb\r\n",
                   "=8\r\ntxt:a\r\nb\r\n");
  expect_encodings([](ReplyWriter& w) { w.verbatim(""); }, "$0\r\n\r\n", "=4\r\ntxt:\r\n");
}

TEST(ReplyWriter, AppendsAndSwitchesProtocol) {
  std::string out = "prefix";
  ReplyWriter writer(&out);
  EXPECT_EQ(writer.protocol(), 2);
  EXPECT_EQ(writer.buffer(), &out);
  writer.null();
  writer.set_protocol(3);
  EXPECT_EQ(writer.protocol(), 3);
  writer.null();
  EXPECT_EQ(out, "prefix$-1\r\n_\r\n");
}

TEST(FormatDouble, MatchesIncrbyfloat) {
  // Each expectation is what redis-server 7.0.15 answers to the matching INCRBYFLOAT.
  EXPECT_EQ(format_double(10.5L + 0.1L), "10.6");
  EXPECT_EQ(format_double(5.0e3L), "5000");
  EXPECT_EQ(format_double(3.0L), "3");
  EXPECT_EQ(format_double(3.0L + 5.0e3L), "5003");
  EXPECT_EQ(format_double(5003.0L + 1e20L), "100000000000000005000");
  EXPECT_EQ(format_double(0.1L + 0.2L), "0.3");
  EXPECT_EQ(format_double(1e-20L), "0");
  EXPECT_EQ(format_double(10.6L - 10.6L), "0");
  EXPECT_EQ(format_double(-0.0L), "0");
  EXPECT_EQ(format_double(-1.5L), "-1.5");
  EXPECT_EQ(format_double(0.5L), "0.5");
  EXPECT_EQ(format_double(-100.0L), "-100");
  EXPECT_EQ(format_double(HUGE_VALL), "inf");
  EXPECT_EQ(format_double(-HUGE_VALL), "-inf");
  // The largest long double still fits (about 4950 digits).
  EXPECT_GT(format_double(std::numeric_limits<long double>::max()).size(), 4900u);
}

}  // namespace
}  // namespace cairn::resp
