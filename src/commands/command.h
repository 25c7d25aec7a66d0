#pragma once
// The command table is data (STYLE.md "Redis"): name, arity, flags, key positions. The generic
// checks run once, in one fixed order, in dispatch() before any handler:
//   1. lookup        → "ERR unknown command '<name>', with args beginning with: '<a>' ..."
//                      (containers: "client setname" runs "client|setname"; an unknown one is
//                      "ERR unknown subcommand '<sub>'. Try CLIENT HELP.")
//   2. auth          → "NOAUTH Authentication required." (unless the command has kNoAuth)
//   2b. internal     → "NOPERM this command is for cluster machines" (kInternal commands on a
//                      connection that did not send CAIRN.AUTH)
//   3. arity         → "ERR wrong number of arguments for '<name>' command"
//   3b. routing      → "MOVED <slot> <host:port>" (only on a cluster machine, for a connection
//                      with Session::cluster_redirects, when it does not serve the first key)
//   4. the handler.
// Handlers stay small: parse their own options, call the Keyspace, write one reply.

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "coordinator/keyspace.h"
#include "resp/writer.h"

namespace cairn::replica {
class Replica;
}  // namespace cairn::replica

namespace cairn::commands {

enum CommandFlag : uint32_t {
  kWrite = 1u << 0,      // may modify data: the reply waits for the durability sync
  kReadOnly = 1u << 1,
  kFast = 1u << 2,
  kAdmin = 1u << 3,
  kNoAuth = 1u << 4,     // allowed before AUTH (AUTH, HELLO, QUIT...)
  kLoading = 1u << 5,
  kStale = 1u << 6,
  kNoScript = 1u << 7,
  kRandom = 1u << 8,     // reply is not deterministic (COMMAND INFO reports it)
  kDenyOom = 1u << 9,
  kSkipSlowlog = 1u << 10,
  // The remaining Redis 7.0 flags COMMAND INFO reports (added after the first ten, keep the bits).
  kSkipMonitor = 1u << 11,
  kNoMulti = 1u << 12,        // refused inside MULTI
  kAllowBusy = 1u << 13,      // allowed while a script runs
  kNoMandatoryKeys = 1u << 14,
  kNoAsyncLoading = 1u << 15,
  kMovableKeys = 1u << 16,    // keys are not at fixed positions (first/last/step do not find them)
  kBlocking = 1u << 17,
  kPubSub = 1u << 18,
  // Cairn's own flags (not reported by COMMAND INFO).
  kInternal = 1u << 24,  // machine-to-machine (CAIRN.*): requires Session::internal, else
                         // "NOPERM this command is for cluster machines"
  kInline = 1u << 25,    // never blocks: may run on an event loop even in cluster mode (where
                         // other commands run on a worker because they wait for replicas)
};

// Names of set flags in the order and spelling COMMAND INFO uses ("write", "readonly", ...).
// kRandom has no flag name in Redis 7: COMMAND INFO reports it as the tip
// "nondeterministic_output" instead.
std::vector<std::string_view> flag_names(uint32_t flags);

// What a blocking command (BLPOP...) that found nothing asks of its connection: to wait for a
// push to one of `keys` and run the command again then (docs/protocol.md "Blocking commands").
struct BlockRequest {
  std::vector<std::string> keys;
  // Unix ms after which the command answers its null reply (a null array, for every blocking
  // list command of redis-server 7.0); 0 = never.
  int64_t deadline_ms = 0;
  // Waiters of a key with the same queue are served by the same data, first blocked first
  // (BlockedClients::add): "list" for the list pops, the group for XREADGROUP; empty for XREAD,
  // whose waiters are each served.
  std::string queue;
  // Unix ms at which to run the command again although nothing was written (0 = none): the
  // expiry of an XREADGROUP's stream, since nothing is written when a key expires and Redis
  // unblocks such a client when its stream is gone.
  int64_t recheck_at_ms = 0;
};

// The rest of a big reply, produced page by page after its handler returned, as the client
// drains its output (docs/protocol.md "Big replies"): a listing of a million fields is never
// whole in memory.
class ReplyProducer {
 public:
  virtual ~ReplyProducer() = default;
  // Appends the next elements of the reply to `out`, whole elements, stopping once at least
  // `bytes_min` bytes were appended. Returns whether elements remain. An error leaves the
  // reply unfinished: the connection is closed.
  virtual Result<bool> produce(resp::ReplyWriter& out, size_t bytes_min) = 0;
};

// Per-connection state, owned by the connection, visible to handlers.
struct Session {
  uint64_t id = 0;                 // CLIENT ID
  int protocol = 2;                // 2 or 3 (HELLO)
  bool authenticated = false;
  std::string name;                // CLIENT SETNAME
  std::string library_name;        // CLIENT SETINFO lib-name
  std::string library_version;
  int64_t created_ms = 0;
  int64_t last_command_ms = 0;
  std::string last_command;
  std::string peer_address;        // "ip:port"
  std::string local_address;
  bool close_after_reply = false;  // QUIT, protocol errors, CLIENT KILL
  // Set by CAIRN.AUTH <cluster secret>: the peer is another machine of the cluster. It may run
  // kInternal commands and counts as authenticated.
  bool internal = false;
  // Set by READONLY and by CLUSTER SLOTS / SHARDS / NODES: a Redis Cluster client that routes by
  // slot and follows MOVED (dispatch, step 3b). Other connections are never redirected.
  bool cluster_redirects = false;
  // CONSISTENCY [READ lvl] [WRITE lvl]: this connection's levels.
  coordinator::RequestOptions request_options;
  // Transactions (cmd_transaction.cc). After MULTI, dispatch() queues commands until EXEC or
  // DISCARD; a command refused while queuing marks the transaction failed (EXECABORT).
  bool in_multi = false;
  bool multi_failed = false;
  std::vector<std::vector<std::string>> queued;
  size_t queued_bytes = 0;
  // WATCH: each key with its version when watched (compared by EXEC, cleared by EXEC/DISCARD).
  std::vector<std::pair<std::string, std::string>> watched;
  // Whether a blocking command may ask to wait: only a client's own connection may (a command
  // forwarded to a shard leader answers at once and the client's machine does the waiting).
  bool blocking_allowed = false;
  // Set by a blocking command that found nothing and replied its null reply, when
  // blocking_allowed: the connection waits instead of sending that reply. The connection
  // clears it after each command.
  std::optional<BlockRequest> block;
  // Set while a blocked client's command runs again after it waited (a retry, not its first
  // run). Redis serves a blocked client only from keys of the right type: a retry skips a list
  // or stream key that now holds another type instead of answering WRONGTYPE, and XREADGROUP
  // answers -UNBLOCKED / -NOGROUP when its key or group went away (docs/protocol.md "Blocking
  // commands"). Forwarded to the shard leader with the command (CAIRN.FORWARD).
  bool block_retry = false;
  // Pub/sub (cmd_pubsub.cc, docs/pubsub.md): how many channels and patterns, and how many shard
  // channels, this connection is subscribed to. The subscriptions themselves live in the
  // server's registry; these counts drive the replies and RESP2's subscribed mode.
  size_t pubsub_subscriptions = 0;
  size_t pubsub_shard_subscriptions = 0;
  bool subscribed() const { return pubsub_subscriptions + pubsub_shard_subscriptions > 0; }
  // Big replies (docs/protocol.md "Big replies"): set by the connection while a read-only
  // command runs whose reply goes straight to the client (not inside EXEC, not behind replies
  // still being computed elsewhere). The handler may then write the head of its reply and
  // leave the rest to `reply_producer`, which the connection runs before anything else.
  bool reply_producer_allowed = false;
  std::shared_ptr<ReplyProducer> reply_producer;
};

// What a pub/sub subscription names: a channel (SUBSCRIBE), a glob pattern (PSUBSCRIBE) or a
// shard channel (SSUBSCRIBE).
enum class PubSubKind { kChannel, kPattern, kShard };

// Bounds of one connection's transaction state.
inline constexpr size_t kQueuedCommandsMax = 100'000;
inline constexpr size_t kQueuedBytesMax = 512ull * 1024 * 1024;
inline constexpr size_t kWatchedKeysMax = 10'000;

// One SLOWLOG entry, as Redis reports it.
struct SlowlogEntry {
  uint64_t id = 0;
  int64_t time_s = 0;  // unix time the command started
  uint64_t duration_us = 0;
  std::vector<std::string> args;  // at most 32, each at most 128 bytes (Redis's trimming)
  std::string client_address;
  std::string client_name;
};

// One LATENCY event ("command": a command that ran for latency-monitor-threshold ms or more).
struct LatencyEvent {
  std::string name;
  int64_t latest_time_s = 0;
  uint64_t latest_ms = 0;
  uint64_t max_ms = 0;
  std::vector<std::pair<int64_t, uint64_t>> history;  // (unix time, ms), oldest first, <= 160
};

struct CommandSpec;

// What the server offers handlers beyond the keyspace: settings, clients, stats, shutdown.
// Implemented by the server (src/server); handlers use it for INFO, CONFIG, CLIENT, SHUTDOWN...
class ServerControl {
 public:
  virtual ~ServerControl() = default;
  // CONFIG GET: every (name, value) whose name matches the glob `pattern`.
  virtual std::vector<std::pair<std::string, std::string>> config_get(std::string_view pattern) = 0;
  // CONFIG SET one parameter. Error message in Redis's words, without "ERR ".
  virtual Status config_set(std::string_view name, std::string_view value) = 0;
  // INFO: the text of one section ("server", "clients", ...) or of all default sections.
  virtual std::string info(std::string_view section) = 0;
  // How an EXEC (or CAIRN.TX) ended, for INFO stats (docs/transactions.md).
  enum class TransactionEnd { kCommitted, kWatchAborted, kQueueErrors, kRefused };
  virtual void note_transaction(TransactionEnd /*end*/) {}
  // SLOWLOG GET / LEN / RESET (newest first; count < 0: all).
  virtual std::vector<SlowlogEntry> slowlog_get(int64_t /*count*/) { return {}; }
  virtual size_t slowlog_len() { return 0; }
  virtual void slowlog_reset() {}
  // LATENCY LATEST / HISTORY: every event recorded; LATENCY RESET: forgets the named events
  // (all when empty) and returns how many there were.
  virtual std::vector<LatencyEvent> latency_events() { return {}; }
  virtual size_t latency_reset(const std::vector<std::string>& /*events*/) { return 0; }
  // CLIENT LIST / CLIENT INFO lines, in Redis's format.
  virtual std::string client_list() = 0;
  virtual std::string client_info(const Session& session) = 0;
  // CLIENT KILL ID <id>: returns how many clients were marked for closing.
  virtual int kill_client(uint64_t id) = 0;
  // CLIENT UNBLOCK <id> [TIMEOUT|ERROR]: wakes the client if it waits in a blocking command, which
  // then answers as if its timeout passed (`error` false) or with -UNBLOCKED. Returns 1 if the
  // client was blocked, else 0.
  virtual int unblock_client(uint64_t /*id*/, bool /*error*/) { return 0; }
  // The password set by --requirepass / CONFIG SET requirepass ("" = none).
  virtual std::string requirepass() = 0;
  // Asks the server to stop cleanly after this reply (SHUTDOWN).
  virtual void request_shutdown() = 0;
  virtual std::string version() = 0;
  // The secret other machines send with CAIRN.AUTH ("" = not part of a cluster).
  virtual std::string cluster_secret() { return ""; }
  // CAIRN.MIGRATE FINISH on a target machine: applies each (source machine id, LSN)'s WAL up to
  // that LSN for `migration`; blocks up to timeout_ms (so the command runs on a worker). The
  // error's message is the reply as is (e.g. "NOTREADY ...").
  virtual Status migration_finish(uint64_t /*migration*/,
                                  const std::vector<std::pair<uint64_t, uint64_t>>& /*source_lsns*/,
                                  int /*timeout_ms*/) {
    return Status::unavailable("NOTREADY this machine runs no migrations");
  }
  // ---- Pub/sub (docs/pubsub.md). Defaults: a server without pub/sub (unit-test fakes). ----
  // Adds (or removes) one subscription of the session's connection; whether it changed.
  virtual bool pubsub_change(const Session& /*session*/, PubSubKind /*kind*/,
                             std::string_view /*channel*/, bool /*subscribe*/) {
    return false;
  }
  // The connection's subscriptions of `kind`, in the order Redis lists them for UNSUBSCRIBE
  // without arguments.
  virtual std::vector<std::string> pubsub_subscriptions(const Session& /*session*/,
                                                        PubSubKind /*kind*/) {
    return {};
  }
  // PUBLISH (kChannel) / SPUBLISH (kShard): delivers everywhere it must go (the whole cluster,
  // or the shard's replicas) and returns the number of clients of this machine that received it.
  virtual int64_t publish(PubSubKind /*kind*/, std::string_view /*channel*/,
                          std::string_view /*message*/) {
    return 0;
  }
  // PUBSUB CHANNELS / SHARDCHANNELS (channels with subscribers matching `pattern`; "" = all),
  // NUMSUB / SHARDNUMSUB and NUMPAT, about this machine's clients.
  virtual std::vector<std::string> pubsub_channels(PubSubKind /*kind*/,
                                                   std::string_view /*pattern*/) {
    return {};
  }
  virtual int64_t pubsub_numsub(PubSubKind /*kind*/, std::string_view /*channel*/) { return 0; }
  virtual int64_t pubsub_numpat() { return 0; }
  // Messages that arrived from another machine (CAIRN.PUBLISH): delivered to this machine's
  // subscribers only.
  virtual void publish_local(PubSubKind /*kind*/, std::string_view /*channel*/,
                             std::string_view /*message*/) {}
  // Keyspace notifications (docs/pubsub.md): the notify-keyspace-events classes enabled (bits
  // of keyspace_events.h; 0 = off, the fast check every write makes), and the hook dispatch()
  // calls after a write command succeeded, with its reply.
  virtual uint32_t keyspace_event_flags() { return 0; }
  virtual void notify_keyspace_event(uint32_t /*event_class*/, std::string_view /*event*/,
                                     std::string_view /*key*/) {}
  // ---- Client-side caching (docs/tracking.md). Defaults: no tracking (unit-test fakes). ----
  // Whether dispatch() must report reads and writes (some client tracks, or cluster mode, where
  // clients of other machines may track): one relaxed load per command when off.
  virtual bool tracking_active() { return false; }
  // Before a read-only command runs: remembers `keys` for the session's client if it tracks
  // them (registered before the read, so a concurrent write cannot slip between). Also ends
  // the effect of CLIENT CACHING, which lasts one command.
  virtual void tracking_before_command(const Session& /*session*/, const CommandSpec& /*spec*/,
                                       const std::vector<std::string>& /*keys*/) {}
  // After a write command succeeded: invalidates `keys` for every tracking client, here and on
  // the other machines.
  virtual void tracking_keys_written(const Session& /*session*/,
                                     const std::vector<std::string>& /*keys*/) {}
  // FLUSHALL / FLUSHDB: every tracking client forgets everything (a null invalidation).
  virtual void tracking_flushed(const Session& /*session*/) {}
  // CLIENT TRACKING / CACHING / GETREDIR / TRACKINGINFO (args as sent, args[1] the subcommand).
  virtual void client_tracking_command(const Session& /*session*/,
                                       const std::vector<std::string>& /*args*/,
                                       resp::ReplyWriter& reply) {
    reply.error("ERR client-side caching is not available");
  }
};

struct CommandContext {
  std::vector<std::string>& args;    // args[0] is the command name as the client sent it
  resp::ReplyWriter& reply;
  Session& session;
  coordinator::Keyspace& keyspace;
  ServerControl& server;
  // This machine's replica service in cluster mode; nullptr on a single machine. Last, so
  // aggregate initialisations without it still compile.
  replica::Replica* replica = nullptr;
  // Set by a handler that wrote without its spec saying so (EXEC runs writes of the commands
  // it ran): the reply waits for the durability sync all the same.
  bool wrote = false;
  // Keyspace events a handler reports itself because its reply does not tell them (a stream
  // command: the trim inside XADD, the consumer a read created...): {class, event, key}, in
  // order, published by dispatch() after the command unless it answered an error.
  struct Event {
    uint32_t event_class = 0;
    std::string_view event;  // a string literal
    std::string key;
  };
  std::vector<Event> events{};
};

using Handler = std::function<void(CommandContext&)>;

struct CommandSpec {
  std::string name;          // lower case, e.g. "get" or, for a subcommand, "client|setname"
  int arity = 0;             // Redis convention: N = exactly N arguments, -N = at least N
  uint32_t flags = 0;
  int first_key = 0;         // key positions as COMMAND INFO reports them (0 = no keys)
  int last_key = 0;          // -1 = last argument
  int key_step = 0;
  // > 0: args[numkeys_index] is a count of keys that follow it (ZUNION, SINTERCARD...); those
  // keys come after the ones of first/last/step (COMMAND GETKEYS, routing, a "keynum" key spec).
  int numkeys_index = 0;
  // Non-empty: the keys are the first half of the arguments after the first argument equal to
  // this word, case-insensitively, from args[keyword_from] on (XREAD ... STREAMS k1 k2 id1 id2).
  std::string keys_after_keyword;
  int keyword_from = 1;
  std::string group;         // "string", "generic", "connection", "server" (COMMAND DOCS)
  std::string summary;
  std::string since;         // first Redis version with the command, e.g. "1.0.0"
  std::string complexity;
  Handler handler;           // absent for a container whose subcommands do the work
  std::vector<CommandSpec> subcommands;
  // Optional, for COMMAND INFO (Redis 7 layout). ACL categories without "@" beyond those implied
  // by the flags (write, read, admin+dangerous, fast/slow...) and by the group (string → string,
  // generic → keyspace, connection → connection), e.g. {"dangerous"} for KEYS.
  std::vector<std::string> acl_categories;
  // Command tips, e.g. "nondeterministic_output", "request_policy:all_shards".
  std::vector<std::string> tips;
  // Flags of the key spec, e.g. {"RW", "access", "update"}. Empty: derived from the command flags
  // (readonly → RO access, write → RW update).
  std::vector<std::string> key_spec_flags;
};

// A spec with the fields every command sets; each family adds key positions, tips and
// subcommands on the result.
CommandSpec make_command_spec(std::string group, std::string name, int arity, uint32_t flags,
                              std::string summary, std::string since, std::string complexity,
                              Handler handler);
// The same with the keys at first_key..last_key (-1: the last argument, -2: the one before it),
// step 1; first_key 0 for commands without keys at fixed positions.
CommandSpec make_keyed_command_spec(std::string group, std::string name, int arity,
                                    uint32_t flags, int first_key, int last_key,
                                    std::string summary, std::string since,
                                    std::string complexity, Handler handler);

class CommandTable {
 public:
  void add(CommandSpec spec);
  // Looks up a command by name, case-insensitively. nullptr if unknown.
  const CommandSpec* find(std::string_view name) const;
  // Looks up `container|sub`, case-insensitively. nullptr if unknown.
  const CommandSpec* find_subcommand(const CommandSpec& container, std::string_view sub) const;
  const std::map<std::string, CommandSpec>& all() const { return commands_; }

 private:
  std::map<std::string, CommandSpec> commands_;  // by lower-case name
};

// Every command Cairn knows (registered by each family's register_* function).
const CommandTable& default_table();

// The reply of a container's HELP: the usage line, `lines`, then HELP itself (Redis's layout).
void write_help(resp::ReplyWriter& reply, std::string_view command,
                const std::vector<std::string_view>& lines);

// Registration per family; each lives in its cmd_<family>.cc.
void register_string_commands(CommandTable& table);
void register_key_commands(CommandTable& table);
void register_hash_commands(CommandTable& table);         // HSET HGET ... (rows)
void register_set_commands(CommandTable& table);          // SADD SMEMBERS ... (rows)
void register_zset_commands(CommandTable& table);         // ZADD ZRANGE ... (rows)
void register_list_commands(CommandTable& table);         // LPUSH LRANGE BLPOP ... (rows)
void register_stream_commands(CommandTable& table);       // XADD XRANGE XREADGROUP ... (rows)
void register_bit_commands(CommandTable& table);          // SETBIT GETBIT BITCOUNT
void register_connection_commands(CommandTable& table);   // PING ECHO HELLO AUTH QUIT SELECT CLIENT
void register_server_commands(CommandTable& table);       // COMMAND INFO CONFIG TIME SHUTDOWN...
void register_internal_commands(CommandTable& table);     // CAIRN.* (docs/formats.md)
void register_cluster_commands(CommandTable& table);      // CONSISTENCY CLUSTER READONLY...
void register_transaction_commands(CommandTable& table);  // MULTI EXEC DISCARD WATCH UNWATCH
void register_pubsub_commands(CommandTable& table);       // SUBSCRIBE PUBLISH PUBSUB... RESET
// (COMMAND's handlers describe default_table(), whichever table dispatched them.)

// Indexes into `args` (args[0] is the command) of the keys of a command with `argc` arguments,
// from the spec's first/last/step. Empty for commands without keys or with too few arguments.
std::vector<size_t> key_indexes(const CommandSpec& spec, size_t argc);
// The same, plus the keys counted by args[spec.numkeys_index] (when the count is valid).
std::vector<size_t> key_indexes(const CommandSpec& spec, std::span<const std::string> args);

// On a cluster machine: "MOVED <slot> <host:port>" when this machine serves neither the slot of
// `key` as Redis Cluster clients see it nor the key's token; nullopt otherwise (and on a single
// machine).
std::optional<std::string> moved_error_for_key(const CommandContext& context,
                                               std::string_view key);

struct DispatchOutcome {
  const CommandSpec* spec = nullptr;  // the command that ran (nullptr if rejected before lookup)
  bool wrote = false;                 // spec has kWrite: the reply must wait for sync
};

// Runs the generic checks in order, then the handler; writes exactly one reply (or, for
// handlers like SUBSCRIBE in the future, the replies they define).
DispatchOutcome dispatch(const CommandTable& table, CommandContext& context);

}  // namespace cairn::commands
