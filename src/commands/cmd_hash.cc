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

Status write_field(Keyspace& keyspace, const std::string& key, std::string_view field,
                   std::string value) {
  return write_row_field(keyspace, key, ValueType::kHash, field, std::move(value));
}

Status for_each_field(Keyspace& keyspace, const std::string& key, const HashRead& read,
                      const std::function<bool(std::string_view field, const Cell& cell)>& fn) {
  return for_each_row_field(keyspace, key, read, fn);
}

// ---- HSET / HMSET / HSETNX ----

void hset_generic(CommandContext& ctx, bool reply_ok) {
  if (ctx.args.size() % 2 != 0) {
    ctx.reply.error("ERR wrong number of arguments for '" + to_lower(ctx.args[0]) + "' command");
    return;
  }
  const std::string& key = ctx.args[1];
  run_atomically(ctx, key, [&](resp::ReplyWriter& reply) -> Status {
    HashRead read = read_hash(ctx.keyspace, key, reply, /*need_count=*/false);
    if (read.replied || !read.status.is_ok()) return read.status;
    const bool existed = read.exists();
    if (Status status = create_hash(ctx.keyspace, key, read); !status.is_ok()) return status;
    int64_t added = 0;
    for (size_t i = 2; i + 1 < ctx.args.size(); i += 2) {
      if (existed || i > 2) {
        Result<std::optional<Cell>> current = read_field(ctx.keyspace, key, read, ctx.args[i]);
        if (!current.is_ok()) return current.status();
        if (!current->has_value()) ++added;
      } else {
        ++added;
      }
      if (Status status = write_field(ctx.keyspace, key, ctx.args[i], ctx.args[i + 1]);
          !status.is_ok()) {
        return status;
      }
    }
    if (reply_ok) {
      reply.ok();
    } else {
      reply.integer(added);
    }
    return Status::ok();
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

void hdel_command(CommandContext& ctx) {
  const std::string& key = ctx.args[1];
  run_atomically(ctx, key, [&](resp::ReplyWriter& reply) -> Status {
    HashRead read = read_hash(ctx.keyspace, key, reply);
    if (read.replied || !read.status.is_ok()) return read.status;
    if (!read.exists()) {
      reply.integer(0);
      return Status::ok();
    }
    int64_t deleted = 0;
    for (size_t i = 2; i < ctx.args.size(); ++i) {
      Result<std::optional<Cell>> current = read_field(ctx.keyspace, key, read, ctx.args[i]);
      if (!current.is_ok()) return current.status();
      if (!current->has_value()) continue;  // absent, or named twice and deleted already
      if (Status status = remove_row_field(ctx.keyspace, key, ValueType::kHash, ctx.args[i]);
          !status.is_ok()) {
        return status;
      }
      ++deleted;
    }
    if (deleted > 0 && static_cast<uint64_t>(deleted) >= read.row.count) {
      // The last field went: Redis deletes the key (and its TTL).
      if (Status status = delete_row_if_empty(ctx.keyspace, key); !status.is_ok()) return status;
    }
    reply.integer(deleted);
    return Status::ok();
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
    if (Status status = write_field(ctx.keyspace, key, ctx.args[2], std::to_string(value));
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
    if (Status status = write_field(ctx.keyspace, key, ctx.args[2], text); !status.is_ok()) {
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
}

}  // namespace cairn::commands
