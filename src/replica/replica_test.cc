// Replica and TableHolder: fence texts, install rules, fencing, and scan paging bounds.

#include "replica/replica.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "replica/table_holder.h"
#include "topology/routing_table.h"
#include "topology/token.h"

namespace cairn::replica {
namespace {

using topology::RoutingTable;
using topology::Token;

RoutingTable table_of(size_t machine_count, uint32_t shards, uint32_t rf) {
  std::vector<topology::Machine> machines;
  for (uint64_t id = 1; id <= machine_count; ++id) {
    machines.push_back(topology::Machine{id, "127.0.0." + std::to_string(id) + ":7000",
                                         "127.0.0." + std::to_string(id) + ":7000",
                                         topology::MachineState::kUp});
  }
  Result<RoutingTable> table = RoutingTable::make_initial(machines, shards, rf, 1);
  CAIRN_ASSERT(table.is_ok(), table.status().to_string());
  return std::move(table).value();
}

TEST(FenceText, RoundTrips) {
  for (const Fence& fence : {Fence{FenceCode::kStaleEpoch, 7}, Fence{FenceCode::kTableBehind, 5},
                             Fence{FenceCode::kNotOwner, 0}, Fence{FenceCode::kNoTable, 0}}) {
    const std::string text = fence_error_text(fence);
    std::optional<Fence> parsed = parse_fence_error(text);
    ASSERT_TRUE(parsed.has_value()) << text;
    EXPECT_EQ(parsed->code, fence.code);
    EXPECT_EQ(parsed->epoch, fence.epoch);
    ASSERT_TRUE(parse_fence_error("-" + text).has_value());
  }
  EXPECT_EQ(fence_error_text(Fence{FenceCode::kStaleEpoch, 7}), "STALEEPOCH 7");
  EXPECT_EQ(fence_error_text(Fence{FenceCode::kNoTable, 0}), "NOTABLE");
  EXPECT_FALSE(parse_fence_error("ERR something").has_value());
  EXPECT_FALSE(parse_fence_error("STALEEPOCH").has_value());
  EXPECT_FALSE(parse_fence_error("STALEEPOCH x").has_value());
  EXPECT_FALSE(parse_fence_error("STALEEPOCH -1").has_value());
  EXPECT_FALSE(parse_fence_error("").has_value());
}

TEST(TableHolder, EpochNeverGoesBackwards) {
  TableHolder holder;
  EXPECT_EQ(holder.current(), nullptr);
  EXPECT_EQ(holder.epoch(), 0u);
  std::vector<uint64_t> seen;
  holder.on_change([&](const RoutingTable& table) {
    seen.push_back(table.epoch());
    EXPECT_EQ(holder.epoch(), table.epoch());  // a listener may read the holder
  });
  const RoutingTable first = table_of(3, 1, 3);
  ASSERT_TRUE(holder.install(first).is_ok());
  ASSERT_TRUE(holder.install(first).is_ok());  // identical: idempotent, no notification
  Result<RoutingTable> second = first.split_range(0, 100);
  Result<RoutingTable> rival = first.split_range(0, 200);
  ASSERT_TRUE(second.is_ok() && rival.is_ok());
  ASSERT_TRUE(holder.install(*second).is_ok());
  EXPECT_EQ(holder.install(*rival).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(holder.install(first).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(holder.epoch(), 2u);
  EXPECT_EQ(*holder.current(), *second);
  EXPECT_EQ(seen, (std::vector<uint64_t>{1, 2}));
}

class ReplicaTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = "/tmp/cairn-replica-test-XXXXXX";
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    path_ = pattern;
    storage::EngineOptions options;
    options.path = path_;
    options.durability = storage::Durability::kNone;
    auto engine = storage::Engine::open(options);
    ASSERT_TRUE(engine.is_ok()) << engine.status().to_string();
    engine_ = std::move(engine).value();
  }
  void TearDown() override {
    engine_.reset();
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  static storage::Cell cell(HlcTimestamp timestamp) {
    return storage::Cell{.timestamp = timestamp, .writer = 1, .value = "v"};
  }

  std::string path_;
  std::unique_ptr<storage::Engine> engine_;
  HybridClock clock_;
  TableHolder tables_;
};

TEST_F(ReplicaTest, ExtrasAndJoiningAreServedOthersNot) {
  // Shard 1 = machines 1, 2; machine 3 an extra, 4 joining, 5 a spare.
  RoutingTable base = table_of(5, 1, 2);
  topology::RoutingTableSpec spec = base.spec();
  spec.shards[0].extras = {3};
  spec.shards[0].joining = {4};
  for (topology::Machine& machine : spec.machines) {
    if (machine.id == 3 || machine.id == 4) machine.state = topology::MachineState::kUp;
  }
  Result<RoutingTable> table = RoutingTable::create(spec);
  ASSERT_TRUE(table.is_ok()) << table.status().to_string();
  ASSERT_TRUE(tables_.install(*table).is_ok());
  for (uint64_t id = 1; id <= 5; ++id) {
    Replica replica(*engine_, clock_, id, tables_);
    EXPECT_EQ(replica.check(1, 12345).code, id == 5 ? FenceCode::kNotOwner : FenceCode::kNone)
        << id;
  }
}

// Keys behind hash tags, so the test chooses how many cells each token holds.
std::vector<std::string> tagged_keys(const std::string& tag, size_t count) {
  std::vector<std::string> keys;
  for (size_t i = 0; i < count; ++i) keys.push_back("{" + tag + "}" + std::to_string(i));
  return keys;
}

TEST_F(ReplicaTest, ScanWorkIsBoundedAtTokenBoundaries) {
  ASSERT_TRUE(tables_.install(table_of(1, 1, 1)).is_ok());
  Replica replica(*engine_, clock_, 1, tables_);
  // Two tags ordered by token: the first holds 150 keys, the second 2500 (more than the work
  // bound of max(200 * 10, 1000) = 2000 cells).
  std::string small = "a";
  std::string big = "b";
  if (topology::token_of(small) > topology::token_of(big)) std::swap(small, big);
  const std::vector<std::string> small_keys = tagged_keys(small, 150);
  const std::vector<std::string> big_keys = tagged_keys(big, 2500);
  for (const auto* keys : {&small_keys, &big_keys}) {
    for (const std::string& key : *keys) {
      ASSERT_TRUE(replica.apply(1, key, cell(10)).is_ok());
    }
  }
  auto first = replica.scan(1, 0, 0, 200);
  ASSERT_TRUE(first.is_ok()) << first.status().to_string();
  ASSERT_TRUE(first->first.ok());
  // Out of budget inside the big token: the page ends before it.
  EXPECT_FALSE(first->second.done);
  EXPECT_EQ(first->second.entries.size(), 150u);
  EXPECT_EQ(first->second.next_token, topology::token_of(big));
  // A page starting at the big token returns it whole: the cursor cannot split a token.
  auto second = replica.scan(1, first->second.next_token, 0, 200);
  ASSERT_TRUE(second.is_ok());
  EXPECT_TRUE(second->second.done);
  EXPECT_EQ(second->second.entries.size(), 2500u);
  EXPECT_EQ(second->second.next_token, 0u);
}

}  // namespace
}  // namespace cairn::replica
