#pragma once
// LocalKeyspace: the Keyspace of a single machine that owns every token (RF 1, the embedded
// default of `cairn server` without an orchestrator). Writes are stamped with this machine's HLC
// and writer id and applied to the local engine; reads hide tombstones and expired cells.

#include <cstdint>
#include <functional>

#include "common/hlc.h"
#include "coordinator/keyspace.h"
#include "storage/engine.h"

namespace cairn::coordinator {

class LocalKeyspace final : public Keyspace {
 public:
  // `engine` and `clock` must outlive the keyspace. `writer_id` is this machine's id (kept in its
  // data directory). `wall_clock_ms` decides expiry; tests pass a fake clock.
  LocalKeyspace(storage::Engine& engine, HybridClock& clock, uint64_t writer_id,
                std::function<int64_t()> wall_clock_ms);

  Result<std::optional<storage::Cell>> read(std::string_view key) override;
  Result<std::optional<storage::Cell>> read_stored(std::string_view key) override;
  Status write(std::string_view key, storage::ValueType type, std::string value,
               int64_t expire_at_ms) override;
  Status remove(std::string_view key) override;
  Status atomically(std::span<const std::string> keys, const std::function<Status()>& fn) override;
  Result<ScanPage> scan(const ScanRequest& request) override;
  Result<uint64_t> count() override;
  Result<std::optional<std::string>> random_key() override;
  Status clear() override;
  int64_t now_ms() override;
  Result<RowRead> read_row(std::string_view key) override;
  Result<std::unique_ptr<RowCursor>> open_row_cursor(std::string_view key) override;
  Result<std::vector<std::optional<storage::Cell>>> read_fields(
      std::string_view key, std::span<const std::string> sub_keys,
      HlcTimestamp hidden_through) override;
  Status write_fields(std::string_view key, storage::ValueType type,
                      std::span<const std::pair<std::string, std::string>> fields) override;
  Status write_expiring_fields(std::string_view key, storage::ValueType type,
                               std::span<const std::pair<std::string, std::string>> fields,
                               std::span<const int64_t> expire_at_ms) override;
  Status change_fields(std::string_view key, storage::ValueType type,
                       std::span<const std::string> removed,
                       std::span<const std::pair<std::string, std::string>> fields) override;
  Status remove_fields(std::string_view key, storage::ValueType type,
                       std::span<const std::string> sub_keys) override;
  Status scan_fields(std::string_view key, std::string_view from_sub_key,
                     HlcTimestamp hidden_through, const RowFieldVisitor& visitor) override;
  Status scan_fields_reverse(std::string_view key, std::string_view from_sub_key,
                             std::string_view below_sub_key, HlcTimestamp hidden_through,
                             const RowFieldVisitor& visitor) override;
  Result<bool> scan_fields_from_rank(std::string_view key, char ns, uint64_t rank,
                                     uint64_t total, HlcTimestamp hidden_through,
                                     const RowFieldVisitor& visitor) override;
  Result<std::optional<uint64_t>> field_rank(std::string_view key, std::string_view sub_key,
                                             uint64_t total) override;

 private:
  // Whether the key's own cell `cell` makes the key exist (SCAN, DBSIZE, RANDOMKEY).
  bool is_live_key(topology::Token token, std::string_view key, const storage::Cell& cell,
                   int64_t now);

  // The number of a row's live fields above `hidden_through`, for a row whose header says its
  // fields may expire (the row state's count includes expired ones). `any`: stop at the first.
  Result<uint64_t> count_live_fields(topology::Token token, std::string_view key,
                                     HlcTimestamp hidden_through, int64_t now, bool any);
  // read_row of `stored`, the key's header and row state as read now or at a snapshot.
  Result<RowRead> row_read_of(std::string_view key, storage::StoredRow stored, int64_t now);
  // Stamps tombstones for `removed` and the cells `fields` (fields[i] expiring at
  // expire_at_ms[i], when given) and applies them to the row in one Engine::apply_fields.
  Status apply_field_changes(std::string_view key, storage::ValueType type,
                             std::span<const std::string> removed,
                             std::span<const std::pair<std::string, std::string>> fields,
                             std::span<const int64_t> expire_at_ms);
  // The row state's count, or for a header with fields_expire, the live fields counted.
  Result<uint64_t> row_count(topology::Token token, std::string_view key,
                             const storage::StoredRow& row, const storage::Cell& header,
                             int64_t now, bool any);

  storage::Engine& engine_;
  HybridClock& clock_;
  uint64_t writer_id_;
  std::function<int64_t()> wall_clock_ms_;
};

}  // namespace cairn::coordinator
