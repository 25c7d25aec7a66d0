#pragma once
// What the commands of row types (hashes, sets; docs/formats.md "Rows") share: reading a key as
// a row of one type (WRONGTYPE otherwise), creating a row, and reading, writing and listing its
// fields. Members of a set are fields with an empty value.

#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "commands/command.h"
#include "coordinator/keyspace.h"

namespace cairn::commands {

// A key read as a row of `type`.
struct RowOfType {
  bool replied = false;  // WRONGTYPE was written; the caller stops
  Status status;         // a storage error (the caller returns it)
  coordinator::RowRead row;
  bool exists() const { return row.header.has_value(); }
  // Stored fields at or below this are not part of the row (for a row about to be created:
  // everything of the key's past).
  HlcTimestamp hidden() const {
    return row.header ? row.hidden_through : row.delete_through_for_new_header;
  }
};

// `need_count` false: row.count is unspecified (Keyspace::read_row_exists), which spares a
// cluster from counting the row's fields; for commands that never look at the count.
RowOfType read_row_of_type(coordinator::Keyspace& keyspace, const std::string& key,
                           storage::ValueType type, resp::ReplyWriter& reply,
                           bool need_count = true);

// Writes the header of a row that does not exist yet (no-op if it exists); afterwards `read`
// describes the new, empty row.
Status create_row(coordinator::Keyspace& keyspace, const std::string& key,
                  storage::ValueType type, RowOfType& read);

// The visible cell of one field, if any.
Result<std::optional<storage::Cell>> read_row_field(coordinator::Keyspace& keyspace,
                                                    const std::string& key, const RowOfType& read,
                                                    std::string_view field);

Status write_row_field(coordinator::Keyspace& keyspace, const std::string& key,
                       storage::ValueType type, std::string_view field, std::string value);
Status remove_row_field(coordinator::Keyspace& keyspace, const std::string& key,
                        storage::ValueType type, std::string_view field);

// Visits every visible field of an existing row in field order until `fn` returns false.
Status for_each_row_field(coordinator::Keyspace& keyspace, const std::string& key,
                          const RowOfType& read,
                          const std::function<bool(std::string_view field,
                                                   const storage::Cell& cell)>& fn);

// `count` distinct fields of an existing row chosen uniformly at random (every field, in
// field order, if count >= the row's size), in random order. A big row on a single machine
// finds each by its rank (the storage's rank blocks: O(blocks + block) per field); otherwise
// the row is walked once with reservoir sampling (O(fields) time, O(count) memory).
Result<std::vector<std::string>> random_distinct_fields(coordinator::Keyspace& keyspace,
                                                        const std::string& key,
                                                        const RowOfType& read, uint64_t count);

// After removing fields: if the row has none left, deletes the key (Redis deletes an emptied
// hash or set, and its TTL with it); a tombstone lets compaction reclaim the header.
Status delete_row_if_empty(coordinator::Keyspace& keyspace, const std::string& key);

// Runs `fn` under the lock of `keys`; its staged reply is sent only if the keyspace succeeded.
void run_row_command(CommandContext& ctx, std::span<const std::string> keys,
                     const std::function<Status(resp::ReplyWriter&)>& fn);

}  // namespace cairn::commands
