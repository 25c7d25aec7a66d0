// Transactions (docs/transactions.md): MULTI, EXEC, DISCARD, WATCH, UNWATCH, with
// redis-server 7.0's replies and errors, and CAIRN.TX, the self-contained form EXEC runs.
//
// MULTI makes dispatch() queue the connection's commands (Session::queued) instead of running
// them; a command refused while queuing (unknown, wrong arity, not allowed in a transaction)
// marks the transaction failed and EXEC answers EXECABORT. WATCH records a version of each key
// (key_version below); EXEC runs the queued commands one after the other while holding the
// per-key locks of every key they name and every watched key (Keyspace::atomically), after
// checking that no watched key changed, and answers their replies as one array (nil if a
// watched key changed).
//
// EXEC first rewrites its own arguments into
//   CAIRN.TX <watched> [<key> <version>]... <commands> [<argc> <arg>...]...
// and runs that. In a cluster, atomically() on a machine that is not the shard's leader asks
// for a redirect, and the runner forwards the command's arguments to the leader: the rewritten
// ones carry the whole transaction, so the leader runs it under its locks, against QUORUM reads
// and writes like any read-modify-write command (docs/cluster.md).

#include <fmt/format.h>

#include <algorithm>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "commands/command.h"
#include "commands/parse.h"
#include "common/assert.h"
#include "storage/cell.h"

namespace cairn::commands {
namespace {

constexpr std::string_view kTxCommand = "CAIRN.TX";

// What the EXEC of a transaction compares with what WATCH saw. Any write to the key changes
// it: a string's cell timestamp and expiry; a row's header cell, number of live fields and
// newest live field (an added or rewritten field raises the newest timestamp, a removed or
// expired one lowers the count). A key that does not exist is "-" followed by the timestamp of
// its stored cell (its tombstone, or the expired cell), so a key created and deleted again in
// between is seen as changed, while one that just stays deleted or expired is not.
// Cost: O(1) for a string, one pass over the fields for a hash, set or sorted set.
Result<std::string> key_version(coordinator::Keyspace& keyspace, const std::string& key) {
  Result<coordinator::RowRead> row = keyspace.read_row_exists(key);
  if (!row.is_ok()) return row.status();
  if (!row->header) {
    Result<std::optional<storage::Cell>> stored = keyspace.read_stored(key);
    if (!stored.is_ok()) return stored.status();
    return *stored ? fmt::format("-{}", (*stored)->timestamp) : std::string("-");
  }
  const storage::Cell& header = *row->header;
  if (!storage::is_row_type(header.type)) {
    return fmt::format("s{}:{}", header.timestamp, header.expire_at_ms);
  }
  uint64_t fields = 0;
  HlcTimestamp newest = 0;
  Status walked = keyspace.scan_fields(key, "", row->hidden_through,
                                       [&](std::string_view, const storage::Cell& cell) {
                                         ++fields;
                                         newest = std::max(newest, cell.timestamp);
                                         return true;
                                       });
  if (!walked.is_ok()) return walked;
  return fmt::format("r{}:{}:{}:{}", header.timestamp, header.expire_at_ms, fields, newest);
}

void reset_transaction(Session& session) {
  session.in_multi = false;
  session.multi_failed = false;
  session.queued.clear();
  session.queued_bytes = 0;
  session.watched.clear();
}

struct Transaction {
  std::vector<std::pair<std::string, std::string>> watched;  // key, version at WATCH
  std::vector<std::vector<std::string>> commands;
};

// Parses CAIRN.TX's arguments; nullopt if they are malformed.
std::optional<Transaction> parse_transaction(const std::vector<std::string>& args) {
  Transaction tx;
  size_t at = 1;
  auto count = [&]() -> std::optional<size_t> {
    if (at >= args.size()) return std::nullopt;
    const std::optional<int64_t> n = parse_int64(args[at++]);
    if (!n || *n < 0 || static_cast<uint64_t>(*n) > args.size()) return std::nullopt;
    return static_cast<size_t>(*n);
  };
  const std::optional<size_t> watched = count();
  if (!watched || *watched * 2 > args.size() - at) return std::nullopt;
  for (size_t i = 0; i < *watched; ++i, at += 2) tx.watched.emplace_back(args[at], args[at + 1]);
  const std::optional<size_t> commands = count();
  if (!commands) return std::nullopt;
  for (size_t i = 0; i < *commands; ++i) {
    const std::optional<size_t> argc = count();
    if (!argc || *argc == 0 || *argc > args.size() - at) return std::nullopt;
    tx.commands.emplace_back(args.begin() + static_cast<ptrdiff_t>(at),
                             args.begin() + static_cast<ptrdiff_t>(at + *argc));
    at += *argc;
  }
  if (at != args.size()) return std::nullopt;
  return tx;
}

// Runs `tx` atomically and writes its reply: the array of the commands' replies, nil if a
// watched key changed, or an error if the keys' locks could not be taken (CROSSSHARD, a
// shard without a leader...).
void run_transaction(CommandContext& ctx, Transaction& tx) {
  const CommandTable& table = default_table();
  std::set<std::string> key_set;
  for (const auto& [key, version] : tx.watched) key_set.insert(key);
  for (const std::vector<std::string>& command : tx.commands) {
    const CommandSpec* spec = table.find(command[0]);
    if (spec == nullptr) continue;
    for (const size_t index : key_indexes(*spec, command)) key_set.insert(command[index]);
  }
  const std::vector<std::string> keys(key_set.begin(), key_set.end());
  bool started = false;
  bool wrote = false;
  // Inside a transaction a blocking command answers at once, as in Redis: nothing else may run
  // until EXEC ends.
  const bool blocking_allowed = ctx.session.blocking_allowed;
  ctx.session.blocking_allowed = false;
  // Each reply goes into EXEC's array whole: no producer finishes one later.
  const bool producer_allowed = ctx.session.reply_producer_allowed;
  ctx.session.reply_producer_allowed = false;
  const Status status = ctx.keyspace.atomically(keys, [&]() -> Status {
    for (const auto& [key, version] : tx.watched) {
      Result<std::string> now = key_version(ctx.keyspace, key);
      if (!now.is_ok()) return now.status();
      if (*now != version) return Status::ok();  // aborted: nothing started
    }
    started = true;
    ctx.reply.array(tx.commands.size());
    for (std::vector<std::string>& command : tx.commands) {
      // Each command runs as if sent alone, its reply in the array; an error is its reply and
      // the others still run (Redis: no rollback).
      CommandContext inner{command, ctx.reply, ctx.session, ctx.keyspace, ctx.server, ctx.replica};
      const DispatchOutcome outcome = dispatch(table, inner);
      wrote = wrote || outcome.wrote || inner.wrote;
    }
    return Status::ok();
  });
  ctx.session.blocking_allowed = blocking_allowed;
  ctx.session.reply_producer_allowed = producer_allowed;
  ctx.wrote = wrote;
  if (!status.is_ok()) {
    CAIRN_ASSERT(!started, "a transaction fails only before its first command");
    // A redirect is not an end: the leader runs the transaction and counts it.
    if (status.message().rfind("REDIRECT", 0) != 0) {
      ctx.server.note_transaction(ServerControl::TransactionEnd::kRefused);
    }
    ctx.reply.error(storage_error_reply(status));
    return;
  }
  ctx.server.note_transaction(started ? ServerControl::TransactionEnd::kCommitted
                                      : ServerControl::TransactionEnd::kWatchAborted);
  if (!started) ctx.reply.null_array();
}

void multi(CommandContext& ctx) {
  if (ctx.session.in_multi) {
    ctx.reply.error("ERR MULTI calls can not be nested");
    return;
  }
  ctx.session.in_multi = true;
  ctx.reply.ok();
}

void discard(CommandContext& ctx) {
  if (!ctx.session.in_multi) {
    ctx.reply.error("ERR DISCARD without MULTI");
    return;
  }
  reset_transaction(ctx.session);
  ctx.reply.ok();
}

void exec(CommandContext& ctx) {
  Session& session = ctx.session;
  if (!session.in_multi) {
    ctx.reply.error("ERR EXEC without MULTI");
    return;
  }
  if (session.multi_failed) {
    ctx.server.note_transaction(ServerControl::TransactionEnd::kQueueErrors);
    reset_transaction(session);
    ctx.reply.error("EXECABORT Transaction discarded because of previous errors.");
    return;
  }
  // The self-contained form (see the top): a redirect forwards exactly these arguments.
  Transaction tx;
  tx.watched = std::move(session.watched);
  tx.commands = std::move(session.queued);
  reset_transaction(session);
  std::vector<std::string>& args = ctx.args;
  args.clear();
  args.emplace_back(kTxCommand);
  args.push_back(std::to_string(tx.watched.size()));
  for (const auto& [key, version] : tx.watched) {
    args.push_back(key);
    args.push_back(version);
  }
  args.push_back(std::to_string(tx.commands.size()));
  for (const std::vector<std::string>& command : tx.commands) {
    args.push_back(std::to_string(command.size()));
    args.insert(args.end(), command.begin(), command.end());
  }
  run_transaction(ctx, tx);
}

void cairn_tx(CommandContext& ctx) {
  std::optional<Transaction> tx = parse_transaction(ctx.args);
  if (!tx) {
    ctx.reply.error("ERR CAIRN.TX watched [key version]... commands [argc arg...]...");
    return;
  }
  run_transaction(ctx, *tx);
}

void watch(CommandContext& ctx) {
  Session& session = ctx.session;
  if (session.in_multi) {
    ctx.reply.error("ERR WATCH inside MULTI is not allowed");
    return;
  }
  for (size_t i = 1; i < ctx.args.size(); ++i) {
    const std::string& key = ctx.args[i];
    const bool known = std::any_of(session.watched.begin(), session.watched.end(),
                                   [&](const auto& watched) { return watched.first == key; });
    if (known) continue;  // Redis keeps the first WATCH of a key
    if (session.watched.size() >= kWatchedKeysMax) {
      ctx.reply.error(fmt::format("ERR at most {} keys can be watched", kWatchedKeysMax));
      return;
    }
    Result<std::string> version = key_version(ctx.keyspace, key);
    if (!version.is_ok()) {
      ctx.reply.error(storage_error_reply(version.status()));
      return;
    }
    session.watched.emplace_back(key, std::move(*version));
  }
  ctx.reply.ok();
}

void unwatch(CommandContext& ctx) {
  ctx.session.watched.clear();
  ctx.reply.ok();
}

CommandSpec spec(std::string name, int arity, uint32_t flags, std::string summary,
                 std::string since, std::string complexity, Handler handler) {
  return make_command_spec("transactions", std::move(name), arity, flags, std::move(summary),
                           std::move(since), std::move(complexity), std::move(handler));
}

}  // namespace

void register_transaction_commands(CommandTable& table) {
  table.add(spec("multi", 1, kNoScript | kLoading | kStale | kFast | kAllowBusy,
                 "Starts a transaction", "1.2.0", "O(1)", multi));
  table.add(spec("exec", 1, kNoScript | kLoading | kStale | kSkipSlowlog,
                 "Executes all commands in a transaction", "1.2.0",
                 "Depends on commands in the transaction", exec));
  table.add(spec("discard", 1, kNoScript | kLoading | kStale | kFast | kAllowBusy,
                 "Discards a transaction", "2.0.0", "O(N), when N is the number of queued commands",
                 discard));
  CommandSpec watch_spec =
      spec("watch", -2, kNoScript | kLoading | kStale | kFast | kAllowBusy,
           "Monitors changes to keys to determine the execution of a transaction", "2.2.0",
           "O(1) for every key.", watch);
  watch_spec.first_key = 1;
  watch_spec.last_key = -1;
  watch_spec.key_step = 1;
  table.add(std::move(watch_spec));
  table.add(spec("unwatch", 1, kNoScript | kLoading | kStale | kFast | kAllowBusy,
                 "Forgets about all watched keys", "2.2.0", "O(1)", unwatch));
  CommandSpec tx = spec("cairn.tx", -3, kNoScript | kNoMulti | kMovableKeys,
                        "Runs a transaction in its self-contained form (what EXEC runs)",
                        "cairn 0.1", "Depends on commands in the transaction", cairn_tx);
  table.add(std::move(tx));
}

}  // namespace cairn::commands
