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
#include <numeric>
#include <set>
#include <map>
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
                                                 std::string_view, const Cell& cell) {
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
  EXPECT_EQ(engine->scan(10, 5, [](auto, auto, auto, const auto&) { return true; }).code(),
            StatusCode::kInvalidArgument);

  int visited = 0;
  ASSERT_TRUE(engine->scan(0, 0, [&](auto, auto, auto, const auto&) { return ++visited < 3; }).is_ok());
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
  ASSERT_TRUE(engine->scan(0, 0, [&](auto, auto, auto, const auto&) { return ++visited > 0; }).is_ok());
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

EngineOptions options_at(const std::string& path) {
  EngineOptions options;
  options.path = path;
  return options;
}

// Writes raw entries into the RocksDB directory `path` (created if missing) with the engine's
// three column families: `cells` into the default family, `meta` into the meta family.
void write_raw(const std::string& path,
               const std::vector<std::pair<std::string, std::string>>& cells,
               const std::vector<std::pair<std::string, std::string>>& meta) {
  rocksdb::Options options;
  options.create_if_missing = true;
  options.create_missing_column_families = true;
  const std::vector<rocksdb::ColumnFamilyDescriptor> families = {
      {rocksdb::kDefaultColumnFamilyName, rocksdb::ColumnFamilyOptions()},
      {"meta", rocksdb::ColumnFamilyOptions()},
      {"hints", rocksdb::ColumnFamilyOptions()}};
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  ASSERT_TRUE(rocksdb::DB::Open(options, path, families, &handles, &raw).ok());
  std::unique_ptr<rocksdb::DB> db(raw);
  for (const auto& [key, value] : cells) {
    ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), handles[0], key, value).ok());
  }
  for (const auto& [key, value] : meta) {
    ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), handles[1], key, value).ok());
  }
  for (rocksdb::ColumnFamilyHandle* handle : handles) {
    ASSERT_TRUE(db->DestroyColumnFamilyHandle(handle).ok());
  }
  ASSERT_TRUE(db->Close().ok());
}

TEST(EngineTest, AFreshDirectoryRecordsTheFormatVersion) {
  TempDir dir;
  { auto engine = open_engine(dir.path()); }
  // Reopening a directory in the current version works, with or without data.
  {
    auto engine = open_engine(dir.path());
    ASSERT_TRUE(apply_ok(*engine, 5, "k", value_cell(1, "v")));
  }
  auto engine = open_engine(dir.path());
  EXPECT_EQ(read_ok(*engine, 5, "k")->value, "v");
  EXPECT_EQ(*engine->get_meta("format-version"), std::optional<std::string>("2"));
}

TEST(EngineTest, AnUnversionedDirectoryWithDataIsRefused) {
  TempDir dir;
  write_raw(dir.path(), {{encode_key(3, "old"), encode_cell(value_cell(1, "v"))}},
            {{"hlc", std::string(8, '\0')}});
  Result<std::unique_ptr<Engine>> engine = Engine::open(options_at(dir.path()));
  ASSERT_FALSE(engine.is_ok());
  EXPECT_EQ(engine.status().code(), StatusCode::kInvalidArgument);
  const std::string& message = engine.status().message();
  EXPECT_NE(message.find("older than format version 2"), std::string::npos) << message;
  EXPECT_NE(message.find("empty --data-dir"), std::string::npos) << message;
  // Refusing changed nothing: the data is still there for the older version to read.
  EXPECT_FALSE(Engine::open(options_at(dir.path())).is_ok());
}

TEST(EngineTest, AnUnversionedDirectoryWithoutDataGetsTheVersion) {
  TempDir dir;
  write_raw(dir.path(), {}, {{"routing-table", "{}"}});
  auto engine = open_engine(dir.path());
  EXPECT_EQ(*engine->get_meta("format-version"), std::optional<std::string>("2"));
  EXPECT_EQ(*engine->get_meta("routing-table"), std::optional<std::string>("{}"));
}

TEST(EngineTest, AnotherFormatVersionIsRefused) {
  for (const char* version : {"1", "3"}) {
    TempDir dir;
    write_raw(dir.path(), {}, {{"format-version", version}});
    Result<std::unique_ptr<Engine>> engine = Engine::open(options_at(dir.path()));
    ASSERT_FALSE(engine.is_ok()) << version;
    EXPECT_NE(engine.status().message().find(std::string("format version ") + version),
              std::string::npos)
        << engine.status().message();
  }
}

TEST(EngineTest, CorruptStoredBytesAreReported) {
  TempDir dir;
  write_raw(dir.path(),
            {{encode_key(3, "bad"), "garbage"}, {std::string("\x00\x00", 2), "short key"}},
            {{"format-version", "2"}});
  auto engine = open_engine(dir.path());
  EXPECT_EQ(engine->read(3, "bad").status().code(), StatusCode::kCorruption);
  EXPECT_EQ(engine->apply(3, "bad", value_cell(1, "x")).status().code(), StatusCode::kCorruption);
  EXPECT_EQ(engine->scan(0, 0, [](auto, auto, auto, const auto&) { return true; }).code(),
            StatusCode::kCorruption);
  EXPECT_EQ(engine->scan(3, 4, [](auto, auto, auto, const auto&) { return true; }).code(),
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

TEST(PurgeBoundsTest, RaiseLookUpAndReplaceOverlappingShapes) {
  PurgeBounds bounds;
  EXPECT_EQ(bounds.bound(5), 0);
  bounds.raise(100, 200, 50);
  EXPECT_EQ(bounds.bound(99), 0);
  EXPECT_EQ(bounds.bound(100), 50);
  EXPECT_EQ(bounds.bound(199), 50);
  EXPECT_EQ(bounds.bound(200), 0);
  bounds.raise(100, 200, 40);  // never lowered
  EXPECT_EQ(bounds.bound(150), 50);
  bounds.raise(200, 0, 70);  // to the ring's end
  EXPECT_EQ(bounds.bound(~topology::Token{0}), 70);
  // A split range replaces the entry it overlaps; the rest of the old entry loses its bound.
  bounds.raise(150, 200, 60);
  EXPECT_EQ(bounds.bound(120), 0);
  EXPECT_EQ(bounds.bound(160), 60);
  EXPECT_EQ(bounds.entries().size(), 2u);
}

// A deletion below its range's purge bound goes at the next compaction, before the grace period
// ends; one at or above the bound, or in another range, waits for the grace period.
TEST(EngineTest, CompactionPurgesDeletionsBelowTheirRangesBound) {
  TempDir dir;
  FakeClock clock;
  clock.now_ms = 10'000;
  EngineOptions options;
  options.path = dir.path();
  options.tombstone_grace_ms = 1'000'000;
  options.wall_clock_ms = clock.function();
  auto engine = open_engine(options);
  auto tombstone_at = [](int64_t ms) {
    return Cell{.tombstone = true, .timestamp = HybridClock::make(ms, 0), .writer = 1, .value = ""};
  };
  ASSERT_TRUE(apply_ok(*engine, 10, "old", tombstone_at(5'000)));
  ASSERT_TRUE(apply_ok(*engine, 10, "new", tombstone_at(9'000)));
  ASSERT_TRUE(apply_ok(*engine, 500, "elsewhere", tombstone_at(5'000)));
  Cell expired = value_cell(HybridClock::make(1'000, 0), "ttl");
  expired.expire_at_ms = 4'000;
  ASSERT_TRUE(apply_ok(*engine, 10, "expired", expired));
  ASSERT_TRUE(apply_ok(*engine, 10, "live", value_cell(HybridClock::make(1'000, 0), "v")));
  engine->purge_bounds().raise(0, 100, 8'000);
  EXPECT_TRUE(engine->may_have_purged(10, tombstone_at(5'000)));
  EXPECT_FALSE(engine->may_have_purged(10, tombstone_at(9'000)));
  EXPECT_FALSE(engine->may_have_purged(500, tombstone_at(5'000)));
  ASSERT_TRUE(engine->compact_all().is_ok());
  EXPECT_FALSE(read_ok(*engine, 10, "old").has_value());
  EXPECT_FALSE(read_ok(*engine, 10, "expired").has_value());
  EXPECT_TRUE(read_ok(*engine, 10, "new").has_value());
  EXPECT_TRUE(read_ok(*engine, 500, "elsewhere").has_value());
  EXPECT_EQ(read_ok(*engine, 10, "live")->value, "v");
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

// ---- Rows (docs/formats.md "Rows") ----

Cell header_cell(HlcTimestamp timestamp, HlcTimestamp delete_through, int64_t expire_at_ms = 0) {
  return Cell{.type = ValueType::kHash,
              .timestamp = timestamp,
              .writer = 1,
              .expire_at_ms = expire_at_ms,
              .value = encode_row_header({delete_through})};
}

Cell field_cell(HlcTimestamp timestamp, std::string value, bool tombstone = false) {
  return Cell{.tombstone = tombstone,
              .type = ValueType::kHash,
              .timestamp = timestamp,
              .writer = 1,
              .value = tombstone ? std::string() : std::move(value)};
}

uint64_t row_count(Engine& engine, std::string_view key) {
  Result<StoredRow> row = engine.read_row(7, key);
  CAIRN_ASSERT(row.is_ok(), row.status().to_string());
  return row->state.count;
}

bool apply_field_ok(Engine& engine, std::string_view key, std::string_view field, const Cell& cell) {
  Result<bool> stored = engine.apply_field(7, key, field_sub_key(field), cell);
  CAIRN_ASSERT(stored.is_ok(), stored.status().to_string());
  return *stored;
}

TEST(EngineRowTest, CountsFieldsUnderPerFieldLastWriteWins) {
  TempDir dir;
  auto engine = open_engine(dir.path());
  ASSERT_TRUE(apply_ok(*engine, 7, "h", header_cell(10, 0)));
  EXPECT_TRUE(apply_field_ok(*engine, "h", "a", field_cell(11, "1")));
  EXPECT_TRUE(apply_field_ok(*engine, "h", "b", field_cell(12, "2")));
  EXPECT_TRUE(apply_field_ok(*engine, "h", "", field_cell(13, "empty name")));
  EXPECT_EQ(row_count(*engine, "h"), 3u);
  EXPECT_TRUE(apply_field_ok(*engine, "h", "a", field_cell(14, "1b")));  // overwrite: same count
  EXPECT_FALSE(apply_field_ok(*engine, "h", "a", field_cell(9, "old")));  // older: ignored
  EXPECT_EQ(row_count(*engine, "h"), 3u);
  EXPECT_TRUE(apply_field_ok(*engine, "h", "b", field_cell(15, "", true)));  // HDEL
  EXPECT_EQ(row_count(*engine, "h"), 2u);
  // A delete older than the stored value loses, whatever order the replicas saw them in.
  EXPECT_FALSE(apply_field_ok(*engine, "h", "a", field_cell(13, "", true)));
  EXPECT_EQ(row_count(*engine, "h"), 2u);
  // Cells of other namespaces (a sorted set's score index) never count.
  ASSERT_TRUE(engine->apply_field(7, "h", score_index_sub_key(1, "a"), field_cell(16, "")).is_ok());
  EXPECT_EQ(row_count(*engine, "h"), 2u);
  // The header's string neighbour and the fields do not mix: the string key "h" of another token
  // and the row are apart.
  EXPECT_EQ(read_ok(*engine, 7, "h")->type, ValueType::kHash);
  std::vector<std::string> fields;
  ASSERT_TRUE(engine
                  ->scan_row(7, "h", {}, [&](std::string_view sub_key, const Cell& cell) {
                    std::optional<std::string_view> field = field_of_sub_key(sub_key);
                    if (!cell.tombstone && field) fields.emplace_back(*field);
                    return true;
                  })
                  .is_ok());
  EXPECT_EQ(fields, (std::vector<std::string>{"", "a"}));
}

TEST(EngineRowTest, KeyLevelDeleteHidesOlderFieldsAndRecountsNewerOnes) {
  TempDir dir;
  auto engine = open_engine(dir.path());
  ASSERT_TRUE(apply_ok(*engine, 7, "h", header_cell(10, 0)));
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(apply_field_ok(*engine, "h", "f" + std::to_string(i), field_cell(20 + i, "v")));
  }
  // A field of the next life of the key arrives before the DEL that precedes it (replicas
  // receive writes in any order).
  ASSERT_TRUE(apply_field_ok(*engine, "h", "late", field_cell(40, "v")));
  EXPECT_EQ(row_count(*engine, "h"), 6u);
  Cell tombstone{.tombstone = true, .timestamp = 30, .writer = 1, .value = ""};
  ASSERT_TRUE(apply_ok(*engine, 7, "h", tombstone));
  EXPECT_EQ(row_count(*engine, "h"), 1u);  // only "late" is newer than the DEL
  EXPECT_EQ(engine->read_row(7, "h")->state.delete_through, 30u);
  // A field written before the DEL but delivered after it is refused and reports the bound.
  HlcTimestamp newer = 0;
  Result<bool> stored = engine->apply_field(7, "h", field_sub_key("f9"), field_cell(25, "v"), &newer);
  ASSERT_TRUE(stored.is_ok());
  EXPECT_FALSE(*stored);
  EXPECT_EQ(newer, 30u);
  // A new header cannot lower the bound (it only rises).
  ASSERT_TRUE(apply_ok(*engine, 7, "h", header_cell(41, 0)));
  EXPECT_EQ(engine->read_row(7, "h")->state.delete_through, 30u);
  EXPECT_EQ(row_count(*engine, "h"), 1u);
  // A string written over the row hides all of it.
  ASSERT_TRUE(apply_ok(*engine, 7, "h", value_cell(50, "s")));
  EXPECT_EQ(row_count(*engine, "h"), 0u);
}

TEST(EngineRowTest, CompactionDropsHiddenFieldsAndExpiredRows) {
  TempDir dir;
  FakeClock clock;
  clock.now_ms = 1'000;
  EngineOptions options;
  options.path = dir.path();
  options.wall_clock_ms = clock.function();
  auto engine = open_engine(options);
  const HlcTimestamp t = HybridClock::make(100, 0);
  ASSERT_TRUE(apply_ok(*engine, 7, "dead", header_cell(t, 0)));
  ASSERT_TRUE(apply_ok(*engine, 7, "expiring", header_cell(t, 0, /*expire_at_ms=*/2'000)));
  ASSERT_TRUE(apply_ok(*engine, 7, "kept", header_cell(t, 0)));
  const std::string big(1000, 'x');
  for (int i = 0; i < 200; ++i) {
    for (const char* key : {"dead", "expiring", "kept"}) {
      ASSERT_TRUE(apply_field_ok(*engine, key, "f" + std::to_string(i), field_cell(t + 1 + i, big)));
    }
  }
  ASSERT_TRUE(apply_ok(*engine, 7, "dead", Cell{.tombstone = true, .timestamp = t + 1000,
                                                 .writer = 1, .value = ""}));
  clock.now_ms = 3'000;  // "expiring" has expired
  ASSERT_TRUE(engine->compact_all().is_ok());
  auto fields_of = [&](std::string_view key) {
    size_t n = 0;
    EXPECT_TRUE(engine->scan_row(7, key, {}, [&](std::string_view, const Cell&) {
      ++n;
      return true;
    }).is_ok());
    return n;
  };
  EXPECT_EQ(fields_of("dead"), 0u);
  EXPECT_EQ(fields_of("expiring"), 0u);
  EXPECT_EQ(fields_of("kept"), 200u);
  EXPECT_EQ(row_count(*engine, "kept"), 200u);
  // The row states survive a reopen.
  engine.reset();
  engine = open_engine(options);
  EXPECT_EQ(row_count(*engine, "kept"), 200u);
  EXPECT_EQ(engine->read_row(7, "dead")->state.delete_through, t + 1000);
}

TEST(EngineRowTest, KeysOnlyScansSkipFieldsAndBatchesKeepCounts) {
  TempDir dir;
  auto engine = open_engine(dir.path());
  // The WAL starts after what open() wrote without it (the format version).
  const uint64_t first = engine->latest_sequence() + 1;
  ASSERT_TRUE(apply_ok(*engine, 7, "h", header_cell(10, 0)));
  for (int i = 0; i < 50; ++i) {
    ASSERT_TRUE(apply_field_ok(*engine, "h", "f" + std::to_string(i), field_cell(11 + i, "v")));
  }
  ASSERT_TRUE(apply_ok(*engine, 7, "s", value_cell(10, "v")));
  size_t visited = 0;
  ASSERT_TRUE(engine->scan(0, 0, [&](auto, auto, std::string_view sub_key, const auto&) {
    EXPECT_TRUE(sub_key.empty());
    ++visited;
    return true;
  }, /*keys_only=*/true).is_ok());
  EXPECT_EQ(visited, 2u);
  // A copy (migration, rebuild) of every cell, fields included, rebuilds the count elsewhere.
  std::vector<WalChange> copy;
  ASSERT_TRUE(engine->scan(0, 0, [&](topology::Token token, std::string_view key,
                                     std::string_view sub_key, const Cell& cell) {
    copy.push_back(WalChange{token, std::string(key), cell, std::string(sub_key)});
    return true;
  }).is_ok());
  EXPECT_EQ(copy.size(), 52u);
  TempDir other_dir;
  auto other = open_engine(other_dir.path());
  ASSERT_EQ(*other->apply_batch(copy, /*logged=*/false), 52u);
  EXPECT_EQ(row_count(*other, "h"), 50u);
  EXPECT_EQ(read_ok(*other, 7, "s")->value, "v");
  // The WAL carries the sub-keys.
  Result<WalChanges> changes = engine->wal_changes(first, 0, 0, 1 << 20);
  ASSERT_TRUE(changes.is_ok());
  size_t fields = 0;
  for (const WalEntry& entry : changes->entries) {
    fields += entry.cell() != nullptr && !entry.cell()->sub_key.empty() ? 1 : 0;
  }
  EXPECT_EQ(fields, 50u);
  // FLUSHALL forgets the row states too.
  ASSERT_TRUE(engine->clear().is_ok());
  EXPECT_EQ(row_count(*engine, "h"), 0u);
}

// The rank blocks of a sorted set's score index (docs/formats.md "Rank blocks"): after entries
// written in random order, score changes (a tombstone for the old entry) and removals, every
// rank is found from the blocks and equals the position in the sorted list of live entries;
// a DEL of the row empties them, and the next life counts from zero.
TEST(EngineRowTest, RankBlocksFindEveryRankOfABigSortedSet) {
  TempDir dir;
  auto engine = open_engine(dir.path());
  const topology::Token token = 7;
  const std::string key = "z";
  auto entry = [](double score, const std::string& member) {
    return score_index_sub_key(score, member);
  };
  std::mt19937 rng(42);
  constexpr int kMembers = 9000;  // several blocks of kRankBlockSplit / 2
  std::vector<int> order(kMembers);
  std::iota(order.begin(), order.end(), 0);
  std::shuffle(order.begin(), order.end(), rng);
  std::map<std::string, bool> live;  // sub-key -> counts
  HlcTimestamp now = 100;
  ASSERT_TRUE(apply_ok(*engine, token, key,
                       Cell{.type = ValueType::kZSet, .timestamp = ++now, .writer = 1,
                            .value = encode_row_header({0})}));
  // Each member as ZADD writes it: its own cell (which the row counts); the engine derives its
  // index entry.
  auto member_cell = [](HlcTimestamp timestamp, double score, bool tombstone = false) {
    return Cell{.tombstone = tombstone, .type = ValueType::kZSet, .timestamp = timestamp,
                .writer = 1, .expire_at_ms = 0,
                .value = tombstone ? "" : encode_member_score(score)};
  };
  for (int i : order) {
    const std::string member = "m" + std::to_string(i);
    ASSERT_TRUE(*engine->apply_field(token, key, field_sub_key(member),
                                     member_cell(++now, i % 500)));
    live[entry(i % 500, member)] = true;
  }
  // A third of the members move to another score; a sixth go away.
  for (int i = 0; i < kMembers; i += 3) {
    const std::string member = "m" + std::to_string(i);
    live.erase(entry(i % 500, member));
    if (i % 2 != 0) {
      ASSERT_TRUE(*engine->apply_field(token, key, field_sub_key(member),
                                       member_cell(++now, 0, true)));
    } else {
      ASSERT_TRUE(*engine->apply_field(token, key, field_sub_key(member),
                                       member_cell(++now, 1000 + i % 77)));
      live[entry(1000 + i % 77, member)] = true;
    }
  }
  std::vector<std::string> sorted;
  for (const auto& [sub, counts] : live) sorted.push_back(sub);
  const uint64_t total = sorted.size();
  for (uint64_t rank : {uint64_t{0}, uint64_t{1}, total / 3, total / 2, total - 2, total - 1}) {
    std::vector<std::string> seen;
    Result<bool> found = engine->scan_from_rank(
        token, key, kScoreIndexNamespace, rank, total, [&](std::string_view sub_key, const Cell& cell) {
          if (!cell.tombstone) seen.emplace_back(sub_key);
          return seen.size() < 3;
        });
    ASSERT_TRUE(found.is_ok()) << found.status().to_string();
    ASSERT_TRUE(*found) << rank;
    ASSERT_FALSE(seen.empty());
    EXPECT_EQ(seen[0], sorted[rank]) << rank;
  }
  for (size_t i = 0; i < sorted.size(); i += 97) {
    Result<std::optional<uint64_t>> rank = engine->index_rank(token, key, sorted[i], total);
    ASSERT_TRUE(rank.is_ok());
    ASSERT_TRUE(rank->has_value());
    EXPECT_EQ(**rank, i);
  }
  // A total the blocks do not add up to: the caller must walk.
  EXPECT_FALSE(*engine->scan_from_rank(token, key, kScoreIndexNamespace, 0, total + 1,
                                             [](std::string_view, const Cell&) { return true; }));
  EXPECT_FALSE(engine->index_rank(token, key, sorted[0], total - 1)->has_value());
  // DEL of the row: the blocks empty at once; a new life counts from zero.
  ASSERT_TRUE(apply_ok(*engine, token, key,
                       Cell{.tombstone = true, .type = ValueType::kZSet, .timestamp = ++now,
                            .writer = 1, .expire_at_ms = 0, .value = {}}));
  ASSERT_TRUE(apply_ok(*engine, token, key,
                       Cell{.type = ValueType::kZSet, .timestamp = ++now, .writer = 1,
                            .value = encode_row_header({now - 1})}));
  // The next life of the key counts from zero in the emptied blocks.
  const std::string fresh = entry(5, "new");
  ASSERT_TRUE(*engine->apply_field(token, key, field_sub_key("new"), member_cell(++now, 5)));
  EXPECT_EQ(**engine->index_rank(token, key, fresh, 1), 0u);
  std::vector<std::string> seen;
  ASSERT_TRUE(*engine->scan_from_rank(token, key, kScoreIndexNamespace, 0, 1,
                                            [&](std::string_view sub_key, const Cell& cell) {
                                              if (!cell.tombstone && cell.timestamp > now - 2) {
                                                seen.emplace_back(sub_key);
                                              }
                                              return true;
                                            }));
  EXPECT_EQ(seen, std::vector<std::string>{fresh});
}

// The blocks readers take from memory (RankBlockCache) follow every write: ranks read between
// the writes of a set used as a queue and a bag (pops at both ends and at random ranks, adds
// that split blocks), across a DEL and a range deletion, always match a walk of the live cells.
TEST(EngineRowTest, CachedRankBlocksFollowEveryWrite) {
  TempDir dir;
  auto engine = open_engine(dir.path());
  const topology::Token token = 9;
  const std::string key = "s";
  HlcTimestamp now = 100;
  auto header = [&](HlcTimestamp delete_through) {
    return Cell{.type = ValueType::kSet, .timestamp = ++now, .writer = 1,
                .value = encode_row_header({delete_through})};
  };
  auto member = [&](bool tombstone) {
    return Cell{.tombstone = tombstone, .type = ValueType::kSet, .timestamp = ++now,
                .writer = 1, .expire_at_ms = 0, .value = {}};
  };
  std::set<std::string> live;
  HlcTimestamp hidden_through = 0;  // the last DEL
  auto check_ranks = [&](std::mt19937& rng) {
    const std::vector<std::string> sorted(live.begin(), live.end());
    const uint64_t total = sorted.size();
    if (total == 0) return;
    for (int probe = 0; probe < 3; ++probe) {
      const uint64_t rank = probe == 0 ? 0 : probe == 1 ? total - 1 : rng() % total;
      std::string seen;
      Result<bool> found = engine->scan_from_rank(
          token, key, kFieldNamespace, rank, total, [&](std::string_view sub_key, const Cell& c) {
            // Cells of an earlier life are the caller's to skip, as tombstones are.
            if (c.tombstone || c.timestamp <= hidden_through) return true;
            seen = std::string(sub_key);
            return false;
          });
      ASSERT_TRUE(found.is_ok()) << found.status().to_string();
      if (!*found) {
        // No blocks yet (a small row): the caller walks.
        ASSERT_LT(total, 2048u);
        continue;
      }
      ASSERT_EQ(seen, sorted[rank]) << "rank " << rank << " of " << total;
      Result<std::optional<uint64_t>> back = engine->index_rank(token, key, seen, total);
      ASSERT_TRUE(back.is_ok() && back->has_value());
      ASSERT_EQ(**back, rank);
    }
  };
  std::mt19937 rng(7);
  ASSERT_TRUE(apply_ok(*engine, token, key, header(0)));
  for (int life = 0; life < 2; ++life) {
    for (int round = 0; round < 9000; ++round) {
      const uint32_t dice = rng() % 10;
      if (dice < 7 || live.size() < 100) {
        const std::string sub = field_sub_key("m" + std::to_string(rng() % 20000));
        ASSERT_TRUE(engine->apply_field(token, key, sub, member(false)).is_ok());
        live.insert(sub);
      } else {
        // A pop: the first, the last or a random live member.
        auto at = live.begin();
        if (dice == 8) at = std::prev(live.end());
        if (dice == 9) std::advance(at, rng() % live.size());
        ASSERT_TRUE(*engine->apply_field(token, key, *at, member(true)));
        live.erase(at);
      }
      if (round % 7 == 0) {
        ASSERT_NO_FATAL_FAILURE(check_ranks(rng));
      }
    }
    ASSERT_GT(live.size(), 2048u);
    ASSERT_NO_FATAL_FAILURE(check_ranks(rng));
    if (life == 0) {
      // DEL and a new life: the blocks empty, then count the new members only.
      const HlcTimestamp deleted = ++now;
      hidden_through = deleted;
      ASSERT_TRUE(apply_ok(*engine, token, key,
                           Cell{.tombstone = true, .type = ValueType::kSet, .timestamp = deleted,
                                .writer = 1, .expire_at_ms = 0, .value = {}}));
      ASSERT_TRUE(apply_ok(*engine, token, key, header(deleted)));
      live.clear();
    }
  }
  // A range deletion (FLUSHALL, a moved range) drops the row, cached blocks included.
  ASSERT_TRUE(engine->clear().is_ok());
  live.clear();
  ASSERT_TRUE(apply_ok(*engine, token, key, header(0)));
  for (int i = 0; i < 3000; ++i) {
    const std::string sub = field_sub_key("n" + std::to_string(i));
    ASSERT_TRUE(*engine->apply_field(token, key, sub, member(false)));
    live.insert(sub);
    if (i % 500 == 499) {
      ASSERT_NO_FATAL_FAILURE(check_ranks(rng));
    }
  }
}

// A sorted set's index is derived from the member cell that wins (docs/formats.md "Sorted
// sets"): whatever order a member's cells arrive in, and whatever index cells another machine
// sends, the row holds one live entry per live member, at the winning cell's score.
TEST(EngineRowTest, ScoreIndexFollowsTheWinningMemberCell) {
  TempDir dir;
  auto engine = open_engine(dir.path());
  const topology::Token token = 7;
  const std::string key = "z";
  ASSERT_TRUE(apply_ok(*engine, token, key,
                       Cell{.type = ValueType::kZSet, .timestamp = 10, .writer = 1,
                            .value = encode_row_header({0})}));
  auto member = [&](const std::string& name, HlcTimestamp timestamp, double score,
                    bool tombstone = false) {
    Result<bool> stored = engine->apply_field(
        token, key, field_sub_key(name),
        Cell{.tombstone = tombstone, .type = ValueType::kZSet, .timestamp = timestamp,
             .writer = 1, .expire_at_ms = 0,
             .value = tombstone ? "" : encode_member_score(score)});
    CAIRN_ASSERT(stored.is_ok(), stored.status().to_string());
    return *stored;
  };
  auto live_index = [&] {
    std::vector<std::string> entries;
    EXPECT_TRUE(engine
                    ->scan_row(token, key, std::string(1, kScoreIndexNamespace),
                               [&](std::string_view sub_key, const Cell& cell) {
                                 if (sub_key[0] != kScoreIndexNamespace) return false;
                                 if (!cell.tombstone) entries.emplace_back(sub_key);
                                 return true;
                               })
                    .is_ok());
    return entries;
  };
  // Two coordinators' scores for "a" arrive newest first: the older one changes nothing.
  EXPECT_TRUE(member("a", 30, 3));
  EXPECT_FALSE(member("a", 20, 2));
  EXPECT_TRUE(member("b", 21, 1));
  EXPECT_EQ(live_index(), (std::vector<std::string>{score_index_sub_key(1, "b"),
                                                    score_index_sub_key(3, "a")}));
  // A newer score moves the entry; the same score again keeps one entry.
  EXPECT_TRUE(member("a", 40, -1));
  EXPECT_TRUE(member("b", 41, 1));
  EXPECT_EQ(live_index(), (std::vector<std::string>{score_index_sub_key(-1, "a"),
                                                    score_index_sub_key(1, "b")}));
  // An index cell sent from elsewhere is not taken, even a newer one.
  const std::string foreign = score_index_sub_key(7, "a");
  EXPECT_FALSE(*engine->apply_field(token, key, foreign,
                                    Cell{.type = ValueType::kZSet, .timestamp = 99, .writer = 2,
                                         .value = {}}));
  // A removal older than the score loses; a newer one takes the entry away.
  EXPECT_FALSE(member("a", 35, 0, true));
  EXPECT_TRUE(member("b", 50, 0, true));
  EXPECT_EQ(live_index(), std::vector<std::string>{score_index_sub_key(-1, "a")});
  EXPECT_EQ(row_count(*engine, key), 1u);
  // The same cells in the opposite order leave the same index on another machine.
  TempDir other_dir;
  auto other = open_engine(other_dir.path());
  ASSERT_TRUE(apply_ok(*other, token, key,
                       Cell{.type = ValueType::kZSet, .timestamp = 10, .writer = 1,
                            .value = encode_row_header({0})}));
  std::swap(engine, other);
  EXPECT_TRUE(member("b", 50, 0, true));
  EXPECT_TRUE(member("a", 40, -1));
  EXPECT_FALSE(member("a", 30, 3));
  EXPECT_FALSE(member("b", 41, 1));
  EXPECT_EQ(live_index(), std::vector<std::string>{score_index_sub_key(-1, "a")});
  EXPECT_EQ(row_count(*engine, key), 1u);
}

// A hash's fields get rank blocks once the row outgrows one block (random fields pick a rank);
// below that size none are kept and the caller walks.
TEST(EngineRowTest, RankBlocksOfAHashsFieldsAppearWhenItGrows) {
  TempDir dir;
  auto engine = open_engine(dir.path());
  HlcTimestamp now = 10;
  ASSERT_TRUE(apply_ok(*engine, 7, "h", header_cell(++now, 0)));
  std::vector<std::string> fields;
  for (int i = 0; i < 1000; ++i) {
    fields.push_back(field_sub_key("f" + std::to_string(i)));
    ASSERT_TRUE(apply_field_ok(*engine, "h", "f" + std::to_string(i), field_cell(++now, "v")));
  }
  auto first_at = [&](uint64_t rank, uint64_t total) -> std::optional<std::string> {
    std::optional<std::string> seen;
    Result<bool> found = engine->scan_from_rank(7, "h", kFieldNamespace, rank, total,
                                                [&](std::string_view sub_key, const Cell& cell) {
                                                  if (cell.tombstone) return true;
                                                  seen = std::string(sub_key);
                                                  return false;
                                                });
    EXPECT_TRUE(found.is_ok());
    return found.is_ok() && *found ? seen : std::nullopt;
  };
  EXPECT_FALSE(first_at(10, 1000).has_value());  // small: no blocks
  for (int i = 1000; i < 6000; ++i) {
    fields.push_back(field_sub_key("f" + std::to_string(i)));
    ASSERT_TRUE(apply_field_ok(*engine, "h", "f" + std::to_string(i), field_cell(++now, "v")));
  }
  for (int i = 0; i < 6000; i += 5) {  // HDEL of every fifth field
    ASSERT_TRUE(apply_field_ok(*engine, "h", "f" + std::to_string(i), field_cell(++now, "", true)));
    fields.erase(std::find(fields.begin(), fields.end(), field_sub_key("f" + std::to_string(i))));
  }
  std::sort(fields.begin(), fields.end());
  ASSERT_EQ(row_count(*engine, "h"), fields.size());
  for (uint64_t rank = 0; rank < fields.size(); rank += 333) {
    EXPECT_EQ(first_at(rank, fields.size()), fields[rank]) << rank;
  }
  EXPECT_EQ(first_at(fields.size() - 1, fields.size()), fields.back());
}

// apply_fields is apply_field for many cells at once: the same cells stored, the same counts,
// whatever the batch holds (stale cells, tombstones, cells an earlier DEL hides, a sub-key named
// twice, the row outgrowing a rank block, index cells).
TEST(EngineRowTest, ApplyFieldsStoresWhatApplyFieldWouldOneByOne) {
  TempDir batched_dir;
  TempDir single_dir;
  auto batched = open_engine(batched_dir.path());
  auto single = open_engine(single_dir.path());
  std::mt19937 rng(7);
  HlcTimestamp now = 100;
  for (Engine* engine : {batched.get(), single.get()}) {
    ASSERT_TRUE(apply_ok(*engine, 7, "h", header_cell(now, 0)));
  }
  size_t stored_batched = 0;
  size_t stored_single = 0;
  for (int round = 0; round < 180; ++round) {
    if (round == 60) {  // a DEL: older fields are hidden, later batches start the next life
      Cell tombstone{.tombstone = true, .timestamp = now - 50, .writer = 1, .value = ""};
      for (Engine* engine : {batched.get(), single.get()}) {
        ASSERT_TRUE(engine->apply(7, "h", tombstone).is_ok());
      }
    }
    std::vector<Engine::FieldChange> changes;
    // Rounds 100-119 grow the row past a rank block; later ones write a few cells to it.
    const bool big = (round >= 100 && round < 120) || (round < 100 && round % 10 == 9);
    const int size = big ? 400 : 1 + static_cast<int>(rng() % (round >= 120 ? 3 : 8));
    for (int i = 0; i < size; ++i) {
      const int field = static_cast<int>(rng() % (round < 100 ? 300 : 100000));
      // Mostly new timestamps, some in the past (a replica receiving writes out of order).
      const HlcTimestamp at = rng() % 4 == 0 ? now - rng() % 80 : ++now;
      const bool index = rng() % 8 == 0;
      changes.push_back({index ? score_index_sub_key(field, "m" + std::to_string(field))
                               : field_sub_key("f" + std::to_string(field)),
                         field_cell(at, "v" + std::to_string(at), rng() % 5 == 0)});
    }
    Result<size_t> applied = batched->apply_fields(7, "h", changes);
    ASSERT_TRUE(applied.is_ok()) << applied.status().to_string();
    stored_batched += *applied;
    for (const Engine::FieldChange& change : changes) {
      Result<bool> one = single->apply_field(7, "h", change.sub_key, change.cell);
      ASSERT_TRUE(one.is_ok());
      stored_single += *one ? 1 : 0;
    }
    ASSERT_EQ(row_count(*batched, "h"), row_count(*single, "h")) << "round " << round;
  }
  EXPECT_EQ(stored_batched, stored_single);
  EXPECT_GT(row_count(*batched, "h"), 2048u);  // the last rounds kept rank blocks
  auto cells_of = [](Engine& engine) {
    std::vector<std::pair<std::string, std::string>> cells;
    EXPECT_TRUE(engine
                    .scan_row(7, "h", {}, [&](std::string_view sub_key, const Cell& cell) {
                      cells.emplace_back(sub_key, encode_cell(cell));
                      return true;
                    })
                    .is_ok());
    return cells;
  };
  EXPECT_EQ(cells_of(*batched), cells_of(*single));
  EXPECT_EQ(batched->read_row(7, "h")->state, single->read_row(7, "h")->state);
  // The rank blocks agree too: every rank finds the same field in both.
  const uint64_t total = row_count(*batched, "h");
  auto field_at = [&](Engine& engine, uint64_t rank) {
    std::string seen;
    Result<bool> found = engine.scan_from_rank(7, "h", kFieldNamespace, rank, total,
                                               [&](std::string_view sub_key, const Cell& cell) {
                                                 if (cell.tombstone) return true;
                                                 seen = std::string(sub_key);
                                                 return false;
                                               });
    EXPECT_TRUE(found.is_ok() && *found);
    return seen;
  };
  for (uint64_t rank = 0; rank < total; rank += 97) {
    EXPECT_EQ(field_at(*batched, rank), field_at(*single, rank)) << rank;
  }
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
