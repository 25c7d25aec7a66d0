#pragma once
// Migrator: the machine's side of the two-phase migration (docs/migration.md, docs/migration.md).
//
// The orchestrator's heartbeat answers carry the active migrations (set_orders()); on its own
// thread the migrator acts on each order according to this machine's role in the CURRENT table:
//
//  * target (voting, extra or joining in the order's target shard; phase staging, catchup or
//    cutover; not paused): one stream per voting replica of the source shard. A stream holds the
//    source's WAL (CAIRN.MIGRATE HOLD <id>:<me>, renewed every hold_renew_ms), copies the range
//    page by page (SCAN), then follows the source's WAL from the held LSN (WAL rounds). The WAL
//    tail is one stream in sequence order: runs of cells are applied by LWW with
//    Replica::apply_copied_batch, each range deletion between them with Engine::delete_range
//    clipped to the range, so it deletes exactly what it deleted on the source. WALGONE (or a
//    source whose latest LSN went back) starts that stream over; an unreachable source is
//    retried with a growing delay; streams of machines no longer voting in the source shard are
//    dropped. The reports say staged (every current voting source scanned), ready (staged and
//    every source's lag < ready_lag_max).
//  * FINISH (finish(), from CAIRN.MIGRATE FINISH through ServerControl::migration_finish): pulls
//    each named source's WAL until it passed the fenced LSN. Streams are guarded by a per-
//    migration mutex, so FINISH and the background thread never apply the same stream at once.
//  * driver (phase cutover, driver == me, an attempt not yet driven here): FENCE every member of
//    the source shard, FINISH on every member of the target shard, commit to the orchestrator,
//    install and push the new table; any failure before the commit aborts the attempt.
//  * cleanup (phase cleanup, member of the source shard, table epoch >= commit_epoch, the range
//    not owned by any shard this machine is in): deletes the range, reports cleaned. An order that
//    disappears or is cancelled makes a machine that copied the range but does not own it (once
//    its table caught up with the cluster's epoch) drop what it copied. Whenever a newer table
//    takes a range away from every shard this machine belongs to, its data there is deleted.
//
// Every second it also calls Engine::expire_wal_holds().
//
// Threading: start()/stop() from the owning thread; set_orders(), reports(), finish(), info()
// from any thread. finish() blocks up to its timeout (never call it on an event loop).

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "common/status.h"
#include "net/peer_pool.h"
#include "replica/replica.h"
#include "server/http_client.h"
#include "server/orchestrator_agent.h"
#include "storage/engine.h"
#include "topology/routing_table.h"

namespace cairn::server {

struct MigratorOptions {
  int request_timeout_ms = 1000;   // each SCAN, WAL, HOLD, FENCE call
  int busy_poll_ms = 50;           // between rounds while some order has work
  int idle_poll_ms = 500;          // between rounds otherwise
  int64_t hold_ttl_ms = 30'000;    // the sources keep their WAL this long without a renewal
  int64_t hold_renew_ms = 5'000;
  size_t scan_page_keys = 1000;
  size_t wal_max_bytes = 1024 * 1024;
  uint64_t ready_lag_max = 1000;   // WAL records behind a source for "ready"
  int64_t stream_budget_ms = 200;  // background work on one stream per round
  int retry_delay_max_ms = 5'000;  // an unreachable source is retried at most this far apart
  int finish_timeout_ms = 3'000;   // FINISH, as sent by the driver to each target
  int stray_sweep_ms = 10'000;     // between two looks for data in ranges nobody gave us
  // The driver's calls to the orchestrator (commit, abort): POST target, JSON body. Null: this
  // machine never drives (tests that run FINISH by hand).
  std::function<Result<HttpResponse>(const std::string& target, std::string body)> post;
};

class Migrator {
 public:
  // `engine`, `replica` and `peers` must outlive the migrator.
  Migrator(MigratorOptions options, storage::Engine& engine, replica::Replica& replica,
           net::PeerPool& peers);
  ~Migrator();  // stop()
  Migrator(const Migrator&) = delete;
  Migrator& operator=(const Migrator&) = delete;

  void start();
  void stop();  // idempotent; waits at most for the call in flight

  // The active migrations as the latest heartbeat answer listed them, and that answer's cluster
  // epoch. Orders absent from the list are forgotten (after dropping copied data, see above).
  void set_orders(std::vector<MigrationOrder> orders, uint64_t cluster_epoch);

  // The heartbeat's "migrations": one report per migration this machine has a part in. A cutover
  // this machine drove and committed is reported (fence_ms) in every heartbeat while it lasts.
  std::vector<MigrationReport> reports();

  // CAIRN.MIGRATE FINISH: applies each (source machine id, fenced LSN)'s WAL up to that LSN.
  // unavailable("NOTREADY ...") if this machine has no staged stream from one of the sources;
  // timed_out if it cannot finish within timeout_ms.
  Status finish(uint64_t migration, const std::vector<std::pair<uint64_t, uint64_t>>& source_lsns,
                int timeout_ms);

  // INFO cluster lines (migrations_active, migration_<id>:...), CRLF ended.
  std::string info() const;

  // One round of work on every order, on the caller's thread (the thread calls it; tests too).
  // Returns whether some order still has work.
  bool run_round();

 private:
  struct Stream;
  struct Migration;
  using Clock = std::chrono::steady_clock;

  void run();
  bool wait_ms(int ms);  // false once stopping
  // Between rounds: like wait_ms, but new orders end the wait early.
  bool wait_for_round(int ms);
  bool stopping() const;
  int64_t now_ms() const;

  // The target part of one order; returns whether it has work left.
  bool target_round(Migration& migration, const topology::RoutingTable& table);
  // One step on one stream (HOLD, renewal, a SCAN page or a WAL round). Returns the bytes applied
  // (for the throttle), or an error (the stream waits and retries). REQUIRES: migration.mu held.
  Result<uint64_t> stream_step(Migration& migration, Stream& stream, int timeout_ms,
                               bool* idle);
  Result<uint64_t> hold(Migration& migration, Stream& stream, int timeout_ms);
  Result<uint64_t> scan_page(Migration& migration, Stream& stream, int timeout_ms);
  // One page of the verification: the source's cells of the page without their values (SCAN
  // ... STAMPS), each of which this machine must store or supersede; differences are read again
  // after catching up with the source's WAL, and what still differs is copied again
  // (repair_page). REQUIRES: migration.mu held, stream scanned.
  Result<uint64_t> verify_page(Migration& migration, Stream& stream, int timeout_ms);
  Result<uint64_t> repair_page(Migration& migration, Stream& stream, const std::string& example,
                               size_t count, int timeout_ms);
  // The source's cells (stamps) this machine neither stores nor supersedes, except those its
  // compaction may already have removed.
  Result<std::vector<const storage::WalChange*>> uncovered(
      const std::vector<storage::WalChange>& stamps);
  // WAL rounds until the stream passed the source's latest LSN as of the first round.
  Status catch_up(Migration& migration, Stream& stream, int timeout_ms);
  // One WAL round from stream.next_lsn. REQUIRES: migration.mu held.
  Result<uint64_t> wal_round(Migration& migration, Stream& stream, int timeout_ms);
  // Applies a WAL round's entries in their sequence order: each run of cells as one LWW batch,
  // each range deletion after the cells before it and before the cells after it, as on the
  // source. A round that fails part-way is read and applied again whole, which ends in the
  // same state.
  Status apply_wal_entries(Migration& migration, const Stream& stream,
                           const std::vector<storage::WalEntry>& entries);
  void release_streams(Migration& migration);  // RELEASE every stream's hold, drop the streams
  void update_progress(Migration& migration, const topology::RoutingTable& table);

  void drive(const std::shared_ptr<Migration>& migration);
  bool abort_attempt(const MigrationOrder& order, const std::string& error);
  // FENCE on every member of the source shard; the voting ones' (machine, LSN).
  Result<std::vector<std::pair<uint64_t, uint64_t>>> fence_sources(
      const MigrationOrder& order, const topology::RoutingTable& table);
  Status finish_targets(const MigrationOrder& order, const topology::RoutingTable& table,
                        const std::vector<std::pair<uint64_t, uint64_t>>& lsns);
  void push_table(const topology::RoutingTable& table, const std::vector<uint64_t>& machines);

  void cleanup(Migration& migration, const topology::RoutingTable& table);
  void drop_forgotten(const topology::RoutingTable& table);
  // Deletes the range if streams copied into it here and no shard of this machine owns any of it.
  void drop_copy_if_not_owner(Migration& migration, const topology::RoutingTable& table);
  // Deletes what this machine stores of ranges it owned (through a shard it belonged to) in the
  // previous table installed and owns no longer: a range committed away, or a shard it left (an
  // extra reclaimed for a new shard, a replaced replica). Tables only move forward, so a newer
  // table saying so is final; coming back into a shard means joining and a rebuild. The
  // TableHolder's listener records the ranges at each install (so no table is missed); the
  // migrator thread deletes them.
  struct Unowned;
  void drop_unowned_ranges();
  // Deletes what this machine stores in ranges of the current table that none of its shards
  // owns and no migration it knows of moves (its own or one still being forgotten): data that
  // arrived after its range was given up, or that a table-to-table comparison could not see.
  // Runs every stray_sweep_ms, and only on a table at least as new as the latest orders, so a
  // copy staged here for a commit this machine has not heard of yet is never touched.
  void sweep_strays(const topology::RoutingTable& table);
  // Restarts the streams of every migration whose range overlaps `range` (just deleted here).
  void restage_overlapping(const topology::Range& range);
  bool owns_part_of(const topology::RoutingTable& table, topology::Token start,
                    topology::Token end) const;
  void throttle(Migration& migration, uint64_t bytes);

  const MigratorOptions options_;
  storage::Engine& engine_;
  replica::Replica& replica_;
  net::PeerPool& peers_;
  const uint64_t me_;

  mutable std::mutex mu_;
  std::condition_variable wake_;
  bool stopping_ = false;  // guarded by mu_
  bool orders_changed_ = false;  // guarded by mu_: wakes the thread for a new round
  // Guarded by mu_ (the map; each Migration guards its own streams).
  std::map<uint64_t, std::shared_ptr<Migration>> migrations_;
  // Migrations that left the orders and whose copied data may have to go: (migration, epoch the
  // table must reach first). Guarded by mu_.
  std::vector<std::pair<std::shared_ptr<Migration>, uint64_t>> forgotten_;
  // The cluster epoch of the latest orders (0: no orders heard since this process started).
  // Guarded by mu_.
  uint64_t orders_epoch_ = 0;
  std::atomic<uint64_t> strays_dropped_{0};  // ranges sweep_strays found data in and deleted
  std::thread thread_;

  // The migrator thread only.
  int64_t last_expire_ms_ = 0;
  int64_t last_sweep_ms_ = 0;
  // Set by a round in which a stream used up its budget with work left: the next round starts
  // at once instead of after busy_poll_ms (migrator thread only).
  bool work_left_ = false;
  // Shared with the TableHolder listener, which may outlive this object.
  std::shared_ptr<Unowned> unowned_;
};

// The streams' hold id on a source: "<migration>:<target machine>".
std::string migration_hold_id(uint64_t migration, uint64_t machine);

}  // namespace cairn::server
