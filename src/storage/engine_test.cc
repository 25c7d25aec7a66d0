#include "storage/engine.h"

#include <gtest/gtest.h>
#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "storage/cell_compaction_filter.h"
#include "storage/temp_dir_test_util.h"

extern char** environ;

namespace cairn::storage {
namespace {

constexpr const char* kCrashDirVariable = "CAIRN_STORAGE_CRASH_TEST_DIR";
constexpr int kCrashSyncedWrites = 100;

using test::TempDir;

struct FakeClock {
  std::atomic<int64_t> now_ms{0};
  std::function<int64_t()> function() {
    return [this] { return now_ms.load(); };
  }
};

std::unique_ptr<Engine> open_engine(EngineOptions options) {
  Result<std::unique_ptr<Engine>> engine = Engine::open(options);
  CAIRN_ASSERT(engine.is_ok(), engine.status().to_string());
  return std::move(engine).value();
}

std::unique_ptr<Engine> open_engine(const std::string& path,
                                    Durability durability = Durability::kAlways) {
  EngineOptions options;
  options.path = path;
  options.durability = durability;
  return open_engine(options);
}

Cell value_cell(HlcTimestamp timestamp, std::string value, uint64_t writer = 1) {
  return Cell{.timestamp = timestamp, .writer = writer, .value = std::move(value)};
}

std::optional<Cell> read_ok(Engine& engine, topology::Token token, std::string_view key) {
  Result<std::optional<Cell>> cell = engine.read(token, key);
  CAIRN_ASSERT(cell.is_ok(), cell.status().to_string());
  return *cell;
}

bool apply_ok(Engine& engine, topology::Token token, std::string_view key, const Cell& cell) {
  Result<bool> stored = engine.apply(token, key, cell);
  CAIRN_ASSERT(stored.is_ok(), stored.status().to_string());
  return *stored;
}

TEST(DurabilityTest, ParsesAndNamesModes) {
  EXPECT_EQ(*parse_durability("always"), Durability::kAlways);
  EXPECT_EQ(*parse_durability("Batch"), Durability::kBatch);
  EXPECT_EQ(*parse_durability("none"), Durability::kNone);
  EXPECT_EQ(parse_durability("sometimes").status().code(), StatusCode::kInvalidArgument);
  for (Durability d : {Durability::kAlways, Durability::kBatch, Durability::kNone}) {
    EXPECT_EQ(*parse_durability(durability_name(d)), d);
  }
}

TEST(EngineTest, RejectsBadOptions) {
  EngineOptions options;
  EXPECT_EQ(Engine::open(options).status().code(), StatusCode::kInvalidArgument);
  TempDir dir;
  options.path = dir.path();
  options.tombstone_grace_ms = -1;
  EXPECT_EQ(Engine::open(options).status().code(), StatusCode::kInvalidArgument);
}

TEST(EngineTest, AppliesLastWriteWins) {
  TempDir dir;
  auto engine = open_engine(dir.path());
  EXPECT_FALSE(read_ok(*engine, 1, "k").has_value());
  EXPECT_TRUE(apply_ok(*engine, 1, "k", value_cell(10, "a")));
  EXPECT_FALSE(apply_ok(*engine, 1, "k", value_cell(9, "older")));
  EXPECT_FALSE(apply_ok(*engine, 1, "k", value_cell(10, "a")));  // the same cell again
  EXPECT_TRUE(apply_ok(*engine, 1, "k", value_cell(10, "b", 2)));  // tie: larger writer
  EXPECT_EQ(read_ok(*engine, 1, "k")->value, "b");
  Cell tombstone{.tombstone = true, .timestamp = 11, .writer = 1, .value = ""};
  EXPECT_TRUE(apply_ok(*engine, 1, "k", tombstone));
  EXPECT_EQ(*read_ok(*engine, 1, "k"), tombstone);
  // Same key bytes under another token is another key.
  EXPECT_FALSE(read_ok(*engine, 2, "k").has_value());
  EngineStats stats = engine->stats();
  EXPECT_EQ(stats.writes, 3u);
  EXPECT_GE(stats.latest_sequence, 3u);
  EXPECT_GT(stats.approximate_bytes, 0u);
}

TEST(EngineTest, SurvivesReopen) {
  TempDir dir;
  {
    auto engine = open_engine(dir.path());
    ASSERT_TRUE(apply_ok(*engine, 5, "", value_cell(1, std::string("\0\xff", 2))));
  }
  auto engine = open_engine(dir.path());
  EXPECT_EQ(read_ok(*engine, 5, "")->value, std::string("\0\xff", 2));
}

// Property (docs/cluster.md): applying the same cells in any order leaves the same stored cells.
// Each permutation writes to its own copy of the keys (a key prefix) in one engine, so all
// copies must end identical and equal to the in-memory fold.
TEST(EngineTest, FinalStateIsIndependentOfApplyOrder) {
  TempDir dir;
  auto engine = open_engine(dir.path(), Durability::kNone);
  std::mt19937_64 rng(1234);
  const std::vector<std::string> keys = {"a", "b", "{t}c"};
  for (int trial = 0; trial < 6; ++trial) {
    struct Write {
      size_t key;
      Cell cell;
    };
    std::vector<Write> writes;
    const size_t count = trial < 3 ? 5 : 12;  // 5! = 120 permutations; 12 cells: random ones
    for (size_t i = 0; i < count; ++i) {
      Cell cell;
      cell.tombstone = rng() % 4 == 0;
      cell.timestamp = HybridClock::make(1000 + static_cast<int64_t>(rng() % 3), rng() % 2);
      cell.writer = rng() % 2;
      cell.expire_at_ms = rng() % 3 == 0 ? 5000 : 0;
      if (!cell.tombstone) cell.value = std::to_string(rng() % 4);
      writes.push_back({rng() % keys.size(), cell});
    }
    std::vector<std::optional<Cell>> expected(keys.size());
    for (const Write& w : writes) {
      if (!expected[w.key] || supersedes(w.cell, *expected[w.key])) expected[w.key] = w.cell;
    }
    std::vector<size_t> order(count);
    for (size_t i = 0; i < count; ++i) order[i] = i;
    for (int permutation = 0; permutation < 120; ++permutation) {
      if (count == 5) {
        std::next_permutation(order.begin(), order.end());
      } else {
        std::shuffle(order.begin(), order.end(), rng);
      }
      const std::string prefix = std::to_string(trial) + "/" + std::to_string(permutation) + "/";
      for (size_t index : order) {
        const std::string key = prefix + keys[writes[index].key];
        (void)apply_ok(*engine, 7, key, writes[index].cell);
      }
      for (size_t k = 0; k < keys.size(); ++k) {
        ASSERT_EQ(read_ok(*engine, 7, prefix + keys[k]), expected[k])
            << "trial " << trial << " permutation " << permutation << " key " << keys[k];
      }
    }
  }
}

TEST(EngineTest, ScansTokenRangesInKeyOrder) {
  TempDir dir;
  auto engine = open_engine(dir.path(), Durability::kNone);
  const std::vector<topology::Token> tokens = {0, 1, 255, 256, 1ull << 40, ~0ull - 1, ~0ull};
  for (topology::Token token : tokens) {
    for (const char* key : {"", "a", "b", "aa"}) {
      ASSERT_TRUE(apply_ok(*engine, token, key, value_cell(1, std::to_string(token))));
    }
  }
  auto collect = [&](topology::Token start, topology::Token end) {
    std::vector<std::pair<topology::Token, std::string>> seen;
    Status status = engine->scan(start, end, [&](topology::Token token, std::string_view key,
                                                 const Cell& cell) {
      EXPECT_EQ(cell.value, std::to_string(token));
      seen.emplace_back(token, std::string(key));
      return true;
    });
    EXPECT_TRUE(status.is_ok()) << status.to_string();
    return seen;
  };
  auto all = collect(0, 0);
  ASSERT_EQ(all.size(), tokens.size() * 4);
  EXPECT_TRUE(std::is_sorted(all.begin(), all.end(), [](const auto& a, const auto& b) {
    return a.first < b.first;
  }));
  // Within one token: by length, then bytes.
  EXPECT_EQ(all[0].second, "");
  EXPECT_EQ(all[1].second, "a");
  EXPECT_EQ(all[2].second, "b");
  EXPECT_EQ(all[3].second, "aa");

  auto middle = collect(1, 1ull << 40);
  ASSERT_EQ(middle.size(), 3u * 4);
  EXPECT_EQ(middle.front().first, 1u);
  EXPECT_EQ(middle.back().first, 256u);
  auto tail = collect(~0ull - 1, 0);
  ASSERT_EQ(tail.size(), 2u * 4);
  EXPECT_TRUE(collect(2, 255).empty());
  EXPECT_TRUE(collect(5, 5).empty());
  EXPECT_EQ(engine->scan(10, 5, [](auto, auto, const auto&) { return true; }).code(),
            StatusCode::kInvalidArgument);

  int visited = 0;
  ASSERT_TRUE(engine->scan(0, 0, [&](auto, auto, const auto&) { return ++visited < 3; }).is_ok());
  EXPECT_EQ(visited, 3);
}

TEST(EngineTest, ClearDeletesEverything) {
  TempDir dir;
  auto engine = open_engine(dir.path());
  ASSERT_TRUE(engine->clear().is_ok());  // empty database
  for (int i = 0; i < 100; ++i) {
    ASSERT_TRUE(apply_ok(*engine, ~0ull - static_cast<uint64_t>(i % 3), std::to_string(i),
                         value_cell(5, "v")));
  }
  ASSERT_TRUE(engine->clear().is_ok());
  int visited = 0;
  ASSERT_TRUE(engine->scan(0, 0, [&](auto, auto, const auto&) { return ++visited > 0; }).is_ok());
  EXPECT_EQ(visited, 0);
  EXPECT_TRUE(apply_ok(*engine, ~0ull, "1", value_cell(1, "again")));
  EXPECT_EQ(read_ok(*engine, ~0ull, "1")->value, "again");
}

// A process that still holds the directory (a machine killed a moment ago, not yet exited):
// open() waits for it to go instead of failing, and fails clearly if it never goes.
TEST(EngineTest, OpenWaitsForAnExitingProcessToReleaseTheDirectory) {
  TempDir dir;
  open_engine(dir.path()).reset();  // creates the LOCK file
  const auto hold_lock_in_child = [&](int hold_ms) {
    int ready[2];
    CAIRN_ASSERT(::pipe(ready) == 0, "pipe");
    const pid_t child = ::fork();
    CAIRN_ASSERT(child >= 0, "fork");
    if (child == 0) {
      const int fd = ::open((dir.path() + "/LOCK").c_str(), O_RDWR);
      struct flock lock {};
      lock.l_type = F_WRLCK;
      lock.l_whence = SEEK_SET;
      if (fd < 0 || ::fcntl(fd, F_SETLK, &lock) != 0) ::_exit(1);
      const char byte = 1;
      if (::write(ready[1], &byte, 1) != 1) ::_exit(1);
      ::usleep(static_cast<useconds_t>(hold_ms) * 1000);
      ::_exit(0);
    }
    char byte = 0;
    CAIRN_ASSERT(::read(ready[0], &byte, 1) == 1, "the child took the lock");
    ::close(ready[0]);
    ::close(ready[1]);
    return child;
  };

  pid_t child = hold_lock_in_child(300);
  EngineOptions options;
  options.path = dir.path();
  const auto started = std::chrono::steady_clock::now();
  Result<std::unique_ptr<Engine>> engine = Engine::open(options);
  EXPECT_TRUE(engine.is_ok()) << engine.status().to_string();
  EXPECT_GE(std::chrono::steady_clock::now() - started, std::chrono::milliseconds(200));
  engine = Status::internal("closed");
  ::waitpid(child, nullptr, 0);

  child = hold_lock_in_child(3000);
  options.lock_wait_ms = 100;
  Result<std::unique_ptr<Engine>> refused = Engine::open(options);
  EXPECT_FALSE(refused.is_ok());
  EXPECT_NE(refused.status().message().find("lock"), std::string::npos)
      << refused.status().to_string();
  ::kill(child, SIGKILL);
  ::waitpid(child, nullptr, 0);
}

TEST(EngineTest, CorruptStoredBytesAreReported) {
  TempDir dir;
  {
    rocksdb::Options options;
    options.create_if_missing = true;
    rocksdb::DB* raw = nullptr;
    ASSERT_TRUE(rocksdb::DB::Open(options, dir.path(), &raw).ok());
    std::unique_ptr<rocksdb::DB> db(raw);
    ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), encode_key(3, "bad"), "garbage").ok());
    ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), std::string("\x00\x00", 2), "short key").ok());
    ASSERT_TRUE(db->Close().ok());
  }
  auto engine = open_engine(dir.path());
  EXPECT_EQ(engine->read(3, "bad").status().code(), StatusCode::kCorruption);
  EXPECT_EQ(engine->apply(3, "bad", value_cell(1, "x")).status().code(), StatusCode::kCorruption);
  EXPECT_EQ(engine->scan(0, 0, [](auto, auto, const auto&) { return true; }).code(),
            StatusCode::kCorruption);
  EXPECT_EQ(engine->scan(3, 4, [](auto, auto, const auto&) { return true; }).code(),
            StatusCode::kCorruption);
  // The filter keeps what it cannot decode.
  ASSERT_TRUE(engine->compact_all().is_ok());
  EXPECT_EQ(engine->read(3, "bad").status().code(), StatusCode::kCorruption);
}

TEST(EngineTest, CompactionDropsExpiredCellsAndOldTombstones) {
  TempDir dir;
  FakeClock clock;
  EngineOptions options;
  options.path = dir.path();
  options.tombstone_grace_ms = 1000;
  options.wall_clock_ms = clock.function();
  auto engine = open_engine(options);
  Cell expiring = value_cell(HybridClock::make(10, 0), "ttl");
  expiring.expire_at_ms = 500;
  Cell tombstone{
      .tombstone = true, .timestamp = HybridClock::make(100, 0), .writer = 1, .value = ""};
  ASSERT_TRUE(apply_ok(*engine, 1, "expiring", expiring));
  ASSERT_TRUE(apply_ok(*engine, 1, "deleted", tombstone));
  ASSERT_TRUE(apply_ok(*engine, 1, "forever", value_cell(HybridClock::make(10, 0), "v")));

  clock.now_ms = 499;
  ASSERT_TRUE(engine->compact_all().is_ok());
  EXPECT_TRUE(read_ok(*engine, 1, "expiring").has_value());
  EXPECT_TRUE(read_ok(*engine, 1, "deleted").has_value());

  clock.now_ms = 500;
  ASSERT_TRUE(engine->compact_all().is_ok());
  // The expired value became a tombstone with the same timestamp: it still shadows older
  // versions a lagging replica might send.
  auto expired = read_ok(*engine, 1, "expiring");
  ASSERT_TRUE(expired.has_value());
  EXPECT_TRUE(expired->tombstone);
  EXPECT_EQ(expired->timestamp, expiring.timestamp);
  EXPECT_TRUE(expired->value.empty());
  EXPECT_FALSE(apply_ok(*engine, 1, "expiring", value_cell(HybridClock::make(9, 0), "old")));
  EXPECT_TRUE(read_ok(*engine, 1, "deleted").has_value());  // 400 ms old, grace 1000

  clock.now_ms = 1100;
  ASSERT_TRUE(engine->compact_all().is_ok());
  EXPECT_FALSE(read_ok(*engine, 1, "deleted").has_value());
  EXPECT_TRUE(read_ok(*engine, 1, "expiring").has_value());  // expired at 500, grace 1000

  clock.now_ms = 1500;
  ASSERT_TRUE(engine->compact_all().is_ok());
  EXPECT_FALSE(read_ok(*engine, 1, "expiring").has_value());
  EXPECT_EQ(read_ok(*engine, 1, "forever")->value, "v");
}

// The claim behind the filter: Decision::kRemove turns the newest version into a deletion marker,
// so an older version in a level the compaction does not touch stays hidden. Driven directly on
// RocksDB to control exactly which files each compaction reads.
TEST(EngineTest, FilteredCellDoesNotResurrectOlderVersionBelow) {
  TempDir dir;
  FakeClock clock;
  CellCompactionFilter filter(clock.function(), 1000);
  rocksdb::Options options;
  options.create_if_missing = true;
  options.compaction_filter = &filter;
  options.disable_auto_compactions = true;
  options.num_levels = 7;
  rocksdb::DB* raw = nullptr;
  ASSERT_TRUE(rocksdb::DB::Open(options, dir.path(), &raw).ok());
  std::unique_ptr<rocksdb::DB> db(raw);
  auto l0_files = [&] {
    std::vector<std::string> names;
    rocksdb::ColumnFamilyMetaData meta;
    db->GetColumnFamilyMetaData(&meta);
    for (const auto& file : meta.levels[0].files) names.push_back(file.name);
    return names;
  };
  auto files_at = [&](int level) {
    std::string value;
    db->GetProperty("rocksdb.num-files-at-level" + std::to_string(level), &value);
    return std::stoi(value);
  };
  const std::string key = encode_key(42, "k");

  ASSERT_TRUE(db->Put({}, key, encode_cell(value_cell(HybridClock::make(1, 0), "v1"))).ok());
  ASSERT_TRUE(db->Flush({}).ok());
  ASSERT_TRUE(db->CompactFiles({}, l0_files(), 6).ok());
  ASSERT_EQ(files_at(6), 1);

  Cell v2 = value_cell(HybridClock::make(2, 0), "v2");
  v2.expire_at_ms = 50;
  ASSERT_TRUE(db->Put({}, key, encode_cell(v2)).ok());
  ASSERT_TRUE(db->Flush({}).ok());
  clock.now_ms = 2000;  // v2 has expired, and the grace of its deletion has run out
  ASSERT_TRUE(db->CompactFiles({}, l0_files(), 1).ok());
  ASSERT_EQ(files_at(1), 1);  // the deletion marker
  ASSERT_EQ(files_at(6), 1);  // v1, untouched

  std::string value;
  EXPECT_TRUE(db->Get({}, key, &value).IsNotFound()) << "resurrected: " << value;
  ASSERT_TRUE(db->Close().ok());

  // And through the engine, with a whole-database compaction.
  EngineOptions engine_options;
  engine_options.path = dir.path();
  engine_options.wall_clock_ms = clock.function();
  auto engine = open_engine(engine_options);
  EXPECT_FALSE(read_ok(*engine, 42, "k").has_value());
  ASSERT_TRUE(engine->compact_all().is_ok());
  EXPECT_FALSE(read_ok(*engine, 42, "k").has_value());
}

TEST(EngineTest, BatchModeSyncsInTheBackground) {
  TempDir dir;
  EngineOptions options;
  options.path = dir.path();
  options.durability = Durability::kBatch;
  options.batch_sync_interval_ms = 5;
  auto engine = open_engine(options);
  ASSERT_TRUE(apply_ok(*engine, 1, "k", value_cell(1, "v")));
  ASSERT_TRUE(engine->sync().is_ok());  // a no-op in this mode
  for (int i = 0; i < 200 && engine->stats().wal_syncs == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_GE(engine->stats().wal_syncs, 1u);
}

long resident_kib() {
  FILE* status = std::fopen("/proc/self/status", "r");
  if (status == nullptr) return -1;
  char line[256];
  long kib = -1;
  while (std::fgets(line, sizeof line, status) != nullptr) {
    if (std::sscanf(line, "VmRSS: %ld kB", &kib) == 1) break;
  }
  std::fclose(status);
  return kib;
}

// The engine's share of the idle-RSS budget (the whole server must stay under 64 MiB).
TEST(EngineTest, IdleEngineStaysSmall) {
  TempDir dir;
  const long before = resident_kib();
  auto engine = open_engine(dir.path());
  for (int i = 0; i < 1000; ++i) {
    ASSERT_TRUE(apply_ok(*engine, static_cast<topology::Token>(i) << 50, std::to_string(i),
                         value_cell(1, std::string(100, 'x'))));
  }
  ASSERT_TRUE(engine->sync().is_ok());
  const long growth_kib = resident_kib() - before;
  std::printf("[   INFO   ] RSS grew by %ld KiB after open + 1000 writes\n", growth_kib);
  EXPECT_LT(growth_kib, 24 * 1024);
}

TEST(EngineTest, NoneModeNeverSyncs) {
  TempDir dir;
  auto engine = open_engine(dir.path(), Durability::kNone);
  ASSERT_TRUE(apply_ok(*engine, 1, "k", value_cell(1, "v")));
  ASSERT_TRUE(engine->sync().is_ok());
  EXPECT_EQ(engine->stats().wal_syncs, 0u);
}

TEST(EngineTest, SyncWithoutNewWritesDoesNotFsync) {
  TempDir dir;
  auto engine = open_engine(dir.path());
  ASSERT_TRUE(apply_ok(*engine, 1, "k", value_cell(1, "v")));
  ASSERT_TRUE(engine->sync().is_ok());
  const uint64_t after_first = engine->stats().wal_syncs;
  EXPECT_GE(after_first, 1u);
  ASSERT_TRUE(engine->sync().is_ok());
  EXPECT_EQ(engine->stats().wal_syncs, after_first);
}

TEST(EngineTest, ConcurrentSyncsShareFsyncs) {
  TempDir dir;
  constexpr int kThreads = 4;
  constexpr int kRounds = 100;
  {
    auto engine = open_engine(dir.path());
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&engine, t] {
        for (int i = 0; i < kRounds; ++i) {
          const std::string key = std::to_string(t) + "/" + std::to_string(i);
          EXPECT_TRUE(engine->apply(t, key, value_cell(1, key)).is_ok());
          EXPECT_TRUE(engine->sync().is_ok());
        }
      });
    }
    for (std::thread& thread : threads) thread.join();
    const EngineStats stats = engine->stats();
    EXPECT_EQ(stats.writes, static_cast<uint64_t>(kThreads * kRounds));
    EXPECT_LT(stats.wal_syncs, static_cast<uint64_t>(kThreads * kRounds));
    std::printf("[   INFO   ] %llu WAL fsyncs for %d sync() calls\n",
                static_cast<unsigned long long>(stats.wal_syncs), kThreads * kRounds);
    EXPECT_GE(stats.wal_syncs, 1u);
  }
  auto engine = open_engine(dir.path());
  for (int t = 0; t < kThreads; ++t) {
    for (int i = 0; i < kRounds; ++i) {
      const std::string key = std::to_string(t) + "/" + std::to_string(i);
      ASSERT_EQ(read_ok(*engine, t, key)->value, key);
    }
  }
}

// Runs only inside the child process that CrashTest starts: writes and syncs, writes a few more
// cells without syncing, then dies by SIGKILL without closing anything.
TEST(DurabilityChild, WriteSyncAndDie) {
  const char* dir = std::getenv(kCrashDirVariable);
  if (dir == nullptr) GTEST_SKIP() << "only runs as the child of CrashTest";
  auto engine = open_engine(dir);
  for (int i = 0; i < kCrashSyncedWrites; ++i) {
    (void)apply_ok(*engine, static_cast<topology::Token>(i), "synced", value_cell(1, "v"));
    CAIRN_ASSERT(engine->sync().is_ok(), "sync failed");
  }
  for (int i = 0; i < 10; ++i) {
    (void)apply_ok(*engine, static_cast<topology::Token>(i), "unsynced", value_cell(1, "v"));
  }
  std::raise(SIGKILL);
}

TEST(CrashTest, SyncedWritesSurviveKill9) {
  TempDir dir;
  // A fresh process (not a fork of this multi-threaded one) so RocksDB starts its own threads.
  const std::string filter = "--gtest_filter=DurabilityChild.WriteSyncAndDie";
  const std::string variable = std::string(kCrashDirVariable) + "=" + dir.path();
  std::vector<char*> env;
  for (char** e = environ; *e != nullptr; ++e) env.push_back(*e);
  env.push_back(const_cast<char*>(variable.c_str()));
  env.push_back(nullptr);
  char exe[] = "/proc/self/exe";
  char* argv[] = {exe, const_cast<char*>(filter.c_str()), nullptr};
  pid_t child = 0;
  ASSERT_EQ(posix_spawn(&child, exe, nullptr, nullptr, argv, env.data()), 0);
  int wait_status = 0;
  ASSERT_EQ(waitpid(child, &wait_status, 0), child);
  ASSERT_TRUE(WIFSIGNALED(wait_status)) << "child exited instead of dying: " << wait_status;
  ASSERT_EQ(WTERMSIG(wait_status), SIGKILL);

  auto engine = open_engine(dir.path());
  for (int i = 0; i < kCrashSyncedWrites; ++i) {
    std::optional<Cell> cell = read_ok(*engine, static_cast<topology::Token>(i), "synced");
    ASSERT_TRUE(cell.has_value()) << "lost synced write " << i;
    EXPECT_EQ(cell->value, "v");
  }
}

}  // namespace
}  // namespace cairn::storage
