// The generic key commands (DEL, EXISTS, EXPIRE family, SCAN, RENAME...) and the keyspace-wide
// server commands (DBSIZE, FLUSHALL, FLUSHDB), with redis-server 7.0 semantics and error texts.
// Commands that read before they write (TTL changes, RENAME, DEL's count) run inside
// Keyspace::atomically(); a TTL change rewrites the cell with the same value and the new expiry.

#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "commands/command.h"
#include "commands/glob.h"
#include "commands/parse.h"

namespace cairn::commands {
namespace {

using storage::Cell;
using storage::ValueType;

// KEYS walks the keyspace in pages of this many keys, so no single scan call holds much.
constexpr size_t kKeysPageCount = 1000;

void reply_storage_error(resp::ReplyWriter& reply, const Status& status) {
  reply.error(storage_error_reply(status));
}

// Runs `fn` under the locks of `keys`. `fn` writes its reply to a staging writer; the staged bytes
// reach the client only if `fn` and the keyspace succeeded, otherwise one error reply does.
void run_atomically(CommandContext& ctx, std::span<const std::string> keys,
                    const std::function<Status(resp::ReplyWriter&)>& fn) {
  std::string staged;
  resp::ReplyWriter staged_reply(&staged, ctx.reply.protocol());
  Status status = ctx.keyspace.atomically(keys, [&] { return fn(staged_reply); });
  if (!status.is_ok()) {
    reply_storage_error(ctx.reply, status);
    return;
  }
  ctx.reply.buffer()->append(staged);
}

std::string_view type_name(ValueType type) {
  switch (type) {
    case ValueType::kString:
      return "string";
    case ValueType::kHash:
      return "hash";
    case ValueType::kSet:
      return "set";
    case ValueType::kZSet:
      return "zset";
  }
  return "unknown";
}

// ---- DEL / UNLINK / EXISTS / TYPE ----

void del_command(CommandContext& ctx) {
  const std::span<const std::string> keys(ctx.args.data() + 1, ctx.args.size() - 1);
  Result<int64_t> removed = ctx.keyspace.remove_many(keys);
  if (!removed.is_ok()) {
    reply_storage_error(ctx.reply, removed.status());
    return;
  }
  ctx.reply.integer(*removed);
}

void exists_command(CommandContext& ctx) {
  // One read_many, so a cluster keyspace reads every key in parallel.
  const std::span<const std::string> keys(ctx.args.data() + 1, ctx.args.size() - 1);
  Result<std::vector<std::optional<Cell>>> reads = ctx.keyspace.read_many(keys);
  if (!reads.is_ok()) {
    reply_storage_error(ctx.reply, reads.status());
    return;
  }
  int64_t found = 0;
  // Repeated keys count once per mention, as in Redis.
  for (const std::optional<Cell>& read : *reads) {
    if (read.has_value()) ++found;
  }
  ctx.reply.integer(found);
}

void type_command(CommandContext& ctx) {
  Result<std::optional<Cell>> read = ctx.keyspace.read(ctx.args[1]);
  if (!read.is_ok()) {
    reply_storage_error(ctx.reply, read.status());
    return;
  }
  ctx.reply.simple(read->has_value() ? type_name((*read)->type) : "none");
}

// ---- EXPIRE family ----

enum ExpireFlag : uint32_t {
  kExpireNx = 1u << 0,
  kExpireXx = 1u << 1,
  kExpireGt = 1u << 2,
  kExpireLt = 1u << 3,
};

// Parses [NX|XX|GT|LT]... after the time argument; nullopt after writing the error reply.
std::optional<uint32_t> parse_expire_options(CommandContext& ctx) {
  uint32_t flags = 0;
  for (size_t i = 3; i < ctx.args.size(); ++i) {
    const std::string& option = ctx.args[i];
    if (equals_ignore_case(option, "nx")) {
      flags |= kExpireNx;
    } else if (equals_ignore_case(option, "xx")) {
      flags |= kExpireXx;
    } else if (equals_ignore_case(option, "gt")) {
      flags |= kExpireGt;
    } else if (equals_ignore_case(option, "lt")) {
      flags |= kExpireLt;
    } else {
      ctx.reply.error("ERR Unsupported option " + option);
      return std::nullopt;
    }
  }
  if ((flags & kExpireNx) && (flags & (kExpireXx | kExpireGt | kExpireLt))) {
    ctx.reply.error("ERR NX and XX, GT or LT options at the same time are not compatible");
    return std::nullopt;
  }
  if ((flags & kExpireGt) && (flags & kExpireLt)) {
    ctx.reply.error("ERR GT and LT options at the same time are not compatible");
    return std::nullopt;
  }
  return flags;
}

// Whether the NX/XX/GT/LT conditions allow replacing expiry `current` (0 = none) with `when`.
// As in Redis, "no expiry" counts as an infinite TTL for GT and LT.
bool expire_conditions_hold(uint32_t flags, int64_t current, int64_t when) {
  const bool has_ttl = current != 0;
  if ((flags & kExpireNx) && has_ttl) return false;
  if ((flags & kExpireXx) && !has_ttl) return false;
  if ((flags & kExpireGt) && (!has_ttl || when <= current)) return false;
  if ((flags & kExpireLt) && has_ttl && when >= current) return false;
  return true;
}

// EXPIRE / PEXPIRE (basetime = now) and EXPIREAT / PEXPIREAT (basetime = 0). A time at or before
// now deletes the key.
void expire_generic(CommandContext& ctx, bool relative, bool seconds) {
  std::optional<uint32_t> flags = parse_expire_options(ctx);
  if (!flags) return;
  std::optional<int64_t> parsed = parse_int64(ctx.args[2]);
  if (!parsed) {
    ctx.reply.error(kErrNotInteger);
    return;
  }
  int64_t when = *parsed;
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
  constexpr int64_t kMin = std::numeric_limits<int64_t>::min();
  if (seconds) {
    if (when > kMax / 1000 || when < kMin / 1000) {
      ctx.reply.error(invalid_expire_time_error(ctx.args[0]));
      return;
    }
    when *= 1000;
  }
  const int64_t now = ctx.keyspace.now_ms();
  const int64_t basetime = relative ? now : 0;
  if (when > kMax - basetime) {
    ctx.reply.error(invalid_expire_time_error(ctx.args[0]));
    return;
  }
  when += basetime;
  const std::string& key = ctx.args[1];
  run_atomically(
      ctx, std::span<const std::string>(&key, 1), [&](resp::ReplyWriter& reply) -> Status {
        Result<std::optional<Cell>> read = ctx.keyspace.read(key);
        if (!read.is_ok()) return read.status();
        if (!read->has_value() || !expire_conditions_hold(*flags, (*read)->expire_at_ms, when)) {
          reply.integer(0);
          return Status::ok();
        }
        Cell& cell = **read;
        Status status = when <= ctx.keyspace.now_ms()
                            ? ctx.keyspace.remove(key)
                            : ctx.keyspace.write(key, cell.type, std::move(cell.value), when);
        if (!status.is_ok()) return status;
        reply.integer(1);
        return Status::ok();
      });
}

void expire_command(CommandContext& ctx) { expire_generic(ctx, true, true); }
void pexpire_command(CommandContext& ctx) { expire_generic(ctx, true, false); }
void expireat_command(CommandContext& ctx) { expire_generic(ctx, false, true); }
void pexpireat_command(CommandContext& ctx) { expire_generic(ctx, false, false); }

// TTL / PTTL (remaining time) and EXPIRETIME / PEXPIRETIME (absolute time): -2 for a missing key,
// -1 for a key without expiry; seconds are rounded to the nearest, as Redis does.
void ttl_generic(CommandContext& ctx, bool milliseconds, bool absolute) {
  Result<std::optional<Cell>> read = ctx.keyspace.read(ctx.args[1]);
  if (!read.is_ok()) {
    reply_storage_error(ctx.reply, read.status());
    return;
  }
  if (!read->has_value()) {
    ctx.reply.integer(-2);
    return;
  }
  const int64_t expire_at = (*read)->expire_at_ms;
  if (expire_at == 0) {
    ctx.reply.integer(-1);
    return;
  }
  int64_t ttl = absolute ? expire_at : expire_at - ctx.keyspace.now_ms();
  if (ttl < 0) ttl = 0;
  ctx.reply.integer(milliseconds ? ttl : (ttl + 500) / 1000);
}

void ttl_command(CommandContext& ctx) { ttl_generic(ctx, false, false); }
void pttl_command(CommandContext& ctx) { ttl_generic(ctx, true, false); }
void expiretime_command(CommandContext& ctx) { ttl_generic(ctx, false, true); }
void pexpiretime_command(CommandContext& ctx) { ttl_generic(ctx, true, true); }

void persist_command(CommandContext& ctx) {
  const std::string& key = ctx.args[1];
  run_atomically(ctx, std::span<const std::string>(&key, 1),
                 [&](resp::ReplyWriter& reply) -> Status {
                   Result<std::optional<Cell>> read = ctx.keyspace.read(key);
                   if (!read.is_ok()) return read.status();
                   if (!read->has_value() || (*read)->expire_at_ms == 0) {
                     reply.integer(0);
                     return Status::ok();
                   }
                   Cell& cell = **read;
                   Status status = ctx.keyspace.write(key, cell.type, std::move(cell.value), 0);
                   if (!status.is_ok()) return status;
                   reply.integer(1);
                   return Status::ok();
                 });
}

// ---- KEYS / SCAN / RANDOMKEY ----

void keys_command(CommandContext& ctx) {
  const std::string& pattern = ctx.args[1];
  // "*" matches everything, the empty key included (stringmatch alone would not match it).
  const bool match_all = pattern == "*";
  coordinator::ScanRequest request;
  request.count = kKeysPageCount;
  if (!match_all) {
    request.filter = [&pattern](std::string_view key, const Cell&) {
      return glob_match(pattern, key);
    };
  }
  std::vector<std::string> keys;
  // Each page ends at a larger token than it started from, so this loop ends after at most one
  // pass over the ring.
  do {
    Result<coordinator::ScanPage> page = ctx.keyspace.scan(request);
    if (!page.is_ok()) {
      reply_storage_error(ctx.reply, page.status());
      return;
    }
    for (std::string& key : page->keys) keys.push_back(std::move(key));
    request.cursor = page->next_cursor;
  } while (request.cursor != 0);
  ctx.reply.array(keys.size());
  for (const std::string& key : keys) ctx.reply.bulk(key);
}

void scan_command(CommandContext& ctx) {
  std::optional<uint64_t> cursor = parse_scan_cursor(ctx.args[1]);
  if (!cursor) {
    ctx.reply.error(kErrInvalidCursor);
    return;
  }
  int64_t count = 10;
  const std::string* pattern = nullptr;
  const std::string* type = nullptr;
  for (size_t i = 2; i < ctx.args.size(); i += 2) {
    const std::string& option = ctx.args[i];
    const bool has_value = i + 1 < ctx.args.size();
    if (equals_ignore_case(option, "count") && has_value) {
      std::optional<int64_t> parsed = parse_int64(ctx.args[i + 1]);
      if (!parsed) {
        ctx.reply.error(kErrNotInteger);
        return;
      }
      if (*parsed < 1) {
        ctx.reply.error(kErrSyntax);
        return;
      }
      count = *parsed;
    } else if (equals_ignore_case(option, "match") && has_value) {
      pattern = &ctx.args[i + 1];
    } else if (equals_ignore_case(option, "type") && has_value) {
      type = &ctx.args[i + 1];
    } else {
      ctx.reply.error(kErrSyntax);
      return;
    }
  }
  if (pattern && *pattern == "*") pattern = nullptr;
  coordinator::ScanRequest request;
  request.cursor = *cursor;
  // The keyspace bounds the page further; COUNT is only a hint.
  request.count = static_cast<size_t>(count);
  if (pattern || type) {
    request.filter = [pattern, type](std::string_view key, const Cell& cell) {
      if (pattern && !glob_match(*pattern, key)) return false;
      // An unknown type name matches nothing, as in Redis 7.0.
      if (type && !equals_ignore_case(*type, type_name(cell.type))) return false;
      return true;
    };
  }
  Result<coordinator::ScanPage> page = ctx.keyspace.scan(request);
  if (!page.is_ok()) {
    reply_storage_error(ctx.reply, page.status());
    return;
  }
  ctx.reply.array(2);
  ctx.reply.bulk(std::to_string(page->next_cursor));
  ctx.reply.array(page->keys.size());
  for (const std::string& key : page->keys) ctx.reply.bulk(key);
}

void randomkey_command(CommandContext& ctx) {
  Result<std::optional<std::string>> key = ctx.keyspace.random_key();
  if (!key.is_ok()) {
    reply_storage_error(ctx.reply, key.status());
    return;
  }
  if (!key->has_value()) {
    ctx.reply.null();
    return;
  }
  ctx.reply.bulk(**key);
}

// ---- RENAME / RENAMENX ----

// Moves the value and its TTL to the new name, replacing what was there (RENAME) or not
// (RENAMENX replies 0).
// Copies the row `from` (whose live header is `header`) to `to`, replacing whatever `to` held:
// a tombstone first hides every field `to` had, then a new header and a copy of each field.
// O(fields); runs under the locks of both keys.
Status copy_row(coordinator::Keyspace& keyspace, const std::string& from, const std::string& to,
                const Cell& header) {
  constexpr size_t kFieldsPerWrite = 1024;
  Result<coordinator::RowRead> source = keyspace.read_row(from);
  if (!source.is_ok()) return source.status();
  if (Status status = keyspace.remove(to); !status.is_ok()) return status;
  Result<coordinator::RowRead> target = keyspace.read_row(to);
  if (!target.is_ok()) return target.status();
  if (Status status = keyspace.write(
          to, header.type, storage::encode_row_header({target->delete_through_for_new_header}),
          header.expire_at_ms);
      !status.is_ok()) {
    return status;
  }
  std::vector<std::pair<std::string, std::string>> batch;
  Status written = Status::ok();
  auto flush = [&] {
    if (batch.empty() || !written.is_ok()) return;
    written = keyspace.write_fields(to, header.type, batch);
    batch.clear();
  };
  Status scanned = keyspace.scan_fields(from, {}, source->hidden_through,
                                        [&](std::string_view sub_key, const Cell& field) {
                                          batch.emplace_back(std::string(sub_key), field.value);
                                          if (batch.size() >= kFieldsPerWrite) flush();
                                          return written.is_ok();
                                        });
  flush();
  if (!scanned.is_ok()) return scanned;
  return written;
}

void rename_generic(CommandContext& ctx, bool only_if_absent) {
  const std::string& from = ctx.args[1];
  const std::string& to = ctx.args[2];
  const std::span<const std::string> keys(ctx.args.data() + 1, 2);
  run_atomically(ctx, keys, [&](resp::ReplyWriter& reply) -> Status {
    Result<std::optional<Cell>> source = ctx.keyspace.read(from);
    if (!source.is_ok()) return source.status();
    if (!source->has_value()) {
      reply.error(kErrNoSuchKey);
      return Status::ok();
    }
    if (from == to) {
      if (only_if_absent) {
        reply.integer(0);
      } else {
        reply.ok();
      }
      return Status::ok();
    }
    if (only_if_absent) {
      Result<std::optional<Cell>> target = ctx.keyspace.read(to);
      if (!target.is_ok()) return target.status();
      if (target->has_value()) {
        reply.integer(0);
        return Status::ok();
      }
    }
    Cell& cell = **source;
    if (storage::is_row_type(cell.type)) {
      if (Status status = copy_row(ctx.keyspace, from, to, cell); !status.is_ok()) return status;
    } else if (Status status =
                   ctx.keyspace.write(to, cell.type, std::move(cell.value), cell.expire_at_ms);
               !status.is_ok()) {
      return status;
    }
    if (Status status = ctx.keyspace.remove(from); !status.is_ok()) return status;
    if (only_if_absent) {
      reply.integer(1);
    } else {
      reply.ok();
    }
    return Status::ok();
  });
}

void rename_command(CommandContext& ctx) { rename_generic(ctx, false); }
void renamenx_command(CommandContext& ctx) { rename_generic(ctx, true); }

// ---- DBSIZE / FLUSHALL / FLUSHDB ----

void dbsize_command(CommandContext& ctx) {
  Result<uint64_t> count = ctx.keyspace.count();
  if (!count.is_ok()) {
    reply_storage_error(ctx.reply, count.status());
    return;
  }
  ctx.reply.integer(static_cast<int64_t>(*count));
}

// FLUSHALL / FLUSHDB [ASYNC|SYNC]: both modes clear synchronously (a range delete is already
// cheap), but the option is validated as Redis does.
void flush_command(CommandContext& ctx) {
  if (ctx.args.size() > 2 || (ctx.args.size() == 2 && !equals_ignore_case(ctx.args[1], "sync") &&
                              !equals_ignore_case(ctx.args[1], "async"))) {
    ctx.reply.error(kErrSyntax);
    return;
  }
  if (Status status = ctx.keyspace.clear(); !status.is_ok()) {
    reply_storage_error(ctx.reply, status);
    return;
  }
  ctx.reply.ok();
}

// ---- registration ----

struct SpecFacts {
  const char* name;
  int arity;
  uint32_t flags;
  int first_key;
  int last_key;
  int key_step;
  const char* group;
  const char* summary;
  const char* since;
  const char* complexity;
  Handler handler;
  std::vector<std::string> key_spec_flags;
  std::vector<std::string> tips;
  std::vector<std::string> acl_categories;
};

CommandSpec make_spec(SpecFacts facts) {
  CommandSpec command =
      make_command_spec(facts.group, facts.name, facts.arity, facts.flags, facts.summary,
                        facts.since, facts.complexity, std::move(facts.handler));
  command.first_key = facts.first_key;
  command.last_key = facts.last_key;
  command.key_step = facts.key_step;
  command.key_spec_flags = std::move(facts.key_spec_flags);
  command.tips = std::move(facts.tips);
  command.acl_categories = std::move(facts.acl_categories);
  return command;
}

}  // namespace

void register_key_commands(CommandTable& table) {
  const char* o1 = "O(1)";
  const char* expire_ms_summary = "Set a key's time to live in milliseconds";
  const std::vector<std::string> multi_sum = {"request_policy:multi_shard",
                                              "response_policy:agg_sum"};
  const std::vector<std::string> all_succeeded = {"request_policy:all_shards",
                                                  "response_policy:all_succeeded"};
  const std::vector<std::string> rw_update = {"RW", "update"};
  std::vector<SpecFacts> facts = {
      {"del",
       -2,
       kWrite,
       1,
       -1,
       1,
       "generic",
       "Delete a key",
       "1.0.0",
       "O(N) where N is the number of keys that will be removed. When a key to remove holds a "
       "value other than a string, the individual complexity for this key is O(M) where M is the "
       "number of elements in the list, set, sorted set or hash. Removing a single key that holds "
       "a string value is O(1).",
       del_command,
       {"RM", "delete"},
       multi_sum,
       {}},
      {"unlink",
       -2,
       kWrite | kFast,
       1,
       -1,
       1,
       "generic",
       "Delete a key asynchronously in another thread. Otherwise it is just as DEL, but non "
       "blocking.",
       "4.0.0",
       "O(1) for each key removed regardless of its size. Then the command does O(N) work in a "
       "different thread in order to reclaim memory, where N is the number of allocations the "
       "deleted objects where composed of.",
       del_command,
       {"RM", "delete"},
       multi_sum,
       {}},
      {"exists",
       -2,
       kReadOnly | kFast,
       1,
       -1,
       1,
       "generic",
       "Determine if a key exists",
       "1.0.0",
       "O(N) where N is the number of keys to check.",
       exists_command,
       {"RO"},
       multi_sum,
       {}},
      {"type",
       2,
       kReadOnly | kFast,
       1,
       1,
       1,
       "generic",
       "Determine the type stored at key",
       "1.0.0",
       o1,
       type_command,
       {"RO"},
       {},
       {}},
      {"expire",
       -3,
       kWrite | kFast,
       1,
       1,
       1,
       "generic",
       "Set a key's time to live in seconds",
       "1.0.0",
       o1,
       expire_command,
       rw_update,
       {},
       {}},
      {"pexpire",
       -3,
       kWrite | kFast,
       1,
       1,
       1,
       "generic",
       expire_ms_summary,
       "2.6.0",
       o1,
       pexpire_command,
       rw_update,
       {},
       {}},
      {"expireat",
       -3,
       kWrite | kFast,
       1,
       1,
       1,
       "generic",
       "Set the expiration for a key as a UNIX timestamp",
       "1.2.0",
       o1,
       expireat_command,
       rw_update,
       {},
       {}},
      {"pexpireat",
       -3,
       kWrite | kFast,
       1,
       1,
       1,
       "generic",
       "Set the expiration for a key as a UNIX timestamp specified in milliseconds",
       "2.6.0",
       o1,
       pexpireat_command,
       rw_update,
       {},
       {}},
      {"expiretime",
       2,
       kReadOnly | kFast,
       1,
       1,
       1,
       "generic",
       "Get the expiration Unix timestamp for a key",
       "7.0.0",
       o1,
       expiretime_command,
       {},
       {},
       {}},
      {"pexpiretime",
       2,
       kReadOnly | kFast,
       1,
       1,
       1,
       "generic",
       "Get the expiration Unix timestamp for a key in milliseconds",
       "7.0.0",
       o1,
       pexpiretime_command,
       {},
       {},
       {}},
      {"ttl",
       2,
       kReadOnly | kFast | kRandom,
       1,
       1,
       1,
       "generic",
       "Get the time to live for a key in seconds",
       "1.0.0",
       o1,
       ttl_command,
       {},
       {"nondeterministic_output"},
       {}},
      {"pttl",
       2,
       kReadOnly | kFast | kRandom,
       1,
       1,
       1,
       "generic",
       "Get the time to live for a key in milliseconds",
       "2.6.0",
       o1,
       pttl_command,
       {},
       {"nondeterministic_output"},
       {}},
      {"persist",
       2,
       kWrite | kFast,
       1,
       1,
       1,
       "generic",
       "Remove the expiration from a key",
       "2.2.0",
       o1,
       persist_command,
       rw_update,
       {},
       {}},
      {"keys",
       2,
       kReadOnly,
       0,
       0,
       0,
       "generic",
       "Find all keys matching the given pattern",
       "1.0.0",
       "O(N) with N being the number of keys in the database, under the assumption that the key "
       "names in the database and the given pattern have limited length.",
       keys_command,
       {},
       {"request_policy:all_shards", "nondeterministic_output_order"},
       {"dangerous"}},
      {"scan",
       -2,
       kReadOnly | kRandom,
       0,
       0,
       0,
       "generic",
       "Incrementally iterate the keys space",
       "2.8.0",
       "O(1) for every call. O(N) for a complete iteration, including enough command calls for "
       "the cursor to return back to 0. N is the number of elements inside the collection.",
       scan_command,
       {},
       {"nondeterministic_output", "request_policy:special"},
       {}},
      {"randomkey",
       1,
       kReadOnly | kRandom,
       0,
       0,
       0,
       "generic",
       "Return a random key from the keyspace",
       "1.0.0",
       o1,
       randomkey_command,
       {},
       {"request_policy:all_shards", "nondeterministic_output"},
       {}},
      {"rename",
       3,
       kWrite,
       1,
       2,
       1,
       "generic",
       "Rename a key",
       "1.0.0",
       o1,
       rename_command,
       {"RW", "access", "delete"},
       {},
       {}},
      {"renamenx",
       3,
       kWrite | kFast,
       1,
       2,
       1,
       "generic",
       "Rename a key, only if the new key does not exist",
       "1.0.0",
       o1,
       renamenx_command,
       {"RW", "access", "delete"},
       {},
       {}},
      {"dbsize",
       1,
       kReadOnly | kFast,
       0,
       0,
       0,
       "server",
       "Return the number of keys in the selected database",
       "1.0.0",
       o1,
       dbsize_command,
       {},
       {"request_policy:all_shards", "response_policy:agg_sum"},
       {"keyspace"}},
      {"flushall",
       -1,
       kWrite,
       0,
       0,
       0,
       "server",
       "Remove all keys from all databases",
       "1.0.0",
       "O(N) where N is the total number of keys in all databases",
       flush_command,
       {},
       all_succeeded,
       {"keyspace", "dangerous"}},
      {"flushdb",
       -1,
       kWrite,
       0,
       0,
       0,
       "server",
       "Remove all keys from the current database",
       "1.0.0",
       "O(N) where N is the number of keys in the selected database",
       flush_command,
       {},
       all_succeeded,
       {"keyspace", "dangerous"}},
  };
  for (SpecFacts& command : facts) table.add(make_spec(std::move(command)));
}

}  // namespace cairn::commands
