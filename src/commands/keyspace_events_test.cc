#include "commands/keyspace_events.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "commands/command_test_fakes.h"
#include "commands/data_test_fixture.h"

namespace cairn::commands {
namespace {

// Records what emit_keyspace_events() publishes.
class RecordingServer final : public testing::NullServerControl {
 public:
  uint32_t keyspace_event_flags() override { return ~0u; }
  void notify_keyspace_event(uint32_t event_class, std::string_view event,
                             std::string_view key) override {
    events.push_back(std::to_string(event_class) + " " + std::string(event) + " " +
                     std::string(key));
  }
  std::vector<std::string> events;
};

std::vector<std::string> emitted(std::vector<std::string> args, std::string_view reply) {
  RecordingServer server;
  testing::FakeKeyspace keyspace;
  Session session;
  std::string out;
  resp::ReplyWriter writer(&out);
  CommandContext context{args, writer, session, keyspace, server};
  const CommandSpec* spec = default_table().find(args[0]);
  EXPECT_NE(spec, nullptr) << args[0];
  emit_keyspace_events(context, *spec, reply);
  return server.events;
}

std::string event(uint32_t event_class, std::string_view name, std::string_view key) {
  return std::to_string(event_class) + " " + std::string(name) + " " + std::string(key);
}

TEST(KeyspaceEvents, ParsesRedisClassCharacters) {
  EXPECT_EQ(parse_keyspace_event_flags(""), 0u);
  EXPECT_EQ(parse_keyspace_event_flags("Kg"), kEventKeyspace | kEventGeneric);
  const uint32_t all = parse_keyspace_event_flags("A");
  EXPECT_EQ(all & (kEventKeyMiss | kEventNew | kEventKeyspace | kEventKeyevent), 0u);
  EXPECT_EQ(all, parse_keyspace_event_flags("g$lshzxetd"));
  EXPECT_EQ(parse_keyspace_event_flags("KEA") & kEventExpired, kEventExpired);
}

TEST(KeyspaceEvents, EventsFollowTheReply) {
  EXPECT_EQ(emitted({"set", "k", "v"}, "+OK\r\n"),
            std::vector<std::string>{event(kEventString, "set", "k")});
  EXPECT_TRUE(emitted({"set", "k", "v", "NX"}, "$-1\r\n").empty());
  EXPECT_EQ(emitted({"set", "k", "v", "GET"}, "$-1\r\n").size(), 1u);
  EXPECT_EQ(emitted({"set", "k", "v", "ex", "10"}, "+OK\r\n"),
            (std::vector<std::string>{event(kEventString, "set", "k"),
                                      event(kEventGeneric, "expire", "k")}));
  EXPECT_TRUE(emitted({"incr", "k"}, "-ERR value is not an integer or out of range\r\n").empty());
  EXPECT_EQ(emitted({"incr", "k"}, ":1\r\n"),
            std::vector<std::string>{event(kEventString, "incrby", "k")});
  EXPECT_TRUE(emitted({"del", "a", "b"}, ":0\r\n").empty());
  EXPECT_EQ(emitted({"del", "a", "b"}, ":2\r\n").size(), 2u);
  EXPECT_EQ(emitted({"mset", "a", "1", "b", "2"}, "+OK\r\n"),
            (std::vector<std::string>{event(kEventString, "set", "a"),
                                      event(kEventString, "set", "b")}));
  EXPECT_TRUE(emitted({"lpop", "l"}, "*0\r\n").empty());
  EXPECT_TRUE(emitted({"get", "k"}, "$1\r\nv\r\n").empty());  // no rule: a read
}

TEST(KeyspaceEvents, MovesAnnounceThePushBeforeThePop) {
  EXPECT_EQ(emitted({"lmove", "src", "dst", "LEFT", "RIGHT"}, "$1\r\nx\r\n"),
            (std::vector<std::string>{event(kEventList, "rpush", "dst"),
                                      event(kEventList, "lpop", "src")}));
  EXPECT_EQ(emitted({"rename", "a", "b"}, "+OK\r\n"),
            (std::vector<std::string>{event(kEventGeneric, "rename_from", "a"),
                                      event(kEventGeneric, "rename_to", "b")}));
}

}  // namespace
}  // namespace cairn::commands
