// CAIRN.* internal commands through dispatch(), over a real Engine and Replica in a temp dir.

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "commands/command.h"
#include "commands/command_test_fakes.h"
#include "common/hlc.h"
#include "replica/replica.h"
#include "replica/table_holder.h"
#include "resp/reply_parser.h"
#include "resp/writer.h"
#include "storage/cell.h"
#include "storage/engine.h"
#include "topology/routing_table.h"
#include "topology/token.h"

namespace cairn::commands {
namespace {

using topology::RoutingTable;
using topology::Token;

constexpr uint64_t kSelf = 1;
constexpr Token kHalf = Token{1} << 63;
const std::string kOk = "+OK\r\n";
const std::string kNull = "$-1\r\n";

std::string bulk(std::string_view value) {
  return "$" + std::to_string(value.size()) + "\r\n" + std::string(value) + "\r\n";
}

class ClusterServer final : public ServerControl {
 public:
  std::vector<std::pair<std::string, std::string>> config_get(std::string_view) override {
    return {};
  }
  Status config_set(std::string_view, std::string_view) override { return Status::ok(); }
  std::string info(std::string_view) override { return {}; }
  std::string client_list() override { return {}; }
  std::string client_info(const Session&) override { return {}; }
  int kill_client(uint64_t) override { return 0; }
  std::string requirepass() override { return requirepass_; }
  void request_shutdown() override {}
  std::string version() override { return "0.1.0"; }
  std::string cluster_secret() override { return secret_; }
  Status migration_finish(uint64_t migration,
                          const std::vector<std::pair<uint64_t, uint64_t>>& source_lsns,
                          int timeout_ms) override {
    finished_migration_ = migration;
    finished_sources_ = source_lsns;
    finish_timeout_ms_ = timeout_ms;
    return finish_status_;
  }

  std::string secret_ = "s3cret";
  Status finish_status_ = Status::ok();
  uint64_t finished_migration_ = 0;
  std::vector<std::pair<uint64_t, uint64_t>> finished_sources_;
  int finish_timeout_ms_ = 0;
  std::string requirepass_;
};

// Two machines, two shards of one replica each: this machine (1) owns [0, 2^63), machine 2
// owns [2^63, 2^64).
RoutingTable two_shards() {
  std::vector<topology::Machine> machines;
  for (uint64_t id = 1; id <= 2; ++id) {
    machines.push_back(topology::Machine{id, "127.0.0." + std::to_string(id) + ":7000",
                                         "127.0.0." + std::to_string(id) + ":7000",
                                         topology::MachineState::kUp});
  }
  Result<RoutingTable> table = RoutingTable::make_initial(machines, 2, 1, 1);
  CAIRN_ASSERT(table.is_ok(), table.status().to_string());
  CAIRN_ASSERT(table->range_for_token(0).shard == 1 && table->ranges()[0].end == kHalf,
               "machine 1 owns the first half of the ring");
  return std::move(table).value();
}

// A key of the first (owned) or second half of the ring.
std::string key_in_half(bool owned, int index) {
  for (int i = 0;; ++i) {
    std::string key = "k" + std::to_string(index) + "-" + std::to_string(i);
    if ((topology::token_of(key) < kHalf) == owned) return key;
  }
}

storage::Cell cell(HlcTimestamp timestamp, std::string value, bool tombstone = false) {
  return storage::Cell{.tombstone = tombstone, .timestamp = timestamp, .writer = 2,
                       .value = std::move(value)};
}

class InternalCommandTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = "/tmp/cairn-internal-test-XXXXXX";
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    path_ = pattern;
    storage::EngineOptions options;
    options.path = path_;
    options.durability = storage::Durability::kNone;
    auto engine = storage::Engine::open(options);
    ASSERT_TRUE(engine.is_ok()) << engine.status().to_string();
    engine_ = std::move(engine).value();
    replica_ = std::make_unique<replica::Replica>(*engine_, clock_, kSelf, tables_);
    session_.authenticated = true;
  }
  void TearDown() override {
    replica_.reset();
    engine_.reset();
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }

  std::string run(std::vector<std::string> args, bool with_replica = true) {
    std::string out;
    resp::ReplyWriter writer(&out, session_.protocol);
    CommandContext context{args, writer, session_, keyspace_, server_,
                           with_replica ? replica_.get() : nullptr};
    outcome_ = dispatch(default_table(), context);
    return out;
  }
  void authenticate() { ASSERT_EQ(run({"CAIRN.AUTH", "s3cret"}), kOk); }
  void install(const RoutingTable& table) { ASSERT_TRUE(tables_.install(table).is_ok()); }
  std::string apply(uint64_t epoch, const std::string& key, const storage::Cell& c) {
    return run({"CAIRN.APPLY", std::to_string(epoch), key, storage::encode_cell(c)});
  }

  std::string path_;
  std::unique_ptr<storage::Engine> engine_;
  HybridClock clock_{[] { return int64_t{1'700'000'000'000}; }};
  replica::TableHolder tables_;
  std::unique_ptr<replica::Replica> replica_;
  testing::FakeKeyspace keyspace_;
  ClusterServer server_;
  Session session_;
  DispatchOutcome outcome_;
};

TEST_F(InternalCommandTest, NopermBeforeAuth) {
  const std::string noperm = "-NOPERM this command is for cluster machines\r\n";
  EXPECT_EQ(run({"CAIRN.ID"}), noperm);
  EXPECT_EQ(run({"CAIRN.READ", "1", "k"}), noperm);
  EXPECT_EQ(run({"CAIRN.TABLE", "GET"}), noperm);
  EXPECT_EQ(run({"CAIRN.CLEAR", "extra"}), noperm);  // before the arity check
  EXPECT_EQ(run({"CAIRN.AUTH", "wrong"}), "-NOPERM invalid cluster secret\r\n");
  EXPECT_EQ(run({"CAIRN.AUTH", "s3cre"}), "-NOPERM invalid cluster secret\r\n");
  EXPECT_FALSE(session_.internal);
  authenticate();
  EXPECT_TRUE(session_.internal);
  EXPECT_EQ(run({"CAIRN.ID"}), ":1\r\n");
  EXPECT_EQ(run({"CAIRN.ID", "x"}), "-ERR wrong number of arguments for 'cairn.id' command\r\n");
}

TEST_F(InternalCommandTest, AuthPassesRequirepassAndNeedsASecret) {
  session_.authenticated = false;
  server_.requirepass_ = "pw";
  EXPECT_EQ(run({"CAIRN.ID"}), "-NOAUTH Authentication required.\r\n");
  authenticate();
  EXPECT_TRUE(session_.authenticated);
  EXPECT_EQ(run({"GET", "k"}), kNull);

  Session fresh;
  session_ = fresh;
  server_.secret_.clear();
  EXPECT_EQ(run({"CAIRN.AUTH", ""}), "-NOPERM this machine is not part of a cluster\r\n");
  EXPECT_FALSE(session_.internal);
}

TEST_F(InternalCommandTest, WithoutReplica) {
  authenticate();
  const std::string error = "-ERR this machine is not part of a cluster\r\n";
  EXPECT_EQ(run({"CAIRN.ID"}, false), error);
  EXPECT_EQ(run({"CAIRN.READ", "1", "k"}, false), error);
  EXPECT_EQ(run({"CAIRN.TABLE", "GET"}, false), error);
  EXPECT_EQ(run({"CAIRN.CLEAR"}, false), error);
}

TEST_F(InternalCommandTest, FlagsTellWhatMayRunInline) {
  for (const auto& [name, spec] : default_table().all()) {
    if (name.rfind("cairn.", 0) != 0) continue;
    // CAIRN.TX is a client's transaction (what EXEC runs, and what a machine forwards to the
    // shard leader): any client may send it, and it runs on a worker like EXEC.
    if (name == "cairn.tx") {
      EXPECT_EQ(spec.flags & (kInline | kInternal), 0u);
      continue;
    }
    // CAIRN.MIGRATE blocks (FINISH) or reads pages of storage, CAIRN.REPAIR digests ranges or
    // compacts: they run on a worker.
    const bool worker = name == "cairn.migrate" || name == "cairn.repair";
    EXPECT_EQ(spec.flags & kInline, worker ? 0u : uint32_t{kInline}) << name;
    EXPECT_EQ(spec.flags & kInternal, name == "cairn.auth" ? 0u : uint32_t{kInternal}) << name;
  }
  authenticate();
  install(two_shards());
  run({"CAIRN.APPLY", "1", key_in_half(true, 0), storage::encode_cell(cell(5, "v"))});
  EXPECT_TRUE(outcome_.wrote);  // the acknowledgement waits for the WAL sync
}

TEST_F(InternalCommandTest, FencingMatrix) {
  authenticate();
  const std::string owned = key_in_half(true, 0);
  const std::string foreign = key_in_half(false, 0);
  const std::string c = storage::encode_cell(cell(5, "v"));
  EXPECT_EQ(run({"CAIRN.APPLY", "1", owned, c}), "-NOTABLE\r\n");
  EXPECT_EQ(run({"CAIRN.READ", "1", owned}), "-NOTABLE\r\n");
  EXPECT_EQ(run({"CAIRN.SCAN", "1", "0", "0", "10"}), "-NOTABLE\r\n");

  install(two_shards());  // epoch 1
  for (const std::string command : {"CAIRN.APPLY", "CAIRN.READ"}) {
    std::vector<std::string> stale = {command, "0", owned};
    std::vector<std::string> behind = {command, "2", owned};
    std::vector<std::string> not_owner = {command, "1", foreign};
    if (command == std::string("CAIRN.APPLY")) {
      stale.push_back(c);
      behind.push_back(c);
      not_owner.push_back(c);
    }
    EXPECT_EQ(run(stale), "-STALEEPOCH 1\r\n") << command;
    EXPECT_EQ(run(behind), "-TABLEBEHIND 1\r\n") << command;
    EXPECT_EQ(run(not_owner), "-NOTOWNER 1\r\n") << command;
  }
  EXPECT_EQ(run({"CAIRN.SCAN", "0", "0", "100", "10"}), "-STALEEPOCH 1\r\n");
  EXPECT_EQ(run({"CAIRN.SCAN", "7", "0", "100", "10"}), "-TABLEBEHIND 1\r\n");
  EXPECT_EQ(run({"CAIRN.SCAN", "1", std::to_string(kHalf), "0", "10"}), "-NOTOWNER 1\r\n");
  // Nothing fenced was stored.
  EXPECT_EQ(engine_->read(topology::token_of(owned), owned)->has_value(), false);
  EXPECT_EQ(run({"CAIRN.APPLY", "1", owned, c}), ":1\r\n");
  // Malformed arguments.
  EXPECT_EQ(run({"CAIRN.APPLY", "x", owned, c}), "-ERR invalid epoch\r\n");
  EXPECT_EQ(run({"CAIRN.APPLY", "-1", owned, c}), "-ERR invalid epoch\r\n");
  EXPECT_EQ(run({"CAIRN.APPLY", "1", owned, "garbage"}).rfind("-ERR invalid cell: ", 0), 0u);
}

TEST_F(InternalCommandTest, FieldsOfRowsTravelWithTheirSubKeyAndRowsComeInPages) {
  authenticate();
  install(two_shards());
  const std::string key = key_in_half(true, 2);
  storage::Cell header = cell(10, storage::encode_row_header({0}));
  header.type = storage::ValueType::kHash;
  EXPECT_EQ(apply(1, key, header), ":1\r\n");
  std::vector<std::string> sub_keys;
  for (const char* field : {"a", "b", "c"}) {
    storage::Cell value = cell(20, field);
    value.type = storage::ValueType::kHash;
    sub_keys.push_back(storage::field_sub_key(field));
    EXPECT_EQ(run({"CAIRN.APPLY", "1", key, storage::encode_cell(value), sub_keys.back()}),
              ":1\r\n");
  }
  storage::Cell b = cell(20, "b");
  b.type = storage::ValueType::kHash;
  EXPECT_EQ(run({"CAIRN.READ", "1", key, sub_keys[1]}), bulk(storage::encode_cell(b)));
  EXPECT_EQ(run({"CAIRN.READ", "1", key}), bulk(storage::encode_cell(header)));
  EXPECT_EQ(run({"CAIRN.READ", "1", key, storage::field_sub_key("zz")}), kNull);
  // An empty sub-key is refused rather than read as the key's own cell.
  EXPECT_EQ(run({"CAIRN.READ", "1", key, ""}).rfind("-ERR ", 0), 0u);
  EXPECT_EQ(run({"CAIRN.APPLY", "1", key, storage::encode_cell(b), ""}).rfind("-ERR ", 0), 0u);

  // Two pages of two fields: the first names where the second starts.
  std::string page = run({"CAIRN.ROW", "1", key, "", "2"});
  EXPECT_EQ(page.rfind("*4\r\n" + bulk(storage::encode_cell(header)), 0), 0u) << page;
  EXPECT_NE(page.find(bulk(sub_keys[2]) + "*4\r\n" + bulk(sub_keys[0])), std::string::npos)
      << page;
  page = run({"CAIRN.ROW", "1", key, sub_keys[2], "2"});
  EXPECT_NE(page.find(kNull + "*2\r\n" + bulk(sub_keys[2])), std::string::npos) << page;
  EXPECT_EQ(run({"CAIRN.ROW", "0", key, "", "2"}), "-STALEEPOCH 1\r\n");
  EXPECT_EQ(run({"CAIRN.ROW", "1", key, "", "0"}).rfind("-ERR count", 0), 0u);
  // A key that never was a row: no header, a zero row state, no fields.
  page = run({"CAIRN.ROW", "1", key_in_half(true, 3), "", "10"});
  EXPECT_EQ(page, "*4\r\n" + kNull + bulk(storage::encode_row_state({})) + kNull + "*0\r\n");
}

TEST_F(InternalCommandTest, ApplyReadRoundTripWithTombstones) {
  authenticate();
  install(two_shards());
  const std::string key = key_in_half(true, 1);
  EXPECT_EQ(run({"CAIRN.READ", "1", key}), kNull);
  EXPECT_EQ(apply(1, key, cell(10, "a")), ":1\r\n");
  EXPECT_EQ(apply(1, key, cell(10, "a")), ":0\r\n");  // the same cell again
  // An older cell is refused, and the reply names the timestamp of the newer one kept.
  EXPECT_EQ(apply(1, key, cell(9, "old")), bulk(std::to_string(cell(10, "a").timestamp)));
  EXPECT_EQ(run({"CAIRN.READ", "1", key}), bulk(storage::encode_cell(cell(10, "a"))));
  const storage::Cell tombstone = cell(HybridClock::make(1'800'000'000'000, 3), "", true);
  EXPECT_EQ(apply(1, key, tombstone), ":1\r\n");
  EXPECT_EQ(run({"CAIRN.READ", "1", key}), bulk(storage::encode_cell(tombstone)));
  // The HLC observed the cell's timestamp, even though it is ahead of the wall clock.
  EXPECT_GE(clock_.last(), tombstone.timestamp);
  EXPECT_GT(clock_.now(), tombstone.timestamp);

  EXPECT_EQ(run({"CAIRN.CLEAR"}), kOk);
  EXPECT_EQ(run({"CAIRN.READ", "1", key}), kNull);
}

// Parses a CAIRN.SCAN reply: next token, done, and (key, cell) pairs.
struct Page {
  Token next = 0;
  bool done = false;
  std::vector<std::pair<std::string, storage::Cell>> entries;
};

size_t read_line(const std::string& reply, size_t& pos, char prefix, std::string& line) {
  EXPECT_EQ(reply.at(pos), prefix) << reply.substr(pos, 40);
  const size_t end = reply.find("\r\n", pos);
  line = reply.substr(pos + 1, end - pos - 1);
  pos = end + 2;
  return std::stoull(line);
}

std::string read_bulk(const std::string& reply, size_t& pos) {
  std::string line;
  const size_t length = read_line(reply, pos, '$', line);
  std::string data = reply.substr(pos, length);
  pos += length + 2;
  return data;
}

Page parse_page(const std::string& reply) {
  Page page;
  size_t pos = 0;
  std::string line;
  EXPECT_EQ(read_line(reply, pos, '*', line), 3u);
  page.next = std::stoull(read_bulk(reply, pos));
  page.done = read_line(reply, pos, ':', line) == 1;
  const size_t items = read_line(reply, pos, '*', line);
  for (size_t i = 0; i < items / 3; ++i) {
    std::string key = read_bulk(reply, pos);
    EXPECT_EQ(read_bulk(reply, pos), "");  // strings have no sub-key
    Result<storage::Cell> c = storage::decode_cell(read_bulk(reply, pos));
    EXPECT_TRUE(c.is_ok());
    page.entries.emplace_back(std::move(key), c.is_ok() ? *c : storage::Cell{});
  }
  EXPECT_EQ(pos, reply.size());
  return page;
}

TEST_F(InternalCommandTest, ScanPagesNeverSplitAToken) {
  authenticate();
  install(two_shards());
  std::set<std::string> expected;
  for (int i = 0; i < 20; ++i) {
    const std::string key = key_in_half(true, i);
    ASSERT_EQ(apply(1, key, cell(10, "v", i % 3 == 0)), ":1\r\n");  // tombstones included
    expected.insert(key);
  }
  // Four keys behind one hash tag share a token.
  const std::string tag = key_in_half(true, 99);
  for (int i = 0; i < 4; ++i) {
    const std::string key = "{" + tag + "}" + std::to_string(i);
    ASSERT_EQ(apply(1, key, cell(10, "v")), ":1\r\n");
    expected.insert(key);
  }
  // Keys of the other shard are stored too (as after a migration), but must not be scanned.
  ASSERT_TRUE(engine_->apply(kHalf + 5, "theirs", cell(10, "v")).is_ok());

  std::set<std::string> seen;
  Token start = 0;
  bool tag_page_seen = false;
  for (int pages = 0; pages < 50; ++pages) {
    const Page page = parse_page(run({"CAIRN.SCAN", "1", std::to_string(start),
                                      std::to_string(kHalf), "3"}));
    std::set<Token> tokens;
    for (const auto& [key, c] : page.entries) {
      EXPECT_TRUE(seen.insert(key).second) << "returned twice: " << key;
      const Token token = topology::token_of(key);
      EXPECT_GE(token, start);
      if (!page.done) {
        EXPECT_LT(token, page.next);
      }
      tokens.insert(token);
    }
    if (tokens.count(topology::token_of(tag)) != 0) {
      tag_page_seen = true;
      // The tagged token is whole, so this page may exceed the count.
      EXPECT_GE(page.entries.size(), 4u);
    } else {
      EXPECT_LE(page.entries.size(), 3u);
    }
    if (page.done) {
      EXPECT_EQ(page.next, kHalf);
      break;
    }
    start = page.next;
  }
  EXPECT_TRUE(tag_page_seen);
  EXPECT_EQ(seen, expected);

  // A scan may not run past the range its start token lies in.
  EXPECT_EQ(run({"CAIRN.SCAN", "1", "0", "0", "3"}).rfind("-ERR ", 0), 0u);
  EXPECT_EQ(run({"CAIRN.SCAN", "1", "0", std::to_string(kHalf + 1), "3"}).rfind("-ERR ", 0), 0u);
  EXPECT_EQ(run({"CAIRN.SCAN", "1", "0", "10", "0"}).rfind("-ERR count", 0), 0u);
  EXPECT_EQ(run({"CAIRN.SCAN", "1", "0", "10", "x"}), "-ERR invalid count\r\n");
}

TEST_F(InternalCommandTest, TableSetGetIdempotent) {
  authenticate();
  EXPECT_EQ(run({"CAIRN.TABLE", "GET"}), kNull);
  const RoutingTable first = two_shards();
  const std::string json = first.to_json_text();
  EXPECT_EQ(run({"CAIRN.TABLE", "SET", json}), kOk);
  EXPECT_EQ(run({"cairn.table", "set", json}), kOk);  // the same push again
  EXPECT_EQ(run({"CAIRN.TABLE", "GET"}), bulk(json));
  EXPECT_EQ(tables_.epoch(), 1u);

  Result<RoutingTable> second = first.split_range(0, 1000);  // epoch 2
  ASSERT_TRUE(second.is_ok());
  Result<RoutingTable> other = first.split_range(0, 2000);  // a different epoch 2
  ASSERT_TRUE(other.is_ok());
  EXPECT_EQ(run({"CAIRN.TABLE", "SET", second->to_json_text()}), kOk);
  EXPECT_EQ(run({"CAIRN.TABLE", "SET", other->to_json_text()}).rfind("-ERR ", 0), 0u);
  EXPECT_EQ(run({"CAIRN.TABLE", "SET", json}).rfind("-ERR ", 0), 0u);  // older
  EXPECT_EQ(run({"CAIRN.TABLE", "SET", "{not json"}).rfind("-ERR ", 0), 0u);
  EXPECT_EQ(run({"CAIRN.TABLE", "GET"}), bulk(second->to_json_text()));
  EXPECT_EQ(run({"CAIRN.TABLE", "NOPE"}),
            "-ERR unknown subcommand 'NOPE'. Try CAIRN.TABLE HELP.\r\n");
  // The fence follows the new epoch.
  EXPECT_EQ(run({"CAIRN.READ", "1", key_in_half(true, 0)}), "-STALEEPOCH 2\r\n");
}


// ---- CAIRN.MIGRATE ----

resp::Value parse_reply(const std::string& reply) {
  resp::ReplyParser parser;
  resp::Value value;
  const resp::ParseOutcome outcome = parser.parse(reply, value);
  CAIRN_ASSERT(outcome.state == resp::ParseState::kComplete, "a whole reply: " + reply);
  return value;
}

// The (key, cell) pairs of a flat array.
std::vector<std::pair<std::string, storage::Cell>> cells_of(const resp::Value& flat) {
  std::vector<std::pair<std::string, storage::Cell>> cells;
  for (size_t i = 0; i + 2 < flat.elements.size(); i += 3) {
    Result<storage::Cell> c = storage::decode_cell(flat.elements[i + 2].str);
    CAIRN_ASSERT(c.is_ok(), c.status().to_string());
    cells.emplace_back(flat.elements[i].str, *c);
  }
  return cells;
}

TEST_F(InternalCommandTest, MigrateNeedsAuthAndAReplica) {
  EXPECT_EQ(run({"CAIRN.MIGRATE", "RELEASE", "h"}),
            "-NOPERM this command is for cluster machines\r\n");
  authenticate();
  EXPECT_EQ(run({"CAIRN.MIGRATE", "RELEASE", "h"}, false),
            "-ERR this machine is not part of a cluster\r\n");
  EXPECT_EQ(run({"CAIRN.MIGRATE", "NOPE"}),
            "-ERR unknown subcommand 'NOPE'. Try CAIRN.MIGRATE HELP.\r\n");
}

TEST_F(InternalCommandTest, MigrateHoldAndRelease) {
  authenticate();
  install(two_shards());
  ASSERT_EQ(apply(1, key_in_half(true, 0), cell(10, "v")), ":1\r\n");
  EXPECT_EQ(run({"CAIRN.MIGRATE", "HOLD", "m1-1", "60000"}),
            ":" + std::to_string(engine_->latest_sequence()) + "\r\n");
  EXPECT_EQ(engine_->wal_holds(), 1u);
  EXPECT_EQ(run({"cairn.migrate", "hold", "m1-1", "60000"}).front(), ':');  // a renewal
  EXPECT_EQ(engine_->wal_holds(), 1u);
  EXPECT_EQ(run({"CAIRN.MIGRATE", "RELEASE", "m1-1"}), kOk);
  EXPECT_EQ(engine_->wal_holds(), 0u);
  EXPECT_EQ(run({"CAIRN.MIGRATE", "RELEASE", "never-held"}), kOk);
  EXPECT_EQ(run({"CAIRN.MIGRATE", "HOLD", "h", "0"}).rfind("-ERR ttl", 0), 0u);
  EXPECT_EQ(run({"CAIRN.MIGRATE", "HOLD", "h", "x"}), "-ERR invalid ttl\r\n");
  EXPECT_EQ(run({"CAIRN.MIGRATE", "HOLD", std::string(200, 'h'), "10"}).rfind("-ERR hold id", 0),
            0u);
  EXPECT_EQ(run({"CAIRN.MIGRATE", "HOLD", "h"}),
            "-ERR wrong number of arguments for 'cairn.migrate|hold' command\r\n");
}

TEST_F(InternalCommandTest, MigrateScanReadsWhatIsStoredUnfenced) {
  authenticate();
  install(two_shards());
  std::set<std::string> expected;
  for (int i = 0; i < 12; ++i) {
    const std::string key = key_in_half(false, i);  // the other shard's half: not fenced here
    ASSERT_TRUE(engine_->apply(topology::token_of(key), key, cell(10, "v", i % 4 == 0)).is_ok());
    expected.insert(key);
  }
  ASSERT_TRUE(engine_->apply(5, "low", cell(10, "v")).is_ok());  // outside the scanned range

  std::set<std::string> seen;
  std::string start = topology::format_token(kHalf);
  for (int pages = 0; pages < 20; ++pages) {
    const resp::Value page = parse_reply(run({"CAIRN.MIGRATE", "SCAN", start, "0", "5"}));
    ASSERT_EQ(page.type, resp::Value::Type::kArray);
    ASSERT_EQ(page.elements.size(), 2u);
    EXPECT_LE(page.elements[1].elements.size(), 15u);
    for (const auto& [key, c] : cells_of(page.elements[1])) {
      EXPECT_TRUE(seen.insert(key).second) << key;
      EXPECT_EQ(c.value, "v");
    }
    start = page.elements[0].str;
    if (start == topology::format_token(0)) break;  // the ring's end: done
  }
  EXPECT_EQ(seen, expected);
  // Decimal tokens work too; an explicit end answers that end when done.
  const resp::Value whole = parse_reply(
      run({"CAIRN.MIGRATE", "SCAN", "0", std::to_string(kHalf), "100"}));
  EXPECT_EQ(whole.elements[0].str, topology::format_token(kHalf));
  ASSERT_EQ(whole.elements[1].elements.size(), 3u);
  EXPECT_EQ(whole.elements[1].elements[0].str, "low");
  EXPECT_EQ(run({"CAIRN.MIGRATE", "SCAN", "0", "0", "10001"}).rfind("-ERR count", 0), 0u);
  EXPECT_EQ(run({"CAIRN.MIGRATE", "SCAN", "0xzz", "0", "1"}), "-ERR invalid start token\r\n");
  EXPECT_EQ(run({"CAIRN.MIGRATE", "SCAN", "10", "5", "1"}).rfind("-ERR ", 0), 0u);
}

TEST_F(InternalCommandTest, MigrateWalReturnsTheRangesChanges) {
  authenticate();
  install(two_shards());
  const uint64_t from = engine_->latest_sequence() + 1;
  const std::string mine = key_in_half(true, 0);
  const std::string theirs = key_in_half(false, 0);
  ASSERT_EQ(apply(1, mine, cell(10, "a")), ":1\r\n");
  ASSERT_TRUE(engine_->apply(topology::token_of(theirs), theirs, cell(11, "b")).is_ok());
  ASSERT_EQ(apply(1, mine, cell(12, "", true)), ":1\r\n");
  ASSERT_EQ(run({"CAIRN.CLEAR"}), kOk);

  const resp::Value reply = parse_reply(run({"CAIRN.MIGRATE", "WAL", "0",
                                             topology::format_token(kHalf),
                                             std::to_string(from), "1048576"}));
  ASSERT_EQ(reply.type, resp::Value::Type::kArray) << reply.str;
  ASSERT_EQ(reply.elements.size(), 3u);
  const uint64_t latest = engine_->latest_sequence();
  EXPECT_EQ(reply.elements[1].integer, static_cast<int64_t>(latest));
  EXPECT_EQ(reply.elements[0].integer, static_cast<int64_t>(latest + 1));
  // One stream in sequence order: LSN, key, sub-key, cell for a cell; LSN, start, end, "" for
  // a range deletion. The other half's cell is left out.
  const std::vector<resp::Value>& entries = reply.elements[2].elements;
  ASSERT_EQ(entries.size(), 3u * 4);
  for (size_t i = 4; i < entries.size(); i += 4) {
    EXPECT_GT(entries[i].integer, entries[i - 4].integer);
  }
  EXPECT_EQ(entries[0].integer, static_cast<int64_t>(from));
  EXPECT_EQ(entries[1].str, mine);
  EXPECT_EQ(entries[2].str, "");
  EXPECT_EQ(*storage::decode_cell(entries[3].str), cell(10, "a"));
  EXPECT_EQ(entries[5].str, mine);
  EXPECT_TRUE(storage::decode_cell(entries[7].str)->tombstone);
  // CLEAR's range deletion, last, clipped to the range.
  EXPECT_LE(entries[8].integer, static_cast<int64_t>(latest));
  EXPECT_EQ(entries[9].str, topology::format_token(0));
  EXPECT_EQ(entries[10].str, topology::format_token(kHalf));
  EXPECT_EQ(entries[11].str, "");

  // Caught up: nothing, same cursor.
  const resp::Value none = parse_reply(run({"CAIRN.MIGRATE", "WAL", "0", "0",
                                            std::to_string(latest + 1), "1024"}));
  EXPECT_EQ(none.elements[0].integer, static_cast<int64_t>(latest + 1));
  EXPECT_TRUE(none.elements[2].elements.empty());
  EXPECT_EQ(run({"CAIRN.MIGRATE", "WAL", "0", "0", "1", "0"}).rfind("-ERR max bytes", 0), 0u);
  EXPECT_EQ(run({"CAIRN.MIGRATE", "WAL", "0", "0", "1", "16777217"}).rfind("-ERR max bytes", 0),
            0u);
}

TEST_F(InternalCommandTest, MigrateWalGone) {
  authenticate();
  install(two_shards());
  // A machine whose WAL files are not retained (the default keeps them for minutes).
  replica_.reset();
  engine_.reset();
  storage::EngineOptions options;
  options.path = path_;
  options.durability = storage::Durability::kNone;
  options.wal_retention_seconds = 0;
  options.wal_retention_megabytes = 0;
  auto engine = storage::Engine::open(options);
  ASSERT_TRUE(engine.is_ok());
  engine_ = std::move(engine).value();
  replica_ = std::make_unique<replica::Replica>(*engine_, clock_, kSelf, tables_);
  const uint64_t from = engine_->latest_sequence() + 1;
  ASSERT_EQ(apply(1, key_in_half(true, 0), cell(10, "a")), ":1\r\n");
  ASSERT_TRUE(engine_->compact_all().is_ok());  // flushes: the WAL holding the write goes
  ASSERT_EQ(apply(1, key_in_half(true, 1), cell(10, "a")), ":1\r\n");
  EXPECT_EQ(run({"CAIRN.MIGRATE", "WAL", "0", "0", std::to_string(from), "1024"})
                .rfind("-WALGONE ", 0),
            0u);
}

TEST_F(InternalCommandTest, MigrateFence) {
  authenticate();
  const std::string owned = key_in_half(true, 0);
  EXPECT_EQ(run({"CAIRN.MIGRATE", "FENCE", "1", "0", "0x10"}), "-NOTABLE\r\n");
  install(two_shards());
  ASSERT_EQ(apply(1, owned, cell(10, "a")), ":1\r\n");
  EXPECT_EQ(run({"CAIRN.MIGRATE", "FENCE", "0", "0", "0x10"}), "-STALEEPOCH 1\r\n");
  EXPECT_EQ(run({"CAIRN.MIGRATE", "FENCE", "2", "0", "0x10"}), "-TABLEBEHIND 1\r\n");
  EXPECT_EQ(run({"CAIRN.MIGRATE", "FENCE", "1", topology::format_token(kHalf), "0"}),
            "-NOTOWNER 1\r\n");
  const std::string reply =
      run({"CAIRN.MIGRATE", "FENCE", "1", "0", topology::format_token(kHalf)});
  EXPECT_EQ(reply, ":" + std::to_string(engine_->latest_sequence()) + "\r\n");
  EXPECT_EQ(apply(1, owned, cell(11, "b")), "-MOVING 1\r\n");
  EXPECT_EQ(run({"CAIRN.READ", "1", owned}), "-MOVING 1\r\n");
  EXPECT_EQ(run({"CAIRN.SCAN", "1", "0", std::to_string(kHalf), "10"}), "-MOVING 1\r\n");
  // The migration's own SCAN still reads what is stored.
  const resp::Value page = parse_reply(
      run({"CAIRN.MIGRATE", "SCAN", "0", std::to_string(kHalf), "10"}));
  EXPECT_EQ(page.elements[1].elements.size(), 3u);
}

TEST_F(InternalCommandTest, MigrateFinishCallsTheServer) {
  authenticate();
  install(two_shards());
  EXPECT_EQ(run({"CAIRN.MIGRATE", "FINISH", "7", "2", "100", "3", "200"}), kOk);
  EXPECT_EQ(server_.finished_migration_, 7u);
  EXPECT_EQ(server_.finished_sources_,
            (std::vector<std::pair<uint64_t, uint64_t>>{{2, 100}, {3, 200}}));
  EXPECT_GT(server_.finish_timeout_ms_, 0);
  server_.finish_status_ = Status::unavailable("NOTREADY not staged from machine 3");
  EXPECT_EQ(run({"CAIRN.MIGRATE", "FINISH", "7", "3", "200"}),
            "-NOTREADY not staged from machine 3\r\n");
  EXPECT_EQ(run({"CAIRN.MIGRATE", "FINISH", "7", "3"}),
            "-ERR wrong number of arguments for 'cairn.migrate|finish' command\r\n");
  EXPECT_EQ(run({"CAIRN.MIGRATE", "FINISH", "7", "3", "200", "4"}).rfind("-ERR FINISH", 0), 0u);
  EXPECT_EQ(run({"CAIRN.MIGRATE", "FINISH", "7", "x", "200"}), "-ERR invalid source id\r\n");
}

}  // namespace
}  // namespace cairn::commands

namespace cairn::commands {
namespace {

// ---- The Redis Cluster commands (cmd_cluster.cc) and MOVED (dispatch step 3b) ----

std::string node_id(int id) { return std::string(39, '0') + std::to_string(id); }

TEST_F(InternalCommandTest, ClusterMapCommandsNeedAClusterMachineWithATable) {
  EXPECT_EQ(run({"CLUSTER", "SLOTS"}, false),
            "-ERR This instance has cluster support disabled\r\n");
  EXPECT_EQ(run({"CLUSTER", "KEYSLOT", "foo"}, false), ":12182\r\n");
  EXPECT_EQ(run({"CLUSTER", "SLOTS"}).rfind("-CLUSTERDOWN", 0), 0u);
  EXPECT_EQ(run({"CLUSTER", "MYID"}), bulk(node_id(1)));
  EXPECT_EQ(run({"CLUSTER", "NOPE"}).rfind("-ERR unknown subcommand 'NOPE'", 0), 0u);
}

TEST_F(InternalCommandTest, ClusterSlotsAndNodesDescribeTheTable) {
  install(two_shards());  // machine 1 holds slots 0..8191, machine 2 the rest
  EXPECT_EQ(run({"CLUSTER", "SLOTS"}),
            "*2\r\n"
            "*3\r\n:0\r\n:8191\r\n*3\r\n" +
                bulk("127.0.0.1") + ":7000\r\n" + bulk(node_id(1)) +
                "*3\r\n:8192\r\n:16383\r\n*3\r\n" + bulk("127.0.0.2") + ":7000\r\n" +
                bulk(node_id(2)));
  const std::string nodes = run({"CLUSTER", "NODES"});
  EXPECT_NE(
      nodes.find(node_id(1) + " 127.0.0.1:7000@7000 myself,master - 0 0 1 connected 0-8191\n"),
      std::string::npos)
      << nodes;
  EXPECT_NE(nodes.find(node_id(2) + " 127.0.0.2:7000@7000 master - 0 0 1 connected 8192-16383\n"),
            std::string::npos)
      << nodes;
  const std::string info = run({"CLUSTER", "INFO"});
  EXPECT_NE(info.find("cluster_state:ok\r\n"), std::string::npos) << info;
  EXPECT_NE(info.find("cluster_size:2\r\n"), std::string::npos) << info;
  EXPECT_EQ(run({"CLUSTER", "KEYSLOT", "{user1000}.following"}),
            run({"CLUSTER", "KEYSLOT", "{user1000}.followers"}));
  EXPECT_EQ(run({"CLUSTER", "COUNTKEYSINSLOT", "16384"}), "-ERR Invalid slot\r\n");
  EXPECT_EQ(run({"CLUSTER", "GETKEYSINSLOT", "1", "-1"}),
            "-ERR Invalid slot or number of keys\r\n");
}

TEST_F(InternalCommandTest, OnlyAConnectionThatAskedIsRedirected) {
  install(two_shards());
  const std::string theirs = key_in_half(false, 0);
  const std::string ours = key_in_half(true, 0);
  EXPECT_EQ(run({"GET", theirs}), kNull);  // the default: served (here by the fake keyspace)
  EXPECT_EQ(run({"ASKING"}), kOk);
  EXPECT_EQ(run({"READWRITE"}), kOk);
  EXPECT_EQ(run({"GET", theirs}), kNull);
  EXPECT_EQ(run({"READONLY"}), kOk);
  EXPECT_EQ(run({"GET", theirs}),
            "-MOVED " + std::to_string(topology::slot_of(theirs)) + " 127.0.0.2:7000\r\n");
  EXPECT_EQ(run({"SET", theirs, "v"}).rfind("-MOVED ", 0), 0u);
  EXPECT_EQ(run({"GET", ours}), kNull);
  EXPECT_EQ(run({"PING"}), "+PONG\r\n");          // no key, no redirect
  EXPECT_EQ(run({"GET", theirs}, false), kNull);  // a single machine never redirects

  Session fresh;
  fresh.authenticated = true;
  session_ = fresh;
  EXPECT_EQ(run({"GET", theirs}), kNull);
  ASSERT_EQ(run({"CLUSTER", "SLOTS"}).rfind("*2\r\n", 0), 0u);  // asking for the map opts in
  EXPECT_EQ(run({"GET", theirs}).rfind("-MOVED ", 0), 0u);
}

// A slot cut between shards is reported on the shard holding most of it; a machine serves (and
// does not redirect) the keys of the slot whose tokens its shard holds, and redirects the rest
// to the reported shard.
TEST_F(InternalCommandTest, ASplitSlotRedirectsOnlyTheKeysThisMachineDoesNotHold) {
  const topology::Slot slot = topology::slot_of("foo");
  const Token cut = topology::slot_start(slot) + topology::kSlotTokens / 4;
  topology::RoutingTableSpec spec = two_shards().spec();
  spec.ranges = {topology::Range{0, cut, 1}, topology::Range{cut, 0, 2}};
  Result<RoutingTable> table = RoutingTable::create(spec);
  ASSERT_TRUE(table.is_ok()) << table.status().to_string();
  install(*table);
  std::string below;  // a key of the slot in machine 1's quarter
  std::string above;  // a key of the slot in machine 2's three quarters
  for (int i = 0; below.empty() || above.empty(); ++i) {
    const std::string key = "s" + std::to_string(i);
    if (topology::slot_of(key) != slot) continue;
    (topology::token_of(key) < cut ? below : above) = key;
  }
  EXPECT_EQ(run({"READONLY"}), kOk);
  EXPECT_EQ(run({"GET", below}), kNull);
  EXPECT_EQ(run({"GET", above}), "-MOVED " + std::to_string(slot) + " 127.0.0.2:7000\r\n");
}

}  // namespace
}  // namespace cairn::commands
