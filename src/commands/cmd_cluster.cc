// Cluster commands a client uses (docs/cluster.md):
//  * CONSISTENCY [READ lvl] [WRITE lvl]. The levels belong to the connection
//    (Session::request_options); the cluster coordinator reads them on every request.
//  * The Redis Cluster protocol, so cluster-aware clients route by themselves: CLUSTER SLOTS,
//    SHARDS, NODES, MYID, INFO (the slot map of this machine's routing table, topology/slot_map.h),
//    CLUSTER KEYSLOT, COUNTKEYSINSLOT, GETKEYSINSLOT, and READONLY, READWRITE, ASKING. A
//    connection that sent READONLY or asked for the map (SLOTS, SHARDS, NODES) is answered
//    -MOVED for a key its machine does not serve (dispatch(), step 3b); every other connection
//    keeps Cairn's default: any machine serves any key.

#include <fmt/format.h>

#include <algorithm>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "commands/command.h"
#include "commands/parse.h"
#include "replica/replica.h"
#include "topology/consistency.h"
#include "topology/slot_map.h"
#include "topology/token.h"

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

// ---- Redis Cluster ----

using topology::Machine;
using topology::RoutingTable;
using topology::Shard;
using topology::Slot;

constexpr std::string_view kErrClusterDisabled = "ERR This instance has cluster support disabled";
constexpr std::string_view kErrNoTable =
    "CLUSTERDOWN this machine has no routing table yet, try again";
constexpr std::string_view kErrInvalidSlot = "ERR Invalid slot";
// Bounds the pages one slot command reads, so a cursor bug cannot loop forever; a slot of the
// largest cluster has far fewer pages (each holds up to kSlotPageKeys keys).
constexpr int kSlotPagesMax = 1 << 24;
constexpr size_t kSlotPageKeys = 1000;

// Redis Cluster node ids are 40 hex digits; a machine id is 64 bits, written zero-padded.
std::string node_id(uint64_t machine) { return fmt::format("{:040x}", machine); }

struct HostPort {
  std::string host;
  int64_t port = 0;
};

// "host:port" or "[v6]:port" (topology::RoutingTable invariant 2) → its parts.
HostPort split_address(std::string_view address) {
  const size_t colon = address.rfind(':');
  HostPort out;
  std::string_view host = address.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  out.host = std::string(host);
  out.port = parse_int64(address.substr(colon + 1)).value_or(0);
  return out;
}

// The table this machine follows, or nullptr after replying the reason there is none.
std::shared_ptr<const RoutingTable> table_or_reply(CommandContext& ctx) {
  if (ctx.replica == nullptr) {
    ctx.reply.error(kErrClusterDisabled);
    return nullptr;
  }
  std::shared_ptr<const RoutingTable> table = ctx.replica->tables().current();
  if (table == nullptr) ctx.reply.error(kErrNoTable);
  return table;
}

// [host, port, id], as CLUSTER SLOTS lists a node.
void write_slot_node(resp::ReplyWriter& reply, const Machine& machine) {
  const HostPort address = split_address(machine.address);
  reply.array(3);
  reply.bulk(address.host);
  reply.integer(address.port);
  reply.bulk(node_id(machine.id));
}

// The spans of the map whose shard has a machine to name (a shard without voting replicas
// cannot be named; Redis reports such slots as unassigned, which is what omitting them says).
struct NamedSpan {
  topology::SlotSpan span;
  const Shard* shard = nullptr;
  const Machine* primary = nullptr;
};

std::vector<NamedSpan> named_spans(const RoutingTable& table) {
  std::vector<NamedSpan> out;
  for (const topology::SlotSpan& span : topology::slot_spans(table)) {
    const Shard* shard = table.find_shard(span.shard);
    const Machine* primary = shard ? topology::shard_primary(table, *shard) : nullptr;
    if (primary != nullptr) out.push_back(NamedSpan{span, shard, primary});
  }
  return out;
}

// CLUSTER SLOTS → [[first, last, primary, secondaries...], ...]. Asking for the map marks the
// connection as one that follows MOVED.
void cluster_slots(CommandContext& ctx) {
  const auto table = table_or_reply(ctx);
  if (table == nullptr) return;
  ctx.session.cluster_redirects = true;
  const std::vector<NamedSpan> spans = named_spans(*table);
  ctx.reply.array(spans.size());
  for (const NamedSpan& named : spans) {
    const std::vector<const Machine*> secondaries =
        topology::shard_secondaries(*table, *named.shard);
    ctx.reply.array(3 + secondaries.size());
    ctx.reply.integer(named.span.first);
    ctx.reply.integer(named.span.last);
    write_slot_node(ctx.reply, *named.primary);
    for (const Machine* machine : secondaries) write_slot_node(ctx.reply, *machine);
  }
}

void write_shard_node(resp::ReplyWriter& reply, const Machine& machine, bool primary) {
  const HostPort address = split_address(machine.address);
  reply.map(7);
  reply.bulk("id");
  reply.bulk(node_id(machine.id));
  reply.bulk("port");
  reply.integer(address.port);
  reply.bulk("ip");
  reply.bulk(address.host);
  reply.bulk("endpoint");
  reply.bulk(address.host);
  reply.bulk("role");
  reply.bulk(primary ? "master" : "replica");
  reply.bulk("replication-offset");
  reply.integer(0);
  reply.bulk("health");
  reply.bulk(machine.state == topology::MachineState::kUp ? "online" : "failed");
}

// CLUSTER SHARDS → one map per shard that holds slots: its slot spans and its machines.
void cluster_shards(CommandContext& ctx) {
  const auto table = table_or_reply(ctx);
  if (table == nullptr) return;
  ctx.session.cluster_redirects = true;
  const std::vector<NamedSpan> spans = named_spans(*table);
  std::vector<const Shard*> shards;
  for (const Shard& shard : table->shards()) {
    for (const NamedSpan& named : spans) {
      if (named.shard == &shard) {
        shards.push_back(&shard);
        break;
      }
    }
  }
  ctx.reply.array(shards.size());
  for (const Shard* shard : shards) {
    ctx.reply.map(2);
    ctx.reply.bulk("slots");
    size_t count = 0;
    for (const NamedSpan& named : spans) count += named.shard == shard ? 2 : 0;
    ctx.reply.array(count);
    for (const NamedSpan& named : spans) {
      if (named.shard != shard) continue;
      ctx.reply.integer(named.span.first);
      ctx.reply.integer(named.span.last);
    }
    const Machine* primary = topology::shard_primary(*table, *shard);
    const std::vector<const Machine*> secondaries = topology::shard_secondaries(*table, *shard);
    ctx.reply.bulk("nodes");
    ctx.reply.array(1 + secondaries.size());
    write_shard_node(ctx.reply, *primary, true);
    for (const Machine* machine : secondaries) write_shard_node(ctx.reply, *machine, false);
  }
}

// One CLUSTER NODES line per machine that is a primary or secondary of a shard holding slots,
// plus this machine. A machine that is the primary of several shards lists all their slots; one
// that is only a secondary is listed as a replica of the first such shard's primary (Redis has
// no word for a machine that serves several shards).
std::string nodes_text(const RoutingTable& table, uint64_t self) {
  const std::vector<NamedSpan> spans = named_spans(table);
  std::string out;
  for (const Machine& machine : table.machines()) {
    std::string slots;
    const Machine* primary_of_shard = nullptr;
    bool is_primary = false;
    for (const NamedSpan& named : spans) {
      if (named.primary->id == machine.id) {
        is_primary = true;
        slots += named.span.first == named.span.last
                     ? fmt::format(" {}", named.span.first)
                     : fmt::format(" {}-{}", named.span.first, named.span.last);
      } else if (primary_of_shard == nullptr) {
        for (const Machine* other : topology::shard_secondaries(table, *named.shard)) {
          if (other->id == machine.id) primary_of_shard = named.primary;
        }
      }
    }
    if (!is_primary && primary_of_shard == nullptr && machine.id != self) continue;
    std::string flags = machine.id == self ? "myself," : "";
    flags += is_primary || primary_of_shard == nullptr ? "master" : "slave";
    const bool up = machine.state == topology::MachineState::kUp;
    if (!up) flags += ",fail";
    const HostPort address = split_address(machine.address);
    const HostPort internal = split_address(
        machine.internal_address.empty() ? machine.address : machine.internal_address);
    out +=
        fmt::format("{} {}:{}@{} {} {} 0 0 {} {}{}\n", node_id(machine.id), address.host,
                    address.port, internal.port, flags,
                    is_primary || primary_of_shard == nullptr ? "-" : node_id(primary_of_shard->id),
                    table.epoch(), up ? "connected" : "disconnected", slots);
  }
  return out;
}

void cluster_nodes(CommandContext& ctx) {
  const auto table = table_or_reply(ctx);
  if (table == nullptr) return;
  ctx.session.cluster_redirects = true;
  ctx.reply.verbatim(nodes_text(*table, ctx.replica->machine_id()));
}

void cluster_myid(CommandContext& ctx) {
  if (ctx.replica == nullptr) {
    ctx.reply.error(kErrClusterDisabled);
    return;
  }
  ctx.reply.bulk(node_id(ctx.replica->machine_id()));
}

// CLUSTER INFO: Redis's fields, from the table. A slot is ok when its primary is up;
// cluster_size counts the shards holding slots.
void cluster_info(CommandContext& ctx) {
  const auto table = table_or_reply(ctx);
  if (table == nullptr) return;
  size_t assigned = 0;
  size_t ok = 0;
  std::vector<const Shard*> shards;
  for (const NamedSpan& named : named_spans(*table)) {
    const size_t slots = size_t{named.span.last} - named.span.first + 1;
    assigned += slots;
    if (named.primary->state == topology::MachineState::kUp) ok += slots;
    if (std::find(shards.begin(), shards.end(), named.shard) == shards.end()) {
      shards.push_back(named.shard);
    }
  }
  ctx.reply.verbatim(
      fmt::format("cluster_state:{}\r\ncluster_slots_assigned:{}\r\ncluster_slots_ok:{}\r\n"
                  "cluster_slots_pfail:0\r\ncluster_slots_fail:{}\r\ncluster_known_nodes:{}\r\n"
                  "cluster_size:{}\r\ncluster_current_epoch:{}\r\ncluster_my_epoch:{}\r\n"
                  "cluster_stats_messages_sent:0\r\ncluster_stats_messages_received:0\r\n"
                  "total_cluster_links_buffer_limit_exceeded:0\r\n",
                  ok == topology::kSlotCount ? "ok" : "fail", assigned, ok, assigned - ok,
                  table->machines().size(), shards.size(), table->epoch(), table->epoch()));
}

void cluster_keyslot(CommandContext& ctx) { ctx.reply.integer(topology::slot_of(ctx.args[2])); }

std::optional<Slot> parse_slot(std::string_view text) {
  const std::optional<int64_t> value = parse_int64(text);
  if (!value || *value < 0 || *value >= int64_t{topology::kSlotCount}) return std::nullopt;
  return static_cast<Slot>(*value);
}

// Calls `visit` with each live key of `slot` in token order, until it returns false. The keys
// come from the keyspace (the whole cluster through the coordinator, at the connection's read
// level), read from the slot's first token on.
Status for_each_key_in_slot(CommandContext& ctx, Slot slot,
                            const std::function<bool(const std::string&)>& visit) {
  coordinator::ScanRequest request;
  request.cursor = topology::slot_start(slot);
  request.count = kSlotPageKeys;
  request.filter = [slot](std::string_view key, const storage::Cell&) {
    return topology::slot_of(key) == slot;
  };
  for (int page_number = 0; page_number < kSlotPagesMax; ++page_number) {
    Result<coordinator::ScanPage> page = ctx.keyspace.scan(request);
    if (!page.is_ok()) return page.status();
    for (const std::string& key : page->keys) {
      if (!visit(key)) return Status::ok();
    }
    if (page->next_cursor == 0 || topology::slot_of_token(page->next_cursor) != slot) {
      return Status::ok();
    }
    request.cursor = page->next_cursor;
  }
  return Status::internal("the scan of a slot did not end");
}

void cluster_countkeysinslot(CommandContext& ctx) {
  const std::optional<Slot> slot = parse_slot(ctx.args[2]);
  if (!slot) {
    ctx.reply.error(kErrInvalidSlot);
    return;
  }
  int64_t count = 0;
  const Status status = for_each_key_in_slot(ctx, *slot, [&count](const std::string&) {
    ++count;
    return true;
  });
  if (!status.is_ok()) {
    ctx.reply.error(storage_error_reply(status));
    return;
  }
  ctx.reply.integer(count);
}

void cluster_getkeysinslot(CommandContext& ctx) {
  const std::optional<Slot> slot = parse_slot(ctx.args[2]);
  const std::optional<int64_t> limit = parse_int64(ctx.args[3]);
  if (!slot || !limit || *limit < 0) {
    ctx.reply.error("ERR Invalid slot or number of keys");
    return;
  }
  std::vector<std::string> keys;
  const Status status = for_each_key_in_slot(ctx, *slot, [&](const std::string& key) {
    if (static_cast<int64_t>(keys.size()) >= *limit) return false;
    keys.push_back(key);
    return true;
  });
  if (!status.is_ok()) {
    ctx.reply.error(storage_error_reply(status));
    return;
  }
  ctx.reply.array(keys.size());
  for (const std::string& key : keys) ctx.reply.bulk(key);
}

void cluster_help(CommandContext& ctx) {
  static const std::vector<std::string_view> kLines = {
      "CLUSTER <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
      "COUNTKEYSINSLOT <slot>",
      "    Return the number of keys in <slot>.",
      "GETKEYSINSLOT <slot> <count>",
      "    Return key names stored by current node in a slot.",
      "INFO",
      "    Return information about the cluster.",
      "KEYSLOT <key>",
      "    Return the hash slot for <key>.",
      "MYID",
      "    Return the node id.",
      "NODES",
      "    Return cluster configuration seen by node. Output format:",
      "    <id> <ip:port@bus-port> <flags> <master> <pings> <pongs> <epoch> <link> <slot> ...",
      "SHARDS",
      "    Return information about slot range mappings and the nodes associated with them.",
      "SLOTS",
      "    Return information about slots range mappings. Each range is made of:",
      "    start, end, master and replicas IP addresses, ports and ids",
      "HELP",
      "    Print this help.",
  };
  ctx.reply.array(kLines.size());
  for (std::string_view line : kLines) ctx.reply.simple(line);
}

// READONLY: the connection may read from any machine of a shard and follows MOVED (it is a
// cluster client that routes by slot). READWRITE is accepted and changes nothing else: any
// machine of a shard takes writes. ASKING is accepted: Cairn never answers ASK (a migrating
// slot keeps being served by its old machines, which forward).
void readonly_command(CommandContext& ctx) {
  ctx.session.cluster_redirects = true;
  ctx.reply.ok();
}

void readwrite_command(CommandContext& ctx) { ctx.reply.ok(); }

void asking_command(CommandContext& ctx) { ctx.reply.ok(); }

CommandSpec cluster_spec(std::string name, int arity, uint32_t flags, std::string summary,
                         std::string since, std::string complexity, Handler handler) {
  return make_command_spec("cluster", std::move(name), arity, flags, std::move(summary),
                           std::move(since), std::move(complexity), std::move(handler));
}

CommandSpec cluster_container() {
  CommandSpec cluster = cluster_spec("cluster", -2, 0, "A container for Redis Cluster commands",
                                     "3.0.0", "Depends on subcommand.", nullptr);
  constexpr uint32_t kMapFlags = kLoading | kStale;
  auto& subs = cluster.subcommands;
  CommandSpec slots =
      cluster_spec("cluster|slots", 2, kMapFlags, "Get array of Cluster slot to node mappings",
                   "3.0.0", "O(N) where N is the total number of Cluster nodes", cluster_slots);
  slots.tips = {"nondeterministic_output"};
  subs.push_back(std::move(slots));
  CommandSpec shards =
      cluster_spec("cluster|shards", 2, kMapFlags, "Get array of cluster slots to node mappings",
                   "7.0.0", "O(N) where N is the total number of cluster nodes", cluster_shards);
  shards.tips = {"nondeterministic_output"};
  subs.push_back(std::move(shards));
  CommandSpec nodes =
      cluster_spec("cluster|nodes", 2, kMapFlags, "Get Cluster config for the node", "3.0.0",
                   "O(N) where N is the total number of Cluster nodes", cluster_nodes);
  nodes.tips = {"nondeterministic_output"};
  subs.push_back(std::move(nodes));
  subs.push_back(cluster_spec("cluster|myid", 2, kMapFlags, "Return the node id", "3.0.0", "O(1)",
                              cluster_myid));
  CommandSpec info =
      cluster_spec("cluster|info", 2, kMapFlags, "Provides info about Redis Cluster node state",
                   "3.0.0", "O(1)", cluster_info);
  info.tips = {"nondeterministic_output"};
  subs.push_back(std::move(info));
  subs.push_back(cluster_spec("cluster|keyslot", 3, kMapFlags,
                              "Returns the hash slot of the specified key", "3.0.0",
                              "O(N) where N is the number of bytes in the key", cluster_keyslot));
  subs.push_back(cluster_spec("cluster|countkeysinslot", 3, kMapFlags | kReadOnly,
                              "Return the number of local keys in the specified hash slot", "3.0.0",
                              "O(N) where N is the number of keys in the slot",
                              cluster_countkeysinslot));
  subs.push_back(cluster_spec("cluster|getkeysinslot", 4, kMapFlags | kReadOnly,
                              "Return local key names in the specified hash slot", "3.0.0",
                              "O(N) where N is the number of keys in the slot",
                              cluster_getkeysinslot));
  subs.push_back(cluster_spec("cluster|help", 2, kLoading | kStale,
                              "Show helpful text about the different subcommands", "5.0.0", "O(1)",
                              cluster_help));
  return cluster;
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
  table.add(cluster_container());
  // Connection state only: they never block, so they may run on an event loop.
  constexpr uint32_t kConnectionFlags = kLoading | kStale | kFast | kInline;
  table.add(cluster_spec("readonly", 1, kConnectionFlags,
                         "Enables read queries for a connection to a Redis Cluster replica node",
                         "3.0.0", "O(1)", readonly_command));
  table.add(cluster_spec("readwrite", 1, kConnectionFlags,
                         "Disables read queries for a connection to a Redis Cluster replica node",
                         "3.0.0", "O(1)", readwrite_command));
  table.add(cluster_spec("asking", 1, kConnectionFlags,
                         "Sent by cluster clients after an -ASK redirect", "3.0.0", "O(1)",
                         asking_command));
}

}  // namespace cairn::commands
