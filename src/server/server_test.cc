// Loopback tests: a real Server on an ephemeral port, spoken to with raw RESP over a socket.

#include "server/server.h"

#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <string>
#include <thread>

#include "server/raw_client_test.h"
#include "server/server_state.h"

namespace cairn::server {
namespace {

using test_support::bulk;
using test_support::command;
using test_support::RawClient;

// Every loopback test runs twice: commands on the loops (a single machine) and commands on
// worker threads (the execution model of a cluster machine, forced here on one machine).
class ServerTest : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    std::string name = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    std::replace(name.begin(), name.end(), '/', '-');
    dir_ = std::filesystem::temp_directory_path() /
           ("cairn-server-test-" + std::to_string(::getpid()) + "-" + name);
    std::filesystem::remove_all(dir_);
    config_.port = 0;
    config_.data_dir = dir_.string();
    config_.threads = 2;
    config_.force_workers = GetParam();
    config_.workers = 4;
  }
  void TearDown() override {
    server_.reset();
    std::filesystem::remove_all(dir_);
  }
  void start() {
    auto server = Server::start(config_);
    ASSERT_TRUE(server.is_ok()) << server.status().to_string();
    server_ = std::move(*server);
    ASSERT_NE(server_->port(), 0);
  }
  uint16_t port() const { return server_->port(); }

  std::filesystem::path dir_;
  ServerConfig config_;
  std::unique_ptr<Server> server_;
};

TEST_P(ServerTest, PingMultibulkAndInline) {
  start();
  RawClient client(port());
  ASSERT_TRUE(client.connected());
  EXPECT_EQ(client.line(command({"PING"})), "+PONG\r\n");
  // Inline commands, with empty lines in between that Redis skips.
  EXPECT_EQ(client.line("\r\n\r\nPING\r\n"), "+PONG\r\n");
  // A request split over several writes.
  client.send("*1\r\n$4\r\nPI");
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_EQ(client.line("NG\r\n"), "+PONG\r\n");
}

TEST_P(ServerTest, PipelinedSetAndGetKeepOrder) {
  start();
  RawClient client(port());
  std::string batch;
  std::string expected;
  constexpr int kKeys = 200;
  for (int i = 0; i < kKeys; ++i) {
    const std::string key = "key" + std::to_string(i);
    batch += command({"SET", key, "value" + std::to_string(i)});
    expected += "+OK\r\n";
  }
  for (int i = 0; i < kKeys; ++i) {
    batch += command({"GET", "key" + std::to_string(i)});
    expected += bulk("value" + std::to_string(i));
  }
  client.send(batch);
  EXPECT_EQ(client.read(expected.size()), expected);
  // Group commit: the writes were synced before their replies left.
  RawClient other(port());
  other.send(command({"INFO", "persistence"}));
  const std::string info = other.read_until("\r\n\r\n");
  EXPECT_NE(info.find("durability:always"), std::string::npos) << info;
  EXPECT_EQ(info.find("wal_syncs:0\r\n"), std::string::npos) << info;
}

TEST_P(ServerTest, ManyClientsOnSeveralLoops) {
  config_.threads = 3;
  start();
  std::vector<std::unique_ptr<RawClient>> clients;
  for (int i = 0; i < 9; ++i) clients.push_back(std::make_unique<RawClient>(port()));
  for (size_t i = 0; i < clients.size(); ++i) {
    clients[i]->send(command({"SET", "k" + std::to_string(i), std::to_string(i)}));
  }
  for (auto& client : clients) EXPECT_EQ(client->read_until("\r\n"), "+OK\r\n");
  for (size_t i = 0; i < clients.size(); ++i) {
    const std::string key = "k" + std::to_string((i + 1) % clients.size());
    clients[i]->send(command({"GET", key}));
    EXPECT_EQ(clients[i]->read(bulk(std::to_string((i + 1) % clients.size())).size()),
              bulk(std::to_string((i + 1) % clients.size())));
  }
}

TEST_P(ServerTest, ProtocolErrorRepliesThenCloses) {
  start();
  RawClient client(port());
  client.send(command({"PING"}) + "*1\r\n$abc\r\n" + command({"PING"}));
  EXPECT_EQ(client.read_until_closed(), "+PONG\r\n-ERR Protocol error: invalid bulk length\r\n");
}

TEST_P(ServerTest, HalfClosedClientStillGetsItsReplies) {
  start();
  RawClient client(port());
  client.send(command({"SET", "k", "v"}) + command({"GET", "k"}));
  client.shutdown_write();
  EXPECT_EQ(client.read_until_closed(), "+OK\r\n" + bulk("v"));
}

TEST_P(ServerTest, QuitRepliesThenCloses) {
  start();
  RawClient client(port());
  client.send(command({"QUIT"}) + command({"PING"}));
  EXPECT_EQ(client.read_until_closed(), "+OK\r\n");
}

TEST_P(ServerTest, MaxClientsRejectsWithRedisText) {
  config_.maxclients = 2;
  start();
  RawClient first(port());
  RawClient second(port());
  EXPECT_EQ(first.line(command({"PING"})), "+PONG\r\n");
  EXPECT_EQ(second.line(command({"PING"})), "+PONG\r\n");
  RawClient third(port());
  EXPECT_EQ(third.read_until_closed(), "-ERR max number of clients reached\r\n");
  EXPECT_EQ(first.line(command({"PING"})), "+PONG\r\n");
}

TEST_P(ServerTest, LargeValuesAndOutputBackpressure) {
  start();
  RawClient client(port());
  const std::string value(3 * 1024 * 1024, 'v');
  EXPECT_EQ(client.line(command({"SET", "big", value})), "+OK\r\n");
  // More output than the connection's bound (64 MiB): reading pauses and resumes.
  constexpr int kGets = 30;
  std::string batch;
  for (int i = 0; i < kGets; ++i) batch += command({"GET", "big"});
  std::thread sender([&] { client.send(batch); });
  const std::string expected = bulk(value);
  for (int i = 0; i < kGets; ++i) {
    ASSERT_EQ(client.read(expected.size()), expected) << "reply " << i;
  }
  sender.join();
  EXPECT_EQ(client.line(command({"PING"})), "+PONG\r\n");
}

TEST_P(ServerTest, QueryBufferLimitClosesWithoutReply) {
  config_.client_query_buffer_limit = kMiB;
  start();
  RawClient client(port());
  client.send("*2\r\n$3\r\nGET\r\n$2000000\r\n");
  client.send(std::string(1200 * 1024, 'x'));
  EXPECT_EQ(client.read_until_closed(), "");
  RawClient other(port());
  EXPECT_EQ(other.line(command({"PING"})), "+PONG\r\n");
}

TEST_P(ServerTest, UnauthenticatedLimitsAndAuth) {
  config_.requirepass = "pw";
  start();
  {
    RawClient client(port());
    EXPECT_EQ(client.line(command({"GET", "x"})), "-NOAUTH Authentication required.\r\n");
    client.send("*20\r\n");
    EXPECT_EQ(client.read_until_closed(),
              "-ERR Protocol error: unauthenticated multibulk length\r\n");
  }
  {
    RawClient client(port());
    client.send("*1\r\n$20000\r\n");
    EXPECT_EQ(client.read_until_closed(), "-ERR Protocol error: unauthenticated bulk length\r\n");
  }
  {
    RawClient client(port());
    client.send("*1\r\n$2x\r\n");
    EXPECT_EQ(client.read_until_closed(), "-ERR Protocol error: invalid bulk length\r\n");
  }
  {
    RawClient client(port());
    EXPECT_EQ(client.line(command({"AUTH", "pw"})), "+OK\r\n");
    const std::string value(20000, 'a');
    EXPECT_EQ(client.line(command({"SET", "x", value})), "+OK\r\n");
  }
}

TEST_P(ServerTest, ConfigClientAndInfo) {
  start();
  RawClient client(port());
  client.send(command({"CONFIG", "GET", "maxclients"}));
  EXPECT_EQ(client.read(std::string("*2\r\n$10\r\nmaxclients\r\n$5\r\n10000\r\n").size()),
            "*2\r\n$10\r\nmaxclients\r\n$5\r\n10000\r\n");
  EXPECT_EQ(client.line(command({"CONFIG", "SET", "maxclients", "abc"})).rfind("-ERR", 0), 0u);
  // port is a Redis parameter, but Cairn's listener is fixed while it runs.
  EXPECT_EQ(client.line(command({"CONFIG", "SET", "port", "1"})),
            "-ERR CONFIG SET failed (possibly related to argument 'port') - can't set immutable "
            "config\r\n");
  EXPECT_EQ(client.line(command({"CONFIG", "SET", "data-dir", "/x"})),
            "-ERR Unknown option or number of arguments for CONFIG SET - 'data-dir'\r\n");
  EXPECT_EQ(client.line(command({"CONFIG", "SET", "maxclients", "77"})), "+OK\r\n");
  client.send(command({"CONFIG", "GET", "maxclients"}));
  EXPECT_EQ(client.read(std::string("*2\r\n$10\r\nmaxclients\r\n$2\r\n77\r\n").size()),
            "*2\r\n$10\r\nmaxclients\r\n$2\r\n77\r\n");

  client.send(command({"CLIENT", "LIST"}));
  const std::string header = client.read_until("\r\n");
  ASSERT_EQ(header[0], '$');
  const std::string list = client.read(std::stoul(header.substr(1)) + 2);
  EXPECT_EQ(list.rfind("id=", 0), 0u) << list;
  EXPECT_NE(list.find(" addr=127.0.0.1:"), std::string::npos) << list;
  EXPECT_NE(list.find(" flags=N db=0 sub=0 psub=0 ssub=0 multi=-1 qbuf="), std::string::npos);
  EXPECT_NE(list.find(" user=default redir=-1 resp=2 lib-name= lib-ver=\n"), std::string::npos);

  client.send(command({"INFO"}));
  const std::string info_header = client.read_until("\r\n");
  const std::string info = client.read(std::stoul(info_header.substr(1)) + 2);
  EXPECT_EQ(info.rfind("# Server\r\nredis_version:7.0.15\r\ncairn_version:0.1.0\r\n", 0), 0u);
  EXPECT_NE(info.find("tcp_port:" + std::to_string(port()) + "\r\n"), std::string::npos);
  EXPECT_NE(info.find("\r\n\r\n# Clients\r\nconnected_clients:1\r\nmaxclients:77\r\n"),
            std::string::npos)
      << info;
  EXPECT_NE(info.find("total_commands_processed:"), std::string::npos);
  EXPECT_EQ(info.find("db0:"), std::string::npos);  // no keys yet

  EXPECT_EQ(client.line(command({"SET", "a", "1"})), "+OK\r\n");
  EXPECT_EQ(client.line(command({"SET", "b", "2", "EX", "100"})), "+OK\r\n");
  client.send(command({"INFO", "keyspace"}));
  const std::string keyspace_header = client.read_until("\r\n");
  EXPECT_EQ(client.read(std::stoul(keyspace_header.substr(1)) + 2),
            "# Keyspace\r\ndb0:keys=2,expires=1,avg_ttl=0\r\n\r\n");

  // The calling client is described from its live state: its command is the CLIENT LIST.
  client.send(command({"CLIENT", "SETNAME", "me"}) + command({"CLIENT", "LIST"}));
  EXPECT_EQ(client.read_until("\r\n"), "+OK\r\n");
  const std::string list_header = client.read_until("\r\n");
  const std::string self = client.read(std::stoul(list_header.substr(1)) + 2);
  EXPECT_NE(self.find(" name=me "), std::string::npos) << self;
  EXPECT_NE(self.find(" cmd=client|list "), std::string::npos) << self;
}

TEST_P(ServerTest, ClientKillAndIdleTimeout) {
  start();
  RawClient victim(port());
  victim.send(command({"CLIENT", "ID"}));
  const std::string id_line = victim.read_until("\r\n");
  ASSERT_EQ(id_line[0], ':');
  RawClient killer(port());
  EXPECT_EQ(killer.line(command({"CLIENT", "KILL", "ID", id_line.substr(1, id_line.size() - 3)})),
            ":1\r\n");
  EXPECT_EQ(victim.read_until_closed(), "");

  EXPECT_EQ(killer.line(command({"CONFIG", "SET", "timeout", "1"})), "+OK\r\n");
  RawClient idle(port());
  const auto started = std::chrono::steady_clock::now();
  EXPECT_EQ(idle.read_until_closed(), "");
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(5));
}

TEST_P(ServerTest, ShutdownCommandStopsAndDataSurvivesRestart) {
  start();
  const uint64_t machine_id = server_->machine_id();
  {
    RawClient client(port());
    EXPECT_EQ(client.line(command({"SET", "durable", "yes"})), "+OK\r\n");
    client.send(command({"SHUTDOWN"}));
    EXPECT_EQ(client.read_until_closed(), "");
  }
  server_->wait();  // returns: SHUTDOWN stopped the server
  server_.reset();
  start();
  EXPECT_EQ(server_->machine_id(), machine_id);
  RawClient client(port());
  client.send(command({"GET", "durable"}));
  EXPECT_EQ(client.read(bulk("yes").size()), bulk("yes"));
}

TEST(MachineIdTest, RecordedOnFirstStartAndCheckedAfterwards) {
  const auto dir = std::filesystem::temp_directory_path() /
                   ("cairn-machine-id-test-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  auto first = load_or_create_machine_id(dir.string(), 42);
  ASSERT_TRUE(first.is_ok()) << first.status().to_string();
  EXPECT_EQ(*first, 42u);
  EXPECT_EQ(*load_or_create_machine_id(dir.string(), 42), 42u);
  EXPECT_EQ(*load_or_create_machine_id(dir.string()), 42u);  // 0: whatever is recorded
  auto mismatch = load_or_create_machine_id(dir.string(), 43);
  ASSERT_FALSE(mismatch.is_ok());
  EXPECT_NE(mismatch.status().message().find("does not match the id 42"), std::string::npos)
      << mismatch.status().to_string();
  std::filesystem::remove_all(dir);
}

TEST_P(ServerTest, SlowlogLatencyAndCommandstats) {
  config_.slowlog_log_slower_than_us = 0;  // every command
  start();
  RawClient client(port());
  EXPECT_EQ(client.line(command({"SET", "k", "v"})), "+OK\r\n");
  EXPECT_EQ(client.line(command({"INCR", "k"})),
            "-ERR value is not an integer or out of range\r\n");
  client.send(command({"SLOWLOG", "GET", "1"}));
  // One entry: id 1 (the INCR), time, duration, the arguments, the client, its (empty) name.
  const std::string slowlog = client.read_until("\r\n$0\r\n\r\n");
  EXPECT_EQ(slowlog.rfind("*1\r\n*6\r\n:1\r\n", 0), 0u) << slowlog;
  EXPECT_NE(slowlog.find("*2\r\n$4\r\nINCR\r\n$1\r\nk\r\n$"), std::string::npos) << slowlog;
  // Secrets are not kept: AUTH's password is redacted.
  EXPECT_EQ(client.line(command({"AUTH", "hunter2"})).rfind("-", 0), 0u);
  client.send(command({"SLOWLOG", "GET", "1"}));
  const std::string auth_entry = client.read_until("\r\n$0\r\n\r\n");
  EXPECT_EQ(auth_entry.find("hunter2"), std::string::npos) << auth_entry;
  EXPECT_NE(auth_entry.find("$10\r\n(redacted)\r\n"), std::string::npos) << auth_entry;
  EXPECT_EQ(client.line(command({"CONFIG", "SET", "slowlog-log-slower-than", "-1"})), "+OK\r\n");
  EXPECT_EQ(client.line(command({"SLOWLOG", "RESET"})), "+OK\r\n");
  EXPECT_EQ(client.line(command({"SLOWLOG", "LEN"})), ":0\r\n");
  EXPECT_EQ(client.line(command({"LATENCY", "LATEST"})), "*0\r\n");
  EXPECT_EQ(client.line(command({"LATENCY", "RESET"})), ":0\r\n");
  client.send(command({"INFO", "commandstats"}));
  const std::string stats = client.read_until("\r\n\r\n");
  EXPECT_NE(stats.find("cmdstat_set:calls=1,"), std::string::npos) << stats;
  EXPECT_NE(stats.find("cmdstat_incr:calls=1,"), std::string::npos) << stats;
  EXPECT_NE(stats.find("failed_calls=1\r\n"), std::string::npos) << stats;
}

INSTANTIATE_TEST_SUITE_P(Modes, ServerTest, ::testing::Values(false, true),
                         [](const ::testing::TestParamInfo<bool>& info) {
                           return info.param ? std::string("Workers") : std::string("Loops");
                         });

TEST(GlobTest, MatchesLikeRedis) {
  EXPECT_TRUE(glob_match("*", "anything", true));
  EXPECT_TRUE(glob_match("max*", "maxclients", true));
  EXPECT_TRUE(glob_match("MAX*", "maxclients", true));
  EXPECT_FALSE(glob_match("MAX*", "maxclients", false));
  EXPECT_TRUE(glob_match("*-buffer-*", "client-query-buffer-limit", true));
  EXPECT_TRUE(glob_match("t?meout", "timeout", true));
  EXPECT_TRUE(glob_match("[st]ave", "save", true));
  EXPECT_FALSE(glob_match("[^st]ave", "save", true));
  EXPECT_TRUE(glob_match("[a-c]at", "bat", true));
  EXPECT_TRUE(glob_match("a\\*b", "a*b", true));
  EXPECT_FALSE(glob_match("a\\*b", "axb", true));
  EXPECT_FALSE(glob_match("port", "ports", true));
  EXPECT_TRUE(glob_match("*a*a*a*", "banana-a", true));
  EXPECT_FALSE(glob_match("*a*a*a*b", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", true));
}

}  // namespace
}  // namespace cairn::server
