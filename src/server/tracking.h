#pragma once
// Server-assisted client-side caching (docs/tracking.md): CLIENT TRACKING and friends with
// redis-server 7.0's semantics, for the clients of this machine.
//
// Default mode: the keys each tracking client read are remembered (key → client ids, at most
// tracking-table-max-keys keys; beyond that the oldest key is invalidated and forgotten), and a
// write to such a key sends one invalidation to those clients and forgets the key. BCAST mode:
// every written key that starts with one of the client's prefixes ("" = all) is invalidated.
// Invalidations go out as RESP3 pushes `>2 invalidate [keys]` on the client's own connection,
// or to its REDIRECT client (as a `message` on __redis__:invalidate to a RESP2 subscriber).
//
// Threading: every method is thread-safe (one mutex); delivery goes through `Deliver`, which
// queues the message on the receiving connection (never blocks).

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "commands/command.h"
#include "server/pubsub.h"

namespace cairn::server {

class Tracking {
 public:
  // Queues `message` for client `id`'s connection. `redirected`: sent on behalf of another
  // client, so a RESP2 connection takes it if it has a subscription (Redis's rule); otherwise
  // only RESP3 connections take it.
  using Deliver = std::function<void(uint64_t id, bool redirected,
                                     std::shared_ptr<const PubSubMessage> message)>;
  using Exists = std::function<bool(uint64_t id)>;

  Tracking(Deliver deliver, Exists exists)
      : deliver_(std::move(deliver)), exists_(std::move(exists)) {}

  // Any client tracks (the fast check of every command).
  bool active() const { return active_.load(std::memory_order_relaxed); }

  void command(const commands::Session& session, const std::vector<std::string>& args,
               resp::ReplyWriter& reply);
  void before_command(const commands::Session& session, const commands::CommandSpec& spec,
                      const std::vector<std::string>& keys);
  // `writer`: the client that wrote (0 = another machine), for NOLOOP.
  void invalidate(uint64_t writer, const std::vector<std::string>& keys);
  void flushed(uint64_t writer);
  // The client went away (or RESET).
  void forget(uint64_t id);

  void set_max_keys(uint64_t max_keys);
  size_t tracked_keys() const;
  size_t clients() const;  // INFO clients' tracking_clients

  // The invalidation message of `keys` (nullopt: a null key list, FLUSHALL).
  static std::shared_ptr<const PubSubMessage> encode(
      const std::optional<std::vector<std::string>>& keys);

 private:
  struct Client {
    bool bcast = false;
    bool optin = false;
    bool optout = false;
    bool noloop = false;
    bool caching = false;  // CLIENT CACHING YES (optin) / NO (optout), for the next command
    uint64_t redirect = 0;
    std::vector<std::string> prefixes;
  };
  // REQUIRES: mutex_ held. Sends `keys` to the client's target.
  void send(uint64_t id, const Client& client,
            const std::optional<std::vector<std::string>>& keys);
  void evict_over_limit();  // REQUIRES: mutex_ held
  // REQUIRES: mutex_ held. Without tracking clients the remembered keys mean nothing.
  void refresh_active() {
    active_.store(!clients_.empty(), std::memory_order_relaxed);
    if (clients_.empty()) {
      table_.clear();
      order_.clear();
    }
  }

  Deliver deliver_;
  Exists exists_;
  mutable std::mutex mutex_;
  std::unordered_map<uint64_t, Client> clients_;
  std::unordered_map<std::string, std::unordered_set<uint64_t>> table_;
  std::deque<std::string> order_;  // keys in the order they entered table_ (maybe stale)
  uint64_t max_keys_ = 1000000;
  std::atomic<bool> active_{false};
};

}  // namespace cairn::server
