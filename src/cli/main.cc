// The `cairn` binary (docs/operations.md): one program, subcommands: server, orchestrator, dev,
// admin, bench.

#include <csignal>
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "cli/dev.h"
#include "cli/admin.h"
#include "cli/bench.h"
#include "orchestrator/orchestrator.h"
#include "server/config.h"
#include "server/server.h"
#include "storage/engine.h"

namespace {

constexpr int kExitUsage = 2;  // bad flags or config
constexpr int kExitFailure = 1;

void setup_logging(const std::string& level) {
  auto logger = spdlog::stderr_color_mt("cairn");
  spdlog::set_default_logger(logger);
  spdlog::set_level(spdlog::level::from_str(level));
}

int run_server(const cairn::server::ServerFlags& flags) {
  auto config = flags.resolve();
  if (!config.is_ok()) {
    std::cerr << "cairn server: " << config.status().message() << "\n";
    return kExitUsage;
  }
  config->handle_signals = true;
  setup_logging(config->log_level);
  // A client that disconnects mid-reply must not kill the server.
  std::signal(SIGPIPE, SIG_IGN);
  auto server = cairn::server::Server::start(*config);
  if (!server.is_ok()) {
    spdlog::critical("cannot start: {}", server.status().to_string());
    return kExitFailure;
  }
  std::cout << "cairn server listening on " << config->bind << ":" << (*server)->port()
            << " (data: " << config->data_dir
            << ", durability: " << cairn::storage::durability_name(config->durability) << ")"
            << std::endl;
  (*server)->wait();
  return 0;
}

int run_orchestrator(const cairn::orchestrator::OrchestratorConfig& config) {
  cairn::Status valid = cairn::orchestrator::validate_config(config);
  if (!valid.is_ok()) {
    std::cerr << "cairn orchestrator: " << valid.message() << "\n";
    return kExitUsage;
  }
  setup_logging(config.log_level);
  std::signal(SIGPIPE, SIG_IGN);
  cairn::Status status = cairn::orchestrator::run(config);
  if (!status.is_ok()) {
    spdlog::critical("cannot run the orchestrator: {}", status.to_string());
    return kExitFailure;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Cairn: a distributed key-value and wide-row database that speaks the Redis "
               "protocol.",
               "cairn"};
  app.require_subcommand(1);
  CLI::App* server = app.add_subcommand(
      "server", "run one machine; without an orchestrator, a complete single-machine database");
  cairn::server::ServerFlags server_flags;
  server_flags.add_to(*server);
  cairn::cli::AdminOptions admin_options;
  CLI::App* admin = cairn::cli::add_admin_command(app, admin_options);
  CLI::App* dev = app.add_subcommand(
      "dev", "run an orchestrator and a local cluster on loopback (what `make run` starts)");
  cairn::cli::DevConfig dev_config;
  cairn::cli::add_dev_flags(*dev, dev_config);
  CLI::App* orchestrator = app.add_subcommand(
      "orchestrator", "run the orchestrator: membership, failure detection, routing tables, API");
  cairn::orchestrator::OrchestratorConfig orchestrator_config;
  cairn::orchestrator::add_flags(*orchestrator, &orchestrator_config);
  cairn::cli::BenchOptions bench_options;
  CLI::App* bench = cairn::cli::add_bench_command(app, bench_options);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);  // prints the message and a hint to stderr
    return kExitUsage;
  }

  if (dev->parsed()) {
    setup_logging(dev_config.log_level);
    return cairn::cli::run_dev(dev_config);
  }
  if (admin->parsed()) return cairn::cli::run_admin(admin_options, std::cout, std::cerr);
  if (bench->parsed()) {
    std::signal(SIGPIPE, SIG_IGN);
    return cairn::cli::run_bench(bench_options, std::cout, std::cerr);
  }
  if (orchestrator->parsed()) return run_orchestrator(orchestrator_config);
  return run_server(server_flags);
}
