// The sorted-set family (ZADD, ZRANGE and its variants, ZRANK, ZPOPMIN...), with redis-server
// 7.0 semantics and error texts. A sorted set is a row (docs/formats.md "Sorted sets"): each
// member is a field at 0x01 member holding its score, and a score index cell at
// 0x02 | score | member sits beside it, so ranges by score and by rank are scans of the index in
// score order and ZCARD is the row's O(1) count. Commands write member cells only: every
// machine that stores a member cell moves the member's index entry itself
// (storage::Engine::apply_field), so the index follows the winning cell on every replica. ZADD
// without conditions and ZREM only set or delete members and run like HSET/SREM
// (Keyspace::write_fields_leaderless); the other writes run inside Keyspace::atomically() over
// the key. Replies are staged and sent only when the keyspace operation succeeded.

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "commands/command.h"
#include "commands/parse.h"
#include "commands/rows.h"

namespace cairn::commands {
namespace {

using coordinator::Keyspace;
using storage::Cell;
using storage::field_of_sub_key;
using storage::ValueType;

constexpr ValueType kZSet = ValueType::kZSet;
constexpr std::string_view kErrNotPositive = "ERR value is out of range, must be positive";
constexpr std::string_view kErrScoreRange = "ERR min or max is not a float";
constexpr std::string_view kErrLexRange = "ERR min or max not valid string range item";
constexpr std::string_view kErrNan = "ERR resulting score is not a number (NaN)";
constexpr std::string_view kErrLimitWithRank =
    "ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX";
constexpr std::string_view kErrWithScoresByLex =
    "ERR syntax error, WITHSCORES not supported in combination with BYLEX";

struct Entry {
  double score = 0;
  std::string member;
};

// For read-only commands: nullopt after replying (storage error or WRONGTYPE).
std::optional<RowOfType> read_zset_or_reply(CommandContext& ctx, const std::string& key) {
  RowOfType read = read_row_of_type(ctx.keyspace, key, kZSet, ctx.reply);
  if (read.replied) return std::nullopt;
  if (!read.status.is_ok()) {
    ctx.reply.error(storage_error_reply(read.status));
    return std::nullopt;
  }
  return read;
}

// The score of `member`, if it is in the set.
Result<std::optional<double>> score_of(Keyspace& keyspace, const std::string& key,
                                       const RowOfType& read, std::string_view member) {
  Result<std::optional<Cell>> cell = read_row_field(keyspace, key, read, member);
  if (!cell.is_ok()) return cell.status();
  if (!cell->has_value()) return std::optional<double>();
  std::optional<double> score = decode_member_score((*cell)->value);
  if (!score) return Status::corruption("sorted set member without a valid score");
  return score;
}

// Gives `member` the score `score`: its cell. Every machine that stores the cell moves the
// member's score index entry itself (storage::Engine::apply_field).
Status store_score(Keyspace& keyspace, const std::string& key, std::string_view member,
                   double score) {
  std::vector<std::pair<std::string, std::string>> cells;
  append_zset_member_cell(member, score, cells);
  return keyspace.write_fields(key, kZSet, cells);
}

// A tombstone for the member's cell; its index entry goes with it on every machine.
Status remove_member(Keyspace& keyspace, const std::string& key, std::string_view member) {
  const std::string sub_key = storage::field_sub_key(member);
  return keyspace.remove_fields(key, kZSet, std::span(&sub_key, 1));
}

// Visits the index in (score, member) order from the first entry whose score is >= `from` (the
// whole index without it) until `fn` returns false.
Status for_each_entry(Keyspace& keyspace, const std::string& key, const RowOfType& read,
                      std::optional<double> from,
                      const std::function<bool(double score, std::string_view member)>& fn,
                      std::string_view from_sub_key = {}) {
  if (!read.exists()) return Status::ok();
  std::string start(1, storage::kScoreIndexNamespace);
  if (!from_sub_key.empty()) {
    start = std::string(from_sub_key);
  } else if (from) {
    start += storage::encode_score(*from);
  }
  return keyspace.scan_fields(key, start, read.hidden(),
                              [&](std::string_view sub_key, const Cell&) {
                                if (sub_key.empty() || sub_key[0] != storage::kScoreIndexNamespace) {
                                  return false;  // past the index
                                }
                                if (sub_key.size() < 9) return true;  // not an index entry
                                return fn(storage::decode_score(sub_key.substr(1, 8)),
                                          sub_key.substr(9));
                              });
}

// The smallest sub-key above every sub-key that starts with `prefix` (its successor as a
// prefix); the end of the index namespace when there is none.
std::string prefix_successor(std::string prefix) {
  while (!prefix.empty() && static_cast<uint8_t>(prefix.back()) == 0xff) prefix.pop_back();
  if (prefix.empty()) return std::string(1, static_cast<char>(storage::kScoreIndexNamespace + 1));
  prefix.back() = static_cast<char>(static_cast<uint8_t>(prefix.back()) + 1);
  return prefix;
}

// Visits the index entries from the highest down, from those with a score at or below `to` (all
// if nullopt), until `fn` returns false. A single machine reads its storage backwards, so this
// costs what for_each_entry costs from the bottom.
Status for_each_entry_reverse(Keyspace& keyspace, const std::string& key, const RowOfType& read,
                              std::optional<double> to,
                              const std::function<bool(double score, std::string_view member)>& fn,
                              std::string_view below = {}) {
  if (!read.exists()) return Status::ok();
  const std::string start(1, storage::kScoreIndexNamespace);
  const std::string end =
      !below.empty() ? std::string(below)
                     : prefix_successor(to ? start + storage::encode_score(*to) : start);
  return keyspace.scan_fields_reverse(key, start, end, read.hidden(),
                                      [&](std::string_view sub_key, const Cell&) {
                                        if (sub_key.size() < 9) return true;  // not an entry
                                        return fn(storage::decode_score(sub_key.substr(1, 8)),
                                                  sub_key.substr(9));
                                      });
}

// ---- Ranges ----

// A score range as zslParseRange reads it: strtod over the text (after an optional '('), which
// must consume it all; NaN refused.
struct ScoreRange {
  double min = 0, max = 0;
  bool min_exclusive = false, max_exclusive = false;
  bool empty() const {
    return min > max || (min == max && (min_exclusive || max_exclusive));
  }
  bool above_min(double score) const { return min_exclusive ? score > min : score >= min; }
  bool below_max(double score) const { return max_exclusive ? score < max : score <= max; }
};

bool parse_score_bound(std::string_view text, double* value, bool* exclusive) {
  // A C string, as Redis reads it: an embedded NUL ends the text.
  std::string buffer(text);
  const char* start = buffer.c_str();
  *exclusive = false;
  if (start[0] == '(') {
    *exclusive = true;
    ++start;
  }
  char* end = nullptr;
  *value = std::strtod(start, &end);
  return end[0] == '\0' && !std::isnan(*value);
}

std::optional<ScoreRange> parse_score_range(std::string_view min, std::string_view max) {
  ScoreRange range;
  if (!parse_score_bound(min, &range.min, &range.min_exclusive) ||
      !parse_score_bound(max, &range.max, &range.max_exclusive)) {
    return std::nullopt;
  }
  return range;
}

// A lexicographic bound: '-' and '+' are below and above every member.
struct LexBound {
  enum class Kind { kMinusInfinity, kValue, kPlusInfinity } kind = Kind::kValue;
  std::string value;
  bool exclusive = false;
};

int compare_lex(const LexBound& a, const LexBound& b) {
  if (a.kind != LexBound::Kind::kValue || b.kind != LexBound::Kind::kValue) {
    if (a.kind == b.kind) return 0;
    if (a.kind == LexBound::Kind::kMinusInfinity || b.kind == LexBound::Kind::kPlusInfinity) {
      return -1;
    }
    return 1;
  }
  const int cmp = a.value.compare(b.value);
  return cmp < 0 ? -1 : (cmp > 0 ? 1 : 0);
}

std::optional<LexBound> parse_lex_bound(std::string_view text) {
  // As zslParseLexRangeItem reads a C string.
  const std::string_view c = text.substr(0, text.find('\0'));
  LexBound bound;
  if (c.empty()) return std::nullopt;
  switch (c[0]) {
    case '+':
    case '-':
      if (c.size() != 1) return std::nullopt;
      bound.kind = c[0] == '+' ? LexBound::Kind::kPlusInfinity : LexBound::Kind::kMinusInfinity;
      bound.exclusive = true;
      return bound;
    case '(':
    case '[':
      bound.exclusive = c[0] == '(';
      bound.value = std::string(text.substr(1));
      return bound;
    default:
      return std::nullopt;
  }
}

struct LexRange {
  LexBound min, max;
  bool empty() const {
    const int cmp = compare_lex(min, max);
    return cmp > 0 || (cmp == 0 && (min.exclusive || max.exclusive));
  }
  bool above_min(std::string_view member) const {
    if (min.kind != LexBound::Kind::kValue) return min.kind == LexBound::Kind::kMinusInfinity;
    const int cmp = member.compare(min.value);
    return min.exclusive ? cmp > 0 : cmp >= 0;
  }
  bool below_max(std::string_view member) const {
    if (max.kind != LexBound::Kind::kValue) return max.kind == LexBound::Kind::kPlusInfinity;
    const int cmp = member.compare(max.value);
    return max.exclusive ? cmp < 0 : cmp <= 0;
  }
};

std::optional<LexRange> parse_lex_range(std::string_view min, std::string_view max) {
  std::optional<LexBound> low = parse_lex_bound(min);
  std::optional<LexBound> high = parse_lex_bound(max);
  if (!low || !high) return std::nullopt;
  return LexRange{std::move(*low), std::move(*high)};
}

// Entries by rank: [start, stop] after Redis's index sanitizing, forward or from the top.
Result<std::vector<Entry>> entries_by_rank(Keyspace& keyspace, const std::string& key,
                                           const RowOfType& read, int64_t start, int64_t stop,
                                           bool reverse) {
  std::vector<Entry> out;
  const int64_t length = static_cast<int64_t>(read.row.count);
  if (start < 0) start = length + start;
  if (stop < 0) stop = length + stop;
  if (start < 0) start = 0;
  if (start > stop || start >= length) return out;
  if (stop >= length) stop = length - 1;
  // Reverse ranks count from the top: the same entries as forward ranks mirrored.
  const int64_t first = reverse ? length - 1 - stop : start;
  const int64_t last = reverse ? length - 1 - start : stop;
  // The storage's rank blocks, where the set keeps them (a set that grew past 2,048 members),
  // find the first entry without a walk, even near an end: a set used as a queue (ZPOPMIN)
  // leaves the deleted entries of its front in storage until compaction, and a walk from that
  // end would step over all of them; the blocks skip them.
  {
    int64_t rank = first;
    Result<bool> found = keyspace.scan_fields_from_rank(
        key, storage::kScoreIndexNamespace, static_cast<uint64_t>(first),
        static_cast<uint64_t>(length), read.hidden(),
        [&](std::string_view sub_key, const Cell&) {
          if (sub_key.size() < 9) return true;  // not an entry
          out.push_back({storage::decode_score(sub_key.substr(1, 8)), std::string(sub_key.substr(9))});
          return ++rank <= last;
        });
    if (!found.is_ok()) return found.status();
    if (*found) {
      if (reverse) std::reverse(out.begin(), out.end());
      return out;
    }
    out.clear();
  }
  // Walk in from the nearer end: the top of a leaderboard costs what its bottom does.
  const bool from_top = length - 1 - last < first;
  if (!from_top) {
    int64_t rank = 0;
    Status status = for_each_entry(keyspace, key, read, std::nullopt,
                                   [&](double score, std::string_view member) {
                                     if (rank >= first) out.push_back({score, std::string(member)});
                                     return ++rank <= last;
                                   });
    if (!status.is_ok()) return status;
    if (reverse) std::reverse(out.begin(), out.end());
    return out;
  }
  int64_t rank = length - 1;  // of the entry visited
  Status status = for_each_entry_reverse(keyspace, key, read, std::nullopt,
                                         [&](double score, std::string_view member) {
                                           if (rank <= last) {
                                             out.push_back({score, std::string(member)});
                                           }
                                           return --rank >= first;
                                         });
  if (!status.is_ok()) return status;
  if (!reverse) std::reverse(out.begin(), out.end());
  return out;
}

// Entries with a score in `range`, in emission order (`reverse`: highest first), after
// LIMIT; both directions stop once LIMIT is satisfied.
Result<std::vector<Entry>> entries_by_score(Keyspace& keyspace, const std::string& key,
                                            const RowOfType& read, const ScoreRange& range,
                                            bool reverse, int64_t offset, int64_t limit) {
  std::vector<Entry> out;
  if (range.empty() || (offset > 0 && static_cast<uint64_t>(offset) >= read.row.count)) {
    return out;
  }
  if (offset < 0) return out;  // a negative offset leaves nothing, as in Redis
  int64_t skip = offset;
  if (reverse) {
    Status status = for_each_entry_reverse(
        keyspace, key, read, range.max, [&](double score, std::string_view member) {
          if (!range.below_max(score)) return true;
          if (!range.above_min(score)) return false;
          if (skip > 0) {
            --skip;
            return true;
          }
          if (limit >= 0 && static_cast<int64_t>(out.size()) >= limit) return false;
          out.push_back({score, std::string(member)});
          return true;
        });
    if (!status.is_ok()) return status;
    return out;
  }
  Status status = for_each_entry(keyspace, key, read, range.min,
                                 [&](double score, std::string_view member) {
                                   if (!range.above_min(score)) return true;
                                   if (!range.below_max(score)) return false;
                                   if (skip > 0) {
                                     --skip;
                                     return true;
                                   }
                                   if (limit >= 0 && static_cast<int64_t>(out.size()) >= limit) {
                                     return false;  // LIMIT satisfied (LIMIT 0 0: nothing)
                                   }
                                   out.push_back({score, std::string(member)});
                                   return true;
                                 });
  if (!status.is_ok()) return status;
  return out;
}

// Entries in a lexicographic range, walked as Redis walks a small (listpack) sorted set: empty
// unless the last entry is at or above min and the first at or below max; then forward from the
// first entry at or above min while entries stay at or below max (backwards from the last entry
// at or below max while they stay at or above min, for `reverse`). Meaningful when every score
// is equal, as in Redis; O(set size) either way.
Result<std::vector<Entry>> entries_by_lex(Keyspace& keyspace, const std::string& key,
                                          const RowOfType& read, const LexRange& range,
                                          bool reverse, int64_t offset, int64_t limit) {
  std::vector<Entry> out;
  if (range.empty() || offset < 0 ||
      (offset > 0 && static_cast<uint64_t>(offset) >= read.row.count)) {
    return out;  // a negative offset leaves nothing, as in Redis
  }
  // The first and the last entry decide whether the walk finds anything at all.
  std::optional<Entry> first, last;
  auto first_only = [](std::optional<Entry>& slot) {
    return [&slot](double score, std::string_view member) {
      slot = Entry{score, std::string(member)};
      return false;
    };
  };
  Status status = for_each_entry(keyspace, key, read, std::nullopt, first_only(first));
  if (status.is_ok()) {
    status = for_each_entry_reverse(keyspace, key, read, std::nullopt, first_only(last));
  }
  if (!status.is_ok()) return status;
  if (!first || !last || !range.above_min(last->member) || !range.below_max(first->member)) {
    return out;
  }
  // When every entry has one score (what lex ranges are meant for), members are in order, so
  // the walk starts with a seek to the bound instead of stepping over what lies before it.
  std::string seek;
  if (first->score == last->score) {
    const LexBound& bound = reverse ? range.max : range.min;
    if (bound.kind == LexBound::Kind::kValue) {
      seek = storage::score_index_sub_key(first->score, bound.value);
      if (reverse && !bound.exclusive) seek.push_back('\0');  // just above the bound itself
    }
  }
  bool started = false;
  int64_t skip = offset;
  auto take = [&](double score, std::string_view member) {
    if (!started) {
      if (reverse ? !range.below_max(member) : !range.above_min(member)) return true;
      started = true;
    }
    if (reverse ? !range.above_min(member) : !range.below_max(member)) return false;
    if (skip > 0) {
      --skip;
      return true;
    }
    if (limit >= 0 && static_cast<int64_t>(out.size()) >= limit) return false;
    out.push_back({score, std::string(member)});
    return true;
  };
  status = reverse ? for_each_entry_reverse(keyspace, key, read, std::nullopt, take, seek)
                   : for_each_entry(keyspace, key, read, std::nullopt, take, seek);
  if (!status.is_ok()) return status;
  return out;
}

// RESP2: member, score, ... flat (scores as bulk strings); RESP3 with scores: [member, score]
// pairs.
void reply_entries(resp::ReplyWriter& reply, const std::vector<Entry>& entries,
                   bool with_scores) {
  if (!with_scores) {
    reply.array(entries.size());
    for (const Entry& entry : entries) reply.bulk(entry.member);
    return;
  }
  const bool pairs = reply.protocol() >= 3;
  reply.array(pairs ? entries.size() : entries.size() * 2);
  for (const Entry& entry : entries) {
    if (pairs) reply.array(2);
    reply.bulk(entry.member);
    reply.double_value(entry.score);
  }
}

// Replaces `key` with a sorted set of `entries` (deleted when there are none).
Status store_entries(Keyspace& keyspace, const std::string& key,
                     const std::vector<Entry>& entries) {
  std::vector<std::pair<std::string, std::string>> cells;
  cells.reserve(entries.size());
  for (const Entry& entry : entries) append_zset_member_cell(entry.member, entry.score, cells);
  return replace_row(keyspace, key, kZSet, cells);
}

// Computes entries (nullopt after an error reply such as WRONGTYPE).
using EntriesFn = std::function<Result<std::optional<std::vector<Entry>>>(resp::ReplyWriter&)>;

// The end every range and algebra command shares. A store (`locked`: the target, then the
// sources) computes under the locks of those keys, replaces the target and replies the count;
// otherwise `answer` replies the entries (errors staged by `compute` are sent as they are).
void store_or_reply(CommandContext& ctx, std::span<const std::string> locked,
                    const EntriesFn& compute,
                    const std::function<void(const std::vector<Entry>&)>& answer) {
  if (!locked.empty()) {
    run_row_command(ctx, locked, [&](resp::ReplyWriter& reply) -> Status {
      Result<std::optional<std::vector<Entry>>> entries = compute(reply);
      if (!entries.is_ok()) return entries.status();
      if (!entries->has_value()) return Status::ok();
      if (Status status = store_entries(ctx.keyspace, locked[0], **entries); !status.is_ok()) {
        return status;
      }
      reply.integer(static_cast<int64_t>((*entries)->size()));
      return Status::ok();
    });
    return;
  }
  std::string staged;
  resp::ReplyWriter writer(&staged, ctx.reply.protocol());
  Result<std::optional<std::vector<Entry>>> entries = compute(writer);
  if (!entries.is_ok()) return ctx.reply.error(storage_error_reply(entries.status()));
  if (!entries->has_value()) {
    ctx.reply.buffer()->append(staged);
    return;
  }
  answer(**entries);
}

// ---- ZADD / ZINCRBY ----

struct AddFlags {
  bool nx = false, xx = false, gt = false, lt = false, ch = false, incr = false;
};

// ZADD key [CH] score member [score member ...]: it only sets members' scores, whatever they
// were, so it runs like HSET (Keyspace::write_fields_leaderless: in a cluster, on this machine
// without the shard leader). Every named member's cell is written, its score changed or not, so
// an acknowledged ZADD holds even when the read was stale; each replica moves the member's
// index entry when it stores the cell. The reply (added, or added and changed with CH) is
// computed from the read, as Redis would count the pairs one after the other.
void zadd_unconditional(CommandContext& ctx, bool ch, size_t scores_at,
                        const std::vector<double>& scores) {
  const std::string& key = ctx.args[1];
  run_field_command(ctx, key, [&](resp::ReplyWriter& reply) -> Status {
    RowOfType read = read_row_of_type(ctx.keyspace, key, kZSet, reply, /*need_count=*/false);
    if (read.replied || !read.status.is_ok()) return read.status;
    // Each member once, in order of first appearance, with the score of its last pair.
    std::vector<std::pair<std::string, std::string>> cells;  // (sub-key, score)
    std::unordered_map<std::string_view, size_t> position;    // member -> index in cells
    for (size_t j = 0; j < scores.size(); ++j) {
      const std::string& member = ctx.args[scores_at + 2 * j + 1];
      auto [it, inserted] = position.try_emplace(member, cells.size());
      if (inserted) cells.emplace_back(storage::field_sub_key(member), std::string());
    }
    std::vector<std::optional<double>> current(cells.size());
    if (read.exists()) {
      std::vector<std::string> sub_keys;
      sub_keys.reserve(cells.size());
      for (const auto& cell : cells) sub_keys.push_back(cell.first);
      Result<std::vector<std::optional<Cell>>> found =
          ctx.keyspace.read_fields(key, sub_keys, read.hidden());
      if (!found.is_ok()) return found.status();
      for (size_t i = 0; i < cells.size(); ++i) {
        if (!(*found)[i]) continue;
        current[i] = decode_member_score((*found)[i]->value);
        if (!current[i]) return Status::corruption("sorted set member without a valid score");
      }
    }
    int64_t added = 0, changed = 0;
    for (size_t j = 0; j < scores.size(); ++j) {
      const size_t i = position.at(ctx.args[scores_at + 2 * j + 1]);
      if (!current[i]) {
        ++added;
      } else if (*current[i] != scores[j]) {  // as doubles: -0 and +0 are one score
        ++changed;
      } else {
        continue;
      }
      current[i] = scores[j];
    }
    if (Status status = create_row(ctx.keyspace, key, kZSet, read); !status.is_ok()) {
      return status;
    }
    std::vector<std::pair<std::string, std::string>> writes;
    writes.reserve(cells.size());
    for (size_t i = 0; i < cells.size(); ++i) {
      append_zset_member_cell(*field_of_sub_key(cells[i].first), *current[i], writes);
    }
    if (Status status = ctx.keyspace.write_fields(key, kZSet, writes); !status.is_ok()) {
      return status;
    }
    reply.integer(ch ? added + changed : added);
    return Status::ok();
  });
}

// ZADD key [NX|XX] [GT|LT] [CH] [INCR] score member [score member ...], and ZINCRBY as ZADD
// INCR with its arguments starting at `scores_at`.
void zadd_generic(CommandContext& ctx, AddFlags flags, size_t scores_at) {
  const std::vector<std::string>& args = ctx.args;
  while (scores_at < args.size()) {
    const std::string& option = args[scores_at];
    if (equals_ignore_case(option, "nx")) {
      flags.nx = true;
    } else if (equals_ignore_case(option, "xx")) {
      flags.xx = true;
    } else if (equals_ignore_case(option, "ch")) {
      flags.ch = true;
    } else if (equals_ignore_case(option, "incr")) {
      flags.incr = true;
    } else if (equals_ignore_case(option, "gt")) {
      flags.gt = true;
    } else if (equals_ignore_case(option, "lt")) {
      flags.lt = true;
    } else {
      break;
    }
    ++scores_at;
  }
  const size_t elements = args.size() - scores_at;
  if (elements == 0 || elements % 2 != 0) return ctx.reply.error(kErrSyntax);
  if (flags.xx && flags.nx) {
    return ctx.reply.error("ERR XX and NX options at the same time are not compatible");
  }
  if ((flags.gt && flags.nx) || (flags.lt && flags.nx) || (flags.gt && flags.lt)) {
    return ctx.reply.error("ERR GT, LT, and/or NX options at the same time are not compatible");
  }
  if (flags.incr && elements > 2) {
    return ctx.reply.error("ERR INCR option supports a single increment-element pair");
  }
  std::vector<double> scores;
  for (size_t i = scores_at; i < args.size(); i += 2) {
    std::optional<double> score = parse_double(args[i]);
    if (!score) return ctx.reply.error(kErrNotFloat);
    scores.push_back(*score);
  }
  if (!flags.nx && !flags.xx && !flags.gt && !flags.lt && !flags.incr) {
    return zadd_unconditional(ctx, flags.ch, scores_at, scores);
  }
  const std::string& key = args[1];
  run_row_command(ctx, std::span(&ctx.args[1], 1), [&](resp::ReplyWriter& reply) -> Status {
    RowOfType read = read_row_of_type(ctx.keyspace, key, kZSet, reply);
    if (read.replied || !read.status.is_ok()) return read.status;
    int64_t added = 0, updated = 0, processed = 0;
    double last_score = 0;
    if (read.exists() || !flags.xx) {
      if (Status status = create_row(ctx.keyspace, key, kZSet, read); !status.is_ok()) {
        return status;
      }
      for (size_t j = 0; j < scores.size(); ++j) {
        const std::string& member = args[scores_at + 2 * j + 1];
        double score = scores[j];
        Result<std::optional<double>> current = score_of(ctx.keyspace, key, read, member);
        if (!current.is_ok()) return current.status();
        if (current->has_value()) {
          const double old = **current;
          if (flags.nx) continue;
          if (flags.incr) {
            score += old;
            if (std::isnan(score)) {
              reply.error(kErrNan);
              return Status::ok();
            }
          }
          if ((flags.lt && score >= old) || (flags.gt && score <= old)) continue;
          ++processed;
          last_score = score;
          // Redis compares as doubles: -0 and +0 are the same score, kept as first given.
          if (score != old) {
            if (Status status = store_score(ctx.keyspace, key, member, score);
                !status.is_ok()) {
              return status;
            }
            ++updated;
          }
        } else if (!flags.xx) {
          if (Status status = store_score(ctx.keyspace, key, member, score);
              !status.is_ok()) {
            return status;
          }
          ++added;
          ++processed;
          last_score = score;
        }
      }
    }
    if (flags.incr) {
      if (processed > 0) {
        reply.double_value(last_score);
      } else {
        reply.null();
      }
    } else {
      reply.integer(flags.ch ? added + updated : added);
    }
    return Status::ok();
  });
}

void zadd_command(CommandContext& ctx) { zadd_generic(ctx, AddFlags{}, 2); }

void zincrby_command(CommandContext& ctx) {
  // ZADD INCR over the same arguments: an increment spelled like an option ("nx") is read as
  // one, and the pair left is then a syntax error, as in Redis.
  AddFlags flags;
  flags.incr = true;
  zadd_generic(ctx, flags, 2);
}

// ---- ZREM / ZSCORE / ZMSCORE / ZCARD ----

// Only deletes members: leaderless in a cluster, like SREM.
void zrem_command(CommandContext& ctx) {
  run_field_command(ctx, ctx.args[1], [&](resp::ReplyWriter& reply) -> Status {
    return set_or_remove_fields(ctx, kZSet, 2, 1, /*remove=*/true, reply,
                                [&](int64_t removed) { reply.integer(removed); });
  });
}

void zscore_command(CommandContext& ctx) {
  std::optional<RowOfType> read = read_zset_or_reply(ctx, ctx.args[1]);
  if (!read) return;
  Result<std::optional<double>> score = score_of(ctx.keyspace, ctx.args[1], *read, ctx.args[2]);
  if (!score.is_ok()) return ctx.reply.error(storage_error_reply(score.status()));
  if (!score->has_value()) return ctx.reply.null();
  ctx.reply.double_value(**score);
}

void zmscore_command(CommandContext& ctx) {
  std::optional<RowOfType> read = read_zset_or_reply(ctx, ctx.args[1]);
  if (!read) return;
  std::vector<std::optional<double>> scores;
  for (size_t i = 2; i < ctx.args.size(); ++i) {
    Result<std::optional<double>> score =
        score_of(ctx.keyspace, ctx.args[1], *read, ctx.args[i]);
    if (!score.is_ok()) return ctx.reply.error(storage_error_reply(score.status()));
    scores.push_back(*score);
  }
  ctx.reply.array(scores.size());
  for (const std::optional<double>& score : scores) {
    if (score) {
      ctx.reply.double_value(*score);
    } else {
      ctx.reply.null();
    }
  }
}

void zcard_command(CommandContext& ctx) {
  std::optional<RowOfType> read = read_zset_or_reply(ctx, ctx.args[1]);
  if (!read) return;
  ctx.reply.integer(static_cast<int64_t>(read->row.count));
}

// ---- ZCOUNT / ZLEXCOUNT ----

void zcount_command(CommandContext& ctx) {
  std::optional<ScoreRange> range = parse_score_range(ctx.args[2], ctx.args[3]);
  if (!range) return ctx.reply.error(kErrScoreRange);
  std::optional<RowOfType> read = read_zset_or_reply(ctx, ctx.args[1]);
  if (!read) return;
  int64_t count = 0;
  if (!range->empty()) {
    Status status = for_each_entry(ctx.keyspace, ctx.args[1], *read, range->min,
                                   [&](double score, std::string_view) {
                                     if (!range->above_min(score)) return true;
                                     if (!range->below_max(score)) return false;
                                     ++count;
                                     return true;
                                   });
    if (!status.is_ok()) return ctx.reply.error(storage_error_reply(status));
  }
  ctx.reply.integer(count);
}

void zlexcount_command(CommandContext& ctx) {
  std::optional<LexRange> range = parse_lex_range(ctx.args[2], ctx.args[3]);
  if (!range) return ctx.reply.error(kErrLexRange);
  std::optional<RowOfType> read = read_zset_or_reply(ctx, ctx.args[1]);
  if (!read) return;
  Result<std::vector<Entry>> entries =
      entries_by_lex(ctx.keyspace, ctx.args[1], *read, *range, false, 0, -1);
  if (!entries.is_ok()) return ctx.reply.error(storage_error_reply(entries.status()));
  ctx.reply.integer(static_cast<int64_t>(entries->size()));
}

// ---- ZRANGE and its older forms ----

enum class RangeType { kAuto, kRank, kScore, kLex };
enum class Direction { kAuto, kForward, kReverse };

// zrangeGenericCommand: ZRANGE key min max [BYSCORE|BYLEX] [REV] [LIMIT offset count]
// [WITHSCORES], and the older commands with their type and direction fixed.
// ZRANGESTORE dst src ... (`store`) reads its source at args[2] and takes no WITHSCORES.
void zrange_generic(CommandContext& ctx, RangeType type, Direction direction,
                    bool store = false) {
  const std::vector<std::string>& args = ctx.args;
  const size_t key_at = store ? 2 : 1;
  const std::string& key = args[key_at];
  bool with_scores = false;
  int64_t offset = 0, limit = -1;
  for (size_t j = key_at + 3; j < args.size(); ++j) {
    const size_t left = args.size() - j - 1;
    if (!store && equals_ignore_case(args[j], "withscores")) {
      with_scores = true;
    } else if (equals_ignore_case(args[j], "limit") && left >= 2) {
      std::optional<int64_t> parsed_offset = parse_int64(args[j + 1]);
      std::optional<int64_t> parsed_limit = parse_int64(args[j + 2]);
      if (!parsed_offset || !parsed_limit) return ctx.reply.error(kErrNotInteger);
      offset = *parsed_offset;
      limit = *parsed_limit;
      j += 2;
    } else if (direction == Direction::kAuto && equals_ignore_case(args[j], "rev")) {
      direction = Direction::kReverse;
    } else if (type == RangeType::kAuto && equals_ignore_case(args[j], "bylex")) {
      type = RangeType::kLex;
    } else if (type == RangeType::kAuto && equals_ignore_case(args[j], "byscore")) {
      type = RangeType::kScore;
    } else {
      return ctx.reply.error(kErrSyntax);
    }
  }
  if (direction == Direction::kAuto) direction = Direction::kForward;
  if (type == RangeType::kAuto) type = RangeType::kRank;
  if (limit != -1 && type == RangeType::kRank) return ctx.reply.error(kErrLimitWithRank);
  if (with_scores && type == RangeType::kLex) return ctx.reply.error(kErrWithScoresByLex);
  const bool reverse = direction == Direction::kReverse;
  // Ranges by score or lex are given as max, min when reversed.
  const std::string& min =
      reverse && type != RangeType::kRank ? args[key_at + 2] : args[key_at + 1];
  const std::string& max =
      reverse && type != RangeType::kRank ? args[key_at + 1] : args[key_at + 2];
  std::optional<int64_t> start, stop;
  std::optional<ScoreRange> scores;
  std::optional<LexRange> lex;
  switch (type) {
    case RangeType::kAuto:
    case RangeType::kRank:
      start = parse_int64(min);
      stop = parse_int64(max);
      if (!start || !stop) return ctx.reply.error(kErrNotInteger);
      break;
    case RangeType::kScore:
      scores = parse_score_range(min, max);
      if (!scores) return ctx.reply.error(kErrScoreRange);
      break;
    case RangeType::kLex:
      lex = parse_lex_range(min, max);
      if (!lex) return ctx.reply.error(kErrLexRange);
      break;
  }
  // The whole set in order (ZRANGE key 0 -1): produced page by page where the connection
  // allows (docs/protocol.md "Big replies").
  if (!store && type == RangeType::kRank && !reverse && *start == 0 && *stop == -1 &&
      produce_row_listing(
          ctx, kZSet, storage::kScoreIndexNamespace,
          [with_scores](resp::ReplyWriter& reply, uint64_t count) {
            reply.array(with_scores && reply.protocol() < 3 ? 2 * count : count);
          },
          [with_scores](resp::ReplyWriter& reply, std::string_view entry, const Cell&) {
            // An index entry's name: score(8) | member.
            if (with_scores && reply.protocol() >= 3) reply.array(2);
            reply.bulk(entry.substr(8));
            if (with_scores) reply.double_value(storage::decode_score(entry.substr(0, 8)));
          })) {
    return;
  }
  // The selected entries; nullopt after a WRONGTYPE reply.
  auto select = [&](resp::ReplyWriter& reply) -> Result<std::optional<std::vector<Entry>>> {
    RowOfType read = read_row_of_type(ctx.keyspace, key, kZSet, reply);
    if (!read.status.is_ok()) return read.status;
    if (read.replied) return std::optional<std::vector<Entry>>();
    if (!read.exists()) return std::optional(std::vector<Entry>());
    Result<std::vector<Entry>> entries =
        type == RangeType::kScore
            ? entries_by_score(ctx.keyspace, key, read, *scores, reverse, offset, limit)
        : type == RangeType::kLex
            ? entries_by_lex(ctx.keyspace, key, read, *lex, reverse, offset, limit)
            : entries_by_rank(ctx.keyspace, key, read, *start, *stop, reverse);
    if (!entries.is_ok()) return entries.status();
    return std::optional(std::move(*entries));
  };
  store_or_reply(ctx, store ? std::span(&args[1], 2) : std::span<const std::string>(), select,
                 [&](const std::vector<Entry>& entries) {
                   reply_entries(ctx.reply, entries, with_scores);
                 });
}

void zrange_command(CommandContext& ctx) {
  zrange_generic(ctx, RangeType::kAuto, Direction::kAuto);
}
void zrevrange_command(CommandContext& ctx) {
  zrange_generic(ctx, RangeType::kRank, Direction::kReverse);
}
void zrangebyscore_command(CommandContext& ctx) {
  zrange_generic(ctx, RangeType::kScore, Direction::kForward);
}
void zrevrangebyscore_command(CommandContext& ctx) {
  zrange_generic(ctx, RangeType::kScore, Direction::kReverse);
}
void zrangebylex_command(CommandContext& ctx) {
  zrange_generic(ctx, RangeType::kLex, Direction::kForward);
}
void zrevrangebylex_command(CommandContext& ctx) {
  zrange_generic(ctx, RangeType::kLex, Direction::kReverse);
}

// ---- ZREMRANGEBYRANK / ZREMRANGEBYSCORE / ZREMRANGEBYLEX ----

enum class RemoveBy { kRank, kScore, kLex };

// The range is parsed before the key is read (its errors come first, as in Redis); the entries
// it selects are those the matching ZRANGE form would return, removed under the key's lock.
void zremrange_generic(CommandContext& ctx, RemoveBy by) {
  std::optional<int64_t> start, stop;
  std::optional<ScoreRange> scores;
  std::optional<LexRange> lex;
  switch (by) {
    case RemoveBy::kRank:
      start = parse_int64(ctx.args[2]);
      stop = parse_int64(ctx.args[3]);
      if (!start || !stop) return ctx.reply.error(kErrNotInteger);
      break;
    case RemoveBy::kScore:
      scores = parse_score_range(ctx.args[2], ctx.args[3]);
      if (!scores) return ctx.reply.error(kErrScoreRange);
      break;
    case RemoveBy::kLex:
      lex = parse_lex_range(ctx.args[2], ctx.args[3]);
      if (!lex) return ctx.reply.error(kErrLexRange);
      break;
  }
  const std::string& key = ctx.args[1];
  run_row_command(ctx, std::span(&ctx.args[1], 1), [&](resp::ReplyWriter& reply) -> Status {
    RowOfType read = read_row_of_type(ctx.keyspace, key, kZSet, reply);
    if (read.replied || !read.status.is_ok()) return read.status;
    if (!read.exists()) {
      reply.integer(0);
      return Status::ok();
    }
    Result<std::vector<Entry>> entries =
        by == RemoveBy::kRank
            ? entries_by_rank(ctx.keyspace, key, read, *start, *stop, /*reverse=*/false)
        : by == RemoveBy::kScore
            ? entries_by_score(ctx.keyspace, key, read, *scores, false, 0, -1)
            : entries_by_lex(ctx.keyspace, key, read, *lex, false, 0, -1);
    if (!entries.is_ok()) return entries.status();
    for (const Entry& entry : *entries) {
      if (Status status = remove_member(ctx.keyspace, key, entry.member);
          !status.is_ok()) {
        return status;
      }
    }
    if (!entries->empty() && entries->size() >= read.row.count) {
      if (Status status = delete_row_if_empty(ctx.keyspace, key); !status.is_ok()) return status;
    }
    reply.integer(static_cast<int64_t>(entries->size()));
    return Status::ok();
  });
}

void zremrangebyrank_command(CommandContext& ctx) { zremrange_generic(ctx, RemoveBy::kRank); }
void zremrangebyscore_command(CommandContext& ctx) { zremrange_generic(ctx, RemoveBy::kScore); }
void zremrangebylex_command(CommandContext& ctx) { zremrange_generic(ctx, RemoveBy::kLex); }

// ---- ZRANK / ZREVRANK ----

void zrank_generic(CommandContext& ctx, bool reverse) {
  std::optional<RowOfType> read = read_zset_or_reply(ctx, ctx.args[1]);
  if (!read) return;
  Result<std::optional<double>> score = score_of(ctx.keyspace, ctx.args[1], *read, ctx.args[2]);
  if (!score.is_ok()) return ctx.reply.error(storage_error_reply(score.status()));
  if (!score->has_value()) return ctx.reply.null();
  // The rank is the number of index entries before the member's own, counted from the bottom:
  // O(rank); a reverse rank counts the entries after it from the top: O(reverse rank).
  const std::string own = storage::score_index_sub_key(**score, ctx.args[2]);
  const uint64_t length = read->row.count;
  Result<std::optional<uint64_t>> counted = ctx.keyspace.field_rank(ctx.args[1], own, length);
  if (!counted.is_ok()) return ctx.reply.error(storage_error_reply(counted.status()));
  if (counted->has_value() && **counted < length) {
    return ctx.reply.integer(static_cast<int64_t>(reverse ? length - 1 - **counted : **counted));
  }
  int64_t rank = 0;
  auto count_to_own = [&](double entry_score, std::string_view member) {
    const std::string sub_key = storage::score_index_sub_key(entry_score, member);
    if (reverse ? sub_key <= own : sub_key >= own) return false;
    ++rank;
    return true;
  };
  Status status = reverse ? for_each_entry_reverse(ctx.keyspace, ctx.args[1], *read,
                                                   std::nullopt, count_to_own)
                          : for_each_entry(ctx.keyspace, ctx.args[1], *read, std::nullopt,
                                           count_to_own);
  if (!status.is_ok()) return ctx.reply.error(storage_error_reply(status));
  ctx.reply.integer(rank);
}

void zrank_command(CommandContext& ctx) { zrank_generic(ctx, false); }
void zrevrank_command(CommandContext& ctx) { zrank_generic(ctx, true); }

// ---- ZPOPMIN / ZPOPMAX ----

void zpop_generic(CommandContext& ctx, bool max) {
  if (ctx.args.size() > 3) return ctx.reply.error(kErrSyntax);
  int64_t count = -1;  // not given: one entry, a flat reply
  if (ctx.args.size() == 3) {
    // getPositiveLongFromObjectOrReply: one message for text and for negative numbers.
    std::optional<int64_t> parsed = parse_int64(ctx.args[2]);
    if (!parsed || *parsed < 0) return ctx.reply.error(kErrNotPositive);
    count = *parsed;
  }
  const bool nested = ctx.reply.protocol() >= 3 && count != -1;
  const std::string& key = ctx.args[1];
  run_row_command(ctx, std::span(&ctx.args[1], 1), [&](resp::ReplyWriter& reply) -> Status {
    RowOfType read = read_row_of_type(ctx.keyspace, key, kZSet, reply);
    if (read.replied || !read.status.is_ok()) return read.status;
    if (!read.exists() || count == 0) {
      reply.array(0);
      return Status::ok();
    }
    const uint64_t wanted = count == -1 ? 1 : static_cast<uint64_t>(count);
    // The lowest entries by rank from the bottom, the highest from the top (entries_by_rank
    // reads a big set by its rank blocks, past the deleted entries a queue leaves behind).
    if (read.row.count == 0) {
      reply.array(0);
      return Status::ok();
    }
    const int64_t last = static_cast<int64_t>(
        std::min<uint64_t>(wanted, read.row.count) - 1);
    Result<std::vector<Entry>> entries = entries_by_rank(ctx.keyspace, key, read, 0, last, max);
    if (!entries.is_ok()) return entries.status();
    const std::vector<Entry>& popped = *entries;
    for (const Entry& entry : popped) {
      if (Status removed = remove_member(ctx.keyspace, key, entry.member);
          !removed.is_ok()) {
        return removed;
      }
    }
    if (popped.size() >= read.row.count) {
      if (Status deleted = delete_row_if_empty(ctx.keyspace, key); !deleted.is_ok()) {
        return deleted;
      }
    }
    reply.array(nested ? popped.size() : popped.size() * 2);
    for (const Entry& entry : popped) {
      if (nested) reply.array(2);
      reply.bulk(entry.member);
      reply.double_value(entry.score);
    }
    return Status::ok();
  });
}

void zpopmin_command(CommandContext& ctx) { zpop_generic(ctx, false); }
void zpopmax_command(CommandContext& ctx) { zpop_generic(ctx, true); }

void zrangestore_command(CommandContext& ctx) {
  zrange_generic(ctx, RangeType::kAuto, Direction::kAuto, /*store=*/true);
}

// ---- ZRANDMEMBER / ZSCAN ----

void write_member_score(resp::ReplyWriter& reply, const Cell& cell) {
  reply.double_value(decode_member_score(cell.value).value_or(0));
}

void zrandmember_command(CommandContext& ctx) {
  random_fields_command(ctx, kZSet, "withscores", write_member_score);
}

void zscan_command(CommandContext& ctx) {
  // Scores are bulk strings in a scan reply, in RESP3 too.
  const FieldValueWriter value = [](resp::ReplyWriter& reply, const Cell& cell) {
    std::string text;
    resp::ReplyWriter resp2(&text, 2);
    resp2.double_value(decode_member_score(cell.value).value_or(0));
    reply.buffer()->append(text);
  };
  scan_row_command(ctx, kZSet, &value);
}

// ---- ZUNION / ZINTER / ZDIFF, their STORE forms and ZINTERCARD ----

enum class AlgebraForm { kReply, kStore, kCardinality };

// zunionInterDiffGenericCommand: [dst] numkeys key [key ...] [WEIGHTS w ...]
// [AGGREGATE SUM|MIN|MAX] [WITHSCORES] (ZINTERCARD: [LIMIT n]). Errors in Redis's order: numkeys,
// then the keys' types (sets count as sorted sets of score 1), then the options.
void zalgebra_generic(CommandContext& ctx, Algebra op, AlgebraForm form) {
  const std::vector<std::string>& args = ctx.args;
  const size_t numkeys_at = form == AlgebraForm::kStore ? 2 : 1;
  std::optional<int64_t> numkeys = parse_int64(args[numkeys_at]);
  if (!numkeys) return ctx.reply.error(kErrNotInteger);
  if (*numkeys < 1) {
    return ctx.reply.error("ERR at least 1 input key is needed for '" + to_lower(args[0]) +
                           "' command");
  }
  if (*numkeys > static_cast<int64_t>(args.size() - numkeys_at - 1)) {
    return ctx.reply.error(kErrSyntax);
  }
  const size_t count = static_cast<size_t>(*numkeys);
  const std::span<const std::string> keys(args.data() + numkeys_at + 1, count);
  // Options, parsed now; an error in them is reported after the keys' types are checked.
  std::vector<double> weights(count, 1.0);
  Aggregate aggregate = Aggregate::kSum;
  bool with_scores = false;
  uint64_t limit = 0;
  std::string option_error;
  for (size_t j = numkeys_at + 1 + count; j < args.size() && option_error.empty();) {
    const size_t remaining = args.size() - j;
    if (op != Algebra::kDiff && form != AlgebraForm::kCardinality && remaining >= count + 1 &&
        equals_ignore_case(args[j], "weights")) {
      ++j;
      for (size_t i = 0; i < count; ++i, ++j) {
        std::optional<double> weight = parse_double(args[j]);
        if (!weight) {
          option_error = "ERR weight value is not a float";
          break;
        }
        weights[i] = *weight;
      }
    } else if (op != Algebra::kDiff && form != AlgebraForm::kCardinality && remaining >= 2 &&
               equals_ignore_case(args[j], "aggregate")) {
      const std::string& name = args[j + 1];
      if (equals_ignore_case(name, "sum")) {
        aggregate = Aggregate::kSum;
      } else if (equals_ignore_case(name, "min")) {
        aggregate = Aggregate::kMin;
      } else if (equals_ignore_case(name, "max")) {
        aggregate = Aggregate::kMax;
      } else {
        option_error = kErrSyntax;
      }
      j += 2;
    } else if (form == AlgebraForm::kReply && equals_ignore_case(args[j], "withscores")) {
      with_scores = true;
      ++j;
    } else if (form == AlgebraForm::kCardinality && remaining >= 2 &&
               equals_ignore_case(args[j], "limit")) {
      std::optional<int64_t> parsed = parse_int64(args[j + 1]);
      if (!parsed || *parsed < 0) {
        option_error = "ERR LIMIT can't be negative";
      } else {
        limit = static_cast<uint64_t>(*parsed);
      }
      j += 2;
    } else {
      option_error = kErrSyntax;
    }
  }
  // The result, sorted by (score, member); nullopt after an error reply.
  auto compute = [&](resp::ReplyWriter& reply) -> Result<std::optional<std::vector<Entry>>> {
    Result<std::optional<std::vector<AlgebraSource>>> sources =
        read_algebra_sources(ctx.keyspace, keys, /*zsets_too=*/true, reply);
    if (!sources.is_ok()) return sources.status();
    if (!sources->has_value()) return std::optional<std::vector<Entry>>();
    if (!option_error.empty()) {
      reply.error(option_error);
      return std::optional<std::vector<Entry>>();
    }
    for (size_t i = 0; i < count; ++i) (**sources)[i].weight = weights[i];
    Result<std::map<std::string, double>> combined =
        combine_rows(ctx.keyspace, std::move(**sources), op, aggregate, limit);
    if (!combined.is_ok()) return combined.status();
    std::vector<Entry> entries;
    entries.reserve(combined->size());
    for (auto& [member, score] : *combined) entries.push_back({score, member});
    std::stable_sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
      return a.score < b.score;  // members of one score stay in member order
    });
    return std::optional(std::move(entries));
  };
  // A store's target and every source: one shard in a cluster (else CROSSSHARD), via the leader.
  std::vector<std::string> locked;
  if (form == AlgebraForm::kStore) {
    locked.push_back(args[1]);
    locked.insert(locked.end(), keys.begin(), keys.end());
  }
  store_or_reply(ctx, locked, compute, [&](const std::vector<Entry>& entries) {
    if (form == AlgebraForm::kCardinality) {
      return ctx.reply.integer(static_cast<int64_t>(entries.size()));
    }
    reply_entries(ctx.reply, entries, with_scores);
  });
}

void zunion_command(CommandContext& ctx) {
  zalgebra_generic(ctx, Algebra::kUnion, AlgebraForm::kReply);
}
void zinter_command(CommandContext& ctx) {
  zalgebra_generic(ctx, Algebra::kInter, AlgebraForm::kReply);
}
void zdiff_command(CommandContext& ctx) {
  zalgebra_generic(ctx, Algebra::kDiff, AlgebraForm::kReply);
}
void zunionstore_command(CommandContext& ctx) {
  zalgebra_generic(ctx, Algebra::kUnion, AlgebraForm::kStore);
}
void zinterstore_command(CommandContext& ctx) {
  zalgebra_generic(ctx, Algebra::kInter, AlgebraForm::kStore);
}
void zdiffstore_command(CommandContext& ctx) {
  zalgebra_generic(ctx, Algebra::kDiff, AlgebraForm::kStore);
}
void zintercard_command(CommandContext& ctx) {
  zalgebra_generic(ctx, Algebra::kInter, AlgebraForm::kCardinality);
}

CommandSpec spec(std::string name, int arity, uint32_t flags, std::string summary,
                 std::string since, std::string complexity, Handler handler) {
  CommandSpec command = make_command_spec("sorted-set", std::move(name), arity, flags,
                                          std::move(summary), std::move(since),
                                          std::move(complexity), std::move(handler));
  command.first_key = 1;
  command.last_key = 1;
  command.key_step = 1;
  return command;
}

}  // namespace

void register_zset_commands(CommandTable& table) {
  const std::string o1 = "O(1)";
  const std::string log_n = "O(log(N)) with N being the number of elements in the sorted set.";
  const std::string range =
      "O(log(N)+M) with N being the number of elements in the sorted set and M the number of "
      "elements returned.";
  table.add(spec("zadd", -4, kWrite | kDenyOom | kFast,
                 "Add one or more members to a sorted set, or update its score if it already "
                 "exists", "1.2.0", "O(log(N)) for each item added, where N is the number of "
                 "elements in the sorted set.", zadd_command));
  table.add(spec("zincrby", 4, kWrite | kDenyOom | kFast,
                 "Increment the score of a member in a sorted set", "1.2.0", log_n,
                 zincrby_command));
  table.add(spec("zrem", -3, kWrite | kFast, "Remove one or more members from a sorted set",
                 "1.2.0", "O(M*log(N)) with N being the number of elements in the sorted set "
                 "and M the number of elements to be removed.", zrem_command));
  table.add(spec("zscore", 3, kReadOnly | kFast,
                 "Get the score associated with the given member in a sorted set", "1.2.0", o1,
                 zscore_command));
  table.add(spec("zmscore", -3, kReadOnly | kFast,
                 "Get the score associated with the given members in a sorted set", "6.2.0",
                 "O(N) where N is the number of members being requested.", zmscore_command));
  table.add(spec("zcard", 2, kReadOnly | kFast, "Get the number of members in a sorted set",
                 "1.2.0", o1, zcard_command));
  table.add(spec("zcount", 4, kReadOnly | kFast,
                 "Count the members in a sorted set with scores within the given values",
                 "2.0.0", log_n, zcount_command));
  table.add(spec("zlexcount", 4, kReadOnly | kFast,
                 "Count the number of members in a sorted set between a given lexicographical "
                 "range", "2.8.9", log_n, zlexcount_command));
  table.add(spec("zrange", -4, kReadOnly, "Return a range of members in a sorted set", "1.2.0",
                 range, zrange_command));
  table.add(spec("zrevrange", -4, kReadOnly,
                 "Return a range of members in a sorted set, by index, with scores ordered from "
                 "high to low", "1.2.0", range, zrevrange_command));
  table.add(spec("zrangebyscore", -4, kReadOnly,
                 "Return a range of members in a sorted set, by score", "1.0.5", range,
                 zrangebyscore_command));
  table.add(spec("zrevrangebyscore", -4, kReadOnly,
                 "Return a range of members in a sorted set, by score, with scores ordered from "
                 "high to low", "2.2.0", range, zrevrangebyscore_command));
  table.add(spec("zrangebylex", -4, kReadOnly,
                 "Return a range of members in a sorted set, by lexicographical range", "2.8.9",
                 range, zrangebylex_command));
  table.add(spec("zrevrangebylex", -4, kReadOnly,
                 "Return a range of members in a sorted set, by lexicographical range, ordered "
                 "from higher to lower strings.", "2.8.9", range, zrevrangebylex_command));
  const std::string removal =
      "O(log(N)+M) with N being the number of elements in the sorted set and M the number of "
      "elements removed by the operation.";
  table.add(spec("zremrangebyrank", 4, kWrite,
                 "Remove all members in a sorted set within the given indexes", "2.0.0", removal,
                 zremrangebyrank_command));
  table.add(spec("zremrangebyscore", 4, kWrite,
                 "Remove all members in a sorted set within the given scores", "1.2.0", removal,
                 zremrangebyscore_command));
  table.add(spec("zremrangebylex", 4, kWrite,
                 "Remove all members in a sorted set between the given lexicographical range",
                 "2.8.9", removal, zremrangebylex_command));
  table.add(spec("zrank", 3, kReadOnly | kFast,
                 "Determine the index of a member in a sorted set", "2.0.0", log_n,
                 zrank_command));
  table.add(spec("zrevrank", 3, kReadOnly | kFast,
                 "Determine the index of a member in a sorted set, with scores ordered from high "
                 "to low", "2.0.0", log_n, zrevrank_command));
  table.add(spec("zpopmin", -2, kWrite | kFast,
                 "Remove and return members with the lowest scores in a sorted set", "5.0.0",
                 "O(log(N)*M) with N being the number of elements in the sorted set, and M "
                 "being the number of elements popped.", zpopmin_command));
  table.add(spec("zpopmax", -2, kWrite | kFast,
                 "Remove and return members with the highest scores in a sorted set", "5.0.0",
                 "O(log(N)*M) with N being the number of elements in the sorted set, and M "
                 "being the number of elements popped.", zpopmax_command));
  {
    CommandSpec zrangestore = spec("zrangestore", -5, kWrite | kDenyOom,
                                   "Store a range of members from sorted set into another key",
                                   "6.2.0", "O(log(N)+M) with N being the number of elements in "
                                   "the sorted set and M the number of elements stored into the "
                                   "destination key.", zrangestore_command);
    zrangestore.last_key = 2;
    table.add(std::move(zrangestore));
  }
  {
    CommandSpec zrandmember = spec("zrandmember", -2, kReadOnly,
                                   "Get one or multiple random elements from a sorted set",
                                   "6.2.0", "O(N) where N is the number of elements returned",
                                   zrandmember_command);
    zrandmember.flags |= kRandom;
    table.add(std::move(zrandmember));
  }
  {
    CommandSpec zscan = spec("zscan", -3, kReadOnly,
                             "Incrementally iterate sorted sets elements and associated scores",
                             "2.8.0", "O(1) for every call. O(N) for a complete iteration, "
                             "including enough command calls for the cursor to return back to "
                             "0. N is the number of elements inside the collection..",
                             zscan_command);
    zscan.flags |= kRandom;
    table.add(std::move(zscan));
  }
  struct AlgebraCommand {
    const char* name;
    bool store;
    const char* summary;
    const char* since;
    Handler handler;
  };
  const AlgebraCommand algebra[] = {
      {"zunion", false, "Add multiple sorted sets", "6.2.0", zunion_command},
      {"zinter", false, "Intersect multiple sorted sets", "6.2.0", zinter_command},
      {"zdiff", false, "Subtract multiple sorted sets", "6.2.0", zdiff_command},
      {"zintercard", false, "Intersect multiple sorted sets and return the cardinality of the "
       "result", "7.0.0", zintercard_command},
      {"zunionstore", true, "Add multiple sorted sets and store the resulting sorted set in a "
       "new key", "2.0.0", zunionstore_command},
      {"zinterstore", true, "Intersect multiple sorted sets and store the resulting sorted set "
       "in a new key", "2.0.0", zinterstore_command},
      {"zdiffstore", true, "Subtract multiple sorted sets and store the resulting sorted set in "
       "a new key", "6.2.0", zdiffstore_command},
  };
  for (const AlgebraCommand& command : algebra) {
    CommandSpec entry = spec(command.name, command.store ? -4 : -3,
                             (command.store ? kWrite | kDenyOom : kReadOnly) | kMovableKeys,
                             command.summary, command.since,
                             "O(N)+O(M*log(M)) with N being the sum of the sizes of the input "
                             "sorted sets, and M being the number of elements in the resulting "
                             "sorted set.", command.handler);
    if (!command.store) {
      entry.first_key = 0;
      entry.last_key = 0;
      entry.key_step = 0;
    }
    entry.numkeys_index = command.store ? 2 : 1;
    if (command.store) entry.key_spec_flags = {"OW", "update"};  // the destination
    table.add(std::move(entry));
  }
}

}  // namespace cairn::commands
