#include "coordinator/local_keyspace.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "topology/token.h"

namespace cairn::coordinator {
namespace {

using storage::Cell;
using storage::ValueType;

class LocalKeyspaceTest : public ::testing::Test {
 protected:
  static constexpr int64_t kStartMs = 1'700'000'000'000;
  static constexpr uint64_t kWriterId = 42;

  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    directory_ = std::filesystem::temp_directory_path() /
                 (std::string("cairn-keyspace-") + info->name() + "-" + std::to_string(::getpid()));
    std::filesystem::remove_all(directory_);
    storage::EngineOptions options;
    options.path = directory_.string();
    options.durability = storage::Durability::kNone;
    options.wall_clock_ms = [this] { return now_ms_.load(); };
    auto engine = storage::Engine::open(options);
    ASSERT_TRUE(engine.is_ok()) << engine.status().to_string();
    engine_ = std::move(engine).value();
    clock_ = std::make_unique<HybridClock>([this] { return now_ms_.load(); });
    keyspace_ = std::make_unique<LocalKeyspace>(*engine_, *clock_, kWriterId,
                                                [this] { return now_ms_.load(); });
  }

  void TearDown() override {
    keyspace_.reset();
    engine_.reset();
    std::filesystem::remove_all(directory_);
  }

  void put(const std::string& key, const std::string& value, int64_t expire_at_ms = 0) {
    ASSERT_TRUE(keyspace_->write(key, ValueType::kString, value, expire_at_ms).is_ok());
  }

  std::optional<std::string> get(const std::string& key) {
    Result<std::optional<Cell>> cell = keyspace_->read(key);
    EXPECT_TRUE(cell.is_ok());
    if (!cell.is_ok() || !cell->has_value()) return std::nullopt;
    return (*cell)->value;
  }

  // Every key of a full iteration with pages of `count`, plus the number of pages.
  std::vector<std::string> scan_all(size_t count, int* pages) {
    std::vector<std::string> keys;
    ScanRequest request;
    request.count = count;
    *pages = 0;
    do {
      Result<ScanPage> page = keyspace_->scan(request);
      EXPECT_TRUE(page.is_ok());
      if (!page.is_ok()) break;
      ++*pages;
      keys.insert(keys.end(), page->keys.begin(), page->keys.end());
      if (page->next_cursor != 0) {
        EXPECT_GT(page->next_cursor, request.cursor);
      }
      request.cursor = page->next_cursor;
    } while (request.cursor != 0 && *pages < 1'000'000);
    return keys;
  }

  std::atomic<int64_t> now_ms_{kStartMs};
  std::filesystem::path directory_;
  std::unique_ptr<storage::Engine> engine_;
  std::unique_ptr<HybridClock> clock_;
  std::unique_ptr<LocalKeyspace> keyspace_;
};

TEST_F(LocalKeyspaceTest, WriteReadRemove) {
  EXPECT_EQ(get("k"), std::nullopt);
  put("k", "v1");
  EXPECT_EQ(get("k"), "v1");
  put("k", "v2");
  EXPECT_EQ(get("k"), "v2");
  ASSERT_TRUE(keyspace_->remove("k").is_ok());
  EXPECT_EQ(get("k"), std::nullopt);
  put("k", "v3");
  EXPECT_EQ(get("k"), "v3");
}

TEST_F(LocalKeyspaceTest, WritesAreStampedWithHlcAndWriterId) {
  put("k", "v");
  Result<std::optional<Cell>> first = engine_->read(topology::token_of("k"), "k");
  ASSERT_TRUE(first.is_ok() && first->has_value());
  EXPECT_EQ((*first)->writer, kWriterId);
  EXPECT_EQ(HybridClock::physical_ms((*first)->timestamp), kStartMs);
  ASSERT_TRUE(keyspace_->remove("k").is_ok());
  Result<std::optional<Cell>> second = engine_->read(topology::token_of("k"), "k");
  ASSERT_TRUE(second.is_ok() && second->has_value());
  EXPECT_TRUE((*second)->tombstone);
  EXPECT_GT((*second)->timestamp, (*first)->timestamp);
}

TEST_F(LocalKeyspaceTest, ReadsHideExpiredCells) {
  put("k", "v", kStartMs + 100);
  Result<std::optional<Cell>> cell = keyspace_->read("k");
  ASSERT_TRUE(cell.is_ok() && cell->has_value());
  EXPECT_EQ((*cell)->expire_at_ms, kStartMs + 100);
  now_ms_ += 99;
  EXPECT_EQ(get("k"), "v");
  now_ms_ += 1;
  EXPECT_EQ(get("k"), std::nullopt);
  EXPECT_EQ(*keyspace_->count(), 0u);
  EXPECT_EQ(keyspace_->now_ms(), kStartMs + 100);
}

TEST_F(LocalKeyspaceTest, WriteAfterRestartWithClockBehindWinsThroughTheRecordedClock) {
  // Before the "restart": the wall clock runs a minute ahead and a write is acknowledged (synced,
  // which records the HLC in the WAL).
  keyspace_.reset();
  engine_.reset();
  now_ms_ = kStartMs + 60'000;
  auto open = [&](HybridClock& clock) {
    storage::EngineOptions options;
    options.path = directory_.string();
    options.durability = storage::Durability::kNone;
    options.wall_clock_ms = [this] { return now_ms_.load(); };
    options.clock_to_record = [&clock] { return clock.last(); };
    auto engine = storage::Engine::open(options);
    EXPECT_TRUE(engine.is_ok()) << engine.status().to_string();
    return std::move(engine).value();
  };
  HybridClock ahead([this] { return now_ms_.load(); });
  engine_ = open(ahead);
  keyspace_ = std::make_unique<LocalKeyspace>(*engine_, ahead, kWriterId,
                                              [this] { return now_ms_.load(); });
  put("k", "old");
  ASSERT_TRUE(engine_->sync().is_ok());
  keyspace_.reset();
  engine_.reset();

  // After it: the wall clock went back a minute. The new HLC observes the recorded reading, as
  // the server does at start, so the next write is stamped after the acknowledged one and wins.
  now_ms_ = kStartMs;
  engine_ = open(*clock_);
  Result<uint64_t> recorded = engine_->recorded_clock();
  ASSERT_TRUE(recorded.is_ok());
  EXPECT_GE(*recorded, HybridClock::make(kStartMs + 60'000, 0));
  clock_->observe(*recorded);
  keyspace_ = std::make_unique<LocalKeyspace>(*engine_, *clock_, kWriterId,
                                              [this] { return now_ms_.load(); });
  EXPECT_EQ(get("k"), "old");
  put("k", "new");
  EXPECT_EQ(get("k"), "new");
  ASSERT_TRUE(keyspace_->remove("k").is_ok());
  EXPECT_EQ(get("k"), std::nullopt);
}

TEST_F(LocalKeyspaceTest, ConcurrentPlainWritesToOneKeyAreAllAcknowledged) {
  // Writers on several threads race on one key: a write overtaken by a later-stamped one is
  // ordered before it (last-write-wins), never reported as a failure.
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 2000; ++i) {
        if (!keyspace_->write("hot", ValueType::kString, std::to_string(t), 0).is_ok()) {
          failures.fetch_add(1);
        }
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_TRUE(get("hot").has_value());
}

TEST_F(LocalKeyspaceTest, AtomicallyLocksManyKeysSharingStripes) {
  // More keys than the engine has stripes, with repeats: several keys share a stripe, which must
  // be locked once (a second lock of the same mutex would deadlock).
  std::vector<std::string> keys;
  for (int i = 0; i < 3000; ++i) keys.push_back("key:" + std::to_string(i % 2500));
  bool ran = false;
  ASSERT_TRUE(keyspace_
                  ->atomically(keys,
                               [&] {
                                 ran = true;
                                 return Status::ok();
                               })
                  .is_ok());
  EXPECT_TRUE(ran);
  // Errors from fn are returned as they are.
  Status status = keyspace_->atomically(keys, [] { return Status::busy("no"); });
  EXPECT_EQ(status.code(), StatusCode::kBusy);
}

TEST_F(LocalKeyspaceTest, AtomicallySerializesReadModifyWrite) {
  constexpr int kThreads = 4;
  constexpr int kRounds = 150;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([this, t] {
      // Each thread increments two counters, naming them in a different order.
      std::vector<std::string> keys = t % 2 == 0 ? std::vector<std::string>{"{a}x", "b"}
                                                 : std::vector<std::string>{"b", "{a}x"};
      for (int i = 0; i < kRounds; ++i) {
        Status status = keyspace_->atomically(keys, [&] {
          for (const std::string& key : keys) {
            const std::optional<std::string> value = get(key);
            const int current = value ? std::stoi(*value) : 0;
            Status written =
                keyspace_->write(key, ValueType::kString, std::to_string(current + 1), 0);
            if (!written.is_ok()) return written;
          }
          return Status::ok();
        });
        ASSERT_TRUE(status.is_ok());
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(get("{a}x"), std::to_string(kThreads * kRounds));
  EXPECT_EQ(get("b"), std::to_string(kThreads * kRounds));
}

TEST_F(LocalKeyspaceTest, ScanVisitsEveryLiveKeyOnceAndKeepsTagsTogether) {
  std::set<std::string> expected;
  for (int group = 0; group < 30; ++group) {
    for (int i = 0; i < 5; ++i) {
      const std::string key = "{g" + std::to_string(group) + "}" + std::to_string(i);
      put(key, "v");
      expected.insert(key);
    }
  }
  for (int i = 0; i < 100; ++i) {
    const std::string key = "k" + std::to_string(i);
    put(key, "v");
    expected.insert(key);
  }
  put("deleted", "v");
  ASSERT_TRUE(keyspace_->remove("deleted").is_ok());
  put("expired", "v", kStartMs + 1);
  now_ms_ += 1;

  for (size_t count : {size_t{1}, size_t{7}, size_t{10}, size_t{100000}, SIZE_MAX}) {
    SCOPED_TRACE(count);
    int pages = 0;
    std::vector<std::string> keys = scan_all(count, &pages);
    EXPECT_EQ(keys.size(), expected.size());
    EXPECT_EQ(std::set<std::string>(keys.begin(), keys.end()), expected);
    if (count == 1) {
      EXPECT_EQ(pages, 130);  // one page per live token: 30 tag groups + 100 plain keys
    }
  }
  EXPECT_EQ(*keyspace_->count(), expected.size());

  // A page ends on a token boundary: all keys of a tag group come in the same page.
  ScanRequest request;
  request.count = 1;
  do {
    Result<ScanPage> page = keyspace_->scan(request);
    ASSERT_TRUE(page.is_ok());
    std::set<topology::Token> tokens;
    for (const std::string& key : page->keys) tokens.insert(topology::token_of(key));
    EXPECT_LE(tokens.size(), 1u);
    if (!page->keys.empty() && page->keys[0][0] == '{') {
      EXPECT_EQ(page->keys.size(), 5u);
    }
    request.cursor = page->next_cursor;
  } while (request.cursor != 0);
}

TEST_F(LocalKeyspaceTest, ScanFilterAndBoundedWorkOverTombstones) {
  for (int i = 0; i < 3000; ++i) put("dead" + std::to_string(i), "v");
  for (int i = 0; i < 3000; ++i) ASSERT_TRUE(keyspace_->remove("dead" + std::to_string(i)).is_ok());
  put("alive", "v");
  put("other", "v");
  // Only tombstones in the way: pages come back empty but the cursor moves on, within bounded work.
  ScanRequest request;
  request.count = 1;
  request.filter = [](std::string_view key, const Cell&) { return key == "alive"; };
  int pages = 0;
  int empty_pages = 0;
  std::vector<std::string> keys;
  do {
    Result<ScanPage> page = keyspace_->scan(request);
    ASSERT_TRUE(page.is_ok());
    ++pages;
    if (page->keys.empty()) ++empty_pages;
    keys.insert(keys.end(), page->keys.begin(), page->keys.end());
    request.cursor = page->next_cursor;
  } while (request.cursor != 0);
  EXPECT_EQ(keys, std::vector<std::string>{"alive"});
  EXPECT_GE(pages, 3);  // 3000 tombstones at most 1000 per page
  EXPECT_GE(empty_pages, 1);
}

TEST_F(LocalKeyspaceTest, RandomKeyAndClear) {
  Result<std::optional<std::string>> none = keyspace_->random_key();
  ASSERT_TRUE(none.is_ok());
  EXPECT_FALSE(none->has_value());
  put("a", "1");
  put("b", "2");
  put("c", "3");
  ASSERT_TRUE(keyspace_->remove("c").is_ok());
  std::set<std::string> seen;
  for (int i = 0; i < 100; ++i) {
    Result<std::optional<std::string>> key = keyspace_->random_key();
    ASSERT_TRUE(key.is_ok() && key->has_value());
    seen.insert(**key);
  }
  EXPECT_EQ(seen, (std::set<std::string>{"a", "b"}));
  EXPECT_EQ(*keyspace_->count(), 2u);
  ASSERT_TRUE(keyspace_->clear().is_ok());
  EXPECT_EQ(*keyspace_->count(), 0u);
  EXPECT_EQ(get("a"), std::nullopt);
  int pages = 0;
  EXPECT_TRUE(scan_all(10, &pages).empty());
}

}  // namespace
}  // namespace cairn::coordinator
