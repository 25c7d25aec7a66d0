#include "coordinator/cluster.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "coordinator/cluster_internal.h"
#include "coordinator/key_locks.h"
#include "topology/token.h"

namespace cairn::coordinator {
namespace {

using std::chrono::milliseconds;
using std::chrono::steady_clock;
using storage::Cell;

Cell make_cell(HlcTimestamp timestamp, uint64_t writer, std::string value) {
  Cell cell;
  cell.timestamp = timestamp;
  cell.writer = writer;
  cell.value = std::move(value);
  return cell;
}

Cell make_tombstone(HlcTimestamp timestamp, uint64_t writer) {
  Cell cell;
  cell.tombstone = true;
  cell.timestamp = timestamp;
  cell.writer = writer;
  return cell;
}

resp::Value integer_value(int64_t n) {
  resp::Value value;
  value.type = resp::Value::Type::kInteger;
  value.integer = n;
  return value;
}

resp::Value bulk_value(std::string text) {
  resp::Value value;
  value.type = resp::Value::Type::kBulk;
  value.str = std::move(text);
  return value;
}

resp::Value error_value(std::string text) {
  resp::Value value;
  value.type = resp::Value::Type::kError;
  value.str = std::move(text);
  return value;
}

resp::Value array_value(std::vector<resp::Value> elements) {
  resp::Value value;
  value.type = resp::Value::Type::kArray;
  value.elements = std::move(elements);
  return value;
}

// ---- Gather ----

TEST(GatherTest, WakesWhenNeededSuccessesArrive) {
  Gather gather(2, 3);
  std::thread answers([&] {
    std::this_thread::sleep_for(milliseconds(5));
    gather.succeed(2);
    gather.succeed(0);
  });
  const auto start = steady_clock::now();
  EXPECT_TRUE(gather.wait_for_needed(start + std::chrono::seconds(10)));
  EXPECT_LT(steady_clock::now() - start, std::chrono::seconds(5));
  answers.join();
  EXPECT_EQ(gather.successes(), 2u);
  EXPECT_EQ(gather.succeeded_slots(), (std::vector<size_t>{0, 2}));
}

TEST(GatherTest, WakesAsSoonAsTheLevelCannotBeReached) {
  Gather gather(2, 3);
  gather.succeed(0);
  gather.fail(1);
  gather.fail(2);
  const auto start = steady_clock::now();
  EXPECT_FALSE(gather.wait_for_needed(start + std::chrono::seconds(10)));
  EXPECT_LT(steady_clock::now() - start, std::chrono::seconds(5));
  EXPECT_EQ(gather.successes(), 1u);
}

TEST(GatherTest, GivesUpAtTheDeadline) {
  Gather gather(2, 3);
  gather.succeed(1);
  const auto start = steady_clock::now();
  EXPECT_FALSE(gather.wait_for_needed(start + milliseconds(30)));
  EXPECT_GE(steady_clock::now() - start, milliseconds(30));
}

TEST(GatherTest, CountsEachSlotOnce) {
  Gather gather(2, 2);
  gather.succeed(0);
  gather.succeed(0);  // a duplicate must not fake a quorum
  gather.fail(0);     // nor turn into a failure
  EXPECT_FALSE(gather.wait_for_needed(steady_clock::now() + milliseconds(10)));
  EXPECT_EQ(gather.successes(), 1u);
  gather.succeed(1);
  EXPECT_TRUE(gather.wait_for_needed(steady_clock::now() + milliseconds(10)));
}

TEST(GatherTest, WaitForAllWaitsForEveryOutcome) {
  Gather gather(0, 2);
  std::thread answers([&] {
    std::this_thread::sleep_for(milliseconds(5));
    gather.fail(0);
    gather.succeed(1);
  });
  gather.wait_for_all(steady_clock::now() + std::chrono::seconds(10));
  EXPECT_EQ(gather.succeeded_slots(), (std::vector<size_t>{1}));
  answers.join();
}

TEST(GatherTest, RemainingMsIsAtLeastOne) {
  EXPECT_EQ(remaining_ms(steady_clock::now() - milliseconds(50)), 1);
  EXPECT_GE(remaining_ms(steady_clock::now() + std::chrono::seconds(10)), 9000);
}

// ---- reply decoding ----

TEST(DecodeTest, ApplyReplies) {
  EXPECT_TRUE(decode_apply_reply(integer_value(1)).ok());
  EXPECT_TRUE(decode_apply_reply(integer_value(0)).ok());  // an equal or newer cell was stored

  ReplicaOutcome stale = decode_apply_reply(error_value("STALEEPOCH 7"));
  EXPECT_EQ(stale.kind, ReplicaOutcome::Kind::kFence);
  EXPECT_EQ(stale.fence.code, replica::FenceCode::kStaleEpoch);
  EXPECT_EQ(stale.fence.epoch, 7u);

  EXPECT_EQ(decode_apply_reply(error_value("TABLEBEHIND 3")).fence.code,
            replica::FenceCode::kTableBehind);
  // A cutover in progress (docs/migration.md): a fence, so it is retried and never hinted.
  const ReplicaOutcome moving = decode_apply_reply(error_value("MOVING 4"));
  EXPECT_EQ(moving.kind, ReplicaOutcome::Kind::kFence);
  EXPECT_EQ(moving.fence.code, replica::FenceCode::kMoving);
  EXPECT_EQ(decode_apply_reply(error_value("ERR disk full")).kind,
            ReplicaOutcome::Kind::kFailed);
  EXPECT_EQ(decode_apply_reply(Status::timed_out("no reply")).kind,
            ReplicaOutcome::Kind::kFailed);
  // A bulk string is the timestamp of a newer cell the replica kept: a served request.
  const ReplicaOutcome newer = decode_apply_reply(bulk_value("12345"));
  EXPECT_EQ(newer.kind, ReplicaOutcome::Kind::kOk);
  EXPECT_EQ(newer.newer_timestamp, 12345u);
  EXPECT_EQ(decode_apply_reply(bulk_value("0")).kind, ReplicaOutcome::Kind::kFailed);
  EXPECT_EQ(decode_apply_reply(bulk_value("12x")).kind, ReplicaOutcome::Kind::kFailed);
}

TEST(DecodeTest, ReadReplies) {
  const Cell cell = make_cell(HybridClock::make(1000, 1), 3, "v");
  std::optional<Cell> out;
  ASSERT_TRUE(decode_read_reply(bulk_value(storage::encode_cell(cell)), &out).ok());
  EXPECT_EQ(out, cell);

  ASSERT_TRUE(decode_read_reply(resp::Value{}, &out).ok());  // null: nothing stored
  EXPECT_FALSE(out.has_value());

  EXPECT_EQ(decode_read_reply(bulk_value("garbage"), &out).kind, ReplicaOutcome::Kind::kFailed);
  EXPECT_EQ(decode_read_reply(error_value("NOTOWNER 4"), &out).fence.code,
            replica::FenceCode::kNotOwner);
  EXPECT_EQ(decode_read_reply(error_value("MOVING 4"), &out).fence.code,
            replica::FenceCode::kMoving);
}

TEST(DecodeTest, ScanReplies) {
  const Cell a = make_cell(HybridClock::make(1000, 1), 1, "a");
  const Cell b = make_tombstone(HybridClock::make(1001, 0), 2);
  replica::ScanResult result;
  ReplicaOutcome outcome = decode_scan_reply(
      array_value({bulk_value("42"), integer_value(0),
                   array_value({bulk_value("ka"), bulk_value(""), bulk_value(storage::encode_cell(a)),
                                bulk_value("kb"), bulk_value("\x01f"),
                                bulk_value(storage::encode_cell(b))})}),
      &result);
  ASSERT_TRUE(outcome.ok()) << outcome.error;
  EXPECT_EQ(result.next_token, 42u);
  EXPECT_FALSE(result.done);
  ASSERT_EQ(result.entries.size(), 2u);
  EXPECT_EQ(result.entries[0].key, "ka");
  EXPECT_EQ(result.entries[0].cell, a);
  EXPECT_EQ(result.entries[1].cell, b);
  EXPECT_EQ(result.entries[0].sub_key, "");
  EXPECT_EQ(result.entries[1].sub_key, "\x01f");  // a field of kb's row

  // The full 64-bit range of tokens survives.
  ASSERT_TRUE(decode_scan_reply(array_value({bulk_value("18446744073709551615"), integer_value(1),
                                             array_value({})}),
                                &result)
                  .ok());
  EXPECT_EQ(result.next_token, UINT64_MAX);
  EXPECT_TRUE(result.done);
  EXPECT_TRUE(result.resume.empty());

  // A fourth element: the page stopped inside a big row and says where to resume.
  ASSERT_TRUE(decode_scan_reply(array_value({bulk_value("7"), integer_value(0), array_value({}),
                                             bulk_value("resume-position")}),
                                &result)
                  .ok());
  EXPECT_EQ(result.resume, "resume-position");
  EXPECT_FALSE(decode_scan_reply(array_value({bulk_value("7"), integer_value(0), array_value({}),
                                              bulk_value("")}),
                                 &result)
                   .ok());

  // A signed integer token, an odd key/cell list, a missing field and a bad cell are malformed.
  EXPECT_FALSE(decode_scan_reply(array_value({integer_value(1), integer_value(1), array_value({})}),
                                 &result)
                   .ok());
  EXPECT_FALSE(decode_scan_reply(array_value({bulk_value("1"), integer_value(1),
                                              array_value({bulk_value("k")})}),
                                 &result)
                   .ok());
  EXPECT_FALSE(decode_scan_reply(array_value({bulk_value("1"), integer_value(1)}), &result).ok());
  EXPECT_FALSE(decode_scan_reply(array_value({bulk_value("1"), integer_value(1),
                                              array_value({bulk_value("k"), bulk_value(""),
                                                           bulk_value("x")})}),
                                 &result)
                   .ok());
}

// ---- merge ----

TEST(MergeTest, LatestCellWinsAndStaleAnswersAreRepaired) {
  const Cell old_value = make_cell(HybridClock::make(1000, 0), 1, "old");
  const Cell new_value = make_cell(HybridClock::make(2000, 0), 2, "new");
  const std::vector<std::optional<Cell>> answers = {old_value, new_value, std::nullopt};
  const std::optional<Cell> winner = merge_cells(answers);
  EXPECT_EQ(winner, new_value);
  EXPECT_EQ(stale_answers(answers, winner), (std::vector<size_t>{0, 2}));
}

TEST(MergeTest, TombstoneShadowsOlderValues) {
  const Cell value = make_cell(HybridClock::make(1000, 0), 1, "v");
  const Cell tombstone = make_tombstone(HybridClock::make(1000, 1), 1);
  const std::vector<std::optional<Cell>> answers = {value, tombstone};
  EXPECT_EQ(merge_cells(answers), tombstone);
}

TEST(MergeTest, EqualTimestampsBreakTiesByWriter) {
  const Cell low = make_cell(HybridClock::make(1000, 0), 1, "low");
  const Cell high = make_cell(HybridClock::make(1000, 0), 9, "high");
  const std::vector<std::optional<Cell>> one_order = {low, high};
  const std::vector<std::optional<Cell>> other_order = {high, low};
  EXPECT_EQ(merge_cells(one_order), high);
  EXPECT_EQ(merge_cells(other_order), high);
}

TEST(MergeTest, NothingStoredAnywhere) {
  const std::vector<std::optional<Cell>> answers = {std::nullopt, std::nullopt};
  EXPECT_FALSE(merge_cells(answers).has_value());
  EXPECT_TRUE(stale_answers(answers, std::nullopt).empty());
}

// ---- scan page merge ----

// Keys sorted by token (their storage order), with their tokens.
std::vector<std::pair<topology::Token, std::string>> sorted_keys(int n) {
  std::vector<std::pair<topology::Token, std::string>> keys;
  for (int i = 0; i < n; ++i) {
    std::string key = "key:" + std::to_string(i);
    keys.emplace_back(topology::token_of(key), key);
  }
  std::sort(keys.begin(), keys.end());
  return keys;
}

TEST(ScanMergeTest, PageStopsAtTheFirstReplicaThatIsNotDone) {
  const auto keys = sorted_keys(6);
  const Cell v1 = make_cell(HybridClock::make(1000, 0), 1, "1");
  const Cell v2 = make_cell(HybridClock::make(2000, 0), 1, "2");
  // Replica A saw keys 0..3 and stopped before key 4; replica B saw 0..5 and is done, with a
  // newer tombstone for key 1 and a key A misses (key 2).
  replica::ScanResult a;
  for (int i : {0, 1, 3}) a.entries.push_back({keys[i].second, v1, {}});
  a.next_token = keys[4].first;
  a.done = false;
  replica::ScanResult b;
  b.entries.push_back({keys[0].second, v1, {}});
  b.entries.push_back({keys[1].second, make_tombstone(HybridClock::make(3000, 0), 2), {}});
  for (int i : {2, 3, 4, 5}) b.entries.push_back({keys[i].second, v2, {}});
  b.next_token = 0;
  b.done = true;
  const std::vector<replica::ScanResult> answers = {a, b};

  ScanPage page = merge_scan_answers(0, answers, 5000, nullptr);
  EXPECT_EQ(page.next_cursor, keys[4].first);
  // Key 1 is deleted (B's tombstone wins), keys 4 and 5 wait for the next page.
  EXPECT_EQ(page.keys, (std::vector<std::string>{keys[0].second, keys[2].second, keys[3].second}));
}

TEST(ScanMergeTest, AllDoneEndsAtTheRangeEndOrTheRingEnd) {
  const auto keys = sorted_keys(3);
  const Cell value = make_cell(HybridClock::make(1000, 0), 1, "v");
  replica::ScanResult a;
  for (const auto& [token, key] : keys) a.entries.push_back({key, value, {}});
  a.done = true;
  const std::vector<replica::ScanResult> answers = {a, a};
  ScanPage to_ring_end = merge_scan_answers(0, answers, 5000, nullptr);
  EXPECT_EQ(to_ring_end.next_cursor, 0u);
  EXPECT_EQ(to_ring_end.keys.size(), 3u);  // duplicates across replicas appear once

  ScanPage to_range_end = merge_scan_answers(keys[2].first, answers, 5000, nullptr);
  EXPECT_EQ(to_range_end.next_cursor, keys[2].first);
  EXPECT_EQ(to_range_end.keys, (std::vector<std::string>{keys[0].second, keys[1].second}));
}

TEST(ScanMergeTest, ExpiredCellsAndFilteredKeysAreLeftOut) {
  const auto keys = sorted_keys(3);
  replica::ScanResult a;
  a.done = true;
  a.entries.push_back({keys[0].second, make_cell(HybridClock::make(1000, 0), 1, "keep"), {}});
  Cell expired = make_cell(HybridClock::make(1000, 0), 1, "gone");
  expired.expire_at_ms = 4000;
  a.entries.push_back({keys[1].second, expired, {}});
  a.entries.push_back({keys[2].second, make_cell(HybridClock::make(1000, 0), 1, "drop"), {}});
  const std::vector<replica::ScanResult> answers = {a};
  ScanPage page = merge_scan_answers(0, answers, 5000, [](std::string_view, const Cell& cell) {
    return cell.value != "drop";
  });
  EXPECT_EQ(page.keys, (std::vector<std::string>{keys[0].second}));
}

// ---- error texts ----

// ---- rows ----

replica::RowPage row_page(std::optional<Cell> header,
                          std::vector<std::pair<std::string, Cell>> fields,
                          std::optional<std::string> next = std::nullopt,
                          HlcTimestamp delete_through = 0) {
  replica::RowPage page;
  page.header = std::move(header);
  page.fields = std::move(fields);
  page.next = std::move(next);
  page.state.delete_through = delete_through;
  return page;
}

Cell hash_cell(HlcTimestamp timestamp, uint64_t writer, std::string value) {
  Cell cell = make_cell(timestamp, writer, std::move(value));
  cell.type = storage::ValueType::kHash;
  return cell;
}

TEST(RowMergeTest, NewestCellPerFieldWinsAndStaleReplicasAreRepairedPerField) {
  const std::string a = storage::field_sub_key("a");
  const std::string b = storage::field_sub_key("b");
  const std::string c = storage::field_sub_key("c");
  const Cell header = hash_cell(10, 1, storage::encode_row_header({5}));
  // Replica 0 missed b's write; replica 1 missed a's newer value and c's deletion.
  const std::vector<replica::RowPage> pages = {
      row_page(header, {{a, hash_cell(30, 1, "a2")}, {c, make_tombstone(40, 2)}}),
      row_page(header, {{a, hash_cell(20, 2, "a1")}, {b, hash_cell(25, 2, "b")},
                        {c, hash_cell(15, 1, "c")}})};
  const MergedRowPage merged = merge_row_pages(pages, 0);
  ASSERT_TRUE(merged.header.has_value());
  EXPECT_EQ(*merged.header, header);
  EXPECT_EQ(merged.hidden_through, 5u);
  EXPECT_FALSE(merged.next.has_value());
  ASSERT_EQ(merged.fields.size(), 3u);
  EXPECT_EQ(merged.fields[0], (std::pair<std::string, Cell>{a, hash_cell(30, 1, "a2")}));
  EXPECT_EQ(merged.fields[1], (std::pair<std::string, Cell>{b, hash_cell(25, 2, "b")}));
  EXPECT_EQ(merged.fields[2], (std::pair<std::string, Cell>{c, make_tombstone(40, 2)}));
  EXPECT_EQ(merged.stale_fields[0], (std::vector<size_t>{1}));
  EXPECT_EQ(merged.stale_fields[1], (std::vector<size_t>{0, 2}));
  EXPECT_EQ(merged.stale_header, (std::vector<bool>{false, false}));
}

TEST(RowMergeTest, DeletionBoundsHideOldFieldsWhichAreNotRepaired) {
  const std::string a = storage::field_sub_key("a");
  const std::string b = storage::field_sub_key("b");
  // Replica 1 saw the DEL at 50 (its row state says so) and a new life of the hash; replica 0
  // missed both and still holds a field of the old life.
  const Cell old_header = hash_cell(10, 1, storage::encode_row_header({0}));
  const Cell new_header = hash_cell(60, 1, storage::encode_row_header({50}));
  const std::vector<replica::RowPage> pages = {
      row_page(old_header, {{a, hash_cell(20, 1, "old")}}),
      row_page(new_header, {{b, hash_cell(70, 1, "new")}}, std::nullopt, 50)};
  const MergedRowPage merged = merge_row_pages(pages, 0);
  EXPECT_EQ(*merged.header, new_header);
  EXPECT_EQ(merged.hidden_through, 50u);
  EXPECT_EQ(merged.stale_header, (std::vector<bool>{true, false}));
  // a (20 <= 50) is hidden: merged, but never written back.
  ASSERT_EQ(merged.fields.size(), 2u);
  EXPECT_EQ(merged.stale_fields[0], (std::vector<size_t>{1}));
  EXPECT_TRUE(merged.stale_fields[1].empty());
}

TEST(RowMergeTest, APageEndsWhereTheFirstUnfinishedReplicaStopped) {
  const std::string a = storage::field_sub_key("a");
  const std::string b = storage::field_sub_key("b");
  const std::string c = storage::field_sub_key("c");
  const std::vector<replica::RowPage> pages = {
      row_page(std::nullopt, {{a, hash_cell(1, 1, "a")}}, b),
      row_page(std::nullopt, {{a, hash_cell(1, 1, "a")}, {b, hash_cell(2, 1, "b")}}, c)};
  const MergedRowPage merged = merge_row_pages(pages, 0);
  EXPECT_FALSE(merged.header.has_value());
  EXPECT_EQ(merged.next, std::optional<std::string>(b));
  ASSERT_EQ(merged.fields.size(), 1u);  // b is left to the next page, where both answer it
  EXPECT_TRUE(merged.stale_fields[0].empty());
  EXPECT_TRUE(merged.stale_fields[1].empty());
}

TEST(DecodeTest, RowReplies) {
  const std::string a = storage::field_sub_key("a");
  resp::Value reply;
  reply.type = resp::Value::Type::kArray;
  resp::Value null;
  null.type = resp::Value::Type::kNull;
  storage::RowState state;
  state.delete_through = 7;
  state.count = 1;
  resp::Value fields;
  fields.type = resp::Value::Type::kArray;
  fields.elements = {bulk_value(a), bulk_value(storage::encode_cell(hash_cell(9, 1, "v")))};
  const Cell header = hash_cell(8, 1, storage::encode_row_header({7}));
  reply.elements = {bulk_value(storage::encode_cell(header)),
                    bulk_value(storage::encode_row_state(state)), null, fields};
  replica::RowPage page;
  ASSERT_TRUE(decode_row_reply(reply, &page).ok());
  EXPECT_TRUE(page.header.has_value());
  EXPECT_EQ(page.state, state);
  EXPECT_FALSE(page.next.has_value());
  ASSERT_EQ(page.fields.size(), 1u);
  EXPECT_EQ(page.fields[0].first, a);
  EXPECT_EQ(page.fields[0].second.value, "v");

  reply.elements[3].elements.pop_back();  // an odd flat list
  EXPECT_EQ(decode_row_reply(reply, &page).kind, ReplicaOutcome::Kind::kFailed);
  EXPECT_EQ(decode_row_reply(error_value("STALEEPOCH 4"), &page).kind,
            ReplicaOutcome::Kind::kFence);
}

TEST(ErrorTextTest, ClientsSeeTheAgreedMessages) {
  EXPECT_EQ(uncertain_write_message(1, 2),
            "UNCERTAIN 1 of 2 required replicas acknowledged; the write may have been applied");
  EXPECT_EQ(unavailable_read_message(0, 2), "UNAVAILABLE 0 of 2 required replicas answered");
  EXPECT_EQ(kCrossShardMessage, "CROSSSHARD keys in request don't hash to the same shard");
  EXPECT_EQ(no_leader_message(3).rfind("NOLEADER shard 3 ", 0), 0u);
}

// ---- a coordinator whose peers are unreachable ----
//
// One real machine (engine, replica, table, coordinator) in a table whose other machines listen
// nowhere: what the local replica can do succeeds, what needs the others fails with the agreed
// errors and leaves hints behind. The full multi-machine path is covered by tests/cluster.

class ClusterSessionTest : public ::testing::Test {
 protected:
  static constexpr uint64_t kSelf = 1;

  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    directory_ = std::filesystem::temp_directory_path() /
                 (std::string("cairn-cluster-") + info->name() + "-" + std::to_string(::getpid()));
    std::filesystem::remove_all(directory_);
    storage::EngineOptions engine_options;
    engine_options.path = directory_.string();
    engine_options.durability = storage::Durability::kNone;
    auto engine = storage::Engine::open(engine_options);
    ASSERT_TRUE(engine.is_ok()) << engine.status().to_string();
    engine_ = std::move(engine).value();
    replica_ = std::make_unique<replica::Replica>(*engine_, clock_, kSelf, tables_);
    net::PeerPoolOptions peer_options;
    peer_options.secret = "secret";
    peer_options.connect_timeout_ms = 200;
    peers_ = std::make_unique<net::PeerPool>(peer_options);
    ClusterOptions options;
    options.request_timeout_ms = 500;
    options.hint_replay_interval_ms = 50;
    coordinator_ =
        std::make_unique<ClusterCoordinator>(options, *engine_, clock_, *replica_, *peers_);
    session_ = std::make_unique<ClusterSession>(*coordinator_, request_options_);
  }

  void TearDown() override {
    session_.reset();
    coordinator_.reset();
    peers_.reset();
    replica_.reset();
    engine_.reset();
    std::filesystem::remove_all(directory_);
  }

  // Machines `ids` in this order (the first leads), one shard; only kSelf exists. Ports 1..n on
  // 127.0.0.1 refuse connections.
  void install_table(std::vector<uint64_t> ids, uint32_t shards = 1) {
    std::vector<topology::Machine> machines;
    for (uint64_t id : ids) {
      topology::Machine machine;
      machine.id = id;
      machine.address = "127.0.0.1:" + std::to_string(id);
      machine.internal_address = machine.address;
      machines.push_back(machine);
    }
    const uint32_t rf = static_cast<uint32_t>(ids.size() / shards);
    auto table = topology::RoutingTable::make_initial(machines, shards, rf, 1);
    ASSERT_TRUE(table.is_ok()) << table.status().to_string();
    ASSERT_TRUE(tables_.install(std::move(*table)).is_ok());
  }

  std::filesystem::path directory_;
  HybridClock clock_;
  replica::TableHolder tables_;
  std::unique_ptr<storage::Engine> engine_;
  std::unique_ptr<replica::Replica> replica_;
  std::unique_ptr<net::PeerPool> peers_;
  std::unique_ptr<ClusterCoordinator> coordinator_;
  RequestOptions request_options_;
  std::unique_ptr<ClusterSession> session_;
};

TEST_F(ClusterSessionTest, WithoutATableEverythingFailsClearly) {
  Status status = session_->write("k", storage::ValueType::kString, "v", 0);
  EXPECT_EQ(status.code(), StatusCode::kUnavailable);
  EXPECT_EQ(status.message().rfind("NOTABLE", 0), 0u);
  EXPECT_FALSE(session_->read("k").is_ok());
}

TEST_F(ClusterSessionTest, SingleReplicaClusterServesEverything) {
  install_table({kSelf});
  ASSERT_TRUE(session_->write("a", storage::ValueType::kString, "1", 0).is_ok());
  ASSERT_TRUE(session_->write("b", storage::ValueType::kString, "2", 0).is_ok());
  Result<std::optional<Cell>> a = session_->read("a");
  ASSERT_TRUE(a.is_ok());
  ASSERT_TRUE(a->has_value());
  EXPECT_EQ((*a)->value, "1");
  EXPECT_EQ((*a)->writer, kSelf);

  ASSERT_TRUE(session_->remove("b").is_ok());
  const std::vector<std::string> keys = {"a", "b", "c"};
  auto many = session_->read_many(keys);
  ASSERT_TRUE(many.is_ok());
  EXPECT_TRUE((*many)[0].has_value());
  EXPECT_FALSE((*many)[1].has_value());
  EXPECT_FALSE((*many)[2].has_value());

  auto count = session_->count();
  ASSERT_TRUE(count.is_ok()) << count.status().to_string();
  EXPECT_EQ(*count, 1u);
  auto random = session_->random_key();
  ASSERT_TRUE(random.is_ok());
  EXPECT_EQ(*random, std::optional<std::string>("a"));

  // Leader: atomically runs here, at QUORUM.
  bool ran = false;
  ASSERT_TRUE(session_->atomically(keys, [&] {
                        ran = true;
                        return Status::ok();
                      })
                  .is_ok());
  EXPECT_TRUE(ran);
  EXPECT_FALSE(session_->take_redirect().has_value());

  ASSERT_TRUE(session_->clear().is_ok());
  count = session_->count();
  ASSERT_TRUE(count.is_ok());
  EXPECT_EQ(*count, 0u);
  EXPECT_EQ(coordinator_->stats().writes, 3u);
}

TEST_F(ClusterSessionTest, RowsOnASingleReplicaClusterReadAndWriteFields) {
  install_table({kSelf});
  using storage::ValueType;
  // A hash as the commands write one: a header, then fields.
  ASSERT_TRUE(session_->write("h", ValueType::kHash, storage::encode_row_header({0}), 0).is_ok());
  auto row = session_->read_row("h");
  ASSERT_TRUE(row.is_ok()) << row.status().to_string();
  EXPECT_FALSE(row->header.has_value());  // no field yet: no key
  EXPECT_FALSE(session_->read("h")->has_value());

  std::vector<std::pair<std::string, std::string>> fields;
  for (int i = 0; i < 250; ++i) {  // more than one CAIRN.ROW page
    fields.emplace_back(storage::field_sub_key("f" + std::to_string(i)), std::to_string(i));
  }
  ASSERT_TRUE(session_->write_fields("h", ValueType::kHash, fields).is_ok());
  row = session_->read_row("h");
  ASSERT_TRUE(row.is_ok());
  ASSERT_TRUE(row->header.has_value());
  EXPECT_EQ(row->header->type, ValueType::kHash);
  EXPECT_EQ(row->count, 250u);
  EXPECT_TRUE(session_->read("h")->has_value());

  const std::vector<std::string> wanted = {storage::field_sub_key("f7"),
                                           storage::field_sub_key("nope")};
  auto cells = session_->read_fields("h", wanted, row->hidden_through);
  ASSERT_TRUE(cells.is_ok());
  ASSERT_TRUE((*cells)[0].has_value());
  EXPECT_EQ((*cells)[0]->value, "7");
  EXPECT_FALSE((*cells)[1].has_value());

  ASSERT_TRUE(session_->remove_fields("h", ValueType::kHash, wanted).is_ok());
  size_t visited = 0;
  ASSERT_TRUE(session_
                  ->scan_fields("h", {}, row->hidden_through,
                                [&](std::string_view sub_key, const Cell&) {
                                  EXPECT_NE(sub_key, wanted[0]);
                                  ++visited;
                                  return true;
                                })
                  .is_ok());
  EXPECT_EQ(visited, 249u);
  EXPECT_EQ(session_->read_row("h")->count, 249u);

  // DEL hides every field with one cell.
  const std::vector<std::string> keys = {"h"};
  auto removed = session_->remove_many(keys);
  ASSERT_TRUE(removed.is_ok());
  EXPECT_EQ(*removed, 1);
  EXPECT_FALSE(session_->read_row("h")->header.has_value());
  auto count = session_->count();
  ASSERT_TRUE(count.is_ok());
  EXPECT_EQ(*count, 0u);
}

TEST_F(ClusterSessionTest, FieldWritesToUnreachableReplicasAreHintedWithTheirSubKey) {
  install_table({kSelf, 2, 3});
  request_options_.write = topology::ConsistencyLevel::one();
  const std::pair<std::string, std::string> field{storage::field_sub_key("f"), "v"};
  ASSERT_TRUE(
      session_->write_fields("h", storage::ValueType::kHash, std::span(&field, 1)).is_ok());
  const auto deadline = steady_clock::now() + std::chrono::seconds(5);
  while (coordinator_->stats().hints_stored < 2 && steady_clock::now() < deadline) {
    std::this_thread::sleep_for(milliseconds(10));
  }
  auto hints = engine_->hints_for(2, 10);
  ASSERT_TRUE(hints.is_ok());
  ASSERT_EQ(hints->size(), 1u);
  EXPECT_EQ((*hints)[0].key, "h");
  EXPECT_EQ((*hints)[0].sub_key, field.first);
  EXPECT_EQ((*hints)[0].cell.value, "v");
}

TEST_F(ClusterSessionTest, TheLeaderWritesAtQuorumOrAtTheConnectionsLevelIfHigher) {
  install_table({kSelf, 2, 3});  // this machine leads; the other two are unreachable
  const std::vector<std::string> keys = {"k"};
  auto write_in_atomically = [&] {
    return session_->atomically(keys, [&] {
      return session_->write("k", storage::ValueType::kString, "v", 0);
    });
  };
  request_options_.write = topology::ConsistencyLevel::one();
  EXPECT_EQ(write_in_atomically().message(), uncertain_write_message(1, 2));  // QUORUM at least
  request_options_.write = topology::ConsistencyLevel::all();
  EXPECT_EQ(write_in_atomically().message(), uncertain_write_message(1, 3));
  // Outside atomically() the connection's level alone counts.
  request_options_.write = topology::ConsistencyLevel::one();
  EXPECT_TRUE(session_->write("k", storage::ValueType::kString, "w", 0).is_ok());
}

TEST_F(ClusterSessionTest, LevelsTheShardCannotMeetAreErrors) {
  install_table({kSelf});
  request_options_.write = topology::ConsistencyLevel::two();
  Status status = session_->write("a", storage::ValueType::kString, "1", 0);
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(status.message().rfind("cannot satisfy consistency TWO", 0), 0u) << status.message();
}

TEST_F(ClusterSessionTest, UnreachableReplicasMakeWritesUncertainAndLeaveHints) {
  install_table({kSelf, 2, 3});
  Status status = session_->write("k", storage::ValueType::kString, "v", 0);
  EXPECT_EQ(status.code(), StatusCode::kUnavailable);
  EXPECT_EQ(status.message(), uncertain_write_message(1, 2));
  EXPECT_EQ(coordinator_->stats().uncertain_writes, 1u);

  // Hints are stored by the peer callbacks, which may finish after the write returned.
  const auto deadline = steady_clock::now() + std::chrono::seconds(5);
  while (coordinator_->stats().hints_stored < 2 && steady_clock::now() < deadline) {
    std::this_thread::sleep_for(milliseconds(10));
  }
  EXPECT_EQ(coordinator_->stats().hints_stored, 2u);
  const auto counts = engine_->hint_counts();
  ASSERT_EQ(counts.size(), 2u);
  EXPECT_EQ(counts[0], (std::pair<uint64_t, uint64_t>{2, 1}));
  EXPECT_EQ(counts[1], (std::pair<uint64_t, uint64_t>{3, 1}));

  // At ONE the local replica suffices, for writes and for reads.
  request_options_.write = topology::ConsistencyLevel::one();
  request_options_.read = topology::ConsistencyLevel::one();
  EXPECT_TRUE(session_->write("k", storage::ValueType::kString, "w", 0).is_ok());
  auto read = session_->read("k");
  ASSERT_TRUE(read.is_ok()) << read.status().to_string();
  EXPECT_EQ((*read)->value, "w");

  request_options_.read = topology::ConsistencyLevel::quorum();
  read = session_->read("k");
  ASSERT_FALSE(read.is_ok());
  EXPECT_EQ(read.status().message(), unavailable_read_message(1, 2));
  auto page = session_->scan(ScanRequest{});
  ASSERT_FALSE(page.is_ok());
  EXPECT_EQ(page.status().message(), unavailable_read_message(1, 2));
  EXPECT_FALSE(session_->clear().is_ok());
}

TEST_F(ClusterSessionTest, HintReplayerKeepsHintsWhileTheTargetIsDown) {
  install_table({kSelf, 2, 3});
  coordinator_->start();
  request_options_.write = topology::ConsistencyLevel::one();
  ASSERT_TRUE(session_->write("k", storage::ValueType::kString, "v", 0).is_ok());
  std::this_thread::sleep_for(milliseconds(300));  // a few replay rounds against closed ports
  coordinator_->stop();
  EXPECT_EQ(coordinator_->stats().hints_replayed, 0u);
  uint64_t stored = 0;
  for (const auto& [target, count] : engine_->hint_counts()) stored += count;
  EXPECT_EQ(stored, 2u);
}

TEST_F(ClusterSessionTest, AtomicallyRedirectsToTheLeaderAndRefusesCrossShardKeys) {
  install_table({2, kSelf, 3});  // machine 2 leads the only shard
  bool ran = false;
  const std::vector<std::string> keys = {"counter"};
  Status status = session_->atomically(keys, [&] {
    ran = true;
    return Status::ok();
  });
  EXPECT_FALSE(ran);
  EXPECT_EQ(status.message(), kRedirectMessage);
  EXPECT_EQ(session_->take_redirect(), std::optional<uint64_t>(2));
  EXPECT_FALSE(session_->take_redirect().has_value());
  EXPECT_EQ(coordinator_->stats().redirects, 1u);
}

TEST_F(ClusterSessionTest, AtomicallyRefusesKeysOnDifferentShards) {
  install_table({kSelf, 2}, 2);  // two shards of one replica each
  // Find two keys on different shards.
  auto table = tables_.current();
  std::vector<std::string> keys = {"k0"};
  for (int i = 1; keys.size() < 2; ++i) {
    std::string key = "k" + std::to_string(i);
    if (table->shard_for_token(topology::token_of(key)).id !=
        table->shard_for_token(topology::token_of(keys[0])).id) {
      keys.push_back(key);
    }
  }
  Status status = session_->atomically(keys, [] { return Status::ok(); });
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(status.message(), kCrossShardMessage);
}

// ---- key locks ----

TEST_F(ClusterSessionTest, LockKeysTakesRepeatedKeysOnce) {
  const std::vector<std::string> keys = {"x", "y", "x"};
  auto locks = lock_keys(*engine_, keys);
  EXPECT_GE(locks.size(), 1u);
  EXPECT_LE(locks.size(), 2u);
  for (const auto& lock : locks) EXPECT_TRUE(lock.owns_lock());
}


// ---- MOVING: a migration's cutover (docs/migration.md) ----

// The fence of the whole ring at the current epoch on this (single-replica) machine, lifted by
// a newer table after `lift_after` (the commit's epoch would do the same), or never.
class CutoverTest : public ClusterSessionTest {
 protected:
  void fence_everything() {
    Result<std::pair<replica::Fence, uint64_t>> fenced =
        replica_->fence_range(tables_.epoch(), 0, 0);
    ASSERT_TRUE(fenced.is_ok() && fenced->first.ok());
  }
  void lift_after(milliseconds delay) {
    lifter_ = std::thread([this, delay] {
      std::this_thread::sleep_for(delay);
      const auto table = tables_.current();
      // A split of the first range, narrower at each epoch: ownership stays, the epoch grows.
      Result<topology::RoutingTable> next =
          table->split_range(0, topology::Token{1} << (62 - table->epoch()));
      CAIRN_ASSERT(next.is_ok(), next.status().to_string());
      CAIRN_ASSERT(tables_.install(std::move(*next)).is_ok(), "a newer table installs");
    });
  }
  void TearDown() override {
    if (lifter_.joinable()) lifter_.join();
    ClusterSessionTest::TearDown();
  }
  uint64_t hints() const {
    uint64_t total = 0;
    for (const auto& [target, count] : engine_->hint_counts()) total += count;
    return total;
  }

  std::thread lifter_;
};

TEST_F(CutoverTest, WritesReadsAndScansWaitForTheNextEpoch) {
  install_table({kSelf});
  ASSERT_TRUE(session_->write("k", storage::ValueType::kString, "old", 0).is_ok());

  fence_everything();
  lift_after(milliseconds(30));
  auto start = steady_clock::now();
  ASSERT_TRUE(session_->write("k", storage::ValueType::kString, "new", 0).is_ok());
  EXPECT_GE(steady_clock::now() - start, milliseconds(25));
  lifter_.join();
  EXPECT_EQ(tables_.epoch(), 2u);

  fence_everything();
  lift_after(milliseconds(30));
  start = steady_clock::now();
  Result<std::optional<Cell>> read = session_->read("k");
  ASSERT_TRUE(read.is_ok()) << read.status().to_string();
  EXPECT_EQ((*read)->value, "new");
  EXPECT_GE(steady_clock::now() - start, milliseconds(25));
  lifter_.join();

  fence_everything();
  lift_after(milliseconds(30));
  Result<uint64_t> count = session_->count();
  ASSERT_TRUE(count.is_ok()) << count.status().to_string();
  EXPECT_EQ(*count, 1u);
  lifter_.join();

  EXPECT_EQ(hints(), 0u);  // MOVING is never hinted
  EXPECT_EQ(coordinator_->stats().uncertain_writes, 0u);
  EXPECT_EQ(coordinator_->stats().unavailable_reads, 0u);
}

TEST_F(CutoverTest, AFenceThatOutlivesTheDeadlineFailsTheRequest) {
  install_table({kSelf});
  fence_everything();
  const auto start = steady_clock::now();
  Status status = session_->write("k", storage::ValueType::kString, "v", 0);
  EXPECT_EQ(status.code(), StatusCode::kUnavailable);
  EXPECT_EQ(status.message(), uncertain_write_message(0, 1));
  // Retried until the request deadline (500 ms), not beyond it.
  EXPECT_GE(steady_clock::now() - start, milliseconds(450));
  EXPECT_LT(steady_clock::now() - start, milliseconds(2000));
  Result<std::optional<Cell>> read = session_->read("k");
  ASSERT_FALSE(read.is_ok());
  EXPECT_EQ(read.status().message(), unavailable_read_message(0, 1));
  EXPECT_FALSE(session_->scan(ScanRequest{}).is_ok());
  EXPECT_EQ(hints(), 0u);
}

}  // namespace
}  // namespace cairn::coordinator
