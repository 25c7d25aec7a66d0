#include "commands/command.h"

#include <gtest/gtest.h>

#include <cctype>
#include <string>
#include <vector>

#include "commands/command_test_fakes.h"

namespace cairn::commands {
namespace {

using testing::Harness;

void expect_spec_invariants(const CommandSpec& spec, bool is_subcommand) {
  SCOPED_TRACE(spec.name);
  for (char c : spec.name) EXPECT_FALSE(std::isupper(static_cast<unsigned char>(c)));
  EXPECT_NE(spec.arity, 0);
  EXPECT_TRUE(static_cast<bool>(spec.handler) || !spec.subcommands.empty());
  EXPECT_FALSE(spec.group.empty());
  EXPECT_FALSE(spec.summary.empty());
  EXPECT_FALSE(spec.since.empty());
  EXPECT_FALSE(spec.complexity.empty());
  EXPECT_EQ(spec.name.find('|') != std::string::npos, is_subcommand);
  // A container reached without its subcommand must fail the arity check unless it has a
  // handler of its own (plain COMMAND).
  if (!spec.subcommands.empty() && !spec.handler) {
    EXPECT_LE(spec.arity, -2);
  }
  // Key positions must lie within the arguments the arity allows.
  if (spec.first_key == 0) {
    EXPECT_EQ(spec.last_key, 0);
    EXPECT_EQ(spec.key_step, 0);
  } else {
    EXPECT_GT(spec.first_key, 0);
    EXPECT_GT(spec.key_step, 0);
    const int min_args = spec.arity > 0 ? spec.arity : -spec.arity;
    // Commands whose keys are optional (SUNSUBSCRIBE) say so, as in Redis.
    if ((spec.flags & kNoMandatoryKeys) == 0) {
      EXPECT_LT(spec.first_key, min_args);
    }
    if (spec.last_key > 0) {
      EXPECT_GE(spec.last_key, spec.first_key);
      EXPECT_LT(spec.last_key, min_args);
    }
    if (spec.arity > 0) {
      EXPECT_GE(spec.last_key, 0) << "fixed arity has a fixed last key";
    }
  }
  for (const CommandSpec& sub : spec.subcommands) {
    EXPECT_EQ(sub.name.rfind(spec.name + "|", 0), 0u) << sub.name;
    EXPECT_TRUE(sub.subcommands.empty());
    expect_spec_invariants(sub, true);
  }
}

TEST(CommandTable, EveryCommandIsWellFormed) {
  const CommandTable& table = default_table();
  ASSERT_FALSE(table.all().empty());
  for (const auto& [name, spec] : table.all()) {
    EXPECT_EQ(name, spec.name);
    expect_spec_invariants(spec, false);
  }
}

TEST(CommandTable, DefaultTableIsBuiltOnce) { EXPECT_EQ(&default_table(), &default_table()); }

TEST(CommandTable, FindIsCaseInsensitive) {
  const CommandTable& table = default_table();
  const CommandSpec* ping = table.find("PiNg");
  ASSERT_NE(ping, nullptr);
  EXPECT_EQ(ping->name, "ping");
  EXPECT_EQ(table.find("nosuch"), nullptr);
  const CommandSpec* client = table.find("CLIENT");
  ASSERT_NE(client, nullptr);
  const CommandSpec* setname = table.find_subcommand(*client, "SetName");
  ASSERT_NE(setname, nullptr);
  EXPECT_EQ(setname->name, "client|setname");
  EXPECT_EQ(table.find_subcommand(*client, "nosuch"), nullptr);
}

TEST(CommandTable, FlagNamesFollowRedisOrderAndSpelling) {
  EXPECT_EQ(flag_names(kFast | kNoAuth | kNoScript | kLoading | kStale | kAllowBusy),
            (std::vector<std::string_view>{"noscript", "loading", "stale", "fast", "no_auth",
                                           "allow_busy"}));
  EXPECT_EQ(flag_names(kWrite | kDenyOom | kFast),
            (std::vector<std::string_view>{"write", "denyoom", "fast"}));
  EXPECT_EQ(flag_names(kReadOnly | kRandom), (std::vector<std::string_view>{"readonly"}));
  EXPECT_TRUE(flag_names(0).empty());
}

TEST(CommandTable, KeyIndexes) {
  CommandSpec get;
  get.first_key = 1;
  get.last_key = 1;
  get.key_step = 1;
  EXPECT_EQ(key_indexes(get, 2), (std::vector<size_t>{1}));
  EXPECT_TRUE(key_indexes(get, 1).empty());
  CommandSpec mset;
  mset.first_key = 1;
  mset.last_key = -1;
  mset.key_step = 2;
  EXPECT_EQ(key_indexes(mset, 5), (std::vector<size_t>{1, 3}));
  CommandSpec del;
  del.first_key = 1;
  del.last_key = -1;
  del.key_step = 1;
  EXPECT_EQ(key_indexes(del, 4), (std::vector<size_t>{1, 2, 3}));
  EXPECT_TRUE(key_indexes(CommandSpec{}, 3).empty());
}

TEST(Dispatch, UnknownCommandListsArguments) {
  Harness h;
  EXPECT_EQ(h.run({"foo", "a", "b"}),
            "-ERR unknown command 'foo', with args beginning with: 'a' 'b' \r\n");
  EXPECT_EQ(h.run({"foo"}), "-ERR unknown command 'foo', with args beginning with: \r\n");
  EXPECT_EQ(h.run({"FOO", "", "xx"}),
            "-ERR unknown command 'FOO', with args beginning with: '' 'xx' \r\n");
  EXPECT_EQ(h.outcome.spec, nullptr);
  EXPECT_FALSE(h.outcome.wrote);
}

TEST(Dispatch, UnknownCommandTruncatesLikeRedis) {
  Harness h;
  // Redis appends "'%.*s' " with precision 128 - (bytes listed so far) while fewer than 128
  // bytes are listed, and prints at most 128 bytes of the name.
  const std::string long_name(200, 'n');
  const std::string a(100, 'a');
  const std::string b(100, 'b');
  const std::string expected = "-ERR unknown command '" + std::string(128, 'n') +
                               "', with args beginning with: '" + a + "' '" +
                               std::string(128 - 103, 'b') + "' \r\n";
  EXPECT_EQ(h.run({long_name, a, b, "c"}), expected);
  // Newlines in an argument become spaces so the error stays one line.
  EXPECT_EQ(h.run({"foo", "x\r\ny"}),
            "-ERR unknown command 'foo', with args beginning with: 'x  y' \r\n");
}

TEST(Dispatch, UnknownSubcommand) {
  Harness h;
  EXPECT_EQ(h.run({"client", "foo"}), "-ERR unknown subcommand 'foo'. Try CLIENT HELP.\r\n");
  EXPECT_EQ(h.run({"Config", "foo", "x"}),
            "-ERR unknown subcommand 'foo'. Try CONFIG HELP.\r\n");
  EXPECT_EQ(h.run({"command", "bar"}), "-ERR unknown subcommand 'bar'. Try COMMAND HELP.\r\n");
}

TEST(Dispatch, ArityErrorsNameTheSubcommand) {
  Harness h;
  EXPECT_EQ(h.run({"client"}), "-ERR wrong number of arguments for 'client' command\r\n");
  EXPECT_EQ(h.run({"client", "setname"}),
            "-ERR wrong number of arguments for 'client|setname' command\r\n");
  EXPECT_EQ(h.run({"CLIENT", "SETNAME", "a", "b"}),
            "-ERR wrong number of arguments for 'client|setname' command\r\n");
  EXPECT_EQ(h.run({"echo"}), "-ERR wrong number of arguments for 'echo' command\r\n");
  EXPECT_EQ(h.outcome.spec, nullptr);
  // PING's own arity check (its table arity is -1, as in Redis).
  EXPECT_EQ(h.run({"ping", "a", "b"}), "-ERR wrong number of arguments for 'ping' command\r\n");
}

TEST(Dispatch, CheckOrderLookupThenAuthThenArity) {
  Harness h;
  h.session.authenticated = false;
  // Unknown commands and subcommands are reported before authentication.
  EXPECT_EQ(h.run({"foo", "a"}), "-ERR unknown command 'foo', with args beginning with: 'a' \r\n");
  EXPECT_EQ(h.run({"client", "foo"}), "-ERR unknown subcommand 'foo'. Try CLIENT HELP.\r\n");
  // Authentication comes before arity.
  EXPECT_EQ(h.run({"echo"}), "-NOAUTH Authentication required.\r\n");
  EXPECT_EQ(h.run({"client", "setname"}), "-NOAUTH Authentication required.\r\n");
  EXPECT_EQ(h.run({"client"}), "-NOAUTH Authentication required.\r\n");
  EXPECT_EQ(h.run({"ping"}), "-NOAUTH Authentication required.\r\n");
  EXPECT_EQ(h.run({"command", "count"}), "-NOAUTH Authentication required.\r\n");
  // Commands flagged no_auth go on to their own arity check and handler.
  EXPECT_EQ(h.run({"auth"}), "-ERR wrong number of arguments for 'auth' command\r\n");
  EXPECT_EQ(h.run({"quit"}), "+OK\r\n");
}

TEST(Dispatch, RecordsLastCommandAndOutcome) {
  Harness h;
  h.run({"CLIENT", "ID"});
  EXPECT_EQ(h.session.last_command, "client|id");
  ASSERT_NE(h.outcome.spec, nullptr);
  EXPECT_EQ(h.outcome.spec->name, "client|id");
  EXPECT_FALSE(h.outcome.wrote);
  h.run({"ping"});
  EXPECT_EQ(h.session.last_command, "ping");
  // A rejected command does not count as the last command.
  h.run({"echo"});
  EXPECT_EQ(h.session.last_command, "ping");
}

TEST(Dispatch, WroteFollowsTheWriteFlag) {
  CommandTable table;
  CommandSpec write_spec;
  write_spec.name = "fakewrite";
  write_spec.arity = 1;
  write_spec.flags = kWrite;
  write_spec.handler = [](CommandContext& context) { context.reply.ok(); };
  table.add(write_spec);
  CommandSpec read_spec = write_spec;
  read_spec.name = "fakeread";
  read_spec.flags = kReadOnly;
  table.add(read_spec);

  testing::FakeKeyspace keyspace;
  testing::FakeServer server;
  Session session;
  session.authenticated = true;
  std::string out;
  resp::ReplyWriter writer(&out);
  std::vector<std::string> args = {"FAKEWRITE"};
  CommandContext context{args, writer, session, keyspace, server};
  EXPECT_TRUE(dispatch(table, context).wrote);
  args = {"fakeread"};
  EXPECT_FALSE(dispatch(table, context).wrote);
  EXPECT_EQ(out, "+OK\r\n+OK\r\n");
}

}  // namespace
}  // namespace cairn::commands
