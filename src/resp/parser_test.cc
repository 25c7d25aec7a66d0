#include "resp/parser.h"

#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <vector>

namespace cairn::resp {
namespace {

using Args = std::vector<std::string>;
using namespace std::literals;  // "..."s and "..."sv keep embedded NUL bytes

// What a connection sees from a byte stream: the requests in order, then either an error or the
// parser waiting (idle or in the middle of a request).
struct StreamResult {
  std::vector<Args> requests;
  std::string error;  // empty unless the stream ended in a protocol error
  bool idle = true;

  bool operator==(const StreamResult&) const = default;
};

std::ostream& operator<<(std::ostream& os, const StreamResult& r) {
  os << "{requests:";
  for (const Args& args : r.requests) {
    os << " [";
    for (const std::string& a : args) os << '"' << a << "\" ";
    os << ']';
  }
  return os << ", error: \"" << r.error << "\", idle: " << r.idle << '}';
}

// Feeds `chunks` to one parser as a connection would, checking the API contract on every call.
StreamResult parse_chunks(const std::vector<std::string_view>& chunks, ParserLimits limits = {}) {
  RequestParser parser(limits);
  StreamResult result;
  Args args;
  for (std::string_view chunk : chunks) {
    size_t offset = 0;
    while (true) {
      ParseOutcome outcome = parser.parse(chunk.substr(offset), args);
      EXPECT_LE(outcome.consumed, chunk.size() - offset);
      if (outcome.state == ParseState::kError) {
        EXPECT_FALSE(outcome.error.empty());
        result.error = outcome.error;
        result.idle = false;
        return result;
      }
      if (outcome.state == ParseState::kNeedMore) {
        EXPECT_EQ(outcome.consumed, chunk.size() - offset);
        break;
      }
      EXPECT_GT(outcome.consumed, 0u);
      offset += outcome.consumed;
      result.requests.push_back(args);
      EXPECT_TRUE(parser.idle());
    }
  }
  result.idle = parser.idle();
  return result;
}

StreamResult parse_whole(std::string_view stream, ParserLimits limits = {}) {
  return parse_chunks({stream}, limits);
}

StreamResult parse_bytewise(std::string_view stream, ParserLimits limits = {}) {
  std::vector<std::string_view> chunks;
  for (size_t i = 0; i < stream.size(); ++i) chunks.push_back(stream.substr(i, 1));
  return parse_chunks(chunks, limits);
}

// The stream parsed whole, one byte at a time and split in two at every position must agree.
void expect_chunking_independent(std::string_view stream, ParserLimits limits = {}) {
  const StreamResult whole = parse_whole(stream, limits);
  EXPECT_EQ(parse_bytewise(stream, limits), whole) << "byte at a time";
  for (size_t cut = 0; cut <= stream.size(); ++cut) {
    EXPECT_EQ(parse_chunks({stream.substr(0, cut), stream.substr(cut)}, limits), whole)
        << "split at " << cut;
  }
}

StreamResult requests(std::vector<Args> r, bool idle = true) { return {std::move(r), "", idle}; }
StreamResult error(std::string text, std::vector<Args> r = {}) {
  return {std::move(r), std::move(text), false};
}

TEST(RequestParser, MultibulkRequest) {
  EXPECT_EQ(parse_whole("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nvalue\r\n"),
            requests({{"SET", "k", "value"}}));
  EXPECT_EQ(parse_whole("*1\r\n$0\r\n\r\n"), requests({{""}}));
}

TEST(RequestParser, PipelinedRequestsInOneBuffer) {
  const std::string stream =
      "*1\r\n$4\r\nPING\r\n"
      "ECHO hello\r\n"
      "*2\r\n$4\r\nECHO\r\n$2\r\nhi\r\n"
      "\r\n"
      "PING\n"
      "*0\r\n"
      "*2\r\n$3\r\nGET\r\n$1\r\nk";  // unfinished
  EXPECT_EQ(parse_whole(stream), requests({{"PING"}, {"ECHO", "hello"}, {"ECHO", "hi"}, {},
                                           {"PING"}, {}},
                                          /*idle=*/false));
  expect_chunking_independent(stream);
}

TEST(RequestParser, EmptyMultibulkIsAnEmptyRequest) {
  EXPECT_EQ(parse_whole("*0\r\n*-1\r\n*-9223372036854775808\r\nPING\r\n"),
            requests({{}, {}, {}, {"PING"}}));
}

TEST(RequestParser, IdleOnlyBetweenRequests) {
  RequestParser parser;
  Args args;
  EXPECT_TRUE(parser.idle());
  EXPECT_EQ(parser.parse("*1\r\n$4\r\nPI", args).state, ParseState::kNeedMore);
  EXPECT_FALSE(parser.idle());
  ParseOutcome outcome = parser.parse("NG\r\nEXTRA", args);
  EXPECT_EQ(outcome.state, ParseState::kComplete);
  EXPECT_EQ(outcome.consumed, 4u);
  EXPECT_EQ(args, Args{"PING"});
  EXPECT_TRUE(parser.idle());
  EXPECT_EQ(parser.parse("", args).state, ParseState::kNeedMore);
  EXPECT_TRUE(parser.idle());
  EXPECT_EQ(parser.parse("PI", args).state, ParseState::kNeedMore);
  EXPECT_FALSE(parser.idle());
}

TEST(RequestParser, ArgsVectorIsOverwrittenAndReused) {
  RequestParser parser;
  Args args = {"stale", "junk", "more junk"};
  ASSERT_EQ(parser.parse("*1\r\n$3\r\nGET\r\n", args).state, ParseState::kComplete);
  EXPECT_EQ(args, Args{"GET"});
  const std::string big(100000, 'x');
  const std::string request = "*2\r\n$3\r\nSET\r\n$100000\r\n" + big + "\r\n";
  ASSERT_EQ(parser.parse(request, args).state, ParseState::kComplete);
  EXPECT_EQ(args, (Args{"SET", big}));
  ASSERT_EQ(parser.parse("*3\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n", args).state,
            ParseState::kComplete);
  EXPECT_EQ(args, (Args{"a", "b", "c"}));
  ASSERT_EQ(parser.parse("x y\r\n", args).state, ParseState::kComplete);
  EXPECT_EQ(args, (Args{"x", "y"}));
}

TEST(RequestParser, ErrorTexts) {
  EXPECT_EQ(parse_whole("*\r\n"), error("Protocol error: invalid multibulk length"));
  EXPECT_EQ(parse_whole("*01\r\n"), error("Protocol error: invalid multibulk length"));
  EXPECT_EQ(parse_whole("*+1\r\n"), error("Protocol error: invalid multibulk length"));
  EXPECT_EQ(parse_whole("*1 \r\n"), error("Protocol error: invalid multibulk length"));
  EXPECT_EQ(parse_whole("*-0\r\n"), error("Protocol error: invalid multibulk length"));
  EXPECT_EQ(parse_whole("*x\r\n"), error("Protocol error: invalid multibulk length"));
  EXPECT_EQ(parse_whole("*99999999999999999999\r\n"),
            error("Protocol error: invalid multibulk length"));
  EXPECT_EQ(parse_whole("*-9223372036854775809\r\n"),
            error("Protocol error: invalid multibulk length"));
  EXPECT_EQ(parse_whole("*1048577\r\n"), error("Protocol error: invalid multibulk length"));

  EXPECT_EQ(parse_whole("*1\r\n$-1\r\n"), error("Protocol error: invalid bulk length"));
  EXPECT_EQ(parse_whole("*1\r\n$01\r\n"), error("Protocol error: invalid bulk length"));
  EXPECT_EQ(parse_whole("*1\r\n$\r\n"), error("Protocol error: invalid bulk length"));
  EXPECT_EQ(parse_whole("*1\r\n$4  \r\n"), error("Protocol error: invalid bulk length"));
  EXPECT_EQ(parse_whole("*1\r\n$536870913\r\n"), error("Protocol error: invalid bulk length"));

  EXPECT_EQ(parse_whole("*3\r\n$3\r\nSET\r\n$1\r\nx\r\nfooz\r\n"),
            error("Protocol error: expected '$', got 'f'"));
  // An empty header line: Redis reports the '\r' itself (the writer turns it into a space).
  EXPECT_EQ(parse_whole("*1\r\n\r\n"), error("Protocol error: expected '$', got '\r'"));

  EXPECT_EQ(parse_whole("set \"\"\"test-key\"\"\" test-value\r\nping\r\n"),
            error("Protocol error: unbalanced quotes in request"));
  EXPECT_EQ(parse_whole("echo \"abc\r\n"), error("Protocol error: unbalanced quotes in request"));

  const std::string long_line(64 * 1024 + 1, 'A');
  EXPECT_EQ(parse_whole(long_line), error("Protocol error: too big inline request"));
  EXPECT_EQ(parse_whole("*" + std::string(64 * 1024, '1')),
            error("Protocol error: too big mbulk count string"));
  EXPECT_EQ(parse_whole("*1\r\n$" + std::string(64 * 1024, '1')),
            error("Protocol error: too big bulk count string"));
}

TEST(RequestParser, ErrorsAreIndependentOfChunking) {
  for (std::string_view stream :
       {"*1\r\n$4\r\nPING\r\n*1x\r\n"sv, "*2\r\n$3\r\nGET\r\n$-5\r\n"sv, "*1\r\n:1\r\n"sv,
        "PING\r\nset \"a\"b\r\n"sv, "*1\r\n\r\n"sv}) {
    SCOPED_TRACE(stream);
    expect_chunking_independent(stream);
  }
  // With a small inline limit the "too big" cases are cheap to split everywhere.
  const ParserLimits small{.bulk_bytes_max = 16, .arguments_max = 4, .inline_bytes_max = 8};
  for (std::string_view stream :
       {"PING\r\n123456789\r\n"sv, "12345678\r\n"sv, "*123456789"sv, "*1\r\n$123456789\r\n"sv,
        "*5\r\n"sv, "*1\r\n$17\r\n"sv, "\0PING\r\nPING\r\n"sv, "*1\r\n$\0\r\n\r\n\r\n\r\n"sv}) {
    SCOPED_TRACE(stream);
    expect_chunking_independent(stream, small);
  }
}

TEST(RequestParser, LimitsAreInclusive) {
  const ParserLimits small{.bulk_bytes_max = 5, .arguments_max = 3, .inline_bytes_max = 10};
  EXPECT_EQ(parse_whole("*3\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n", small),
            requests({{"a", "b", "c"}}));
  EXPECT_EQ(parse_whole("*4\r\n", small), error("Protocol error: invalid multibulk length"));
  EXPECT_EQ(parse_whole("*1\r\n$5\r\nhello\r\n", small), requests({{"hello"}}));
  EXPECT_EQ(parse_whole("*1\r\n$6\r\n", small), error("Protocol error: invalid bulk length"));
  // inline_bytes_max counts the line's bytes before its '\n' (the '\r' included).
  EXPECT_EQ(parse_whole("echo abcd\r\n", small), requests({{"echo", "abcd"}}));
  EXPECT_EQ(parse_whole("echo abcde\r\n", small), error("Protocol error: too big inline request"));
  EXPECT_EQ(parse_whole("echo abcde\n", small), requests({{"echo", "abcde"}}));
  EXPECT_EQ(parse_whole("echo abcdef\n", small), error("Protocol error: too big inline request"));
  // An unfinished line within the limit waits; one past it fails.
  EXPECT_EQ(parse_whole("0123456789", small), requests({}, /*idle=*/false));
  EXPECT_EQ(parse_whole("0123456789A", small), error("Protocol error: too big inline request"));
  RequestParser parser(small);
  parser.set_limits(ParserLimits{});
  EXPECT_EQ(parser.limits().bulk_bytes_max, ParserLimits{}.bulk_bytes_max);
}

TEST(RequestParser, RedisSkipsTheBytesAfterAPayloadUnchecked) {
  EXPECT_EQ(parse_whole("*1\r\n$4\r\nPINGXY*1\r\n$4\r\nPING\r\n"), requests({{"PING"}, {"PING"}}));
  EXPECT_EQ(parse_whole("*1\rX$4\rYPING\r\n"), requests({{"PING"}}));
  expect_chunking_independent("*1\rX$4\rYPINGZZ*1\r\n$1\r\nx\r\n");
}

TEST(RequestParser, NulBeforeALineEndHidesItLikeRedis) {
  const ParserLimits small{.bulk_bytes_max = 100, .arguments_max = 10, .inline_bytes_max = 16};
  // Redis's strchr stops at the NUL: the request never ends, until it is too big.
  EXPECT_EQ(parse_whole("\0PING\r\n"s, small), requests({}, /*idle=*/false));
  EXPECT_EQ(parse_whole("\0PING\r\nPING\r\nPING\r\n"s, small),
            error("Protocol error: too big inline request"));
  EXPECT_EQ(parse_whole("*\0\r\n*1\r\n$4\r\nPING\r\n"s, small),
            error("Protocol error: too big mbulk count string"));
  EXPECT_EQ(parse_whole("*1\r\n$\0\r\n$4\r\nPING\r\n$4\r\nPING\r\n"s, small),
            error("Protocol error: too big bulk count string"));
  // A NUL inside a bulk payload, or right after a header's '\r', is just data.
  EXPECT_EQ(parse_whole("*2\r\n$4\r\nECHO\r\n$3\r\na\0b\r\n"s, small),
            requests({{"ECHO", "a\0b"s}}));
  EXPECT_EQ(parse_whole("*1\r\0$1\r\0x\r\n"s, small), requests({{"x"}}));
  // Redis's own desync regression test: a NUL, then endless short lines.
  std::string stream = "\0"s;
  for (int i = 0; i < 70; ++i) stream += std::string(1023, 'A') + "\n";
  EXPECT_EQ(parse_whole(stream), error("Protocol error: too big inline request"));
  EXPECT_EQ(parse_whole("*" + stream), error("Protocol error: too big mbulk count string"));
  EXPECT_EQ(parse_whole("*1\r\n$" + stream), error("Protocol error: too big bulk count string"));
}

std::string all_bytes() {
  std::string bytes;
  for (int i = 0; i < 256; ++i) bytes.push_back(static_cast<char>(i));
  return bytes;
}

TEST(RequestParser, BinarySafeBulkPayloads) {
  const std::string bytes = all_bytes();
  const std::string payload = bytes + "\r\n" + bytes + "\r\n*1\r\n$3\r\n";
  const std::string stream = "*3\r\n$3\r\nSET\r\n$3\r\nk\r\n\r\n$" +
                             std::to_string(payload.size()) + "\r\n" + payload + "\r\n";
  EXPECT_EQ(parse_whole(stream), requests({{"SET", "k\r\n", payload}}));
  expect_chunking_independent(stream);
}

TEST(RequestParser, LargeValueInSmallChunks) {
  const size_t size = 8 * 1024 * 1024;
  std::string value(size, '\0');
  for (size_t i = 0; i < size; ++i) value[i] = static_cast<char>(i * 131 + 7);
  const std::string stream =
      "*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$" + std::to_string(size) + "\r\n" + value + "\r\n";
  std::vector<std::string_view> chunks;
  const std::string_view view = stream;
  for (size_t i = 0; i < view.size(); i += 1000) chunks.push_back(view.substr(i, 1000));
  const StreamResult result = parse_chunks(chunks);
  ASSERT_EQ(result.requests.size(), 1u);
  EXPECT_TRUE(result.requests[0][2] == value);
  EXPECT_TRUE(result.idle);
}

TEST(RequestParser, InlineRequests) {
  EXPECT_EQ(parse_whole("  SET  k   \"hello world\"  \r\n"),
            requests({{"SET", "k", "hello world"}}));
  EXPECT_EQ(parse_whole("PING\n"), requests({{"PING"}}));
  EXPECT_EQ(parse_whole("PING\r\r\n"), requests({{"PING"}}));  // only the last '\r' is dropped
  EXPECT_EQ(parse_whole("\r\n\n   \r\nPING\n"), requests({{}, {}, {}, {"PING"}}));
  EXPECT_EQ(parse_whole("\n"), requests({{}}));
  expect_chunking_independent("echo 'it\\'s' \"a\\x41\\n\"\r\nGET k\nPING");
}

TEST(RequestParser, UsingAFailedParserIsABug) {
  RequestParser parser;
  Args args;
  ASSERT_EQ(parser.parse("*x\r\n", args).state, ParseState::kError);
  EXPECT_DEATH((void)parser.parse("PING\r\n", args), "protocol error");
}

Args split(std::string_view line) {
  Args args = {"leftover"};
  EXPECT_TRUE(split_inline(line, args)) << line;
  return args;
}

bool splits(std::string_view line) {
  Args args;
  return split_inline(line, args);
}

TEST(SplitInline, FollowsSdssplitargs) {
  EXPECT_EQ(split(""), Args{});
  EXPECT_EQ(split(" \t \v\f "), Args{});
  EXPECT_EQ(split("a b\tc"), (Args{"a", "b", "c"}));
  EXPECT_EQ(split("a\vb"), Args{"a\vb"});  // \v and \f end no unquoted word
  EXPECT_EQ(split("\"\""), Args{""});
  EXPECT_EQ(split("''"), Args{""});
  EXPECT_EQ(split("foo\"bar baz\""), Args{"foobar baz"});  // a quote may open mid-word
  EXPECT_EQ(split("\"\\n\\r\\t\\b\\a\\\\\\\"\\q\""), Args{"\n\r\t\b\a\\\"q"});
  EXPECT_EQ(split("\"\\x41\\x4g\\xZZ\\x7e\""), Args{"Ax4gxZZ~"});
  EXPECT_EQ(split("\"\\x00\\xff\""), Args{"\0\xff"s});
  EXPECT_EQ(split("'a\\'b' 'c\\nd'"), (Args{"a'b", "c\\nd"}));  // single quotes: only \'
  EXPECT_EQ(split("a\\nb"), Args{"a\\nb"});                      // unquoted backslash is literal
  EXPECT_EQ(split("\"a\" 'b'\t\"c\""), (Args{"a", "b", "c"}));
  EXPECT_EQ(split("\xff\x80 x"), (Args{"\xff\x80", "x"}));  // high bytes are not spaces
  EXPECT_EQ(split("a b\0c d"s), (Args{"a", "b"}));           // a C string ends at NUL
}

TEST(SplitInline, UnbalancedQuotes) {
  EXPECT_FALSE(splits("\"abc"));
  EXPECT_FALSE(splits("'abc"));
  EXPECT_FALSE(splits("\"a\"b"));
  EXPECT_FALSE(splits("'a'b"));
  EXPECT_FALSE(splits("\"abc\\\""));
  EXPECT_FALSE(splits("\"abc\\"));
  EXPECT_FALSE(splits("'abc\\'"));
  EXPECT_FALSE(splits("\"ab\0c\""s));
}

}  // namespace
}  // namespace cairn::resp
