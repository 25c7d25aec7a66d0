// The generic key commands (DEL, EXISTS, EXPIRE family, SCAN, RENAME...) and the keyspace-wide
// server commands (DBSIZE, FLUSHALL, FLUSHDB), with redis-server 7.0 semantics and error texts.
// Commands that read before they write (TTL changes, RENAME, DEL's count) run inside
// Keyspace::atomically(); a TTL change rewrites the cell with the same value and the new expiry.

#include <algorithm>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "commands/command.h"
#include "commands/glob.h"
#include "commands/parse.h"
#include "commands/rows.h"

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
    case ValueType::kList:
      return "list";
    case ValueType::kStream:
      return "stream";
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
  // The copy keeps the fields' own expiries, and the header's mark that they have some.
  Result<storage::RowHeader> source_header = storage::decode_row_header(header.value);
  const bool fields_expire = source_header.is_ok() && source_header->fields_expire;
  if (Status status = keyspace.write(
          to, header.type,
          storage::encode_row_header({target->delete_through_for_new_header, fields_expire}),
          header.expire_at_ms);
      !status.is_ok()) {
    return status;
  }
  std::vector<std::pair<std::string, std::string>> batch;
  std::vector<int64_t> expiries;
  Status written = Status::ok();
  auto flush = [&] {
    if (batch.empty() || !written.is_ok()) return;
    written = keyspace.write_expiring_fields(to, header.type, batch, expiries);
    batch.clear();
    expiries.clear();
  };
  Status scanned = keyspace.scan_fields(from, {}, source->hidden_through,
                                        [&](std::string_view sub_key, const Cell& field) {
                                          batch.emplace_back(std::string(sub_key), field.value);
                                          expiries.push_back(field.expire_at_ms);
                                          if (batch.size() >= kFieldsPerWrite) flush();
                                          return written.is_ok();
                                        });
  flush();
  if (!scanned.is_ok()) return scanned;
  return written;
}

// Writes `cell`, the live value of `from`, at `to`, replacing what `to` held: a row field by
// field, a string as it is; the TTL goes with it (RENAME, COPY).
Status copy_value(coordinator::Keyspace& keyspace, const std::string& from, const std::string& to,
                  Cell& cell) {
  if (storage::is_row_type(cell.type)) return copy_row(keyspace, from, to, cell);
  return keyspace.write(to, cell.type, std::move(cell.value), cell.expire_at_ms);
}

// Whether `key` exists; a target that does answers 0 (RENAMENX, COPY without REPLACE).
Result<bool> exists(coordinator::Keyspace& keyspace, const std::string& key) {
  Result<std::optional<Cell>> cell = keyspace.read(key);
  if (!cell.is_ok()) return cell.status();
  return cell->has_value();
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
      Result<bool> taken = exists(ctx.keyspace, to);
      if (!taken.is_ok()) return taken.status();
      if (*taken) {
        reply.integer(0);
        return Status::ok();
      }
    }
    if (Status status = copy_value(ctx.keyspace, from, to, **source); !status.is_ok()) {
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

// ---- COPY ----

// COPY source destination [DB 0] [REPLACE]: the value and its TTL (a row field by field).
void copy_command(CommandContext& ctx) {
  const std::string& from = ctx.args[1];
  const std::string& to = ctx.args[2];
  bool replace = false;
  for (size_t j = 3; j < ctx.args.size(); ++j) {
    if (equals_ignore_case(ctx.args[j], "replace")) {
      replace = true;
    } else if (equals_ignore_case(ctx.args[j], "db") && j + 1 < ctx.args.size()) {
      std::optional<int64_t> db = parse_int64(ctx.args[j + 1]);
      if (!db) return ctx.reply.error(kErrNotInteger);
      if (*db < std::numeric_limits<int32_t>::min() || *db > std::numeric_limits<int32_t>::max()) {
        return ctx.reply.error(
            "ERR value is out of range, value must between -2147483648 and 2147483647");
      }
      if (*db != 0) return ctx.reply.error("ERR DB index is out of range");  // one database
      ++j;
    } else {
      return ctx.reply.error(kErrSyntax);
    }
  }
  if (from == to) return ctx.reply.error("ERR source and destination objects are the same");
  run_atomically(ctx, std::span<const std::string>(ctx.args.data() + 1, 2),
                 [&](resp::ReplyWriter& reply) -> Status {
                   Result<std::optional<Cell>> source = ctx.keyspace.read(from);
                   if (!source.is_ok()) return source.status();
                   if (!source->has_value()) {
                     reply.integer(0);
                     return Status::ok();
                   }
                   if (!replace) {
                     Result<bool> taken = exists(ctx.keyspace, to);
                     if (!taken.is_ok()) return taken.status();
                     if (*taken) {
                       reply.integer(0);
                       return Status::ok();
                     }
                   }
                   if (Status status = copy_value(ctx.keyspace, from, to, **source);
                       !status.is_ok()) {
                     return status;
                   }
                   reply.integer(1);
                   return Status::ok();
                 });
}

// ---- OBJECT ----

// A CONFIG parameter as a number (the default if it is not set or not a number).
int64_t config_number(ServerControl& server, std::string_view name, int64_t fallback) {
  for (const auto& [found, value] : server.config_get(name)) {
    if (found == name) return parse_int64(value).value_or(fallback);
  }
  return fallback;
}

std::string config_text(ServerControl& server, std::string_view name) {
  for (const auto& [found, value] : server.config_get(name)) {
    if (found == name) return value;
  }
  return "";
}

// Redis's string2ll: the text of a 64-bit integer written the canonical way.
bool canonical_integer(std::string_view text) {
  std::optional<int64_t> value = parse_int64(text);
  return value && text.size() <= 20 && std::to_string(*value) == text;
}

// The encoding redis-server would report for a value of this type and content (sizes against
// the *-max-listpack-* / set-max-intset-entries settings). Redis never converts a big
// collection back after it shrinks; this answers from the current content.
Result<std::string> encoding_of(CommandContext& ctx, const std::string& key, const Cell& cell) {
  if (cell.type == ValueType::kString) {
    if (canonical_integer(cell.value)) return std::string("int");
    return std::string(cell.value.size() <= 44 ? "embstr" : "raw");
  }
  // redis-server 7.0 keeps every list in a quicklist (7.2 added small listpack lists).
  if (cell.type == ValueType::kList) return std::string("quicklist");
  if (cell.type == ValueType::kStream) return std::string("stream");
  Result<coordinator::RowRead> row = ctx.keyspace.read_row(key);
  if (!row.is_ok()) return row.status();
  RowOfType read;
  read.row = std::move(*row);
  const std::string_view kind = cell.type == ValueType::kHash ? "hash" : "zset";
  int64_t entries_max = 0, value_max = 0;
  if (cell.type == ValueType::kSet) {
    entries_max = config_number(ctx.server, "set-max-intset-entries", 512);
  } else {
    entries_max =
        config_number(ctx.server, std::string(kind) + "-max-listpack-entries", 128);
    value_max = config_number(ctx.server, std::string(kind) + "-max-listpack-value", 64);
  }
  const char* small = cell.type == ValueType::kSet ? "intset" : "listpack";
  const char* big = cell.type == ValueType::kSet    ? "hashtable"
                    : cell.type == ValueType::kHash ? "hashtable"
                                                    : "skiplist";
  if (read.row.count > static_cast<uint64_t>(std::max<int64_t>(entries_max, 0))) {
    return std::string(big);
  }
  bool fits = true;
  Status status = for_each_row_field(ctx.keyspace, key, read, [&](std::string_view field,
                                                                  const Cell& field_cell) {
    if (cell.type == ValueType::kSet) {
      fits = canonical_integer(field);
    } else {
      fits = static_cast<int64_t>(field.size()) <= value_max &&
             (cell.type != ValueType::kHash ||
              static_cast<int64_t>(field_cell.value.size()) <= value_max);
    }
    return fits;
  });
  if (!status.is_ok()) return status;
  return std::string(fits ? small : big);
}

// OBJECT ENCODING|FREQ|IDLETIME|REFCOUNT key: nil for a missing key, as Redis.
void object_generic(CommandContext& ctx, std::string_view what) {
  const std::string& key = ctx.args[2];
  Result<std::optional<Cell>> cell = ctx.keyspace.read(key);
  if (!cell.is_ok()) return reply_storage_error(ctx.reply, cell.status());
  if (!cell->has_value()) return ctx.reply.null();
  const std::string policy = config_text(ctx.server, "maxmemory-policy");
  const bool lfu = policy.find("lfu") != std::string::npos;
  if (what == "encoding") {
    Result<std::string> encoding = encoding_of(ctx, key, **cell);
    if (!encoding.is_ok()) return reply_storage_error(ctx.reply, encoding.status());
    return ctx.reply.bulk(*encoding);
  }
  if (what == "freq") {
    if (!lfu) {
      return ctx.reply.error(
          "ERR An LFU maxmemory policy is not selected, access frequency not tracked. Please "
          "note that when switching between policies at runtime LRU and LFU data will take some "
          "time to adjust.");
    }
    // Access frequency is not tracked: Redis's counter of a key not read since it was written.
    return ctx.reply.integer(5);
  }
  if (what == "idletime") {
    if (lfu) {
      return ctx.reply.error(
          "ERR An LFU maxmemory policy is selected, idle time not tracked. Please note that "
          "when switching between policies at runtime LRU and LFU data will take some time to "
          "adjust.");
    }
    return ctx.reply.integer(0);  // access time is not tracked
  }
  // refcount: Redis shares the objects of the integers 0..9999 (unless an LRU/LFU policy with
  // a maxmemory makes every value its own object).
  const Cell& value = **cell;
  const bool evicting = policy.find("lru") != std::string::npos || lfu;
  if (value.type == ValueType::kString && canonical_integer(value.value) &&
      !(evicting && config_number(ctx.server, "maxmemory", 0) != 0)) {
    const int64_t number = *parse_int64(value.value);
    if (number >= 0 && number < 10000) return ctx.reply.integer(2147483647);
  }
  ctx.reply.integer(1);
}

void object_encoding_command(CommandContext& ctx) { object_generic(ctx, "encoding"); }
void object_freq_command(CommandContext& ctx) { object_generic(ctx, "freq"); }
void object_idletime_command(CommandContext& ctx) { object_generic(ctx, "idletime"); }
void object_refcount_command(CommandContext& ctx) { object_generic(ctx, "refcount"); }

void object_help_command(CommandContext& ctx) {
  write_help(ctx.reply, "OBJECT",
             {"ENCODING <key>",
              "    Return the kind of internal representation used in order to store the value",
              "    associated with a <key>.",
              "FREQ <key>",
              "    Return the access frequency index of the <key>. The returned integer is",
              "    proportional to the logarithm of the recent access frequency of the key.",
              "IDLETIME <key>",
              "    Return the idle time of the <key>, that is the approximated number of",
              "    seconds elapsed since the last access to the key.",
              "REFCOUNT <key>",
              "    Return the number of references of the value associated with the specified",
              "    <key>."});
}

CommandSpec object_container() {
  CommandSpec object = make_command_spec("generic", "object", -2, 0,
                                         "A container for object introspection commands",
                                         "2.2.3", "Depends on subcommand.", nullptr);
  struct Sub {
    const char* name;
    const char* summary;
    Handler handler;
  };
  const Sub subs[] = {
      {"object|encoding", "Inspect the internal encoding of a Redis object",
       object_encoding_command},
      {"object|freq", "Get the logarithmic access frequency counter of a Redis object",
       object_freq_command},
      {"object|idletime", "Get the time since a Redis object was last accessed",
       object_idletime_command},
      {"object|refcount", "Get the number of references to the value of the key",
       object_refcount_command},
  };
  for (const Sub& sub : subs) {
    CommandSpec command = make_command_spec("generic", sub.name, 3, kReadOnly, sub.summary,
                                            "2.2.3", "O(1)", sub.handler);
    command.first_key = 2;
    command.last_key = 2;
    command.key_step = 1;
    command.tips = {"nondeterministic_output"};
    object.subcommands.push_back(std::move(command));
  }
  object.subcommands.push_back(make_command_spec(
      "generic", "object|help", 2, kLoading | kStale,
      "Show helpful text about the different subcommands", "6.2.0", "O(1)", object_help_command));
  return object;
}

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
      {"copy",
       -3,
       kWrite | kDenyOom,
       1,
       2,
       1,
       "generic",
       "Copy a key",
       "6.2.0",
       "O(N) worst case for collections, where N is the number of nested items. O(1) for string "
       "values.",
       copy_command,
       {},
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
  table.add(object_container());
}

}  // namespace cairn::commands
