#include "orchestrator/orchestrator.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <iostream>

#include <CLI/CLI.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include "orchestrator/api.h"
#include "orchestrator/etcd_leadership.h"
#include "orchestrator/http_server.h"

namespace cairn::orchestrator {

namespace asio = net::asio;

namespace {

// Held for the life of the process: a second orchestrator on the same data dir would overwrite
// the first one's state file.
class DirLock {
 public:
  static Result<DirLock> acquire(const std::string& dir) {
    std::string path = dir + "/LOCK";
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return Status::io_error(fmt::format("open {}: {}", path, std::strerror(errno)));
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
      ::close(fd);
      return Status::busy(fmt::format("{} is in use by another orchestrator", dir));
    }
    return DirLock(fd);
  }
  DirLock(DirLock&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  DirLock& operator=(DirLock&&) = delete;
  ~DirLock() {
    if (fd_ >= 0) ::close(fd_);
  }

 private:
  explicit DirLock(int fd) : fd_(fd) {}
  int fd_ = -1;
};

// Calls ticking->tick() every kTickIntervalMs until the timer is cancelled (shutdown). One
// loop for both stores: the file store ticks its Service, the etcd store its EtcdLeadership.
template <typename Ticking>
asio::awaitable<void> tick_loop(asio::steady_timer* timer, Ticking* ticking) {
  for (;;) {
    timer->expires_after(std::chrono::milliseconds(kTickIntervalMs));
    net::error_code ec;
    co_await timer->async_wait(asio::redirect_error(asio::use_awaitable, ec));
    if (ec) co_return;  // cancelled at shutdown
    ticking->tick();
  }
}

}  // namespace

void add_flags(CLI::App& app, OrchestratorConfig* c) {
  app.add_option("--port", c->port, "HTTP API port")->capture_default_str();
  app.add_option("--bind", c->bind, "address to listen on")->capture_default_str();
  app.add_option("--data-dir", c->data_dir,
                 "directory of the state file (state.json); required without --etcd");
  app.add_option("--cluster-secret", c->cluster_secret,
                 "shared secret machines and admins present as 'Authorization: Bearer ...'")
      ->required();
  app.add_option("--store", c->store, "where the state lives: file")->capture_default_str();
  app.add_option("--etcd", c->etcd,
                 "etcd client URLs (http://host:port[,...]): keep the state in etcd, and lead or "
                 "follow the other orchestrators on it (docs/orchestrator-ha.md)");
  app.add_option("--etcd-prefix", c->etcd_prefix, "the cluster's keys in etcd")
      ->capture_default_str();
  app.add_option("--advertise", c->advertise,
                 "host:port other orchestrators send machines and admins to while this one "
                 "leads (default: --bind:--port)");
  app.add_option("--etcd-lease-ttl-s", c->etcd_lease_ttl_s,
                 "the leader's etcd lease in seconds (etcd raises it to its minimum, 1 s only "
                 "with an election timeout of at most 666 ms)")
      ->capture_default_str();
  app.add_option("--import-state", c->import_state,
                 "with --etcd: store this state.json of a file-store orchestrator in etcd "
                 "(refused if etcd already holds a state), then run");
  // Hidden (empty group): it exists for the fencing test of docs/orchestrator-ha.md only.
  app.add_option("--unsafe-lease-overrun-ms", c->unsafe_lease_overrun_ms,
                 "tests only: a leader acts this long past its etcd lease, so that only "
                 "fencing stops a deposed leader's writes")
      ->check(CLI::NonNegativeNumber)
      ->group("");
  app.add_option("--rf", c->service.replication_factor, "replication factor")
      ->capture_default_str();
  app.add_option("--initial-shards", c->service.initial_shards,
                 "shards of the first table, made once shards x rf machines registered")
      ->capture_default_str();
  app.add_option("--ranges-per-shard", c->service.ranges_per_shard,
                 "ring ranges per shard in the first table")
      ->capture_default_str();
  app.add_option("--min-spares", c->service.min_spares, "idle spare machines to keep at least")
      ->capture_default_str();
  app.add_option("--down-after-ms", c->service.down_after_ms,
                 "heartbeat silence after which a machine is down")
      ->capture_default_str();
  app.add_option("--dead-after-ms", c->service.dead_after_ms,
                 "heartbeat silence after which a machine is dead and replaced")
      ->capture_default_str();
  app.add_option("--self-stall-ms", c->service.self_stall_ms,
                 "a gap this long between two of its own 100 ms ticks means the orchestrator "
                 "itself stalled: that time is not counted as heartbeat silence (0: off)")
      ->capture_default_str();
  app.add_option("--lease-ms", c->service.lease_ms, "shard leader lease length")
      ->capture_default_str();
  app.add_option("--migration-max-rate", c->service.migration_max_rate,
                 "default copy rate of a migration, bytes/s per target machine (accepts 64MiB, "
                 "50MB)")
      ->transform(CLI::AsSizeValue(true))
      ->capture_default_str();
  app.add_flag("--no-auto-rebalance{false}", c->service.auto_rebalance,
               "do not move ranges to balance shards by themselves (split/move still work)");
  // Hot shards (docs/operations.md "Hot shards and hot keys"). The defaults follow TiKV's
  // load-based split (about 3000 QPS sustained for 10 s).
  HotSettings& hot = c->service.hot;
  app.add_option("--hot-shard-ops", hot.shard_ops,
                 "a shard is hot above this many ops/s (reads + writes)...")
      ->capture_default_str();
  app.add_option("--hot-shard-factor", hot.factor, "...and this many times the cluster median")
      ->capture_default_str();
  app.add_option_function<int64_t>(
         "--hot-shard-window-s", [&hot](int64_t s) { hot.window_ms = s * 1000; },
         "...for this many seconds in a row")
      ->default_str(std::to_string(hot.window_ms / 1000));
  app.add_option_function<int64_t>(
         "--hot-split-cooldown-s", [&hot](int64_t s) { hot.cooldown_ms = s * 1000; },
         "a hot split's shards and halves are left alone this long")
      ->default_str(std::to_string(hot.cooldown_ms / 1000));
  app.add_option("--hot-key-share", hot.hot_key_share,
                 "a range whose one key carries this share of its sampled load is not split: "
                 "the key is reported as a hot key")
      ->capture_default_str();
  app.add_flag("--no-hot-split{false}", hot.split,
               "detect and report hot shards and keys, but do not split them");
  app.add_option("--machine-disk-budget-bytes", c->service.capacity.machine_disk_budget_bytes,
                 "capacity planning: bytes one machine may store (accepts 500GB, 1TiB; 0: none)")
      ->transform(CLI::AsSizeValue(true))
      ->capture_default_str();
  app.add_option("--machine-ops-budget", c->service.capacity.machine_ops_budget,
                 "capacity planning: ops/s one machine may serve (0: none)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--log-level", c->log_level, "trace|debug|info|warn|error")
      ->capture_default_str();
}

Status validate_config(const OrchestratorConfig& config) {
  if (config.store != "file") {
    return Status::invalid_argument(fmt::format(
        "--store {}: only 'file' is supported so far", config.store));
  }
  if (config.etcd.empty()) {
    if (config.data_dir.empty()) return Status::invalid_argument("--data-dir is required");
    if (!config.import_state.empty()) {
      return Status::invalid_argument("--import-state needs --etcd (it imports into etcd)");
    }
  } else {
    auto endpoints = parse_etcd_endpoints(config.etcd);
    if (!endpoints.is_ok()) return endpoints.status();
    if (config.etcd_prefix.empty() || config.etcd_prefix.front() != '/' ||
        config.etcd_prefix.back() == '/') {
      return Status::invalid_argument("--etcd-prefix must start with / and not end with /");
    }
    if (config.etcd_lease_ttl_s < 1 || config.etcd_lease_ttl_s > 60) {
      return Status::invalid_argument("--etcd-lease-ttl-s must be 1..60");
    }
    if (!config.advertise.empty()) {
      auto advertised = net::parse_http_endpoint(config.advertise);
      if (!advertised.is_ok())
        return Status::invalid_argument("--advertise: " + advertised.status().message());
    }
  }
  if (config.cluster_secret.empty()) {
    return Status::invalid_argument("--cluster-secret must not be empty");
  }
  return validate_settings(config.service);
}

namespace {

using nlohmann::json;

ApiResponse json_reply(int status, const json& body) {
  return ApiResponse{status, body.dump(), "application/json", ""};
}

// The API of one of several orchestrators (etcd_leadership.h): the leader's Service answers
// everything; a follower answers GETs from its view of etcd's state and sends changes and
// heartbeats to the leader.
ApiResponse handle_etcd_request(const EtcdLeadership& leadership, const std::string& secret,
                                const ApiRequest& request) {
  EtcdLeadership::Route route = leadership.route();
  ApiResponse response;
  const bool is_status =
      request.method == "GET" && request.target.substr(0, request.target.find('?')) == "/v1/status";
  if (route.leader != nullptr) {
    response = ApiRouter(route.leader.get(), secret).handle(request);
  } else if (request.method == "GET" && route.view != nullptr) {
    response = ApiRouter(route.view.get(), secret).handle(request);
  } else if (request.method == "GET" && !is_status) {
    return json_reply(503, json{{"error", "no state read from etcd yet"}});
  } else if (request.method == "GET") {
    response = ApiResponse{200, "{}", "application/json", ""};
  } else if (route.leader_address.empty()) {
    return json_reply(503, json{{"error", "no leader"}, {"leader", ""}});
  } else {
    ApiResponse redirect =
        json_reply(307, json{{"error", "not the leader"}, {"leader", route.leader_address}});
    redirect.location = "http://" + route.leader_address + request.target;
    return redirect;
  }
  if (is_status && response.status == 200) {
    // Who leads, since when, and etcd's health: on every orchestrator's status.
    json body = json::parse(response.body, nullptr, false);
    if (body.is_object()) {
      body["orchestrators"] = leadership.status_json();
      response.body = body.dump();
    }
  }
  return response;
}

Status run_etcd(const OrchestratorConfig& config) {
  auto endpoints = parse_etcd_endpoints(config.etcd);
  if (!endpoints.is_ok()) return endpoints.status();
  auto client = std::make_shared<EtcdClient>(std::move(*endpoints), kEtcdCallTimeoutMsDefault);
  if (!config.import_state.empty()) {
    auto state = load_state(config.import_state);
    if (!state.is_ok()) return state.status();
    Status imported = import_state(*client, config.etcd_prefix, *state);
    if (!imported.is_ok()) return imported;
    std::cout << "cairn orchestrator: imported " << config.import_state << " into "
              << config.etcd_prefix << "/state (epoch " << (state->table ? state->table->epoch : 0)
              << ", " << state->machines.size() << " machines)" << std::endl;
  }
  asio::io_context io(1);
  std::unique_ptr<EtcdLeadership> leadership;
  auto http =
      HttpServer::start(io, config.bind, config.port, [&leadership, &config](const ApiRequest& r) {
        return handle_etcd_request(*leadership, config.cluster_secret, r);
      }, "cairn-orchestrator");
  if (!http.is_ok()) return http.status();
  LeadershipOptions options;
  options.prefix = config.etcd_prefix;
  options.address = !config.advertise.empty() ? config.advertise
                                              : fmt::format("{}:{}", config.bind, (*http)->port());
  options.lease_ttl_s = config.etcd_lease_ttl_s;
  options.lease_overrun_ms = config.unsafe_lease_overrun_ms;
  options.service = config.service;
  leadership = std::make_unique<EtcdLeadership>(options, client, &system_clock());
  leadership->start();

  asio::steady_timer timer(io);
  asio::co_spawn(io, tick_loop(&timer, leadership.get()), asio::detached);
  asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](const net::error_code& ec, int signal) {
    if (ec) return;
    spdlog::info("orchestrator: signal {}, stopping", signal);
    (*http)->close();
    timer.cancel();
    io.stop();
  });
  std::cout << "cairn orchestrator listening on http://" << config.bind << ":" << (*http)->port()
            << " (etcd " << config.etcd << ", prefix " << config.etcd_prefix << ", advertised as "
            << options.address << ")" << std::endl;
  io.run();
  // Stop in reverse: no more requests, then the leadership (a leader revokes its lease).
  (*http)->close();
  leadership->stop();
  return Status::ok();
}

}  // namespace

Status run(const OrchestratorConfig& config) {
  Status valid = validate_config(config);
  if (!valid.is_ok()) return valid;
  if (!config.etcd.empty()) return run_etcd(config);
  std::error_code fs_error;
  std::filesystem::create_directories(config.data_dir, fs_error);
  if (fs_error) {
    return Status::io_error(fmt::format("create {}: {}", config.data_dir, fs_error.message()));
  }
  auto lock = DirLock::acquire(config.data_dir);
  if (!lock.is_ok()) return lock.status();

  ServiceSettings settings = config.service;
  settings.state_path = config.data_dir + "/state.json";
  auto service = Service::open(settings, &system_clock());
  if (!service.is_ok()) return service.status();

  asio::io_context io(1);
  ApiRouter router(service->get(), config.cluster_secret);
  auto http = HttpServer::start(io, config.bind, config.port,
                                [&router](const ApiRequest& r) { return router.handle(r); },
                                "cairn-orchestrator");
  if (!http.is_ok()) return http.status();

  asio::steady_timer timer(io);
  asio::co_spawn(io, tick_loop(&timer, service->get()), asio::detached);
  asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](const net::error_code& ec, int signal) {
    if (ec) return;
    spdlog::info("orchestrator: signal {}, stopping", signal);
    (*http)->close();
    timer.cancel();
    io.stop();
  });
  std::cout << "cairn orchestrator listening on http://" << config.bind << ":" << (*http)->port()
            << " (data: " << config.data_dir << ", epoch " << (*service)->epoch() << ")"
            << std::endl;
  io.run();
  // Stop in reverse: the listener is closed; the last state was saved at the last change.
  (*http)->close();
  return Status::ok();
}

}  // namespace cairn::orchestrator
