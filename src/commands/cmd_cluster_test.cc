#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "commands/data_test_fixture.h"
#include "commands/parse.h"

namespace cairn::commands {
namespace {

using testing::bulk;
using testing::error;
using testing::integer;
using testing::kOk;

class ConsistencyCommandTest : public testing::DataCommandTest {
 protected:
  void SetUp() override {
    DataCommandTest::SetUp();
    register_cluster_commands(table_);
  }

  // Like run(), but on one connection whose session persists across calls.
  std::string run_on_session(std::vector<std::string> args, int protocol = 2,
                             replica::Replica* replica = nullptr) {
    std::string out;
    resp::ReplyWriter writer(&out, protocol);
    const CommandSpec* spec = table_.find(args.at(0));
    EXPECT_NE(spec, nullptr);
    CommandContext context{args, writer, session_, *keyspace_, server_, replica};
    spec->handler(context);
    return out;
  }

  Session session_;
};

TEST_F(ConsistencyCommandTest, ShowsTheDefaultsAsAMap) {
  EXPECT_EQ(run_on_session({"consistency"}),
            "*4\r\n" + bulk("read") + bulk("QUORUM") + bulk("write") + bulk("QUORUM"));
  EXPECT_EQ(run_on_session({"consistency"}, 3),
            "%2\r\n" + bulk("read") + bulk("QUORUM") + bulk("write") + bulk("QUORUM"));
}

TEST_F(ConsistencyCommandTest, SetsEitherOrBothLevels) {
  EXPECT_EQ(run_on_session({"CONSISTENCY", "READ", "one"}), kOk);
  EXPECT_EQ(session_.request_options.read, topology::ConsistencyLevel::one());
  EXPECT_EQ(session_.request_options.write, topology::ConsistencyLevel::quorum());
  EXPECT_EQ(run_on_session({"consistency", "write", "ALL", "read", "1"}), kOk);
  EXPECT_EQ(run_on_session({"consistency"}),
            "*4\r\n" + bulk("read") + bulk("1") + bulk("write") + bulk("ALL"));
}

TEST_F(ConsistencyCommandTest, RejectsBadInputWithoutChangingAnything) {
  EXPECT_EQ(run_on_session({"consistency", "read"}), error(kErrSyntax));
  EXPECT_EQ(run_on_session({"consistency", "speed", "one"}), error(kErrSyntax));
  EXPECT_EQ(run_on_session({"consistency", "read", "one", "read", "all"}), error(kErrSyntax));
  const std::string bad = run_on_session({"consistency", "read", "one", "write", "lots"});
  EXPECT_EQ(bad.rfind("-ERR unknown consistency level 'lots'", 0), 0u) << bad;
  EXPECT_EQ(session_.request_options.read, topology::ConsistencyLevel::quorum());
}

TEST_F(ConsistencyCommandTest, SingleMachineRefusesLevelsAboveOneReplica) {
  EXPECT_EQ(run_on_session({"consistency", "write", "two"}),
            error("ERR cannot satisfy consistency TWO with 1 voting replica"));
  EXPECT_EQ(session_.request_options.write, topology::ConsistencyLevel::quorum());
}

// A keyspace whose every operation fails as an unreachable cluster would.
class UnavailableKeyspace final : public coordinator::Keyspace {
 public:
  Result<std::optional<storage::Cell>> read(std::string_view) override {
    return Status::unavailable("UNAVAILABLE 1 of 2 required replicas answered");
  }
  Result<std::vector<std::optional<storage::Cell>>> read_many(
      std::span<const std::string>) override {
    return Status::unavailable("UNAVAILABLE 0 of 2 required replicas answered");
  }
  Status write(std::string_view, storage::ValueType, std::string, int64_t) override {
    return Status::unavailable(
        "UNCERTAIN 1 of 2 required replicas acknowledged; the write may have been applied");
  }
  Status remove(std::string_view) override { return Status::io_error("IO error: disk"); }
  Status atomically(std::span<const std::string>, const std::function<Status()>&) override {
    return Status::invalid_argument("CROSSSHARD keys in request don't hash to the same shard");
  }
  Result<coordinator::ScanPage> scan(const coordinator::ScanRequest&) override {
    return Status::unavailable("NOTABLE this machine has no routing table yet");
  }
  Result<uint64_t> count() override { return Status::internal("broken"); }
  Result<std::optional<std::string>> random_key() override { return Status::internal("broken"); }
  Status clear() override { return Status::internal("broken"); }
  int64_t now_ms() override { return 0; }
};

TEST_F(ConsistencyCommandTest, ClusterErrorsReachTheClientWithTheirOwnCode) {
  UnavailableKeyspace unavailable;
  keyspace_override_ = &unavailable;
  EXPECT_EQ(run({"set", "k", "v"}),
            error("UNCERTAIN 1 of 2 required replicas acknowledged; the write may have been "
                  "applied"));
  EXPECT_EQ(run({"get", "k"}), error("UNAVAILABLE 1 of 2 required replicas answered"));
  EXPECT_EQ(run({"mget", "a", "b"}), error("UNAVAILABLE 0 of 2 required replicas answered"));
  EXPECT_EQ(run({"exists", "a", "b"}), error("UNAVAILABLE 0 of 2 required replicas answered"));
  EXPECT_EQ(run({"incr", "k"}), error("CROSSSHARD keys in request don't hash to the same shard"));
  EXPECT_EQ(run({"dbsize"}), error("ERR broken"));
}

TEST(StorageErrorReplyTest, OnlyKnownCodeWordsKeepTheirPrefix) {
  EXPECT_EQ(storage_error_reply(Status::unavailable("NOLEADER shard 2 has none")),
            "NOLEADER shard 2 has none");
  EXPECT_EQ(storage_error_reply(Status::unavailable("REDIRECT")), "REDIRECT");
  EXPECT_EQ(storage_error_reply(Status::io_error("IO error: disk")), "ERR IO error: disk");
  EXPECT_EQ(storage_error_reply(Status::invalid_argument("cannot satisfy consistency TWO")),
            "ERR cannot satisfy consistency TWO");
  EXPECT_EQ(storage_error_reply(Status::internal("UNCERTAINTY")), "ERR UNCERTAINTY");
}

TEST_F(ConsistencyCommandTest, MgetAndExistsStillAnswerPerKey) {
  EXPECT_EQ(run({"set", "a", "1"}), kOk);
  EXPECT_EQ(run({"mget", "a", "missing", "a"}), "*3\r\n" + bulk("1") + "$-1\r\n" + bulk("1"));
  EXPECT_EQ(run({"exists", "a", "missing", "a"}), integer(2));
}

}  // namespace
}  // namespace cairn::commands
