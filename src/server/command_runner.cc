#include "server/command_runner.h"

#include <array>
#include <string_view>

#include "commands/parse.h"
#include "resp/writer.h"

namespace cairn::server {

namespace {

// Connection and server commands that answer from the session or the server's settings only.
// INFO is not here: its keyspace section counts keys, which in a cluster asks other machines.
constexpr std::array<std::string_view, 14> kInlineCommands = {
    "ping",    "echo",        "quit",  "hello",   "auth",    "client",  "select",
    "command", "config",      "time",  "consistency", "multi", "discard", "unwatch",
};

}  // namespace

bool runs_inline(std::string_view name, const commands::CommandSpec* spec) {
  if (commands::equals_ignore_case(name, "cairn.forward")) return false;
  if (spec == nullptr) return true;
  if ((spec->flags & commands::kInline) != 0) return true;
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
