#pragma once
// The cluster coordinator (docs/cluster.md): any machine coordinates any key. ClusterCoordinator is
// the machine-wide service (peers, routing table, hints, the local replica); ClusterSession is
// the Keyspace one client connection uses, carrying that connection's consistency levels.
//
// Threading: ClusterSession methods block (they wait for replicas) and therefore run on worker
// threads, never on an event loop (src/server runs client commands of a cluster machine on its
// worker pool). Internal commands never block, so a loop always answers other machines.
//
// Writes (write, remove): stamped with this machine's HLC; sent to every voting replica, extra
// and joining replica of the key's shard (the local one directly, the others with CAIRN.APPLY);
// answered when W voting replicas acknowledged. Replicas that fail or time out get a hint.
// Fewer than W acks by the deadline → Status kUnavailable with the message
//   "UNCERTAIN <acks> of <W> required replicas acknowledged; the write may have been applied".
// Reads: ask the voting replicas, wait for R answers, merge by LWW (storage::supersedes); if the
// answers differ, write the winner back to the stale answering replicas and wait for them (up to
// the deadline) before answering (blocking read repair). Fewer than R answers →
//   "UNAVAILABLE <answers> of <R> required replicas answered".
// Fencing: a STALEEPOCH reply makes the coordinator fetch the newer table from that replica
// (CAIRN.TABLE GET), install it and retry; TABLEBEHIND makes it push its table and retry. MOVING
// (a migration's cutover fences the range, docs/migration.md) makes it wait 2 ms, re-read its
// current table and retry; MOVING is never hinted. Retries stop at the request deadline.
// atomically(keys, fn): all keys must be on one shard (else kInvalidArgument
//   "CROSSSHARD keys in request don't hash to the same shard"). If this machine is that shard's
// leader with a valid lease, fn runs under the local key locks, its reads and writes at QUORUM
// or at the connection's level when that asks for more replicas;
// otherwise nothing runs and the session records a redirect to the leader (take_redirect()),
// and atomically returns kUnavailable "REDIRECT"; the server then forwards the whole command to
// the leader (CAIRN.FORWARD). Without a leader with a valid lease: kUnavailable "NOLEADER ...".

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "common/hlc.h"
#include "coordinator/keyspace.h"
#include "net/peer_pool.h"
#include "replica/replica.h"
#include "storage/engine.h"

namespace cairn::coordinator {

struct ClusterOptions {
  int request_timeout_ms = 1000;      // a write/read waits this long for W/R replicas
  // A read at level R asks R voting replicas (this machine first when it is one) and asks the
  // others only when one of those fails, or when they have not all answered after this long.
  // 0: every read asks every voting replica at once.
  int read_speculate_ms = 50;
  // Off: a replica that misses a write gets no hint; read repair and anti-entropy bring it up
  // to date (`--hinted-handoff off`).
  bool hinted_handoff = true;
  size_t hints_per_target_max = 100'000;
  size_t hint_bytes_per_target_max = 64ull * 1024 * 1024;
  int64_t hint_age_max_ms = 3ll * 3600 * 1000;  // must stay below the tombstone grace period
  int hint_replay_interval_ms = 500;
};

struct ClusterStats {
  uint64_t writes = 0, reads = 0, uncertain_writes = 0, unavailable_reads = 0;
  uint64_t read_repairs = 0, hints_stored = 0, hints_replayed = 0, redirects = 0;
  uint64_t table_refreshes = 0;
  uint64_t restamps = 0;  // writes stamped again after a replica reported a newer cell
  uint64_t clock_refusals = 0;  // writes refused by the clock guard (set_clock_state)
};

class ClusterCoordinator {
 public:
  // All references must outlive the coordinator. `replica` is this machine's replica service.
  ClusterCoordinator(ClusterOptions options, storage::Engine& engine, HybridClock& clock,
                     replica::Replica& replica, net::PeerPool& peers);
  ~ClusterCoordinator();  // stops the hint replayer

  void start();  // starts the hint replayer thread
  void stop();

  // Self-fencing of the shard leader (docs/operations.md): when set, this machine acts as the leader of
  // a shard named in its table only while `valid()` returns true (an orchestrator-managed machine
  // answers whether its last successful heartbeat is younger than the lease); otherwise
  // atomically() fails with NOLEADER. Unset (the default, hand-pushed tables): always valid.
  // Any thread; `valid` is called from worker threads and must be cheap and thread-safe.
  void set_leader_lease_check(std::function<bool()> valid);

  // Clock guard (docs/operations.md "Clock offset"): while `in_bound` is false, every write this
  // machine would stamp (write, remove, fields, FLUSHALL, a read-modify-write it leads) fails
  // with "CLOCKSKEW ..." naming `offset_ms` (the reference's clock minus ours: negative when
  // ours is ahead) and the bound. Reads, replica applies, read repair and hint replay carry
  // cells stamped elsewhere and go on. Any thread; the server's orchestrator agent calls it
  // after each heartbeat. Until first called: in bound. Between calls, a step of the wall clock
  // (against the monotonic clock) larger than max_offset_ms refuses writes the same way, so a
  // clock that jumps is caught at once, not a heartbeat later.
  void set_clock_state(bool in_bound, int64_t offset_ms, int64_t max_offset_ms);

  ClusterStats stats() const;
  uint64_t machine_id() const;
  replica::TableHolder& tables();

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
  friend class ClusterSession;
};

class ClusterSession final : public Keyspace {
 public:
  // `options` belongs to the connection (its CONSISTENCY levels) and must outlive the session.
  ClusterSession(ClusterCoordinator& coordinator, const RequestOptions& options);

  Result<std::optional<storage::Cell>> read(std::string_view key) override;
  Result<std::optional<storage::Cell>> read_stored(std::string_view key) override;
  Result<std::vector<std::optional<storage::Cell>>> read_many(
      std::span<const std::string> keys) override;
  Status write(std::string_view key, storage::ValueType type, std::string value,
               int64_t expire_at_ms) override;
  Status remove(std::string_view key) override;
  Status atomically(std::span<const std::string> keys, const std::function<Status()>& fn) override;
  Result<ScanPage> scan(const ScanRequest& request) override;
  Result<uint64_t> count() override;
  Result<std::optional<std::string>> random_key() override;
  Status clear() override;
  int64_t now_ms() override;
  Status write_many(std::span<const std::pair<std::string, std::string>> entries) override;
  Result<int64_t> remove_many(std::span<const std::string> keys) override;
  // Runs `fn` here, without the shard leader and without key locks, at the connection's levels
  // (inside atomically(), as part of a transaction the leader runs, at its levels instead).
  Status write_fields_leaderless(const std::string& key,
                                 const std::function<Status()>& fn) override;
  bool deletes_emptied_rows() const override { return false; }

  // Rows (docs/cluster.md "Hashes, sets and sorted sets"): read_row and scan_fields merge the
  // voting replicas' pages of the row (CAIRN.ROW) by LWW per field at the read level and repair
  // the stale ones; read_fields reads single fields (CAIRN.READ with a sub-key); write_fields and
  // remove_fields write each field cell at the write level (CAIRN.APPLY with a sub-key).
  // read_row counts the fields of the merged row: O(fields), not the O(1) of one machine.
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

  // The leader this command must be forwarded to, if atomically() asked for a redirect during
  // the last command (and clears it).
  std::optional<uint64_t> take_redirect();

 private:
  // read_row; `count_all` false stops at the first visible field (existence only: count 0 or 1).
  Result<RowRead> read_row_merged(std::string_view key, bool count_all);
  // Writes one cell per field, each stamped now (tombstones when `values` is empty).
  Status write_field_cells(std::string_view key, storage::ValueType type,
                           std::span<const std::string> sub_keys,
                           std::span<const std::pair<std::string, std::string>> values,
                           std::span<const int64_t> expire_at_ms = {});

  ClusterCoordinator& coordinator_;
  const RequestOptions& options_;
  std::optional<uint64_t> redirect_;
  bool in_atomic_ = false;  // inside atomically(): reads and writes use QUORUM
};

}  // namespace cairn::coordinator
