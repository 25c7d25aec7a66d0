#include "commands/keyspace_events.h"

#include <algorithm>
#include <charconv>
#include <optional>
#include <string>
#include <unordered_map>

#include "commands/parse.h"

namespace cairn::commands {
namespace {

// What a reply says about the effect of the command that wrote it.
struct ReplyShape {
  bool error = false;
  bool null = false;
  bool is_integer = false;
  int64_t integer = 0;
  bool empty_array = false;

  // Nothing changed: a null, a zero count or an empty array (SET NX that lost, DEL of nothing,
  // LPOP of an empty list...).
  bool nothing() const { return error || null || (is_integer && integer == 0) || empty_array; }
};

ReplyShape shape_of(std::string_view reply) {
  ReplyShape shape;
  if (reply.empty()) return shape;
  const size_t end = reply.find('\r');
  const std::string_view head = reply.substr(0, end);
  switch (reply[0]) {
    case '-':
    case '!':
      shape.error = true;
      break;
    case '_':
      shape.null = true;
      break;
    case '$':
    case '*':
      shape.null = head.substr(1) == "-1";
      shape.empty_array = reply[0] == '*' && head.substr(1) == "0";
      break;
    case ':': {
      shape.is_integer = true;
      std::from_chars(head.data() + 1, head.data() + head.size(), shape.integer);
      break;
    }
    default:
      break;
  }
  return shape;
}

struct Events {
  CommandContext& context;
  const std::vector<std::string>& args;
  ReplyShape reply;
  std::string_view raw;  // the reply's bytes
  const KeyspaceEventPlan& plan;

  void emit(uint32_t event_class, std::string_view event, std::string_view key) {
    context.server.notify_keyspace_event(event_class, event, key);
  }
  // `event` on args[index] unless the reply says nothing changed.
  void if_changed(uint32_t event_class, std::string_view event, size_t index = 1) {
    if (!reply.nothing() && index < args.size()) emit(event_class, event, args[index]);
  }
  // `event` on every argument from `first`, `step` apart.
  void each(uint32_t event_class, std::string_view event, size_t first, size_t step = 1) {
    if (reply.nothing()) return;
    for (size_t i = first; i < args.size(); i += step) emit(event_class, event, args[i]);
  }
  // `event` as if_changed, then "del" when that emptied the key (Redis deletes an empty hash,
  // set, sorted set or list and says so). One read, only while notifications are on.
  void if_changed_then_gone(uint32_t event_class, std::string_view event, size_t index = 1) {
    if (reply.nothing() || index >= args.size()) return;
    emit(event_class, event, args[index]);
    del_if_gone(index);
  }
  void del_if_gone(size_t index) {
    const Result<coordinator::RowRead> row = context.keyspace.read_row_exists(args[index]);
    if (row.is_ok() && !row->header) emit(kEventGeneric, "del", args[index]);
  }
  bool has_option(std::string_view option, size_t from = 2) const {
    for (size_t i = from; i < args.size(); ++i) {
      if (equals_ignore_case(args[i], option)) return true;
    }
    return false;
  }
};

using Rule = void (*)(Events&);

// SET and GETEX: the expiry options they may carry.
bool sets_expiry(const Events& e) {
  return e.has_option("ex") || e.has_option("px") || e.has_option("exat") ||
         e.has_option("pxat");
}

// LMOVE and friends: Redis announces the push, then the pop (and the source's deletion).
void pop_then_push(Events& e, bool from_left, bool to_left) {
  if (e.reply.nothing()) return;
  e.emit(kEventList, to_left ? "lpush" : "rpush", e.args[2]);
  e.emit(kEventList, from_left ? "lpop" : "rpop", e.args[1]);
  e.del_if_gone(1);
}

bool is_left(std::string_view side) { return equals_ignore_case(side, "left"); }

// The key a multi-key pop answered with: the first bulk string of its array reply ([key, ...]).
std::optional<std::string> popped_key(std::string_view reply) {
  if (reply.empty() || reply[0] != '*') return std::nullopt;
  const size_t header_end = reply.find("\r\n");
  if (header_end == std::string_view::npos || header_end + 2 >= reply.size() ||
      reply[header_end + 2] != '$') {
    return std::nullopt;
  }
  const size_t length_start = header_end + 3;
  const size_t length_end = reply.find("\r\n", length_start);
  if (length_end == std::string_view::npos) return std::nullopt;
  size_t length = 0;
  std::from_chars(reply.data() + length_start, reply.data() + length_end, length);
  if (length_end + 2 + length > reply.size()) return std::nullopt;
  return std::string(reply.substr(length_end + 2, length));
}

// BLPOP BRPOP LMPOP BLMPOP: the event of the side popped, on the key the reply names.
void pop_named_key(Events& e, bool left) {
  if (e.reply.nothing()) return;
  const std::optional<std::string> key = popped_key(e.raw);
  if (!key) return;
  e.emit(kEventList, left ? "lpop" : "rpop", *key);
  const Result<coordinator::RowRead> row = e.context.keyspace.read_row_exists(*key);
  if (row.is_ok() && !row->header) e.emit(kEventGeneric, "del", *key);
}

// LMPOP numkeys key... LEFT|RIGHT and BLMPOP timeout numkeys key... LEFT|RIGHT: the side is the
// argument after the keys.
void mpop(Events& e, size_t numkeys_index) {
  if (numkeys_index >= e.args.size()) return;
  size_t numkeys = 0;
  const std::string& count = e.args[numkeys_index];
  std::from_chars(count.data(), count.data() + count.size(), numkeys);
  const size_t side = numkeys_index + 1 + numkeys;
  if (side < e.args.size()) pop_named_key(e, is_left(e.args[side]));
}

// DEL and UNLINK: "del" on each key that existed (read before, for several keys).
void deleted(Events& e) {
  if (!e.plan.planned) {
    e.each(kEventGeneric, "del", 1);
    return;
  }
  if (e.reply.nothing()) return;
  for (const std::string& key : e.plan.existing) e.emit(kEventGeneric, "del", key);
}

// Redis's event names, per command (docs/pubsub.md lists them).
const std::unordered_map<std::string, Rule>& rules() {
  static const std::unordered_map<std::string, Rule> table = {
      // Strings.
      {"set",
       [](Events& e) {
         // SET ... GET answers the old value (maybe null) and did set unless NX/XX stopped it.
         if (e.reply.error) return;
         if (e.reply.null && !e.has_option("get")) return;
         e.emit(kEventString, "set", e.args[1]);
         if (sets_expiry(e)) e.emit(kEventGeneric, "expire", e.args[1]);
       }},
      {"setnx", [](Events& e) { e.if_changed(kEventString, "set"); }},
      {"setex",
       [](Events& e) {
         e.if_changed(kEventString, "set");
         e.if_changed(kEventGeneric, "expire");
       }},
      {"psetex",
       [](Events& e) {
         e.if_changed(kEventString, "set");
         e.if_changed(kEventGeneric, "expire");
       }},
      {"getset", [](Events& e) { if (!e.reply.error) e.emit(kEventString, "set", e.args[1]); }},
      {"mset", [](Events& e) { e.each(kEventString, "set", 1, 2); }},
      {"msetnx", [](Events& e) { e.each(kEventString, "set", 1, 2); }},
      {"append", [](Events& e) { e.if_changed(kEventString, "append"); }},
      {"setrange", [](Events& e) { e.if_changed(kEventString, "setrange"); }},
      {"incr", [](Events& e) { if (!e.reply.error) e.emit(kEventString, "incrby", e.args[1]); }},
      {"decr", [](Events& e) { if (!e.reply.error) e.emit(kEventString, "incrby", e.args[1]); }},
      {"incrby", [](Events& e) { if (!e.reply.error) e.emit(kEventString, "incrby", e.args[1]); }},
      {"decrby", [](Events& e) { if (!e.reply.error) e.emit(kEventString, "incrby", e.args[1]); }},
      {"incrbyfloat",
       [](Events& e) { if (!e.reply.error) e.emit(kEventString, "incrbyfloat", e.args[1]); }},
      {"getdel", [](Events& e) { e.if_changed(kEventGeneric, "del"); }},
      {"getex",
       [](Events& e) {
         if (e.reply.nothing()) return;
         if (e.has_option("persist")) e.emit(kEventGeneric, "persist", e.args[1]);
         if (sets_expiry(e)) e.emit(kEventGeneric, "expire", e.args[1]);
       }},
      {"setbit", [](Events& e) { if (!e.reply.error) e.emit(kEventString, "setbit", e.args[1]); }},
      // Keys.
      {"del", deleted},
      {"unlink", deleted},
      {"expire", [](Events& e) { e.if_changed(kEventGeneric, "expire"); }},
      {"pexpire", [](Events& e) { e.if_changed(kEventGeneric, "expire"); }},
      {"expireat", [](Events& e) { e.if_changed(kEventGeneric, "expire"); }},
      {"pexpireat", [](Events& e) { e.if_changed(kEventGeneric, "expire"); }},
      {"persist", [](Events& e) { e.if_changed(kEventGeneric, "persist"); }},
      {"rename",
       [](Events& e) {
         if (e.reply.error) return;
         e.emit(kEventGeneric, "rename_from", e.args[1]);
         e.emit(kEventGeneric, "rename_to", e.args[2]);
       }},
      {"renamenx",
       [](Events& e) {
         if (e.reply.nothing()) return;
         e.emit(kEventGeneric, "rename_from", e.args[1]);
         e.emit(kEventGeneric, "rename_to", e.args[2]);
       }},
      {"copy", [](Events& e) { e.if_changed(kEventGeneric, "copy_to", 2); }},
      // Lists.
      {"lpush", [](Events& e) { e.if_changed(kEventList, "lpush"); }},
      {"lpushx", [](Events& e) { e.if_changed(kEventList, "lpush"); }},
      {"rpush", [](Events& e) { e.if_changed(kEventList, "rpush"); }},
      {"rpushx", [](Events& e) { e.if_changed(kEventList, "rpush"); }},
      {"lpop", [](Events& e) { e.if_changed_then_gone(kEventList, "lpop"); }},
      {"rpop", [](Events& e) { e.if_changed_then_gone(kEventList, "rpop"); }},
      {"linsert", [](Events& e) { e.if_changed(kEventList, "linsert"); }},
      {"lset", [](Events& e) { e.if_changed(kEventList, "lset"); }},
      {"lrem", [](Events& e) { e.if_changed_then_gone(kEventList, "lrem"); }},
      {"ltrim", [](Events& e) { e.if_changed_then_gone(kEventList, "ltrim"); }},
      {"blpop", [](Events& e) { pop_named_key(e, true); }},
      {"brpop", [](Events& e) { pop_named_key(e, false); }},
      {"lmpop", [](Events& e) { mpop(e, 1); }},
      {"blmpop", [](Events& e) { mpop(e, 2); }},
      {"rpoplpush", [](Events& e) { pop_then_push(e, false, true); }},
      {"brpoplpush", [](Events& e) { pop_then_push(e, false, true); }},
      {"lmove",
       [](Events& e) {
         if (e.args.size() >= 5) pop_then_push(e, is_left(e.args[3]), is_left(e.args[4]));
       }},
      {"blmove",
       [](Events& e) {
         if (e.args.size() >= 5) pop_then_push(e, is_left(e.args[3]), is_left(e.args[4]));
       }},
      // Hashes.
      {"hset", [](Events& e) { if (!e.reply.error) e.emit(kEventHash, "hset", e.args[1]); }},
      {"hmset", [](Events& e) { if (!e.reply.error) e.emit(kEventHash, "hset", e.args[1]); }},
      {"hsetnx", [](Events& e) { e.if_changed(kEventHash, "hset"); }},
      {"hdel", [](Events& e) { e.if_changed_then_gone(kEventHash, "hdel"); }},
      {"hincrby", [](Events& e) { if (!e.reply.error) e.emit(kEventHash, "hincrby", e.args[1]); }},
      {"hincrbyfloat",
       [](Events& e) { if (!e.reply.error) e.emit(kEventHash, "hincrbyfloat", e.args[1]); }},
      // Sets.
      {"sadd", [](Events& e) { e.if_changed(kEventSet, "sadd"); }},
      {"srem", [](Events& e) { e.if_changed_then_gone(kEventSet, "srem"); }},
      {"spop", [](Events& e) { e.if_changed_then_gone(kEventSet, "spop"); }},
      {"smove",
       [](Events& e) {
         if (e.reply.nothing()) return;
         e.emit(kEventSet, "srem", e.args[1]);
         e.del_if_gone(1);
         e.emit(kEventSet, "sadd", e.args[2]);
       }},
      {"sinterstore", [](Events& e) { e.if_changed(kEventSet, "sinterstore"); }},
      {"sunionstore", [](Events& e) { e.if_changed(kEventSet, "sunionstore"); }},
      {"sdiffstore", [](Events& e) { e.if_changed(kEventSet, "sdiffstore"); }},
      // Sorted sets.
      {"zadd",
       [](Events& e) {
         if (e.reply.error || e.reply.null) return;
         e.emit(kEventZset, e.has_option("incr") ? "zincr" : "zadd", e.args[1]);
       }},
      {"zincrby", [](Events& e) { if (!e.reply.error) e.emit(kEventZset, "zincr", e.args[1]); }},
      {"zrem", [](Events& e) { e.if_changed_then_gone(kEventZset, "zrem"); }},
      {"zremrangebyscore",
       [](Events& e) { e.if_changed_then_gone(kEventZset, "zremrangebyscore"); }},
      {"zremrangebyrank", [](Events& e) { e.if_changed_then_gone(kEventZset, "zremrangebyrank"); }},
      {"zremrangebylex", [](Events& e) { e.if_changed_then_gone(kEventZset, "zremrangebylex"); }},
      {"zpopmin", [](Events& e) { e.if_changed_then_gone(kEventZset, "zpopmin"); }},
      {"zpopmax", [](Events& e) { e.if_changed_then_gone(kEventZset, "zpopmax"); }},
      {"zunionstore", [](Events& e) { e.if_changed(kEventZset, "zunionstore"); }},
      {"zinterstore", [](Events& e) { e.if_changed(kEventZset, "zinterstore"); }},
      {"zdiffstore", [](Events& e) { e.if_changed(kEventZset, "zdiffstore"); }},
      {"zrangestore", [](Events& e) { e.if_changed(kEventZset, "zrangestore"); }},
  };
  return table;
}

}  // namespace

uint32_t parse_keyspace_event_flags(std::string_view text) {
  uint32_t flags = 0;
  for (char c : text) {
    switch (c) {
      case 'K': flags |= kEventKeyspace; break;
      case 'E': flags |= kEventKeyevent; break;
      case 'g': flags |= kEventGeneric; break;
      case '$': flags |= kEventString; break;
      case 'l': flags |= kEventList; break;
      case 's': flags |= kEventSet; break;
      case 'h': flags |= kEventHash; break;
      case 'z': flags |= kEventZset; break;
      case 'x': flags |= kEventExpired; break;
      case 'e': flags |= kEventEvicted; break;
      case 't': flags |= kEventStream; break;
      case 'm': flags |= kEventKeyMiss; break;
      case 'd': flags |= kEventModule; break;
      case 'n': flags |= kEventNew; break;
      case 'A':
        flags |= kEventGeneric | kEventString | kEventList | kEventSet | kEventHash | kEventZset |
                 kEventExpired | kEventEvicted | kEventStream | kEventModule;
        break;
      default: break;
    }
  }
  return flags;
}

KeyspaceEventPlan plan_keyspace_events(CommandContext& context, const CommandSpec& spec) {
  KeyspaceEventPlan plan;
  if ((spec.name != "del" && spec.name != "unlink") || context.args.size() <= 2) return plan;
  const std::vector<std::string> keys(context.args.begin() + 1, context.args.end());
  Result<std::vector<std::optional<storage::Cell>>> cells = context.keyspace.read_many(keys);
  if (!cells.is_ok()) return plan;  // unplanned: every named key is reported
  plan.planned = true;
  for (size_t i = 0; i < keys.size(); ++i) {
    const bool repeated = std::find(plan.existing.begin(), plan.existing.end(), keys[i]) !=
                          plan.existing.end();
    if ((*cells)[i].has_value() && !repeated) plan.existing.push_back(keys[i]);
  }
  return plan;
}

void emit_keyspace_events(CommandContext& context, const CommandSpec& spec,
                          std::string_view reply, const KeyspaceEventPlan& plan) {
  const ReplyShape shape = shape_of(reply);
  const auto& table = rules();
  const auto it = table.find(spec.name);
  if (it != table.end() && context.args.size() >= 2) {
    Events events{context, context.args, shape, reply, plan};
    it->second(events);
  }
  // Events the handler reported (stream commands), unless the command failed after all.
  if (shape.error) return;
  for (const CommandContext::Event& event : context.events) {
    context.server.notify_keyspace_event(event.event_class, event.event, event.key);
  }
}

void report_keyspace_event(CommandContext& context, uint32_t event_class, std::string_view event,
                           const std::string& key) {
  if ((context.server.keyspace_event_flags() & event_class) == 0) return;
  context.events.push_back(CommandContext::Event{event_class, event, key});
}

}  // namespace cairn::commands
