#pragma once
// The routing table: which shard owns each token, which machines make up each shard, and the
// state of every machine (docs/architecture.md, docs/cluster.md, docs/operations.md). Pure: no I/O, no clock; time is an argument.
//
// Invariants of every RoutingTable object (checked by validate(); a RoutingTable can only be
// built through functions that run it, so code holding one may rely on them):
//  1. Machine ids and shard ids are non-zero (0 means "none") and unique. Machines are kept
//     sorted by id, shards sorted by id.
//  2. Machine client addresses are unique, internal addresses are unique, both are "host:port".
//  3. Ranges are sorted by start, the first starts at token 0, each ends where the next starts,
//     and the last ends at 0, which stands for 2^64. So every token lies in exactly one range.
//     Every range is non-empty.
//  4. Every range is owned by a shard of the table. A shard may own no range (a new shard
//     before its first migration cuts over).
//  5. Every shard has at most replication_factor voting replicas (fewer while the replacement
//     of a failed one is still joining, or for a new shard whose replicas are all joining;
//     quorums are counted over the voting replicas actually listed). Its voting, extra and
//     joining replicas are machines of the table, with no duplicates, and no machine holds two
//     roles in one shard. No machine in state kSpare belongs to a shard. (A machine may serve
//     several shards: storage keys start with the token, so their data never mixes.)
//  6. A shard's leader, when it has one, is one of its voting replicas. A shard without a leader
//     has lease_expiry_ms 0.
//  7. Counts are bounded: kMachinesMax, kShardsMax, kRangesMax, kReplicationFactorMax.
//
// Tables are immutable values: split_range() and reassign_range() return a new table with the
// next epoch and leave the old one unchanged. Share a table between threads as
// std::shared_ptr<const RoutingTable>; all const methods are safe to call concurrently.
//
// JSON form (to_json / from_json), one object; every field below is required unless marked:
//   {"epoch": 7, "replication_factor": 3,
//    "machines": [{"id": 1, "address": "127.0.0.1:7001", "internal_address": "127.0.0.1:17001",
//                  "state": "up"}, ...],                   // up|down|dead|joining|spare|leaving
//    "shards": [{"id": 1, "replicas": [1, 2, 3],
//                "extras": [], "joining": [],             // optional, default []
//                "leader": 1, "lease_expiry_ms": 0}],     // optional, default 0 (none / never)
//    "ranges": [{"start": "0x0000000000000000", "end": "0x8000000000000000", "shard": 1}, ...]}
// Tokens are written as "0x" + 16 hex digits, because JSON numbers above 2^53 are rounded by
// JavaScript (the dashboard); a plain non-negative integer is also accepted on input. Unknown
// fields are rejected so that a misspelt field is an error rather than silently ignored.

#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"
#include "topology/token.h"
#include "topology/token_range.h"

namespace cairn::topology {

using MachineId = uint64_t;
using ShardId = uint64_t;
using Epoch = uint64_t;

inline constexpr MachineId kNoMachine = 0;
inline constexpr ShardId kNoShard = 0;

inline constexpr size_t kMachinesMax = 4096;
inline constexpr size_t kShardsMax = 4096;
inline constexpr size_t kRangesMax = 65536;
inline constexpr uint32_t kReplicationFactorMax = 15;
inline constexpr size_t kAddressBytesMax = 255;
inline constexpr size_t kTableJsonBytesMax = 16 * 1024 * 1024;

enum class MachineState {
  kUp,       // serving
  kDown,     // heartbeats stopped recently; may come back (hints are kept for it)
  kDead,     // down past the grace period; to be replaced
  kJoining,  // newly attached to a shard, still receiving its data
  kSpare,    // idle standby holding no data
  kLeaving,  // being drained before removal
};

// "up", "down", "dead", "joining", "spare", "leaving".
std::string_view machine_state_name(MachineState state);
// The inverse of machine_state_name (exact, lower case).
Result<MachineState> parse_machine_state(std::string_view name);

struct Machine {
  MachineId id = kNoMachine;
  std::string address;           // host:port that clients connect to
  std::string internal_address;  // host:port for machine-to-machine traffic
  MachineState state = MachineState::kUp;

  bool operator==(const Machine&) const = default;
};

struct Shard {
  ShardId id = kNoShard;
  std::vector<MachineId> replicas;  // voting: count toward R and W
  std::vector<MachineId> extras;    // receive writes, may serve reads, never vote
  std::vector<MachineId> joining;   // receive writes while their data streams in, never vote
  MachineId leader = kNoMachine;    // runs read-modify-write commands (docs/cluster.md)
  uint64_t lease_expiry_ms = 0;     // wall-clock ms; 0 = never expires (hand-pushed tables)

  // Whether the leader may act at `now_ms`. The caller supplies the time to keep this pure.
  bool lease_valid(uint64_t now_ms) const {
    return leader != kNoMachine && (lease_expiry_ms == 0 || now_ms < lease_expiry_ms);
  }
  bool operator==(const Shard&) const = default;
};

// Tokens [start, end); end 0 stands for 2^64 and is allowed only for the last range.
struct Range {
  Token start = 0;
  Token end = 0;
  ShardId shard = kNoShard;

  bool contains(Token token) const { return in_range(token, start, end); }
  // Number of tokens in the range, saturated at 2^64 - 1 for the range covering the whole ring.
  uint64_t size() const { return end == 0 ? (start == 0 ? UINT64_MAX : 0 - start) : end - start; }
  bool operator==(const Range&) const = default;
};

// The raw parts of a table, for building or editing one (e.g. the orchestrator's planner).
struct RoutingTableSpec {
  Epoch epoch = 0;
  uint32_t replication_factor = 0;
  std::vector<Machine> machines;
  std::vector<Shard> shards;
  std::vector<Range> ranges;

  bool operator==(const RoutingTableSpec&) const = default;
};

// Checks invariants 2-7 (and the uniqueness of 1; order of machines and shards is free here).
// The message names the first problem found precisely, e.g. "range 3 [0x10.., 0x20..) starts
// at 0x18.., expected 0x10.. (gap or overlap with the previous range)".
Status validate(const RoutingTableSpec& spec);

// The machines of the shard owning a token, resolved. Pointers point into the table, which
// must outlive the set.
struct ReplicaSet {
  const Shard* shard = nullptr;
  std::vector<const Machine*> voting;
  std::vector<const Machine*> extras;
  std::vector<const Machine*> joining;
};

class RoutingTable {
 public:
  // Validates `spec` and sorts machines and shards by id.
  static Result<RoutingTable> create(RoutingTableSpec spec);

  // An evenly balanced first table at epoch 1: `shard_count` shards with ids 1..shard_count,
  // shard k taking the next `replication_factor` machines of `machines` in order as voting
  // replicas (state kUp) and its first replica as leader with a lease that never expires.
  // Machines left over become kSpare. The ring is cut into shard_count * ranges_per_shard equal
  // ranges dealt round-robin, so each shard holds several ranges spread around the ring and a
  // later move of one range shifts load by a small step. Cuts fall on slot boundaries
  // (topology/token.h) whenever there are no more ranges than slots.
  // Fails if there are fewer than shard_count * replication_factor machines or a limit is hit.
  static Result<RoutingTable> make_initial(std::vector<Machine> machines, uint32_t shard_count,
                                           uint32_t replication_factor, uint32_t ranges_per_shard);

  // Parses and validates. Never throws: malformed input of any kind is an invalid_argument
  // Status naming the offending field.
  static Result<RoutingTable> from_json(const nlohmann::json& json);
  static Result<RoutingTable> from_json_text(std::string_view text);
  nlohmann::json to_json() const;    // callers include <nlohmann/json.hpp> to use the value
  std::string to_json_text() const;  // compact, one line

  Epoch epoch() const { return spec_.epoch; }
  uint32_t replication_factor() const { return spec_.replication_factor; }
  const std::vector<Machine>& machines() const { return spec_.machines; }
  const std::vector<Shard>& shards() const { return spec_.shards; }
  const std::vector<Range>& ranges() const { return spec_.ranges; }
  const RoutingTableSpec& spec() const { return spec_; }

  // nullptr when absent. O(log n).
  const Machine* find_machine(MachineId id) const;
  const Shard* find_shard(ShardId id) const;

  // The range holding `token` (always exists, invariant 3). O(log ranges).
  const Range& range_for_token(Token token) const;
  const Shard& shard_for_token(Token token) const;
  ReplicaSet replicas_for_token(Token token) const;

  // The ranges owned by `shard`, in ring order; empty if it owns none or does not exist.
  std::vector<Range> ranges_of_shard(ShardId shard) const;

  // A new table at epoch + 1 where the range starting at `range_start` is cut in two at
  // `at_token`: [start, at) and [at, end), both owned by the same shard.
  // REQUIRES (else invalid_argument): a range starts at range_start and strictly contains
  // at_token after its start.
  Result<RoutingTable> split_range(Token range_start, Token at_token) const;

  // A new table at epoch + 1 where the range starting at `range_start` is owned by `to_shard`.
  // REQUIRES (else invalid_argument): such a range exists, to_shard exists and is not already
  // the owner.
  Result<RoutingTable> reassign_range(Token range_start, ShardId to_shard) const;

  // A compact multi-line summary for `cairn admin ring`: epoch, shards with their replicas,
  // leader and share of the ring, machines with their states, and the ranges.
  std::string describe() const;

  bool operator==(const RoutingTable& other) const { return spec_ == other.spec_; }

 private:
  explicit RoutingTable(RoutingTableSpec spec) : spec_(std::move(spec)) {}
  // Index in spec_.ranges of the range starting exactly at `start`, or -1.
  int64_t range_index_starting_at(Token start) const;

  RoutingTableSpec spec_;
};

// "0x" followed by 16 hex digits.
std::string format_token(Token token);
// "0x" + hex digits or decimal: how the API, the heartbeat and the CLI accept tokens.
Result<Token> parse_token(std::string_view text);

}  // namespace cairn::topology
