#include "resp/reply_parser.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "resp/parser.h"
#include "resp/writer.h"

namespace cairn::resp {
namespace {

using Type = Value::Type;

// A readable, complete rendering of a Value, so tests compare whole trees with one EXPECT_EQ.
std::string describe(const Value& v) {
  std::string s;
  switch (v.type) {
    case Type::kSimple:
      return "simple(" + v.str + ")";
    case Type::kError:
      return "error(" + v.str + ")";
    case Type::kInteger:
      return "int(" + std::to_string(v.integer) + ")";
    case Type::kBulk:
      return "bulk(" + v.str + ")";
    case Type::kNull:
      return "null";
    case Type::kDouble:
      return "double(" + v.str + ")";
    case Type::kBoolean:
      return "bool(" + std::to_string(v.integer) + ")";
    case Type::kVerbatim:
      return "verbatim(" + v.str + ")";
    case Type::kBigNumber:
      return "big(" + v.str + ")";
    case Type::kArray:
      s = "array[";
      break;
    case Type::kMap:
      s = "map[";
      break;
    case Type::kSet:
      s = "set[";
      break;
    case Type::kPush:
      s = "push[";
      break;
  }
  for (size_t i = 0; i < v.elements.size(); ++i) {
    if (i > 0) s += ",";
    s += describe(v.elements[i]);
  }
  return s + "]";
}

struct Parsed {
  std::vector<std::string> values;  // describe() of each reply
  std::vector<std::string> raws;
  std::string error;
  bool idle = true;
  bool operator==(const Parsed&) const = default;
};

// Feeds `stream` in chunks of the given sizes (the last chunk takes the rest).
Parsed parse_chunks(std::string_view stream, const std::vector<size_t>& chunk_sizes,
                    ReplyLimits limits = {}) {
  ReplyParser parser(limits);
  Parsed result;
  size_t position = 0;
  size_t chunk_index = 0;
  while (position < stream.size()) {
    size_t size = stream.size() - position;
    if (chunk_index < chunk_sizes.size()) size = std::min(size, chunk_sizes[chunk_index++]);
    std::string_view chunk = stream.substr(position, size);
    position += size;
    while (true) {
      Value value;
      std::string raw;
      const ParseOutcome outcome = parser.parse(chunk, value, &raw);
      EXPECT_LE(outcome.consumed, chunk.size());
      if (outcome.state == ParseState::kError) {
        EXPECT_FALSE(outcome.error.empty());
        result.error = outcome.error;
        result.idle = false;
        return result;
      }
      if (outcome.state == ParseState::kNeedMore) {
        EXPECT_EQ(outcome.consumed, chunk.size());
        break;
      }
      EXPECT_GT(outcome.consumed, 0u);
      EXPECT_TRUE(parser.idle());
      chunk.remove_prefix(outcome.consumed);
      result.values.push_back(describe(value));
      result.raws.push_back(raw);
    }
  }
  result.idle = parser.idle();
  return result;
}

Parsed parse_whole(std::string_view stream, ReplyLimits limits = {}) {
  return parse_chunks(stream, {}, limits);
}

std::string parse_one(std::string_view wire) {
  const Parsed p = parse_whole(wire);
  EXPECT_EQ(p.error, "") << wire;
  EXPECT_EQ(p.values.size(), 1u) << wire;
  EXPECT_TRUE(p.idle);
  if (p.values.size() != 1) return "<none>";
  EXPECT_EQ(p.raws[0], wire);
  return p.values[0];
}

std::string parse_error(std::string_view wire, ReplyLimits limits = {}) {
  const Parsed p = parse_whole(wire, limits);
  EXPECT_FALSE(p.error.empty()) << wire;
  return p.error;
}

TEST(ReplyParser, NullArrayIsMarkedApartFromNullBulk) {
  // A machine relaying a reply (CAIRN.FORWARD) must answer *-1 where the leader did.
  ReplyParser parser;
  Value value;
  ASSERT_EQ(parser.parse("*-1\r\n", value).state, ParseState::kComplete);
  EXPECT_EQ(value.type, Value::Type::kNull);
  EXPECT_EQ(value.integer, 1);
  ASSERT_EQ(parser.parse("$-1\r\n", value).state, ParseState::kComplete);
  EXPECT_EQ(value.type, Value::Type::kNull);
  EXPECT_EQ(value.integer, 0);
}

TEST(ReplyParser, Scalars) {
  EXPECT_EQ(parse_one("+OK\r\n"), "simple(OK)");
  EXPECT_EQ(parse_one("+\r\n"), "simple()");
  EXPECT_EQ(parse_one("-ERR bad thing\r\n"), "error(ERR bad thing)");
  EXPECT_EQ(parse_one(":0\r\n"), "int(0)");
  EXPECT_EQ(parse_one(":-42\r\n"), "int(-42)");
  EXPECT_EQ(parse_one(":9223372036854775807\r\n"), "int(9223372036854775807)");
  EXPECT_EQ(parse_one(":-9223372036854775808\r\n"), "int(-9223372036854775808)");
  EXPECT_EQ(parse_one("$5\r\nhello\r\n"), "bulk(hello)");
  EXPECT_EQ(parse_one("$0\r\n\r\n"), "bulk()");
  EXPECT_EQ(parse_one("$-1\r\n"), "null");
  EXPECT_EQ(parse_one("*-1\r\n"), "null");
  EXPECT_EQ(parse_one("_\r\n"), "null");
  EXPECT_EQ(parse_one(",3.14\r\n"), "double(3.14)");
  EXPECT_EQ(parse_one(",-inf\r\n"), "double(-inf)");
  EXPECT_EQ(parse_one("#t\r\n"), "bool(1)");
  EXPECT_EQ(parse_one("#f\r\n"), "bool(0)");
  EXPECT_EQ(parse_one("=15\r\ntxt:Some string\r\n"), "verbatim(Some string)");
  EXPECT_EQ(parse_one("(3492890328409238509324850943850943825024385\r\n"),
            "big(3492890328409238509324850943850943825024385)");
  EXPECT_EQ(parse_one("(-12\r\n"), "big(-12)");
  EXPECT_EQ(parse_one("!21\r\nSYNTAX invalid syntax\r\n"), "error(SYNTAX invalid syntax)");
}

TEST(ReplyParser, BinaryBulkKeepsEveryByte) {
  const std::string payload("a\r\nb\0c\r", 7);
  Value value;
  ReplyParser parser;
  const std::string wire = "$7\r\n" + payload + "\r\n";
  const ParseOutcome outcome = parser.parse(wire, value);
  ASSERT_EQ(outcome.state, ParseState::kComplete);
  EXPECT_EQ(outcome.consumed, wire.size());
  EXPECT_EQ(value.type, Type::kBulk);
  EXPECT_EQ(value.str, payload);
}

TEST(ReplyParser, Aggregates) {
  EXPECT_EQ(parse_one("*0\r\n"), "array[]");
  EXPECT_EQ(parse_one("*2\r\n$1\r\na\r\n:1\r\n"), "array[bulk(a),int(1)]");
  EXPECT_EQ(parse_one("%2\r\n+k1\r\n:1\r\n+k2\r\n#t\r\n"),
            "map[simple(k1),int(1),simple(k2),bool(1)]");
  EXPECT_EQ(parse_one("%0\r\n"), "map[]");
  EXPECT_EQ(parse_one("~3\r\n:1\r\n:2\r\n:3\r\n"), "set[int(1),int(2),int(3)]");
  EXPECT_EQ(parse_one(">3\r\n+message\r\n+chan\r\n$2\r\nhi\r\n"),
            "push[simple(message),simple(chan),bulk(hi)]");
  EXPECT_EQ(parse_one("*3\r\n*2\r\n:1\r\n*0\r\n%1\r\n$1\r\nk\r\n*1\r\n_\r\n$-1\r\n"),
            "array[array[int(1),array[]],map[bulk(k),array[null]],null]");
  EXPECT_EQ(parse_one("*1\r\n*1\r\n*1\r\n*1\r\n-E\r\n"), "array[array[array[array[error(E)]]]]");
}

TEST(ReplyParser, AttributesAreSkippedButKeptInRaw) {
  EXPECT_EQ(parse_one("|1\r\n+key-popularity\r\n%1\r\n$1\r\na\r\n,0.19\r\n*2\r\n:2\r\n:9\r\n"),
            "array[int(2),int(9)]");
  EXPECT_EQ(parse_one("*2\r\n|1\r\n+ttl\r\n:3600\r\n:1\r\n:2\r\n"), "array[int(1),int(2)]");
  EXPECT_EQ(parse_one("|0\r\n+OK\r\n"), "simple(OK)");
}

TEST(ReplyParser, PipelinedRepliesAndRawBytes) {
  const std::vector<std::string> replies = {
      "+OK\r\n", "$3\r\nfoo\r\n",     "*2\r\n$1\r\nx\r\n%1\r\n+a\r\n(7\r\n",
      "_\r\n",   "-WRONGTYPE no\r\n", "=7\r\nmkd:abc\r\n",
      ":5\r\n"};
  std::string stream;
  for (const auto& r : replies) stream += r;
  const Parsed p = parse_whole(stream);
  EXPECT_EQ(p.error, "");
  EXPECT_EQ(p.raws, replies);
  EXPECT_TRUE(p.idle);
}

// The result must not depend on how the bytes are split: every single split point, byte by byte,
// and a few random chunkings.
TEST(ReplyParser, ChunkedAtEveryBoundary) {
  const std::string stream =
      "+OK\r\n$5\r\nhe\r\no\r\n*3\r\n:1\r\n*2\r\n,1.5\r\n#f\r\n$-1\r\n"
      "%1\r\n=8\r\ntxt:abcd\r\n~2\r\n(12\r\n_\r\n|1\r\n+a\r\n+b\r\n>1\r\n!3\r\nERR\r\n-E x\r\n";
  const Parsed whole = parse_whole(stream);
  ASSERT_EQ(whole.error, "");
  ASSERT_EQ(whole.values.size(), 6u);
  for (size_t split = 1; split < stream.size(); ++split) {
    EXPECT_EQ(parse_chunks(stream, {split}), whole) << "split at " << split;
  }
  EXPECT_EQ(parse_chunks(stream, std::vector<size_t>(stream.size(), 1)), whole);
  std::mt19937 random(7);
  for (int round = 0; round < 200; ++round) {
    std::vector<size_t> sizes;
    for (size_t total = 0; total < stream.size();) {
      sizes.push_back(1 + random() % 9);
      total += sizes.back();
    }
    EXPECT_EQ(parse_chunks(stream, sizes), whole);
  }
}

TEST(ReplyParser, UnfinishedReplyIsNotIdle) {
  ReplyParser parser;
  Value value;
  EXPECT_EQ(parser.parse("", value).state, ParseState::kNeedMore);
  EXPECT_TRUE(parser.idle());
  EXPECT_EQ(parser.parse("*2\r\n:1\r\n", value).state, ParseState::kNeedMore);
  EXPECT_FALSE(parser.idle());
  std::string raw;
  const ParseOutcome outcome = parser.parse(":2\r\n+next\r\n", value, &raw);
  ASSERT_EQ(outcome.state, ParseState::kComplete);
  EXPECT_EQ(outcome.consumed, 4u);
  EXPECT_EQ(raw, "*2\r\n:1\r\n:2\r\n");
  EXPECT_EQ(describe(value), "array[int(1),int(2)]");
  EXPECT_TRUE(parser.idle());
}

// A large bulk arriving in small reads is scanned once: 16 MB in 4 KB reads must take about as
// long as copying it, not quadratic time.
TEST(ReplyParser, LargeBulkInSmallChunksIsLinear) {
  const size_t size = 16 * 1024 * 1024;
  std::string wire = "$" + std::to_string(size) + "\r\n" + std::string(size, 'v') + "\r\n+OK\r\n";
  ReplyParser parser;
  Value value;
  const auto start = std::chrono::steady_clock::now();
  size_t position = 0;
  ParseOutcome outcome{ParseState::kNeedMore, 0, {}};
  while (outcome.state == ParseState::kNeedMore) {
    const std::string_view chunk = std::string_view(wire).substr(position, 4096);
    outcome = parser.parse(chunk, value);
    position += outcome.consumed;
  }
  const auto elapsed = std::chrono::steady_clock::now() - start;
  ASSERT_EQ(outcome.state, ParseState::kComplete);
  EXPECT_EQ(value.str.size(), size);
  EXPECT_EQ(position, wire.size() - 5);
  EXPECT_LT(elapsed, std::chrono::seconds(2));
  // A long simple string line arriving byte by byte is not rescanned either.
  std::string line = "+" + std::string(200'000, 'x') + "\r\n";
  ReplyParser line_parser;
  const auto line_start = std::chrono::steady_clock::now();
  for (size_t i = 0; i < line.size(); ++i) {
    outcome = line_parser.parse(std::string_view(line).substr(i, 1), value);
  }
  EXPECT_LT(std::chrono::steady_clock::now() - line_start, std::chrono::seconds(2));
  ASSERT_EQ(outcome.state, ParseState::kComplete);
  EXPECT_EQ(value.str.size(), 200'000u);
}

TEST(ReplyParser, Limits) {
  const ReplyLimits limits{.bulk_bytes_max = 8, .elements_max = 4, .depth_max = 3};
  EXPECT_EQ(parse_whole("$8\r\n12345678\r\n", limits).error, "");
  EXPECT_NE(parse_error("$9\r\n", limits), "");  // refused at the header, before the payload
  EXPECT_NE(parse_error("=9\r\n", limits), "");
  EXPECT_NE(parse_error("+123456789\r\n", limits), "");
  EXPECT_NE(parse_error("-123456789012", limits), "");  // too long even before its end
  EXPECT_EQ(parse_whole("*4\r\n:1\r\n:1\r\n:1\r\n:1\r\n", limits).error, "");
  EXPECT_NE(parse_error("*5\r\n", limits), "");
  EXPECT_NE(parse_error("~5\r\n", limits), "");
  EXPECT_NE(parse_error("%3\r\n", limits), "");  // six elements
  EXPECT_EQ(parse_whole("%2\r\n:1\r\n:1\r\n:1\r\n:1\r\n", limits).error, "");
  EXPECT_EQ(parse_whole("*1\r\n*1\r\n*1\r\n:1\r\n", limits).error, "");
  EXPECT_NE(parse_error("*1\r\n*1\r\n*1\r\n*1\r\n", limits), "");
  EXPECT_NE(parse_error("*1\r\n*1\r\n*1\r\n|1\r\n", limits), "");
  // Defaults refuse absurd sizes at the header without allocating them.
  EXPECT_NE(parse_error("$999999999999\r\n"), "");
  EXPECT_NE(parse_error("*999999999999\r\n"), "");
}

TEST(ReplyParser, GarbageIsAnErrorAndSticks) {
  EXPECT_NE(parse_error("hello\r\n"), "");
  EXPECT_NE(parse_error("\r\n"), "");
  EXPECT_NE(parse_error(":12a\r\n"), "");
  EXPECT_NE(parse_error(":\r\n"), "");
  EXPECT_NE(parse_error(":99999999999999999999\r\n"), "");
  EXPECT_NE(parse_error("$-2\r\n"), "");
  EXPECT_NE(parse_error("$abc\r\n"), "");
  EXPECT_NE(parse_error("$3\r\nabcd\r\n"), "");
  EXPECT_NE(parse_error("%-1\r\n"), "");
  EXPECT_NE(parse_error("=-1\r\n"), "");
  EXPECT_NE(parse_error("=2\r\nab\r\n"), "");
  EXPECT_NE(parse_error("#x\r\n"), "");
  EXPECT_NE(parse_error("_x\r\n"), "");
  EXPECT_NE(parse_error(",\r\n"), "");
  EXPECT_NE(parse_error("(1x\r\n"), "");
  EXPECT_NE(parse_error("*?\r\n"), "");  // streamed aggregates are not supported
  EXPECT_NE(parse_error(":" + std::string(100, '1')), "");
  EXPECT_NE(parse_error("*2\r\n:1\r\nX"), "");

  ReplyParser parser;
  Value value;
  const ParseOutcome first = parser.parse("?", value);
  ASSERT_EQ(first.state, ParseState::kError);
  const ParseOutcome again = parser.parse("+OK\r\n", value);
  EXPECT_EQ(again.state, ParseState::kError);
  EXPECT_EQ(again.error, first.error);
}

TEST(ReplyParser, RandomBytesNeverCrash) {
  std::mt19937 random(11);
  const std::string alphabet = "+-:$*_,#(=!%~>|\r\n0123456789-tfx:";
  const ReplyLimits limits{.bulk_bytes_max = 64, .elements_max = 16, .depth_max = 4};
  for (int round = 0; round < 3000; ++round) {
    std::string stream;
    const size_t length = random() % 40;
    for (size_t i = 0; i < length; ++i) stream += alphabet[random() % alphabet.size()];
    const Parsed whole = parse_whole(stream, limits);
    EXPECT_EQ(parse_chunks(stream, std::vector<size_t>(stream.size(), 1), limits), whole) << stream;
  }
}

TEST(AppendCommand, EncodesAMultibulkTheRequestParserReads) {
  const std::vector<std::string> args = {"SET", "key", std::string("v\0\r\n", 4), ""};
  std::string wire = "x";
  append_command(wire, args);
  EXPECT_EQ(wire, std::string("x*4\r\n$3\r\nSET\r\n$3\r\nkey\r\n$4\r\nv\0\r\n\r\n$0\r\n\r\n", 39));
  RequestParser parser;
  std::vector<std::string> parsed;
  const ParseOutcome outcome = parser.parse(std::string_view(wire).substr(1), parsed);
  ASSERT_EQ(outcome.state, ParseState::kComplete);
  EXPECT_EQ(parsed, args);
}

TEST(ReplyParser, ReadsWhatTheWriterWrites) {
  for (int protocol : {2, 3}) {
    std::string wire;
    ReplyWriter writer(&wire, protocol);
    writer.map(2);
    writer.bulk("a");
    writer.double_value(1.5);
    writer.simple("b");
    writer.set(2);
    writer.boolean(true);
    writer.verbatim("text");
    const Parsed p = parse_whole(wire);
    ASSERT_EQ(p.error, "");
    ASSERT_EQ(p.raws.size(), 1u);
    EXPECT_EQ(p.raws[0], wire);
    if (protocol == 3) {
      EXPECT_EQ(p.values[0], "map[bulk(a),double(1.5),simple(b),set[bool(1),verbatim(text)]]");
    } else {
      EXPECT_EQ(p.values[0], "array[bulk(a),bulk(1.5),simple(b),array[int(1),bulk(text)]]");
    }
  }
}

}  // namespace
}  // namespace cairn::resp
