// Hinted-handoff storage of the engine: bounds, order, drop, durability across reopen.

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include "storage/engine.h"

namespace cairn::storage {
namespace {

class HintsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = "/tmp/cairn-hints-test-XXXXXX";
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    path_ = pattern;
    reopen();
  }
  void TearDown() override {
    engine_.reset();
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  void reopen() {
    engine_.reset();
    EngineOptions options;
    options.path = path_;
    options.durability = Durability::kNone;
    Result<std::unique_ptr<Engine>> engine = Engine::open(options);
    ASSERT_TRUE(engine.is_ok()) << engine.status().to_string();
    engine_ = std::move(engine).value();
  }
  static Cell cell(HlcTimestamp timestamp, std::string value) {
    return Cell{.timestamp = timestamp, .writer = 3, .value = std::move(value)};
  }
  std::vector<Hint> hints(uint64_t target, size_t max_count = 100) {
    Result<std::vector<Hint>> result = engine_->hints_for(target, max_count);
    EXPECT_TRUE(result.is_ok()) << result.status().to_string();
    return result.is_ok() ? std::move(result).value() : std::vector<Hint>{};
  }

  static constexpr size_t kManyHints = 1000;
  static constexpr size_t kManyBytes = 1 << 20;
  std::string path_;
  std::unique_ptr<Engine> engine_;
};

TEST_F(HintsTest, StoredInOrderPerTarget) {
  ASSERT_TRUE(engine_->store_hint(2, "a", cell(10, "x"), kManyHints, kManyBytes).is_ok());
  ASSERT_TRUE(engine_->store_hint(5, "b", cell(11, "y"), kManyHints, kManyBytes).is_ok());
  Cell tombstone = cell(12, "");
  tombstone.tombstone = true;
  ASSERT_TRUE(engine_->store_hint(2, "c", tombstone, kManyHints, kManyBytes).is_ok());

  std::vector<Hint> two = hints(2);
  ASSERT_EQ(two.size(), 2u);
  EXPECT_EQ(two[0].target, 2u);
  EXPECT_EQ(two[0].key, "a");
  EXPECT_EQ(two[0].cell, cell(10, "x"));
  EXPECT_EQ(two[1].key, "c");
  EXPECT_EQ(two[1].cell, tombstone);
  EXPECT_LT(two[0].sequence, two[1].sequence);
  ASSERT_EQ(hints(5).size(), 1u);
  EXPECT_TRUE(hints(4).empty());
  EXPECT_EQ(hints(2, 1).size(), 1u);
  EXPECT_EQ(engine_->hint_counts(),
            (std::vector<std::pair<uint64_t, uint64_t>>{{2, 2}, {5, 1}}));
}

TEST_F(HintsTest, FieldsOfRowsKeepTheirSubKeyAcrossReopen) {
  const std::string sub_key = field_sub_key("field");
  ASSERT_TRUE(engine_->store_hint(2, "h", cell(10, "v"), kManyHints, kManyBytes, sub_key).is_ok());
  ASSERT_TRUE(engine_->store_hint(2, "s", cell(11, "w"), kManyHints, kManyBytes).is_ok());
  // A key whose bytes look like the sub-key marker stays a plain key.
  const std::string odd_key("\xff\xff\xff\xff", 4);
  ASSERT_TRUE(engine_->store_hint(2, odd_key, cell(12, "x"), kManyHints, kManyBytes).is_ok());
  reopen();
  std::vector<Hint> two = hints(2);
  ASSERT_EQ(two.size(), 3u);
  EXPECT_EQ(two[0].key, "h");
  EXPECT_EQ(two[0].sub_key, sub_key);
  EXPECT_EQ(two[0].cell, cell(10, "v"));
  EXPECT_EQ(two[1].key, "s");
  EXPECT_TRUE(two[1].sub_key.empty());
  EXPECT_EQ(two[1].cell, cell(11, "w"));
  EXPECT_EQ(two[2].key, odd_key);
  EXPECT_TRUE(two[2].sub_key.empty());
}

TEST_F(HintsTest, BoundsPerTarget) {
  ASSERT_TRUE(engine_->store_hint(1, "a", cell(1, "x"), 2, kManyBytes).is_ok());
  ASSERT_TRUE(engine_->store_hint(1, "b", cell(2, "x"), 2, kManyBytes).is_ok());
  Status full = engine_->store_hint(1, "c", cell(3, "x"), 2, kManyBytes);
  EXPECT_EQ(full.code(), StatusCode::kBusy);
  // Another target has its own budget.
  EXPECT_TRUE(engine_->store_hint(9, "c", cell(3, "x"), 2, kManyBytes).is_ok());
  // Byte bound: a big value does not fit, a small one does.
  EXPECT_EQ(engine_->store_hint(7, "k", cell(1, std::string(500, 'v')), kManyHints, 300).code(),
            StatusCode::kBusy);
  EXPECT_TRUE(engine_->store_hint(7, "k", cell(1, "v"), kManyHints, 300).is_ok());
  EXPECT_EQ(engine_->hint_counts(),
            (std::vector<std::pair<uint64_t, uint64_t>>{{1, 2}, {7, 1}, {9, 1}}));
  // Dropping frees room.
  ASSERT_TRUE(engine_->drop_hints(1, hints(1)[0].sequence).is_ok());
  EXPECT_TRUE(engine_->store_hint(1, "c", cell(3, "x"), 2, kManyBytes).is_ok());
}

TEST_F(HintsTest, DropIsInclusiveAndPerTarget) {
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(engine_->store_hint(1, "k" + std::to_string(i), cell(i + 1, "v"), kManyHints,
                                    kManyBytes)
                    .is_ok());
    ASSERT_TRUE(engine_->store_hint(2, "k", cell(i + 1, "v"), kManyHints, kManyBytes).is_ok());
  }
  std::vector<Hint> before = hints(1);
  ASSERT_EQ(before.size(), 5u);
  ASSERT_TRUE(engine_->drop_hints(1, before[2].sequence).is_ok());
  std::vector<Hint> after = hints(1);
  ASSERT_EQ(after.size(), 2u);
  EXPECT_EQ(after[0].key, "k3");
  EXPECT_EQ(hints(2).size(), 5u);
  ASSERT_TRUE(engine_->drop_hints(1, UINT64_MAX).is_ok());
  EXPECT_TRUE(hints(1).empty());
  ASSERT_TRUE(engine_->drop_hints(1, UINT64_MAX).is_ok());  // nothing left: still fine
  EXPECT_EQ(engine_->hint_counts(), (std::vector<std::pair<uint64_t, uint64_t>>{{2, 5}}));
}

TEST_F(HintsTest, DurableAcrossReopenWithCountersAndSequence) {
  ASSERT_TRUE(engine_->store_hint(4, "a", cell(1, "x"), 3, kManyBytes).is_ok());
  ASSERT_TRUE(engine_->store_hint(4, "b", cell(2, "y"), 3, kManyBytes).is_ok());
  ASSERT_TRUE(engine_->store_hint(UINT64_MAX, "z", cell(2, "y"), 3, kManyBytes).is_ok());
  const uint64_t last = hints(UINT64_MAX)[0].sequence;
  ASSERT_TRUE(engine_->sync().is_ok());
  reopen();
  std::vector<Hint> stored = hints(4);
  ASSERT_EQ(stored.size(), 2u);
  EXPECT_EQ(stored[1].cell, cell(2, "y"));
  EXPECT_EQ(engine_->hint_counts(),
            (std::vector<std::pair<uint64_t, uint64_t>>{{4, 2}, {UINT64_MAX, 1}}));
  // The counter survived the reopen: the bound still applies and sequences keep increasing.
  ASSERT_TRUE(engine_->store_hint(4, "c", cell(3, "z"), 3, kManyBytes).is_ok());
  EXPECT_EQ(engine_->store_hint(4, "d", cell(4, "z"), 3, kManyBytes).code(), StatusCode::kBusy);
  EXPECT_GT(hints(4)[2].sequence, last);
  // Hints are not data: clear() (FLUSHALL) leaves them.
  ASSERT_TRUE(engine_->clear().is_ok());
  EXPECT_EQ(hints(4).size(), 3u);
}

}  // namespace
}  // namespace cairn::storage
