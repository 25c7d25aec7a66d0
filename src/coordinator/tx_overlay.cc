#include "coordinator/tx_overlay.h"

#include <utility>

#include "common/assert.h"

namespace cairn::coordinator {
namespace {

Status refused() { return Status::invalid_argument(std::string(kOverlayRefusedMessage)); }

}  // namespace

std::vector<CollectedWrite> TxOverlay::collected() const {
  std::vector<CollectedWrite> writes;
  writes.reserve(writes_.size());
  for (const auto& [key, cell] : writes_) writes.push_back(CollectedWrite{key, cell});
  return writes;
}

Status TxOverlay::commit() {
  if (writes_.empty()) return Status::ok();
  const std::vector<CollectedWrite> writes = collected();
  return base_.apply_together(writes);
}

const storage::Cell* TxOverlay::collected_cell(std::string_view key) const {
  auto it = writes_.find(key);
  return it == writes_.end() ? nullptr : &it->second;
}

void TxOverlay::collect(std::string_view key, storage::Cell cell) {
  CAIRN_ASSERT(cell.timestamp == 0, "collected writes are stamped at commit");
  writes_.insert_or_assign(std::string(key), std::move(cell));
}

Result<std::optional<storage::Cell>> TxOverlay::read(std::string_view key) {
  const storage::Cell* cell = collected_cell(key);
  if (cell == nullptr) return base_.read(key);
  if (!cell->live_at(now_ms())) return std::optional<storage::Cell>();
  return std::optional<storage::Cell>(*cell);
}

Result<std::optional<storage::Cell>> TxOverlay::read_stored(std::string_view key) {
  const storage::Cell* cell = collected_cell(key);
  if (cell == nullptr) return base_.read_stored(key);
  return std::optional<storage::Cell>(*cell);
}

Status TxOverlay::write(std::string_view key, storage::ValueType type, std::string value,
                        int64_t expire_at_ms) {
  // A row header written whole (EXPIRE or PERSIST of a hash) is a key's own cell like a string;
  // the engine keeps the row's state when it applies it.
  storage::Cell cell;
  cell.type = type;
  cell.value = std::move(value);
  cell.expire_at_ms = expire_at_ms;
  collect(key, std::move(cell));
  return Status::ok();
}

Status TxOverlay::remove(std::string_view key) {
  storage::Cell cell;
  cell.tombstone = true;
  collect(key, std::move(cell));
  return Status::ok();
}

Status TxOverlay::atomically(std::span<const std::string> /*keys*/,
                             const std::function<Status()>& fn) {
  return fn();  // the transaction holds every key's lock already
}

Status TxOverlay::write_fields_leaderless(const std::string& /*key*/,
                                          const std::function<Status()>& fn) {
  return fn();
}

Result<ScanPage> TxOverlay::scan(const ScanRequest& /*request*/) { return refused(); }
Result<uint64_t> TxOverlay::count() { return refused(); }
Result<std::optional<std::string>> TxOverlay::random_key() { return refused(); }
Status TxOverlay::clear() { return refused(); }

RowRead TxOverlay::row_of_collected(const storage::Cell& cell) {
  RowRead row;
  if (cell.live_at(now_ms())) row.header = cell;
  return row;
}

Result<RowRead> TxOverlay::read_row(std::string_view key) {
  const storage::Cell* cell = collected_cell(key);
  if (cell == nullptr) return base_.read_row(key);
  // A row header this transaction rewrote (an expiry) still has its fields, which the overlay
  // does not count: refused rather than answered wrong.
  if (storage::is_row_type(cell->type) && !cell->tombstone) return refused();
  return row_of_collected(*cell);
}

Result<RowRead> TxOverlay::read_row_exists(std::string_view key) {
  const storage::Cell* cell = collected_cell(key);
  if (cell == nullptr) return base_.read_row_exists(key);
  if (storage::is_row_type(cell->type) && !cell->tombstone) return refused();
  return row_of_collected(*cell);
}

Result<std::vector<std::optional<storage::Cell>>> TxOverlay::read_fields(
    std::string_view key, std::span<const std::string> sub_keys, HlcTimestamp hidden_through) {
  if (collected_cell(key) != nullptr) return refused();
  return base_.read_fields(key, sub_keys, hidden_through);
}

Status TxOverlay::write_fields(std::string_view /*key*/, storage::ValueType /*type*/,
                               std::span<const std::pair<std::string, std::string>> /*fields*/) {
  return refused();
}

Status TxOverlay::write_expiring_fields(
    std::string_view /*key*/, storage::ValueType /*type*/,
    std::span<const std::pair<std::string, std::string>> /*fields*/,
    std::span<const int64_t> /*expire_at_ms*/) {
  return refused();
}

Status TxOverlay::remove_fields(std::string_view /*key*/, storage::ValueType /*type*/,
                                std::span<const std::string> /*sub_keys*/) {
  return refused();
}

Status TxOverlay::scan_fields(std::string_view key, std::string_view from_sub_key,
                              HlcTimestamp hidden_through, const RowFieldVisitor& visitor) {
  if (collected_cell(key) != nullptr) return refused();
  return base_.scan_fields(key, from_sub_key, hidden_through, visitor);
}

Status TxOverlay::scan_fields_reverse(std::string_view key, std::string_view from_sub_key,
                                      std::string_view below_sub_key, HlcTimestamp hidden_through,
                                      const RowFieldVisitor& visitor) {
  if (collected_cell(key) != nullptr) return refused();
  return base_.scan_fields_reverse(key, from_sub_key, below_sub_key, hidden_through, visitor);
}

Result<bool> TxOverlay::scan_fields_from_rank(std::string_view key, char ns, uint64_t rank,
                                              uint64_t total, HlcTimestamp hidden_through,
                                              const RowFieldVisitor& visitor) {
  if (collected_cell(key) != nullptr) return refused();
  return base_.scan_fields_from_rank(key, ns, rank, total, hidden_through, visitor);
}

Result<std::optional<uint64_t>> TxOverlay::field_rank(std::string_view key,
                                                      std::string_view sub_key, uint64_t total) {
  if (collected_cell(key) != nullptr) return refused();
  return base_.field_rank(key, sub_key, total);
}

}  // namespace cairn::coordinator
