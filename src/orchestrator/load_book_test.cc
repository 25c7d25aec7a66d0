#include "orchestrator/load_book.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace cairn::orchestrator {
namespace {

constexpr topology::Token kHalf = topology::Token{1} << 63;

topology::RoutingTableSpec two_shards() {
  topology::RoutingTableSpec spec;
  spec.epoch = 1;
  spec.replication_factor = 3;
  topology::Shard a;
  a.id = 1;
  a.replicas = {1, 2, 3};
  topology::Shard b;
  b.id = 2;
  b.replicas = {4, 5, 6};
  b.joining = {7};
  spec.shards = {a, b};
  spec.ranges = {{0, kHalf, 1}, {kHalf, 0, 2}};
  return spec;
}

metrics::RangeLoadReport report(topology::Token start, topology::Token end, double writes,
                                double reads, uint64_t p99, std::string key, uint64_t count) {
  metrics::RangeLoadReport r;
  r.start = start;
  r.end = end;
  r.writes_per_sec = writes;
  r.reads_per_sec = reads;
  r.p99_us = p99;
  r.bytes = 1000;
  r.top_keys = {{std::move(key), count, 0}};
  return r;
}

TEST(LoadBook, WritesAreTheLargestReplicaReadsTheSumKeysMerge) {
  LoadBook book;
  const auto table = two_shards();
  book.report(1, 0, {report(0, kHalf, 100, 10, 200, "hot", 90)});
  book.report(2, 0, {report(0, kHalf, 98, 30, 900, "hot", 80)});
  book.report(3, 0, {report(0, kHalf, 100, 0, 100, "warm", 5)});
  book.report(4, 0, {report(kHalf, 0, 5, 5, 50, "cold", 1)});
  const std::vector<ShardLoad> loads = book.current(table, 1000);
  ASSERT_EQ(loads.size(), 2u);
  EXPECT_EQ(loads[0].machines_reporting, 3u);
  EXPECT_DOUBLE_EQ(loads[0].total.writes_per_sec, 100);  // every replica applies each write
  EXPECT_DOUBLE_EQ(loads[0].total.reads_per_sec, 40);    // each read is served by some
  EXPECT_EQ(loads[0].total.p99_us, 900u);
  EXPECT_EQ(loads[0].total.bytes, 1000u);
  ASSERT_EQ(loads[0].total.top_keys.size(), 2u);
  EXPECT_EQ(loads[0].total.top_keys[0].key, "hot");
  EXPECT_EQ(loads[0].total.top_keys[0].count, 170u);
  EXPECT_DOUBLE_EQ(loads[1].total.writes_per_sec, 5);
}

TEST(LoadBook, StaleReportsAndNonMembersDoNotCount) {
  LoadBook book;
  const auto table = two_shards();
  book.report(1, 0, {report(0, kHalf, 100, 0, 1, "a", 1)});
  book.report(9, 10'000, {report(0, kHalf, 500, 0, 1, "b", 1)});  // not a member of shard 1
  const std::vector<ShardLoad> loads = book.current(table, 10'000);  // machine 1: 10 s ago
  EXPECT_EQ(loads[0].machines_reporting, 0u);
  EXPECT_EQ(loads[0].total.writes_per_sec, 0);
}

TEST(LoadBook, HistoryKeepsSecondsAndFoldsMinutes) {
  LoadBook book;
  const auto table = two_shards();
  int64_t wall = 60'000 * 100;
  for (int i = 0; i < 61; ++i, wall += 1000) {
    book.report(1, i * 1000, {report(0, kHalf, i < 60 ? 10 : 0, 0, 5, "k", 1)});
    book.sample(table, i * 1000, wall);
  }
  const nlohmann::json j = book.to_json(&table, 60'000, true);
  const auto& history = j["shards"][0]["history"];
  EXPECT_EQ(history["seconds"].size(), 61u);
  ASSERT_EQ(history["minutes"].size(), 1u);
  EXPECT_DOUBLE_EQ(history["minutes"][0]["writes_per_sec"].get<double>(), 10.0);
  for (int i = 0; i < 700; ++i) book.sample(table, 60'000, wall + i * 1000);
  EXPECT_EQ(book.to_json(&table, 60'000, true)["shards"][0]["history"]["seconds"].size(),
            LoadBook::kSecondsKept);
}

}  // namespace
}  // namespace cairn::orchestrator
