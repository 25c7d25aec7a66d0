#pragma once
// CommandRunner: how a client command runs on a worker thread (docs/formats.md "Internal
// protocol"; the execution model of a cluster machine). The ClientSession suspends its connection,
// hands the request to the runner's pool and resumes with the reply, so pipelined replies stay in
// order and a loop never blocks while a command waits for replicas.
//
// A server without a runner (single-machine mode) runs every command on its loop, as before.
// Commands that never touch the keyspace and never block (PING, AUTH, CLIENT, CAIRN.* storage
// commands...) run on the loop in every mode: runs_inline().
//
// Threading: run() is called on worker threads, for one connection at most once at a time.

#include <memory>
#include <string>
#include <vector>

#include "commands/command.h"
#include "coordinator/keyspace.h"
#include "server/worker_pool.h"

namespace cairn::server {

class CommandRunner {
 public:
  explicit CommandRunner(WorkerPool& pool) : pool_(pool) {}
  virtual ~CommandRunner() = default;
  CommandRunner(const CommandRunner&) = delete;
  CommandRunner& operator=(const CommandRunner&) = delete;

  WorkerPool& pool() { return pool_; }

  // Worker thread. Runs `args` (args[0] is the command) for the connection whose state is
  // `session` and writes exactly one reply's bytes, in session.protocol, to `reply`.
  // `connection_keyspace` belongs to the connection: the runner creates its per-connection
  // keyspace there on first use. The result says whether the command wrote (the caller makes the
  // WAL durable before the reply leaves).
  virtual commands::DispatchOutcome run(std::vector<std::string>& args,
                                        commands::Session& session,
                                        std::unique_ptr<coordinator::Keyspace>& connection_keyspace,
                                        std::string& reply) = 0;

 private:
  WorkerPool& pool_;
};

// Whether a command runs on the event loop even when the server has a runner: commands flagged
// kInline, cheap ones that do not touch the keyspace, and unknown ones (their error is
// immediate). `name` is args[0] as sent, `spec` its table entry (nullptr if unknown).
// CAIRN.FORWARD never runs inline: it runs a client command.
bool runs_inline(std::string_view name, const commands::CommandSpec* spec);

// Runs commands on workers against one shared keyspace (no redirects). Single-machine servers use
// it only when ServerConfig::force_workers is set, which tests do to exercise the worker path.
class KeyspaceRunner final : public CommandRunner {
 public:
  KeyspaceRunner(WorkerPool& pool, const commands::CommandTable& table,
                 coordinator::Keyspace& keyspace, commands::ServerControl& server)
      : CommandRunner(pool), table_(table), keyspace_(keyspace), server_(server) {}

  commands::DispatchOutcome run(std::vector<std::string>& args, commands::Session& session,
                                std::unique_ptr<coordinator::Keyspace>& connection_keyspace,
                                std::string& reply) override;

 private:
  const commands::CommandTable& table_;
  coordinator::Keyspace& keyspace_;
  commands::ServerControl& server_;
};

}  // namespace cairn::server
