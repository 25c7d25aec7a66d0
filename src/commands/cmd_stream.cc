// The stream family (XADD, XRANGE, XREAD, consumer groups...), with redis-server 7.0 semantics,
// replies and error texts. A stream is a row (docs/formats.md "Streams", stream_row.h): entries
// are cells under sub-keys that sort by ID, one meta cell holds the length and the last ID, and
// consumer groups, consumers and pending entries are cells of the same row, so a stream moves,
// replicates and is deleted like any row. Every write is a read-modify-write inside
// Keyspace::atomically() (in a cluster: at the shard leader), so IDs are assigned in one place
// and never go backwards: a new `*` ID is max(now, last ID) as in Redis, the last ID stored in
// the meta cell. Replies are staged and sent only when the keyspace operation succeeded.

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "commands/command.h"
#include "commands/keyspace_events.h"
#include "commands/parse.h"
#include "commands/rows.h"
#include "commands/stream_row.h"

namespace cairn::commands {
namespace {

using coordinator::Keyspace;
using storage::Cell;
using storage::ValueType;

constexpr ValueType kStream = ValueType::kStream;
// Cells written or removed per keyspace call.
constexpr size_t kCellsPerWrite = 1024;
// Default LIMIT of an approximate trim (Redis: 100 * stream-node-max-entries, at most 10000).
constexpr int64_t kApproxTrimLimit = 100 * static_cast<int64_t>(kStreamNodeEntries);

constexpr std::string_view kErrInvalidId =
    "ERR Invalid stream ID specified as stream command argument";
constexpr std::string_view kErrInvalidStart = "ERR invalid start ID for the interval";
constexpr std::string_view kErrInvalidEnd = "ERR invalid end ID for the interval";
constexpr std::string_view kErrIdTooSmall =
    "ERR The ID specified in XADD is equal or smaller than the target stream top item";
constexpr std::string_view kErrIdZero = "ERR The ID specified in XADD must be greater than 0-0";
constexpr std::string_view kErrExhausted =
    "ERR The stream has exhausted the last possible ID, unable to add more items";
constexpr std::string_view kErrMaxlenMinid =
    "ERR syntax error, MAXLEN and MINID options at the same time are not compatible";
constexpr std::string_view kErrTimeoutNotInteger =
    "ERR timeout is not an integer or out of range";
constexpr std::string_view kErrTimeoutNegative = "ERR timeout is negative";
constexpr std::string_view kErrTimeoutOutOfRange = "ERR timeout is out of range";
constexpr std::string_view kErrNoKey = "ERR no such key";

std::string arity_error(std::string_view name) {
  return "ERR wrong number of arguments for '" + to_lower(name) + "' command";
}

std::string subcommand_syntax_error(const std::vector<std::string>& args) {
  std::string command = args[0];
  for (char& c : command) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return "ERR unknown subcommand or wrong number of arguments for '" + args[1].substr(0, 128) +
         "'. Try " + command + " HELP.";
}

// ---- Reading and writing a stream row ----

struct StreamRead {
  bool replied = false;  // WRONGTYPE was written
  RowOfType row;
  StreamMeta meta;
  bool exists() const { return row.exists(); }
};

Result<StreamRead> read_stream(Keyspace& keyspace, const std::string& key,
                               resp::ReplyWriter& reply) {
  StreamRead stream;
  stream.row = read_row_of_type(keyspace, key, kStream, reply, /*need_count=*/false);
  if (!stream.row.status.is_ok()) return stream.row.status;
  stream.replied = stream.row.replied;
  if (stream.replied || !stream.exists()) return stream;
  const std::string meta_key = stream_meta_sub_key();
  Result<std::vector<std::optional<Cell>>> cells = keyspace.read_fields(
      key, std::span<const std::string>(&meta_key, 1), stream.row.hidden());
  if (!cells.is_ok()) return cells.status();
  std::optional<StreamMeta> meta;
  if ((*cells)[0]) meta = decode_stream_meta((*cells)[0]->value);
  if (!meta) return Status::corruption("a stream without a valid meta cell");
  stream.meta = *meta;
  return stream;
}

// The changes one command makes to a stream row, applied together at the end (the meta cell
// last, which wakes blocked readers). Reads of a sub-key see the changes made so far.
class StreamChanges {
 public:
  StreamChanges(Keyspace& keyspace, const std::string& key, HlcTimestamp hidden)
      : keyspace_(keyspace), key_(key), hidden_(hidden) {}

  Result<std::optional<std::string>> get(const std::string& sub_key) {
    if (auto it = changes_.find(sub_key); it != changes_.end()) return it->second;
    Result<std::vector<std::optional<Cell>>> cells =
        keyspace_.read_fields(key_, std::span<const std::string>(&sub_key, 1), hidden_);
    if (!cells.is_ok()) return cells.status();
    if (!(*cells)[0]) return std::optional<std::string>();
    return std::optional<std::string>(std::move((*cells)[0]->value));
  }
  void put(std::string sub_key, std::string value) {
    changes_[std::move(sub_key)] = std::move(value);
  }
  void remove(std::string sub_key) { changes_[std::move(sub_key)] = std::nullopt; }

  Status commit(const StreamMeta* meta) {
    std::vector<std::string> removes;
    std::vector<std::pair<std::string, std::string>> puts;
    for (auto& [sub_key, value] : changes_) {
      if (value) {
        puts.emplace_back(sub_key, std::move(*value));
      } else {
        removes.push_back(sub_key);
      }
    }
    changes_.clear();
    for (size_t i = 0; i < removes.size(); i += kCellsPerWrite) {
      if (Status status = keyspace_.remove_fields(
              key_, kStream,
              std::span(removes).subspan(i, std::min(kCellsPerWrite, removes.size() - i)));
          !status.is_ok()) {
        return status;
      }
    }
    if (meta != nullptr) puts.emplace_back(stream_meta_sub_key(), encode_stream_meta(*meta));
    for (size_t i = 0; i < puts.size(); i += kCellsPerWrite) {
      if (Status status = keyspace_.write_fields(
              key_, kStream,
              std::span(puts).subspan(i, std::min(kCellsPerWrite, puts.size() - i)));
          !status.is_ok()) {
        return status;
      }
    }
    return Status::ok();
  }

 private:
  Keyspace& keyspace_;
  const std::string& key_;
  HlcTimestamp hidden_;
  std::map<std::string, std::optional<std::string>> changes_;
};

using EntryVisitor = std::function<bool(const StreamId& id, StreamEntry& entry)>;

// Visits the entries with start <= ID <= end in ID order (descending when `reverse`) until
// `visit` returns false.
Status visit_entries(Keyspace& keyspace, const std::string& key, const StreamRead& stream,
                     const StreamId& start, const StreamId& end, bool reverse,
                     const EntryVisitor& visit) {
  if (start > end || stream.meta.length == 0) return Status::ok();
  Status inner = Status::ok();
  auto visitor = [&](std::string_view sub_key, const Cell& cell) {
    const std::optional<StreamId> id = stream_id_of_entry_sub_key(sub_key);
    if (!id) return !sub_key.empty() && sub_key[0] == storage::kFieldNamespace && !reverse;
    if (*id < start || *id > end) return reverse ? *id > end : *id < start;
    std::optional<StreamEntry> entry = decode_stream_entry(cell.value);
    if (!entry) {
      inner = Status::corruption("a stream entry that does not decode");
      return false;
    }
    return visit(*id, *entry);
  };
  Status status = Status::ok();
  if (!reverse) {
    // Trimmed and deleted entries stay as tombstones until compaction: a scan starts at the
    // first entry the meta cell names, never steps over them.
    const StreamId from = std::max(start, stream.meta.first_id);
    status = keyspace.scan_fields(key, stream_entry_sub_key(from), stream.row.hidden(), visitor);
  } else {
    std::string below = end.is_max() ? std::string(1, storage::kFieldNamespace + 1)
                                     : stream_entry_sub_key(end) + std::string(1, '\0');
    status = keyspace.scan_fields_reverse(key, stream_entry_sub_key(start), below,
                                          stream.row.hidden(), visitor);
  }
  if (!status.is_ok()) return status;
  return inner;
}

// Visits the cells whose sub-key starts with `prefix`, from prefix + `from` on.
Status visit_prefix(Keyspace& keyspace, const std::string& key, const StreamRead& stream,
                    const std::string& prefix, std::string_view from,
                    const std::function<bool(std::string_view sub_key, const Cell& cell)>& fn) {
  return keyspace.scan_fields(key, prefix + std::string(from), stream.row.hidden(),
                              [&](std::string_view sub_key, const Cell& cell) {
                                if (!sub_key.starts_with(prefix)) return false;
                                return fn(sub_key, cell);
                              });
}

std::string id_bytes(const StreamId& id) {
  std::string sub_key = stream_entry_sub_key(id);
  return sub_key.substr(1);
}

Result<std::optional<StreamEntry>> read_entry(Keyspace& keyspace, const std::string& key,
                                              const StreamRead& stream, const StreamId& id) {
  const std::string sub_key = stream_entry_sub_key(id);
  Result<std::vector<std::optional<Cell>>> cells = keyspace.read_fields(
      key, std::span<const std::string>(&sub_key, 1), stream.row.hidden());
  if (!cells.is_ok()) return cells.status();
  if (!(*cells)[0]) return std::optional<StreamEntry>();
  std::optional<StreamEntry> entry = decode_stream_entry((*cells)[0]->value);
  if (!entry) return Status::corruption("a stream entry that does not decode");
  return entry;
}

// The first (or last) entry's ID, if any.
Result<std::optional<StreamId>> edge_id(Keyspace& keyspace, const std::string& key,
                                        const StreamRead& stream, bool last) {
  std::optional<StreamId> found;
  Status status = visit_entries(keyspace, key, stream, StreamId{0, 0}, kMaxStreamId, last,
                                [&](const StreamId& id, StreamEntry&) {
                                  found = id;
                                  return false;
                                });
  if (!status.is_ok()) return status;
  return found;
}

void write_id(resp::ReplyWriter& reply, const StreamId& id) { reply.bulk(id.to_string()); }

void write_entry(resp::ReplyWriter& reply, const StreamId& id, const StreamEntry& entry) {
  reply.array(2);
  write_id(reply, id);
  reply.array(entry.fields.size() * 2);
  for (const auto& [field, value] : entry.fields) {
    reply.bulk(field);
    reply.bulk(value);
  }
}

using Entries = std::vector<std::pair<StreamId, StreamEntry>>;

Result<Entries> collect_entries(Keyspace& keyspace, const std::string& key,
                                const StreamRead& stream, const StreamId& start,
                                const StreamId& end, bool reverse, uint64_t count) {
  Entries entries;
  Status status = visit_entries(keyspace, key, stream, start, end, reverse,
                                [&](const StreamId& id, StreamEntry& entry) {
                                  entries.emplace_back(id, std::move(entry));
                                  return count == 0 || entries.size() < count;
                                });
  if (!status.is_ok()) return status;
  return entries;
}

void write_entries(resp::ReplyWriter& reply, const Entries& entries) {
  reply.array(entries.size());
  for (const auto& [id, entry] : entries) write_entry(reply, id, entry);
}

// Runs `fn` under the key lock with the key read as a stream.
void run_stream_command(CommandContext& ctx, const std::string& key,
                        const std::function<Status(resp::ReplyWriter&, StreamRead&)>& fn) {
  run_row_command(ctx, std::span(&key, 1), [&](resp::ReplyWriter& reply) -> Status {
    Result<StreamRead> stream = read_stream(ctx.keyspace, key, reply);
    if (!stream.is_ok()) return stream.status();
    if (stream->replied) return Status::ok();
    return fn(reply, *stream);
  });
}

// For read-only commands: nullopt after replying (a storage error or WRONGTYPE).
std::optional<StreamRead> read_stream_or_reply(CommandContext& ctx, const std::string& key) {
  Result<StreamRead> stream = read_stream(ctx.keyspace, key, ctx.reply);
  if (!stream.is_ok()) {
    ctx.reply.error(storage_error_reply(stream.status()));
    return std::nullopt;
  }
  if (stream->replied) return std::nullopt;
  return std::move(stream).value();
}

// ---- Lag and entries-read (Redis's streamEstimateDistanceFromFirstEverEntry) ----

bool range_has_tombstones(const StreamMeta& meta, const StreamId& start) {
  if (meta.length == 0 || meta.max_deleted_id.is_zero()) return false;
  if (meta.first_id > meta.max_deleted_id) return false;
  return start <= meta.max_deleted_id;
}

int64_t estimate_entries_read(const StreamMeta& meta, const StreamId& id) {
  if (meta.entries_added == 0) return 0;
  if (meta.length == 0 && id <= meta.last_id) return static_cast<int64_t>(meta.entries_added);
  if (id == meta.last_id) return static_cast<int64_t>(meta.entries_added);
  if (id > meta.last_id) return -1;
  if (meta.max_deleted_id.is_zero() || meta.max_deleted_id < meta.first_id) {
    if (id < meta.first_id) return static_cast<int64_t>(meta.entries_added - meta.length);
    if (id == meta.first_id) return static_cast<int64_t>(meta.entries_added - meta.length + 1);
  }
  return -1;
}

void write_lag(resp::ReplyWriter& reply, const StreamMeta& meta, const StreamGroup& group) {
  if (meta.entries_added == 0) return reply.integer(0);
  if (group.entries_read != -1 && !range_has_tombstones(meta, group.last_delivered)) {
    return reply.integer(static_cast<int64_t>(meta.entries_added) - group.entries_read);
  }
  const int64_t read = estimate_entries_read(meta, group.last_delivered);
  if (read == -1) return reply.null();
  reply.integer(static_cast<int64_t>(meta.entries_added) - read);
}

// ---- Trimming ----

enum class TrimStrategy { kNone, kMaxlen, kMinid };

struct TrimArgs {
  TrimStrategy strategy = TrimStrategy::kNone;
  bool approx = false;
  int64_t maxlen = 0;
  StreamId minid;
  int64_t limit = 0;  // 0 = no limit
};

struct AddArgs {
  TrimArgs trim;
  bool nomkstream = false;
  bool id_given = false;
  bool seq_given = true;
  StreamId id;
};

// Redis's streamParseAddOrTrimArgsOrReply: parses from args[2]; returns the index of the
// first field (XADD) or args.size() (XTRIM), or nullopt after an error reply.
std::optional<size_t> parse_add_or_trim(CommandContext& ctx, AddArgs& out, bool xadd) {
  const std::vector<std::string>& args = ctx.args;
  bool limit_given = false;
  size_t i = 2;
  for (; i < args.size(); ++i) {
    const size_t more = args.size() - 1 - i;
    const std::string& opt = args[i];
    if (xadd && opt == "*") {
      break;
    } else if ((equals_ignore_case(opt, "maxlen") || equals_ignore_case(opt, "minid")) && more) {
      const bool maxlen = equals_ignore_case(opt, "maxlen");
      if (out.trim.strategy != TrimStrategy::kNone) {
        ctx.reply.error(kErrMaxlenMinid);
        return std::nullopt;
      }
      out.trim.approx = false;
      const std::string& next = args[i + 1];
      if (more >= 2 && next == "~") {
        out.trim.approx = true;
        ++i;
      } else if (more >= 2 && next == "=") {
        ++i;
      }
      if (maxlen) {
        const std::optional<int64_t> value = parse_int64(args[i + 1]);
        if (!value) {
          ctx.reply.error(kErrNotInteger);
          return std::nullopt;
        }
        if (*value < 0) {
          ctx.reply.error("ERR The MAXLEN argument must be >= 0.");
          return std::nullopt;
        }
        out.trim.maxlen = *value;
        out.trim.strategy = TrimStrategy::kMaxlen;
      } else {
        const std::optional<StreamId> id = parse_stream_id(args[i + 1], 0, /*strict=*/true);
        if (!id) {
          ctx.reply.error(kErrInvalidId);
          return std::nullopt;
        }
        out.trim.minid = *id;
        out.trim.strategy = TrimStrategy::kMinid;
      }
      ++i;
    } else if (equals_ignore_case(opt, "limit") && more) {
      const std::optional<int64_t> value = parse_int64(args[i + 1]);
      if (!value) {
        ctx.reply.error(kErrNotInteger);
        return std::nullopt;
      }
      if (*value < 0) {
        ctx.reply.error("ERR The LIMIT argument must be >= 0.");
        return std::nullopt;
      }
      out.trim.limit = *value;
      limit_given = true;
      ++i;
    } else if (xadd && equals_ignore_case(opt, "nomkstream")) {
      out.nomkstream = true;
    } else if (xadd) {
      const std::optional<StreamId> id = parse_stream_id(opt, 0, true, &out.seq_given);
      if (!id) {
        ctx.reply.error(kErrInvalidId);
        return std::nullopt;
      }
      out.id = *id;
      out.id_given = true;
      break;
    } else {
      ctx.reply.error(kErrSyntax);
      return std::nullopt;
    }
  }
  if (out.trim.limit != 0 && out.trim.strategy == TrimStrategy::kNone) {
    ctx.reply.error(
        "ERR syntax error, LIMIT cannot be used without specifying a trimming strategy");
    return std::nullopt;
  }
  if (!xadd && out.trim.strategy == TrimStrategy::kNone) {
    ctx.reply.error("ERR syntax error, XTRIM must be called with a trimming strategy");
    return std::nullopt;
  }
  if (limit_given) {
    if (!out.trim.approx) {
      ctx.reply.error("ERR syntax error, LIMIT cannot be used without the special ~ option");
      return std::nullopt;
    }
  } else {
    out.trim.limit = out.trim.approx ? kApproxTrimLimit : 0;
  }
  return i;
}

// Trims `stream` as Redis's streamTrim does, over the emulated nodes (stream_row.h): whole
// nodes first; an approximate trim stops at the first node it cannot remove whole. Returns
// the number of entries removed; updates stream.meta (first ID), the caller writes it.
Result<int64_t> trim_stream(Keyspace& keyspace, const std::string& key, StreamRead& stream,
                            StreamChanges& changes, const TrimArgs& trim) {
  int64_t deleted = 0;
  StreamMeta& meta = stream.meta;
  StreamId from = meta.first_id;
  while (meta.length > 0) {
    if (trim.strategy == TrimStrategy::kMaxlen && meta.length <= uint64_t(trim.maxlen)) break;
    // The head node: the entries sharing the first entry's node number.
    std::vector<StreamId> node;
    std::optional<uint64_t> node_number;
    Status status = visit_entries(keyspace, key, stream, from, kMaxStreamId, false,
                                  [&](const StreamId& id, StreamEntry& entry) {
                                    if (node_number && *node_number != entry.node) return false;
                                    node_number = entry.node;
                                    node.push_back(id);
                                    return node.size() < kStreamNodeEntries;
                                  });
    if (!status.is_ok()) return status;
    if (node.empty()) break;
    // The work bound: a node that would take the count past LIMIT stays (Redis's check).
    if (trim.limit != 0 && deleted + static_cast<int64_t>(node.size()) > trim.limit) break;
    bool remove_node = false;
    if (trim.strategy == TrimStrategy::kMaxlen) {
      remove_node = meta.length - node.size() >= uint64_t(trim.maxlen);
    } else {
      remove_node = node.back() < trim.minid;
    }
    if (remove_node) {
      for (const StreamId& id : node) changes.remove(stream_entry_sub_key(id));
      meta.length -= node.size();
      deleted += static_cast<int64_t>(node.size());
      from = node.back();
      if (!from.increment()) break;
      continue;
    }
    if (trim.approx) break;
    for (const StreamId& id : node) {
      if (trim.strategy == TrimStrategy::kMaxlen && meta.length <= uint64_t(trim.maxlen)) break;
      if (trim.strategy == TrimStrategy::kMinid && id >= trim.minid) break;
      changes.remove(stream_entry_sub_key(id));
      --meta.length;
      ++deleted;
    }
    break;
  }
  if (deleted > 0) {
    // The removals are not written yet: the new first entry is read past them.
    if (meta.length == 0) {
      meta.first_id = StreamId{};
    } else {
      std::optional<StreamId> first;
      int64_t skip = deleted;
      Status status = visit_entries(keyspace, key, stream, StreamId{0, 0}, kMaxStreamId, false,
                                    [&](const StreamId& id, StreamEntry&) {
                                      if (skip > 0) {
                                        --skip;
                                        return true;
                                      }
                                      first = id;
                                      return false;
                                    });
      if (!status.is_ok()) return status;
      if (first) meta.first_id = *first;
    }
  }
  return deleted;
}

// ---- XADD / XTRIM / XDEL / XLEN / XRANGE / XREVRANGE ----

void xadd_command(CommandContext& ctx) {
  AddArgs args;
  const std::optional<size_t> field_pos = parse_add_or_trim(ctx, args, /*xadd=*/true);
  if (!field_pos) return;
  // The fields follow the ID ("*" or explicit) the parse stopped at.
  const int64_t fields =
      static_cast<int64_t>(ctx.args.size()) - static_cast<int64_t>(*field_pos) - 1;
  if (fields < 2 || fields % 2 == 1) return ctx.reply.error(arity_error(ctx.args[0]));
  if (args.id_given && args.seq_given && args.id.is_zero()) return ctx.reply.error(kErrIdZero);
  const std::string& key = ctx.args[1];
  run_stream_command(ctx, key, [&](resp::ReplyWriter& reply, StreamRead& stream) -> Status {
    if (!stream.exists()) {
      if (args.nomkstream) {
        reply.null();
        return Status::ok();
      }
      if (Status status = create_row(ctx.keyspace, key, kStream, stream.row); !status.is_ok()) {
        return status;
      }
      stream.meta = StreamMeta{};
    }
    StreamMeta& meta = stream.meta;
    if (meta.last_id.is_max()) {
      reply.error(kErrExhausted);
      return Status::ok();
    }
    StreamId id;
    if (args.id_given) {
      if (args.seq_given) {
        id = args.id;
      } else if (meta.last_id.ms == args.id.ms) {
        if (meta.last_id.seq == UINT64_MAX) {
          reply.error(kErrIdTooSmall);
          return Status::ok();
        }
        id = StreamId{meta.last_id.ms, meta.last_id.seq + 1};
      } else {
        id = args.id;
      }
    } else {
      // Never behind the last ID, whatever the clock says (a leader change, a clock step).
      const uint64_t now = static_cast<uint64_t>(std::max<int64_t>(ctx.keyspace.now_ms(), 0));
      if (now > meta.last_id.ms) {
        id = StreamId{now, 0};
      } else {
        id = meta.last_id;
        id.increment();
      }
    }
    if (id <= meta.last_id) {
      reply.error(kErrIdTooSmall);
      return Status::ok();
    }
    StreamEntry entry;
    if (meta.length == 0 || meta.node_fill >= kStreamNodeEntries) {
      meta.node = meta.entries_added;
      meta.node_fill = 0;
    }
    entry.node = meta.node;
    for (size_t i = *field_pos + 1; i + 1 < ctx.args.size(); i += 2) {
      entry.fields.emplace_back(ctx.args[i], ctx.args[i + 1]);
    }
    StreamChanges changes(ctx.keyspace, key, stream.row.hidden());
    changes.put(stream_entry_sub_key(id), encode_stream_entry(entry));
    ++meta.node_fill;
    ++meta.length;
    ++meta.entries_added;
    meta.last_id = id;
    if (meta.length == 1) meta.first_id = id;
    // The new entry is not written yet; trimming never removes it (Redis trims after the add,
    // and a MAXLEN 0 trim of a stream of one removes it: handled as Redis does, by count).
    report_keyspace_event(ctx, kEventStream, "xadd", key);
    if (args.trim.strategy != TrimStrategy::kNone) {
      if (Status status = changes.commit(nullptr); !status.is_ok()) return status;
      Result<int64_t> trimmed = trim_stream(ctx.keyspace, key, stream, changes, args.trim);
      if (!trimmed.is_ok()) return trimmed.status();
      if (*trimmed > 0) report_keyspace_event(ctx, kEventStream, "xtrim", key);
    }
    write_id(reply, id);
    return changes.commit(&meta);
  });
}

void xtrim_command(CommandContext& ctx) {
  AddArgs args;
  if (!parse_add_or_trim(ctx, args, /*xadd=*/false)) return;
  const std::string& key = ctx.args[1];
  run_stream_command(ctx, key, [&](resp::ReplyWriter& reply, StreamRead& stream) -> Status {
    if (!stream.exists()) {
      reply.integer(0);
      return Status::ok();
    }
    StreamChanges changes(ctx.keyspace, key, stream.row.hidden());
    Result<int64_t> trimmed = trim_stream(ctx.keyspace, key, stream, changes, args.trim);
    if (!trimmed.is_ok()) return trimmed.status();
    if (*trimmed > 0) report_keyspace_event(ctx, kEventStream, "xtrim", key);
    reply.integer(*trimmed);
    return changes.commit(*trimmed > 0 ? &stream.meta : nullptr);
  });
}

void xdel_command(CommandContext& ctx) {
  const std::string& key = ctx.args[1];
  run_stream_command(ctx, key, [&](resp::ReplyWriter& reply, StreamRead& stream) -> Status {
    if (!stream.exists()) {
      reply.integer(0);
      return Status::ok();
    }
    std::vector<StreamId> ids;
    for (size_t i = 2; i < ctx.args.size(); ++i) {
      const std::optional<StreamId> id = parse_stream_id(ctx.args[i], 0, true);
      if (!id) {
        reply.error(kErrInvalidId);
        return Status::ok();
      }
      ids.push_back(*id);
    }
    StreamChanges changes(ctx.keyspace, key, stream.row.hidden());
    StreamMeta& meta = stream.meta;
    int64_t deleted = 0;
    bool first_deleted = false;
    for (const StreamId& id : ids) {
      const std::string sub_key = stream_entry_sub_key(id);
      Result<std::optional<std::string>> cell = changes.get(sub_key);
      if (!cell.is_ok()) return cell.status();
      if (!*cell) continue;
      changes.remove(sub_key);
      ++deleted;
      --meta.length;
      if (id > meta.max_deleted_id) meta.max_deleted_id = id;
      if (id == meta.first_id) first_deleted = true;
    }
    if (deleted > 0) {
      if (Status status = changes.commit(nullptr); !status.is_ok()) return status;
      if (meta.length == 0) {
        meta.first_id = StreamId{};
      } else if (first_deleted) {
        Result<std::optional<StreamId>> first = edge_id(ctx.keyspace, key, stream, false);
        if (!first.is_ok()) return first.status();
        if (*first) meta.first_id = **first;
      }
    }
    if (deleted > 0) report_keyspace_event(ctx, kEventStream, "xdel", key);
    reply.integer(deleted);
    return changes.commit(deleted > 0 ? &meta : nullptr);
  });
}

void xlen_command(CommandContext& ctx) {
  const std::optional<StreamRead> stream = read_stream_or_reply(ctx, ctx.args[1]);
  if (!stream) return;
  ctx.reply.integer(stream->exists() ? static_cast<int64_t>(stream->meta.length) : 0);
}

// Redis's streamParseIntervalIdOrReply: "(" makes the bound exclusive; nullopt after an error.
std::optional<StreamId> parse_interval(resp::ReplyWriter& reply, const std::string& text,
                                       uint64_t missing_seq, bool& exclusive) {
  exclusive = text.size() > 1 && text[0] == '(';
  const std::optional<StreamId> id =
      exclusive ? parse_stream_id(std::string_view(text).substr(1), missing_seq, true)
                : parse_stream_id(text, missing_seq, false);
  if (!id) reply.error(kErrInvalidId);
  return id;
}

std::optional<StreamId> parse_start(resp::ReplyWriter& reply, const std::string& text) {
  bool exclusive = false;
  std::optional<StreamId> id = parse_interval(reply, text, 0, exclusive);
  if (id && exclusive && !id->increment()) {
    reply.error(kErrInvalidStart);
    return std::nullopt;
  }
  return id;
}

std::optional<StreamId> parse_end(resp::ReplyWriter& reply, const std::string& text) {
  bool exclusive = false;
  std::optional<StreamId> id = parse_interval(reply, text, UINT64_MAX, exclusive);
  if (id && exclusive && !id->decrement()) {
    reply.error(kErrInvalidEnd);
    return std::nullopt;
  }
  return id;
}

void xrange_generic(CommandContext& ctx, bool reverse) {
  const std::string& start_arg = reverse ? ctx.args[3] : ctx.args[2];
  const std::string& end_arg = reverse ? ctx.args[2] : ctx.args[3];
  const std::optional<StreamId> start = parse_start(ctx.reply, start_arg);
  if (!start) return;
  const std::optional<StreamId> end = parse_end(ctx.reply, end_arg);
  if (!end) return;
  int64_t count = -1;
  for (size_t i = 4; i < ctx.args.size(); ++i) {
    if (equals_ignore_case(ctx.args[i], "count") && i + 1 < ctx.args.size()) {
      const std::optional<int64_t> value = parse_int64(ctx.args[i + 1]);
      if (!value) return ctx.reply.error(kErrNotInteger);
      count = std::max<int64_t>(*value, 0);
      ++i;
    } else {
      return ctx.reply.error(kErrSyntax);
    }
  }
  const std::optional<StreamRead> stream = read_stream_or_reply(ctx, ctx.args[1]);
  if (!stream) return;
  if (!stream->exists()) return ctx.reply.array(0);
  if (count == 0) return ctx.reply.null_array();
  Result<Entries> entries =
      collect_entries(ctx.keyspace, ctx.args[1], *stream, *start, *end, reverse,
                      count < 0 ? 0 : static_cast<uint64_t>(count));
  if (!entries.is_ok()) return ctx.reply.error(storage_error_reply(entries.status()));
  write_entries(ctx.reply, *entries);
}

void xrange_command(CommandContext& ctx) { xrange_generic(ctx, false); }
void xrevrange_command(CommandContext& ctx) { xrange_generic(ctx, true); }

// ---- Consumer groups: shared helpers ----

Result<std::optional<StreamGroup>> read_group(StreamChanges& changes, std::string_view name) {
  Result<std::optional<std::string>> cell = changes.get(stream_group_sub_key(name));
  if (!cell.is_ok()) return cell.status();
  if (!*cell) return std::optional<StreamGroup>();
  std::optional<StreamGroup> group = decode_stream_group(**cell);
  if (!group) return Status::corruption("a consumer group that does not decode");
  return group;
}

void put_group(StreamChanges& changes, std::string_view name, const StreamGroup& group) {
  changes.put(stream_group_sub_key(name), encode_stream_group(group));
}

Result<std::optional<StreamConsumer>> read_consumer(StreamChanges& changes,
                                                    std::string_view group,
                                                    std::string_view name) {
  Result<std::optional<std::string>> cell = changes.get(stream_consumer_sub_key(group, name));
  if (!cell.is_ok()) return cell.status();
  if (!*cell) return std::optional<StreamConsumer>();
  std::optional<StreamConsumer> consumer = decode_stream_consumer(**cell);
  if (!consumer) return Status::corruption("a stream consumer that does not decode");
  return consumer;
}

void put_consumer(StreamChanges& changes, std::string_view group, std::string_view name,
                  const StreamConsumer& consumer) {
  changes.put(stream_consumer_sub_key(group, name), encode_stream_consumer(consumer));
}

// The consumer `name` of `group`, created if missing (Redis's lookup-or-create, which also
// refreshes its seen-time when `touch`); `created` says whether it was.
Result<StreamConsumer> touch_consumer(StreamChanges& changes, const std::string& group_name,
                                      StreamGroup& group, const std::string& name, int64_t now,
                                      bool& created, bool touch = true) {
  Result<std::optional<StreamConsumer>> found = read_consumer(changes, group_name, name);
  if (!found.is_ok()) return found.status();
  StreamConsumer consumer;
  created = !*found;
  if (*found) {
    consumer = **found;
    if (!touch) return consumer;
  } else {
    ++group.consumers;
  }
  consumer.seen_ms = now;
  put_consumer(changes, group_name, name, consumer);
  return consumer;
}

Result<std::optional<StreamPending>> read_pending(StreamChanges& changes, std::string_view group,
                                                  const StreamId& id) {
  Result<std::optional<std::string>> cell = changes.get(stream_pending_sub_key(group, id));
  if (!cell.is_ok()) return cell.status();
  if (!*cell) return std::optional<StreamPending>();
  std::optional<StreamPending> pending = decode_stream_pending(**cell);
  if (!pending) return Status::corruption("a pending entry that does not decode");
  return pending;
}

// Adjusts a consumer's pending count by `delta` (a missing consumer is left alone).
Status add_consumer_pending(StreamChanges& changes, std::string_view group,
                            std::string_view name, int64_t delta) {
  Result<std::optional<StreamConsumer>> consumer = read_consumer(changes, group, name);
  if (!consumer.is_ok()) return consumer.status();
  if (!*consumer) return Status::ok();
  (*consumer)->pending = static_cast<uint64_t>(static_cast<int64_t>((*consumer)->pending) + delta);
  put_consumer(changes, group, name, **consumer);
  return Status::ok();
}

// Removes the pending entry `id` (owned by `pending.consumer`) from the group.
Status drop_pending(StreamChanges& changes, std::string_view group_name, StreamGroup& group,
                    const StreamId& id, const StreamPending& pending) {
  changes.remove(stream_pending_sub_key(group_name, id));
  changes.remove(stream_consumer_pending_sub_key(group_name, pending.consumer, id));
  --group.pending;
  return add_consumer_pending(changes, group_name, pending.consumer, -1);
}

// Writes the pending entry `id` for `consumer`, moving it from its previous owner if any.
Status assign_pending(StreamChanges& changes, std::string_view group_name, StreamGroup& group,
                      const StreamId& id, const std::optional<StreamPending>& previous,
                      StreamPending pending) {
  if (!previous) {
    ++group.pending;
    if (Status status = add_consumer_pending(changes, group_name, pending.consumer, 1);
        !status.is_ok()) {
      return status;
    }
  } else if (previous->consumer != pending.consumer) {
    changes.remove(stream_consumer_pending_sub_key(group_name, previous->consumer, id));
    if (Status status = add_consumer_pending(changes, group_name, previous->consumer, -1);
        !status.is_ok()) {
      return status;
    }
    if (Status status = add_consumer_pending(changes, group_name, pending.consumer, 1);
        !status.is_ok()) {
      return status;
    }
  }
  changes.put(stream_consumer_pending_sub_key(group_name, pending.consumer, id), "");
  changes.put(stream_pending_sub_key(group_name, id), encode_stream_pending(pending));
  return Status::ok();
}

std::string nogroup_error(const std::string& key, const std::string& group) {
  return "NOGROUP No such key '" + key + "' or consumer group '" + group + "'";
}

// ---- XREAD / XREADGROUP ----

std::optional<int64_t> parse_block(CommandContext& ctx, const std::string& text) {
  const std::optional<int64_t> ms = parse_int64(text);
  if (!ms) {
    ctx.reply.error(kErrTimeoutNotInteger);
    return std::nullopt;
  }
  if (*ms < 0) {
    ctx.reply.error(kErrTimeoutNegative);
    return std::nullopt;
  }
  if (*ms == 0) return 0;
  const int64_t now = ctx.keyspace.now_ms();
  if (*ms > std::numeric_limits<int64_t>::max() - now) {
    ctx.reply.error(kErrTimeoutOutOfRange);
    return std::nullopt;
  }
  return now + *ms;
}

// What one key of an XREAD / XREADGROUP answers.
struct ReadResult {
  const std::string* key = nullptr;
  // entries; an entry without a value is a pending entry whose message was deleted (history).
  std::vector<std::pair<StreamId, std::optional<StreamEntry>>> entries;
};

void write_read_results(resp::ReplyWriter& reply, const std::vector<ReadResult>& results) {
  if (results.empty()) return reply.null_array();
  if (reply.protocol() == 3) {
    reply.map(results.size());
  } else {
    reply.array(results.size());
  }
  for (const ReadResult& result : results) {
    if (reply.protocol() != 3) reply.array(2);
    reply.bulk(*result.key);
    reply.array(result.entries.size());
    for (const auto& [id, entry] : result.entries) {
      if (entry) {
        write_entry(reply, id, *entry);
      } else {
        reply.array(2);
        write_id(reply, id);
        reply.null_array();
      }
    }
  }
}

void xread_generic(CommandContext& ctx, bool group_form) {
  std::optional<int64_t> deadline;  // set by BLOCK (0 = forever)
  uint64_t count = 0;
  size_t streams_at = 0;
  const std::string* group_name = nullptr;
  const std::string* consumer_name = nullptr;
  bool noack = false;
  std::vector<std::string>& args = ctx.args;
  for (size_t i = 1; i < args.size(); ++i) {
    const size_t more = args.size() - i - 1;
    const std::string& opt = args[i];
    if (equals_ignore_case(opt, "block") && more) {
      ++i;
      deadline = parse_block(ctx, args[i]);
      if (!deadline) return;
    } else if (equals_ignore_case(opt, "count") && more) {
      ++i;
      const std::optional<int64_t> value = parse_int64(args[i]);
      if (!value) return ctx.reply.error(kErrNotInteger);
      count = static_cast<uint64_t>(std::max<int64_t>(*value, 0));
    } else if (equals_ignore_case(opt, "streams") && more) {
      streams_at = i + 1;
      if ((args.size() - streams_at) % 2 != 0) {
        // redis-server 7.0 names XREAD and '$' for XREADGROUP too.
        return ctx.reply.error(
            "ERR Unbalanced XREAD list of streams: for each stream key an ID or '$' must be "
            "specified.");
      }
      break;
    } else if (equals_ignore_case(opt, "group") && more >= 2) {
      if (!group_form) {
        return ctx.reply.error(
            "ERR The GROUP option is only supported by XREADGROUP. You called XREAD instead.");
      }
      group_name = &args[i + 1];
      consumer_name = &args[i + 2];
      i += 2;
    } else if (equals_ignore_case(opt, "noack")) {
      if (!group_form) {
        return ctx.reply.error(
            "ERR The NOACK option is only supported by XREADGROUP. You called XREAD instead.");
      }
      noack = true;
    } else {
      return ctx.reply.error(kErrSyntax);
    }
  }
  if (streams_at == 0) return ctx.reply.error(kErrSyntax);
  if (group_form && group_name == nullptr) {
    return ctx.reply.error("ERR Missing GROUP option for XREADGROUP");
  }
  const size_t n = (args.size() - streams_at) / 2;
  const std::span<const std::string> keys(args.data() + streams_at, n);
  if (deadline) {
    ctx.session.block = std::nullopt;
    if (ctx.session.blocking_allowed) {
      ctx.session.block = BlockRequest{std::vector<std::string>(keys.begin(), keys.end()),
                                       *deadline,
                                       group_form ? "group " + *group_name : std::string()};
    }
  }
  const int64_t now = ctx.keyspace.now_ms();
  auto body = [&](resp::ReplyWriter& reply) -> Status {
    // Resolve every key's ID (and group) first: any error answers before a read is served.
    std::vector<StreamRead> streams(n);
    std::vector<std::optional<StreamId>> after(n);  // nullopt: ">"
    std::vector<StreamGroup> groups(n);
    // A blocked client's retry (Redis's serving of a blocked client): a key that no longer
    // holds a stream is no data for XREAD, and ends XREADGROUP's wait with an error, as does a
    // group that went away.
    const bool retry = ctx.session.block_retry;
    for (size_t k = 0; k < n; ++k) {
      const std::string& key = keys[k];
      const std::string& id_arg = args[streams_at + n + k];
      std::string wrong_type;  // the WRONGTYPE a retry does not send
      resp::ReplyWriter scratch(&wrong_type, reply.protocol());
      Result<StreamRead> stream = read_stream(ctx.keyspace, key, retry ? scratch : reply);
      if (!stream.is_ok()) return stream.status();
      if (stream->replied && !retry) return Status::ok();
      if (!stream->replied) streams[k] = std::move(stream).value();
      if (retry && group_form && !streams[k].exists()) {
        reply.error("UNBLOCKED the stream key no longer exists");
        return Status::ok();
      }
      if (group_form && ctx.session.block && streams[k].exists()) {
        // A waiter runs again when its stream expires (and then answers UNBLOCKED).
        const int64_t expire_at = streams[k].row.row.header->expire_at_ms;
        int64_t& recheck_at = ctx.session.block->recheck_at_ms;
        if (expire_at != 0 && (recheck_at == 0 || expire_at < recheck_at)) recheck_at = expire_at;
      }
      if (group_form) {
        std::optional<StreamGroup> group;
        if (streams[k].exists()) {
          StreamChanges probe(ctx.keyspace, key, streams[k].row.hidden());
          Result<std::optional<StreamGroup>> found = read_group(probe, *group_name);
          if (!found.is_ok()) return found.status();
          group = *found;
        }
        if (!group && retry) {
          reply.error("NOGROUP the consumer group this client was blocked on no longer exists");
          return Status::ok();
        }
        if (!group) {
          reply.error("NOGROUP No such key '" + key + "' or consumer group '" + *group_name +
                      "' in XREADGROUP with GROUP option");
          return Status::ok();
        }
        groups[k] = *group;
      }
      if (id_arg == "$") {
        if (group_form) {
          reply.error(
              "ERR The $ ID is meaningless in the context of XREADGROUP: you want to read the "
              "history of this consumer by specifying a proper ID, or use the > ID to get new "
              "messages. The $ ID would just return an empty result set.");
          return Status::ok();
        }
        after[k] = streams[k].exists() ? streams[k].meta.last_id : StreamId{};
        // A retry after a wait must not move past entries added meanwhile: the resolved ID
        // replaces "$" in the arguments the waiting connection runs again.
        args[streams_at + n + k] = after[k]->to_string();
        continue;
      }
      if (id_arg == ">") {
        if (!group_form) {
          reply.error(
              "ERR The > ID can be specified only when calling XREADGROUP using the GROUP "
              "<group> <consumer> option.");
          return Status::ok();
        }
        continue;
      }
      after[k] = parse_stream_id(id_arg, 0, true);
      if (!after[k]) {
        reply.error(kErrInvalidId);
        return Status::ok();
      }
    }
    std::vector<ReadResult> results;
    for (size_t k = 0; k < n; ++k) {
      const std::string& key = keys[k];
      StreamRead& stream = streams[k];
      if (!stream.exists()) continue;
      if (!group_form) {
        if (stream.meta.length == 0 || !after[k]) continue;
        StreamId start = *after[k];
        if (!start.increment()) continue;
        Result<Entries> entries =
            collect_entries(ctx.keyspace, key, stream, start, kMaxStreamId, false, count);
        if (!entries.is_ok()) return entries.status();
        if (entries->empty()) continue;
        ReadResult& result = results.emplace_back();
        result.key = &key;
        for (auto& [id, entry] : *entries) result.entries.emplace_back(id, std::move(entry));
        continue;
      }
      StreamChanges changes(ctx.keyspace, key, stream.row.hidden());
      // Read again: a key named twice sees what serving its first mention changed.
      Result<std::optional<StreamGroup>> fresh = read_group(changes, *group_name);
      if (!fresh.is_ok()) return fresh.status();
      if (*fresh) groups[k] = **fresh;
      StreamGroup& group = groups[k];
      const StreamGroup group_before = group;
      // As in Redis, the consumer is looked up (created, its seen-time refreshed) only when the
      // read is served: its history, or new entries; a read that finds nothing new (or waits)
      // leaves it alone.
      auto touch = [&]() -> Status {
        bool created = false;
        Result<StreamConsumer> consumer =
            touch_consumer(changes, *group_name, group, *consumer_name, now, created);
        if (!consumer.is_ok()) return consumer.status();
        if (created) report_keyspace_event(ctx, kEventStream, "xgroup-createconsumer", key);
        return Status::ok();
      };
      if (after[k]) {
        if (Status status = touch(); !status.is_ok()) return status;
        // History: this consumer's pending entries after the ID.
        ReadResult& result = results.emplace_back();
        result.key = &key;
        StreamId start = *after[k];
        const std::string prefix = stream_consumer_pending_prefix(*group_name, *consumer_name);
        std::vector<StreamId> ids;
        if (start.increment()) {
          Status status = visit_prefix(ctx.keyspace, key, stream, prefix, id_bytes(start),
                                       [&](std::string_view sub_key, const Cell&) {
                                         const std::optional<StreamId> id =
                                             stream_id_after_prefix(sub_key, prefix);
                                         if (id) ids.push_back(*id);
                                         return count == 0 || ids.size() < count;
                                       });
          if (!status.is_ok()) return status;
        }
        for (const StreamId& id : ids) {
          Result<std::optional<StreamEntry>> entry = read_entry(ctx.keyspace, key, stream, id);
          if (!entry.is_ok()) return entry.status();
          if (*entry) {
            Result<std::optional<StreamPending>> pending =
                read_pending(changes, *group_name, id);
            if (!pending.is_ok()) return pending.status();
            if (*pending) {
              (*pending)->delivery_ms = now;
              ++(*pending)->delivery_count;
              changes.put(stream_pending_sub_key(*group_name, id),
                          encode_stream_pending(**pending));
            }
          }
          result.entries.emplace_back(id, std::move(*entry));
        }
        if (group != group_before) put_group(changes, *group_name, group);
        if (Status status = changes.commit(nullptr); !status.is_ok()) return status;
        continue;
      }
      // ">": entries after the group's last delivered ID.
      if (stream.meta.length > 0 && stream.meta.last_id > group.last_delivered) {
        StreamId start = group.last_delivered;
        start.increment();
        Result<Entries> entries =
            collect_entries(ctx.keyspace, key, stream, start, kMaxStreamId, false, count);
        if (!entries.is_ok()) return entries.status();
        if (!entries->empty()) {
          if (Status status = touch(); !status.is_ok()) return status;
          ReadResult& result = results.emplace_back();
          result.key = &key;
          for (auto& [id, entry] : *entries) {
            if (id > group.last_delivered) {
              if (group.entries_read != -1 && !range_has_tombstones(stream.meta, id)) {
                ++group.entries_read;
              } else if (stream.meta.entries_added != 0) {
                group.entries_read = estimate_entries_read(stream.meta, id);
              }
              group.last_delivered = id;
            }
            if (!noack) {
              Result<std::optional<StreamPending>> previous =
                  read_pending(changes, *group_name, id);
              if (!previous.is_ok()) return previous.status();
              if (Status status = assign_pending(changes, *group_name, group, id, *previous,
                                                 StreamPending{now, 1, *consumer_name});
                  !status.is_ok()) {
                return status;
              }
            }
            result.entries.emplace_back(id, std::move(entry));
          }
        }
      }
      if (group != group_before) put_group(changes, *group_name, group);
      if (Status status = changes.commit(nullptr); !status.is_ok()) return status;
    }
    if (results.empty() && !deadline) {
      reply.null_array();
      return Status::ok();
    }
    write_read_results(reply, results);
    return Status::ok();
  };
  if (group_form) {
    run_row_command(ctx, keys, body);
  } else {
    // XREAD writes nothing: no lock, the reply goes out as built.
    std::string staged;
    resp::ReplyWriter staged_reply(&staged, ctx.reply.protocol());
    Status status = body(staged_reply);
    if (!status.is_ok()) return ctx.reply.error(storage_error_reply(status));
    ctx.reply.buffer()->append(staged);
  }
}

void xread_command(CommandContext& ctx) { xread_generic(ctx, false); }
void xreadgroup_command(CommandContext& ctx) { xread_generic(ctx, true); }

// ---- XGROUP ----

void xgroup_command(CommandContext& ctx) {
  const std::vector<std::string>& args = ctx.args;
  const std::string& sub = args[1];
  const bool create = equals_ignore_case(sub, "create");
  const bool setid = equals_ignore_case(sub, "setid");
  bool mkstream = false;
  int64_t entries_read = -1;
  if (create || setid) {
    for (size_t i = 5; i < args.size(); ++i) {
      if (create && equals_ignore_case(args[i], "mkstream")) {
        mkstream = true;
      } else if (equals_ignore_case(args[i], "entriesread") && i + 1 < args.size()) {
        const std::optional<int64_t> value = parse_int64(args[i + 1]);
        if (!value) return ctx.reply.error(kErrNotInteger);
        if (*value < 0 && *value != -1) {
          return ctx.reply.error("ERR value for ENTRIESREAD must be positive or -1");
        }
        entries_read = *value;
        ++i;
      } else {
        return ctx.reply.error(subcommand_syntax_error(args));
      }
    }
  }
  const std::string& key = args[2];
  const std::string& name = args[3];
  run_row_command(ctx, std::span(&key, 1), [&](resp::ReplyWriter& reply) -> Status {
    Result<StreamRead> read = read_stream(ctx.keyspace, key, reply);
    if (!read.is_ok()) return read.status();
    if (read->replied) return Status::ok();
    StreamRead& stream = *read;
    if (!mkstream && !stream.exists()) {
      reply.error(
          "ERR The XGROUP subcommand requires the key to exist. Note that for CREATE you may "
          "want to use the MKSTREAM option to create an empty stream automatically.");
      return Status::ok();
    }
    StreamChanges changes(ctx.keyspace, key, stream.row.hidden());
    std::optional<StreamGroup> group;
    if (stream.exists()) {
      Result<std::optional<StreamGroup>> found = read_group(changes, name);
      if (!found.is_ok()) return found.status();
      group = *found;
    }
    const bool needs_group = setid || equals_ignore_case(sub, "createconsumer") ||
                             equals_ignore_case(sub, "delconsumer");
    if (!mkstream && needs_group && !group) {
      reply.error("NOGROUP No such consumer group '" + name + "' for key name '" + key + "'");
      return Status::ok();
    }
    const int64_t now = ctx.keyspace.now_ms();
    if (create && args.size() >= 5 && args.size() <= 8) {
      StreamId id;
      if (args[4] == "$") {
        id = stream.exists() ? stream.meta.last_id : StreamId{};
      } else {
        const std::optional<StreamId> parsed = parse_stream_id(args[4], 0, true);
        if (!parsed) {
          reply.error(kErrInvalidId);
          return Status::ok();
        }
        id = *parsed;
      }
      if (group) {
        reply.error("BUSYGROUP Consumer Group name already exists");
        return Status::ok();
      }
      if (!stream.exists()) {
        if (Status status = create_row(ctx.keyspace, key, kStream, stream.row); !status.is_ok()) {
          return status;
        }
        stream.meta = StreamMeta{};
      }
      StreamChanges writes(ctx.keyspace, key, stream.row.hidden());
      put_group(writes, name, StreamGroup{id, entries_read, 0, 0});
      ++stream.meta.groups;
      report_keyspace_event(ctx, kEventStream, "xgroup-create", key);
      reply.ok();
      return writes.commit(&stream.meta);
    }
    if (setid && (args.size() == 5 || args.size() == 7)) {
      StreamId id;
      if (args[4] == "$") {
        id = stream.meta.last_id;
      } else {
        const std::optional<StreamId> parsed = parse_stream_id(args[4], 0, false);
        if (!parsed) {
          reply.error(kErrInvalidId);
          return Status::ok();
        }
        id = *parsed;
      }
      group->last_delivered = id;
      group->entries_read = entries_read;
      put_group(changes, name, *group);
      report_keyspace_event(ctx, kEventStream, "xgroup-setid", key);
      reply.ok();
      return changes.commit(nullptr);
    }
    if (equals_ignore_case(sub, "destroy") && args.size() == 4) {
      if (!group) {
        reply.integer(0);
        return Status::ok();
      }
      changes.remove(stream_group_sub_key(name));
      for (const std::string& prefix :
           {stream_consumer_prefix(name), stream_pending_prefix(name),
            std::string(1, kStreamConsumerPendingNamespace) +
                stream_pending_prefix(name).substr(1)}) {
        Status status = visit_prefix(ctx.keyspace, key, stream, prefix, "",
                                     [&](std::string_view sub_key, const Cell&) {
                                       changes.remove(std::string(sub_key));
                                       return true;
                                     });
        if (!status.is_ok()) return status;
      }
      --stream.meta.groups;
      report_keyspace_event(ctx, kEventStream, "xgroup-destroy", key);
      reply.integer(1);
      return changes.commit(&stream.meta);
    }
    if (equals_ignore_case(sub, "createconsumer") && args.size() == 5) {
      Result<std::optional<StreamConsumer>> found = read_consumer(changes, name, args[4]);
      if (!found.is_ok()) return found.status();
      if (*found) {
        reply.integer(0);
        return Status::ok();
      }
      put_consumer(changes, name, args[4], StreamConsumer{now, 0});
      ++group->consumers;
      put_group(changes, name, *group);
      report_keyspace_event(ctx, kEventStream, "xgroup-createconsumer", key);
      reply.integer(1);
      return changes.commit(nullptr);
    }
    if (equals_ignore_case(sub, "delconsumer") && args.size() == 5) {
      Result<std::optional<StreamConsumer>> found = read_consumer(changes, name, args[4]);
      if (!found.is_ok()) return found.status();
      if (!*found) {
        reply.integer(0);
        return Status::ok();
      }
      const std::string prefix = stream_consumer_pending_prefix(name, args[4]);
      std::vector<StreamId> ids;
      Status status = visit_prefix(ctx.keyspace, key, stream, prefix, "",
                                   [&](std::string_view sub_key, const Cell&) {
                                     if (auto id = stream_id_after_prefix(sub_key, prefix)) {
                                       ids.push_back(*id);
                                     }
                                     return true;
                                   });
      if (!status.is_ok()) return status;
      for (const StreamId& id : ids) {
        changes.remove(stream_consumer_pending_sub_key(name, args[4], id));
        changes.remove(stream_pending_sub_key(name, id));
      }
      group->pending -= std::min<uint64_t>(group->pending, ids.size());
      --group->consumers;
      changes.remove(stream_consumer_sub_key(name, args[4]));
      put_group(changes, name, *group);
      // Redis announces a deletion even of a consumer with nothing pending (reply 0).
      report_keyspace_event(ctx, kEventStream, "xgroup-delconsumer", key);
      reply.integer(static_cast<int64_t>((*found)->pending));
      return changes.commit(nullptr);
    }
    reply.error(subcommand_syntax_error(args));
    return Status::ok();
  });
}

void xgroup_help_command(CommandContext& ctx) {
  write_help(ctx.reply, "XGROUP",
             {"CREATE <key> <groupname> <id|$> [option]",
              "    Create a new consumer group. Options are:",
              "    * MKSTREAM",
              "      Create the empty stream if it does not exist.",
              "    * ENTRIESREAD entries_read",
              "      Set the group's entries_read counter (internal use).",
              "CREATECONSUMER <key> <groupname> <consumer>",
              "    Create a new consumer in the specified group.",
              "DELCONSUMER <key> <groupname> <consumer>",
              "    Remove the specified consumer.",
              "DESTROY <key> <groupname>",
              "    Remove the specified group.",
              "SETID <key> <groupname> <id|$> [ENTRIESREAD entries_read]",
              "    Set the current group ID and entries_read counter."});
}

// ---- XSETID ----

void xsetid_command(CommandContext& ctx) {
  const std::optional<StreamId> id = parse_stream_id(ctx.args[2], 0, true);
  if (!id) return ctx.reply.error(kErrInvalidId);
  int64_t entries_added = -1;
  StreamId max_deleted;
  for (size_t i = 3; i < ctx.args.size(); i += 2) {
    const bool more = i + 1 < ctx.args.size();
    if (equals_ignore_case(ctx.args[i], "entriesadded") && more) {
      const std::optional<int64_t> value = parse_int64(ctx.args[i + 1]);
      if (!value) return ctx.reply.error(kErrNotInteger);
      if (*value < 0) return ctx.reply.error("ERR entries_added must be positive");
      entries_added = *value;
    } else if (equals_ignore_case(ctx.args[i], "maxdeletedid") && more) {
      const std::optional<StreamId> value = parse_stream_id(ctx.args[i + 1], 0, true);
      if (!value) return ctx.reply.error(kErrInvalidId);
      if (*id < *value) {
        return ctx.reply.error(
            "ERR The ID specified in XSETID is smaller than the provided max_deleted_entry_id");
      }
      max_deleted = *value;
    } else {
      return ctx.reply.error(kErrSyntax);
    }
  }
  const std::string& key = ctx.args[1];
  run_stream_command(ctx, key, [&](resp::ReplyWriter& reply, StreamRead& stream) -> Status {
    if (!stream.exists()) {
      reply.error(kErrNoKey);
      return Status::ok();
    }
    StreamMeta& meta = stream.meta;
    // redis-server 7.0 does not compare the ID with the current max_deleted_entry_id.
    if (meta.length > 0) {
      Result<std::optional<StreamId>> last = edge_id(ctx.keyspace, key, stream, true);
      if (!last.is_ok()) return last.status();
      if (*last && *id < **last) {
        reply.error("ERR The ID specified in XSETID is smaller than the target stream top item");
        return Status::ok();
      }
      if (entries_added != -1 && meta.length > uint64_t(entries_added)) {
        reply.error(
            "ERR The entries_added specified in XSETID is smaller than the target stream "
            "length");
        return Status::ok();
      }
    }
    meta.last_id = *id;
    if (entries_added != -1) meta.entries_added = static_cast<uint64_t>(entries_added);
    if (!max_deleted.is_zero()) meta.max_deleted_id = max_deleted;
    StreamChanges changes(ctx.keyspace, key, stream.row.hidden());
    report_keyspace_event(ctx, kEventStream, "xsetid", key);
    reply.ok();
    return changes.commit(&meta);
  });
}

// ---- XACK / XPENDING / XCLAIM / XAUTOCLAIM ----

void xack_command(CommandContext& ctx) {
  const std::string& key = ctx.args[1];
  const std::string& group_name = ctx.args[2];
  run_stream_command(ctx, key, [&](resp::ReplyWriter& reply, StreamRead& stream) -> Status {
    StreamChanges changes(ctx.keyspace, key, stream.row.hidden());
    std::optional<StreamGroup> group;
    if (stream.exists()) {
      Result<std::optional<StreamGroup>> found = read_group(changes, group_name);
      if (!found.is_ok()) return found.status();
      group = *found;
    }
    if (!group) {
      reply.integer(0);
      return Status::ok();
    }
    std::vector<StreamId> ids;
    for (size_t i = 3; i < ctx.args.size(); ++i) {
      const std::optional<StreamId> id = parse_stream_id(ctx.args[i], 0, true);
      if (!id) {
        reply.error(kErrInvalidId);
        return Status::ok();
      }
      ids.push_back(*id);
    }
    int64_t acknowledged = 0;
    for (const StreamId& id : ids) {
      Result<std::optional<StreamPending>> pending = read_pending(changes, group_name, id);
      if (!pending.is_ok()) return pending.status();
      if (!*pending) continue;
      if (Status status = drop_pending(changes, group_name, *group, id, **pending);
          !status.is_ok()) {
        return status;
      }
      ++acknowledged;
    }
    if (acknowledged > 0) put_group(changes, group_name, *group);
    reply.integer(acknowledged);
    return changes.commit(nullptr);
  });
}

void xpending_command(CommandContext& ctx) {
  const std::vector<std::string>& args = ctx.args;
  const bool summary = args.size() == 3;
  if (!summary && (args.size() < 6 || args.size() > 9)) return ctx.reply.error(kErrSyntax);
  StreamId start, end;
  int64_t count = 0;
  int64_t min_idle = 0;
  const std::string* consumer_name = nullptr;
  if (!summary) {
    size_t at = 3;
    if (equals_ignore_case(args[3], "idle")) {
      const std::optional<int64_t> idle = parse_int64(args[4]);
      if (!idle) return ctx.reply.error(kErrNotInteger);
      min_idle = *idle;
      if (args.size() < 8) return ctx.reply.error(kErrSyntax);
      at += 2;
    }
    const std::optional<int64_t> parsed_count = parse_int64(args[at + 2]);
    if (!parsed_count) return ctx.reply.error(kErrNotInteger);
    count = std::max<int64_t>(*parsed_count, 0);
    const std::optional<StreamId> parsed_start = parse_start(ctx.reply, args[at]);
    if (!parsed_start) return;
    const std::optional<StreamId> parsed_end = parse_end(ctx.reply, args[at + 1]);
    if (!parsed_end) return;
    start = *parsed_start;
    end = *parsed_end;
    if (at + 3 < args.size()) consumer_name = &args[at + 3];
  }
  const std::string& key = args[1];
  const std::string& group_name = args[2];
  const std::optional<StreamRead> stream = read_stream_or_reply(ctx, key);
  if (!stream) return;
  StreamChanges reads(ctx.keyspace, key, stream->row.hidden());
  std::optional<StreamGroup> group;
  if (stream->exists()) {
    Result<std::optional<StreamGroup>> found = read_group(reads, group_name);
    if (!found.is_ok()) return ctx.reply.error(storage_error_reply(found.status()));
    group = *found;
  }
  if (!group) return ctx.reply.error(nogroup_error(key, group_name));
  const std::string pel_prefix = stream_pending_prefix(group_name);
  const int64_t now = ctx.keyspace.now_ms();
  if (summary) {
    // The count from the group cell; the first and last pending IDs by a seek from each end.
    const uint64_t pending = group->pending;
    std::optional<StreamId> first, last;
    auto take = [&](std::optional<StreamId>& out) {
      return [&, out_ptr = &out](std::string_view sub_key, const Cell&) {
        if (!sub_key.starts_with(pel_prefix)) return false;
        *out_ptr = stream_id_after_prefix(sub_key, pel_prefix);
        return !out_ptr->has_value();
      };
    };
    Status status = visit_prefix(ctx.keyspace, key, *stream, pel_prefix, "", take(first));
    if (status.is_ok()) {
      const std::string above = pel_prefix + std::string(17, '\xff');
      status = ctx.keyspace.scan_fields_reverse(key, pel_prefix, above, stream->row.hidden(),
                                                take(last));
    }
    if (!status.is_ok()) return ctx.reply.error(storage_error_reply(status));
    std::vector<std::pair<std::string, uint64_t>> consumers;
    const std::string consumer_prefix = stream_consumer_prefix(group_name);
    status = visit_prefix(ctx.keyspace, key, *stream, consumer_prefix, "",
                          [&](std::string_view sub_key, const Cell& cell) {
                            std::optional<StreamConsumer> consumer =
                                decode_stream_consumer(cell.value);
                            if (consumer && consumer->pending > 0) {
                              consumers.emplace_back(sub_key.substr(consumer_prefix.size()),
                                                     consumer->pending);
                            }
                            return true;
                          });
    if (!status.is_ok()) return ctx.reply.error(storage_error_reply(status));
    ctx.reply.array(4);
    ctx.reply.integer(static_cast<int64_t>(pending));
    if (pending == 0 || !first || !last) {
      ctx.reply.null();
      ctx.reply.null();
      ctx.reply.null_array();
      return;
    }
    write_id(ctx.reply, *first);
    write_id(ctx.reply, *last);
    ctx.reply.array(consumers.size());
    for (const auto& [name, n] : consumers) {
      ctx.reply.array(2);
      ctx.reply.bulk(name);
      ctx.reply.bulk(std::to_string(n));
    }
    return;
  }
  std::string prefix = pel_prefix;
  if (consumer_name != nullptr) {
    Result<std::optional<StreamConsumer>> consumer =
        read_consumer(reads, group_name, *consumer_name);
    if (!consumer.is_ok()) return ctx.reply.error(storage_error_reply(consumer.status()));
    if (!*consumer) return ctx.reply.array(0);
    prefix = stream_consumer_pending_prefix(group_name, *consumer_name);
  }
  std::vector<std::pair<StreamId, StreamPending>> rows;
  Status inner = Status::ok();
  if (count > 0 && start <= end) {
    Status status = visit_prefix(
        ctx.keyspace, key, *stream, prefix, id_bytes(start),
        [&](std::string_view sub_key, const Cell& cell) {
          const std::optional<StreamId> id = stream_id_after_prefix(sub_key, prefix);
          if (!id) return true;
          if (*id > end) return false;
          std::optional<StreamPending> pending;
          if (consumer_name == nullptr) {
            pending = decode_stream_pending(cell.value);
          } else {
            Result<std::optional<StreamPending>> found = read_pending(reads, group_name, *id);
            if (!found.is_ok()) {
              inner = found.status();
              return false;
            }
            pending = *found;
          }
          if (!pending) return true;
          if (min_idle != 0 && now - pending->delivery_ms < min_idle) return true;
          rows.emplace_back(*id, std::move(*pending));
          return rows.size() < uint64_t(count);
        });
    if (!status.is_ok()) return ctx.reply.error(storage_error_reply(status));
    if (!inner.is_ok()) return ctx.reply.error(storage_error_reply(inner));
  }
  ctx.reply.array(rows.size());
  for (const auto& [id, pending] : rows) {
    ctx.reply.array(4);
    write_id(ctx.reply, id);
    ctx.reply.bulk(pending.consumer);
    ctx.reply.integer(std::max<int64_t>(now - pending.delivery_ms, 0));
    ctx.reply.integer(static_cast<int64_t>(pending.delivery_count));
  }
}

// Claims the pending entry `id` for `consumer_name` (XCLAIM / XAUTOCLAIM).
// The consumer is created by the first claim (Redis's xgroup-createconsumer event then).
Status claim_one(CommandContext& ctx, StreamChanges& changes, const std::string& group_name,
                 StreamGroup& group, const std::string& consumer_name, bool& consumer_touched,
                 int64_t now, const StreamId& id, const std::optional<StreamPending>& previous,
                 StreamPending pending) {
  if (!consumer_touched) {
    bool created = false;
    Result<StreamConsumer> consumer =
        touch_consumer(changes, group_name, group, consumer_name, now, created);
    if (!consumer.is_ok()) return consumer.status();
    consumer_touched = true;
    if (created) report_keyspace_event(ctx, kEventStream, "xgroup-createconsumer", ctx.args[1]);
  }
  pending.consumer = consumer_name;
  return assign_pending(changes, group_name, group, id, previous, std::move(pending));
}

void write_claimed(resp::ReplyWriter& reply, bool justid,
                   const std::vector<std::pair<StreamId, std::optional<StreamEntry>>>& claimed) {
  reply.array(claimed.size());
  for (const auto& [id, entry] : claimed) {
    if (justid) {
      write_id(reply, id);
    } else if (entry) {
      write_entry(reply, id, *entry);
    } else {
      reply.null();
    }
  }
}

void xclaim_command(CommandContext& ctx) {
  const std::vector<std::string>& args = ctx.args;
  const std::string& key = args[1];
  const std::string& group_name = args[2];
  const std::string& consumer_name = args[3];
  run_stream_command(ctx, key, [&](resp::ReplyWriter& reply, StreamRead& stream) -> Status {
    StreamChanges changes(ctx.keyspace, key, stream.row.hidden());
    std::optional<StreamGroup> group;
    if (stream.exists()) {
      Result<std::optional<StreamGroup>> found = read_group(changes, group_name);
      if (!found.is_ok()) return found.status();
      group = *found;
    }
    if (!group) {
      reply.error(nogroup_error(key, group_name));
      return Status::ok();
    }
    const std::optional<int64_t> parsed_idle = parse_int64(args[4]);
    if (!parsed_idle) {
      reply.error("ERR Invalid min-idle-time argument for XCLAIM");
      return Status::ok();
    }
    const int64_t min_idle = std::max<int64_t>(*parsed_idle, 0);
    std::vector<StreamId> ids;
    size_t j = 5;
    for (; j < args.size(); ++j) {
      const std::optional<StreamId> id = parse_stream_id(args[j], 0, true);
      if (!id) break;
      ids.push_back(*id);
    }
    const int64_t now = ctx.keyspace.now_ms();
    int64_t retrycount = -1;
    int64_t delivery = -1;
    bool force = false, justid = false;
    StreamId last_id;
    for (; j < args.size(); ++j) {
      const bool more = j + 1 < args.size();
      const std::string& opt = args[j];
      if (equals_ignore_case(opt, "force")) {
        force = true;
      } else if (equals_ignore_case(opt, "justid")) {
        justid = true;
      } else if ((equals_ignore_case(opt, "idle") || equals_ignore_case(opt, "time") ||
                  equals_ignore_case(opt, "retrycount")) && more) {
        ++j;
        const std::optional<int64_t> value = parse_int64(args[j]);
        std::string upper = opt;
        for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
        if (!value) {
          reply.error("ERR Invalid " + upper + " option argument for XCLAIM");
          return Status::ok();
        }
        if (upper == "IDLE") {
          delivery = now - *value;
        } else if (upper == "TIME") {
          delivery = *value;
        } else {
          retrycount = *value;
        }
      } else if (equals_ignore_case(opt, "lastid") && more) {
        ++j;
        const std::optional<StreamId> value = parse_stream_id(args[j], 0, true);
        if (!value) {
          reply.error(kErrInvalidId);
          return Status::ok();
        }
        last_id = *value;
      } else {
        reply.error("ERR Unrecognized XCLAIM option '" + opt + "'");
        return Status::ok();
      }
    }
    bool group_changed = false;
    if (last_id > group->last_delivered) {
      group->last_delivered = last_id;
      group_changed = true;
    }
    if (delivery < 0 || delivery > now) delivery = now;
    std::vector<std::pair<StreamId, std::optional<StreamEntry>>> claimed;
    bool consumer_touched = false;
    for (const StreamId& id : ids) {
      Result<std::optional<StreamPending>> pending = read_pending(changes, group_name, id);
      if (!pending.is_ok()) return pending.status();
      Result<std::optional<StreamEntry>> entry = read_entry(ctx.keyspace, key, stream, id);
      if (!entry.is_ok()) return entry.status();
      if (!*entry) {
        // The message is gone: its pending entry goes too.
        if (*pending) {
          if (Status status = drop_pending(changes, group_name, *group, id, **pending);
              !status.is_ok()) {
            return status;
          }
          group_changed = true;
        }
        continue;
      }
      std::optional<StreamPending> previous = *pending;
      StreamPending next;
      bool forced = false;
      if (!previous) {
        if (!force) continue;
        next = StreamPending{now, 1, ""};
        forced = true;
      } else {
        next = *previous;
      }
      if (!forced && min_idle != 0 && now - next.delivery_ms < min_idle) continue;
      next.delivery_ms = delivery;
      if (retrycount >= 0) {
        next.delivery_count = static_cast<uint64_t>(retrycount);
      } else if (!justid) {
        ++next.delivery_count;
      }
      if (Status status = claim_one(ctx, changes, group_name, *group, consumer_name,
                                    consumer_touched, now, id, previous, std::move(next));
          !status.is_ok()) {
        return status;
      }
      group_changed = true;
      claimed.emplace_back(id, std::move(*entry));
    }
    if (group_changed || consumer_touched) put_group(changes, group_name, *group);
    write_claimed(reply, justid, claimed);
    return changes.commit(nullptr);
  });
}

void xautoclaim_command(CommandContext& ctx) {
  const std::vector<std::string>& args = ctx.args;
  const std::optional<int64_t> parsed_idle = parse_int64(args[4]);
  if (!parsed_idle) return ctx.reply.error("ERR Invalid min-idle-time argument for XAUTOCLAIM");
  const int64_t min_idle = std::max<int64_t>(*parsed_idle, 0);
  const std::optional<StreamId> start = parse_start(ctx.reply, args[5]);
  if (!start) return;
  int64_t count = 100;
  bool justid = false;
  // Redis's bound: LONG_MAX / max(sizeof(streamID), attempts factor 10).
  constexpr int64_t kCountMax = std::numeric_limits<int64_t>::max() / 16;
  for (size_t j = 6; j < args.size(); ++j) {
    if (equals_ignore_case(args[j], "count") && j + 1 < args.size()) {
      const std::optional<int64_t> value = parse_int64(args[j + 1]);
      if (!value || *value < 1 || *value > kCountMax) {
        return ctx.reply.error("ERR COUNT must be > 0");
      }
      count = *value;
      ++j;
    } else if (equals_ignore_case(args[j], "justid")) {
      justid = true;
    } else {
      return ctx.reply.error(kErrSyntax);
    }
  }
  const std::string& key = args[1];
  const std::string& group_name = args[2];
  const std::string& consumer_name = args[3];
  run_stream_command(ctx, key, [&](resp::ReplyWriter& reply, StreamRead& stream) -> Status {
    StreamChanges changes(ctx.keyspace, key, stream.row.hidden());
    std::optional<StreamGroup> group;
    if (stream.exists()) {
      Result<std::optional<StreamGroup>> found = read_group(changes, group_name);
      if (!found.is_ok()) return found.status();
      group = *found;
    }
    if (!group) {
      reply.error(nogroup_error(key, group_name));
      return Status::ok();
    }
    const int64_t now = ctx.keyspace.now_ms();
    // At most count * 10 pending entries are examined, as in Redis.
    const uint64_t attempts = static_cast<uint64_t>(std::min<int64_t>(count, 1 << 20)) * 10;
    const std::string prefix = stream_pending_prefix(group_name);
    std::vector<std::pair<StreamId, StreamPending>> examined;
    std::optional<StreamId> next_cursor;
    Status status = visit_prefix(ctx.keyspace, key, stream, prefix, id_bytes(*start),
                                 [&](std::string_view sub_key, const Cell& cell) {
                                   const std::optional<StreamId> id =
                                       stream_id_after_prefix(sub_key, prefix);
                                   std::optional<StreamPending> pending =
                                       decode_stream_pending(cell.value);
                                   if (!id || !pending) return true;
                                   if (examined.size() >= attempts) {
                                     next_cursor = *id;
                                     return false;
                                   }
                                   examined.emplace_back(*id, std::move(*pending));
                                   return true;
                                 });
    if (!status.is_ok()) return status;
    std::vector<std::pair<StreamId, std::optional<StreamEntry>>> claimed;
    std::vector<StreamId> deleted;
    bool consumer_touched = false;
    int64_t left = count;
    size_t i = 0;
    for (; i < examined.size() && left > 0; ++i) {
      const auto& [id, pending] = examined[i];
      Result<std::optional<StreamEntry>> entry = read_entry(ctx.keyspace, key, stream, id);
      if (!entry.is_ok()) return entry.status();
      if (!*entry) {
        if (Status dropped = drop_pending(changes, group_name, *group, id, pending);
            !dropped.is_ok()) {
          return dropped;
        }
        deleted.push_back(id);
        --left;  // redis-server 7.0 counts a deleted entry against COUNT too
        continue;
      }
      if (min_idle != 0 && now - pending.delivery_ms < min_idle) continue;
      StreamPending next = pending;
      next.delivery_ms = now;
      if (!justid) ++next.delivery_count;
      if (Status claimed_status = claim_one(ctx, changes, group_name, *group, consumer_name,
                                            consumer_touched, now, id, pending, std::move(next));
          !claimed_status.is_ok()) {
        return claimed_status;
      }
      claimed.emplace_back(id, std::move(*entry));
      --left;
    }
    if (i < examined.size()) next_cursor = examined[i].first;
    if (consumer_touched || !deleted.empty()) put_group(changes, group_name, *group);
    reply.array(3);
    write_id(reply, next_cursor.value_or(StreamId{}));
    write_claimed(reply, justid, claimed);
    reply.array(deleted.size());
    for (const StreamId& id : deleted) write_id(reply, id);
    return changes.commit(nullptr);
  });
}

// ---- XINFO ----

void write_meta_fields(resp::ReplyWriter& reply, const StreamMeta& meta) {
  reply.bulk("length");
  reply.integer(static_cast<int64_t>(meta.length));
  // Cairn keeps no radix tree: these two estimate what redis-server would report.
  const int64_t nodes = static_cast<int64_t>((meta.length + kStreamNodeEntries - 1) /
                                             kStreamNodeEntries);
  reply.bulk("radix-tree-keys");
  reply.integer(nodes);
  reply.bulk("radix-tree-nodes");
  reply.integer(nodes + 1);
  reply.bulk("last-generated-id");
  write_id(reply, meta.last_id);
  reply.bulk("max-deleted-entry-id");
  write_id(reply, meta.max_deleted_id);
  reply.bulk("entries-added");
  reply.integer(static_cast<int64_t>(meta.entries_added));
  reply.bulk("recorded-first-entry-id");
  write_id(reply, meta.first_id);
}

struct GroupInfo {
  std::string name;
  StreamGroup group;
};

Result<std::vector<GroupInfo>> list_groups(Keyspace& keyspace, const std::string& key,
                                           const StreamRead& stream) {
  std::vector<GroupInfo> groups;
  Status inner = Status::ok();
  Status status = visit_prefix(keyspace, key, stream, std::string(1, kStreamGroupNamespace), "",
                               [&](std::string_view sub_key, const Cell& cell) {
                                 std::optional<StreamGroup> group =
                                     decode_stream_group(cell.value);
                                 if (!group) {
                                   inner = Status::corruption("a group that does not decode");
                                   return false;
                                 }
                                 groups.push_back({std::string(sub_key.substr(1)), *group});
                                 return true;
                               });
  if (!status.is_ok()) return status;
  if (!inner.is_ok()) return inner;
  return groups;
}

void xinfo_stream(CommandContext& ctx, const std::string& key, const StreamRead& stream) {
  const std::vector<std::string>& args = ctx.args;
  bool full = false;
  int64_t count = 10;
  if (args.size() > 3) {
    if (!equals_ignore_case(args[3], "full")) {
      return ctx.reply.error(subcommand_syntax_error(args));
    }
    full = true;
    if (args.size() > 4) {
      if (args.size() != 6 || !equals_ignore_case(args[4], "count")) {
        return ctx.reply.error(subcommand_syntax_error(args));
      }
      const std::optional<int64_t> value = parse_int64(args[5]);
      if (!value) return ctx.reply.error(kErrNotInteger);
      count = std::max<int64_t>(*value, 0);
    }
  }
  Keyspace& keyspace = ctx.keyspace;
  const StreamMeta& meta = stream.meta;
  Result<std::vector<GroupInfo>> groups = list_groups(keyspace, key, stream);
  if (!groups.is_ok()) return ctx.reply.error(storage_error_reply(groups.status()));
  std::string staged;
  resp::ReplyWriter reply(&staged, ctx.reply.protocol());
  if (!full) {
    Result<Entries> first = collect_entries(keyspace, key, stream, {}, kMaxStreamId, false, 1);
    if (!first.is_ok()) return ctx.reply.error(storage_error_reply(first.status()));
    Result<Entries> last = collect_entries(keyspace, key, stream, {}, kMaxStreamId, true, 1);
    if (!last.is_ok()) return ctx.reply.error(storage_error_reply(last.status()));
    reply.map(10);
    write_meta_fields(reply, meta);
    reply.bulk("groups");
    reply.integer(static_cast<int64_t>(groups->size()));
    reply.bulk("first-entry");
    if (first->empty()) {
      reply.null();
    } else {
      write_entry(reply, first->front().first, first->front().second);
    }
    reply.bulk("last-entry");
    if (last->empty()) {
      reply.null();
    } else {
      write_entry(reply, last->front().first, last->front().second);
    }
    ctx.reply.buffer()->append(staged);
    return;
  }
  const uint64_t limit = static_cast<uint64_t>(count);  // 0 = everything
  Result<Entries> entries = collect_entries(keyspace, key, stream, {}, kMaxStreamId, false, limit);
  if (!entries.is_ok()) return ctx.reply.error(storage_error_reply(entries.status()));
  reply.map(9);
  write_meta_fields(reply, meta);
  reply.bulk("entries");
  write_entries(reply, *entries);
  reply.bulk("groups");
  reply.array(groups->size());
  for (const GroupInfo& info : *groups) {
    reply.map(7);
    reply.bulk("name");
    reply.bulk(info.name);
    reply.bulk("last-delivered-id");
    write_id(reply, info.group.last_delivered);
    reply.bulk("entries-read");
    if (info.group.entries_read != -1) {
      reply.integer(info.group.entries_read);
    } else {
      reply.null();
    }
    reply.bulk("lag");
    write_lag(reply, meta, info.group);
    reply.bulk("pel-count");
    reply.integer(static_cast<int64_t>(info.group.pending));
    const std::string prefix = stream_pending_prefix(info.name);
    std::vector<std::pair<StreamId, StreamPending>> pel;
    Status status = visit_prefix(keyspace, key, stream, prefix, "",
                                 [&](std::string_view sub_key, const Cell& cell) {
                                   auto id = stream_id_after_prefix(sub_key, prefix);
                                   auto pending = decode_stream_pending(cell.value);
                                   if (id && pending) pel.emplace_back(*id, std::move(*pending));
                                   return limit == 0 || pel.size() < limit;
                                 });
    if (!status.is_ok()) return ctx.reply.error(storage_error_reply(status));
    reply.bulk("pending");
    reply.array(pel.size());
    for (const auto& [id, pending] : pel) {
      reply.array(4);
      write_id(reply, id);
      reply.bulk(pending.consumer);
      reply.integer(pending.delivery_ms);
      reply.integer(static_cast<int64_t>(pending.delivery_count));
    }
    const std::string consumer_prefix = stream_consumer_prefix(info.name);
    std::vector<std::pair<std::string, StreamConsumer>> consumers;
    status = visit_prefix(keyspace, key, stream, consumer_prefix, "",
                          [&](std::string_view sub_key, const Cell& cell) {
                            auto consumer = decode_stream_consumer(cell.value);
                            if (consumer) {
                              consumers.emplace_back(sub_key.substr(consumer_prefix.size()),
                                                     *consumer);
                            }
                            return true;
                          });
    if (!status.is_ok()) return ctx.reply.error(storage_error_reply(status));
    reply.bulk("consumers");
    reply.array(consumers.size());
    StreamChanges reads(keyspace, key, stream.row.hidden());
    for (const auto& [name, consumer] : consumers) {
      reply.map(4);
      reply.bulk("name");
      reply.bulk(name);
      reply.bulk("seen-time");
      reply.integer(consumer.seen_ms);
      reply.bulk("pel-count");
      reply.integer(static_cast<int64_t>(consumer.pending));
      const std::string own_prefix = stream_consumer_pending_prefix(info.name, name);
      std::vector<StreamId> ids;
      status = visit_prefix(keyspace, key, stream, own_prefix, "",
                            [&](std::string_view sub_key, const Cell&) {
                              if (auto id = stream_id_after_prefix(sub_key, own_prefix)) {
                                ids.push_back(*id);
                              }
                              return limit == 0 || ids.size() < limit;
                            });
      if (!status.is_ok()) return ctx.reply.error(storage_error_reply(status));
      reply.bulk("pending");
      reply.array(ids.size());
      for (const StreamId& id : ids) {
        Result<std::optional<StreamPending>> pending = read_pending(reads, info.name, id);
        if (!pending.is_ok()) return ctx.reply.error(storage_error_reply(pending.status()));
        const StreamPending shown = pending->value_or(StreamPending{});
        reply.array(3);
        write_id(reply, id);
        reply.integer(shown.delivery_ms);
        reply.integer(static_cast<int64_t>(shown.delivery_count));
      }
    }
  }
  ctx.reply.buffer()->append(staged);
}

void xinfo_command(CommandContext& ctx) {
  const std::vector<std::string>& args = ctx.args;
  const std::string& key = args[2];
  const std::optional<StreamRead> stream = read_stream_or_reply(ctx, key);
  if (!stream) return;
  if (!stream->exists()) return ctx.reply.error(kErrNoKey);
  const std::string& sub = args[1];
  if (equals_ignore_case(sub, "stream")) return xinfo_stream(ctx, key, *stream);
  if (equals_ignore_case(sub, "groups")) {
    Result<std::vector<GroupInfo>> groups = list_groups(ctx.keyspace, key, *stream);
    if (!groups.is_ok()) return ctx.reply.error(storage_error_reply(groups.status()));
    ctx.reply.array(groups->size());
    for (const GroupInfo& info : *groups) {
      ctx.reply.map(6);
      ctx.reply.bulk("name");
      ctx.reply.bulk(info.name);
      ctx.reply.bulk("consumers");
      ctx.reply.integer(static_cast<int64_t>(info.group.consumers));
      ctx.reply.bulk("pending");
      ctx.reply.integer(static_cast<int64_t>(info.group.pending));
      ctx.reply.bulk("last-delivered-id");
      write_id(ctx.reply, info.group.last_delivered);
      ctx.reply.bulk("entries-read");
      if (info.group.entries_read != -1) {
        ctx.reply.integer(info.group.entries_read);
      } else {
        ctx.reply.null();
      }
      ctx.reply.bulk("lag");
      write_lag(ctx.reply, stream->meta, info.group);
    }
    return;
  }
  // CONSUMERS key group
  const std::string& group_name = args[3];
  StreamChanges reads(ctx.keyspace, key, stream->row.hidden());
  Result<std::optional<StreamGroup>> group = read_group(reads, group_name);
  if (!group.is_ok()) return ctx.reply.error(storage_error_reply(group.status()));
  if (!*group) {
    return ctx.reply.error("NOGROUP No such consumer group '" + group_name +
                           "' for key name '" + key + "'");
  }
  const std::string prefix = stream_consumer_prefix(group_name);
  std::vector<std::pair<std::string, StreamConsumer>> consumers;
  Status status = visit_prefix(ctx.keyspace, key, *stream, prefix, "",
                               [&](std::string_view sub_key, const Cell& cell) {
                                 if (auto consumer = decode_stream_consumer(cell.value)) {
                                   consumers.emplace_back(sub_key.substr(prefix.size()),
                                                          *consumer);
                                 }
                                 return true;
                               });
  if (!status.is_ok()) return ctx.reply.error(storage_error_reply(status));
  const int64_t now = ctx.keyspace.now_ms();
  ctx.reply.array(consumers.size());
  for (const auto& [name, consumer] : consumers) {
    ctx.reply.map(3);
    ctx.reply.bulk("name");
    ctx.reply.bulk(name);
    ctx.reply.bulk("pending");
    ctx.reply.integer(static_cast<int64_t>(consumer.pending));
    ctx.reply.bulk("idle");
    ctx.reply.integer(std::max<int64_t>(now - consumer.seen_ms, 0));
  }
}

void xinfo_help_command(CommandContext& ctx) {
  write_help(ctx.reply, "XINFO",
             {"CONSUMERS <key> <groupname>",
              "    Show consumers of <groupname>.",
              "GROUPS <key>",
              "    Show the stream consumer groups.",
              "STREAM <key> [FULL [COUNT <count>]",
              "    Show information about the stream."});
}

CommandSpec spec(std::string name, int arity, uint32_t flags, int first_key, int last_key,
                 std::string summary, std::string since, std::string complexity,
                 Handler handler) {
  return make_keyed_command_spec("stream", std::move(name), arity, flags, first_key, last_key,
                                 std::move(summary), std::move(since), std::move(complexity),
                                 std::move(handler));
}

}  // namespace

void register_stream_commands(CommandTable& table) {
  const std::string o1 = "O(1)";
  table.add(spec("xadd", -5, kWrite | kDenyOom | kFast, 1, 1,
                 "Appends a new entry to a stream", "5.0.0",
                 "O(1) when adding a new entry, O(N) when trimming where N being the number of "
                 "entries evicted.",
                 xadd_command));
  table.add(spec("xtrim", -4, kWrite, 1, 1, "Trims the stream to (approximately if '~' is "
                 "passed) a certain size", "5.0.0",
                 "O(N), with N being the number of evicted entries.", xtrim_command));
  table.add(spec("xdel", -3, kWrite | kFast, 1, 1,
                 "Removes the specified entries from the stream. Returns the number of items "
                 "actually deleted, that may be different from the number of IDs passed in case "
                 "certain IDs do not exist.",
                 "5.0.0", "O(1) for each single item to delete in the stream", xdel_command));
  table.add(spec("xlen", 2, kReadOnly | kFast, 1, 1, "Return the number of entries in a stream",
                 "5.0.0", o1, xlen_command));
  table.add(spec("xrange", -4, kReadOnly, 1, 1,
                 "Return a range of elements in a stream, with IDs matching the specified IDs "
                 "interval",
                 "5.0.0",
                 "O(N) with N being the number of elements being returned.", xrange_command));
  table.add(spec("xrevrange", -4, kReadOnly, 1, 1,
                 "Return a range of elements in a stream, with IDs matching the specified IDs "
                 "interval, in reverse order (from greater to smaller IDs) compared to XRANGE",
                 "5.0.0",
                 "O(N) with N being the number of elements returned.", xrevrange_command));
  {
    CommandSpec xread = spec("xread", -4, kReadOnly | kBlocking, 0, 0,
                             "Return never seen elements in multiple streams, with IDs greater "
                             "than the ones reported by the caller for each stream. Can block.",
                             "5.0.0", "For each stream mentioned: O(M)",
                             xread_command);
    xread.flags |= kMovableKeys;
    xread.keys_after_keyword = "streams";
    table.add(std::move(xread));
  }
  {
    CommandSpec xreadgroup =
        spec("xreadgroup", -7, kWrite | kBlocking, 0, 0,
             "Return new entries from a stream using a consumer group, or access the history of "
             "the pending entries for a given consumer. Can block.",
             "5.0.0", "For each stream mentioned: O(M)", xreadgroup_command);
    xreadgroup.flags |= kMovableKeys;
    xreadgroup.keys_after_keyword = "streams";
    xreadgroup.keyword_from = 4;
    table.add(std::move(xreadgroup));
  }
  table.add(spec("xack", -4, kWrite | kFast, 1, 1,
                 "Marks a pending message as correctly processed, effectively removing it from "
                 "the pending entries list of the consumer group.",
                 "5.0.0", "O(1) for each message ID processed.", xack_command));
  table.add(spec("xpending", -3, kReadOnly, 1, 1,
                 "Return information and entries from a stream consumer group pending entries "
                 "list, that are messages fetched but never acknowledged.",
                 "5.0.0", "O(N) with N being the number of elements returned",
                 xpending_command));
  table.add(spec("xclaim", -6, kWrite | kFast, 1, 1,
                 "Changes (or acquires) ownership of a message in a consumer group, as if the "
                 "message was delivered to the specified consumer.",
                 "5.0.0", "O(log N) with N being the number of messages in the PEL of the "
                 "consumer group.", xclaim_command));
  table.add(spec("xautoclaim", -6, kWrite | kFast, 1, 1,
                 "Changes (or acquires) ownership of messages in a consumer group, as if the "
                 "messages were delivered to the specified consumer.",
                 "6.2.0", "O(1) if COUNT is small.", xautoclaim_command));
  table.add(spec("xsetid", -3, kWrite | kDenyOom | kFast, 1, 1,
                 "An internal command for replicating stream values", "5.0.0", o1,
                 xsetid_command));
  {
    CommandSpec xgroup = make_command_spec("stream", "xgroup", -2, 0, "A container for consumer "
                                           "groups commands", "5.0.0",
                                           "Depends on subcommand.", nullptr);
    struct Sub {
      const char* name;
      int arity;
      uint32_t flags;
      const char* summary;
    };
    const Sub subs[] = {
        {"xgroup|create", -5, kWrite | kDenyOom, "Create a consumer group."},
        {"xgroup|setid", -5, kWrite, "Set a consumer group to an arbitrary last delivered ID "
                                     "value."},
        {"xgroup|destroy", 4, kWrite, "Destroy a consumer group."},
        {"xgroup|createconsumer", 5, kWrite | kDenyOom,
         "Create a consumer in a consumer group."},
        {"xgroup|delconsumer", 5, kWrite, "Delete a consumer from a consumer group."},
    };
    for (const Sub& sub : subs) {
      CommandSpec command = make_command_spec("stream", sub.name, sub.arity, sub.flags,
                                              sub.summary, "5.0.0", o1, xgroup_command);
      command.first_key = 2;
      command.last_key = 2;
      command.key_step = 1;
      xgroup.subcommands.push_back(std::move(command));
    }
    xgroup.subcommands.push_back(make_command_spec(
        "stream", "xgroup|help", 2, kLoading | kStale,
        "Show helpful text about the different subcommands", "5.0.0", o1, xgroup_help_command));
    table.add(std::move(xgroup));
  }
  {
    CommandSpec xinfo = make_command_spec("stream", "xinfo", -2, 0, "A container for stream "
                                          "introspection commands", "4.0.0",
                                          "Depends on subcommand.", nullptr);
    struct Sub {
      const char* name;
      int arity;
      const char* summary;
    };
    const Sub subs[] = {
        {"xinfo|stream", -3, "Get information about a stream"},
        {"xinfo|groups", 3, "List the consumer groups of a stream"},
        {"xinfo|consumers", 4, "List the consumers in a consumer group"},
    };
    for (const Sub& sub : subs) {
      CommandSpec command = make_command_spec("stream", sub.name, sub.arity, kReadOnly,
                                              sub.summary, "5.0.0", "O(N)", xinfo_command);
      command.first_key = 2;
      command.last_key = 2;
      command.key_step = 1;
      xinfo.subcommands.push_back(std::move(command));
    }
    xinfo.subcommands.push_back(make_command_spec(
        "stream", "xinfo|help", 2, kLoading | kStale,
        "Show helpful text about the different subcommands", "5.0.0", o1, xinfo_help_command));
    table.add(std::move(xinfo));
  }
}

}  // namespace cairn::commands
