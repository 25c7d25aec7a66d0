// Tracking: default mode invalidates once and forgets, BCAST matches prefixes, NOLOOP skips the
// writer, OPTIN/OPTOUT follow CLIENT CACHING for one command, the table limit evicts the oldest
// key with an invalidation, and REDIRECT sends to the target.
#include "server/tracking.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "commands/command.h"

namespace cairn::server {
namespace {

struct Sent {
  uint64_t to;
  bool redirected;
  std::string resp3;
};

class TrackingTest : public ::testing::Test {
 protected:
  Tracking tracking{[this](uint64_t id, bool redirected,
                           std::shared_ptr<const PubSubMessage> message) {
                      sent.push_back({id, redirected, message->resp3});
                    },
                    [](uint64_t id) { return id < 100; }};
  std::vector<Sent> sent;

  std::string run(uint64_t id, std::vector<std::string> args) {
    commands::Session session;
    session.id = id;
    std::string out;
    resp::ReplyWriter reply(&out, 3);
    args.insert(args.begin(), "client");
    tracking.command(session, args, reply);
    return out;
  }
  void read(uint64_t id, std::vector<std::string> keys, std::string name = "get") {
    commands::Session session;
    session.id = id;
    commands::CommandSpec spec;
    spec.name = name;
    spec.flags = commands::kReadOnly;
    tracking.before_command(session, spec, keys);
  }
  static std::string push(const std::string& key) {
    return ">2\r\n$10\r\ninvalidate\r\n*1\r\n$" + std::to_string(key.size()) + "\r\n" + key +
           "\r\n";
  }
};

TEST_F(TrackingTest, DefaultModeInvalidatesOnceAndForgets) {
  EXPECT_EQ(run(1, {"tracking", "on"}), "+OK\r\n");
  EXPECT_TRUE(tracking.active());
  read(1, {"a", "b"});
  tracking.invalidate(2, {"a"});
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].to, 1u);
  EXPECT_EQ(sent[0].resp3, push("a"));
  tracking.invalidate(2, {"a"});
  EXPECT_EQ(sent.size(), 1u);
  EXPECT_EQ(tracking.tracked_keys(), 1u);
  EXPECT_EQ(run(1, {"tracking", "off"}), "+OK\r\n");
  EXPECT_FALSE(tracking.active());
  EXPECT_EQ(tracking.tracked_keys(), 0u);
}

TEST_F(TrackingTest, BcastPrefixesAndNoloop) {
  EXPECT_EQ(run(1, {"tracking", "on", "bcast", "prefix", "u:", "noloop"}), "+OK\r\n");
  tracking.invalidate(2, {"u:1", "x", "u:2"});
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].resp3, ">2\r\n$10\r\ninvalidate\r\n*2\r\n$3\r\nu:1\r\n$3\r\nu:2\r\n");
  tracking.invalidate(1, {"u:3"});
  EXPECT_EQ(sent.size(), 1u);
  EXPECT_EQ(run(1, {"tracking", "on", "bcast", "prefix", "u"}),
            "-ERR Prefix 'u' overlaps with an existing prefix 'u:'. Prefixes for a single client "
            "must not overlap.\r\n");
}

TEST_F(TrackingTest, OptinLastsOneCommand) {
  EXPECT_EQ(run(1, {"tracking", "on", "optin"}), "+OK\r\n");
  read(1, {"a"});
  EXPECT_EQ(run(1, {"caching", "yes"}), "+OK\r\n");
  read(1, {"b"});
  read(1, {"c"});
  tracking.invalidate(2, {"a", "b", "c"});
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].resp3, push("b"));
}

TEST_F(TrackingTest, TableLimitEvictsTheOldestWithAnInvalidation) {
  tracking.set_max_keys(2);
  EXPECT_EQ(run(1, {"tracking", "on"}), "+OK\r\n");
  read(1, {"k1"});
  read(1, {"k2"});
  read(1, {"k3"});
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].resp3, push("k1"));
  EXPECT_EQ(tracking.tracked_keys(), 2u);
}

TEST_F(TrackingTest, RedirectAndFlush) {
  EXPECT_EQ(run(1, {"tracking", "on", "redirect", "500"}),
            "-ERR The client ID you want redirect to does not exist\r\n");
  EXPECT_EQ(run(1, {"tracking", "on", "redirect", "7"}), "+OK\r\n");
  EXPECT_EQ(run(1, {"getredir"}), ":7\r\n");
  tracking.flushed(0);
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].to, 7u);
  EXPECT_TRUE(sent[0].redirected);
  EXPECT_EQ(sent[0].resp3, ">2\r\n$10\r\ninvalidate\r\n_\r\n");
}

}  // namespace
}  // namespace cairn::server
