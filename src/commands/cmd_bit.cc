// Bit commands on strings: SETBIT, GETBIT, BITCOUNT, with redis-server 7.0 semantics, error
// texts and check order. (BITPOS, BITOP, BITFIELD, BITFIELD_RO and LCS are not implemented yet.)
// SETBIT reads, changes and writes the whole string under the key's lock, like SETRANGE.

#include <bit>
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

void run_locked(CommandContext& ctx, const std::string& key,
                const std::function<Status(resp::ReplyWriter&)>& fn) {
  std::string staged;
  resp::ReplyWriter staged_reply(&staged, ctx.reply.protocol());
  Status status = ctx.keyspace.atomically(std::span<const std::string>(&key, 1),
                                          [&] { return fn(staged_reply); });
  if (!status.is_ok()) {
    ctx.reply.error(storage_error_reply(status));
    return;
  }
  ctx.reply.buffer()->append(staged);
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
}

}  // namespace cairn::commands
