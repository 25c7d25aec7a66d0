#include "server/cluster_runner.h"

#include <charconv>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "commands/parse.h"
#include "resp/writer.h"
#include "topology/consistency.h"

namespace cairn::server {

namespace {

constexpr std::string_view kForwardCommand = "cairn.forward";
constexpr size_t kForwardHeaderArgs = 4;  // CAIRN.FORWARD protocol read-level write-level
// After the protocol: the command is a blocked client's retry (Session::block_retry).
constexpr std::string_view kBlockedRetrySuffix = ":retry";

void append_line(std::string& out, char type, std::string_view text) {
  out.push_back(type);
  out.append(text);
  out.append("\r\n");
}

void append_length_prefixed(std::string& out, char type, std::string_view payload) {
  append_line(out, type, std::to_string(payload.size()));
  out.append(payload);
  out.append("\r\n");
}

bool is_forward(std::string_view name) {
  return commands::equals_ignore_case(name, kForwardCommand);
}

}  // namespace

void encode_reply(const resp::Value& value, int protocol, std::string& out) {
  using Type = resp::Value::Type;
  switch (value.type) {
    case Type::kSimple: append_line(out, '+', value.str); return;
    case Type::kError: append_line(out, '-', value.str); return;
    case Type::kInteger: append_line(out, ':', std::to_string(value.integer)); return;
    case Type::kBulk: append_length_prefixed(out, '$', value.str); return;
    case Type::kNull:
      out.append(protocol >= 3 ? "_\r\n" : (value.integer == 1 ? "*-1\r\n" : "$-1\r\n"));
      return;
    case Type::kDouble: append_line(out, ',', value.str); return;
    case Type::kBoolean: append_line(out, '#', value.integer != 0 ? "t" : "f"); return;
    case Type::kVerbatim: append_length_prefixed(out, '=', "txt:" + value.str); return;
    case Type::kBigNumber: append_line(out, '(', value.str); return;
    case Type::kArray:
    case Type::kMap:
    case Type::kSet:
    case Type::kPush: {
      const char type = value.type == Type::kArray ? '*'
                        : value.type == Type::kMap ? '%'
                        : value.type == Type::kSet ? '~'
                                                   : '>';
      const size_t count =
          value.type == Type::kMap ? value.elements.size() / 2 : value.elements.size();
      append_line(out, type, std::to_string(count));
      for (const resp::Value& element : value.elements) encode_reply(element, protocol, out);
      return;
    }
  }
}

ClusterRunner::ClusterRunner(WorkerPool& pool, const commands::CommandTable& table,
                             commands::ServerControl& server,
                             coordinator::ClusterCoordinator& coordinator,
                             replica::Replica& replica, net::PeerPool& peers,
                             int request_timeout_ms)
    : CommandRunner(pool),
      table_(table),
      server_(server),
      coordinator_(coordinator),
      replica_(replica),
      peers_(peers),
      request_timeout_ms_(request_timeout_ms) {}

commands::DispatchOutcome ClusterRunner::run(
    std::vector<std::string>& args, commands::Session& session,
    std::unique_ptr<coordinator::Keyspace>& connection_keyspace, std::string& reply) {
  if (is_forward(args[0])) return serve_forward(args, session, reply);
  if (connection_keyspace == nullptr) {
    connection_keyspace =
        std::make_unique<coordinator::ClusterSession>(coordinator_, session.request_options);
  }
  auto& cluster = static_cast<coordinator::ClusterSession&>(*connection_keyspace);
  resp::ReplyWriter writer(&reply, session.protocol);
  commands::CommandContext context{args, writer, session, cluster, server_, &replica_};
  commands::DispatchOutcome outcome = commands::dispatch(table_, context);
  if (const std::optional<uint64_t> leader = cluster.take_redirect()) {
    // The handler ran nothing (atomically() refused) and wrote an error we replace.
    reply.clear();
    forward_to_leader(*leader, args, session, reply);
  }
  return outcome;
}

void ClusterRunner::forward_to_leader(uint64_t leader, const std::vector<std::string>& args,
                                      const commands::Session& session, std::string& reply) {
  forwarded_.fetch_add(1, std::memory_order_relaxed);
  const auto table = coordinator_.tables().current();
  const topology::Machine* machine = table ? table->find_machine(leader) : nullptr;
  if (machine == nullptr) {
    append_line(reply, '-', fmt::format("UNAVAILABLE shard leader {} is not in the table", leader));
    return;
  }
  const std::string& address =
      machine->internal_address.empty() ? machine->address : machine->internal_address;
  std::vector<std::string> request;
  request.reserve(args.size() + kForwardHeaderArgs);
  request.emplace_back("CAIRN.FORWARD");
  // A blocked client's retry says so: the leader answers it as Redis serves a blocked client.
  request.push_back(std::to_string(session.protocol) +
                    (session.block_retry ? std::string(kBlockedRetrySuffix) : std::string()));
  request.push_back(topology::consistency_name(session.request_options.read));
  request.push_back(topology::consistency_name(session.request_options.write));
  request.insert(request.end(), args.begin(), args.end());
  // The leader reads and writes at QUORUM, each waiting up to the request timeout, and may
  // repair replicas in between.
  const int timeout_ms = 3 * request_timeout_ms_ + 500;
  Result<resp::Value> answer = peers_.call_sync(address, std::move(request), timeout_ms);
  if (!answer.is_ok()) {
    // The request may have reached the leader before the connection failed or the time ran
    // out: a write (EXEC included) may have been applied, so it is uncertain, never a plain
    // failure (docs/cluster.md); a read is simply unavailable.
    const commands::CommandSpec* spec = table_.find(args[0]);
    const bool writes = spec == nullptr || (spec->flags & commands::kWrite) != 0 ||
                        spec->group == "transactions";
    append_line(reply, '-',
                writes ? fmt::format("UNCERTAIN shard leader {} did not answer ({}); the command "
                                     "may have been applied",
                                     leader, answer.status().message())
                       : fmt::format("UNAVAILABLE shard leader {} unreachable: {}", leader,
                                     answer.status().message()));
    return;
  }
  encode_reply(*answer, session.protocol, reply);
}

commands::DispatchOutcome ClusterRunner::serve_forward(std::vector<std::string>& args,
                                                       const commands::Session& session,
                                                       std::string& reply) {
  commands::DispatchOutcome none;
  if (!session.internal) {
    append_line(reply, '-', "NOPERM this command is for cluster machines");
    return none;
  }
  if (args.size() <= kForwardHeaderArgs) {
    append_line(reply, '-', "ERR wrong number of arguments for 'cairn.forward' command");
    return none;
  }
  int protocol = 0;
  std::string_view protocol_text = args[1];
  const bool retry = protocol_text.ends_with(kBlockedRetrySuffix);
  if (retry) protocol_text.remove_suffix(kBlockedRetrySuffix.size());
  const auto [end, error] =
      std::from_chars(protocol_text.data(), protocol_text.data() + protocol_text.size(), protocol);
  auto read = topology::parse_consistency(args[2]);
  auto write = topology::parse_consistency(args[3]);
  if (error != std::errc() || end != protocol_text.data() + protocol_text.size() ||
      (protocol != 2 && protocol != 3) || !read.is_ok() || !write.is_ok()) {
    append_line(reply, '-', "ERR CAIRN.FORWARD protocol read-level write-level command...");
    return none;
  }
  forwards_served_.fetch_add(1, std::memory_order_relaxed);
  // The command runs as the client's: its protocol and levels, authenticated (the forwarding
  // machine checked AUTH), and not internal, so a forwarded request cannot reach CAIRN.*.
  commands::Session inner = session;
  inner.protocol = protocol;
  inner.internal = false;
  inner.authenticated = true;
  inner.cluster_redirects = false;  // the forwarding machine chose to serve the request
  inner.blocking_allowed = false;   // the forwarding machine waits for its blocked client
  inner.block_retry = retry;
  inner.request_options.read = *read;
  inner.request_options.write = *write;
  std::vector<std::string> inner_args(std::make_move_iterator(args.begin() + kForwardHeaderArgs),
                                      std::make_move_iterator(args.end()));
  coordinator::ClusterSession cluster(coordinator_, inner.request_options);
  resp::ReplyWriter writer(&reply, protocol);
  commands::CommandContext context{inner_args, writer, inner, cluster, server_, &replica_};
  const commands::DispatchOutcome outcome = commands::dispatch(table_, context);
  if (cluster.take_redirect()) {
    // This machine is no longer the leader: the table changed while the request travelled.
    reply.clear();
    append_line(reply, '-', "UNAVAILABLE leader moved, retry");
  }
  return outcome;
}

}  // namespace cairn::server
