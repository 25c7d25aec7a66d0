// Bit commands on strings: SETBIT, GETBIT, BITCOUNT, BITPOS, BITOP, BITFIELD, BITFIELD_RO, and
// LCS, with redis-server 7.0 semantics, error texts and check order. Writes (SETBIT, BITOP,
// BITFIELD with SET/INCRBY) read, change and write the whole string under the keys' locks, like
// SETRANGE; in a cluster they run on the shard leader, and BITOP needs its keys on one shard.

#include <algorithm>
#include <bit>
#include <limits>
#include <span>
#include <vector>
#include <cstdint>
#include <optional>
#include <string>

#include "commands/command.h"
#include "commands/parse.h"

namespace cairn::commands {
namespace {

using storage::Cell;
using storage::ValueType;

constexpr std::string_view kErrBitOffset = "ERR bit offset is not an integer or out of range";
constexpr std::string_view kErrBitValue = "ERR bit is not an integer or out of range";
// The largest bit offset + 1: a string may not grow past proto-max-bulk-len (512 MB).
constexpr uint64_t kBitOffsetsMax = static_cast<uint64_t>(kStringBytesMax) * 8;

// Redis's getBitOffsetFromArgument (without the '#' form of BITFIELD).
std::optional<uint64_t> parse_bit_offset(std::string_view text) {
  std::optional<int64_t> value = parse_int64(text);
  if (!value || *value < 0 || static_cast<uint64_t>(*value) >= kBitOffsetsMax) return std::nullopt;
  return static_cast<uint64_t>(*value);
}

void run_locked_keys(CommandContext& ctx, std::span<const std::string> keys,
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

void run_locked(CommandContext& ctx, const std::string& key,
                const std::function<Status(resp::ReplyWriter&)>& fn) {
  run_locked_keys(ctx, std::span<const std::string>(&key, 1), fn);
}

// The live string cell of `key`; WRONGTYPE replied (and nullopt returned) for another type.
struct StringCell {
  bool replied = false;
  Status status;
  std::optional<Cell> cell;
};

StringCell read_string_cell(coordinator::Keyspace& keyspace, const std::string& key,
                            resp::ReplyWriter& reply) {
  StringCell result;
  Result<std::optional<Cell>> read = keyspace.read(key);
  if (!read.is_ok()) {
    result.status = read.status();
    return result;
  }
  if (read->has_value() && (*read)->type != ValueType::kString) {
    reply.error(kErrWrongType);
    result.replied = true;
    return result;
  }
  result.cell = std::move(*read);
  return result;
}

bool bit_at(std::string_view bytes, uint64_t offset) {
  const uint64_t byte = offset >> 3;
  if (byte >= bytes.size()) return false;
  return (static_cast<uint8_t>(bytes[byte]) >> (7 - (offset & 7))) & 1;
}

void setbit_command(CommandContext& ctx) {
  const std::optional<uint64_t> offset = parse_bit_offset(ctx.args[2]);
  if (!offset) return ctx.reply.error(kErrBitOffset);
  const std::optional<int64_t> bit = parse_int64(ctx.args[3]);
  if (!bit || (*bit != 0 && *bit != 1)) return ctx.reply.error(kErrBitValue);
  const std::string& key = ctx.args[1];
  run_locked(ctx, key, [&](resp::ReplyWriter& reply) -> Status {
    StringCell read = read_string_cell(ctx.keyspace, key, reply);
    if (read.replied || !read.status.is_ok()) return read.status;
    std::string value = read.cell ? std::move(read.cell->value) : std::string();
    const bool old = bit_at(value, *offset);
    const uint64_t byte = *offset >> 3;
    if (byte >= value.size()) value.resize(byte + 1, '\0');
    const auto mask = static_cast<uint8_t>(1u << (7 - (*offset & 7)));
    auto& target = reinterpret_cast<uint8_t&>(value[byte]);
    target = *bit ? static_cast<uint8_t>(target | mask) : static_cast<uint8_t>(target & ~mask);
    // SETBIT keeps the key's TTL, as in Redis.
    const int64_t expire_at = read.cell ? read.cell->expire_at_ms : 0;
    if (Status status = ctx.keyspace.write(key, ValueType::kString, std::move(value), expire_at);
        !status.is_ok()) {
      return status;
    }
    reply.integer(old ? 1 : 0);
    return Status::ok();
  });
}

void getbit_command(CommandContext& ctx) {
  const std::optional<uint64_t> offset = parse_bit_offset(ctx.args[2]);
  if (!offset) return ctx.reply.error(kErrBitOffset);
  StringCell read = read_string_cell(ctx.keyspace, ctx.args[1], ctx.reply);
  if (read.replied) return;
  if (!read.status.is_ok()) return ctx.reply.error(storage_error_reply(read.status));
  ctx.reply.integer(read.cell && bit_at(read.cell->value, *offset) ? 1 : 0);
}

// Redis 7.0's bitcountCommand: the key is looked up (and type-checked) before the range is
// parsed, so a missing key answers 0 whatever the arguments.
void bitcount_command(CommandContext& ctx) {
  StringCell read = read_string_cell(ctx.keyspace, ctx.args[1], ctx.reply);
  if (read.replied) return;
  if (!read.status.is_ok()) return ctx.reply.error(storage_error_reply(read.status));
  if (!read.cell) return ctx.reply.integer(0);
  const std::string& value = read.cell->value;
  const auto length = static_cast<int64_t>(value.size());
  int64_t start = 0;
  int64_t end = length - 1;
  bool in_bits = false;
  if (ctx.args.size() == 4 || ctx.args.size() == 5) {
    const std::optional<int64_t> first = parse_int64(ctx.args[2]);
    if (!first) return ctx.reply.error(kErrNotInteger);
    const std::optional<int64_t> last = parse_int64(ctx.args[3]);
    if (!last) return ctx.reply.error(kErrNotInteger);
    start = *first;
    end = *last;
    // Before the unit is parsed, as in Redis: "BITCOUNT k -1 -2 FOO" answers 0.
    if (start < 0 && end < 0 && start > end) return ctx.reply.integer(0);
    if (ctx.args.size() == 5) {
      if (equals_ignore_case(ctx.args[4], "bit")) {
        in_bits = true;
      } else if (!equals_ignore_case(ctx.args[4], "byte")) {
        return ctx.reply.error(kErrSyntax);
      }
    }
    const int64_t total = in_bits ? length * 8 : length;
    if (start < 0) start = total + start;
    if (end < 0) end = total + end;
    if (start < 0) start = 0;
    if (end < 0) end = 0;
    if (end >= total) end = total - 1;
  } else if (ctx.args.size() != 2) {
    return ctx.reply.error(kErrSyntax);
  }
  if (start > end) return ctx.reply.integer(0);
  int64_t count = 0;
  if (in_bits) {
    for (int64_t offset = start; offset <= end; ++offset) {
      count += bit_at(value, static_cast<uint64_t>(offset)) ? 1 : 0;
    }
  } else {
    for (int64_t i = start; i <= end; ++i) {
      count += std::popcount(static_cast<uint8_t>(value[static_cast<size_t>(i)]));
    }
  }
  ctx.reply.integer(count);
}

// ---- BITPOS ----

// The first bit equal to `bit` in bits [first, last] of `value` (bits past the end are 0), or -1.
int64_t find_bit(std::string_view value, bool bit, int64_t first, int64_t last) {
  int64_t offset = first;
  // Bit by bit up to a byte boundary, then whole bytes, then the tail.
  while (offset <= last && (offset & 7) != 0) {
    if (bit_at(value, static_cast<uint64_t>(offset)) == bit) return offset;
    ++offset;
  }
  const uint8_t skip = bit ? 0x00 : 0xff;
  while (offset + 7 <= last) {
    const uint64_t byte = static_cast<uint64_t>(offset) >> 3;
    const uint8_t b = byte < value.size() ? static_cast<uint8_t>(value[byte]) : 0;
    if (b != skip) break;
    offset += 8;
  }
  for (; offset <= last; ++offset) {
    if (bit_at(value, static_cast<uint64_t>(offset)) == bit) return offset;
  }
  return -1;
}

// BITPOS key bit [start [end [BYTE|BIT]]]
void bitpos_command(CommandContext& ctx) {
  const std::optional<int64_t> bit = parse_int64(ctx.args[2]);
  if (!bit) return ctx.reply.error(kErrNotInteger);
  if (*bit != 0 && *bit != 1) return ctx.reply.error("ERR The bit argument must be 1 or 0.");
  StringCell read = read_string_cell(ctx.keyspace, ctx.args[1], ctx.reply);
  if (read.replied) return;
  if (!read.status.is_ok()) return ctx.reply.error(storage_error_reply(read.status));
  // A missing key is an endless run of 0 bits.
  if (!read.cell) return ctx.reply.integer(*bit ? -1 : 0);
  const std::string& value = read.cell->value;
  const auto length = static_cast<int64_t>(value.size());
  int64_t start = 0, end = length - 1;
  bool in_bits = false, end_given = false;
  const size_t argc = ctx.args.size();
  if (argc >= 4 && argc <= 6) {
    const std::optional<int64_t> first = parse_int64(ctx.args[3]);
    if (!first) return ctx.reply.error(kErrNotInteger);
    start = *first;
    if (argc == 6) {
      if (equals_ignore_case(ctx.args[5], "bit")) {
        in_bits = true;
      } else if (!equals_ignore_case(ctx.args[5], "byte")) {
        return ctx.reply.error(kErrSyntax);
      }
    }
    const int64_t total = in_bits ? length * 8 : length;
    if (argc >= 5) {
      const std::optional<int64_t> last = parse_int64(ctx.args[4]);
      if (!last) return ctx.reply.error(kErrNotInteger);
      end = *last;
      end_given = true;
    } else {
      end = total - 1;
    }
    if (start < 0) start = total + start;
    if (end < 0) end = total + end;
    if (start < 0) start = 0;
    if (end < 0) end = 0;
    if (end >= total) end = total - 1;
  } else if (argc != 3) {
    return ctx.reply.error(kErrSyntax);
  }
  if (start > end) return ctx.reply.integer(-1);
  const int64_t first_bit = in_bits ? start : start * 8;
  const int64_t last_bit = in_bits ? end : end * 8 + 7;
  const int64_t found = find_bit(value, *bit == 1, first_bit, last_bit);
  if (found >= 0) return ctx.reply.integer(found);
  // Looking for a 0 without an explicit end: the string continues with 0 bits after its end.
  if (*bit == 0 && !end_given) return ctx.reply.integer((end + 1) * (in_bits ? 1 : 8) +
                                                         (in_bits ? 0 : 0));
  ctx.reply.integer(-1);
}

// ---- BITOP ----

// BITOP AND|OR|XOR|NOT destkey srckey [srckey ...]: the result's length is the longest source's
// (missing bytes count as 0); an empty result deletes destkey. Replies the length.
void bitop_command(CommandContext& ctx) {
  enum class Op { kAnd, kOr, kXor, kNot } op;
  const std::string& name = ctx.args[1];
  if (equals_ignore_case(name, "and")) {
    op = Op::kAnd;
  } else if (equals_ignore_case(name, "or")) {
    op = Op::kOr;
  } else if (equals_ignore_case(name, "xor")) {
    op = Op::kXor;
  } else if (equals_ignore_case(name, "not")) {
    op = Op::kNot;
  } else {
    return ctx.reply.error(kErrSyntax);
  }
  if (op == Op::kNot && ctx.args.size() != 4) {
    return ctx.reply.error("ERR BITOP NOT must be called with a single source key.");
  }
  const std::span<const std::string> keys(ctx.args.data() + 2, ctx.args.size() - 2);
  const std::string& target = ctx.args[2];
  run_locked_keys(ctx, keys, [&](resp::ReplyWriter& reply) -> Status {
    std::vector<std::string> sources;
    for (const std::string& key : keys.subspan(1)) {
      StringCell read = read_string_cell(ctx.keyspace, key, reply);
      if (read.replied || !read.status.is_ok()) return read.status;
      sources.push_back(read.cell ? std::move(read.cell->value) : std::string());
    }
    size_t length = 0;
    for (const std::string& source : sources) length = std::max(length, source.size());
    std::string result(length, '\0');
    for (size_t i = 0; i < length; ++i) {
      auto byte_of = [&](const std::string& source) {
        return i < source.size() ? static_cast<uint8_t>(source[i]) : uint8_t{0};
      };
      uint8_t out = byte_of(sources[0]);
      if (op == Op::kNot) out = static_cast<uint8_t>(~out);
      for (size_t j = 1; j < sources.size(); ++j) {
        const uint8_t b = byte_of(sources[j]);
        out = op == Op::kAnd ? (out & b) : op == Op::kOr ? (out | b) : (out ^ b);
      }
      result[i] = static_cast<char>(out);
    }
    Status status = length == 0
                        ? ctx.keyspace.remove(target)
                        : ctx.keyspace.write(target, ValueType::kString, std::move(result), 0);
    if (!status.is_ok()) return status;
    reply.integer(static_cast<int64_t>(length));
    return Status::ok();
  });
}

// ---- BITFIELD / BITFIELD_RO ----

enum class Overflow { kWrap, kSat, kFail };

struct BitfieldOp {
  enum class Kind { kGet, kSet, kIncrBy } kind;
  bool is_signed = false;
  int bits = 0;
  uint64_t offset = 0;
  int64_t value = 0;
  Overflow overflow = Overflow::kWrap;
};

uint64_t get_unsigned_bits(std::string_view bytes, uint64_t offset, int bits) {
  uint64_t value = 0;
  for (int i = 0; i < bits; ++i) value = (value << 1) | (bit_at(bytes, offset + i) ? 1 : 0);
  return value;
}

int64_t get_signed_bits(std::string_view bytes, uint64_t offset, int bits) {
  uint64_t value = get_unsigned_bits(bytes, offset, bits);
  if (bits < 64 && (value & (uint64_t{1} << (bits - 1)))) value |= ~uint64_t{0} << bits;
  return static_cast<int64_t>(value);
}

void set_bits(std::string& bytes, uint64_t offset, int bits, uint64_t value) {
  for (int i = 0; i < bits; ++i) {
    const bool on = (value >> (bits - 1 - i)) & 1;
    const uint64_t position = offset + i;
    auto& byte = reinterpret_cast<uint8_t&>(bytes[position >> 3]);
    const auto mask = static_cast<uint8_t>(1u << (7 - (position & 7)));
    byte = on ? static_cast<uint8_t>(byte | mask) : static_cast<uint8_t>(byte & ~mask);
  }
}

// Redis's checkSignedBitfieldOverflow: whether value + incr leaves the type's range, and what
// to store then (*limit) under WRAP or SAT.
bool signed_overflow(int64_t value, int64_t incr, int bits, Overflow overflow, int64_t* limit) {
  const int64_t max =
      bits == 64 ? std::numeric_limits<int64_t>::max() : (int64_t{1} << (bits - 1)) - 1;
  const int64_t min = -max - 1;
  const auto maxincr = static_cast<int64_t>(static_cast<uint64_t>(max) - static_cast<uint64_t>(value));
  const auto minincr = static_cast<int64_t>(static_cast<uint64_t>(min) - static_cast<uint64_t>(value));
  auto wrap = [&] {
    uint64_t c = static_cast<uint64_t>(value) + static_cast<uint64_t>(incr);
    if (bits < 64) {
      const uint64_t mask = ~uint64_t{0} << bits;
      c = (c & (uint64_t{1} << (bits - 1))) ? (c | mask) : (c & ~mask);
    }
    *limit = static_cast<int64_t>(c);
  };
  if (value > max || (bits != 64 && incr > maxincr) || (value >= 0 && incr > 0 && incr > maxincr)) {
    if (overflow == Overflow::kWrap) wrap();
    if (overflow == Overflow::kSat) *limit = max;
    return true;
  }
  if (value < min || (bits != 64 && incr < minincr) || (value < 0 && incr < 0 && incr < minincr)) {
    if (overflow == Overflow::kWrap) wrap();
    if (overflow == Overflow::kSat) *limit = min;
    return true;
  }
  return false;
}

// Redis's checkUnsignedBitfieldOverflow.
bool unsigned_overflow(uint64_t value, int64_t incr, int bits, Overflow overflow,
                       uint64_t* limit) {
  const uint64_t max = bits == 64 ? std::numeric_limits<uint64_t>::max()
                                  : (uint64_t{1} << bits) - 1;
  const auto maxincr = static_cast<int64_t>(max - value);
  const auto minincr = static_cast<int64_t>(uint64_t{0} - value);
  auto wrap = [&] {
    const uint64_t mask = ~uint64_t{0} << bits;
    *limit = (value + static_cast<uint64_t>(incr)) & ~mask;
  };
  if (value > max || (incr > 0 && incr > maxincr)) {
    if (overflow == Overflow::kWrap) wrap();
    if (overflow == Overflow::kSat) *limit = max;
    return true;
  }
  if (incr < 0 && incr < minincr) {
    if (overflow == Overflow::kWrap) wrap();
    if (overflow == Overflow::kSat) *limit = 0;
    return true;
  }
  return false;
}

// Runs one SET/INCRBY on `bytes` (long enough) and writes its reply.
void apply_bitfield_write(const BitfieldOp& op, std::string& bytes, resp::ReplyWriter& reply) {
  if (op.is_signed) {
    const int64_t old = get_signed_bits(bytes, op.offset, op.bits);
    int64_t wrapped = 0, stored = 0, answer = 0;
    bool overflowed = false;
    if (op.kind == BitfieldOp::Kind::kIncrBy) {
      overflowed = signed_overflow(old, op.value, op.bits, op.overflow, &wrapped);
      stored = overflowed ? wrapped
                          : static_cast<int64_t>(static_cast<uint64_t>(old) +
                                                 static_cast<uint64_t>(op.value));
      answer = stored;
    } else {
      overflowed = signed_overflow(op.value, 0, op.bits, op.overflow, &wrapped);
      stored = overflowed ? wrapped : op.value;
      answer = old;
    }
    if (overflowed && op.overflow == Overflow::kFail) return reply.null();
    set_bits(bytes, op.offset, op.bits, static_cast<uint64_t>(stored));
    return reply.integer(answer);
  }
  const uint64_t old = get_unsigned_bits(bytes, op.offset, op.bits);
  uint64_t wrapped = 0, stored = 0, answer = 0;
  bool overflowed = false;
  if (op.kind == BitfieldOp::Kind::kIncrBy) {
    overflowed = unsigned_overflow(old, op.value, op.bits, op.overflow, &wrapped);
    stored = overflowed ? wrapped : old + static_cast<uint64_t>(op.value);
    answer = stored;
  } else {
    overflowed = unsigned_overflow(static_cast<uint64_t>(op.value), 0, op.bits, op.overflow,
                                   &wrapped);
    stored = overflowed ? wrapped : static_cast<uint64_t>(op.value);
    answer = old;
  }
  if (overflowed && op.overflow == Overflow::kFail) return reply.null();
  set_bits(bytes, op.offset, op.bits, stored);
  reply.integer(static_cast<int64_t>(answer));
}

constexpr std::string_view kErrBitfieldType =
    "ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but "
    "i64 is.";

// BITFIELD key [GET type offset] [SET type offset value] [INCRBY type offset increment]
// [OVERFLOW WRAP|SAT|FAIL] ... (`read_only`: BITFIELD_RO, GET only).
void bitfield_generic(CommandContext& ctx, bool read_only) {
  const std::vector<std::string>& args = ctx.args;
  std::vector<BitfieldOp> ops;
  Overflow overflow = Overflow::kWrap;
  bool writes = false;
  uint64_t highest_bit = 0;
  for (size_t j = 2; j < args.size(); ++j) {
    const size_t remaining = args.size() - j - 1;
    BitfieldOp op;
    if (equals_ignore_case(args[j], "get") && remaining >= 2) {
      op.kind = BitfieldOp::Kind::kGet;
    } else if (equals_ignore_case(args[j], "set") && remaining >= 3) {
      op.kind = BitfieldOp::Kind::kSet;
    } else if (equals_ignore_case(args[j], "incrby") && remaining >= 3) {
      op.kind = BitfieldOp::Kind::kIncrBy;
    } else if (equals_ignore_case(args[j], "overflow") && remaining >= 1) {
      const std::string& type = args[++j];
      if (equals_ignore_case(type, "wrap")) {
        overflow = Overflow::kWrap;
      } else if (equals_ignore_case(type, "sat")) {
        overflow = Overflow::kSat;
      } else if (equals_ignore_case(type, "fail")) {
        overflow = Overflow::kFail;
      } else {
        return ctx.reply.error("ERR Invalid OVERFLOW type specified");
      }
      continue;
    } else {
      return ctx.reply.error(kErrSyntax);
    }
    // The type: i1..i64 or u1..u63 (a C string, as Redis reads it).
    const std::string type(std::string_view(args[j + 1]).substr(0, args[j + 1].find('\0')));
    if (type.empty() || (type[0] != 'i' && type[0] != 'u')) {
      return ctx.reply.error(kErrBitfieldType);
    }
    op.is_signed = type[0] == 'i';
    const std::optional<int64_t> bits = parse_int64(std::string_view(type).substr(1));
    if (!bits || *bits < 1 || *bits > (op.is_signed ? 64 : 63)) {
      return ctx.reply.error(kErrBitfieldType);
    }
    op.bits = static_cast<int>(*bits);
    // The offset, or #N for the N-th field of this width.
    std::string_view offset_text = args[j + 2];
    const bool by_width = !offset_text.empty() && offset_text[0] == '#';
    if (by_width) offset_text.remove_prefix(1);
    std::optional<int64_t> offset = parse_int64(offset_text);
    if (offset && by_width) {
      if (*offset > std::numeric_limits<int64_t>::max() / op.bits ||
          *offset < std::numeric_limits<int64_t>::min() / op.bits) {
        offset.reset();
      } else {
        *offset *= op.bits;
      }
    }
    if (!offset || *offset < 0 || (static_cast<uint64_t>(*offset) >> 3) >= kStringBytesMax) {
      return ctx.reply.error(kErrBitOffset);
    }
    op.offset = static_cast<uint64_t>(*offset);
    if (op.kind != BitfieldOp::Kind::kGet) {
      const std::optional<int64_t> value = parse_int64(args[j + 3]);
      if (!value) return ctx.reply.error(kErrNotInteger);
      op.value = *value;
      writes = true;
      highest_bit = std::max(highest_bit, op.offset + op.bits - 1);
    }
    op.overflow = overflow;
    ops.push_back(op);
    j += op.kind == BitfieldOp::Kind::kGet ? 2 : 3;
  }
  auto run = [&](std::string* bytes, resp::ReplyWriter& reply) {
    reply.array(ops.size());
    for (const BitfieldOp& op : ops) {
      if (op.kind != BitfieldOp::Kind::kGet) {
        apply_bitfield_write(op, *bytes, reply);
        continue;
      }
      const std::string_view value = bytes ? std::string_view(*bytes) : std::string_view();
      if (op.is_signed) {
        reply.integer(get_signed_bits(value, op.offset, op.bits));
      } else {
        reply.integer(static_cast<int64_t>(get_unsigned_bits(value, op.offset, op.bits)));
      }
    }
  };
  const std::string& key = args[1];
  if (!writes) {
    StringCell read = read_string_cell(ctx.keyspace, key, ctx.reply);
    if (read.replied) return;
    if (!read.status.is_ok()) return ctx.reply.error(storage_error_reply(read.status));
    return run(read.cell ? &read.cell->value : nullptr, ctx.reply);
  }
  if (read_only) return ctx.reply.error("ERR BITFIELD_RO only supports the GET subcommand");
  run_locked(ctx, key, [&](resp::ReplyWriter& reply) -> Status {
    StringCell read = read_string_cell(ctx.keyspace, key, reply);
    if (read.replied || !read.status.is_ok()) return read.status;
    // As Redis, the string is created or grown to the farthest bit written, even if every
    // write fails (OVERFLOW FAIL); the key keeps its TTL.
    std::string bytes = read.cell ? std::move(read.cell->value) : std::string();
    const size_t needed = static_cast<size_t>(highest_bit >> 3) + 1;
    if (bytes.size() < needed) bytes.resize(needed, '\0');
    run(&bytes, reply);
    const int64_t expire_at = read.cell ? read.cell->expire_at_ms : 0;
    return ctx.keyspace.write(key, ValueType::kString, std::move(bytes), expire_at);
  });
}

void bitfield_command(CommandContext& ctx) { bitfield_generic(ctx, false); }
void bitfield_ro_command(CommandContext& ctx) { bitfield_generic(ctx, true); }

// ---- LCS ----

// LCS key1 key2 [LEN] [IDX] [MINMATCHLEN len] [WITHMATCHLEN]: the longest common subsequence by
// Redis's dynamic programming (a (|a|+1) x (|b|+1) table, refused past proto-max-bulk-len).
void lcs_command(CommandContext& ctx) {
  const std::vector<std::string>& args = ctx.args;
  std::optional<Cell> cells[2];
  for (int i = 0; i < 2; ++i) {
    Result<std::optional<Cell>> read = ctx.keyspace.read(args[1 + i]);
    if (!read.is_ok()) return ctx.reply.error(storage_error_reply(read.status()));
    cells[i] = std::move(*read);
  }
  for (const std::optional<Cell>& cell : cells) {
    if (cell && cell->type != ValueType::kString) {
      return ctx.reply.error("ERR The specified keys must contain string values");
    }
  }
  bool get_len = false, get_idx = false, with_match_len = false;
  int64_t min_match_len = 0;
  for (size_t j = 3; j < args.size(); ++j) {
    const bool more = j + 1 < args.size();
    if (equals_ignore_case(args[j], "idx")) {
      get_idx = true;
    } else if (equals_ignore_case(args[j], "len")) {
      get_len = true;
    } else if (equals_ignore_case(args[j], "withmatchlen")) {
      with_match_len = true;
    } else if (equals_ignore_case(args[j], "minmatchlen") && more) {
      const std::optional<int64_t> parsed = parse_int64(args[++j]);
      if (!parsed) return ctx.reply.error(kErrNotInteger);
      min_match_len = std::max<int64_t>(*parsed, 0);
    } else {
      return ctx.reply.error(kErrSyntax);
    }
  }
  if (get_idx && get_len) {
    return ctx.reply.error("ERR If you want both the length and indexes, please just use IDX.");
  }
  const std::string& a = cells[0] ? cells[0]->value : std::string();
  const std::string& b = cells[1] ? cells[1]->value : std::string();
  const std::string empty;
  const std::string& sa = cells[0] ? a : empty;
  const std::string& sb = cells[1] ? b : empty;
  const uint64_t alen = sa.size(), blen = sb.size();
  if (alen >= std::numeric_limits<uint32_t>::max() - 1 ||
      blen >= std::numeric_limits<uint32_t>::max() - 1) {
    return ctx.reply.error("ERR String too long for LCS");
  }
  const uint64_t cells_count = (alen + 1) * (blen + 1);
  if (cells_count * sizeof(uint32_t) > static_cast<uint64_t>(kStringBytesMax)) {
    return ctx.reply.error(
        "ERR Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len");
  }
  std::vector<uint32_t> table(cells_count, 0);
  auto at = [&](uint64_t i, uint64_t j) -> uint32_t& { return table[j + i * (blen + 1)]; };
  for (uint64_t i = 1; i <= alen; ++i) {
    for (uint64_t j = 1; j <= blen; ++j) {
      at(i, j) = sa[i - 1] == sb[j - 1] ? at(i - 1, j - 1) + 1
                                        : std::max(at(i - 1, j), at(i, j - 1));
    }
  }
  const uint32_t total = at(alen, blen);
  if (get_len) return ctx.reply.integer(total);
  std::string result(total, '\0');
  uint32_t idx = total;
  std::string matches;
  resp::ReplyWriter match_writer(&matches, ctx.reply.protocol());
  size_t match_count = 0;
  uint64_t arange_start = alen, arange_end = 0, brange_start = 0, brange_end = 0;
  uint64_t i = alen, j = blen;
  while (i > 0 && j > 0) {
    bool emit = false;
    if (sa[i - 1] == sb[j - 1]) {
      result[idx - 1] = sa[i - 1];
      if (arange_start == alen) {
        arange_start = arange_end = i - 1;
        brange_start = brange_end = j - 1;
      } else if (arange_start == i && brange_start == j) {
        --arange_start;
        --brange_start;
      } else {
        emit = true;
      }
      if (arange_start == 0 || brange_start == 0) emit = true;
      --idx;
      --i;
      --j;
    } else {
      if (at(i - 1, j) > at(i, j - 1)) {
        --i;
      } else {
        --j;
      }
      if (arange_start != alen) emit = true;
    }
    const uint64_t match_len = arange_end - arange_start + 1;
    if (emit) {
      if (get_idx && (min_match_len == 0 || match_len >= static_cast<uint64_t>(min_match_len))) {
        match_writer.array(with_match_len ? 3 : 2);
        match_writer.array(2);
        match_writer.integer(static_cast<int64_t>(arange_start));
        match_writer.integer(static_cast<int64_t>(arange_end));
        match_writer.array(2);
        match_writer.integer(static_cast<int64_t>(brange_start));
        match_writer.integer(static_cast<int64_t>(brange_end));
        if (with_match_len) match_writer.integer(static_cast<int64_t>(match_len));
        ++match_count;
      }
      arange_start = alen;
    }
  }
  if (!get_idx) return ctx.reply.bulk(result);
  ctx.reply.map(2);
  ctx.reply.bulk("matches");
  ctx.reply.array(match_count);
  ctx.reply.buffer()->append(matches);
  ctx.reply.bulk("len");
  ctx.reply.integer(total);
}

CommandSpec spec(std::string name, int arity, uint32_t flags, std::string summary,
                 std::string since, std::string complexity, Handler handler) {
  CommandSpec command = make_command_spec("bitmap", std::move(name), arity, flags,
                                          std::move(summary), std::move(since),
                                          std::move(complexity), std::move(handler));
  command.first_key = 1;
  command.last_key = 1;
  command.key_step = 1;
  return command;
}

}  // namespace

void register_bit_commands(CommandTable& table) {
  table.add(spec("setbit", 4, kWrite | kDenyOom,
                 "Sets or clears the bit at offset in the string value stored at key", "2.2.0",
                 "O(1)", setbit_command));
  table.add(spec("getbit", 3, kReadOnly | kFast,
                 "Returns the bit value at offset in the string value stored at key", "2.2.0",
                 "O(1)", getbit_command));
  table.add(spec("bitcount", -2, kReadOnly, "Count set bits in a string", "2.6.0", "O(N)",
                 bitcount_command));
  table.add(spec("bitpos", -3, kReadOnly, "Find first bit set or clear in a string", "2.8.7",
                 "O(N)", bitpos_command));
  {
    CommandSpec bitop = spec("bitop", -4, kWrite | kDenyOom,
                             "Perform bitwise operations between strings", "2.6.0", "O(N)",
                             bitop_command);
    bitop.first_key = 2;
    bitop.last_key = -1;
    table.add(std::move(bitop));
  }
  table.add(spec("bitfield", -2, kWrite | kDenyOom,
                 "Perform arbitrary bitfield integer operations on strings", "3.2.0",
                 "O(1) for each subcommand specified", bitfield_command));
  table.add(spec("bitfield_ro", -2, kReadOnly | kFast,
                 "Perform arbitrary bitfield integer operations on strings. Read-only variant of "
                 "BITFIELD", "6.0.0", "O(1) for each subcommand specified", bitfield_ro_command));
  {
    CommandSpec lcs = make_command_spec("string", "lcs", -3, kReadOnly,
                                        "Find longest common substring", "7.0.0",
                                        "O(N*M) where N and M are the lengths of s1 and s2, "
                                        "respectively", lcs_command);
    lcs.first_key = 1;
    lcs.last_key = 2;
    lcs.key_step = 1;
    table.add(std::move(lcs));
  }
}

}  // namespace cairn::commands
