#include "server/server.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <future>
#include <random>
#include <sstream>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "common/clock.h"
#include "server/client_session.h"
#include "server/cluster_runner.h"

namespace cairn::server {

namespace {

// The engine meta entry holding the routing table this machine follows (JSON).
constexpr std::string_view kTableMetaName = "routing-table";

constexpr std::string_view kMaxClientsReply = "-ERR max number of clients reached\r\n";
constexpr std::string_view kMachineIdFile = "machine-id";
constexpr std::string_view kEngineDirectory = "db";

Status write_file_durably(const std::filesystem::path& path, std::string_view contents) {
  const std::filesystem::path temporary = path.string() + ".tmp";
  const int fd = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Status::io_error("cannot create " + temporary.string() + ": " + strerror(errno));
  const ssize_t written = ::write(fd, contents.data(), contents.size());
  const bool ok = written == static_cast<ssize_t>(contents.size()) && ::fsync(fd) == 0;
  const int saved_errno = errno;
  ::close(fd);
  if (!ok) return Status::io_error("cannot write " + temporary.string() + ": " + strerror(saved_errno));
  if (::rename(temporary.c_str(), path.c_str()) != 0) {
    return Status::io_error("cannot rename " + temporary.string() + ": " + strerror(errno));
  }
  // The rename is durable only once the directory is synced.
  const int dir = ::open(path.parent_path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir >= 0) {
    ::fsync(dir);
    ::close(dir);
  }
  return Status::ok();
}

}  // namespace

Result<uint64_t> load_or_create_machine_id(const std::string& data_dir, uint64_t requested_id) {
  const std::filesystem::path path = std::filesystem::path(data_dir) / kMachineIdFile;
  std::error_code error;
  if (std::filesystem::exists(path, error)) {
    std::ifstream file(path);
    std::string text;
    file >> text;
    uint64_t id = 0;
    const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), id, 16);
    if (text.empty() || ec != std::errc() || ptr != text.data() + text.size() || id == 0) {
      // Never replace it: the id names this machine's writes in every replica.
      return Status::corruption(fmt::format("{} does not hold a machine id (16 hex digits)",
                                            path.string()));
    }
    if (requested_id != 0 && requested_id != id) {
      return Status::invalid_argument(fmt::format(
          "--machine-id {} does not match the id {} recorded in {}: this data directory belongs "
          "to another machine (use that id, or another data directory)",
          requested_id, id, path.string()));
    }
    return id;
  }
  std::random_device random;
  uint64_t id = requested_id;
  while (id == 0) id = (static_cast<uint64_t>(random()) << 32) ^ random();
  const Status status = write_file_durably(path, fmt::format("{:016x}\n", id));
  if (!status.is_ok()) return status;
  spdlog::info("created machine id {:016x} in {}", id, path.string());
  return id;
}

Result<std::unique_ptr<Server>> Server::start(const ServerConfig& config) {
  std::unique_ptr<Server> server(new Server(config));
  const Status status = server->open();
  if (!status.is_ok()) {
    server->teardown();
    return status;
  }
  return server;
}

Server::Server(ServerConfig config) : config_(std::move(config)) {}

Server::~Server() {
  if (watcher_.joinable()) {
    stop();
    watcher_.join();
  }
}

Status Server::open() {
  std::error_code error;
  std::filesystem::create_directories(config_.data_dir, error);
  if (error) {
    return Status::io_error(
        fmt::format("cannot create data directory {}: {}", config_.data_dir, error.message()));
  }
  auto machine_id = load_or_create_machine_id(config_.data_dir, config_.machine_id);
  if (!machine_id.is_ok()) return machine_id.status();
  machine_id_ = *machine_id;

  storage::EngineOptions engine_options;
  engine_options.path = (std::filesystem::path(config_.data_dir) / kEngineDirectory).string();
  engine_options.durability = config_.durability;
  engine_options.block_cache_bytes = static_cast<size_t>(config_.block_cache_mb) * 1024 * 1024;
  engine_options.wall_clock_ms = wall_clock_ms;
  clock_ = std::make_unique<HybridClock>();
  engine_options.clock_to_record = [clock = clock_.get()] { return clock->last(); };
  auto engine = storage::Engine::open(engine_options);
  if (!engine.is_ok()) return engine.status();
  engine_ = std::move(*engine);
  // Every timestamp this machine acknowledged before its last stop is at most the recorded one.
  auto recorded_clock = engine_->recorded_clock();
  if (!recorded_clock.is_ok()) return recorded_clock.status();
  clock_->observe(*recorded_clock);

  if (config_.cluster()) {
    const Status status = open_cluster();
    if (!status.is_ok()) return status;
  }

  keyspace_ = std::make_unique<coordinator::LocalKeyspace>(*engine_, *clock_, machine_id_,
                                                           wall_clock_ms);
  const size_t threads = effective_threads(config_);
  state_ = std::make_unique<ServerState>(config_, threads, *engine_, *keyspace_,
                                         [this] { request_shutdown(); });
  if (config_.cluster()) {
    workers_ = std::make_unique<WorkerPool>(config_.workers, kWorkerQueueMax);
    auto runner = std::make_unique<ClusterRunner>(
        *workers_, state_->table(), *state_, *coordinator_, *replica_, *peers_,
        static_cast<int>(config_.request_timeout_ms));
    ClusterParts parts;
    parts.coordinator = coordinator_.get();
    parts.replica = replica_.get();
    parts.peers = peers_.get();
    parts.runner = runner.get();
    load_reporter_ = std::make_unique<LoadReporter>(*state_, *engine_, *tables_, *range_load_,
                                                    machine_id_);
    parts.extra_metrics = [this](metrics::PrometheusText& out) { write_cluster_metrics(out); };
    parts.extra_info = [this] {
      return clock_info() + (rebuilder_ ? rebuilder_->info() : std::string()) + migrator_->info() +
             repairer_->info();
    };
    parts.migration_finish = [this](uint64_t migration,
                                    const std::vector<std::pair<uint64_t, uint64_t>>& lsns,
                                    int timeout_ms) {
      return migrator_->finish(migration, lsns, timeout_ms);
    };
    state_->set_cluster(std::move(parts));
    pubsub_fanout_ = std::make_unique<PubSubFanout>(*peers_, *tables_, machine_id_);
    state_->set_pubsub_fanout(pubsub_fanout_.get());
    runner_ = std::move(runner);
    state_->set_runner(runner_.get());
  } else if (config_.force_workers) {
    workers_ = std::make_unique<WorkerPool>(config_.workers, kWorkerQueueMax);
    runner_ = std::make_unique<KeyspaceRunner>(*workers_, state_->table(), *keyspace_, *state_);
    state_->set_runner(runner_.get());
  }

  net::EventLoopsOptions loop_options;
  loop_options.threads = threads;
  // In every durability mode the replies of writes wait for the loop's flush: with `always` it
  // fsyncs the WAL, otherwise it hands the buffered WAL to the kernel so kill -9 loses nothing
  // acknowledged.
  storage::Engine* engine_ptr = engine_.get();
  loop_options.sync = [engine_ptr] { return engine_ptr->sync(); };
  loop_options.idle_timeout_ms = &state_->settings().idle_timeout_ms;
  loops_ = std::make_unique<net::EventLoops>(std::move(loop_options));

  auto listener = net::Listener::open(
      *loops_, config_.bind, config_.port,
      [this](net::tcp::socket socket, net::EventLoop& loop) { accept(std::move(socket), loop); });
  if (!listener.is_ok()) return listener.status();
  listener_ = std::move(*listener);
  port_ = listener_->port();
  state_->set_port(port_);
  if (config_.metrics_port != 0) {
    const Status status = open_metrics();
    if (!status.is_ok()) return status;
  }
  if (!config_.orchestrator.empty()) {
    const Status status = open_agent();
    if (!status.is_ok()) return status;
  }

  auto& loop0 = loops_->loop(0).context();
  if (config_.handle_signals) {
    signals_ = std::make_unique<net::asio::signal_set>(loop0, SIGINT, SIGTERM);
    signals_->async_wait([this](const net::error_code& wait_error, int signal_number) {
      if (wait_error) return;
      spdlog::info("received signal {}, shutting down", signal_number);
      request_shutdown();
    });
  }
  ops_timer_ = std::make_unique<net::asio::steady_timer>(loop0);
  schedule_ops_sampling();

  loops_->start();
  listener_->start();
  // Registers only once the machine accepts connections: the orchestrator may hand it a role,
  // and peers then reach it at once.
  if (agent_) agent_->start();
  if (rebuilder_) rebuilder_->start();
  if (migrator_) migrator_->start();
  if (repairer_) repairer_->start();
  watcher_ = std::thread([this] { watch_for_shutdown(); });
  spdlog::info("cairn {} ready: {}:{}, data {}, durability {}, {} event loops, machine {:016x}{}",
               kCairnVersion, config_.bind, port_, config_.data_dir,
               storage::durability_name(config_.durability), threads, machine_id_,
               config_.cluster() ? fmt::format(" ({}), cluster mode with {} workers, epoch {}",
                                               machine_id_, config_.workers, tables_->epoch())
                                 : std::string());
  return Status::ok();
}

Status Server::open_cluster() {
  tables_ = std::make_unique<replica::TableHolder>();
  // The table this machine followed before it stopped: a restarted machine serves at once, at
  // the epoch it knew, and a newer table reaches it by push or by the first STALEEPOCH.
  auto saved = engine_->get_meta(kTableMetaName);
  if (!saved.is_ok()) return saved.status();
  if (saved->has_value()) {
    auto table = topology::RoutingTable::from_json_text(**saved);
    if (!table.is_ok()) {
      return Status::corruption("the saved routing table does not parse: " +
                                table.status().message());
    }
    if (Status status = tables_->install(std::move(*table)); !status.is_ok()) return status;
  }
  if (!config_.table_file.empty()) {
    const Status status = load_table_file();
    if (!status.is_ok()) return status;
  }
  storage::Engine* engine = engine_.get();
  tables_->on_change([engine](const topology::RoutingTable& table) {
    if (Status status = engine->put_meta(kTableMetaName, table.to_json_text());
        !status.is_ok()) {
      spdlog::error("cannot save routing table epoch {}: {}", table.epoch(), status.to_string());
    }
  });
  if (auto table = tables_->current(); table && !config_.table_file.empty()) {
    if (Status status = engine_->put_meta(kTableMetaName, table->to_json_text()); !status.is_ok()) {
      return status;
    }
  }
  // A machine placed in a shard's joining list that was not a member of that shard in the
  // table it followed before holds nothing of the shard worth keeping: at best a copy from an
  // earlier life (it was declared dead and replaced, and comes back as a spare), whose values
  // may predate deletions the replicas have since purged. It discards the shard's ranges before
  // it serves the new epoch, and the rebuild copies them from the voting replicas
  // (docs/cluster.md "Tombstone purge").
  tables_->before_change([engine, me = machine_id_](const topology::RoutingTable* previous,
                                                    const topology::RoutingTable& next) {
    for (const topology::Shard& shard : next.shards()) {
      if (std::find(shard.joining.begin(), shard.joining.end(), me) == shard.joining.end()) {
        continue;
      }
      const topology::Shard* before = previous ? previous->find_shard(shard.id) : nullptr;
      const auto member = [me](const std::vector<uint64_t>& ids) {
        return std::find(ids.begin(), ids.end(), me) != ids.end();
      };
      if (before && (member(before->replicas) || member(before->extras) ||
                     member(before->joining))) {
        continue;
      }
      for (const topology::Range& range : next.ranges_of_shard(shard.id)) {
        if (Status status = engine->drop_range(range.start, range.end); !status.is_ok()) {
          spdlog::error("joining shard {}: cannot discard old data of [{}, {}): {}", shard.id,
                        topology::format_token(range.start), topology::format_token(range.end),
                        status.to_string());
        } else {
          spdlog::info("joining shard {}: discarded any earlier copy of [{}, {}) (the rebuild "
                       "copies it from the voting replicas)",
                       shard.id, topology::format_token(range.start),
                       topology::format_token(range.end));
        }
      }
    }
  });
  replica_ = std::make_unique<replica::Replica>(*engine_, *clock_, machine_id_, *tables_);
  range_load_ = std::make_unique<metrics::RangeLoadTracker>();
  if (auto table = tables_->current()) range_load_->set_ranges(range_bounds(*table));
  tables_->on_change([tracker = range_load_.get()](const topology::RoutingTable& table) {
    tracker->set_ranges(range_bounds(table));
  });
  replica_->set_load_tracker(range_load_.get());
  net::PeerPoolOptions peer_options;
  // Outgoing connections leave from the address this machine listens on, so a test can cut it
  // off with firewall rules on that one address. A wildcard bind leaves the choice to the kernel.
  const bool wildcard = config_.bind == "*" || config_.bind == "0.0.0.0" || config_.bind == "::";
  peer_options.local_address = wildcard ? std::string() : config_.bind;
  peer_options.secret = config_.cluster_secret;
  peers_ = std::make_unique<net::PeerPool>(peer_options);
  coordinator::ClusterOptions options;
  options.request_timeout_ms = static_cast<int>(config_.request_timeout_ms);
  options.read_speculate_ms = static_cast<int>(config_.read_speculate_ms);
  options.hinted_handoff = config_.hinted_handoff;
  options.hint_age_max_ms = config_.hint_max_age_s * 1000;
  coordinator_ = std::make_unique<coordinator::ClusterCoordinator>(options, *engine_, *clock_,
                                                                   *replica_, *peers_);
  coordinator_->start();
  MigratorOptions migrator_options;
  migrator_options.request_timeout_ms =
      static_cast<int>(std::min<int64_t>(config_.request_timeout_ms, 1000));
  if (!config_.orchestrator.empty()) {
    // Only an orchestrated machine drives cutovers; agent_ exists before the migrator starts
    // and outlives its thread.
    migrator_options.post = [this](const std::string& target, std::string body) {
      return agent_->post(target, std::move(body));
    };
  }
  migrator_ = std::make_unique<Migrator>(std::move(migrator_options), *engine_, *replica_, *peers_);
  RepairerOptions repair_options;
  repair_options.cells_per_sec = static_cast<uint64_t>(config_.repair_cells_per_s);
  repair_options.interval_ms = config_.repair_interval_s * 1000;
  // A margin past the hint age for requests in flight and clocks apart.
  repair_options.purge_delay_ms = config_.hint_max_age_s * 1000 + 10'000;
  repairer_ = std::make_unique<Repairer>(repair_options, *replica_, *peers_);
  return Status::ok();
}

Status Server::open_agent() {
  if (!config_.cluster()) {
    return Status::invalid_argument("--orchestrator needs --cluster-secret");
  }
  // The address other machines and clients reach this one at. A wildcard bind does not name
  // one, so loopback is advertised (a multi-host deployment binds a concrete address).
  std::string host = config_.bind;
  if (host == "*" || host == "0.0.0.0" || host == "::") {
    spdlog::warn("bind {} names no address to advertise to the orchestrator: using 127.0.0.1",
                 host);
    host = "127.0.0.1";
  }
  OrchestratorAgentOptions options;
  options.orchestrator = config_.orchestrator;
  options.cluster_secret = config_.cluster_secret;
  options.machine_id = machine_id_;
  options.address = host.find(':') != std::string::npos ? fmt::format("[{}]:{}", host, port_)
                                                        : fmt::format("{}:{}", host, port_);
  options.request_timeout_ms = static_cast<int>(std::min<int64_t>(config_.request_timeout_ms, 1000));
  options.load = [this] { return load_reporter_->collect(monotonic_ms()); };
  RebuilderOptions rebuild_options;
  rebuild_options.request_timeout_ms = options.request_timeout_ms;
  rebuild_options.max_bytes_per_sec =
      static_cast<uint64_t>(config_.rebuild_max_mb_per_s) * 1024 * 1024;
  rebuilder_ = std::make_unique<Rebuilder>(rebuild_options, *replica_, *peers_);
  options.rebuilt_shard = [rebuilder = rebuilder_.get()] { return rebuilder->rebuilt_shard(); };
  options.on_migrations = [migrator = migrator_.get()](std::vector<MigrationOrder> orders,
                                                      uint64_t epoch) {
    migrator->set_orders(std::move(orders), epoch);
  };
  options.migration_reports = [migrator = migrator_.get()] { return migrator->reports(); };
  options.repair_status = [repairer = repairer_.get()] { return repairer->status(); };
  options.max_clock_offset_ms = config_.max_clock_offset_ms;
  options.on_clock = [coordinator = coordinator_.get()](const ClockOffset& clock) {
    coordinator->set_clock_state(clock.in_bound(), clock.offset_ms(), clock.max_offset_ms());
  };
  auto agent = OrchestratorAgent::create(std::move(options), *tables_);
  if (!agent.is_ok()) return agent.status();
  agent_ = std::move(*agent);
  coordinator_->set_leader_lease_check([agent = agent_.get()] { return agent->lease_valid(); });
  return Status::ok();
}

std::string Server::clock_info() const {
  if (agent_ == nullptr) return {};
  const OrchestratorAgentStats stats = agent_->stats();
  if (!stats.clock_measured) return "clock_measured:0\r\n";
  return fmt::format(
      "clock_measured:1\r\nclock_offset_ms:{}\r\nclock_error_ms:{}\r\nclock_in_bound:{}\r\n"
      "max_clock_offset_ms:{}\r\nclock_refused_writes:{}\r\n",
      stats.clock_offset_ms, stats.clock_error_ms, stats.clock_in_bound ? 1 : 0,
      config_.max_clock_offset_ms, coordinator_->stats().clock_refusals);
}

Status Server::open_metrics() {
  std::string bind = config_.bind;
  if (bind == "*") bind = "0.0.0.0";
  metrics_io_ = std::make_unique<net::asio::io_context>(1);
  auto http = net::HttpServer::start(
      *metrics_io_, bind, config_.metrics_port,
      [this](const net::ServedRequest& request) {
        net::ServedResponse response;
        const std::string_view path = std::string_view(request.target).substr(
            0, std::min(request.target.size(), request.target.find('?')));
        if (path != "/metrics") {
          response.status = 404;
          response.content_type = "text/plain";
          response.body = "not found: GET /metrics\n";
          return response;
        }
        if (request.method != "GET" && request.method != "HEAD") {
          response.status = 405;
          response.content_type = "text/plain";
          response.body = "GET /metrics\n";
          return response;
        }
        metrics::PrometheusText text;
        state_->write_metrics(text);
        response.content_type = std::string(metrics::kPrometheusContentType);
        response.body = text.text();
        return response;
      },
      "cairn");
  if (!http.is_ok()) return Status::io_error("--metrics-port: " + http.status().message());
  metrics_http_ = std::move(*http);
  metrics_thread_ = std::thread([io = metrics_io_.get()] {
    auto guard = net::asio::make_work_guard(*io);
    io->run();
  });
  spdlog::info("metrics at http://{}:{}/metrics", bind, metrics_http_->port());
  return Status::ok();
}

void Server::write_cluster_metrics(metrics::PrometheusText& out) {
  if (load_reporter_) load_reporter_->write_metrics(out);
  const int64_t hlc_ms = HybridClock::physical_ms(clock_->last());
  out.gauge("cairn_clock_offset_seconds",
            "How far the hybrid logical clock runs ahead of this machine's wall clock (a peer "
            "whose clock is ahead pushes it).",
            static_cast<double>(std::max<int64_t>(0, hlc_ms - wall_clock_ms())) / 1000.0);
  if (agent_) {
    const OrchestratorAgentStats stats = agent_->stats();
    out.gauge("cairn_lease_valid",
              "1 while this machine's leader lease is valid (last heartbeat answered in time).",
              agent_->lease_valid() ? 1 : 0);
    out.counter("cairn_lease_renewals_total", "Heartbeats the orchestrator answered.",
                static_cast<double>(stats.heartbeats));
    out.counter("cairn_orchestrator_failed_calls_total",
                "Calls to the orchestrator that failed or were refused.",
                static_cast<double>(stats.failed_calls));
    out.counter("cairn_tables_installed_total", "Routing tables fetched from the orchestrator.",
                static_cast<double>(stats.tables_installed));
  }
  if (migrator_) {
    const std::vector<MigrationReport> reports = migrator_->reports();
    out.gauge("cairn_migrations_active", "Migrations this machine takes part in.",
              static_cast<double>(reports.size()));
    out.family("cairn_migration_copied_keys", "gauge", "Keys a target copied so far.");
    for (const MigrationReport& r : reports) {
      out.sample("cairn_migration_copied_keys", {{"migration", std::to_string(r.id)}},
                 static_cast<double>(r.keys));
    }
    out.family("cairn_migration_copied_bytes", "gauge", "Bytes a target copied so far.");
    for (const MigrationReport& r : reports) {
      out.sample("cairn_migration_copied_bytes", {{"migration", std::to_string(r.id)}},
                 static_cast<double>(r.bytes));
    }
    out.family("cairn_migration_lag_records", "gauge",
               "WAL records a target is behind its sources.");
    for (const MigrationReport& r : reports) {
      out.sample("cairn_migration_lag_records", {{"migration", std::to_string(r.id)}},
                 static_cast<double>(r.lag));
    }
  }
}

Status Server::load_table_file() {
  std::ifstream file(config_.table_file, std::ios::binary);
  std::ostringstream text;
  if (file.is_open()) text << file.rdbuf();
  if (!file.is_open() || file.bad()) {
    return Status::invalid_argument("cannot read routing table file " + config_.table_file);
  }
  auto table = topology::RoutingTable::from_json_text(text.str());
  if (!table.is_ok()) {
    return Status::invalid_argument(fmt::format("routing table file {}: {}", config_.table_file,
                                                table.status().message()));
  }
  if (table->find_machine(machine_id_) == nullptr) {
    spdlog::warn("machine {} is not in the routing table {}: it will coordinate but own no data",
                 machine_id_, config_.table_file);
  }
  // A table file older than the table this machine saved when it last ran is stale: the saved
  // one wins, as a pushed table would.
  if (table->epoch() < tables_->epoch()) {
    spdlog::warn("routing table file {} has epoch {}, older than the saved epoch {}: ignored",
                 config_.table_file, table->epoch(), tables_->epoch());
    return Status::ok();
  }
  const Status status = tables_->install(std::move(*table));
  if (!status.is_ok()) {
    return Status::invalid_argument(
        fmt::format("routing table file {}: {}", config_.table_file, status.message()));
  }
  return Status::ok();
}

void Server::schedule_ops_sampling() {
  ops_timer_->expires_after(std::chrono::milliseconds(kOpsSampleIntervalMs));
  ops_timer_->async_wait([this](const net::error_code& error) {
    if (error || ops_sampling_stopped_) return;
    state_->sample_ops(monotonic_ms());
    schedule_ops_sampling();
  });
}

void Server::accept(net::tcp::socket socket, net::EventLoop& loop) {
  if (!state_->admit_client()) {
    // As redis-server: tell the client why, best effort and without blocking, then close.
    net::error_code ignored;
    socket.non_blocking(true, ignored);
    socket.write_some(net::asio::buffer(kMaxClientsReply), ignored);
    socket.close(ignored);
    return;
  }
  const uint64_t id = state_->next_client_id();
  net::asio::post(loop.context(), [this, &loop, id, socket = std::move(socket)]() mutable {
    auto connection = std::make_shared<net::Connection>(loop, std::move(socket), id);
    auto session =
        std::make_unique<ClientSession>(*state_, state_->loop_stats(loop.index()), *connection);
    state_->register_client(connection, session.get());
    connection->start(std::move(session));
  });
}

void Server::request_shutdown() {
  std::lock_guard lock(mutex_);
  shutdown_requested_ = true;
  changed_.notify_all();
}

void Server::wait() {
  std::unique_lock lock(mutex_);
  changed_.wait(lock, [this] { return stopped_; });
}

void Server::stop() {
  CAIRN_ASSERT(loops_ == nullptr || !loops_->in_loop_thread(),
               "Server::stop() from a loop would wait for itself; use request_shutdown()");
  request_shutdown();
  wait();
}

void Server::watch_for_shutdown() {
  {
    std::unique_lock lock(mutex_);
    changed_.wait(lock, [this] { return shutdown_requested_; });
  }
  teardown();
  std::lock_guard lock(mutex_);
  stopped_ = true;
  changed_.notify_all();
}

void Server::run_on_loop0(const std::function<void()>& fn) {
  if (loops_ == nullptr || !loops_->running()) {
    fn();
    return;
  }
  std::promise<void> done;
  net::asio::post(loops_->loop(0).context(), [&] {
    fn();
    done.set_value();
  });
  done.get_future().wait();
}

void Server::teardown() {
  spdlog::info("stopping: closing the listener and {} clients",
               state_ ? state_->connected_clients() : 0);
  if (listener_) listener_->stop();
  if (metrics_io_) {
    metrics_io_->stop();
    if (metrics_thread_.joinable()) metrics_thread_.join();
    metrics_http_.reset();
    metrics_io_.reset();
  }
  // The migrator and rebuilder first: they call peers and the replica, and feed the agent's
  // heartbeats.
  if (migrator_) migrator_->stop();
  if (rebuilder_) rebuilder_->stop();
  if (repairer_) repairer_->stop();
  // A stopping machine stops claiming to be alive; its lease then lapses on its own.
  if (agent_) agent_->stop();
  run_on_loop0([this] {
    net::error_code ignored;
    if (signals_) signals_->cancel(ignored);
    ops_sampling_stopped_ = true;
    if (ops_timer_) ops_timer_->cancel();
  });
  // Workers finish their commands while the loops still run, so every reply reaches its
  // connection; requests arriving meanwhile are refused with BUSY.
  if (workers_) workers_->stop();
  if (loops_) loops_->stop();
  if (coordinator_) coordinator_->stop();
  if (engine_) {
    const Status status = engine_->sync();
    if (!status.is_ok()) spdlog::error("final WAL sync failed: {}", status.to_string());
  }
  // Reverse of construction.
  listener_.reset();
  signals_.reset();
  ops_timer_.reset();
  loops_.reset();
  runner_.reset();
  workers_.reset();
  load_reporter_.reset();
  state_.reset();
  keyspace_.reset();
  coordinator_.reset();
  agent_.reset();
  migrator_.reset();
  rebuilder_.reset();
  repairer_.reset();
  if (pubsub_fanout_) pubsub_fanout_->stop();
  peers_.reset();
  pubsub_fanout_.reset();
  replica_.reset();
  range_load_.reset();
  tables_.reset();
  engine_.reset();
  clock_.reset();
  spdlog::info("stopped");
}

}  // namespace cairn::server
