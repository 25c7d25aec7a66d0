#pragma once
// ServerState: what the loops of one running server share, and the ServerControl that command
// handlers see (INFO, CONFIG, CLIENT, SHUTDOWN). Every public method is thread-safe.
//
// Hot-path rule: serving a command touches no lock here. Counters are per loop (LoopStats),
// settings that CONFIG SET changes are atomics (LiveSettings); the client registry's mutex is
// taken only when a client connects or disconnects and by CLIENT LIST / KILL.

#include <atomic>
#include <deque>
#include <unordered_map>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "commands/command.h"
#include "coordinator/cluster.h"
#include "coordinator/keyspace.h"
#include "net/connection.h"
#include "metrics/histogram.h"
#include "metrics/text_format.h"
#include "server/config.h"
#include "server/redis_settings.h"
#include "server/blocked_clients.h"
#include "server/pubsub.h"
#include "server/pubsub_fanout.h"
#include "server/tracking.h"
#include "storage/engine.h"

namespace cairn::server {

class ClientSession;
class CommandRunner;
class ClusterRunner;

// The cluster services INFO reports on (all null on a single machine).
struct ClusterParts {
  coordinator::ClusterCoordinator* coordinator = nullptr;
  replica::Replica* replica = nullptr;
  net::PeerPool* peers = nullptr;
  const ClusterRunner* runner = nullptr;
  // Extra INFO cluster lines (the rebuilder's and migrator's progress), CRLF ended; null: none.
  std::function<std::string()> extra_info;
  // CAIRN.MIGRATE FINISH (Migrator::finish); null: this machine runs no migrations.
  std::function<Status(uint64_t, const std::vector<std::pair<uint64_t, uint64_t>>&, int)>
      migration_finish;
  // Extra /metrics families (lease, migrations, clock, load per range); null: none.
  std::function<void(metrics::PrometheusText&)> extra_metrics;
};

inline constexpr std::string_view kRedisVersion = "7.0.15";  // what clients see (INFO, HELLO)
inline constexpr std::string_view kCairnVersion = "0.1.0";
inline constexpr size_t kOpsSamples = 16;                     // as Redis's STATS_METRIC_SAMPLES
inline constexpr int64_t kOpsSampleIntervalMs = 100;

// Adds to a counter that only one thread writes: a relaxed load and store, no locked
// instruction.
inline void bump(std::atomic<uint64_t>& counter, uint64_t by = 1) {
  counter.store(counter.load(std::memory_order_relaxed) + by, std::memory_order_relaxed);
}

// Per-command counters of one loop (INFO commandstats / latencystats, /metrics).
struct CommandCounters {
  std::atomic<uint64_t> calls{0};
  std::atomic<uint64_t> failed{0};  // replied with an error
  std::atomic<uint64_t> usec{0};
  metrics::LogHistogram latency_us;
};

// Counters of one loop. Written only by that loop's thread, so an increment is a relaxed load and
// store (no locked instruction); read by INFO and /metrics from any thread.
struct alignas(64) LoopStats {
  std::atomic<uint64_t> commands_processed{0};
  std::atomic<uint64_t> net_input_bytes{0};
  std::atomic<uint64_t> net_output_bytes{0};
  // One per entry of ServerState::command_specs(); allocated before the loops start.
  std::unique_ptr<CommandCounters[]> commands;

  void add_commands(uint64_t count) { bump(commands_processed, count); }
  void add_net(uint64_t input, uint64_t output) {
    if (input != 0) bump(net_input_bytes, input);
    if (output != 0) bump(net_output_bytes, output);
  }
  // `index` from ServerState::command_index (kNoCommand: not counted per command).
  void record_command(size_t index, uint64_t usec, bool failed);
};

inline constexpr size_t kNoCommand = SIZE_MAX;
inline constexpr size_t kLatencyHistoryMax = 160;  // as Redis's LATENCY_TS_LEN

// The settings CONFIG SET may change while clients are served.
struct LiveSettings {
  std::atomic<int64_t> maxclients{0};
  std::atomic<int64_t> idle_timeout_ms{0};
  std::atomic<uint64_t> proto_max_bulk_len{0};
  std::atomic<uint64_t> client_query_buffer_limit{0};
  std::atomic<int64_t> slowlog_log_slower_than_us{0};
  std::atomic<int64_t> slowlog_max_len{0};
  std::atomic<int64_t> latency_monitor_threshold_ms{0};
};

// Matches `text` against a Redis glob pattern (* ? [a-z] [^x] \x), as CONFIG GET and KEYS do.
bool glob_match(std::string_view pattern, std::string_view text, bool ignore_case);

class ServerState final : public commands::ServerControl {
 public:
  // `engine` and `keyspace` must outlive this object. `on_shutdown` is called (from any thread,
  // possibly several times) when a client asks the server to stop.
  ServerState(ServerConfig config, size_t loop_count, storage::Engine& engine,
              coordinator::Keyspace& keyspace, std::function<void()> on_shutdown);
  ~ServerState() override;

  // commands::ServerControl.
  std::vector<std::pair<std::string, std::string>> config_get(std::string_view pattern) override;
  Status config_set(std::string_view name, std::string_view value) override;
  std::string info(std::string_view section) override;
  std::vector<commands::SlowlogEntry> slowlog_get(int64_t count) override;
  size_t slowlog_len() override;
  void slowlog_reset() override;
  void note_transaction(TransactionEnd end) override;
  std::vector<commands::LatencyEvent> latency_events() override;
  size_t latency_reset(const std::vector<std::string>& events) override;

  // Every command spec of the table (subcommands included), each with its index into
  // LoopStats::commands; command_index(nullptr or unknown) is kNoCommand.
  const std::vector<const commands::CommandSpec*>& command_specs() const { return specs_; }
  size_t command_index(const commands::CommandSpec* spec) const;
  // After a command ran for `usec` (any thread): feeds SLOWLOG and LATENCY when it was slow
  // enough. Cheap when it was not (two relaxed loads).
  void after_command(const std::vector<std::string>& args, uint64_t usec,
                     const commands::Session& session);
  // The latency of every command served, summed over loops and commands (microseconds).
  metrics::HistogramSnapshot command_latency() const;
  uint64_t net_input_bytes() const;
  uint64_t net_output_bytes() const;
  // The Prometheus text of this machine's counters (/metrics), without the cluster's extras.
  void write_metrics(metrics::PrometheusText& out);
  std::string client_list() override;
  std::string client_info(const commands::Session& session) override;
  int kill_client(uint64_t id) override;
  int unblock_client(uint64_t id, bool error) override;
  std::string requirepass() override;
  void request_shutdown() override;
  std::string version() override;

  // Accepting (the acceptor's thread). admit_client() counts the connection and returns true, or
  // counts a rejection and returns false when maxclients are connected.
  bool admit_client();
  uint64_t next_client_id() { return next_client_id_.fetch_add(1, std::memory_order_relaxed); }

  // Client registry (loop threads). `session` lives as long as `connection`.
  void register_client(const std::shared_ptr<net::Connection>& connection,
                       ClientSession* session);
  void unregister_client(uint64_t id);

  LoopStats& loop_stats(size_t loop) { return loop_stats_[loop]; }
  const LiveSettings& settings() const { return settings_; }
  coordinator::Keyspace& keyspace() { return keyspace_; }
  // The runner of client commands on workers; null when commands run on the loops (single
  // machine). Set once, before the loops start.
  void set_runner(CommandRunner* runner) { runner_ = runner; }
  CommandRunner* runner() const { return runner_; }
  // Cluster mode: set once, before the loops start.
  void set_cluster(ClusterParts parts) { cluster_ = parts; }
  replica::Replica* replica() const { return cluster_.replica; }
  std::string cluster_secret() override;
  Status migration_finish(uint64_t migration,
                          const std::vector<std::pair<uint64_t, uint64_t>>& source_lsns,
                          int timeout_ms) override;
  // Makes the writes served so far durable (a worker calls it before its reply leaves, as a
  // loop's flush does for the commands it ran).
  Status sync_writes() { return engine_.sync(); }
  const commands::CommandTable& table() const { return table_; }
  // The clients waiting in blocking list commands; woken by every list write this machine
  // applies (the engine's field observer, set by the constructor).
  BlockedClients& blocked_clients() { return blocked_clients_; }
  // Pub/sub (docs/pubsub.md): this machine's registry, and in cluster mode the fan-out to the
  // other machines (set once, before the loops start).
  PubSub& pubsub() { return pubsub_; }
  void set_pubsub_fanout(PubSubFanout* fanout) { fanout_ = fanout; }
  bool pubsub_change(const commands::Session& session, commands::PubSubKind kind,
                     std::string_view channel, bool subscribe) override;
  std::vector<std::string> pubsub_subscriptions(const commands::Session& session,
                                                commands::PubSubKind kind) override;
  int64_t publish(commands::PubSubKind kind, std::string_view channel,
                  std::string_view message) override;
  void publish_local(commands::PubSubKind kind, std::string_view channel,
                     std::string_view message) override;
  std::vector<std::string> pubsub_channels(commands::PubSubKind kind,
                                           std::string_view pattern) override;
  int64_t pubsub_numsub(commands::PubSubKind kind, std::string_view channel) override;
  int64_t pubsub_numpat() override;
  uint32_t keyspace_event_flags() override {
    return keyspace_events_.load(std::memory_order_relaxed);
  }
  void notify_keyspace_event(uint32_t event_class, std::string_view event,
                             std::string_view key) override;
  // Client-side caching (docs/tracking.md).
  Tracking& tracking() { return tracking_; }
  bool tracking_active() override { return fanout_ != nullptr || tracking_.active(); }
  void tracking_before_command(const commands::Session& session, const commands::CommandSpec& spec,
                               const std::vector<std::string>& keys) override {
    tracking_.before_command(session, spec, keys);
  }
  void tracking_keys_written(const commands::Session& session,
                             const std::vector<std::string>& keys) override;
  void tracking_flushed(const commands::Session& session) override;
  void client_tracking_command(const commands::Session& session,
                               const std::vector<std::string>& args,
                               resp::ReplyWriter& reply) override {
    tracking_.command(session, args, reply);
  }

  size_t connected_clients() const { return connected_.load(std::memory_order_relaxed); }
  uint64_t total_commands() const;

  void set_port(uint16_t port) { port_.store(port, std::memory_order_relaxed); }
  // Called every kOpsSampleIntervalMs by one thread: feeds instantaneous_ops_per_sec.
  void sample_ops(int64_t now_ms);

 private:
  struct ClientEntry {
    std::weak_ptr<net::Connection> connection;
    ClientSession* session = nullptr;
  };

  std::string section_text(std::string_view section);
  std::string server_section();
  std::string clients_section();
  std::string memory_section();
  std::string persistence_section();
  std::string stats_section();
  std::string replication_section();
  std::string cpu_section();
  std::string cluster_section();
  // Applies the Redis settings that mean something to pub/sub (client-output-buffer-limit,
  // notify-keyspace-events). REQUIRES: config_mutex_ held.
  void apply_pubsub_settings();
  // The connection whose session has `id`, if it is still registered.
  ClientSession* find_session(uint64_t id);
  std::string keyspace_section();
  std::string commandstats_section();
  std::string latencystats_section();
  // Per-command totals summed over loops: (spec index, calls, failed, usec, latency).
  struct CommandTotals {
    size_t index = 0;
    uint64_t calls = 0;
    uint64_t failed = 0;
    uint64_t usec = 0;
    metrics::HistogramSnapshot latency_us;
  };
  std::vector<CommandTotals> command_totals() const;
  void record_slow(const std::vector<std::string>& args, uint64_t usec,
                   const commands::Session& session);
  void record_latency(std::string_view event, uint64_t ms);

  storage::Engine& engine_;
  coordinator::Keyspace& keyspace_;
  BlockedClients blocked_clients_;
  PubSub pubsub_;
  PubSubFanout* fanout_ = nullptr;
  // Queues an invalidation on client `id`'s connection (Tracking::Deliver).
  void deliver_invalidation(uint64_t id, bool redirected,
                            std::shared_ptr<const PubSubMessage> message);
  Tracking tracking_{[this](uint64_t id, bool redirected,
                            std::shared_ptr<const PubSubMessage> message) {
                       deliver_invalidation(id, redirected, std::move(message));
                     },
                     [this](uint64_t id) { return find_session(id) != nullptr; }};
  std::atomic<uint32_t> keyspace_events_{0};
  // "expired" events already sent: key → the expiry they were sent for (bounded; a read of a
  // key that expired reports it each time until compaction purges it).
  std::mutex expired_mutex_;
  std::unordered_map<std::string, int64_t> expired_sent_;
  const commands::CommandTable& table_;
  std::function<void()> on_shutdown_;
  CommandRunner* runner_ = nullptr;
  ClusterParts cluster_;
  const int64_t started_monotonic_ms_;

  std::mutex config_mutex_;
  ServerConfig config_;  // guarded by config_mutex_
  // redis-server 7.0's other parameters, stored for CONFIG GET/SET; guarded by config_mutex_.
  RedisSettings redis_settings_;
  LiveSettings settings_;

  std::unique_ptr<LoopStats[]> loop_stats_;
  const size_t loop_count_;
  std::atomic<uint16_t> port_{0};
  std::atomic<size_t> connected_{0};
  std::atomic<uint64_t> next_client_id_{1};
  std::atomic<uint64_t> total_connections_{0};
  std::atomic<uint64_t> rejected_connections_{0};
  // EXECs by how they ended (INFO stats: cairn_transactions_*).
  std::atomic<uint64_t> transactions_committed_{0};
  std::atomic<uint64_t> transactions_watch_aborted_{0};
  std::atomic<uint64_t> transactions_queue_errors_{0};
  std::atomic<uint64_t> transactions_refused_{0};

  std::vector<const commands::CommandSpec*> specs_;
  std::unordered_map<const commands::CommandSpec*, size_t> spec_index_;

  std::mutex slow_mutex_;  // taken only for a slow command, SLOWLOG and LATENCY
  std::deque<commands::SlowlogEntry> slowlog_;  // newest first; guarded by slow_mutex_
  uint64_t next_slowlog_id_ = 0;                // guarded by slow_mutex_
  std::map<std::string, commands::LatencyEvent, std::less<>> latency_;  // guarded

  std::mutex clients_mutex_;
  std::map<uint64_t, ClientEntry> clients_;  // by id: CLIENT LIST's order; guarded

  // Samples of (time, commands) for instantaneous_ops_per_sec; sample_ops()'s thread only.
  int64_t last_sample_ms_ = 0;
  uint64_t last_sample_commands_ = 0;
  uint64_t ops_samples_[kOpsSamples] = {};
  size_t ops_sample_index_ = 0;
  std::atomic<uint64_t> instantaneous_ops_{0};

  friend class ClientSession;
  void client_closed() { connected_.fetch_sub(1, std::memory_order_relaxed); }
};

}  // namespace cairn::server
