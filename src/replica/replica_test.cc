// Replica and TableHolder: fence texts, install rules, fencing, and scan paging bounds.

#include "replica/replica.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <memory>
#include <atomic>
#include <string>
#include <thread>
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
  EXPECT_EQ(fence_error_text(Fence{FenceCode::kMoving, 9}), "MOVING 9");
  ASSERT_TRUE(parse_fence_error("-MOVING 9").has_value());
  EXPECT_EQ(parse_fence_error("-MOVING 9")->code, FenceCode::kMoving);
  EXPECT_EQ(parse_fence_error("MOVING 9")->epoch, 9u);
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
  // A page starting at the big token: the token alone exceeds the budget, so the page stops
  // inside it, after 2000 cells, and says where to resume.
  auto second = replica.scan(1, first->second.next_token, 0, 200);
  ASSERT_TRUE(second.is_ok());
  EXPECT_FALSE(second->second.done);
  ASSERT_EQ(second->second.entries.size(), 2000u);
  EXPECT_EQ(second->second.next_token, topology::token_of(big));
  ASSERT_FALSE(second->second.resume.empty());
  EXPECT_TRUE(scan_position_inside_token(second->second.resume));
  EXPECT_EQ(scan_position_token(second->second.resume), topology::token_of(big));
  auto third = replica.scan(1, second->second.next_token, 0, 200, false, second->second.resume);
  ASSERT_TRUE(third.is_ok()) << third.status().to_string();
  EXPECT_TRUE(third->second.done);
  EXPECT_TRUE(third->second.resume.empty());
  ASSERT_EQ(third->second.entries.size(), 500u);
  EXPECT_EQ(third->second.next_token, 0u);
  // Every key of the big token exactly once, in storage order across the two pages.
  std::vector<std::string> seen;
  for (const auto* page : {&second->second, &third->second}) {
    for (const ScanEntry& entry : page->entries) seen.push_back(entry.key);
  }
  std::vector<std::string> expected = big_keys;
  std::sort(expected.begin(), expected.end(), [](const std::string& a, const std::string& b) {
    return storage::encode_key(topology::token_of(a), a) < storage::encode_key(topology::token_of(b), b);
  });
  EXPECT_EQ(seen, expected);
  // A keys-only page (a client's SCAN, whose cursor is a token) still returns the token whole.
  auto keys = replica.scan(1, first->second.next_token, 0, 200, /*keys_only=*/true);
  ASSERT_TRUE(keys.is_ok());
  EXPECT_TRUE(keys->second.done);
  EXPECT_EQ(keys->second.entries.size(), 2500u);
  // A resume position outside the start token is refused.
  EXPECT_FALSE(replica.scan(1, 0, 0, 200, false, second->second.resume).is_ok());
}

// A row bigger than a page (a hash with many fields has one token) is scanned in pages that
// stop inside it and resume after the last field returned.
TEST_F(ReplicaTest, ScanPagesThroughARowBiggerThanAPage) {
  ASSERT_TRUE(tables_.install(table_of(1, 1, 1)).is_ok());
  Replica replica(*engine_, clock_, 1, tables_);
  const std::string key = "bighash";
  constexpr int kFields = 3500;
  std::vector<std::string> sub_keys;
  for (int i = 0; i < kFields; ++i) {
    sub_keys.push_back(storage::field_sub_key("f" + std::to_string(i)));
    ASSERT_TRUE(replica.apply(1, key, cell(10), nullptr, sub_keys.back()).is_ok());
  }
  std::sort(sub_keys.begin(), sub_keys.end());
  std::vector<std::string> seen;
  Token cursor = 0;
  std::string from;
  int pages = 0;
  while (true) {
    auto page = replica.scan(1, cursor, 0, 100, false, from);
    ASSERT_TRUE(page.is_ok()) << page.status().to_string();
    ASSERT_TRUE(page->first.ok());
    ASSERT_LE(page->second.entries.size(), 1000u);  // max(100 * 10, 1000) cells
    for (const ScanEntry& entry : page->second.entries) {
      EXPECT_EQ(entry.key, key);
      seen.push_back(entry.sub_key);
    }
    ++pages;
    ASSERT_LT(pages, 100);
    if (page->second.done) break;
    cursor = page->second.next_token;
    from = page->second.resume;
    ASSERT_FALSE(from.empty());
  }
  EXPECT_EQ(pages, 4);
  EXPECT_EQ(seen, sub_keys);
}


// A cluster leaves the header of a row emptied field by field (Keyspace::deletes_emptied_rows):
// a client's keys-only scan leaves it out while the row counts no field and lists it again once
// it does; a full scan (migration, repair) still carries the header.
TEST_F(ReplicaTest, KeysOnlyScanLeavesOutARowWithoutFields) {
  ASSERT_TRUE(tables_.install(table_of(1, 1, 1)).is_ok());
  Replica replica(*engine_, clock_, 1, tables_);
  storage::Cell header = cell(10);
  header.type = storage::ValueType::kHash;
  header.value = storage::encode_row_header({0});
  ASSERT_TRUE(replica.apply(1, "h", header).is_ok());
  const std::string sub_key = storage::field_sub_key("f");
  storage::Cell field = cell(11);
  field.type = storage::ValueType::kHash;
  ASSERT_TRUE(replica.apply(1, "h", field, nullptr, sub_key).is_ok());
  ASSERT_TRUE(replica.apply(1, "s", cell(10)).is_ok());  // a string
  auto keys = [&](bool keys_only) {
    std::vector<std::string> found;
    auto page = replica.scan(1, 0, 0, 100, keys_only);
    EXPECT_TRUE(page.is_ok() && page->first.ok() && page->second.done);
    for (const ScanEntry& entry : page->second.entries) {
      if (entry.sub_key.empty()) found.push_back(entry.key);
    }
    std::sort(found.begin(), found.end());
    return found;
  };
  EXPECT_EQ(keys(true), (std::vector<std::string>{"h", "s"}));
  storage::Cell removed = cell(12);
  removed.type = storage::ValueType::kHash;
  removed.tombstone = true;
  removed.value.clear();
  ASSERT_TRUE(replica.apply(1, "h", removed, nullptr, sub_key).is_ok());
  EXPECT_EQ(keys(true), (std::vector<std::string>{"s"}));
  EXPECT_EQ(keys(false), (std::vector<std::string>{"h", "s"}));
  field.timestamp = 13;
  ASSERT_TRUE(replica.apply(1, "h", field, nullptr, storage::field_sub_key("g")).is_ok());
  EXPECT_EQ(keys(true), (std::vector<std::string>{"h", "s"}));
}

// Migration fences. Two shards of one replica each: machine 1 owns [0, 2^63).
constexpr Token kHalf = Token{1} << 63;

std::string key_below(Token bound, int index) {
  for (int i = 0;; ++i) {
    std::string key = "f" + std::to_string(index) + "-" + std::to_string(i);
    if (topology::token_of(key) < bound) return key;
  }
}

TEST_F(ReplicaTest, FenceRefusesTheRangeAtItsEpochOnly) {
  ASSERT_TRUE(tables_.install(table_of(2, 2, 1)).is_ok());
  Replica replica(*engine_, clock_, 1, tables_);
  const Token quarter = kHalf / 2;
  const std::string inside = key_below(quarter, 1);
  std::string outside;
  for (int i = 0; outside.empty(); ++i) {
    std::string key = "o" + std::to_string(i);
    const Token token = topology::token_of(key);
    if (token >= quarter && token < kHalf) outside = key;
  }
  ASSERT_TRUE(replica.apply(1, inside, cell(10)).is_ok());

  // Preconditions: this machine's epoch, and a member of the shard owning start.
  EXPECT_EQ(replica.fence_range(0, 0, quarter)->first.code, FenceCode::kStaleEpoch);
  EXPECT_EQ(replica.fence_range(2, 0, quarter)->first.code, FenceCode::kTableBehind);
  EXPECT_EQ(replica.fence_range(1, kHalf, 0)->first.code, FenceCode::kNotOwner);
  EXPECT_EQ(replica.fence_range(1, 5, 5).status().code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(replica.fences().empty());

  Result<std::pair<Fence, uint64_t>> fenced = replica.fence_range(1, 0, quarter);
  ASSERT_TRUE(fenced.is_ok()) << fenced.status().to_string();
  ASSERT_TRUE(fenced->first.ok());
  EXPECT_EQ(fenced->second, engine_->latest_sequence());
  EXPECT_EQ(replica.fences(), (std::vector<Replica::RangeFence>{{1, 0, quarter}}));

  auto write = replica.apply(1, inside, cell(11));
  ASSERT_TRUE(write.is_ok());
  EXPECT_EQ(write->first.code, FenceCode::kMoving);
  EXPECT_EQ(fence_error_text(write->first), "MOVING 1");
  EXPECT_EQ(replica.read(1, inside)->first.code, FenceCode::kMoving);
  EXPECT_EQ(replica.scan(1, 0, quarter, 10)->first.code, FenceCode::kMoving);
  EXPECT_EQ(replica.scan(1, quarter - 1, kHalf, 10)->first.code, FenceCode::kMoving);
  // Outside the fenced range: served.
  EXPECT_TRUE(replica.apply(1, outside, cell(11))->first.ok());
  EXPECT_TRUE(replica.read(1, outside)->first.ok());
  EXPECT_TRUE(replica.scan(1, quarter, kHalf, 10)->first.ok());
  // Nothing was written to the fenced range after the fence.
  EXPECT_EQ((*replica.read(1, outside)).second->timestamp, 11u);
  EXPECT_EQ((*engine_->read(topology::token_of(inside), inside))->timestamp, 10u);
  // Copies bypass fences.
  EXPECT_TRUE(*replica.apply_copied(inside, cell(12)));
  EXPECT_EQ((*engine_->read(topology::token_of(inside), inside))->timestamp, 12u);

  // Fencing again answers again, with a newer (or the same) LSN.
  Result<std::pair<Fence, uint64_t>> again = replica.fence_range(1, 0, quarter);
  ASSERT_TRUE(again.is_ok() && again->first.ok());
  EXPECT_GE(again->second, fenced->second);
  EXPECT_EQ(replica.fences().size(), 1u);

  // A newer table (the commit's or an abort's bump) lifts the fence.
  Result<RoutingTable> next = tables_.current()->split_range(0, quarter);
  ASSERT_TRUE(next.is_ok()) << next.status().to_string();
  ASSERT_TRUE(tables_.install(*next).is_ok());
  EXPECT_TRUE(replica.fences().empty());
  EXPECT_TRUE(replica.apply(2, inside, cell(13))->first.ok());
  EXPECT_TRUE(replica.read(2, inside)->first.ok());
  EXPECT_TRUE(replica.scan(2, 0, quarter, 10)->first.ok());
}

TEST_F(ReplicaTest, FenceSurvivesARestart) {
  ASSERT_TRUE(tables_.install(table_of(2, 2, 1)).is_ok());
  const std::string inside = key_below(kHalf, 2);
  {
    Replica replica(*engine_, clock_, 1, tables_);
    ASSERT_TRUE(replica.fence_range(1, 0, kHalf)->first.ok());
  }
  // Reopen the engine: the fence is read back from the meta column family.
  engine_.reset();
  storage::EngineOptions options;
  options.path = path_;
  auto engine = storage::Engine::open(options);
  ASSERT_TRUE(engine.is_ok());
  engine_ = std::move(engine).value();
  Replica replica(*engine_, clock_, 1, tables_);
  EXPECT_EQ(replica.fences(), (std::vector<Replica::RangeFence>{{1, 0, kHalf}}));
  EXPECT_EQ(replica.apply(1, inside, cell(10))->first.code, FenceCode::kMoving);
}

TEST_F(ReplicaTest, EveryAcknowledgedWriteIsBeforeTheFencedLsn) {
  ASSERT_TRUE(tables_.install(table_of(2, 2, 1)).is_ok());
  Replica replica(*engine_, clock_, 1, tables_);
  // Writers race the fence; each stops at its first MOVING answer.
  constexpr int kWriters = 2;
  constexpr int kWritesMax = 100000;
  std::atomic<int> started{0};
  std::vector<int> acknowledged(kWriters, 0);
  std::vector<std::thread> writers;
  for (int w = 0; w < kWriters; ++w) {
    writers.emplace_back([&, w] {
      for (int i = 0; i < kWritesMax; ++i) {
        auto applied = replica.apply(1, key_below(kHalf, w * kWritesMax + i), cell(10 + i));
        CAIRN_ASSERT(applied.is_ok(), applied.status().to_string());
        if (!applied->first.ok()) {
          CAIRN_ASSERT(applied->first.code == FenceCode::kMoving, "only MOVING refusals");
          return;
        }
        acknowledged[w] += 1;
        if (i == 10) started.fetch_add(1);
      }
    });
  }
  while (started.load() < kWriters) std::this_thread::yield();
  Result<std::pair<Fence, uint64_t>> fenced = replica.fence_range(1, 0, kHalf);
  for (std::thread& writer : writers) writer.join();
  ASSERT_TRUE(fenced.is_ok() && fenced->first.ok());
  // No write at all landed after the fenced LSN: every acknowledged one is at or before it.
  EXPECT_EQ(engine_->latest_sequence(), fenced->second);
  for (int w = 0; w < kWriters; ++w) EXPECT_LT(acknowledged[w], kWritesMax);
}

TEST_F(ReplicaTest, CopiedBatchObservesTheClock) {
  ASSERT_TRUE(tables_.install(table_of(1, 1, 1)).is_ok());
  Replica replica(*engine_, clock_, 1, tables_);
  const HlcTimestamp future = clock_.now() + (HlcTimestamp{1} << 40);
  const std::string key = "copied";
  Result<size_t> stored = replica.apply_copied_batch(
      {storage::WalChange{topology::token_of(key), key, cell(future), {}}});
  ASSERT_TRUE(stored.is_ok());
  EXPECT_EQ(*stored, 1u);
  EXPECT_GT(clock_.now(), future);
  EXPECT_EQ(replica.read(1, key)->second->timestamp, future);
}

}  // namespace
}  // namespace cairn::replica
