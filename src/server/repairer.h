#pragma once
// Repairer: anti-entropy between the voting replicas of each shard this machine votes in
// (docs/cluster.md "Anti-entropy repair").
//
// Read repair fixes a key when it is read and hinted handoff replays the writes a replica
// missed while it was unreachable, but a replica can still lack cells nobody reads again: a
// hint dropped at its bound, a machine back from a long stop, a copy lost on disk. The repairer
// closes that gap. On its own thread, for each shard S whose voting replicas include this
// machine, at most once every `interval_ms` it runs a pass over S's ranges, segment by segment:
//  1. digest the segment here and ask every other voting replica of S for the same digest
//     (CAIRN.REPAIR DIGEST, fenced at our epoch): `leaves` sums of cell hashes over equal slices
//     of the segment (replica/range_digest.h);
//  2. for each leaf whose digest differs from a replica's, pull that replica's cells of the leaf
//     (CAIRN.SCAN pages, fenced) and apply them here by last-write-wins.
// Every replica runs its own passes, so a cell only one of them holds reaches the others when
// they pull it: the replicas converge on the union of their cells under LWW, which is what a
// read at any R would have repaired. Segments adapt their width so one digest visits about
// `segment_cells` cells; the work (cells digested here plus cells pulled) is throttled to
// `cells_per_sec`. A pass whose every segment was compared with every voting replica is
// complete: its start time is when S was last fully compared (INFO, heartbeats, `cairn admin
// repair`).
//
// Ranges change under it (migrations, splits, replacements): each segment re-reads the table,
// and a fence answer (the epoch moved, the range is moving, a replica is not an owner) ends the
// range for this pass, which is then incomplete. Nothing here ever deletes: a repair only adds
// cells that supersede what is stored.
//
// Threading: start()/stop() from the owning thread; status() and info() from any thread.

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "net/peer_pool.h"
#include "replica/replica.h"
#include "topology/routing_table.h"
#include "topology/token_range.h"

namespace cairn::server {

struct RepairerOptions {
  uint64_t cells_per_sec = 20'000;  // throttle of cells digested here plus pulled; 0: repair off
  int64_t interval_ms = 60'000;     // at least this long between the starts of two passes
  size_t leaves = 64;               // leaves per segment digest
  size_t segment_cells = 20'000;    // aim of cells per segment
  size_t max_cells = 200'000;       // a replica answers TOOBIG past this many cells
  int request_timeout_ms = 5'000;   // each digest or page request
  // Tombstone purge (docs/cluster.md "Tombstone purge"): after a pass in which every voting
  // replica's digests of a range matched this one's, deletions of the range older than the
  // pass's start minus this delay may be removed by compaction. The delay covers every way an
  // older write can still arrive (a hint is replayed at most `hint age` after its write, a
  // request within its timeout): the coordinator's hint age bound plus a margin. Negative: no
  // purge (deletions wait for the grace period).
  int64_t purge_delay_ms = 3ll * 3600 * 1000 + 10'000;
  int poll_ms = 1'000;              // how often the thread looks for a shard due
  std::function<int64_t()> wall_ms;  // null: cairn::wall_clock_ms
};

// What the repairer did for one shard.
struct ShardRepairStatus {
  topology::ShardId shard = topology::kNoShard;
  int64_t last_full_ms = 0;       // wall ms at which the last complete pass started; 0: never
  int64_t last_pass_end_ms = 0;   // when the last pass (complete or not) ended; 0: never
  uint64_t passes = 0;            // passes run, complete or not
  uint64_t complete_passes = 0;
  uint64_t segments = 0;          // segment digests compared (with all replicas)
  uint64_t leaves_differed = 0;   // (leaf, replica) pairs whose digests differed
  uint64_t cells_fixed = 0;       // cells pulled that superseded what was stored here
  uint64_t last_pass_fixed = 0;   // the same, in the last pass
  uint64_t ranges_purgeable = 0;  // ranges whose purge bound the last pass raised
  bool running = false;           // a pass is in progress
  double progress = 0;            // fraction of the shard's tokens compared in this/last pass
  std::string last_problem;       // why the last incomplete pass was incomplete
};

class Repairer {
 public:
  // `replica` and `peers` must outlive the repairer.
  Repairer(RepairerOptions options, replica::Replica& replica, net::PeerPool& peers);
  ~Repairer();  // stop()
  Repairer(const Repairer&) = delete;
  Repairer& operator=(const Repairer&) = delete;

  void start();  // no thread when options.cells_per_sec is 0
  void stop();   // idempotent; waits at most for the request in flight

  bool enabled() const { return options_.cells_per_sec != 0; }
  // One entry per shard this machine votes in (and repaired before), by shard id.
  std::vector<ShardRepairStatus> status() const;
  // The INFO cluster lines (repair_enabled, repair_cells_fixed, repair_shard_<id>...), CRLF ended.
  std::string info() const;

 private:
  void run();
  int64_t now_ms() const;
  // Runs one pass over `shard`; returns false once stopping.
  bool pass(topology::ShardId shard);
  // Compares one range of the pass; adds the tokens it covered to `covered`. False: the range
  // could not be finished (the reason is in `problem`) or stopping. `clean` becomes false when
  // any replica's digest differed from ours.
  bool repair_range(topology::ShardId shard, const topology::Range& range,
                    topology::TokenWidth& covered, std::string& problem, bool& clean);
  // Pulls the cells of [start, end) from `machine` and applies them here; the number stored, or
  // nullopt when a page failed (the reason in `problem`).
  std::optional<uint64_t> pull(const topology::RoutingTable& table,
                               const topology::Machine& machine, topology::Token start,
                               topology::Token end, std::string& problem);
  void throttle(uint64_t cells);
  bool wait_ms(int64_t ms);  // false once stopping
  bool stopping() const;
  ShardRepairStatus& entry(topology::ShardId shard);  // REQUIRES: mu_ held

  const RepairerOptions options_;
  replica::Replica& replica_;
  net::PeerPool& peers_;

  mutable std::mutex mu_;
  std::condition_variable wake_;
  bool stopping_ = false;                                // guarded by mu_
  std::map<topology::ShardId, ShardRepairStatus> shards_;  // guarded by mu_
  std::map<topology::ShardId, int64_t> next_pass_ms_;      // the repair thread only
  std::thread thread_;
  // The repair thread only: throttle window.
  int64_t window_start_ms_ = 0;
  uint64_t window_cells_ = 0;
};

}  // namespace cairn::server
