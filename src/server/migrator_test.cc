// The machine side of a migration on a loopback cluster: two Server instances in this process,
// each the only replica of its shard. The target's Migrator copies one range of the source's
// shard while a client keeps writing to it; after a FENCE on the source, CAIRN.MIGRATE FINISH on
// the target makes both hold exactly the same cells of the range.

#include "server/migrator.h"

#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/clock.h"
#include "common/hlc.h"
#include "net/peer_pool.h"
#include "replica/replica.h"
#include "replica/table_holder.h"
#include "storage/engine.h"
#include "server/raw_client_test.h"
#include "server/server.h"
#include "topology/routing_table.h"

namespace cairn::server {
namespace {

using test_support::command;
using test_support::RawClient;

constexpr std::string_view kSecret = "migration-secret";
constexpr uint64_t kMigrationId = 7;

class MigratorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = std::filesystem::temp_directory_path() /
            ("cairn-migrator-test-" + std::to_string(::getpid()) + "-" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(root_);
    std::vector<topology::Machine> machines;
    for (uint64_t id = 1; id <= 2; ++id) {
      ServerConfig config;
      config.port = 0;
      config.bind = "127.0.0.1";
      config.data_dir = (root_ / ("m" + std::to_string(id))).string();
      config.threads = 1;
      config.workers = 4;
      config.cluster_secret = std::string(kSecret);
      config.machine_id = id;
      config.request_timeout_ms = 500;
      auto server = Server::start(config);
      ASSERT_TRUE(server.is_ok()) << server.status().to_string();
      topology::Machine machine;
      machine.id = id;
      machine.address = "127.0.0.1:" + std::to_string((*server)->port());
      machine.internal_address = machine.address;
      machines.push_back(machine);
      servers_.push_back(std::move(*server));
    }
    // Two shards of one replica each, four ranges per shard.
    auto table = topology::RoutingTable::make_initial(machines, 2, 1, 4);
    ASSERT_TRUE(table.is_ok()) << table.status().to_string();
    table_ = std::make_unique<topology::RoutingTable>(*table);
    net::PeerPoolOptions options;
    options.secret = std::string(kSecret);
    pool_ = std::make_unique<net::PeerPool>(options);
    for (const topology::Machine& machine : machines) {
      auto reply = pool_->call_sync(machine.address,
                                    {"CAIRN.TABLE", "SET", table->to_json_text()}, 5000);
      ASSERT_TRUE(reply.is_ok()) << reply.status().to_string();
      ASSERT_EQ(reply->type, resp::Value::Type::kSimple) << reply->str;
    }
    for (const topology::Shard& shard : table->shards()) {
      if (shard.replicas == std::vector<uint64_t>{1}) source_shard_ = shard.id;
      if (shard.replicas == std::vector<uint64_t>{2}) target_shard_ = shard.id;
    }
    ASSERT_NE(source_shard_, 0u);
    ASSERT_NE(target_shard_, 0u);
    range_ = table->ranges_of_shard(source_shard_).front();
  }
  void TearDown() override {
    pool_.reset();
    servers_.clear();
    std::filesystem::remove_all(root_);
  }

  uint16_t port(uint64_t id) const { return servers_[id - 1]->port(); }
  std::string address(uint64_t id) const { return "127.0.0.1:" + std::to_string(port(id)); }

  MigrationOrder order(std::string phase) const {
    MigrationOrder out;
    out.id = kMigrationId;
    out.start = range_.start;
    out.end = range_.end;
    out.source = source_shard_;
    out.target = target_shard_;
    out.phase = std::move(phase);
    return out;
  }

  // Every cell machine `id` stores in the range: key → encoded cell.
  std::map<std::string, std::string> dump(uint64_t id) {
    std::map<std::string, std::string> out;
    uint64_t cursor = range_.start;
    std::string from;  // inside a big row: where the last page said to resume
    for (int page = 0; page < 10'000; ++page) {
      std::vector<std::string> args = {"CAIRN.MIGRATE", "SCAN", std::to_string(cursor),
                                       std::to_string(range_.end), "500"};
      if (!from.empty()) {
        args.emplace_back("FROM");
        args.push_back(from);
      }
      auto reply = pool_->call_sync(address(id), args, 5000);
      EXPECT_TRUE(reply.is_ok() && reply->type == resp::Value::Type::kArray &&
                  (reply->elements.size() == 2 || reply->elements.size() == 3))
          << (reply.is_ok() ? reply->str : reply.status().to_string());
      if (!reply.is_ok() || reply->elements.size() < 2) return out;
      const auto& cells = reply->elements[1].elements;
      for (size_t i = 0; i + 2 < cells.size(); i += 3) {
        // Strings only in these tests: a field would be named key/sub-key.
        const std::string& sub_key = cells[i + 1].str;
        out[sub_key.empty() ? cells[i].str : cells[i].str + "/" + sub_key] = cells[i + 2].str;
      }
      const uint64_t next = std::stoull(reply->elements[0].str, nullptr, 16);
      from = reply->elements.size() == 3 ? reply->elements[2].str : std::string();
      if (from.empty() && (next == 0 || next == range_.end)) return out;
      cursor = next;
    }
    ADD_FAILURE() << "the scan did not end";
    return out;
  }

  std::optional<MigrationReport> report() {
    for (const MigrationReport& report : servers_[1]->migrator()->reports()) {
      if (report.id == kMigrationId) return report;
    }
    return std::nullopt;
  }

  std::filesystem::path root_;
  std::vector<std::unique_ptr<Server>> servers_;
  std::unique_ptr<topology::RoutingTable> table_;
  std::unique_ptr<net::PeerPool> pool_;
  uint64_t source_shard_ = 0;
  uint64_t target_shard_ = 0;
  topology::Range range_;
};

// Sets, overwrites, deletes and expiring keys through the source machine until told to stop.
class Writer {
 public:
  Writer(uint16_t port, std::string prefix, int first, int count)
      : thread_([this, port, prefix = std::move(prefix), first, count] {
          RawClient client(port);
          for (int i = first; i < first + count && !stop_.load(); ++i) {
            const std::string key = prefix + std::to_string(i % 700);
            std::string reply;
            if (i % 5 == 0) {
              reply = client.line(command({"DEL", key}));
            } else if (i % 7 == 0) {
              reply = client.line(command({"SET", key, "v" + std::to_string(i), "EX", "1000"}));
            } else {
              reply = client.line(command({"SET", key, "v" + std::to_string(i)}));
            }
            if (!reply.empty() && reply[0] != '-') acknowledged_.fetch_add(1);
          }
        }) {}
  ~Writer() { stop(); }
  // Waits until every write was sent.
  void wait() {
    if (thread_.joinable()) thread_.join();
  }
  void stop() {
    stop_ = true;
    wait();
  }
  int acknowledged() const { return acknowledged_.load(); }

 private:
  std::atomic<bool> stop_{false};
  std::atomic<int> acknowledged_{0};
  std::thread thread_;
};

TEST_F(MigratorTest, TargetCopiesWhileWritesContinueAndFinishMakesTheRangeIdentical) {
  {
    Writer before(port(1), "k", 0, 1500);
    before.wait();
    EXPECT_GT(before.acknowledged(), 0);
  }
  ASSERT_FALSE(dump(1).empty()) << "no key of the first 700 falls in the migrated range";
  EXPECT_TRUE(dump(2).empty());

  Writer during(port(1), "k", 1500, 50'000);
  servers_[1]->migrator()->set_orders({order("staging")}, table_->epoch());
  // The source machine has no part as a target: it copies nothing.
  servers_[0]->migrator()->set_orders({order("staging")}, table_->epoch());
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  std::optional<MigrationReport> progress;
  while (std::chrono::steady_clock::now() < deadline) {
    progress = report();
    if (progress && progress->ready) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_TRUE(progress && progress->staged && progress->ready);
  EXPECT_GT(progress->keys, 0u);
  EXPECT_GT(progress->bytes, 0u);
  EXPECT_LT(progress->lag, 1000u);
  servers_[1]->migrator()->set_orders({order("catchup")}, table_->epoch());

  // Not before every source is named right.
  auto unknown = pool_->call_sync(address(2), {"CAIRN.MIGRATE", "FINISH", "7", "9", "1"}, 5000);
  ASSERT_TRUE(unknown.is_ok());
  EXPECT_EQ(unknown->str.rfind("NOTREADY ", 0), 0u) << unknown->str;
  auto other = pool_->call_sync(address(2), {"CAIRN.MIGRATE", "FINISH", "8", "1", "1"}, 5000);
  ASSERT_TRUE(other.is_ok());
  EXPECT_EQ(other->str.rfind("NOTREADY ", 0), 0u) << other->str;

  // Writes are still arriving when the range is fenced.
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  auto fenced = pool_->call_sync(address(1),
                                 {"CAIRN.MIGRATE", "FENCE", std::to_string(table_->epoch()),
                                  std::to_string(range_.start), std::to_string(range_.end)},
                                 5000);
  ASSERT_TRUE(fenced.is_ok());
  ASSERT_EQ(fenced->type, resp::Value::Type::kInteger) << fenced->str;
  during.stop();
  EXPECT_GT(during.acknowledged(), 0);
  auto finished = pool_->call_sync(
      address(2),
      {"CAIRN.MIGRATE", "FINISH", "7", "1", std::to_string(fenced->integer)}, 10'000);
  ASSERT_TRUE(finished.is_ok()) << finished.status().to_string();
  ASSERT_EQ(finished->type, resp::Value::Type::kSimple) << finished->str;

  const std::map<std::string, std::string> source = dump(1);
  const std::map<std::string, std::string> target = dump(2);
  EXPECT_FALSE(source.empty());
  EXPECT_EQ(source.size(), target.size());
  EXPECT_TRUE(source == target);

  // INFO names the migration.
  RawClient client(port(2));
  client.send(command({"INFO", "cluster"}));
  const std::string header = client.read_until("\r\n");
  const std::string info = client.read(std::stoul(header.substr(1)) + 2);
  EXPECT_NE(info.find("migrations_active:1\r\n"), std::string::npos) << info;
  EXPECT_NE(info.find("migration_7:phase=catchup"), std::string::npos) << info;

  // The migration is cancelled: the target drops what it copied (it owns none of the range),
  // the source keeps it.
  servers_[1]->migrator()->set_orders({}, table_->epoch());
  servers_[0]->migrator()->set_orders({}, table_->epoch());
  const auto dropped_by = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!dump(2).empty() && std::chrono::steady_clock::now() < dropped_by) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_TRUE(dump(2).empty());
  EXPECT_EQ(dump(1), source);
}

TEST(MigrationOrdersTest, ParsesTheHeartbeatAnswersOrdersAndSkipsBrokenOnes) {
  const std::string answer = R"({"epoch": 4, "migrations": [
      {"id": 3, "start": "0x10", "end": "0x0", "source": 1, "target": 2, "phase": "cutover",
       "paused": false, "max_rate": 1000, "attempt": 2, "driver": 5, "commit_epoch": 0},
      {"id": 4, "start": "nope", "end": "0x0", "source": 1, "target": 2},
      {"id": 0, "start": "0x1", "end": "0x2", "source": 1, "target": 2},
      {"id": 6, "start": 16, "end": 32, "source": 2, "target": 3, "phase": "staging",
       "paused": true}]})";
  const std::vector<MigrationOrder> orders = parse_migration_orders(answer);
  ASSERT_EQ(orders.size(), 2u);
  EXPECT_EQ(orders[0].id, 3u);
  EXPECT_EQ(orders[0].start, 0x10u);
  EXPECT_EQ(orders[0].end, 0u);
  EXPECT_EQ(orders[0].phase, "cutover");
  EXPECT_EQ(orders[0].max_rate, 1000u);
  EXPECT_EQ(orders[0].attempt, 2u);
  EXPECT_EQ(orders[0].driver, 5u);
  EXPECT_EQ(orders[1].id, 6u);
  EXPECT_EQ(orders[1].end, 32u);
  EXPECT_TRUE(orders[1].paused);
  EXPECT_TRUE(parse_migration_orders(R"({"epoch": 4})").empty());
  EXPECT_TRUE(parse_migration_orders("not json").empty());
}

// Whether `migrator` reports the test's migration staged.
bool staged(Migrator& migrator) {
  for (const MigrationReport& report : migrator.reports()) {
    if (report.id == kMigrationId) return report.staged;
  }
  return false;
}

// The driver: this test plays machine 2 (the target shard's only replica) with its own engine,
// replica and migrator, and the orchestrator with a `post` function; machine 1 is a real server.
// Machine 2's part played in this process, so a test drives its Migrator by hand.
struct LocalTarget {
  LocalTarget(const std::filesystem::path& path, const topology::RoutingTable& table)
      : peers(peer_options()) {
    storage::EngineOptions options;
    options.path = path.string();
    options.wall_clock_ms = wall_clock_ms;
    auto opened = storage::Engine::open(options);
    EXPECT_TRUE(opened.is_ok()) << opened.status().to_string();
    if (!opened.is_ok()) return;
    engine = std::move(*opened);
    EXPECT_TRUE(tables.install(table).is_ok());
    replica = std::make_unique<replica::Replica>(*engine, clock, 2, tables);
  }
  static net::PeerPoolOptions peer_options() {
    net::PeerPoolOptions options;
    options.secret = std::string(kSecret);
    return options;
  }
  // Every cell stored in the range: key (or key/sub-key) → encoded cell.
  std::map<std::string, std::string> cells(const topology::Range& range) {
    std::map<std::string, std::string> out;
    EXPECT_TRUE(engine
                    ->scan(range.start, range.end,
                           [&](topology::Token, std::string_view key, std::string_view sub_key,
                               const storage::Cell& cell) {
                             // Named like dump(): key, or key/sub-key for a row's cell.
                             const std::string name = sub_key.empty()
                                                          ? std::string(key)
                                                          : std::string(key) + "/" + std::string(sub_key);
                             out[name] = storage::encode_cell(cell);
                             return true;
                           })
                    .is_ok());
    return out;
  }
  size_t stored(const topology::Range& range) {
    size_t count = 0;
    EXPECT_TRUE(engine
                    ->scan(range.start, range.end,
                           [&](topology::Token, std::string_view, std::string_view, const storage::Cell&) {
                             ++count;
                             return true;
                           })
                    .is_ok());
    return count;
  }

  std::unique_ptr<storage::Engine> engine;
  HybridClock clock;
  replica::TableHolder tables;
  std::unique_ptr<replica::Replica> replica;
  net::PeerPool peers;
};

// A range deletion (a client's FLUSHALL) is a RocksDB DeleteRange, not a timestamped tombstone:
// on the source it deletes exactly the cells written before it, whatever their timestamps, and
// keeps every cell written after it, even one older by timestamp. A target following the source's
// WAL after staging must end with the same cells, whether a WAL round carries the cells, the
// deletion and the cells after it together or cuts them apart (`wal_max_bytes` 1: one write batch
// per round).
class MigratorOrderTest : public MigratorTest, public ::testing::WithParamInterface<size_t> {
 protected:
  // Keys of the migrated range, `count` of them, named prefix<i>.
  std::vector<std::string> keys_in_range(const std::string& prefix, size_t count) const {
    std::vector<std::string> keys;
    for (int i = 0; keys.size() < count; ++i) {
      const std::string key = prefix + std::to_string(i);
      const topology::Token token = topology::token_of(key);
      if (token >= range_.start && (range_.end == 0 || token < range_.end)) keys.push_back(key);
    }
    return keys;
  }
  // Stores `cell` as `key` on the source machine (its only replica).
  void apply_on_source(const std::string& key, const storage::Cell& cell) {
    auto reply = pool_->call_sync(
        address(1),
        {"CAIRN.APPLY", std::to_string(table_->epoch()), key, storage::encode_cell(cell)}, 5000);
    ASSERT_TRUE(reply.is_ok()) << reply.status().to_string();
    ASSERT_EQ(reply->type, resp::Value::Type::kInteger) << reply->str;
  }
};

TEST_P(MigratorOrderTest, RangeDeletionsApplyInWalOrderAcrossRounds) {
  {
    Writer before(port(1), "p", 0, 600);
    before.wait();
  }
  servers_[1].reset();
  LocalTarget local(root_ / "order-engine", *table_);
  ASSERT_NE(local.replica, nullptr);
  MigratorOptions options;
  options.wal_max_bytes = GetParam();
  options.stream_budget_ms = 0;  // one step per round
  Migrator migrator(options, *local.engine, *local.replica, local.peers);
  migrator.set_orders({order("staging")}, table_->epoch());
  for (int round = 0; round < 2000 && !staged(migrator); ++round) migrator.run_round();
  ASSERT_TRUE(staged(migrator));

  // Staged: from here on only the source's WAL reaches the target.
  const HlcTimestamp now = HybridClock().now();
  const std::vector<std::string> before = keys_in_range("before", 40);
  const std::vector<std::string> after = keys_in_range("after", 40);
  for (const std::string& key : before) {
    apply_on_source(key, storage::Cell{.timestamp = now + 1000, .writer = 1, .value = "gone"});
  }
  // Written before the FLUSHALL with a newer timestamp than its rewrite after it.
  apply_on_source(after[0], storage::Cell{.timestamp = now + 2000, .writer = 1, .value = "old"});
  auto cleared = pool_->call_sync(address(1), {"CAIRN.CLEAR"}, 5000);
  ASSERT_TRUE(cleared.is_ok() && cleared->str == "OK") << cleared.status().to_string();
  for (const std::string& key : after) {
    apply_on_source(key, storage::Cell{.timestamp = now + 500, .writer = 1, .value = "kept"});
  }
  // A DEL after the FLUSHALL is an ordinary tombstone, compared by timestamp.
  const storage::Cell del{.tombstone = true, .timestamp = now + 600, .writer = 1, .value = ""};
  apply_on_source(after[1], del);

  const std::map<std::string, std::string> source = dump(1);
  ASSERT_EQ(source.size(), after.size());
  std::map<std::string, std::string> target;
  for (int round = 0; round < 2000 && target != source; ++round) {
    migrator.run_round();
    target = local.cells(range_);
  }
  EXPECT_TRUE(target == source) << target.size() << " cells on the target, " << source.size()
                                << " on the source";
  for (const std::string& key : before) EXPECT_EQ(target.count(key), 0u) << key;
  ASSERT_EQ(target.count(after[0]), 1u);
  EXPECT_EQ(storage::decode_cell(target[after[0]])->value, "kept");
  migrator.stop();
}

INSTANTIATE_TEST_SUITE_P(WalPages, MigratorOrderTest,
                         ::testing::Values(size_t{16} << 20, size_t{1}),
                         [](const ::testing::TestParamInfo<size_t>& info) {
                           return info.param == 1 ? std::string("OneBatchPerRound")
                                                  : std::string("WholeTailPerRound");
                         });

// A copy that lacks cells after the scan (here: deleted behind the migrator's back) is found by
// the verification, which copies them again before the stream counts as staged.
TEST_F(MigratorTest, VerificationCopiesAgainWhatTheCopyLacks) {
  {
    Writer before(port(1), "v", 0, 1000);
    before.wait();
  }
  const std::map<std::string, std::string> preloaded = dump(1);
  ASSERT_GT(preloaded.size(), 20u);
  servers_[1].reset();
  LocalTarget local(root_ / "verify-engine", *table_);
  ASSERT_NE(local.replica, nullptr);
  MigratorOptions options;
  options.scan_page_keys = 7;
  options.stream_budget_ms = 0;  // one step per round: the test sees the scan end
  Migrator migrator(options, *local.engine, *local.replica, local.peers);
  migrator.set_orders({order("staging")}, table_->epoch());
  // Rounds until every cell is copied (the pages ran out), but not yet verified.
  for (int round = 0; round < 1000 && local.stored(range_) < preloaded.size(); ++round) {
    migrator.run_round();
  }
  ASSERT_EQ(local.stored(range_), preloaded.size());
  ASSERT_FALSE(staged(migrator));
  // A third of the copy disappears without the migrator knowing.
  size_t removed = 0;
  for (const auto& [key, cell] : preloaded) {
    if (removed++ % 3 != 0) continue;
    ASSERT_TRUE(local.engine->drop_range(topology::token_of(key), topology::token_of(key) + 1)
                    .is_ok());
  }
  ASSERT_LT(local.stored(range_), preloaded.size());
  for (int round = 0; round < 1000 && !staged(migrator); ++round) migrator.run_round();
  ASSERT_TRUE(staged(migrator));
  EXPECT_EQ(local.stored(range_), preloaded.size());
  const std::map<std::string, std::string> copied = local.cells(range_);
  EXPECT_TRUE(copied == preloaded);
  const std::string info = migrator.info();
  EXPECT_EQ(info.find("repaired_cells=0"), std::string::npos) << info;
}

// A row bigger than a SCAN page (3000 fields of one hash: one token) is copied page by page,
// each page resuming inside the row where the last stopped, and verified the same way.
TEST_F(MigratorTest, ARowBiggerThanAPageIsCopiedAndVerifiedWhole) {
  std::string key;
  for (int i = 0; key.empty(); ++i) {
    const std::string candidate = "bighash" + std::to_string(i);
    const topology::Token token = topology::token_of(candidate);
    if (token >= range_.start && (range_.end == 0 || token < range_.end)) key = candidate;
  }
  {
    RawClient client(port(1));
    for (int batch = 0; batch < 3; ++batch) {
      std::vector<std::string> hset = {"HSET", key};
      for (int i = batch * 1000; i < (batch + 1) * 1000; ++i) {
        hset.push_back("field" + std::to_string(i));
        hset.push_back("value" + std::to_string(i));
      }
      ASSERT_EQ(client.line(command(hset)), ":1000\r\n");
    }
    Writer strings(port(1), "s", 0, 300);
    strings.wait();
  }
  const std::map<std::string, std::string> preloaded = dump(1);
  ASSERT_GT(preloaded.size(), 3000u);  // every field came back across the pages
  servers_[1].reset();
  LocalTarget local(root_ / "big-row-engine", *table_);
  ASSERT_NE(local.replica, nullptr);
  MigratorOptions options;
  options.scan_page_keys = 7;  // pages of at most 1000 cells: the row spans several
  Migrator migrator(options, *local.engine, *local.replica, local.peers);
  migrator.set_orders({order("staging")}, table_->epoch());
  for (int round = 0; round < 2000 && !staged(migrator); ++round) migrator.run_round();
  ASSERT_TRUE(staged(migrator)) << migrator.info();
  EXPECT_TRUE(local.cells(range_) == preloaded);
  Result<storage::StoredRow> row = local.engine->read_row(topology::token_of(key), key);
  ASSERT_TRUE(row.is_ok());
  EXPECT_EQ(row->state.count, 3000u);
  const std::string info = migrator.info();
  EXPECT_NE(info.find("repaired_cells=0"), std::string::npos) << info;
}

// Data in a range no shard of this machine owns, that no table change accounts for (it arrived
// after the range was given up): deleted by the sweep once the orders were heard at the table's
// epoch, never before, and never in a range this machine owns.
TEST_F(MigratorTest, LeftoversInRangesNobodyGaveThisMachineAreDeleted) {
  servers_[1].reset();
  LocalTarget local(root_ / "sweep-engine", *table_);
  ASSERT_NE(local.replica, nullptr);
  const topology::Range owned = table_->ranges_of_shard(target_shard_).front();
  size_t in_stray = 0;
  size_t in_owned = 0;
  for (int i = 0; i < 2000; ++i) {
    const std::string key = "left" + std::to_string(i);
    const topology::Token token = topology::token_of(key);
    const bool stray = token >= range_.start && (range_.end == 0 || token < range_.end);
    const bool mine = token >= owned.start && (owned.end == 0 || token < owned.end);
    if (!stray && !mine) continue;
    storage::Cell cell{.timestamp = 1000 + static_cast<uint64_t>(i), .writer = 1, .value = "v"};
    ASSERT_TRUE(local.engine->apply(token, key, cell).is_ok());
    (stray ? in_stray : in_owned) += 1;
  }
  ASSERT_GT(in_stray, 10u);
  ASSERT_GT(in_owned, 10u);
  MigratorOptions options;
  options.stray_sweep_ms = 0;
  Migrator migrator(options, *local.engine, *local.replica, local.peers);
  migrator.run_round();  // no orders heard yet: this machine may not know its table is current
  EXPECT_EQ(local.stored(range_), in_stray);
  migrator.set_orders({}, table_->epoch() + 1);
  migrator.run_round();  // orders from a newer epoch than the table: wait for that table
  EXPECT_EQ(local.stored(range_), in_stray);
  auto newer = table_->split_range(owned.start, owned.start + (owned.end - owned.start) / 2);
  ASSERT_TRUE(newer.is_ok()) << newer.status().to_string();
  ASSERT_TRUE(local.tables.install(*newer).is_ok());
  migrator.run_round();
  EXPECT_EQ(local.stored(range_), 0u);
  EXPECT_EQ(local.stored(owned), in_owned);
  EXPECT_NE(migrator.info().find("stray_ranges_dropped:1\r\n"), std::string::npos)
      << migrator.info();
}

TEST_F(MigratorTest, TheDriverFencesFinishesCommitsAndPushesAndTheSourceCleansUp) {
  {
    Writer before(port(1), "d", 0, 1000);
    before.wait();
  }
  const std::map<std::string, std::string> preloaded = dump(1);
  ASSERT_GT(preloaded.size(), 7u * 3);
  ASSERT_EQ(range_.start, 0u);
  // Machine 2 steps aside: the test's own target takes its place in the table.
  servers_[1].reset();
  LocalTarget local(root_ / "driver-engine", *table_);
  auto& engine = local.engine;
  auto& tables = local.tables;
  auto& target = *local.replica;
  auto& peers = local.peers;

  std::mutex posts_mu;
  std::vector<std::string> posts;
  MigratorOptions options;
  // Many pages: the range starts at token 0, and the copy must move its cursor past 0 (a bug
  // once treated a cursor of 0 as the ring's end and rescanned the first page forever).
  options.scan_page_keys = 7;
  options.post = [&](const std::string& path, std::string body) -> Result<HttpResponse> {
    {
      std::lock_guard lock(posts_mu);
      posts.push_back(path + " " + body);
    }
    if (path != "/v1/migrations/7/commit") return HttpResponse{200, "{}"};
    const nlohmann::json request = nlohmann::json::parse(body);
    EXPECT_EQ(request["attempt"], 1);
    EXPECT_EQ(request["epoch"], table_->epoch());
    auto committed = table_->reassign_range(range_.start, target_shard_);
    EXPECT_TRUE(committed.is_ok());
    return HttpResponse{200, nlohmann::json{{"table", committed->to_json()}}.dump()};
  };
  Migrator migrator(options, *engine, target, peers);
  migrator.start();
  MigrationOrder staging = order("staging");
  migrator.set_orders({staging}, table_->epoch());
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  auto ready = [&] {
    for (const MigrationReport& report : migrator.reports()) {
      if (report.id == kMigrationId && report.ready) return true;
    }
    return false;
  };
  while (!ready() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_TRUE(ready());
  // The target measured its staging: from its first HOLD to the range scanned and flushed.
  ASSERT_EQ(migrator.reports().size(), 1u);
  EXPECT_GE(migrator.reports()[0].copy_ms, 0);
  EXPECT_LT(migrator.reports()[0].copy_ms, 30'000);

  MigrationOrder cutover = order("cutover");
  cutover.attempt = 1;
  cutover.driver = 2;
  migrator.set_orders({cutover}, table_->epoch());
  while (tables.epoch() == table_->epoch() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_EQ(tables.epoch(), table_->epoch() + 1);
  {
    std::lock_guard lock(posts_mu);
    ASSERT_EQ(posts.size(), 1u);
    EXPECT_EQ(posts[0].rfind("/v1/migrations/7/commit ", 0), 0u) << posts[0];
  }
  // The fence time is reported once.
  std::vector<MigrationReport> reports = migrator.reports();
  ASSERT_EQ(reports.size(), 1u);
  EXPECT_GE(reports[0].fence_ms, 0);
  EXPECT_LT(reports[0].fence_ms, 5000);
  // Reported again in the next heartbeat: one lost heartbeat must not lose the measurement.
  EXPECT_EQ(migrator.reports()[0].fence_ms, reports[0].fence_ms);
  // The source got the new table from the driver.
  auto source_table = pool_->call_sync(address(1), {"CAIRN.TABLE", "GET"}, 5000);
  ASSERT_TRUE(source_table.is_ok());
  auto parsed = topology::RoutingTable::from_json_text(source_table->str);
  ASSERT_TRUE(parsed.is_ok()) << source_table->str;
  EXPECT_EQ(parsed->epoch(), table_->epoch() + 1);

  // The target holds exactly what the source held (no write since the preload).
  const std::map<std::string, std::string> copied = local.cells(range_);
  EXPECT_TRUE(copied == preloaded);

  // The source deletes the range once it follows the commit's epoch: at once when the new table
  // is installed, and the cleanup phase reports it.
  MigrationOrder cleanup = order("cleanup");
  cleanup.attempt = 1;
  cleanup.driver = 2;
  cleanup.commit_epoch = table_->epoch() + 1;
  servers_[0]->migrator()->set_orders({cleanup}, cleanup.commit_epoch);
  // The target still has the cutover order (its heartbeat may come after the source's): it must
  // not follow the source's WAL into the source's own deletion of the range it gave up.
  bool cleaned = false;
  while (!cleaned && std::chrono::steady_clock::now() < deadline) {
    for (const MigrationReport& report : servers_[0]->migrator()->reports()) {
      cleaned = cleaned || (report.id == kMigrationId && report.cleaned);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_TRUE(cleaned);
  EXPECT_TRUE(dump(1).empty());
  auto stored_count = [&] { return local.stored(range_); };
  // Several of the target's rounds (idle_poll_ms) pass with the stale cutover order.
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  EXPECT_EQ(stored_count(), copied.size());
  migrator.set_orders({cleanup}, cleanup.commit_epoch);
  std::this_thread::sleep_for(std::chrono::milliseconds(700));
  EXPECT_EQ(stored_count(), copied.size());
  // The target keeps the range: it owns it now, and the migration ending changes nothing.
  migrator.set_orders({}, cleanup.commit_epoch);
  std::this_thread::sleep_for(std::chrono::milliseconds(700));
  EXPECT_EQ(stored_count(), copied.size());
  migrator.stop();
}

}  // namespace
}  // namespace cairn::server
