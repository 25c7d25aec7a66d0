#include "replica/tx_intents.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "topology/token.h"

namespace cairn::replica {
namespace {

class TxIntentsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    directory_ = std::filesystem::temp_directory_path() /
                 (std::string("cairn-intents-") + info->name() + "-" + std::to_string(::getpid()));
    std::filesystem::remove_all(directory_);
    open();
  }

  void TearDown() override {
    intents_.reset();
    engine_.reset();
    std::filesystem::remove_all(directory_);
  }

  void open() {
    intents_.reset();
    engine_.reset();
    storage::EngineOptions options;
    options.path = directory_.string();
    options.durability = storage::Durability::kNone;
    auto engine = storage::Engine::open(options);
    ASSERT_TRUE(engine.is_ok()) << engine.status().to_string();
    engine_ = std::move(engine).value();
    intents_ = std::make_unique<TxIntents>(*engine_, [this] { return now_ms_.load(); });
    ASSERT_TRUE(intents_->load().is_ok());
  }

  static storage::WalChange cell(const std::string& key, const std::string& value,
                                 HlcTimestamp timestamp) {
    storage::WalChange change;
    change.token = topology::token_of(key);
    change.key = key;
    change.cell.value = value;
    change.cell.timestamp = timestamp;
    change.cell.writer = 3;
    return change;
  }

  static TxIntent intent(const std::string& txid, std::vector<storage::WalChange> cells,
                         std::vector<std::string> reads = {}) {
    TxIntent made;
    made.txid = txid;
    made.home_key = "home";
    made.cells = std::move(cells);
    made.reads = std::move(reads);
    return made;
  }

  std::optional<std::string> stored_value(const std::string& key) {
    Result<std::optional<storage::Cell>> stored = engine_->read(topology::token_of(key), key);
    EXPECT_TRUE(stored.is_ok());
    if (!stored.is_ok() || !stored->has_value()) return std::nullopt;
    return (*stored)->value;
  }

  std::atomic<int64_t> now_ms_{1'700'000'000'000};
  std::filesystem::path directory_;
  std::unique_ptr<storage::Engine> engine_;
  std::unique_ptr<TxIntents> intents_;
};

TEST_F(TxIntentsTest, EncodingRoundTrips) {
  TxIntent original =
      intent("t1", {cell("a", "1", 10), cell("b", std::string("\0:x", 3), 10)}, {"r1", "r:2"});
  original.prepared_ms = 42;
  std::optional<TxIntent> decoded = decode_intent(encode_intent(original));
  ASSERT_TRUE(decoded.has_value());
  EXPECT_EQ(decoded->txid, "t1");
  EXPECT_EQ(decoded->home_key, "home");
  EXPECT_EQ(decoded->prepared_ms, 42);
  ASSERT_EQ(decoded->cells.size(), 2u);
  EXPECT_EQ(decoded->cells[1].cell, original.cells[1].cell);
  EXPECT_EQ(decoded->cells[1].token, topology::token_of("b"));
  EXPECT_EQ(decoded->reads, original.reads);
  EXPECT_FALSE(decode_intent("3:abc").has_value());
  EXPECT_FALSE(decode_intent(encode_intent(original) + "x").has_value());

  std::optional<std::pair<uint64_t, TxIntent>> put = parse_intent_put(intent_put_args(7, original));
  ASSERT_TRUE(put.has_value());
  EXPECT_EQ(put->first, 7u);
  EXPECT_EQ(put->second.cells.size(), 2u);
  EXPECT_EQ(put->second.reads, original.reads);
}

TEST_F(TxIntentsTest, AKeyIsHeldByOneTransactionAtATime) {
  ASSERT_TRUE(intents_->prepare(intent("t1", {cell("a", "1", 10)}, {"r"})).is_ok());
  EXPECT_EQ(intents_->holder("a"), "t1");
  EXPECT_EQ(intents_->holder("r"), "t1");  // read keys are held too
  Status conflict = intents_->prepare(intent("t2", {cell("r", "2", 11)}));
  EXPECT_EQ(conflict.code(), StatusCode::kBusy);
  EXPECT_EQ(conflict.message().rfind("TXCONFLICT", 0), 0u);
  EXPECT_EQ(intents_->pending(), 1u);
  // The same transaction prepared again replaces its intent.
  ASSERT_TRUE(intents_->prepare(intent("t1", {cell("b", "1", 10)})).is_ok());
  EXPECT_FALSE(intents_->holder("a").has_value());
  EXPECT_EQ(intents_->holder("b"), "t1");
}

TEST_F(TxIntentsTest, CommitAppliesEveryCellAndReleasesTheKeys) {
  ASSERT_TRUE(intents_->prepare(intent("t1", {cell("a", "1", 10), cell("b", "2", 10)})).is_ok());
  EXPECT_EQ(stored_value("a"), std::nullopt);  // an intent is not applied
  ASSERT_TRUE(intents_->resolve("t1", TxDecision::kCommit).is_ok());
  EXPECT_EQ(stored_value("a"), "1");
  EXPECT_EQ(stored_value("b"), "2");
  EXPECT_FALSE(intents_->holder("a").has_value());
  EXPECT_EQ(intents_->pending(), 0u);
  // Resolving again (a late RESOLVE, recovery after the coordinator) changes nothing.
  ASSERT_TRUE(intents_->resolve("t1", TxDecision::kCommit).is_ok());
  EXPECT_EQ(stored_value("a"), "1");
}

TEST_F(TxIntentsTest, AbortDropsTheCells) {
  ASSERT_TRUE(intents_->prepare(intent("t1", {cell("a", "1", 10)})).is_ok());
  ASSERT_TRUE(intents_->resolve("t1", TxDecision::kAbort).is_ok());
  EXPECT_EQ(stored_value("a"), std::nullopt);
  EXPECT_FALSE(intents_->holder("a").has_value());
}

TEST_F(TxIntentsTest, ACommitWithoutAnIntentAppliesTheCellsItCarries) {
  const std::vector<storage::WalChange> cells = {cell("a", "1", 10)};
  ASSERT_TRUE(intents_->resolve("t9", TxDecision::kCommit, &cells).is_ok());
  EXPECT_EQ(stored_value("a"), "1");
}

TEST_F(TxIntentsTest, IntentsSurviveARestartAndAgeForRecovery) {
  ASSERT_TRUE(intents_->prepare(intent("t1", {cell("a", "1", 10)})).is_ok());
  now_ms_ += 5000;
  ASSERT_TRUE(intents_->prepare(intent("t2", {cell("b", "1", 10)})).is_ok());
  open();
  EXPECT_EQ(intents_->pending(), 2u);
  EXPECT_EQ(intents_->holder("a"), "t1");
  const std::vector<TxIntent> old = intents_->prepared_before(now_ms_ - 1000, 10);
  ASSERT_EQ(old.size(), 1u);
  EXPECT_EQ(old[0].txid, "t1");
  EXPECT_EQ(intents_->prepared_before(now_ms_, 1).size(), 1u);  // bounded by `max`
}

TEST_F(TxIntentsTest, TheFirstDecisionRecordedWins) {
  Result<TxDecision> first = intents_->record_first("t1", TxDecision::kCommit);
  ASSERT_TRUE(first.is_ok());
  EXPECT_EQ(*first, TxDecision::kCommit);
  Result<TxDecision> second = intents_->record_first("t1", TxDecision::kAbort);
  ASSERT_TRUE(second.is_ok());
  EXPECT_EQ(*second, TxDecision::kCommit);
  open();
  Result<TxDecision> after_restart = intents_->record_first("t1", TxDecision::kAbort);
  ASSERT_TRUE(after_restart.is_ok());
  EXPECT_EQ(*after_restart, TxDecision::kCommit);
}

}  // namespace
}  // namespace cairn::replica
