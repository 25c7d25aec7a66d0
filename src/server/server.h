#pragma once
// The composition root of `cairn server` (docs/architecture.md): builds the services of one machine in
// dependency order and stops them in reverse.
//
//   start: config → data dir + machine id → Engine → HybridClock → [cluster mode: TableHolder
//          (+ --table) → Replica → PeerPool → ClusterCoordinator] → LocalKeyspace → ServerState
//          → [worker pool + runner] → event loops → listener → [--orchestrator: Rebuilder,
//          OrchestratorAgent] → [cluster mode: Migrator]
//   stop:  listener → migrator → rebuilder → orchestrator agent → workers → connections and loops →
//          coordinator → final sync → the rest in reverse order of construction
//
// With --orchestrator the machine registers and heartbeats on the agent's thread, follows the
// orchestrator's tables and acts as a shard leader only while its lease is valid (docs/operations.md);
// when it joins a shard as a replacement, the rebuilder copies the shard's data to it and the
// agent's heartbeat then asks for its vote (server/rebuilder.h). The migrator acts on the
// migrations the heartbeat answers order (server/migrator.h, docs/migration.md).
// Without --table it starts with the table it saved when it last ran, or none.
//
// Cluster mode (config.cluster_secret set): client commands run on the worker pool through a
// ClusterRunner; other machines' CAIRN.* commands run on the loops (docs/formats.md).
//
// Tests and `cairn dev` embed servers through this class.

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "common/hlc.h"
#include "common/status.h"
#include "coordinator/cluster.h"
#include "coordinator/local_keyspace.h"
#include "metrics/range_load.h"
#include "metrics/text_format.h"
#include "net/event_loops.h"
#include "net/http_server.h"
#include "net/listener.h"
#include "net/peer_pool.h"
#include "replica/replica.h"
#include "replica/table_holder.h"
#include "server/command_runner.h"
#include "server/config.h"
#include "server/load_reporter.h"
#include "server/migrator.h"
#include "server/orchestrator_agent.h"
#include "server/rebuilder.h"
#include "server/repairer.h"
#include "server/server_state.h"
#include "server/worker_pool.h"
#include "storage/engine.h"

namespace cairn::server {

// Reads <data_dir>/machine-id, creating it the first time with `requested_id`, or with a random
// non-zero 64-bit id if that is 0. A recorded id that differs from a non-zero `requested_id` is an
// error: the data was written by another machine of the cluster.
Result<uint64_t> load_or_create_machine_id(const std::string& data_dir,
                                           uint64_t requested_id = 0);

class Server {
 public:
  // Starts a server and returns once it accepts connections.
  static Result<std::unique_ptr<Server>> start(const ServerConfig& config);
  ~Server();  // stop()
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // The port it listens on (the chosen one when config.port was 0).
  uint16_t port() const { return port_; }
  // The /metrics port (0 without --metrics-port).
  uint16_t metrics_port() const { return metrics_http_ ? metrics_http_->port() : 0; }
  uint64_t machine_id() const { return machine_id_; }
  const ServerConfig& config() const { return config_; }
  // Cluster mode only (else null): tests hand it orders directly.
  Migrator* migrator() const { return migrator_.get(); }

  // Blocks until the server has stopped: after SHUTDOWN, SIGINT/SIGTERM (if config.handle_signals)
  // or stop().
  void wait();
  // Stops the server and waits for it. Idempotent. REQUIRES: not called from a loop thread
  // (handlers use ServerControl::request_shutdown()).
  void stop();
  // Asks the server to stop, without waiting. Any thread.
  void request_shutdown();

 private:
  explicit Server(ServerConfig config);
  Status open();
  void teardown();
  void watch_for_shutdown();
  void run_on_loop0(const std::function<void()>& fn);
  void schedule_ops_sampling();
  void accept(net::tcp::socket socket, net::EventLoop& loop);
  Status open_cluster();
  Status load_table_file();
  Status open_agent();
  // --metrics-port: an HTTP listener on its own thread serving GET /metrics.
  Status open_metrics();
  void write_cluster_metrics(metrics::PrometheusText& out);
  // INFO cluster lines on the clock's offset from the orchestrator's (docs/operations.md).
  std::string clock_info() const;

  ServerConfig config_;
  uint64_t machine_id_ = 0;
  uint16_t port_ = 0;

  // In construction order; teardown() destroys them in reverse.
  std::unique_ptr<storage::Engine> engine_;
  std::unique_ptr<HybridClock> clock_;
  // Cluster mode only.
  std::unique_ptr<replica::TableHolder> tables_;
  std::unique_ptr<replica::Replica> replica_;
  std::unique_ptr<net::PeerPool> peers_;
  std::unique_ptr<PubSubFanout> pubsub_fanout_;  // cluster mode; stopped before peers_ goes
  std::unique_ptr<coordinator::ClusterCoordinator> coordinator_;
  std::unique_ptr<metrics::RangeLoadTracker> range_load_;  // counts the replica's accesses
  std::unique_ptr<coordinator::LocalKeyspace> keyspace_;
  std::unique_ptr<ServerState> state_;
  std::unique_ptr<WorkerPool> workers_;       // cluster mode (or force_workers) only
  std::unique_ptr<CommandRunner> runner_;
  std::unique_ptr<LoadReporter> load_reporter_;  // cluster mode
  std::unique_ptr<net::EventLoops> loops_;
  std::unique_ptr<net::asio::steady_timer> ops_timer_;
  // Set on loop 0 at teardown. cancel() alone misses a sample whose timer already fired and
  // whose handler is queued: it would arm the timer again and keep loop 0 running forever.
  bool ops_sampling_stopped_ = false;
  std::unique_ptr<net::asio::signal_set> signals_;
  std::unique_ptr<net::Listener> listener_;
  // --metrics-port: its own context and thread, so a scrape never delays a client.
  std::unique_ptr<net::asio::io_context> metrics_io_;
  std::unique_ptr<net::HttpServer> metrics_http_;
  std::thread metrics_thread_;
  // --orchestrator only. The coordinator's lease check calls it: destroyed after the coordinator.
  std::unique_ptr<OrchestratorAgent> agent_;
  std::unique_ptr<Repairer> repairer_;    // cluster mode: anti-entropy with the other replicas
  std::unique_ptr<Rebuilder> rebuilder_;  // with --orchestrator: copies a shard it joins
  // Cluster mode: moves ranges (orders from the agent; FINISH from workers). Destroyed after
  // the workers and the agent that call it.
  std::unique_ptr<Migrator> migrator_;

  std::mutex mutex_;
  std::condition_variable changed_;
  bool shutdown_requested_ = false;  // guarded by mutex_
  bool stopped_ = false;             // guarded by mutex_
  std::thread watcher_;              // runs teardown() once shutdown is requested
};

}  // namespace cairn::server
