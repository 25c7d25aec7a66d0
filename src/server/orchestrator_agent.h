#pragma once
// OrchestratorAgent: the machine's side of the orchestrator (docs/operations.md), started by a
// server run with --orchestrator HOST:PORT[,HOST:PORT...] (several orchestrators: every call goes
// to the leader, orchestrator_client.h; while none answers the machine keeps its last table).
//
// On its own thread (so no event loop or worker ever waits for the orchestrator), it
//  1. registers: POST /v1/register {"machine_id", "address"}, retried with a growing delay (up
//     to retry_interval_max_ms) while the orchestrator is unreachable or refuses;
//  2. heartbeats every heartbeat_interval_ms (the orchestrator's value from the register answer):
//     POST /v1/heartbeat {"machine_id", "epoch", "load"}; the answer carries the cluster's epoch
//     and the lease length; a 404 (the orchestrator forgot this machine) means register again;
//  3. whenever an answer names an epoch newer than the installed table, fetches GET /v1/table
//     and installs it into the TableHolder (which saves it and fences older requests);
//  4. migrations (docs/migration.md): each heartbeat carries the reports of
//     options.migration_reports, and each answer's "migrations" orders go to
//     options.on_migrations (the Migrator). post() lets the Migrator's driver call the commit and
//     abort routes with the same endpoint and secret.
//
// Lease (self-fencing): lease_valid() is true while the last successful heartbeat was *sent*
// less than lease_ms ago. Counting from the send time, not the answer, keeps this machine's
// lease ending no later than the orchestrator's view of it (the orchestrator counts from when it
// received the heartbeat, and waits lease_ms + a margin before naming another leader).
// The server passes lease_valid() to ClusterCoordinator::set_leader_lease_check().
//
// Threading: start()/stop() from the owning thread; lease_valid() and stats() from any thread.

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/clock_offset.h"
#include "server/repairer.h"
#include "common/status.h"
#include "metrics/range_load.h"
#include "replica/table_holder.h"
#include "server/http_client.h"
#include "server/orchestrator_client.h"
#include "topology/token.h"

namespace cairn::server {

// One active migration as the orchestrator's heartbeat answer orders it (docs/migration.md,
// "Orchestrator API").
struct MigrationOrder {
  uint64_t id = 0;
  topology::Token start = 0;
  topology::Token end = 0;  // 0 = the ring's end
  uint64_t source = 0;      // shard ids
  uint64_t target = 0;
  std::string phase;        // "queued", "staging", "catchup", "cutover", "cleanup", ...
  bool paused = false;
  uint64_t max_rate = 0;    // bytes/s per target machine; 0 = unlimited
  uint64_t attempt = 0;
  uint64_t driver = 0;      // machine id that drives the cutover of `attempt`
  uint64_t commit_epoch = 0;

  bool operator==(const MigrationOrder&) const = default;
};

// What this machine reports about one migration in each heartbeat.
struct MigrationReport {
  uint64_t id = 0;
  bool staged = false;
  bool ready = false;
  uint64_t keys = 0;
  uint64_t bytes = 0;
  uint64_t lag = 0;
  bool cleaned = false;
  int64_t fence_ms = -1;  // < 0: not sent (no cutover finished since the last report)
  // Target: milliseconds from its first HOLD to every voting source's range scanned and flushed
  // (< 0: not staged yet, not sent).
  int64_t copy_ms = -1;
};

// Bounds what a malformed or hostile answer can make this machine hold.
inline constexpr size_t kMigrationOrdersMax = 1024;

// Parses the "migrations" array of a heartbeat answer (absent: none). Orders that do not parse
// are skipped (and logged); tokens may be "0x..." strings or integers.
std::vector<MigrationOrder> parse_migration_orders(const std::string& answer_json);

// What the machine reports about itself in each heartbeat ("load"), read on the agent's thread.
// Rates and percentiles are over the last metrics::kLoadWindowMs (server/load_reporter.h), so a
// burst still shows for a while after it ended.
struct MachineLoadCounters {
  double ops_per_sec = 0;      // commands served per second
  uint64_t bytes = 0;          // live data bytes of this machine (RocksDB estimate)
  uint64_t storage_bytes = 0;  // bytes the data takes on disk (RocksDB estimate)
  uint64_t p99_us = 0;         // of the commands served; 0 without any
  // The ranges this machine holds ("load.ranges"; metrics/range_load.h is the codec).
  std::vector<metrics::RangeLoadReport> ranges;
};

struct OrchestratorAgentOptions {
  // "host:port[,host:port...]": the orchestrators' HTTP APIs; calls go to the one that leads
  // (server/orchestrator_client.h).
  std::string orchestrator;
  std::string cluster_secret;
  uint64_t machine_id = 0;
  std::string address;  // "host:port" where clients and other machines reach this machine
  int request_timeout_ms = 1000;     // each HTTP call
  int heartbeat_interval_ms = 250;   // until the register answer says otherwise
  int retry_interval_max_ms = 2000;  // the longest wait between failed registrations
  int lease_ms = 2000;               // until a heartbeat answer says otherwise
  std::function<MachineLoadCounters()> load;  // null: zeros
  std::function<int64_t()> monotonic_ms;      // null: cairn::monotonic_ms (tests inject)
  std::function<int64_t()> wall_ms;           // null: cairn::wall_clock_ms (tests inject)
  // Clock offset (docs/operations.md "Clock offset"): each heartbeat answer's "time_ms" (the
  // orchestrator's wall clock) gives a sample of this machine's offset; past this bound the
  // clock is out of bound (common/clock_offset.h). 0: no bound.
  int64_t max_clock_offset_ms = 500;
  // Called on the agent's thread after every sample with the estimate; null: ignored.
  std::function<void(const ClockOffset&)> on_clock;
  // The shard whose rebuild is complete (Rebuilder::rebuilt_shard), sent in each heartbeat as
  // "rebuilt_shard" when non-zero; null: never sent.
  std::function<uint64_t()> rebuilt_shard;
  // Called on the agent's thread with every heartbeat answer's orders (possibly empty) and the
  // cluster epoch the same answer named; null: ignored.
  std::function<void(std::vector<MigrationOrder>, uint64_t epoch)> on_migrations;
  // The reports sent in each heartbeat as "migrations"; null or empty: not sent.
  std::function<std::vector<MigrationReport>()> migration_reports;
  // Anti-entropy repair per shard (server/repairer.h), sent in each heartbeat as "repair";
  // null or empty: not sent.
  std::function<std::vector<ShardRepairStatus>()> repair_status;
};

inline constexpr int kHeartbeatIntervalMsMin = 10;
inline constexpr int kHeartbeatIntervalMsMax = 60'000;

struct OrchestratorAgentStats {
  bool registered = false;
  uint64_t registrations = 0;       // successful
  uint64_t heartbeats = 0;          // answered with 200
  uint64_t failed_calls = 0;        // unreachable, timed out or refused
  uint64_t tables_installed = 0;
  uint64_t orchestrator_epoch = 0;  // the latest epoch an answer named
  std::string state;                // this machine's state in the latest heartbeat answer
  bool clock_measured = false;      // a heartbeat answer carried the orchestrator's time
  bool clock_in_bound = true;
  int64_t clock_offset_ms = 0;      // orchestrator's clock minus ours (negative: ours ahead)
  int64_t clock_error_ms = 0;       // half the round trip of that sample
};

class OrchestratorAgent {
 public:
  // Checks the options (addresses parse, ids non-zero). `tables` must outlive the agent.
  static Result<std::unique_ptr<OrchestratorAgent>> create(OrchestratorAgentOptions options,
                                                           replica::TableHolder& tables);
  ~OrchestratorAgent();  // stop()
  OrchestratorAgent(const OrchestratorAgent&) = delete;
  OrchestratorAgent& operator=(const OrchestratorAgent&) = delete;

  void start();  // starts the thread; registration begins at once
  // Stops the thread, waiting at most for the call in flight (request_timeout_ms). Idempotent.
  void stop();

  bool lease_valid() const;
  OrchestratorAgentStats stats() const;

  // POSTs `body` (JSON) to `target` on the orchestrator with the cluster secret and returns the
  // response whatever its status. Any thread; blocks at most request_timeout_ms.
  Result<HttpResponse> post(const std::string& target, std::string body) const;

 private:
  OrchestratorAgent(OrchestratorAgentOptions options, std::vector<HttpEndpoint> endpoints,
                    replica::TableHolder& tables);
  void run();
  // Each returns the time to wait before the next step, in ms.
  int register_once();
  int heartbeat_once();
  void fetch_table_if_behind(uint64_t epoch);
  Result<HttpResponse> call(const char* method, const char* target, std::string body);
  std::string load_json();
  bool wait_ms(int ms);  // false once stopping
  int64_t now_ms() const;
  int64_t wall_now_ms() const;
  // Takes one clock sample (a heartbeat answer's "time_ms").
  void observe_clock(const ClockOffsetSample& sample);

  const OrchestratorAgentOptions options_;
  const OrchestratorClient client_;  // follows the leader among the listed orchestrators
  replica::TableHolder& tables_;

  // The agent thread only.
  int retry_delay_ms_ = 0;
  bool unreachable_logged_ = false;
  ClockOffset clock_;

  std::atomic<int> heartbeat_interval_ms_;
  std::atomic<int> lease_ms_;
  std::atomic<int64_t> last_heartbeat_sent_ms_{0};
  std::atomic<bool> heartbeat_succeeded_{false};

  mutable std::mutex mu_;
  std::condition_variable wake_;
  bool stopping_ = false;          // guarded by mu_
  OrchestratorAgentStats stats_;   // guarded by mu_
  std::thread thread_;
};

}  // namespace cairn::server
