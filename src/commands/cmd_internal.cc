// Internal commands: CAIRN.AUTH ID APPLY READ SCAN CLEAR TABLE MIGRATE REPAIR, what the machines of a
// cluster send each other (docs/formats.md "Internal protocol", docs/migration.md). Thin wrappers
// around replica::Replica. All but CAIRN.MIGRATE are kInline: they touch local storage only and
// never wait for another machine, so the front end runs them on its event loop even in cluster
// mode. CAIRN.MIGRATE is not: FINISH waits for the WAL of other machines, and SCAN, WAL and
// FENCE read pages of storage or sync it, so they run on a worker and never stall a loop.

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "commands/command.h"
#include "commands/parse.h"
#include "replica/replica.h"
#include "storage/cell.h"
#include "storage/engine.h"
#include "topology/routing_table.h"
#include "topology/token_range.h"

namespace cairn::commands {
namespace {

constexpr std::string_view kNotClusterMachine = "ERR this machine is not part of a cluster";
// A scan page asks for at most this many keys (the replica bounds its own work too).
constexpr uint64_t kScanCountMax = 10000;

constexpr uint32_t kInternalFlags = kInternal | kInline | kLoading | kStale;
// CAIRN.MIGRATE runs on a worker (see the file comment).
constexpr uint32_t kMigrateFlags = kInternal | kLoading | kStale;

// Bounds of CAIRN.MIGRATE's arguments (docs/migration.md).
constexpr uint64_t kMigrateScanCountMax = 10000;
constexpr uint64_t kWalPageBytesMax = 16 * 1024 * 1024;
constexpr size_t kHoldIdBytesMax = 128;
constexpr uint64_t kHoldTtlMsMax = 3600 * 1000;
constexpr size_t kFinishSourcesMax = 64;
// How long FINISH waits for the WAL tails before it answers NOTREADY (the driver retries).
constexpr int kFinishTimeoutMs = 5000;

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

// A flat array key, sub-key, cell, key, sub-key, cell, ... of stored cells (scan pages, WAL
// changes), each cell in its storage encoding (docs/formats.md). The sub-key is empty for a
// key's own cell and names a field of its row otherwise.
template <typename Entries>
void reply_cells(CommandContext& context, const Entries& entries) {
  context.reply.array(entries.size() * 3);
  for (const auto& entry : entries) {
    context.reply.bulk(entry.key);
    context.reply.bulk(entry.sub_key);
    context.reply.bulk(storage::encode_cell(entry.cell));
  }
}

// The WAL tail as one flat array of 4-tuples in sequence order: `LSN, key, sub-key, cell` for a
// cell, `LSN, start, end, ""` for a range deletion (an encoded cell is never empty), so the
// reader applies them in the order they were written.
void reply_wal_entries(CommandContext& context, const std::vector<storage::WalEntry>& entries) {
  context.reply.array(entries.size() * 4);
  for (const storage::WalEntry& entry : entries) {
    context.reply.integer(static_cast<int64_t>(entry.sequence));
    if (const storage::WalChange* cell = entry.cell()) {
      context.reply.bulk(cell->key);
      context.reply.bulk(cell->sub_key);
      context.reply.bulk(storage::encode_cell(cell->cell));
    } else {
      const storage::WalRangeDelete& deleted = *entry.range_delete();
      context.reply.bulk(topology::format_token(deleted.start));
      context.reply.bulk(topology::format_token(deleted.end));
      context.reply.bulk("");
    }
  }
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

// A token argument: decimal, or "0x" followed by 1-16 hex digits.
std::optional<uint64_t> parse_token(std::string_view text) {
  if (text.size() > 2 && text[0] == '0' && (text[1] == 'x' || text[1] == 'X')) {
    text.remove_prefix(2);
    if (text.size() > 16) return std::nullopt;
    uint64_t value = 0;
    const char* end = text.data() + text.size();
    const auto [parsed_end, error] = std::from_chars(text.data(), end, value, 16);
    if (error != std::errc() || parsed_end != end) return std::nullopt;
    return value;
  }
  return parse_u64(text);
}

std::optional<uint64_t> token_arg(CommandContext& context, size_t index, std::string_view what) {
  std::optional<uint64_t> value = parse_token(context.args[index]);
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
  // An optional fifth argument names a field of the key's row (docs/formats.md "Rows").
  const std::string_view sub_key = context.args.size() > 4 ? context.args[4] : std::string_view();
  if (context.args.size() > 5 || (context.args.size() == 5 && sub_key.empty())) {
    return context.reply.error("ERR CAIRN.APPLY takes epoch key cell [sub-key] (non-empty)");
  }
  HlcTimestamp newer_timestamp = 0;
  Result<std::pair<replica::Fence, bool>> applied =
      replica->apply(*epoch, context.args[2], *cell, &newer_timestamp, sub_key);
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
  const std::string_view sub_key = context.args.size() > 3 ? context.args[3] : std::string_view();
  if (context.args.size() > 4 || (context.args.size() == 4 && sub_key.empty())) {
    return context.reply.error("ERR CAIRN.READ takes epoch key [sub-key] (non-empty)");
  }
  Result<std::pair<replica::Fence, std::optional<storage::Cell>>> read =
      replica->read(*epoch, context.args[2], sub_key);
  if (!read.is_ok()) return reply_status(context, read.status());
  if (!read->first.ok()) return context.reply.error(replica::fence_error_text(read->first));
  if (!read->second) return context.reply.null();
  context.reply.bulk(storage::encode_cell(*read->second));
}

// CAIRN.ROW epoch key from-sub-key count: one page of a row as stored here (docs/formats.md
// "Internal protocol"): [header cell or null, row state, next sub-key or null, [sub-key, cell,
// ...]].
void cairn_row(CommandContext& context) {
  replica::Replica* replica = replica_or_reply(context);
  if (replica == nullptr) return;
  const std::optional<uint64_t> epoch = number_arg(context, 1, "epoch");
  if (!epoch) return;
  const std::optional<uint64_t> count = number_arg(context, 4, "count");
  if (!count) return;
  if (*count == 0 || *count > kScanCountMax) {
    context.reply.error("ERR count must be between 1 and " + std::to_string(kScanCountMax));
    return;
  }
  Result<std::pair<replica::Fence, replica::RowPage>> page =
      replica->read_row_page(*epoch, context.args[2], context.args[3], *count);
  if (!page.is_ok()) return reply_status(context, page.status());
  if (!page->first.ok()) return context.reply.error(replica::fence_error_text(page->first));
  const replica::RowPage& row = page->second;
  context.reply.array(4);
  if (row.header) {
    context.reply.bulk(storage::encode_cell(*row.header));
  } else {
    context.reply.null();
  }
  context.reply.bulk(storage::encode_row_state(row.state));
  if (row.next) {
    context.reply.bulk(*row.next);
  } else {
    context.reply.null();
  }
  context.reply.array(row.fields.size() * 2);
  for (const auto& [sub_key, cell] : row.fields) {
    context.reply.bulk(sub_key);
    context.reply.bulk(storage::encode_cell(cell));
  }
}

// The options of a page scan from args[first] on: the flag `flag_name` and `FROM position`, each
// at most once, in any order. False on anything else.
bool scan_options(const CommandContext& context, size_t first, std::string_view flag_name,
                  bool* flag, std::optional<std::string_view>* from) {
  for (size_t i = first; i < context.args.size(); ++i) {
    if (equals_ignore_case(context.args[i], flag_name) && !*flag) {
      *flag = true;
    } else if (equals_ignore_case(context.args[i], "FROM") && !*from &&
               i + 1 < context.args.size() && !context.args[i + 1].empty()) {
      *from = context.args[++i];
    } else {
      return false;
    }
  }
  return true;
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
  // Options: KEYS leaves out the fields of rows (a client's SCAN walks keys only); FROM starts
  // inside the start token, where a page that stopped in a big row said to resume.
  bool keys_only = false;
  std::optional<std::string_view> from;
  if (!scan_options(context, 5, "KEYS", &keys_only, &from)) {
    return context.reply.error("ERR CAIRN.SCAN takes epoch start end count [KEYS] [FROM position]");
  }
  Result<std::pair<replica::Fence, replica::ScanResult>> scanned = replica->scan(
      *epoch, *start, *end, static_cast<size_t>(*count), keys_only, from.value_or(""));
  if (!scanned.is_ok()) return reply_status(context, scanned.status());
  if (!scanned->first.ok()) return context.reply.error(replica::fence_error_text(scanned->first));
  const replica::ScanResult& page = scanned->second;
  context.reply.array(page.resume.empty() ? 3 : 4);
  // Tokens are unsigned 64-bit: a RESP integer is signed, so the token travels as a string.
  context.reply.bulk(std::to_string(page.next_token));
  context.reply.integer(page.done ? 1 : 0);
  reply_cells(context, page.entries);
  if (!page.resume.empty()) context.reply.bulk(page.resume);
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

// ---- CAIRN.MIGRATE (docs/migration.md "Internal commands") ----

void migrate_hold(CommandContext& context) {
  replica::Replica* replica = replica_or_reply(context);
  if (replica == nullptr) return;
  const std::string& id = context.args[2];
  if (id.empty() || id.size() > kHoldIdBytesMax) {
    return context.reply.error("ERR hold id must be 1 to " + std::to_string(kHoldIdBytesMax) +
                               " bytes");
  }
  const std::optional<uint64_t> ttl_ms = number_arg(context, 3, "ttl");
  if (!ttl_ms) return;
  if (*ttl_ms == 0 || *ttl_ms > kHoldTtlMsMax) {
    return context.reply.error("ERR ttl must be between 1 and " + std::to_string(kHoldTtlMsMax) +
                               " ms");
  }
  Result<uint64_t> latest = replica->engine().hold_wal(id, static_cast<int64_t>(*ttl_ms));
  if (!latest.is_ok()) return reply_status(context, latest.status());
  context.reply.integer(static_cast<int64_t>(*latest));
}

void migrate_release(CommandContext& context) {
  replica::Replica* replica = replica_or_reply(context);
  if (replica == nullptr) return;
  replica->engine().release_wal(context.args[2]);
  context.reply.ok();
}

void migrate_scan(CommandContext& context) {
  replica::Replica* replica = replica_or_reply(context);
  if (replica == nullptr) return;
  const std::optional<uint64_t> start = token_arg(context, 2, "start token");
  if (!start) return;
  const std::optional<uint64_t> end = token_arg(context, 3, "end token");
  if (!end) return;
  const std::optional<uint64_t> count = number_arg(context, 4, "count");
  if (!count) return;
  if (*count == 0 || *count > kMigrateScanCountMax) {
    return context.reply.error("ERR count must be between 1 and " +
                               std::to_string(kMigrateScanCountMax));
  }
  // STAMPS: every cell without its value (a target verifying its copy compares timestamps).
  // FROM: as CAIRN.SCAN's.
  bool stamps = false;
  std::optional<std::string_view> from;
  if (!scan_options(context, 5, "STAMPS", &stamps, &from)) {
    return context.reply.error("ERR syntax error");
  }
  Result<replica::ScanResult> page =
      replica->scan_stored(*start, *end, static_cast<size_t>(*count), from.value_or(""));
  if (!page.is_ok()) return reply_status(context, page.status());
  if (stamps) {
    for (replica::ScanEntry& entry : page->entries) entry.cell.value.clear();
  }
  context.reply.array(page->resume.empty() ? 2 : 3);
  context.reply.bulk(topology::format_token(page->next_token));
  reply_cells(context, page->entries);
  if (!page->resume.empty()) context.reply.bulk(page->resume);
}

void migrate_wal(CommandContext& context) {
  replica::Replica* replica = replica_or_reply(context);
  if (replica == nullptr) return;
  const std::optional<uint64_t> start = token_arg(context, 2, "start token");
  if (!start) return;
  const std::optional<uint64_t> end = token_arg(context, 3, "end token");
  if (!end) return;
  const std::optional<uint64_t> from = number_arg(context, 4, "LSN");
  if (!from) return;
  const std::optional<uint64_t> max_bytes = number_arg(context, 5, "max bytes");
  if (!max_bytes) return;
  if (*max_bytes == 0 || *max_bytes > kWalPageBytesMax) {
    return context.reply.error("ERR max bytes must be between 1 and " +
                               std::to_string(kWalPageBytesMax));
  }
  Result<storage::WalChanges> changes =
      replica->engine().wal_changes(*from, *start, *end, static_cast<size_t>(*max_bytes));
  if (!changes.is_ok()) {
    // "WALGONE <oldest>": the target copies the range again.
    if (changes.status().code() == StatusCode::kNotFound) {
      return context.reply.error(changes.status().message());
    }
    return reply_status(context, changes.status());
  }
  context.reply.array(3);
  context.reply.integer(static_cast<int64_t>(changes->next_sequence));
  context.reply.integer(static_cast<int64_t>(changes->latest_sequence));
  reply_wal_entries(context, changes->entries);
}

void migrate_fence(CommandContext& context) {
  replica::Replica* replica = replica_or_reply(context);
  if (replica == nullptr) return;
  const std::optional<uint64_t> epoch = number_arg(context, 2, "epoch");
  if (!epoch) return;
  const std::optional<uint64_t> start = token_arg(context, 3, "start token");
  if (!start) return;
  const std::optional<uint64_t> end = token_arg(context, 4, "end token");
  if (!end) return;
  Result<std::pair<replica::Fence, uint64_t>> fenced = replica->fence_range(*epoch, *start, *end);
  if (!fenced.is_ok()) return reply_status(context, fenced.status());
  if (!fenced->first.ok()) return context.reply.error(replica::fence_error_text(fenced->first));
  context.reply.integer(static_cast<int64_t>(fenced->second));
}

void migrate_finish(CommandContext& context) {
  if (replica_or_reply(context) == nullptr) return;
  if ((context.args.size() - 3) % 2 != 0) {
    return context.reply.error("ERR FINISH takes a migration id and (source id, LSN) pairs");
  }
  const std::optional<uint64_t> migration = number_arg(context, 2, "migration id");
  if (!migration) return;
  const size_t sources = (context.args.size() - 3) / 2;
  if (sources > kFinishSourcesMax) {
    return context.reply.error("ERR at most " + std::to_string(kFinishSourcesMax) + " sources");
  }
  std::vector<std::pair<uint64_t, uint64_t>> source_lsns;
  source_lsns.reserve(sources);
  for (size_t i = 3; i + 1 < context.args.size(); i += 2) {
    const std::optional<uint64_t> source = number_arg(context, i, "source id");
    if (!source) return;
    const std::optional<uint64_t> lsn = number_arg(context, i + 1, "LSN");
    if (!lsn) return;
    source_lsns.emplace_back(*source, *lsn);
  }
  const Status status = context.server.migration_finish(*migration, source_lsns, kFinishTimeoutMs);
  if (status.is_ok()) return context.reply.ok();
  // The message starts with its code word (NOTREADY ...) and is the reply as is.
  if (status.message().empty()) return context.reply.error("ERR " + status.to_string());
  context.reply.error(status.message());
}

// ---- CAIRN.REPAIR (docs/cluster.md "Anti-entropy repair") ----

// Bounds of CAIRN.REPAIR DIGEST: leaves per digest and cells one digest may visit.
constexpr uint64_t kDigestLeavesMax = 4096;
constexpr uint64_t kDigestCellsMax = 1'000'000;

// CAIRN.REPAIR DIGEST epoch start end leaves max-cells [purge-before-ms]: [visited, purge bound,
// bound start, bound end, hash, cells, hash, cells ...] — this machine's purge bound of the
// range holding `start` (0: none) and the range it was set for, then one pair per leaf, hashes
// as decimal strings (unsigned 64-bit), leaving out deletions before purge-before-ms;
// "TOOBIG <visited>" when the range holds more than max-cells cells.
void repair_digest(CommandContext& context) {
  replica::Replica* replica = replica_or_reply(context);
  if (replica == nullptr) return;
  const std::optional<uint64_t> epoch = number_arg(context, 2, "epoch");
  if (!epoch) return;
  const std::optional<uint64_t> start = token_arg(context, 3, "start token");
  if (!start) return;
  const std::optional<uint64_t> end = token_arg(context, 4, "end token");
  if (!end) return;
  const std::optional<uint64_t> leaves = number_arg(context, 5, "leaves");
  if (!leaves) return;
  const std::optional<uint64_t> max_cells = number_arg(context, 6, "max cells");
  if (!max_cells) return;
  std::optional<uint64_t> purge_before = 0;
  if (context.args.size() > 7) purge_before = number_arg(context, 7, "purge-before ms");
  if (!purge_before) return;
  if (*leaves == 0 || *leaves > kDigestLeavesMax) {
    return context.reply.error("ERR leaves must be between 1 and " +
                               std::to_string(kDigestLeavesMax));
  }
  if (*max_cells == 0 || *max_cells > kDigestCellsMax) {
    return context.reply.error("ERR max cells must be between 1 and " +
                               std::to_string(kDigestCellsMax));
  }
  Result<std::pair<replica::Fence, replica::RangeDigest>> digest =
      replica->digest(*epoch, *start, *end, static_cast<size_t>(*leaves),
                      static_cast<size_t>(*max_cells), static_cast<int64_t>(*purge_before));
  if (!digest.is_ok()) return reply_status(context, digest.status());
  if (!digest->first.ok()) return context.reply.error(replica::fence_error_text(digest->first));
  const replica::RangeDigest& result = digest->second;
  if (result.truncated) return context.reply.error("TOOBIG " + std::to_string(result.visited));
  const storage::PurgeBound bound =
      replica->engine().purge_bounds().find(*start).value_or(storage::PurgeBound{});
  context.reply.array(4 + result.hashes.size() * 2);
  context.reply.integer(static_cast<int64_t>(result.visited));
  context.reply.integer(bound.before_ms);
  context.reply.bulk(std::to_string(bound.start));
  context.reply.bulk(std::to_string(bound.end));
  for (size_t i = 0; i < result.hashes.size(); ++i) {
    context.reply.bulk(std::to_string(result.hashes[i]));
    context.reply.integer(static_cast<int64_t>(result.cells[i]));
  }
}

// CAIRN.REPAIR DROP start end: discards this machine's copy of a token range (a local range
// deletion no WAL reader relays), so that repair fills it again from the other replicas; for an
// operator replacing a copy they distrust, and for the tests that prove repair does it.
void repair_drop(CommandContext& context) {
  replica::Replica* replica = replica_or_reply(context);
  if (replica == nullptr) return;
  const std::optional<uint64_t> start = token_arg(context, 2, "start token");
  if (!start) return;
  const std::optional<uint64_t> end = token_arg(context, 3, "end token");
  if (!end) return;
  if (!topology::before_end(*start, *end)) {
    return context.reply.error("ERR end must be after start (0 = the ring's end)");
  }
  if (Status status = replica->engine().drop_range(*start, *end); !status.is_ok()) {
    return reply_status(context, status);
  }
  context.reply.ok();
}

// CAIRN.REPAIR COMPACT: a full compaction now, so deletions past their purge bound or the grace
// period leave the disk without waiting for RocksDB to pick their files (operators, tests).
void repair_compact(CommandContext& context) {
  replica::Replica* replica = replica_or_reply(context);
  if (replica == nullptr) return;
  if (Status status = replica->engine().compact_all(); !status.is_ok()) {
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

// CAIRN.PUBLISH c|s <channel> <message> [c|s <channel> <message> ...]: messages another machine
// published (c: PUBLISH, s: SPUBLISH), in its order, for this machine's subscribers only
// (docs/pubsub.md "Across the cluster").
void cairn_publish(CommandContext& ctx) {
  if ((ctx.args.size() - 1) % 3 != 0) {
    ctx.reply.error("ERR wrong number of arguments for 'cairn.publish' command");
    return;
  }
  for (size_t i = 1; i + 2 < ctx.args.size(); i += 3) {
    const PubSubKind kind = ctx.args[i] == "s" ? PubSubKind::kShard : PubSubKind::kChannel;
    ctx.server.publish_local(kind, ctx.args[i + 1], ctx.args[i + 2]);
  }
  ctx.reply.ok();
}

}  // namespace

void register_internal_commands(CommandTable& table) {
  table.add(spec("cairn.publish", -4, kInternalFlags | kFast,
                 "Delivers messages published on another machine to this machine's subscribers",
                 "O(N) where N is the number of receiving clients", cairn_publish));
  // CAIRN.AUTH is how a connection becomes internal, so it is neither kInternal nor behind AUTH.
  table.add(spec("cairn.auth", 2, kNoAuth | kInline | kFast | kLoading | kStale,
                 "Authenticates a cluster machine with the cluster secret", "O(N)", cairn_auth));
  table.add(spec("cairn.id", 1, kInternalFlags | kFast, "Returns this machine's id", "O(1)",
                 cairn_id));
  // kWrite: the acknowledgement waits for the WAL sync, as a client's write does.
  table.add(spec("cairn.apply", -4, kInternalFlags | kWrite,
                 "Applies a cell (of a key, or of a row's field) written by a coordinator "
                 "(last write wins, epoch fenced)",
                 "O(1)", cairn_apply));
  table.add(spec("cairn.read", -3, kInternalFlags | kReadOnly,
                 "Returns the stored cell of a key or of a row's field (epoch fenced)", "O(1)",
                 cairn_read));
  table.add(spec("cairn.row", 5, kInternalFlags | kReadOnly,
                 "Returns a page of a row: its header, row state and field cells (epoch fenced)",
                 "O(N) where N is the number of cells returned", cairn_row));
  table.add(spec("cairn.scan", -5, kInternalFlags | kReadOnly,
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

  CommandSpec migrate = spec("cairn.migrate", -2, kMigrateFlags,
                             "A container for the migration commands (docs/migration.md)",
                             "Depends on subcommand.", nullptr);
  migrate.subcommands.push_back(spec("cairn.migrate|hold", 4, kMigrateFlags | kFast,
                                     "Keeps this machine's WAL from now on; returns its latest LSN",
                                     "O(1)", migrate_hold));
  migrate.subcommands.push_back(spec("cairn.migrate|release", 3, kMigrateFlags | kFast,
                                     "Releases a WAL hold", "O(1)", migrate_release));
  migrate.subcommands.push_back(
      spec("cairn.migrate|scan", -5, kMigrateFlags | kReadOnly,
           "Returns a page of the cells this machine stores in a token range (not fenced); "
           "STAMPS: without their values",
           "O(N) where N is the number of cells returned", migrate_scan));
  migrate.subcommands.push_back(
      spec("cairn.migrate|wal", 6, kMigrateFlags | kReadOnly,
           "Returns the changes to a token range in the WAL since an LSN",
           "O(N) where N is the number of WAL bytes read", migrate_wal));
  migrate.subcommands.push_back(
      spec("cairn.migrate|fence", 5, kMigrateFlags,
           "Refuses a token range at an epoch from now on; returns the fenced LSN", "O(1)",
           migrate_fence));
  migrate.subcommands.push_back(
      spec("cairn.migrate|finish", -5, kMigrateFlags,
           "Waits until this target applied every source's WAL up to the given LSNs",
           "O(N) where N is the number of WAL records applied", migrate_finish));
  table.add(std::move(migrate));

  CommandSpec repair = spec("cairn.repair", -2, kMigrateFlags,
                            "A container for the anti-entropy repair commands",
                            "Depends on subcommand.", nullptr);
  repair.subcommands.push_back(
      spec("cairn.repair|digest", -7, kMigrateFlags | kReadOnly,
           "Returns digests of the cells stored in a token range, one per leaf (epoch fenced)",
           "O(N) where N is the number of cells in the range", repair_digest));
  repair.subcommands.push_back(
      spec("cairn.repair|drop", 4, kMigrateFlags | kWrite,
           "Discards this machine's copy of a token range; repair fills it again",
           "O(1)", repair_drop));
  repair.subcommands.push_back(
      spec("cairn.repair|compact", 2, kMigrateFlags | kWrite,
           "Compacts this machine's storage now (deletions past their purge bound or grace "
           "period go)",
           "O(N) where N is the number of cells stored", repair_compact));
  table.add(std::move(repair));
}

}  // namespace cairn::commands
