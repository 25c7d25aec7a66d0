#pragma once
// The orchestrator service (docs/operations.md): membership (register, heartbeat, drain, remove),
// failure detection, the first table (bootstrap), plans applied as new table epochs, leaders
// named under the lease rule, events and the down-machines history. The HTTP API (api.h) is a
// thin translation onto these methods.
//
// Time comes from a Clock so tests run the service under a fake clock. All public methods are
// thread-safe (one mutex); in `cairn orchestrator` they are all called from the one io thread.
//
// Leases: tables name each shard's leader with lease_expiry_ms 0; the lease is enforced by time
// instead: a machine acts as leader only while its last successful heartbeat was sent less than
// lease_ms ago, and the planner names a new leader only once the service tells it the old one's
// lease expired (MachineInfo::lease_expired): silent for lease_ms + kLeaseMarginMs (a margin
// for clock-rate differences). A draining machine's lease is not renewed: its heartbeats are
// answered with lease_ms kDrainingLeaseMs, and its lease counts as expired lease_ms +
// kLeaseMarginMs after the drain began. So two machines never both believe they lead a shard.
//
// Migrations (docs/migration.md): the state machine queued → staging → catchup → cutover →
// cleanup → done runs in tick(); machines report progress with their heartbeats and are
// answered with every active migration (MigrationOrder). The only ownership change is
// commit_migration, a compare-and-swap on the table epoch. Pure planning of moves is in
// balancer.h.
//
// Every decision (a table epoch, a migration's phase, commit or abort, a split, a drain, a
// registration) is written to the state file before the method returns, and is acknowledged
// only once written: if the write fails, the decision is rolled back under the same lock (the
// state returns to what was last written, heartbeat times and health aside), the method that
// made it answers an error (unavailable: "could not store the orchestrator state"), and an event
// says so. Nothing computed after the failed write is ever shown to a machine, so an epoch is
// never published before it is on disk, and after a crash the same epoch can never come back
// with other contents. Decisions the service makes by itself (tick) are made again at the next
// tick, and are written once the disk takes writes again.
//
// With a StateStore instead (etcd, docs/orchestrator-ha.md) a failed write is also final: the
// write may have been refused because this orchestrator no longer leads, so besides the roll
// back the service is poisoned (poisoned() turns true under the same lock as the failed write,
// before the method returns). The API answers 503 for a poisoned service and the owner drops it.

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "common/status.h"
#include "orchestrator/capacity.h"
#include "orchestrator/failure_detector.h"
#include "orchestrator/hot_shards.h"
#include "orchestrator/load_book.h"
#include "orchestrator/planner.h"
#include "orchestrator/state.h"

namespace cairn::orchestrator {

inline constexpr int64_t kLeaseMarginMs = 500;
// The lease a draining machine is granted: so short that it can no longer act as leader.
inline constexpr int64_t kDrainingLeaseMs = 1;
inline constexpr int64_t kHistorySampleIntervalMs = 1000;
// History samples alone are written at most this often (other changes write at once).
inline constexpr int64_t kHistorySaveIntervalMs = 10000;
inline constexpr size_t kEventsPageMax = 1000;
// A cutover the driver neither commits nor aborts within this long is aborted (the epoch bump
// lifts the fences: clients must not wait for a driver that died).
inline constexpr int64_t kCutoverTimeoutMs = 5000;
// Rates are computed over report intervals at least this long.
inline constexpr int64_t kRateIntervalMs = 1000;
inline constexpr uint64_t kDefaultMigrationMaxRate = uint64_t{64} << 20;

class Clock {
 public:
  virtual ~Clock() = default;
  virtual int64_t monotonic_ms() = 0;  // failure detection and leases
  virtual int64_t wall_ms() = 0;       // timestamps shown to people
};

// CLOCK_MONOTONIC / CLOCK_REALTIME. Lives for the whole program.
Clock& system_clock();

// The server calls Service::tick() this often.
inline constexpr int64_t kTickIntervalMs = 100;

// Where a Service keeps its state when it is not a local file (orchestrator/etcd_store.h).
class StateStore {
 public:
  virtual ~StateStore() = default;
  // The stored state; not_found when nothing was stored yet.
  virtual Result<State> load() = 0;
  // Stores `state` whole. Any error means it may not be stored (and may never be).
  virtual Status save(const State& state) = 0;
};

struct ServiceSettings {
  uint32_t replication_factor = 3;
  uint32_t initial_shards = 2;
  uint32_t ranges_per_shard = 8;
  uint32_t min_spares = 1;
  uint32_t extras_per_shard_max = 1;
  int64_t down_after_ms = 1500;
  int64_t dead_after_ms = 5000;
  int64_t lease_ms = 2000;
  int64_t heartbeat_interval_ms = 250;
  // Two ticks further apart than this mean this process itself stalled (an overloaded machine,
  // a slow fsync of state.json, a paused process): the gap is not counted as the machines'
  // silence, since their heartbeats sat unread meanwhile. 0 turns the credit off.
  int64_t self_stall_ms = 1000;
  // The balancer queues migrations whenever none is active (balancer.h).
  bool auto_rebalance = true;
  // Bytes/s per target machine for migrations whose own max_rate is 0.
  uint64_t migration_max_rate = kDefaultMigrationMaxRate;
  // Hot shard detection and split by load (hot_shards.h), run once a second.
  HotSettings hot;
  // Budgets of one machine for capacity planning (capacity.h).
  CapacitySettings capacity;
  std::string state_path;  // empty: nothing is persisted (tests)
  // Writes the state file (null: save_state). Tests pass one that fails like a full disk.
  std::function<Status(const std::string& path, const State& state)> save_file;
  // When set, the state is loaded from and saved to it instead of state_path (see the header
  // comment: a failed save poisons the service).
  std::shared_ptr<StateStore> store;
  // Added to every machine's grace period when the service opens: a new leader of several
  // orchestrators waits one orchestrator lease longer, the time machines may need to find it
  // (docs/orchestrator-ha.md). 0 for the file store.
  int64_t takeover_grace_ms = 0;
};

// Checks ranges and relations between settings; the message names the offending one.
Status validate_settings(const ServiceSettings& settings);

struct RegisterReply {
  topology::MachineId machine_id = topology::kNoMachine;
  topology::Epoch epoch = 0;
};

// What a machine reports about one migration in its heartbeat (all optional on the wire).
struct MigrationReport {
  uint64_t id = 0;
  bool staged = false;   // target: copied the range from every voting source replica
  bool ready = false;    // target: caught up (lag small on every source)
  uint64_t keys = 0;     // target: keys copied so far
  uint64_t bytes = 0;    // target: bytes copied so far
  uint64_t lag = 0;      // target: WAL records behind, max over sources
  bool cleaned = false;  // source: deleted the range after the commit
  // driver: how long its last cutover fenced the range; sent once per cutover (absent: none)
  std::optional<uint64_t> fence_ms = std::nullopt;
  // target: how long its staging took, first HOLD to every source scanned (absent: not staged)
  std::optional<uint64_t> copy_ms = std::nullopt;
};

// One active migration, as the heartbeat answer carries it.
struct MigrationOrder {
  uint64_t id = 0;
  topology::Token start = 0;
  topology::Token end = 0;
  topology::ShardId source = topology::kNoShard;
  topology::ShardId target = topology::kNoShard;
  MigrationPhase phase = MigrationPhase::kQueued;
  bool paused = false;
  uint64_t max_rate = 0;  // effective: the settings' default when the migration's own is 0
  uint32_t attempt = 0;
  topology::MachineId driver = topology::kNoMachine;
  topology::Epoch commit_epoch = 0;
  bool operator==(const MigrationOrder&) const = default;
};

struct HeartbeatReply {
  topology::Epoch epoch = 0;
  std::string state;  // the machine's state name (topology::machine_state_name)
  int64_t lease_ms = 0;  // the lease this answer grants (kDrainingLeaseMs when draining)
  int64_t time_ms = 0;   // the orchestrator's wall clock: the machine measures its offset by it
  std::vector<MigrationOrder> migrations;  // every migration not done or cancelled
};

// The answer to split/move: the migrations queued, and what to tell the operator.
struct MigrationsCreated {
  std::vector<uint64_t> ids;
  topology::ShardId new_shard = topology::kNoShard;  // split only
  std::string message;
};

class Service {
 public:
  // Loads settings.state_path if it exists (a corrupt file is an error: never start afresh
  // silently). `clock` must outlive the service.
  static Result<std::unique_ptr<Service>> open(ServiceSettings settings, Clock* clock);
  // A read-only view of `state` (a follower's, docs/orchestrator-ha.md): nothing is loaded or
  // saved and no event is added. Only the read views (table_json, status_json...) may be called.
  static std::unique_ptr<Service> view(ServiceSettings settings, Clock* clock, State state);

  // True once a save to settings.store failed (see the header comment). Never false again.
  bool poisoned() const;

  // A machine announces itself. machine_id 0 asks for a new id. Errors: invalid_argument (bad
  // address), busy (the address belongs to another machine that holds a role: 409).
  Result<RegisterReply> register_machine(topology::MachineId machine_id, std::string address,
                                         std::string internal_address);
  // not_found for an unknown machine (it must register again). `rebuilt_shard` (kNoShard: none)
  // says the machine finished copying that shard's data (server/rebuilder.h): if it is still
  // joining that shard and the shard has fewer than RF voting replicas, a new epoch makes it a
  // voting replica.
  // `ranges`: the machine's load per range (load_book.h).
  Result<HeartbeatReply> heartbeat(topology::MachineId machine_id, topology::Epoch machine_epoch,
                                   const Load& load,
                                   topology::ShardId rebuilt_shard = topology::kNoShard,
                                   const std::vector<MigrationReport>& migrations = {},
                                   std::vector<metrics::RangeLoadReport> ranges = {},
                                   const ClockReport& clock = {},
                                   std::vector<RepairReport> repair = {});
  // The operator takes a machine out: its roles are handed over, then it is released.
  Status drain(topology::MachineId machine_id);
  // Forgets a machine. busy (409) while it still holds a role in the table: drain it first, or
  // wait until it is dead and replaced.
  Status remove(topology::MachineId machine_id);

  // Operator migrations (docs/migration.md). Errors: invalid_argument (400: unknown shard,
  // range too small, bad range), busy (409: not enough free machines, overlaps a migration).
  // split: a new shard from RF free machines (spares first, then extras), and migrations moving
  // half of `shard`'s token span to it (or, with `at`, its span from `at` on, in ring order).
  Result<MigrationsCreated> split(topology::ShardId shard, std::optional<topology::Token> at,
                                  uint64_t max_rate);
  // move: [start, end) must lie inside one table range (no end: the range starting at start).
  Result<MigrationsCreated> move(topology::Token start, std::optional<topology::Token> end,
                                 topology::ShardId to, uint64_t max_rate);
  // not_found for an unknown migration; busy when its phase does not allow it.
  Status pause_migration(uint64_t id);
  Status resume_migration(uint64_t id);
  Status cancel_migration(uint64_t id);
  Status set_migration_rate(uint64_t id, uint64_t max_rate);
  // The driver's commit: accepted only in cutover, for the current attempt, without a cancel
  // request, and while the table is still at `epoch`; returns the new table's JSON. Else busy
  // with the reason.
  Result<nlohmann::json> commit_migration(uint64_t id, uint32_t attempt, topology::Epoch epoch);
  // The driver gives up an attempt: the epoch is bumped (lifting the fences), back to catchup.
  Status abort_migration(uint64_t id, uint32_t attempt, std::string error);
  // Every migration (active and finished) with computed keys/bytes/lag/rate/ETA.
  nlohmann::json migrations_json() const;

  // Runs failure detection, history sampling, and reconciliation (bootstrap, plan, leaders).
  // Called every 100 ms by the server; tests call it after advancing their clock.
  void tick();

  // Read views for the API, as JSON (formats in orch.md / api.h). table_json is null before
  // bootstrap.
  nlohmann::json table_json() const;
  nlohmann::json status_json() const;
  nlohmann::json machines_json() const;
  nlohmann::json shards_json() const;
  // GET /v1/repair: per shard, when its replicas were last fully compared and what repair fixed
  // (docs/cluster.md "Anti-entropy repair").
  nlohmann::json repair_json() const;
  nlohmann::json ring_json() const;
  nlohmann::json history_json() const;
  nlohmann::json events_json(uint64_t since) const;  // seq > since, at most kEventsPageMax
  // GET /v1/load: the load per shard and range (load_book.h); with the histories if asked.
  // "hot": the hot shards, hot keys and pinned ranges as the last observation saw them.
  nlohmann::json load_json(bool history) const;
  // GET /v1/capacity: growth per shard and cluster, days to the budgets, machines to add
  // (capacity.h), from the load history.
  nlohmann::json capacity_json() const;
  // GET /metrics: the Prometheus text of the cluster as this orchestrator sees it.
  std::string metrics_text() const;

  topology::Epoch epoch() const;
  State snapshot() const;  // a copy, for tests
  const ServiceSettings& settings() const { return settings_; }

 private:
  Service(ServiceSettings settings, Clock* clock, State state);

  // All REQUIRE mu_ held.
  void add_event(std::string message);
  void credit_own_stall(int64_t now);
  void reconcile();
  void maybe_bootstrap();
  void run_planner();
  // Moves `machine` from `shard`'s joining to its voting replicas when that is allowed.
  void promote_rebuilt(topology::MachineId machine, topology::ShardId shard);
  // Installs `next` as epoch + 1 if it differs from the table (epochs aside).
  void install(topology::RoutingTableSpec next, const std::string& reason);
  std::vector<MachineInfo> planner_machines() const;
  topology::MachineState derived_state(const MachineRecord& machine,
                                       const topology::RoutingTableSpec* table) const;
  // Writes the state if it changed (or `force`). On failure rolls the state back to what was
  // last written (refuse_unsaved) and returns the error, which a method answering a request
  // passes on: its decision is refused.
  Status persist(bool force);
  Status refuse_unsaved(const Status& failure);
  // persist() for decisions nobody waits for (tick, heartbeat reports): a refused one is made
  // again at the next tick.
  void persist_own_decisions();
  uint32_t machines_down() const;
  uint32_t spares_target_now() const;
  // Migrations; all REQUIRE mu_ held.
  void advance_migrations();
  void apply_report(topology::MachineId machine, const MigrationReport& report);
  void set_phase(Migration& m, MigrationPhase phase, const std::string& detail);
  void abort_attempt(Migration& m, const std::string& error);
  void bump_epoch(const std::string& reason);
  bool start_migration(Migration& m);
  void run_balancer();
  // Hot shards (service_hot.cc); REQUIRE mu_ held.
  void run_hot_shards(int64_t now);
  void report_hot(const HotDecision& decision);
  Status start_hot_split(const HotSplit& split);
  nlohmann::json hot_json() const;
  // Up machines without a role (spares) first, then reclaimable extras, by id.
  std::vector<topology::MachineId> free_machines() const;
  // A new shard from RF free machines and one migration of `kind` per piece to it.
  Result<MigrationsCreated> split_to_new_shard(
      topology::ShardId shard,
      const std::vector<std::pair<topology::Token, topology::Token>>& pieces, uint64_t max_rate,
      const std::string& kind);
  Result<uint64_t> queue_migration(const std::string& kind, topology::Token start,
                                   topology::Token end, topology::ShardId source,
                                   topology::ShardId target, uint64_t max_rate);
  std::vector<topology::MachineId> target_machines(const Migration& m) const;
  const Migration* shard_busy(const Migration& m) const;

  const ServiceSettings settings_;
  Clock* const clock_;
  mutable std::mutex mu_;
  State state_;
  bool dirty_ = false;
  bool poisoned_ = false;
  // The state as last written (file or store): what a failed write rolls back to.
  State durable_;
  bool save_failing_ = false;  // the last write failed: one event when it starts and when it ends
  int64_t last_history_ms_ = 0;
  LoadBook load_book_;          // guarded by mu_; in memory only
  // Hot shards, guarded by mu_ and in memory only: after a restart (or on a new leader) the
  // window and the cool-downs start afresh.
  HotPolicy hot_policy_;
  HotDecision last_hot_;
  std::vector<std::string> hot_reported_;  // what the events already said, to say it once
  int64_t last_load_sample_ms_ = 0;
  int64_t last_save_ms_ = 0;
  int64_t last_tick_ms_ = 0;  // 0: no tick yet
  std::string last_plan_error_;  // logged once, not every tick
};

}  // namespace cairn::orchestrator
