// The set family (SADD, SMEMBERS, set algebra...), with redis-server 7.0 semantics and error
// texts. A set is a row (docs/formats.md "Rows") whose members are fields with empty values, so
// SCARD is O(1) and adding a member never rewrites the others. Writes run inside
// Keyspace::atomically() over every key they touch (a single machine serializes them per key,
// as Redis does); replies are staged and sent only when the keyspace operation succeeded.

#include <algorithm>
#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "commands/command.h"
#include "commands/parse.h"
#include "commands/rows.h"

namespace cairn::commands {
namespace {

using coordinator::Keyspace;
using storage::Cell;
using storage::ValueType;

constexpr ValueType kSet = ValueType::kSet;
constexpr std::string_view kErrNotPositive = "ERR value is out of range, must be positive";
constexpr std::string_view kErrLongMinOutOfRange =
    "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807";

RowOfType read_set(Keyspace& keyspace, const std::string& key, resp::ReplyWriter& reply) {
  return read_row_of_type(keyspace, key, kSet, reply);
}

// For read-only commands: nullopt after replying (storage error or WRONGTYPE).
std::optional<RowOfType> read_set_or_reply(CommandContext& ctx, const std::string& key) {
  RowOfType read = read_set(ctx.keyspace, key, ctx.reply);
  if (read.replied) return std::nullopt;
  if (!read.status.is_ok()) {
    ctx.reply.error(storage_error_reply(read.status));
    return std::nullopt;
  }
  return read;
}

Result<std::vector<std::string>> members_of(Keyspace& keyspace, const std::string& key,
                                            const RowOfType& read) {
  std::vector<std::string> members;
  members.reserve(std::min<uint64_t>(read.row.count, 1 << 16));
  Status status = for_each_row_field(keyspace, key, read, [&](std::string_view member, const Cell&) {
    members.emplace_back(member);
    return true;
  });
  if (!status.is_ok()) return status;
  return members;
}

Result<bool> is_member(Keyspace& keyspace, const std::string& key, const RowOfType& read,
                       std::string_view member) {
  Result<std::optional<Cell>> cell = read_row_field(keyspace, key, read, member);
  if (!cell.is_ok()) return cell.status();
  return cell->has_value();
}

void reply_members(resp::ReplyWriter& reply, const std::vector<std::string>& members) {
  reply.set(members.size());
  for (const std::string& member : members) reply.bulk(member);
}

// ---- SADD / SREM / SISMEMBER / SMISMEMBER / SCARD / SMEMBERS ----

// SADD and SREM only set or delete members: in a cluster they need no leader
// (Keyspace::write_fields_leaderless), the count coming from a read before the write.
void sadd_command(CommandContext& ctx) {
  run_field_command(ctx, ctx.args[1], [&](resp::ReplyWriter& reply) -> Status {
    return set_or_remove_fields(ctx, kSet, 2, 1, /*remove=*/false, reply,
                                [&](int64_t added) { reply.integer(added); });
  });
}

void srem_command(CommandContext& ctx) {
  run_field_command(ctx, ctx.args[1], [&](resp::ReplyWriter& reply) -> Status {
    return set_or_remove_fields(ctx, kSet, 2, 1, /*remove=*/true, reply,
                                [&](int64_t removed) { reply.integer(removed); });
  });
}

void sismember_command(CommandContext& ctx) {
  std::optional<RowOfType> read = read_set_or_reply(ctx, ctx.args[1]);
  if (!read) return;
  Result<bool> present = is_member(ctx.keyspace, ctx.args[1], *read, ctx.args[2]);
  if (!present.is_ok()) return ctx.reply.error(storage_error_reply(present.status()));
  ctx.reply.integer(*present ? 1 : 0);
}

void smismember_command(CommandContext& ctx) {
  std::optional<RowOfType> read = read_set_or_reply(ctx, ctx.args[1]);
  if (!read) return;
  std::vector<int64_t> answers;
  for (size_t i = 2; i < ctx.args.size(); ++i) {
    Result<bool> present = is_member(ctx.keyspace, ctx.args[1], *read, ctx.args[i]);
    if (!present.is_ok()) return ctx.reply.error(storage_error_reply(present.status()));
    answers.push_back(*present ? 1 : 0);
  }
  ctx.reply.array(answers.size());
  for (int64_t answer : answers) ctx.reply.integer(answer);
}

void scard_command(CommandContext& ctx) {
  std::optional<RowOfType> read = read_set_or_reply(ctx, ctx.args[1]);
  if (!read) return;
  ctx.reply.integer(static_cast<int64_t>(read->row.count));
}

void smembers_command(CommandContext& ctx) {
  const bool produced = produce_row_listing(
      ctx, kSet, storage::kFieldNamespace,
      [](resp::ReplyWriter& reply, uint64_t count) { reply.set(count); },
      [](resp::ReplyWriter& reply, std::string_view member, const storage::Cell&) {
        reply.bulk(member);
      });
  if (produced) return;
  std::optional<RowOfType> read = read_set_or_reply(ctx, ctx.args[1]);
  if (!read) return;
  Result<std::vector<std::string>> members = members_of(ctx.keyspace, ctx.args[1], *read);
  if (!members.is_ok()) return ctx.reply.error(storage_error_reply(members.status()));
  reply_members(ctx.reply, *members);
}

// ---- SPOP / SRANDMEMBER ----

void spop_command(CommandContext& ctx) {
  if (ctx.args.size() > 3) return ctx.reply.error(kErrSyntax);
  std::optional<int64_t> count;
  if (ctx.args.size() == 3) {
    count = parse_int64(ctx.args[2]);
    if (!count || *count < 0) return ctx.reply.error(kErrNotPositive);
  }
  const std::string& key = ctx.args[1];
  run_row_command(ctx, std::span(&ctx.args[1], 1), [&](resp::ReplyWriter& reply) -> Status {
    RowOfType read = read_set(ctx.keyspace, key, reply);
    if (read.replied || !read.status.is_ok()) return read.status;
    if (!read.exists() || (count && *count == 0)) {
      if (count) {
        reply.set(0);
      } else {
        reply.null();
      }
      return Status::ok();
    }
    Result<std::vector<std::string>> chosen = random_distinct_fields(
        ctx.keyspace, key, read, count ? static_cast<uint64_t>(*count) : 1);
    if (!chosen.is_ok()) return chosen.status();
    const std::vector<std::string>& popped = *chosen;
    for (const std::string& member : popped) {
      if (Status status = remove_row_field(ctx.keyspace, key, kSet, member); !status.is_ok()) {
        return status;
      }
    }
    if (Status status = delete_row_if_empty(ctx.keyspace, key); !status.is_ok()) return status;
    if (count) {
      reply_members(reply, popped);
    } else if (popped.empty()) {
      reply.null();
    } else {
      reply.bulk(popped[0]);
    }
    return Status::ok();
  });
}

void srandmember_command(CommandContext& ctx) {
  if (ctx.args.size() > 3) return ctx.reply.error(kErrSyntax);
  const std::string& key = ctx.args[1];
  std::optional<int64_t> count;
  if (ctx.args.size() == 3) {
    count = parse_int64(ctx.args[2]);
    if (!count) return ctx.reply.error(kErrNotInteger);
    if (*count == std::numeric_limits<int64_t>::min()) return ctx.reply.error(kErrLongMinOutOfRange);
  }
  std::optional<RowOfType> read = read_set_or_reply(ctx, key);
  if (!read) return;
  if (!read->exists()) {
    if (count) return ctx.reply.array(0);
    return ctx.reply.null();
  }
  if (count && *count == 0) return ctx.reply.array(0);
  if (!count || *count > 0) {
    // Distinct members: found by rank in a big set, never the whole set in memory.
    Result<std::vector<std::string>> chosen = random_distinct_fields(
        ctx.keyspace, key, *read, count ? static_cast<uint64_t>(*count) : 1);
    if (!chosen.is_ok()) return ctx.reply.error(storage_error_reply(chosen.status()));
    if (!count) return chosen->empty() ? ctx.reply.null() : ctx.reply.bulk(chosen->front());
    ctx.reply.array(chosen->size());
    for (const std::string& member : *chosen) ctx.reply.bulk(member);
    return;
  }
  Result<std::vector<std::string>> members = members_of(ctx.keyspace, key, *read);
  if (!members.is_ok()) return ctx.reply.error(storage_error_reply(members.status()));
  if (members->empty()) return count ? ctx.reply.array(0) : ctx.reply.null();
  std::optional<std::vector<size_t>> picks = picks_with_repeats(
      members->size(), -*count, [&](size_t index) -> uint64_t { return (*members)[index].size(); });
  if (!picks) return ctx.reply.error(kErrRandomReplyTooLarge);
  ctx.reply.array(picks->size());
  for (size_t index : *picks) ctx.reply.bulk((*members)[index]);
}

// ---- SMOVE ----

void smove_command(CommandContext& ctx) {
  const std::string& source = ctx.args[1];
  const std::string& target = ctx.args[2];
  const std::string& member = ctx.args[3];
  run_row_command(ctx, std::span(&ctx.args[1], 2), [&](resp::ReplyWriter& reply) -> Status {
    // Redis reads both keys first; a missing source answers 0 before any type check.
    RowOfType from = read_set(ctx.keyspace, source, reply);
    if (!from.status.is_ok()) return from.status;
    if (from.replied) return Status::ok();
    Result<coordinator::RowRead> target_row = ctx.keyspace.read_row(target);
    if (!target_row.is_ok()) return target_row.status();
    if (!from.exists()) {
      reply.integer(0);
      return Status::ok();
    }
    if (target_row->header && target_row->header->type != kSet) {
      reply.error(kErrWrongType);
      return Status::ok();
    }
    Result<bool> present = is_member(ctx.keyspace, source, from, member);
    if (!present.is_ok()) return present.status();
    if (source == target || !*present) {
      reply.integer(*present ? 1 : 0);
      return Status::ok();
    }
    if (Status status = remove_row_field(ctx.keyspace, source, kSet, member); !status.is_ok()) {
      return status;
    }
    if (Status status = delete_row_if_empty(ctx.keyspace, source); !status.is_ok()) return status;
    RowOfType to;
    to.row = std::move(*target_row);
    if (Status status = create_row(ctx.keyspace, target, kSet, to); !status.is_ok()) return status;
    if (Status status = write_row_field(ctx.keyspace, target, kSet, member, "");
        !status.is_ok()) {
      return status;
    }
    reply.integer(1);
    return Status::ok();
  });
}

// ---- SINTER / SUNION / SDIFF and their STORE and CARD forms ----

// The members of the result of `op` over `keys`, sorted (rows.h "Set algebra"). nullopt after
// a WRONGTYPE reply. `limit` (SINTERCARD) stops an intersection once it has that many members.
Result<std::optional<std::set<std::string>>> compute(Keyspace& keyspace,
                                                     std::span<const std::string> keys,
                                                     Algebra op, resp::ReplyWriter& reply,
                                                     uint64_t limit = 0) {
  Result<std::optional<std::vector<AlgebraSource>>> sources =
      read_algebra_sources(keyspace, keys, /*zsets_too=*/false, reply);
  if (!sources.is_ok()) return sources.status();
  if (!sources->has_value()) return std::optional<std::set<std::string>>();
  Result<std::map<std::string, double>> combined =
      combine_rows(keyspace, std::move(**sources), op, Aggregate::kSum, limit);
  if (!combined.is_ok()) return combined.status();
  std::set<std::string> result;
  for (auto& entry : *combined) result.insert(result.end(), entry.first);
  return std::optional(std::move(result));
}

void algebra_command(CommandContext& ctx, Algebra op) {
  const std::span<const std::string> keys(ctx.args.data() + 1, ctx.args.size() - 1);
  std::string staged;
  resp::ReplyWriter writer(&staged, ctx.reply.protocol());
  Result<std::optional<std::set<std::string>>> result = compute(ctx.keyspace, keys, op, writer);
  if (!result.is_ok()) return ctx.reply.error(storage_error_reply(result.status()));
  if (!result->has_value()) {  // WRONGTYPE
    ctx.reply.buffer()->append(staged);
    return;
  }
  ctx.reply.set((*result)->size());
  for (const std::string& member : **result) ctx.reply.bulk(member);
}

void sinter_command(CommandContext& ctx) { algebra_command(ctx, Algebra::kInter); }
void sunion_command(CommandContext& ctx) { algebra_command(ctx, Algebra::kUnion); }
void sdiff_command(CommandContext& ctx) { algebra_command(ctx, Algebra::kDiff); }

void algebra_store_command(CommandContext& ctx, Algebra op) {
  const std::string& target = ctx.args[1];
  const std::span<const std::string> all(ctx.args.data() + 1, ctx.args.size() - 1);
  const std::span<const std::string> sources = all.subspan(1);
  run_row_command(ctx, all, [&](resp::ReplyWriter& reply) -> Status {
    Result<std::optional<std::set<std::string>>> result =
        compute(ctx.keyspace, sources, op, reply);
    if (!result.is_ok()) return result.status();
    if (!result->has_value()) return Status::ok();  // WRONGTYPE replied
    std::vector<std::pair<std::string, std::string>> cells;
    cells.reserve((*result)->size());
    for (const std::string& member : **result) {
      cells.emplace_back(storage::field_sub_key(member), std::string());
    }
    if (Status status = replace_row(ctx.keyspace, target, kSet, cells); !status.is_ok()) {
      return status;
    }
    reply.integer(static_cast<int64_t>((*result)->size()));
    return Status::ok();
  });
}

void sinterstore_command(CommandContext& ctx) { algebra_store_command(ctx, Algebra::kInter); }
void sunionstore_command(CommandContext& ctx) { algebra_store_command(ctx, Algebra::kUnion); }
void sdiffstore_command(CommandContext& ctx) { algebra_store_command(ctx, Algebra::kDiff); }

void sintercard_command(CommandContext& ctx) {
  std::optional<int64_t> numkeys = parse_int64(ctx.args[1]);
  if (!numkeys || *numkeys <= 0) return ctx.reply.error("ERR numkeys should be greater than 0");
  if (static_cast<uint64_t>(*numkeys) > ctx.args.size() - 2) {
    return ctx.reply.error("ERR Number of keys can't be greater than number of args");
  }
  uint64_t limit = 0;
  for (size_t i = 2 + static_cast<size_t>(*numkeys); i < ctx.args.size(); i += 2) {
    if (equals_ignore_case(ctx.args[i], "limit") && i + 1 < ctx.args.size()) {
      std::optional<int64_t> parsed = parse_int64(ctx.args[i + 1]);
      if (!parsed || *parsed < 0) return ctx.reply.error("ERR LIMIT can't be negative");
      limit = static_cast<uint64_t>(*parsed);
    } else {
      return ctx.reply.error(kErrSyntax);
    }
  }
  const std::span<const std::string> keys(ctx.args.data() + 2, static_cast<size_t>(*numkeys));
  std::string staged;
  resp::ReplyWriter writer(&staged, ctx.reply.protocol());
  Result<std::optional<std::set<std::string>>> result =
      compute(ctx.keyspace, keys, Algebra::kInter, writer, limit);
  if (!result.is_ok()) return ctx.reply.error(storage_error_reply(result.status()));
  if (!result->has_value()) {
    ctx.reply.buffer()->append(staged);
    return;
  }
  ctx.reply.integer(static_cast<int64_t>((*result)->size()));
}

// ---- SSCAN ----

void sscan_command(CommandContext& ctx) { scan_row_command(ctx, kSet, nullptr); }

CommandSpec spec(std::string name, int arity, uint32_t flags, int first_key, int last_key,
                 std::string summary, std::string since, std::string complexity,
                 Handler handler) {
  return make_keyed_command_spec("set", std::move(name), arity, flags, first_key, last_key,
                                 std::move(summary), std::move(since), std::move(complexity),
                                 std::move(handler));
}

}  // namespace

void register_set_commands(CommandTable& table) {
  const std::string o1 = "O(1)";
  const std::string on = "O(N) where N is the set cardinality.";
  table.add(spec("sadd", -3, kWrite | kDenyOom | kFast, 1, 1,
                 "Add one or more members to a set", "1.0.0",
                 "O(1) for each element added, so O(N) to add N elements when the command is "
                 "called with multiple arguments.",
                 sadd_command));
  table.add(spec("srem", -3, kWrite | kFast, 1, 1, "Remove one or more members from a set",
                 "1.0.0", "O(N) where N is the number of members to be removed.", srem_command));
  table.add(spec("sismember", 3, kReadOnly | kFast, 1, 1,
                 "Determine if a given value is a member of a set", "1.0.0", o1,
                 sismember_command));
  table.add(spec("smismember", -3, kReadOnly | kFast, 1, 1,
                 "Returns the membership associated with the given elements for a set", "6.2.0",
                 "O(N) where N is the number of elements being checked for membership",
                 smismember_command));
  table.add(spec("scard", 2, kReadOnly | kFast, 1, 1, "Get the number of members in a set",
                 "1.0.0", o1, scard_command));
  table.add(spec("smembers", 2, kReadOnly, 1, 1, "Get all the members in a set", "1.0.0", on,
                 smembers_command));
  {
    CommandSpec spop = spec("spop", -2, kWrite | kFast, 1, 1,
                            "Remove and return one or multiple random members from a set",
                            "1.0.0", "Without the count argument O(1), otherwise O(N) where N "
                            "is the value of the passed count.", spop_command);
    spop.flags |= kRandom;
    table.add(std::move(spop));
  }
  {
    CommandSpec srandmember =
        spec("srandmember", -2, kReadOnly, 1, 1, "Get one or multiple random members from a set",
             "1.0.0", "Without the count argument O(1), otherwise O(N) where N is the absolute "
             "value of the passed count.", srandmember_command);
    srandmember.flags |= kRandom;
    table.add(std::move(srandmember));
  }
  table.add(spec("smove", 4, kWrite | kFast, 1, 2,
                 "Move a member from one set to another", "1.0.0", o1, smove_command));
  table.add(spec("sinter", -2, kReadOnly, 1, -1, "Intersect multiple sets", "1.0.0",
                 "O(N*M) worst case where N is the cardinality of the smallest set and M is the "
                 "number of sets.", sinter_command));
  table.add(spec("sunion", -2, kReadOnly, 1, -1, "Add multiple sets", "1.0.0",
                 "O(N) where N is the total number of elements in all given sets.",
                 sunion_command));
  table.add(spec("sdiff", -2, kReadOnly, 1, -1, "Subtract multiple sets", "1.0.0",
                 "O(N) where N is the total number of elements in all given sets.",
                 sdiff_command));
  table.add(spec("sinterstore", -3, kWrite | kDenyOom, 1, -1,
                 "Intersect multiple sets and store the resulting set in a key", "1.0.0",
                 "O(N*M) worst case where N is the cardinality of the smallest set and M is the "
                 "number of sets.", sinterstore_command));
  table.add(spec("sunionstore", -3, kWrite | kDenyOom, 1, -1,
                 "Add multiple sets and store the resulting set in a key", "1.0.0",
                 "O(N) where N is the total number of elements in all given sets.",
                 sunionstore_command));
  table.add(spec("sdiffstore", -3, kWrite | kDenyOom, 1, -1,
                 "Subtract multiple sets and store the resulting set in a key", "1.0.0",
                 "O(N) where N is the total number of elements in all given sets.",
                 sdiffstore_command));
  {
    CommandSpec sintercard = spec("sintercard", -3, kReadOnly, 0, 0,
                                  "Intersect multiple sets and return the cardinality of the "
                                  "result", "7.0.0",
                                  "O(N*M) worst case where N is the cardinality of the smallest "
                                  "set and M is the number of sets.", sintercard_command);
    sintercard.flags |= kMovableKeys;
    sintercard.numkeys_index = 1;
    table.add(std::move(sintercard));
  }
  {
    CommandSpec sscan = spec("sscan", -3, kReadOnly, 1, 1,
                             "Incrementally iterate Set elements", "2.6.0",
                             "O(1) for every call. O(N) for a complete iteration, including "
                             "enough command calls for the cursor to return back to 0. N is the "
                             "number of elements inside the collection..", sscan_command);
    sscan.flags |= kRandom;
    table.add(std::move(sscan));
  }
}

}  // namespace cairn::commands
