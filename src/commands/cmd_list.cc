// The list family (LPUSH, LRANGE, LMOVE, BLPOP...), with redis-server 7.0 semantics and error
// texts. A list is a row (docs/formats.md "Lists"): each element is a field cell under an
// order-preserving position, and a meta cell holds the positions of both ends, so a push or a pop
// at either end is a seek, never a walk over the cells earlier pops deleted. Every write is a
// read-modify-write inside Keyspace::atomically() (in a cluster: at the shard leader, which
// alone decides the order of elements). Replies are staged and sent only when the keyspace
// operation succeeded.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "commands/command.h"
#include "commands/list_row.h"
#include "commands/parse.h"
#include "commands/rows.h"

namespace cairn::commands {
namespace {

using coordinator::Keyspace;
using storage::Cell;
using storage::ValueType;

constexpr ValueType kList = ValueType::kList;
// Cells written or removed per keyspace call, so one command never holds more in flight.
constexpr size_t kCellsPerWrite = 1024;
// Positions stay within +-2^62: a push that would pass it renumbers the list first, so position
// arithmetic never overflows.
constexpr int64_t kPositionLimit = int64_t{1} << 62;

constexpr std::string_view kErrNotPositive = "ERR value is out of range, must be positive";
constexpr std::string_view kErrIndexOutOfRange = "ERR index out of range";
constexpr std::string_view kErrTimeoutNotFloat = "ERR timeout is not a float or out of range";
constexpr std::string_view kErrTimeoutNegative = "ERR timeout is negative";
constexpr std::string_view kErrTimeoutOutOfRange = "ERR timeout is out of range";
constexpr std::string_view kErrNumkeys = "ERR numkeys should be greater than 0";
constexpr std::string_view kErrCountPositive = "ERR count should be greater than 0";

enum class End { kHead, kTail };

std::optional<End> parse_end(std::string_view word) {
  if (equals_ignore_case(word, "left")) return End::kHead;
  if (equals_ignore_case(word, "right")) return End::kTail;
  return std::nullopt;
}

// A key read as a list.
struct ListRead {
  bool replied = false;  // WRONGTYPE was written
  RowOfType row;
  ListMeta meta;
  bool exists() const { return row.exists(); }
};

Result<ListRead> read_list(Keyspace& keyspace, const std::string& key, resp::ReplyWriter& reply) {
  ListRead list;
  list.row = read_row_of_type(keyspace, key, kList, reply, /*need_count=*/false);
  if (!list.row.status.is_ok()) return list.row.status;
  list.replied = list.row.replied;
  if (list.replied || !list.exists()) return list;
  const std::string meta_key = list_meta_sub_key();
  Result<std::vector<std::optional<Cell>>> cells =
      keyspace.read_fields(key, std::span<const std::string>(&meta_key, 1), list.row.hidden());
  if (!cells.is_ok()) return cells.status();
  std::optional<ListMeta> meta;
  if ((*cells)[0]) meta = decode_list_meta((*cells)[0]->value);
  if (!meta) return Status::corruption("a list without a valid meta cell");
  list.meta = *meta;
  return list;
}

Status write_meta(Keyspace& keyspace, const std::string& key, const ListMeta& meta) {
  const std::pair<std::string, std::string> cell{list_meta_sub_key(), encode_list_meta(meta)};
  return keyspace.write_fields(key, kList, std::span(&cell, 1));
}

Status write_cells(Keyspace& keyspace, const std::string& key,
                   std::span<const std::pair<std::string, std::string>> cells) {
  for (size_t i = 0; i < cells.size(); i += kCellsPerWrite) {
    if (Status status = keyspace.write_fields(
            key, kList, cells.subspan(i, std::min(kCellsPerWrite, cells.size() - i)));
        !status.is_ok()) {
      return status;
    }
  }
  return Status::ok();
}

Status remove_cells(Keyspace& keyspace, const std::string& key,
                    std::span<const std::string> sub_keys) {
  for (size_t i = 0; i < sub_keys.size(); i += kCellsPerWrite) {
    if (Status status = keyspace.remove_fields(
            key, kList, sub_keys.subspan(i, std::min(kCellsPerWrite, sub_keys.size() - i)));
        !status.is_ok()) {
      return status;
    }
  }
  return Status::ok();
}

// Visitor of elements: sub-key and value; false stops.
using ElementVisitor = std::function<bool(std::string_view sub_key, const std::string& value)>;

// Only element cells within the list's ends (invariant 2) are elements; a cell outside them is
// the remnant of a write that failed half-way and is ignored.
bool is_element(const ListMeta& meta, std::string_view sub_key) {
  const std::optional<int64_t> position = list_position_of_sub_key(sub_key);
  return position && *position >= meta.head && *position <= meta.tail;
}

// Visits the elements from index `start` (0 = the head) towards the tail.
Status visit_forward(Keyspace& keyspace, const std::string& key, const ListRead& list,
                     uint64_t start, const ElementVisitor& visit) {
  if (start >= list.meta.count) return Status::ok();
  bool past_end = false;
  auto visitor = [&](std::string_view sub_key, const Cell& cell) {
    if (sub_key.empty() || sub_key[0] != storage::kFieldNamespace) return false;
    const std::optional<int64_t> position = list_position_of_sub_key(sub_key);
    if (!position || *position > list.meta.tail) {
      past_end = true;
      return false;
    }
    return *position < list.meta.head || visit(sub_key, cell.value);
  };
  if (!list.meta.sparse) {
    return keyspace.scan_fields(key, list_position_sub_key(list.meta.head + int64_t(start)),
                                list.row.hidden(), visitor);
  }
  if (start > 0) {
    Result<bool> ranked = keyspace.scan_fields_from_rank(key, storage::kFieldNamespace, start,
                                                         list.meta.count, list.row.hidden(),
                                                         visitor);
    if (!ranked.is_ok()) return ranked.status();
    if (*ranked) return Status::ok();
  }
  uint64_t skipped = 0;
  return keyspace.scan_fields(key, list_position_sub_key(list.meta.head), list.row.hidden(),
                              [&](std::string_view sub_key, const Cell& cell) {
                                if (skipped < start && !sub_key.empty() &&
                                    sub_key[0] == storage::kFieldNamespace) {
                                  ++skipped;
                                  return true;
                                }
                                return visitor(sub_key, cell);
                              });
}

// Visits the elements from index count - 1 - `start_from_tail` towards the head.
Status visit_backward(Keyspace& keyspace, const std::string& key, const ListRead& list,
                      uint64_t start_from_tail, const ElementVisitor& visit) {
  if (start_from_tail >= list.meta.count) return Status::ok();
  int64_t below = list.meta.tail + 1;
  uint64_t to_skip = start_from_tail;
  if (!list.meta.sparse) {
    below -= static_cast<int64_t>(start_from_tail);
    to_skip = 0;
  }
  return keyspace.scan_fields_reverse(
      key, list_position_sub_key(list.meta.head), list_position_sub_key(below), list.row.hidden(),
      [&](std::string_view sub_key, const Cell& cell) {
        if (!is_element(list.meta, sub_key)) return true;
        if (to_skip > 0) {
          --to_skip;
          return true;
        }
        return visit(sub_key, cell.value);
      });
}

Status visit_from_end(Keyspace& keyspace, const std::string& key, const ListRead& list, End end,
                      uint64_t start, const ElementVisitor& visit) {
  return end == End::kHead ? visit_forward(keyspace, key, list, start, visit)
                           : visit_backward(keyspace, key, list, start, visit);
}

// The sub-key and value of the element at `index`, if it exists.
Result<std::optional<std::pair<std::string, std::string>>> element_at(Keyspace& keyspace,
                                                                      const std::string& key,
                                                                      const ListRead& list,
                                                                      int64_t index) {
  using Found = std::optional<std::pair<std::string, std::string>>;
  const int64_t count = static_cast<int64_t>(list.meta.count);
  if (index < 0) index += count;
  if (index < 0 || index >= count) return Found();
  Found found;
  if (!list.meta.sparse) {
    // Dense (invariant 4): one point read.
    const std::string sub_key = list_position_sub_key(list.meta.head + index);
    Result<std::vector<std::optional<Cell>>> cells =
        keyspace.read_fields(key, std::span<const std::string>(&sub_key, 1), list.row.hidden());
    if (!cells.is_ok()) return cells.status();
    if ((*cells)[0]) found.emplace(sub_key, std::move((*cells)[0]->value));
    return found;
  }
  const bool from_head = index <= count / 2;
  Status status = visit_from_end(
      keyspace, key, list, from_head ? End::kHead : End::kTail,
      static_cast<uint64_t>(from_head ? index : count - 1 - index),
      [&](std::string_view sub_key, const std::string& value) {
        found.emplace(std::string(sub_key), value);
        return false;
      });
  if (!status.is_ok()) return status;
  return found;
}

// Rewrites the list with the positions 0..count-1 centred on 0 (invariant 4 holds again): the
// rare way out when positions near an end or the gap of an insert are used up. O(elements),
// holding them in memory.
Status renumber(Keyspace& keyspace, const std::string& key, ListRead& list,
                resp::ReplyWriter& reply) {
  std::vector<std::pair<std::string, std::string>> cells;
  cells.reserve(static_cast<size_t>(std::min<uint64_t>(list.meta.count, 1 << 16)) + 1);
  const int64_t first = -static_cast<int64_t>(list.meta.count / 2);
  int64_t position = first;
  Status status = visit_forward(keyspace, key, list, 0,
                                [&](std::string_view, const std::string& value) {
                                  cells.emplace_back(list_position_sub_key(position++), value);
                                  return true;
                                });
  if (!status.is_ok()) return status;
  ListMeta meta{first, position - 1, static_cast<uint64_t>(cells.size()), false};
  cells.emplace_back(list_meta_sub_key(), encode_list_meta(meta));
  const int64_t expire_at_ms = list.row.row.header ? list.row.row.header->expire_at_ms : 0;
  if (Status replaced = replace_row(keyspace, key, kList, cells, expire_at_ms);
      !replaced.is_ok()) {
    return replaced;
  }
  Result<ListRead> reread = read_list(keyspace, key, reply);
  if (!reread.is_ok()) return reread.status();
  list = std::move(reread).value();
  return Status::ok();
}

// Pushes `values` one after the other at `end` (LPUSH a b c leaves c b a), creating the list.
// Elements first and the meta cell last: a push that fails half-way leaves cells outside the
// list's ends, which the next push at that end overwrites.
Status push_elements(Keyspace& keyspace, const std::string& key, ListRead& list, End end,
                     std::span<const std::string> values, resp::ReplyWriter& reply) {
  if (!list.exists()) {
    if (Status status = create_row(keyspace, key, kList, list.row); !status.is_ok()) return status;
    list.meta = ListMeta{};
  }
  const int64_t n = static_cast<int64_t>(values.size());
  if ((end == End::kHead && list.meta.head - n < -kPositionLimit) ||
      (end == End::kTail && list.meta.tail + n > kPositionLimit)) {
    if (Status status = renumber(keyspace, key, list, reply); !status.is_ok()) return status;
  }
  std::vector<std::pair<std::string, std::string>> cells;
  cells.reserve(values.size() + 1);
  for (const std::string& value : values) {
    const int64_t position = end == End::kHead ? --list.meta.head : ++list.meta.tail;
    cells.emplace_back(list_position_sub_key(position), value);
  }
  list.meta.count += values.size();
  cells.emplace_back(list_meta_sub_key(), encode_list_meta(list.meta));
  return write_cells(keyspace, key, cells);
}

// Ends the list's life when it has no element left (Redis deletes an emptied list), else writes
// its meta cell.
Status store_meta_or_delete(Keyspace& keyspace, const std::string& key, const ListRead& list) {
  if (list.meta.count == 0) return keyspace.remove(key);
  return write_meta(keyspace, key, list.meta);
}

// Removes up to `n` elements from `end`, appending their values to `out` when given, in pop
// order. Works in batches: each reads one element past the batch to learn the new end.
Status pop_elements(Keyspace& keyspace, const std::string& key, ListRead& list, End end,
                    uint64_t n, std::vector<std::string>* out) {
  n = std::min(n, list.meta.count);
  if (n == 0) return Status::ok();
  std::vector<std::string> sub_keys;
  while (n > 0) {
    const uint64_t batch = std::min<uint64_t>(n, kCellsPerWrite);
    sub_keys.clear();
    std::optional<int64_t> next_end;
    bool read = false;
    if (!list.meta.sparse) {
      // Dense (invariant 4): the batch's positions are known; point reads, not a scan.
      const int64_t step = end == End::kHead ? 1 : -1;
      const int64_t first = end == End::kHead ? list.meta.head : list.meta.tail;
      for (uint64_t i = 0; i < batch; ++i) {
        sub_keys.push_back(list_position_sub_key(first + step * static_cast<int64_t>(i)));
      }
      Result<std::vector<std::optional<Cell>>> cells =
          keyspace.read_fields(key, sub_keys, list.row.hidden());
      if (!cells.is_ok()) return cells.status();
      read = std::all_of(cells->begin(), cells->end(),
                         [](const std::optional<Cell>& cell) { return cell.has_value(); });
      if (read) {
        if (list.meta.count > batch) next_end = first + step * static_cast<int64_t>(batch);
        if (out != nullptr) {
          for (std::optional<Cell>& cell : *cells) out->push_back(std::move(cell->value));
        }
      } else {
        // An element gone from its position: an earlier pop whose meta cell was never written
        // (a crash, or a cluster write that failed half-way). The scan below steps over it.
        sub_keys.clear();
      }
    }
    if (!read) {
      Status status = visit_from_end(keyspace, key, list, end, 0,
                                     [&](std::string_view sub_key, const std::string& value) {
                                       if (sub_keys.size() == batch) {
                                         next_end = list_position_of_sub_key(sub_key);
                                         return false;
                                       }
                                       sub_keys.emplace_back(sub_key);
                                       if (out != nullptr) out->push_back(value);
                                       return true;
                                     });
      if (!status.is_ok()) return status;
    }
    if (sub_keys.size() < batch) return Status::corruption("a list holds fewer elements than its count");
    list.meta.count -= batch;
    n -= batch;
    if (next_end) {
      (end == End::kHead ? list.meta.head : list.meta.tail) = *next_end;
    } else if (list.meta.count > 0) {
      return Status::corruption("a list's elements end before its count");
    }
    if (n == 0 && list.meta.count > 0) {
      // The last batch and the new meta cell together: one write on a single machine, so a
      // crash never leaves the meta cell naming elements already removed.
      const std::pair<std::string, std::string> meta{list_meta_sub_key(),
                                                     encode_list_meta(list.meta)};
      return keyspace.change_fields(key, kList, sub_keys, std::span(&meta, 1));
    }
    if (Status removed = remove_cells(keyspace, key, sub_keys); !removed.is_ok()) return removed;
  }
  return store_meta_or_delete(keyspace, key, list);
}

// Redis's start/stop of LRANGE and LTRIM, clamped; nullopt for an empty range.
std::optional<std::pair<uint64_t, uint64_t>> clamp_range(int64_t start, int64_t stop,
                                                         uint64_t size) {
  const int64_t length = static_cast<int64_t>(size);
  if (start < 0) start = std::max<int64_t>(start, -length) + length;
  if (stop < 0) stop = std::max<int64_t>(stop, -length - 1) + length;
  if (start > stop || start >= length) return std::nullopt;
  if (stop >= length) stop = length - 1;
  return std::pair<uint64_t, uint64_t>(start, stop);
}

// For read-only commands: nullopt after replying (a storage error or WRONGTYPE).
std::optional<ListRead> read_list_or_reply(CommandContext& ctx, const std::string& key) {
  Result<ListRead> list = read_list(ctx.keyspace, key, ctx.reply);
  if (!list.is_ok()) {
    ctx.reply.error(storage_error_reply(list.status()));
    return std::nullopt;
  }
  if (list->replied) return std::nullopt;
  return std::move(list).value();
}

// Runs a write of the list at args[1] under its lock: `fn` gets the list (which may not
// exist) unless the key holds another type (WRONGTYPE replied).
void run_list_command(CommandContext& ctx,
                      const std::function<Status(ListRead&, resp::ReplyWriter&)>& fn) {
  const std::string& key = ctx.args[1];
  run_row_command(ctx, std::span(&ctx.args[1], 1), [&](resp::ReplyWriter& reply) -> Status {
    Result<ListRead> list = read_list(ctx.keyspace, key, reply);
    if (!list.is_ok()) return list.status();
    if (list->replied) return Status::ok();
    return fn(*list, reply);
  });
}

// ---- LPUSH / RPUSH / LPUSHX / RPUSHX ----

void push_command(CommandContext& ctx, End end, bool only_existing) {
  run_list_command(ctx, [&](ListRead& list, resp::ReplyWriter& reply) -> Status {
    if (only_existing && !list.exists()) {
      reply.integer(0);
      return Status::ok();
    }
    if (Status status = push_elements(ctx.keyspace, ctx.args[1], list, end,
                                      std::span(ctx.args).subspan(2), reply);
        !status.is_ok()) {
      return status;
    }
    reply.integer(static_cast<int64_t>(list.meta.count));
    return Status::ok();
  });
}

void lpush_command(CommandContext& ctx) { push_command(ctx, End::kHead, false); }
void rpush_command(CommandContext& ctx) { push_command(ctx, End::kTail, false); }
void lpushx_command(CommandContext& ctx) { push_command(ctx, End::kHead, true); }
void rpushx_command(CommandContext& ctx) { push_command(ctx, End::kTail, true); }

// ---- LPOP / RPOP ----

void pop_command(CommandContext& ctx, End end) {
  if (ctx.args.size() > 3) {
    return ctx.reply.error("ERR wrong number of arguments for '" + to_lower(ctx.args[0]) +
                           "' command");
  }
  std::optional<int64_t> count;
  if (ctx.args.size() == 3) {
    count = parse_int64(ctx.args[2]);
    if (!count || *count < 0) return ctx.reply.error(kErrNotPositive);
  }
  run_list_command(ctx, [&](ListRead& list, resp::ReplyWriter& reply) -> Status {
    if (!list.exists()) {
      if (count) {
        reply.null_array();
      } else {
        reply.null();
      }
      return Status::ok();
    }
    std::vector<std::string> popped;
    if (Status status = pop_elements(ctx.keyspace, ctx.args[1], list, end,
                                     count ? static_cast<uint64_t>(*count) : 1, &popped);
        !status.is_ok()) {
      return status;
    }
    if (count) {
      reply.array(popped.size());
      for (const std::string& value : popped) reply.bulk(value);
    } else {
      reply.bulk(popped.at(0));
    }
    return Status::ok();
  });
}

void lpop_command(CommandContext& ctx) { pop_command(ctx, End::kHead); }
void rpop_command(CommandContext& ctx) { pop_command(ctx, End::kTail); }

// ---- LLEN / LRANGE / LINDEX ----

void llen_command(CommandContext& ctx) {
  std::optional<ListRead> list = read_list_or_reply(ctx, ctx.args[1]);
  if (!list) return;
  ctx.reply.integer(list->exists() ? static_cast<int64_t>(list->meta.count) : 0);
}

void lrange_command(CommandContext& ctx) {
  const std::optional<int64_t> start = parse_int64(ctx.args[2]);
  const std::optional<int64_t> stop = parse_int64(ctx.args[3]);
  if (!start || !stop) return ctx.reply.error(kErrNotInteger);
  const std::string& key = ctx.args[1];
  std::optional<ListRead> list = read_list_or_reply(ctx, key);
  if (!list) return;
  const auto range = list->exists() ? clamp_range(*start, *stop, list->meta.count) : std::nullopt;
  if (!range) return ctx.reply.array(0);
  const uint64_t wanted = range->second - range->first + 1;
  std::string body;
  resp::ReplyWriter writer(&body, ctx.reply.protocol());
  uint64_t returned = 0;
  Status status = visit_forward(ctx.keyspace, key, *list, range->first,
                                [&](std::string_view, const std::string& value) {
                                  writer.bulk(value);
                                  return ++returned < wanted;
                                });
  if (!status.is_ok()) return ctx.reply.error(storage_error_reply(status));
  ctx.reply.array(returned);
  ctx.reply.buffer()->append(body);
}

void lindex_command(CommandContext& ctx) {
  // Redis looks the key up before it parses the index.
  std::optional<ListRead> list = read_list_or_reply(ctx, ctx.args[1]);
  if (!list) return;
  if (!list->exists()) return ctx.reply.null();
  const std::optional<int64_t> index = parse_int64(ctx.args[2]);
  if (!index) return ctx.reply.error(kErrNotInteger);
  auto found = element_at(ctx.keyspace, ctx.args[1], *list, *index);
  if (!found.is_ok()) return ctx.reply.error(storage_error_reply(found.status()));
  if (!*found) return ctx.reply.null();
  ctx.reply.bulk((*found)->second);
}

// ---- LSET / LINSERT / LREM / LTRIM ----

void lset_command(CommandContext& ctx) {
  const std::string& key = ctx.args[1];
  run_list_command(ctx, [&](ListRead& list, resp::ReplyWriter& reply) -> Status {
    if (!list.exists()) {
      reply.error(kErrNoSuchKey);
      return Status::ok();
    }
    // Redis looks the key up before it parses the index.
    const std::optional<int64_t> index = parse_int64(ctx.args[2]);
    if (!index) {
      reply.error(kErrNotInteger);
      return Status::ok();
    }
    auto found = element_at(ctx.keyspace, key, list, *index);
    if (!found.is_ok()) return found.status();
    if (!*found) {
      reply.error(kErrIndexOutOfRange);
      return Status::ok();
    }
    const std::pair<std::string, std::string> cell{(*found)->first, ctx.args[3]};
    if (Status status = write_cells(ctx.keyspace, key, std::span(&cell, 1)); !status.is_ok()) {
      return status;
    }
    reply.ok();
    return Status::ok();
  });
}

// The sub-key for a new element right after `below` (nullopt: before the head) and before
// `above` (nullopt: after the tail), updating the meta; nullopt when the gap is used up.
std::optional<std::string> insert_position(ListMeta& meta, const std::optional<std::string>& below,
                                           const std::optional<std::string>& above) {
  if (!below) return list_position_sub_key(--meta.head);
  if (!above) return list_position_sub_key(++meta.tail);
  std::string between = list_sub_key_between(*below, *above);
  if (between.size() > kListSubKeyBytesMax) return std::nullopt;
  meta.sparse = true;
  return between;
}

void linsert_command(CommandContext& ctx) {
  const bool before = equals_ignore_case(ctx.args[2], "before");
  if (!before && !equals_ignore_case(ctx.args[2], "after")) return ctx.reply.error(kErrSyntax);
  const std::string& key = ctx.args[1];
  const std::string& pivot = ctx.args[3];
  run_list_command(ctx, [&](ListRead& list, resp::ReplyWriter& reply) -> Status {
    if (!list.exists()) {
      reply.integer(0);
      return Status::ok();
    }
    for (int attempt = 0; attempt < 2; ++attempt) {
      // The neighbours of the gap: the pivot and the element on the wanted side of it.
      std::optional<std::string> previous, below, above;
      bool found = false;
      Status status = visit_forward(ctx.keyspace, key, list, 0,
                                    [&](std::string_view sub_key, const std::string& value) {
                                      if (found) {
                                        above = std::string(sub_key);
                                        return false;
                                      }
                                      if (value == pivot) {
                                        found = true;
                                        if (before) {
                                          below = previous;
                                          above = std::string(sub_key);
                                          return false;
                                        }
                                        below = std::string(sub_key);
                                        return true;
                                      }
                                      previous = std::string(sub_key);
                                      return true;
                                    });
      if (!status.is_ok()) return status;
      if (!found) {
        reply.integer(-1);
        return Status::ok();
      }
      ListMeta meta = list.meta;
      std::optional<std::string> sub_key = insert_position(meta, below, above);
      if (!sub_key) {
        if (Status renumbered = renumber(ctx.keyspace, key, list, reply); !renumbered.is_ok()) {
          return renumbered;
        }
        continue;
      }
      ++meta.count;
      const std::pair<std::string, std::string> cells[] = {
          {std::move(*sub_key), ctx.args[4]}, {list_meta_sub_key(), encode_list_meta(meta)}};
      if (Status written = write_cells(ctx.keyspace, key, cells); !written.is_ok()) return written;
      reply.integer(static_cast<int64_t>(meta.count));
      return Status::ok();
    }
    return Status::corruption("a renumbered list has no room between two positions");
  });
}

// After elements were removed from the middle or the ends: the ends are found again from the
// old ones (a seek each) and the list is no longer dense.
Status refind_ends(Keyspace& keyspace, const std::string& key, ListRead& list) {
  list.meta.sparse = true;
  if (list.meta.count == 0) return Status::ok();
  ListMeta& meta = list.meta;
  std::optional<int64_t> head, tail;
  // The old ends bound the search; visit_* take them from the meta.
  Status status = visit_forward(keyspace, key, list, 0, [&](std::string_view sub_key,
                                                            const std::string&) {
    head = list_position_of_sub_key(sub_key);
    return false;
  });
  if (!status.is_ok()) return status;
  status = visit_backward(keyspace, key, list, 0, [&](std::string_view sub_key,
                                                      const std::string&) {
    tail = list_position_of_sub_key(sub_key);
    return false;
  });
  if (!status.is_ok()) return status;
  if (!head || !tail) return Status::corruption("a list's elements end before its count");
  meta.head = *head;
  meta.tail = *tail;
  return Status::ok();
}

void lrem_command(CommandContext& ctx) {
  const std::optional<int64_t> count = parse_int64(ctx.args[2]);
  if (!count) return ctx.reply.error(kErrNotInteger);
  const std::string& key = ctx.args[1];
  const std::string& element = ctx.args[3];
  run_list_command(ctx, [&](ListRead& list, resp::ReplyWriter& reply) -> Status {
    if (!list.exists()) {
      reply.integer(0);
      return Status::ok();
    }
    // |LLONG_MIN| does not fit: any count beyond the list's size means "all of them".
    const uint64_t limit = *count == 0 ? list.meta.count
                                       : (*count < 0 ? 0 - static_cast<uint64_t>(*count)
                                                     : static_cast<uint64_t>(*count));
    std::vector<std::string> removed;
    Status status = visit_from_end(ctx.keyspace, key, list, *count < 0 ? End::kTail : End::kHead,
                                   0, [&](std::string_view sub_key, const std::string& value) {
                                     if (value == element) removed.emplace_back(sub_key);
                                     return removed.size() < limit;
                                   });
    if (!status.is_ok()) return status;
    if (!removed.empty()) {
      if (Status gone = remove_cells(ctx.keyspace, key, removed); !gone.is_ok()) return gone;
      list.meta.count -= removed.size();
      if (Status ends = refind_ends(ctx.keyspace, key, list); !ends.is_ok()) return ends;
      if (Status stored = store_meta_or_delete(ctx.keyspace, key, list); !stored.is_ok()) {
        return stored;
      }
    }
    reply.integer(static_cast<int64_t>(removed.size()));
    return Status::ok();
  });
}

void ltrim_command(CommandContext& ctx) {
  const std::optional<int64_t> start = parse_int64(ctx.args[2]);
  const std::optional<int64_t> stop = parse_int64(ctx.args[3]);
  if (!start || !stop) return ctx.reply.error(kErrNotInteger);
  const std::string& key = ctx.args[1];
  run_list_command(ctx, [&](ListRead& list, resp::ReplyWriter& reply) -> Status {
    if (list.exists()) {
      const uint64_t size = list.meta.count;
      const auto range = clamp_range(*start, *stop, size);
      const uint64_t from_head = range ? range->first : size;
      const uint64_t from_tail = range ? size - 1 - range->second : 0;
      if (from_head > 0) {
        if (Status status = pop_elements(ctx.keyspace, key, list, End::kHead, from_head, nullptr);
            !status.is_ok()) {
          return status;
        }
      }
      if (from_tail > 0 && list.meta.count > 0) {
        if (Status status = pop_elements(ctx.keyspace, key, list, End::kTail, from_tail, nullptr);
            !status.is_ok()) {
          return status;
        }
      }
    }
    reply.ok();
    return Status::ok();
  });
}

// ---- LPOS ----

void lpos_command(CommandContext& ctx) {
  int64_t rank = 1;
  std::optional<int64_t> count;
  int64_t maxlen = 0;
  for (size_t i = 3; i < ctx.args.size(); i += 2) {
    if (i + 1 >= ctx.args.size()) return ctx.reply.error(kErrSyntax);
    const std::string& option = ctx.args[i];
    const std::optional<int64_t> value = parse_int64(ctx.args[i + 1]);
    if (equals_ignore_case(option, "rank")) {
      if (!value) return ctx.reply.error(kErrNotInteger);
      if (*value == 0) {
        return ctx.reply.error(
            "ERR RANK can't be zero: use 1 to start from the first match, 2 from the second ... "
            "or use negative to start from the end of the list");
      }
      rank = *value;
    } else if (equals_ignore_case(option, "count")) {
      if (!value) return ctx.reply.error(kErrNotInteger);
      if (*value < 0) return ctx.reply.error("ERR COUNT can't be negative");
      count = *value;
    } else if (equals_ignore_case(option, "maxlen")) {
      if (!value) return ctx.reply.error(kErrNotInteger);
      if (*value < 0) return ctx.reply.error("ERR MAXLEN can't be negative");
      maxlen = *value;
    } else {
      return ctx.reply.error(kErrSyntax);
    }
  }
  const std::string& key = ctx.args[1];
  std::optional<ListRead> list = read_list_or_reply(ctx, key);
  if (!list) return;
  if (!list->exists()) return count ? ctx.reply.array(0) : ctx.reply.null();
  const End end = rank > 0 ? End::kHead : End::kTail;
  // redis-server 7.0 negates the rank without checking: -2^63 stays negative, so every match
  // from the tail counts and COUNT never stops it.
  const bool rank_overflows = rank == std::numeric_limits<int64_t>::min();
  uint64_t skip = rank > 0 ? static_cast<uint64_t>(rank - 1)
                  : rank_overflows ? 0
                                   : static_cast<uint64_t>(-(rank + 1));
  const uint64_t wanted = !count ? 1
                          : (*count == 0 || rank_overflows) ? list->meta.count
                                                            : uint64_t(*count);
  const uint64_t size = list->meta.count;
  std::vector<int64_t> indexes;
  uint64_t index = 0;
  Status status = visit_from_end(ctx.keyspace, key, *list, end, 0,
                                 [&](std::string_view, const std::string& value) {
                                   if (maxlen != 0 && index >= uint64_t(maxlen)) return false;
                                   const uint64_t at = index++;
                                   if (value != ctx.args[2]) return true;
                                   if (skip > 0) {
                                     --skip;
                                     return true;
                                   }
                                   indexes.push_back(static_cast<int64_t>(
                                       end == End::kHead ? at : size - 1 - at));
                                   return indexes.size() < wanted;
                                 });
  if (!status.is_ok()) return ctx.reply.error(storage_error_reply(status));
  if (!count) return indexes.empty() ? ctx.reply.null() : ctx.reply.integer(indexes[0]);
  ctx.reply.array(indexes.size());
  for (int64_t at : indexes) ctx.reply.integer(at);
}

// ---- LMOVE / RPOPLPUSH / LMPOP and their blocking forms ----

// A blocked client's retry reads its source lists through this: a key that now holds another
// type is no list to pop from (Redis serves blocked clients only from lists), not WRONGTYPE.
Result<ListRead> read_source_list(Keyspace& keyspace, const std::string& key,
                                  resp::ReplyWriter& reply, bool retry) {
  if (!retry) return read_list(keyspace, key, reply);
  std::string wrong_type;
  resp::ReplyWriter scratch(&wrong_type, reply.protocol());
  Result<ListRead> list = read_list(keyspace, key, scratch);
  if (list.is_ok() && list->replied) return ListRead{};
  return list;
}

// Moves one element from the `from` end of `source` to the `to` end of `target`; nullopt when
// the source is empty (or after a WRONGTYPE reply: `reply` says which). `retry`: a blocked
// client's retry, for which a source of another type is empty.
Result<std::optional<std::string>> move_element(Keyspace& keyspace, const std::string& source,
                                                const std::string& target, End from, End to,
                                                resp::ReplyWriter& reply, bool& replied,
                                                bool retry) {
  Result<ListRead> list = read_source_list(keyspace, source, reply, retry);
  if (!list.is_ok()) return list.status();
  replied = list->replied;
  if (replied || !list->exists()) return std::optional<std::string>();
  // Redis checks the target's type only when there is something to move.
  Result<ListRead> destination = read_list(keyspace, target, reply);
  if (!destination.is_ok()) return destination.status();
  replied = destination->replied;
  if (replied) return std::optional<std::string>();
  std::vector<std::string> popped;
  if (Status status = pop_elements(keyspace, source, *list, from, 1, &popped); !status.is_ok()) {
    return status;
  }
  if (source == target) {
    // The pop changed the target's cells (or deleted it): read it again.
    destination = read_list(keyspace, target, reply);
    if (!destination.is_ok()) return destination.status();
  }
  if (Status status = push_elements(keyspace, target, *destination, to,
                                    std::span<const std::string>(&popped.at(0), 1), reply);
      !status.is_ok()) {
    return status;
  }
  return std::optional<std::string>(std::move(popped[0]));
}

// Pops up to `count` elements from the first non-empty list of `keys`, replying
// [key, [elements]] (or [key, element] when `single`), or the null array when all are empty.
Status pop_first_nonempty(Keyspace& keyspace, std::span<const std::string> keys, End end,
                          uint64_t count, bool single, resp::ReplyWriter& reply,
                          bool retry = false) {
  for (const std::string& key : keys) {
    Result<ListRead> list = read_source_list(keyspace, key, reply, retry);
    if (!list.is_ok()) return list.status();
    if (list->replied) return Status::ok();
    if (!list->exists()) continue;
    std::vector<std::string> popped;
    if (Status status = pop_elements(keyspace, key, *list, end, count, &popped); !status.is_ok()) {
      return status;
    }
    reply.array(2);
    reply.bulk(key);
    if (single) {
      reply.bulk(popped.at(0));
      return Status::ok();
    }
    reply.array(popped.size());
    for (const std::string& value : popped) reply.bulk(value);
    return Status::ok();
  }
  reply.null_array();
  return Status::ok();
}

// Redis's timeout argument of the blocking commands (seconds, fractions allowed), as a deadline
// in Unix ms (0 = wait forever); nullopt after an error reply.
std::optional<int64_t> parse_timeout(CommandContext& ctx, const std::string& text) {
  const std::optional<long double> seconds = parse_long_double(text);
  if (!seconds) {
    ctx.reply.error(kErrTimeoutNotFloat);
    return std::nullopt;
  }
  const long double ms = std::ceil(*seconds * 1000.0L);
  if (ms > static_cast<long double>(std::numeric_limits<int64_t>::max())) {
    ctx.reply.error(kErrTimeoutOutOfRange);
    return std::nullopt;
  }
  const int64_t timeout_ms = static_cast<int64_t>(ms);
  if (timeout_ms < 0) {
    ctx.reply.error(kErrTimeoutNegative);
    return std::nullopt;
  }
  if (timeout_ms == 0) return 0;
  const int64_t now = ctx.keyspace.now_ms();
  if (timeout_ms > std::numeric_limits<int64_t>::max() - now) {
    ctx.reply.error(kErrTimeoutOutOfRange);
    return std::nullopt;
  }
  return now + timeout_ms;
}

// Asks the connection to wait when the command's attempt finds nothing; a connection that
// cannot wait (a forwarded request) sends the null reply at once.
void offer_block(CommandContext& ctx, std::vector<std::string> keys, int64_t deadline_ms) {
  if (!ctx.session.blocking_allowed) return;
  ctx.session.block = BlockRequest{std::move(keys), deadline_ms, "list"};
}

void lmove_generic(CommandContext& ctx, End from, End to, std::optional<int64_t> deadline) {
  const std::string& source = ctx.args[1];
  const std::string& target = ctx.args[2];
  if (deadline) offer_block(ctx, {source}, *deadline);
  run_row_command(ctx, std::span(&ctx.args[1], 2), [&](resp::ReplyWriter& reply) -> Status {
    bool replied = false;
    Result<std::optional<std::string>> moved =
        move_element(ctx.keyspace, source, target, from, to, reply, replied,
                     ctx.session.block_retry);
    if (!moved.is_ok()) return moved.status();
    if (replied) return Status::ok();
    if (*moved) {
      reply.bulk(**moved);
    } else if (deadline) {
      reply.null_array();  // what redis-server 7.0 answers BLMOVE / BRPOPLPUSH on a timeout
    } else {
      reply.null();
    }
    return Status::ok();
  });
}

void lmove_command(CommandContext& ctx) {
  const std::optional<End> from = parse_end(ctx.args[3]);
  const std::optional<End> to = parse_end(ctx.args[4]);
  if (!from || !to) return ctx.reply.error(kErrSyntax);
  lmove_generic(ctx, *from, *to, std::nullopt);
}

void rpoplpush_command(CommandContext& ctx) {
  lmove_generic(ctx, End::kTail, End::kHead, std::nullopt);
}

void blmove_command(CommandContext& ctx) {
  const std::optional<End> from = parse_end(ctx.args[3]);
  const std::optional<End> to = parse_end(ctx.args[4]);
  if (!from || !to) return ctx.reply.error(kErrSyntax);
  const std::optional<int64_t> deadline = parse_timeout(ctx, ctx.args[5]);
  if (!deadline) return;
  lmove_generic(ctx, *from, *to, deadline);
}

void brpoplpush_command(CommandContext& ctx) {
  const std::optional<int64_t> deadline = parse_timeout(ctx, ctx.args[3]);
  if (!deadline) return;
  lmove_generic(ctx, End::kTail, End::kHead, deadline);
}

void blocking_pop_command(CommandContext& ctx, End end) {
  const std::optional<int64_t> deadline = parse_timeout(ctx, ctx.args.back());
  if (!deadline) return;
  const std::span<const std::string> keys(ctx.args.data() + 1, ctx.args.size() - 2);
  offer_block(ctx, std::vector<std::string>(keys.begin(), keys.end()), *deadline);
  run_row_command(ctx, keys, [&](resp::ReplyWriter& reply) {
    return pop_first_nonempty(ctx.keyspace, keys, end, 1, /*single=*/true, reply,
                              ctx.session.block_retry);
  });
}

void blpop_command(CommandContext& ctx) { blocking_pop_command(ctx, End::kHead); }
void brpop_command(CommandContext& ctx) { blocking_pop_command(ctx, End::kTail); }

// LMPOP numkeys key [key ...] LEFT|RIGHT [COUNT count], from args[first] (the numkeys);
// BLMPOP's timeout (args[1]) is parsed after the rest, as Redis does.
void lmpop_generic(CommandContext& ctx, size_t first, bool blocking) {
  const std::optional<int64_t> numkeys = parse_int64(ctx.args[first]);
  if (!numkeys || *numkeys <= 0) return ctx.reply.error(kErrNumkeys);
  if (static_cast<uint64_t>(*numkeys) > ctx.args.size() - first - 1) {
    return ctx.reply.error(kErrSyntax);
  }
  const size_t where_at = first + 1 + static_cast<size_t>(*numkeys);
  if (where_at >= ctx.args.size()) return ctx.reply.error(kErrSyntax);
  const std::optional<End> end = parse_end(ctx.args[where_at]);
  if (!end) return ctx.reply.error(kErrSyntax);
  std::optional<int64_t> count;
  for (size_t i = where_at + 1; i < ctx.args.size(); i += 2) {
    if (count || i + 1 >= ctx.args.size() || !equals_ignore_case(ctx.args[i], "count")) {
      return ctx.reply.error(kErrSyntax);
    }
    count = parse_int64(ctx.args[i + 1]);
    if (!count || *count <= 0) return ctx.reply.error(kErrCountPositive);
  }
  const std::span<const std::string> keys(ctx.args.data() + first + 1,
                                          static_cast<size_t>(*numkeys));
  std::optional<int64_t> deadline;
  if (blocking) {
    deadline = parse_timeout(ctx, ctx.args[1]);
    if (!deadline) return;
    offer_block(ctx, std::vector<std::string>(keys.begin(), keys.end()), *deadline);
  }
  run_row_command(ctx, keys, [&](resp::ReplyWriter& reply) {
    return pop_first_nonempty(ctx.keyspace, keys, *end, count ? uint64_t(*count) : 1,
                              /*single=*/false, reply, ctx.session.block_retry);
  });
}

void lmpop_command(CommandContext& ctx) { lmpop_generic(ctx, 1, false); }
void blmpop_command(CommandContext& ctx) { lmpop_generic(ctx, 2, true); }

CommandSpec spec(std::string name, int arity, uint32_t flags, int first_key, int last_key,
                 std::string summary, std::string since, std::string complexity,
                 Handler handler) {
  return make_keyed_command_spec("list", std::move(name), arity, flags, first_key, last_key,
                                 std::move(summary), std::move(since), std::move(complexity),
                                 std::move(handler));
}

}  // namespace

void register_list_commands(CommandTable& table) {
  const std::string o1 = "O(1)";
  const std::string on = "O(N) where N is the length of the list.";
  const uint32_t push = kWrite | kDenyOom | kFast;
  table.add(spec("lpush", -3, push, 1, 1, "Prepend one or multiple elements to a list", "1.0.0",
                 "O(1) for each element added", lpush_command));
  table.add(spec("rpush", -3, push, 1, 1, "Append one or multiple elements to a list", "1.0.0",
                 "O(1) for each element added", rpush_command));
  table.add(spec("lpushx", -3, push, 1, 1, "Prepend an element to a list, only if the list exists",
                 "2.2.0", "O(1) for each element added", lpushx_command));
  table.add(spec("rpushx", -3, push, 1, 1, "Append an element to a list, only if the list exists",
                 "2.2.0", "O(1) for each element added", rpushx_command));
  table.add(spec("lpop", -2, kWrite | kFast, 1, 1, "Remove and get the first elements in a list",
                 "1.0.0", "O(N) where N is the number of elements returned", lpop_command));
  table.add(spec("rpop", -2, kWrite | kFast, 1, 1, "Remove and get the last elements in a list",
                 "1.0.0", "O(N) where N is the number of elements returned", rpop_command));
  table.add(spec("llen", 2, kReadOnly | kFast, 1, 1, "Get the length of a list", "1.0.0", o1,
                 llen_command));
  table.add(spec("lrange", 4, kReadOnly, 1, 1, "Get a range of elements from a list", "1.0.0",
                 "O(S+N) where S is the distance of start offset from HEAD for small lists, "
                 "from nearest end (HEAD or TAIL) for large lists; and N is the number of "
                 "elements in the specified range.",
                 lrange_command));
  table.add(spec("lindex", 3, kReadOnly, 1, 1, "Get an element from a list by its index",
                 "1.0.0", on, lindex_command));
  table.add(spec("lset", 4, kWrite | kDenyOom, 1, 1, "Set the value of an element in a list by "
                 "its index", "1.0.0", on, lset_command));
  table.add(spec("linsert", 5, kWrite | kDenyOom, 1, 1,
                 "Insert an element before or after another element in a list", "2.2.0", on,
                 linsert_command));
  table.add(spec("lrem", 4, kWrite, 1, 1, "Remove elements from a list", "1.0.0", on,
                 lrem_command));
  table.add(spec("ltrim", 4, kWrite, 1, 1, "Trim a list to the specified range", "1.0.0",
                 "O(N) where N is the number of elements to be removed by the operation.",
                 ltrim_command));
  table.add(spec("lpos", -3, kReadOnly, 1, 1, "Return the index of matching elements on a list",
                 "6.0.6", on, lpos_command));
  table.add(spec("lmove", 5, kWrite | kDenyOom, 1, 2,
                 "Pop an element from a list, push it to another list and return it", "6.2.0", o1,
                 lmove_command));
  table.add(spec("rpoplpush", 3, kWrite | kDenyOom, 1, 2,
                 "Remove the last element in a list, prepend it to another list and return it",
                 "1.2.0", o1, rpoplpush_command));
  {
    CommandSpec lmpop = spec("lmpop", -4, kWrite, 0, 0,
                             "Pop elements from a list", "7.0.0",
                             "O(N+M) where N is the number of provided keys and M is the number "
                             "of elements returned.",
                             lmpop_command);
    lmpop.flags |= kMovableKeys;
    lmpop.numkeys_index = 1;
    table.add(std::move(lmpop));
  }
  const uint32_t blocking = kWrite | kNoScript | kBlocking;
  table.add(spec("blpop", -3, blocking, 1, -2,
                 "Remove and get the first element in a list, or block until one is available",
                 "2.0.0", "O(N) where N is the number of provided keys.", blpop_command));
  table.add(spec("brpop", -3, blocking, 1, -2,
                 "Remove and get the last element in a list, or block until one is available",
                 "2.0.0", "O(N) where N is the number of provided keys.", brpop_command));
  table.add(spec("blmove", 6, blocking | kDenyOom, 1, 2,
                 "Pop an element from a list, push it to another list and return it; or block "
                 "until one is available",
                 "6.2.0", o1, blmove_command));
  table.add(spec("brpoplpush", 4, blocking | kDenyOom, 1, 2,
                 "Pop an element from a list, push it to another list and return it; or block "
                 "until one is available",
                 "2.2.0", o1, brpoplpush_command));
  {
    CommandSpec blmpop = spec("blmpop", -5, blocking, 0, 0,
                              "Pop elements from a list, or block until one is available",
                              "7.0.0",
                              "O(N+M) where N is the number of provided keys and M is the number "
                              "of elements returned.",
                              blmpop_command);
    blmpop.flags |= kMovableKeys;
    blmpop.numkeys_index = 2;
    table.add(std::move(blmpop));
  }
}

}  // namespace cairn::commands
