#include "topology/routing_table.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <nlohmann/json.hpp>
#include <random>
#include <string>

#include "topology/test_tables.h"

namespace cairn::topology {
namespace {

using Json = nlohmann::json;

constexpr Token kLastToken = UINT64_MAX;

using test::initial;
using test::make_machines;

// The reference answer: scan every range, and insist exactly one contains the token.
const Range* linear_lookup(const RoutingTable& table, Token token) {
  const Range* found = nullptr;
  for (const Range& range : table.ranges()) {
    if (range.contains(token)) {
      EXPECT_EQ(found, nullptr) << "token " << format_token(token) << " is in two ranges";
      found = &range;
    }
  }
  EXPECT_NE(found, nullptr) << "token " << format_token(token) << " is in no range";
  return found;
}

// Checks lookups at the ring's ends, at every range boundary and at random tokens.
void expect_lookups_agree(const RoutingTable& table, std::mt19937_64& rng) {
  std::vector<Token> probes = {0, 1, kLastToken, kLastToken - 1, Token{1} << 63};
  for (const Range& range : table.ranges()) {
    probes.push_back(range.start);
    probes.push_back(range.start - 1);  // wraps to 2^64 - 1 for the first range
    probes.push_back(range.end - 1);    // the last token of the range (2^64 - 1 when end is 0)
    probes.push_back(range.end);
  }
  for (int i = 0; i < 64; ++i) probes.push_back(rng());
  for (Token token : probes) {
    const Range* expected = linear_lookup(table, token);
    ASSERT_NE(expected, nullptr);
    EXPECT_EQ(table.range_for_token(token), *expected) << format_token(token);
    EXPECT_EQ(table.shard_for_token(token).id, expected->shard) << format_token(token);
  }
}

RoutingTable random_table(std::mt19937_64& rng) {
  const uint32_t shards = 1 + rng() % 8;
  const uint32_t rf = 1 + rng() % 5;
  const uint32_t per_shard = 1 + rng() % 16;
  const size_t spares = rng() % 4;
  return initial(size_t{shards} * rf + spares, shards, rf, per_shard);
}

TEST(RoutingTable, InitialLayoutIsBalancedAndInterleaved) {
  const RoutingTable table = initial(7, 2, 3, 4);
  ASSERT_TRUE(validate(table.spec()).is_ok());
  EXPECT_EQ(table.epoch(), 1u);
  EXPECT_EQ(table.replication_factor(), 3u);
  ASSERT_EQ(table.shards().size(), 2u);
  EXPECT_EQ(table.shards()[0].replicas, (std::vector<MachineId>{1, 2, 3}));
  EXPECT_EQ(table.shards()[1].replicas, (std::vector<MachineId>{4, 5, 6}));
  EXPECT_EQ(table.shards()[0].leader, 1u);
  EXPECT_EQ(table.shards()[0].lease_expiry_ms, 0u);
  EXPECT_TRUE(table.shards()[0].lease_valid(UINT64_MAX));
  EXPECT_EQ(table.find_machine(7)->state, MachineState::kSpare);
  EXPECT_EQ(table.find_machine(1)->state, MachineState::kUp);

  ASSERT_EQ(table.ranges().size(), 8u);
  for (size_t i = 0; i < 8; ++i) {
    EXPECT_EQ(table.ranges()[i].shard, i % 2 + 1) << i;
    EXPECT_EQ(table.ranges()[i].start, (Token{1} << 61) * i) << i;
  }
  EXPECT_EQ(table.ranges().back().end, 0u);
  EXPECT_EQ(table.ranges_of_shard(1).size(), 4u);
  EXPECT_EQ(table.ranges_of_shard(2).size(), 4u);
  EXPECT_TRUE(table.ranges_of_shard(3).empty());
}

TEST(RoutingTable, InitialLayoutCutsOnSlotsAndSizesDifferByAtMostOneSlot) {
  const RoutingTable table = initial(3, 3, 1, 7);  // 21 ranges: 16384 is not a multiple of 21
  uint64_t smallest = UINT64_MAX;
  uint64_t largest = 0;
  for (const Range& range : table.ranges()) {
    EXPECT_EQ(range.start % kSlotTokens, 0u) << format_token(range.start);
    smallest = std::min(smallest, range.size());
    largest = std::max(largest, range.size());
  }
  EXPECT_LE(largest - smallest, kSlotTokens);
}

TEST(RoutingTable, InitialLayoutWithMoreRangesThanSlotsSizesDifferByAtMostOneToken) {
  const RoutingTable table = initial(3, 3, 1, 5462);  // 16386 ranges: more than the slots
  uint64_t smallest = UINT64_MAX;
  uint64_t largest = 0;
  for (const Range& range : table.ranges()) {
    smallest = std::min(smallest, range.size());
    largest = std::max(largest, range.size());
  }
  EXPECT_LE(largest - smallest, 1u);
}

TEST(RoutingTable, SingleRangeCoversTheWholeRing) {
  const RoutingTable table = initial(1, 1, 1, 1);
  ASSERT_EQ(table.ranges().size(), 1u);
  EXPECT_EQ(table.ranges()[0], (Range{0, 0, 1}));
  EXPECT_EQ(table.ranges()[0].size(), UINT64_MAX);
  for (Token token : {Token{0}, Token{1} << 63, kLastToken}) {
    EXPECT_EQ(table.shard_for_token(token).id, 1u);
  }
}

TEST(RoutingTable, InitialLayoutRejectsImpossibleRequests) {
  struct Case {
    size_t machines;
    uint32_t shards, rf, per_shard;
    std::string message;
  };
  const Case cases[] = {
      {5, 2, 3, 1, "need 6 machines, only 5 given"},
      {3, 0, 3, 1, "shard count 0"},
      {3, 1, 0, 1, "replication factor 0"},
      {16, 1, 16, 1, "replication factor 16"},
      {3, 1, 3, 0, "ranges per shard"},
      {2, 2, 1, 40000, "ranges per shard"},
  };
  for (const Case& c : cases) {
    Result<RoutingTable> table =
        RoutingTable::make_initial(make_machines(c.machines), c.shards, c.rf, c.per_shard);
    ASSERT_FALSE(table.is_ok()) << c.message;
    EXPECT_NE(table.status().message().find(c.message), std::string::npos)
        << table.status().message();
  }
  std::vector<Machine> duplicate = make_machines(2);
  duplicate[1].id = 1;
  Result<RoutingTable> table = RoutingTable::make_initial(duplicate, 1, 2, 1);
  ASSERT_FALSE(table.is_ok());
  EXPECT_EQ(table.status().message(), "machine 1 appears twice");
}

TEST(RoutingTable, RandomLayoutsValidateAndEveryTokenHasExactlyOneRange) {
  std::mt19937_64 rng(7);
  for (int round = 0; round < 50; ++round) {
    const RoutingTable table = random_table(rng);
    ASSERT_TRUE(validate(table.spec()).is_ok()) << validate(table.spec()).to_string();
    expect_lookups_agree(table, rng);
  }
}

TEST(RoutingTable, ReplicasForTokenResolvesMachines) {
  RoutingTableSpec spec = initial(8, 2, 3, 2).spec();
  spec.machines[6].state = MachineState::kUp;  // machines 7 and 8 were spares
  spec.machines[7].state = MachineState::kJoining;
  spec.shards[1].extras = {7};
  spec.shards[1].joining = {8};
  Result<RoutingTable> table = RoutingTable::create(spec);
  ASSERT_TRUE(table.is_ok()) << table.status().to_string();
  const Token token = table->ranges()[1].start;  // owned by shard 2
  const ReplicaSet set = table->replicas_for_token(token);
  ASSERT_NE(set.shard, nullptr);
  EXPECT_EQ(set.shard->id, 2u);
  ASSERT_EQ(set.voting.size(), 3u);
  EXPECT_EQ(set.voting[0]->address, "127.0.0.4:7000");
  ASSERT_EQ(set.extras.size(), 1u);
  EXPECT_EQ(set.extras[0]->id, 7u);
  ASSERT_EQ(set.joining.size(), 1u);
  EXPECT_EQ(set.joining[0]->state, MachineState::kJoining);
  EXPECT_EQ(table->find_machine(99), nullptr);
  EXPECT_EQ(table->find_shard(99), nullptr);
}

TEST(RoutingTable, CreateSortsMachinesAndShardsById) {
  RoutingTableSpec spec = initial(6, 2, 3, 1).spec();
  std::reverse(spec.machines.begin(), spec.machines.end());
  std::reverse(spec.shards.begin(), spec.shards.end());
  Result<RoutingTable> table = RoutingTable::create(spec);
  ASSERT_TRUE(table.is_ok());
  EXPECT_EQ(*table, initial(6, 2, 3, 1));
  EXPECT_EQ(table->find_machine(5)->id, 5u);
}

TEST(RoutingTable, LeaseValidity) {
  Shard shard;
  EXPECT_FALSE(shard.lease_valid(0));  // no leader
  shard.leader = 3;
  EXPECT_TRUE(shard.lease_valid(123));  // expiry 0: never expires
  shard.lease_expiry_ms = 1000;
  EXPECT_TRUE(shard.lease_valid(999));
  EXPECT_FALSE(shard.lease_valid(1000));
}

TEST(RoutingTable, SplitKeepsOwnerAndCoverageAndAdvancesTheEpoch) {
  const RoutingTable table = initial(6, 2, 3, 2);
  const Range first = table.ranges()[0];
  const Token at = first.start + first.size() / 3;
  Result<RoutingTable> split = table.split_range(first.start, at);
  ASSERT_TRUE(split.is_ok()) << split.status().to_string();
  EXPECT_EQ(split->epoch(), table.epoch() + 1);
  EXPECT_EQ(table.ranges().size(), 4u);  // the old table is unchanged
  ASSERT_EQ(split->ranges().size(), 5u);
  EXPECT_EQ(split->ranges()[0], (Range{first.start, at, first.shard}));
  EXPECT_EQ(split->ranges()[1], (Range{at, first.end, first.shard}));

  // The last range ends at 2^64; splitting it at the last token leaves a one-token range.
  Result<RoutingTable> tail = table.split_range(table.ranges().back().start, kLastToken);
  ASSERT_TRUE(tail.is_ok()) << tail.status().to_string();
  EXPECT_EQ(tail->ranges().back(), (Range{kLastToken, 0, table.ranges().back().shard}));
  EXPECT_EQ(tail->range_for_token(kLastToken).size(), 1u);
}

TEST(RoutingTable, SplitAndReassignRejectBadArguments) {
  const RoutingTable table = initial(6, 2, 3, 2);
  const Range& first = table.ranges()[0];
  struct Case {
    Result<RoutingTable> result;
    std::string message;
  };
  const Case cases[] = {
      {table.split_range(first.start + 1, first.start + 2),
       "no range starts at 0x0000000000000001"},
      {table.split_range(first.start, first.start), "not strictly inside"},
      {table.split_range(first.start, first.end), "not strictly inside"},
      {table.split_range(first.start, kLastToken), "not strictly inside"},
      {table.reassign_range(12345, 2), "no range starts at"},
      {table.reassign_range(first.start, 9), "shard 9 is not in the table"},
      {table.reassign_range(first.start, first.shard), "already owned by shard 1"},
  };
  for (const Case& c : cases) {
    ASSERT_FALSE(c.result.is_ok()) << c.message;
    EXPECT_NE(c.result.status().message().find(c.message), std::string::npos)
        << c.result.status().message();
  }
}

TEST(RoutingTable, RandomSplitsAndReassignsPreserveCoverage) {
  std::mt19937_64 rng(11);
  for (int round = 0; round < 10; ++round) {
    RoutingTable table = random_table(rng);
    for (int step = 0; step < 30; ++step) {
      const Range range = table.ranges()[rng() % table.ranges().size()];
      Result<RoutingTable> next = Status::internal("unset");
      if (rng() % 2 == 0 && range.size() > 1) {
        const Token at = range.start + 1 + rng() % (range.size() - 1);
        next = table.split_range(range.start, at);
        ASSERT_TRUE(next.is_ok()) << next.status().to_string();
        // A split changes no token's owner.
        for (Token token : {range.start, at - 1, at, range.end - 1}) {
          EXPECT_EQ(next->shard_for_token(token).id, range.shard);
        }
      } else {
        const ShardId to = table.shards()[rng() % table.shards().size()].id;
        next = table.reassign_range(range.start, to);
        if (to == range.shard) {
          EXPECT_FALSE(next.is_ok());
          continue;
        }
        ASSERT_TRUE(next.is_ok()) << next.status().to_string();
        EXPECT_EQ(next->shard_for_token(range.start).id, to);
        EXPECT_EQ(next->shard_for_token(range.end - 1).id, to);
      }
      EXPECT_EQ(next->epoch(), table.epoch() + 1);
      ASSERT_TRUE(validate(next->spec()).is_ok());
      table = std::move(next).value();
    }
    expect_lookups_agree(table, rng);
  }
}

TEST(RoutingTable, JsonRoundTripIsExact) {
  std::mt19937_64 rng(3);
  for (int round = 0; round < 20; ++round) {
    RoutingTable table = random_table(rng);
    if (table.shards().size() > 1) {
      table = table.reassign_range(table.ranges()[1].start, table.ranges()[0].shard).value();
    }
    RoutingTableSpec spec = table.spec();
    spec.shards[0].lease_expiry_ms = 1700000000000 + rng() % 1000;
    spec.shards[0].leader = spec.shards[0].replicas.back();
    if (spec.shards.size() > 1) spec.shards[1].leader = kNoMachine;
    for (Machine& machine : spec.machines) {
      if (machine.state == MachineState::kSpare && rng() % 2 == 0) {
        machine.state = MachineState::kDead;
        spec.shards.back().extras.push_back(machine.id);
      }
    }
    Result<RoutingTable> edited = RoutingTable::create(spec);
    ASSERT_TRUE(edited.is_ok()) << edited.status().to_string();
    const std::string text = edited->to_json_text();
    Result<RoutingTable> parsed = RoutingTable::from_json_text(text);
    ASSERT_TRUE(parsed.is_ok()) << parsed.status().to_string() << "\n" << text;
    EXPECT_EQ(*parsed, edited.value());
    EXPECT_EQ(parsed->to_json_text(), text);
  }
}

TEST(RoutingTable, JsonUsesHexTokensAndAcceptsPlainNumbers) {
  const RoutingTable table = initial(2, 2, 1, 1);
  const Json json = table.to_json();
  EXPECT_EQ(json["ranges"][1]["start"], "0x8000000000000000");
  EXPECT_EQ(json["ranges"][1]["end"], "0x0000000000000000");
  Json numeric = json;
  numeric["ranges"][1]["start"] = uint64_t{1} << 63;
  numeric["ranges"][0]["end"] = uint64_t{1} << 63;
  numeric["ranges"][1]["end"] = 0;
  Result<RoutingTable> parsed = RoutingTable::from_json(numeric);
  ASSERT_TRUE(parsed.is_ok()) << parsed.status().to_string();
  EXPECT_EQ(*parsed, table);

  // Optional shard fields may be left out.
  const char* minimal = R"({"epoch": 4, "replication_factor": 1,
      "machines": [{"id": 9, "address": "[::1]:6380", "internal_address": "[::1]:16380",
                    "state": "up"}],
      "shards": [{"id": 2, "replicas": [9]}],
      "ranges": [{"start": "0x0", "end": "0X0", "shard": 2}]})";
  Result<RoutingTable> small = RoutingTable::from_json_text(minimal);
  ASSERT_TRUE(small.is_ok()) << small.status().to_string();
  EXPECT_EQ(small->epoch(), 4u);
  EXPECT_EQ(small->shards()[0].leader, kNoMachine);
  EXPECT_EQ(small->shard_for_token(kLastToken).id, 2u);
}

// Each case edits a valid table's JSON and names a part of the expected error message.
TEST(RoutingTable, MalformedJsonIsRejectedWithAPreciseMessage) {
  const Json base = initial(7, 2, 3, 2).to_json();
  struct Case {
    std::string name;
    std::function<void(Json&)> edit;
    std::string message;
  };
  const std::vector<Case> cases = {
      {"not an object", [](Json& j) { j = Json::array(); }, "table: expected an object"},
      {"missing epoch", [](Json& j) { j.erase("epoch"); }, "table.epoch: missing"},
      {"negative epoch", [](Json& j) { j["epoch"] = -1; }, "table.epoch: expected a non-negative"},
      {"float epoch", [](Json& j) { j["epoch"] = 1.5; }, "table.epoch: expected a non-negative"},
      {"string rf", [](Json& j) { j["replication_factor"] = "3"; }, "table.replication_factor"},
      {"zero rf", [](Json& j) { j["replication_factor"] = 0; }, "0 is not in 1..15"},
      {"unknown field", [](Json& j) { j["shard"] = 1; }, "unknown field \"shard\""},
      {"missing machines", [](Json& j) { j.erase("machines"); }, "machines: missing"},
      {"machines not array", [](Json& j) { j["machines"] = 3; }, "machines: expected an array"},
      {"machine missing address", [](Json& j) { j["machines"][2].erase("address"); },
       "machines[2].address: missing"},
      {"machine bad state", [](Json& j) { j["machines"][0]["state"] = "UP"; },
       "unknown machine state \"UP\""},
      {"machine typo field", [](Json& j) { j["machines"][1]["adress"] = "x"; },
       "machines[1]: unknown field \"adress\""},
      {"machine id zero", [](Json& j) { j["machines"][0]["id"] = 0; }, "machine id 0 is reserved"},
      {"duplicate machine", [](Json& j) { j["machines"][1]["id"] = 1; }, "machine 1 appears twice"},
      {"duplicate address",
       [](Json& j) { j["machines"][1]["address"] = j["machines"][0]["address"]; },
       "machine 2 address 127.0.0.1:7000 is used by another machine"},
      {"address without port", [](Json& j) { j["machines"][0]["address"] = "localhost"; },
       "is not host:port"},
      {"address bad port", [](Json& j) { j["machines"][0]["internal_address"] = "h:70000"; },
       "has no valid port"},
      {"address empty host", [](Json& j) { j["machines"][0]["address"] = ":80"; },
       "has an empty host"},
      {"ipv6 without brackets", [](Json& j) { j["machines"][0]["address"] = "::1:80"; },
       "not in brackets"},
      {"shard replicas not ids", [](Json& j) { j["shards"][0]["replicas"] = {"a"}; },
       "shards[0].replicas: expected an array of machine ids"},
      {"shard missing replicas", [](Json& j) { j["shards"][1].erase("replicas"); },
       "shards[1].replicas: missing"},
      {"unknown machine", [](Json& j) { j["shards"][0]["replicas"][2] = 42; },
       "shard 1 voting replica machine 42 is not in the table"},
      {"rf mismatch", [](Json& j) { j["shards"][0]["replicas"].push_back(4); },
       "shard 1 has 4 voting replicas, more than the replication factor 3"},
      {"voting and extra", [](Json& j) { j["shards"][0]["extras"] = {2}; },
       "shard 1 lists machine 2 as voting replica and as extra replica"},
      {"voting twice",
       [](Json& j) {
         j["shards"][0]["replicas"] = {1, 1, 2};
       },
       "lists machine 1 as voting replica and as voting replica"},
      {"spare in a shard", [](Json& j) { j["shards"][0]["joining"] = {7}; },
       "shard 1 joining replica machine 7 is a spare"},
      {"leader not voting", [](Json& j) { j["shards"][0]["leader"] = 4; },
       "shard 1 leader 4 is not one of its voting replicas"},
      {"lease without leader",
       [](Json& j) {
         j["shards"][0]["leader"] = 0;
         j["shards"][0]["lease_expiry_ms"] = 5;
       },
       "shard 1 has a lease expiry but no leader"},
      {"duplicate shard", [](Json& j) { j["shards"][1]["id"] = 1; }, "shard 1 appears twice"},
      {"no shards", [](Json& j) { j["shards"] = Json::array(); }, "the table has no shard"},
      {"no ranges", [](Json& j) { j["ranges"] = Json::array(); }, "the table has no range"},
      {"bad token", [](Json& j) { j["ranges"][1]["start"] = "0xZZ"; },
       "ranges[1].start: \"0xZZ\" is not a token"},
      {"token without 0x", [](Json& j) { j["ranges"][1]["start"] = "12"; }, "is not a token"},
      {"token too long", [](Json& j) { j["ranges"][1]["start"] = "0x10000000000000000"; },
       "is not a token"},
      {"range missing shard", [](Json& j) { j["ranges"][0].erase("shard"); },
       "ranges[0].shard: missing"},
      {"overlap", [](Json& j) { j["ranges"][1]["start"] = "0x3000000000000000"; },
       "range 1 [0x3000000000000000, 0x8000000000000000) starts at 0x3000000000000000, expected "
       "0x4000000000000000 (it overlaps the previous range)"},
      {"gap", [](Json& j) { j["ranges"][0]["end"] = "0x3000000000000000"; },
       "range 1 [0x4000000000000000, 0x8000000000000000) starts at 0x4000000000000000, expected "
       "0x3000000000000000 (a gap after the previous range)"},
      {"first range not at 0", [](Json& j) { j["ranges"].erase(0); },
       "(the first range must start at token 0)"},
      {"ring not covered", [](Json& j) { j["ranges"][3]["end"] = "0xf000000000000000"; },
       "the last range [0xc000000000000000, 0xf000000000000000) ends at 0xf000000000000000"},
      {"end 2^64 in the middle", [](Json& j) { j["ranges"][1]["end"] = "0x0"; },
       "ends at 2^64 but is not the last range"},
      {"unknown owner", [](Json& j) { j["ranges"][2]["shard"] = 5; },
       "is owned by shard 5, which is not in the table"},
      {"too many machines",
       [](Json& j) {
         j["machines"] = Json::array();
         j["machines"][kMachinesMax] = 1;
       },
       "machines: 4097 entries, at most 4096 allowed"},
  };
  for (const Case& c : cases) {
    Json json = base;
    c.edit(json);
    Result<RoutingTable> table = RoutingTable::from_json(json);
    ASSERT_FALSE(table.is_ok()) << c.name;
    EXPECT_EQ(table.status().code(), StatusCode::kInvalidArgument) << c.name;
    EXPECT_NE(table.status().message().find(c.message), std::string::npos)
        << c.name << ": " << table.status().message();
    // The same through text, which is what arrives over the wire.
    Result<RoutingTable> from_text = RoutingTable::from_json_text(json.dump());
    ASSERT_FALSE(from_text.is_ok()) << c.name;
  }
}

TEST(RoutingTable, MalformedJsonTextNeverThrows) {
  const std::string valid = initial(3, 1, 3, 2).to_json_text();
  const std::string inputs[] = {
      "",
      "{",
      "null",
      "[]",
      "\"text\"",
      "{\"epoch\": }",
      std::string(100, '['),
      std::string(100, '{'),
      valid.substr(0, valid.size() / 2),
      valid + "x",
      std::string(kTableJsonBytesMax + 1, ' '),
  };
  for (const std::string& input : inputs) {
    Result<RoutingTable> table = RoutingTable::from_json_text(input);
    EXPECT_FALSE(table.is_ok()) << input.substr(0, 40);
  }
  EXPECT_NE(RoutingTable::from_json_text(std::string(100, '[')).status().message().find("deeply"),
            std::string::npos);
  // Truncations and byte flips of a valid table: any outcome but a crash or an exception.
  std::mt19937_64 rng(5);
  for (int round = 0; round < 300; ++round) {
    std::string mutated = valid;
    mutated[rng() % mutated.size()] = static_cast<char>(rng());
    if (rng() % 4 == 0) mutated.resize(rng() % mutated.size());
    Result<RoutingTable> table = RoutingTable::from_json_text(mutated);
    if (table.is_ok()) {
      EXPECT_TRUE(validate(table->spec()).is_ok());
    }
  }
}

TEST(RoutingTable, DescribeSummarizesTheRing) {
  const RoutingTable table = initial(7, 2, 3, 2);
  const std::string text = table.describe();
  EXPECT_NE(text.find("epoch 1  rf 3  7 machines  2 shards  4 ranges"), std::string::npos) << text;
  EXPECT_NE(text.find("shard 1: replicas 1,2,3  extras -  joining -  leader 1 (lease never "
                      "expires)  2 ranges, 50.0% of ring"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("machine 7: spare"), std::string::npos) << text;
  EXPECT_NE(text.find("[0xc000000000000000, 2^64) shard 2"), std::string::npos) << text;
}

TEST(RoutingTable, MachineStateNamesRoundTrip) {
  for (MachineState state :
       {MachineState::kUp, MachineState::kDown, MachineState::kDead, MachineState::kJoining,
        MachineState::kSpare, MachineState::kLeaving}) {
    Result<MachineState> parsed = parse_machine_state(machine_state_name(state));
    ASSERT_TRUE(parsed.is_ok());
    EXPECT_EQ(parsed.value(), state);
  }
  EXPECT_FALSE(parse_machine_state("alive").is_ok());
}

}  // namespace
}  // namespace cairn::topology
