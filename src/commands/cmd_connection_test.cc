// Connection commands; every expected reply was checked against redis-server 7.0.15.

#include <gtest/gtest.h>

#include <string>

#include "commands/command.h"
#include "commands/command_test_fakes.h"

namespace cairn::commands {
namespace {

using testing::Harness;

std::string hello_reply(int protocol, int id) {
  const std::string id_text = std::to_string(id);
  const std::string head = protocol == 3 ? "%7\r\n" : "*14\r\n";
  return head + "$6\r\nserver\r\n$5\r\nredis\r\n$7\r\nversion\r\n$6\r\n7.0.15\r\n" +
         "$5\r\nproto\r\n:" + std::to_string(protocol) + "\r\n$2\r\nid\r\n:" + id_text +
         "\r\n$4\r\nmode\r\n$10\r\nstandalone\r\n$4\r\nrole\r\n$6\r\nmaster\r\n" +
         "$7\r\nmodules\r\n*0\r\n";
}

constexpr const char* kWrongPass =
    "-WRONGPASS invalid username-password pair or user is disabled.\r\n";
constexpr const char* kHelloNoAuth =
    "-NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO "
    "AUTH <user> <pass> option can be used to authenticate the client and select the RESP "
    "protocol version at the same time\r\n";

TEST(Ping, Resp2AndResp3) {
  Harness h;
  EXPECT_EQ(h.run({"ping"}), "+PONG\r\n");
  EXPECT_EQ(h.run({"PING", "hello"}), "$5\r\nhello\r\n");
  h.session.protocol = 3;
  EXPECT_EQ(h.run({"ping"}), "+PONG\r\n");
  EXPECT_EQ(h.run({"ping", "hi"}), "$2\r\nhi\r\n");
}

TEST(Echo, RepliesWithItsArgument) {
  Harness h;
  EXPECT_EQ(h.run({"echo", "hi"}), "$2\r\nhi\r\n");
  EXPECT_EQ(h.run({"echo", ""}), "$0\r\n\r\n");
}

TEST(Hello, Resp2Reply) {
  Harness h;
  EXPECT_EQ(h.run({"hello"}), hello_reply(2, 7));
  EXPECT_EQ(h.run({"hello", "2"}), hello_reply(2, 7));
  EXPECT_EQ(h.session.protocol, 2);
}

TEST(Hello, SwitchesToResp3AndRepliesInIt) {
  Harness h;
  EXPECT_EQ(h.run({"HELLO", "3"}), hello_reply(3, 7));
  EXPECT_EQ(h.session.protocol, 3);
  // Without a version HELLO keeps the current protocol.
  EXPECT_EQ(h.run({"hello"}), hello_reply(3, 7));
  EXPECT_EQ(h.run({"hello", "2"}), hello_reply(2, 7));
  EXPECT_EQ(h.session.protocol, 2);
}

TEST(Hello, VersionErrors) {
  Harness h;
  EXPECT_EQ(h.run({"hello", "4"}), "-NOPROTO unsupported protocol version\r\n");
  EXPECT_EQ(h.run({"hello", "1"}), "-NOPROTO unsupported protocol version\r\n");
  EXPECT_EQ(h.run({"hello", "x"}),
            "-ERR Protocol version is not an integer or out of range\r\n");
  EXPECT_EQ(h.run({"hello", "3", "foo"}), "-ERR Syntax error in HELLO option 'foo'\r\n");
  EXPECT_EQ(h.run({"hello", "3", "auth", "default"}),
            "-ERR Syntax error in HELLO option 'auth'\r\n");
  EXPECT_EQ(h.run({"hello", "3", "setname", "a b"}),
            "-ERR Client names cannot contain spaces, newlines or special characters.\r\n");
  EXPECT_EQ(h.session.protocol, 2);
}

TEST(Hello, SetName) {
  Harness h;
  EXPECT_EQ(h.run({"hello", "2", "SETNAME", "nm"}), hello_reply(2, 7));
  EXPECT_EQ(h.session.name, "nm");
}

TEST(Hello, AuthenticatesWithAuthOption) {
  Harness h;
  h.server.requirepass_ = "sekret";
  h.session.authenticated = false;
  EXPECT_EQ(h.run({"hello"}), kHelloNoAuth);
  EXPECT_EQ(h.run({"hello", "3"}), kHelloNoAuth);
  EXPECT_EQ(h.run({"hello", "3", "setname", "x"}), kHelloNoAuth);
  EXPECT_EQ(h.session.name, "");
  EXPECT_EQ(h.session.protocol, 2);
  EXPECT_EQ(h.run({"hello", "3", "auth", "default", "bad"}), kWrongPass);
  EXPECT_EQ(h.run({"hello", "3", "auth", "bob", "sekret"}), kWrongPass);
  EXPECT_FALSE(h.session.authenticated);
  EXPECT_EQ(h.run({"hello", "3", "auth", "default", "sekret", "setname", "abc"}),
            hello_reply(3, 7));
  EXPECT_TRUE(h.session.authenticated);
  EXPECT_EQ(h.session.name, "abc");
}

TEST(Auth, WithoutRequirepass) {
  Harness h;
  EXPECT_EQ(h.run({"auth", "pass"}),
            "-ERR AUTH <password> called without any password configured for the default "
            "user. Are you sure your configuration is correct?\r\n");
  // The default user has no password, so any password is accepted, as in Redis.
  EXPECT_EQ(h.run({"auth", "default", "pass"}), "+OK\r\n");
  EXPECT_EQ(h.run({"auth", "bob", "pass"}), kWrongPass);
  EXPECT_EQ(h.run({"auth", "a", "b", "c"}), "-ERR syntax error\r\n");
}

TEST(Auth, WithRequirepass) {
  Harness h;
  h.server.requirepass_ = "sekret";
  h.session.authenticated = false;
  EXPECT_EQ(h.run({"get", "a"}).substr(0, 1), "-");
  EXPECT_EQ(h.run({"auth", "wrong"}), kWrongPass);
  EXPECT_EQ(h.run({"auth", "bob", "sekret"}), kWrongPass);
  EXPECT_EQ(h.run({"auth", "Default", "sekret"}), kWrongPass);
  EXPECT_FALSE(h.session.authenticated);
  EXPECT_EQ(h.run({"ping"}), "-NOAUTH Authentication required.\r\n");
  EXPECT_EQ(h.run({"auth", "sekret"}), "+OK\r\n");
  EXPECT_TRUE(h.session.authenticated);
  EXPECT_EQ(h.run({"ping"}), "+PONG\r\n");
  EXPECT_EQ(h.run({"auth", "default", "sekret"}), "+OK\r\n");
}

TEST(Quit, RepliesOkAndCloses) {
  Harness h;
  EXPECT_EQ(h.run({"quit"}), "+OK\r\n");
  EXPECT_TRUE(h.session.close_after_reply);
}

TEST(Select, OnlyDatabaseZero) {
  Harness h;
  EXPECT_EQ(h.run({"select", "0"}), "+OK\r\n");
  EXPECT_EQ(h.run({"select", "1"}), "-ERR DB index is out of range\r\n");
  EXPECT_EQ(h.run({"select", "-1"}), "-ERR DB index is out of range\r\n");
  EXPECT_EQ(h.run({"select", "x"}), "-ERR value is not an integer or out of range\r\n");
  EXPECT_EQ(h.run({"select", "01"}), "-ERR value is not an integer or out of range\r\n");
  EXPECT_EQ(h.run({"select", "99999999999"}),
            "-ERR value is not an integer or out of range\r\n");
  EXPECT_EQ(h.run({"select", "0", "1"}),
            "-ERR wrong number of arguments for 'select' command\r\n");
}

TEST(Client, IdSetnameGetname) {
  Harness h;
  EXPECT_EQ(h.run({"client", "id"}), ":7\r\n");
  EXPECT_EQ(h.run({"client", "getname"}), "$-1\r\n");
  h.session.protocol = 3;
  EXPECT_EQ(h.run({"client", "getname"}), "_\r\n");
  EXPECT_EQ(h.run({"client", "setname", "ok"}), "+OK\r\n");
  EXPECT_EQ(h.run({"client", "getname"}), "$2\r\nok\r\n");
  EXPECT_EQ(h.run({"client", "setname", "a b"}),
            "-ERR Client names cannot contain spaces, newlines or special characters.\r\n");
  EXPECT_EQ(h.run({"client", "setname", "a\nb"}),
            "-ERR Client names cannot contain spaces, newlines or special characters.\r\n");
  EXPECT_EQ(h.session.name, "ok");
  // An empty name clears the name.
  EXPECT_EQ(h.run({"client", "setname", ""}), "+OK\r\n");
  EXPECT_EQ(h.run({"client", "getname"}), "_\r\n");
}

TEST(Client, ListAndInfo) {
  Harness h;
  const std::string list = h.server.client_list_;
  EXPECT_EQ(h.run({"client", "list"}), "$" + std::to_string(list.size()) + "\r\n" + list + "\r\n");
  EXPECT_EQ(h.run({"client", "list", "type", "normal"}),
            "$" + std::to_string(list.size()) + "\r\n" + list + "\r\n");
  EXPECT_EQ(h.run({"client", "list", "type", "pubsub"}), "$0\r\n\r\n");
  EXPECT_EQ(h.run({"client", "list", "type", "bogus"}), "-ERR Unknown client type 'bogus'\r\n");
  const std::string second = "id=8 addr=127.0.0.1:5001 laddr=127.0.0.1:6379 name=other cmd=get\n";
  EXPECT_EQ(h.run({"client", "list", "id", "8", "99"}),
            "$" + std::to_string(second.size()) + "\r\n" + second + "\r\n");
  EXPECT_EQ(h.run({"client", "list", "id", "x"}), "-ERR Invalid client ID\r\n");
  EXPECT_EQ(h.run({"client", "list", "foo"}), "-ERR syntax error\r\n");
  const std::string info = "id=7 addr=127.0.0.1:5000 name=\n";
  EXPECT_EQ(h.run({"client", "info"}), "$" + std::to_string(info.size()) + "\r\n" + info + "\r\n");
  h.session.protocol = 3;
  EXPECT_EQ(h.run({"client", "info"}),
            "=" + std::to_string(info.size() + 4) + "\r\ntxt:" + info + "\r\n");
}

TEST(Client, KillById) {
  Harness h;
  EXPECT_EQ(h.run({"client", "kill", "id", "99999"}), ":0\r\n");
  EXPECT_EQ(h.run({"client", "kill", "id", "8"}), ":1\r\n");
  EXPECT_EQ(h.server.killed_, (std::vector<uint64_t>{8}));
  EXPECT_EQ(h.run({"client", "kill", "id", "x"}), "-ERR client-id should be greater than 0\r\n");
  EXPECT_EQ(h.run({"client", "kill", "id", "0"}), "-ERR client-id should be greater than 0\r\n");
  EXPECT_EQ(h.run({"client", "kill", "foo", "bar"}), "-ERR syntax error\r\n");
  EXPECT_EQ(h.run({"client", "kill", "id", "8", "skipme"}), "-ERR syntax error\r\n");
  // SKIPME defaults to yes: this connection (id 7) survives unless SKIPME NO.
  EXPECT_EQ(h.run({"client", "kill", "id", "7"}), ":0\r\n");
  EXPECT_FALSE(h.session.close_after_reply);
  EXPECT_EQ(h.run({"client", "kill", "id", "7", "skipme", "no"}), ":1\r\n");
  EXPECT_TRUE(h.session.close_after_reply);
}

TEST(Client, KillByAddress) {
  Harness h;
  EXPECT_EQ(h.run({"client", "kill", "1.2.3.4:5"}), "-ERR No such client\r\n");
  EXPECT_EQ(h.run({"client", "kill", "id"}), "-ERR No such client\r\n");
  EXPECT_EQ(h.run({"client", "kill", "127.0.0.1:5001"}), "+OK\r\n");
  EXPECT_EQ(h.server.killed_, (std::vector<uint64_t>{8}));
  EXPECT_EQ(h.run({"client", "kill", "addr", "127.0.0.1:5001", "skipme", "yes"}), ":1\r\n");
  EXPECT_EQ(h.run({"client", "kill", "laddr", "127.0.0.1:6379"}), ":1\r\n");
  EXPECT_EQ(h.run({"client", "kill", "type", "master"}), ":0\r\n");
  EXPECT_EQ(h.run({"client", "kill", "user", "bob"}), "-ERR No such user 'bob'\r\n");
}

TEST(Client, SetinfoNoEvictReply) {
  Harness h;
  EXPECT_EQ(h.run({"client", "setinfo", "lib-name", "redis-py"}), "+OK\r\n");
  EXPECT_EQ(h.run({"client", "setinfo", "LIB-VER", "5.0.1"}), "+OK\r\n");
  EXPECT_EQ(h.session.library_name, "redis-py");
  EXPECT_EQ(h.session.library_version, "5.0.1");
  EXPECT_EQ(h.run({"client", "setinfo", "foo", "1"}), "-ERR Unrecognized option 'foo'\r\n");
  EXPECT_EQ(h.run({"client", "setinfo", "lib-name", "a b"}),
            "-ERR lib-name cannot contain spaces, newlines or special characters.\r\n");
  EXPECT_EQ(h.run({"client", "no-evict", "on"}), "+OK\r\n");
  EXPECT_EQ(h.run({"client", "no-evict", "OFF"}), "+OK\r\n");
  EXPECT_EQ(h.run({"client", "no-evict", "maybe"}), "-ERR syntax error\r\n");
  EXPECT_EQ(h.run({"client", "reply", "on"}), "+OK\r\n");
  EXPECT_EQ(h.run({"client", "reply", "maybe"}), "-ERR syntax error\r\n");
  EXPECT_EQ(h.run({"client", "reply", "off"}),
            "-ERR CLIENT REPLY OFF and SKIP are not supported\r\n");
  EXPECT_EQ(h.run({"client", "reply"}),
            "-ERR wrong number of arguments for 'client|reply' command\r\n");
}

TEST(Client, Help) {
  Harness h;
  const std::string reply = h.run({"client", "help"});
  EXPECT_EQ(reply.rfind("*", 0), 0u);
  EXPECT_NE(reply.find("\r\n+CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:\r\n"),
            std::string::npos);
  EXPECT_NE(reply.find("+HELP\r\n+    Prints this help.\r\n"), std::string::npos);
  EXPECT_EQ(reply.substr(reply.size() - 24), "+    Prints this help.\r\n");
  EXPECT_EQ(h.run({"client", "help", "x"}),
            "-ERR wrong number of arguments for 'client|help' command\r\n");
}

}  // namespace
}  // namespace cairn::commands
