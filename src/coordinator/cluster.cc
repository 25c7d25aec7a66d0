#include "coordinator/cluster.h"

#include <unordered_set>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <random>
#include <thread>
#include <utility>
#include <vector>

#include "common/assert.h"
#include "common/clock.h"
#include <fmt/format.h>
#include "coordinator/cluster_internal.h"
#include "coordinator/key_locks.h"
#include "topology/token.h"

namespace cairn::coordinator {
namespace {

using storage::Cell;
using topology::ConsistencyLevel;
using topology::Machine;
using topology::RoutingTable;
using TablePtr = std::shared_ptr<const RoutingTable>;

// Hints replayed to one target per round; the rest wait for the next round.
constexpr size_t kHintReplayBatchMax = 1000;
// A scan page never asks replicas for more keys than this, whatever COUNT the client gave (the
// bound CAIRN.SCAN accepts, docs/formats.md).
constexpr size_t kScanCountMax = 10'000;
// DBSIZE walks the cluster in pages of this many keys.
constexpr size_t kCountPageKeys = 1000;
// RANDOMKEY examines pages of this many keys until one holds a live key.
constexpr size_t kRandomKeyPageKeys = 100;
// A replica that answers MOVING is in a migration's cutover (docs/migration.md): the request
// waits this long, re-reads its table and tries again until its deadline.
constexpr auto kCutoverPause = std::chrono::milliseconds(2);
// Attempts of one request (table refreshes and cutover pauses), besides its deadline.
constexpr int kAttemptsMax = 1000;

// The level of one request. Inside atomically() (the shard leader's read-modify-write) reads
// and writes are at least QUORUM, and at the connection's level when it asks for more.
struct Level {
  Level(ConsistencyLevel level_in, bool at_least_quorum_in = false)  // NOLINT: implicit
      : level(level_in), at_least_quorum(at_least_quorum_in) {}
  ConsistencyLevel level;
  bool at_least_quorum;
};

// How many of `voting` replicas must answer at `level`.
Result<uint32_t> needed_replicas(const Level& level, size_t voting) {
  const auto n = static_cast<uint32_t>(voting);
  Result<uint32_t> needed = topology::required(level.level, n);
  if (!needed.is_ok()) return Status::invalid_argument(needed.status().message());
  if (level.at_least_quorum) {
    Result<uint32_t> quorum = topology::required(ConsistencyLevel::quorum(), n);
    if (quorum.is_ok() && *quorum > *needed) return *quorum;
  }
  return needed;
}

Deadline deadline_after(int timeout_ms) {
  return std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
}

// What peer callbacks use. They may run after the coordinator is gone (the PeerPool completes
// pending calls when it stops, after the coordinator stopped), so they share this by shared_ptr;
// the references in it are to services that outlive the PeerPool's threads (engine) or that the
// callbacks only use while a call can still be made (peers).
struct Core {
  Core(ClusterOptions options_in, storage::Engine& engine_in, HybridClock& clock_in,
       replica::Replica& replica_in, net::PeerPool& peers_in)
      : options(options_in),
        engine(engine_in),
        clock(clock_in),
        replica(replica_in),
        peers(peers_in),
        machine_id(replica_in.machine_id()) {}

  const ClusterOptions options;
  storage::Engine& engine;
  HybridClock& clock;
  replica::Replica& replica;
  net::PeerPool& peers;
  const uint64_t machine_id;

  std::atomic<uint64_t> writes{0}, reads{0}, uncertain_writes{0}, unavailable_reads{0};
  std::atomic<uint64_t> read_repairs{0}, hints_stored{0}, hints_replayed{0}, redirects{0};
  std::atomic<uint64_t> restamps{0};
  std::atomic<uint64_t> table_refreshes{0};
  std::atomic<uint64_t> clock_refusals{0};

  // set_clock_state(): the offset that put this machine's clock out of bound, and the bound;
  // clock_out_of_bound false: in bound (or never measured).
  std::atomic<bool> clock_out_of_bound{false};
  std::atomic<int64_t> clock_offset_ms{0};
  std::atomic<int64_t> clock_max_offset_ms{0};  // 0: no guard
  // Wall clock minus monotonic clock when the offset was measured: a step of the wall clock
  // since then (a jump, an operator's `date -s`) shows as a change of this difference.
  std::atomic<int64_t> clock_baseline_ms{0};
};

using CorePtr = std::shared_ptr<Core>;

// Every write this machine coordinates (and every read-modify-write it leads) is stamped with its
// clock, so none starts while that clock is out of bound (ClusterCoordinator::set_clock_state).
Status clock_guard(Core& core) {
  const int64_t max_offset = core.clock_max_offset_ms.load(std::memory_order_relaxed);
  if (!core.clock_out_of_bound.load(std::memory_order_acquire)) {
    // In bound when measured, but the wall clock may have stepped since: a step larger than the
    // bound is refused at once rather than at the next measurement (a heartbeat away).
    if (max_offset == 0) return Status::ok();
    const int64_t step = wall_clock_ms() - monotonic_ms() -
                         core.clock_baseline_ms.load(std::memory_order_relaxed);
    if (step <= max_offset && step >= -max_offset) return Status::ok();
    ++core.clock_refusals;
    return Status::unavailable(fmt::format(
        "CLOCKSKEW this machine's clock stepped {} by {} ms since it was last compared with the "
        "orchestrator's (the bound is --max-clock-offset-ms {}): it coordinates no write until "
        "the next comparison; write through another machine",
        step > 0 ? "forward" : "back", step > 0 ? step : -step, max_offset));
  }
  ++core.clock_refusals;
  const int64_t offset = core.clock_offset_ms.load(std::memory_order_relaxed);
  return Status::unavailable(fmt::format(
      "CLOCKSKEW this machine's clock is {} ms {} the orchestrator's (the bound is "
      "--max-clock-offset-ms {}): it coordinates no write until its clock is back in bound; "
      "write through another machine",
      offset < 0 ? -offset : offset, offset < 0 ? "ahead of" : "behind",
      core.clock_max_offset_ms.load(std::memory_order_relaxed)));
}

using PeerCallback = std::function<void(Result<resp::Value>)>;

// Sends `args` to `address`. A replica that is behind (TABLEBEHIND) or has no table yet (NOTABLE)
// gets our table pushed (CAIRN.TABLE SET) and the request once more; `done` then sees that second
// reply. Never blocks: runs on the caller's thread or a peer pool thread.
void call_peer(const CorePtr& core, const TablePtr& table, const std::string& address,
               std::vector<std::string> args, Deadline deadline, PeerCallback done) {
  std::vector<std::string> first_args = args;
  core->peers.call(
      address, std::move(first_args), remaining_ms(deadline),
      [core, table, address, args = std::move(args), deadline,
       done = std::move(done)](Result<resp::Value> reply) mutable {
        std::optional<replica::Fence> fence;
        if (reply.is_ok() && reply->is_error()) fence = replica::parse_fence_error(reply->str);
        const bool behind = fence && (fence->code == replica::FenceCode::kTableBehind ||
                                      fence->code == replica::FenceCode::kNoTable);
        if (!behind || std::chrono::steady_clock::now() >= deadline) {
          done(std::move(reply));
          return;
        }
        core->peers.call(
            address, {"CAIRN.TABLE", "SET", table->to_json_text()}, remaining_ms(deadline),
            [core, address, args = std::move(args), deadline, done = std::move(done),
             first_reply = std::move(reply)](Result<resp::Value> pushed) mutable {
              if (!pushed.is_ok() || pushed->is_error()) {
                done(std::move(first_reply));
                return;
              }
              core->peers.call(address, std::move(args), remaining_ms(deadline), std::move(done));
            });
      });
}

// Fetches the table of the machine at `address` (which said STALEEPOCH) and installs it. Returns
// whether this machine now follows a newer table than `old_epoch`. An empty address stands for
// the local replica, whose table is ours: it only has to be newer already.
bool refresh_table(const CorePtr& core, const std::string& address, uint64_t old_epoch,
                   Deadline deadline) {
  replica::TableHolder& tables = core->replica.tables();
  if (!address.empty() && tables.epoch() <= old_epoch) {
    Result<resp::Value> reply =
        core->peers.call_sync(address, {"CAIRN.TABLE", "GET"}, remaining_ms(deadline));
    if (reply.is_ok() && reply->type == resp::Value::Type::kBulk) {
      Result<RoutingTable> table = RoutingTable::from_json_text(reply->str);
      if (table.is_ok() && tables.install(std::move(*table)).is_ok()) ++core->table_refreshes;
    }
  }
  return tables.epoch() > old_epoch;
}

// Waits kCutoverPause after a MOVING answer. False (without waiting) if the request's deadline
// would pass first: the request fails as it is.
bool pause_for_cutover(Deadline deadline) {
  if (std::chrono::steady_clock::now() + kCutoverPause >= deadline) return false;
  std::this_thread::sleep_for(kCutoverPause);
  return true;
}

// The STALEEPOCH reporter of one request, if any (the first one wins; an empty string is the
// local replica), and whether any replica answered MOVING.
class StaleMark {
 public:
  void set(std::string address) {
    std::lock_guard<std::mutex> lock(mu_);
    if (!address_) address_ = std::move(address);
  }
  std::optional<std::string> get() const {
    std::lock_guard<std::mutex> lock(mu_);
    return address_;
  }
  void set_moving() { moving_.store(true); }
  bool moving() const { return moving_.load(); }
  // Records a fence outcome: STALEEPOCH from `address`, or MOVING.
  void note(const replica::Fence& fence, const std::string& address) {
    if (fence.code == replica::FenceCode::kStaleEpoch) set(address);
    if (fence.code == replica::FenceCode::kMoving) set_moving();
  }

 private:
  mutable std::mutex mu_;
  std::optional<std::string> address_;
  std::atomic<bool> moving_{false};
};

// Records one replica's answer to a read or a scan: its value on success, else a failure (and
// the replica's address if it said STALEEPOCH, so the caller can fetch the newer table).
template <typename Answer>
void settle_answer(Gather& gather, StaleMark& stale, std::vector<Answer>& answers, size_t slot,
                   const ReplicaOutcome& outcome, Answer answer, const std::string& address) {
  if (outcome.ok()) {
    answers[slot] = std::move(answer);  // written before succeed(): readers see it after
    gather.succeed(slot);
    return;
  }
  if (outcome.kind == ReplicaOutcome::Kind::kFence) stale.note(outcome.fence, address);
  gather.fail(slot);
}

// ---- writes ----

struct WriteState {
  WriteState(size_t needed, size_t voting, std::string key_in, std::string sub_key_in,
             Cell cell_in)
      : gather(needed, voting),
        key(std::move(key_in)),
        sub_key(std::move(sub_key_in)),
        cell(std::move(cell_in)) {}
  Gather gather;  // voting replicas only: extras and joining replicas never count toward W
  StaleMark stale;
  // The newest timestamp of a cell a replica kept instead of this one (0: none).
  std::atomic<HlcTimestamp> newer{0};
  void saw_newer(HlcTimestamp timestamp) {
    HlcTimestamp seen = newer.load();
    while (timestamp > seen && !newer.compare_exchange_weak(seen, timestamp)) {
    }
  }
  const std::string key;
  const std::string sub_key;  // empty: the key's own cell; else a field of its row
  const Cell cell;
};

// Records how one target answered a write. `slot` is its voting slot, if it votes.
void settle_write(Core& core, WriteState& state, uint64_t target, std::optional<size_t> slot,
                  bool hint_on_failure, const ReplicaOutcome& outcome, const std::string& address) {
  if (outcome.ok()) {
    if (outcome.newer_timestamp != 0) state.saw_newer(outcome.newer_timestamp);
    if (slot) state.gather.succeed(*slot);
    return;
  }
  const bool stale = outcome.kind == ReplicaOutcome::Kind::kFence &&
                     outcome.fence.code == replica::FenceCode::kStaleEpoch;
  if (outcome.kind == ReplicaOutcome::Kind::kFence) state.stale.note(outcome.fence, address);
  if (slot) state.gather.fail(*slot);
  // A replica that could not be reached gets the write later (hinted handoff). So does one that
  // follows a newer table (STALEEPOCH): when the others still at our epoch acknowledge W, the
  // write is not retried, and a replica the newer epoch keeps (e.g. a rebuilt replica just
  // promoted from joining) would miss it. The replay runs at our newest epoch and drops the hint
  // if the target no longer owns the key (NOTOWNER). Other fences are not hinted: TABLEBEHIND is
  // retried after a table push, NOTOWNER means the key is not the target's, MOVING means the
  // range is in a cutover and the write is retried at the next epoch (its new owner).
  if (hint_on_failure && core.options.hinted_handoff &&
      (outcome.kind == ReplicaOutcome::Kind::kFailed || stale)) {
    Status stored = core.engine.store_hint(target, state.key, state.cell,
                                           core.options.hints_per_target_max,
                                           core.options.hint_bytes_per_target_max, state.sub_key);
    if (stored.is_ok()) ++core.hints_stored;
  }
}

// Sends the write to every replica of the key's shard; waits for W voting acks.
struct WriteAttempt {
  bool reached = false;
  size_t acks = 0;
  size_t needed = 0;
  std::optional<std::string> stale;
  bool moving = false;     // a replica answered MOVING
  HlcTimestamp newer = 0;  // a replica kept a newer cell with this timestamp
};

// The CAIRN.APPLY request of a cell: the sub-key travels only for a row's field.
std::vector<std::string> apply_args(uint64_t epoch, const std::string& key,
                                    const std::string& sub_key, const Cell& cell) {
  std::vector<std::string> args = {"CAIRN.APPLY", std::to_string(epoch), key,
                                   storage::encode_cell(cell)};
  if (!sub_key.empty()) args.push_back(sub_key);
  return args;
}

// A write sent to every replica of its shard (and applied by this machine if it is one), not
// waited for yet: write_once is send_write then wait_write; several writes can be in flight.
struct PendingWrite {
  std::shared_ptr<WriteState> state;
  size_t needed = 0;
};

Result<PendingWrite> send_write(const CorePtr& core, const TablePtr& table, const std::string& key,
                                const std::string& sub_key, const Cell& cell, Level level,
                                Deadline deadline) {
  const topology::Token token = topology::token_of(key);
  const topology::ReplicaSet set = table->replicas_for_token(token);
  Result<uint32_t> needed = needed_replicas(level, set.voting.size());
  if (!needed.is_ok()) return needed.status();
  auto state = std::make_shared<WriteState>(*needed, set.voting.size(), key, sub_key, cell);
  const std::vector<std::string> args = apply_args(table->epoch(), key, sub_key, cell);
  bool local_is_replica = false;
  std::optional<size_t> local_slot;
  auto send = [&](const Machine* machine, std::optional<size_t> slot, bool hint) {
    if (machine->id == core->machine_id) {
      local_is_replica = true;
      local_slot = slot;
      return;
    }
    call_peer(core, table, machine->address, args, deadline,
              [core, state, target = machine->id, slot, hint,
               address = machine->address](Result<resp::Value> reply) {
                settle_write(*core, *state, target, slot, hint, decode_apply_reply(reply),
                             address);
              });
  };
  for (size_t i = 0; i < set.voting.size(); ++i) send(set.voting[i], i, true);
  for (const Machine* machine : set.extras) send(machine, std::nullopt, true);
  // Joining replicas copy what the shard held before they joined (server/rebuilder.h); a write
  // they miss after joining is hinted like any other, so a rebuilt replica misses nothing.
  for (const Machine* machine : set.joining) send(machine, std::nullopt, true);
  // The local replica last, so the remote calls are already on their way.
  if (local_is_replica) {
    HlcTimestamp newer = 0;
    Result<std::pair<replica::Fence, bool>> applied =
        core->replica.apply(table->epoch(), key, cell, &newer, sub_key);
    ReplicaOutcome outcome = applied.is_ok()
                                 ? outcome_of_fence(applied->first)
                                 : ReplicaOutcome::failure(applied.status().to_string());
    if (outcome.ok()) outcome.newer_timestamp = newer;
    settle_write(*core, *state, core->machine_id, local_slot, false, outcome, "");
  }
  return PendingWrite{state, *needed};
}

WriteAttempt wait_write(const PendingWrite& pending, Deadline deadline) {
  WriteState* state = pending.state.get();
  WriteAttempt attempt;
  attempt.needed = pending.needed;
  attempt.reached = state->gather.wait_for_needed(deadline);
  // A write that missed W reports how many replicas acknowledged it: let the ones still on
  // their way (those that did not fail) answer, up to the deadline, so the count is exact.
  if (!attempt.reached) state->gather.wait_for_all(deadline);
  attempt.acks = state->gather.successes();
  attempt.stale = state->stale.get();
  attempt.moving = state->stale.moving();
  attempt.newer = state->newer.load();
  return attempt;
}

Result<WriteAttempt> write_once(const CorePtr& core, const TablePtr& table, const std::string& key,
                                const std::string& sub_key, const Cell& cell, Level level,
                                Deadline deadline) {
  Result<PendingWrite> pending = send_write(core, table, key, sub_key, cell, level, deadline);
  if (!pending.is_ok()) return pending.status();
  return wait_write(*pending, deadline);
}

// Writes a key's own cell (`sub_key` empty) or a field of its row at `level`.
Status write_cell(const CorePtr& core, const std::string& key, const std::string& sub_key,
                  const Cell& first_cell, Level level) {
  const Deadline deadline = deadline_after(core->options.request_timeout_ms);
  Cell cell = first_cell;
  bool restamped = false;
  // Retries after a STALEEPOCH made us fetch a newer table, or after a MOVING answer (a pause,
  // then the current table), until the deadline. The cell keeps its timestamp, so replicas that
  // already stored it are unaffected (LWW is idempotent).
  for (int attempt_number = 0;; ++attempt_number) {
    TablePtr table = core->replica.tables().current();
    if (!table) return Status::unavailable(std::string(kNoTableMessage));
    Result<WriteAttempt> attempt = write_once(core, table, key, sub_key, cell, level, deadline);
    if (!attempt.is_ok()) return attempt.status();
    // `newer` is only reported for a different cell that wins over ours: a later timestamp, or
    // the same one with a larger writer id (two coordinators stamping in the same millisecond).
    if (attempt->reached && attempt->newer != 0 && !restamped) {
      // A replica holds a newer cell: a write that may have completed before this one began,
      // stamped by a machine whose clock is ahead (or later in the same millisecond). Stamping
      // this write after it makes the later write win, as a client expects: with W + W > N, any
      // acknowledged write is on one of the replicas that answered, so one restamp suffices;
      // a cell that is newer still comes from a concurrent write, and either order is correct.
      core->clock.observe(attempt->newer);
      cell.timestamp = core->clock.now();
      restamped = true;
      ++core->restamps;
      --attempt_number;  // not a table retry
      continue;
    }
    if (attempt->reached) {
      ++core->writes;
      return Status::ok();
    }
    if (attempt_number < kAttemptsMax && std::chrono::steady_clock::now() < deadline) {
      if (attempt->stale && refresh_table(core, *attempt->stale, table->epoch(), deadline)) {
        continue;
      }
      if (attempt->moving && pause_for_cutover(deadline)) continue;
    }
    ++core->uncertain_writes;
    return Status::unavailable(uncertain_write_message(attempt->acks, attempt->needed));
  }
}

// ---- reads ----

struct ReadState {
  ReadState(size_t needed, size_t voting) : gather(needed, voting), cells(voting) {}
  Gather gather;
  // cells[i] is written before gather.succeed(i), and read only for succeeded slots.
  std::vector<std::optional<Cell>> cells;
  StaleMark stale;
};

struct PendingRead {
  TablePtr table;
  topology::ReplicaSet set;
  std::shared_ptr<ReadState> state;
  size_t needed = 0;
  std::string key;
  std::string sub_key;
  // Voting replicas not asked yet, the next to ask last (R-of-N reads, wait_for_read).
  std::vector<size_t> unasked;
};

// Sends CAIRN.READ for the read's key (or the field sub_key of its row) to the voting replica in
// `slot` (the local one directly).
void ask_replica(const CorePtr& core, const PendingRead& pending, size_t slot,
                 Deadline deadline) {
  const Machine* machine = pending.set.voting[slot];
  if (machine->id == core->machine_id) {
    Result<std::pair<replica::Fence, std::optional<Cell>>> read =
        core->replica.read(pending.table->epoch(), pending.key, pending.sub_key);
    if (read.is_ok() && read->first.ok()) {
      pending.state->cells[slot] = std::move(read->second);
      pending.state->gather.succeed(slot);
    } else {
      if (read.is_ok()) pending.state->stale.note(read->first, "");
      pending.state->gather.fail(slot);
    }
    return;
  }
  std::vector<std::string> args = {"CAIRN.READ", std::to_string(pending.table->epoch()),
                                   pending.key};
  if (!pending.sub_key.empty()) args.push_back(pending.sub_key);
  call_peer(core, pending.table, machine->address, std::move(args), deadline,
            [state = pending.state, slot, address = machine->address](Result<resp::Value> reply) {
              std::optional<Cell> cell;
              const ReplicaOutcome outcome = decode_read_reply(reply, &cell);
              settle_answer(state->gather, state->stale, state->cells, slot, outcome,
                            std::move(cell), address);
            });
}

// Starts a read of `key` (or of the field `sub_key` of its row) at `level`: asks R voting
// replicas of its shard, this machine first when it is one and the others in random order so
// reads spread over the shard; the rest wait in `unasked` (all are asked at once when
// read_speculate_ms is 0). Any R replicas overlap every W that acknowledged a write (R + W > N),
// so asking R is as fresh as asking all.
Result<PendingRead> start_read(const CorePtr& core, const TablePtr& table, const std::string& key,
                               const std::string& sub_key, Level level,
                               Deadline deadline) {
  PendingRead pending;
  pending.table = table;
  pending.set = table->replicas_for_token(topology::token_of(key));
  Result<uint32_t> needed = needed_replicas(level, pending.set.voting.size());
  if (!needed.is_ok()) return needed.status();
  pending.needed = *needed;
  pending.state = std::make_shared<ReadState>(*needed, pending.set.voting.size());
  pending.key = key;
  pending.sub_key = sub_key;
  const size_t voting = pending.set.voting.size();
  std::vector<size_t> order;
  order.reserve(voting);
  std::optional<size_t> local_slot;
  for (size_t i = 0; i < voting; ++i) {
    if (pending.set.voting[i]->id == core->machine_id) {
      local_slot = i;
    } else {
      order.push_back(i);
    }
  }
  thread_local std::mt19937_64 random{std::random_device{}()};
  std::shuffle(order.begin(), order.end(), random);
  const size_t first = core->options.read_speculate_ms > 0
                           ? std::min<size_t>(*needed - (local_slot ? 1 : 0), order.size())
                           : order.size();
  // The rest, the next to ask last.
  pending.unasked.assign(order.rbegin(), order.rend() - static_cast<ptrdiff_t>(first));
  for (size_t i = 0; i < first; ++i) ask_replica(core, pending, order[i], deadline);
  // The local replica last, so the remote calls are already on their way.
  if (local_slot) ask_replica(core, pending, *local_slot, deadline);
  return pending;
}

// Waits for R answers to `read` until `deadline`, asking one more replica each time one fails,
// and every replica left when those asked have not all answered after read_speculate_ms.
bool wait_for_read(const CorePtr& core, PendingRead& read, Deadline deadline) {
  Gather& gather = read.state->gather;
  const auto speculate = std::chrono::milliseconds(core->options.read_speculate_ms);
  Deadline speculate_at = std::chrono::steady_clock::now() + speculate;
  size_t failures_seen = 0;
  while (!read.unasked.empty()) {
    if (gather.wait_for_needed_or_failure(std::min(deadline, speculate_at), failures_seen)) {
      return true;
    }
    const auto now = std::chrono::steady_clock::now();
    if (now >= deadline) return false;
    const size_t failures = gather.failures();
    // One more per failure; every one left when the asked ones are slow.
    size_t more = now >= speculate_at ? read.unasked.size() : failures - failures_seen;
    failures_seen = failures;
    for (; more > 0 && !read.unasked.empty(); --more) {
      const size_t slot = read.unasked.back();
      read.unasked.pop_back();
      ask_replica(core, read, slot, deadline);
    }
    speculate_at = std::chrono::steady_clock::now() + speculate;
  }
  return gather.wait_for_needed(deadline);
}

// One read repair: the winner written back to a replica that answered something older.
struct Repair {
  TablePtr table;
  const Machine* machine;
  std::string key;
  Cell winner;
  std::string sub_key;  // empty: the key's own cell; else a field of its row
};

// Sends every repair in parallel and waits for them until the deadline. A repair that fails is
// not an error for the read: the answer is still the merged winner, which R replicas vouched
// for or superseded, and the next read retries the repair.
void run_repairs(const CorePtr& core, const std::vector<Repair>& repairs, Deadline deadline) {
  if (repairs.empty()) return;
  auto gather = std::make_shared<Gather>(0, repairs.size());
  for (size_t i = 0; i < repairs.size(); ++i) {
    const Repair& repair = repairs[i];
    ++core->read_repairs;
    if (repair.machine->id == core->machine_id) {
      Result<std::pair<replica::Fence, bool>> applied =
          core->replica.apply(repair.table->epoch(), repair.key, repair.winner, nullptr,
                              repair.sub_key);
      if (applied.is_ok() && applied->first.ok()) {
        gather->succeed(i);
      } else {
        gather->fail(i);
      }
      continue;
    }
    call_peer(core, repair.table, repair.machine->address,
              apply_args(repair.table->epoch(), repair.key, repair.sub_key, repair.winner),
              deadline, [gather, i](Result<resp::Value> reply) {
                if (decode_apply_reply(reply).ok()) {
                  gather->succeed(i);
                } else {
                  gather->fail(i);
                }
              });
  }
  gather->wait_for_all(deadline);
}

// Reads `keys` in parallel (one gather per key) and returns each key's LWW winner as stored
// (tombstones and expired cells included), after read repair. With `sub_keys` (empty, or one
// per key), element i reads the field sub_keys[i] of keys[i]'s row instead.
Result<std::vector<std::optional<Cell>>> read_cells(const CorePtr& core,
                                                    std::span<const std::string> keys,
                                                    Level level,
                                                    std::span<const std::string> sub_keys = {}) {
  CAIRN_ASSERT(sub_keys.empty() || sub_keys.size() == keys.size(), "one sub-key per key");
  static const std::string kNoSubKey;
  auto sub_key_of = [&](size_t index) -> const std::string& {
    return sub_keys.empty() ? kNoSubKey : sub_keys[index];
  };
  const Deadline deadline = deadline_after(core->options.request_timeout_ms);
  std::vector<std::optional<Cell>> winners(keys.size());
  std::vector<size_t> todo(keys.size());
  for (size_t i = 0; i < keys.size(); ++i) todo[i] = i;
  std::vector<Repair> repairs;
  for (int attempt_number = 0; !todo.empty(); ++attempt_number) {
    TablePtr table = core->replica.tables().current();
    if (!table) return Status::unavailable(std::string(kNoTableMessage));
    std::vector<PendingRead> pending;
    pending.reserve(todo.size());
    for (size_t index : todo) {
      Result<PendingRead> started =
          start_read(core, table, keys[index], sub_key_of(index), level, deadline);
      if (!started.is_ok()) return started.status();
      pending.push_back(std::move(*started));
    }
    std::vector<size_t> retry;
    std::optional<std::string> stale_address;
    bool moving = false;
    std::string retry_failure;  // the error to report if the retry cannot happen
    const bool may_retry =
        attempt_number < kAttemptsMax && std::chrono::steady_clock::now() < deadline;
    for (size_t p = 0; p < pending.size(); ++p) {
      const size_t index = todo[p];
      PendingRead& read = pending[p];
      if (!wait_for_read(core, read, deadline)) {
        // Let the replicas still answering (those that did not fail) answer, up to the
        // deadline, so UNAVAILABLE reports every answer.
        read.state->gather.wait_for_all(deadline);
        std::optional<std::string> stale = read.state->stale.get();
        const bool key_moving = read.state->stale.moving();
        if ((stale || key_moving) && may_retry) {
          if (retry_failure.empty()) {
            retry_failure =
                unavailable_read_message(read.state->gather.successes(), read.needed);
          }
          if (stale && !stale_address) stale_address = stale;
          moving = moving || key_moving;
          retry.push_back(index);
          continue;
        }
        ++core->unavailable_reads;
        return Status::unavailable(
            unavailable_read_message(read.state->gather.successes(), read.needed));
      }
      const std::vector<size_t> answered = read.state->gather.succeeded_slots();
      std::vector<std::optional<Cell>> answers;
      answers.reserve(answered.size());
      for (size_t slot : answered) answers.push_back(read.state->cells[slot]);
      winners[index] = merge_cells(answers);
      if (winners[index]) core->clock.observe(winners[index]->timestamp);
      for (size_t stale_index : stale_answers(answers, winners[index])) {
        repairs.push_back({read.table, read.set.voting[answered[stale_index]], keys[index],
                           *winners[index], sub_key_of(index)});
      }
    }
    if (!retry.empty()) {
      const bool newer =
          stale_address && refresh_table(core, *stale_address, table->epoch(), deadline);
      if (!newer && !(moving && pause_for_cutover(deadline))) {
        ++core->unavailable_reads;
        return Status::unavailable(retry_failure);
      }
    }
    todo = std::move(retry);
  }
  run_repairs(core, repairs, deadline);
  core->reads += keys.size();
  return winners;
}

// ---- pages: rows and scans ----

// The answers of the voting replicas to one page request (a row page, a scan page).
template <typename Answer>
struct PageState {
  PageState(size_t needed, size_t voting) : gather(needed, voting), answers(voting) {}
  Gather gather;
  std::vector<Answer> answers;  // as ReadState::cells
  StaleMark stale;
};

// One attempt at a page: the merged page once R replicas answered, else why not.
template <typename Page>
struct PageAttempt {
  std::optional<Page> page;
  size_t answers = 0;
  size_t needed = 0;
  std::optional<std::string> stale;
  bool moving = false;  // a replica answered MOVING
};

// Waits for R answers. False when they did not come: `attempt` then says why (after every
// replica still answering did, so UNAVAILABLE counts every answer).
template <typename Answer, typename Page>
bool wait_for_page(PageState<Answer>& state, PageAttempt<Page>& attempt, Deadline deadline) {
  if (state.gather.wait_for_needed(deadline)) return true;
  state.gather.wait_for_all(deadline);
  attempt.answers = state.gather.successes();
  attempt.stale = state.stale.get();
  attempt.moving = state.stale.moving();
  return false;
}

// Sends `args` to every voting replica of `set` but this machine, each reply decoded by
// `decode` into `state`, then asks this machine's replica with `local()` (a
// Result<std::pair<replica::Fence, Answer>>), so the remote calls are on their way first.
template <typename Answer, typename Local>
void ask_voting_replicas(const CorePtr& core, const TablePtr& table,
                         const topology::ReplicaSet& set,
                         const std::shared_ptr<PageState<Answer>>& state,
                         const std::vector<std::string>& args,
                         ReplicaOutcome (*decode)(const Result<resp::Value>&, Answer*),
                         const Local& local, Deadline deadline) {
  std::optional<size_t> local_slot;
  for (size_t i = 0; i < set.voting.size(); ++i) {
    const Machine* machine = set.voting[i];
    if (machine->id == core->machine_id) {
      local_slot = i;
      continue;
    }
    call_peer(core, table, machine->address, args, deadline,
              [state, slot = i, address = machine->address, decode](Result<resp::Value> reply) {
                Answer answer;
                const ReplicaOutcome outcome = decode(reply, &answer);
                settle_answer(state->gather, state->stale, state->answers, slot, outcome,
                              std::move(answer), address);
              });
  }
  if (!local_slot) return;
  Result<std::pair<replica::Fence, Answer>> answer = local();
  if (answer.is_ok() && answer->first.ok()) {
    state->answers[*local_slot] = std::move(answer->second);
    state->gather.succeed(*local_slot);
  } else {
    if (answer.is_ok()) state->stale.note(answer->first, "");
    state->gather.fail(*local_slot);
  }
}

// Runs `once(table, deadline)` (a Result<PageAttempt<Page>>) until it has a page: again after
// a STALEEPOCH (with the newer table) or a MOVING (after a pause), until the request deadline.
template <typename Page, typename Once>
Result<Page> page_with_retries(const CorePtr& core, const Once& once) {
  const Deadline deadline = deadline_after(core->options.request_timeout_ms);
  for (int attempt_number = 0;; ++attempt_number) {
    TablePtr table = core->replica.tables().current();
    if (!table) return Status::unavailable(std::string(kNoTableMessage));
    Result<PageAttempt<Page>> attempt = once(table, deadline);
    if (!attempt.is_ok()) return attempt.status();
    if (attempt->page) return std::move(*attempt->page);
    if (attempt_number < kAttemptsMax && std::chrono::steady_clock::now() < deadline) {
      if (attempt->stale && refresh_table(core, *attempt->stale, table->epoch(), deadline)) {
        continue;
      }
      if (attempt->moving && pause_for_cutover(deadline)) continue;
    }
    ++core->unavailable_reads;
    return Status::unavailable(unavailable_read_message(attempt->answers, attempt->needed));
  }
}

using RowPageAttempt = PageAttempt<MergedRowPage>;

// The score index entries of a merged page that not every answer held alike are checked
// against their members' cells. Each replica derives its index from its own member cells
// (storage::Engine::apply_field), so the entries of a replica that missed a score change still
// name the old score, and the merge of two replicas would list the member twice. An entry every
// answer held is what each of them derived from the same member cell; the others are kept only
// if the member's merged cell (read at `level`, and repaired, which moves the lagging replicas'
// entries) holds that score. The rest become tombstones in the page, which readers skip.
Status check_disputed_index_entries(const CorePtr& core, const std::string& key, Level level,
                                    MergedRowPage& merged) {
  std::vector<size_t> disputed;
  for (const std::vector<size_t>& stale : merged.stale_fields) {
    for (size_t f : stale) {
      const auto& [sub_key, cell] = merged.fields[f];
      if (storage::is_score_index_cell(sub_key, cell) && !cell.tombstone &&
          sub_key.size() > 9) {
        disputed.push_back(f);
      }
    }
  }
  if (disputed.empty()) return Status::ok();
  std::sort(disputed.begin(), disputed.end());
  disputed.erase(std::unique(disputed.begin(), disputed.end()), disputed.end());
  std::vector<std::string> member_sub_keys;
  member_sub_keys.reserve(disputed.size());
  for (size_t f : disputed) {
    member_sub_keys.push_back(storage::field_sub_key(merged.fields[f].first.substr(9)));
  }
  const std::vector<std::string> keys(disputed.size(), key);
  Result<std::vector<std::optional<Cell>>> members =
      read_cells(core, keys, level, member_sub_keys);
  if (!members.is_ok()) return members.status();
  const int64_t now = wall_clock_ms();
  for (size_t i = 0; i < disputed.size(); ++i) {
    auto& [sub_key, cell] = merged.fields[disputed[i]];
    const std::optional<Cell>& member = (*members)[i];
    const bool holds = member && member->live_at(now) &&
                       storage::derived_index_sub_key(member_sub_keys[i], *member) == sub_key;
    if (!holds) cell.tombstone = true;
  }
  return Status::ok();
}

// Asks the voting replicas of `key`'s shard for one page of its row (CAIRN.ROW), merges R
// answers and repairs the answering replicas that hold an older header or older fields.
Result<RowPageAttempt> row_page_once(const CorePtr& core, const TablePtr& table,
                                     const std::string& key, const std::string& from,
                                     size_t count, Level level, Deadline deadline) {
  const topology::ReplicaSet set = table->replicas_for_token(topology::token_of(key));
  Result<uint32_t> needed = needed_replicas(level, set.voting.size());
  if (!needed.is_ok()) return needed.status();
  auto state = std::make_shared<PageState<replica::RowPage>>(*needed, set.voting.size());
  ask_voting_replicas(
      core, table, set, state,
      {"CAIRN.ROW", std::to_string(table->epoch()), key, from, std::to_string(count)},
      &decode_row_reply,
      [&] { return core->replica.read_row_page(table->epoch(), key, from, count); }, deadline);
  RowPageAttempt attempt;
  attempt.needed = *needed;
  if (!wait_for_page(*state, attempt, deadline)) return attempt;
  const std::vector<size_t> answered = state->gather.succeeded_slots();
  std::vector<replica::RowPage> pages;
  pages.reserve(answered.size());
  for (size_t slot : answered) pages.push_back(state->answers[slot]);
  attempt.answers = pages.size();
  MergedRowPage merged = merge_row_pages(pages, wall_clock_ms());
  if (merged.next && *merged.next <= from) {
    return Status::internal("a row page made no progress in key " + key);
  }
  if (Status status = check_disputed_index_entries(core, key, level, merged); !status.is_ok()) {
    return status;
  }
  std::vector<Repair> repairs;
  for (size_t a = 0; a < pages.size(); ++a) {
    const Machine* machine = set.voting[answered[a]];
    if (merged.stale_header[a]) repairs.push_back({table, machine, key, *merged.header, {}});
    for (size_t f : merged.stale_fields[a]) {
      const auto& [sub_key, cell] = merged.fields[f];
      // Replicas derive their index entries: the member cells' repair moves them.
      if (storage::is_score_index_cell(sub_key, cell)) continue;
      repairs.push_back({table, machine, key, cell, sub_key});
    }
  }
  if (merged.header) core->clock.observe(merged.header->timestamp);
  run_repairs(core, repairs, deadline);
  attempt.page = std::move(merged);
  return attempt;
}

// One merged page of `key`'s row from sub-key `from`, retried after STALEEPOCH and MOVING until
// the request deadline.
Result<MergedRowPage> read_row_page(const CorePtr& core, const std::string& key,
                                    const std::string& from, size_t count,
                                    Level level) {
  Result<MergedRowPage> page =
      page_with_retries<MergedRowPage>(core, [&](const TablePtr& table, Deadline deadline) {
        return row_page_once(core, table, key, from, count, level, deadline);
      });
  if (page.is_ok()) ++core->reads;
  return page;
}

// Cells per CAIRN.ROW page: the first page of a row read is small (most reads of a small row or
// of a string key end there), later pages larger.
constexpr size_t kRowFirstPageCells = 100;
constexpr size_t kRowPageCells = 1000;
// A read of a row's type and existence (read_row_exists: HSET, SADD, HGET...) stops at the
// first visible field, usually the first cell: a small first page spares every replica from
// sending (and the coordinator from merging) 100 cells per command.
constexpr size_t kRowExistsFirstPageCells = 4;

// Visits the merged fields of `key`'s row from sub-key `from` in sub-key order (tombstones and
// hidden cells included) until `visit` returns false. `first` receives the first page (header
// and hidden bound) before any field is visited; it holds up to `first_page_cells` fields.
Status walk_row(const CorePtr& core, const std::string& key, std::string from,
                Level level,
                const std::function<bool(const MergedRowPage& page)>& first,
                const std::function<bool(std::string_view sub_key, const Cell& cell)>& visit,
                size_t first_page_cells = kRowFirstPageCells) {
  for (bool is_first = true;; is_first = false) {
    Result<MergedRowPage> page =
        read_row_page(core, key, from, is_first ? first_page_cells : kRowPageCells, level);
    if (!page.is_ok()) return page.status();
    if (is_first && !first(*page)) return Status::ok();
    for (const auto& [sub_key, cell] : page->fields) {
      if (!visit(sub_key, cell)) return Status::ok();
    }
    if (!page->next) return Status::ok();
    from = std::move(*page->next);
  }
}

// ---- scans ----

using ScanAttempt = PageAttempt<ScanPage>;

Result<ScanAttempt> scan_once(const CorePtr& core, const TablePtr& table,
                              const ScanRequest& request, Level level,
                              Deadline deadline) {
  const topology::Token start = request.cursor;
  const topology::Range& range = table->range_for_token(start);
  const topology::ReplicaSet set = table->replicas_for_token(start);
  Result<uint32_t> needed = needed_replicas(level, set.voting.size());
  if (!needed.is_ok()) return needed.status();
  const size_t count = std::clamp<size_t>(request.count, 1, kScanCountMax);
  auto state = std::make_shared<PageState<replica::ScanResult>>(*needed, set.voting.size());
  ask_voting_replicas(
      core, table, set, state,
      {"CAIRN.SCAN", std::to_string(table->epoch()), std::to_string(start),
       std::to_string(range.end), std::to_string(count), "KEYS"},
      &decode_scan_reply,
      [&] {
        return core->replica.scan(table->epoch(), start, range.end, count, /*keys_only=*/true);
      },
      deadline);
  ScanAttempt attempt;
  attempt.needed = *needed;
  if (!wait_for_page(*state, attempt, deadline)) return attempt;
  std::vector<replica::ScanResult> answers;
  for (size_t slot : state->gather.succeeded_slots()) answers.push_back(state->answers[slot]);
  attempt.answers = answers.size();
  ScanPage page = merge_scan_answers(range.end, answers, wall_clock_ms(), request.filter);
  if (page.next_cursor != 0 && page.next_cursor <= start) {
    return Status::internal("a scan page made no progress at token " + std::to_string(start));
  }
  attempt.page = std::move(page);
  return attempt;
}

Result<ScanPage> scan_cluster(const CorePtr& core, const ScanRequest& request,
                              Level level) {
  return page_with_retries<ScanPage>(core, [&](const TablePtr& table, Deadline deadline) {
    return scan_once(core, table, request, level, deadline);
  });
}

// ---- hinted handoff ----

struct ReplayState {
  explicit ReplayState(size_t hints) : gather(0, hints), outcomes(hints) {}
  Gather gather;  // every hint "succeeds" once its outcome is known
  std::vector<ReplicaOutcome> outcomes;
};

// Replays up to kHintReplayBatchMax hints of `target` and drops the replayed prefix. Stops at the
// first hint that was not delivered, so hints stay in order and the rest wait for the next round.
void replay_target(const CorePtr& core, const TablePtr& table, uint64_t target) {
  Result<std::vector<storage::Hint>> hints = core->engine.hints_for(target, kHintReplayBatchMax);
  if (!hints.is_ok() || hints->empty()) return;
  const Machine* machine = table->find_machine(target);
  if (machine == nullptr) {
    // The machine left the cluster; its ranges were migrated to others with their data.
    (void)core->engine.drop_hints(target, hints->back().sequence);
    return;
  }
  const Deadline deadline = deadline_after(core->options.request_timeout_ms);
  const int64_t oldest_ms = wall_clock_ms() - core->options.hint_age_max_ms;
  auto state = std::make_shared<ReplayState>(hints->size());
  std::vector<bool> sent(hints->size(), false);
  for (size_t i = 0; i < hints->size(); ++i) {
    const storage::Hint& hint = (*hints)[i];
    // Older than the tombstone grace period allows: replaying it could resurrect a value whose
    // tombstone was already dropped, so it is discarded (the replica needs a repair instead).
    if (HybridClock::physical_ms(hint.cell.timestamp) < oldest_ms) {
      state->outcomes[i] = ReplicaOutcome::success();
      state->gather.succeed(i);
      continue;
    }
    sent[i] = true;
    call_peer(core, table, machine->address,
              apply_args(table->epoch(), hint.key, hint.sub_key, hint.cell), deadline,
              [state, i](Result<resp::Value> reply) {
                state->outcomes[i] = decode_apply_reply(reply);
                state->gather.succeed(i);
              });
  }
  state->gather.wait_for_all(deadline);
  const std::vector<size_t> known = state->gather.succeeded_slots();
  uint64_t drop_up_to = 0;
  bool dropping = false;
  uint64_t replayed = 0;
  for (size_t i = 0; i < known.size() && known[i] == i; ++i) {
    const ReplicaOutcome& outcome = state->outcomes[i];
    // NOTOWNER: the target no longer holds the key; its new owners received the range by
    // migration, so the hint has nowhere to go.
    const bool delivered = outcome.ok() || (outcome.kind == ReplicaOutcome::Kind::kFence &&
                                            outcome.fence.code == replica::FenceCode::kNotOwner);
    if (!delivered) {
      if (outcome.kind == ReplicaOutcome::Kind::kFence &&
          outcome.fence.code == replica::FenceCode::kStaleEpoch) {
        (void)refresh_table(core, machine->address, table->epoch(), deadline);
      }
      break;
    }
    if (sent[i] && outcome.ok()) ++replayed;
    drop_up_to = (*hints)[i].sequence;
    dropping = true;
  }
  if (dropping && core->engine.drop_hints(target, drop_up_to).is_ok()) {
    core->hints_replayed += replayed;
  }
}

}  // namespace

struct ClusterCoordinator::Impl {
  CorePtr core;
  std::mutex mu;
  std::condition_variable wake;
  bool stopping = false;
  std::thread replayer;
  // set_leader_lease_check(); shared so a check runs outside lease_mu.
  std::mutex lease_mu;
  std::shared_ptr<const std::function<bool()>> lease_check;

  bool leader_lease_valid() {
    std::shared_ptr<const std::function<bool()>> check;
    {
      std::lock_guard<std::mutex> lock(lease_mu);
      check = lease_check;
    }
    return check == nullptr || (*check)();
  }

  void replay_loop() {
    std::unique_lock<std::mutex> lock(mu);
    while (!stopping) {
      wake.wait_for(lock, std::chrono::milliseconds(core->options.hint_replay_interval_ms),
                    [this] { return stopping; });
      if (stopping) break;
      lock.unlock();
      replay_round();
      lock.lock();
    }
  }

  void replay_round() {
    TablePtr table = core->replica.tables().current();
    if (!table) return;
    for (const auto& [target, count] : core->engine.hint_counts()) {
      if (count == 0 || target == core->machine_id) continue;
      {
        std::lock_guard<std::mutex> lock(mu);
        if (stopping) return;
      }
      replay_target(core, table, target);
    }
  }
};

ClusterCoordinator::ClusterCoordinator(ClusterOptions options, storage::Engine& engine,
                                       HybridClock& clock, replica::Replica& replica,
                                       net::PeerPool& peers)
    : impl_(std::make_unique<Impl>()) {
  CAIRN_ASSERT(options.request_timeout_ms > 0, "request_timeout_ms must be positive");
  CAIRN_ASSERT(options.hint_replay_interval_ms > 0, "hint_replay_interval_ms must be positive");
  impl_->core = std::make_shared<Core>(options, engine, clock, replica, peers);
}

ClusterCoordinator::~ClusterCoordinator() { stop(); }

void ClusterCoordinator::start() {
  std::lock_guard<std::mutex> lock(impl_->mu);
  if (impl_->replayer.joinable() || impl_->stopping) return;
  impl_->replayer = std::thread([impl = impl_.get()] { impl->replay_loop(); });
}

void ClusterCoordinator::stop() {
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->stopping = true;
  }
  impl_->wake.notify_all();
  if (impl_->replayer.joinable()) impl_->replayer.join();
}

void ClusterCoordinator::set_clock_state(bool in_bound, int64_t offset_ms, int64_t max_offset_ms) {
  Core& core = *impl_->core;
  core.clock_baseline_ms.store(wall_clock_ms() - monotonic_ms(), std::memory_order_relaxed);
  core.clock_offset_ms.store(offset_ms, std::memory_order_relaxed);
  core.clock_max_offset_ms.store(max_offset_ms, std::memory_order_relaxed);
  core.clock_out_of_bound.store(!in_bound, std::memory_order_release);
}

void ClusterCoordinator::set_leader_lease_check(std::function<bool()> valid) {
  auto check = valid ? std::make_shared<const std::function<bool()>>(std::move(valid)) : nullptr;
  std::lock_guard<std::mutex> lock(impl_->lease_mu);
  impl_->lease_check = std::move(check);
}

ClusterStats ClusterCoordinator::stats() const {
  const Core& core = *impl_->core;
  ClusterStats stats;
  stats.writes = core.writes;
  stats.reads = core.reads;
  stats.uncertain_writes = core.uncertain_writes;
  stats.unavailable_reads = core.unavailable_reads;
  stats.read_repairs = core.read_repairs;
  stats.hints_stored = core.hints_stored;
  stats.hints_replayed = core.hints_replayed;
  stats.redirects = core.redirects;
  stats.restamps = core.restamps;
  stats.clock_refusals = core.clock_refusals;
  stats.table_refreshes = core.table_refreshes;
  return stats;
}

uint64_t ClusterCoordinator::machine_id() const { return impl_->core->machine_id; }

replica::TableHolder& ClusterCoordinator::tables() { return impl_->core->replica.tables(); }

// ---- ClusterSession ----

namespace {

// Sets a flag for the duration of a scope (atomically(): reads and writes at QUORUM).
class FlagScope {
 public:
  explicit FlagScope(bool& flag) : flag_(flag) { flag_ = true; }
  ~FlagScope() { flag_ = false; }
  FlagScope(const FlagScope&) = delete;
  FlagScope& operator=(const FlagScope&) = delete;

 private:
  bool& flag_;
};

}  // namespace

ClusterSession::ClusterSession(ClusterCoordinator& coordinator, const RequestOptions& options)
    : coordinator_(coordinator), options_(options) {}

int64_t ClusterSession::now_ms() { return wall_clock_ms(); }

Result<std::optional<storage::Cell>> ClusterSession::read(std::string_view key) {
  const std::string owned(key);
  Result<std::vector<std::optional<Cell>>> cells =
      read_many(std::span<const std::string>(&owned, 1));
  if (!cells.is_ok()) return cells.status();
  return std::move((*cells)[0]);
}


Result<std::optional<storage::Cell>> ClusterSession::read_stored(std::string_view key) {
  const std::string owned(key);
  Result<std::vector<std::optional<Cell>>> cells =
      read_cells(coordinator_.impl_->core, std::span<const std::string>(&owned, 1),
                 Level(options_.read, in_atomic_));
  if (!cells.is_ok()) return cells.status();
  return std::move((*cells)[0]);
}

Result<std::vector<std::optional<storage::Cell>>> ClusterSession::read_many(
    std::span<const std::string> keys) {
  Result<std::vector<std::optional<Cell>>> cells =
      read_cells(coordinator_.impl_->core, keys, Level(options_.read, in_atomic_));
  if (!cells.is_ok()) return cells.status();
  const int64_t now = now_ms();
  for (size_t i = 0; i < keys.size(); ++i) {
    std::optional<Cell>& cell = (*cells)[i];
    if (cell && !cell->live_at(now)) {
      note_if_expired(keys[i], *cell, now);
      cell.reset();
    }
    // A row header is a key only while its merged row has a visible field (as on one machine).
    if (cell && storage::is_row_type(cell->type)) {
      Result<RowRead> row = read_row_merged(keys[i], /*count_all=*/false);
      if (!row.is_ok()) return row.status();
      cell = std::move(row->header);
    }
  }
  return cells;
}

Result<RowRead> ClusterSession::read_row(std::string_view key) {
  return read_row_merged(key, /*count_all=*/true);
}

Result<RowRead> ClusterSession::read_row_exists(std::string_view key) {
  return read_row_merged(key, /*count_all=*/false);
}

Result<RowRead> ClusterSession::read_row_merged(std::string_view key, bool count_all) {
  const int64_t now = now_ms();
  RowRead row;
  bool is_row = false;
  uint64_t count = 0;
  HlcTimestamp hidden = 0;
  Status status = walk_row(
      coordinator_.impl_->core, std::string(key), {}, Level(options_.read, in_atomic_),
      [&](const MergedRowPage& page) {
        hidden = page.hidden_through;
        row.hidden_through = hidden;
        row.delete_through_for_new_header = hidden;
        if (!page.header) return false;
        if (!page.header->live_at(now)) {
          note_if_expired(key, *page.header, now);
          return false;
        }
        row.header = page.header;
        is_row = storage::is_row_type(page.header->type);
        return is_row;  // a string has no fields to count
      },
      [&](std::string_view sub_key, const Cell& cell) {
        if (!storage::field_of_sub_key(sub_key) || !cell.live_at(now) ||
            cell.timestamp <= hidden) {
          return true;
        }
        ++count;
        return count_all;
      },
      count_all ? kRowFirstPageCells : kRowExistsFirstPageCells);
  if (!status.is_ok()) return status;
  if (is_row) {
    row.count = count;
    if (count == 0) row.header.reset();  // an emptied row is no key
  }
  return row;
}

Result<std::vector<std::optional<storage::Cell>>> ClusterSession::read_fields(
    std::string_view key, std::span<const std::string> sub_keys, HlcTimestamp hidden_through) {
  const std::vector<std::string> keys(sub_keys.size(), std::string(key));
  Result<std::vector<std::optional<Cell>>> cells =
      read_cells(coordinator_.impl_->core, keys, Level(options_.read, in_atomic_), sub_keys);
  if (!cells.is_ok()) return cells.status();
  const int64_t now = now_ms();
  for (std::optional<Cell>& cell : *cells) {
    if (cell && (!cell->live_at(now) || cell->timestamp <= hidden_through)) cell.reset();
  }
  return cells;
}

Status ClusterSession::write_field_cells(
    std::string_view key, storage::ValueType type, std::span<const std::string> sub_keys,
    std::span<const std::pair<std::string, std::string>> values,
    std::span<const int64_t> expire_at_ms) {
  const CorePtr& core = coordinator_.impl_->core;
  if (Status status = clock_guard(*core); !status.is_ok()) return status;
  const std::string owned(key);
  const size_t n = values.empty() ? sub_keys.size() : values.size();
  const Level level(options_.write, in_atomic_);
  // Different fields never touch each other's cells, so up to kFieldWritesInFlight of them are
  // sent at once and then waited for. A write that did not simply succeed (a fence, a newer cell
  // kept, too few answers) is written again on its own with write_cell's retries: the same cell,
  // so replicas that stored it already are unaffected.
  constexpr size_t kFieldWritesInFlight = 128;
  std::vector<std::pair<const std::string*, Cell>> cells;
  std::vector<Result<PendingWrite>> pending;
  for (size_t begin = 0; begin < n; begin += kFieldWritesInFlight) {
    const size_t end = std::min(n, begin + kFieldWritesInFlight);
    TablePtr table = core->replica.tables().current();
    if (!table) return Status::unavailable(std::string(kNoTableMessage));
    const Deadline deadline = deadline_after(core->options.request_timeout_ms);
    cells.clear();
    pending.clear();
    for (size_t i = begin; i < end; ++i) {
      Cell cell;
      cell.type = type;
      cell.tombstone = values.empty();
      if (!values.empty()) cell.value = values[i].second;
      if (i < expire_at_ms.size()) cell.expire_at_ms = expire_at_ms[i];
      cell.writer = core->machine_id;
      cell.timestamp = core->clock.now();
      const std::string* sub_key = values.empty() ? &sub_keys[i] : &values[i].first;
      pending.push_back(send_write(core, table, owned, *sub_key, cell, level, deadline));
      cells.emplace_back(sub_key, std::move(cell));
    }
    for (size_t i = 0; i < cells.size(); ++i) {
      if (pending[i].is_ok()) {
        const WriteAttempt attempt = wait_write(*pending[i], deadline);
        if (attempt.reached && attempt.newer == 0) {
          ++core->writes;
          continue;
        }
      } else if (pending[i].status().code() == StatusCode::kInvalidArgument) {
        return pending[i].status();  // the level cannot be met: the same for every field
      }
      if (Status status = write_cell(core, owned, *cells[i].first, cells[i].second, level);
          !status.is_ok()) {
        // Let the writes still in flight end first, so a session never has more than a window.
        for (size_t j = i + 1; j < cells.size(); ++j) {
          if (pending[j].is_ok()) (void)wait_write(*pending[j], deadline);
        }
        return status;
      }
    }
  }
  return Status::ok();
}

Status ClusterSession::write_fields(std::string_view key, storage::ValueType type,
                                    std::span<const std::pair<std::string, std::string>> fields) {
  return write_field_cells(key, type, {}, fields);
}

Status ClusterSession::write_expiring_fields(
    std::string_view key, storage::ValueType type,
    std::span<const std::pair<std::string, std::string>> fields,
    std::span<const int64_t> expire_at_ms) {
  return write_field_cells(key, type, {}, fields, expire_at_ms);
}

Status ClusterSession::remove_fields(std::string_view key, storage::ValueType type,
                                     std::span<const std::string> sub_keys) {
  return write_field_cells(key, type, sub_keys, {});
}

Status ClusterSession::scan_fields(std::string_view key, std::string_view from_sub_key,
                                   HlcTimestamp hidden_through, const RowFieldVisitor& visitor) {
  const int64_t now = now_ms();
  return walk_row(
      coordinator_.impl_->core, std::string(key), std::string(from_sub_key),
      Level(options_.read, in_atomic_),
      [](const MergedRowPage&) { return true; },
      [&](std::string_view sub_key, const Cell& cell) {
        if (!cell.live_at(now) || cell.timestamp <= hidden_through) return true;
        return visitor(sub_key, cell);
      });
}

Status ClusterSession::write(std::string_view key, storage::ValueType type, std::string value,
                             int64_t expire_at_ms) {
  const CorePtr& core = coordinator_.impl_->core;
  // Before the clock is read: a refused write must not move the hybrid clock to its reading.
  if (Status status = clock_guard(*core); !status.is_ok()) return status;
  Cell cell;
  cell.type = type;
  cell.expire_at_ms = expire_at_ms;
  cell.value = std::move(value);
  cell.writer = core->machine_id;
  cell.timestamp = core->clock.now();
  return write_cell(core, std::string(key), {}, cell,
                    Level(options_.write, in_atomic_));
}

Status ClusterSession::remove(std::string_view key) {
  const CorePtr& core = coordinator_.impl_->core;
  if (Status status = clock_guard(*core); !status.is_ok()) return status;
  Cell cell;
  cell.tombstone = true;
  cell.writer = core->machine_id;
  cell.timestamp = core->clock.now();
  return write_cell(core, std::string(key), {}, cell,
                    Level(options_.write, in_atomic_));
}

Status ClusterSession::write_many(
    std::span<const std::pair<std::string, std::string>> entries) {
  // Plain writes are ordered by last-write-wins, so they need no leader: each key is written at
  // the write level by this coordinator, whatever shard it is on. Not atomic across keys.
  for (const auto& [key, value] : entries) {
    if (Status status = write(key, storage::ValueType::kString, value, 0); !status.is_ok()) {
      return status;
    }
  }
  return Status::ok();
}

Result<int64_t> ClusterSession::remove_many(std::span<const std::string> keys) {
  Result<std::vector<std::optional<Cell>>> cells = read_many(keys);
  if (!cells.is_ok()) return cells.status();
  std::unordered_set<std::string_view> removed;
  for (size_t i = 0; i < keys.size(); ++i) {
    if (!(*cells)[i].has_value() || removed.contains(keys[i])) continue;
    if (Status status = remove(keys[i]); !status.is_ok()) return status;
    removed.insert(keys[i]);
  }
  return static_cast<int64_t>(removed.size());
}

Status ClusterSession::write_fields_leaderless(const std::string& /*key*/,
                                               const std::function<Status()>& fn) {
  if (in_atomic_) return fn();  // a transaction's command: the leader's locks and levels
  // Refused whole rather than after its first write, as a read-modify-write is.
  if (Status status = clock_guard(*coordinator_.impl_->core); !status.is_ok()) return status;
  return fn();
}

Status ClusterSession::atomically(std::span<const std::string> keys,
                                  const std::function<Status()>& fn) {
  const CorePtr& core = coordinator_.impl_->core;
  if (in_atomic_) return fn();  // nested: the outer call holds the locks already
  if (keys.empty()) {
    FlagScope scope(in_atomic_);
    return fn();
  }
  TablePtr table = core->replica.tables().current();
  if (!table) return Status::unavailable(std::string(kNoTableMessage));
  const topology::Shard& shard = table->shard_for_token(topology::token_of(keys[0]));
  for (const std::string& key : keys.subspan(1)) {
    if (table->shard_for_token(topology::token_of(key)).id != shard.id) {
      return Status::invalid_argument(std::string(kCrossShardMessage));
    }
  }
  if (!shard.lease_valid(static_cast<uint64_t>(wall_clock_ms()))) {
    return Status::unavailable(no_leader_message(shard.id));
  }
  if (shard.leader != core->machine_id) {
    redirect_ = shard.leader;
    ++core->redirects;
    return Status::unavailable(std::string(kRedirectMessage));
  }
  // The table names this machine, but its lease may have lapsed (no heartbeat answered lately):
  // the orchestrator may already have named another leader, so this one must not act.
  if (!coordinator_.impl_->leader_lease_valid()) {
    return Status::unavailable(no_leader_message(shard.id));
  }
  // A read-modify-write stamps its writes here: refuse it whole rather than half way through.
  if (Status status = clock_guard(*core); !status.is_ok()) return status;
  std::vector<std::unique_lock<std::mutex>> locks = lock_keys(core->engine, keys);
  FlagScope scope(in_atomic_);
  return fn();
}

Result<ScanPage> ClusterSession::scan(const ScanRequest& request) {
  return scan_cluster(coordinator_.impl_->core, request, options_.read);
}

Result<uint64_t> ClusterSession::count() {
  uint64_t total = 0;
  ScanRequest request;
  request.count = kCountPageKeys;
  do {
    Result<ScanPage> page = scan(request);
    if (!page.is_ok()) return page.status();
    total += page->keys.size();
    request.cursor = page->next_cursor;
  } while (request.cursor != 0);
  return total;
}

Result<std::optional<std::string>> ClusterSession::random_key() {
  thread_local std::mt19937_64 random{std::random_device{}()};
  const topology::Token start = random();
  ScanRequest request;
  request.cursor = start;
  request.count = kRandomKeyPageKeys;
  bool wrapped = start == 0;
  for (;;) {
    Result<ScanPage> page = scan(request);
    if (!page.is_ok()) return page.status();
    if (!page->keys.empty()) {
      std::uniform_int_distribution<size_t> pick(0, page->keys.size() - 1);
      return std::optional<std::string>(std::move(page->keys[pick(random)]));
    }
    request.cursor = page->next_cursor;
    if (request.cursor == 0) {
      // Ring end: wrap around once to cover [0, start).
      if (wrapped) return std::optional<std::string>();
      wrapped = true;
    } else if (wrapped && request.cursor >= start) {
      return std::optional<std::string>();
    }
  }
}

Status ClusterSession::clear() {
  const CorePtr& core = coordinator_.impl_->core;
  if (Status status = clock_guard(*core); !status.is_ok()) return status;
  TablePtr table = core->replica.tables().current();
  if (!table) return Status::unavailable(std::string(kNoTableMessage));
  const Deadline deadline = deadline_after(core->options.request_timeout_ms);
  const std::vector<Machine>& machines = table->machines();
  auto gather = std::make_shared<Gather>(machines.size(), machines.size());
  std::optional<size_t> local_slot;
  for (size_t i = 0; i < machines.size(); ++i) {
    if (machines[i].id == core->machine_id) {
      local_slot = i;
      continue;
    }
    call_peer(core, table, machines[i].address, {"CAIRN.CLEAR"}, deadline,
              [gather, i](Result<resp::Value> reply) {
                if (reply.is_ok() && !reply->is_error()) {
                  gather->succeed(i);
                } else {
                  gather->fail(i);
                }
              });
  }
  if (local_slot) {
    if (core->replica.clear().is_ok()) {
      gather->succeed(*local_slot);
    } else {
      gather->fail(*local_slot);
    }
  }
  if (!gather->wait_for_needed(deadline)) {
    return Status::unavailable("UNAVAILABLE " + std::to_string(gather->successes()) + " of " +
                               std::to_string(machines.size()) +
                               " machines were cleared; retry FLUSHALL");
  }
  return Status::ok();
}

std::optional<uint64_t> ClusterSession::take_redirect() {
  std::optional<uint64_t> redirect = redirect_;
  redirect_.reset();
  return redirect;
}

}  // namespace cairn::coordinator
