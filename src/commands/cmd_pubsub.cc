// Pub/sub commands: SUBSCRIBE UNSUBSCRIBE PSUBSCRIBE PUNSUBSCRIBE SSUBSCRIBE SUNSUBSCRIBE
// PUBLISH SPUBLISH PUBSUB, and RESET. Replies follow redis-server 7.0 byte for byte: each
// (un)subscription confirmation is a push (RESP3 ">3", RESP2 "*3") naming the channel and the
// connection's subscription count after it. The registry and the delivery of messages are the
// server's (ServerControl, src/server/pubsub.h); docs/pubsub.md.

#include <algorithm>
#include <string>
#include <string_view>
#include <vector>

#include "commands/command.h"
#include "commands/parse.h"
#include "topology/token.h"

namespace cairn::commands {
namespace {

// Pub/sub commands never wait for replicas: they run on the connection's loop (kInline), after
// every earlier request of the connection completed (ClientSession holds them until then).
constexpr uint32_t kSubscribeFlags = kPubSub | kNoScript | kLoading | kStale | kInline;
constexpr uint32_t kPublishFlags = kPubSub | kLoading | kStale | kFast | kInline;

// The count a confirmation of `kind` reports: channels and patterns together, or shard channels.
size_t& count_of(Session& session, PubSubKind kind) {
  return kind == PubSubKind::kShard ? session.pubsub_shard_subscriptions
                                    : session.pubsub_subscriptions;
}

void confirm(CommandContext& context, std::string_view verb, const std::string* channel,
             PubSubKind kind) {
  context.reply.push(3);
  context.reply.bulk(verb);
  if (channel != nullptr) {
    context.reply.bulk(*channel);
  } else {
    context.reply.null();
  }
  context.reply.integer(static_cast<int64_t>(count_of(context.session, kind)));
}

void subscribe_all(CommandContext& context, PubSubKind kind, std::string_view verb) {
  for (size_t i = 1; i < context.args.size(); ++i) {
    if (context.server.pubsub_change(context.session, kind, context.args[i], true)) {
      ++count_of(context.session, kind);
    }
    confirm(context, verb, &context.args[i], kind);
  }
}

void unsubscribe_all(CommandContext& context, PubSubKind kind, std::string_view verb) {
  std::vector<std::string> names;
  if (context.args.size() > 1) {
    names.assign(context.args.begin() + 1, context.args.end());
  } else {
    names = context.server.pubsub_subscriptions(context.session, kind);
    if (names.empty()) {
      // Nothing to leave: one confirmation with a null channel.
      confirm(context, verb, nullptr, kind);
      return;
    }
  }
  for (const std::string& name : names) {
    if (context.server.pubsub_change(context.session, kind, name, false)) {
      --count_of(context.session, kind);
    }
    confirm(context, verb, &name, kind);
  }
}

void subscribe(CommandContext& context) {
  subscribe_all(context, PubSubKind::kChannel, "subscribe");
}
void unsubscribe(CommandContext& context) {
  unsubscribe_all(context, PubSubKind::kChannel, "unsubscribe");
}
void psubscribe(CommandContext& context) {
  subscribe_all(context, PubSubKind::kPattern, "psubscribe");
}
void punsubscribe(CommandContext& context) {
  unsubscribe_all(context, PubSubKind::kPattern, "punsubscribe");
}

// On a cluster machine, shard channels live on their shard's replicas: every channel of one
// command must hash to one slot (CROSSSLOT otherwise) that this machine serves (MOVED
// otherwise), as in Redis Cluster.
bool shard_channels_here(CommandContext& context) {
  if (context.replica == nullptr || context.args.size() < 2) return true;
  const topology::Slot slot = topology::slot_of(context.args[1]);
  for (size_t i = 2; i < context.args.size(); ++i) {
    if (topology::slot_of(context.args[i]) != slot) {
      context.reply.error("CROSSSLOT Keys in request don't hash to the same slot");
      return false;
    }
  }
  if (std::optional<std::string> moved = moved_error_for_key(context, context.args[1])) {
    context.reply.error(*moved);
    return false;
  }
  return true;
}

void ssubscribe(CommandContext& context) {
  if (!shard_channels_here(context)) return;
  subscribe_all(context, PubSubKind::kShard, "ssubscribe");
}
void sunsubscribe(CommandContext& context) {
  if (context.args.size() > 1 && !shard_channels_here(context)) return;
  unsubscribe_all(context, PubSubKind::kShard, "sunsubscribe");
}

void publish(CommandContext& context) {
  context.reply.integer(
      context.server.publish(PubSubKind::kChannel, context.args[1], context.args[2]));
}
void spublish(CommandContext& context) {
  context.reply.integer(
      context.server.publish(PubSubKind::kShard, context.args[1], context.args[2]));
}

void write_channels(CommandContext& context, PubSubKind kind) {
  if (context.args.size() > 3) {
    context.reply.error("ERR unknown subcommand or wrong number of arguments for '" +
                        context.args[1] + "'. Try PUBSUB HELP.");
    return;
  }
  const std::string_view pattern =
      context.args.size() > 2 ? std::string_view(context.args[2]) : std::string_view();
  std::vector<std::string> channels = context.server.pubsub_channels(kind, pattern);
  context.reply.array(channels.size());
  for (const std::string& channel : channels) context.reply.bulk(channel);
}

void write_numsub(CommandContext& context, PubSubKind kind) {
  context.reply.array((context.args.size() - 2) * 2);
  for (size_t i = 2; i < context.args.size(); ++i) {
    context.reply.bulk(context.args[i]);
    context.reply.integer(context.server.pubsub_numsub(kind, context.args[i]));
  }
}

void pubsub_channels(CommandContext& context) { write_channels(context, PubSubKind::kChannel); }
void pubsub_shardchannels(CommandContext& context) {
  write_channels(context, PubSubKind::kShard);
}
void pubsub_numsub(CommandContext& context) { write_numsub(context, PubSubKind::kChannel); }
void pubsub_shardnumsub(CommandContext& context) { write_numsub(context, PubSubKind::kShard); }
void pubsub_numpat(CommandContext& context) {
  context.reply.integer(context.server.pubsub_numpat());
}
void pubsub_help(CommandContext& context) {
  write_help(context.reply, "PUBSUB",
             {"CHANNELS [<pattern>]",
              "    Return the currently active channels matching a <pattern> (default: '*').",
              "NUMPAT", "    Return number of subscriptions to patterns.",
              "NUMSUB [<channel> ...]",
              "    Return the number of subscribers for the specified channels, excluding",
              "    pattern subscriptions(default: no channels).",
              "SHARDCHANNELS [<pattern>]",
              "    Return the currently active shard level channels matching a <pattern> "
              "(default: '*').",
              "SHARDNUMSUB [<shardchannel> ...]",
              "    Return the number of subscribers for the specified shard level channel(s)"});
}

// RESET: the connection as new (Redis's resetCommand): no transaction, no watched keys, no
// subscriptions, RESP2, no name, no redirects, authenticated only without a password.
void reset(CommandContext& context) {
  Session& session = context.session;
  session.in_multi = session.multi_failed = false;
  session.queued.clear();
  session.queued_bytes = 0;
  session.watched.clear();
  for (PubSubKind kind : {PubSubKind::kChannel, PubSubKind::kPattern, PubSubKind::kShard}) {
    for (const std::string& name : context.server.pubsub_subscriptions(session, kind)) {
      context.server.pubsub_change(session, kind, name, false);
    }
  }
  session.pubsub_subscriptions = session.pubsub_shard_subscriptions = 0;
  // RESET also turns client-side caching off (CLIENT TRACKING OFF's reply is dropped).
  if (context.server.tracking_active()) {
    std::string ignored;
    resp::ReplyWriter discard(&ignored);
    context.server.client_tracking_command(session, {"client", "tracking", "off"}, discard);
  }
  session.protocol = 2;
  context.reply.set_protocol(2);
  session.name.clear();
  session.cluster_redirects = false;
  session.request_options = {};
  if (!session.internal) session.authenticated = context.server.requirepass().empty();
  context.reply.simple("RESET");
}

CommandSpec spec(std::string name, int arity, uint32_t flags, std::string summary,
                 std::string since, std::string complexity, Handler handler) {
  return make_command_spec("pubsub", std::move(name), arity, flags, std::move(summary),
                           std::move(since), std::move(complexity), std::move(handler));
}

CommandSpec shard_spec(std::string name, int arity, uint32_t flags, std::string summary,
                       Handler handler) {
  return make_keyed_command_spec("pubsub", std::move(name), arity, flags, 1, -1,
                                 std::move(summary), "7.0.0",
                                 "O(N) where N is the number of shard channels",
                                 std::move(handler));
}

}  // namespace

void register_pubsub_commands(CommandTable& table) {
  table.add(spec("subscribe", -2, kSubscribeFlags,
                 "Listen for messages published to the given channels", "2.0.0",
                 "O(N) where N is the number of channels to subscribe to.", subscribe));
  table.add(spec("unsubscribe", -1, kSubscribeFlags,
                 "Stop listening for messages posted to the given channels", "2.0.0",
                 "O(N) where N is the number of clients already subscribed to a channel.",
                 unsubscribe));
  table.add(spec("psubscribe", -2, kSubscribeFlags,
                 "Listen for messages published to channels matching the given patterns", "2.0.0",
                 "O(N) where N is the number of patterns the client is already subscribed to.",
                 psubscribe));
  table.add(spec("punsubscribe", -1, kSubscribeFlags,
                 "Stop listening for messages posted to channels matching the given patterns",
                 "2.0.0",
                 "O(N+M) where N is the number of patterns the client is already subscribed and "
                 "M is the number of total patterns subscribed in the system (by any client).",
                 punsubscribe));
  table.add(spec("publish", 3, kPublishFlags, "Post a message to a channel", "2.0.0",
                 "O(N+M) where N is the number of clients subscribed to the receiving channel "
                 "and M is the total number of subscribed patterns (by any client).",
                 publish));
  table.add(shard_spec("ssubscribe", -2, kSubscribeFlags,
                       "Listen for messages published to the given shard channels", ssubscribe));
  table.add(shard_spec("sunsubscribe", -1, kSubscribeFlags | kNoMandatoryKeys,
                       "Stop listening for messages posted to the given shard channels",
                       sunsubscribe));
  CommandSpec spublish_spec =
      make_keyed_command_spec("pubsub", "spublish", 3, kPublishFlags, 1, 1,
                              "Post a message to a shard channel", "7.0.0",
                              "O(N) where N is the number of clients subscribed to the receiving "
                              "shard channel.",
                              spublish);
  table.add(std::move(spublish_spec));

  CommandSpec pubsub = spec("pubsub", -2, 0, "A container for Pub/Sub commands", "2.8.0",
                            "Depends on subcommand.", nullptr);
  constexpr uint32_t kIntrospection = kPubSub | kLoading | kStale | kInline;
  pubsub.subcommands.push_back(spec("pubsub|channels", -2, kIntrospection,
                                    "List active channels", "2.8.0",
                                    "O(N) where N is the number of active channels, and assuming "
                                    "constant time pattern matching (relatively short channels "
                                    "and patterns)",
                                    pubsub_channels));
  pubsub.subcommands.push_back(spec("pubsub|numpat", 2, kIntrospection,
                                    "Get the count of unique patterns pattern subscriptions",
                                    "2.8.0", "O(1)", pubsub_numpat));
  pubsub.subcommands.push_back(spec("pubsub|numsub", -2, kIntrospection,
                                    "Get the count of subscribers for channels", "2.8.0",
                                    "O(N) for the NUMSUB subcommand, where N is the number of "
                                    "requested channels",
                                    pubsub_numsub));
  pubsub.subcommands.push_back(spec("pubsub|shardchannels", -2, kIntrospection,
                                    "List active shard channels", "7.0.0",
                                    "O(N) where N is the number of active shard channels, and "
                                    "assuming constant time pattern matching (relatively short "
                                    "shard channels).",
                                    pubsub_shardchannels));
  pubsub.subcommands.push_back(spec("pubsub|shardnumsub", -2, kIntrospection,
                                    "Get the count of subscribers for shard channels", "7.0.0",
                                    "O(N) for the SHARDNUMSUB subcommand, where N is the number "
                                    "of requested shard channels",
                                    pubsub_shardnumsub));
  pubsub.subcommands.push_back(spec("pubsub|help", 2, kLoading | kStale,
                                    "Show helpful text about the different subcommands", "6.2.0",
                                    "O(1)", pubsub_help));
  table.add(std::move(pubsub));

  table.add(make_command_spec("connection", "reset", 1,
                              kNoScript | kLoading | kStale | kFast | kNoAuth | kAllowBusy,
                              "Reset the connection", "6.2.0", "O(1)", reset));
}

}  // namespace cairn::commands
