#pragma once
// PubSubFanout: carries the messages published on this machine to the other machines of the
// cluster (docs/pubsub.md "Across the cluster"). PUBLISH goes to every other machine of the
// routing table that is not down or dead, SPUBLISH to the other replicas (voting, extra and
// joining) of the shard holding the channel's token. Each machine receives each message once.
//
// One ordered queue per peer, at most one CAIRN.PUBLISH batch in flight per peer: a peer receives
// the messages in the order this machine queued them (so what one client publishes arrives in
// its order). A batch carries what queued up while the previous one travelled, up to
// kBatchMessagesMax messages or kBatchBytesMax bytes.
//
// At most once, bounded: a queue holds at most kQueueBytesMax bytes; beyond that, and when a
// batch fails (the peer is unreachable, or slower than the timeout), messages are dropped,
// counted and logged (at most once a second per peer). Nothing is retried.
//
// Threading: send() from any thread; completions run on the PeerPool's threads.

#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "commands/command.h"
#include "net/peer_pool.h"
#include "replica/table_holder.h"

namespace cairn::server {

struct PubSubFanoutStats {
  uint64_t messages_sent = 0;     // acknowledged by a peer
  uint64_t messages_dropped = 0;  // queue full or batch failed
  uint64_t batches = 0;
};

class PubSubFanout {
 public:
  static constexpr size_t kBatchMessagesMax = 1024;
  static constexpr size_t kBatchBytesMax = 1024 * 1024;
  static constexpr size_t kQueueBytesMax = 64 * 1024 * 1024;
  static constexpr int kBatchTimeoutMs = 2000;
  // Client-side caching (docs/tracking.md): invalidations travel as messages on this channel;
  // "*" means "everything". After losing messages for a peer (or skipping it while it was down
  // or dead), the next batch that reaches it starts with "*", so its tracking clients drop
  // their whole near cache instead of keeping values whose invalidation was lost.
  static constexpr std::string_view kInvalidateChannel = "__cairn__:invalidate";

  PubSubFanout(net::PeerPool& peers, replica::TableHolder& tables, uint64_t self);
  void send(commands::PubSubKind kind, std::string_view channel, std::string_view message);
  PubSubFanoutStats stats() const;
  // No batch is sent after this (the PeerPool is going away); queued messages are dropped.
  void stop() { stopped_.store(true); }

 private:
  struct Entry {
    char kind;  // 'c' or 's'
    std::string channel;
    std::string message;
  };
  struct Peer {
    std::string address;
    std::mutex mutex;
    std::deque<Entry> queue;
    size_t bytes = 0;
    bool in_flight = false;
    int64_t last_log_ms = 0;
    uint64_t dropped_since_log = 0;
    bool lost = false;  // messages were lost since the last batch that arrived
  };
  std::shared_ptr<Peer> peer(uint64_t id, const std::string& address);
  void enqueue(const std::shared_ptr<Peer>& peer, char kind, std::string_view channel,
               std::string_view message);
  // Sends the next batch of `peer` if none is in flight. REQUIRES: peer->mutex held by `lock`.
  void pump(const std::shared_ptr<Peer>& peer, std::unique_lock<std::mutex>& lock);
  void note_dropped(Peer& peer, uint64_t count, std::string_view why);

  net::PeerPool& peers_;
  replica::TableHolder& tables_;
  const uint64_t self_;
  mutable std::mutex mutex_;
  std::unordered_map<uint64_t, std::shared_ptr<Peer>> by_machine_;
  std::atomic<bool> stopped_{false};
  std::atomic<uint64_t> sent_{0};
  std::atomic<uint64_t> dropped_{0};
  std::atomic<uint64_t> batches_{0};
};

}  // namespace cairn::server
