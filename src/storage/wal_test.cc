// The WAL tail for migrations: wal_changes, WAL holds, delete_range and apply_batch.

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "storage/engine.h"
#include "storage/temp_dir_test_util.h"

namespace cairn::storage {
namespace {

constexpr size_t kAllBytes = 64 * 1024 * 1024;
constexpr topology::Token kHalf = topology::Token{1} << 63;

using test::TempDir;

// `retained`: closed WAL files stay readable (the default); otherwise they are deleted as soon
// as RocksDB no longer needs them, unless a hold keeps them.
std::unique_ptr<Engine> open_engine(const std::string& path, bool retained = true) {
  EngineOptions options;
  options.path = path;
  if (!retained) {
    options.wal_retention_seconds = 0;
    options.wal_retention_megabytes = 0;
  }
  Result<std::unique_ptr<Engine>> engine = Engine::open(options);
  CAIRN_ASSERT(engine.is_ok(), engine.status().to_string());
  return std::move(engine).value();
}

Cell value_cell(HlcTimestamp timestamp, std::string value, uint64_t writer = 1) {
  return Cell{.timestamp = timestamp, .writer = writer, .value = std::move(value)};
}

void apply_ok(Engine& engine, topology::Token token, std::string_view key, const Cell& cell) {
  Result<bool> stored = engine.apply(token, key, cell);
  CAIRN_ASSERT(stored.is_ok() && *stored, "apply stores the cell");
}

// The cells and the range deletions of a WAL tail, each in order.
std::vector<WalChange> cells_of(const WalChanges& changes) {
  std::vector<WalChange> out;
  for (const WalEntry& entry : changes.entries) {
    if (const WalChange* cell = entry.cell()) out.push_back(*cell);
  }
  return out;
}
std::vector<WalRangeDelete> deletes_of(const WalChanges& changes) {
  std::vector<WalRangeDelete> out;
  for (const WalEntry& entry : changes.entries) {
    if (const WalRangeDelete* deleted = entry.range_delete()) out.push_back(*deleted);
  }
  return out;
}

WalChanges changes_ok(Engine& engine, uint64_t from, topology::Token start, topology::Token end,
                      size_t max_bytes = kAllBytes) {
  Result<WalChanges> changes = engine.wal_changes(from, start, end, max_bytes);
  CAIRN_ASSERT(changes.is_ok(), changes.status().to_string());
  return std::move(changes).value();
}

TEST(WalTest, ReturnsTheRangesChangesSinceAnLsn) {
  TempDir dir;
  auto engine = open_engine(dir.path());
  apply_ok(*engine, 5, "before", value_cell(1, "x"));
  const uint64_t from = engine->latest_sequence() + 1;
  apply_ok(*engine, 10, "a", value_cell(2, "va"));
  apply_ok(*engine, kHalf + 1, "outside", value_cell(3, "vo"));
  const Cell tombstone{.tombstone = true, .timestamp = 4, .writer = 1, .value = ""};
  apply_ok(*engine, 11, "b", tombstone);
  const Cell expiring{.timestamp = 5, .writer = 2, .expire_at_ms = 123456, .value = "ttl"};
  apply_ok(*engine, 12, "c", expiring);
  ASSERT_TRUE(engine->put_meta("other", "meta records are skipped").is_ok());
  ASSERT_TRUE(engine->store_hint(9, "h", value_cell(6, "hint"), 10, 1 << 20).is_ok());

  const WalChanges changes = changes_ok(*engine, from, 0, kHalf);
  ASSERT_EQ(cells_of(changes).size(), 3u);
  EXPECT_EQ(cells_of(changes)[0].token, 10u);
  EXPECT_EQ(cells_of(changes)[0].key, "a");
  EXPECT_EQ(cells_of(changes)[0].cell, value_cell(2, "va"));
  EXPECT_EQ(cells_of(changes)[1].key, "b");
  EXPECT_EQ(cells_of(changes)[1].cell, tombstone);
  EXPECT_EQ(cells_of(changes)[2].cell, expiring);
  EXPECT_TRUE(deletes_of(changes).empty());
  EXPECT_EQ(changes.latest_sequence, engine->latest_sequence());
  EXPECT_EQ(changes.next_sequence, changes.latest_sequence + 1);

  // The other half of the ring; end 0 is the ring end.
  const WalChanges upper = changes_ok(*engine, from, kHalf, 0);
  ASSERT_EQ(cells_of(upper).size(), 1u);
  EXPECT_EQ(cells_of(upper)[0].key, "outside");

  // Nothing new: empty, and the cursor stays.
  const WalChanges none = changes_ok(*engine, changes.next_sequence, 0, 0);
  EXPECT_TRUE(cells_of(none).empty());
  EXPECT_EQ(none.next_sequence, changes.next_sequence);

  // Starting inside the range of records skips the earlier ones exactly.
  const WalChanges later = changes_ok(*engine, from + 1, 0, 0);
  ASSERT_FALSE(cells_of(later).empty());
  EXPECT_EQ(cells_of(later)[0].key, "outside");
}

TEST(WalTest, PagesByMaxBytes) {
  TempDir dir;
  auto engine = open_engine(dir.path());
  const uint64_t from = engine->latest_sequence() + 1;
  constexpr int kWrites = 50;
  for (int i = 0; i < kWrites; ++i) {
    apply_ok(*engine, 100 + i, "k" + std::to_string(i), value_cell(1 + i, std::string(100, 'v')));
  }
  std::vector<std::string> keys;
  uint64_t cursor = from;
  int pages = 0;
  for (; pages < 2 * kWrites; ++pages) {
    const WalChanges page = changes_ok(*engine, cursor, 0, 0, 300);
    if (cells_of(page).empty()) break;
    EXPECT_LE(cells_of(page).size(), 3u);
    EXPECT_GT(page.next_sequence, cursor);
    for (const WalChange& change : cells_of(page)) keys.push_back(change.key);
    cursor = page.next_sequence;
  }
  EXPECT_GT(pages, 10);
  ASSERT_EQ(keys.size(), static_cast<size_t>(kWrites));
  for (int i = 0; i < kWrites; ++i) EXPECT_EQ(keys[i], "k" + std::to_string(i));
}

TEST(WalTest, SeesRangeDeletesClippedToTheRange) {
  TempDir dir;
  auto engine = open_engine(dir.path());
  apply_ok(*engine, 10, "a", value_cell(1, "va"));
  apply_ok(*engine, 300, "b", value_cell(1, "vb"));
  const uint64_t from = engine->latest_sequence() + 1;
  ASSERT_TRUE(engine->delete_range(100, 200).is_ok());
  ASSERT_TRUE(engine->delete_range(kHalf, 0).is_ok());
  ASSERT_TRUE(engine->clear().is_ok());

  const WalChanges changes = changes_ok(*engine, from, 150, kHalf + 5);
  ASSERT_EQ(deletes_of(changes).size(), 3u);
  EXPECT_EQ(deletes_of(changes)[0].start, 150u);
  EXPECT_EQ(deletes_of(changes)[0].end, 200u);
  EXPECT_EQ(deletes_of(changes)[1].start, kHalf);
  EXPECT_EQ(deletes_of(changes)[1].end, kHalf + 5);
  // clear() deletes up to just past its last key (token 300).
  EXPECT_EQ(deletes_of(changes)[2].start, 150u);
  EXPECT_EQ(deletes_of(changes)[2].end, 301u);

  const WalChanges whole = changes_ok(*engine, from, 0, 0);
  ASSERT_EQ(deletes_of(whole).size(), 3u);
  EXPECT_EQ(deletes_of(whole)[1].start, kHalf);
  EXPECT_EQ(deletes_of(whole)[1].end, 0u);
  EXPECT_EQ(deletes_of(whole)[2].start, 0u);
}

// A range deletion hides exactly the cells written before it: a reader can only repeat that if
// it gets cells and deletions as one stream in the order they were written, page after page.
TEST(WalTest, CellsAndRangeDeletesComeAsOneStreamInSequenceOrder) {
  TempDir dir;
  auto engine = open_engine(dir.path());
  const uint64_t from = engine->latest_sequence() + 1;
  apply_ok(*engine, 10, "a", value_cell(1, "before the delete"));
  ASSERT_TRUE(engine->delete_range(0, 50).is_ok());
  apply_ok(*engine, 20, "b", value_cell(2, "between"));
  apply_ok(*engine, 10, "a", value_cell(3, "again"));
  ASSERT_TRUE(engine->clear().is_ok());
  apply_ok(*engine, 30, "c", value_cell(4, "after the flush"));

  const WalChanges whole = changes_ok(*engine, from, 0, 0);
  // a, [0, 50), b, a, clear (one batch: no cell of `rows` reaches the reader), c.
  std::vector<std::string> order;
  for (const WalEntry& entry : whole.entries) {
    order.push_back(entry.cell() ? entry.cell()->key : "delete");
  }
  EXPECT_EQ(order, (std::vector<std::string>{"a", "delete", "b", "a", "delete", "c"}));
  for (size_t i = 1; i < whole.entries.size(); ++i) {
    EXPECT_GT(whole.entries[i].sequence, whole.entries[i - 1].sequence);
  }
  EXPECT_EQ(whole.entries.front().sequence, from);
  EXPECT_EQ(whole.entries.back().sequence, engine->latest_sequence());

  // The smallest pages (one write batch each) give the same stream, cut between its entries.
  std::vector<uint64_t> paged;
  std::vector<std::string> paged_order;
  uint64_t cursor = from;
  for (int page = 0; page < 100 && cursor <= engine->latest_sequence(); ++page) {
    const WalChanges part = changes_ok(*engine, cursor, 0, 0, 1);
    for (const WalEntry& entry : part.entries) {
      paged.push_back(entry.sequence);
      paged_order.push_back(entry.cell() ? entry.cell()->key : "delete");
    }
    ASSERT_GT(part.next_sequence, cursor);
    cursor = part.next_sequence;
  }
  EXPECT_EQ(paged_order, order);
  ASSERT_EQ(paged.size(), whole.entries.size());
  for (size_t i = 0; i < paged.size(); ++i) EXPECT_EQ(paged[i], whole.entries[i].sequence);
}

// A gap is told from sequence numbers alone: sequence numbers missing between the LSN asked for
// and the first record found are stepped over while the WAL files still reach back to that LSN
// (unlogged copies took them), and are WALGONE once the WAL file that held them is deleted.
TEST(WalTest, AGapIsFoundFromSequenceNumbers) {
  TempDir dir;
  auto engine = open_engine(dir.path(), /*retained=*/false);
  Result<uint64_t> held = engine->hold_wal("reader", 60'000);
  ASSERT_TRUE(held.is_ok());
  apply_ok(*engine, 10, "a", value_cell(1, "logged"));
  const uint64_t unlogged = engine->latest_sequence() + 1;
  ASSERT_TRUE(engine->apply_batch({{11, "copied", value_cell(2, "unlogged"), {}}}, false).is_ok());
  apply_ok(*engine, 12, "b", value_cell(3, "logged"));
  // Held: the read from inside the gap steps over it to "b".
  WalChanges stepped = changes_ok(*engine, unlogged, 0, 0);
  ASSERT_EQ(cells_of(stepped).size(), 1u);
  EXPECT_EQ(cells_of(stepped)[0].key, "b");
  EXPECT_GT(stepped.entries[0].sequence, unlogged);

  // Released and flushed: the WAL file holding "a" and the gap is deleted. The first record a
  // read finds now starts after the LSN asked for, and the WAL no longer reaches back to it.
  engine->release_wal("reader");
  ASSERT_TRUE(engine->compact_all().is_ok());
  apply_ok(*engine, 13, "c", value_cell(4, "logged after the flush"));
  for (const uint64_t from : {*held + 1, unlogged}) {
    Result<WalChanges> gone = engine->wal_changes(from, 0, 0, kAllBytes);
    ASSERT_FALSE(gone.is_ok()) << "from " << from;
    EXPECT_EQ(gone.status().code(), StatusCode::kNotFound);
    EXPECT_EQ(gone.status().message().rfind("WALGONE ", 0), 0u) << gone.status().message();
  }
  // From the oldest LSN the WAL still holds, the read goes on.
  Result<WalChanges> gone = engine->wal_changes(unlogged, 0, 0, kAllBytes);
  ASSERT_FALSE(gone.is_ok());
  const uint64_t oldest =
      std::stoull(gone.status().message().substr(std::string("WALGONE ").size()));
  ASSERT_GT(oldest, unlogged);
  const WalChanges after = changes_ok(*engine, oldest, 0, 0);
  ASSERT_EQ(cells_of(after).size(), 1u);
  EXPECT_EQ(cells_of(after)[0].key, "c");
}

TEST(WalTest, WalGoneWithoutAHoldAfterAFlush) {
  TempDir dir;
  auto engine = open_engine(dir.path(), /*retained=*/false);
  const uint64_t from = engine->latest_sequence() + 1;
  apply_ok(*engine, 10, "a", value_cell(1, "va"));
  ASSERT_TRUE(engine->sync().is_ok());
  // The flush makes the WAL holding "a" obsolete; nothing keeps it.
  ASSERT_TRUE(engine->compact_all().is_ok());
  apply_ok(*engine, 11, "b", value_cell(2, "vb"));
  Result<WalChanges> changes = engine->wal_changes(from, 0, 0, kAllBytes);
  ASSERT_FALSE(changes.is_ok());
  EXPECT_EQ(changes.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(changes.status().message().rfind("WALGONE ", 0), 0u) << changes.status().message();
}

TEST(WalTest, HoldKeepsTheWalAcrossAFlush) {
  TempDir dir;
  auto engine = open_engine(dir.path(), /*retained=*/false);
  Result<uint64_t> held = engine->hold_wal("m1", 60'000);
  ASSERT_TRUE(held.is_ok());
  EXPECT_EQ(engine->wal_holds(), 1u);
  apply_ok(*engine, 10, "a", value_cell(1, "va"));
  ASSERT_TRUE(engine->sync().is_ok());
  ASSERT_TRUE(engine->compact_all().is_ok());
  apply_ok(*engine, 11, "b", value_cell(2, "vb"));
  const WalChanges changes = changes_ok(*engine, *held + 1, 0, 0);
  ASSERT_EQ(cells_of(changes).size(), 2u);
  EXPECT_EQ(cells_of(changes)[0].key, "a");
  EXPECT_EQ(cells_of(changes)[1].key, "b");

  // Renewing keeps one hold; releasing lets RocksDB delete the WAL again.
  ASSERT_TRUE(engine->hold_wal("m1", 60'000).is_ok());
  EXPECT_EQ(engine->wal_holds(), 1u);
  engine->release_wal("m1");
  EXPECT_EQ(engine->wal_holds(), 0u);
  engine->release_wal("unknown");  // harmless
}

TEST(WalTest, HoldsExpireAndAreBounded) {
  TempDir dir;
  auto engine = open_engine(dir.path());
  ASSERT_TRUE(engine->hold_wal("short", 20).is_ok());
  ASSERT_TRUE(engine->hold_wal("long", 60'000).is_ok());
  EXPECT_EQ(engine->wal_holds(), 2u);
  std::this_thread::sleep_for(std::chrono::milliseconds(40));
  engine->expire_wal_holds();
  EXPECT_EQ(engine->wal_holds(), 1u);
  for (size_t i = 1; i < Engine::kWalHoldsMax; ++i) {
    ASSERT_TRUE(engine->hold_wal("h" + std::to_string(i), 60'000).is_ok());
  }
  EXPECT_EQ(engine->hold_wal("one-too-many", 60'000).status().code(), StatusCode::kBusy);
  EXPECT_TRUE(engine->hold_wal("long", 60'000).is_ok());  // a renewal is not a new hold
  EXPECT_EQ(engine->hold_wal("bad-ttl", 0).status().code(), StatusCode::kInvalidArgument);
}

TEST(WalTest, FromPastTheLatestIsEmpty) {
  TempDir dir;
  auto engine = open_engine(dir.path());
  apply_ok(*engine, 10, "a", value_cell(1, "va"));
  const uint64_t past = engine->latest_sequence() + 10;
  const WalChanges changes = changes_ok(*engine, past, 0, 0);
  EXPECT_TRUE(cells_of(changes).empty());
  EXPECT_EQ(changes.next_sequence, past);
  EXPECT_EQ(changes.latest_sequence, engine->latest_sequence());
  EXPECT_EQ(engine->wal_changes(1, 10, 5, kAllBytes).status().code(),
            StatusCode::kInvalidArgument);
}

TEST(WalTest, ReadsAcrossAReopenWhileRetained) {
  TempDir dir;
  uint64_t from = 0;
  {
    auto engine = open_engine(dir.path());
    from = engine->latest_sequence() + 1;
    apply_ok(*engine, 10, "a", value_cell(1, "va"));
  }
  auto engine = open_engine(dir.path());
  apply_ok(*engine, 11, "b", value_cell(2, "vb"));
  const WalChanges changes = changes_ok(*engine, from, 0, 0);
  ASSERT_EQ(cells_of(changes).size(), 2u);
  EXPECT_EQ(cells_of(changes)[0].key, "a");
  EXPECT_EQ(cells_of(changes)[1].key, "b");
}

// A machine's own housekeeping (a range it gave up, a copy it discards) must never be repeated
// by a machine copying from it: a target still following a source's WAL right after the commit
// would delete the range it now owns.
TEST(WalTest, LocalDropsDeleteButAreNeverReadBack) {
  TempDir dir;
  auto engine = open_engine(dir.path());
  apply_ok(*engine, 10, "a", value_cell(1, "va"));
  apply_ok(*engine, 150, "b", value_cell(1, "vb"));
  const uint64_t from = engine->latest_sequence() + 1;
  ASSERT_TRUE(engine->drop_range(100, 200).is_ok());
  apply_ok(*engine, 160, "c", value_cell(2, "vc"));
  ASSERT_TRUE(engine->delete_range(0, 50).is_ok());
  ASSERT_TRUE(engine->drop_range(kHalf, 0).is_ok());

  auto stored = engine->read(150, "b");
  ASSERT_TRUE(stored.is_ok());
  EXPECT_FALSE(stored->has_value()) << "drop_range deletes like delete_range";

  const WalChanges changes = changes_ok(*engine, from, 0, 0);
  ASSERT_EQ(cells_of(changes).size(), 1u);
  EXPECT_EQ(cells_of(changes)[0].key, "c");
  // Only the replicated deletion; both drops are skipped, and the records after them still read.
  ASSERT_EQ(deletes_of(changes).size(), 1u);
  EXPECT_EQ(deletes_of(changes)[0].start, 0u);
  EXPECT_EQ(deletes_of(changes)[0].end, 50u);
  EXPECT_EQ(changes.next_sequence, engine->latest_sequence() + 1);
  EXPECT_EQ(engine->drop_range(5, 5).code(), StatusCode::kInvalidArgument);
}

TEST(DeleteRangeTest, DeletesExactlyTheRange) {
  TempDir dir;
  auto engine = open_engine(dir.path());
  for (topology::Token token : {topology::Token{1}, topology::Token{99}, topology::Token{100},
                                topology::Token{199}, topology::Token{200}, ~topology::Token{0}}) {
    apply_ok(*engine, token, "k", value_cell(1, "v"));
  }
  ASSERT_TRUE(engine->delete_range(100, 200).is_ok());
  std::vector<topology::Token> left;
  ASSERT_TRUE(engine
                  ->scan(0, 0,
                         [&](topology::Token token, std::string_view, std::string_view, const Cell&) {
                           left.push_back(token);
                           return true;
                         })
                  .is_ok());
  EXPECT_EQ(left, (std::vector<topology::Token>{1, 99, 200, ~topology::Token{0}}));
  ASSERT_TRUE(engine->delete_range(150, 0).is_ok());
  left.clear();
  ASSERT_TRUE(engine
                  ->scan(0, 0,
                         [&](topology::Token token, std::string_view, std::string_view, const Cell&) {
                           left.push_back(token);
                           return true;
                         })
                  .is_ok());
  EXPECT_EQ(left, (std::vector<topology::Token>{1, 99}));
  EXPECT_EQ(engine->delete_range(5, 5).code(), StatusCode::kInvalidArgument);
}

TEST(ApplyBatchTest, AppliesEachCellByLastWriteWins) {
  TempDir dir;
  auto engine = open_engine(dir.path());
  apply_ok(*engine, 1, "old", value_cell(5, "stored"));
  apply_ok(*engine, 2, "new", value_cell(5, "stored"));
  const std::vector<WalChange> cells = {
      {1, "old", value_cell(4, "older: loses"), {}},
      {2, "new", value_cell(6, "newer: wins"), {}},
      {3, "fresh", value_cell(1, "first"), {}},
      {3, "fresh", value_cell(3, "later in the batch"), {}},
      {3, "fresh", value_cell(2, "between"), {}},
  };
  Result<size_t> stored = engine->apply_batch(cells);
  ASSERT_TRUE(stored.is_ok()) << stored.status().to_string();
  EXPECT_EQ(*stored, 2u);
  EXPECT_EQ((*engine->read(1, "old"))->value, "stored");
  EXPECT_EQ((*engine->read(2, "new"))->value, "newer: wins");
  EXPECT_EQ((*engine->read(3, "fresh"))->value, "later in the batch");
  EXPECT_EQ(*engine->apply_batch(cells), 0u);  // idempotent
  EXPECT_EQ(*engine->apply_batch({}), 0u);
}

TEST(ApplyBatchTest, UnloggedCellsStayOutOfTheWalAndSurviveAFlush) {
  TempDir dir;
  auto engine = open_engine(dir.path());
  apply_ok(*engine, 1, "kept", value_cell(9, "newer, logged"));
  const uint64_t before = engine->latest_sequence();
  const std::vector<WalChange> cells = {
      {1, "kept", value_cell(4, "older: loses"), {}},
      {2, "copied", value_cell(5, "copy"), {}},
  };
  Result<size_t> stored = engine->apply_batch(cells, /*logged=*/false);
  ASSERT_TRUE(stored.is_ok()) << stored.status().to_string();
  EXPECT_EQ(*stored, 1u);
  EXPECT_EQ((*engine->read(2, "copied"))->value, "copy");
  // The copy took a sequence number but wrote no WAL record: a reader of the WAL steps over the
  // gap (it is not a lost WAL), at the end of the log and between logged writes.
  Result<WalChanges> tail = engine->wal_changes(before + 1, 0, 0, kAllBytes);
  ASSERT_TRUE(tail.is_ok()) << tail.status().to_string();
  EXPECT_TRUE(cells_of(*tail).empty());
  EXPECT_EQ(tail->next_sequence, engine->latest_sequence() + 1);
  apply_ok(*engine, 3, "after", value_cell(6, "logged"));
  ASSERT_TRUE(engine->apply_batch({{4, "copied2", value_cell(5, "copy"), {}}}, false).is_ok());
  apply_ok(*engine, 5, "last", value_cell(7, "logged"));
  std::vector<std::string> seen;
  uint64_t from = before + 1;
  for (int round = 0; round < 10 && from <= engine->latest_sequence(); ++round) {
    Result<WalChanges> part = engine->wal_changes(from, 0, 0, kAllBytes);
    ASSERT_TRUE(part.is_ok()) << part.status().to_string();
    for (const WalChange& change : cells_of(*part)) seen.push_back(change.key);
    ASSERT_GE(part->next_sequence, from);
    from = part->next_sequence;
  }
  EXPECT_EQ(seen, (std::vector<std::string>{"after", "last"}));
  EXPECT_EQ(from, engine->latest_sequence() + 1);
  ASSERT_TRUE(engine->flush_memtables().is_ok());
  engine.reset();
  engine = open_engine(dir.path());
  EXPECT_EQ((*engine->read(1, "kept"))->value, "newer, logged");
  EXPECT_EQ((*engine->read(2, "copied"))->value, "copy");
}

}  // namespace
}  // namespace cairn::storage
