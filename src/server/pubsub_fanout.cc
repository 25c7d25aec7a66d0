#include "server/pubsub_fanout.h"

#include <spdlog/spdlog.h>

#include "common/clock.h"
#include "topology/token.h"

namespace cairn::server {

using commands::PubSubKind;

PubSubFanout::PubSubFanout(net::PeerPool& peers, replica::TableHolder& tables, uint64_t self)
    : peers_(peers), tables_(tables), self_(self) {}

std::shared_ptr<PubSubFanout::Peer> PubSubFanout::peer(uint64_t id, const std::string& address) {
  std::lock_guard lock(mutex_);
  std::shared_ptr<Peer>& found = by_machine_[id];
  if (!found) found = std::make_shared<Peer>();
  if (found->address != address) {
    std::lock_guard peer_lock(found->mutex);
    found->address = address;
  }
  return found;
}

void PubSubFanout::send(PubSubKind kind, std::string_view channel, std::string_view message) {
  const std::shared_ptr<const topology::RoutingTable> table = tables_.current();
  if (table == nullptr) return;
  auto target = [&](const topology::Machine& machine) {
    if (machine.id == self_) return;
    if (machine.state == topology::MachineState::kDown ||
        machine.state == topology::MachineState::kDead) {
      // Skipped: if it still has clients, the next batch it gets tells them to flush.
      std::shared_ptr<Peer> skipped;
      {
        std::lock_guard lock(mutex_);
        if (const auto it = by_machine_.find(machine.id); it != by_machine_.end()) {
          skipped = it->second;
        }
      }
      if (skipped) {
        std::lock_guard lock(skipped->mutex);
        skipped->lost = true;
      }
      return;
    }
    const std::string& address =
        machine.internal_address.empty() ? machine.address : machine.internal_address;
    enqueue(peer(machine.id, address), kind == PubSubKind::kShard ? 's' : 'c', channel, message);
  };
  if (kind != PubSubKind::kShard) {
    for (const topology::Machine& machine : table->machines()) target(machine);
    return;
  }
  const topology::Shard& shard = table->shard_for_token(topology::token_of(channel));
  for (const auto* group : {&shard.replicas, &shard.extras, &shard.joining}) {
    for (const topology::MachineId id : *group) {
      if (const topology::Machine* machine = table->find_machine(id)) target(*machine);
    }
  }
}

void PubSubFanout::enqueue(const std::shared_ptr<Peer>& peer, char kind, std::string_view channel,
                           std::string_view message) {
  std::unique_lock lock(peer->mutex);
  const size_t bytes = channel.size() + message.size();
  if (peer->bytes + bytes > kQueueBytesMax) {
    note_dropped(*peer, 1, "its queue is full");
    return;
  }
  peer->queue.push_back(Entry{kind, std::string(channel), std::string(message)});
  peer->bytes += bytes;
  pump(peer, lock);
}

void PubSubFanout::pump(const std::shared_ptr<Peer>& peer, std::unique_lock<std::mutex>& lock) {
  if (peer->in_flight || peer->queue.empty() || stopped_.load()) return;
  std::vector<std::string> args;
  args.reserve(1 + 3 * std::min(peer->queue.size(), kBatchMessagesMax));
  args.emplace_back("CAIRN.PUBLISH");
  if (peer->lost) {
    // Messages for this peer were lost: its tracking clients may have missed invalidations.
    args.emplace_back("c");
    args.emplace_back(kInvalidateChannel);
    args.emplace_back("*");
    peer->lost = false;
  }
  size_t bytes = 0;
  size_t count = 0;
  while (!peer->queue.empty() && count < kBatchMessagesMax && bytes < kBatchBytesMax) {
    Entry& entry = peer->queue.front();
    bytes += entry.channel.size() + entry.message.size();
    args.emplace_back(1, entry.kind);
    args.push_back(std::move(entry.channel));
    args.push_back(std::move(entry.message));
    peer->queue.pop_front();
    ++count;
  }
  peer->bytes -= bytes;
  peer->in_flight = true;
  const std::string address = peer->address;
  batches_.fetch_add(1, std::memory_order_relaxed);
  lock.unlock();
  peers_.call(address, std::move(args), kBatchTimeoutMs,
              [this, peer, count](Result<resp::Value> reply) {
                std::unique_lock relock(peer->mutex);
                peer->in_flight = false;
                if (reply.is_ok() && reply->type != resp::Value::Type::kError) {
                  sent_.fetch_add(count, std::memory_order_relaxed);
                } else {
                  note_dropped(*peer, count,
                               reply.is_ok() ? reply->str : reply.status().to_string());
                }
                pump(peer, relock);
              });
  lock.lock();
}

void PubSubFanout::note_dropped(Peer& peer, uint64_t count, std::string_view why) {
  dropped_.fetch_add(count, std::memory_order_relaxed);
  peer.lost = true;
  peer.dropped_since_log += count;
  const int64_t now = monotonic_ms();
  if (now - peer.last_log_ms < 1000) return;
  spdlog::warn("pub/sub: dropped {} message(s) for machine {}: {}", peer.dropped_since_log,
               peer.address, why);
  peer.last_log_ms = now;
  peer.dropped_since_log = 0;
}

PubSubFanoutStats PubSubFanout::stats() const {
  return {sent_.load(std::memory_order_relaxed), dropped_.load(std::memory_order_relaxed),
          batches_.load(std::memory_order_relaxed)};
}

}  // namespace cairn::server
