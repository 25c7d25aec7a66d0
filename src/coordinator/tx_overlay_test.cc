#include "coordinator/tx_overlay.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "coordinator/local_keyspace.h"

namespace cairn::coordinator {
namespace {

using storage::Cell;
using storage::ValueType;

class TxOverlayTest : public ::testing::Test {
 protected:
  static constexpr int64_t kStartMs = 1'700'000'000'000;

  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    directory_ = std::filesystem::temp_directory_path() /
                 (std::string("cairn-overlay-") + info->name() + "-" + std::to_string(::getpid()));
    std::filesystem::remove_all(directory_);
    storage::EngineOptions options;
    options.path = directory_.string();
    options.durability = storage::Durability::kNone;
    options.wall_clock_ms = [this] { return now_ms_.load(); };
    auto engine = storage::Engine::open(options);
    ASSERT_TRUE(engine.is_ok()) << engine.status().to_string();
    engine_ = std::move(engine).value();
    clock_ = std::make_unique<HybridClock>([this] { return now_ms_.load(); });
    base_ = std::make_unique<LocalKeyspace>(*engine_, *clock_, 7, [this] { return now_ms_.load(); });
  }

  void TearDown() override {
    base_.reset();
    engine_.reset();
    std::filesystem::remove_all(directory_);
  }

  static std::optional<std::string> value_of(Keyspace& keyspace, const std::string& key) {
    Result<std::optional<Cell>> cell = keyspace.read(key);
    EXPECT_TRUE(cell.is_ok());
    if (!cell.is_ok() || !cell->has_value()) return std::nullopt;
    return (*cell)->value;
  }

  std::atomic<int64_t> now_ms_{kStartMs};
  std::filesystem::path directory_;
  std::unique_ptr<storage::Engine> engine_;
  std::unique_ptr<HybridClock> clock_;
  std::unique_ptr<LocalKeyspace> base_;
};

TEST_F(TxOverlayTest, WritesStayInTheOverlayUntilCommit) {
  ASSERT_TRUE(base_->write("a", ValueType::kString, "old", 0).is_ok());
  TxOverlay overlay(*base_);
  EXPECT_EQ(value_of(overlay, "a"), "old");  // not written yet: the base answers
  ASSERT_TRUE(overlay.write("a", ValueType::kString, "new", 0).is_ok());
  ASSERT_TRUE(overlay.write("b", ValueType::kString, "1", 0).is_ok());
  ASSERT_TRUE(overlay.write("b", ValueType::kString, "2", 0).is_ok());  // the last write counts
  EXPECT_EQ(value_of(overlay, "a"), "new");
  EXPECT_EQ(value_of(overlay, "b"), "2");
  EXPECT_EQ(value_of(*base_, "a"), "old");
  EXPECT_EQ(value_of(*base_, "b"), std::nullopt);
  EXPECT_EQ(overlay.collected_count(), 2u);

  ASSERT_TRUE(overlay.commit().is_ok());
  EXPECT_EQ(value_of(*base_, "a"), "new");
  EXPECT_EQ(value_of(*base_, "b"), "2");
  // One timestamp for the whole transaction.
  Result<std::optional<Cell>> a = base_->read("a");
  Result<std::optional<Cell>> b = base_->read("b");
  ASSERT_TRUE(a.is_ok() && b.is_ok() && a->has_value() && b->has_value());
  EXPECT_EQ((*a)->timestamp, (*b)->timestamp);
}

TEST_F(TxOverlayTest, AnOverlayNotCommittedLeavesNothing) {
  ASSERT_TRUE(base_->write("a", ValueType::kString, "kept", 0).is_ok());
  {
    TxOverlay overlay(*base_);
    ASSERT_TRUE(overlay.remove("a").is_ok());
    ASSERT_TRUE(overlay.write("c", ValueType::kString, "x", 0).is_ok());
    EXPECT_EQ(value_of(overlay, "a"), std::nullopt);
  }
  EXPECT_EQ(value_of(*base_, "a"), "kept");
  EXPECT_EQ(value_of(*base_, "c"), std::nullopt);
}

TEST_F(TxOverlayTest, DeletesAndExpiriesAreSeenByLaterReads) {
  ASSERT_TRUE(base_->write("a", ValueType::kString, "v", 0).is_ok());
  TxOverlay overlay(*base_);
  ASSERT_TRUE(overlay.remove("a").is_ok());
  Result<std::optional<Cell>> stored = overlay.read_stored("a");
  ASSERT_TRUE(stored.is_ok() && stored->has_value());
  EXPECT_TRUE((*stored)->tombstone);
  Result<RowRead> row = overlay.read_row("a");
  ASSERT_TRUE(row.is_ok());
  EXPECT_FALSE(row->header.has_value());
  // Already expired when written (SET ... PXAT in the past): gone at once.
  ASSERT_TRUE(overlay.write("e", ValueType::kString, "v", kStartMs - 1).is_ok());
  EXPECT_EQ(value_of(overlay, "e"), std::nullopt);
  ASSERT_TRUE(overlay.commit().is_ok());
  EXPECT_EQ(value_of(*base_, "a"), std::nullopt);
  EXPECT_EQ(value_of(*base_, "e"), std::nullopt);
}

TEST_F(TxOverlayTest, RefusesWhatItCannotCollect) {
  TxOverlay overlay(*base_);
  const std::vector<std::pair<std::string, std::string>> fields = {{"f", "v"}};
  Status status = overlay.write_fields("h", ValueType::kHash, fields);
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(status.message(), kOverlayRefusedMessage);
  EXPECT_FALSE(overlay.count().is_ok());
  EXPECT_FALSE(overlay.clear().is_ok());
  EXPECT_EQ(overlay.collected_count(), 0u);
  ASSERT_TRUE(overlay.commit().is_ok());  // nothing collected: nothing applied
  Result<RowRead> row = base_->read_row("h");
  ASSERT_TRUE(row.is_ok());
  EXPECT_FALSE(row->header.has_value());
}

TEST_F(TxOverlayTest, RowsNotWrittenAreReadFromTheBase) {
  const std::vector<std::pair<std::string, std::string>> fields = {
      {storage::field_sub_key("f"), "v"}};
  ASSERT_TRUE(base_->write("h", ValueType::kHash, storage::encode_row_header({}), 0).is_ok());
  ASSERT_TRUE(base_->write_fields("h", ValueType::kHash, fields).is_ok());
  TxOverlay overlay(*base_);
  Result<RowRead> row = overlay.read_row("h");
  ASSERT_TRUE(row.is_ok());
  ASSERT_TRUE(row->header.has_value());
  EXPECT_EQ(row->count, 1u);
  // Deleted by the transaction: no key, and its fields are not walked.
  ASSERT_TRUE(overlay.remove("h").is_ok());
  row = overlay.read_row("h");
  ASSERT_TRUE(row.is_ok());
  EXPECT_FALSE(row->header.has_value());
  ASSERT_TRUE(overlay.commit().is_ok());
  row = base_->read_row("h");
  ASSERT_TRUE(row.is_ok());
  EXPECT_FALSE(row->header.has_value());
}

}  // namespace
}  // namespace cairn::coordinator
