#include "commands/rows.h"

#include "commands/parse.h"

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
