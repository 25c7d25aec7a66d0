// Stream commands on a real LocalKeyspace with a hand-moved clock: what a differential test
// against redis-server cannot show (IDs never go backwards when the clock steps back, a stream
// emptied by XDEL still exists, the blocking request XREAD makes, "$" resolved for the retry).
#include <gtest/gtest.h>

#include <string>

#include "commands/data_test_fixture.h"
#include "commands/parse.h"

namespace cairn::commands {
namespace {

using testing::DataCommandTest;
using testing::bulk;
using testing::integer;

class StreamCommandTest : public DataCommandTest {
 protected:
  void SetUp() override {
    DataCommandTest::SetUp();
    register_stream_commands(table_);
  }
};

TEST_F(StreamCommandTest, AutoIdsNeverGoBackwardsWhenTheClockSteps) {
  const std::string first = std::to_string(kStartMs) + "-0";
  EXPECT_EQ(run({"xadd", "s", "*", "f", "v"}), bulk(first));
  EXPECT_EQ(run({"xadd", "s", "*", "f", "v"}), bulk(std::to_string(kStartMs) + "-1"));
  advance_ms(-5000);  // the wall clock steps back (or a new leader's clock is behind)
  EXPECT_EQ(run({"xadd", "s", "*", "f", "v"}), bulk(std::to_string(kStartMs) + "-2"));
  advance_ms(10000);
  EXPECT_EQ(run({"xadd", "s", "*", "f", "v"}), bulk(std::to_string(kStartMs + 5000) + "-0"));
  EXPECT_EQ(run({"xlen", "s"}), integer(4));
  // Explicit IDs below the last one are refused.
  EXPECT_EQ(run({"xadd", "s", first, "f", "v"}),
            "-ERR The ID specified in XADD is equal or smaller than the target stream top "
            "item\r\n");
}

TEST_F(StreamCommandTest, EmptiedStreamStillExistsAndKeepsItsLastId) {
  EXPECT_EQ(run({"xadd", "s", "5-1", "f", "v"}), bulk("5-1"));
  EXPECT_EQ(run({"xdel", "s", "5-1"}), integer(1));
  EXPECT_EQ(run({"exists", "s"}), integer(1));
  EXPECT_EQ(run({"type", "s"}), "+stream\r\n");
  EXPECT_EQ(run({"xlen", "s"}), integer(0));
  EXPECT_EQ(run({"xadd", "s", "5-1", "f", "v"}),
            "-ERR The ID specified in XADD is equal or smaller than the target stream top "
            "item\r\n");
  EXPECT_EQ(run({"xadd", "s", "5-*", "f", "v"}), bulk("5-2"));
  EXPECT_EQ(run({"del", "s"}), integer(1));
  EXPECT_EQ(run({"exists", "s"}), integer(0));
  EXPECT_EQ(run({"xadd", "s", "1-1", "f", "v"}), bulk("1-1"));
}

TEST_F(StreamCommandTest, XreadBlockAsksToWaitWithDollarResolved) {
  session_.blocking_allowed = true;
  EXPECT_EQ(run({"xadd", "s", "7-0", "f", "v"}), bulk("7-0"));
  std::vector<std::string> args = {"xread", "block", "100", "streams", "s", "$"};
  std::string out;
  resp::ReplyWriter writer(&out, 2);
  Session session = session_;
  CommandContext context{args, writer, session, *keyspace_, server_};
  table_.find("xread")->handler(context);
  EXPECT_EQ(out, "*-1\r\n");
  ASSERT_TRUE(session.block.has_value());
  EXPECT_EQ(session.block->keys, std::vector<std::string>{"s"});
  EXPECT_EQ(session.block->deadline_ms, kStartMs + 100);
  EXPECT_EQ(args.back(), "7-0");  // the retry reads after the ID "$" meant at first
}

TEST_F(StreamCommandTest, WrongTypeBothWays) {
  EXPECT_EQ(run({"set", "k", "v"}), testing::kOk);
  EXPECT_EQ(run({"xadd", "k", "*", "f", "v"}), testing::error(kErrWrongType));
  EXPECT_EQ(run({"xlen", "k"}), testing::error(kErrWrongType));
  EXPECT_EQ(run({"xadd", "s", "1-1", "f", "v"}), bulk("1-1"));
  EXPECT_EQ(run({"get", "s"}), testing::error(kErrWrongType));
}

}  // namespace
}  // namespace cairn::commands
