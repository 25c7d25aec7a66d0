// The string family (GET, SET and friends, counters, ranges), with redis-server 7.0 semantics and
// error texts. Read-modify-write commands run inside Keyspace::atomically(), so they are atomic
// among themselves as in Redis (docs/cluster.md). Replies are staged and committed only when the
// keyspace operation succeeded, so a storage error never leaves half a reply on the wire.

#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "commands/command.h"
#include "commands/parse.h"

namespace cairn::commands {
namespace {

using coordinator::Keyspace;
using storage::Cell;
using storage::ValueType;

// Runs `fn` under the locks of `keys`. `fn` writes its reply to a staging writer; the staged bytes
// reach the client only if `fn` and the keyspace succeeded, otherwise one error reply does.
void run_atomically(CommandContext& ctx, std::span<const std::string> keys,
                    const std::function<Status(resp::ReplyWriter&)>& fn) {
  std::string staged;
  resp::ReplyWriter staged_reply(&staged, ctx.reply.protocol());
  Status status = ctx.keyspace.atomically(keys, [&] { return fn(staged_reply); });
  if (!status.is_ok()) {
    ctx.reply.error(storage_error_reply(status));
    return;
  }
  ctx.reply.buffer()->append(staged);
}

void run_atomically(CommandContext& ctx, const std::string& key,
                    const std::function<Status(resp::ReplyWriter&)>& fn) {
  run_atomically(ctx, std::span<const std::string>(&key, 1), fn);
}

// Reads `key` for a string command. On a storage error or a non-string value, writes the error
// reply to `reply` and returns nullopt; else returns the live cell, if any.
struct StringRead {
  bool failed = false;
  Status status;             // non-ok: a storage error (the caller returns it)
  std::optional<Cell> cell;  // the live string cell, if the key exists
};

StringRead read_string(Keyspace& keyspace, const std::string& key, resp::ReplyWriter& reply) {
  StringRead result;
  Result<std::optional<Cell>> read = keyspace.read(key);
  if (!read.is_ok()) {
    result.failed = true;
    result.status = read.status();
    return result;
  }
  if (read->has_value() && (*read)->type != ValueType::kString) {
    reply.error(kErrWrongType);
    result.failed = true;
    return result;
  }
  result.cell = std::move(*read);
  return result;
}

// Like read_string, outside any lock, for read-only commands: storage errors are replied too.
std::optional<std::optional<Cell>> read_string_or_reply(CommandContext& ctx,
                                                        const std::string& key) {
  StringRead read = read_string(ctx.keyspace, key, ctx.reply);
  if (!read.failed) return std::move(read.cell);
  if (!read.status.is_ok()) ctx.reply.error(storage_error_reply(read.status));
  return std::nullopt;
}

// ---- SET / GETEX option parsing (Redis's parseExtendedStringArgumentsOrReply) ----

enum ExtendedFlag : uint32_t {
  kSetNx = 1u << 0,
  kSetXx = 1u << 1,
  kSetGet = 1u << 2,
  kKeepTtl = 1u << 3,
  kPersist = 1u << 4,
  kEx = 1u << 5,
  kPx = 1u << 6,
  kExAt = 1u << 7,
  kPxAt = 1u << 8,
};
constexpr uint32_t kAnyExpire = kEx | kPx | kExAt | kPxAt;

enum class ExtendedCommand { kSet, kGetEx };

struct ExtendedOptions {
  uint32_t flags = 0;
  const std::string* expire = nullptr;  // the EX/PX/EXAT/PXAT argument
};

// nullopt: a syntax error. A repeated option is accepted (the last value wins), conflicting ones
// are not, exactly as redis-server 7.0 decides.
std::optional<ExtendedOptions> parse_extended(const std::vector<std::string>& args, size_t first,
                                              ExtendedCommand command) {
  ExtendedOptions options;
  const bool is_set = command == ExtendedCommand::kSet;
  for (size_t i = first; i < args.size(); ++i) {
    const std::string& option = args[i];
    const bool has_next = i + 1 < args.size();
    uint32_t& flags = options.flags;
    auto expire_option = [&](uint32_t flag) {
      flags |= flag;
      options.expire = &args[i + 1];
      ++i;
    };
    if (equals_ignore_case(option, "nx") && !(flags & kSetXx) && is_set) {
      flags |= kSetNx;
    } else if (equals_ignore_case(option, "xx") && !(flags & kSetNx) && is_set) {
      flags |= kSetXx;
    } else if (equals_ignore_case(option, "get") && is_set) {
      flags |= kSetGet;
    } else if (equals_ignore_case(option, "keepttl") && !(flags & (kPersist | kAnyExpire)) &&
               is_set) {
      flags |= kKeepTtl;
    } else if (equals_ignore_case(option, "persist") && !is_set &&
               !(flags & (kKeepTtl | kAnyExpire))) {
      flags |= kPersist;
    } else if (equals_ignore_case(option, "ex") &&
               !(flags & (kKeepTtl | kPersist | kExAt | kPx | kPxAt)) && has_next) {
      expire_option(kEx);
    } else if (equals_ignore_case(option, "px") &&
               !(flags & (kKeepTtl | kPersist | kEx | kExAt | kPxAt)) && has_next) {
      expire_option(kPx);
    } else if (equals_ignore_case(option, "exat") &&
               !(flags & (kKeepTtl | kPersist | kEx | kPx | kPxAt)) && has_next) {
      expire_option(kExAt);
    } else if (equals_ignore_case(option, "pxat") &&
               !(flags & (kKeepTtl | kPersist | kEx | kExAt | kPx)) && has_next) {
      expire_option(kPxAt);
    } else {
      return std::nullopt;
    }
  }
  return options;
}

// The absolute expiry (Unix ms) of an EX/PX/EXAT/PXAT argument, or nullopt after writing the error
// reply (Redis's getExpireMillisecondsOrReply: the value must be positive and must not overflow).
std::optional<int64_t> expire_at_or_reply(CommandContext& ctx, resp::ReplyWriter& reply,
                                          const std::string& text, uint32_t flags) {
  std::optional<int64_t> value = parse_int64(text);
  if (!value) {
    reply.error(kErrNotInteger);
    return std::nullopt;
  }
  const bool seconds = (flags & (kEx | kExAt)) != 0;
  int64_t ms = *value;
  if (ms <= 0 || (seconds && ms > std::numeric_limits<int64_t>::max() / 1000)) {
    reply.error(invalid_expire_time_error(ctx.args[0]));
    return std::nullopt;
  }
  if (seconds) ms *= 1000;
  if (flags & (kEx | kPx)) {
    const int64_t now = ctx.keyspace.now_ms();
    if (ms > std::numeric_limits<int64_t>::max() - now) {
      reply.error(invalid_expire_time_error(ctx.args[0]));
      return std::nullopt;
    }
    ms += now;
  }
  return ms;
}

std::optional<int64_t> expire_at_or_reply(CommandContext& ctx, const std::string& text,
                                          uint32_t flags) {
  return expire_at_or_reply(ctx, ctx.reply, text, flags);
}

// ---- GET family ----

void get_command(CommandContext& ctx) {
  auto cell = read_string_or_reply(ctx, ctx.args[1]);
  if (!cell) return;
  if (!cell->has_value()) {
    ctx.reply.null();
    return;
  }
  ctx.reply.bulk((*cell)->value);
}

// SET and the commands defined through it (SETNX, SETEX, PSETEX). `expire_at` is the absolute
// expiry (0 = none). Replies OK / null, or with GET the old value; `nx_reply_integer` makes SETNX
// reply 1/0.
void set_generic(CommandContext& ctx, const std::string& key, const std::string& value,
                 uint32_t flags, int64_t expire_at, bool nx_reply_integer) {
  if (!(flags & (kSetGet | kSetNx | kSetXx | kKeepTtl))) {
    // A plain SET does not depend on the stored value: it is ordered against other writes by
    // last-write-wins (docs/cluster.md), so it takes no key lock and never waits for one.
    if (Status status = ctx.keyspace.write(key, ValueType::kString, value, expire_at);
        !status.is_ok()) {
      ctx.reply.error(storage_error_reply(status));
      return;
    }
    ctx.reply.ok();
    return;
  }
  run_atomically(ctx, key, [&](resp::ReplyWriter& reply) -> Status {
    std::optional<Cell> old;
    if (flags & (kSetGet | kSetNx | kSetXx | kKeepTtl)) {
      Result<std::optional<Cell>> read = ctx.keyspace.read(key);
      if (!read.is_ok()) return read.status();
      old = std::move(*read);
    }
    if (flags & kSetGet) {
      if (old && old->type != ValueType::kString) {
        reply.error(kErrWrongType);
        return Status::ok();
      }
      if (old) {
        reply.bulk(old->value);
      } else {
        reply.null();
      }
    }
    const bool found = old.has_value();
    if (((flags & kSetNx) && found) || ((flags & kSetXx) && !found)) {
      if (nx_reply_integer) {
        reply.integer(0);
      } else if (!(flags & kSetGet)) {
        reply.null();
      }
      return Status::ok();
    }
    if ((flags & kKeepTtl) && found) expire_at = old->expire_at_ms;
    if (Status status = ctx.keyspace.write(key, ValueType::kString, value, expire_at);
        !status.is_ok()) {
      return status;
    }
    if (nx_reply_integer) {
      reply.integer(1);
    } else if (!(flags & kSetGet)) {
      reply.ok();
    }
    return Status::ok();
  });
}

void set_command(CommandContext& ctx) {
  std::optional<ExtendedOptions> options = parse_extended(ctx.args, 3, ExtendedCommand::kSet);
  if (!options) {
    ctx.reply.error(kErrSyntax);
    return;
  }
  int64_t expire_at = 0;
  if (options->expire) {
    std::optional<int64_t> at = expire_at_or_reply(ctx, *options->expire, options->flags);
    if (!at) return;
    expire_at = *at;
  }
  set_generic(ctx, ctx.args[1], ctx.args[2], options->flags, expire_at, false);
}

void setnx_command(CommandContext& ctx) {
  set_generic(ctx, ctx.args[1], ctx.args[2], kSetNx, 0, true);
}

// SETEX key seconds value / PSETEX key milliseconds value.
void setex_generic(CommandContext& ctx, uint32_t unit_flag) {
  std::optional<int64_t> at = expire_at_or_reply(ctx, ctx.args[2], unit_flag);
  if (!at) return;
  set_generic(ctx, ctx.args[1], ctx.args[3], unit_flag, *at, false);
}

void setex_command(CommandContext& ctx) { setex_generic(ctx, kEx); }
void psetex_command(CommandContext& ctx) { setex_generic(ctx, kPx); }

void getset_command(CommandContext& ctx) {
  set_generic(ctx, ctx.args[1], ctx.args[2], kSetGet, 0, false);
}

void getdel_command(CommandContext& ctx) {
  const std::string& key = ctx.args[1];
  run_atomically(ctx, key, [&](resp::ReplyWriter& reply) -> Status {
    StringRead read = read_string(ctx.keyspace, key, reply);
    if (read.failed) return read.status;
    if (!read.cell) {
      reply.null();
      return Status::ok();
    }
    if (Status status = ctx.keyspace.remove(key); !status.is_ok()) return status;
    reply.bulk(read.cell->value);
    return Status::ok();
  });
}

void getex_command(CommandContext& ctx) {
  std::optional<ExtendedOptions> options = parse_extended(ctx.args, 2, ExtendedCommand::kGetEx);
  if (!options) {
    ctx.reply.error(kErrSyntax);
    return;
  }
  const std::string& key = ctx.args[1];
  const uint32_t flags = options->flags;
  run_atomically(ctx, key, [&](resp::ReplyWriter& reply) -> Status {
    StringRead read = read_string(ctx.keyspace, key, reply);
    if (read.failed) return read.status;
    if (!read.cell) {
      reply.null();
      return Status::ok();
    }
    // Unlike SET, GETEX validates the time only once the key is known to exist (Redis 7.0 order).
    int64_t expire_at = 0;
    if (options->expire) {
      std::optional<int64_t> at = expire_at_or_reply(ctx, reply, *options->expire, flags);
      if (!at) return Status::ok();
      expire_at = *at;
    }
    Cell& cell = *read.cell;
    Status status;
    if ((flags & (kExAt | kPxAt)) && expire_at <= ctx.keyspace.now_ms()) {
      // An absolute time already past deletes the key, as Redis does.
      status = ctx.keyspace.remove(key);
    } else if (flags & kAnyExpire) {
      status = ctx.keyspace.write(key, cell.type, cell.value, expire_at);
    } else if ((flags & kPersist) && cell.expire_at_ms != 0) {
      status = ctx.keyspace.write(key, cell.type, cell.value, 0);
    }
    if (!status.is_ok()) return status;
    reply.bulk(cell.value);
    return Status::ok();
  });
}

void mget_command(CommandContext& ctx) {
  // One read_many, so a cluster keyspace reads every key in parallel.
  const std::span<const std::string> keys(ctx.args.data() + 1, ctx.args.size() - 1);
  Result<std::vector<std::optional<Cell>>> reads = ctx.keyspace.read_many(keys);
  if (!reads.is_ok()) {
    ctx.reply.error(storage_error_reply(reads.status()));
    return;
  }
  std::vector<std::optional<std::string>> values;
  values.reserve(keys.size());
  for (std::optional<Cell>& read : *reads) {
    // MGET answers null for keys of another type instead of failing, as Redis does.
    if (read.has_value() && read->type == ValueType::kString) {
      values.emplace_back(std::move(read->value));
    } else {
      values.emplace_back(std::nullopt);
    }
  }
  ctx.reply.array(values.size());
  for (const auto& value : values) {
    if (value) {
      ctx.reply.bulk(*value);
    } else {
      ctx.reply.null();
    }
  }
}

// MSET / MSETNX take key-value pairs: an odd number of arguments after the name.
bool pairs_or_reply(CommandContext& ctx) {
  if (ctx.args.size() % 2 == 1) return true;
  ctx.reply.error("ERR wrong number of arguments for '" + to_lower(ctx.args[0]) + "' command");
  return false;
}

// MSET: atomic on one machine (Keyspace::write_many locks every key); split by shard in a
// cluster, where plain writes need no leader.
void mset_command(CommandContext& ctx) {
  if (!pairs_or_reply(ctx)) return;
  std::vector<std::pair<std::string, std::string>> entries;
  entries.reserve(ctx.args.size() / 2);
  for (size_t i = 1; i < ctx.args.size(); i += 2) entries.emplace_back(ctx.args[i], ctx.args[i + 1]);
  if (Status status = ctx.keyspace.write_many(entries); !status.is_ok()) {
    ctx.reply.error(storage_error_reply(status));
    return;
  }
  ctx.reply.ok();
}

// MSETNX: all keys are locked together, so the check that none exists and the writes are one
// atomic step.
void msetnx_command(CommandContext& ctx) {
  if (!pairs_or_reply(ctx)) return;
  std::vector<std::string> keys;
  keys.reserve(ctx.args.size() / 2);
  for (size_t i = 1; i < ctx.args.size(); i += 2) keys.push_back(ctx.args[i]);
  run_atomically(ctx, keys, [&](resp::ReplyWriter& reply) -> Status {
    for (const std::string& key : keys) {
      Result<std::optional<Cell>> read = ctx.keyspace.read(key);
      if (!read.is_ok()) return read.status();
      if (read->has_value()) {
        reply.integer(0);
        return Status::ok();
      }
    }
    for (size_t i = 1; i < ctx.args.size(); i += 2) {
      Status status = ctx.keyspace.write(ctx.args[i], ValueType::kString, ctx.args[i + 1], 0);
      if (!status.is_ok()) return status;
    }
    reply.integer(1);
    return Status::ok();
  });
}

// Redis's checkStringLength: the result of APPEND/SETRANGE may not exceed proto-max-bulk-len.
bool exceeds_string_limit(int64_t size, int64_t append) { return size > kStringBytesMax - append; }

void append_command(CommandContext& ctx) {
  const std::string& key = ctx.args[1];
  const std::string& suffix = ctx.args[2];
  run_atomically(ctx, key, [&](resp::ReplyWriter& reply) -> Status {
    StringRead read = read_string(ctx.keyspace, key, reply);
    if (read.failed) return read.status;
    std::string value;
    int64_t expire_at = 0;
    if (read.cell) {
      if (exceeds_string_limit(static_cast<int64_t>(read.cell->value.size()),
                               static_cast<int64_t>(suffix.size()))) {
        reply.error(kErrStringTooLong);
        return Status::ok();
      }
      value = std::move(read.cell->value);
      expire_at = read.cell->expire_at_ms;  // APPEND keeps the TTL
    }
    value.append(suffix);
    const auto length = static_cast<int64_t>(value.size());
    if (Status status = ctx.keyspace.write(key, ValueType::kString, std::move(value), expire_at);
        !status.is_ok()) {
      return status;
    }
    reply.integer(length);
    return Status::ok();
  });
}

void strlen_command(CommandContext& ctx) {
  auto cell = read_string_or_reply(ctx, ctx.args[1]);
  if (!cell) return;
  ctx.reply.integer(cell->has_value() ? static_cast<int64_t>((*cell)->value.size()) : 0);
}

// GETRANGE / SUBSTR: inclusive indexes, negative ones count from the end.
void getrange_command(CommandContext& ctx) {
  std::optional<int64_t> start = parse_int64(ctx.args[2]);
  std::optional<int64_t> end = start ? parse_int64(ctx.args[3]) : std::nullopt;
  if (!start || !end) {
    ctx.reply.error(kErrNotInteger);
    return;
  }
  auto cell = read_string_or_reply(ctx, ctx.args[1]);
  if (!cell) return;
  if (!cell->has_value()) {
    ctx.reply.bulk("");
    return;
  }
  const std::string& value = (*cell)->value;
  const auto length = static_cast<int64_t>(value.size());
  int64_t from = *start;
  int64_t to = *end;
  if (from < 0 && to < 0 && from > to) {
    ctx.reply.bulk("");
    return;
  }
  if (from < 0) from = std::max<int64_t>(length + from, 0);
  if (to < 0) to = std::max<int64_t>(length + to, 0);
  if (to >= length) to = length - 1;
  if (from > to || length == 0) {
    ctx.reply.bulk("");
    return;
  }
  ctx.reply.bulk(std::string_view(value).substr(static_cast<size_t>(from),
                                                static_cast<size_t>(to - from + 1)));
}

void setrange_command(CommandContext& ctx) {
  std::optional<int64_t> offset = parse_int64(ctx.args[2]);
  if (!offset) {
    ctx.reply.error(kErrNotInteger);
    return;
  }
  if (*offset < 0) {
    ctx.reply.error(kErrOffsetOutOfRange);
    return;
  }
  const std::string& key = ctx.args[1];
  const std::string& patch = ctx.args[3];
  run_atomically(ctx, key, [&](resp::ReplyWriter& reply) -> Status {
    StringRead read = read_string(ctx.keyspace, key, reply);
    if (read.failed) return read.status;
    if (patch.empty()) {
      // Setting nothing creates nothing and reports the current length.
      reply.integer(read.cell ? static_cast<int64_t>(read.cell->value.size()) : 0);
      return Status::ok();
    }
    if (exceeds_string_limit(*offset, static_cast<int64_t>(patch.size()))) {
      reply.error(kErrStringTooLong);
      return Status::ok();
    }
    std::string value;
    int64_t expire_at = 0;
    if (read.cell) {
      value = std::move(read.cell->value);
      expire_at = read.cell->expire_at_ms;  // SETRANGE keeps the TTL
    }
    const auto at = static_cast<size_t>(*offset);
    if (value.size() < at + patch.size()) value.resize(at + patch.size(), '\0');
    value.replace(at, patch.size(), patch);
    const auto length = static_cast<int64_t>(value.size());
    if (Status status = ctx.keyspace.write(key, ValueType::kString, std::move(value), expire_at);
        !status.is_ok()) {
      return status;
    }
    reply.integer(length);
    return Status::ok();
  });
}

// ---- counters ----

void incr_decr(CommandContext& ctx, int64_t increment) {
  const std::string& key = ctx.args[1];
  run_atomically(ctx, key, [&](resp::ReplyWriter& reply) -> Status {
    StringRead read = read_string(ctx.keyspace, key, reply);
    if (read.failed) return read.status;
    int64_t current = 0;
    if (read.cell) {
      std::optional<int64_t> parsed = parse_int64(read.cell->value);
      if (!parsed) {
        reply.error(kErrNotInteger);
        return Status::ok();
      }
      current = *parsed;
    }
    if ((increment < 0 && current < 0 &&
         increment < std::numeric_limits<int64_t>::min() - current) ||
        (increment > 0 && current > 0 &&
         increment > std::numeric_limits<int64_t>::max() - current)) {
      reply.error(kErrOverflow);
      return Status::ok();
    }
    const int64_t updated = current + increment;
    const int64_t expire_at = read.cell ? read.cell->expire_at_ms : 0;  // counters keep the TTL
    if (Status status =
            ctx.keyspace.write(key, ValueType::kString, std::to_string(updated), expire_at);
        !status.is_ok()) {
      return status;
    }
    reply.integer(updated);
    return Status::ok();
  });
}

void incr_command(CommandContext& ctx) { incr_decr(ctx, 1); }
void decr_command(CommandContext& ctx) { incr_decr(ctx, -1); }

void incrby_command(CommandContext& ctx) {
  std::optional<int64_t> increment = parse_int64(ctx.args[2]);
  if (!increment) {
    ctx.reply.error(kErrNotInteger);
    return;
  }
  incr_decr(ctx, *increment);
}

void decrby_command(CommandContext& ctx) {
  std::optional<int64_t> decrement = parse_int64(ctx.args[2]);
  if (!decrement) {
    ctx.reply.error(kErrNotInteger);
    return;
  }
  if (*decrement == std::numeric_limits<int64_t>::min()) {
    ctx.reply.error("ERR decrement would overflow");
    return;
  }
  incr_decr(ctx, -*decrement);
}

void incrbyfloat_command(CommandContext& ctx) {
  const std::string& key = ctx.args[1];
  run_atomically(ctx, key, [&](resp::ReplyWriter& reply) -> Status {
    StringRead read = read_string(ctx.keyspace, key, reply);
    if (read.failed) return read.status;
    long double current = 0;
    if (read.cell) {
      std::optional<long double> parsed = parse_long_double(read.cell->value);
      if (!parsed) {
        reply.error(kErrNotFloat);
        return Status::ok();
      }
      current = *parsed;
    }
    std::optional<long double> increment = parse_long_double(ctx.args[2]);
    if (!increment) {
      reply.error(kErrNotFloat);
      return Status::ok();
    }
    const long double updated = current + *increment;
    if (std::isnan(updated) || std::isinf(updated)) {
      reply.error(kErrNanOrInfinity);
      return Status::ok();
    }
    std::string text = resp::format_double(updated);
    const int64_t expire_at = read.cell ? read.cell->expire_at_ms : 0;
    if (Status status = ctx.keyspace.write(key, ValueType::kString, text, expire_at);
        !status.is_ok()) {
      return status;
    }
    reply.bulk(text);
    return Status::ok();
  });
}

// ---- registration ----

CommandSpec spec(std::string name, int arity, uint32_t flags, int first_key, int last_key,
                 int key_step, std::string summary, std::string since, std::string complexity,
                 Handler handler) {
  CommandSpec command =
      make_command_spec("string", std::move(name), arity, flags, std::move(summary),
                        std::move(since), std::move(complexity), std::move(handler));
  command.first_key = first_key;
  command.last_key = last_key;
  command.key_step = key_step;
  return command;
}

constexpr std::string_view kRangeComplexity =
    "O(N) where N is the length of the returned string. The complexity is ultimately determined "
    "by the returned length, but because creating a substring from an existing string is very "
    "cheap, it can be considered O(1) for small strings.";

}  // namespace

void register_string_commands(CommandTable& table) {
  const std::string o1 = "O(1)";
  table.add(spec("get", 2, kReadOnly | kFast, 1, 1, 1, "Get the value of a key", "1.0.0", o1,
                 get_command));
  {
    CommandSpec set = spec("set", -3, kWrite | kDenyOom, 1, 1, 1, "Set the string value of a key",
                           "1.0.0", o1, set_command);
    set.key_spec_flags = {"RW", "access", "update", "variable_flags"};
    table.add(std::move(set));
  }
  {
    CommandSpec setnx =
        spec("setnx", 3, kWrite | kDenyOom | kFast, 1, 1, 1,
             "Set the value of a key, only if the key does not exist", "1.0.0", o1, setnx_command);
    setnx.key_spec_flags = {"OW", "insert"};
    table.add(std::move(setnx));
  }
  {
    CommandSpec setex = spec("setex", 4, kWrite | kDenyOom, 1, 1, 1,
                             "Set the value and expiration of a key", "2.0.0", o1, setex_command);
    setex.key_spec_flags = {"OW", "update"};
    table.add(std::move(setex));
  }
  {
    CommandSpec psetex =
        spec("psetex", 4, kWrite | kDenyOom, 1, 1, 1,
             "Set the value and expiration in milliseconds of a key", "2.6.0", o1, psetex_command);
    psetex.key_spec_flags = {"OW", "update"};
    table.add(std::move(psetex));
  }
  {
    CommandSpec getset =
        spec("getset", 3, kWrite | kDenyOom | kFast, 1, 1, 1,
             "Set the string value of a key and return its old value", "1.0.0", o1, getset_command);
    getset.key_spec_flags = {"RW", "access", "update"};
    table.add(std::move(getset));
  }
  {
    CommandSpec getdel =
        spec("getdel", 2, kWrite | kFast, 1, 1, 1, "Get the value of a key and delete the key",
             "6.2.0", o1, getdel_command);
    getdel.key_spec_flags = {"RW", "access", "delete"};
    table.add(std::move(getdel));
  }
  {
    CommandSpec getex = spec("getex", -2, kWrite | kFast, 1, 1, 1,
                             "Get the value of a key and optionally set its expiration", "6.2.0",
                             o1, getex_command);
    getex.key_spec_flags = {"RW", "access", "update"};
    table.add(std::move(getex));
  }
  {
    CommandSpec mget =
        spec("mget", -2, kReadOnly | kFast, 1, -1, 1, "Get the values of all the given keys",
             "1.0.0", "O(N) where N is the number of keys to retrieve.", mget_command);
    mget.tips = {"request_policy:multi_shard"};
    table.add(std::move(mget));
  }
  {
    CommandSpec mset =
        spec("mset", -3, kWrite | kDenyOom, 1, -1, 2, "Set multiple keys to multiple values",
             "1.0.1", "O(N) where N is the number of keys to set.", mset_command);
    mset.tips = {"request_policy:multi_shard", "response_policy:all_succeeded"};
    mset.key_spec_flags = {"OW", "update"};
    table.add(std::move(mset));
  }
  {
    CommandSpec msetnx =
        spec("msetnx", -3, kWrite | kDenyOom, 1, -1, 2,
             "Set multiple keys to multiple values, only if none of the keys "
             "exist",
             "1.0.1", "O(N) where N is the number of keys to set.", msetnx_command);
    msetnx.tips = {"request_policy:multi_shard", "response_policy:agg_min"};
    msetnx.key_spec_flags = {"OW", "insert"};
    table.add(std::move(msetnx));
  }
  {
    CommandSpec append = spec(
        "append", 3, kWrite | kDenyOom | kFast, 1, 1, 1, "Append a value to a key", "2.0.0",
        "O(1). The amortized time complexity is O(1) assuming the appended value is small and the "
        "already present value is of any size, since the dynamic string library used by Redis "
        "will double the free space available on every reallocation.",
        append_command);
    append.key_spec_flags = {"RW", "insert"};
    table.add(std::move(append));
  }
  {
    CommandSpec strlen =
        spec("strlen", 2, kReadOnly | kFast, 1, 1, 1, "Get the length of the value stored in a key",
             "2.2.0", o1, strlen_command);
    strlen.key_spec_flags = {"RO"};
    table.add(std::move(strlen));
  }
  table.add(spec("getrange", 4, kReadOnly, 1, 1, 1, "Get a substring of the string stored at a key",
                 "2.4.0", std::string(kRangeComplexity), getrange_command));
  table.add(spec("substr", 4, kReadOnly, 1, 1, 1, "Get a substring of the string stored at a key",
                 "1.0.0", std::string(kRangeComplexity), getrange_command));
  {
    CommandSpec setrange = spec(
        "setrange", 4, kWrite | kDenyOom, 1, 1, 1,
        "Overwrite part of a string at key starting at the specified offset", "2.2.0",
        "O(1), not counting the time taken to copy the new string in place. Usually, this string "
        "is very small so the amortized complexity is O(1). Otherwise, complexity is O(M) with M "
        "being the length of the value argument.",
        setrange_command);
    setrange.key_spec_flags = {"RW", "update"};
    table.add(std::move(setrange));
  }
  struct Counter {
    const char* name;
    int arity;
    const char* summary;
    Handler handler;
    const char* since;
  };
  const Counter counters[] = {
      {"incr", 2, "Increment the integer value of a key by one", incr_command, "1.0.0"},
      {"decr", 2, "Decrement the integer value of a key by one", decr_command, "1.0.0"},
      {"incrby", 3, "Increment the integer value of a key by the given amount", incrby_command,
       "1.0.0"},
      {"decrby", 3, "Decrement the integer value of a key by the given number", decrby_command,
       "1.0.0"},
      {"incrbyfloat", 3, "Increment the float value of a key by the given amount",
       incrbyfloat_command, "2.6.0"},
  };
  for (const Counter& counter : counters) {
    CommandSpec command = spec(counter.name, counter.arity, kWrite | kDenyOom | kFast, 1, 1, 1,
                               counter.summary, counter.since, o1, counter.handler);
    command.key_spec_flags = {"RW", "access", "update"};
    table.add(std::move(command));
  }
}

}  // namespace cairn::commands
