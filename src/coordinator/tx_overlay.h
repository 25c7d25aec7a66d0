#pragma once
// TxOverlay: the Keyspace a transaction's commands run against so that the transaction is
// applied all or nothing (docs/transactions.md "Crash atomicity"). Writes are collected, not
// applied; reads see the transaction's own earlier writes and otherwise read the base keyspace;
// commit() hands every collected write to Keyspace::apply_together at once. A crash of the
// machine running the transaction before commit() leaves nothing of it anywhere.
//
// Invariants:
//  1. Nothing reaches the base keyspace's writes before commit(): every write method either
//     collects or refuses.
//  2. A key has at most one collected write, the transaction's last one to it.
//  3. A read of a key with a collected write answers from that write only.
//
// What it cannot overlay is refused with kInvalidArgument kOverlayRefusedMessage (that command's
// error; the transaction's other commands still run): field writes of hashes, sets, sorted sets,
// lists and streams, reads of the fields of a key this transaction wrote, and whole-keyspace
// operations (SCAN, DBSIZE, RANDOMKEY, FLUSHALL). The transaction runner sends a transaction whose
// commands may need those down another path (cmd_transaction.cc).
//
// Threading: one transaction, one thread, like the session it wraps.

#include <map>
#include <string>
#include <vector>

#include "coordinator/keyspace.h"

namespace cairn::coordinator {

inline constexpr std::string_view kOverlayRefusedMessage =
    "this command cannot run inside an atomic transaction (docs/transactions.md)";

class TxOverlay final : public Keyspace {
 public:
  // `base` must outlive the overlay. The caller holds the locks of every key the transaction
  // names (atomically() here just runs its function).
  explicit TxOverlay(Keyspace& base) : base_(base) {}

  // The collected writes, in key order.
  std::vector<CollectedWrite> collected() const;
  // Applies every collected write at once (base.apply_together); nothing when none.
  Status commit();
  size_t collected_count() const { return writes_.size(); }

  Result<std::optional<storage::Cell>> read(std::string_view key) override;
  Result<std::optional<storage::Cell>> read_stored(std::string_view key) override;
  Status write(std::string_view key, storage::ValueType type, std::string value,
               int64_t expire_at_ms) override;
  Status remove(std::string_view key) override;
  Status atomically(std::span<const std::string> keys, const std::function<Status()>& fn) override;
  Status write_fields_leaderless(const std::string& key,
                                 const std::function<Status()>& fn) override;
  bool deletes_emptied_rows() const override { return base_.deletes_emptied_rows(); }
  Result<ScanPage> scan(const ScanRequest& request) override;
  Result<uint64_t> count() override;
  Result<std::optional<std::string>> random_key() override;
  Status clear() override;
  int64_t now_ms() override { return base_.now_ms(); }

  Result<RowRead> read_row(std::string_view key) override;
  Result<RowRead> read_row_exists(std::string_view key) override;
  Result<std::vector<std::optional<storage::Cell>>> read_fields(
      std::string_view key, std::span<const std::string> sub_keys,
      HlcTimestamp hidden_through) override;
  Status write_fields(std::string_view key, storage::ValueType type,
                      std::span<const std::pair<std::string, std::string>> fields) override;
  Status write_expiring_fields(std::string_view key, storage::ValueType type,
                               std::span<const std::pair<std::string, std::string>> fields,
                               std::span<const int64_t> expire_at_ms) override;
  Status remove_fields(std::string_view key, storage::ValueType type,
                       std::span<const std::string> sub_keys) override;
  Status scan_fields(std::string_view key, std::string_view from_sub_key,
                     HlcTimestamp hidden_through, const RowFieldVisitor& visitor) override;
  Status scan_fields_reverse(std::string_view key, std::string_view from_sub_key,
                             std::string_view below_sub_key, HlcTimestamp hidden_through,
                             const RowFieldVisitor& visitor) override;
  Result<bool> scan_fields_from_rank(std::string_view key, char ns, uint64_t rank, uint64_t total,
                                     HlcTimestamp hidden_through,
                                     const RowFieldVisitor& visitor) override;
  Result<std::optional<uint64_t>> field_rank(std::string_view key, std::string_view sub_key,
                                             uint64_t total) override;

 private:
  const storage::Cell* collected_cell(std::string_view key) const;
  // The key as a row reader sees it when this transaction wrote it (a string or a tombstone).
  RowRead row_of_collected(const storage::Cell& cell);
  void collect(std::string_view key, storage::Cell cell);

  Keyspace& base_;
  std::map<std::string, storage::Cell, std::less<>> writes_;
};

}  // namespace cairn::coordinator
