#include "commands/command.h"
#include "commands/keyspace_events.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <optional>
#include <utility>

#include "commands/parse.h"
#include "common/assert.h"
#include "replica/replica.h"
#include "topology/slot_map.h"
#include "topology/token.h"

namespace cairn::commands {
namespace {

std::string lower(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string upper(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

// Redis prints at most 128 bytes of a client-supplied name in an error ("%.128s").
constexpr size_t kErrorNameBytesMax = 128;
// Redis stops listing the arguments of an unknown command once the list reaches 128 bytes.
constexpr size_t kErrorArgsBytesMax = 128;

// Mirrors the arithmetic of Redis's "'%.*s' " with precision 128 - sdslen(args), where the
// length is taken before the opening quote is appended.
// What printf's "%.*s" prints of `text`: at most `bytes_max` bytes, and nothing from the first
// NUL on (Redis formats these messages with printf).
std::string_view printf_prefix(std::string_view text, size_t bytes_max) {
  return text.substr(0, std::min(bytes_max, text.find('\0')));
}

std::string unknown_command_message(const std::vector<std::string>& args) {
  std::string message = "ERR unknown command '";
  message += printf_prefix(args[0], kErrorNameBytesMax);
  message += "', with args beginning with: ";
  std::string listed;
  for (size_t i = 1; i < args.size() && listed.size() < kErrorArgsBytesMax; ++i) {
    const size_t room = kErrorArgsBytesMax - listed.size();
    listed += '\'';
    listed += printf_prefix(args[i], room);
    listed += "' ";
  }
  return message + listed;
}

bool arity_ok(const CommandSpec& spec, size_t argc) {
  if (spec.arity > 0) return argc == static_cast<size_t>(spec.arity);
  return argc >= static_cast<size_t>(-spec.arity);
}

// The MOVED error for a Redis Cluster client (Session::cluster_redirects) whose command's first
// key this machine does not serve, or nullopt to run the command here. This machine serves a key
// when it is a voting replica or extra of the shard its slot is reported on (what the client's
// map says) or of the shard holding the key's token (they differ only in a slot split between
// shards); the keys of such a slot held elsewhere are forwarded as for any client. Redirecting
// to the shard the map names keeps a client's slot cache and the redirects consistent.
std::optional<std::string> moved_error(const CommandSpec& spec, const CommandContext& context) {
  const std::vector<size_t> keys = key_indexes(spec, context.args);
  if (keys.empty()) return std::nullopt;
  return moved_error_for_key(context, context.args[keys.front()]);
}

// The commands a RESP2 connection in subscribed mode may run (Redis's list).
bool allowed_while_subscribed(const CommandSpec& spec) {
  static constexpr std::string_view kAllowed[] = {
      "ping", "subscribe", "ssubscribe", "unsubscribe", "sunsubscribe",
      "psubscribe", "punsubscribe", "quit", "reset"};
  return std::find(std::begin(kAllowed), std::end(kAllowed), spec.name) != std::end(kAllowed);
}

}  // namespace

std::optional<std::string> moved_error_for_key(const CommandContext& context,
                                               std::string_view key) {
  if (context.replica == nullptr) return std::nullopt;
  const std::shared_ptr<const topology::RoutingTable> table = context.replica->tables().current();
  if (table == nullptr) return std::nullopt;
  const uint64_t self = context.replica->machine_id();
  const topology::Slot slot = topology::slot_of(key);
  const topology::Shard* reported = table->find_shard(topology::slot_owner(*table, slot));
  if (reported == nullptr || topology::serves_shard(*reported, self)) return std::nullopt;
  if (topology::serves_shard(table->shard_for_token(topology::token_of(key)), self)) {
    return std::nullopt;
  }
  const topology::Machine* primary = topology::shard_primary(*table, *reported);
  if (primary == nullptr) return std::nullopt;
  return fmt::format("MOVED {} {}", slot, primary->address);
}

CommandSpec make_command_spec(std::string group, std::string name, int arity, uint32_t flags,
                              std::string summary, std::string since, std::string complexity,
                              Handler handler) {
  CommandSpec spec;
  spec.name = std::move(name);
  spec.arity = arity;
  spec.flags = flags;
  spec.group = std::move(group);
  spec.summary = std::move(summary);
  spec.since = std::move(since);
  spec.complexity = std::move(complexity);
  spec.handler = std::move(handler);
  return spec;
}

CommandSpec make_keyed_command_spec(std::string group, std::string name, int arity,
                                    uint32_t flags, int first_key, int last_key,
                                    std::string summary, std::string since,
                                    std::string complexity, Handler handler) {
  CommandSpec spec =
      make_command_spec(std::move(group), std::move(name), arity, flags, std::move(summary),
                        std::move(since), std::move(complexity), std::move(handler));
  spec.first_key = first_key;
  spec.last_key = last_key;
  spec.key_step = first_key == 0 ? 0 : 1;
  return spec;
}

std::vector<std::string_view> flag_names(uint32_t flags) {
  // The order of Redis 7.0's addReplyCommandFlags; clients only care about the names.
  static constexpr std::pair<uint32_t, std::string_view> kNames[] = {
      {kWrite, "write"},         {kReadOnly, "readonly"},
      {kDenyOom, "denyoom"},     {kAdmin, "admin"},
      {kPubSub, "pubsub"},       {kNoScript, "noscript"},
      {kBlocking, "blocking"},   {kLoading, "loading"},
      {kStale, "stale"},         {kSkipMonitor, "skip_monitor"},
      {kSkipSlowlog, "skip_slowlog"}, {kFast, "fast"},
      {kNoAuth, "no_auth"},      {kNoMandatoryKeys, "no_mandatory_keys"},
      {kNoAsyncLoading, "no_async_loading"}, {kNoMulti, "no_multi"},
      {kMovableKeys, "movablekeys"}, {kAllowBusy, "allow_busy"},
  };
  std::vector<std::string_view> names;
  for (const auto& [flag, name] : kNames) {
    if ((flags & flag) != 0) names.push_back(name);
  }
  return names;
}

void CommandTable::add(CommandSpec spec) {
  std::string key = lower(spec.name);
  CAIRN_ASSERT(key == spec.name, "command names are registered in lower case: " + spec.name);
  CAIRN_ASSERT(spec.arity != 0, "command arity must not be 0: " + spec.name);
  CAIRN_ASSERT(spec.handler || !spec.subcommands.empty(),
               "command needs a handler or subcommands: " + spec.name);
  const bool inserted = commands_.emplace(std::move(key), std::move(spec)).second;
  CAIRN_ASSERT(inserted, "command registered twice");
}

const CommandSpec* CommandTable::find(std::string_view name) const {
  auto it = commands_.find(lower(name));
  return it == commands_.end() ? nullptr : &it->second;
}

const CommandSpec* CommandTable::find_subcommand(const CommandSpec& container,
                                                 std::string_view sub) const {
  const std::string full = container.name + "|" + lower(sub);
  for (const CommandSpec& spec : container.subcommands) {
    if (spec.name == full) return &spec;
  }
  return nullptr;
}

const CommandTable& default_table() {
  // A function-local static is initialized exactly once even with concurrent callers (C++11
  // "magic statics"), so every event loop can call this without further locking.
  static const CommandTable table = [] {
    CommandTable t;
    register_string_commands(t);
    register_key_commands(t);
    register_hash_commands(t);
    register_set_commands(t);
    register_zset_commands(t);
    register_list_commands(t);
    register_stream_commands(t);
    register_bit_commands(t);
    register_connection_commands(t);
    register_server_commands(t);
    register_internal_commands(t);
    register_cluster_commands(t);
    register_transaction_commands(t);
    register_pubsub_commands(t);
    return t;
  }();
  return table;
}

std::vector<size_t> key_indexes(const CommandSpec& spec, size_t argc) {
  std::vector<size_t> indexes;
  if (spec.first_key <= 0 || argc <= static_cast<size_t>(spec.first_key)) return indexes;
  const int64_t count = static_cast<int64_t>(argc);
  const int64_t last = spec.last_key < 0 ? count + spec.last_key : spec.last_key;
  const int64_t step = spec.key_step > 0 ? spec.key_step : 1;
  for (int64_t i = spec.first_key; i <= last && i < count; i += step) {
    indexes.push_back(static_cast<size_t>(i));
  }
  return indexes;
}

std::vector<size_t> key_indexes(const CommandSpec& spec, std::span<const std::string> args) {
  std::vector<size_t> indexes = key_indexes(spec, args.size());
  if (!spec.keys_after_keyword.empty()) {
    for (size_t i = static_cast<size_t>(std::max(spec.keyword_from, 1)); i < args.size(); ++i) {
      if (!equals_ignore_case(args[i], spec.keys_after_keyword)) continue;
      const size_t rest = args.size() - i - 1;
      if (rest % 2 != 0) break;  // unbalanced: the command answers its own error
      for (size_t k = 0; k < rest / 2; ++k) indexes.push_back(i + 1 + k);
      break;
    }
    return indexes;
  }
  const size_t at = static_cast<size_t>(spec.numkeys_index);
  if (at == 0 || at >= args.size()) return indexes;
  const std::optional<int64_t> count = parse_int64(args[at]);
  if (!count || *count < 1 || static_cast<uint64_t>(*count) > args.size() - at - 1) {
    return indexes;
  }
  for (size_t i = 0; i < static_cast<size_t>(*count); ++i) indexes.push_back(at + 1 + i);
  return indexes;
}

namespace {

// Commands that run at once inside MULTI rather than being queued (Redis's list).
bool runs_inside_multi(const CommandSpec& spec) {
  return spec.name == "exec" || spec.name == "discard" || spec.name == "multi" ||
         spec.name == "watch" || spec.name == "quit" || spec.name == "reset";
}

}  // namespace

DispatchOutcome dispatch(const CommandTable& table, CommandContext& context) {
  std::vector<std::string>& args = context.args;
  CAIRN_ASSERT(!args.empty(), "dispatch needs at least the command name");
  DispatchOutcome outcome;
  Session& session = context.session;
  // A command refused before it runs; inside MULTI it also fails the transaction (EXECABORT).
  auto reject = [&](std::string_view message) {
    context.reply.error(message);
    if (session.in_multi) session.multi_failed = true;
    return outcome;
  };

  // 1. Lookup, including the subcommand of a container (CLIENT SETNAME → "client|setname").
  const CommandSpec* spec = table.find(args[0]);
  if (spec == nullptr) return reject(unknown_command_message(args));
  if (!spec->subcommands.empty() && args.size() >= 2) {
    const CommandSpec* sub = table.find_subcommand(*spec, args[1]);
    if (sub == nullptr) {
      std::string message = "ERR unknown subcommand '";
      message += printf_prefix(args[1], kErrorNameBytesMax);
      message += "'. Try " + upper(args[0]) + " HELP.";
      return reject(message);
    }
    spec = sub;
  }

  // 2. Authentication: before the arity check, so an unauthenticated client learns nothing
  // about a command's arguments.
  if ((spec->flags & kNoAuth) == 0 && !session.authenticated) {
    return reject("NOAUTH Authentication required.");
  }

  // 2b. Machine-to-machine commands need a connection that sent CAIRN.AUTH.
  if ((spec->flags & kInternal) != 0 && !session.internal) {
    return reject("NOPERM this command is for cluster machines");
  }

  // 3. Arity.
  if (!arity_ok(*spec, args.size())) {
    return reject("ERR wrong number of arguments for '" + spec->name + "' command");
  }

  // 3a. A RESP2 connection with subscriptions only takes the pub/sub commands (redis-server's
  // words); RESP3 takes everything, since pushes are told apart from replies.
  if (session.protocol == 2 && session.subscribed() && !allowed_while_subscribed(*spec)) {
    return reject("ERR Can't execute '" + spec->name +
                  "': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed "
                  "in this context");
  }

  // 3b. Routing, for Redis Cluster clients only (docs/cluster.md "Redis Cluster clients"):
  // every other connection may send any key to any machine.
  if (session.cluster_redirects && context.replica != nullptr) {
    if (std::optional<std::string> moved = moved_error(*spec, context)) return reject(*moved);
  }

  // 3c. Inside MULTI: queued for EXEC (cmd_transaction.cc), within the connection's bounds.
  if (session.in_multi && !runs_inside_multi(*spec)) {
    if ((spec->flags & kNoMulti) != 0) return reject("ERR Command not allowed inside a transaction");
    size_t bytes = 0;
    for (const std::string& arg : args) bytes += arg.size();
    if (session.queued.size() >= kQueuedCommandsMax ||
        session.queued_bytes + bytes > kQueuedBytesMax) {
      return reject(fmt::format("ERR a transaction holds at most {} commands and {} bytes",
                                kQueuedCommandsMax, kQueuedBytesMax));
    }
    session.queued_bytes += bytes;
    session.queued.push_back(args);
    context.reply.simple("QUEUED");
    return outcome;
  }

  // 4. The handler. A container reached without a subcommand has an arity of at least 2, so
  // it only gets here if it has a handler of its own (plain COMMAND).
  CAIRN_ASSERT(static_cast<bool>(spec->handler), "command without handler passed arity: " +
                                                     spec->name);
  session.last_command = spec->name;
  outcome.spec = spec;
  const size_t reply_start = context.reply.buffer()->size();
  // Keyspace notifications (docs/pubsub.md): one relaxed load per write when they are off.
  const bool notify = (spec->flags & kWrite) != 0 && context.server.keyspace_event_flags() != 0;
  const KeyspaceEventPlan plan =
      notify ? plan_keyspace_events(context, *spec) : KeyspaceEventPlan{};
  // Client-side caching (docs/tracking.md): reads register their keys before they read, writes
  // invalidate the keys they name once they succeeded.
  const bool tracking = context.server.tracking_active();
  std::vector<std::string> tracked_keys;
  if (tracking) {
    for (size_t index : key_indexes(*spec, std::span<const std::string>(args))) {
      tracked_keys.push_back(args[index]);
    }
    context.server.tracking_before_command(session, *spec, tracked_keys);
  }
  // Only a read's reply may be left to a producer: a write's reply waits for the sync whole.
  const bool producer_allowed = session.reply_producer_allowed;
  session.reply_producer_allowed = producer_allowed && (spec->flags & kWrite) == 0;
  spec->handler(context);
  session.reply_producer_allowed = producer_allowed;
  outcome.wrote = (spec->flags & kWrite) != 0 || context.wrote;
  const std::string_view reply = std::string_view(*context.reply.buffer()).substr(reply_start);
  if (notify) emit_keyspace_events(context, *spec, reply, plan);
  const bool failed = !reply.empty() && (reply[0] == '-' || reply[0] == '!');
  if (tracking && (spec->flags & kWrite) != 0 && !failed) {
    if (spec->name == "flushall" || spec->name == "flushdb") {
      context.server.tracking_flushed(session);
    } else if (!tracked_keys.empty()) {
      context.server.tracking_keys_written(session, tracked_keys);
    }
  }
  return outcome;
}

}  // namespace cairn::commands
