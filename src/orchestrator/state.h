#pragma once
// The orchestrator's durable state (DESIGN.md §6) and its JSON file.
//
// Invariants of a State the service holds (checked by validate_state at load):
//  1. Machine ids are non-zero and unique; machines are sorted by id.
//  2. When `table` is set, it passes topology::validate, and every machine holding a role in it
//     (voting, extra, joining) is a registered machine.
//  3. events and history are bounded (kEventsMax, kHistoryMax): oldest dropped first; event
//     sequence numbers increase strictly.
//
// The file (D/state.json) is one JSON object:
//   {"version": 1, "next_event_seq": 12,
//    "machines": [{"id": 1, "address": "127.0.0.1:7001", "internal_address": "127.0.0.1:7001",
//                  "health": "up|down|dead", "draining": false,
//                  "load": {"ops_per_sec": 0, "bytes": 0, "storage_bytes": 0, "p99_us": 0}}],
//    "table": <routing table JSON> | null,
//    "events": [{"seq": 1, "time_ms": 1700000000000, "message": "..."}],
//    "history": [{"time_ms": 1700000000000, "down": 0}]}
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

struct Load {
  double ops_per_sec = 0;
  uint64_t bytes = 0;
  uint64_t storage_bytes = 0;
  uint64_t p99_us = 0;
  bool operator==(const Load&) const = default;
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

struct State {
  std::vector<MachineRecord> machines;               // sorted by id
  std::optional<topology::RoutingTableSpec> table;   // none until bootstrapped
  uint64_t next_event_seq = 1;
  std::deque<Event> events;
  std::deque<HistorySample> history;

  MachineRecord* find_machine(topology::MachineId id);
  const MachineRecord* find_machine(topology::MachineId id) const;
  // Appends an event (truncated to kEventMessageBytesMax), dropping the oldest past kEventsMax.
  void add_event(int64_t time_ms, std::string message);
  void add_history(int64_t time_ms, uint32_t down);
  // Mean of history[].down; 0 without samples.
  double average_down() const;
  bool operator==(const State&) const = default;
};

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
