// Transactions (docs/transactions.md): MULTI, EXEC, DISCARD, WATCH, UNWATCH, with
// redis-server 7.0's replies and errors, and CAIRN.TX, the self-contained form EXEC runs.
//
// MULTI makes dispatch() queue the connection's commands (Session::queued) instead of running
// them; a command refused while queuing (unknown, wrong arity, not allowed in a transaction)
// marks the transaction failed and EXEC answers EXECABORT. WATCH records a version of each key
// (coordinator::key_version); EXEC runs the queued commands one after the other while holding the
// per-key locks of every key they name and every watched key (Keyspace::atomically), after
// checking that no watched key changed, and answers their replies as one array (nil if a
// watched key changed).
//
// A transaction whose commands all write keys' own cells only (strings, expiries, deletions:
// runs_on_overlay) runs against a TxOverlay instead: its writes are collected and applied
// together at the end (Keyspace::apply_together), so a crash leaves all of them or none
// (docs/transactions.md "Crash atomicity"). Others run command by command as before.
//
// EXEC first rewrites its own arguments into
//   CAIRN.TX <watched> [<key> <version>]... <commands> [<argc> <arg>...]...
// and runs that. In a cluster, atomically() on a machine that is not the shard's leader asks
// for a redirect, and the runner forwards the command's arguments to the leader: the rewritten
// ones carry the whole transaction, so the leader runs it under its locks, against QUORUM reads
// and writes like any read-modify-write command (docs/cluster.md).

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "commands/command.h"
#include "commands/parse.h"
#include "common/assert.h"
#include "coordinator/tx_overlay.h"
#include "storage/cell.h"

namespace cairn::commands {
namespace {

constexpr std::string_view kTxCommand = "CAIRN.TX";

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

// Commands of the families that write only keys' own cells (strings, a key's expiry, a whole
// key's deletion), which TxOverlay can collect. Those of these families that write the fields
// of a row (RENAME, COPY, MOVE and RESTORE of a hash, SORT ... STORE) or walk the keyspace
// (SCAN, KEYS, RANDOMKEY) are not.
bool runs_on_overlay(const CommandSpec& spec) {
  static const std::set<std::string, std::less<>> kExcluded = {
      "copy", "keys", "move", "randomkey", "rename", "renamenx", "restore", "scan", "sort"};
  if (kExcluded.contains(spec.name)) return false;
  if (spec.group == "string" || spec.group == "generic" || spec.group == "bitmap") return true;
  return spec.group == "connection" && spec.first_key == 0 && (spec.flags & kWrite) == 0;
}

// Whether the whole transaction runs on a TxOverlay and is applied all or nothing.
bool atomic_on_overlay(const CommandTable& table, const Transaction& tx) {
  return std::all_of(tx.commands.begin(), tx.commands.end(), [&](const auto& command) {
    const CommandSpec* spec = table.find(command[0]);
    return spec != nullptr && runs_on_overlay(*spec);
  });
}

// Runs the commands of `tx`, each as if sent alone, its reply an element of one array (or, for
// a command run alone as a transaction, its reply only); an error is its reply and the others
// still run (Redis: no rollback). Returns whether any wrote.
bool run_commands(CommandContext& ctx, Transaction& tx, coordinator::Keyspace& keyspace,
                  bool as_array = true) {
  const CommandTable& table = default_table();
  bool wrote = false;
  if (as_array) ctx.reply.array(tx.commands.size());
  for (std::vector<std::string>& command : tx.commands) {
    CommandContext inner{command, ctx.reply, ctx.session, keyspace, ctx.server, ctx.replica};
    const DispatchOutcome outcome = dispatch(table, inner);
    wrote = wrote || outcome.wrote || inner.wrote;
  }
  return wrote;
}

// Attempts of a transaction across shards that met a conflict (another transaction holding or
// changing one of its keys) before it gives up; each waits a random pause first, growing.
constexpr int kCrossShardAttemptsMax = 100;

// A transaction whose keys live on several shards (docs/transactions.md "Across shards"): the
// versions of its keys are read, its commands run on an overlay, and the collected writes are
// committed by two-phase commit, which checks those versions. On a conflict nothing was
// applied and it runs again. `started` ends false if a watched key had changed (nothing ran).
Status run_across_shards(CommandContext& ctx, Transaction& tx, const std::vector<std::string>& keys,
                         bool as_array, bool& started, bool& wrote) {
  std::minstd_rand random(static_cast<uint32_t>(std::hash<std::string>{}(keys.front())));
  for (int attempt = 0; attempt < kCrossShardAttemptsMax; ++attempt) {
    coordinator::CrossShardCommit commit;
    for (const std::string& key : keys) {
      Result<std::string> version = coordinator::key_version(ctx.keyspace, key);
      if (!version.is_ok()) return version.status();
      commit.versions.emplace_back(key, std::move(*version));
    }
    for (const auto& [key, watched_version] : tx.watched) {
      const auto seen = std::find_if(commit.versions.begin(), commit.versions.end(),
                                     [&](const auto& entry) { return entry.first == key; });
      CAIRN_ASSERT(seen != commit.versions.end(), "every watched key is a key of the transaction");
      if (seen->second != watched_version) return Status::ok();  // aborted: nothing started
    }
    started = true;
    const size_t reply_start = ctx.reply.buffer()->size();
    coordinator::TxOverlay overlay(ctx.keyspace);
    wrote = run_commands(ctx, tx, overlay, as_array);
    commit.writes = overlay.collected();
    const Status committed = ctx.keyspace.commit_across_shards(commit);
    if (committed.is_ok()) return committed;
    ctx.reply.buffer()->resize(reply_start);
    started = false;
    if (committed.message().rfind("TXCONFLICT", 0) != 0) return committed;
    const int pause_ms_max = 1 << std::min(attempt, 6);
    std::this_thread::sleep_for(std::chrono::milliseconds(1 + random() % pause_ms_max));
  }
  return Status::busy(
      fmt::format("TXCONFLICT the transaction met a conflict {} times; nothing "
                  "was applied",
                  kCrossShardAttemptsMax));
}

// Runs `tx` atomically and writes its reply: the array of the commands' replies, nil if a
// watched key changed, or an error if the keys' locks could not be taken (CROSSSHARD, a
// shard without a leader...) or, for a transaction on the overlay, if its writes could not be
// applied (then none of them is applied, or, UNCERTAIN, all of them may be).
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
  const bool on_overlay = atomic_on_overlay(table, tx);
  bool started = false;
  bool wrote = false;
  size_t reply_start = 0;
  // Inside a transaction a blocking command answers at once, as in Redis: nothing else may run
  // until EXEC ends.
  const bool blocking_allowed = ctx.session.blocking_allowed;
  ctx.session.blocking_allowed = false;
  // Each reply goes into EXEC's array whole: no producer finishes one later.
  const bool producer_allowed = ctx.session.reply_producer_allowed;
  ctx.session.reply_producer_allowed = false;
  Status status = ctx.keyspace.atomically(keys, [&]() -> Status {
    for (const auto& [key, version] : tx.watched) {
      Result<std::string> now = coordinator::key_version(ctx.keyspace, key);
      if (!now.is_ok()) return now.status();
      if (*now != version) return Status::ok();  // aborted: nothing started
    }
    started = true;
    reply_start = ctx.reply.buffer()->size();
    if (!on_overlay) {
      wrote = run_commands(ctx, tx, ctx.keyspace);
      return Status::ok();
    }
    coordinator::TxOverlay overlay(ctx.keyspace);
    wrote = run_commands(ctx, tx, overlay);
    return overlay.commit();
  });
  if (on_overlay && status.message() == coordinator::kCrossShardMessage) {
    status = run_across_shards(ctx, tx, keys, /*as_array=*/true, started, wrote);
  }
  ctx.session.blocking_allowed = blocking_allowed;
  ctx.session.reply_producer_allowed = producer_allowed;
  ctx.wrote = wrote;
  if (!status.is_ok()) {
    CAIRN_ASSERT(!started || on_overlay, "a transaction fails only before its first command");
    // The commands' replies are dropped: their writes were not applied (or are uncertain).
    if (started) ctx.reply.buffer()->resize(reply_start);
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

}  // namespace

bool run_alone_across_shards(CommandContext& ctx, std::span<const std::string> keys) {
  if (keys.size() < 2 || ctx.keyspace.single_shard(keys)) return false;
  Transaction tx;
  tx.commands.push_back(ctx.args);
  const std::vector<std::string> key_list(keys.begin(), keys.end());
  std::set<std::string> key_set(key_list.begin(), key_list.end());
  bool started = false;
  bool wrote = false;
  const Status status =
      run_across_shards(ctx, tx, std::vector<std::string>(key_set.begin(), key_set.end()),
                        /*as_array=*/false, started, wrote);
  ctx.wrote = wrote;
  if (!status.is_ok()) ctx.reply.error(storage_error_reply(status));
  return true;
}

namespace {

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
    Result<std::string> version = coordinator::key_version(ctx.keyspace, key);
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
