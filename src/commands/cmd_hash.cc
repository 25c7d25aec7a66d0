// The hash family (HSET, HGET and friends), with redis-server 7.0 semantics and error texts.
// A hash is a row (docs/formats.md "Rows"): a header cell at the key and one cell per field, so
// writing a field never rewrites the others. Commands that write run inside
// Keyspace::atomically() (a single machine serializes them per key, as Redis does); replies are
// staged and sent only when the keyspace operation succeeded.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <random>
#include <span>
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

using HashRead = RowOfType;

void run_atomically(CommandContext& ctx, const std::string& key,
                    const std::function<Status(resp::ReplyWriter&)>& fn) {
  run_row_command(ctx, std::span<const std::string>(&key, 1), fn);
}

// `need_count` false: see read_row_of_type.
HashRead read_hash(Keyspace& keyspace, const std::string& key, resp::ReplyWriter& reply,
                   bool need_count = true) {
  return read_row_of_type(keyspace, key, ValueType::kHash, reply, need_count);
}

// For read-only commands: nullopt after replying (storage error or WRONGTYPE).
std::optional<HashRead> read_hash_or_reply(CommandContext& ctx, const std::string& key,
                                           bool need_count = true) {
  HashRead read = read_hash(ctx.keyspace, key, ctx.reply, need_count);
  if (read.replied) return std::nullopt;
  if (!read.status.is_ok()) {
    ctx.reply.error(storage_error_reply(read.status));
    return std::nullopt;
  }
  return read;
}

Status create_hash(Keyspace& keyspace, const std::string& key, HashRead& read) {
  return create_row(keyspace, key, ValueType::kHash, read);
}

Result<std::optional<Cell>> read_field(Keyspace& keyspace, const std::string& key,
                                       const HashRead& read, std::string_view field) {
  return read_row_field(keyspace, key, read, field);
}

// `expire_at_ms`: the field's own expiry to keep (HINCRBY keeps it, as Redis 7.4; HSET drops it).
Status write_field(Keyspace& keyspace, const std::string& key, std::string_view field,
                   std::string value, int64_t expire_at_ms = 0) {
  if (expire_at_ms == 0) {
    return write_row_field(keyspace, key, ValueType::kHash, field, std::move(value));
  }
  const std::pair<std::string, std::string> cell{storage::field_sub_key(field), std::move(value)};
  return keyspace.write_expiring_fields(key, ValueType::kHash, std::span(&cell, 1),
                                        std::span(&expire_at_ms, 1));
}

Status for_each_field(Keyspace& keyspace, const std::string& key, const HashRead& read,
                      const std::function<bool(std::string_view field, const Cell& cell)>& fn) {
  return for_each_row_field(keyspace, key, read, fn);
}

// ---- HSET / HMSET / HSETNX ----

// HSET and HMSET only set fields: in a cluster they need no leader
// (Keyspace::write_fields_leaderless), the new-field count coming from a read before the write.
void hset_generic(CommandContext& ctx, bool reply_ok) {
  if (ctx.args.size() % 2 != 0) {
    ctx.reply.error("ERR wrong number of arguments for '" + to_lower(ctx.args[0]) + "' command");
    return;
  }
  run_field_command(ctx, ctx.args[1], [&](resp::ReplyWriter& reply) -> Status {
    return set_or_remove_fields(ctx, ValueType::kHash, 2, 2, /*remove=*/false, reply,
                                [&](int64_t added) {
                                  if (reply_ok) {
                                    reply.ok();
                                  } else {
                                    reply.integer(added);
                                  }
                                });
  });
}

void hset_command(CommandContext& ctx) { hset_generic(ctx, false); }
void hmset_command(CommandContext& ctx) { hset_generic(ctx, true); }

void hsetnx_command(CommandContext& ctx) {
  const std::string& key = ctx.args[1];
  run_atomically(ctx, key, [&](resp::ReplyWriter& reply) -> Status {
    HashRead read = read_hash(ctx.keyspace, key, reply, /*need_count=*/false);
    if (read.replied || !read.status.is_ok()) return read.status;
    Result<std::optional<Cell>> current = read_field(ctx.keyspace, key, read, ctx.args[2]);
    if (!current.is_ok()) return current.status();
    if (current->has_value()) {
      reply.integer(0);
      return Status::ok();
    }
    if (Status status = create_hash(ctx.keyspace, key, read); !status.is_ok()) return status;
    if (Status status = write_field(ctx.keyspace, key, ctx.args[2], ctx.args[3]);
        !status.is_ok()) {
      return status;
    }
    reply.integer(1);
    return Status::ok();
  });
}

// ---- HGET / HMGET / HEXISTS / HSTRLEN / HLEN ----

void hget_command(CommandContext& ctx) {
  std::optional<HashRead> read = read_hash_or_reply(ctx, ctx.args[1], /*need_count=*/false);
  if (!read) return;
  Result<std::optional<Cell>> cell = read_field(ctx.keyspace, ctx.args[1], *read, ctx.args[2]);
  if (!cell.is_ok()) return ctx.reply.error(storage_error_reply(cell.status()));
  if (!cell->has_value()) return ctx.reply.null();
  ctx.reply.bulk((*cell)->value);
}

void hmget_command(CommandContext& ctx) {
  std::optional<HashRead> read = read_hash_or_reply(ctx, ctx.args[1], /*need_count=*/false);
  if (!read) return;
  std::vector<std::string> sub_keys;
  sub_keys.reserve(ctx.args.size() - 2);
  for (size_t i = 2; i < ctx.args.size(); ++i) sub_keys.push_back(storage::field_sub_key(ctx.args[i]));
  std::vector<std::optional<Cell>> cells(sub_keys.size());
  if (read->exists()) {
    Result<std::vector<std::optional<Cell>>> found =
        ctx.keyspace.read_fields(ctx.args[1], sub_keys, read->hidden());
    if (!found.is_ok()) return ctx.reply.error(storage_error_reply(found.status()));
    cells = std::move(found).value();
  }
  ctx.reply.array(cells.size());
  for (const std::optional<Cell>& cell : cells) {
    if (cell) {
      ctx.reply.bulk(cell->value);
    } else {
      ctx.reply.null();
    }
  }
}

void hexists_command(CommandContext& ctx) {
  std::optional<HashRead> read = read_hash_or_reply(ctx, ctx.args[1], /*need_count=*/false);
  if (!read) return;
  Result<std::optional<Cell>> cell = read_field(ctx.keyspace, ctx.args[1], *read, ctx.args[2]);
  if (!cell.is_ok()) return ctx.reply.error(storage_error_reply(cell.status()));
  ctx.reply.integer(cell->has_value() ? 1 : 0);
}

void hstrlen_command(CommandContext& ctx) {
  std::optional<HashRead> read = read_hash_or_reply(ctx, ctx.args[1], /*need_count=*/false);
  if (!read) return;
  Result<std::optional<Cell>> cell = read_field(ctx.keyspace, ctx.args[1], *read, ctx.args[2]);
  if (!cell.is_ok()) return ctx.reply.error(storage_error_reply(cell.status()));
  ctx.reply.integer(cell->has_value() ? static_cast<int64_t>((*cell)->value.size()) : 0);
}

void hlen_command(CommandContext& ctx) {
  std::optional<HashRead> read = read_hash_or_reply(ctx, ctx.args[1]);
  if (!read) return;
  ctx.reply.integer(static_cast<int64_t>(read->row.count));
}

// ---- HGETALL / HKEYS / HVALS ----

enum class Listing { kFieldsAndValues, kFields, kValues };

void list_hash(CommandContext& ctx, Listing listing) {
  const bool produced = produce_row_listing(
      ctx, ValueType::kHash, storage::kFieldNamespace,
      [listing](resp::ReplyWriter& reply, uint64_t count) {
        if (listing == Listing::kFieldsAndValues) {
          reply.map(count);
        } else {
          reply.array(count);
        }
      },
      [listing](resp::ReplyWriter& reply, std::string_view field, const Cell& cell) {
        if (listing != Listing::kValues) reply.bulk(field);
        if (listing != Listing::kFields) reply.bulk(cell.value);
      });
  if (produced) return;
  std::optional<HashRead> read = read_hash_or_reply(ctx, ctx.args[1]);
  if (!read) return;
  // The elements are staged so the array length is the number actually visited (the count is
  // the same unless the storage changed in between).
  std::string body;
  resp::ReplyWriter writer(&body, ctx.reply.protocol());
  uint64_t fields = 0;
  Status status = for_each_field(ctx.keyspace, ctx.args[1], *read,
                                 [&](std::string_view field, const Cell& cell) {
                                   ++fields;
                                   if (listing != Listing::kValues) writer.bulk(field);
                                   if (listing != Listing::kFields) writer.bulk(cell.value);
                                   return true;
                                 });
  if (!status.is_ok()) return ctx.reply.error(storage_error_reply(status));
  if (listing == Listing::kFieldsAndValues) {
    ctx.reply.map(fields);
  } else {
    ctx.reply.array(fields);
  }
  ctx.reply.buffer()->append(body);
}

void hgetall_command(CommandContext& ctx) { list_hash(ctx, Listing::kFieldsAndValues); }
void hkeys_command(CommandContext& ctx) { list_hash(ctx, Listing::kFields); }
void hvals_command(CommandContext& ctx) { list_hash(ctx, Listing::kValues); }

// ---- HDEL ----

// Only deletes fields: leaderless in a cluster, like HSET.
void hdel_command(CommandContext& ctx) {
  run_field_command(ctx, ctx.args[1], [&](resp::ReplyWriter& reply) -> Status {
    return set_or_remove_fields(ctx, ValueType::kHash, 2, 1, /*remove=*/true, reply,
                                [&](int64_t deleted) { reply.integer(deleted); });
  });
}

// ---- HINCRBY / HINCRBYFLOAT ----

void hincrby_command(CommandContext& ctx) {
  const std::optional<int64_t> increment = parse_int64(ctx.args[3]);
  if (!increment) return ctx.reply.error(kErrNotInteger);
  const std::string& key = ctx.args[1];
  run_atomically(ctx, key, [&](resp::ReplyWriter& reply) -> Status {
    HashRead read = read_hash(ctx.keyspace, key, reply);
    if (read.replied || !read.status.is_ok()) return read.status;
    Result<std::optional<Cell>> current = read_field(ctx.keyspace, key, read, ctx.args[2]);
    if (!current.is_ok()) return current.status();
    int64_t value = 0;
    if (current->has_value()) {
      std::optional<int64_t> parsed = parse_int64((*current)->value);
      if (!parsed) {
        reply.error("ERR hash value is not an integer");
        return Status::ok();
      }
      value = *parsed;
    }
    if ((*increment < 0 && value < 0 && *increment < std::numeric_limits<int64_t>::min() - value) ||
        (*increment > 0 && value > 0 && *increment > std::numeric_limits<int64_t>::max() - value)) {
      reply.error(kErrOverflow);
      return Status::ok();
    }
    value += *increment;
    if (Status status = create_hash(ctx.keyspace, key, read); !status.is_ok()) return status;
    const int64_t expiry = current->has_value() ? (*current)->expire_at_ms : 0;
    if (Status status =
            write_field(ctx.keyspace, key, ctx.args[2], std::to_string(value), expiry);
        !status.is_ok()) {
      return status;
    }
    reply.integer(value);
    return Status::ok();
  });
}

void hincrbyfloat_command(CommandContext& ctx) {
  const std::optional<long double> increment = parse_long_double(ctx.args[3]);
  if (!increment) return ctx.reply.error(kErrNotFloat);
  if (std::isnan(*increment) || std::isinf(*increment)) {
    return ctx.reply.error("ERR value is NaN or Infinity");
  }
  const std::string& key = ctx.args[1];
  run_atomically(ctx, key, [&](resp::ReplyWriter& reply) -> Status {
    HashRead read = read_hash(ctx.keyspace, key, reply);
    if (read.replied || !read.status.is_ok()) return read.status;
    Result<std::optional<Cell>> current = read_field(ctx.keyspace, key, read, ctx.args[2]);
    if (!current.is_ok()) return current.status();
    long double value = 0;
    if (current->has_value()) {
      std::optional<long double> parsed = parse_long_double((*current)->value);
      if (!parsed) {
        reply.error("ERR hash value is not a float");
        return Status::ok();
      }
      value = *parsed;
    }
    value += *increment;
    if (std::isnan(value) || std::isinf(value)) {
      reply.error(kErrNanOrInfinity);
      return Status::ok();
    }
    std::string text = resp::format_double(value);
    if (Status status = create_hash(ctx.keyspace, key, read); !status.is_ok()) return status;
    const int64_t expiry = current->has_value() ? (*current)->expire_at_ms : 0;
    if (Status status = write_field(ctx.keyspace, key, ctx.args[2], text, expiry);
        !status.is_ok()) {
      return status;
    }
    reply.bulk(text);
    return Status::ok();
  });
}

// ---- HRANDFIELD ----

void write_field_value(resp::ReplyWriter& reply, const Cell& cell) { reply.bulk(cell.value); }

void hrandfield_command(CommandContext& ctx) {
  random_fields_command(ctx, ValueType::kHash, "withvalues", write_field_value);
}

// ---- HSCAN ----

void hscan_command(CommandContext& ctx) {
  const FieldValueWriter value = write_field_value;
  scan_row_command(ctx, ValueType::kHash, &value);
}

// ---- Per-field expiry (Redis 7.4): HEXPIRE family, HTTL family, HPERSIST ----
// A field's expiry is its cell's expire_at_ms; the row header is marked (fields_expire) the
// first time a field gets one, so counts skip expired fields (docs/formats.md "Rows").

// The largest expiry Redis accepts for a field (its EB_EXPIRE_TIME_MAX), in Unix ms.
constexpr int64_t kFieldExpireMaxMs = (int64_t{1} << 48) - 1;

// "FIELDS numfields field [field ...]" at args[at]: the fields, or nullopt after an error reply.
std::optional<std::span<const std::string>> parse_fields_argument(
    const std::vector<std::string>& args, size_t at, resp::ReplyWriter& reply) {
  if (at + 1 >= args.size() || !equals_ignore_case(args[at], "fields")) {
    reply.error("ERR Mandatory argument FIELDS is missing or not at the right position");
    return std::nullopt;
  }
  std::optional<int64_t> count = parse_int64(args[at + 1]);
  if (!count || *count < 1) {
    reply.error("ERR Number of fields must be a positive integer");
    return std::nullopt;
  }
  if (static_cast<uint64_t>(*count) != args.size() - at - 2) {
    reply.error("ERR The `numfields` parameter must match the number of arguments");
    return std::nullopt;
  }
  return std::span<const std::string>(args.data() + at + 2, static_cast<size_t>(*count));
}

void reply_no_fields(resp::ReplyWriter& reply, size_t count) {
  reply.array(count);
  for (size_t i = 0; i < count; ++i) reply.integer(-2);
}

// Marks the row header of an existing hash: some field may expire from now on.
Status mark_fields_expire(Keyspace& keyspace, const std::string& key, const HashRead& read) {
  const Cell& header = *read.row.header;
  Result<storage::RowHeader> decoded = storage::decode_row_header(header.value);
  if (!decoded.is_ok()) return decoded.status();
  if (decoded->fields_expire) return Status::ok();
  decoded->fields_expire = true;
  return keyspace.write(key, ValueType::kHash, storage::encode_row_header(*decoded),
                        header.expire_at_ms);
}

// HEXPIRE/HPEXPIRE/HEXPIREAT/HPEXPIREAT key time [NX|XX|GT|LT] FIELDS numfields field ...
void hexpire_generic(CommandContext& ctx, bool seconds, bool absolute) {
  const std::vector<std::string>& args = ctx.args;
  const std::string& key = args[1];
  const std::string name = to_lower(args[0]);
  run_atomically(ctx, key, [&](resp::ReplyWriter& reply) -> Status {
    HashRead read = read_hash(ctx.keyspace, key, reply);
    if (read.replied || !read.status.is_ok()) return read.status;
    std::optional<int64_t> when = parse_int64(args[2]);
    if (!when) {
      reply.error(kErrNotInteger);
      return Status::ok();
    }
    if (*when < 0) {
      reply.error("ERR invalid expire time, must be >= 0");
      return Status::ok();
    }
    const std::string invalid_time = "ERR invalid expire time in '" + name + "' command";
    if (seconds) {
      if (*when > kFieldExpireMaxMs / 1000) {
        reply.error(invalid_time);
        return Status::ok();
      }
      *when *= 1000;
    }
    const int64_t now = ctx.keyspace.now_ms();
    const int64_t base = absolute ? 0 : now;
    if (*when > kFieldExpireMaxMs - base) {
      reply.error(invalid_time);
      return Status::ok();
    }
    const int64_t expire_at = *when + base;
    enum class Condition { kNone, kNx, kXx, kGt, kLt } condition = Condition::kNone;
    size_t fields_at = 3;
    const std::string& option = args[3];
    if (equals_ignore_case(option, "nx")) {
      condition = Condition::kNx;
    } else if (equals_ignore_case(option, "xx")) {
      condition = Condition::kXx;
    } else if (equals_ignore_case(option, "gt")) {
      condition = Condition::kGt;
    } else if (equals_ignore_case(option, "lt")) {
      condition = Condition::kLt;
    }
    if (condition != Condition::kNone) ++fields_at;
    std::optional<std::span<const std::string>> fields =
        parse_fields_argument(args, fields_at, reply);
    if (!fields) return Status::ok();
    if (!read.exists()) {
      reply_no_fields(reply, fields->size());
      return Status::ok();
    }
    std::vector<int64_t> answers;
    bool marked = false, removed = false;
    for (const std::string& field : *fields) {
      Result<std::optional<Cell>> cell = read_row_field(ctx.keyspace, key, read, field);
      if (!cell.is_ok()) return cell.status();
      if (!cell->has_value()) {
        answers.push_back(-2);
        continue;
      }
      const int64_t previous = (*cell)->expire_at_ms;  // 0: none
      const bool unmet =
          previous == 0
              ? (condition == Condition::kXx || condition == Condition::kGt)
              : (condition == Condition::kNx ||
                 (condition == Condition::kGt && previous >= expire_at) ||
                 (condition == Condition::kLt && previous <= expire_at));
      if (unmet) {
        answers.push_back(0);
        continue;
      }
      if (expire_at <= now) {  // in the past: the field is deleted
        if (Status status = remove_row_field(ctx.keyspace, key, ValueType::kHash, field);
            !status.is_ok()) {
          return status;
        }
        removed = true;
        answers.push_back(2);
        continue;
      }
      if (!marked) {
        if (Status status = mark_fields_expire(ctx.keyspace, key, read); !status.is_ok()) {
          return status;
        }
        marked = true;
      }
      if (Status status =
              write_field(ctx.keyspace, key, field, std::move((*cell)->value), expire_at);
          !status.is_ok()) {
        return status;
      }
      answers.push_back(1);
    }
    if (removed) {
      if (Status status = delete_row_if_empty(ctx.keyspace, key); !status.is_ok()) return status;
    }
    reply.array(answers.size());
    for (int64_t answer : answers) reply.integer(answer);
    return Status::ok();
  });
}

void hexpire_command(CommandContext& ctx) { hexpire_generic(ctx, true, false); }
void hpexpire_command(CommandContext& ctx) { hexpire_generic(ctx, false, false); }
void hexpireat_command(CommandContext& ctx) { hexpire_generic(ctx, true, true); }
void hpexpireat_command(CommandContext& ctx) { hexpire_generic(ctx, false, true); }

// HTTL/HPTTL/HEXPIRETIME/HPEXPIRETIME key FIELDS numfields field ...: per field -2 (no such
// field), -1 (no expiry) or the time left / the expiry.
void httl_generic(CommandContext& ctx, bool seconds, bool absolute) {
  std::optional<HashRead> read = read_hash_or_reply(ctx, ctx.args[1]);
  if (!read) return;
  std::optional<std::span<const std::string>> fields =
      parse_fields_argument(ctx.args, 2, ctx.reply);
  if (!fields) return;
  if (!read->exists()) return reply_no_fields(ctx.reply, fields->size());
  const int64_t now = ctx.keyspace.now_ms();
  const int64_t base = absolute ? 0 : now;
  std::vector<int64_t> answers;
  for (const std::string& field : *fields) {
    Result<std::optional<Cell>> cell = read_row_field(ctx.keyspace, ctx.args[1], *read, field);
    if (!cell.is_ok()) return ctx.reply.error(storage_error_reply(cell.status()));
    if (!cell->has_value()) {
      answers.push_back(-2);
    } else if ((*cell)->expire_at_ms == 0) {
      answers.push_back(-1);
    } else {
      const int64_t at = (*cell)->expire_at_ms;
      answers.push_back(seconds ? (at + 999 - base) / 1000 : at - base);
    }
  }
  ctx.reply.array(answers.size());
  for (int64_t answer : answers) ctx.reply.integer(answer);
}

void httl_command(CommandContext& ctx) { httl_generic(ctx, true, false); }
void hpttl_command(CommandContext& ctx) { httl_generic(ctx, false, false); }
void hexpiretime_command(CommandContext& ctx) { httl_generic(ctx, true, true); }
void hpexpiretime_command(CommandContext& ctx) { httl_generic(ctx, false, true); }

// HPERSIST key FIELDS numfields field ...: per field -2 (no such field), -1 (no expiry), 1.
void hpersist_command(CommandContext& ctx) {
  const std::string& key = ctx.args[1];
  run_atomically(ctx, key, [&](resp::ReplyWriter& reply) -> Status {
    HashRead read = read_hash(ctx.keyspace, key, reply);
    if (read.replied || !read.status.is_ok()) return read.status;
    std::optional<std::span<const std::string>> fields =
        parse_fields_argument(ctx.args, 2, reply);
    if (!fields) return Status::ok();
    if (!read.exists()) {
      reply_no_fields(reply, fields->size());
      return Status::ok();
    }
    std::vector<int64_t> answers;
    for (const std::string& field : *fields) {
      Result<std::optional<Cell>> cell = read_row_field(ctx.keyspace, key, read, field);
      if (!cell.is_ok()) return cell.status();
      if (!cell->has_value()) {
        answers.push_back(-2);
      } else if ((*cell)->expire_at_ms == 0) {
        answers.push_back(-1);
      } else {
        if (Status status = write_field(ctx.keyspace, key, field,
                                               std::move((*cell)->value), 0);
            !status.is_ok()) {
          return status;
        }
        answers.push_back(1);
      }
    }
    reply.array(answers.size());
    for (int64_t answer : answers) reply.integer(answer);
    return Status::ok();
  });
}

CommandSpec spec(std::string name, int arity, uint32_t flags, std::string summary,
                 std::string since, std::string complexity, Handler handler,
                 std::vector<std::string> key_spec_flags) {
  CommandSpec command = make_command_spec("hash", std::move(name), arity, flags, std::move(summary),
                                          std::move(since), std::move(complexity),
                                          std::move(handler));
  command.first_key = 1;
  command.last_key = 1;
  command.key_step = 1;
  command.key_spec_flags = std::move(key_spec_flags);
  return command;
}

}  // namespace

void register_hash_commands(CommandTable& table) {
  const std::string o1 = "O(1)";
  const std::string on = "O(N) where N is the size of the hash.";
  const std::vector<std::string> rw_update = {"RW", "update"};
  const std::vector<std::string> ro_access = {"RO", "access"};
  table.add(spec("hset", -4, kWrite | kDenyOom | kFast, "Set the string value of a hash field",
                 "2.0.0", "O(1) for each field/value pair added.", hset_command, rw_update));
  table.add(spec("hmset", -4, kWrite | kDenyOom | kFast, "Set multiple hash fields to multiple values",
                 "2.0.0", "O(N) where N is the number of fields being set.", hmset_command,
                 rw_update));
  table.add(spec("hsetnx", 4, kWrite | kDenyOom | kFast,
                 "Set the value of a hash field, only if the field does not exist", "2.0.0", o1,
                 hsetnx_command, {"RW", "insert"}));
  table.add(spec("hget", 3, kReadOnly | kFast, "Get the value of a hash field", "2.0.0", o1,
                 hget_command, ro_access));
  table.add(spec("hmget", -3, kReadOnly | kFast, "Get the values of all the given hash fields",
                 "2.0.0", "O(N) where N is the number of fields being requested.", hmget_command,
                 ro_access));
  table.add(spec("hexists", 3, kReadOnly | kFast, "Determine if a hash field exists", "2.0.0", o1,
                 hexists_command, {"RO"}));
  table.add(spec("hstrlen", 3, kReadOnly | kFast, "Get the length of the value of a hash field",
                 "3.2.0", o1, hstrlen_command, {"RO"}));
  table.add(spec("hlen", 2, kReadOnly | kFast, "Get the number of fields in a hash", "2.0.0", o1,
                 hlen_command, {"RO"}));
  table.add(spec("hgetall", 2, kReadOnly, "Get all the fields and values in a hash", "2.0.0", on,
                 hgetall_command, ro_access));
  table.add(spec("hkeys", 2, kReadOnly, "Get all the fields in a hash", "2.0.0", on, hkeys_command,
                 {"RO"}));
  table.add(spec("hvals", 2, kReadOnly, "Get all the values in a hash", "2.0.0", on, hvals_command,
                 ro_access));
  table.add(spec("hdel", -3, kWrite | kFast, "Delete one or more hash fields", "2.0.0",
                 "O(N) where N is the number of fields to be removed.", hdel_command,
                 {"RW", "delete"}));
  table.add(spec("hincrby", 4, kWrite | kDenyOom | kFast,
                 "Increment the integer value of a hash field by the given number", "2.0.0", o1,
                 hincrby_command, {"RW", "access", "update"}));
  table.add(spec("hincrbyfloat", 4, kWrite | kDenyOom | kFast,
                 "Increment the float value of a hash field by the given amount", "2.6.0", o1,
                 hincrbyfloat_command, {"RW", "access", "update"}));
  {
    CommandSpec hrandfield =
        spec("hrandfield", -2, kReadOnly, "Get one or multiple random fields from a hash",
             "6.2.0", "O(N) where N is the number of fields returned", hrandfield_command,
             ro_access);
    hrandfield.flags |= kRandom;
    table.add(std::move(hrandfield));
  }
  {
    CommandSpec hscan = spec("hscan", -3, kReadOnly, "Incrementally iterate hash fields and "
                             "associated values", "2.8.0",
                             "O(1) for every call. O(N) for a complete iteration, including "
                             "enough command calls for the cursor to return back to 0. N is the "
                             "number of elements inside the collection.",
                             hscan_command, ro_access);
    hscan.flags |= kRandom;
    table.add(std::move(hscan));
  }
  const std::string fields_n = "O(N) where N is the number of specified fields";
  struct FieldExpiryCommand {
    const char* name;
    int arity;
    uint32_t flags;
    const char* summary;
    Handler handler;
  };
  const FieldExpiryCommand field_expiry[] = {
      {"hexpire", -6, kWrite | kDenyOom | kFast, "Set expiry for hash field using relative time "
       "to expire (seconds)", hexpire_command},
      {"hpexpire", -6, kWrite | kDenyOom | kFast, "Set expiry for hash field using relative "
       "time to expire (milliseconds)", hpexpire_command},
      {"hexpireat", -6, kWrite | kDenyOom | kFast, "Set expiry for hash field using an "
       "absolute Unix timestamp (seconds)", hexpireat_command},
      {"hpexpireat", -6, kWrite | kDenyOom | kFast, "Set expiry for hash field using an "
       "absolute Unix timestamp (milliseconds)", hpexpireat_command},
      {"httl", -5, kReadOnly | kFast | kRandom, "Returns the TTL in seconds of a hash field.",
       httl_command},
      {"hpttl", -5, kReadOnly | kFast | kRandom,
       "Returns the TTL in milliseconds of a hash field.", hpttl_command},
      {"hexpiretime", -5, kReadOnly | kFast | kRandom,
       "Returns the expiration time of a hash field as a Unix timestamp, in seconds.",
       hexpiretime_command},
      {"hpexpiretime", -5, kReadOnly | kFast | kRandom,
       "Returns the expiration time of a hash field as a Unix timestamp, in msec.",
       hpexpiretime_command},
      {"hpersist", -5, kWrite | kFast, "Removes the expiration time for each specified field",
       hpersist_command},
  };
  for (const FieldExpiryCommand& command : field_expiry) {
    table.add(spec(command.name, command.arity, command.flags, command.summary, "7.4.0",
                   fields_n, command.handler,
                   (command.flags & kWrite) ? rw_update : ro_access));
  }
}

}  // namespace cairn::commands
