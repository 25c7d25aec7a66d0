// Range digests (anti-entropy repair): equal contents give equal digests, a difference shows in
// the leaf of the differing key only, and what compaction may change on its own schedule (an
// expired value turned tombstone, a hidden field, a tombstone past grace) never shows.

#include "replica/range_digest.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "common/hlc.h"
#include "storage/cell.h"
#include "storage/engine.h"
#include "storage/temp_dir_test_util.h"
#include "topology/token.h"

namespace cairn::replica {
namespace {

using topology::Token;

constexpr int64_t kNow = 1'700'000'000'000;

class Store {
 public:
  Store() {
    storage::EngineOptions options;
    options.path = dir_.path();
    options.durability = storage::Durability::kNone;
    options.wall_clock_ms = [] { return kNow; };
    options.tombstone_grace_ms = 3'600'000;
    auto engine = storage::Engine::open(options);
    CAIRN_ASSERT(engine.is_ok(), engine.status().to_string());
    engine_ = std::move(engine).value();
  }
  storage::Engine& engine() { return *engine_; }
  void put(std::string_view key, const storage::Cell& cell) {
    ASSERT_TRUE(engine_->apply(topology::token_of(key), key, cell).is_ok());
  }
  void put_field(std::string_view key, std::string_view field, const storage::Cell& cell) {
    ASSERT_TRUE(engine_->apply_field(topology::token_of(key), key, storage::field_sub_key(field),
                                     cell)
                    .is_ok());
  }
  RangeDigest digest(size_t leaves = 16) {
    Result<RangeDigest> digest = digest_range(*engine_, 0, 0, leaves, 1'000'000, kNow);
    CAIRN_ASSERT(digest.is_ok(), digest.status().to_string());
    return std::move(digest).value();
  }

 private:
  storage::test::TempDir dir_;  // outlives the engine
  std::unique_ptr<storage::Engine> engine_;
};

storage::Cell value(int64_t ms, std::string text, int64_t expire_at_ms = 0) {
  return storage::Cell{.timestamp = HybridClock::make(ms, 0), .writer = 1,
                       .expire_at_ms = expire_at_ms, .value = std::move(text)};
}

TEST(LeavesTest, CoverTheRangeWithoutGaps) {
  for (const auto& [start, end] : {std::pair<Token, Token>{0, 0}, {100, 1000},
                                   {Token{1} << 63, 0}, {5, 6}}) {
    for (size_t leaves : {1u, 3u, 64u}) {
      EXPECT_EQ(leaf_start(start, end, leaves, 0), start);
      EXPECT_EQ(leaf_start(start, end, leaves, leaves), end);
      for (size_t leaf = 0; leaf < leaves; ++leaf) {
        const Token first = leaf_start(start, end, leaves, leaf);
        const Token next = leaf_start(start, end, leaves, leaf + 1);
        if (first == next) continue;  // a range narrower than its leaves
        EXPECT_EQ(leaf_of(start, end, leaves, first), leaf);
        EXPECT_EQ(leaf_of(start, end, leaves, next - 1), leaf);
      }
    }
  }
}

TEST(RangeDigestTest, EqualCopiesDigestEqualAndADifferenceNamesItsLeaf) {
  Store a;
  Store b;
  for (int i = 0; i < 200; ++i) {
    const std::string key = "key:" + std::to_string(i);
    a.put(key, value(kNow - 1000 + i, "v" + std::to_string(i)));
    b.put(key, value(kNow - 1000 + i, "v" + std::to_string(i)));
  }
  a.put_field("row", "f1", value(kNow - 10, "x"));
  b.put_field("row", "f1", value(kNow - 10, "x"));
  RangeDigest left = a.digest();
  RangeDigest right = b.digest();
  EXPECT_EQ(left.hashes, right.hashes);
  EXPECT_EQ(left.cells, right.cells);
  EXPECT_EQ(left.visited, 201u);  // 200 keys and one field
  EXPECT_FALSE(left.truncated);

  // b misses one newer write of key:7: only key:7's leaf differs.
  a.put("key:7", value(kNow, "newer"));
  left = a.digest();
  const size_t leaf = leaf_of(0, 0, 16, topology::token_of("key:7"));
  for (size_t i = 0; i < 16; ++i) {
    EXPECT_EQ(left.hashes[i] == right.hashes[i], i != leaf) << "leaf " << i;
  }
}

TEST(RangeDigestTest, WhatCompactionChangesOnItsOwnScheduleDoesNotShow) {
  Store a;
  Store b;
  // An expired value on a, the tombstone compaction makes of it on b.
  a.put("expired", value(kNow - 5000, "gone", kNow - 100));
  storage::Cell tombstone = value(kNow - 5000, "", kNow - 100);
  tombstone.tombstone = true;
  b.put("expired", tombstone);
  // A tombstone past the grace period, on a only (b compacted it away).
  storage::Cell old = value(kNow - 7'200'000, "");
  old.tombstone = true;
  a.put("long-deleted", old);
  // A field its row's deletion hides, on a only (b's compaction dropped it).
  a.put_field("row", "f", value(kNow - 500, "x"));
  storage::Cell deleted = value(kNow - 100, "");
  deleted.tombstone = true;
  deleted.type = storage::ValueType::kHash;
  a.put("row", deleted);
  b.put("row", deleted);
  EXPECT_EQ(a.digest().hashes, b.digest().hashes);
  EXPECT_EQ(a.digest().visited, 4u);
}

TEST(RangeDigestTest, StopsAfterMaxCells) {
  Store a;
  for (int i = 0; i < 50; ++i) a.put("k" + std::to_string(i), value(kNow, "v"));
  Result<RangeDigest> digest = digest_range(a.engine(), 0, 0, 4, 10, kNow);
  ASSERT_TRUE(digest.is_ok());
  EXPECT_TRUE(digest->truncated);
  EXPECT_EQ(digest->visited, 10u);
  EXPECT_FALSE(digest_range(a.engine(), 10, 5, 4, 10, kNow).is_ok());
  EXPECT_FALSE(digest_range(a.engine(), 0, 0, 0, 10, kNow).is_ok());
}

}  // namespace
}  // namespace cairn::replica
