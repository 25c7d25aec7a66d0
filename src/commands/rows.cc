#include "commands/rows.h"

#include <algorithm>
#include <bit>
#include <cmath>

#include <limits>
#include <random>
#include <unordered_map>

#include "commands/glob.h"
#include "commands/parse.h"

#include <algorithm>
#include <random>
#include <set>

namespace cairn::commands {

RowOfType read_row_of_type(coordinator::Keyspace& keyspace, const std::string& key,
                           storage::ValueType type, resp::ReplyWriter& reply, bool need_count) {
  RowOfType result;
  Result<coordinator::RowRead> row =
      need_count ? keyspace.read_row(key) : keyspace.read_row_exists(key);
  if (!row.is_ok()) {
    result.status = row.status();
    return result;
  }
  if (row->header && row->header->type != type) {
    reply.error(kErrWrongType);
    result.replied = true;
    return result;
  }
  result.row = std::move(row).value();
  return result;
}

Status create_row(coordinator::Keyspace& keyspace, const std::string& key,
                  storage::ValueType type, RowOfType& read) {
  if (read.exists()) return Status::ok();
  const HlcTimestamp bound = read.row.delete_through_for_new_header;
  if (Status status =
          keyspace.write(key, type, storage::encode_row_header({bound}), /*expire_at_ms=*/0);
      !status.is_ok()) {
    return status;
  }
  read.row.header.emplace();
  read.row.header->type = type;
  read.row.hidden_through = bound;
  read.row.count = 0;
  return Status::ok();
}

Result<std::optional<storage::Cell>> read_row_field(coordinator::Keyspace& keyspace,
                                                    const std::string& key, const RowOfType& read,
                                                    std::string_view field) {
  if (!read.exists()) return std::optional<storage::Cell>();
  const std::string sub_key = storage::field_sub_key(field);
  Result<std::vector<std::optional<storage::Cell>>> cells =
      keyspace.read_fields(key, std::span<const std::string>(&sub_key, 1), read.hidden());
  if (!cells.is_ok()) return cells.status();
  return std::move((*cells)[0]);
}

Status write_row_field(coordinator::Keyspace& keyspace, const std::string& key,
                       storage::ValueType type, std::string_view field, std::string value) {
  const std::pair<std::string, std::string> entry{storage::field_sub_key(field), std::move(value)};
  return keyspace.write_fields(key, type, std::span(&entry, 1));
}

Status remove_row_field(coordinator::Keyspace& keyspace, const std::string& key,
                        storage::ValueType type, std::string_view field) {
  const std::string sub_key = storage::field_sub_key(field);
  return keyspace.remove_fields(key, type, std::span<const std::string>(&sub_key, 1));
}

Status for_each_row_field(coordinator::Keyspace& keyspace, const std::string& key,
                          const RowOfType& read,
                          const std::function<bool(std::string_view field,
                                                   const storage::Cell& cell)>& fn) {
  if (!read.exists()) return Status::ok();
  return keyspace.scan_fields(key, {}, read.hidden(),
                              [&](std::string_view sub_key, const storage::Cell& cell) {
                                std::optional<std::string_view> field =
                                    storage::field_of_sub_key(sub_key);
                                if (!field) return true;
                                return fn(*field, cell);
                              });
}

namespace {

}  // namespace

std::mt19937_64& random_source() {
  thread_local std::mt19937_64 random{std::random_device{}()};
  return random;
}


Result<std::vector<std::string>> random_distinct_fields(coordinator::Keyspace& keyspace,
                                                        const std::string& key,
                                                        const RowOfType& read, uint64_t count) {
  std::vector<std::string> out;
  const uint64_t total = read.row.count;
  if (!read.exists() || count == 0) return out;
  std::mt19937_64& random = random_source();
  if (count < total && count <= total / 4) {
    // Distinct ranks (Floyd's sampling), each looked up by rank.
    std::set<uint64_t> ranks;
    for (uint64_t j = total - count; j < total; ++j) {
      const uint64_t r = std::uniform_int_distribution<uint64_t>(0, j)(random);
      ranks.insert(ranks.contains(r) ? j : r);
    }
    for (uint64_t rank : ranks) {
      std::optional<std::string> field;
      Result<bool> found = keyspace.scan_fields_from_rank(
          key, storage::kFieldNamespace, rank, total, read.hidden(),
          [&](std::string_view sub_key, const storage::Cell&) {
            if (std::optional<std::string_view> name = storage::field_of_sub_key(sub_key)) {
              field = std::string(*name);
            }
            return false;
          });
      if (!found.is_ok()) return found.status();
      if (!*found || !field) {
        out.clear();
        break;  // no rank blocks here: sample by walking below
      }
      out.push_back(std::move(*field));
    }
    if (out.size() == ranks.size()) {
      std::shuffle(out.begin(), out.end(), random);
      return out;
    }
  }
  // Reservoir sampling over one walk of the row (every field when count >= its size).
  uint64_t seen = 0;
  Status status = for_each_row_field(keyspace, key, read,
                                     [&](std::string_view field, const storage::Cell&) {
                                       if (out.size() < count) {
                                         out.emplace_back(field);
                                       } else {
                                         const uint64_t slot =
                                             std::uniform_int_distribution<uint64_t>(0, seen)(random);
                                         if (slot < count) out[slot] = std::string(field);
                                       }
                                       ++seen;
                                       return true;
                                     });
  if (!status.is_ok()) return status;
  if (count < seen) std::shuffle(out.begin(), out.end(), random);
  return out;
}

Status delete_row_if_empty(coordinator::Keyspace& keyspace, const std::string& key) {
  // A cluster leaves the emptied row's header: it reads as no key (Keyspace::deletes_emptied_rows).
  if (!keyspace.deletes_emptied_rows()) return Status::ok();
  Result<coordinator::RowRead> after = keyspace.read_row(key);
  if (!after.is_ok()) return after.status();
  if (after->header) return Status::ok();
  // No live key: an emptied row (or nothing). The tombstone is harmless if nothing was there.
  return keyspace.remove(key);
}

Status replace_row(coordinator::Keyspace& keyspace, const std::string& key,
                   storage::ValueType type,
                   std::span<const std::pair<std::string, std::string>> cells,
                   int64_t expire_at_ms) {
  constexpr size_t kCellsPerWrite = 1024;
  // A tombstone hides all the key held, whatever its type; then a new header and the cells.
  if (Status status = keyspace.remove(key); !status.is_ok()) return status;
  if (cells.empty()) return Status::ok();
  Result<coordinator::RowRead> row = keyspace.read_row(key);
  if (!row.is_ok()) return row.status();
  if (Status status =
          keyspace.write(key, type, storage::encode_row_header({row->delete_through_for_new_header}),
                         expire_at_ms);
      !status.is_ok()) {
    return status;
  }
  for (size_t i = 0; i < cells.size(); i += kCellsPerWrite) {
    if (Status status = keyspace.write_fields(
            key, type, cells.subspan(i, std::min(kCellsPerWrite, cells.size() - i)));
        !status.is_ok()) {
      return status;
    }
  }
  return Status::ok();
}

void append_zset_member_cell(std::string_view member, double score,
                             std::vector<std::pair<std::string, std::string>>& cells) {
  if (score == 0) score = 0;  // -0 is stored as 0
  cells.emplace_back(storage::field_sub_key(member), encode_member_score(score));
}

Result<std::optional<std::vector<AlgebraSource>>> read_algebra_sources(
    coordinator::Keyspace& keyspace, std::span<const std::string> keys, bool zsets_too,
    resp::ReplyWriter& reply) {
  std::vector<AlgebraSource> sources;
  sources.reserve(keys.size());
  for (const std::string& key : keys) {
    Result<coordinator::RowRead> row = keyspace.read_row(key);
    if (!row.is_ok()) return row.status();
    if (row->header && row->header->type != storage::ValueType::kSet &&
        !(zsets_too && row->header->type == storage::ValueType::kZSet)) {
      reply.error(kErrWrongType);
      return std::optional<std::vector<AlgebraSource>>();
    }
    AlgebraSource source;
    source.key = &key;
    source.read.row = std::move(row).value();
    sources.push_back(std::move(source));
  }
  return std::optional(std::move(sources));
}

namespace {

// The score a member's cell stands for: 1 in a set, the stored score in a sorted set.
Result<double> member_score(const AlgebraSource& source, const storage::Cell& cell) {
  if (source.read.row.header->type != storage::ValueType::kZSet) return 1.0;
  std::optional<double> score = decode_member_score(cell.value);
  if (!score) return Status::corruption("sorted set member without a valid score");
  return *score;
}

double weighted(double score, double weight) {
  const double result = score * weight;
  return std::isnan(result) ? 0 : result;  // inf * 0
}

void aggregate_into(double& target, double value, Aggregate aggregate) {
  switch (aggregate) {
    case Aggregate::kSum:
      target += value;
      if (std::isnan(target)) target = 0;  // inf + -inf
      break;
    case Aggregate::kMin:
      target = std::min(target, value);
      break;
    case Aggregate::kMax:
      target = std::max(target, value);
      break;
  }
}

// Visits every member of a source with its weighted score.
Status for_each_member(coordinator::Keyspace& keyspace, const AlgebraSource& source,
                       const std::function<bool(std::string_view, double)>& fn) {
  Status failed = Status::ok();
  Status status = for_each_row_field(keyspace, *source.key, source.read,
                                     [&](std::string_view member, const storage::Cell& cell) {
                                       Result<double> score = member_score(source, cell);
                                       if (!score.is_ok()) {
                                         failed = score.status();
                                         return false;
                                       }
                                       return fn(member, weighted(*score, source.weight));
                                     });
  return status.is_ok() ? failed : status;
}

}  // namespace

Result<std::map<std::string, double>> combine_rows(coordinator::Keyspace& keyspace,
                                                   std::vector<AlgebraSource> sources,
                                                   Algebra op, Aggregate aggregate,
                                                   uint64_t limit) {
  std::map<std::string, double> result;
  if (sources.empty()) return result;
  if (op != Algebra::kDiff) {
    // Smallest first, as Redis orders them: an intersection walks the smallest and probes.
    std::stable_sort(sources.begin(), sources.end(),
                     [](const AlgebraSource& a, const AlgebraSource& b) {
                       return a.read.row.count < b.read.row.count;
                     });
  }
  if (op == Algebra::kInter) {
    for (const AlgebraSource& source : sources) {
      if (!source.read.exists()) return result;
    }
    Status failed = Status::ok();
    Status status = for_each_member(keyspace, sources[0], [&](std::string_view member,
                                                              double score) {
      for (size_t i = 1; i < sources.size(); ++i) {
        Result<std::optional<storage::Cell>> cell =
            read_row_field(keyspace, *sources[i].key, sources[i].read, member);
        if (!cell.is_ok()) {
          failed = cell.status();
          return false;
        }
        if (!cell->has_value()) return true;
        Result<double> other = member_score(sources[i], **cell);
        if (!other.is_ok()) {
          failed = other.status();
          return false;
        }
        aggregate_into(score, weighted(*other, sources[i].weight), aggregate);
      }
      result.emplace(member, score);
      return limit == 0 || result.size() < limit;
    });
    if (!status.is_ok()) return status;
    if (!failed.is_ok()) return failed;
    return result;
  }
  for (size_t i = 0; i < sources.size(); ++i) {
    if (op == Algebra::kDiff && i > 0 && result.empty()) break;
    Status status = for_each_member(keyspace, sources[i], [&](std::string_view member,
                                                              double score) {
      if (op == Algebra::kDiff && i > 0) {
        if (auto found = result.find(std::string(member)); found != result.end()) {
          result.erase(found);
        }
        return true;
      }
      if (op == Algebra::kDiff) {
        result.emplace(member, score);
        return true;
      }
      auto [it, inserted] = result.emplace(member, score);
      if (!inserted) aggregate_into(it->second, score, aggregate);
      return true;
    });
    if (!status.is_ok()) return status;
  }
  return result;
}

namespace {

// For read-only commands: nullopt after replying (storage error or WRONGTYPE).
std::optional<RowOfType> read_or_reply(CommandContext& ctx, const std::string& key,
                                       storage::ValueType type) {
  RowOfType read = read_row_of_type(ctx.keyspace, key, type, ctx.reply);
  if (read.replied) return std::nullopt;
  if (!read.status.is_ok()) {
    ctx.reply.error(storage_error_reply(read.status));
    return std::nullopt;
  }
  return read;
}

constexpr uint64_t kScanWholeMax = 128;
// Random fields with a negative count may repeat; Redis answers any count. The reply is bounded
// (a count beyond this is answered with this many) so one command cannot exhaust memory...
constexpr int64_t kRandomFieldsMax = 10'000'000;
// ...and by bytes: repeated big fields would otherwise make one reply of terabytes.
constexpr uint64_t kRandomReplyBytesMax = 256ull * 1024 * 1024;
constexpr uint64_t kElementOverheadBytes = 16;  // "$<length>\r\n...\r\n" around each element

}  // namespace

std::optional<std::vector<size_t>> picks_with_repeats(
    size_t size, int64_t count, const std::function<uint64_t(size_t)>& element_bytes) {
  std::vector<size_t> picks;
  if (size == 0) return picks;
  const int64_t wanted = std::min<int64_t>(count, kRandomFieldsMax);
  std::uniform_int_distribution<size_t> pick(0, size - 1);
  picks.reserve(static_cast<size_t>(std::max<int64_t>(wanted, 0)));
  uint64_t reply_bytes = 0;
  for (int64_t i = 0; i < wanted; ++i) {
    picks.push_back(pick(random_source()));
    reply_bytes += element_bytes(picks.back()) + kElementOverheadBytes;
    if (reply_bytes > kRandomReplyBytesMax) return std::nullopt;
  }
  return picks;
}

void scan_row_command(CommandContext& ctx, storage::ValueType type,
                      const FieldValueWriter* value) {
  const std::optional<uint64_t> cursor = parse_scan_cursor(ctx.args[2]);
  if (!cursor) return ctx.reply.error(kErrInvalidCursor);
  const std::string& key = ctx.args[1];
  std::optional<RowOfType> read = read_or_reply(ctx, key, type);
  if (!read) return;
  if (!read->exists()) {
    ctx.reply.array(2);
    ctx.reply.bulk("0");
    ctx.reply.array(0);
    return;
  }
  const std::string* pattern = nullptr;
  int64_t count = 10;
  for (size_t i = 3; i < ctx.args.size(); i += 2) {
    const bool has_value = i + 1 < ctx.args.size();
    if (equals_ignore_case(ctx.args[i], "count") && has_value) {
      std::optional<int64_t> parsed = parse_int64(ctx.args[i + 1]);
      if (!parsed) return ctx.reply.error(kErrNotInteger);
      if (*parsed < 1) return ctx.reply.error(kErrSyntax);
      count = *parsed;
    } else if (equals_ignore_case(ctx.args[i], "match") && has_value) {
      pattern = &ctx.args[i + 1];
      if (*pattern == "*") pattern = nullptr;  // matches everything, as in Redis
    } else {
      return ctx.reply.error(kErrSyntax);
    }
  }
  // A field added or removed during an iteration may shift the positions: a field present the
  // whole time may then be returned twice, or — unlike Redis — missed (docs/protocol.md).
  const bool whole = read->row.count <= kScanWholeMax;
  const uint64_t start = whole ? 0 : *cursor;
  // Clamped so start + page cannot wrap around (a cursor near 2^64 with a huge COUNT).
  const uint64_t page = whole ? read->row.count
                              : std::min(static_cast<uint64_t>(count),
                                         std::numeric_limits<uint64_t>::max() - start);
  std::string body;
  resp::ReplyWriter writer(&body, ctx.reply.protocol());
  uint64_t position = 0;
  uint64_t returned = 0;
  bool more = false;
  Status status = for_each_row_field(ctx.keyspace, key, *read, [&](std::string_view field,
                                                                   const storage::Cell& cell) {
    if (position >= start + page && !whole) {
      more = true;
      return false;
    }
    const bool in_page = position >= start;
    ++position;
    if (!in_page) return true;
    if (pattern && !glob_match(*pattern, field)) return true;
    writer.bulk(field);
    if (value) (*value)(writer, cell);
    ++returned;
    return true;
  });
  if (!status.is_ok()) return ctx.reply.error(storage_error_reply(status));
  ctx.reply.array(2);
  ctx.reply.bulk(more ? std::to_string(start + page) : "0");
  ctx.reply.array(value ? returned * 2 : returned);
  ctx.reply.buffer()->append(body);
}

void random_fields_command(CommandContext& ctx, storage::ValueType type,
                           std::string_view with_word, const FieldValueWriter& value) {
  const std::string& key = ctx.args[1];
  if (ctx.args.size() == 2) {
    std::optional<RowOfType> read = read_or_reply(ctx, key, type);
    if (!read) return;
    if (!read->exists()) return ctx.reply.null();
    Result<std::vector<std::string>> chosen = random_distinct_fields(ctx.keyspace, key, *read, 1);
    if (!chosen.is_ok()) return ctx.reply.error(storage_error_reply(chosen.status()));
    if (chosen->empty()) return ctx.reply.null();
    return ctx.reply.bulk(chosen->front());
  }
  std::optional<int64_t> count = parse_int64(ctx.args[2]);
  if (!count) return ctx.reply.error(kErrNotInteger);
  if (*count == std::numeric_limits<int64_t>::min()) {
    return ctx.reply.error(
        "ERR value is out of range, value must between -9223372036854775807 and "
        "9223372036854775807");
  }
  if (ctx.args.size() > 4 ||
      (ctx.args.size() == 4 && !equals_ignore_case(ctx.args[3], with_word))) {
    return ctx.reply.error(kErrSyntax);
  }
  const bool with_values = ctx.args.size() == 4;
  if (with_values && (*count < -std::numeric_limits<int64_t>::max() / 2 ||
                      *count > std::numeric_limits<int64_t>::max() / 2)) {
    return ctx.reply.error("ERR value is out of range");
  }
  std::optional<RowOfType> read = read_or_reply(ctx, key, type);
  if (!read) return;
  if (!read->exists() || *count == 0) return ctx.reply.array(0);
  const bool resp3 = ctx.reply.protocol() >= 3;
  if (*count > 0) {
    // Distinct fields: found by rank in a big row, never the whole row in memory.
    Result<std::vector<std::string>> chosen =
        random_distinct_fields(ctx.keyspace, key, *read, static_cast<uint64_t>(*count));
    if (!chosen.is_ok()) return ctx.reply.error(storage_error_reply(chosen.status()));
    std::vector<storage::Cell> cells;
    if (with_values) {
      for (const std::string& field : *chosen) {
        Result<std::optional<storage::Cell>> cell = read_row_field(ctx.keyspace, key, *read, field);
        if (!cell.is_ok()) return ctx.reply.error(storage_error_reply(cell.status()));
        cells.push_back(cell->value_or(storage::Cell{}));
      }
    }
    ctx.reply.array(with_values && !resp3 ? chosen->size() * 2 : chosen->size());
    for (size_t i = 0; i < chosen->size(); ++i) {
      if (with_values && resp3) ctx.reply.array(2);
      ctx.reply.bulk((*chosen)[i]);
      if (with_values) value(ctx.reply, cells[i]);
    }
    return;
  }
  // With repeats: the whole row (bounded by the reply limits like HGETALL), then picks of it.
  std::vector<std::pair<std::string, storage::Cell>> fields;
  fields.reserve(std::min<uint64_t>(read->row.count, 1024));
  Status status = for_each_row_field(ctx.keyspace, key, *read, [&](std::string_view field,
                                                                   const storage::Cell& cell) {
    fields.emplace_back(std::string(field), cell);
    return true;
  });
  if (!status.is_ok()) return ctx.reply.error(storage_error_reply(status));
  if (fields.empty()) return ctx.reply.array(0);
  std::optional<std::vector<size_t>> chosen =
      picks_with_repeats(fields.size(), -*count, [&](size_t index) -> uint64_t {
        const auto& [field, cell] = fields[index];
        return field.size() + (with_values ? cell.value.size() : 0);
      });
  if (!chosen) return ctx.reply.error(kErrRandomReplyTooLarge);
  const std::vector<size_t>& picks = *chosen;
  ctx.reply.array(with_values && !resp3 ? picks.size() * 2 : picks.size());
  for (size_t index : picks) {
    if (with_values && resp3) ctx.reply.array(2);
    ctx.reply.bulk(fields[index].first);
    if (with_values) value(ctx.reply, fields[index].second);
  }
}

void run_field_command(CommandContext& ctx, const std::string& key,
                       const std::function<Status(resp::ReplyWriter&)>& fn) {
  std::string staged;
  resp::ReplyWriter staged_reply(&staged, ctx.reply.protocol());
  Status status =
      ctx.keyspace.write_fields_leaderless(key, [&] { return fn(staged_reply); });
  if (!status.is_ok()) {
    ctx.reply.error(storage_error_reply(status));
    return;
  }
  ctx.reply.buffer()->append(staged);
}

Status set_or_remove_fields(CommandContext& ctx, storage::ValueType type, size_t first,
                            size_t step, bool remove, resp::ReplyWriter& reply,
                            const std::function<void(int64_t)>& done) {
  const std::string& key = ctx.args[1];
  // The fields the command names, each once in the order of first appearance, with the value
  // of its last appearance (HSET f 1 f 2 stores 2 and counts one field, as Redis).
  std::vector<std::pair<std::string, std::string>> cells;  // (sub-key, value)
  std::unordered_map<std::string_view, size_t> index;     // field name -> position in cells
  for (size_t i = first; i < ctx.args.size(); i += step) {
    const std::string& value = step == 2 ? ctx.args[i + 1] : std::string();
    auto [it, inserted] = index.try_emplace(ctx.args[i], cells.size());
    if (inserted) {
      cells.emplace_back(storage::field_sub_key(ctx.args[i]), value);
    } else {
      cells[it->second].second = value;
    }
  }
  std::vector<std::string> sub_keys;
  sub_keys.reserve(cells.size());
  for (const auto& cell : cells) sub_keys.push_back(cell.first);
  // Removing the last field deletes the key where the keyspace does that, which needs the
  // row's size; otherwise the type and existence are enough (no count of a cluster's row).
  const bool need_count = remove && ctx.keyspace.deletes_emptied_rows();
  RowOfType row = read_row_of_type(ctx.keyspace, key, type, reply, need_count);
  if (row.replied || !row.status.is_ok()) return row.status;
  // Then the named fields, in one batch (a cluster reads them in parallel). Reading them at
  // the same time as the row, on a thread of their own, was tried: slower on a loaded 2-core
  // machine than the two round trips.
  std::vector<bool> present(cells.size(), false);
  if (row.exists()) {
    Result<std::vector<std::optional<storage::Cell>>> found =
        ctx.keyspace.read_fields(key, sub_keys, row.hidden());
    if (!found.is_ok()) return found.status();
    for (size_t i = 0; i < cells.size(); ++i) present[i] = (*found)[i].has_value();
  }
  if (remove) {
    std::vector<std::string> gone;
    for (size_t i = 0; i < cells.size(); ++i) {
      if (present[i]) gone.push_back(std::move(sub_keys[i]));
    }
    if (!gone.empty()) {
      if (Status status = ctx.keyspace.remove_fields(key, type, gone); !status.is_ok()) {
        return status;
      }
    }
    if (!gone.empty() && gone.size() >= row.row.count) {
      // The last field went: Redis deletes the key (and its TTL).
      if (Status status = delete_row_if_empty(ctx.keyspace, key); !status.is_ok()) return status;
    }
    done(static_cast<int64_t>(gone.size()));
    return Status::ok();
  }
  if (Status status = create_row(ctx.keyspace, key, type, row); !status.is_ok()) return status;
  // Every named field is written, present or not: a hash field gets its new value, and a set
  // member that the read found is written again all the same, so an acknowledged SADD holds the
  // member even when the read was stale (a weak read level, a concurrent SREM elsewhere).
  if (Status status = ctx.keyspace.write_fields(key, type, cells); !status.is_ok()) {
    return status;
  }
  done(static_cast<int64_t>(cells.size() - std::count(present.begin(), present.end(), true)));
  return Status::ok();
}

namespace {

// The fields of a row at one moment (a RowCursor), written page by page.
class RowListingProducer final : public ReplyProducer {
 public:
  RowListingProducer(std::unique_ptr<coordinator::RowCursor> cursor, char ns,
                     ListingElement element)
      : cursor_(std::move(cursor)),
        element_(std::move(element)),
        remaining_(cursor_->row().count),
        next_(1, ns) {}

  Result<bool> produce(resp::ReplyWriter& out, size_t bytes_min) override {
    const size_t start = out.buffer()->size();
    bool paused = false;
    Status status =
        cursor_->scan_fields(next_, [&](std::string_view sub_key, const storage::Cell& cell) {
          if (sub_key[0] != next_[0] || remaining_ == 0) return false;  // past the namespace
          element_(out, sub_key.substr(1), cell);
          --remaining_;
          next_.assign(sub_key);
          next_.push_back('\0');  // the first sub-key after this one
          paused = out.buffer()->size() - start >= bytes_min;
          return !paused;
        });
    if (!status.is_ok()) return status;
    if (remaining_ > 0 && !paused) {
      // The count and the fields come from one snapshot: only damage makes them disagree.
      return Status::corruption("a row listed fewer fields than it counts");
    }
    return remaining_ > 0;
  }

 private:
  std::unique_ptr<coordinator::RowCursor> cursor_;
  ListingElement element_;
  uint64_t remaining_;
  std::string next_;  // where the next page starts
};

}  // namespace

bool produce_row_listing(CommandContext& ctx, storage::ValueType type, char ns,
                         const ListingHeader& header, ListingElement element) {
  if (!ctx.session.reply_producer_allowed) return false;
  Result<std::unique_ptr<coordinator::RowCursor>> cursor =
      ctx.keyspace.open_row_cursor(ctx.args[1]);
  if (!cursor.is_ok()) {
    ctx.reply.error(storage_error_reply(cursor.status()));
    return true;
  }
  if (*cursor == nullptr) return false;
  const coordinator::RowRead& row = (*cursor)->row();
  if (row.header && row.header->type != type) {
    ctx.reply.error(kErrWrongType);
    return true;
  }
  header(ctx.reply, row.header ? row.count : 0);
  if (row.header && row.count > 0) {
    ctx.session.reply_producer =
        std::make_shared<RowListingProducer>(std::move(*cursor), ns, std::move(element));
  }
  return true;
}

void run_row_command(CommandContext& ctx, std::span<const std::string> keys,
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

}  // namespace cairn::commands
