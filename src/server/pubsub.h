#pragma once
// The pub/sub registry of one machine (docs/pubsub.md): which connections subscribed to which
// channels, patterns and shard channels, and the delivery of messages to them.
//
// Threading: every method is thread-safe. The registry is behind one reader-writer lock: a
// delivery (PUBLISH, CAIRN.PUBLISH, a keyspace event) holds it shared, a (un)subscription holds
// it exclusively. A message is queued on each receiving Subscriber, which posts one drain task to
// its connection's loop for all the messages queued meanwhile (batching under load); the drain
// appends them, in the connection's protocol, behind the replies of the requests the connection
// sent before (ClientSession::deliver_push).
//
// Bounded (client-output-buffer-limit pubsub): a connection whose unsent output passes the hard
// limit, or stays above the soft limit for the soft seconds, is closed and the event logged, as
// redis-server does; messages queued for a drain count towards the hard limit too.
//
// Order: the messages of one delivery call reach each subscriber in the order of the calls
// (one queue per subscriber), so what one client publishes arrives in its order.

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <set>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "commands/command.h"
#include "net/connection.h"

namespace cairn::server {

class ClientSession;

// client-output-buffer-limit pubsub <hard> <soft> <soft seconds>; 0 = no limit.
struct OutputBufferLimits {
  uint64_t hard_bytes = 32ull * 1024 * 1024;
  uint64_t soft_bytes = 8ull * 1024 * 1024;
  int64_t soft_seconds = 60;
};
// Parses the pubsub class out of a client-output-buffer-limit value ("normal 0 0 0 ... pubsub
// 33554432 8388608 60"); the defaults when it is missing.
OutputBufferLimits parse_pubsub_limits(std::string_view value);

// One message, in both protocols (encoded once, shared by every receiver).
struct PubSubMessage {
  std::string resp2;
  std::string resp3;
};

class PubSub;

// One connection's end of pub/sub. Created with its ClientSession; lives until the last drain
// task that refers to it ran.
class Subscriber : public std::enable_shared_from_this<Subscriber> {
 public:
  Subscriber(std::weak_ptr<net::Connection> connection, ClientSession& session, PubSub& hub);
  // Any thread: queues a message and makes sure one drain is posted to the connection's loop.
  void push(std::shared_ptr<const PubSubMessage> message);

 private:
  friend class PubSub;
  // Loop thread: hands the queued messages to the session and enforces the limits.
  void drain();

  std::weak_ptr<net::Connection> connection_;
  ClientSession& session_;  // valid while connection_ locks (the connection owns it)
  PubSub& hub_;
  // Subscriptions, guarded by the hub's lock. Patterns keep their order (PUNSUBSCRIBE lists
  // them as subscribed).
  std::set<std::string> channels_;
  std::vector<std::string> patterns_;
  std::set<std::string> shard_channels_;
  // Messages on their way, guarded by mutex_.
  std::mutex mutex_;
  std::vector<std::shared_ptr<const PubSubMessage>> pending_;
  size_t pending_bytes_ = 0;
  bool drain_posted_ = false;
  bool overflowed_ = false;
  // Loop thread: since when the output has been above the soft limit (0 = it is not).
  int64_t soft_since_ms_ = 0;
};

// One connection's subscriptions, for CLIENT LIST.
struct PubSubCounts {
  size_t channels = 0;
  size_t patterns = 0;
  size_t shard_channels = 0;
  bool any() const { return channels + patterns + shard_channels > 0; }
};

struct PubSubStats {
  uint64_t messages_delivered = 0;   // messages queued for local subscribers
  uint64_t clients_disconnected = 0; // closed by the output buffer limits
};

class PubSub {
 public:
  // Adds or removes one subscription; whether it changed anything.
  bool change(Subscriber& subscriber, commands::PubSubKind kind, std::string_view channel,
              bool subscribe);
  std::vector<std::string> subscriptions(Subscriber& subscriber, commands::PubSubKind kind);
  PubSubCounts counts(Subscriber& subscriber) const;
  // Drops every subscription of `subscriber` (RESET, connection close).
  void remove_all(Subscriber& subscriber);
  // Delivers to this machine's subscribers: kChannel to those of the channel and of matching
  // patterns, kShard to those of the shard channel. Returns the number of receiving clients
  // (a client matching through several patterns counts once per pattern, as in Redis).
  int64_t deliver(commands::PubSubKind kind, std::string_view channel, std::string_view message);

  std::vector<std::string> channels(commands::PubSubKind kind, std::string_view pattern);
  int64_t numsub(commands::PubSubKind kind, std::string_view channel);
  int64_t numpat();

  void set_limits(const OutputBufferLimits& limits);
  OutputBufferLimits limits() const;
  PubSubStats stats() const;

 private:
  friend class Subscriber;
  using Registry = std::unordered_map<std::string, std::vector<Subscriber*>>;
  Registry& registry(commands::PubSubKind kind);

  mutable std::shared_mutex mutex_;
  Registry channels_;
  Registry patterns_;
  Registry shard_channels_;
  std::atomic<uint64_t> hard_bytes_{OutputBufferLimits{}.hard_bytes};
  std::atomic<uint64_t> soft_bytes_{OutputBufferLimits{}.soft_bytes};
  std::atomic<int64_t> soft_seconds_{OutputBufferLimits{}.soft_seconds};
  std::atomic<uint64_t> delivered_{0};
  std::atomic<uint64_t> disconnected_{0};
};

}  // namespace cairn::server
