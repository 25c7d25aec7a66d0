// Server commands; expected replies were checked against redis-server 7.0.15.

#include <gtest/gtest.h>

#include <string>

#include "commands/command.h"
#include "commands/command_test_fakes.h"

namespace cairn::commands {
namespace {

using testing::Harness;

std::string bulk(const std::string& text) {
  return "$" + std::to_string(text.size()) + "\r\n" + text + "\r\n";
}

// COMMAND INFO entries, byte for byte as redis-server 7.0.15 sends them.
constexpr const char* kPingInfo2 =
    "*10\r\n$4\r\nping\r\n:-1\r\n*1\r\n+fast\r\n:0\r\n:0\r\n:0\r\n*2\r\n+@fast\r\n"
    "+@connection\r\n*2\r\n$25\r\nrequest_policy:all_shards\r\n$29\r\n"
    "response_policy:all_succeeded\r\n*0\r\n*0\r\n";
constexpr const char* kPingInfo3 =
    "*10\r\n$4\r\nping\r\n:-1\r\n~1\r\n+fast\r\n:0\r\n:0\r\n:0\r\n~2\r\n+@fast\r\n"
    "+@connection\r\n~2\r\n$25\r\nrequest_policy:all_shards\r\n$29\r\n"
    "response_policy:all_succeeded\r\n~0\r\n~0\r\n";
constexpr const char* kSetnameInfo3 =
    "*10\r\n$14\r\nclient|setname\r\n:3\r\n~3\r\n+noscript\r\n+loading\r\n+stale\r\n:0\r\n:0\r\n"
    ":0\r\n~2\r\n+@slow\r\n+@connection\r\n~0\r\n~0\r\n~0\r\n";
constexpr const char* kHelloInfo2 =
    "*10\r\n$5\r\nhello\r\n:-1\r\n*6\r\n+noscript\r\n+loading\r\n+stale\r\n+fast\r\n+no_auth\r\n"
    "+allow_busy\r\n:0\r\n:0\r\n:0\r\n*2\r\n+@fast\r\n+@connection\r\n*0\r\n*0\r\n*0\r\n";
constexpr const char* kShutdownInfo2 =
    "*10\r\n$8\r\nshutdown\r\n:-1\r\n*6\r\n+admin\r\n+noscript\r\n+loading\r\n+stale\r\n"
    "+no_multi\r\n+allow_busy\r\n:0\r\n:0\r\n:0\r\n*3\r\n+@admin\r\n+@slow\r\n+@dangerous\r\n"
    "*0\r\n*0\r\n*0\r\n";
constexpr const char* kLastsaveInfo2 =
    "*10\r\n$8\r\nlastsave\r\n:1\r\n*3\r\n+loading\r\n+stale\r\n+fast\r\n:0\r\n:0\r\n:0\r\n"
    "*3\r\n+@admin\r\n+@fast\r\n+@dangerous\r\n*1\r\n$23\r\nnondeterministic_output\r\n*0\r\n"
    "*0\r\n";
constexpr const char* kInfoInfo2 =
    "*10\r\n$4\r\ninfo\r\n:-1\r\n*2\r\n+loading\r\n+stale\r\n:0\r\n:0\r\n:0\r\n*2\r\n+@slow\r\n"
    "+@dangerous\r\n*3\r\n$23\r\nnondeterministic_output\r\n$25\r\nrequest_policy:all_shards"
    "\r\n$23\r\nresponse_policy:special\r\n*0\r\n*0\r\n";

TEST(Command, InfoMatchesRedis) {
  Harness h;
  EXPECT_EQ(h.run({"command", "info", "ping"}), std::string("*1\r\n") + kPingInfo2);
  EXPECT_EQ(h.run({"command", "info", "nosuch", "PING"}),
            std::string("*2\r\n$-1\r\n") + kPingInfo2);
  EXPECT_EQ(h.run({"command", "info", "hello", "shutdown", "lastsave", "info"}),
            std::string("*4\r\n") + kHelloInfo2 + kShutdownInfo2 + kLastsaveInfo2 + kInfoInfo2);
  h.session.protocol = 3;
  EXPECT_EQ(h.run({"command", "info", "ping", "client|setname", "nosuch"}),
            std::string("*3\r\n") + kPingInfo3 + kSetnameInfo3 + "_\r\n");
}

TEST(Command, InfoOfContainerListsSubcommands) {
  Harness h;
  const std::string reply = h.run({"command", "info", "config"});
  EXPECT_EQ(reply.rfind("*1\r\n*10\r\n$6\r\nconfig\r\n:-2\r\n*0\r\n:0\r\n:0\r\n:0\r\n*1\r\n+@slow\r\n"
                        "*0\r\n*0\r\n*5\r\n",
                        0),
            0u)
      << reply;
  EXPECT_NE(reply.find("*10\r\n$10\r\nconfig|get\r\n:-3\r\n*4\r\n+admin\r\n+noscript\r\n+loading"
                       "\r\n+stale\r\n:0\r\n:0\r\n:0\r\n*3\r\n+@admin\r\n+@slow\r\n+@dangerous\r\n"
                       "*0\r\n*0\r\n*0\r\n"),
            std::string::npos);
}

TEST(Command, KeySpecDerivedFromPositions) {
  // COMMAND INFO's key spec for GET in Redis 7.0, derived from GET's key positions.
  Harness h;
  if (default_table().find("get") == nullptr) GTEST_SKIP() << "string commands not linked";
  EXPECT_EQ(h.run({"command", "info", "get"}),
            "*1\r\n*10\r\n$3\r\nget\r\n:2\r\n*2\r\n+readonly\r\n+fast\r\n:1\r\n:1\r\n:1\r\n*3\r\n"
            "+@read\r\n+@string\r\n+@fast\r\n*0\r\n*1\r\n*6\r\n$5\r\nflags\r\n*2\r\n+RO\r\n"
            "+access\r\n$12\r\nbegin_search\r\n*4\r\n$4\r\ntype\r\n$5\r\nindex\r\n$4\r\nspec\r\n"
            "*2\r\n$5\r\nindex\r\n:1\r\n$9\r\nfind_keys\r\n*4\r\n$4\r\ntype\r\n$5\r\nrange\r\n"
            "$4\r\nspec\r\n*6\r\n$7\r\nlastkey\r\n:0\r\n$7\r\nkeystep\r\n:1\r\n$5\r\nlimit\r\n"
            ":0\r\n*0\r\n");
}

TEST(Command, CountAndPlainCommand) {
  Harness h;
  const size_t count = default_table().all().size();
  EXPECT_EQ(h.run({"command", "count"}), ":" + std::to_string(count) + "\r\n");
  const std::string all = h.run({"command"});
  EXPECT_EQ(all.rfind("*" + std::to_string(count) + "\r\n", 0), 0u);
  EXPECT_NE(all.find(kPingInfo2), std::string::npos);
  EXPECT_EQ(h.run({"command", "info"}), all);
  EXPECT_EQ(h.run({"command", "count", "x"}),
            "-ERR wrong number of arguments for 'command|count' command\r\n");
}

TEST(Command, Docs) {
  Harness h;
  const std::string ping_docs =
      "$4\r\nping\r\n*8\r\n$7\r\nsummary\r\n$15\r\nPing the server\r\n$5\r\nsince\r\n$5\r\n1.0.0"
      "\r\n$5\r\ngroup\r\n$10\r\nconnection\r\n$10\r\ncomplexity\r\n$4\r\nO(1)\r\n";
  EXPECT_EQ(h.run({"command", "docs", "ping"}), "*2\r\n" + ping_docs);
  EXPECT_EQ(h.run({"command", "docs", "nosuch"}), "*0\r\n");
  EXPECT_EQ(h.run({"command", "docs", "nosuch", "PING"}), "*2\r\n" + ping_docs);
  h.session.protocol = 3;
  EXPECT_EQ(h.run({"command", "docs", "ping"}),
            "%1\r\n$4\r\nping\r\n%4\r\n$7\r\nsummary\r\n$15\r\nPing the server\r\n$5\r\nsince\r\n"
            "$5\r\n1.0.0\r\n$5\r\ngroup\r\n$10\r\nconnection\r\n$10\r\ncomplexity\r\n$4\r\nO(1)"
            "\r\n");
  EXPECT_EQ(h.run({"command", "docs", "nosuch"}), "%0\r\n");
  // A container lists its subcommands' docs.
  const std::string config = h.run({"command", "docs", "config"});
  EXPECT_NE(config.find("$11\r\nsubcommands\r\n%5\r\n"), std::string::npos);
  EXPECT_NE(config.find("$10\r\nconfig|get\r\n%4\r\n"), std::string::npos);
  // All docs: one entry per command (what redis-cli asks for at start).
  const std::string all = h.run({"command", "docs"});
  EXPECT_EQ(all.rfind("%" + std::to_string(default_table().all().size()) + "\r\n", 0), 0u);
}

TEST(Command, List) {
  Harness h;
  const std::string all = h.run({"command", "list"});
  EXPECT_NE(all.find("$4\r\nping\r\n"), std::string::npos);
  EXPECT_NE(all.find("$14\r\nclient|setname\r\n"), std::string::npos);
  EXPECT_EQ(h.run({"command", "list", "filterby", "pattern", "config|*"}),
            "*5\r\n$10\r\nconfig|get\r\n$10\r\nconfig|set\r\n$16\r\nconfig|resetstat\r\n"
            "$14\r\nconfig|rewrite\r\n$11\r\nconfig|help\r\n");
  EXPECT_EQ(h.run({"command", "list", "FILTERBY", "PATTERN", "TIM?"}), "*1\r\n$4\r\ntime\r\n");
  EXPECT_EQ(h.run({"command", "list", "filterby", "module", "x"}), "*0\r\n");
  EXPECT_EQ(h.run({"command", "list", "filterby", "aclcat", "dangerous"}),
            h.run({"command", "list", "filterby", "aclcat", "DANGEROUS"}));
  const std::string dangerous = h.run({"command", "list", "filterby", "aclcat", "dangerous"});
  EXPECT_NE(dangerous.find("$4\r\ninfo\r\n"), std::string::npos);
  EXPECT_EQ(dangerous.find("$4\r\nping\r\n"), std::string::npos);
  EXPECT_EQ(h.run({"command", "list", "filterby"}), "-ERR syntax error\r\n");
  EXPECT_EQ(h.run({"command", "list", "filterby", "foo", "x"}), "-ERR syntax error\r\n");
  EXPECT_EQ(h.run({"command", "list", "x"}), "-ERR syntax error\r\n");
}

TEST(Command, Getkeys) {
  Harness h;
  EXPECT_EQ(h.run({"command", "getkeys", "nosuch", "a"}), "-ERR Invalid command specified\r\n");
  EXPECT_EQ(h.run({"command", "getkeys", "echo", "a"}),
            "-ERR The command has no key arguments\r\n");
  EXPECT_EQ(h.run({"command", "getkeys", "ping"}),
            "-ERR wrong number of arguments for 'command|getkeys' command\r\n");
  if (default_table().find("mset") != nullptr) {
    EXPECT_EQ(h.run({"command", "getkeys", "mset", "a", "b", "c", "d"}),
              "*2\r\n$1\r\na\r\n$1\r\nc\r\n");
    EXPECT_EQ(h.run({"command", "getkeys", "get", "a", "b"}),
              "-ERR Invalid number of arguments specified for command\r\n");
  }
}

TEST(Command, Help) {
  Harness h;
  const std::string reply = h.run({"command", "help"});
  EXPECT_EQ(reply.rfind("*19\r\n+COMMAND <subcommand> [<arg> [value] [opt] ...]. Subcommands are:"
                        "\r\n+(no subcommand)\r\n",
                        0),
            0u);
}

TEST(Info, AllSectionsOrSome) {
  Harness h;
  const std::string server = "# Server\r\nredis_version:7.0.15\r\n";
  const std::string clients = "# Clients\r\nconnected_clients:2\r\n";
  EXPECT_EQ(h.run({"info"}), bulk(server));
  EXPECT_EQ(h.server.info_calls_, (std::vector<std::string>{""}));
  EXPECT_EQ(h.run({"info", "Server", "clients", "server"}), bulk(server + "\r\n" + clients));
  EXPECT_EQ(h.run({"info", "x", "y"}), "$0\r\n\r\n");
  h.session.protocol = 3;
  EXPECT_EQ(h.run({"info", "server"}),
            "=" + std::to_string(server.size() + 4) + "\r\ntxt:" + server + "\r\n");
}

TEST(Time, SecondsAndMicroseconds) {
  Harness h;
  h.keyspace.now_ms_ = 1'795'892'136'542;
  EXPECT_EQ(h.run({"time"}), "*2\r\n$10\r\n1795892136\r\n$6\r\n542000\r\n");
  h.keyspace.now_ms_ = 1'795'892'136'005;
  EXPECT_EQ(h.run({"time"}), "*2\r\n$10\r\n1795892136\r\n$4\r\n5000\r\n");
  EXPECT_EQ(h.run({"time", "x"}), "-ERR wrong number of arguments for 'time' command\r\n");
  EXPECT_EQ(h.run({"lastsave"}), ":1795892136\r\n");
}

TEST(Config, Get) {
  Harness h;
  EXPECT_EQ(h.run({"config", "get", "maxmemory"}), "*2\r\n$9\r\nmaxmemory\r\n$1\r\n0\r\n");
  EXPECT_EQ(h.run({"config", "get", "nosuch"}), "*0\r\n");
  EXPECT_EQ(h.run({"config", "get", "max*", "maxmemory"}),
            "*4\r\n$9\r\nmaxmemory\r\n$1\r\n0\r\n$10\r\nmaxclients\r\n$5\r\n10000\r\n");
  h.session.protocol = 3;
  EXPECT_EQ(h.run({"config", "get", "port"}), "%1\r\n$4\r\nport\r\n$4\r\n6379\r\n");
  EXPECT_EQ(h.run({"config", "get"}),
            "-ERR wrong number of arguments for 'config|get' command\r\n");
}

TEST(Config, Set) {
  Harness h;
  EXPECT_EQ(h.run({"config", "set", "maxmemory", "100"}), "+OK\r\n");
  EXPECT_EQ(h.server.config_[0].second, "100");
  EXPECT_EQ(h.run({"config", "set", "maxmemory", "abc"}),
            "-ERR CONFIG SET failed (possibly related to argument 'maxmemory') - argument must "
            "be a memory value\r\n");
  EXPECT_EQ(h.run({"config", "set", "nosuch", "1"}),
            "-ERR Unknown option or number of arguments for CONFIG SET - 'nosuch'\r\n");
  EXPECT_EQ(h.run({"config", "set", "max*", "1"}),
            "-ERR Unknown option or number of arguments for CONFIG SET - 'max*'\r\n");
  EXPECT_EQ(h.run({"config", "set", "maxmemory"}),
            "-ERR wrong number of arguments for 'config|set' command\r\n");
  EXPECT_EQ(h.run({"config", "set", "maxmemory", "1", "port"}),
            "-ERR wrong number of arguments for 'config|set' command\r\n");
  EXPECT_EQ(h.run({"config", "set", "maxmemory", "1", "maxmemory", "2"}),
            "-ERR CONFIG SET failed (possibly related to argument 'maxmemory') - duplicate "
            "parameter\r\n");
  EXPECT_EQ(h.server.config_[0].second, "100");
}

TEST(Config, SetIsAllOrNothing) {
  Harness h;
  EXPECT_EQ(h.run({"config", "set", "port", "7000", "maxmemory", "abc"}),
            "-ERR CONFIG SET failed (possibly related to argument 'maxmemory') - argument must "
            "be a memory value\r\n");
  EXPECT_EQ(h.server.config_[3].second, "6379");  // port put back
  h.server.config_set_calls_ = 0;
  EXPECT_EQ(h.run({"config", "set", "port", "7000", "nosuch", "1"}),
            "-ERR Unknown option or number of arguments for CONFIG SET - 'nosuch'\r\n");
  EXPECT_EQ(h.server.config_set_calls_, 0);  // names are checked before anything is set
  EXPECT_EQ(h.run({"config", "set", "port", "7000", "maxmemory", "5"}), "+OK\r\n");
  EXPECT_EQ(h.server.config_[3].second, "7000");
}

TEST(Config, OtherSubcommands) {
  Harness h;
  EXPECT_EQ(h.run({"config", "resetstat"}), "+OK\r\n");
  EXPECT_EQ(h.run({"config", "rewrite"}), "-ERR The server is running without a config file\r\n");
  EXPECT_EQ(h.run({"config", "help"}),
            "*11\r\n+CONFIG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:\r\n"
            "+GET <pattern>\r\n"
            "+    Return parameters matching the glob-like <pattern> and their values.\r\n"
            "+SET <directive> <value>\r\n+    Set the configuration <directive> to <value>.\r\n"
            "+RESETSTAT\r\n+    Reset statistics reported by the INFO command.\r\n"
            "+REWRITE\r\n+    Rewrite the configuration file.\r\n+HELP\r\n"
            "+    Prints this help.\r\n");
}

TEST(Shutdown, RequestsShutdownWithoutReply) {
  Harness h;
  EXPECT_EQ(h.run({"shutdown", "abort"}), "-ERR No shutdown in progress.\r\n");
  EXPECT_EQ(h.run({"shutdown", "foo"}), "-ERR syntax error\r\n");
  EXPECT_EQ(h.run({"shutdown", "nosave", "save"}), "-ERR syntax error\r\n");
  EXPECT_EQ(h.run({"shutdown", "now", "abort"}), "-ERR syntax error\r\n");
  EXPECT_FALSE(h.server.shutdown_requested_);
  EXPECT_EQ(h.run({"shutdown", "NOSAVE", "now", "force"}), "");
  EXPECT_TRUE(h.server.shutdown_requested_);
  EXPECT_TRUE(h.session.close_after_reply);
}

TEST(Shutdown, NeedsAuthentication) {
  Harness h;
  h.session.authenticated = false;
  EXPECT_EQ(h.run({"shutdown"}), "-NOAUTH Authentication required.\r\n");
  EXPECT_FALSE(h.server.shutdown_requested_);
}

}  // namespace
}  // namespace cairn::commands
