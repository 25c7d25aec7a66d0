#pragma once
// The orchestrator's durable state (docs/operations.md) and its JSON file.
//
// Invariants of a State the service holds (checked by validate_state at load):
//  1. Machine ids are non-zero and unique; machines are sorted by id.
//  2. When `table` is set, it passes topology::validate, and every machine holding a role in it
//     (voting, extra, joining) is a registered machine.
//  3. events and history are bounded (kEventsMax, kHistoryMax): oldest dropped first; event
//     sequence numbers increase strictly.
//  4. Migrations have unique ids below next_migration_id, valid non-empty ranges, source !=
//     target, and no two active (not done/cancelled) migrations overlap; at most
//     kFinishedMigrationsMax finished ones are kept.
//
// The file (D/state.json) is one JSON object:
//   {"version": 1, "next_event_seq": 12,
//    "machines": [{"id": 1, "address": "127.0.0.1:7001", "internal_address": "127.0.0.1:7001",
//                  "health": "up|down|dead", "draining": false,
//                  "load": {"ops_per_sec": 0, "bytes": 0, "storage_bytes": 0, "p99_us": 0}}],
//    "table": <routing table JSON> | null,
//    "events": [{"seq": 1, "time_ms": 1700000000000, "message": "..."}],
//    "history": [{"time_ms": 1700000000000, "down": 0}],
//    "next_migration_id": 4,                              // optional (older files), default 1
//    "migrations": [<migration_to_json>, ...]}            // optional (older files), default []
// Migrations (docs/migration.md): every migration not yet done or cancelled, plus the last
// kFinishedMigrationsMax finished ones, sorted by id. Their monotonic cutover start is not
// persisted: after a restart a migration in cutover gets a fresh kCutoverTimeoutMs.
// Heartbeat times are monotonic and not persisted: after a restart every machine is given a
// fresh grace period (it keeps serving with its last table while the orchestrator is away).
//
// save_state writes atomically: a temporary file in the same directory, fsync, rename over the
// old file, fsync of the directory. A crash leaves either the old or the new file, never a mix.

#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "common/status.h"
#include "orchestrator/planner.h"
#include "topology/routing_table.h"

namespace cairn::orchestrator {

inline constexpr size_t kEventsMax = 10000;
inline constexpr size_t kHistoryMax = 10000;
inline constexpr size_t kEventMessageBytesMax = 1024;
inline constexpr size_t kStateFileBytesMax = 64 * 1024 * 1024;
inline constexpr size_t kFinishedMigrationsMax = 100;
inline constexpr size_t kActiveMigrationsMax = 4096;
inline constexpr size_t kFenceHistoryMax = 1000;
inline constexpr size_t kMigrationErrorBytesMax = 512;

struct Load {
  double ops_per_sec = 0;
  uint64_t bytes = 0;
  uint64_t storage_bytes = 0;
  uint64_t p99_us = 0;
  bool operator==(const Load&) const = default;
};

// A machine's clock as it measured it against the orchestrator's (common/clock_offset.h),
// reported in each heartbeat. Not persisted: the next heartbeat brings it again.
struct ClockReport {
  bool measured = false;
  int64_t offset_ms = 0;  // the orchestrator's clock minus the machine's (negative: it is ahead)
  int64_t error_ms = 0;
  bool in_bound = true;   // false: the machine coordinates no writes
  bool operator==(const ClockReport&) const = default;
};

// What a machine's anti-entropy repair reports for one shard it votes in (server/repairer.h),
// in each heartbeat. Not persisted.
struct RepairReport {
  topology::ShardId shard = topology::kNoShard;
  int64_t last_full_ms = 0;  // wall ms when its last complete pass started; 0: never
  uint64_t passes = 0;
  uint64_t complete_passes = 0;
  uint64_t cells_fixed = 0;
  uint64_t last_pass_fixed = 0;
  bool running = false;
  double progress = 0;
  std::string problem;  // why its last pass was incomplete ("" if complete)
  bool operator==(const RepairReport&) const = default;
};

struct MachineRecord {
  topology::MachineId id = topology::kNoMachine;
  std::string address;
  std::string internal_address;
  Health health = Health::kUp;
  bool draining = false;
  Load load;
  // Monotonic ms of the last register or heartbeat; not persisted (see the header comment).
  int64_t last_heartbeat_ms = 0;
  // Monotonic ms when the drain began (not persisted: set to the load time after a restart).
  // Heartbeats answered after it no longer renew the machine's leader lease.
  int64_t drain_started_ms = 0;
  ClockReport clock;  // not persisted
  std::vector<RepairReport> repair;  // not persisted
  bool operator==(const MachineRecord&) const = default;
};

struct Event {
  uint64_t seq = 0;
  int64_t time_ms = 0;  // wall clock
  std::string message;
  bool operator==(const Event&) const = default;
};

struct HistorySample {
  int64_t time_ms = 0;  // wall clock
  uint32_t down = 0;    // machines down or dead at that time
  bool operator==(const HistorySample&) const = default;
};

enum class MigrationPhase { kQueued, kStaging, kCatchup, kCutover, kCleanup, kDone, kCancelled };

std::string_view migration_phase_name(MigrationPhase phase);
Result<MigrationPhase> parse_migration_phase(std::string_view name);

// One target machine's copy, as its heartbeats report it (the latest report wins: a machine
// that restarted reports staged=false again and simply stages again).
struct TargetProgress {
  topology::MachineId machine = topology::kNoMachine;
  bool staged = false;
  bool ready = false;
  uint64_t keys = 0;
  uint64_t bytes = 0;
  uint64_t lag = 0;    // WAL records behind (max over sources)
  double rate = 0;     // bytes/s, from deltas of `bytes` between reports
  uint64_t copy_ms = 0;  // how long its staging took, as it measured (0: not staged yet)
  // For the rate: the bytes and monotonic time of the report the rate was last computed at.
  // Not persisted (monotonic time means nothing after a restart).
  uint64_t rate_bytes = 0;
  int64_t rate_ms = 0;
  bool operator==(const TargetProgress&) const = default;
};

struct Migration {
  uint64_t id = 0;
  std::string kind;  // "rebalance" | "split" | "move" | "hot-split" (hot_shards.h)
  topology::Token start = 0;
  topology::Token end = 0;  // 0 = the end of the ring
  topology::ShardId source = topology::kNoShard;
  topology::ShardId target = topology::kNoShard;
  MigrationPhase phase = MigrationPhase::kQueued;
  bool paused = false;
  uint64_t max_rate = 0;  // bytes/s per target machine; 0 = ServiceSettings default
  int64_t created_ms = 0;        // wall
  int64_t updated_ms = 0;        // wall
  int64_t phase_started_ms = 0;  // wall
  uint32_t attempt = 0;          // cutover attempts so far
  topology::MachineId driver = topology::kNoMachine;
  topology::Epoch commit_epoch = 0;
  int64_t cutover_started_ms = 0;  // monotonic; not persisted
  uint64_t fence_ms_last = 0;
  uint64_t fence_ms_max = 0;
  uint32_t fence_attempt = 0;  // the attempt whose fence time is fence_history.back()
  std::deque<uint64_t> fence_history;  // last kFenceHistoryMax fence times (ms), one per attempt
  std::string error;  // the last error (aborted attempt, cancelled because ...)
  bool cancel_requested = false;
  std::vector<TargetProgress> progress;  // one per target machine that reported
  std::vector<topology::MachineId> sources_at_commit;
  std::vector<topology::MachineId> cleaned;  // of sources_at_commit

  bool finished() const {
    return phase == MigrationPhase::kDone || phase == MigrationPhase::kCancelled;
  }
  // [start, end) overlaps [other_start, other_end) (end 0 = the end of the ring).
  bool overlaps(topology::Token other_start, topology::Token other_end) const;
  // The range as text: "[0x..., 0x...)".
  std::string range_text() const;
  TargetProgress* find_progress(topology::MachineId machine);
  bool operator==(const Migration&) const = default;
};

nlohmann::json migration_to_json(const Migration& migration);

struct State {
  std::vector<MachineRecord> machines;               // sorted by id
  std::optional<topology::RoutingTableSpec> table;   // none until bootstrapped
  uint64_t next_event_seq = 1;
  std::deque<Event> events;
  std::deque<HistorySample> history;
  uint64_t next_migration_id = 1;
  std::vector<Migration> migrations;  // sorted by id

  MachineRecord* find_machine(topology::MachineId id);
  const MachineRecord* find_machine(topology::MachineId id) const;
  // Appends an event (truncated to kEventMessageBytesMax), dropping the oldest past kEventsMax.
  void add_event(int64_t time_ms, std::string message);
  void add_history(int64_t time_ms, uint32_t down);
  // Mean of history[].down; 0 without samples.
  double average_down() const;
  Migration* find_migration(uint64_t id);
  // Drops the oldest finished migrations past kFinishedMigrationsMax.
  void prune_migrations();
  bool operator==(const State&) const = default;
};

// "0x" + hex digits or decimal, as the API and the CLI accept tokens (topology/routing_table.h).
using topology::parse_token;

std::string_view health_name(Health health);
Result<Health> parse_health(std::string_view name);

nlohmann::json state_to_json(const State& state);
// Never throws: malformed input is an invalid_argument/corruption Status naming the field.
Result<State> state_from_json(const nlohmann::json& json);
Status validate_state(const State& state);

// Atomic write of `state` to `path` (see the header comment).
Status save_state(const std::string& path, const State& state);
// Reads `path`. not_found if it does not exist; corruption (naming the file and the problem)
// if it exists but cannot be parsed or validated: the orchestrator refuses to start rather than
// forget the cluster.
Result<State> load_state(const std::string& path);

}  // namespace cairn::orchestrator
