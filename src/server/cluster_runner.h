#pragma once
// ClusterRunner: runs client commands of a cluster machine on workers (docs/formats.md "Internal
// protocol", docs/cluster.md). Each connection gets its own coordinator::ClusterSession, carrying its
// CONSISTENCY levels. Read-modify-write commands run only on their shard's leader: when the
// session asks for a redirect, the handler's reply is discarded and the whole command is sent to
// the leader as
//   CAIRN.FORWARD <protocol> <read-level> <write-level> <command> <args...>
// whose reply is relayed to the client. The leader runs a forwarded command here too (forward()),
// and answers "-UNAVAILABLE leader moved, retry" rather than forwarding again: no loops.

#include <memory>
#include <string>
#include <vector>

#include "coordinator/cluster.h"
#include "net/peer_pool.h"
#include "replica/replica.h"
#include "resp/reply_parser.h"
#include "server/command_runner.h"

namespace cairn::server {

// Encodes a parsed reply back into RESP, for relaying a peer's reply to a client. Nulls become
// "_" for a RESP3 client, otherwise "*-1" for a null array (BLPOP's timeout, an aborted EXEC)
// and "$-1" for any other. REQUIRES: depth bounded by the parser's limits.
void encode_reply(const resp::Value& value, int protocol, std::string& out);

class ClusterRunner final : public CommandRunner {
 public:
  // All references must outlive the runner.
  ClusterRunner(WorkerPool& pool, const commands::CommandTable& table,
                commands::ServerControl& server, coordinator::ClusterCoordinator& coordinator,
                replica::Replica& replica, net::PeerPool& peers, int request_timeout_ms);

  commands::DispatchOutcome run(std::vector<std::string>& args, commands::Session& session,
                                std::unique_ptr<coordinator::Keyspace>& connection_keyspace,
                                std::string& reply) override;

  uint64_t forwarded() const { return forwarded_.load(std::memory_order_relaxed); }
  uint64_t forwards_served() const { return forwards_served_.load(std::memory_order_relaxed); }

 private:
  // Sends the command to `leader` and puts the leader's reply (or an UNAVAILABLE error) in
  // `reply`.
  void forward_to_leader(uint64_t leader, const std::vector<std::string>& args,
                         const commands::Session& session, std::string& reply);
  // CAIRN.FORWARD on the leader.
  commands::DispatchOutcome serve_forward(std::vector<std::string>& args,
                                          const commands::Session& session, std::string& reply);

  const commands::CommandTable& table_;
  commands::ServerControl& server_;
  coordinator::ClusterCoordinator& coordinator_;
  replica::Replica& replica_;
  net::PeerPool& peers_;
  const int request_timeout_ms_;
  std::atomic<uint64_t> forwarded_{0};
  std::atomic<uint64_t> forwards_served_{0};
};

}  // namespace cairn::server
