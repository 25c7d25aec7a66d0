#include "topology/consistency.h"

#include <gtest/gtest.h>

#include <optional>
#include <string>

namespace cairn::topology {
namespace {

using Level = ConsistencyLevel;

TEST(Consistency, ParsesNamesCaseInsensitivelyAndNumbers) {
  struct Case {
    std::string text;
    Level level;
  };
  const Case cases[] = {
      {"ONE", Level::one()},       {"one", Level::one()},     {"One", Level::one()},
      {"two", Level::two()},       {"THREE", Level::three()}, {"quorum", Level::quorum()},
      {"QuOrUm", Level::quorum()}, {"ALL", Level::all()},     {"all", Level::all()},
      {"1", Level::count(1)},      {"2", Level::count(2)},    {"15", Level::count(15)},
      {"007", Level::count(7)},
  };
  for (const Case& c : cases) {
    Result<Level> parsed = parse_consistency(c.text);
    ASSERT_TRUE(parsed.is_ok()) << c.text << ": " << parsed.status().to_string();
    EXPECT_EQ(parsed.value(), c.level) << c.text;
  }
}

TEST(Consistency, RejectsUnknownLevelsClearly) {
  struct Case {
    std::string text;
    std::string message;
  };
  const Case cases[] = {
      {"", "unknown consistency level ''"},
      {"QUORUMS",
       "unknown consistency level 'QUORUMS' (expected ONE, TWO, THREE, QUORUM, ALL "
       "or a number 1..15)"},
      {"local_quorum", "unknown consistency level 'local_quorum'"},
      {"0", "consistency level 0 is out of range: a number must be 1..15"},
      {"16", "out of range"},
      {"99999999999999999999", "out of range"},
      {"-1", "unknown consistency level '-1'"},
      {"+2", "unknown consistency level '+2'"},
      {" 2", "unknown consistency level ' 2'"},
      {"2.0", "unknown consistency level '2.0'"},
      {std::string(1000, 'x'), "unknown consistency level '" + std::string(32, 'x') + "...'"},
  };
  for (const Case& c : cases) {
    Result<Level> parsed = parse_consistency(c.text);
    ASSERT_FALSE(parsed.is_ok()) << c.text;
    EXPECT_EQ(parsed.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(parsed.status().message().find(c.message), std::string::npos)
        << parsed.status().message();
  }
}

TEST(Consistency, NamesRoundTripThroughParse) {
  for (Level level : {Level::one(), Level::two(), Level::three(), Level::quorum(), Level::all(),
                      Level::count(1), Level::count(4), Level::count(15)}) {
    const std::string name = consistency_name(level);
    Result<Level> parsed = parse_consistency(name);
    ASSERT_TRUE(parsed.is_ok()) << name;
    EXPECT_EQ(parsed.value(), level) << name;
  }
  EXPECT_EQ(consistency_name(Level::quorum()), "QUORUM");
  EXPECT_EQ(consistency_name(Level::count(3)), "3");
  EXPECT_EQ(Level(), Level::quorum());  // the cluster default
}

// The expected acknowledgements for N = 1..7; nullopt means "cannot satisfy".
TEST(Consistency, RequiredAcknowledgementsForEveryLevelAndSize) {
  struct Row {
    Level level;
    std::optional<uint32_t> needed[7];  // index N - 1
  };
  const std::optional<uint32_t> x;  // cannot satisfy
  // clang-format off
  const Row rows[] = {  //  N = 1  2  3  4  5  6  7
      {Level::one(),        {1, 1, 1, 1, 1, 1, 1}},
      {Level::two(),        {x, 2, 2, 2, 2, 2, 2}},
      {Level::three(),      {x, x, 3, 3, 3, 3, 3}},
      {Level::quorum(),     {1, 2, 2, 3, 3, 4, 4}},
      {Level::all(),        {1, 2, 3, 4, 5, 6, 7}},
      {Level::count(1),     {1, 1, 1, 1, 1, 1, 1}},
      {Level::count(4),     {x, x, x, 4, 4, 4, 4}},
      {Level::count(7),     {x, x, x, x, x, x, 7}},
  };
  // clang-format on
  for (const Row& row : rows) {
    for (uint32_t n = 1; n <= 7; ++n) {
      Result<uint32_t> needed = required(row.level, n);
      const std::string where = consistency_name(row.level) + " N=" + std::to_string(n);
      if (row.needed[n - 1].has_value()) {
        ASSERT_TRUE(needed.is_ok()) << where << ": " << needed.status().to_string();
        EXPECT_EQ(needed.value(), *row.needed[n - 1]) << where;
      } else {
        ASSERT_FALSE(needed.is_ok()) << where;
        EXPECT_NE(needed.status().message().find("cannot satisfy consistency"), std::string::npos)
            << needed.status().message();
      }
    }
  }
  EXPECT_EQ(required(Level::two(), 1).status().message(),
            "cannot satisfy consistency TWO with 1 voting replica");
  EXPECT_EQ(required(Level::count(5), 3).status().message(),
            "cannot satisfy consistency 5 with 3 voting replicas");
  EXPECT_FALSE(required(Level::one(), 0).is_ok());
}

// Properties for every N: quorums intersect, levels are ordered, strong() is R + W > N.
TEST(Consistency, QuorumMathProperties) {
  const Level levels[] = {Level::one(), Level::two(),    Level::three(), Level::quorum(),
                          Level::all(), Level::count(2), Level::count(5)};
  for (uint32_t n = 1; n <= 7; ++n) {
    const uint32_t quorum = required(Level::quorum(), n).value();
    EXPECT_GT(2 * quorum, n) << "two quorums must intersect, N=" << n;
    EXPECT_LE(quorum, n);
    EXPECT_LE(required(Level::one(), n).value(), quorum);
    EXPECT_GE(required(Level::all(), n).value(), quorum);
    EXPECT_TRUE(strong(Level::quorum(), Level::quorum(), n).value()) << n;
    EXPECT_TRUE(strong(Level::one(), Level::all(), n).value()) << n;
    EXPECT_TRUE(strong(Level::all(), Level::one(), n).value()) << n;
    EXPECT_EQ(strong(Level::one(), Level::one(), n).value(), n == 1) << n;
    for (Level read : levels) {
      for (Level write : levels) {
        Result<uint32_t> r = required(read, n);
        Result<uint32_t> w = required(write, n);
        Result<bool> is_strong = strong(read, write, n);
        ASSERT_EQ(is_strong.is_ok(), r.is_ok() && w.is_ok());
        if (is_strong.is_ok()) {
          EXPECT_EQ(is_strong.value(), r.value() + w.value() > n);
        }
      }
    }
  }
  EXPECT_FALSE(strong(Level::one(), Level::three(), 2).is_ok());
  EXPECT_TRUE(strong(Level::two(), Level::two(), 3).value());
  EXPECT_FALSE(strong(Level::two(), Level::one(), 3).value());
}

}  // namespace
}  // namespace cairn::topology
