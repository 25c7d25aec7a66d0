// Loopback cluster: three Server instances in this process, one shard replicated three times,
// with the routing table pushed over the internal protocol as the launcher does. Checks the
// execution model end to end: a write through one machine is read through another, a
// read-modify-write command on a non-leader is forwarded to the leader, and with one machine
// stopped QUORUM still works while ALL reports the missing replica.

#include <unistd.h>

#include <gtest/gtest.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "net/peer_pool.h"
#include "server/cluster_runner.h"
#include "server/raw_client_test.h"
#include "server/server.h"
#include "topology/routing_table.h"

namespace cairn::server {
namespace {

using test_support::bulk;
using test_support::command;
using test_support::RawClient;

constexpr std::string_view kSecret = "loopback-secret";
constexpr size_t kMachines = 3;

class ClusterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = std::filesystem::temp_directory_path() /
            ("cairn-cluster-test-" + std::to_string(::getpid()) + "-" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(root_);
    std::vector<topology::Machine> machines;
    for (size_t i = 0; i < kMachines; ++i) {
      ServerConfig config;
      config.port = 0;
      config.bind = "127.0.0.1";
      config.data_dir = (root_ / ("m" + std::to_string(i + 1))).string();
      config.threads = 1;
      config.workers = 4;
      config.cluster_secret = std::string(kSecret);
      config.machine_id = i + 1;
      config.request_timeout_ms = 500;
      auto server = Server::start(config);
      ASSERT_TRUE(server.is_ok()) << server.status().to_string();
      topology::Machine machine;
      machine.id = i + 1;
      machine.address = "127.0.0.1:" + std::to_string((*server)->port());
      machine.internal_address = machine.address;  // one port for clients and machines
      machines.push_back(machine);
      servers_.push_back(std::move(*server));
    }
    auto table = topology::RoutingTable::make_initial(machines, 1, 3, 4);
    ASSERT_TRUE(table.is_ok()) << table.status().to_string();
    leader_ = table->shards().front().leader;
    net::PeerPoolOptions options;
    options.secret = std::string(kSecret);
    net::PeerPool pool(options);
    for (const topology::Machine& machine : machines) {
      auto reply = pool.call_sync(machine.address, {"CAIRN.TABLE", "SET", table->to_json_text()},
                                  5000);
      ASSERT_TRUE(reply.is_ok()) << reply.status().to_string();
      ASSERT_EQ(reply->type, resp::Value::Type::kSimple) << reply->str;
    }
  }
  void TearDown() override {
    servers_.clear();
    std::filesystem::remove_all(root_);
  }
  uint16_t port(uint64_t machine_id) const { return servers_[machine_id - 1]->port(); }

  std::filesystem::path root_;
  std::vector<std::unique_ptr<Server>> servers_;
  uint64_t leader_ = 0;
};

TEST_F(ClusterTest, WritesReplicateAndReadModifyWriteIsForwardedToTheLeader) {
  RawClient first(port(1));
  RawClient third(port(3));
  EXPECT_EQ(first.line(command({"SET", "k", "v"})), "+OK\r\n");
  third.send(command({"GET", "k"}));
  EXPECT_EQ(third.read(bulk("v").size()), bulk("v"));
  // Every replica holds it: read each one alone.
  for (uint64_t id = 1; id <= kMachines; ++id) {
    RawClient client(port(id));
    EXPECT_EQ(client.line(command({"CONSISTENCY", "READ", "ONE"})), "+OK\r\n");
    client.send(command({"GET", "k"}));
    EXPECT_EQ(client.read(bulk("v").size()), bulk("v")) << "machine " << id;
  }

  const uint64_t follower = leader_ == 1 ? 2 : 1;
  RawClient client(port(follower));
  // Pipelined: the forwarded replies keep their order among the others.
  client.send(command({"INCR", "counter"}) + command({"INCR", "counter"}) +
              command({"GET", "counter"}) + command({"SET", "lock", "x", "NX"}) +
              command({"SET", "lock", "y", "NX"}));
  EXPECT_EQ(client.read(std::string(":1\r\n:2\r\n$1\r\n2\r\n+OK\r\n$-1\r\n").size()),
            ":1\r\n:2\r\n$1\r\n2\r\n+OK\r\n$-1\r\n");
  client.send(command({"INFO", "cluster"}));
  const std::string header = client.read_until("\r\n");
  const std::string info = client.read(std::stoul(header.substr(1)) + 2);
  EXPECT_NE(info.find("cairn_cluster_mode:1\r\n"), std::string::npos) << info;
  EXPECT_NE(info.find("machine_id:" + std::to_string(follower) + "\r\n"), std::string::npos);
  EXPECT_NE(info.find("epoch:1\r\n"), std::string::npos) << info;
  EXPECT_EQ(info.find("forwarded_to_leader:0\r\n"), std::string::npos) << info;

  // A client cannot use the internal protocol.
  EXPECT_EQ(client.line(command({"CAIRN.FORWARD", "2", "QUORUM", "QUORUM", "GET", "k"})),
            "-NOPERM this command is for cluster machines\r\n");
  EXPECT_EQ(client.line(command({"CAIRN.CLEAR"})),
            "-NOPERM this command is for cluster machines\r\n");
}

TEST_F(ClusterTest, QuorumSurvivesOneStoppedMachineAndAllDoesNot) {
  const uint64_t stopped = leader_ == 3 ? 2 : 3;
  const uint64_t serving = leader_;
  servers_[stopped - 1].reset();
  RawClient client(port(serving));
  EXPECT_EQ(client.line(command({"SET", "a", "1"})), "+OK\r\n");
  client.send(command({"GET", "a"}));
  EXPECT_EQ(client.read(bulk("1").size()), bulk("1"));
  EXPECT_EQ(client.line(command({"INCR", "a"})), ":2\r\n");

  EXPECT_EQ(client.line(command({"CONSISTENCY", "WRITE", "ALL"})), "+OK\r\n");
  const std::string uncertain = client.line(command({"SET", "a", "3"}));
  // How many acknowledged depends on when the coordinator gave up (it may answer as soon as the
  // failure of the stopped replica makes ALL impossible); that it is uncertain does not.
  EXPECT_EQ(uncertain.rfind("-UNCERTAIN ", 0), 0u) << uncertain;
  EXPECT_NE(uncertain.find(" of 3 required replicas acknowledged"), std::string::npos);
  EXPECT_EQ(client.line(command({"CONSISTENCY", "READ", "ALL", "WRITE", "QUORUM"})), "+OK\r\n");
  const std::string unavailable = client.line(command({"GET", "a"}));
  EXPECT_EQ(unavailable.rfind("-UNAVAILABLE ", 0), 0u) << unavailable;
  EXPECT_NE(unavailable.find(" of 3 required replicas answered"), std::string::npos);
  // The connection's own levels changed nothing for others: QUORUM still reads.
  RawClient other(port(serving));
  other.send(command({"GET", "a"}));
  EXPECT_EQ(other.read(bulk("3").size()), bulk("3"));
}

TEST(EncodeReplyTest, ReencodesEveryReplyType) {
  resp::Value array;
  array.type = resp::Value::Type::kArray;
  resp::Value bulk_value;
  bulk_value.type = resp::Value::Type::kBulk;
  bulk_value.str = "a\r\nb";
  resp::Value integer;
  integer.type = resp::Value::Type::kInteger;
  integer.integer = -5;
  resp::Value null;
  array.elements = {bulk_value, integer, null};
  std::string out;
  encode_reply(array, 2, out);
  EXPECT_EQ(out, "*3\r\n$4\r\na\r\nb\r\n:-5\r\n$-1\r\n");
  out.clear();
  encode_reply(null, 3, out);
  EXPECT_EQ(out, "_\r\n");
  resp::Value map;
  map.type = resp::Value::Type::kMap;
  resp::Value simple;
  simple.type = resp::Value::Type::kSimple;
  simple.str = "read";
  resp::Value error;
  error.type = resp::Value::Type::kError;
  error.str = "ERR x";
  map.elements = {simple, error};
  out.clear();
  encode_reply(map, 3, out);
  EXPECT_EQ(out, "%1\r\n+read\r\n-ERR x\r\n");
}

}  // namespace
}  // namespace cairn::server
