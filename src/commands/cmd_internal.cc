// Internal commands: CAIRN.AUTH ID APPLY READ SCAN CLEAR TABLE, what the machines of a cluster
// send each other (docs/formats.md "Internal protocol"). Thin wrappers around replica::Replica.
// All are kInline: they touch local storage only and never wait for another machine, so the
// front end runs them on its event loop even in cluster mode.

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "commands/command.h"
#include "replica/replica.h"
#include "storage/cell.h"
#include "topology/routing_table.h"

namespace cairn::commands {
namespace {

constexpr std::string_view kNotClusterMachine = "ERR this machine is not part of a cluster";
// A scan page asks for at most this many keys (the replica bounds its own work too).
constexpr uint64_t kScanCountMax = 10000;

constexpr uint32_t kInternalFlags = kInternal | kInline | kLoading | kStale;

std::optional<uint64_t> parse_u64(std::string_view text) {
  uint64_t value = 0;
  const char* end = text.data() + text.size();
  const auto [parsed_end, error] = std::from_chars(text.data(), end, value);
  if (text.empty() || error != std::errc() || parsed_end != end) return std::nullopt;
  return value;
}

// Compares in time independent of where the strings differ, so a peer cannot guess the secret
// byte by byte from reply latency.
bool equal_constant_time(std::string_view a, std::string_view b) {
  const size_t length = std::max(a.size(), b.size());
  unsigned char difference = a.size() == b.size() ? 0 : 1;
  for (size_t i = 0; i < length; ++i) {
    const unsigned char x = i < a.size() ? static_cast<unsigned char>(a[i]) : 0;
    const unsigned char y = i < b.size() ? static_cast<unsigned char>(b[i]) : 0;
    difference |= static_cast<unsigned char>(x ^ y);
  }
  return difference == 0;
}

// The replica of this machine, or nullptr after replying that there is none.
replica::Replica* replica_or_reply(CommandContext& context) {
  if (context.replica == nullptr) context.reply.error(kNotClusterMachine);
  return context.replica;
}

// Parses args[index] as an epoch, a token or a count; replies and returns nullopt if invalid.
std::optional<uint64_t> number_arg(CommandContext& context, size_t index, std::string_view what) {
  std::optional<uint64_t> value = parse_u64(context.args[index]);
  if (!value) context.reply.error("ERR invalid " + std::string(what));
  return value;
}

void reply_status(CommandContext& context, const Status& status) {
  context.reply.error("ERR " + status.message());
}

void cairn_auth(CommandContext& context) {
  const std::string secret = context.server.cluster_secret();
  if (secret.empty()) {
    context.reply.error("NOPERM this machine is not part of a cluster");
    return;
  }
  if (!equal_constant_time(context.args[1], secret)) {
    context.reply.error("NOPERM invalid cluster secret");
    return;
  }
  context.session.internal = true;
  context.session.authenticated = true;  // a cluster machine passes requirepass too
  context.reply.ok();
}

void cairn_id(CommandContext& context) {
  replica::Replica* replica = replica_or_reply(context);
  if (replica == nullptr) return;
  context.reply.integer(static_cast<int64_t>(replica->machine_id()));
}

void cairn_apply(CommandContext& context) {
  replica::Replica* replica = replica_or_reply(context);
  if (replica == nullptr) return;
  const std::optional<uint64_t> epoch = number_arg(context, 1, "epoch");
  if (!epoch) return;
  Result<storage::Cell> cell = storage::decode_cell(context.args[3]);
  if (!cell.is_ok()) {
    context.reply.error("ERR invalid cell: " + cell.status().message());
    return;
  }
  HlcTimestamp newer_timestamp = 0;
  Result<std::pair<replica::Fence, bool>> applied =
      replica->apply(*epoch, context.args[2], *cell, &newer_timestamp);
  if (!applied.is_ok()) return reply_status(context, applied.status());
  if (!applied->first.ok()) return context.reply.error(replica::fence_error_text(applied->first));
  // A newer cell is stored: say how new, so the coordinator can stamp its write after it.
  if (!applied->second && newer_timestamp != 0) {
    return context.reply.bulk(std::to_string(newer_timestamp));
  }
  context.reply.integer(applied->second ? 1 : 0);
}

void cairn_read(CommandContext& context) {
  replica::Replica* replica = replica_or_reply(context);
  if (replica == nullptr) return;
  const std::optional<uint64_t> epoch = number_arg(context, 1, "epoch");
  if (!epoch) return;
  Result<std::pair<replica::Fence, std::optional<storage::Cell>>> read =
      replica->read(*epoch, context.args[2]);
  if (!read.is_ok()) return reply_status(context, read.status());
  if (!read->first.ok()) return context.reply.error(replica::fence_error_text(read->first));
  if (!read->second) return context.reply.null();
  context.reply.bulk(storage::encode_cell(*read->second));
}

void cairn_scan(CommandContext& context) {
  replica::Replica* replica = replica_or_reply(context);
  if (replica == nullptr) return;
  const std::optional<uint64_t> epoch = number_arg(context, 1, "epoch");
  if (!epoch) return;
  const std::optional<uint64_t> start = number_arg(context, 2, "start token");
  if (!start) return;
  const std::optional<uint64_t> end = number_arg(context, 3, "end token");
  if (!end) return;
  const std::optional<uint64_t> count = number_arg(context, 4, "count");
  if (!count) return;
  if (*count == 0 || *count > kScanCountMax) {
    context.reply.error("ERR count must be between 1 and " + std::to_string(kScanCountMax));
    return;
  }
  Result<std::pair<replica::Fence, replica::ScanResult>> scanned =
      replica->scan(*epoch, *start, *end, static_cast<size_t>(*count));
  if (!scanned.is_ok()) return reply_status(context, scanned.status());
  if (!scanned->first.ok()) return context.reply.error(replica::fence_error_text(scanned->first));
  const replica::ScanResult& page = scanned->second;
  context.reply.array(3);
  // Tokens are unsigned 64-bit: a RESP integer is signed, so the token travels as a string.
  context.reply.bulk(std::to_string(page.next_token));
  context.reply.integer(page.done ? 1 : 0);
  context.reply.array(page.entries.size() * 2);
  for (const replica::ScanEntry& entry : page.entries) {
    context.reply.bulk(entry.key);
    context.reply.bulk(storage::encode_cell(entry.cell));
  }
}

void cairn_clear(CommandContext& context) {
  replica::Replica* replica = replica_or_reply(context);
  if (replica == nullptr) return;
  if (Status status = replica->clear(); !status.is_ok()) return reply_status(context, status);
  context.reply.ok();
}

void cairn_table_get(CommandContext& context) {
  replica::Replica* replica = replica_or_reply(context);
  if (replica == nullptr) return;
  const std::shared_ptr<const topology::RoutingTable> table = replica->tables().current();
  if (!table) return context.reply.null();
  context.reply.bulk(table->to_json_text());
}

void cairn_table_set(CommandContext& context) {
  replica::Replica* replica = replica_or_reply(context);
  if (replica == nullptr) return;
  Result<topology::RoutingTable> table = topology::RoutingTable::from_json_text(context.args[2]);
  if (!table.is_ok()) return reply_status(context, table.status());
  if (Status status = replica->tables().install(std::move(table).value()); !status.is_ok()) {
    return reply_status(context, status);
  }
  context.reply.ok();
}

CommandSpec spec(std::string name, int arity, uint32_t flags, std::string summary,
                 std::string complexity, Handler handler) {
  // Cairn's own commands: "since" is the Cairn version that introduced them.
  return make_command_spec("cluster", std::move(name), arity, flags, std::move(summary), "0.1.0",
                           std::move(complexity), std::move(handler));
}

}  // namespace

void register_internal_commands(CommandTable& table) {
  // CAIRN.AUTH is how a connection becomes internal, so it is neither kInternal nor behind AUTH.
  table.add(spec("cairn.auth", 2, kNoAuth | kInline | kFast | kLoading | kStale,
                 "Authenticates a cluster machine with the cluster secret", "O(N)", cairn_auth));
  table.add(spec("cairn.id", 1, kInternalFlags | kFast, "Returns this machine's id", "O(1)",
                 cairn_id));
  // kWrite: the acknowledgement waits for the WAL sync, as a client's write does.
  table.add(spec("cairn.apply", 4, kInternalFlags | kWrite,
                 "Applies a cell written by a coordinator (last write wins, epoch fenced)",
                 "O(1)", cairn_apply));
  table.add(spec("cairn.read", 3, kInternalFlags | kReadOnly,
                 "Returns the stored cell of a key (epoch fenced)", "O(1)", cairn_read));
  table.add(spec("cairn.scan", 5, kInternalFlags | kReadOnly,
                 "Returns a page of stored cells of a token range (epoch fenced)",
                 "O(N) where N is the number of cells returned", cairn_scan));
  table.add(spec("cairn.clear", 1, kInternalFlags | kWrite,
                 "Deletes every cell stored on this machine", "O(N)", cairn_clear));
  CommandSpec table_container = spec("cairn.table", -2, kInternalFlags,
                                     "A container for routing table commands",
                                     "Depends on subcommand.", nullptr);
  table_container.subcommands.push_back(spec("cairn.table|get", 2, kInternalFlags,
                                             "Returns the routing table as JSON", "O(N)",
                                             cairn_table_get));
  table_container.subcommands.push_back(
      spec("cairn.table|set", 3, kInternalFlags,
           "Installs a routing table if it is newer (or identical)", "O(N)", cairn_table_set));
  table.add(std::move(table_container));
}

}  // namespace cairn::commands
