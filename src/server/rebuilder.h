#pragma once
// Rebuilder: copies the data of a shard this machine joined as a replacement (docs/operations.md "Rebuilding a replaced replica").
//
// A machine placed in a shard's `joining` list receives every write from the epoch it joined
// (and, through hinted handoff, the ones that failed to reach it), but not what the shard held
// before. On its own thread the rebuilder checks the current table every kRebuildPollMs; while
// this machine is joining shard S it copies every range of S page by page: CAIRN.SCAN at our
// epoch to EVERY voting replica of S, the next cursor merged by the coordinator's rule
// (merge_scan_answers), and every returned cell (tombstones and expired ones included) applied
// locally with Replica::apply (LWW makes overlap with concurrent writes harmless). A replica that
// fails or is fenced makes the page wait kRebuildPollMs and start over (a TABLEBEHIND replica is
// sent our table first). Since each scan is fenced at our epoch, every write a replica accepted
// before answering is in its pages, and every later one also reaches us: once every range is
// copied this machine holds every acknowledged write of S, and rebuilt_shard() names S so the
// agent's heartbeat asks the orchestrator to make it a voting replica.
//
// Threading: start()/stop() from the owning thread; rebuilt_shard() and info() from any thread.

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>

#include "net/peer_pool.h"
#include "replica/replica.h"
#include "topology/routing_table.h"

namespace cairn::server {

inline constexpr int kRebuildPollMs = 500;
inline constexpr size_t kRebuildPageKeys = 1000;

struct RebuilderOptions {
  int request_timeout_ms = 1000;  // each CAIRN.SCAN
  uint64_t max_bytes_per_sec = 0;  // 0: unlimited
  int poll_ms = kRebuildPollMs;
};

enum class RebuildState { kIdle, kCopying, kDone };

struct RebuildProgress {
  RebuildState state = RebuildState::kIdle;
  topology::ShardId shard = topology::kNoShard;
  uint64_t ranges_total = 0;
  uint64_t ranges_done = 0;
  uint64_t keys_copied = 0;
  uint64_t bytes_copied = 0;
};

std::string_view rebuild_state_name(RebuildState state);

class Rebuilder {
 public:
  // `replica` and `peers` must outlive the rebuilder.
  Rebuilder(RebuilderOptions options, replica::Replica& replica, net::PeerPool& peers);
  ~Rebuilder();  // stop()
  Rebuilder(const Rebuilder&) = delete;
  Rebuilder& operator=(const Rebuilder&) = delete;

  void start();
  void stop();  // idempotent; waits at most for the call in flight

  // The shard whose copy is complete while this machine is still joining it (kNoShard if none).
  topology::ShardId rebuilt_shard() const;
  RebuildProgress progress() const;
  // The INFO cluster lines (rebuild_state, rebuild_shard, rebuild_ranges_done, ...), CRLF ended.
  std::string info() const;

 private:
  void run();
  // The shard this machine is joining in the current table (kNoShard if none).
  topology::ShardId joining_shard() const;
  // Copies every range of `shard`; false if stopped or the shard's role changed meanwhile.
  bool copy_shard(topology::ShardId shard);
  // Copies [start, end) of one range; false if stopped or no longer joining `shard`.
  bool copy_range(topology::ShardId shard, topology::Token start, topology::Token end);
  void throttle(uint64_t bytes);
  bool wait_ms(int ms);  // false once stopping

  const RebuilderOptions options_;
  replica::Replica& replica_;
  net::PeerPool& peers_;

  mutable std::mutex mu_;
  std::condition_variable wake_;
  bool stopping_ = false;     // guarded by mu_
  RebuildProgress progress_;  // guarded by mu_
  // Guarded by mu_: this machine was joining no shard since the last copy completed, so joining
  // the same shard again (after leaving it) needs a new copy.
  bool left_since_done_ = false;
  std::thread thread_;

  // The rebuild thread only: throttle window.
  int64_t window_start_ms_ = 0;
  uint64_t window_bytes_ = 0;
};

}  // namespace cairn::server
