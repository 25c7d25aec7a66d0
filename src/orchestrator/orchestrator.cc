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

#include "orchestrator/api.h"
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

asio::awaitable<void> tick_loop(asio::steady_timer* timer, Service* service) {
  for (;;) {
    timer->expires_after(std::chrono::milliseconds(kTickIntervalMs));
    net::error_code ec;
    co_await timer->async_wait(asio::redirect_error(asio::use_awaitable, ec));
    if (ec) co_return;  // cancelled at shutdown
    service->tick();
  }
}

}  // namespace

void add_flags(CLI::App& app, OrchestratorConfig* c) {
  app.add_option("--port", c->port, "HTTP API port")->capture_default_str();
  app.add_option("--bind", c->bind, "address to listen on")->capture_default_str();
  app.add_option("--data-dir", c->data_dir, "directory of the state file (state.json)")
      ->required();
  app.add_option("--cluster-secret", c->cluster_secret,
                 "shared secret machines and admins present as 'Authorization: Bearer ...'")
      ->required();
  app.add_option("--store", c->store, "where the state lives: file")->capture_default_str();
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
  app.add_option("--log-level", c->log_level, "trace|debug|info|warn|error")
      ->capture_default_str();
}

Status validate_config(const OrchestratorConfig& config) {
  if (config.store != "file") {
    return Status::invalid_argument(fmt::format(
        "--store {}: only 'file' is supported so far", config.store));
  }
  if (config.data_dir.empty()) return Status::invalid_argument("--data-dir is required");
  if (config.cluster_secret.empty()) {
    return Status::invalid_argument("--cluster-secret must not be empty");
  }
  return validate_settings(config.service);
}

Status run(const OrchestratorConfig& config) {
  Status valid = validate_config(config);
  if (!valid.is_ok()) return valid;
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
                                [&router](const ApiRequest& r) { return router.handle(r); });
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
