#include "server/command_runner.h"

#include <array>
#include <string_view>

#include "resp/writer.h"

namespace cairn::server {

namespace {

// Connection and server commands that answer from the session or the server's settings only.
// INFO is not here: its keyspace section counts keys, which in a cluster asks other machines.
constexpr std::array<std::string_view, 11> kInlineCommands = {
    "ping", "echo",    "quit",   "hello", "auth",       "client",
    "select", "command", "config", "time", "consistency",
};

}  // namespace

bool runs_inline(const commands::CommandSpec* spec) {
  if (spec == nullptr) return true;
  // Internal storage commands answer from this machine's storage, never waiting for another
  // machine; CAIRN.FORWARD runs a client command and therefore goes to a worker.
  if (spec->name.starts_with("cairn.")) return spec->name != "cairn.forward";
  for (std::string_view name : kInlineCommands) {
    if (spec->name == name) return true;
  }
  return false;
}

commands::DispatchOutcome KeyspaceRunner::run(
    std::vector<std::string>& args, commands::Session& session,
    std::unique_ptr<coordinator::Keyspace>& /*connection_keyspace*/, std::string& reply) {
  resp::ReplyWriter writer(&reply, session.protocol);
  commands::CommandContext context{args, writer, session, keyspace_, server_};
  return commands::dispatch(table_, context);
}

}  // namespace cairn::server
