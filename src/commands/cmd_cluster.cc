// Cluster commands a client uses: CONSISTENCY [READ lvl] [WRITE lvl] (docs/cluster.md). The levels
// belong to the connection (Session::request_options); the cluster coordinator reads them on
// every request.

#include <optional>
#include <string>

#include "commands/command.h"
#include "commands/parse.h"
#include "topology/consistency.h"

namespace cairn::commands {
namespace {

// CONSISTENCY                      → the current levels: read, <lvl>, write, <lvl> (a map in RESP3)
// CONSISTENCY [READ lvl] [WRITE lvl] → +OK; each part at most once, in either order.
// Nothing changes unless the whole command is valid. A single machine holds every key once (one
// voting replica), so there a level it can never meet (TWO, "3"...) is refused here; a cluster
// checks levels per request, against the shard the key lives on.
void consistency_command(CommandContext& ctx) {
  coordinator::RequestOptions& current = ctx.session.request_options;
  if (ctx.args.size() == 1) {
    ctx.reply.map(2);
    ctx.reply.bulk("read");
    ctx.reply.bulk(topology::consistency_name(current.read));
    ctx.reply.bulk("write");
    ctx.reply.bulk(topology::consistency_name(current.write));
    return;
  }
  if (ctx.args.size() % 2 == 0) {
    ctx.reply.error(kErrSyntax);
    return;
  }
  std::optional<topology::ConsistencyLevel> read;
  std::optional<topology::ConsistencyLevel> write;
  for (size_t i = 1; i < ctx.args.size(); i += 2) {
    std::optional<topology::ConsistencyLevel>* target = nullptr;
    if (equals_ignore_case(ctx.args[i], "read")) {
      target = &read;
    } else if (equals_ignore_case(ctx.args[i], "write")) {
      target = &write;
    }
    if (target == nullptr || target->has_value()) {
      ctx.reply.error(kErrSyntax);
      return;
    }
    Result<topology::ConsistencyLevel> level = topology::parse_consistency(ctx.args[i + 1]);
    if (!level.is_ok()) {
      ctx.reply.error("ERR " + level.status().message());
      return;
    }
    if (ctx.replica == nullptr) {
      Result<uint32_t> needed = topology::required(*level, 1);
      if (!needed.is_ok()) {
        ctx.reply.error("ERR " + needed.status().message());
        return;
      }
    }
    *target = *level;
  }
  if (read) current.read = *read;
  if (write) current.write = *write;
  ctx.reply.ok();
}

}  // namespace

void register_cluster_commands(CommandTable& table) {
  CommandSpec consistency;
  consistency.name = "consistency";
  consistency.arity = -1;
  // Touches only the connection's own state: never blocks, so it may run on an event loop.
  consistency.flags = kNoScript | kLoading | kStale | kFast | kInline;
  consistency.group = "connection";
  consistency.summary =
      "Show or set the read and write consistency levels of the current connection";
  consistency.since = "cairn 0.1";
  consistency.complexity = "O(1)";
  consistency.handler = consistency_command;
  table.add(std::move(consistency));
}

}  // namespace cairn::commands
