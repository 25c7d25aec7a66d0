#pragma once
// What the commands of row types (hashes, sets; docs/formats.md "Rows") share: reading a key as
// a row of one type (WRONGTYPE otherwise), creating a row, and reading, writing and listing its
// fields. Members of a set are fields with an empty value.

#include <functional>
#include <map>
#include <optional>
#include <random>
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

// The random source of the random-field commands (one per thread).
std::mt19937_64& random_source();

inline constexpr std::string_view kErrRandomReplyTooLarge =
    "ERR the reply would exceed 268435456 bytes; ask for fewer elements";

// `count` random indexes below `size`, with repeats (SRANDMEMBER, HRANDFIELD, ZRANDMEMBER with a
// negative count): at most 10,000,000 of them, and nullopt (answer kErrRandomReplyTooLarge)
// once the reply would pass 256 MiB, element i weighing element_bytes(i) plus its framing.
std::optional<std::vector<size_t>> picks_with_repeats(
    size_t size, int64_t count, const std::function<uint64_t(size_t)>& element_bytes);

// After removing fields: if the row has none left, deletes the key (Redis deletes an emptied
// hash or set, and its TTL with it); a tombstone lets compaction reclaim the header.
Status delete_row_if_empty(coordinator::Keyspace& keyspace, const std::string& key);

// Replaces whatever `key` holds with a new row of `type` holding `cells` (sub-key, value),
// written in batches; with no cells the key is left deleted (the *STORE commands, COPY).
Status replace_row(coordinator::Keyspace& keyspace, const std::string& key,
                   storage::ValueType type,
                   std::span<const std::pair<std::string, std::string>> cells,
                   int64_t expire_at_ms = 0);

using storage::decode_member_score;
using storage::encode_member_score;
// The cell of a sorted-set member (its score; each replica derives the member's score index
// entry from it, docs/formats.md "Sorted sets"), for write_fields.
void append_zset_member_cell(std::string_view member, double score,
                             std::vector<std::pair<std::string, std::string>>& cells);

// ---- Set algebra over rows (SINTER/SUNION/SDIFF and ZUNION/ZINTER/ZDIFF) ----
// Sets count as sorted sets whose scores are all 1, as in Redis.
enum class Algebra { kInter, kUnion, kDiff };
enum class Aggregate { kSum, kMin, kMax };

struct AlgebraSource {
  const std::string* key = nullptr;
  RowOfType read;
  double weight = 1;
};

// Reads `keys` for an algebra command, type-checking every key before any result as Redis
// does: sets, and sorted sets too when `zsets_too`. nullopt after a WRONGTYPE reply.
Result<std::optional<std::vector<AlgebraSource>>> read_algebra_sources(
    coordinator::Keyspace& keyspace, std::span<const std::string> keys, bool zsets_too,
    resp::ReplyWriter& reply);

// Member → score of the result of `op` (weights from the sources, scores of equal members
// combined by `aggregate`; a difference keeps the first source's scores). `limit` stops an
// intersection once it has that many members (0 = no limit).
Result<std::map<std::string, double>> combine_rows(coordinator::Keyspace& keyspace,
                                                   std::vector<AlgebraSource> sources,
                                                   Algebra op, Aggregate aggregate,
                                                   uint64_t limit = 0);

// Writes the value a listing shows for a field's cell (HSCAN: the value; ZSCAN: the score).
using FieldValueWriter = std::function<void(resp::ReplyWriter&, const storage::Cell&)>;

// HSCAN / SSCAN / ZSCAN key cursor [MATCH pattern] [COUNT count] over a row of `type`: each
// matching field, followed by its value when `value` is set. The cursor is the number of fields
// (in field order) already walked; a row of at most 128 fields is returned whole, as
// redis-server does for a small (listpack or intset) collection.
void scan_row_command(CommandContext& ctx, storage::ValueType type,
                      const FieldValueWriter* value);

// HRANDFIELD / ZRANDMEMBER key [count [`with_word`]] over a row of `type`: one random field, or
// `count` distinct ones (negative: with repeats, bounded); with `with_word`, each followed by
// `value` (RESP3: [field, value] pairs).
void random_fields_command(CommandContext& ctx, storage::ValueType type,
                           std::string_view with_word, const FieldValueWriter& value);

// Writes the aggregate header of a whole-row listing for `count` fields (map, array or set).
using ListingHeader = std::function<void(resp::ReplyWriter&, uint64_t count)>;
// Writes one cell of a whole-row listing; `name` is its sub-key after the namespace byte (a
// field's name, or a score index entry's score and member).
using ListingElement =
    std::function<void(resp::ReplyWriter&, std::string_view name, const storage::Cell& cell)>;

// A whole-row listing (HGETALL, HKEYS, HVALS, SMEMBERS; ZRANGE 0 -1 over the score index,
// namespace `ns`) left to a producer, when the keyspace can read the row at one moment (a
// single machine) and the connection lets the reply be produced later (docs/protocol.md "Big
// replies"): writes the header for the row's count now (or WRONGTYPE, or an empty aggregate)
// and leaves the cells of `ns` to a ReplyProducer, which writes them page by page as the
// client drains its output, from that moment's storage. Returns false, having written
// nothing, when it cannot: the caller then lists the row itself.
bool produce_row_listing(CommandContext& ctx, storage::ValueType type, char ns,
                         const ListingHeader& header, ListingElement element);

// Runs `fn` under the lock of `keys`; its staged reply is sent only if the keyspace succeeded.
void run_row_command(CommandContext& ctx, std::span<const std::string> keys,
                     const std::function<Status(resp::ReplyWriter&)>& fn);

// Runs `fn`, a command that only sets or deletes fields of `key` (HSET, HDEL, SADD, SREM),
// through Keyspace::write_fields_leaderless; its staged reply is sent only if it succeeded.
void run_field_command(CommandContext& ctx, const std::string& key,
                       const std::function<Status(resp::ReplyWriter&)>& fn);

// The set-or-delete commands: the row of `type` at `key` (created when absent) gets the fields
// named in args[first], args[first + step], ... (with the value after each name when `step` is
// 2), or loses them (`remove`). Answers through `done(count)`: how many fields were new (set),
// or how many existed and were removed (remove), as of the read before the write.
Status set_or_remove_fields(CommandContext& ctx, storage::ValueType type, size_t first,
                            size_t step, bool remove, resp::ReplyWriter& reply,
                            const std::function<void(int64_t)>& done);

}  // namespace cairn::commands
