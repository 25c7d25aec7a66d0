#include "storage/cell.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "storage/cell_compaction_filter.h"

namespace cairn::storage {
namespace {

std::string random_bytes(std::mt19937_64& rng, size_t max_length) {
  std::uniform_int_distribution<size_t> length(0, max_length);
  std::uniform_int_distribution<int> byte(0, 255);
  std::string out(length(rng), '\0');
  for (char& c : out) c = static_cast<char>(byte(rng));
  return out;
}

Cell random_cell(std::mt19937_64& rng) {
  Cell cell;
  cell.tombstone = rng() % 4 == 0;
  // Few distinct timestamps and writers so ties are common.
  cell.timestamp = HybridClock::make(1000 + static_cast<int64_t>(rng() % 3), rng() % 2);
  cell.writer = rng() % 3;
  cell.expire_at_ms = rng() % 3 == 0 ? static_cast<int64_t>(rng() % 5000) : 0;
  if (!cell.tombstone) cell.value = random_bytes(rng, 8);
  return cell;
}

TEST(CellTest, RoundTripsEveryByteValue) {
  Cell cell;
  for (int b = 0; b < 256; ++b) cell.value.push_back(static_cast<char>(b));
  cell.timestamp = ~0ull;
  cell.writer = 0x0102030405060708ull;
  cell.expire_at_ms = -1;
  Result<Cell> decoded = decode_cell(encode_cell(cell));
  ASSERT_TRUE(decoded.is_ok()) << decoded.status().to_string();
  EXPECT_EQ(*decoded, cell);
}

TEST(CellTest, RoundTripsRandomCells) {
  std::mt19937_64 rng(42);
  for (int i = 0; i < 2000; ++i) {
    Cell cell;
    cell.tombstone = rng() % 2 == 0;
    cell.timestamp = rng();
    cell.writer = rng();
    cell.expire_at_ms = static_cast<int64_t>(rng());
    cell.value = random_bytes(rng, 300);
    Result<Cell> decoded = decode_cell(encode_cell(cell));
    ASSERT_TRUE(decoded.is_ok()) << decoded.status().to_string();
    ASSERT_EQ(*decoded, cell);
  }
}

TEST(CellTest, TruncatedOrExtendedInputIsCorruption) {
  Cell cell;
  cell.timestamp = 7;
  cell.value = "hello";
  const std::string bytes = encode_cell(cell);
  for (size_t length = 0; length < bytes.size(); ++length) {
    Result<Cell> decoded = decode_cell(std::string_view(bytes).substr(0, length));
    ASSERT_FALSE(decoded.is_ok()) << "length " << length;
    EXPECT_EQ(decoded.status().code(), StatusCode::kCorruption);
  }
  EXPECT_EQ(decode_cell(bytes + "x").status().code(), StatusCode::kCorruption);
}

TEST(CellTest, UnknownVersionFlagsOrTypeIsCorruption) {
  const std::string bytes = encode_cell(Cell{});
  for (size_t position : {0u, 1u, 2u}) {
    std::string bad = bytes;
    bad[position] = static_cast<char>(0x80);
    EXPECT_EQ(decode_cell(bad).status().code(), StatusCode::kCorruption) << position;
  }
}

TEST(CellTest, GarbageNeverCrashesAndValidGarbageRoundTrips) {
  std::mt19937_64 rng(7);
  for (int i = 0; i < 20000; ++i) {
    std::string bytes = random_bytes(rng, 64);
    // Make a fraction of inputs plausible so the deeper checks run too.
    if (bytes.size() >= 3 && i % 2 == 0) {
      bytes[0] = 1;
      bytes[1] = static_cast<char>(rng() % 2);
      bytes[2] = 1;
    }
    Result<Cell> decoded = decode_cell(bytes);
    if (decoded.is_ok()) {
      EXPECT_EQ(encode_cell(*decoded), bytes);
    } else {
      EXPECT_EQ(decoded.status().code(), StatusCode::kCorruption);
    }
  }
}

TEST(CellTest, SupersedesIsAStrictTotalOrder) {
  std::mt19937_64 rng(3);
  std::vector<Cell> cells;
  for (int i = 0; i < 60; ++i) cells.push_back(random_cell(rng));
  for (const Cell& a : cells) {
    EXPECT_FALSE(supersedes(a, a));
    for (const Cell& b : cells) {
      if (a == b) continue;
      EXPECT_NE(supersedes(a, b), supersedes(b, a));
      for (const Cell& c : cells) {
        if (supersedes(a, b) && supersedes(b, c)) {
          ASSERT_TRUE(supersedes(a, c));
        }
      }
    }
  }
}

TEST(CellTest, LaterTimestampThenLargerWriterWins) {
  Cell older{.timestamp = 5, .writer = 9, .value = "old"};
  Cell newer{.timestamp = 6, .writer = 1, .value = "new"};
  EXPECT_TRUE(supersedes(newer, older));
  Cell tie{.timestamp = 6, .writer = 2, .value = "a"};
  EXPECT_TRUE(supersedes(tie, newer));
  Cell tombstone{.tombstone = true, .timestamp = 7, .value = ""};
  EXPECT_TRUE(supersedes(tombstone, tie));
}

// Property: folding any permutation of a set of cells with "keep the winner" gives one result.
TEST(CellTest, FoldIsOrderIndependent) {
  std::mt19937_64 rng(11);
  for (int trial = 0; trial < 200; ++trial) {
    std::vector<Cell> cells;
    const int count = 1 + static_cast<int>(rng() % 6);
    for (int i = 0; i < count; ++i) cells.push_back(random_cell(rng));
    std::sort(cells.begin(), cells.end(),
              [](const Cell& a, const Cell& b) { return encode_cell(a) < encode_cell(b); });
    std::optional<Cell> expected;
    do {
      std::optional<Cell> winner;
      for (const Cell& cell : cells) {
        if (!winner || supersedes(cell, *winner)) winner = cell;
      }
      if (!expected) expected = winner;
      ASSERT_EQ(*winner, *expected);
    } while (std::next_permutation(
        cells.begin(), cells.end(),
        [](const Cell& a, const Cell& b) { return encode_cell(a) < encode_cell(b); }));
  }
}

TEST(KeyTest, RoundTripsIncludingEmptyKeysAndAllBytes) {
  std::mt19937_64 rng(5);
  for (int i = 0; i < 2000; ++i) {
    const topology::Token token = rng();
    const std::string key = random_bytes(rng, 20);
    const std::string sub_key = random_bytes(rng, 20);
    const std::string encoded = encode_key(token, key, sub_key);
    Result<DecodedKey> decoded = decode_key(encoded);
    ASSERT_TRUE(decoded.is_ok());
    EXPECT_EQ(decoded->token, token);
    EXPECT_EQ(decoded->key, key);
    EXPECT_EQ(decoded->sub_key, sub_key);
  }
  Result<DecodedKey> empty = decode_key(encode_key(0, ""));
  ASSERT_TRUE(empty.is_ok());
  EXPECT_TRUE(empty->key.empty());
  EXPECT_TRUE(empty->sub_key.empty());
}

TEST(KeyTest, TruncatedKeysAreCorruption) {
  const std::string encoded = encode_key(99, "abc");
  for (size_t length = 0; length < encoded.size(); ++length) {
    EXPECT_EQ(decode_key(std::string_view(encoded).substr(0, length)).status().code(),
              StatusCode::kCorruption)
        << length;
  }
}

TEST(KeyTest, TokensOrderBigEndianAndPrefixIsFirstKey) {
  EXPECT_LT(encode_key(0x00ff, "zzz"), encode_key(0x0100, ""));
  EXPECT_LT(encode_key(1, "x"), encode_key(1ull << 56, "a"));
  std::mt19937_64 rng(9);
  for (int i = 0; i < 1000; ++i) {
    const topology::Token a = rng() >> (rng() % 64);
    const topology::Token b = rng() >> (rng() % 64);
    if (a == b) continue;
    EXPECT_EQ(a < b, encode_key(a, random_bytes(rng, 5)) < encode_key(b, random_bytes(rng, 5)));
    EXPECT_LE(token_prefix(a), encode_key(a, random_bytes(rng, 5)));
    EXPECT_EQ(token_prefix(a).size(), 8u);
  }
}

TEST(KeyTest, TokenRangesAndKeysAreContiguous) {
  std::mt19937_64 rng(13);
  struct Entry {
    topology::Token token;
    std::string key;
    std::string sub_key;
  };
  std::vector<Entry> entries;
  for (int i = 0; i < 3000; ++i) {
    // Few tokens and short keys so that prefixes of one another are common.
    entries.push_back({rng() % 8 * 0x2000000000000000ull, random_bytes(rng, 2),
                       random_bytes(rng, 2)});
  }
  std::map<std::string, const Entry*> sorted;
  for (const Entry& entry : entries) {
    sorted[encode_key(entry.token, entry.key, entry.sub_key)] = &entry;
  }
  // Each token, and each (token, key), appears as one unbroken run in key order.
  std::set<topology::Token> tokens_done;
  std::set<std::pair<topology::Token, std::string>> keys_done;
  const Entry* previous = nullptr;
  for (const auto& [encoded, entry] : sorted) {
    if (previous == nullptr || previous->token != entry->token) {
      ASSERT_TRUE(tokens_done.insert(entry->token).second);
      if (previous != nullptr) {
        ASSERT_LT(previous->token, entry->token);
      }
    }
    if (previous == nullptr || previous->token != entry->token || previous->key != entry->key) {
      ASSERT_TRUE(keys_done.insert({entry->token, entry->key}).second);
    }
    // Every key of a token range sits between the prefixes of the range's bounds.
    ASSERT_GE(encoded, token_prefix(entry->token));
    if (entry->token != ~0ull) {
      ASSERT_LT(encoded, token_prefix(entry->token + 1));
    }
    previous = entry;
  }
}

TEST(RowFormatTest, HeadersFieldsAndWhatAHeaderHides) {
  EXPECT_EQ(*decode_row_header(encode_row_header({42})), RowHeader{42});
  EXPECT_FALSE(decode_row_header("").is_ok());
  EXPECT_FALSE(decode_row_header(std::string(9, '\x02')).is_ok());  // unknown version
  // Version 2 marks a row whose fields may expire (HEXPIRE); version 1 stays what it was.
  EXPECT_EQ(encode_row_header({42}).size(), 9u);
  const RowHeader expiring{42, true};
  EXPECT_EQ(encode_row_header(expiring).size(), 10u);
  EXPECT_EQ(*decode_row_header(encode_row_header(expiring)), expiring);
  EXPECT_FALSE(decode_row_header(std::string(10, '\x01')).is_ok());
  EXPECT_FALSE(decode_row_header(std::string(11, '\x02')).is_ok());
  // A field named "" is not the header's empty sub-key.
  EXPECT_EQ(field_sub_key(""), std::string(1, kFieldNamespace));
  EXPECT_EQ(*field_of_sub_key(field_sub_key("a b")), "a b");
  EXPECT_FALSE(field_of_sub_key("").has_value());
  EXPECT_FALSE(field_of_sub_key("\x02x").has_value());
  // Fields of one key sort after its header and before any other key's cells.
  EXPECT_LT(encode_key(1, "k"), encode_key(1, "k", field_sub_key("")));
  EXPECT_LT(encode_key(1, "k", field_sub_key("\xff\xff")), encode_key(1, "k") + "\xff");
  const HlcTimestamp t = HybridClock::make(1000, 5);
  Cell tombstone{.tombstone = true, .timestamp = t, .value = ""};
  EXPECT_EQ(hidden_through(tombstone, 0), t);
  Cell string{.timestamp = t, .value = "s"};
  EXPECT_EQ(hidden_through(string, 0), t);
  Cell header{.type = ValueType::kHash, .timestamp = t, .expire_at_ms = 2000,
              .value = encode_row_header({7})};
  EXPECT_EQ(hidden_through(header, 1999), 7u);  // a live row hides only its past
  EXPECT_EQ(hidden_through(header, 2000), expiry_bound(2000));  // expired: all it held
  EXPECT_GT(expiry_bound(2000), HybridClock::make(2000, 0xfffe));
  EXPECT_LT(expiry_bound(2000), HybridClock::make(2001, 0));
}

TEST(RowFormatTest, ScoresEncodeInNumericOrder) {
  const double scores[] = {-HUGE_VAL, -1e308, -2.5, -1, -1e-300, 0, 1e-300, 1, 2.5, 1e308,
                           HUGE_VAL};
  for (size_t i = 0; i + 1 < std::size(scores); ++i) {
    EXPECT_LT(encode_score(scores[i]), encode_score(scores[i + 1])) << scores[i];
  }
  for (double score : scores) EXPECT_EQ(decode_score(encode_score(score)), score);
  EXPECT_EQ(encode_score(-0.0), encode_score(0.0));
  // Equal scores order their members bytewise; the index never mixes with fields.
  EXPECT_LT(score_index_sub_key(1, "a"), score_index_sub_key(1, "b"));
  EXPECT_LT(score_index_sub_key(1, "zzz"), score_index_sub_key(2, "a"));
  EXPECT_LT(field_sub_key("\xff"), score_index_sub_key(-HUGE_VAL, ""));
}

TEST(CompactionFilterTest, ExpiredValuesBecomeTombstonesUntilTheGraceRunsOut) {
  using V = CellCompactionFilter::Verdict;
  const int64_t grace = 1000;
  Cell live{.value = "v"};
  EXPECT_EQ(CellCompactionFilter::judge(live, 1'000'000, grace), V::kKeep);
  Cell expiring{.timestamp = HybridClock::make(100, 0), .expire_at_ms = 500, .value = "v"};
  EXPECT_EQ(CellCompactionFilter::judge(expiring, 499, grace), V::kKeep);
  EXPECT_EQ(CellCompactionFilter::judge(expiring, 500, grace), V::kToTombstone);
  EXPECT_EQ(CellCompactionFilter::judge(expiring, 1499, grace), V::kToTombstone);
  EXPECT_EQ(CellCompactionFilter::judge(expiring, 1500, grace), V::kRemove);
  Cell tombstone{.tombstone = true, .timestamp = HybridClock::make(100, 3), .value = ""};
  EXPECT_EQ(CellCompactionFilter::judge(tombstone, 1099, grace), V::kKeep);
  EXPECT_EQ(CellCompactionFilter::judge(tombstone, 1100, grace), V::kRemove);
  EXPECT_EQ(CellCompactionFilter::judge(tombstone, 1100, INT64_MAX), V::kKeep);
}

}  // namespace
}  // namespace cairn::storage
