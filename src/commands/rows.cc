#include "commands/rows.h"

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

std::mt19937_64& random_source() {
  thread_local std::mt19937_64 random{std::random_device{}()};
  return random;
}

}  // namespace

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
  Result<coordinator::RowRead> after = keyspace.read_row(key);
  if (!after.is_ok()) return after.status();
  if (after->header) return Status::ok();
  // No live key: an emptied row (or nothing). The tombstone is harmless if nothing was there.
  return keyspace.remove(key);
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
